//! The command-line interface: clap definitions, one file per subcommand, and
//! the single place where errors become messages and exit codes.
//!
//! Nothing here holds logic a library user would need; each subcommand parses
//! its arguments, calls the library, and renders the result as text or JSON.

mod accept;
mod adopt;
mod bisect;
mod bisect_builtin;
mod check;
mod checkout;
mod clone;
mod completions;
mod demo;
mod diff;
mod du;
mod error;
mod fetch;
mod fix;
mod forget;
mod fsck;
mod gc;
mod graph;
mod guard;
mod history;
mod init;
mod lint;
mod locate;
mod log;
mod man;
mod migrations;
mod output;
mod push;
mod refs;
mod remote;
mod repair;
mod replay;
mod report;
mod restore;
mod show;
mod snapshot;
mod stamp;
mod status;
mod tag;
mod test;
mod track;
mod verdict;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

pub use error::{CliError, ErrorKind};
pub use output::Output;

use crate::repo::{Repo, Tracked};

/// Git-style, content-addressed snapshots of SQLite databases.
#[derive(Debug, Parser)]
#[command(name = "migsnap", version, max_term_width = 100)]
pub struct Cli {
    /// The store directory (default: the nearest `.migsnap` up from here).
    #[arg(long, global = true, env = "MIGSNAP_STORE", value_name = "DIR")]
    store: Option<PathBuf>,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// How long to wait for a database locked by a writer (default 5s), and
    /// for another migsnap's lock on the store (default 60s), e.g. `500ms`.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_busy_timeout)]
    busy_timeout: Option<Duration>,

    /// Print errors and the verdict only (for cron and scripts).
    #[arg(short, long, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

/// Parses `--busy-timeout`. SQLite takes the wait as an `int` of
/// milliseconds, so anything longer than 2^31 - 1 ms (about 24.8 days)
/// cannot be passed on.
fn parse_busy_timeout(text: &str) -> Result<Duration, String> {
    let wait = crate::duration::parse(text).map_err(|e| e.to_string())?;
    let longest = Duration::from_millis(i32::MAX as u64);
    if wait > longest {
        return Err(format!(
            "at most {} (SQLite counts the wait in 32-bit milliseconds)",
            crate::duration::display(longest)
        ));
    }
    Ok(wait)
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document on stdout.
    Json,
    /// SQL: only `diff`, for the DDL that turns one schema into another.
    Sql,
    /// Alembic operations: only `diff`, for the `upgrade()` and
    /// `downgrade()` that turn one schema into another.
    Alembic,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(init::InitArgs),
    Track(track::TrackArgs),
    Snapshot(snapshot::SnapshotArgs),
    Log(log::LogArgs),
    Show(show::ShowArgs),
    Diff(diff::DiffArgs),
    Checkout(checkout::CheckoutArgs),
    Restore(restore::RestoreArgs),
    Tag(tag::TagArgs),
    Tags(tag::TagsArgs),
    Refs(refs::RefsArgs),
    Fsck(fsck::FsckArgs),
    Forget(forget::ForgetArgs),
    Gc(gc::GcArgs),
    Du(du::DuArgs),
    Demo(demo::DemoArgs),
    History(history::HistoryArgs),
    Replay(replay::ReplayArgs),
    Status(status::StatusArgs),
    Report(report::ReportArgs),
    Locate(locate::LocateArgs),
    Accept(accept::AcceptArgs),
    Fix(fix::FixArgs),
    Repair(repair::RepairArgs),
    Adopt(adopt::AdoptArgs),
    Stamp(stamp::StampArgs),
    Guard(guard::GuardArgs),
    Bisect(bisect::BisectArgs),
    Lint(lint::LintArgs),
    Test(test::TestArgs),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
    Check(check::CheckArgs),
    Remote(remote::RemoteArgs),
    Push(push::PushArgs),
    Fetch(fetch::FetchArgs),
    Clone(clone::CloneArgs),
}

/// What a command found, beyond success or failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Everything as expected.
    Ok,
    /// The command ran, and found problems (fsck) or differences.
    Problems,
    /// The command ran every step and reported them, but a step failed:
    /// exit with that class's code (`check`).
    Failed(error::ErrorKind),
}

/// Exit codes; the table in `docs/cli.md` must match.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The command ran and found problems or differences.
    pub const PROBLEMS: u8 = 1;
    /// The command line is wrong.
    pub const USAGE: u8 = 2;
    /// Bad input: a missing or invalid file, revision, name or configuration.
    pub const INPUT: u8 = 3;
    /// Refused for safety: in use, locked, exists, read-only, newer format.
    pub const REFUSED: u8 = 4;
    /// The store holds corrupt or missing objects.
    pub const CORRUPT: u8 = 5;
    /// A remote could not be reached (connection refused, no route, a
    /// timeout): worth trying again later, unlike the other failures.
    pub const UNREACHABLE: u8 = 6;
    /// A bug or an unexpected system failure.
    pub const INTERNAL: u8 = 70;
}

/// Shared state of one invocation.
pub struct Ctx {
    store: Option<PathBuf>,
    cwd: PathBuf,
    busy_timeout: Duration,
    /// `--busy-timeout` as given; the store waits longer by default, as
    /// another migsnap may hold its lock for a whole snapshot.
    store_busy_timeout: Option<Duration>,
    out: Output,
}

impl Ctx {
    fn open_repo(&self) -> Result<Repo, CliError> {
        self.checked(Repo::open(self.store.as_deref(), &self.cwd)?)
    }

    /// Opens the repository as [`Ctx::open_repo`] does, or a scratch store
    /// where there is none ([`Repo::open_or_scratch`]): for the commands
    /// that use the store only as a cache.
    fn open_repo_or_scratch(&self) -> Result<Repo, CliError> {
        self.checked(Repo::open_or_scratch(self.store.as_deref(), &self.cwd)?)
    }

