//! `migsnap test`: the up/down/up round trip of every revision, with the
//! object-level difference when a downgrade does not undo its upgrade.

use serde::Serialize;

use super::migrations::{self, shown};
use super::{CliError, Ctx, Status, verdict};
use crate::migrations::roundtrip::{RevisionOutcome, RoundTrip};
use crate::policy::Verdict;

/// Check that every revision's downgrade undoes its upgrade exactly: upgrade
/// it, downgrade it one step (the schema must be the one before), upgrade it
/// again (the schema must be the one after). Runs on scratch databases.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// Test only the revisions that upgrading to REV does not apply.
    #[arg(long, value_name = "REV")]
    since: Option<String>,
    /// Whose migration settings to use: a tracked database name or path,
    /// given like every other command's database.
    db: Option<String>,
    /// The same as DB (the form earlier versions took).
    #[arg(long = "db", value_name = "DB", conflicts_with = "db", hide = true)]
    db_flag: Option<String>,
    #[command(flatten)]
    verdict: verdict::VerdictArgs,
}

/// The JSON of `test`: the round trip's report with the verdict in place of
/// its findings.
#[derive(Serialize)]
struct TestDocument<'a> {
    revisions: &'a [RevisionOutcome],
    failures: usize,
    /// `findings` (the counting ones), `ignored`, `fail_on`, `strict`,
    /// `clean`.
    #[serde(flatten)]
    verdict: &'a Verdict,
}

pub fn run(args: TestArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let opened = migrations::open(ctx, args.db.or(args.db_flag).as_deref(), &args.project)?;
    let trip = RoundTrip::new(
        &opened.project,
        &opened.graph,
        opened.chain.clone(),
        ctx.busy_timeout,
    );
    let revisions = trip.revisions(args.since.as_deref())?;
    let out = &ctx.out;
    let root = opened.repo.root();
    let mut on_testing = |revision: &str| out.step(&format!("testing {revision} …"));
    let mut report = trip.run(&opened.repo, &revisions, &mut on_testing)?;
    let judged = args
        .verdict
        .judge(opened.repo.findings(), std::mem::take(&mut report.findings));
    let status = verdict::status(&judged);
    if out.is_json() {
        out.json(&TestDocument {
            revisions: &report.revisions,
            failures: report.failures,
            verdict: &judged,
        })?;
        return Ok(status);
    }
    for outcome in &report.revisions {
        for line in outcome_lines(ctx, outcome, root) {
            ctx.out.line(&line)?;
        }
    }
    let first = report.revisions.iter().find(|r| !r.ok);
    ctx.out.line(&match first {
        None => format!("{} revisions round-trip", report.revisions.len()),
        Some(first) => format!(
            "{} of {} revisions fail the round trip; the first is {}",
            report.failures,
            report.revisions.len(),
            first.revision
        ),
    })?;
    ctx.out.verdict(&judged.summary())?;
    Ok(status)
}

/// One line for the revision, then for a failure the difference (as the
/// database after the step against what it should be) or the error.
fn outcome_lines(ctx: &Ctx, outcome: &RevisionOutcome, root: &std::path::Path) -> Vec<String> {
    let out = &ctx.out;
    let file = shown(&outcome.file, root);
    let mut lines = vec![match outcome.step {
        None => format!(
            "{} {:<14} {file}",
            out.paint(super::output::Paint::Good, "ok    "),
            outcome.revision
        ),
        Some(step) => format!(
            "{} {:<14} {file}: {}",
            out.paint(super::output::Paint::Bad, "FAILED"),
            outcome.revision,
            step.name()
        ),
    }];
    // Differences of form are not failures, but a person may care.
    for form in &outcome.form {
        lines.push(format!(
            "    {} in form only (not a failure):",
            form.step.name()
        ));
        lines.extend(super::output::drift_lines(out, &form.difference, "      "));
    }
    if let Some(difference) = &outcome.difference {
        lines.extend(super::output::drift_lines(out, difference, "    "));
    }
    if let Some(failure) = &outcome.error {
        let culprit = failure
            .file
            .as_ref()
            .filter(|f| **f != outcome.file)
            .map(|f| format!(" ({})", shown(f, root)))
            .unwrap_or_default();
        lines.push(format!("    {}{culprit}", failure.error));
        let detail = failure.detail.trim_end();
        lines.extend(detail.lines().map(|l| format!("        {l}")));
    }
    lines
}
