//! Safe access to users' SQLite databases.
//!
//! - Opening never writes: connections are read-only with a busy timeout.
//!   The one exception is a hot journal left by a writer that crashed
//!   mid-transaction: SQLite must roll it back before anyone can read, and
//!   it does so on the first read of any connection that may write the file.
//!   That restores the last committed state, which is what a backup after a
//!   crash should hold; [`Database::open`] does it when the user may write
//!   the file, and otherwise names the journal ([`SqliteError::HotJournal`]).
//! - A capture reads the page image, the schema and the metadata inside **one
//!   read transaction**, so they describe the same instant even while other
//!   processes write (in WAL mode the read sees one WAL snapshot; in rollback
//!   mode the SHARED lock holds writers off until the read ends).
//! - Pages are read inside that transaction, a run at a time straight into
//!   the reader's own buffer ([`PageSink`]): from the file through SQLite's
//!   own handle where the file holds what the transaction sees, and through
//!   the pager with the `sqlite_dbpage` virtual table
//!   (<https://sqlite.org/dbpage.html>) where the WAL may hold a newer
//!   version (`raw_pages`); no temporary copy is made.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::schema::{self, Finding, Schema};
use crate::snapshots::raw_pages;

/// The 16 bytes every SQLite database file starts with.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How long a capture waits for a writer that holds the database locked.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What can go wrong with a user's database file.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The path does not exist.
    #[error("database {path} does not exist")]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The path is a directory or something else that is not a file.
    #[error("database {path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is empty.
    #[error("database {path} is an empty file, not a SQLite database")]
    Empty {
        /// The path.
        path: PathBuf,
    },
    /// The file does not start with the SQLite header.
    #[error("{path} is not a SQLite database (no 'SQLite format 3' header)")]
    NotSqlite {
        /// The path.
        path: PathBuf,
    },
    /// The file is shorter than its header says.
    #[error("database {path} is truncated: {actual} bytes, but its header needs {expected}")]
    Truncated {
        /// The path.
        path: PathBuf,
        /// Bytes present.
        actual: u64,
        /// Bytes the header accounts for.
        expected: u64,
    },
    /// Another connection kept the database locked past the busy timeout.
    #[error("database {path} is locked by another process (waited {waited:?})")]
    Busy {
        /// The path.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// SQLite reports the database as malformed.
    #[error("database {path} is corrupt: {message}")]
    Corrupt {
        /// The path.
        path: PathBuf,
        /// SQLite's own message, quoted.
        message: String,
    },
    /// A writer crashed mid-transaction and left a hot journal that only a
    /// connection allowed to write the database can roll back.
    #[error(
        "database {path} has a hot journal {journal} from a writer that crashed mid-transaction, and it cannot be rolled back without write access to the database and its directory"
    )]
    HotJournal {
        /// The database.
        path: PathBuf,
        /// The journal.
        journal: PathBuf,
    },
    /// A schema entry's name or SQL is not valid UTF-8. The page image would
    /// keep it, but schemas are compared and hashed as text, where two such
    /// names could look alike; so the snapshot is refused, naming the entry
    /// with its bytes escaped (`\xff`).
    #[error("database {path}: the {part} of {kind} '{name}' is not valid UTF-8")]
    NotUtf8 {
        /// The database.
        path: PathBuf,
        /// `table`, `index`, `view` or `trigger`.
        kind: String,
        /// The entry's name, invalid bytes escaped.
        name: String,
        /// `name` or `SQL`.
        part: &'static str,
    },
    /// The file system filled up while SQLite wrote the database; SQLite
    /// rolled the transaction back.
    #[error("disk full while writing database {path}; nothing was changed")]
    DiskFull {
        /// The database.
        path: PathBuf,
    },
    /// Reading the file failed.
    #[error("cannot read database {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite cannot open the file (no permission, or a directory on the
    /// way is not searchable).
    #[error("cannot open database {path}")]
    CannotOpen {
        /// The path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite needed to write and could not: the file, or its directory
    /// (a WAL database needs its `-shm` file even to be read), is read-only.
    #[error("database {path} cannot be written")]
    ReadOnly {
        /// The path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Any other SQLite failure.
    #[error("database {path}")]
    Sqlite {
        /// The path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

fn sql_error(path: &Path, waited: Duration, source: rusqlite::Error) -> SqliteError {
    let path = path.to_path_buf();
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            SqliteError::Busy { path, waited }
        }
        Some(ErrorCode::DiskFull) => SqliteError::DiskFull { path },
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => SqliteError::Corrupt {
            path,
            message: source.to_string(),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            SqliteError::CannotOpen { path, source }
        }
        Some(ErrorCode::ReadOnly) => SqliteError::ReadOnly { path, source },
        _ => SqliteError::Sqlite { path, source },
    }
}

/// Whether SQLite refused a read because a hot journal needs rolling back
/// and the connection may not write (`SQLITE_READONLY_ROLLBACK`).
fn is_readonly_rollback(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _)
        if e.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
}

