//! The object database: a SQLite file holding objects, refs and the reflog.
//!
//! Layout of `store.db` (see `docs/format.md`):
//! - `packs(seq INTEGER PRIMARY KEY, raw_len, compression, dictionary, data)`:
//!   compressed runs of encoded objects, appended in write order, so a
//!   snapshot's pages land next to each other;
//! - `objects(id PRIMARY KEY, kind, pack, offset, raw_len) WITHOUT ROWID`:
//!   where each object's bytes are (small rows, so keyed by id directly);
//! - `dictionaries(seq INTEGER PRIMARY KEY, data, id)`: zstd dictionaries,
//!   named by the BLAKE3 hash of their bytes (`id`), which is how packs name them;
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

use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use crate::codec::{self, DecodeError};
use crate::compress::{self, Compression, Compressor, Decompressors, Dictionary};
use crate::id::{ObjectId, Prefix, PrefixResolution};
use crate::object::{Added, Kind, Object};
use crate::pack::PreparedPack;
use crate::refs::{Change, Expected, RefEdit, RefName, ReflogEntry};

/// The version of the `store.db` table layout, kept in `PRAGMA user_version`.
/// Format 2 names dictionaries by hash; a format 1 store is upgraded in place
/// the first time it is opened for writing ([`Store::open`]).
pub const STORE_FORMAT: i64 = 2;

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
    /// A format 1 store opened read-only: it must be opened for writing once
    /// so it can be upgraded.
    #[error(
        "store {path} has the old format {found}; run any migsnap command once (it opens the store for writing) to upgrade it"
    )]
    OldFormat {
        /// The store file.
        path: PathBuf,
        /// Its format.
        found: i64,
    },
    /// A write was attempted after SQLite had ended the transaction (it rolls
    /// back by itself on a full disk or I/O error): it would have committed
    /// on its own, outside the all-or-nothing transaction, so it is refused.
    #[error("store {path}: write refused because its transaction was already rolled back")]
    OutsideTransaction {
        /// The store file.
        path: PathBuf,
    },
    /// `store.db` lacks a table the format has, or holds a value no
    /// migsnap writes (found without reading objects).
    #[error("store {path} is damaged: {reason}")]
    Damaged {
        /// The store file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A write was attempted after an earlier write of the same transaction
    /// failed: what it would add to a partly written transaction could be
    /// committed as if whole.
    #[error("store {path}: write refused because an earlier write of its transaction failed")]
    AfterFailedWrite {
        /// The store file.
        path: PathBuf,
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
    ///
    /// Atomic: the store is built under a temporary name and linked into
    /// place only when complete, so an interrupted or failed init leaves no
    /// half-made `store.db`, and of two racing inits exactly one succeeds.
    /// An empty `store.db` (left by an init before this rule) counts as absent.
    pub fn init(dir: &Path) -> Result<Store> {
        let path = dir.join(STORE_FILE);
        let empty = std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0);
        if path.symlink_metadata().is_ok() && !empty {
            return Err(Error::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        create_private_dir(dir)?;
        remove_stale_temps(dir);
        let temp = dir.join(format!("{STORE_FILE}.init-{}", std::process::id()));
        let _ = std::fs::remove_file(&temp);
        let built = build_store(&temp).and_then(|()| {
            if empty {
                let _ = std::fs::remove_file(&path);
            }
            // A hard link never replaces an existing file: the loser of a
            // race sees AlreadyExists. A file system without hard links gets
            // a rename, atomic too but not race-free against another init.
            match std::fs::hard_link(&temp, &path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(Error::AlreadyExists {
                        path: dir.to_path_buf(),
                    })
                }
                Err(_) if !path.exists() => {
                    std::fs::rename(&temp, &path).map_err(|source| Error::Io {
                        path: path.clone(),
                        source,
                    })
                }
                Err(source) => Err(Error::Io {
                    path: path.clone(),
                    source,
                }),
            }
        });
        let _ = std::fs::remove_file(&temp);
        built?;
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
        // A dropped table would otherwise surface as "no such table" from
        // whichever statement first needs it.
        let missing: Option<String> = conn
            .query_row(
                "SELECT name FROM (SELECT 'packs' AS name UNION ALL SELECT 'objects'
                     UNION ALL SELECT 'dictionaries' UNION ALL SELECT 'refs'
                     UNION ALL SELECT 'reflog' UNION ALL SELECT 'forgotten')
                 WHERE name NOT IN (SELECT name FROM sqlite_schema WHERE type = 'table')
                 LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| sql_error(&path, e))?;
        if let Some(table) = missing {
            return Err(Error::Damaged {
                path,
                reason: format!("its table '{table}' is missing"),
            });
        }
        if format < STORE_FORMAT {
            if mode.contains(OpenFlags::SQLITE_OPEN_READ_ONLY) {
                return Err(Error::OldFormat {
                    path,
                    found: format,
                });
            }
            upgrade(&conn).map_err(|e| sql_error(&path, e))?;
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
            failed: false,
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
    /// Set when an object or dictionary write failed: the transaction may
    /// only be dropped (rolled back) then.
    failed: bool,
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

    /// Fails unless the SQLite transaction is still open. SQLite rolls a
    /// transaction back by itself on some errors (a full disk, an I/O
    /// error); a statement run after that would commit on its own, so every
    /// write checks first.
    fn still_open(&self) -> Result<()> {
        if self.failed {
            return Err(Error::AfterFailedWrite {
                path: self.path.clone(),
            });
        }
        if self.tx.is_autocommit() {
            return Err(Error::OutsideTransaction {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Stores a zstd dictionary; compressors made from now on use it.
    pub fn add_dictionary(&mut self, bytes: Vec<u8>) -> Result<()> {
        // Validate before storing: a dictionary zstd cannot load would make
        // every pack compressed with it unreadable.
        let candidate = Dictionary::new(bytes);
        Compressor::new(self.level, Some(&candidate)).map_err(|e| Error::Unreadable {
            id: candidate.id,
            reason: format!("zstd rejects the dictionary: {e}"),
        })?;
        self.still_open()?;
        let added = self
            .tx
            .execute(
                "INSERT INTO dictionaries(data, id) SELECT ?1, ?2
                 WHERE NOT EXISTS (SELECT 1 FROM dictionaries WHERE id = ?2)",
                params![&candidate.bytes, candidate.id.as_bytes()],
            )
            .map_err(|e| sql_error(&self.path, e));
        self.failed |= added.is_err();
        let added = added?;
        if added > 0 {
            self.added.bytes += candidate.bytes.len() as u64;
        }
        self.dictionary = Some(candidate);
        Ok(())
    }

    /// Inserts the objects of a prepared pack that the store lacks, and
    /// returns how many were new. A pack whose objects all exist is not
    /// stored at all. After a failure every later write of the transaction
    /// is refused.
    pub fn write_pack(&mut self, pack: &PreparedPack) -> Result<usize> {
        let written = self.insert_pack(pack);
        self.failed |= written.is_err();
        written
    }

    fn insert_pack(&mut self, pack: &PreparedPack) -> Result<usize> {
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
        self.still_open()?;
        self.tx
            .prepare_cached(
                "INSERT INTO packs(raw_len, compression, dictionary, data) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    pack.raw_len as i64,
                    pack.compression as u8,
                    pack.dictionary.as_ref().map(ObjectId::as_bytes),
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
            if self.tx.is_autocommit() {
                return Err(Error::OutsideTransaction {
                    path: self.path.clone(),
                });
            }
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
        self.still_open()?;
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
        self.still_open()?;
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
        self.still_open()?;
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
        self.still_open()?;
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

    /// Deletes every ref and reflog row that cannot be read, and returns
    /// them. The object graph is untouched: what only a broken ref kept
    /// reachable stays until gc finds it unreachable.
    pub fn delete_broken_refs(&mut self) -> Result<Vec<BrokenRef>> {
        self.delete_broken(|_| true)
    }

    /// Deletes the ref row called `name` if it cannot be read (its id is
    /// damaged), with its unreadable reflog rows; says whether there was one.
    pub fn delete_broken_ref(&mut self, name: &RefName) -> Result<bool> {
        let deleted = self.delete_broken(|broken| broken.name == name.as_str())?;
        Ok(deleted.iter().any(|broken| broken.seq.is_none()))
    }

    fn delete_broken(&mut self, which: impl Fn(&BrokenRef) -> bool) -> Result<Vec<BrokenRef>> {
        let broken: Vec<BrokenRef> = self
            .view()
            .broken_refs()?
            .into_iter()
            .filter(which)
            .collect();
        for row in &broken {
            self.still_open()?;
            let sql = match row.seq {
                None => "DELETE FROM refs WHERE name = ?1",
                Some(_) => "DELETE FROM reflog WHERE seq = ?1",
            };
            self.tx
                .execute(sql, [&row.key])
                .map_err(|e| sql_error(&self.path, e))?;
        }
        Ok(broken)
    }

    /// Removes reflog entries made at or before `cutoff` (seconds since the
    /// epoch).
    pub fn expire_reflog(&mut self, cutoff: i64) -> Result<usize> {
        self.still_open()?;
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
            self.still_open()?;
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
        // Committing a transaction SQLite already rolled back would report
        // success for writes that did not happen.
        self.still_open()?;
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
    pub(crate) dictionary: Option<ObjectId>,
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

    /// See [`ObjectStore::contains`]. An object whose pack is gone, or whose
    /// pack needs a dictionary the store lacks, does not count as present, so
    /// writing it again heals the store.
    pub fn contains(&self, id: &ObjectId) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT 1 FROM objects JOIN packs ON packs.seq = objects.pack
                 WHERE objects.id = ?1 AND (packs.dictionary IS NULL
                     OR packs.dictionary IN (SELECT id FROM dictionaries))",
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
                .load_dictionary(&dictionary)?
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
                        row.get::<_, rusqlite::types::Value>(2)?,
                        row.get::<_, Vec<u8>>(3)?,
                    ))
                })
                .optional()
            })
            .map_err(|e| self.sql(e))?
            .ok_or_else(missing)?;
        let dictionary = dictionary_ref(&dictionary).map_err(|reason| Error::Unreadable {
            id: ObjectId::from_bytes([0; 32]),
            reason: format!("pack {seq} {reason}"),
        })?;
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
    /// Each is named by the hash of the bytes read, not by the stored `id`,
    /// so a damaged row can never stand in for the dictionary a pack needs.
    pub(crate) fn dictionaries(&self) -> Result<Vec<Dictionary>> {
        let mut stmt = self
            .conn
            .prepare("SELECT data FROM dictionaries ORDER BY seq")
            .map_err(|e| self.sql(e))?;
        stmt.query_map([], |row| Ok(Dictionary::new(row.get(0)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))
    }

    /// The dictionary whose bytes hash to `id`, if the store has it.
    fn load_dictionary(&self, id: &ObjectId) -> Result<Option<Dictionary>> {
        let rows: Vec<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT data FROM dictionaries WHERE id = ?1")
            .and_then(|mut stmt| stmt.query_map([id.as_bytes()], |row| row.get(0))?.collect())
            .map_err(|e| self.sql(e))?;
        Ok(rows
            .into_iter()
            .map(Dictionary::new)
            .find(|dict| dict.id == *id))
    }

    /// The newest compression dictionary, if the store has one.
    pub fn dictionary(&self) -> Result<Option<Dictionary>> {
        self.conn
            .query_row(
                "SELECT data FROM dictionaries ORDER BY seq DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
            .map(|bytes| bytes.map(Dictionary::new))
    }

    /// Packs and dictionaries that cannot be used as stored, without reading
    /// any pack data: a dictionary row whose bytes do not hash to its `id`,
    /// and a pack that names a dictionary the store lacks.
    pub fn dictionary_problems(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut rows = self
            .conn
            .prepare("SELECT seq, id, data FROM dictionaries ORDER BY seq")
            .map_err(|e| self.sql(e))?;
        let mut rows = rows.query([]).map_err(|e| self.sql(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let seq: i64 = row.get(0).map_err(|e| self.sql(e))?;
            let id: rusqlite::types::Value = row.get(1).map_err(|e| self.sql(e))?;
            let data: Vec<u8> = row.get(2).map_err(|e| self.sql(e))?;
            let actual = ObjectId::hash(&data);
            if dictionary_ref(&id) != Ok(Some(actual)) {
                problems.push(format!(
                    "dictionary row {seq} is damaged: its bytes hash to {actual}, not to its id"
                ));
            }
        }
        let mut packs = self
            .conn
            .prepare(
                "SELECT seq, dictionary FROM packs WHERE dictionary IS NOT NULL
                 AND dictionary NOT IN (SELECT id FROM dictionaries WHERE id IS NOT NULL)
                 ORDER BY seq",
            )
            .map_err(|e| self.sql(e))?;
        let mut rows = packs.query([]).map_err(|e| self.sql(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let seq: i64 = row.get(0).map_err(|e| self.sql(e))?;
            let dictionary: rusqlite::types::Value = row.get(1).map_err(|e| self.sql(e))?;
            problems.push(match dictionary_ref(&dictionary) {
                Ok(Some(id)) => format!("pack {seq} needs dictionary {id}, which the store lacks"),
                Ok(None) => continue,
                Err(reason) => format!("pack {seq} {reason}"),
            });
        }
        Ok(problems)
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

    /// All refs whose name starts with `prefix`, sorted by name. A row that
    /// cannot be read is left out, so one damaged ref does not stop every
    /// command: [`View::broken_refs`] lists such rows, and gc refuses to run
    /// while there is one.
    pub fn refs(&self, prefix: &str) -> Result<Vec<(RefName, ObjectId)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, id FROM refs WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([prefix], |row| Ok(ref_row(row.get(0)?, row.get(1)?)))
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(good) = row.map_err(|e| self.sql(e))? {
                out.push(good);
            }
        }
        Ok(out)
    }

    /// The reflog of one ref, or of every ref when `name` is `None`, oldest
    /// first. Like [`View::refs`], it leaves out rows that cannot be read.
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
                Ok(reflog_row(
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(entry) = row.map_err(|e| self.sql(e))? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Ref and reflog rows that cannot be read (a name that breaks the
    /// [`RefName`] rules, an id that is not 32 bytes, a value of the wrong
    /// type), in table order.
    pub fn broken_refs(&self) -> Result<Vec<BrokenRef>> {
        let mut out = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT name, id FROM refs ORDER BY name")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |row| {
                let name: Value = row.get(0)?;
                Ok((name.clone(), ref_row(name, row.get(1)?)))
            })
            .map_err(|e| self.sql(e))?;
        for row in rows {
            if let (key, Err(reason)) = row.map_err(|e| self.sql(e))? {
                out.push(BrokenRef {
                    name: describe_value(&key),
                    seq: None,
                    reason,
                    key,
                });
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT seq, name, old, new, time, message FROM reflog ORDER BY seq")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |row| {
                let name: Value = row.get(1)?;
                Ok((
                    row.get::<_, i64>(0)?,
                    name.clone(),
                    reflog_row(name, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?),
                ))
            })
            .map_err(|e| self.sql(e))?;
        for row in rows {
            if let (seq, name, Err(reason)) = row.map_err(|e| self.sql(e))? {
                out.push(BrokenRef {
                    name: describe_value(&name),
                    seq: Some(seq),
                    reason,
                    key: Value::Integer(seq),
                });
            }
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

    /// Object and pack totals. An object length no writer could store (as
    /// a hand-edited row may hold) is [`Error::Damaged`]: summing it could
    /// overflow.
    pub fn storage(&self) -> Result<Storage> {
        let (objects, raw_bytes, lowest, highest, packs, pack_bytes) = self
            .conn
            .query_row(
                "SELECT count(*), total(raw_len), min(raw_len), max(raw_len),
                        (SELECT count(*) FROM packs), (SELECT total(length(data)) FROM packs)
                 FROM objects",
                [],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, f64>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, Option<i64>>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, f64>(5)?,
                    ))
                },
            )
            .map_err(|e| self.sql(e))?;
        let limit = codec::DECODE_LIMIT as i64;
        if let Some(bad) = [lowest, highest]
            .into_iter()
            .flatten()
            .find(|len| !(0..=limit).contains(len))
        {
            return Err(Error::Damaged {
                path: self.path.to_path_buf(),
                reason: format!("an object's raw_len is {bad}, which no object can have"),
            });
        }
        Ok(Storage {
            objects: objects.max(0) as u64,
            raw_bytes: raw_bytes as u64,
            packs: packs.max(0) as u64,
            pack_bytes: pack_bytes as u64,
        })
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

/// A ref or reflog row that cannot be read.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokenRef {
    /// The ref's name as stored, made printable.
    pub name: String,
    /// The reflog entry's number, or `None` for a row of `refs`.
    pub seq: Option<i64>,
    /// What is wrong with it.
    pub reason: String,
    /// The row's key, to delete it by.
    key: Value,
}

impl std::fmt::Display for BrokenRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            None => write!(f, "ref '{}': {}", self.name, self.reason),
            Some(seq) => write!(f, "reflog entry {seq} of '{}': {}", self.name, self.reason),
        }
    }
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::Text(text) => text.escape_debug().to_string(),
        Value::Blob(bytes) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("x'{hex}'")
        }
        Value::Integer(n) => n.to_string(),
        Value::Real(x) => x.to_string(),
        Value::Null => "NULL".to_owned(),
    }
}

fn ref_name(name: Value) -> std::result::Result<RefName, String> {
    match name {
        Value::Text(text) => RefName::new(text).map_err(|e| format!("bad name: {}", e.reason)),
        other => Err(format!("its name is a {:?}, not text", other.data_type())),
    }
}

fn ref_id(value: Value, column: &str) -> std::result::Result<Option<ObjectId>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Blob(bytes) => ObjectId::try_from_slice(&bytes)
            .map(Some)
            .ok_or_else(|| format!("its {column} id is {} bytes, not 32", bytes.len())),
        other => Err(format!("its {column} id is a {:?}", other.data_type())),
    }
}

