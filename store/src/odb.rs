//! The object database: a SQLite file holding objects, refs and the reflog.
//!
//! Layout of `store.db` (see `docs/format.md`):
//! - `packs(seq INTEGER PRIMARY KEY, raw_len, compression, dictionary, data)`:
//!   compressed runs of encoded objects, appended in write order, so a
//!   snapshot's pages land next to each other;
//! - `objects(id PRIMARY KEY, kind, pack, offset, raw_len) WITHOUT ROWID`:
//!   where each object's bytes are (small rows, so keyed by id directly);
//! - `dictionaries(seq INTEGER PRIMARY KEY, data)`: zstd dictionaries;
//! - `refs(name PRIMARY KEY, id)`, `reflog(seq, name, old, new, time, message)`.
//! - `forgotten(snapshot PRIMARY KEY, time)`: snapshots whose image was given
//!   up by retention; their schema and history stay.
//!
//! A [`Transaction`] is one SQLite write transaction: objects, ref edits and
//! reflog entries commit together or not at all, so a crash leaves the old
//! state or the new one, with no fsync/rename choreography.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::cell::RefCell;
use std::rc::Rc;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use crate::codec::{self, DecodeError};
use crate::compress::{self, Compression, Compressor, Decompressors, Dictionary};
use crate::id::{ObjectId, Prefix, PrefixResolution};
use crate::object::{Added, Kind, Object};
use crate::pack::PreparedPack;
use crate::refs::{Change, Expected, RefEdit, RefName, ReflogEntry};

/// The version of the `store.db` table layout, kept in `PRAGMA user_version`.
pub const STORE_FORMAT: i64 = 1;

/// Marks a SQLite file as a migsnap store (`PRAGMA application_id`, "msnp").
pub const APPLICATION_ID: i64 = 0x6d73_6e70;

/// Name of the database file inside a store directory.
pub const STORE_FILE: &str = "store.db";

/// How long a command waits for another process that holds the store's write
/// lock before it gives up with [`Error::Busy`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// There is no store at the path.
    #[error("no migsnap store at {path}")]
    NotAStore {
        /// The directory looked at.
        path: PathBuf,
    },
    /// `init` found a store already there.
    #[error("a migsnap store already exists at {path}")]
    AlreadyExists {
        /// The store directory.
        path: PathBuf,
    },
    /// The file is SQLite but not a migsnap store.
    #[error("{path} is not a migsnap store (application_id {found:#x})")]
    Foreign {
        /// The store file.
        path: PathBuf,
        /// Its application id.
        found: i64,
    },
    /// Written by a newer migsnap.
    #[error(
        "store {path} has format {found}, newer than this migsnap reads ({supported}); upgrade migsnap"
    )]
    NewerFormat {
        /// The store file.
        path: PathBuf,
        /// Its format.
        found: i64,
        /// The newest format this build reads.
        supported: i64,
    },
    /// The store cannot be written.
    #[error("store {path} is read-only")]
    ReadOnly {
        /// The store file.
        path: PathBuf,
    },
    /// Another process kept the store locked past the busy timeout.
    #[error("store {path} is locked by another process")]
    Busy {
        /// The store file.
        path: PathBuf,
    },
    /// The disk is full.
    #[error("disk full while writing store {path}")]
    DiskFull {
        /// The store file.
        path: PathBuf,
    },
    /// An object is missing.
    #[error("object {id} not found")]
    NotFound {
        /// The missing id.
        id: ObjectId,
    },
    /// An object's bytes no longer hash to its id.
    #[error("object {id} is corrupt: its bytes hash to {actual}")]
    Corrupt {
        /// The id it is stored under.
        id: ObjectId,
        /// The hash of the bytes found.
        actual: ObjectId,
    },
    /// An object's stored row cannot be turned back into bytes or decoded.
    #[error("object {id} is corrupt: {reason}")]
    Unreadable {
        /// The id it is stored under.
        id: ObjectId,
        /// What is wrong with it.
        reason: String,
    },
    /// An object is not of the kind the caller needs.
    #[error("object {id} is a {actual}, not a {expected}")]
    WrongKind {
        /// The object.
        id: ObjectId,
        /// What was needed.
        expected: &'static str,
        /// What it is.
        actual: &'static str,
    },
    /// A ref edit's precondition failed: someone else moved the ref.
    #[error("ref {name} was expected to be {expected} but is {actual}")]
    RefMismatch {
        /// The ref.
        name: RefName,
        /// What the edit expected.
        expected: String,
        /// What the ref was.
        actual: String,
    },
    /// A stored ref value is not a valid name or id.
    #[error("store {path} holds an invalid ref '{name}'")]
    BadRef {
        /// The store file.
        path: PathBuf,
        /// The ref as stored.
        name: String,
    },
    /// Any other SQLite failure.
    #[error("store {path}")]
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Creating the store directory failed.
    #[error("cannot create store directory {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn sql_error(path: &Path, source: rusqlite::Error) -> Error {
    let path = path.to_path_buf();
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Busy { path },
        Some(ErrorCode::ReadOnly) => Error::ReadOnly { path },
        Some(ErrorCode::DiskFull) => Error::DiskFull { path },
        _ => Error::Sqlite { path, source },
    }
}

