//! `migsnap status`: is the database where its migration history says it
//! is? The command a person runs first.

use std::path::Path;

use serde::Serialize;

use super::migrations::{self, failure_lines, replay_progress, shown};
use super::output::drift_lines;
use super::{CliError, Ctx, Status, verdict};
use crate::migrations::drift::{self, Comparison, LiveDatabase};
use crate::migrations::history::position::Position;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::models::{self, ModelsComparison};
use crate::migrations::replay::ReplayFailure;
use crate::migrations::workspace::ProjectSummary;
use crate::policy::Verdict;
use crate::snapshots::log::{self, SinceSnapshot};

/// Show where a database stands against its migrations: version rows,
/// pending revisions, drift from the reference schema, artefacts.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    #[command(flatten)]
    verdict: verdict::VerdictArgs,
    /// The database: a tracked name or a path (default: the only tracked
    /// one, or the SQLite file the Alembic configuration names).
    db: Option<String>,
}

/// The JSON of `migsnap status`: the engine's status (its findings judged
/// into the verdict's), the project, and the changes since the last
/// snapshot.
#[derive(Serialize)]
struct StatusDocument<'a> {
    database: &'a Path,
    rows: Option<&'a [RevisionId]>,
    position: &'a Position,
    class: &'static str,
    /// See [`drift::StatusReport::schema_matches`].
    schema_matches: Option<bool>,
    heads: &'a [RevisionId],
    comparison: Option<&'a Comparison>,
    replay_failure: Option<&'a ReplayFailure>,
    /// The models against the heads' reference; `null` without models.
    models: Option<&'a ModelsComparison>,
    project: ProjectSummary,
    since_snapshot: Option<&'a SinceSnapshot>,
    /// `findings` (the counting ones), `ignored`, `fail_on`, `strict`,
    /// `clean`.
    #[serde(flatten)]
    verdict: &'a Verdict,
}

pub fn run(args: StatusArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, args.db.as_deref(), &args.project)?;
    let path = opened.database(args.db.as_deref())?;
    let live = LiveDatabase::capture(&path, ctx.busy_timeout)?;
    let (repo, replayer, graph) = opened.parts();
    let report = drift::status(repo, &replayer, graph, &live, &mut replay_progress(ctx))?;
    let models = models::compare(repo, &replayer, graph, &mut replay_progress(ctx))?;
    let mut findings = report.findings.clone();
    findings.extend(models.iter().flat_map(ModelsComparison::findings));

    let since = match &opened.tracked {
        Some(tracked) => log::since_last_snapshot(
            opened.repo.store.view(),
            tracked,
            &live.schema,
            live.semantic,
        )?,
        None => None,
    };

    let verdict = args.verdict.judge(opened.repo.findings(), findings);
    let status = verdict::status(&verdict);
    if ctx.out.is_json() {
        ctx.out.json(&StatusDocument {
            database: &report.database,
            rows: report.rows.as_deref(),
            position: &report.position,
            class: report.position.class(),
            schema_matches: report.schema_matches(),
            heads: &report.heads,
            comparison: report.comparison.as_ref(),
            replay_failure: report.replay_failure.as_ref(),
            models: models.as_ref(),
            project: opened.summary(),
            since_snapshot: since.as_ref(),
            verdict: &verdict,
        })?;
        return Ok(status);
    }

    let out = &ctx.out;
    let root = opened.repo.root().to_path_buf();
    out.line(&format!("database:   {}", shown(&report.database, &root)))?;
    out.line(&format!("migrations: {}", migrations::describe(&opened)))?;
    out.line(&format!(
        "version:    {}",
        match &report.rows {
            None => "(no alembic_version table)".to_owned(),
            Some(rows) if rows.is_empty() => "(alembic_version is empty)".to_owned(),
            Some(rows) => rows.join(", "),
        }
    ))?;
    out.line(&format!("heads:      {}", report.heads.join(", ")))?;
    let class = report.position.class();
    out.line(&format!(
        "state:      {}",
        match &report.position {
            Position::AtHeads => out.paint(super::output::Paint::Good, class),
            _ => out.paint(super::output::Paint::Bad, class),
        }
    ))?;
    if !report.position.pending().is_empty() {
        out.line(&format!(
            "pending:    {}",
            report.position.pending().join(" → ")
        ))?;
    }
    schema_lines(out, &report, &root)?;
    if let Some(models) = &models {
        models_lines(out, models)?;
    }
    if let Some(SinceSnapshot {
        snapshot: head,
        changes,
    }) = &since
    {
        if changes.is_empty() {
            out.line(&format!("snapshot:   unchanged since {head:.12}"))?;
        } else {
            out.line(&format!("snapshot:   changed since {head:.12}:"))?;
            for line in super::output::diff_lines(out, changes, "    ") {
                out.line(&line)?;
            }
        }
    }
    verdict::render(ctx, &verdict, &root)?;
    Ok(status)
}

