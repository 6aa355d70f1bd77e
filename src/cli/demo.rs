//! `migsnap demo`: a self-contained walk-through on a generated database.
//!
//! It runs the real `migsnap` binary, command by command, in a temporary
//! directory, so what it prints is exactly what a user would see.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{CliError, Ctx, ErrorKind, Status};
use crate::demo;

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
    let mut walk = Walkthrough {
        exe: std::env::current_exe()?,
        dir: dir.clone(),
        out: &ctx.out,
        json: Vec::new(),
    };

    std::fs::create_dir_all(dir.join("data"))?;
    let db_path = dir.join("data/webui.db");
    walk.say("A chat app's database, at Alembic revision 9f1c2a7d3b10")?;
    demo::build_database(&db_path)?;
    walk.say(&format!(
        "created {} ({} KiB)",
        db_path.display(),
        std::fs::metadata(&db_path)?.len() / 1024
    ))?;

    walk.say("Start a store and take a snapshot before a risky change")?;
    walk.run(&["init", "--track", "data/webui.db"])?;
    walk.run(&[
        "snapshot",
        "-m",
        "before upgrade",
        "--tag",
        "before-upgrade",
    ])?;

    walk.say("A hand-written 'fix script' alters a table and stamps a revision")?;
    demo::damage(&db_path)?;
    walk.say("ran: ALTER TABLE chat ADD COLUMN archived ...; CREATE TABLE folder(...); UPDATE alembic_version ...")?;
    walk.run(&["snapshot", "-m", "after fix script"])?;
    walk.run(&["snapshot", "-m", "nothing changed, so nothing is recorded"])?;

    walk.say("History: what changed, which revision was stamped, what each snapshot cost")?;
    walk.run(&["log"])?;
    walk.run(&["du"])?;

    walk.say("What exactly the fix script changed, and since when that column exists")?;
    walk.run_allowing(&["diff", "before-upgrade", "HEAD"], &[1])?;
    walk.run(&["log", "--oneline", "--changed", "column:chat.archived"])?;

    walk.say("Put the database back the way it was, by tag; a safety snapshot comes first")?;
    walk.run(&["restore", "before-upgrade"])?;
    let columns = demo::column_names(&db_path, "chat")?;
    walk.say(&format!("chat columns now: {}", columns.join(", ")))?;
    walk.run(&["log", "--oneline"])?;

    walk.say("Everything in the store still hashes to its name")?;
    walk.run(&["fsck", "--read-data"])?;
    if columns.iter().any(|c| c == "archived") {
        return Err(CliError::new(
            ErrorKind::Internal,
            "demo: the restore did not remove the fix script's column",
        ));
    }
    walk.say("demo complete: the restore removed the fix script's column and kept every row.")?;
    if ctx.out.is_json() {
        ctx.out.json(&DemoDocument {
            dir: &dir,
            steps: &walk.json,
        })?;
    }
    Ok(Status::Ok)
}

/// Runs demo steps with the real binary and shows them as text, or collects
/// them for one JSON document.
struct Walkthrough<'a> {
    exe: PathBuf,
    dir: PathBuf,
    out: &'a super::Output,
    json: Vec<Step>,
}

/// `demo --format json`: where it ran and every step.
#[derive(serde::Serialize)]
struct DemoDocument<'a> {
    dir: &'a Path,
    steps: &'a [Step],
}

/// One step of the walk-through: a sentence, or a command with its exit
/// code and its own JSON output.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Step {
    Say {
        say: String,
    },
    Command {
        command: Vec<String>,
        exit_code: Option<i32>,
        output: serde_json::Value,
    },
}

impl Walkthrough<'_> {
    fn say(&mut self, text: &str) -> Result<(), CliError> {
        if self.out.is_json() {
            self.json.push(Step::Say {
                say: text.to_owned(),
            });
            Ok(())
        } else {
            self.out.line(&format!("\n## {text}"))
        }
    }

    fn run(&mut self, args: &[&str]) -> Result<(), CliError> {
        self.run_allowing(args, &[])
    }

    /// Runs a step whose exit code may also be one of `ok` (e.g. 1 from
    /// `diff`, which means "there is a difference").
    fn run_allowing(&mut self, args: &[&str], ok: &[i32]) -> Result<(), CliError> {
        let json = self.out.is_json();
        let mut command = Command::new(&self.exe);
        if json {
            command.args(["--format", "json"]);
        }
        let result = command
            .args(args)
            .current_dir(&self.dir)
            .env_remove("MIGSNAP_STORE")
            .output()?;
        if json {
            let output: serde_json::Value =
                serde_json::from_slice(&result.stdout).unwrap_or(serde_json::Value::Null);
            self.json.push(Step::Command {
                command: args.iter().map(|a| (*a).to_owned()).collect(),
                exit_code: result.status.code(),
                output,
            });
        } else {
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
            self.out.line(&format!("$ migsnap {}", shown.join(" ")))?;
            for stream in [&result.stdout, &result.stderr] {
                for line in String::from_utf8_lossy(stream).lines() {
                    self.out.line(&format!("  {line}"))?;
                }
            }
        }
        if result.status.success() || result.status.code().is_some_and(|c| ok.contains(&c)) {
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
    }
}