/// Reading and writing objects by id.
///
/// Implemented by [`Store`] (each call its own transaction) and by
/// [`Transaction`] (calls see the transaction's uncommitted writes).
pub trait ObjectStore {
    /// Whether an object is present. Does not verify it.
    fn contains(&self, id: &ObjectId) -> Result<bool>;

    /// Reads and verifies an object: the stored bytes are re-hashed and a
    /// mismatch is [`Error::Corrupt`]. `Ok(None)` when absent.
    fn try_read(&self, id: &ObjectId) -> Result<Option<Object>>;

    /// Stores an object and returns its id. Idempotent: writing an object that
    /// already exists succeeds and changes nothing. Atomic on its own; within a
    /// [`Transaction`] it becomes durable only at commit.
    fn write(&mut self, object: &Object) -> Result<ObjectId>;

    /// Like [`ObjectStore::try_read`], but absence is [`Error::NotFound`].
    fn read(&self, id: &ObjectId) -> Result<Object> {
        self.try_read(id)?.ok_or(Error::NotFound { id: *id })
    }
}

/// Size figures of one stored object, read without decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's kind.
    pub kind: Kind,
    /// Length of its encoded bytes.
    pub raw_len: u64,
    /// The pack holding it.
    pub pack: i64,
}

/// Totals over the whole store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Storage {
    /// Number of objects.
    pub objects: u64,
    /// Their encoded size in bytes.
    pub raw_bytes: u64,
    /// Number of packs.
    pub packs: u64,
    /// Bytes the packs take (compressed).
    pub pack_bytes: u64,
}

/// The last decompressed pack and the zstd contexts of one connection: a
/// restore reads pages in pack order, so one cached pack serves 16 reads.
#[derive(Default)]
struct PackCache {
    last: Option<(i64, Rc<Vec<u8>>)>,
    decompressors: Decompressors,
}

/// A store directory with its open `store.db`.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    dir: PathBuf,
    compression_level: i32,
    cache: RefCell<PackCache>,
}

impl Store {
    /// Creates a store in `dir` (created with mode 0700 if missing; the store
    /// file gets mode 0600 because it holds private data).
    pub fn init(dir: &Path) -> Result<Store> {
        let path = dir.join(STORE_FILE);
        if path.exists() {
            return Err(Error::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        create_private_dir(dir)?;
        create_private_file(&path)?;
        let conn = Connection::open(&path).map_err(|e| sql_error(&path, e))?;
        // page_size and auto_vacuum only take effect before the first table;
        // 64 KiB pages pack 1-4 KiB compressed pages with little slack, and
        // incremental vacuum lets gc return freed space to the file system.
        conn.execute_batch(&format!(
            "PRAGMA page_size = 4096;
             PRAGMA auto_vacuum = INCREMENTAL;
             BEGIN;
             CREATE TABLE packs(
                 seq INTEGER PRIMARY KEY,
                 raw_len INTEGER NOT NULL,
                 compression INTEGER NOT NULL,
                 dictionary INTEGER,
                 data BLOB NOT NULL);
             CREATE TABLE objects(
                 id BLOB PRIMARY KEY,
                 kind INTEGER NOT NULL,
                 pack INTEGER NOT NULL,
                 offset INTEGER NOT NULL,
                 raw_len INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE dictionaries(seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
             CREATE TABLE refs(name TEXT PRIMARY KEY, id BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE reflog(
                 seq INTEGER PRIMARY KEY,
                 name TEXT NOT NULL,
                 old BLOB,
                 new BLOB,
                 time INTEGER NOT NULL,
                 message TEXT NOT NULL);
             CREATE INDEX reflog_by_name ON reflog(name, seq);
             CREATE TABLE forgotten(snapshot BLOB PRIMARY KEY, time INTEGER NOT NULL) WITHOUT ROWID;
             PRAGMA application_id = {APPLICATION_ID};
             PRAGMA user_version = {STORE_FORMAT};
             COMMIT;"
        ))
        .map_err(|e| sql_error(&path, e))?;
        drop(conn);
        Store::open(dir)
    }

    /// Opens the store in `dir` for reading and writing.
    pub fn open(dir: &Path) -> Result<Store> {
        Store::open_with(dir, OpenFlags::SQLITE_OPEN_READ_WRITE)
    }

    /// Opens the store in `dir` without ever writing to it.
    pub fn open_read_only(dir: &Path) -> Result<Store> {
        Store::open_with(dir, OpenFlags::SQLITE_OPEN_READ_ONLY)
    }

    fn open_with(dir: &Path, mode: OpenFlags) -> Result<Store> {
        let path = dir.join(STORE_FILE);
        if !path.is_file() {
            return Err(Error::NotAStore {
                path: dir.to_path_buf(),
            });
        }
        let flags = mode | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| sql_error(&path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sql_error(&path, e))?;
        let (app_id, format): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT application_id FROM pragma_application_id),
                        (SELECT user_version FROM pragma_user_version)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) => Error::Foreign {
                    path: path.clone(),
                    found: 0,
                },
                _ => sql_error(&path, e),
            })?;
        if app_id != APPLICATION_ID {
            return Err(Error::Foreign {
                path,
                found: app_id,
            });
        }
        if format > STORE_FORMAT {
            return Err(Error::NewerFormat {
                path,
                found: format,
                supported: STORE_FORMAT,
            });
        }
        // Keep index pages of the id index in memory during big snapshots
        // without letting memory grow with the database (16 MiB: the id index of a
        // 1 GiB database is about 12 MiB).
        conn.execute_batch("PRAGMA cache_size = -16384; PRAGMA foreign_keys = OFF;")
            .map_err(|e| sql_error(&path, e))?;
        Ok(Store {
            conn,
            path,
            dir: dir.to_path_buf(),
            compression_level: compress::DEFAULT_LEVEL,
            cache: RefCell::default(),
        })
    }

    /// Sets how long to wait for another process's lock on the store
    /// (otherwise [`BUSY_TIMEOUT`]).
    pub fn set_busy_timeout(&mut self, wait: Duration) -> Result<()> {
        self.conn.busy_timeout(wait).map_err(|e| self.sql(e))
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a write transaction. It takes the store's write lock at once
    /// (`BEGIN IMMEDIATE`), so what it reads stays true until it commits.
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sql_error(&path, e))?;
        let mut tx = Transaction {
            tx,
            path,
            cache: &self.cache,
            level: self.compression_level,
            dictionary: None,
            added: Added::default(),
        };
        tx.dictionary = tx.view().dictionary()?;
        Ok(tx)
    }

