//! `migsnap guard -- CMD…`: snapshot, run a risky command (`alembic upgrade
//! head`), and say what it did, how to undo it, or undo it. The judgement
//! is [`crate::migrations::guard`]'s; this file parses and renders.

use std::path::Path;

use migsnap_store::ObjectId;
use serde::Serialize;

use super::migrations::{self, replay_progress};
use super::output::{diff_lines, drift_lines};
use super::verdict::{self, finding_line};
use super::{CliError, Ctx, Status};
use crate::finding::Severity;
use crate::migrations::drift;
use crate::migrations::guard::{
    self, Check, DriftJudgement, GuardError, GuardEvent, GuardOptions, GuardReport, Versions, codes,
};
use crate::migrations::history::revision_id::RevisionId;
use crate::policy::Verdict;
use crate::repo::Tracked;
use crate::schema::diff::SchemaDiff;

/// The JSON of `guard`: the engine's report with the verdict in place of
/// its findings (the report's own `findings` would be a second key).
#[derive(Serialize)]
struct GuardDocument<'a> {
    database: &'a Path,
    command: &'a [String],
    exit_code: Option<i32>,
    signal: Option<i32>,
    before: ObjectId,
    after: ObjectId,
    changed: bool,
    alembic_version: &'a Versions,
    schema_changes: &'a SchemaDiff,
    drift: Option<&'a DriftJudgement>,
    status: Option<&'a drift::StatusReport>,
    failed: bool,
    restored: bool,
    failed_state_snapshot: Option<ObjectId>,
    /// `findings` (the counting ones), `ignored`, `fail_on`, `strict`,
    /// `clean`.
    #[serde(flatten)]
    verdict: &'a Verdict,
}

impl<'a> GuardDocument<'a> {
    /// The document of `report` judged as `verdict`.
    fn new(report: &'a GuardReport, verdict: &'a Verdict) -> Self {
        GuardDocument {
            database: &report.database,
            command: &report.command,
            exit_code: report.exit_code,
            signal: report.signal,
            before: report.before,
            after: report.after,
            changed: report.changed,
            alembic_version: &report.alembic_version,
            schema_changes: &report.schema_changes,
            drift: report.drift.as_ref(),
            status: report.status.as_ref(),
            failed: report.failed,
            restored: report.restored,
            failed_state_snapshot: report.failed_state_snapshot,
            verdict,
        }
    }
}

/// Snapshot the database, run CMD, then judge what CMD did: its exit, the
/// version rows and schema before and after, and drift it introduced,
/// fixed or left as it was. Says how to undo a change, or undoes a failed
/// one with --restore-on-failure.
#[derive(Debug, clap::Args)]
pub struct GuardArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// The database: a tracked name or a path.
    db: Option<String>,
    /// Put the snapshot back when CMD exits non-zero or introduces drift
    /// (never for drift that was there before).
    #[arg(long)]
    restore_on_failure: bool,
    #[command(flatten)]
    verdict: verdict::VerdictArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

pub fn run(args: GuardArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut own_repo = ctx.open_repo()?;
    let tracked = ctx.select_db(&mut own_repo, args.db.as_deref())?;
    // Without a migration project there is nothing to judge drift by; the
    // snapshot, the exit and the way back still stand.
    let mut opened = match migrations::open(ctx, Some(&tracked.name), &args.project) {
        Ok(opened) => Some(opened),
        Err(e) => {
            ctx.out.note(&format!("no drift judgement: {}", e.message));
            None
        }
    };
    let options = GuardOptions {
        restore_on_failure: args.restore_on_failure,
        cwd: ctx.cwd.clone(),
        busy_timeout: ctx.busy_timeout,
        migrations: opened
            .as_ref()
            .map(|o| std::sync::Arc::new(o.graph.clone())),
        stdout_to_stderr: ctx.out.is_json(),
    };
    let ctx: &Ctx = ctx;
    let shown = shell_words::join(&args.command);
    let mut replay = replay_progress(ctx);
    let mut on_event = |event: GuardEvent<'_>| match event {
        GuardEvent::Running { before } => ctx
            .out
            .note(&format!("snapshot {before:.12} taken; running `{shown}`")),
        GuardEvent::Replay(event) => replay(event),
    };
    let mut progress = ctx.out.progress();
    let report = match &mut opened {
        Some(opened) => {
            let (repo, replayer, graph) = opened.parts();
            let check = Check {
                replayer: &replayer,
                graph,
            };
            guard::guard(
                repo,
                &tracked,
                Some(check),
                &args.command,
                &options,
                progress.as_mut(),
                &mut on_event,
            )
        }
        None => guard::guard(
            &mut own_repo,
            &tracked,
            None,
            &args.command,
            &options,
            progress.as_mut(),
            &mut on_event,
        ),
    }
    .map_err(|e| error(e, &tracked))?;

    // The restore was decided by the engine from what the command did
    // (its exit, new drift); the exit code is the shared verdict.
    let mut report = report;
    let judged = args
        .verdict
        .judge(own_repo.findings(), std::mem::take(&mut report.findings));
    let status = verdict::status(&judged);
    if ctx.out.is_json() {
        ctx.out.json(&GuardDocument::new(&report, &judged))?;
        return Ok(status);
    }
    render(ctx, &report, &judged, &tracked)?;
    ctx.out.verdict(&judged.summary())?;
    Ok(status)
}

