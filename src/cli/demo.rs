//! `migsnap demo`: a self-contained walk-through on a generated database.
//!
//! It runs the real `migsnap` binary, command by command, in a temporary
//! directory, so what it prints is exactly what a user would see.

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;

use super::{CliError, Ctx, ErrorKind, Status};

/// Run a self-contained demonstration: build a small chat-app database with an
/// Alembic revision, snapshot it, damage it the way a hand-written fix script
/// would, inspect the history, and restore it by tag, verified.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Work in this (new or empty) directory and keep it, instead of a
    /// temporary one that is removed at the end.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: DemoArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let temp;
    let dir = match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            dir
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let exe = std::env::current_exe()?;
    let out = &ctx.out;
    let step = |text: &str| out.line(&format!("\n## {text}"));
    let migsnap = |args: &[&str]| -> Result<(), CliError> {
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if a.contains(' ') {
                    format!("'{a}'")
                } else {
                    (*a).to_owned()
                }
            })
            .collect();
        out.line(&format!("$ migsnap {}", shown.join(" ")))?;
        let result = Command::new(&exe)
            .args(args)
            .current_dir(&dir)
            .env_remove("MIGSNAP_STORE")
            .output()?;
        for stream in [&result.stdout, &result.stderr] {
            let text = String::from_utf8_lossy(stream);
            for line in text.lines() {
                out.line(&format!("  {line}"))?;
            }
        }
        if result.status.success() {
            Ok(())
        } else {
            Err(CliError::new(
                ErrorKind::Internal,
                format!(
                    "demo step `migsnap {}` failed with {}",
                    args.join(" "),
                    result.status
                ),
            ))
        }
    };

    std::fs::create_dir_all(dir.join("data"))?;
    let db_path = dir.join("data/webui.db");
    step("A chat app's database, at Alembic revision 9f1c2a7d3b10")?;
    build_database(&db_path).map_err(|e| {
        CliError::new(
            ErrorKind::Internal,
            format!("building the demo database: {e}"),
        )
    })?;
    out.line(&format!(
        "created {} ({} KiB)",
        db_path.display(),
        std::fs::metadata(&db_path)?.len() / 1024
    ))?;

    step("Start a store and take a snapshot before a risky change")?;
    migsnap(&["init", "--track", "data/webui.db"])?;
    migsnap(&[
        "snapshot",
        "-m",
        "before upgrade",
        "--tag",
        "before-upgrade",
    ])?;

    step("A hand-written 'fix script' alters a table and stamps a revision")?;
    damage(&db_path).map_err(|e| {
        CliError::new(
            ErrorKind::Internal,
            format!("changing the demo database: {e}"),
        )
    })?;
    out.line("ALTER TABLE chat ADD COLUMN archived INTEGER; CREATE TABLE folder(...); UPDATE alembic_version ...")?;
    migsnap(&["snapshot", "-m", "after fix script"])?;
    migsnap(&["snapshot", "-m", "nothing changed, so nothing is recorded"])?;

    step("History: what changed, which revision was stamped, what each snapshot cost")?;
    migsnap(&["log"])?;
    migsnap(&["du"])?;

    step("Put the database back the way it was, by tag; a safety snapshot comes first")?;
    migsnap(&["restore", "before-upgrade"])?;
    let columns = column_names(&db_path, "chat").map_err(|e| {
        CliError::new(
            ErrorKind::Internal,
            format!("reading the demo database: {e}"),
        )
    })?;
    out.line(&format!("chat columns now: {}", columns.join(", ")))?;
    migsnap(&["log", "--oneline"])?;

    step("Everything in the store still hashes to its name")?;
    migsnap(&["fsck", "--read-data"])?;
    if !columns.iter().any(|c| c == "archived") {
        out.line(
            "\ndemo complete: the restore removed the fix script's column and kept every row.",
        )?;
    }
    Ok(Status::Ok)
}

/// A small Open-WebUI-shaped database: users, chats with JSON bodies,
/// messages, indexes, and an `alembic_version` row.
fn build_database(path: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE user(id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, created_at INTEGER);
         CREATE TABLE chat(id TEXT PRIMARY KEY, user_id TEXT REFERENCES user(id), title TEXT, chat JSON, updated_at INTEGER);
         CREATE TABLE message(id INTEGER PRIMARY KEY, chat_id TEXT REFERENCES chat(id), content TEXT, created_at INTEGER);
         CREATE INDEX chat_user ON chat(user_id);
         CREATE INDEX message_chat ON message(chat_id);
         CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL PRIMARY KEY);
         INSERT INTO alembic_version VALUES ('9f1c2a7d3b10');",
    )?;
    let tx = conn.unchecked_transaction()?;
    for u in 0..50 {
        tx.execute(
            "INSERT INTO user VALUES (?1, ?2, ?3, ?4)",
            (
                format!("u{u}"),
                format!("User {u}"),
                format!("user{u}@example.com"),
                1_700_000_000 + u,
            ),
        )?;
        for c in 0..10 {
            let body = format!(
                r#"{{"messages":[{}]}}"#,
                (0..8)
                    .map(|m| format!(
                        r#"{{"role":"user","content":"message {m} of chat {c} by user {u}"}}"#
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let chat_id = format!("c{u}-{c}");
            tx.execute(
                "INSERT INTO chat VALUES (?1, ?2, ?3, ?4, ?5)",
                (
                    &chat_id,
                    format!("u{u}"),
                    format!("Chat {c}"),
                    body,
                    1_700_000_000 + c,
                ),
            )?;
            tx.execute(
                "INSERT INTO message(chat_id, content, created_at) VALUES (?1, ?2, ?3)",
                (&chat_id, "hello from the demo", 1_700_000_000 + c),
            )?;
        }
    }
    tx.commit()
}

fn damage(path: &Path) -> rusqlite::Result<()> {
    Connection::open(path)?.execute_batch(
        "ALTER TABLE chat ADD COLUMN archived INTEGER DEFAULT 0;
         CREATE TABLE folder(id TEXT PRIMARY KEY, name TEXT);
         UPDATE chat SET archived = 1 WHERE rowid % 7 = 0;
         UPDATE alembic_version SET version_num = 'ca81bd47c050';",
    )
}

fn column_names(path: &Path, table: &str) -> rusqlite::Result<Vec<String>> {
    let conn = Connection::open(path)?;
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    stmt.query_map([table], |row| row.get(0))?.collect()
}
