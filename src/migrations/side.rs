//! One side of a schema comparison (`diff`, `locate`): a SQLite file or a
//! snapshot, and the schema it has or recorded. Both commands read a side
//! the same way, so a snapshot side and a file side mean the same there.

use std::path::PathBuf;
use std::time::Duration;

use migsnap_store::ObjectId;

use crate::migrations::drift::LiveDatabase;
use crate::repo::{Repo, RepoError};
use crate::schema::{Schema, SchemaHash};
use crate::snapshots::log::{LogError, snapshot_schema};
use crate::snapshots::revspec::{self, RevError};
use crate::snapshots::snapshot::Recorded;
use crate::snapshots::sqlite::{DbMeta, SqliteError};

/// Where one side's schema comes from.
#[derive(Clone, Debug)]
pub enum Side {
    /// A SQLite file: a path given, or a tracked database's live file.
    File {
        /// The file.
        path: PathBuf,
        /// How it is shown: the path as given, or `NAME (live)`.
        label: String,
    },
    /// A snapshot in the store.
    Snapshot {
        /// Its id.
        id: ObjectId,
        /// The tracked database it belongs to.
        database: String,
    },
}

/// A side's schema and what it recorded.
#[derive(Clone, Debug)]
pub struct SideSchema {
    /// The schema.
    pub schema: Schema,
    /// Its semantic hash: recorded by a snapshot, else computed.
    pub semantic: SchemaHash,
    /// The database's metadata (`alembic_version` rows and the rest), as
    /// read or as the snapshot recorded it.
    pub meta: DbMeta,
}

/// Why a side cannot be resolved or read.
#[derive(Debug, thiserror::Error)]
pub enum SideError {
    /// No tracked database is meant, or several are.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// Not a revision of the store.
    #[error(transparent)]
    Revision(#[from] RevError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
    /// A snapshot's schema does not decode.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A database file cannot be read.
    #[error(transparent)]
    Sqlite(#[from] SqliteError),
}

impl Side {
    /// Resolves `spec` in `repo`: `live` (the live file of `database`, or of
    /// the only tracked one) or a tracked database's name (its live file),
    /// else a revision (hash prefix, tag, `HEAD~N`, `@{N}`).
    pub fn resolve(repo: &Repo, spec: &str, database: Option<&str>) -> Result<Side, SideError> {
        if spec == "live" || repo.database(spec).is_some() {
            let name = if spec == "live" { database } else { Some(spec) };
            let tracked = repo.select(name)?;
            return Ok(Side::File {
                label: format!("{} (live)", tracked.name),
                path: tracked.path,
            });
        }
        Side::snapshot(repo, revspec::resolve(repo, spec, None)?)
    }

    /// The snapshot `id` of `repo` as a side.
    pub fn snapshot(repo: &Repo, id: ObjectId) -> Result<Side, SideError> {
        let database = repo.store.view().read_snapshot(&id)?.database;
        Ok(Side::Snapshot { id, database })
    }

    /// The tracked database a snapshot side belongs to: what `live` on the
    /// other side means when several are tracked.
    pub fn database(&self) -> Option<&str> {
        match self {
            Side::File { .. } => None,
            Side::Snapshot { database, .. } => Some(database),
        }
    }

    /// How the side is shown: its label, or a snapshot's short id.
    pub fn label(&self) -> String {
        match self {
            Side::File { label, .. } => label.clone(),
            Side::Snapshot { id, .. } => format!("{id:.12}"),
        }
    }

    /// The side's schema: a file's read (read-only, one read transaction),
    /// a snapshot's decoded from its schema blob. `repo` must be given for a
    /// snapshot side, which came from it.
    pub fn schema(
        &self,
        repo: Option<&Repo>,
        busy_timeout: Duration,
    ) -> Result<SideSchema, SideError> {
        match self {
            Side::File { path, .. } => {
                let live = LiveDatabase::capture(path, busy_timeout)?;
                Ok(SideSchema {
                    schema: live.schema,
                    semantic: live.semantic,
                    meta: live.meta,
                })
            }
            Side::Snapshot { id, .. } => {
                let repo = repo.expect("holds: a snapshot side came from the store");
                let view = repo.store.view();
                let snapshot = view.read_snapshot(id)?;
                let recorded = Recorded::from_snapshot(&snapshot);
                let schema = snapshot_schema(view, *id, &snapshot)?;
                let semantic = recorded
                    .schema_semantic
                    .unwrap_or_else(|| schema.semantic_hash());
                Ok(SideSchema {
                    schema,
                    semantic,
                    meta: recorded.meta,
                })
            }
        }
    }
}
