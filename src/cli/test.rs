//! `migsnap test`: the up/down/up round trip of every revision, with the
//! object-level difference when a downgrade does not undo its upgrade; with
//! `--data`, of the pending revisions on a copy of a real database.

use serde::Serialize;

use super::migrations::{self, shown};
use super::output::plural;
use super::{CliError, Ctx, ErrorKind, Status, verdict};
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::roundtrip::data::{DataOutcome, DataReport};
use crate::migrations::roundtrip::{RevisionOutcome, RoundTrip};
use crate::migrations::side::Side;
use crate::policy::Verdict;
use crate::snapshots::revspec;

/// Check that every revision's downgrade undoes its upgrade exactly: upgrade
/// it, downgrade it one step (the schema must be the one before), upgrade it
/// again (the schema must be the one after). Runs on scratch databases.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// Test only the revisions that upgrading to REV does not apply.
    #[arg(long, value_name = "REV", conflicts_with = "data")]
    since: Option<String>,
    /// Test the revisions a real database has not applied yet, on a scratch
    /// copy of it, comparing its rows as well: a database file (`live`, a
    /// tracked name or a path) or a snapshot (hash prefix, tag, HEAD~N).
    /// The database itself is only read.
    #[arg(long, value_name = "REV|DB")]
    data: Option<String>,
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

/// The JSON of `test --data`: the report with the verdict in place of its
/// findings.
#[derive(Serialize)]
struct DataDocument<'a> {
    source: &'a str,
    stamped: &'a [RevisionId],
    revisions: &'a [DataOutcome],
    untested: &'a [RevisionId],
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
    if let Some(spec) = &args.data {
        let source = data_source(&opened, spec)?;
        let out = &ctx.out;
        let mut on_testing =
            |revision: &str| out.step(&format!("testing {revision} on the data …"));
        let report = trip.run_on_data(&opened.repo, &source, &mut on_testing)?;
        return render_data(ctx, &opened, report, args.verdict);
    }
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

/// What `--data SPEC` names: an existing file (as given), `live` or a
/// tracked database's name (its live file), else a snapshot.
fn data_source(opened: &migrations::Workspace, spec: &str) -> Result<Side, CliError> {
    let path = std::path::Path::new(spec);
    if path.is_file() {
        return Ok(Side::File {
            label: spec.to_owned(),
            path: path.to_path_buf(),
        });
    }
    let tracked = opened.tracked.as_ref();
    if spec == "live" || opened.repo.database(spec).is_some() {
        return Ok(Side::resolve(
            &opened.repo,
            spec,
            tracked.map(|t| t.name.as_str()),
        )?);
    }
    let id = revspec::resolve(&opened.repo, spec, tracked).map_err(|e| {
        CliError::new(
            ErrorKind::Input,
            format!("--data {spec}: no such file, and not a snapshot ({e})"),
        )
        .hint("give a database file, `live`, a tracked database's name, or a snapshot (`migsnap log` lists them)")
    })?;
    Ok(Side::snapshot(&opened.repo, id)?)
}

/// Prints the report of `test --data` (JSON, or a line per revision with
/// what went wrong under a failure) and gives the verdict's status.
fn render_data(
    ctx: &mut Ctx,
    opened: &migrations::Workspace,
    mut report: DataReport,
    verdict: verdict::VerdictArgs,
) -> Result<Status, CliError> {
    let judged = verdict.judge(opened.repo.findings(), std::mem::take(&mut report.findings));
    let status = verdict::status(&judged);
    let out = &ctx.out;
    if out.is_json() {
        out.json(&DataDocument {
            source: &report.source,
            stamped: &report.stamped,
            revisions: &report.revisions,
            untested: &report.untested,
            failures: report.failures,
            verdict: &judged,
        })?;
        return Ok(status);
    }
    let at = match report.stamped.as_slice() {
        [] => "base".to_owned(),
        rows => rows.join(", "),
    };
    let tested = report.revisions.len() + report.untested.len();
    out.line(&format!(
        "on a copy of {} (at {at}): {tested} pending revision{}",
        report.source,
        plural(tested)
    ))?;
    for outcome in &report.revisions {
        for line in data_outcome_lines(ctx, outcome, opened.repo.root()) {
            ctx.out.line(&line)?;
        }
    }
    let summary = match report.revisions.iter().find(|r| !r.round_trip.ok) {
        None if tested == 0 => "nothing pending: the database is at the heads".to_owned(),
        None => format!(
            "{tested} pending revision{} round-trip{} on the data of {}",
            plural(tested),
            if tested == 1 { "s" } else { "" },
            report.source
        ),
        Some(first) => {
            let untested = match report.untested.len() {
                0 => String::new(),
                n => format!("; {n} pending revision{} after it not tested", plural(n)),
            };
            format!(
                "{} fails the round trip on the data of {}{untested}",
                first.round_trip.revision, report.source
            )
        }
    };
    ctx.out.line(&summary)?;
    ctx.out.verdict(&judged.summary())?;
    Ok(status)
}

/// A revision's lines as on empty databases, then what a failed upgrade
/// left behind and the tables whose rows are wrong.
fn data_outcome_lines(ctx: &Ctx, outcome: &DataOutcome, root: &std::path::Path) -> Vec<String> {
    let mut lines = outcome_lines(ctx, &outcome.round_trip, root);
    if let Some(left) = &outcome.left {
        lines.push("    the failed upgrade left:".to_owned());
        lines.extend(super::output::drift_lines(&ctx.out, left, "      "));
    }
    lines.extend(outcome.data.iter().map(|d| format!("    {}", d.describe())));
    lines
}
