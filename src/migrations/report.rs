//! The report (`migsnap report`): one document that says where a database
//! stands, for a person who looks rather than reads. It gathers what the
//! other workflows already work out, calling each of them: the revision
//! timeline (the history), the status and its drift ([`drift::status`]),
//! the revision the schema really matches ([`drift::locate`]), the SQL a
//! repair would run ([`repair::repair`], planned only, never applied), the
//! recent snapshots with their sizes ([`log::first_parent_log`], counted as
//! [`SnapshotUsage`]) and the findings. Nothing here judges anew: the
//! findings are the status's (with the models') and the repair's, for the
//! one policy to turn into a verdict.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::finding::Finding;
use crate::migrations::drift::{self, LiveDatabase, Located, StatusReport};
use crate::migrations::history::graph::Graph;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::history::targets::Targets;
use crate::migrations::models::{self, ModelsComparison};
use crate::migrations::repair::{self, RepairError, RepairReport, RepairRequest};
use crate::migrations::replay::{ReplayError, ReplayEvent};
use crate::migrations::workspace::{ProjectSummary, Workspace};
use crate::snapshots::log::{self, LogError, SinceSnapshot};
use crate::snapshots::sqlite::SqliteError;
use crate::snapshots::usage::SnapshotUsage;

/// What a report covers besides the database.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// How many of the newest snapshots to list.
    pub snapshots: usize,
    /// How long to wait for a database locked by a writer.
    pub busy_timeout: Duration,
}

/// Everything a report shows. Serialized, it is the JSON of `migsnap report
/// --format json` (with the verdict beside it).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The database file.
    pub database: PathBuf,
    /// Its tracked name; `None` for an untracked file (then it has no
    /// snapshots).
    pub name: Option<String>,
    /// When the report was made (the store's clock; RFC 3339 in JSON).
    #[serde(serialize_with = "crate::timestamp::serialize_rfc3339")]
    pub generated: i64,
    /// The migration project.
    pub project: ProjectSummary,
    /// Every revision, prerequisites first, with where the database is
    /// along it.
    pub timeline: Vec<TimelineRevision>,
    /// Where the version rows put the database, and its drift from their
    /// reference.
    pub status: StatusReport,
    /// The models against the heads; `None` without models.
    pub models: Option<ModelsComparison>,
    /// The revisions the schema really matches.
    pub located: Located,
    /// The repair of the drift, planned and not applied; `None` when there
    /// is no drift to repair (or nothing was compared).
    pub repair: Option<RepairReport>,
    /// What changed since the last snapshot; `None` when there is none.
    pub since_snapshot: Option<SinceSnapshot>,
    /// The newest snapshots, newest first.
    pub snapshots: Vec<RecentSnapshot>,
}

impl Report {
    /// The verdict's input: what `status` judges (the status's findings and
    /// the models'), then the repair's warnings.
    pub fn findings(&self) -> Vec<Finding> {
        let mut findings = self.status.findings.clone();
        findings.extend(self.models.iter().flat_map(ModelsComparison::findings));
        findings.extend(self.repair.iter().flat_map(|r| r.findings.iter().cloned()));
        findings
    }
}

/// One revision of the timeline.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineRevision {
    /// Its id.
    pub revision: RevisionId,
    /// Its parents (`down_revision`).
    pub parents: Vec<RevisionId>,
    /// The revisions whose parent it is.
    pub children: Vec<RevisionId>,
    /// Its branch labels.
    pub branch_labels: Vec<String>,
    /// Its `depends_on`, as written.
    pub depends_on: Vec<String>,
    /// The first line of its docstring.
    pub message: Option<String>,
    /// The file that declares it.
    pub file: PathBuf,
    /// Whether it is a head.
    pub head: bool,
    /// Whether `alembic_version` names it.
    pub stamped: bool,
    /// Whether the version rows have it applied (it is a stamped revision
    /// or needed by one).
    pub applied: bool,
    /// Whether the schema is its reference's: `exact` when it matches one
    /// the revision belongs to, `nearest` when nothing matches and its is
    /// the closest; `None` otherwise.
    pub schema: Option<SchemaMatch>,
}

/// How a revision's reference relates to the live schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaMatch {
    /// The schema is this reference (or an accepted variant of it).
    Exact,
    /// Nothing matches; this reference differs least.
    Nearest,
}

