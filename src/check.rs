//! The scheduled check (`migsnap check`): the weekly routine of the guide
//! behind migsnap as one call a scheduler can run. For every tracked
//! database it records a snapshot when anything changed and, when a
//! migration project is found, works out its migration status; then it
//! applies the retention policy, collects garbage when there is data to
//! pack or to free, optionally checks the store, and optionally pushes
//! every head and tag to a remote.
//!
//! Every step runs even when an earlier one failed (a database that cannot
//! be read must not stop the others from being recorded): the report keeps
//! each step's outcome, typed, and the caller judges and renders them.

use std::path::Path;
use std::time::Duration;

use migsnap_store::Progress;
use migsnap_store::fsck::{self, FsckOptions, FsckReport};
use migsnap_store::gc::{self, GcError, GcOptions, GcReport};

use crate::migrations::drift::{self, LiveDatabase, StatusReport};
use crate::migrations::history::project::{HistoryError, Project};
use crate::migrations::models::{self, ModelsComparison};
use crate::migrations::record::{self, RecordError, RecordReport};
use crate::migrations::replay::{ReplayError, Replayer};
use crate::migrations::workspace::chain_for;
use crate::remotes::RemoteError;
use crate::remotes::push::{self, Pushed};
use crate::repo::{Repo, Tracked};
use crate::snapshots::retention::{self, ForgetReport, Policy, RetentionError};
use crate::snapshots::snapshot::SnapshotOptions;
use crate::snapshots::sqlite::SqliteError;

/// What a check does besides recording and reporting.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// The retention policy applied to every database's history.
    pub policy: Policy,
    /// How long forgotten data and reflog entries stay before `gc` frees
    /// them.
    pub gc_grace: Duration,
    /// Check the store afterwards (and how thoroughly), or not.
    pub fsck: Option<FsckOptions>,
    /// Message of the snapshots it records.
    pub message: String,
    /// Busy timeout for reading the databases.
    pub busy_timeout: Duration,
    /// Push to a remote at the end: `Some(None)` to the default remote,
    /// `Some(Some(name))` to that one.
    pub push: Option<Option<String>>,
}

/// The migration status of one database.
#[derive(Debug)]
pub struct StatusCheck {
    /// Where the database stands against its history.
    pub report: StatusReport,
    /// The project's models against its head, when it declares them.
    pub models: Option<ModelsComparison>,
}

/// Why the migration status of a database could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The project's history does not read.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The database does not read.
    #[error(transparent)]
    Database(#[from] SqliteError),
    /// Replaying the history failed.
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// What the check did for one tracked database.
#[derive(Debug)]
pub struct DatabaseCheck {
    /// The tracked name.
    pub name: String,
    /// The snapshot recorded (or the head, when nothing changed).
    pub snapshot: Result<RecordReport, RecordError>,
    /// The migration status; `None` when no migration project was found.
    pub status: Option<Result<StatusCheck, StatusError>>,
}

/// What `gc` did, or why it did not run.
#[derive(Debug)]
pub enum GcStep {
    /// No loose pack and no forgotten data past the grace period: it was
    /// not run.
    NotDue,
    /// It ran.
    Ran(GcReport),
}

/// Everything one check did, step by step.
#[derive(Debug)]
pub struct CheckReport {
    /// Per tracked database, in name order.
    pub databases: Vec<DatabaseCheck>,
    /// The retention policy's outcome over every database.
    pub retention: Result<ForgetReport, RetentionError>,
    /// Garbage collection.
    pub gc: Result<GcStep, GcError>,
    /// The store check, when asked for.
    pub fsck: Option<Result<FsckReport, migsnap_store::Error>>,
    /// The push, when asked for.
    pub push: Option<Result<Pushed, RemoteError>>,
}

/// Runs the check over every database `repo` tracks (see the module
/// documentation). `cwd` is where projects are looked for, as for
/// `status`.
pub fn check(
    repo: &mut Repo,
    cwd: &Path,
    options: &CheckOptions,
    progress: &mut dyn Progress,
) -> CheckReport {
    let tracked: Vec<Tracked> = repo.databases().cloned().collect();
    let databases = tracked
        .iter()
        .map(|db| {
            let snapshot_options = SnapshotOptions {
                message: options.message.clone(),
                busy_timeout: options.busy_timeout,
                ..SnapshotOptions::default()
            };
            let snapshot = record::record(repo, db, cwd, snapshot_options, progress);
            let status = migration_status(repo, db, cwd, options.busy_timeout);
            DatabaseCheck {
                name: db.name.clone(),
                snapshot,
                status,
            }
        })
        .collect();
    let retention = retention::apply(&mut repo.store, None, &options.policy, false);
    let gc = collect_when_due(repo, options.gc_grace, progress);
    let fsck = options
        .fsck
        .map(|fsck_options| fsck::check(&repo.store, fsck_options, progress));
    // Last, so the remote gets this run's snapshots and retention's marks.
    let push = options
        .push
        .as_ref()
        .map(|remote| push::push(repo, remote.as_deref(), &[], false, progress));
    CheckReport {
        databases,
        retention,
        gc,
        fsck,
        push,
    }
}

/// The migration status of `db`, as `migsnap status` works it out; `None`
/// when no migration project is found for it.
fn migration_status(
    repo: &mut Repo,
    db: &Tracked,
    cwd: &Path,
    busy_timeout: Duration,
) -> Option<Result<StatusCheck, StatusError>> {
    let settings = repo.migrations_for(Some(db));
    let project = match Project::discover(repo.root(), cwd, &settings) {
        Ok(project) => project,
        Err(HistoryError::NotFound { .. }) => return None,
        Err(e) => return Some(Err(e.into())),
    };
    Some(status_in(repo, db, &project, busy_timeout))
}

/// The status of `db` against `project`: its history, its reference chain,
/// and its models when it declares them.
fn status_in(
    repo: &mut Repo,
    db: &Tracked,
    project: &Project,
    busy_timeout: Duration,
) -> Result<StatusCheck, StatusError> {
    let graph = project.load_graph()?;
    let replayer = Replayer::new(project, &graph, chain_for(repo, Some(db), project));
    let live = LiveDatabase::capture(&db.path, busy_timeout)?;
    let report = drift::status(repo, &replayer, &graph, &live, &mut |_| {})?;
    let models = models::compare(repo, &replayer, &graph, &mut |_| {})?;
    Ok(StatusCheck { report, models })
}

/// Runs `gc` when it is due ([`gc::due`]: a loose pack, or forgotten data
/// past the grace period), so a weekly check packs the week's snapshots and
/// frees what retention forgot once the grace period is over, and a check
/// of an idle store writes nothing.
fn collect_when_due(
    repo: &mut Repo,
    grace: Duration,
    progress: &mut dyn Progress,
) -> Result<GcStep, GcError> {
    let grace_secs = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    if !gc::due(&repo.store, grace_secs)? {
        return Ok(GcStep::NotDue);
    }
    let options = GcOptions {
        grace_secs,
        dry_run: false,
    };
    gc::collect(&mut repo.store, options, progress).map(GcStep::Ran)
}
