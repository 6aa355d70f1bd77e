//! Shell completion, generated from the same clap definitions that parse
//! the command line, so it never offers a command or flag the binary does
//! not have.
//!
//! Two ways: `migsnap completions SHELL` prints a static script (commands,
//! flags, fixed values); a shell set up with `MIGSNAP_COMPLETE=SHELL
//! migsnap` instead asks the binary itself at each TAB ([`answer_shell`]),
//! which can also offer what is in the store: database names, tags and
//! snapshot ids.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_complete::engine::{
    ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter,
};
use clap_complete::env::CompleteEnv;
use serde::Serialize;

use super::{Cli, CliError, Ctx, Status};
use crate::repo::Repo;
use crate::snapshots::{log, tag};

/// Print the completion script for SHELL on stdout. Install it where the
/// shell looks, e.g. for bash:
/// `migsnap completions bash > ~/.local/share/bash-completion/completions/migsnap`.
/// To complete database names, tags and snapshot ids too, load
/// `MIGSNAP_COMPLETE=bash migsnap` (or zsh, fish, ...) instead.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// The JSON document: the script as a string, for tools that install it.
#[derive(Serialize)]
struct CompletionsReport {
    shell: String,
    script: String,
}

/// Runs `migsnap completions`.
pub fn run(args: CompletionsArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let script = script(args.shell);
    if ctx.out.is_json() {
        ctx.out.json(&CompletionsReport {
            shell: args.shell.to_string(),
            script,
        })?;
    } else {
        // The script is the result, so `-q` keeps it; `verdict` adds the
        // final newline back.
        ctx.out.verdict(script.trim_end_matches('\n'))?;
    }
    Ok(Status::Ok)
}

/// The completion script for `shell`, for the binary named `migsnap`.
fn script(shell: Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "migsnap", &mut buf);
    String::from_utf8(buf).expect("holds: clap writes the script from UTF-8 strings")
}

/// When `MIGSNAP_COMPLETE` names a shell, prints that shell's registration
/// script (no words after the program) or the completions of the words
/// the shell passes, and exits; otherwise returns at once. Called before
/// the command line is parsed, as the words are an incomplete command.
pub fn answer_shell() {
    CompleteEnv::with_factory(dynamic_command)
        .var("MIGSNAP_COMPLETE")
        .complete();
}

/// The command tree with the store's values attached to the arguments
/// that name them. Arguments are matched by id across every command, so a
/// new command's `db` or `rev` is completed without a line here.
fn dynamic_command() -> clap::Command {
    with_store_values(Cli::command())
}

/// [`dynamic_command`] for `cmd` and everything under it.
fn with_store_values(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|arg| match arg.get_id().as_str() {
        "db" => arg.add(ArgValueCompleter::new(database_values)),
        "rev" => arg.add(ArgValueCompleter::new(revision_values)),
        // A side of `diff`: also `live` and any SQLite file.
        "a" | "b" => arg.add(ArgValueCompleter::new(|current: &OsStr| {
            let mut values = revision_values(current);
            if "live".starts_with(current.to_string_lossy().as_ref()) {
                values.push(CompletionCandidate::new("live"));
            }
            values.extend(PathCompleter::file().complete(current));
            values
        })),
        // `locate` takes a database or a snapshot; a database name is
        // both, and offered once.
        "target" => arg.add(ArgValueCompleter::new(|current: &OsStr| {
            let mut values = database_values(current);
            let mut offered: HashSet<_> = values.iter().map(|c| c.get_value().to_owned()).collect();
            values.extend(
                revision_values(current)
                    .into_iter()
                    .filter(|c| offered.insert(c.get_value().to_owned())),
            );
            values
        })),
        _ => arg,
    })
    .mut_subcommands(with_store_values)
}

/// How many snapshots of each line (a database's head, a tag) are offered
/// by id: the recent ones are those people name; older ones have tags.
const IDS_PER_LINE: usize = 20;

/// The store of the command line being completed: `MIGSNAP_STORE`, else
/// the nearest `.migsnap`. `--store` on that line is not seen, as the
/// completer gets only the word under the cursor.
fn store() -> Option<Repo> {
    let cwd = std::env::current_dir().ok()?;
    let dir = std::env::var_os("MIGSNAP_STORE").map(PathBuf::from);
    Repo::open(dir.as_deref(), &cwd).ok()
}

/// A database: the tracked names, then files (an untracked file is
/// tracked when named).
fn database_values(current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let mut values: Vec<CompletionCandidate> = store()
        .into_iter()
        .flat_map(|repo| {
            repo.databases()
                .filter(|db| db.name.starts_with(prefix.as_ref()))
                .map(|db| {
                    CompletionCandidate::new(&db.name)
                        .help(Some(db.path.display().to_string().into()))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    values.extend(PathCompleter::file().complete(current));
    values
}

/// A snapshot: tags, database names (their heads), `HEAD`, and the short
/// ids of the newest snapshots of each line. Nothing when the store
/// cannot be read: completion never prints an error.
fn revision_values(current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let Some(repo) = store() else {
        return Vec::new();
    };
    let mut values = vec![CompletionCandidate::new("HEAD")];
    let tags = tag::list(&repo.store).unwrap_or_default();
    let mut lines = Vec::new();
    for entry in &tags {
        values.push(CompletionCandidate::new(&entry.name).help(Some("tag".into())));
        lines.push(entry.target);
    }
    let view = repo.store.view();
    for db in repo.databases() {
        values.push(CompletionCandidate::new(&db.name).help(Some("database head".into())));
        lines.extend(view.find_ref(&db.head_ref()).ok().flatten());
    }
    let mut seen = HashSet::new();
    for start in lines {
        let walk = log::first_parents(view, Some(start)).until_seen(&mut seen);
        for (id, snapshot) in walk.take(IDS_PER_LINE).map_while(Result::ok) {
            let help = format!("{} {}", snapshot.database, snapshot.message);
            values.push(CompletionCandidate::new(format!("{id:.12}")).help(Some(help.into())));
        }
    }
    values.retain(|c| c.get_value().to_string_lossy().starts_with(prefix.as_ref()));
    values
}
