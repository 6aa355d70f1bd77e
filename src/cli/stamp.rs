//! `migsnap stamp --verify`: write `alembic_version`, but only when the
//! live schema matches the reference of the revisions written.

use std::path::Path;

use super::migrations::{self, reference_error, replay_progress};
use super::output::drift_lines;
use super::{CliError, Ctx, ErrorKind, Status};
use crate::migrations::stamp::{self, StampError, StampOutcome, StampReport, StampRequest};

/// Write alembic_version (several REVs for several branches) after
/// verifying that the live schema matches their reference; a safety
/// snapshot is taken first.
#[derive(Debug, clap::Args)]
#[command(override_usage = "migsnap stamp [OPTIONS] [DB] <REV>...")]
pub struct StampArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// The database first, as for every command (a tracked name or a path;
    /// default: the only tracked one, or the SQLite file the Alembic
    /// configuration names), then the revision(s) to record: ids,
    /// prefixes, labels, `head`, `heads`.
    #[arg(required = true, value_name = "REV")]
    args: Vec<String>,
    /// Verify before writing. Always on: migsnap never stamps blindly; the
    /// flag is accepted so scripts can say what they mean.
    #[arg(long)]
    verify: bool,
    /// The database, instead of the first argument (kept for scripts that
    /// name it so).
    #[arg(long)]
    db: Option<String>,
    /// Write even though other processes have the database open.
    #[arg(long)]
    force: bool,
}

pub fn run(args: StampArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    // Asked only of arguments that could be misplaced, so the usual forms
    // open nothing more.
    let names_database = |arg: &str| {
        Path::new(arg).is_file()
            || ctx
                .open_repo()
                .is_ok_and(|repo| repo.select(Some(arg)).is_ok())
    };
    // `stamp DB REV...` like every other command, and `stamp REV... --db DB`
    // as before: the first of several arguments is the database when it
    // names one.
    let (db, revisions) = match args.args.split_first() {
        Some((first, rest)) if args.db.is_none() && !rest.is_empty() && names_database(first) => {
            (Some(first.clone()), rest.to_vec())
        }
        _ => (args.db.clone(), args.args.clone()),
    };
    let mut opened = migrations::open(ctx, db.as_deref(), &args.project)?;
    // A database where a revision belongs: say where it goes, rather than
    // "unknown revision".
    if let Some(misplaced) = revisions
        .iter()
        .find(|r| opened.graph.resolve(r).is_err() && names_database(r))
    {
        let others: Vec<&str> = revisions
            .iter()
            .filter(|r| *r != misplaced)
            .map(String::as_str)
            .collect();
        let usage = if others.is_empty() {
            format!("migsnap stamp {misplaced} REV")
        } else {
            format!("migsnap stamp {misplaced} {}", others.join(" "))
        };
        return Err(CliError::new(
            ErrorKind::Usage,
            format!("{misplaced} is a database, not a revision to stamp"),
        )
        .hint(format!(
            "the database comes first, then the revision(s): `{usage}`"
        )));
    }
    let path = opened.database(db.as_deref())?;
    let targets = stamp::targets(
        &opened.graph,
        opened.project.kind,
        &revisions,
        &path,
        ctx.busy_timeout,
    )?;
    let root = opened.repo.root().to_path_buf();
    let (repo, replayer, graph) = opened.parts();
    let request = StampRequest {
        database: &path,
        targets: &targets,
        force: args.force,
        busy_timeout: ctx.busy_timeout,
    };
    let report = stamp::stamp_verified(
        repo,
        &replayer,
        graph,
        &request,
        &mut replay_progress(ctx),
        ctx.out.progress().as_mut(),
    )
    .map_err(|e| match e {
        StampError::Reference { targets, failure } => reference_error(&failure, &targets, &root),
        e => e.into(),
    })?;
    ctx.tracked_note(report.newly_tracked.as_ref());
    if ctx.out.is_json() {
        ctx.out.json(&report)?;
    } else {
        render(ctx, &report)?;
    }
    Ok(match report.outcome {
        StampOutcome::Refused { .. } => Status::Problems,
        StampOutcome::Unchanged { .. } | StampOutcome::Stamped { .. } => Status::Ok,
    })
}

/// The report as text.
fn render(ctx: &Ctx, report: &StampReport) -> Result<(), CliError> {
    let out = &ctx.out;
    let path = report.database.display();
    let towards = report.targets.join(" + ");
    match &report.outcome {
        StampOutcome::Refused { drift } => {
            out.line(&format!(
                "refusing to stamp {towards}: {path} does not match its reference ({:.12}):",
                report.reference
            ))?;
            for line in drift_lines(out, drift, "    ") {
                out.line(&line)?;
            }
            if !report.unknown.is_empty() {
                out.line(&format!(
                    "the stamped revision, {}, is unknown: no migration script declares it",
                    report.unknown.join(" + ")
                ))?;
            }
            out.line(
                "`migsnap fix` plans the fix: which revision the schema really is, and the steps",
            )
        }
        StampOutcome::Unchanged { .. } => out.line(&format!(
            "{path} is already stamped {towards}, and matches it"
        )),
        StampOutcome::Stamped {
            safety_snapshot: safety,
            ..
        } => {
            out.line(&format!("stamped {path} as {towards} (schema verified)"))?;
            if !report.unknown.is_empty() {
                out.line(&format!(
                    "replaced {}, which no migration script declares",
                    report.unknown.join(" + ")
                ))?;
            }
            out.line(&format!(
                "safety snapshot: {safety}  (undo: migsnap restore {safety:.12})"
            ))
        }
    }
}
