//! Drift: how a live database compares with the reference chain. This is
//! where `status`, `locate` and the built-in bisect predicates get their
//! answers.
//!
//! A database *drifts* when its schema differs from the reference of the
//! revisions its `alembic_version` rows name. A reference can have accepted
//! variants (recorded with `migsnap accept`): some revisions create tables
//! only "if missing", so one revision can leave more than one valid shape,
//! and a database matching any of them does not drift.

mod accept;
mod bisect;
mod form;
mod locate;
mod status;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::finding::Finding;
use crate::migrations::history::graph::Graph;
use crate::migrations::history::project::MigrationKind;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::history::touched::Touched;
use crate::migrations::replay::{ReplayError, Replayer};
use crate::repo::Repo;
use crate::schema::finding::forget_artefacts;
use crate::schema::model::fold;
use crate::schema::{Schema, SchemaHash};
use crate::snapshots::sqlite::{Database, DbMeta, SqliteError};

pub use accept::{
    AcceptError, AcceptPlan, AcceptedVariant, Proposal, accept, accepted, accepted_variants,
    plan_accept, remove_accepted,
};
pub use bisect::{
    Dropped, FirstBad, NoChain, RevisionBisect, RevisionBisectError, SnapshotBisect,
    SnapshotOutcomeKind, bisect_revisions, bisect_snapshots, snapshot_verdict,
};
pub use form::form_findings;
pub use locate::{LocateMatch, Located, extends, locate, locate_up_to};
pub use status::{Comparison, StatusReport, compare, nearest, status};

/// The stable finding codes of `status`.
pub mod codes {
    /// The schema differs from the reference of the stamped revisions.
    pub const DRIFT: &str = "drift.schema";
    /// A table has the reference's columns in another order (info: SQLite
    /// and SQLAlchemy name their columns).
    pub const ORDER: &str = "drift.order";
    /// A constraint or index is the reference's under another name (info).
    pub const NAME: &str = "drift.name";
    /// Revisions are pending.
    pub const BEHIND: &str = "status.behind";
    /// Some branches are not applied at all.
    pub const ON_SOME_BRANCHES: &str = "status.on-some-branches";
    /// `alembic_version` names a revision the scripts do not have.
    pub const UNKNOWN_REVISION: &str = "status.unknown-revision";
    /// One `alembic_version` row is an ancestor of another.
    pub const INCONSISTENT: &str = "status.inconsistent";
    /// No `alembic_version` table.
    pub const UNVERSIONED: &str = "status.unversioned";
    /// The reference could not be built: a migration failed in replay.
    pub const REPLAY_FAILED: &str = "replay.failed";
    /// `locate`: the schema is not what the stamped revision makes.
    pub const STAMP_MISMATCH: &str = "locate.stamp-mismatch";
    /// The reference could not be built: the base revision expects tables
    /// the project's database has but no revision creates (made outside
    /// Alembic), and no bootstrap creates them.
    pub const NEEDS_BOOTSTRAP: &str = "replay.needs-bootstrap";

    /// Every code `status` and `locate` can emit themselves (the capture's
    /// artefact codes are listed in [`crate::schema::finding::codes::ALL`]).
    pub const ALL: &[&str] = &[
        DRIFT,
        ORDER,
        NAME,
        BEHIND,
        ON_SOME_BRANCHES,
        UNKNOWN_REVISION,
        INCONSISTENT,
        UNVERSIONED,
        REPLAY_FAILED,
        STAMP_MISMATCH,
        NEEDS_BOOTSTRAP,
    ];
}

/// What to do about tables made outside Alembic, for every message that
/// says so.
pub const BOOTSTRAP_HINT: &str = "`[replay] bootstrap` in migsnap.toml makes them on each scratch database before the base revision (a SQL file, a Python callable, or the tables of a snapshot or database file), or `migsnap replay --bootstrap-from FILE --tables T1,T2` records them from a database that has them as they were before the base revision";