fn ref_row(name: Value, id: Value) -> std::result::Result<(RefName, ObjectId), String> {
    let name = ref_name(name)?;
    let id = ref_id(id, "target")?.ok_or("its target id is NULL")?;
    Ok((name, id))
}

fn reflog_row(
    name: Value,
    old: Value,
    new: Value,
    time: Value,
    message: Value,
) -> std::result::Result<ReflogEntry, String> {
    let (Value::Integer(time), Value::Text(message)) = (time, message) else {
        return Err("its time or message has the wrong type".to_owned());
    };
    Ok(ReflogEntry {
        name: ref_name(name)?,
        old: ref_id(old, "old")?,
        new: ref_id(new, "new")?,
        time,
        message,
    })
}

/// Reads a pack's `dictionary` column: NULL or the 32-byte hash of a
/// dictionary. Anything else (such as a format 1 row number whose dictionary
/// was gone when the store was upgraded) is refused, never guessed at.
fn dictionary_ref(value: &rusqlite::types::Value) -> std::result::Result<Option<ObjectId>, String> {
    use rusqlite::types::Value;
    match value {
        Value::Null => Ok(None),
        Value::Blob(bytes) => ObjectId::try_from_slice(bytes).map(Some).ok_or_else(|| {
            format!(
                "names a dictionary by {} bytes, not a 32-byte hash",
                bytes.len()
            )
        }),
        Value::Integer(seq) => Err(format!("names dictionary row {seq}, which the store lacks")),
        other => Err(format!("names a dictionary by a {:?}", other.data_type())),
    }
}

