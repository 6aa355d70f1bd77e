//! Taking a snapshot of a tracked database, and reading back what a snapshot
//! recorded about it.
//!
//! A snapshot is one store transaction: pages, image, schema blob, snapshot
//! object, the head ref (compare-and-swap against the parent it was built on)
//! and any tags commit together or not at all.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use migsnap_store::image::{self, SpilledImage};
use migsnap_store::{
    Change, Expected, Object, ObjectId, ObjectStore, Progress, RefEdit, RefName, Snapshot,
};

use crate::finding::{Finding, Severity};
use crate::repo::{Repo, RepoError, Tracked};
use crate::schema::SchemaHash;
use crate::snapshots::page_sums::PageSums;
use crate::snapshots::pages::ImageError;
use crate::snapshots::sqlite::{Database, DbMeta, SchemaFingerprint, SqliteError};

/// The name and version written into every snapshot.
pub const TOOL: &str = concat!("migsnap ", env!("CARGO_PKG_VERSION"));

/// What a snapshot should record.
#[derive(Clone, Debug, Default)]
pub struct SnapshotOptions {
    /// The message.
    pub message: String,
    /// Record only the schema and metadata, no pages.
    pub schema_only: bool,
    /// Record even when nothing changed since the parent.
    pub allow_empty: bool,
    /// Tags to create pointing at the new snapshot.
    pub tags: Vec<String>,
    /// How long to wait for a writer holding the database locked.
    pub busy_timeout: Duration,
    /// The migration history, if the project has one: the snapshot then
    /// records the file hash of every revision the database has applied,
    /// so `lint` can tell when a file changed after it was applied.
    pub migrations: Option<Arc<dyn MigrationFiles>>,
    /// Set for a safety snapshot: what is about to change the database.
    pub safety: Option<Safety>,
    /// Where to record a CRC-64 of every page read: a restore in place
    /// checks the pages it kept against them when it reads its result back.
    pub page_sums: Option<Arc<PageSums>>,
}

/// What a snapshot needs of a migration history: the files behind the
/// revisions a database says it has applied. A trait, so the snapshot layer
/// does not depend on the history layer above it
/// ([`crate::migrations::history::graph::Graph`] implements it).
pub trait MigrationFiles: Send + Sync + std::fmt::Debug {
    /// Revision id → file hash of the revisions `rows` name and everything
    /// they need.
    fn applied_files(&self, rows: &[String]) -> BTreeMap<String, String>;
}

/// What taking a snapshot did.
#[derive(Clone, Debug)]
pub enum SnapshotOutcome {
    /// A new snapshot was recorded.
    Recorded {
        /// Its id.
        id: ObjectId,
        /// The snapshot object.
        snapshot: Box<Snapshot>,
    },
    /// Nothing changed since `head`; nothing was recorded.
    Unchanged {
        /// The current head.
        head: ObjectId,
    },
}

impl SnapshotOutcome {
    /// The snapshot that now holds the database's state: the new one, or
    /// the head when nothing changed.
    pub fn id(&self) -> ObjectId {
        match self {
            SnapshotOutcome::Recorded { id, .. } | SnapshotOutcome::Unchanged { head: id } => *id,
        }
    }
}

/// What can go wrong taking a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The database could not be read.
    #[error(transparent)]
    Source(#[from] SqliteError),
    /// Pages could not be recorded.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
    /// A tag name is invalid or taken.
    #[error(transparent)]
    Tag(#[from] crate::snapshots::tag::TagError),
    /// The repository configuration failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// What a snapshot recorded about its database, typed, from the snapshot's
/// headers.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Recorded {
    /// The database path at snapshot time.
    pub path: String,
    /// Metadata beside the schema.
    pub meta: DbMeta,
    /// The database file's permission bits.
    pub file_mode: Option<u32>,
    /// The schema's cookie and text hash, to skip parsing it next time.
    #[serde(skip)]
    pub schema_fingerprint: Option<SchemaFingerprint>,
    /// The semantic hash of the schema.
    pub schema_semantic: Option<SchemaHash>,
    /// BLAKE3 of the file of each migration revision the database had
    /// applied, by revision id (empty when no history was known).
    pub migration_files: BTreeMap<String, String>,
    /// Set when the database failed `PRAGMA quick_check` at snapshot time:
    /// it was recorded anyway, because a damaged database is the one a
    /// person most needs a copy of.
    pub integrity: Option<IntegrityFailure>,
    /// Set when it is a safety snapshot: the state kept just before
    /// migsnap changed the database, so the change can be undone.
    pub safety: Option<Safety>,
}

/// What a safety snapshot was taken before.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "before", rename_all = "snake_case")]
pub enum Safety {
    /// A restore putting snapshot `restoring` in place (`restore`, or
    /// `guard` putting back the state before a failed command).
    Restore {
        /// The snapshot restored.
        restoring: ObjectId,
    },
    /// A rewrite in place (`stamp`, `repair`, `fix`); the message says
    /// which. A value a newer version writes reads as this too.
    Rewrite,
}

/// How a recorded database failed `PRAGMA quick_check`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IntegrityFailure {
    /// How many problems it reported.
    pub problem_count: usize,
    /// The first of them (at most [`KEPT_PROBLEMS`]), one a line.
    pub problems: Vec<String>,
}

