//! `migsnap repair`: plan, and on request apply, the SQL that brings the
//! live schema to the reference schema of its revision.

use super::migrations::{self, reference_error, replay_progress};
use super::output::drift_lines;
use super::verdict::finding_line;
use super::{CliError, Ctx, Status};
use crate::migrations::drift::LiveDatabase;
use crate::migrations::repair::{self, RepairError, RepairReport, RepairRequest};
use crate::policy::Ask;

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
    let live = LiveDatabase::capture(&path, ctx.busy_timeout)?;
    let named = if args.to.is_empty() {
        None
    } else {
        Some(migrations::targets(
            &opened,
            &args.to,
            None,
            "repair towards",
            "--to",
        )?)
    };
    let root = opened.repo.root().to_path_buf();
    let (repo, replayer, _) = opened.parts();
    let (targets, inferred) = match named {
        Some(named) => (named, false),
        None => repair::recorded_targets(repo, &replayer, &live, &mut replay_progress(ctx))?,
    };
    let request = RepairRequest {
        targets: &targets,
        inferred,
        apply: args.apply,
        allow_destructive: args.allow_destructive,
        force: args.force,
        busy_timeout: ctx.busy_timeout,
    };
    let mut report = repair::repair(
        &mut *repo,
        &replayer,
        &live,
        &request,
        &mut replay_progress(ctx),
        ctx.out.progress().as_mut(),
    )
    .map_err(|e| match e {
        RepairError::Reference { targets, failure } => reference_error(&failure, &targets, &root),
        e @ RepairError::Destructive { .. } => CliError::from(e)
            .hint("review them with `migsnap repair` (dry run), then pass --allow-destructive"),
        e => e.into(),
    })?;
    // The warnings answer to `[findings]` like every command's findings;
    // they never decide the exit code, which says whether the repair
    // settled.
    let findings = std::mem::take(&mut report.findings);
    report.findings = repo.findings().judge(findings, Ask::default()).findings;
    ctx.tracked_note(report.newly_tracked.as_ref());
    let status = if report.settled() {
        Status::Ok
    } else {
        Status::Problems
    };
    if ctx.out.is_json() {
        ctx.out.json(&report)?;
    } else {
        render(ctx, &report)?;
    }
    Ok(status)
}

/// The report as text: the plan of a dry run, what is kept, the warnings
/// (revisions skipped that move rows), and what an application did.
fn render(ctx: &Ctx, report: &RepairReport) -> Result<(), CliError> {
    let out = &ctx.out;
    let path = report.database.display();
    let planned = &report.planned;
    let towards = report.targets.join(" + ");
    if report.inferred {
        out.line(&format!(
            "the stamped revision is unknown; compared with the nearest revision, {towards} \
             (a plan to review: it applies only with --to {})",
            report.targets.join(" --to ")
        ))?;
    }
    if planned.plan.is_empty() && planned.kept.is_empty() {
        out.line(&format!("{path} already has the schema of {towards}"))?;
    } else if planned.plan.is_empty() {
        out.line(&format!(
            "{path} has everything of {towards}; nothing to add or change"
        ))?;
    } else if !report.applied {
        out.line(&format!(
            "-- repair of {path} towards {towards} (dry run; --apply to run it)"
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
    if planned.destructive && !report.applied {
        out.line(
            "warning: steps marked DESTRUCTIVE can lose data; --apply needs --allow-destructive",
        )?;
    }
    for finding in &report.findings {
        out.line(&format!(
            "{}: {}",
            finding.severity.as_str(),
            finding_line(finding)
        ))?;
    }
    if let (Some(safety), Some(after)) = (report.safety_snapshot, report.after_snapshot) {
        let count = planned.plan.statement_count();
        out.line(&format!(
            "repaired {path} towards {towards}: {count} statement{} applied and verified",
            if count == 1 { "" } else { "s" }
        ))?;
        out.line(&format!(
            "safety snapshot: {safety}  (undo: migsnap restore {safety:.12})"
        ))?;
        out.line(&format!("after:           {after:.12}"))?;
    }
    Ok(())
}
