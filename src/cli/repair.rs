//! `migsnap repair`: plan, and on request apply, the SQL that brings the
//! live schema to the reference schema of its revision.

use super::migrations::{self, reference_error, replay_progress};
use super::output::drift_lines;
use super::{CliError, Ctx, ErrorKind, Status};
use crate::drift::{self, Live};
use crate::repair;
use crate::replay::Replayer;
use crate::restore::{self, RestoreOptions};
use crate::snapshot::{self, SnapshotOptions, SnapshotOutcome};

/// Plan the SQL that brings the database's schema to the reference schema
/// of its stamped revision (or --to); a dry run unless --apply.
#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// The database: a tracked name or a path.
    db: Option<String>,
    /// The revision(s) to repair towards: an id, label, `head` or `heads`
    /// (default: the revisions alembic_version records).
    #[arg(long = "to", value_name = "REV")]
    to: Vec<String>,
    /// Apply the plan: safety snapshot first, then one transaction on a
    /// copy, verified against the reference, then an atomic rename.
    #[arg(long)]
    apply: bool,
    /// Also drop what the reference lacks (extra tables, columns, indexes,
    /// views, triggers), and allow steps that can lose data.
    #[arg(long)]
    allow_destructive: bool,
    /// Apply even though other processes have the database open.
    #[arg(long)]
    force: bool,
}

pub fn run(args: RepairArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, args.db.as_deref(), &args.project)?;
    let path = opened.database(args.db.as_deref())?;
    let live = Live::capture(&path, ctx.busy_timeout)?;
    let stamped = drift::stamped(opened.project.kind, &live.meta, &opened.graph);
    let targets = opened.targets(&args.to, stamped, "repair towards")?;
    let replayer = Replayer::new(&opened.project, &opened.graph, opened.chain.clone());
    let (reference, report) =
        replayer.reference(&mut opened.repo, &targets, &mut replay_progress(ctx))?;
    let Some(reference) = reference else {
        let failure = report
            .failure
            .expect("holds: no reference means a failed step");
        return Err(reference_error(&failure, &targets, opened.repo.root()));
    };
    let reference_schema = reference.schema(&opened.repo)?;
    let planned = repair::plan(&live.schema, &reference_schema, args.allow_destructive);

    let mut applied = None;
    if args.apply && !planned.plan.is_empty() {
        if planned.destructive && !args.allow_destructive {
            return Err(CliError::new(
                ErrorKind::Refused,
                format!(
                    "the repair of {} has steps that can lose data; nothing was changed",
                    path.display()
                ),
            )
            .hint("review them with `migsnap repair` (dry run), then pass --allow-destructive"));
        }
        let tracked = ctx.select_db(&mut opened.repo, Some(&path.display().to_string()))?;
        let options = RestoreOptions {
            force: args.force,
            message: format!("before repair towards {}", targets.join(" + ")),
            busy_timeout: ctx.busy_timeout,
            ..RestoreOptions::default()
        };
        let (written, ()) = restore::rewrite(
            &mut opened.repo,
            &tracked,
            &options,
            ctx.out.progress().as_mut(),
            |copy| repair::apply(copy, &planned.plan, &planned.target).map_err(CliError::from),
        )?;
        let after = snapshot::take(
            &mut opened.repo,
            &tracked,
            &SnapshotOptions {
                message: format!("repaired towards {}", targets.join(" + ")),
                busy_timeout: ctx.busy_timeout,
                ..SnapshotOptions::default()
            },
            ctx.out.progress().as_mut(),
        )?;
        let after = match after {
            SnapshotOutcome::Recorded { id, .. } | SnapshotOutcome::Unchanged { head: id } => id,
        };
        applied = Some((
            written.safety.expect("holds: rewrite always takes one"),
            after,
        ));
    }

    let status = if planned.plan.is_empty() || applied.is_some() {
        Status::Ok
    } else {
        Status::Problems
    };
    if ctx.out.is_json() {
        ctx.out.json(&serde_json::json!({
            "database": path,
            "targets": targets,
            "reference": reference.id,
            "plan": planned.plan,
            "kept": planned.kept,
            "destructive": planned.destructive,
            "applied": applied.is_some(),
            "safety_snapshot": applied.map(|(s, _)| s),
            "after_snapshot": applied.map(|(_, a)| a),
        }))?;
        return Ok(status);
    }
    let out = &ctx.out;
    let towards = targets.join(" + ");
    if planned.plan.is_empty() && planned.kept.is_empty() {
        out.line(&format!(
            "{} already has the schema of {towards}",
            path.display()
        ))?;
    } else if planned.plan.is_empty() {
        out.line(&format!(
            "{} has everything of {towards}; nothing to add or change",
            path.display()
        ))?;
    } else if applied.is_none() {
        out.line(&format!(
            "-- repair of {} towards {towards} (dry run; --apply to run it)",
            path.display()
        ))?;
        out.line(planned.plan.to_script().trim_end())?;
    }
    if !planned.kept.is_empty() {
        out.line(&format!(
            "kept {} object(s) the reference of {towards} lacks (--allow-destructive drops them):",
            planned.kept.changes.len()
        ))?;
        for line in drift_lines(out, &planned.kept, "    ") {
            out.line(&line)?;
        }
    }
    if planned.destructive && applied.is_none() {
        out.line(
            "warning: steps marked DESTRUCTIVE can lose data; --apply needs --allow-destructive",
        )?;
    }
    if let Some((safety, after)) = applied {
        let count = planned.plan.statement_count();
        out.line(&format!(
            "repaired {} towards {towards}: {count} statement{} applied and verified",
            path.display(),
            if count == 1 { "" } else { "s" }
        ))?;
        out.line(&format!(
            "safety snapshot: {safety}  (undo: migsnap restore {safety:.12})"
        ))?;
        out.line(&format!("after:           {after:.12}"))?;
    }
    Ok(status)
}