    /// Read access to the store's current state.
    pub fn view(&self) -> View<'_> {
        View {
            conn: &self.conn,
            path: &self.path,
            cache: &self.cache,
        }
    }

    /// Reclaims the file space that deleted objects left free.
    pub fn vacuum(&self) -> Result<()> {
        // The pragma frees one page per step and commits (and syncs) only
        // when stepped to the end: `execute_batch` steps once, and the error
        // of the commit done by finalize is lost
        // (<https://www.sqlite.org/pragma.html#pragma_incremental_vacuum>).
        self.conn
            .prepare("PRAGMA incremental_vacuum")
            .and_then(|mut stmt| stmt.query([])?.mapped(|_| Ok(())).collect())
            .map_err(|e| self.sql(e))
    }

    fn sql(&self, source: rusqlite::Error) -> Error {
        sql_error(&self.path, source)
    }
}

impl ObjectStore for Store {
    fn contains(&self, id: &ObjectId) -> Result<bool> {
        self.view().contains(id)
    }

    fn try_read(&self, id: &ObjectId) -> Result<Option<Object>> {
        self.view().try_read(id)
    }

    fn write(&mut self, object: &Object) -> Result<ObjectId> {
        let mut tx = self.transaction()?;
        let id = tx.write(object)?;
        tx.commit(&[], "")?;
        Ok(id)
    }
}

/// One atomic change to a store: objects, ref edits and reflog entries.
///
/// Dropping it without [`Transaction::commit`] rolls everything back.
pub struct Transaction<'s> {
    tx: rusqlite::Transaction<'s>,
    path: PathBuf,
    cache: &'s RefCell<PackCache>,
    level: i32,
    dictionary: Option<Dictionary>,
    added: Added,
}

