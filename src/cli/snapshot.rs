//! `migsnap snapshot`: record the current state of a database.

use migsnap_store::ObjectId;
use serde::Serialize;

use super::output::{Paint, bytes};
use super::verdict::{self, finding_line};
use super::{CliError, Ctx, Status};
use crate::finding::Finding;
use crate::migrations::record::record;
use crate::policy::{Ignored, Threshold, Verdict};
use crate::snapshots::snapshot::{Recorded, SnapshotOptions, SnapshotOutcome};

/// Record the schema and every page (or only the schema) of a database as a
/// new snapshot on top of its previous one, and print its short hash.
#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    /// Tracked database name or path (default: the only tracked one). An
    /// untracked SQLite file is tracked under its file stem.
    db: Option<String>,
    /// Snapshot message.
    #[arg(short, long, default_value = "")]
    message: String,
    /// Record only the schema and metadata, no data pages.
    #[arg(long)]
    schema_only: bool,
    /// Tag the new snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Record a snapshot even when nothing changed.
    #[arg(long)]
    allow_empty: bool,
    #[command(flatten)]
    verdict: verdict::VerdictArgs,
}

/// `snapshot --format json` when nothing changed and nothing was recorded,
/// with the verdict on the head (a failed integrity check still counts).
#[derive(Serialize)]
struct UnchangedDocument<'a> {
    /// Always false.
    recorded: bool,
    database: &'a str,
    head: ObjectId,
    findings: &'a [Finding],
    ignored: &'a [Ignored],
    fail_on: Threshold,
    clean: bool,
}

/// `snapshot --format json` for a new snapshot, with the verdict on its
/// migration artefacts.
#[derive(Serialize)]
struct RecordedDocument<'a> {
    /// Always true.
    recorded: bool,
    id: ObjectId,
    database: &'a str,
    schema_only: bool,
    added_objects: u64,
    added_bytes: u64,
    alembic_versions: Option<&'a [String]>,
    findings: &'a [Finding],
    ignored: &'a [Ignored],
    fail_on: Threshold,
    clean: bool,
}

pub fn run(args: SnapshotArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    let db = ctx.select_db(&mut repo, args.db.as_deref())?;
    let options = SnapshotOptions {
        message: args.message,
        schema_only: args.schema_only,
        allow_empty: args.allow_empty,
        tags: args.tags,
        busy_timeout: ctx.busy_timeout,
        ..SnapshotOptions::default()
    };
    let report = record(
        &mut repo,
        &db,
        &ctx.cwd,
        options,
        ctx.out.progress().as_mut(),
    )?;
    // Migration artefacts are reported, never hidden (issue #3), and so is
    // a failed integrity check (issue #14), also when nothing changed.
    let judged = args.verdict.judge(repo.findings(), report.findings);
    match report.outcome {
        SnapshotOutcome::Unchanged { head } => {
            if ctx.out.is_json() {
                ctx.out.json(&UnchangedDocument {
                    recorded: false,
                    database: &db.name,
                    head,
                    findings: &judged.findings,
                    ignored: &judged.ignored,
                    fail_on: judged.fail_on,
                    clean: judged.clean,
                })?;
            } else {
                ctx.out.line(&format!(
                    "nothing changed since {} ({}); use --allow-empty to record anyway",
                    ctx.out.paint(Paint::Id, &format!("{head:.12}")),
                    db.name
                ))?;
                print_findings(ctx, &judged);
            }
        }
        SnapshotOutcome::Recorded { id, snapshot } => {
            let recorded = Recorded::from_snapshot(&snapshot);
            if ctx.out.is_json() {
                ctx.out.json(&RecordedDocument {
                    recorded: true,
                    id,
                    database: &db.name,
                    schema_only: snapshot.image.is_none(),
                    added_objects: snapshot.added.objects,
                    added_bytes: snapshot.added.bytes,
                    alembic_versions: recorded.meta.alembic_versions.as_deref(),
                    findings: &judged.findings,
                    ignored: &judged.ignored,
                    fail_on: judged.fail_on,
                    clean: judged.clean,
                })?;
            } else {
                // The id is the result, so `-q` keeps it for scripts.
                ctx.out
                    .verdict(&ctx.out.paint(Paint::Id, &format!("{id:.12}")))?;
                let kind = if snapshot.image.is_some() {
                    "snapshot"
                } else {
                    "schema-only snapshot"
                };
                ctx.out.note(&format!(
                    "[{} {id:.12}] {kind}{}; added {} in {} objects",
                    db.name,
                    if snapshot.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", snapshot.message)
                    },
                    bytes(snapshot.added.bytes),
                    snapshot.added.objects
                ));
                print_findings(ctx, &judged);
            }
        }
    }
    Ok(verdict::status(&judged))
}

/// The findings, one line each, on stderr: stdout holds only the id, for
/// scripts.
fn print_findings(ctx: &Ctx, judged: &Verdict) {
    for finding in &judged.findings {
        let line = format!("{}: {}", finding.severity.as_str(), finding_line(finding));
        if judged.fail_on.reached_by(finding.severity) {
            ctx.out.problem(&line);
        } else {
            ctx.out.note(&line);
        }
    }
}
