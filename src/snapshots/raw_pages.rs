//! Reading a capture's pages a run at a time, straight from the
//! database file into the reader's buffer, inside the capture's read
//! transaction.
//!
//! Why: one `sqlite_dbpage` row per page costs a statement step, a pager
//! fetch and a 4 KiB `pread` per page, about a sixth of a first snapshot's
//! CPU. A run of pages can be read from the main file only where the main
//! file holds the version this read transaction sees:
//! - **rollback journal**: the SHARED lock keeps every writer out of the
//!   file until the read ends, so every page is the main file's;
//! - **WAL**: a page with no frame in the WAL file is the main file's, and
//!   stays so while the read lasts: a checkpoint copies into the main file
//!   only frames no reader still needs (never past this reader's mark; with
//!   mark 0 it cannot copy at all, it needs read lock 0 exclusively), and the
//!   WAL is not restarted while a reader uses its frames. A page with any
//!   frame in the WAL, valid or stale, is read through `sqlite_dbpage`.
//!
//! The files are read through SQLite's own handles
//! (`SQLITE_FCNTL_FILE_POINTER`, `SQLITE_FCNTL_JOURNAL_POINTER`), never
//! through a second descriptor: closing a descriptor drops every POSIX lock
//! the process holds on that file, SQLite's included, and a restore holds
//! such a lock while it takes its safety snapshot.
//!
//! This is the crate's only `unsafe` code: three calls through SQLite's C
//! interface, each with its contract next to it.

use std::ffi::{CStr, c_int, c_void};

use rusqlite::{Connection, ffi};

use super::sqlite::{PageSink, SqliteError};

/// Bytes of a WAL file's header, and of each frame's header before its page
/// (<https://sqlite.org/fileformat.html#the_write_ahead_log>).
const WAL_HEADER: i64 = 32;
const FRAME_HEADER: i64 = 24;

/// Why the pages could not be read straight from the file; the caller then
/// reads them all through `sqlite_dbpage`, which is always right.
#[derive(Debug)]
pub struct Unavailable;

/// Reads pages `1..=page_count` of the connection's main database, in order,
/// into `sink`'s room, as much at a time as it gives, inside the read
/// transaction the caller has begun. Pages with a frame in the WAL, and any
/// the file cannot give in full, are read with `from_pager` (a
/// `sqlite_dbpage` read of one page). Fails with [`Unavailable`], before
/// any page reached `sink`, when the WAL cannot be read this way.
pub fn read(
    conn: &Connection,
    page_size: u32,
    page_count: u32,
    in_wal: bool,
    sink: &mut dyn PageSink,
    from_pager: &mut dyn FnMut(u32) -> Result<Vec<u8>, SqliteError>,
) -> Result<Result<(), SqliteError>, Unavailable> {
    let main = SqliteFile::of(conn, ffi::SQLITE_FCNTL_FILE_POINTER).ok_or(Unavailable)?;
    let wal_pages = if in_wal {
        match SqliteFile::of(conn, ffi::SQLITE_FCNTL_JOURNAL_POINTER) {
            Some(wal) => wal_page_numbers(&wal, page_size)?,
            // No WAL file open: every page is the main file's.
            None => Vec::new(),
        }
    } else {
        Vec::new()
    };
    let page = page_size as usize;
    let mut wal = wal_pages.iter().copied().peekable();
    let mut pgno = 1u32;
    let mut through_pager =
        |pgno: u32, sink: &mut dyn PageSink| from_pager(pgno).and_then(|data| sink.put(&data));
    while pgno <= page_count {
        while wal.next_if(|&p| p < pgno).is_some() {}
        if wal.peek() == Some(&pgno) {
            if let Err(e) = through_pager(pgno, sink) {
                return Ok(Err(e));
            }
            pgno += 1;
            continue;
        }
        let next_wal = wal.peek().copied().unwrap_or(u32::MAX);
        let room = sink.room(page);
        assert!(room.len() >= page, "BUG: a page sink gave room for no page");
        let run = (room.len() / page)
            .min((page_count - pgno + 1) as usize)
            .min((next_wal - pgno) as usize) as u32;
        let offset = i64::from(pgno - 1) * i64::from(page_size);
        let outcome = if main.read_exact(&mut room[..run as usize * page], offset) {
            sink.filled(run as usize)
        } else {
            // A short read or an error: the pager reads these pages as
            // SQLite sees them (zeros past the end, or the error in its
            // words).
            (pgno..pgno + run).try_for_each(|p| through_pager(p, sink))
        };
        if let Err(e) = outcome {
            return Ok(Err(e));
        }
        pgno += run;
    }
    Ok(Ok(()))
}

