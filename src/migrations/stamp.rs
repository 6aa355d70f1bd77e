//! The verified stamp: writing `alembic_version` only after the live schema
//! was found to match the reference of the revisions it names (or an
//! accepted variant of it). The write goes through
//! [`crate::snapshots::restore::rewrite`]: a safety snapshot, then the rows written on
//! a verified copy that replaces the database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use migsnap_store::ObjectId;
use migsnap_store::progress::Progress;
use rusqlite::Connection;
use serde::Serialize;

use crate::migrations::drift::{self, LiveDatabase};
use crate::migrations::history::graph::Graph;
use crate::migrations::history::graph::ResolveError;
use crate::migrations::history::position::{self, Position};
use crate::migrations::history::project::MigrationKind;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::history::targets::{TargetError, Targets};
use crate::migrations::replay::{ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::repo::{Repo, SelectError, Tracked};
use crate::schema::diff::SchemaDiff;
use crate::snapshots::restore::{self, ReplaceOptions, RestoreError};
use crate::snapshots::sqlite::SqliteError;

/// What to stamp, and how.
#[derive(Clone, Debug)]
pub struct StampRequest<'a> {
    /// The database file.
    pub database: &'a Path,
    /// The revisions to record.
    pub targets: &'a Targets,
    /// Write even though other processes have the database open.
    pub force: bool,
    /// How long to wait for a database locked by a writer.
    pub busy_timeout: Duration,
}

/// What a verified stamp did. Serialized, it is the JSON of
/// `migsnap stamp --format json`.
#[derive(Clone, Debug, Serialize)]
pub struct StampReport {
    /// The database file.
    pub database: PathBuf,
    /// The revisions asked for; once stamped, also the rows read back.
    pub targets: Targets,
    /// Whether `alembic_version` was written: only for
    /// [`StampOutcome::Stamped`].
    pub stamped: bool,
    /// The reference snapshot the schema was checked against.
    pub reference: ObjectId,
    /// The version rows the database held that no migration script
    /// declares (a deleted branch's revision): what a stamp replaces, or
    /// what a refused one leaves.
    pub unknown: Vec<RevisionId>,
    /// What came of it.
    #[serde(flatten)]
    pub outcome: StampOutcome,
    /// The database, when this call began tracking it (its snapshots need a
    /// name); not part of the JSON, where the database is named already.
    #[serde(skip)]
    pub newly_tracked: Option<Tracked>,
}

/// How a verified stamp ended.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum StampOutcome {
    /// The schema does not mean the reference's: nothing was written.
    Refused {
        /// What differs: `added` is extra in the database, `removed` is
        /// missing from it.
        drift: SchemaDiff,
    },
    /// The database already records exactly these revisions, and matches
    /// them: nothing to write.
    Unchanged {
        /// Always `true`; it names the case in JSON.
        unchanged: bool,
    },
    /// The rows were written and read back.
    Stamped {
        /// The accepted variant the schema matched, if not the reference.
        variant: Option<ObjectId>,
        /// The snapshot taken before the write (the undo).
        safety_snapshot: ObjectId,
    },
}