/// Lets SQLite roll back the hot journal of `path` through a read-write
/// connection's first read; refuses with [`SqliteError::HotJournal`] when
/// the file or its directory may not be written.
fn roll_back_hot_journal(path: &Path, busy_timeout: Duration) -> Result<(), SqliteError> {
    let sql = |e| sql_error(path, busy_timeout, e);
    let refused = || SqliteError::HotJournal {
        path: path.to_path_buf(),
        journal: with_suffix(path, "-journal"),
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| match e.sqlite_error_code() {
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
            refused()
        }
        _ => sql(e),
    })?;
    conn.busy_timeout(busy_timeout).map_err(sql)?;
    match conn.query_row("PRAGMA schema_version", [], |_| Ok(())) {
        Ok(()) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::ReadOnly) => Err(refused()),
        Err(e) => Err(sql(e)),
    }
}

/// Facts about a database kept beside its schema: they change without the
/// schema changing, and migsnap reports on them rather than diffing them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DbMeta {
    /// Rows of `alembic_version`, sorted; `None` when the table is absent.
    pub alembic_versions: Option<Vec<String>>,
    /// Migrations peewee-migrate recorded in `migratehistory` (the `name`
    /// column, in the order applied); `None` when the table is absent.
    /// Open WebUI used it before it moved to Alembic.
    pub peewee_migrations: Option<Vec<String>>,
    /// `PRAGMA user_version`.
    pub user_version: i64,
    /// `PRAGMA application_id`.
    pub application_id: i64,
    /// `PRAGMA journal_mode` at capture time (`wal`, `delete`, ...).
    pub journal_mode: String,
}

/// Page geometry of a captured image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per page.
    pub page_size: u32,
    /// Number of pages.
    pub page_count: u32,
}

impl Geometry {
    /// The page size and count the transaction `tx` sees.
    fn of(tx: &Connection) -> rusqlite::Result<Geometry> {
        Ok(Geometry {
            page_size: tx.query_row("PRAGMA page_size", [], |row| row.get(0))?,
            page_count: tx.query_row("PRAGMA page_count", [], |row| row.get(0))?,
        })
    }
}