/// Upgrades a format 1 store (dictionaries named by row number) to format 2
/// (named by hash), in one write transaction so a crash leaves either. A pack
/// that names a row number with no dictionary keeps it: it stays unreadable
/// and fsck reports it, rather than being paired with another dictionary.
fn upgrade(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        // Another process may have upgraded the store while this one waited.
        let format: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if format != 1 {
            return Ok(());
        }
        conn.execute_batch(
            "ALTER TABLE dictionaries ADD COLUMN id BLOB;
             CREATE INDEX dictionaries_by_id ON dictionaries(id);",
        )?;
        let rows: Vec<(i64, Vec<u8>)> = conn
            .prepare("SELECT seq, data FROM dictionaries")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (seq, data) in rows {
            conn.execute(
                "UPDATE dictionaries SET id = ?1 WHERE seq = ?2",
                params![ObjectId::hash(&data).as_bytes(), seq],
            )?;
        }
        conn.execute_batch(&format!(
            "UPDATE packs SET dictionary = (SELECT id FROM dictionaries d WHERE d.seq = packs.dictionary)
                 WHERE typeof(dictionary) = 'integer' AND dictionary IN (SELECT seq FROM dictionaries);
             PRAGMA user_version = {STORE_FORMAT};"
        ))
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Writes a complete, empty store file at `path`, which must not exist yet.
fn build_store(path: &Path) -> Result<()> {
    create_private_file(path)?;
    let conn = Connection::open(path).map_err(|e| sql_error(path, e))?;
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
                 dictionary BLOB,
                 data BLOB NOT NULL);
             CREATE TABLE objects(
                 id BLOB PRIMARY KEY,
                 kind INTEGER NOT NULL,
                 pack INTEGER NOT NULL,
                 offset INTEGER NOT NULL,
                 raw_len INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE dictionaries(seq INTEGER PRIMARY KEY, data BLOB NOT NULL, id BLOB);
             CREATE INDEX dictionaries_by_id ON dictionaries(id);
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
    .map_err(|e| sql_error(path, e))?;
    // Closing checks that the file is fully written before it is linked.
    conn.close().map_err(|(_, e)| sql_error(path, e))
}

/// Removes temporary files of inits whose process is gone (killed midway).
fn remove_stale_temps(dir: &Path) {
    let prefix = format!("{STORE_FILE}.init-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = pid.split('-').next().unwrap_or_default();
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
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