/// Why a verified stamp could not run. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StampError {
    /// A revision to stamp does not resolve.
    #[error(transparent)]
    Targets(#[from] TargetError),
    /// A revision to stamp is one the database records, but no script
    /// declares it: there is no reference to verify it against.
    #[error(
        "{revision} is the revision the database records, but no migration script declares it; there is nothing to verify it against"
    )]
    Recorded {
        /// The revision.
        revision: RevisionId,
    },
    /// One revision asked for descends from another.
    #[error("{ancestor} is an ancestor of {descendant}: stamp only the descendant")]
    Inconsistent {
        /// The ancestor.
        ancestor: RevisionId,
        /// Its descendant.
        descendant: RevisionId,
    },
    /// The database could not be read.
    #[error(transparent)]
    Database(#[from] SqliteError),
    /// The reference could not be built or read.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The database could not be tracked for its safety snapshot.
    #[error(transparent)]
    Track(#[from] SelectError),
    /// A migration failed while the reference was built.
    #[error("the reference for {targets} could not be built: migration {} failed", failure.revision)]
    Reference {
        /// The revisions whose reference was needed.
        targets: Targets,
        /// The step that failed.
        failure: Box<ReplayFailure>,
    },
    /// The safety snapshot, the copy or the write failed.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// Writing the rows into the copy failed.
    #[error("cannot write alembic_version")]
    Write(#[source] rusqlite::Error),
    /// The rows read back differ from the rows written.
    #[error("alembic_version reads back as {rows:?} after writing {targets:?}")]
    ReadBack {
        /// What was read.
        rows: Vec<RevisionId>,
        /// What was written.
        targets: Vec<RevisionId>,
    },
}

/// Stamps `request.database` with `request.targets` after verifying that its
/// schema means their reference (differences of form allowed: Alembic sees
/// neither column order nor constraint names). The reference is built if
/// needed (`on_event` hears of each replay step). An untracked database is
/// tracked (under its file stem) for its safety snapshot only when there is
/// something to write, so a refused stamp tracks nothing.
pub fn stamp_verified(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    request: &StampRequest<'_>,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
    progress: &mut dyn Progress,
) -> Result<StampReport, StampError> {
    let targets = request.targets;
    if let Position::Inconsistent {
        ancestor,
        descendant,
    } = position::classify(graph, Some(targets))
    {
        return Err(StampError::Inconsistent {
            ancestor,
            descendant,
        });
    }
    let live = LiveDatabase::capture(request.database, request.busy_timeout)?;
    let (comparison, failure) = drift::compare(
        repo,
        replayer,
        targets,
        &live.schema,
        live.semantic,
        on_event,
    )?;
    let Some(comparison) = comparison else {
        let mut failure = failure.expect("holds: no comparison means a failed step");
        failure.confirm_outside(&live.path, &live.schema);
        return Err(StampError::Reference {
            targets: targets.clone(),
            failure: Box::new(failure),
        });
    };
    let kind = replayer.project().kind;
    let recorded = drift::stamped(kind, &live.meta, graph);
    let unknown: Vec<RevisionId> = recorded
        .iter()
        .flatten()
        .filter(|row| graph.get(row).is_none())
        .cloned()
        .collect();
    let report = |outcome: StampOutcome| StampReport {
        database: request.database.to_path_buf(),
        targets: targets.clone(),
        stamped: matches!(outcome, StampOutcome::Stamped { .. }),
        reference: comparison.reference,
        unknown: unknown.clone(),
        outcome,
        newly_tracked: None,
    };
    if !comparison.drift.is_empty() && !comparison.drift.is_form_only() {
        let drift = comparison.drift.clone();
        return Ok(report(StampOutcome::Refused { drift }));
    }
    if recorded.as_deref() == Some(&**targets) {
        return Ok(report(StampOutcome::Unchanged { unchanged: true }));
    }
    let selected = repo.select_or_track_path(request.database)?;
    let tracked = selected.tracked;
    let options = ReplaceOptions {
        force: request.force,
        message: format!("before stamp {targets}"),
        busy_timeout: request.busy_timeout,
        ..ReplaceOptions::default()
    };
    let (written, ()) = restore::rewrite(repo, &tracked, &options, progress, |copy| {
        let rows = write_position(kind, copy, targets).map_err(StampError::Write)?;
        if rows != **targets {
            return Err(StampError::ReadBack {
                rows,
                targets: targets.to_vec(),
            });
        }
        Ok(())
    })?;
    let safety_snapshot = written.safety.expect("holds: rewrite always takes one");
    let mut stamped = report(StampOutcome::Stamped {
        variant: comparison.variant,
        safety_snapshot,
    });
    stamped.newly_tracked = selected.newly_tracked.then_some(tracked);
    Ok(stamped)
}

/// The revisions `names` stand for, as [`Targets::resolve`] finds them.
/// A name that resolves to nothing but is what the version rows of
/// `database` record is [`StampError::Recorded`]: the revision of a
/// deleted branch, say, which no reference can verify.
pub fn targets(
    graph: &Graph,
    kind: MigrationKind,
    names: &[String],
    database: &Path,
    busy_timeout: Duration,
) -> Result<Targets, StampError> {
    match Targets::resolve(graph, names, None) {
        Err(TargetError::Unresolved(ResolveError::Unknown(name))) => {
            let live = LiveDatabase::capture(database, busy_timeout)?;
            let recorded = drift::stamped(kind, &live.meta, graph).unwrap_or_default();
            Err(match recorded.into_iter().find(|row| *row == *name) {
                Some(revision) => StampError::Recorded { revision },
                None => TargetError::Unresolved(ResolveError::Unknown(name)).into(),
            })
        }
        resolved => Ok(resolved?),
    }
}

/// The table Alembic creates on first use (`alembic/runtime/migration.py`,
/// `version_num VARCHAR(32)` with a named primary key).
const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS alembic_version (\
     version_num VARCHAR(32) NOT NULL, \
     CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))";

/// Records `revisions` as the position of the database at `path` the way
/// its project keeps it, and reads it back: the rows of `alembic_version`
/// for Alembic; for a SQL folder, `PRAGMA user_version` set to the number
/// of its one migration (a SQL folder's history is a line).
pub(crate) fn write_position(
    kind: MigrationKind,
    path: &Path,
    revisions: &[RevisionId],
) -> rusqlite::Result<Vec<RevisionId>> {
    match (kind, revisions) {
        (MigrationKind::Alembic, _) => write_versions(path, revisions),
        (MigrationKind::Sql, [id]) => {
            let conn = Connection::open(path)?;
            // A SQL folder's revision id is its number as written.
            let number: i64 = id.parse().unwrap_or_default();
            conn.pragma_update(None, "user_version", number)?;
            let read: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
            Ok(vec![if read == number {
                id.clone()
            } else {
                RevisionId::from(read.to_string().as_str())
            }])
        }
        (MigrationKind::Sql, _) => {
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "user_version", 0)?;
            Ok(Vec::new())
        }
    }
}