/// Problems kept in a snapshot's headers: enough to say what is wrong,
/// while a badly damaged database can report thousands.
pub const KEPT_PROBLEMS: usize = 10;

impl IntegrityFailure {
    /// The failure `problems` describe; `None` when there are none.
    pub fn from_problems(problems: &[String]) -> Option<IntegrityFailure> {
        (!problems.is_empty()).then(|| IntegrityFailure {
            problem_count: problems.len(),
            problems: problems.iter().take(KEPT_PROBLEMS).cloned().collect(),
        })
    }

    /// The finding that reports this failure of the database at `path`.
    pub fn finding(&self, path: &str) -> Finding {
        Finding::new(
            codes::INTEGRITY_FAILED,
            Severity::Error,
            path,
            format!("recorded, but it fails its integrity check: {}", self.summary()),
        )
        .hint(format!(
            "keep this snapshot; `sqlite3 {path} 'PRAGMA quick_check'` lists every problem, and restoring it in place needs --force"
        ))
    }

    /// One line: how many problems, and the first.
    pub fn summary(&self) -> String {
        format!(
            "quick_check found {} problem{}, the first: {}",
            self.problem_count,
            if self.problem_count == 1 { "" } else { "s" },
            self.problems.first().map_or("", String::as_str)
        )
    }
}

/// Finding codes of snapshots.
pub mod codes {
    /// The database failed `PRAGMA quick_check`; the snapshot was recorded
    /// and flagged.
    pub const INTEGRITY_FAILED: &str = "snapshot.integrity-failed";
    /// Every code above.
    pub const ALL: &[&str] = &[INTEGRITY_FAILED];
}

const H_PATH: &str = "path";
const H_ALEMBIC_TABLE: &str = "alembic-table";
const H_ALEMBIC: &str = "alembic-version";
const H_PEEWEE_TABLE: &str = "peewee-table";
const H_PEEWEE: &str = "peewee-migration";
const H_USER_VERSION: &str = "user-version";
const H_APPLICATION_ID: &str = "application-id";
const H_JOURNAL: &str = "journal-mode";
const H_MODE: &str = "file-mode";
const H_SCHEMA_COOKIE: &str = "schema-cookie";
const H_SCHEMA_TEXT: &str = "schema-text";
const H_SCHEMA_SEMANTIC: &str = "schema-semantic";
const H_MIGRATION_FILE: &str = "migration-file";
const H_INTEGRITY: &str = "integrity-check";
const H_INTEGRITY_COUNT: &str = "integrity-problem-count";
const H_INTEGRITY_PROBLEM: &str = "integrity-problem";
const H_SAFETY: &str = "safety";
const H_RESTORING: &str = "restoring";
/// The values of [`H_SAFETY`].
const SAFETY_RESTORE: &str = "restore";
const SAFETY_REWRITE: &str = "rewrite";
/// The one value of [`H_INTEGRITY`]: the header is written only on failure,
/// so snapshots from before it read as passing (those versions refused a
/// database that failed).
const INTEGRITY_FAILED: &str = "failed";