/// Checks that `path` looks like a SQLite database before SQLite sees it, so
/// the common mistakes get a precise message instead of "file is not a
/// database".
pub fn check_file(path: &Path) -> Result<(), SqliteError> {
    // A live database can look truncated for a moment: a commit or a WAL
    // checkpoint writes page 1 (with the new page count) before the pages
    // that extend the file. Only a file that stays short is truncated.
    let mut attempts = 0;
    loop {
        match check_file_once(path) {
            Err(SqliteError::Truncated { .. }) if attempts < 3 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

fn check_file_once(path: &Path) -> Result<(), SqliteError> {
    let io = |source| SqliteError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SqliteError::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(io(e)),
    };
    if !meta.is_file() {
        return Err(SqliteError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() == 0 {
        return Err(SqliteError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut header = [0u8; 100];
    let (filled, size) = with_file(path, |file| {
        use std::os::unix::fs::FileExt;
        let mut filled = 0;
        while filled < header.len() {
            match file.read_at(&mut header[filled..], filled as u64)? {
                0 => break,
                n => filled += n,
            }
        }
        // The size is read after the header: a file that grew meanwhile is
        // not short.
        Ok((filled, file.metadata()?.len()))
    })
    .map_err(io)?;
    if filled < 100 || &header[..16] != MAGIC {
        return Err(SqliteError::NotSqlite {
            path: path.to_path_buf(),
        });
    }
    // The in-header page count is valid only when the "version-valid-for"
    // number matches the change counter (https://sqlite.org/fileformat.html).
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536u64,
        n => u64::from(n),
    };
    let change_counter = &header[24..28];
    let valid_for = &header[92..96];
    let header_pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    if change_counter == valid_for && header_pages > 0 {
        let expected = header_pages * page_size;
        if size < expected {
            return Err(SqliteError::Truncated {
                path: path.to_path_buf(),
                actual: size,
                expected,
            });
        }
    }
    Ok(())
}

/// Where a read puts a database's pages, in order from page 1: straight
/// into the sink's own buffer, a run of whole pages at a time. Why: a copy
/// of every page out of the reader's buffer was a fifth of a read-back's
/// time and a tenth of a snapshot reader's.
pub trait PageSink {
    /// Room for the next pages, of `page_size` bytes each: one page at
    /// least, whole pages. Pages read into it are handed over by
    /// [`PageSink::filled`]; what it held before is overwritten.
    fn room(&mut self, page_size: usize) -> &mut [u8];

    /// The first `pages` pages of the room last given hold the next pages.
    fn filled(&mut self, pages: usize) -> Result<(), SqliteError>;

    /// Hands over one page read elsewhere (through the pager).
    fn put(&mut self, page: &[u8]) -> Result<(), SqliteError> {
        self.room(page.len())[..page.len()].copy_from_slice(page);
        self.filled(1)
    }
}

/// A [`PageSink`] that hands each page, with its number, to a closure:
/// for readers that look at one page at a time.
pub struct EachPage<F> {
    buffer: Vec<u8>,
    page_size: usize,
    next: u32,
    each: F,
}

/// Pages an [`EachPage`] reads at a time: 1 MiB of 4 KiB pages.
const EACH_PAGE_RUN: usize = 256;

impl<F: FnMut(u32, &[u8]) -> Result<(), SqliteError>> EachPage<F> {
    /// Hands page 1, then 2, and so on to `each`.
    pub fn new(each: F) -> Self {
        EachPage {
            buffer: Vec::new(),
            page_size: 0,
            next: 1,
            each,
        }
    }
}

impl<F: FnMut(u32, &[u8]) -> Result<(), SqliteError>> PageSink for EachPage<F> {
    fn room(&mut self, page_size: usize) -> &mut [u8] {
        self.page_size = page_size;
        self.buffer.resize(EACH_PAGE_RUN * page_size, 0);
        &mut self.buffer
    }

    fn filled(&mut self, pages: usize) -> Result<(), SqliteError> {
        for page in self.buffer[..pages * self.page_size].chunks_exact(self.page_size) {
            (self.each)(self.next, page)?;
            self.next += 1;
        }
        Ok(())
    }
}

/// A read-only connection to a user's database.
pub struct Database {
    conn: Connection,
    path: PathBuf,
    busy_timeout: Duration,
    /// The `PRAGMA data_version` of the state another connection is
    /// checking (see [`Database::checked_elsewhere_at`]).
    checked_elsewhere: Option<i64>,
}

impl Database {
    /// Opens `path` read-only after [`check_file`]. A hot journal is rolled
    /// back first when the user may write the database (see the module
    /// documentation).
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Database, SqliteError> {
        check_file(path)?;
        let sql = |e| sql_error(path, busy_timeout, e);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        conn.busy_timeout(busy_timeout).map_err(sql)?;
        // The first read is where SQLite finds a hot journal.
        if let Err(e) = conn.query_row("PRAGMA schema_version", [], |_| Ok(())) {
            if !is_readonly_rollback(&e) {
                return Err(sql(e));
            }
            roll_back_hot_journal(path, busy_timeout)?;
        }
        Ok(Database {
            conn,
            path: path.to_path_buf(),
            busy_timeout,
            checked_elsewhere: None,
        })
    }

    /// The path this database was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, source: rusqlite::Error) -> SqliteError {
        sql_error(&self.path, self.busy_timeout, source)
    }

    /// Reads schema, metadata and (when `pages` is given) every page, inside
    /// one read transaction. `pages` receives pages in order, starting at page 1.
    ///
    /// When `known` matches the database's schema stamp (schema cookie and
    /// the exact text of `sqlite_schema`), the schema is not parsed again and
    /// [`Capture::schema`] is `None`: it is the schema `known` was taken from.
    pub fn capture(
        &mut self,
        pages: Option<&mut dyn PageSink>,
        known: Option<&SchemaFingerprint>,
    ) -> Result<Capture, SqliteError> {
        let path = self.path.clone();
        let waited = self.busy_timeout;
        let sql = move |e| sql_error(&path, waited, e);
        let tx = self.conn.unchecked_transaction().map_err(&sql)?;
        // The first read starts the read transaction (takes the SHARED lock or
        // the WAL read mark); everything below sees that one state.
        if let Some((kind, name, part)) = non_utf8_entry(&tx).map_err(&sql)? {
            return Err(SqliteError::NotUtf8 {
                path: self.path.clone(),
                kind,
                name,
                part,
            });
        }
        let stamp = schema_fingerprint(&tx).map_err(&sql)?;
        let (schema, findings) = if known == Some(&stamp) {
            (None, Vec::new())
        } else {
            let schema::Captured { schema, findings } = schema::capture(&tx).map_err(&sql)?;
            (Some(schema), findings)
        };
        let meta = read_meta(&tx).map_err(&sql)?;
        let geometry = Geometry::of(&tx).map_err(&sql)?;
        if let Some(sink) = pages {
            read_pages(&tx, geometry, sink, &self.path, &sql)?;
        }
        // Same data version, same state: no commit came between the
        // moment the version was read and this read transaction, so the
        // checker's transaction, begun in between, sees what this one read.
        // Otherwise only this transaction can check what it read.
        let data_version: i64 = tx
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(&sql)?;
        let checked = match self.checked_elsewhere {
            Some(version) if version == data_version => None,
            Some(_) => Some(quick_check_conn(&tx).map_err(&sql)?),
            None => None,
        };
        // A read transaction has nothing to commit; ROLLBACK ends it even
        // after quick_check met damage, where COMMIT repeats that error.
        tx.rollback().map_err(&sql)?;
        Ok(Capture {
            schema,
            stamp,
            findings,
            meta,
            geometry,
            checked,
        })
    }

    /// `PRAGMA data_version` now: a later read transaction of this
    /// connection reads the same value exactly when no other connection
    /// committed in between.
    pub fn data_version(&self) -> Result<i64, SqliteError> {
        self.conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(|e| self.sql(e))
    }

    /// Tells the next capture that another connection is checking the state
    /// this connection saw at `data_version` (from [`Database::data_version`]):
    /// a capture that reads a later state runs `PRAGMA quick_check` itself,
    /// in its own read transaction, and reports the verdict in
    /// [`Capture::checked`].
    pub fn checked_elsewhere_at(&mut self, data_version: i64) {
        self.checked_elsewhere = Some(data_version);
    }

    /// Begins a read transaction, so the state it sees is fixed from now
    /// on, for a [`Pinned::quick_check`] that may run later on another
    /// thread.
    pub fn pin(self) -> Result<Pinned, SqliteError> {
        // BEGIN is deferred: the first read takes the SHARED lock (rollback
        // journal) or the WAL read mark.
        self.conn
            .execute_batch("BEGIN")
            .and_then(|()| {
                self.conn
                    .query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            })
            .map_err(|e| self.sql(e))?;
        Ok(Pinned { db: self })
    }

    /// Whether `table` exists in the main schema.
    pub fn has_table(&self, table: &str) -> Result<bool, SqliteError> {
        self.conn
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.sql(e))
    }

    /// How many rows `table` holds: what dropping it would lose.
    pub fn row_count(&self, table: &str) -> Result<u64, SqliteError> {
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        self.conn
            .query_row(&format!("SELECT count(*) FROM {quoted}"), [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n.max(0).unsigned_abs())
            .map_err(|e| self.sql(e))
    }
}

/// A connection inside a read transaction begun by [`Database::pin`].
pub struct Pinned {
    db: Database,
}

impl Pinned {
    /// Runs `PRAGMA quick_check` on the pinned state and ends the read
    /// transaction: the problems found, none when the database is sound.
    pub fn quick_check(self) -> Result<Vec<String>, SqliteError> {
        let sql = |e| self.db.sql(e);
        let problems = quick_check_conn(&self.db.conn).map_err(sql)?;
        // Not COMMIT: after quick_check met damage it repeats that error,
        // and a read transaction has nothing to commit.
        self.db.conn.execute_batch("ROLLBACK").map_err(sql)?;
        Ok(problems)
    }
}

/// The problems `PRAGMA quick_check` finds through `conn`; none means sound.
/// Damage bad enough to stop the check itself is its last problem, after
/// the ones it reported until then.
fn quick_check_conn(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = match conn.prepare("PRAGMA quick_check") {
        Err(e) if is_corrupt(&e) => return Ok(vec![e.to_string()]),
        prepared => prepared?,
    };
    let mut verdict = Vec::new();
    let mut rows = stmt.query([])?;
    loop {
        match rows.next() {
            Ok(Some(row)) => verdict.push(row.get::<_, String>(0)?),
            Ok(None) => break,
            Err(e) if is_corrupt(&e) => {
                verdict.push(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(if verdict == ["ok"] {
        Vec::new()
    } else {
        quick_check_problems(&verdict)
    })
}

fn is_corrupt(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(ErrorCode::DatabaseCorrupt)
}

/// What one capture read.
#[derive(Clone, Debug)]
pub struct Capture {
    /// The schema; `None` when it matched the stamp the caller already knew.
    pub schema: Option<Schema>,
    /// What identifies the schema cheaply, without parsing it.
    pub stamp: SchemaFingerprint,
    /// What the schema capture noticed: migration artefacts, statements it
    /// could only read in part.
    pub findings: Vec<Finding>,
    /// Metadata beside the schema.
    pub meta: DbMeta,
    /// Page geometry.
    pub geometry: Geometry,
    /// The problems `PRAGMA quick_check` found when the capture had to
    /// check what it read itself, because it saw a later state than the
    /// connection checking elsewhere (see [`Database::checked_elsewhere_at`]);
    /// `None` when it did not check.
    pub checked: Option<Vec<String>>,
}

/// Identifies a database's schema without parsing it: SQLite's schema cookie
/// (`PRAGMA schema_version`, bumped by every schema change) and the BLAKE3 of
/// the exact rows of `sqlite_schema`. The cookie alone is not enough: two
/// different files (say, before and after a restore) can share a cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaFingerprint {
    /// `PRAGMA schema_version`.
    pub cookie: u32,
    /// BLAKE3 of `type, name, tbl_name, sql` of every `sqlite_schema` row.
    pub text: [u8; 32],
}

/// The first `sqlite_schema` entry whose name or SQL is not valid UTF-8:
/// its type, its name with invalid bytes escaped, and which part is bad.
fn non_utf8_entry(conn: &Connection) -> rusqlite::Result<Option<(String, String, &'static str)>> {
    let mut stmt = conn.prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY rowid")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let bytes = |column| -> rusqlite::Result<Vec<u8>> {
            use rusqlite::types::ValueRef;
            Ok(match row.get_ref(column)? {
                ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.to_vec(),
                _ => Vec::new(),
            })
        };
        let (kind, name, sql) = (bytes(0)?, bytes(1)?, bytes(2)?);
        let part = if std::str::from_utf8(&name).is_err() {
            "name"
        } else if std::str::from_utf8(&sql).is_err() {
            "SQL"
        } else {
            continue;
        };
        return Ok(Some((escape_bytes(&kind), escape_bytes(&name), part)));
    }
    Ok(None)
}

/// `bytes` as text, each byte that is not part of valid UTF-8 as `\xNN`.
fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

fn schema_fingerprint(conn: &Connection) -> rusqlite::Result<SchemaFingerprint> {
    let cookie: u32 = conn.query_row("PRAGMA schema_version", [], |row| row.get(0))?;
    let mut hasher = blake3::Hasher::new();
    let mut stmt =
        conn.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        for column in 0..4 {
            // Length-prefixed so that no two different rows hash the same.
            let text: Option<String> = row.get(column)?;
            let bytes = text.as_deref().unwrap_or("\u{0}NULL").as_bytes();
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        }
    }
    Ok(SchemaFingerprint {
        cookie,
        text: *hasher.finalize().as_bytes(),
    })
}

fn read_meta(conn: &Connection) -> rusqlite::Result<DbMeta> {
    Ok(DbMeta {
        alembic_versions: read_column_if_table(
            conn,
            "alembic_version",
            "SELECT version_num FROM alembic_version ORDER BY version_num",
        )?,
        peewee_migrations: read_column_if_table(
            conn,
            "migratehistory",
            "SELECT name FROM migratehistory ORDER BY id",
        )?,
        user_version: conn.query_row("PRAGMA user_version", [], |row| row.get(0))?,
        application_id: conn.query_row("PRAGMA application_id", [], |row| row.get(0))?,
        journal_mode: conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?,
    })
}

/// The text values `query` returns, when `table` exists; `None` otherwise.
fn read_column_if_table(
    conn: &Connection,
    table: &str,
    query: &str,
) -> rusqlite::Result<Option<Vec<String>>> {
    let exists = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let mut stmt = conn.prepare(query)?;
    let rows = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(rows))
}

/// The problems of a `quick_check` verdict, one a line: SQLite may put
/// several in one row, under a "*** in database main ***" heading.
fn quick_check_problems(verdict: &[String]) -> Vec<String> {
    verdict
        .iter()
        .flat_map(|row| row.lines())
        .filter(|line| !line.trim().is_empty() && !line.starts_with("*** "))
        .map(str::to_owned)
        .collect()
}

/// One line for many `quick_check` problems: how many, and the first.
pub fn summarise_problems(problems: &[String]) -> String {
    format!(
        "{} problem{}, the first: {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.first().map_or("", String::as_str)
    )
}

/// Runs `PRAGMA quick_check` on a database file and returns the problems it
/// found; none means sound.
pub fn quick_check(path: &Path) -> Result<Vec<String>, SqliteError> {
    // immutable=1: the file is ours and unchanging, so SQLite needs no locks
    // and no -shm file even when the image is in WAL mode.
    let uri = format!("file:{}?immutable=1", uri_path(path));
    let conn = Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sql_error(path, Duration::ZERO, e))?;
    quick_check_conn(&conn).map_err(|e| sql_error(path, Duration::ZERO, e))
}

/// Percent-encodes a path for a `file:` URI.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' | b'~' => {
                out.push(char::from(*byte))
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// `path` with `suffix` appended to its file name: a database's `-wal`,
/// `-shm` or `-journal`, or a name derived from it.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The identity of a file: device and inode. A rename over a path gives
/// the path a new identity; processes that had the old file open keep it.
pub type FileId = (u64, u64);

/// The identity of the file at `path` (following symlinks), if it exists.
pub fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The identities of `path` and of its `-wal`/`-shm`, those that exist.
pub fn database_files(path: &Path) -> Vec<FileId> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| file_id(&with_suffix(path, suffix)))
        .collect()
}