/// A library error as a CLI error; one after the command ran says how to
/// undo it.
fn error(e: GuardError, tracked: &Tracked) -> CliError {
    match e {
        GuardError::AfterCommand { before, source } => error(*source, tracked).hint(format!(
            "to undo the command: migsnap restore {before:.12} {}",
            tracked.name
        )),
        other => other.into(),
    }
}

fn render(
    ctx: &Ctx,
    report: &GuardReport,
    judged: &Verdict,
    tracked: &Tracked,
) -> Result<(), CliError> {
    let out = &ctx.out;
    let command = shell_words::join(&report.command);
    match (report.exit_code, report.signal) {
        (Some(0), _) => out.line(&format!("`{command}` succeeded"))?,
        (Some(code), _) => out.line(&format!("`{command}` FAILED with exit code {code}"))?,
        (None, Some(signal)) => out.line(&format!("`{command}` was killed by signal {signal}"))?,
        (None, None) => out.line(&format!("`{command}` ended abnormally"))?,
    }
    let rows = |rows: &Option<Vec<RevisionId>>| match rows {
        None => "(no alembic_version table)".to_owned(),
        Some(rows) if rows.is_empty() => "(empty)".to_owned(),
        Some(rows) => rows.join(", "),
    };
    let versions = &report.alembic_version;
    if versions.before == versions.after {
        out.line(&format!("version: {} (unchanged)", rows(&versions.after)))?;
    } else {
        out.line(&format!(
            "version: {} → {}",
            rows(&versions.before),
            rows(&versions.after)
        ))?;
    }
    if report.schema_changes.is_empty() {
        out.line(&format!(
            "the schema did not change{}",
            if report.changed {
                ""
            } else {
                "; nothing changed (version rows and data are as before)"
            }
        ))?;
    } else {
        out.line("schema changes made by the command:")?;
        for line in diff_lines(out, &report.schema_changes, "    ") {
            out.line(&line)?;
        }
    }
    if let Some(judged) = &report.drift {
        let sections = [
            (
                &judged.introduced,
                "NEW drift from the reference (the command's doing):",
            ),
            (&judged.fixed, "drift the command fixed:"),
            (
                &judged.preexisting,
                "drift that was there before (unchanged, not the command's doing):",
            ),
        ];
        for (drift, heading) in sections {
            if !drift.is_empty() {
                out.line(heading)?;
                for line in drift_lines(out, drift, "    ") {
                    out.line(&line)?;
                }
            }
        }
    }
    // The exit and the drift findings repeat the lines above in words; what
    // the status after the command newly found follows.
    for finding in judged.findings.iter().filter(|f| {
        f.severity >= Severity::Warning
            && ![
                codes::COMMAND_FAILED,
                codes::NEW_DRIFT,
                codes::PREEXISTING_DRIFT,
            ]
            .contains(&f.code)
    }) {
        out.line(&format!(
            "{}: {}",
            finding.severity.as_str(),
            finding_line(finding)
        ))?;
    }
    let before = report.before;
    if report.restored {
        out.line(&format!(
            "restored {} to snapshot {before:.12}{}",
            report.database.display(),
            report
                .failed_state_snapshot
                .map(|s| format!("; the failed state is kept as {s:.12}"))
                .unwrap_or_default()
        ))?;
    } else if report.changed {
        out.line(&format!(
            "to undo: migsnap restore {before:.12} {}",
            tracked.name
        ))?;
    }
    Ok(())
}