/// A live database's schema and metadata, read once.
#[derive(Clone, Debug)]
pub struct LiveDatabase {
    /// The database file.
    pub path: PathBuf,
    /// Its schema.
    pub schema: Schema,
    /// Its semantic hash.
    pub semantic: SchemaHash,
    /// Its metadata (`alembic_version` rows and the rest).
    pub meta: DbMeta,
    /// What the capture noticed (migration artefacts).
    pub findings: Vec<Finding>,
}

impl LiveDatabase {
    /// Reads the database at `path` (read-only, one read transaction).
    pub fn capture(path: &Path, busy_timeout: Duration) -> Result<LiveDatabase, SqliteError> {
        let mut db = Database::open(path, busy_timeout)?;
        let capture = db.capture(None, None)?;
        let schema = capture
            .schema
            .expect("holds: no stamp was given, so the schema is read");
        Ok(LiveDatabase {
            path: path.to_path_buf(),
            semantic: schema.semantic_hash(),
            schema,
            meta: capture.meta,
            findings: capture.findings,
        })
    }
}

/// The revisions a database says it is at: its `alembic_version` rows, or
/// for a SQL folder the migration numbered `PRAGMA user_version` (none at
/// 0). `None`: the database records no position at all.
///
/// The rows are user data and may name a revision no script declares; they
/// are still revision ids (that is what Alembic writes there, and an
/// unknown one is reported as such by [`position::classify`]), so they
/// become [`RevisionId`]s here, where the migration layer first reads them.
///
/// [`position::classify`]: crate::migrations::history::position::classify
pub fn stamped(kind: MigrationKind, meta: &DbMeta, graph: &Graph) -> Option<Vec<RevisionId>> {
    match kind {
        MigrationKind::Alembic => meta.alembic_versions.as_ref().map(|rows| {
            rows.iter()
                .map(|row| RevisionId::from(row.as_str()))
                .collect()
        }),
        MigrationKind::Sql => {
            if meta.user_version == 0 {
                return Some(Vec::new());
            }
            let number = u64::try_from(meta.user_version).ok();
            let found = graph
                .revisions()
                .find(|r| r.id.parse::<u64>().ok() == number)
                .map(|r| r.id.clone());
            Some(vec![
                found.unwrap_or_else(|| meta.user_version.to_string().into()),
            ])
        }
    }
}

/// The artefact findings of `schema`, a database whose metadata is `meta`:
/// the name heuristics' guesses, less the tables the reference of its
/// stamped revisions has, when the store already holds that reference, or
/// else less the tables the migration files themselves name in their
/// `op.*` calls (`op.rename_table('config', 'config_old')` makes
/// `config_old` on purpose). No replay: a snapshot must stay cheap.
pub fn artefacts(
    repo: &Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    schema: &Schema,
    meta: &DbMeta,
) -> Result<Vec<Finding>, ReplayError> {
    let mut findings = schema.artefacts();
    if findings.is_empty() {
        return Ok(findings);
    }
    let targets = stamped(replayer.project().kind, meta, graph).unwrap_or_default();
    if targets.is_empty() || targets.iter().any(|t| graph.get(t).is_none()) {
        return Ok(findings);
    }
    if let Some(reference) = replayer.cached(repo, &targets)? {
        let reference = reference.schema(repo)?;
        forget_artefacts(&mut findings, |table| {
            reference.tables.contains_key(&fold(table))
        });
        return Ok(findings);
    }
    let mut named = Touched::default();
    for revision in graph.revisions() {
        // An unreadable file is a history finding of its own.
        if let Ok(text) = std::fs::read_to_string(&revision.path) {
            named.scan(&text);
        }
    }
    forget_artefacts(&mut findings, |table| {
        named.tables.contains(&table.to_ascii_lowercase())
    });
    Ok(findings)
}

/// The schema `sql` makes in an empty in-memory database (unit tests).
#[cfg(test)]
pub(crate) fn schema_of(sql: &str) -> Schema {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(sql).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    crate::schema::capture(&tx).unwrap().schema
}