/// Processes other than this one that have `path` (or its `-wal`/`-shm`)
/// open, found through `/proc`. Best effort: processes of other users are
/// only visible to root.
pub fn holders(path: &Path) -> Vec<u32> {
    holders_of(&database_files(path))
}

/// Processes other than this one that have any of the files `wanted` open.
pub fn holders_of(wanted: &[FileId]) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    if wanted.is_empty() {
        return Vec::new();
    }
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::metadata(fd.path()).is_ok_and(|m| wanted.contains(&(m.dev(), m.ino())))
        });
        if holds {
            pids.push(pid);
        }
    }
    pids
}

/// Database files this process holds SQLite locks on, each with a
/// descriptor opened before the lock was taken. POSIX locks belong to the
/// process, and closing *any* descriptor of a file drops them all, so while
/// a lock is held the file is read only through this descriptor
/// ([`with_file`]), never opened and closed again.
static LOCKED: Mutex<Vec<(FileId, Arc<File>)>> = Mutex::new(Vec::new());

/// Keeps a file registered in [`LOCKED`]; unregisters (and closes the
/// descriptor, unless [`with_file`] still uses it) on drop.
struct Registered {
    id: FileId,
}

impl Registered {
    fn new(path: &Path) -> std::io::Result<Registered> {
        use std::os::unix::fs::MetadataExt;
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let id = (meta.dev(), meta.ino());
        LOCKED
            .lock()
            .expect("BUG: lock registry poisoned")
            .push((id, Arc::new(file)));
        Ok(Registered { id })
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut locked = LOCKED.lock().expect("BUG: lock registry poisoned");
        if let Some(at) = locked.iter().position(|(id, _)| *id == self.id) {
            locked.remove(at);
        }
    }
}

