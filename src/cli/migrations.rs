//! What the migration commands (`history`, `replay`, `status`, `locate`,
//! `accept`, bisect's predicates) share: finding the project, its graph, the
//! reference chain and the database, and printing replay progress.

use std::path::{Path, PathBuf};

use super::{CliError, Ctx, ErrorKind};
use crate::migrations::history::project::MigrationKind;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::history::targets::{TargetError, Targets};
use crate::migrations::replay::{ReplayEvent, ReplayFailure};
pub use crate::migrations::workspace::Workspace;

/// How to find the Alembic configuration, as `alembic -c` and `-n` do.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProjectArgs {
    /// The Alembic ini file, as `alembic -c` (default: ALEMBIC_CONFIG, else
    /// alembic.ini here or at the project root, else pyproject.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The ini section, as `alembic -n` (default: alembic).
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    name: Option<String>,
}

/// Opens the repository and the migration project for `db_arg` (a tracked
/// name or a path; `None`: the only tracked database, if any).
pub fn open(ctx: &Ctx, db_arg: Option<&str>, project: &ProjectArgs) -> Result<Workspace, CliError> {
    workspace(ctx, ctx.open_repo()?, db_arg, project)
}

/// Opens the migration project as [`open`] does, on a scratch store when
/// there is no store: for `history` and `lint`, which use the store only
/// as a cache of references, so they run in a fresh clone (a pre-commit
/// hook, a CI job) where `migsnap init` never ran.
pub fn open_or_scratch(ctx: &Ctx, project: &ProjectArgs) -> Result<Workspace, CliError> {
    workspace(ctx, ctx.open_repo_or_scratch()?, None, project)
}

fn workspace(
    ctx: &Ctx,
    repo: crate::repo::Repo,
    db_arg: Option<&str>,
    project: &ProjectArgs,
) -> Result<Workspace, CliError> {
    Ok(Workspace::open(
        repo,
        &ctx.cwd,
        db_arg,
        project.config.as_deref(),
        project.name.as_deref(),
    )?)
}

/// The revisions `names` stand for (ids, prefixes, labels, `head`,
/// `heads`), or, with no names, the revisions `stamped` records; sorted and
/// without duplicates. `what` says what they are for and `flag` how to name
/// them, in errors.
pub fn targets(
    opened: &Workspace,
    names: &[String],
    stamped: Option<Vec<RevisionId>>,
    what: &str,
    flag: &str,
) -> Result<Targets, CliError> {
    Targets::resolve(&opened.graph, names, stamped).map_err(|e| target_error(e, what, flag))
}

/// The error for revisions that cannot be told (see [`targets`]).
pub fn target_error(error: TargetError, what: &str, flag: &str) -> CliError {
    match error {
        TargetError::NoneRecorded => none_recorded(what, flag),
        TargetError::Undeclared { revision } => CliError::new(
            ErrorKind::Input,
            format!(
                "the database records revision {revision}, which no migration script declares; \
                 name the revision to {what}"
            ),
        )
        .hint(format!(
            "`migsnap locate` shows the revision the schema is nearest to; name it with {flag} REV"
        )),
        TargetError::Unresolved(e) => e.into(),
        TargetError::Base => CliError::new(
            ErrorKind::Input,
            format!("'base' has no reference to {what}"),
        ),
    }
}

/// The error for a database that records no revision, when none was named.
pub fn none_recorded(what: &str, flag: &str) -> CliError {
    CliError::new(
        ErrorKind::Input,
        format!("the database records no revision to {what}"),
    )
    .hint(format!("name the revision(s) with {flag} REV"))
}

/// A one-line description of the project, for text output.
pub fn describe(opened: &Workspace) -> String {
    let kind = match opened.project.kind {
        MigrationKind::Alembic => "Alembic",
        MigrationKind::Sql => "SQL folder",
    };
    let dirs: Vec<String> = opened
        .project
        .version_dirs()
        .iter()
        .map(|d| shown(d, opened.repo.root()))
        .collect();
    let heads = opened.graph.heads().len();
    format!(
        "{kind} migrations in {} ({} revisions, {heads} head{})",
        dirs.join(", "),
        opened.graph.len(),
        if heads == 1 { "" } else { "s" }
    )
}

/// `path` relative to `root` when inside it, for display.
pub fn shown(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A progress callback that tells a person, on stderr, what a replay is
/// running (cached steps are silent).
pub fn replay_progress(ctx: &Ctx) -> impl FnMut(ReplayEvent<'_>) + '_ {
    move |event| match event {
        ReplayEvent::Running(targets) => {
            ctx.out
                .step(&format!("replaying {} …", targets.join(" + ")));
        }
        ReplayEvent::Done(_) => {}
    }
}

/// The error for a command that needed the reference of `targets` and could
/// not have it because a migration failed in replay.
pub fn reference_error(failure: &ReplayFailure, targets: &[RevisionId], root: &Path) -> CliError {
    let lines = failure_lines(failure, root);
    CliError::new(
        ErrorKind::Input,
        format!(
            "the reference for {} could not be built: {}",
            targets.join(" + "),
            lines[0]
        ),
    )
    .hint("`migsnap replay` shows the whole error")
}

/// The lines that explain a replay failure. Tables made outside Alembic
/// are said to be so, with what to do, and the revision file is not named:
/// it is not to blame.
pub fn failure_lines(failure: &ReplayFailure, root: &Path) -> Vec<String> {
    if failure.outside_alembic.is_some() {
        return vec![
            failure.summary(),
            format!("    {}", crate::migrations::drift::BOOTSTRAP_HINT),
            format!(
                "    (on an empty database the migration stopped at: {})",
                failure.failure.error
            ),
        ];
    }
    let mut lines = vec![format!(
        "migration {} failed{}: {}",
        failure.revision,
        failure
            .file
            .as_ref()
            .map(|f| format!(" ({})", shown(f, root)))
            .unwrap_or_default(),
        failure.failure.error
    )];
    let detail = failure.failure.detail.trim_end();
    if !detail.is_empty() {
        lines.extend(detail.lines().map(|l| format!("    {l}")));
    }
    lines
}