/// The `models:` section: what the models and the migrations' heads do
/// not share, or why they were not compared.
fn models_lines(out: &super::Output, models: &ModelsComparison) -> Result<(), CliError> {
    let heads = match models.heads.as_slice() {
        [] => "no revision".to_owned(),
        heads => heads.join(" + "),
    };
    if let Some(failure) = &models.failure {
        return out.line(&format!("models:     not compared: {}", failure.error));
    }
    let sides = [
        (
            "in the models, not in the migrations:",
            &models.missing_in_migrations,
        ),
        (
            "in the migrations, not in the models:",
            &models.missing_in_models,
        ),
    ];
    if sides.iter().all(|(_, fields)| fields.is_empty()) && models.differing.is_empty() {
        return out.line(&format!("models:     match the reference for {heads}"));
    }
    out.line(&format!(
        "models:     {} from the reference for {heads}:",
        out.paint(super::output::Paint::Bad, "DIFFER")
    ))?;
    for (title, fields) in sides.into_iter().filter(|(_, f)| !f.is_empty()) {
        out.line(&format!("    {title}"))?;
        for field in fields {
            out.line(&format!("        {}", field.describe()))?;
        }
    }
    if !models.differing.is_empty() {
        out.line("    declared otherwise:")?;
        for difference in &models.differing {
            out.line(&format!("        {}", difference.describe()))?;
        }
    }
    Ok(())
}

/// The `schema:` line and what follows it: a match, the drift, or why
/// nothing was compared.
fn schema_lines(
    out: &super::Output,
    report: &drift::StatusReport,
    root: &Path,
) -> Result<(), CliError> {
    match (&report.comparison, &report.replay_failure) {
        (Some(comparison), _) => comparison_lines(out, comparison)?,
        (None, Some(failure)) => {
            out.line("schema:     not compared: the reference could not be built")?;
            for line in failure_lines(failure, root) {
                out.line(&format!("    {line}"))?;
            }
        }
        (None, None) => {
            out.line("schema:     not compared (no stamped revision to compare with)")?
        }
    }
    Ok(())
}

/// The `schema:` line of a comparison, and the drift under it. A
/// comparison with an inferred revision says so first: the rows name no
/// revision the scripts declare.
fn comparison_lines(out: &super::Output, comparison: &Comparison) -> Result<(), CliError> {
    let targets = comparison.targets.join(" + ");
    let (against, reference) = if comparison.inferred {
        (
            format!(
                "the stamped revision is unknown; compared with the nearest revision, {targets}"
            ),
            "its reference".to_owned(),
        )
    } else {
        (String::new(), format!("the reference for {targets}"))
    };
    if comparison.drift.is_empty() {
        let matched = match comparison.variant {
            // Not the reference itself: say so, and where to review it.
            Some(v) => format!(
                "matches accepted variant {v:.12} of {reference} (`migsnap accept --list` shows what differs)"
            ),
            None => format!("matches {reference}"),
        };
        return out.line(&if comparison.inferred {
            format!("schema:     {against}: {matched}")
        } else {
            format!("schema:     {matched}")
        });
    }
    let verdict = if comparison.drift.is_form_only() {
        "differs in form only".to_owned()
    } else {
        out.paint(super::output::Paint::Bad, "DRIFT")
    };
    out.line(&if comparison.inferred {
        format!(
            "schema:     {against} ({:.12}), {verdict}:",
            comparison.reference
        )
    } else {
        format!(
            "schema:     {verdict} from {reference} ({:.12}):",
            comparison.reference
        )
    })?;
    for line in drift_lines(out, &comparison.drift, "    ") {
        out.line(&line)?;
    }
    Ok(())
}