impl Recorded {
    /// The headers that carry this record, in their fixed order.
    pub fn to_headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![(H_PATH.to_owned(), self.path.clone())];
        if let Some(versions) = &self.meta.alembic_versions {
            headers.push((H_ALEMBIC_TABLE.to_owned(), "present".to_owned()));
            for version in versions {
                headers.push((H_ALEMBIC.to_owned(), version.clone()));
            }
        }
        if let Some(migrations) = &self.meta.peewee_migrations {
            headers.push((H_PEEWEE_TABLE.to_owned(), "present".to_owned()));
            for name in migrations {
                headers.push((H_PEEWEE.to_owned(), name.clone()));
            }
        }
        headers.push((
            H_USER_VERSION.to_owned(),
            self.meta.user_version.to_string(),
        ));
        headers.push((
            H_APPLICATION_ID.to_owned(),
            self.meta.application_id.to_string(),
        ));
        headers.push((H_JOURNAL.to_owned(), self.meta.journal_mode.clone()));
        if let Some(mode) = self.file_mode {
            headers.push((H_MODE.to_owned(), format!("{mode:o}")));
        }
        if let Some(stamp) = &self.schema_fingerprint {
            headers.push((H_SCHEMA_COOKIE.to_owned(), stamp.cookie.to_string()));
            headers.push((H_SCHEMA_TEXT.to_owned(), hex(&stamp.text)));
        }
        if let Some(semantic) = &self.schema_semantic {
            headers.push((H_SCHEMA_SEMANTIC.to_owned(), semantic.to_string()));
        }
        for (revision, hash) in &self.migration_files {
            headers.push((H_MIGRATION_FILE.to_owned(), format!("{revision} {hash}")));
        }
        if let Some(failure) = &self.integrity {
            headers.push((H_INTEGRITY.to_owned(), INTEGRITY_FAILED.to_owned()));
            headers.push((
                H_INTEGRITY_COUNT.to_owned(),
                failure.problem_count.to_string(),
            ));
            for problem in &failure.problems {
                headers.push((H_INTEGRITY_PROBLEM.to_owned(), problem.clone()));
            }
        }
        match &self.safety {
            None => {}
            Some(Safety::Restore { restoring }) => {
                headers.push((H_SAFETY.to_owned(), SAFETY_RESTORE.to_owned()));
                headers.push((H_RESTORING.to_owned(), restoring.to_string()));
            }
            Some(Safety::Rewrite) => {
                headers.push((H_SAFETY.to_owned(), SAFETY_REWRITE.to_owned()));
            }
        }
        headers
    }

    /// Reads the record back from a snapshot's headers; unknown headers are
    /// ignored so newer writers stay readable.
    pub fn from_snapshot(snapshot: &Snapshot) -> Recorded {
        let one = |key| snapshot.header_values(key).next().unwrap_or_default();
        // A list header is present (possibly empty) only with its table marker.
        let listed = |table: &str, key: &str| -> Option<Vec<String>> {
            snapshot
                .header_values(table)
                .next()
                .map(|_| snapshot.header_values(key).map(str::to_owned).collect())
        };
        Recorded {
            path: one(H_PATH).to_owned(),
            meta: DbMeta {
                alembic_versions: listed(H_ALEMBIC_TABLE, H_ALEMBIC),
                peewee_migrations: listed(H_PEEWEE_TABLE, H_PEEWEE),
                user_version: one(H_USER_VERSION).parse().unwrap_or(0),
                application_id: one(H_APPLICATION_ID).parse().unwrap_or(0),
                journal_mode: one(H_JOURNAL).to_owned(),
            },
            file_mode: u32::from_str_radix(one(H_MODE), 8).ok(),
            schema_fingerprint: one(H_SCHEMA_COOKIE)
                .parse()
                .ok()
                .zip(unhex(one(H_SCHEMA_TEXT)))
                .map(|(cookie, text)| SchemaFingerprint { cookie, text }),
            // Like the fingerprint, a hash that does not parse (only a damaged
            // or foreign header) reads as absent: it could match no live
            // schema anyway, and readers fall back to the schema blob.
            schema_semantic: snapshot
                .header_values(H_SCHEMA_SEMANTIC)
                .next()
                .and_then(|hex| hex.parse().ok()),
            migration_files: snapshot
                .header_values(H_MIGRATION_FILE)
                .filter_map(|value| value.split_once(' '))
                .map(|(revision, hash)| (revision.to_owned(), hash.to_owned()))
                .collect(),
            integrity: integrity_failure(snapshot),
            safety: safety(snapshot),
        }
    }
}

