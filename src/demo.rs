//! The demo's scenario: a small Open-WebUI-shaped chat database, and the
//! damage a hand-written fix script does to it. `migsnap demo` walks
//! through snapshotting, inspecting and restoring it with the real binary.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// A demo database could not be built, changed or read.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} the demo database {}", path.display())]
pub struct DemoError {
    /// What was being done: build, change or read.
    action: &'static str,
    /// The database file.
    path: PathBuf,
    /// Why.
    #[source]
    source: rusqlite::Error,
}

impl DemoError {
    /// The error for `action` on `path`, given its cause.
    fn at(action: &'static str, path: &Path) -> impl FnOnce(rusqlite::Error) -> DemoError {
        let path = path.to_path_buf();
        move |source| DemoError {
            action,
            path,
            source,
        }
    }
}

/// A small Open-WebUI-shaped database: users, chats with JSON bodies,
/// messages, indexes, and an `alembic_version` row.
pub fn build_database(path: &Path) -> Result<(), DemoError> {
    let fail = DemoError::at("build", path);
    build(path).map_err(fail)
}

fn build(path: &Path) -> rusqlite::Result<()> {
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

/// Changes the database as a hand-written fix script would: a column and
/// a table added by hand, rows updated, and the version row moved to a
/// revision that does not exist.
pub fn damage(path: &Path) -> Result<(), DemoError> {
    let fail = DemoError::at("change", path);
    Connection::open(path)
        .and_then(|conn| {
            conn.execute_batch(
                "ALTER TABLE chat ADD COLUMN archived INTEGER DEFAULT 0;
         CREATE TABLE folder(id TEXT PRIMARY KEY, name TEXT);
         UPDATE chat SET archived = 1 WHERE rowid % 7 = 0;
         UPDATE alembic_version SET version_num = 'ca81bd47c050';",
            )
        })
        .map_err(fail)
}

/// The column names of `table`, in order.
pub fn column_names(path: &Path, table: &str) -> Result<Vec<String>, DemoError> {
    let read = || -> rusqlite::Result<Vec<String>> {
        let conn = Connection::open(path)?;
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
        stmt.query_map([table], |row| row.get(0))?.collect()
    };
    read().map_err(DemoError::at("read", path))
}