impl Transaction<'_> {
    /// A compressor at the store's level and with its dictionary, for
    /// preparing packs on other threads before [`Transaction::write_pack`].
    pub fn compressor(&self) -> Compressor {
        Compressor::new(self.level, self.dictionary.as_ref())
            .expect("holds because the level is in zstd's range and the dictionary loaded before")
    }

    /// Whether the store has a compression dictionary.
    pub fn has_dictionary(&self) -> bool {
        self.dictionary.is_some()
    }

    /// Stores a zstd dictionary; compressors made from now on use it.
    pub fn add_dictionary(&mut self, bytes: Vec<u8>) -> Result<()> {
        // Validate before storing: a dictionary zstd cannot load would make
        // every pack compressed with it unreadable.
        let candidate = Dictionary { id: 0, bytes };
        Compressor::new(self.level, Some(&candidate)).map_err(|e| Error::Unreadable {
            id: ObjectId::hash(&candidate.bytes),
            reason: format!("zstd rejects the dictionary: {e}"),
        })?;
        self.tx
            .execute(
                "INSERT INTO dictionaries(data) VALUES (?1)",
                [&candidate.bytes],
            )
            .map_err(|e| sql_error(&self.path, e))?;
        self.added.bytes += candidate.bytes.len() as u64;
        self.dictionary = Some(Dictionary {
            id: self.tx.last_insert_rowid(),
            bytes: candidate.bytes,
        });
        Ok(())
    }

    /// Inserts the objects of a prepared pack that the store lacks, and
    /// returns how many were new. A pack whose objects all exist is not
    /// stored at all.
    pub fn write_pack(&mut self, pack: &PreparedPack) -> Result<usize> {
        let view = self.view();
        let mut new = Vec::with_capacity(pack.members.len());
        for member in &pack.members {
            if !view.contains(&member.id)?
                && !new
                    .iter()
                    .any(|m: &&crate::pack::PackMember| m.id == member.id)
            {
                new.push(member);
            }
        }
        if new.is_empty() {
            return Ok(0);
        }
        let sql = |e| sql_error(&self.path, e);
        self.tx
            .prepare_cached(
                "INSERT INTO packs(raw_len, compression, dictionary, data) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    pack.raw_len as i64,
                    pack.compression as u8,
                    pack.dictionary,
                    pack.data
                ])
            })
            .map_err(sql)?;
        let seq = self.tx.last_insert_rowid();
        let mut insert = self
            .tx
            .prepare_cached(
                "INSERT OR REPLACE INTO objects(id, kind, pack, offset, raw_len)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql)?;
        for member in &new {
            insert
                .execute(params![
                    member.id.as_bytes(),
                    member.kind as u8,
                    seq,
                    member.offset,
                    member.len
                ])
                .map_err(sql)?;
        }
        self.added.objects += new.len() as u64;
        self.added.bytes += pack.data.len() as u64;
        Ok(new.len())
    }

    /// What this transaction has added so far.
    pub fn added(&self) -> Added {
        self.added
    }

    /// Read access that sees this transaction's own writes.
    pub fn view(&self) -> View<'_> {
        View {
            conn: &self.tx,
            path: &self.path,
            cache: self.cache,
        }
    }

    /// Marks a snapshot's image as given up by retention at `time`. Its image
    /// becomes collectable by gc after the grace period; the snapshot object,
    /// its schema and its place in history stay.
    pub fn forget_image(&mut self, snapshot: &ObjectId, time: i64) -> Result<()> {
        self.tx
            .execute(
                "INSERT OR IGNORE INTO forgotten(snapshot, time) VALUES (?1, ?2)",
                params![snapshot.as_bytes(), time],
            )
            .map_err(|e| sql_error(&self.path, e))?;
        Ok(())
    }

    /// Deletes the given objects' index rows; their bytes go with
    /// [`Transaction::delete_orphan_packs`].
    ///
    /// The caller must have proven the objects unreachable inside this
    /// transaction: because the transaction holds the write lock, no snapshot
    /// can start to use them before the deletion commits.
    pub fn delete_objects(&mut self, ids: &[ObjectId]) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM objects WHERE id = ?1")
            .map_err(|e| sql_error(&self.path, e))?;
        for id in ids {
            stmt.execute([id.as_bytes()])
                .map_err(|e| sql_error(&self.path, e))?;
        }
        Ok(())
    }

    /// Deletes every pack that no object uses any more and returns the
    /// stored bytes freed. A pack with some live objects stays whole.
    pub fn delete_orphan_packs(&mut self) -> Result<u64> {
        let sql = |e| sql_error(&self.path, e);
        let orphans = "FROM packs WHERE seq NOT IN (SELECT pack FROM objects)";
        let freed: i64 = self
            .tx
            .query_row(
                &format!("SELECT coalesce(sum(length(data)), 0) {orphans}"),
                [],
                |row| row.get(0),
            )
            .map_err(sql)?;
        self.tx
            .execute(&format!("DELETE {orphans}"), [])
            .map_err(sql)?;
        *self.cache.borrow_mut() = PackCache::default();
        Ok(freed.max(0) as u64)
    }

    /// Drops the forgotten marks of snapshots that no longer exist.
    pub fn drop_forgotten_marks(&mut self, snapshots: &[ObjectId]) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM forgotten WHERE snapshot = ?1")
            .map_err(|e| sql_error(&self.path, e))?;
        for id in snapshots {
            stmt.execute([id.as_bytes()])
                .map_err(|e| sql_error(&self.path, e))?;
        }
        Ok(())
    }

    /// Removes reflog entries made at or before `cutoff` (seconds since the
    /// epoch).
    pub fn expire_reflog(&mut self, cutoff: i64) -> Result<usize> {
        self.tx
            .execute("DELETE FROM reflog WHERE time <= ?1", [cutoff])
            .map_err(|e| sql_error(&self.path, e))
    }

    /// Applies `edits` with compare-and-swap checks, appends one reflog entry
    /// per edit with `message`, and commits everything written so far. If any
    /// expectation fails, nothing at all is committed.
    pub fn commit(self, edits: &[RefEdit], message: &str) -> Result<()> {
        let time = now();
        for edit in edits {
            let actual = self.view().find_ref(&edit.name)?;
            let expected = match edit.change {
                Change::Update { expected, .. } | Change::Delete { expected } => expected,
            };
            let ok = match expected {
                Expected::Any => true,
                Expected::MustNotExist => actual.is_none(),
                Expected::MustEqual(id) => actual == Some(id),
            };
            if !ok {
                return Err(Error::RefMismatch {
                    name: edit.name.clone(),
                    expected: match expected {
                        Expected::Any => "anything".into(),
                        Expected::MustNotExist => "absent".into(),
                        Expected::MustEqual(id) => id.to_string(),
                    },
                    actual: actual.map_or_else(|| "absent".into(), |id| id.to_string()),
                });
            }
            let new = match edit.change {
                Change::Update { new, .. } => {
                    self.tx
                        .execute(
                            "INSERT INTO refs(name, id) VALUES (?1, ?2)
                             ON CONFLICT(name) DO UPDATE SET id = excluded.id",
                            params![edit.name.as_str(), new.as_bytes()],
                        )
                        .map_err(|e| sql_error(&self.path, e))?;
                    Some(new)
                }
                Change::Delete { .. } => {
                    self.tx
                        .execute("DELETE FROM refs WHERE name = ?1", [edit.name.as_str()])
                        .map_err(|e| sql_error(&self.path, e))?;
                    None
                }
            };
            self.tx
                .execute(
                    "INSERT INTO reflog(name, old, new, time, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        edit.name.as_str(),
                        actual.as_ref().map(|id| id.as_bytes().to_vec()),
                        new.as_ref().map(|id| id.as_bytes().to_vec()),
                        time,
                        message
                    ],
                )
                .map_err(|e| sql_error(&self.path, e))?;
        }
        self.tx.commit().map_err(|e| sql_error(&self.path, e))
    }
}