/// What a safety snapshot's headers say it was taken before. A restore
/// whose snapshot does not parse (only a damaged or foreign header) still
/// reads as a safety snapshot, of a rewrite: what it keeps is the same.
fn safety(snapshot: &Snapshot) -> Option<Safety> {
    let kind = snapshot.header_values(H_SAFETY).next()?;
    let restoring = snapshot
        .header_values(H_RESTORING)
        .next()
        .and_then(|id| id.parse().ok());
    Some(match (kind, restoring) {
        (SAFETY_RESTORE, Some(restoring)) => Safety::Restore { restoring },
        _ => Safety::Rewrite,
    })
}

/// The integrity failure a snapshot's headers record. Any value of the
/// header but the one this version writes also reads as a failure: a flag
/// that guards restores must not be lost to a newer writer's spelling.
fn integrity_failure(snapshot: &Snapshot) -> Option<IntegrityFailure> {
    snapshot.header_values(H_INTEGRITY).next()?;
    let problems: Vec<String> = snapshot
        .header_values(H_INTEGRITY_PROBLEM)
        .map(str::to_owned)
        .collect();
    let problem_count = snapshot
        .header_values(H_INTEGRITY_COUNT)
        .next()
        .and_then(|count| count.parse().ok())
        .unwrap_or(problems.len());
    Some(IntegrityFailure {
        problem_count,
        problems,
    })
}

/// Where a snapshot is recorded: the ref it moves and what it descends from.
#[derive(Clone, Debug)]
pub struct Target {
    /// The database name written into the snapshot.
    pub database: String,
    /// The ref that will point at the new snapshot (compare-and-swap against
    /// its value when the snapshot began).
    pub reference: RefName,
    /// The parents; `None` means the ref's current value, as for a database
    /// head. The first parent's image is the base for page dedup and for the
    /// "nothing changed" check.
    pub parents: Option<Vec<ObjectId>>,
    /// Headers beyond what the database itself records.
    pub headers: Vec<(String, String)>,
}

impl Target {
    /// The head of tracked database `db`.
    pub fn head(db: &Tracked) -> Target {
        Target {
            database: db.name.clone(),
            reference: db.head_ref(),
            parents: None,
            headers: Vec::new(),
        }
    }
}

/// Takes a snapshot of `db` on top of its current head.
pub fn take(
    repo: &mut Repo,
    db: &Tracked,
    options: &SnapshotOptions,
    progress: &mut dyn Progress,
) -> Result<SnapshotOutcome, SnapshotError> {
    take_into(repo, &db.path, &Target::head(db), options, progress)
}