/// Replaces the rows of `alembic_version` in the database at `path` with
/// `revisions`, in one transaction, and reads them back.
fn write_versions(path: &Path, revisions: &[RevisionId]) -> rusqlite::Result<Vec<RevisionId>> {
    let mut conn = Connection::open(path)?;
    let tx = conn.transaction()?;
    tx.execute_batch(CREATE_VERSION_TABLE)?;
    tx.execute("DELETE FROM alembic_version", [])?;
    for revision in revisions {
        tx.execute(
            "INSERT INTO alembic_version (version_num) VALUES (?1)",
            [revision.as_str()],
        )?;
    }
    let written: Vec<RevisionId> = tx
        .prepare("SELECT version_num FROM alembic_version ORDER BY version_num")?
        .query_map([], |row| row.get::<_, String>(0).map(RevisionId::from))?
        .collect::<Result<_, _>>()?;
    tx.commit()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::SqlProject;
    use crate::migrations::replay::Chain;

    /// The engine alone, on a SQL-folder project (no Python): a schema that
    /// differs is refused and tracks nothing, a matching one is stamped with
    /// a safety snapshot, and stamping it again changes nothing.
    #[test]
    fn stamps_only_a_schema_that_matches_and_tracks_only_to_write() {
        let SqlProject {
            dir: _dir,
            mut repo,
            project,
            graph,
            db,
        } = SqlProject::new();
        let replayer = Replayer::new(&project, &graph, Chain::new("default"));
        let stamp = |repo: &mut Repo, target: &str| {
            let targets = Targets::one(target);
            let request = StampRequest {
                database: &db,
                targets: &targets,
                force: false,
                busy_timeout: Duration::from_secs(5),
            };
            stamp_verified(
                repo,
                &replayer,
                &graph,
                &request,
                &mut |_| {},
                &mut migsnap_store::progress::Silent,
            )
            .unwrap()
        };

        let refused = stamp(&mut repo, "0002");
        assert!(!refused.stamped);
        let StampOutcome::Refused { drift } = &refused.outcome else {
            panic!("{refused:?}")
        };
        assert!(!drift.is_empty());
        assert!(
            repo.databases().next().is_none(),
            "a refusal tracks nothing"
        );

        let stamped = stamp(&mut repo, "0001");
        assert!(stamped.stamped, "{stamped:?}");
        assert!(matches!(stamped.outcome, StampOutcome::Stamped { .. }));
        assert!(stamped.newly_tracked.is_some(), "writing tracks the file");
        let again = stamp(&mut repo, "0001");
        assert!(matches!(again.outcome, StampOutcome::Unchanged { .. }));
        assert!(again.newly_tracked.is_none());
        assert_eq!(repo.databases().count(), 1);
        // A SQL folder keeps its position in `user_version`, not in an
        // `alembic_version` table.
        let conn = Connection::open(&db).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
        let alembic: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'alembic_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(alembic, 0);
    }

    #[test]
    fn writes_rows_as_a_set_and_creates_the_table_as_alembic_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let written = write_versions(&path, &["b2".into(), "a1".into()]).unwrap();
        assert_eq!(written, ["a1", "b2"]);
        let written = write_versions(&path, &["c3".into()]).unwrap();
        assert_eq!(written, ["c3"]);
        let conn = Connection::open(&path).unwrap();
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'alembic_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains("alembic_version_pkc"), "{sql}");
    }
}