impl ObjectStore for Transaction<'_> {
    fn contains(&self, id: &ObjectId) -> Result<bool> {
        self.view().contains(id)
    }

    fn try_read(&self, id: &ObjectId) -> Result<Option<Object>> {
        self.view().try_read(id)
    }

    fn write(&mut self, object: &Object) -> Result<ObjectId> {
        let pack = PreparedPack::object(object, &mut self.compressor());
        self.write_pack(&pack)?;
        Ok(pack.members[0].id)
    }
}

/// A pack row as stored: compressed bytes plus what is needed to unpack them.
pub(crate) struct RawPack {
    pub(crate) seq: i64,
    raw_len: i64,
    compression: i64,
    pub(crate) dictionary: Option<i64>,
    data: Vec<u8>,
}

impl RawPack {
    fn unreadable(&self, reason: String) -> Error {
        Error::Unreadable {
            id: ObjectId::from_bytes([0; 32]),
            reason: format!("pack {}: {reason}", self.seq),
        }
    }

    /// Decompresses the pack; `decompressors` must hold a context for its
    /// dictionary. The declared length bounds the output.
    pub(crate) fn unpack(self, decompressors: &mut Decompressors) -> Result<Vec<u8>> {
        let compression = Compression::from_tag(self.compression)
            .ok_or_else(|| self.unreadable(format!("unknown compression {}", self.compression)))?;
        let raw_len = usize::try_from(self.raw_len)
            .ok()
            .filter(|len| *len <= codec::DECODE_LIMIT)
            .ok_or_else(|| self.unreadable(format!("impossible length {}", self.raw_len)))?;
        // Contexts for dictionaries are the caller's to add; the plain one is
        // made here on first use.
        if compression == Compression::Zstd && self.dictionary.is_none() && !decompressors.has(None)
        {
            decompressors
                .add(None)
                .map_err(|e| self.unreadable(format!("zstd context: {e}")))?;
        }
        let seq = self.seq;
        let bytes = decompressors
            .decompress(compression, self.dictionary, self.data, raw_len)
            .map_err(|e| Error::Unreadable {
                id: ObjectId::from_bytes([0; 32]),
                reason: format!("pack {seq} does not decompress: {e}"),
            })?;
        if bytes.len() != raw_len {
            return Err(Error::Unreadable {
                id: ObjectId::from_bytes([0; 32]),
                reason: format!("pack {seq} holds {} bytes, not {raw_len}", bytes.len()),
            });
        }
        Ok(bytes)
    }
}