/// Takes a snapshot of the database at `path` and points `target`'s ref at it.
pub fn take_into(
    repo: &mut Repo,
    path: &Path,
    target: &Target,
    options: &SnapshotOptions,
    progress: &mut dyn Progress,
) -> Result<SnapshotOutcome, SnapshotError> {
    let mut source = Database::open(path, options.busy_timeout)?;
    let tag_refs = options
        .tags
        .iter()
        .map(|name| crate::snapshots::tag::check_name(repo, name))
        .collect::<Result<Vec<_>, _>>()?;

    let mut tx = repo.store.transaction()?;
    let current = tx.view().find_ref(&target.reference)?;
    let parents = target
        .parents
        .clone()
        .unwrap_or_else(|| current.into_iter().collect());
    let head = parents.first().copied();
    let parent = head.map(|id| tx.view().read_snapshot(&id)).transpose()?;
    for tag in &tag_refs {
        crate::snapshots::tag::check_free(tx.view(), tag)?;
    }
    // A parent image that cannot be read, or whose pages retention gave up,
    // only costs dedup: the new image is then listed and stored in full, so it
    // never leans on pages that gc may delete.
    let parent_forgotten = match head {
        Some(head) => tx.view().is_forgotten(&head)?,
        None => false,
    };
    let parent_image = parent
        .as_ref()
        .and_then(|p| p.image)
        .filter(|_| !parent_forgotten)
        .and_then(|id| image::spill_or_hold(tx.view(), &id, tx.view().dir()).ok());
    // Recording takes the parent's spilled listing over (see
    // `pages::record`); what is asked of the parent image afterwards is
    // its digest.
    let parent_digest = parent_image.as_ref().map(|p| p.image.digest);

    // What the parent recorded about its schema lets an unchanged schema be
    // recognised from the schema cookie without parsing it again.
    let parent_record = parent.as_ref().map(Recorded::from_snapshot);
    let known = parent_record.as_ref().and_then(|r| r.schema_fingerprint);
    let (capture, image, integrity) = if options.schema_only {
        (source.capture(None, known.as_ref())?, None, None)
    } else {
        let parent = Parent {
            image: parent_image,
            // A recorded snapshot without a failure passed `quick_check`
            // when it was taken: the check predates every release (see
            // "An unchanged database is not checked again" in design.md).
            clean: parent_record
                .as_ref()
                .is_some_and(|r| r.integrity.is_none()),
            known: known.as_ref(),
        };
        let recorded = record_checked(&mut tx, &mut source, path, options, parent, progress)?;
        let failure = IntegrityFailure::from_problems(&recorded.problems);
        (
            recorded.image.capture,
            Some((recorded.image.id, recorded.image.digest)),
            failure,
        )
    };
    let (schema, semantic) = match (&capture.schema, &parent, &parent_record) {
        (Some(captured), _, _) => (
            tx.write(&Object::Blob(captured.to_blob()))?,
            Some(captured.semantic_hash()),
        ),
        (None, Some(parent), Some(record)) => (parent.schema, record.schema_semantic),
        (None, ..) => unreachable!("BUG: a known schema stamp comes from a parent"),
    };
    let migration_files = applied_files(options.migrations.as_deref(), &capture.meta);
    let record = Recorded {
        path: path.display().to_string(),
        meta: capture.meta,
        file_mode: file_mode(path),
        schema_fingerprint: Some(capture.stamp),
        schema_semantic: semantic,
        migration_files,
        integrity,
        safety: options.safety.clone(),
    };

    if let (Some(head), Some(parent_record), false) = (head, &parent_record, options.allow_empty) {
        let digest = image.as_ref().map(|(_, digest)| digest);
        if unchanged(parent_record, parent_digest, &record, digest) {
            return Ok(SnapshotOutcome::Unchanged { head });
        }
    }

    let snapshot = Snapshot {
        parents,
        schema,
        image: image.map(|(id, _)| id),
        database: target.database.clone(),
        time: migsnap_store::odb::now(),
        message: options.message.clone(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        tool: TOOL.to_owned(),
        added: tx.added(),
        headers: record
            .to_headers()
            .into_iter()
            .chain(target.headers.iter().cloned())
            .collect(),
    };
    let id = tx.write(&Object::Snapshot(snapshot.clone()))?;
    commit(tx, target, current, tag_refs, id, &options.message)?;
    Ok(SnapshotOutcome::Recorded {
        id,
        snapshot: Box::new(snapshot),
    })
}

/// Moves `target`'s ref (compare-and-swap against `current`) and creates the
/// tags, all pointing at the new snapshot `id`, in one commit.
fn commit(
    tx: migsnap_store::Transaction<'_>,
    target: &Target,
    current: Option<ObjectId>,
    tag_refs: Vec<RefName>,
    id: ObjectId,
    message: &str,
) -> Result<(), SnapshotError> {
    let mut edits = vec![RefEdit {
        name: target.reference.clone(),
        change: Change::Update {
            expected: current.map_or(Expected::MustNotExist, Expected::MustEqual),
            new: id,
        },
    }];
    edits.extend(tag_refs.into_iter().map(|name| RefEdit {
        name,
        change: Change::Update {
            expected: Expected::MustNotExist,
            new: id,
        },
    }));
    let summary = message.lines().next().unwrap_or_default();
    tx.commit(&edits, &format!("snapshot: {summary}"))?;
    Ok(())
}

/// What a new snapshot's parent offers the page read.
struct Parent<'a> {
    /// Its image, to list only the pages that changed.
    image: Option<SpilledImage>,
    /// Whether it passed `quick_check`: then an equal image needs no check.
    clean: bool,
    /// Its schema stamp, to skip parsing an unchanged schema.
    known: Option<&'a SchemaFingerprint>,
}

/// An image recorded, and what `PRAGMA quick_check` found in the state it
/// holds.
struct Checked {
    image: crate::snapshots::pages::RecordedImage,
    /// None when the database is sound.
    problems: Vec<String>,
}

