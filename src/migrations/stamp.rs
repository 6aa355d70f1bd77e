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

use crate::migrations::drift::{self, Live};
use crate::migrations::history::graph::Graph;
use crate::migrations::history::position::{self, Position};
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::history::targets::Targets;
use crate::migrations::replay::{ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::repo::{Repo, RepoError, Tracked};
use crate::schema::diff::SchemaDiff;
use crate::snapshots::restore::{self, RestoreError, RestoreOptions};
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
    /// What came of it.
    #[serde(flatten)]
    pub outcome: StampOutcome,
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
    Track(#[from] RepoError),
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
/// needed (`on_event` hears of each replay step). `track` gives the tracked
/// database the safety snapshot is recorded under; it is called only when
/// there is something to write, so a refused stamp tracks nothing.
pub fn stamp_verified<E: From<StampError>>(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    request: &StampRequest<'_>,
    track: impl FnOnce(&mut Repo) -> Result<Tracked, E>,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
    progress: &mut dyn Progress,
) -> Result<StampReport, E> {
    let targets = request.targets;
    if let Position::Inconsistent {
        ancestor,
        descendant,
    } = position::classify(graph, Some(targets))
    {
        return Err(StampError::Inconsistent {
            ancestor,
            descendant,
        }
        .into());
    }
    let live = Live::capture(request.database, request.busy_timeout).map_err(StampError::from)?;
    let (comparison, failure) = drift::compare(
        repo,
        replayer,
        targets,
        &live.schema,
        live.semantic,
        on_event,
    )
    .map_err(StampError::from)?;
    let Some(comparison) = comparison else {
        let failure = failure.expect("holds: no comparison means a failed step");
        return Err(StampError::Reference {
            targets: targets.clone(),
            failure: Box::new(failure),
        }
        .into());
    };
    let report = |outcome: StampOutcome| StampReport {
        database: request.database.to_path_buf(),
        targets: targets.clone(),
        stamped: matches!(outcome, StampOutcome::Stamped { .. }),
        reference: comparison.reference,
        outcome,
    };
    if !comparison.drift.is_empty() && !comparison.drift.is_form_only() {
        let drift = comparison.drift.clone();
        return Ok(report(StampOutcome::Refused { drift }));
    }
    let rows = live.meta.alembic_versions.as_deref();
    if rows.is_some_and(|rows| {
        rows.iter()
            .map(String::as_str)
            .eq(targets.iter().map(RevisionId::as_str))
    }) {
        return Ok(report(StampOutcome::Unchanged { unchanged: true }));
    }
    let tracked = track(repo)?;
    let options = RestoreOptions {
        force: request.force,
        message: format!("before stamp {targets}"),
        busy_timeout: request.busy_timeout,
        ..RestoreOptions::default()
    };
    let (written, ()) = restore::rewrite(repo, &tracked, &options, progress, |copy| {
        let rows = write_versions(copy, targets).map_err(StampError::Write)?;
        if rows != **targets {
            return Err(StampError::ReadBack {
                rows,
                targets: targets.to_vec(),
            });
        }
        Ok(())
    })?;
    let safety_snapshot = written.safety.expect("holds: rewrite always takes one");
    Ok(report(StampOutcome::Stamped {
        variant: comparison.variant,
        safety_snapshot,
    }))
}

/// The table Alembic creates on first use (`alembic/runtime/migration.py`,
/// `version_num VARCHAR(32)` with a named primary key).
const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS alembic_version (\
     version_num VARCHAR(32) NOT NULL, \
     CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))";

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
        let mut tracked_times = 0;
        let mut stamp = |repo: &mut Repo, target: &str| {
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
                |repo: &mut Repo| {
                    tracked_times += 1;
                    Ok::<_, StampError>(repo.track("app", &db)?)
                },
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
        let again = stamp(&mut repo, "0001");
        assert!(matches!(again.outcome, StampOutcome::Unchanged { .. }));
        assert_eq!(tracked_times, 1);
        let rows: Vec<String> = Connection::open(&db)
            .unwrap()
            .prepare("SELECT version_num FROM alembic_version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, ["0001"]);
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