/// Runs `f` on the file at `path`: through the descriptor registered for it
/// when this process holds a SQLite lock on it (so no close drops the
/// lock), otherwise on a fresh descriptor.
pub fn with_file<T>(
    path: &Path,
    f: impl FnOnce(&File) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let held = file_id(path).and_then(|wanted| {
        LOCKED
            .lock()
            .expect("BUG: lock registry poisoned")
            .iter()
            .find(|(id, _)| *id == wanted)
            .map(|(_, file)| Arc::clone(file))
    });
    match held {
        Some(file) => f(&file),
        None => f(&File::open(path)?),
    }
}

/// Opens a read-write connection that never checkpoints or deletes the WAL
/// when it closes: probing or locking a database must not rewrite its main
/// file (a stray `-wal` folded into an intact file cannot be taken back).
fn open_writable(path: &Path, busy_timeout: Duration) -> Result<Connection, SqliteError> {
    let sql = |e| sql_error(path, busy_timeout, e);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(sql)?;
    conn.busy_timeout(busy_timeout).map_err(sql)?;
    Ok(conn)
}

/// Whether another connection holds a lock that keeps a writer out right now.
pub fn is_locked(path: &Path) -> bool {
    let Ok(conn) = open_writable(path, Duration::ZERO) else {
        return false;
    };
    match conn.execute_batch("BEGIN EXCLUSIVE; ROLLBACK;") {
        Ok(()) => false,
        Err(e) => matches!(
            e.sqlite_error_code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        ),
    }
}