/// Records the pages of `source` into `tx` while SQLite checks the file.
///
/// A backup of a damaged database would carry the damage along unnoticed,
/// so SQLite checks the file on a second connection while the pages are
/// read. That connection's read transaction begins between a reading of
/// `PRAGMA data_version` on `source` and the capture's read transaction;
/// when the capture still sees that data version, no commit came between and
/// both read the same state. Otherwise (a writer committed in that short
/// window) the capture checks what it read itself, serially. The check
/// starts with the first page that a parent which passed does not hold;
/// when there is none, it never starts and the parent's verdict is kept. A
/// failing verdict is recorded, not refused: see docs/design.md.
fn record_checked(
    tx: &mut migsnap_store::Transaction<'_>,
    source: &mut Database,
    path: &Path,
    options: &SnapshotOptions,
    parent: Parent<'_>,
    progress: &mut dyn Progress,
) -> Result<Checked, SnapshotError> {
    let version = source.data_version()?;
    let checker = Database::open(path, options.busy_timeout)?.pin()?;
    source.checked_elsewhere_at(version);
    // The check waits for the first page the parent does not hold: the
    // same bytes as a parent that passed would pass again (the check is a
    // function of the bytes), so an unchanged database costs one hash pass
    // (a restore's safety snapshot, a scheduled snapshot), and a changed
    // one starts its check with its first changed page.
    let inheritable = parent.clean && parent.image.is_some();
    let parent_digest = parent.image.as_ref().map(|p| p.image.digest);
    let (start_tx, start_rx) = std::sync::mpsc::sync_channel::<bool>(2);
    let started = std::sync::atomic::AtomicBool::new(!inheritable);
    if !inheritable {
        let _ = start_tx.send(true);
    }
    let on_change = || {
        if !started.swap(true, std::sync::atomic::Ordering::Relaxed) {
            let _ = start_tx.send(true);
        }
    };
    let (recorded, checked, inherited) = std::thread::scope(|scope| {
        let check = scope.spawn(move || match start_rx.recv() {
            Ok(true) => Some(checker.quick_check()),
            _ => None,
        });
        let recorded = crate::snapshots::pages::record(
            tx,
            source,
            parent.image,
            parent.known,
            &on_change,
            options.page_sums.as_deref(),
            progress,
        );
        let inherited = recorded
            .as_ref()
            .is_ok_and(|image| parent.clean && parent_digest == Some(image.digest));
        // Not inherited and no page changed (the file only shrank, say),
        // or the recording failed: the check runs, or is not needed.
        let _ = start_tx.send(!inherited && recorded.is_ok());
        (
            recorded,
            check
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            inherited,
        )
    });
    let image = recorded?;
    let problems = match (image.capture.checked.clone(), inherited) {
        (Some(own), _) => own,
        (None, true) => Vec::new(),
        (None, false) => checked.expect("BUG: a check that was not inherited did not run")?,
    };
    Ok(Checked { image, problems })
}

/// Whether a snapshot recording `record` (and an image with `digest`, if
/// pages were read) would repeat its parent.
fn unchanged(
    parent_record: &Recorded,
    parent_digest: Option<[u8; 32]>,
    record: &Recorded,
    digest: Option<&[u8; 32]>,
) -> bool {
    // Whether the check failed is part of the state; which problems it
    // listed is not: over the same bytes, quick_check can stop at the
    // damage after a different number of problems (seen in the suite
    // under load), and that is no reason for a new snapshot.
    let same_meta = parent_record.meta == record.meta
        && parent_record.integrity.is_some() == record.integrity.is_some();
    // Semantic, so reformatting a CREATE statement is not a change.
    let same_schema =
        record.schema_semantic.is_some() && parent_record.schema_semantic == record.schema_semantic;
    let same_image = match digest {
        None => true,
        Some(digest) => parent_digest == Some(*digest),
    };
    same_schema && same_meta && same_image
}