    /// Validates an opened repository's finding codes and applies
    /// `--busy-timeout` to its store.
    fn checked(&self, mut repo: Repo) -> Result<Repo, CliError> {
        // The codes come from every area, so the policy (above them all)
        // checks them, not the repository that read the file.
        repo.findings()
            .validate()
            .map_err(|e| crate::repo::RepoError::Config {
                path: repo.project_config(),
                message: e.to_string(),
            })?;
        if let Some(wait) = self.store_busy_timeout {
            repo.store.set_busy_timeout(wait)?;
        }
        Ok(repo)
    }

    /// Picks the database named by `arg` (name or path), or the only one. An
    /// untracked SQLite file given by path is tracked under its file stem.
    fn select_db(&self, repo: &mut Repo, arg: Option<&str>) -> Result<Tracked, CliError> {
        let selected = repo.select_or_track(arg)?;
        self.tracked_note(selected.newly_tracked.then_some(&selected.tracked));
        Ok(selected.tracked)
    }

    /// Tells the user, on stderr, that a database was tracked just now.
    fn tracked_note(&self, newly_tracked: Option<&Tracked>) {
        if let Some(tracked) = newly_tracked {
            self.out.note(&format!(
                "now tracking {} as '{}'",
                tracked.path.display(),
                tracked.name
            ));
        }
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    completions::answer_shell();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::OK
                }
                _ => exit::USAGE,
            });
        }
    };
    let out = Output::new(cli.format, cli.quiet);
    let diff_only = match cli.format {
        Format::Sql => Some("sql"),
        Format::Alembic => Some("alembic"),
        Format::Text | Format::Json => None,
    };
    if let Some(name) = diff_only
        && !matches!(cli.command, Command::Diff(_))
    {
        let error = CliError::new(
            ErrorKind::Usage,
            format!("--format {name} is only for `migsnap diff`"),
        )
        .hint("use --format text or --format json");
        return ExitCode::from(out.error(&error));
    }
    // A clock set wrong would date snapshots and decide retention wrongly:
    // refuse before anything is recorded.
    if let Err(text) = migsnap_store::odb::clock_override() {
        let error = CliError::new(
            ErrorKind::Input,
            format!(
                "{}='{text}' is not a time: give whole seconds since the Unix epoch",
                migsnap_store::odb::CLOCK_ENV
            ),
        )
        .hint("e.g. MIGSNAP_NOW=$(date -d '2026-01-05 03:00 UTC' +%s), or unset it for the system clock");
        return ExitCode::from(out.error(&error));
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut ctx = Ctx {
        store: cli.store.map(|s| crate::repo::absolute(&s)),
        cwd,
        busy_timeout: cli
            .busy_timeout
            .unwrap_or(crate::snapshots::sqlite::DEFAULT_BUSY_TIMEOUT),
        store_busy_timeout: cli.busy_timeout,
        out,
    };
    let result = match cli.command {
        Command::Init(args) => init::run(args, &mut ctx),
        Command::Track(args) => track::run(args, &mut ctx),
        Command::Snapshot(args) => snapshot::run(args, &mut ctx),
        Command::Log(args) => log::run(args, &mut ctx),
        Command::Show(args) => show::run(args, &mut ctx),
        Command::Diff(args) => diff::run(args, &mut ctx),
        Command::Checkout(args) => checkout::run(args, &mut ctx),
        Command::Restore(args) => restore::run(args, &mut ctx),
        Command::Tag(args) => tag::run(args, &mut ctx),
        Command::Tags(args) => tag::run_list(args, &mut ctx),
        Command::Refs(args) => refs::run(args, &mut ctx),
        Command::Fsck(args) => fsck::run(args, &mut ctx),
        Command::Forget(args) => forget::run(args, &mut ctx),
        Command::Gc(args) => gc::run(args, &mut ctx),
        Command::Du(args) => du::run(args, &mut ctx),
        Command::Demo(args) => demo::run(args, &mut ctx),
        Command::History(args) => history::run(args, &mut ctx),
        Command::Replay(args) => replay::run(args, &mut ctx),
        Command::Status(args) => status::run(args, &mut ctx),
        Command::Report(args) => report::run(args, &mut ctx),
        Command::Locate(args) => locate::run(args, &mut ctx),
        Command::Accept(args) => accept::run(args, &mut ctx),
        Command::Fix(args) => fix::run(args, &mut ctx),
        Command::Repair(args) => repair::run(args, &mut ctx),
        Command::Adopt(args) => adopt::run(args, &mut ctx),
        Command::Stamp(args) => stamp::run(args, &mut ctx),
        Command::Guard(args) => guard::run(args, &mut ctx),
        Command::Bisect(args) => bisect::run(args, &mut ctx),
        Command::Lint(args) => lint::run(args, &mut ctx),
        Command::Test(args) => test::run(args, &mut ctx),
        Command::Completions(args) => completions::run(args, &mut ctx),
        Command::Man(args) => man::run(args, &mut ctx),
        Command::Check(args) => check::run(args, &mut ctx),
        Command::Remote(args) => remote::run(args, &mut ctx),
        Command::Push(args) => push::run(args, &mut ctx),
        Command::Fetch(args) => fetch::run(args, &mut ctx),
        Command::Clone(args) => clone::run(args, &mut ctx),
    };
    match result {
        Ok(Status::Ok) => ExitCode::from(exit::OK),
        Ok(Status::Problems) => ExitCode::from(exit::PROBLEMS),
        Ok(Status::Failed(kind)) => ExitCode::from(kind.exit_code()),
        Err(e) => ExitCode::from(ctx.out.error(&e)),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
