//! `migsnap fix`: the fix a careful person would choose, with the reason
//! and the exact steps; run with `--apply`.

use serde::Serialize;

use super::migrations::{self, replay_progress, shown};
use super::output::{Output, Paint, drift_lines};
use super::verdict;
use super::{CliError, Ctx, Status};
use crate::migrations::drift::LiveDatabase;
use crate::migrations::fix::{self, FixOptions, FixPlan, FixReport, FixStep};
use crate::policy::Verdict;

/// Work out the fix for a database that has drifted from its migration
/// history (which revision its schema really is, what is missing or extra),
/// say why, and show the steps; `--apply` runs them, a safety snapshot
/// first, each step verified, everything restored if one fails.
#[derive(Debug, clap::Args)]
pub struct FixArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// The database: a tracked name or a path (default: the only tracked
    /// one, or the SQLite file the Alembic configuration names).
    db: Option<String>,
    /// Run the steps.
    #[arg(long)]
    apply: bool,
    /// For extra objects: take this way out instead of the recommended one
    /// (`adopt`, `accept` or `drop`).
    #[arg(long, value_name = "OPTION")]
    choose: Option<String>,
    /// Allow a step that loses data (dropping extra objects).
    #[arg(long)]
    allow_destructive: bool,
    /// Write even though other processes have the database open.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    verdict: verdict::VerdictArgs,
}

/// `fix --format json` without `--apply`: the plan and the verdict.
#[derive(Serialize)]
struct PlanDocument<'a> {
    #[serde(flatten)]
    plan: &'a FixPlan,
    commands: Vec<String>,
    #[serde(flatten)]
    verdict: &'a Verdict,
}

/// `fix --apply --format json`: what ran, and the verdict on the plan.
#[derive(Serialize)]
struct ApplyDocument<'a> {
    #[serde(flatten)]
    report: &'a FixReport,
    commands: Vec<String>,
}

pub fn run(args: FixArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, args.db.as_deref(), &args.project)?;
    let path = opened.database(args.db.as_deref())?;
    let live = LiveDatabase::capture(&path, ctx.busy_timeout)?;
    let root = opened.repo.root().to_path_buf();
    let (repo, replayer, graph) = opened.parts();
    let plan = fix::plan(
        &mut *repo,
        &replayer,
        graph,
        &live,
        ctx.busy_timeout,
        &mut replay_progress(ctx),
    )?;
    let db = shown(&path, &root);
    let commands: Vec<String> = plan.steps.iter().map(|s| command(s, &db)).collect();
    if !args.apply {
        let verdict = args.verdict.judge(repo.findings(), plan.findings.clone());
        if ctx.out.is_json() {
            ctx.out.json(&PlanDocument {
                plan: &plan,
                commands,
                verdict: &verdict,
            })?;
        } else {
            render_plan(&ctx.out, &plan, &db)?;
            if !plan.steps.is_empty() {
                ctx.out.line(&format!(
                    "dry run: `migsnap fix --apply{}` runs it (a safety snapshot first)",
                    if plan.steps.iter().any(FixStep::destructive) {
                        " --allow-destructive"
                    } else {
                        ""
                    }
                ))?;
            }
            verdict::render(ctx, &verdict, &root)?;
        }
        return Ok(verdict::status(&verdict));
    }
    let options = FixOptions {
        option: args.choose,
        allow_destructive: args.allow_destructive,
        force: args.force,
        busy_timeout: ctx.busy_timeout,
    };
    let report = fix::apply(
        repo,
        &replayer,
        graph,
        plan,
        &options,
        &mut replay_progress(ctx),
        ctx.out.progress().as_mut(),
    )?;
    let commands = report
        .applied
        .iter()
        .map(|a| command(&a.step, &db))
        .collect();
    if ctx.out.is_json() {
        ctx.out.json(&ApplyDocument {
            report: &report,
            commands,
        })?;
    } else {
        render_applied(&ctx.out, &report, &db)?;
    }
    Ok(if report.fixed {
        Status::Ok
    } else {
        Status::Problems
    })
}