/// The file hashes of the revisions `meta`'s `alembic_version` rows say
/// are applied (the rows and everything they need).
fn applied_files(files: Option<&dyn MigrationFiles>, meta: &DbMeta) -> BTreeMap<String, String> {
    match (files, &meta.alembic_versions) {
        (Some(files), Some(rows)) => files.applied_files(rows),
        _ => BTreeMap::new(),
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    blake3::Hash::from_bytes(*bytes).to_hex().to_string()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    blake3::Hash::from_hex(text).ok().map(|h| *h.as_bytes())
}

/// Permission bits of a file, to give checkouts and restores no wider access
/// than the database had.
pub fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_with(headers: Vec<(String, String)>) -> Snapshot {
        Snapshot {
            parents: Vec::new(),
            schema: ObjectId::hash(b"schema"),
            image: None,
            database: "db".to_owned(),
            time: 0,
            message: String::new(),
            host: String::new(),
            tool: TOOL.to_owned(),
            added: Default::default(),
            headers,
        }
    }

    /// The semantic hash is written as the hex text `docs/format.md`
    /// documents and reads back to the same hash; a value that is not a hash
    /// reads as absent, like an unreadable fingerprint.
    #[test]
    fn semantic_hash_header_round_trips_as_hex() {
        let hash = crate::schema::Schema::default().semantic_hash();
        let record = Recorded {
            schema_semantic: Some(hash),
            ..Recorded::default()
        };
        let headers = record.to_headers();
        assert!(headers.contains(&(H_SCHEMA_SEMANTIC.to_owned(), hash.to_string())));
        let back = Recorded::from_snapshot(&snapshot_with(headers));
        assert_eq!(back.schema_semantic, Some(hash));

        let damaged = vec![(H_SCHEMA_SEMANTIC.to_owned(), "not hex".to_owned())];
        let back = Recorded::from_snapshot(&snapshot_with(damaged));
        assert_eq!(back.schema_semantic, None);
    }

    /// A failed integrity check is written as documented in
    /// docs/format.md and reads back; a snapshot without the headers reads
    /// as passing, and any value of `integrity-check` reads as failing.
    #[test]
    fn integrity_headers_round_trip() {
        let problems: Vec<String> = (0..12).map(|i| format!("problem {i}")).collect();
        let record = Recorded {
            integrity: IntegrityFailure::from_problems(&problems),
            ..Recorded::default()
        };
        let headers = record.to_headers();
        assert!(headers.contains(&("integrity-check".to_owned(), "failed".to_owned())));
        assert!(headers.contains(&("integrity-problem-count".to_owned(), "12".to_owned())));
        let back = Recorded::from_snapshot(&snapshot_with(headers)).integrity;
        let back = back.expect("flagged");
        assert_eq!(back.problem_count, 12);
        assert_eq!(back.problems, problems[..KEPT_PROBLEMS]);

        assert_eq!(
            Recorded::from_snapshot(&snapshot_with(Vec::new())).integrity,
            None
        );
        let other = vec![("integrity-check".to_owned(), "damaged".to_owned())];
        assert!(
            Recorded::from_snapshot(&snapshot_with(other))
                .integrity
                .is_some()
        );
    }

    /// The safety mark is written as docs/format.md documents it and reads
    /// back; a restore whose snapshot id is damaged, or a kind this
    /// version does not know, still reads as a safety snapshot.
    #[test]
    fn safety_headers_round_trip() {
        let restoring = ObjectId::hash(b"restored");
        let record = Recorded {
            safety: Some(Safety::Restore { restoring }),
            ..Recorded::default()
        };
        let headers = record.to_headers();
        let tail = &headers[headers.len() - 2..];
        assert_eq!(
            tail,
            [
                ("safety".to_owned(), "restore".to_owned()),
                ("restoring".to_owned(), restoring.to_string()),
            ]
        );
        let back = Recorded::from_snapshot(&snapshot_with(headers)).safety;
        assert_eq!(back, Some(Safety::Restore { restoring }));

        let rewrite = Recorded {
            safety: Some(Safety::Rewrite),
            ..Recorded::default()
        };
        let back = Recorded::from_snapshot(&snapshot_with(rewrite.to_headers())).safety;
        assert_eq!(back, Some(Safety::Rewrite));

        let header = |key: &str, value: &str| (key.to_owned(), value.to_owned());
        for odd in [
            vec![header("safety", "restore"), header("restoring", "not hex")],
            vec![header("safety", "vacuum")],
        ] {
            let back = Recorded::from_snapshot(&snapshot_with(odd)).safety;
            assert_eq!(back, Some(Safety::Rewrite));
        }
        let plain = Recorded::from_snapshot(&snapshot_with(Vec::new()));
        assert_eq!(plain.safety, None);
    }
}