/// Cuts object `id` out of an unpacked pack and checks its hash.
pub(crate) fn extract(
    pack_bytes: &[u8],
    id: &ObjectId,
    pack: i64,
    offset: i64,
    len: i64,
) -> Result<Vec<u8>> {
    let range = usize::try_from(offset)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(start, len)| Some(start..start.checked_add(len)?))
        .filter(|range| range.end <= pack_bytes.len())
        .ok_or_else(|| Error::Unreadable {
            id: *id,
            reason: format!("its place {offset}+{len} is outside pack {pack}"),
        })?;
    let encoded = pack_bytes[range].to_vec();
    let actual = ObjectId::hash(&encoded);
    if actual != *id {
        return Err(Error::Corrupt { id: *id, actual });
    }
    Ok(encoded)
}

/// Seconds since the Unix epoch, for reflog and retention times.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Read access to one state of a store: the committed state for
/// [`Store::view`], or a transaction's state including its own writes.
#[derive(Clone, Copy)]
pub struct View<'a> {
    conn: &'a Connection,
    path: &'a Path,
    cache: &'a RefCell<PackCache>,
}

impl View<'_> {
    fn sql(&self, source: rusqlite::Error) -> Error {
        sql_error(self.path, source)
    }

    /// Runs `reads` inside one read transaction (a savepoint, so it nests in
    /// a write transaction too): every read sees the same state of the store,
    /// and SQLite takes its file lock once instead of once per statement,
    /// which is most of the cost of reading many small rows.
    pub fn consistent<T, E: From<Error>>(
        &self,
        reads: impl FnOnce(View<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.conn
            .execute_batch("SAVEPOINT migsnap_read")
            .map_err(|e| self.sql(e))?;
        let result = reads(*self);
        // Releasing a read-only savepoint cannot lose anything; a failure here
        // only matters if the reads themselves succeeded.
        let released = self
            .conn
            .execute_batch("RELEASE migsnap_read")
            .map_err(|e| self.sql(e));
        let value = result?;
        released?;
        Ok(value)
    }

    /// See [`ObjectStore::contains`]. An object whose pack is gone does not
    /// count as present, so writing it again heals the store.
    pub fn contains(&self, id: &ObjectId) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT 1 FROM objects JOIN packs ON packs.seq = objects.pack WHERE objects.id = ?1",
            )
            .and_then(|mut stmt| stmt.exists([id.as_bytes()]))
            .map_err(|e| self.sql(e))
    }

    /// See [`ObjectStore::try_read`].
    pub fn try_read(&self, id: &ObjectId) -> Result<Option<Object>> {
        let Some(bytes) = self.try_read_encoded(id)? else {
            return Ok(None);
        };
        codec::decode_object(&bytes)
            .map(Some)
            .map_err(|e: DecodeError| Error::Unreadable {
                id: *id,
                reason: e.to_string(),
            })
    }

    /// Reads an object's encoded bytes and checks they hash to `id`.
    fn try_read_encoded(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        let Some((pack, offset, len)) = self.locate(id)? else {
            return Ok(None);
        };
        let bytes = self.pack_bytes(pack).map_err(|e| match e {
            Error::Unreadable { reason, .. } => Error::Unreadable { id: *id, reason },
            other => other,
        })?;
        extract(&bytes, id, pack, offset, len).map(Some)
    }

    /// The decompressed bytes of pack `seq`, from the one-pack cache when the
    /// previous read used the same pack.
    fn pack_bytes(&self, seq: i64) -> Result<Rc<Vec<u8>>> {
        let mut cache = self.cache.borrow_mut();
        if let Some((_, bytes)) = cache.last.as_ref().filter(|(cached, _)| *cached == seq) {
            return Ok(Rc::clone(bytes));
        }
        let raw = self.fetch_pack(seq)?;
        if let Some(dictionary) = raw
            .dictionary
            .filter(|d| !cache.decompressors.has(Some(*d)))
        {
            let dict = self
                .load_dictionary(dictionary)?
                .ok_or_else(|| raw.unreadable(format!("needs missing dictionary {dictionary}")))?;
            cache.decompressors.add(Some(&dict)).map_err(|e| {
                raw.unreadable(format!("dictionary {dictionary} does not load: {e}"))
            })?;
        }
        let bytes = Rc::new(raw.unpack(&mut cache.decompressors)?);
        cache.last = Some((seq, Rc::clone(&bytes)));
        Ok(bytes)
    }

    /// Reads pack row `seq` as stored, without decompressing it.
    pub(crate) fn fetch_pack(&self, seq: i64) -> Result<RawPack> {
        let missing = || Error::Unreadable {
            id: ObjectId::from_bytes([0; 32]),
            reason: format!("its pack {seq} is missing"),
        };
        let (raw_len, compression, dictionary, data) = self
            .conn
            .prepare_cached(
                "SELECT raw_len, compression, dictionary, data FROM packs WHERE seq = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([seq], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, Vec<u8>>(3)?,
                    ))
                })
                .optional()
            })
            .map_err(|e| self.sql(e))?
            .ok_or_else(missing)?;
        Ok(RawPack {
            seq,
            raw_len,
            compression,
            dictionary,
            data,
        })
    }

    /// Where object `id` lives: its pack, offset and length.
    pub(crate) fn locate(&self, id: &ObjectId) -> Result<Option<(i64, i64, i64)>> {
        self.conn
            .prepare_cached("SELECT pack, offset, raw_len FROM objects WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([id.as_bytes()], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .optional()
            })
            .map_err(|e| self.sql(e))
    }

    /// Every compression dictionary, for decompressing on other threads.
    pub(crate) fn dictionaries(&self) -> Result<Vec<Dictionary>> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, data FROM dictionaries ORDER BY seq")
            .map_err(|e| self.sql(e))?;
        stmt.query_map([], |row| {
            Ok(Dictionary {
                id: row.get(0)?,
                bytes: row.get(1)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.sql(e))
    }

    fn load_dictionary(&self, id: i64) -> Result<Option<Dictionary>> {
        self.conn
            .prepare_cached("SELECT data FROM dictionaries WHERE seq = ?1")
            .and_then(|mut stmt| stmt.query_row([id], |row| row.get(0)).optional())
            .map_err(|e| self.sql(e))
            .map(|bytes| bytes.map(|bytes| Dictionary { id, bytes }))
    }

    /// The newest compression dictionary, if the store has one.
    pub fn dictionary(&self) -> Result<Option<Dictionary>> {
        let newest: Option<i64> = self
            .conn
            .query_row("SELECT max(seq) FROM dictionaries", [], |row| row.get(0))
            .map_err(|e| self.sql(e))?;
        match newest {
            Some(id) => self.load_dictionary(id),
            None => Ok(None),
        }
    }

    /// Reads a snapshot; absence is [`Error::NotFound`] and any other kind
    /// is [`Error::WrongKind`].
    pub fn read_snapshot(&self, id: &ObjectId) -> Result<crate::object::Snapshot> {
        match self.try_read(id)? {
            Some(Object::Snapshot(snapshot)) => Ok(snapshot),
            Some(other) => Err(Error::WrongKind {
                id: *id,
                expected: "snapshot",
                actual: other.kind().name(),
            }),
            None => Err(Error::NotFound { id: *id }),
        }
    }

    /// Reads a blob's bytes; any other kind is [`Error::WrongKind`].
    pub fn read_blob(&self, id: &ObjectId) -> Result<Vec<u8>> {
        match self.try_read(id)? {
            Some(Object::Blob(bytes)) => Ok(bytes),
            Some(other) => Err(Error::WrongKind {
                id: *id,
                expected: "blob",
                actual: other.kind().name(),
            }),
            None => Err(Error::NotFound { id: *id }),
        }
    }

    /// Size figures of an object without reading its data.
    pub fn info(&self, id: &ObjectId) -> Result<Option<ObjectInfo>> {
        self.conn
            .prepare_cached("SELECT kind, raw_len, pack FROM objects WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([id.as_bytes()], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .optional()
            })
            .map_err(|e| self.sql(e))?
            .map(|(kind, raw_len, pack)| {
                let kind = u8::try_from(kind)
                    .ok()
                    .and_then(Kind::from_byte)
                    .ok_or_else(|| Error::Unreadable {
                        id: *id,
                        reason: format!("unknown kind {kind}"),
                    })?;
                Ok(ObjectInfo {
                    kind,
                    raw_len: raw_len.max(0) as u64,
                    pack,
                })
            })
            .transpose()
    }

    /// The target of a ref, if it exists.
    pub fn find_ref(&self, name: &RefName) -> Result<Option<ObjectId>> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT id FROM refs WHERE name = ?1")
            .and_then(|mut stmt| stmt.query_row([name.as_str()], |row| row.get(0)).optional())
            .map_err(|e| self.sql(e))?;
        bytes
            .map(|b| ObjectId::try_from_slice(&b).ok_or_else(|| self.bad_ref(name.as_str())))
            .transpose()
    }

    fn bad_ref(&self, name: &str) -> Error {
        Error::BadRef {
            path: self.path.to_path_buf(),
            name: name.to_owned(),
        }
    }

    /// Resolves a hex prefix to the objects of `kind` that start with it.
    /// Naming is by kind because a short prefix of a snapshot id would
    /// otherwise collide with one of the many page blobs.
    pub fn resolve_prefix(&self, prefix: &Prefix, kind: Kind) -> Result<PrefixResolution> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id FROM objects WHERE id BETWEEN ?1 AND ?2 AND kind = ?3
                 ORDER BY id LIMIT 10",
            )
            .map_err(|e| self.sql(e))?;
        let ids = stmt
            .query_map(
                params![
                    prefix.lower_bound().as_bytes(),
                    prefix.upper_bound().as_bytes(),
                    kind as u8
                ],
                |row| row.get::<_, Vec<u8>>(0),
            )
            .map_err(|e| self.sql(e))?
            .filter_map(|row| row.ok().and_then(|b| ObjectId::try_from_slice(&b)))
            .collect::<Vec<_>>();
        Ok(match ids.as_slice() {
            [] => PrefixResolution::None,
            [one] => PrefixResolution::One(*one),
            _ => PrefixResolution::Ambiguous(ids),
        })
    }

    /// All refs whose name starts with `prefix`, sorted by name.
    pub fn refs(&self, prefix: &str) -> Result<Vec<(RefName, ObjectId)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, id FROM refs WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([prefix], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, id) = row.map_err(|e| self.sql(e))?;
            match (RefName::new(name.clone()), ObjectId::try_from_slice(&id)) {
                (Ok(name), Some(id)) => out.push((name, id)),
                _ => return Err(self.bad_ref(&name)),
            }
        }
        Ok(out)
    }

    /// The reflog of one ref, or of every ref when `name` is `None`, oldest
    /// first.
    pub fn reflog(&self, name: Option<&RefName>) -> Result<Vec<ReflogEntry>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, old, new, time, message FROM reflog
                 WHERE ?1 IS NULL OR name = ?1 ORDER BY seq",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([name.map(RefName::as_str)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<Vec<u8>>>(1)?,
                    row.get::<_, Option<Vec<u8>>>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, old, new, time, message) = row.map_err(|e| self.sql(e))?;
            let id = |bytes: Option<Vec<u8>>| match bytes {
                None => Ok(None),
                Some(b) => ObjectId::try_from_slice(&b)
                    .map(Some)
                    .ok_or_else(|| self.bad_ref(&name)),
            };
            out.push(ReflogEntry {
                name: RefName::new(name.clone()).map_err(|_| self.bad_ref(&name))?,
                old: id(old)?,
                new: id(new)?,
                time,
                message,
            });
        }
        Ok(out)
    }

    /// Whether retention gave up the image of `snapshot`.
    pub fn is_forgotten(&self, snapshot: &ObjectId) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM forgotten WHERE snapshot = ?1")
            .and_then(|mut stmt| stmt.exists([snapshot.as_bytes()]))
            .map_err(|e| self.sql(e))
    }

    /// Snapshots whose image retention gave up, with the time it did.
    pub fn forgotten(&self) -> Result<Vec<(ObjectId, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT snapshot, time FROM forgotten ORDER BY snapshot")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, time) = row.map_err(|e| self.sql(e))?;
            let id = ObjectId::try_from_slice(&id).ok_or_else(|| self.bad_ref("forgotten"))?;
            out.push((id, time));
        }
        Ok(out)
    }

    /// Calls `each` with the id and size figures of every object, in pack
    /// order (so reading them one by one hits the pack cache), without
    /// decoding any. Rows whose id or kind is unreadable are passed with
    /// `None` so fsck can report them.
    pub fn for_each_object(
        &self,
        mut each: impl FnMut(Option<ObjectId>, Option<ObjectInfo>),
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, kind, raw_len, pack FROM objects ORDER BY pack, offset")
            .map_err(|e| self.sql(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.sql(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let id: Vec<u8> = row.get(0).map_err(|e| self.sql(e))?;
            let kind: i64 = row.get(1).map_err(|e| self.sql(e))?;
            let raw_len: i64 = row.get(2).map_err(|e| self.sql(e))?;
            let pack: i64 = row.get(3).map_err(|e| self.sql(e))?;
            let info = u8::try_from(kind)
                .ok()
                .and_then(Kind::from_byte)
                .map(|kind| ObjectInfo {
                    kind,
                    raw_len: raw_len.max(0) as u64,
                    pack,
                });
            each(ObjectId::try_from_slice(&id), info);
        }
        Ok(())
    }

    /// Object and pack totals.
    pub fn storage(&self) -> Result<Storage> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM objects), (SELECT coalesce(sum(raw_len), 0) FROM objects),
                        (SELECT count(*) FROM packs), (SELECT coalesce(sum(length(data)), 0) FROM packs)",
                [],
                |row| {
                    Ok(Storage {
                        objects: row.get::<_, i64>(0)?.max(0) as u64,
                        raw_bytes: row.get::<_, i64>(1)?.max(0) as u64,
                        packs: row.get::<_, i64>(2)?.max(0) as u64,
                        pack_bytes: row.get::<_, i64>(3)?.max(0) as u64,
                    })
                },
            )
            .map_err(|e| self.sql(e))
    }

    /// Size of the store file in bytes.
    pub fn file_size(&self) -> Result<u64> {
        let size: i64 = self
            .conn
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.sql(e))?;
        Ok(size.max(0) as u64)
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })
}

fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
}