/// The command a person would type for `step` on the database `db`.
pub fn command(step: &FixStep, db: &str) -> String {
    match step {
        FixStep::Stamp { revisions } => {
            format!("migsnap stamp --verify {db} {}", revisions.join(" "))
        }
        FixStep::Upgrade => "alembic upgrade heads".to_owned(),
        FixStep::Repair { towards } => format!(
            "migsnap repair --apply {db} --to {}",
            towards.join(" --to ")
        ),
        FixStep::Accept { revisions } => format!(
            "migsnap accept --yes {db} --revision {}",
            revisions.join(" --revision ")
        ),
        FixStep::Adopt { message, .. } => format!("migsnap adopt {db} -m {message:?}"),
        FixStep::AdoptModels { tables, message } => format!(
            "migsnap adopt --from-models --tables {} -m {message:?}",
            tables.join(",")
        ),
        FixStep::Drop { towards, .. } => format!(
            "migsnap repair --apply --allow-destructive {db} --to {}",
            towards.join(" --to ")
        ),
    }
}

/// The plan as text: the state, why, the steps and the other options.
fn render_plan(out: &Output, plan: &FixPlan, db: &str) -> Result<(), CliError> {
    out.line(&format!("database:   {db}"))?;
    let class = plan.class.name();
    let painted = if plan.healthy() {
        out.paint(Paint::Good, class)
    } else {
        out.paint(Paint::Bad, class)
    };
    out.line(&format!("state:      {painted}"))?;
    out.line(&format!("why:        {}", plan.reason))?;
    if !plan.drift.is_empty() {
        out.line("differences:")?;
        for line in drift_lines(out, &plan.drift, "    ") {
            out.line(&line)?;
        }
    }
    if !plan.steps.is_empty() {
        out.line("fix:")?;
        for (n, step) in plan.steps.iter().enumerate() {
            out.line(&format!("  {}. {}", n + 1, command(step, db)))?;
        }
    }
    if !plan.options.is_empty() {
        out.line("ways out of the extra objects:")?;
        for (n, option) in plan.options.iter().enumerate() {
            let mark = if n == 0 { " (recommended)" } else { "" };
            out.line(&format!("  {}{mark}: {}", option.name, option.why))?;
        }
    }
    Ok(())
}

/// What `--apply` did, step by step, and how it ended.
fn render_applied(out: &Output, report: &FixReport, db: &str) -> Result<(), CliError> {
    out.line(&format!("why:        {}", report.plan.reason))?;
    for applied in &report.applied {
        let mark = if applied.ok {
            out.paint(Paint::Good, "ok")
        } else {
            out.paint(Paint::Bad, "FAILED")
        };
        out.line(&format!(
            "  {mark} {}: {}",
            applied.step.name(),
            applied.detail
        ))?;
    }
    if report.fixed && report.applied.is_empty() {
        out.line("nothing to fix")?;
    } else if report.fixed {
        let safety = report
            .safety_snapshot
            .map(|id| format!("{id:.12}"))
            .unwrap_or_default();
        out.verdict(&format!(
            "fixed; safety snapshot {safety} (`migsnap restore {safety}` undoes it)"
        ))?;
    } else if report.replaced {
        let retry = report
            .applied
            .iter()
            .find(|a| !a.ok)
            .map(|a| command(&a.step, db))
            .unwrap_or_default();
        out.verdict(&format!(
            "FAIL: the database is fixed, but its extra objects were not settled; `{retry}` does that"
        ))?;
    } else {
        if let Some(why) = &report.unhealthy {
            out.line(&format!(
                "  {} the result: {why}",
                out.paint(Paint::Bad, "FAILED")
            ))?;
        }
        out.verdict("FAIL: not fixed; the steps ran on a copy, and the database is unchanged")?;
    }
    Ok(())
}