/// A read-write connection holding the database's write lock (`BEGIN
/// IMMEDIATE`: RESERVED in rollback-journal mode, the WAL write lock in WAL
/// mode). Other writers wait on SQLite's own lock, through their busy
/// timeout, until [`WriteLock::commit`] or drop; readers go on, so a
/// snapshot can still be read on another connection. Dropping it rolls back.
pub struct WriteLock {
    // Dropped first: the connection closes before the registered
    // descriptor does.
    conn: Connection,
    _registered: Registered,
    path: PathBuf,
    busy_timeout: Duration,
}

/// Page geometry and modes of a locked database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockedFacts {
    /// Bytes per page.
    pub page_size: u32,
    /// Number of pages.
    pub page_count: u32,
    /// `PRAGMA auto_vacuum` is FULL: SQLite relocates pages on commit, so
    /// pages cannot be written in place.
    pub full_auto_vacuum: bool,
}

impl WriteLock {
    /// Opens `path` and takes its write lock, waiting up to `busy_timeout`
    /// for another writer. A hot journal is rolled back by SQLite first, as
    /// any connection would; a WAL is neither checkpointed nor removed.
    pub fn acquire(path: &Path, busy_timeout: Duration) -> Result<WriteLock, SqliteError> {
        check_file(path)?;
        let registered = Registered::new(path).map_err(|source| SqliteError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let conn = open_writable(path, busy_timeout)?;
        conn.execute_batch("PRAGMA synchronous = FULL; BEGIN IMMEDIATE;")
            .map_err(|e| sql_error(path, busy_timeout, e))?;
        Ok(WriteLock {
            conn,
            _registered: registered,
            path: path.to_path_buf(),
            busy_timeout,
        })
    }

    fn sql(&self, source: rusqlite::Error) -> SqliteError {
        sql_error(&self.path, self.busy_timeout, source)
    }

    /// Page size, page count and auto-vacuum mode, as this transaction sees them.
    pub fn facts(&self) -> Result<LockedFacts, SqliteError> {
        let pragma = |name: &str| -> Result<u32, SqliteError> {
            self.conn
                .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
                .map_err(|e| self.sql(e))
        };
        Ok(LockedFacts {
            page_size: pragma("page_size")?,
            page_count: pragma("page_count")?,
            full_auto_vacuum: pragma("auto_vacuum")? == 1,
        })
    }

    /// Page `pgno` as this transaction sees it (including its own writes).
    pub fn page(&self, pgno: u32) -> Result<Vec<u8>, SqliteError> {
        self.conn
            .query_row(
                "SELECT data FROM sqlite_dbpage('main') WHERE pgno = ?1",
                [pgno],
                |row| row.get(0),
            )
            .map_err(|e| self.sql(e))
    }

    /// Writes page `pgno` through the pager, journaled like any write
    /// (<https://sqlite.org/dbpage.html>); invisible to others before
    /// [`WriteLock::commit`].
    pub fn write_page(&self, pgno: u32, data: &[u8]) -> Result<(), SqliteError> {
        self.conn
            .prepare_cached("INSERT INTO sqlite_dbpage(pgno, data) VALUES (?1, ?2)")
            .and_then(|mut stmt| stmt.execute(rusqlite::params![pgno, data]))
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Cuts the database to `page_count` pages at commit. Must come after
    /// the last [`WriteLock::write_page`], which would cancel it, and in a
    /// statement of its own: the b-tree re-reads its page count from page 1
    /// at the end of a statement that writes several rows, after which the
    /// cut is no longer below it and is skipped.
    pub fn truncate(&self, page_count: u32) -> Result<(), SqliteError> {
        self.conn
            .execute(
                "INSERT INTO sqlite_dbpage(pgno, data) VALUES (?1, NULL)",
                [page_count + 1],
            )
            .map(drop)
            .map_err(|e| self.sql(e))
    }

    /// Sets the schema cookie, so that every connection reloads its cached
    /// schema. Done through SQLite's own header write rather than in the
    /// page image: a cookie changed under this connection would make its
    /// next statement reload the schema through the b-tree's stale decoded
    /// copy of page 1 ("malformed").
    pub fn set_schema_cookie(&self, cookie: u32) -> Result<(), SqliteError> {
        self.conn
            .execute_batch(&format!("PRAGMA schema_version = {cookie}"))
            .map_err(|e| self.sql(e))
    }

    /// Commits (durably: `synchronous = FULL`) and releases the lock. In WAL
    /// mode a passive checkpoint follows, so the main file catches up when no
    /// reader is in the way. Returns `PRAGMA data_version` right after the
    /// commit, so a caller can tell later whether another connection wrote
    /// since.
    pub fn commit(self) -> Result<Committed, SqliteError> {
        self.conn.execute_batch("COMMIT").map_err(|e| self.sql(e))?;
        // The pages were written under the b-tree layer, whose decoded copies
        // of them (page 1's above all) in this connection's cache are now
        // stale: reading through them reports "malformed". Dropping the
        // cache makes every later read, the read-back included, load and
        // decode the pages afresh from the file.
        self.conn.release_memory().map_err(|e| self.sql(e))?;
        let version = self.data_version()?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .map_err(|e| self.sql(e))?;
        if mode.eq_ignore_ascii_case("wal") {
            // Best effort: the WAL already holds the commit durably.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
        Ok(Committed {
            lock: self,
            version,
        })
    }

    fn data_version(&self) -> Result<i64, SqliteError> {
        self.conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(|e| self.sql(e))
    }
}

/// Hands every page of the read transaction `tx` has begun to `sink`, in
/// order from page 1: in runs straight from the file where that is the same
/// (`raw_pages`), else one `sqlite_dbpage` row at a time. `path` names the
/// database in errors.
fn read_pages(
    tx: &Connection,
    geometry: Geometry,
    sink: &mut dyn PageSink,
    path: &Path,
    sql: &dyn Fn(rusqlite::Error) -> SqliteError,
) -> Result<(), SqliteError> {
    let mode: String = tx
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .map_err(sql)?;
    let mut one = tx
        .prepare("SELECT data FROM sqlite_dbpage('main') WHERE pgno = ?1")
        .map_err(sql)?;
    let direct = raw_pages::read(
        tx,
        geometry.page_size,
        geometry.page_count,
        mode.eq_ignore_ascii_case("wal"),
        sink,
        &mut |pgno| one.query_row([pgno], |row| row.get(0)).map_err(sql),
    );
    if let Ok(outcome) = direct {
        return outcome;
    }
    let mut stmt = tx
        .prepare("SELECT data FROM sqlite_dbpage('main') ORDER BY pgno")
        .map_err(sql)?;
    let mut rows = stmt.query([]).map_err(sql)?;
    let mut seen = 0u32;
    while let Some(row) = rows.next().map_err(sql)? {
        let data = row
            .get_ref(0)
            .map_err(sql)?
            .as_blob()
            .map_err(|e| sql(e.into()))?;
        sink.put(data)?;
        seen += 1;
    }
    if seen != geometry.page_count {
        return Err(SqliteError::Corrupt {
            path: path.to_path_buf(),
            message: format!(
                "read {seen} pages but page_count is {}",
                geometry.page_count
            ),
        });
    }
    Ok(())
}

/// A database just committed by a [`WriteLock`], kept open to read it back.
pub struct Committed {
    lock: WriteLock,
    version: i64,
}

impl Committed {
    /// Reads every page back into `sink` in one read transaction, and
    /// tells whether another connection has committed since (`false`):
    /// then the file is no longer ours to compare. The pages come as a
    /// capture reads them (`read_pages`): the committed pages from the WAL
    /// through the pager, the rest straight from the file.
    pub fn read_back(&self, sink: &mut dyn PageSink) -> Result<bool, SqliteError> {
        let conn = &self.lock.conn;
        let sql = |e| self.lock.sql(e);
        let tx = conn.unchecked_transaction().map_err(sql)?;
        let geometry = Geometry::of(&tx).map_err(sql)?;
        read_pages(&tx, geometry, sink, &self.lock.path, &sql)?;
        // Inside the read transaction: equal means nobody committed between
        // our commit and this read.
        let unchanged = self.lock.data_version()? == self.version;
        tx.commit().map_err(sql)?;
        Ok(unchanged)
    }

    /// Closes the connection the way an application's last connection
    /// would: in WAL mode SQLite then checkpoints and removes the `-wal` and
    /// `-shm` when no one else has the database open.
    pub fn close(self) {
        let _ = self.lock.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            false,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_database(dir: &Path) -> PathBuf {
        let path = dir.join("app.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = wal;
             CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO t (v) VALUES ('a');",
        )
        .unwrap();
        path
    }

    /// The checker's state and the capture's are the same exactly when no
    /// commit came between the data version read and the capture: a WAL
    /// commit in that window makes the capture check what it read itself.
    #[test]
    fn a_commit_between_the_version_and_the_capture_makes_the_capture_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = wal_database(dir.path());
        // Kept open so the WAL stays: the other connections read it.
        let writer = Connection::open(&path).unwrap();

        let mut quiet = Database::open(&path, DEFAULT_BUSY_TIMEOUT).unwrap();
        let version = quiet.data_version().unwrap();
        let checker = Database::open(&path, DEFAULT_BUSY_TIMEOUT)
            .unwrap()
            .pin()
            .unwrap();
        quiet.checked_elsewhere_at(version);
        assert_eq!(quiet.capture(None, None).unwrap().checked, None);
        assert_eq!(checker.quick_check().unwrap(), Vec::<String>::new());

        let mut raced = Database::open(&path, DEFAULT_BUSY_TIMEOUT).unwrap();
        let version = raced.data_version().unwrap();
        let checker = Database::open(&path, DEFAULT_BUSY_TIMEOUT)
            .unwrap()
            .pin()
            .unwrap();
        writer
            .execute("INSERT INTO t (v) VALUES ('b')", [])
            .unwrap();
        raced.checked_elsewhere_at(version);
        assert_eq!(
            raced.capture(None, None).unwrap().checked,
            Some(Vec::new()),
            "the capture saw a later state than the checker, and must check it"
        );
        // The pinned checker still reads the state it began with.
        let rows: i64 = checker
            .db
            .conn
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }
}
