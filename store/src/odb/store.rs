//! Creating, opening and upgrading a store.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use super::error::sql_error;
use super::packs::PackCache;
use super::{
    APPLICATION_ID, BUSY_TIMEOUT, Error, ObjectStore, Result, STORE_FILE, STORE_FORMAT,
    Transaction, View,
};
use crate::compress;
use crate::id::ObjectId;
use crate::object::{Added, Object};

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
        // The bundled SQLite is built with STAT4, under which a join whose
        // plan could depend on a bound value is recompiled every time the
        // value changes: the per-object `contains` lookup was parsed and
        // planned again for every page a snapshot wrote (a fifth of a first
        // snapshot's CPU). Our statements are fixed; their plans need no
        // values, so the query-planner stability guarantee costs nothing.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
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
            compression_level: compress::SNAPSHOT_LEVEL,
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

/// The zstd level every writer of formats 1 and 2 used.
const FORMAT_2_LEVEL: i32 = 3;

/// Upgrades an older store to [`STORE_FORMAT`], one format step after the
/// other, in one write transaction so a crash leaves either:
/// - 1 → 2: dictionaries are named by hash, not row number. A pack that names
///   a row number with no dictionary keeps it: it stays unreadable and fsck
///   reports it, rather than being paired with another dictionary.
/// - 2 → 3: each pack records the zstd level it was written with. Format 1
///   and 2 writers always used level 3, so existing packs get 3, which is
///   below the compact level: the next gc packs them.
fn upgrade(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        // Another process may have upgraded the store while this one waited.
        let format: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if format == 1 {
            name_dictionaries_by_hash(conn)?;
        }
        if format <= 2 {
            conn.execute_batch(&format!(
                "ALTER TABLE packs ADD COLUMN level INTEGER NOT NULL DEFAULT {FORMAT_2_LEVEL};"
            ))?;
        }
        conn.execute_batch(&format!("PRAGMA user_version = {STORE_FORMAT};"))
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Format 1 → 2: adds `dictionaries.id` and rewrites every pack's
/// `dictionary` from the row number to that hash.
fn name_dictionaries_by_hash(conn: &Connection) -> rusqlite::Result<()> {
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
    conn.execute_batch(
        "UPDATE packs SET dictionary = (SELECT id FROM dictionaries d WHERE d.seq = packs.dictionary)
             WHERE typeof(dictionary) = 'integer' AND dictionary IN (SELECT seq FROM dictionaries);",
    )
}

/// Writes a complete, empty store file at `path`, which must not exist yet.
fn build_store(path: &Path) -> Result<()> {
    create_private_file(path)?;
    let conn = Connection::open(path).map_err(|e| sql_error(path, e))?;
    // page_size and auto_vacuum only take effect before the first table.
    // 4 KiB pages leave the least slack in the blobs' overflow chains:
    // after gc a 1 GiB database's store was 293 MB with 4 KiB pages,
    // 296 MB with 8 KiB, 301 MB with 16 KiB and 360 MB with 64 KiB, for
    // at most 8% less snapshot CPU (docs/benchmarks.md). Incremental
    // vacuum lets gc return freed space to the file system.
    conn.execute_batch(&format!(
        "PRAGMA page_size = 4096;
             PRAGMA auto_vacuum = INCREMENTAL;
             BEGIN;
             CREATE TABLE packs(
                 seq INTEGER PRIMARY KEY,
                 raw_len INTEGER NOT NULL,
                 compression INTEGER NOT NULL,
                 dictionary BLOB,
                 data BLOB NOT NULL,
                 level INTEGER NOT NULL);
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

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;
    use crate::pack::{HashedBlob, PACK_OBJECTS, PreparedPack};

    /// The per-object lookup of a snapshot's writes must not be parsed and
    /// planned again for every id (see `open_with`): with STAT4 and
    /// without the stability guarantee, every call after the first was.
    #[test]
    fn the_object_lookup_is_planned_once_however_many_ids_it_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join(".migsnap")).unwrap();
        let pages: Vec<Vec<u8>> = (0u32..256).map(|n| n.to_le_bytes().repeat(1024)).collect();
        let mut tx = store.transaction().unwrap();
        let mut compressor = tx.compressor();
        let mut ids = Vec::new();
        let mut batch = tx.pack_batch();
        for chunk in pages.chunks(PACK_OBJECTS) {
            let pack = PreparedPack::blobs(
                chunk.iter().map(|page| HashedBlob::new(page)),
                &mut compressor,
            );
            batch.write_pack(&pack).unwrap();
            ids.extend(pack.members.iter().map(|member| member.id));
        }
        batch.finish().unwrap();
        tx.commit(&[], "pages").unwrap();
        for id in &ids {
            assert!(store.view().contains(id).unwrap());
        }
        let stmt = store
            .conn
            .prepare_cached(super::super::view::CONTAINS)
            .unwrap();
        assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0);
    }
}