/// Every page number with a frame in the WAL file, sorted, once each.
/// Frames of an older WAL generation count too: reading such a page
/// through the pager is merely slower.
fn wal_page_numbers(wal: &SqliteFile, page_size: u32) -> Result<Vec<u32>, Unavailable> {
    let size = wal.size().ok_or(Unavailable)?;
    if size < WAL_HEADER {
        return Ok(Vec::new());
    }
    let mut header = [0u8; WAL_HEADER as usize];
    if !wal.read_exact(&mut header, 0) {
        return Err(Unavailable);
    }
    // The WAL's own page size must be the database's, or the frames are
    // not what this reasoning assumes.
    if u32::from_be_bytes([header[8], header[9], header[10], header[11]]) != page_size {
        return Err(Unavailable);
    }
    let frame = FRAME_HEADER + i64::from(page_size);
    let frames = (size - WAL_HEADER) / frame;
    let mut pages = Vec::new();
    let mut pgno = [0u8; 4];
    for i in 0..frames {
        if !wal.read_exact(&mut pgno, WAL_HEADER + i * frame) {
            return Err(Unavailable);
        }
        pages.push(u32::from_be_bytes(pgno));
    }
    pages.sort_unstable();
    pages.dedup();
    Ok(pages)
}

/// One of SQLite's open files of a connection, borrowed for as long as the
/// connection is.
struct SqliteFile<'c> {
    file: *mut ffi::sqlite3_file,
    _conn: &'c Connection,
}

impl<'c> SqliteFile<'c> {
    /// The file `op` names (`SQLITE_FCNTL_FILE_POINTER` for the main
    /// database, `SQLITE_FCNTL_JOURNAL_POINTER` for its journal or WAL), if
    /// it is open.
    fn of(conn: &'c Connection, op: c_int) -> Option<SqliteFile<'c>> {
        const MAIN: &CStr = c"main";
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: `handle` is the connection's live `sqlite3*`, used on this
        // thread only (Connection is not Sync). Both opcodes write one
        // `sqlite3_file*` into the pointer they are given
        // (https://sqlite.org/c3ref/c_fcntl_begin_atomic_write.html); SQLite
        // owns the file, which stays open while the connection's read
        // transaction does, and `_conn` ties this value to the connection.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                MAIN.as_ptr(),
                op,
                (&raw mut file).cast::<c_void>(),
            )
        };
        // SAFETY: a non-null `file` points to SQLite's file object (see
        // above); `pMethods` is null when the file is not open.
        if rc != ffi::SQLITE_OK || file.is_null() || unsafe { (*file).pMethods.is_null() } {
            return None;
        }
        Some(SqliteFile { file, _conn: conn })
    }

    /// Fills `buf` from `offset`; false on a short read or an error.
    fn read_exact(&self, buf: &mut [u8], offset: i64) -> bool {
        let Ok(len) = c_int::try_from(buf.len()) else {
            return false;
        };
        // SAFETY: `file` is open (checked in `of`) and owned by the
        // connection this value borrows; `xRead` reads at most `len` bytes
        // into `buf`, which is valid for `len` bytes, and does not keep it.
        let rc = unsafe {
            let methods = &*(*self.file).pMethods;
            match methods.xRead {
                Some(read) => read(self.file, buf.as_mut_ptr().cast::<c_void>(), len, offset),
                None => ffi::SQLITE_MISUSE,
            }
        };
        rc == ffi::SQLITE_OK
    }

    /// The file's size in bytes.
    fn size(&self) -> Option<i64> {
        let mut size: ffi::sqlite3_int64 = 0;
        // SAFETY: as in `read_exact`; `xFileSize` writes one integer.
        let rc = unsafe {
            let methods = &*(*self.file).pMethods;
            match methods.xFileSize {
                Some(file_size) => file_size(self.file, &raw mut size),
                None => ffi::SQLITE_MISUSE,
            }
        };
        (rc == ffi::SQLITE_OK).then_some(size)
    }
}
