//! Writing a verified image into the live database, under its write lock.
//!
//! The pages go through SQLite's pager (the writable `sqlite_dbpage`
//! table), so they are journaled and committed like any transaction: a
//! crash leaves the old database or the new one, writers waiting on the
//! lock see the new content when they get it, and connections that stay
//! open notice the change as they notice any other commit. Only pages that
//! differ are written.

use std::os::unix::fs::FileExt;
use std::path::Path;

use migsnap_store::ObjectId;

use super::{Built, RestoreError, io};
use crate::snapshots::sqlite::{LockedFacts, WriteLock};

/// Page 1 bytes that the commit stamps: the change counter, the schema
/// cookie, the version-valid-for number and the SQLite version.
const COMMIT_STAMPED: [std::ops::Range<usize>; 3] = [24..28, 40..44, 92..100];

/// Writes `built` (of the same page size as the live database) into the
/// database `lock` holds, commits, and reads it back. `old_blocks` and
/// `built.blocks`, when both are known, tell equal pages apart without
/// reading them; otherwise pages are compared byte for byte. Page 1 keeps
/// the live database's journal mode (bytes 18-19: rollback or WAL) and gets
/// the next change counter, so other connections see a change. Returns the
/// number of pages written.
pub(super) fn apply(
    lock: WriteLock,
    facts: &LockedFacts,
    built: &Built,
    old_blocks: Option<&[ObjectId]>,
    target: &Path,
) -> Result<u32, RestoreError> {
    let size = facts.page_size as usize;
    let file = built.temp.as_file();
    let temp_path = built.temp.path();
    let count = u32::try_from(built.bytes / size as u64).expect("BUG: page count over u32");
    let live_header = lock.page(1)?;
    let mut snapshot_header = vec![0u8; 100];
    file.read_exact_at(&mut snapshot_header, 0)
        .map_err(io(temp_path))?;
    let read = |pgno: u32| -> Result<Vec<u8>, RestoreError> {
        let mut page = vec![0u8; size];
        file.read_exact_at(&mut page, u64::from(pgno - 1) * size as u64)
            .map_err(io(temp_path))?;
        if pgno == 1 {
            patch_header(&mut page, &live_header, count);
        }
        Ok(page)
    };
    let mut written = 0;
    // Page 1 keeps the live schema cookie while pages are written, so this
    // connection never reloads its schema mid-way; the cookie moves last.
    for pgno in 1..=count {
        let index = pgno as usize - 1;
        let equal = match (old_blocks, &built.blocks) {
            _ if pgno == 1 || pgno > facts.page_count => false,
            (Some(old), Some(new)) => old.get(index) == new.get(index),
            _ => lock.page(pgno)? == read(pgno)?,
        };
        if !equal {
            lock.write_page(pgno, &read(pgno)?)?;
            written += 1;
        }
    }
    if count < facts.page_count {
        lock.truncate(count)?;
    }
    lock.set_schema_cookie(next_cookie(&snapshot_header, &live_header))?;
    let committed = lock.commit()?;
    let mut first_bad = None;
    let mut seen = 0u32;
    let unchanged = committed.read_back(|pgno, data| {
        seen += 1;
        if first_bad.is_none() {
            let expected = read(pgno).ok();
            let same = expected.is_some_and(|expected| match pgno {
                1 => same_but_stamp(&expected, data),
                _ => expected == data,
            });
            if !same {
                first_bad = Some(pgno);
            }
        }
        Ok(())
    })?;
    committed.close();
    // A writer that got the lock right after the commit may have changed
    // the file already; then there is nothing of ours left to compare.
    if unchanged {
        if seen != count {
            first_bad = Some(0);
        }
        if let Some(pgno) = first_bad {
            return Err(RestoreError::ReadBack {
                path: target.to_path_buf(),
                pgno,
            });
        }
    }
    Ok(written)
}

/// Gives the snapshot's page 1 the live file's journal mode (bytes 18-19)
/// and schema cookie (changed afterwards, see [`next_cookie`]), and the next
/// change counter, valid for the in-header page count `count`, as SQLite's
/// own commit would.
fn patch_header(page: &mut [u8], live: &[u8], count: u32) {
    page[18..20].copy_from_slice(&live[18..20]);
    page[40..44].copy_from_slice(&live[40..44]);
    let counter = u32::from_be_bytes(live[24..28].try_into().expect("4 bytes")).wrapping_add(1);
    page[24..28].copy_from_slice(&counter.to_be_bytes());
    page[28..32].copy_from_slice(&count.to_be_bytes());
    page[92..96].copy_from_slice(&counter.to_be_bytes());
}

/// A schema cookie above both the live database's and the snapshot's:
/// connections that stay open reload their cached schema only when the
/// cookie changed, and two different schemas can carry the same cookie.
fn next_cookie(snapshot: &[u8], live: &[u8]) -> u32 {
    let cookie = |bytes: &[u8]| u32::from_be_bytes(bytes[40..44].try_into().expect("4 bytes"));
    cookie(snapshot).max(cookie(live)).wrapping_add(1)
}

/// Whether two page-1 images are equal apart from what commit stamps.
fn same_but_stamp(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    for range in COMMIT_STAMPED {
        a[range.clone()].fill(0);
        b[range].fill(0);
    }
    a == b
}
