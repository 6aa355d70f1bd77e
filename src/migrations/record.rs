//! Recording a snapshot of a tracked database inside its migration project:
//! the snapshot itself, plus the migration artefacts its schema shows.
//!
//! The project is optional here, unlike every other workflow of this layer:
//! a snapshot records what it can, so a project that is missing or does not
//! read only means that artefacts are judged by name alone.

use std::path::Path;
use std::sync::Arc;

use migsnap_store::Progress;

use crate::finding::Finding;
use crate::migrations::drift;
use crate::migrations::history::graph::Graph;
use crate::migrations::history::project::Project;
use crate::migrations::replay::{ReplayError, Replayer};
use crate::migrations::workspace::chain_for;
use crate::repo::{Repo, Tracked};
use crate::snapshots::log::{LogError, snapshot_schema};
use crate::snapshots::snapshot::{
    MigrationFiles, Recorded, SnapshotError, SnapshotOptions, SnapshotOutcome, take,
};

/// What recording a snapshot did, and what its schema shows.
#[derive(Debug)]
pub struct RecordReport {
    /// The snapshot recorded, or the head when nothing changed.
    pub outcome: SnapshotOutcome,
    /// What the snapshot shows, before any verdict policy: a failed
    /// integrity check, then the migration artefacts in its schema. When
    /// nothing was recorded, only the head's failed integrity check: the
    /// database still fails it, and a scheduled snapshot must keep saying
    /// so.
    pub findings: Vec<Finding>,
}

/// What can go wrong recording a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The snapshot could not be taken.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The recorded schema could not be read back.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The cached reference could not be read.
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// Takes a snapshot of `db` (its applied migration files recorded when
/// `db`'s project is found from `cwd`), then lists what it shows: a failed
/// integrity check, and the migration artefacts of its schema (name
/// guesses, less the tables the project makes on purpose, see
/// [`drift::artefacts`]).
///
/// `options.migrations` is filled in here from the project.
pub fn record(
    repo: &mut Repo,
    db: &Tracked,
    cwd: &Path,
    mut options: SnapshotOptions,
    progress: &mut dyn Progress,
) -> Result<RecordReport, RecordError> {
    let project = quiet_project(repo, db, cwd);
    options.migrations = project
        .as_ref()
        .map(|(_, graph)| graph.clone() as Arc<dyn MigrationFiles>);
    let outcome = take(repo, db, &options, progress)?;
    let findings = match &outcome {
        SnapshotOutcome::Unchanged { head } => {
            let snapshot = repo
                .store
                .view()
                .read_snapshot(head)
                .map_err(SnapshotError::from)?;
            let recorded = Recorded::from_snapshot(&snapshot);
            recorded
                .integrity
                .map(|failure| failure.finding(&recorded.path))
                .into_iter()
                .collect()
        }
        SnapshotOutcome::Recorded { id, snapshot } => {
            let recorded = Recorded::from_snapshot(snapshot);
            let schema = snapshot_schema(repo.store.view(), *id, snapshot)?;
            let artefacts = match &project {
                Some((project, graph)) => {
                    let replayer =
                        Replayer::new(project, graph, chain_for(repo, Some(db), project));
                    drift::artefacts(repo, &replayer, graph, &schema, &recorded.meta)?
                }
                None => schema.artefacts(),
            };
            recorded
                .integrity
                .map(|failure| failure.finding(&recorded.path))
                .into_iter()
                .chain(artefacts)
                .collect()
        }
    };
    Ok(RecordReport { outcome, findings })
}

/// `db`'s migration project and its history, if one is found and reads;
/// `None` otherwise, silently: a snapshot records what it can.
fn quiet_project(repo: &Repo, db: &Tracked, cwd: &Path) -> Option<(Project, Arc<Graph>)> {
    let settings = repo.migrations_for(Some(db));
    let project = Project::discover(repo.root(), cwd, &settings).ok()?;
    let graph = project.load_graph().ok()?;
    Some((project, Arc::new(graph)))
}