/// One recent snapshot: its share of the store, and what it recorded.
#[derive(Clone, Debug, Serialize)]
pub struct RecentSnapshot {
    /// Id, time, sizes, as `du` counts them.
    #[serde(flatten)]
    pub usage: SnapshotUsage,
    /// Its message.
    pub message: String,
    /// Refs that point at it (`heads/app`, `tags/v1`).
    pub refs: Vec<String>,
    /// The `alembic_version` rows it recorded.
    pub alembic_versions: Option<Vec<String>>,
    /// Whether its schema differs from its parent's.
    pub schema_changed: bool,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The database does not read.
    #[error(transparent)]
    Database(#[from] SqliteError),
    /// A reference could not be built or read.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The repair could not be planned.
    #[error(transparent)]
    Repair(#[from] RepairError),
    /// The snapshots could not be listed.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Reports on the database at `path` against `workspace`'s project (see
/// the module documentation). References missing from the store are built
/// (`on_event` hears of each replay step); nothing else is written, and the
/// database is only read.
pub fn report(
    workspace: &mut Workspace,
    path: &Path,
    options: &ReportOptions,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<Report, ReportError> {
    let live = LiveDatabase::capture(path, options.busy_timeout)?;
    let project = workspace.summary();
    let tracked = workspace.tracked.clone();
    let (repo, replayer, graph) = workspace.parts();
    let status = drift::status(repo, &replayer, graph, &live, on_event)?;
    let models = models::compare(repo, &replayer, graph, on_event)?;
    let stamped = drift::stamped(replayer.project().kind, &live.meta, graph);
    let located = drift::locate(
        repo,
        &replayer,
        graph,
        &live.schema,
        live.semantic,
        stamped,
        on_event,
    )?;
    let repair = match &status.comparison {
        Some(comparison) if !comparison.drift.is_empty() => {
            // Declared revisions: the stamped ones, or the nearest when the
            // stamp is unknown (then the plan says it is towards a guess).
            let targets = Targets::declared(graph, comparison.targets.clone());
            let request = RepairRequest {
                targets: &targets,
                inferred: comparison.inferred,
                apply: false,
                allow_destructive: false,
                force: false,
                busy_timeout: options.busy_timeout,
            };
            // A plan only: nothing is written, so no progress to show.
            let mut silent = migsnap_store::progress::Silent;
            Some(repair::repair(
                repo,
                &replayer,
                &live,
                &request,
                on_event,
                &mut silent,
            )?)
        }
        _ => None,
    };
    let view = repo.store.view();
    let (since_snapshot, snapshots) = match &tracked {
        Some(db) => {
            let since = log::since_last_snapshot(view, db, &live.schema, live.semantic)?;
            let recent = match view.find_ref(&db.head_ref()).map_err(LogError::from)? {
                Some(head) => log::first_parent_log(view, head, Some(options.snapshots))
                    .map_err(LogError::from)?
                    .into_iter()
                    .map(RecentSnapshot::of)
                    .collect(),
                None => Vec::new(),
            };
            (since, recent)
        }
        None => (None, Vec::new()),
    };
    Ok(Report {
        database: live.path.clone(),
        name: tracked.map(|t| t.name),
        generated: migsnap_store::odb::now(),
        project,
        timeline: timeline(graph, &status, &located),
        status,
        models,
        located,
        repair,
        since_snapshot,
        snapshots,
    })
}

/// The revisions prerequisites first, each marked with where the database
/// is: stamped, applied, matched by the schema.
fn timeline(graph: &Graph, status: &StatusReport, located: &Located) -> Vec<TimelineRevision> {
    let rows = status.rows.as_deref().unwrap_or_default();
    let applied = graph.closure(rows.iter().map(RevisionId::as_str));
    let matched = |id: &RevisionId| {
        if located.exact.iter().any(|m| m.targets.contains(id)) {
            Some(SchemaMatch::Exact)
        } else if located
            .nearest
            .as_ref()
            .is_some_and(|m| m.targets.contains(id))
        {
            Some(SchemaMatch::Nearest)
        } else {
            None
        }
    };
    graph
        .topological()
        .iter()
        .filter_map(|id| graph.get(id))
        .map(|revision| TimelineRevision {
            revision: revision.id.clone(),
            parents: revision.parents.clone(),
            children: graph.children(&revision.id).to_vec(),
            branch_labels: revision.branch_labels.clone(),
            depends_on: revision.depends_on.clone(),
            message: revision.message.clone(),
            file: revision.path.clone(),
            head: status.heads.contains(&revision.id),
            stamped: rows.contains(&revision.id),
            applied: applied.contains(&revision.id),
            schema: matched(&revision.id),
        })
        .collect()
}

impl RecentSnapshot {
    fn of(entry: log::LogEntry) -> RecentSnapshot {
        RecentSnapshot {
            message: entry.snapshot.message.clone(),
            refs: entry.refs.clone(),
            alembic_versions: entry.recorded.meta.alembic_versions.clone(),
            schema_changed: entry.schema_changed,
            usage: SnapshotUsage::of(entry),
        }
    }
}
