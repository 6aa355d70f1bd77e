//! `migsnap adopt`: write the database's extra objects as a new Alembic
//! revision on the head, and stamp the database at it, verified.

use super::migrations::{self, failure_lines, reference_error, replay_progress, shown};
use super::output::drift_lines;
use super::{CliError, Ctx, Status};
use crate::migrations::adopt::{self, AdoptError, AdoptReport, AdoptRequest, ModelsAdoptRequest};
use crate::migrations::stamp::{StampError, StampOutcome};
use crate::schema::diff::Op;

/// Write the objects the database has beyond its head's schema (tables,
/// columns, indexes, constraints, views, triggers made by hand) as a new
/// Alembic revision on the head, then stamp the database at it after
/// verifying it. The revision creates them in upgrade() and drops them in
/// downgrade(). --dry-run prints the file instead. With --from-models
/// --tables: a revision that creates what the SQLAlchemy models declare for
/// those tables and no migration creates yet.
#[derive(Debug, clap::Args)]
pub struct AdoptArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// The database: a tracked name or a path (default: the only tracked
    /// one, or the SQLite file the Alembic configuration names).
    db: Option<String>,
    /// The revision's message, as `alembic revision -m`.
    #[arg(short = 'm', long = "message", required = true)]
    message: String,
    /// Print the revision file; write and stamp nothing.
    #[arg(long)]
    dry_run: bool,
    /// Stamp even though other processes have the database open.
    #[arg(long)]
    force: bool,
    /// Adopt from the models instead of a database: what they declare for
    /// --tables and no migration creates (one feature's tables).
    #[arg(long, requires = "tables", conflicts_with_all = ["db", "force"])]
    from_models: bool,
    /// With --from-models: the tables to adopt, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        requires = "from_models",
        value_name = "TABLE,..."
    )]
    tables: Vec<String>,
}

pub fn run(args: AdoptArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    if args.from_models {
        return from_models(args, ctx);
    }
    let mut opened = migrations::open(ctx, args.db.as_deref(), &args.project)?;
    let path = opened.database(args.db.as_deref())?;
    let request = AdoptRequest {
        database: &path,
        message: &args.message,
        dry_run: args.dry_run,
        force: args.force,
        busy_timeout: ctx.busy_timeout,
    };
    let root = opened.repo.root().to_path_buf();
    let report = adopt::adopt(
        &mut opened.repo,
        &opened.project,
        &opened.graph,
        &opened.chain,
        &request,
        &mut replay_progress(ctx),
        ctx.out.progress().as_mut(),
    )
    .map_err(|e| match e {
        AdoptError::Reference { head, failure } => reference_error(&failure, &[head], &root),
        // The new file did not replay: say how it failed, as the file is
        // gone and `migsnap replay` can no longer show it.
        AdoptError::Stamp { ref source, .. } => {
            let lines = match &**source {
                StampError::Reference { failure, .. } => Some(failure_lines(failure, &root)),
                _ => None,
            };
            let mut error = CliError::from(e);
            if let Some(lines) = lines {
                error.causes = lines;
            }
            error
        }
        e => e.into(),
    })?;
    if let Some(stamp) = &report.stamp {
        ctx.tracked_note(stamp.newly_tracked.as_ref());
    }
    if ctx.out.is_json() {
        ctx.out.json(&report)?;
    } else {
        render(ctx, &report, &root)?;
    }
    Ok(if report.settled() {
        Status::Ok
    } else {
        Status::Problems
    })
}

/// The report as text: the file for a dry run, else what was written and
/// stamped.
fn render(ctx: &Ctx, report: &AdoptReport, root: &std::path::Path) -> Result<(), CliError> {
    let out = &ctx.out;
    let file = shown(&report.path, root);
    let Some(stamp) = &report.stamp else {
        out.note(&format!(
            "dry run: would write {file} (revision {}, revises {})",
            report.revision, report.down_revision
        ));
        return out.line(report.source.trim_end());
    };
    if let StampOutcome::Refused { drift } = &stamp.outcome {
        out.line(&format!(
            "the database does not match revision {} as replayed; {file} was removed again:",
            report.revision
        ))?;
        for line in drift_lines(out, drift, "    ") {
            out.line(&line)?;
        }
        return Ok(());
    }
    out.line(&format!(
        "wrote {file}: revision {} (revises {}), adopting {} object(s):",
        report.revision,
        report.down_revision,
        report
            .adopted
            .changes
            .iter()
            .filter(|c| c.op == Op::Added)
            .count()
    ))?;
    for line in drift_lines(out, &report.adopted, "    ") {
        out.line(&line)?;
    }
    out.line(&format!(
        "stamped {} as {} (schema verified)",
        report.database.display(),
        report.revision
    ))?;
    if let StampOutcome::Stamped {
        safety_snapshot: safety,
        ..
    } = &stamp.outcome
    {
        out.line(&format!(
            "safety snapshot: {safety}  (undo: migsnap restore {safety:.12}, then delete {file})"
        ))?;
    }
    Ok(())
}

/// `adopt --from-models --tables …`: the models' declarations for those
/// tables as a new revision, verified by replaying it.
fn from_models(args: AdoptArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, None, &args.project)?;
    let request = ModelsAdoptRequest {
        tables: &args.tables,
        message: &args.message,
        dry_run: args.dry_run,
    };
    let root = opened.repo.root().to_path_buf();
    let report = adopt::adopt_models(
        &mut opened.repo,
        &opened.project,
        &opened.graph,
        &opened.chain,
        &request,
        &mut replay_progress(ctx),
    )
    .map_err(|e| match e {
        AdoptError::Reference { head, failure } => reference_error(&failure, &[head], &root),
        e => e.into(),
    })?;
    if ctx.out.is_json() {
        ctx.out.json(&report)?;
        return Ok(Status::Ok);
    }
    let out = &ctx.out;
    let file = shown(&report.path, &root);
    if !report.written {
        out.note(&format!(
            "dry run: would write {file} (revision {}, revises {})",
            report.revision, report.down_revision
        ));
        out.line(report.source.trim_end())?;
    } else {
        out.line(&format!(
            "wrote {file}: revision {} (revises {}), from the models of {}:",
            report.revision,
            report.down_revision,
            report.tables.join(", ")
        ))?;
        for line in drift_lines(out, &report.adopted, "    ") {
            out.line(&line)?;
        }
        out.line(
            "replayed with Alembic: it makes exactly that; `migsnap fix --apply` (or `alembic upgrade head`) applies it to a database",
        )?;
    }
    if !report.not_changed.is_empty() {
        out.line(&format!(
            "left as the migrations make them (the models declare them otherwise or not at all): {}",
            report.not_changed.join(", ")
        ))?;
    }
    Ok(Status::Ok)
}
