//! Writing a verified image into the live database, under its write lock.
//!
//! The pages go through SQLite's pager (the writable `sqlite_dbpage`
//! table), so they are journaled and committed like any transaction: a
//! crash leaves the old database or the new one, writers waiting on the
//! lock see the new content when they get it, and connections that stay
//! open notice the change as they notice any other commit. Only pages that
//! differ are written.
//!
//! A restore writes them straight from the store ([`apply_from_store`]):
//! the live database's pages were just hashed under the same lock by its
//! safety snapshot, so the pages to write are known from the two listings,
//! and no copy of the database is made. A rewrite (stamp, repair) writes
//! them from its edited copy ([`apply`]).

use std::os::unix::fs::FileExt;
use std::path::Path;

use migsnap_store::bulk::Proof;
use migsnap_store::image::{SpilledImage, WINDOW};
use migsnap_store::{Image, ObjectId, Progress, View};

use super::{Built, RestoreError, io};
use crate::snapshots::page_batches::{Batcher, PageBatch};
use crate::snapshots::page_sums::PageSums;
use crate::snapshots::pages;
use crate::snapshots::sqlite::{
    Committed, EachPage, LockedFacts, PageSink, SqliteError, WriteLock,
};

/// Pages a restore in place wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Written {
    /// Pages read from the store and written (page 1 always is).
    pub pages: u32,
    /// Pages of the result that the live file already held.
    pub kept: u32,
}

/// What a restore in place writes, and how it checks every page after.
/// It holds ids only of the pages it writes (and of the rare kept page
/// without a sum), never the whole listing: 32 MiB at 4 GiB.
pub(super) struct Plan {
    /// The pages to write and their ids, by ascending page number
    /// ([`Plan::new`]); the read-back checks them by id.
    write: Vec<(u32, ObjectId)>,
    /// The CRC-64 of each live page as the safety snapshot read it under
    /// this lock, by index, 0 where unknown ([`PageSums`]): the read-back
    /// checks a kept page against it instead of hashing it with BLAKE3.
    kept_sums: Vec<u64>,
    /// The kept pages whose sum is unknown, and their ids, by ascending
    /// page number: the read-back checks them by id.
    unsummed: Vec<(u32, ObjectId)>,
}

impl Plan {
    /// Writes, over a database whose pages `live` lists, the pages of `new`
    /// that differ at the same index, and page 1 always.
    pub(super) fn new(
        live: &SpilledImage,
        new: &SpilledImage,
        kept_sums: Vec<u64>,
    ) -> Result<Plan, RestoreError> {
        let mut plan = Plan {
            write: Vec::new(),
            kept_sums,
            unsummed: Vec::new(),
        };
        for (first, new) in new.windows() {
            let new = new?;
            // Unreadable, the live listing says nothing is kept.
            let live = live.blocks(first..first + new.len()).unwrap_or_default();
            for (offset, id) in new.iter().enumerate() {
                let pgno = u32::try_from(first + offset + 1).expect("BUG: page count over u32");
                plan.add(pgno, *id, pgno != 1 && live.get(offset) == Some(id));
            }
        }
        Ok(plan)
    }

    /// Adds page `pgno`, of id `id`, which is `kept` or written; pages
    /// come in ascending order.
    fn add(&mut self, pgno: u32, id: ObjectId, kept: bool) {
        let sum = self.kept_sums.get(pgno as usize - 1).copied().unwrap_or(0);
        if !kept {
            self.write.push((pgno, id));
        } else if sum == 0 {
            self.unsummed.push((pgno, id));
        }
    }

    /// Whether the bytes of page `pgno`, read back, are the ones meant:
    /// a written page (or a kept one whose sum is unknown) hashes to its
    /// id, a kept page has the sum it had when the lock was taken.
    fn holds(&self, pgno: u32, page: &[u8]) -> bool {
        let id_of = |pages: &[(u32, ObjectId)]| {
            pages
                .binary_search_by_key(&pgno, |&(p, _)| p)
                .ok()
                .map(|i| pages[i].1)
        };
        match id_of(&self.write).or_else(|| id_of(&self.unsummed)) {
            Some(id) => id == migsnap_store::codec::blob_id(page),
            None => self
                .kept_sums
                .get(pgno as usize - 1)
                .is_some_and(|&sum| sum != 0 && PageSums::of(page) == sum),
        }
    }
}

/// Writes the stored image `new` (of the live database's page size) into
/// the database `lock` holds, commits, and reads every page back. `plan`
/// was made from the pages the database holds under this lock (its safety
/// snapshot, taken under it): every other page is kept without being read
/// or decompressed; the pages it writes are read from the store,
/// hash-checked, and written through the pager. Page 1 is patched as in
/// [`apply`].
pub(super) fn apply_from_store(
    lock: WriteLock,
    facts: &LockedFacts,
    view: View<'_>,
    new: &Image,
    plan: &Plan,
    target: &Path,
    progress: &mut dyn Progress,
) -> Result<Written, RestoreError> {
    let fetch = &plan.write;
    let size = facts.page_size;
    let count = new.block_count;
    let ids: Vec<ObjectId> = fetch.iter().map(|&(_, id)| id).collect();
    let live_header = lock.page(1)?;
    let mut first_page = Vec::new();
    let mut snapshot_header = Vec::new();
    progress.start("writing changed pages", ids.len() as u64 * u64::from(size));
    pages::read_pages(view, &ids, 2, size, Proof::EachBlob, |at, mut page| {
        let pgno = fetch[at].0;
        if pgno == 1 {
            snapshot_header = page[..100].to_vec();
            patch_header(&mut page, &live_header, count);
            first_page.clone_from(&page);
        }
        lock.write_page(pgno, &page)?;
        progress.advance(u64::from(size));
        Ok::<_, RestoreError>(())
    })?;
    progress.finish();
    if count < facts.page_count {
        lock.truncate(count)?;
    }
    lock.set_schema_cookie(next_cookie(&snapshot_header, &live_header))?;
    let committed = lock.commit()?;
    progress.start("verifying pages", new.len());
    let read_back = hash_back(&committed, plan, &first_page, size as usize, progress);
    committed.close();
    progress.finish();
    let (unchanged, seen, first_bad) = read_back?;
    check_read_back(unchanged, seen, count, first_bad, target)?;
    let pages = u32::try_from(fetch.len()).expect("BUG: page count over u32");
    Ok(Written {
        pages,
        kept: count - pages,
    })
}

/// Pages handed from the read-back to the hasher at a time.
const HASH_BATCH: usize = 256;
/// Emptied batch buffers kept for the read-back to fill again.
const SPARE_BATCHES: usize = 4;

/// Reads `committed` back and checks every page (of `size` bytes) as
/// `plan` [holds](Plan::holds) it, and page 1, whose hash the commit's
/// stamps change, against `first_page` apart from them. Checking runs on
/// threads of its own, beside the reads. Returns what
/// [`Committed::read_back`] does, the number of pages seen and the first
/// that differs.
fn hash_back(
    committed: &Committed,
    plan: &Plan,
    first_page: &[u8],
    size: usize,
    progress: &mut dyn Progress,
) -> Result<(bool, u32, Option<u32>), RestoreError> {
    let holds = |pgno: u32, page: &[u8]| match pgno {
        1 => same_but_stamp(first_page, page),
        _ => plan.holds(pgno, page),
    };
    std::thread::scope(|scope| {
        let (batch_tx, batch_rx) = crossbeam_channel::bounded::<PageBatch>(4);
        let (spare_tx, spare_rx) = crossbeam_channel::bounded::<Vec<u8>>(SPARE_BATCHES);
        // One hasher per core: reading runs straight from the file
        // (`read_back`) is faster than hashing on one thread.
        let hashers: Vec<_> = (0..crate::snapshots::pages::workers())
            .map(|_| {
                let batch_rx = batch_rx.clone();
                let spare_tx = spare_tx.clone();
                scope.spawn(move || {
                    let mut first_bad: Option<u32> = None;
                    for batch in batch_rx {
                        let first = u32::try_from(batch.first + 1).expect("BUG: page over u32");
                        let bad = (first..)
                            .zip(batch.pages())
                            .find(|(pgno, page)| !holds(*pgno, page));
                        if let Some((pgno, _)) = bad {
                            first_bad = Some(first_bad.map_or(pgno, |b| b.min(pgno)));
                        }
                        let _ = spare_tx.try_send(batch.into_buffer());
                    }
                    first_bad
                })
            })
            .collect();
        drop(batch_rx);
        drop(spare_tx);
        let mut sink = ReadBack {
            batcher: Batcher::new(HASH_BATCH, &batch_tx, &spare_rx),
            size,
            seen: 0,
            progress,
        };
        let read = committed.read_back(&mut sink);
        let seen = sink.seen;
        sink.batcher.finish();
        drop(batch_tx);
        let first_bad = hashers
            .into_iter()
            .filter_map(|hasher| hasher.join().expect("BUG: page hasher panicked"))
            .min();
        Ok((read?, seen, first_bad))
    })
}

/// The read-back's [`PageSink`]: batches for the hashers, counted and
/// shown as they are read.
struct ReadBack<'a> {
    batcher: Batcher<'a>,
    size: usize,
    seen: u32,
    progress: &'a mut dyn Progress,
}

impl PageSink for ReadBack<'_> {
    fn room(&mut self, page_size: usize) -> &mut [u8] {
        self.batcher.room(page_size)
    }

    fn filled(&mut self, pages: usize) -> Result<(), SqliteError> {
        self.seen += u32::try_from(pages).expect("BUG: a run over u32 pages");
        self.progress.advance((pages * self.size) as u64);
        self.batcher.filled(pages)
    }
}

/// Fails when the pages read back after the commit are not the ones meant:
/// `first_bad` differed, or `seen` is not the `count` written. A writer
/// that got the lock right after the commit (`unchanged` is false) may have
/// changed the file already; then there is nothing of ours left to compare.
fn check_read_back(
    unchanged: bool,
    seen: u32,
    count: u32,
    first_bad: Option<u32>,
    target: &Path,
) -> Result<(), RestoreError> {
    if !unchanged {
        return Ok(());
    }
    match first_bad.or((seen != count).then_some(0)) {
        Some(pgno) => Err(RestoreError::ReadBack {
            path: target.to_path_buf(),
            pgno,
        }),
        None => Ok(()),
    }
}

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
    old_blocks: Option<&SpilledImage>,
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
    // Both listings, when known, a window at a time.
    let mut listed = None;
    for pgno in 1..=count {
        let index = pgno as usize - 1;
        let at = index % WINDOW;
        if at == 0 {
            listed = match (old_blocks, &built.blocks) {
                (Some(old), Some(new)) => Some((
                    old.blocks(index..index + WINDOW)?,
                    new.blocks(index..index + WINDOW)?,
                )),
                _ => None,
            };
        }
        let equal = match &listed {
            _ if pgno == 1 || pgno > facts.page_count => false,
            Some((old, new)) => old.get(at) == new.get(at),
            None => lock.page(pgno)? == read(pgno)?,
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
    let unchanged = committed.read_back(&mut EachPage::new(|pgno, data| {
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
    }))?;
    committed.close();
    check_read_back(unchanged, seen, count, first_bad, target)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshots::sqlite::DEFAULT_BUSY_TIMEOUT;
    use migsnap_store::progress::Silent;
    use rusqlite::Connection;

    const PAGE: usize = 1024;

    /// Every page of the database at `path`, as SQLite reads it.
    fn pages(path: &Path) -> Vec<Vec<u8>> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare("SELECT data FROM sqlite_dbpage ORDER BY pgno")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// The read-back hashes batches on several threads and reports the
    /// lowest page that differs, wherever its batch went; pages committed
    /// to the WAL are read back too.
    #[test]
    fn the_read_back_finds_the_first_page_that_differs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA page_size = {PAGE}; PRAGMA journal_mode = wal;
             CREATE TABLE t (b BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
             INSERT INTO t SELECT randomblob(900) FROM n;
             PRAGMA wal_checkpoint(TRUNCATE);"
        ))
        .unwrap();
        let before = pages(&path);
        assert!(before.len() > 3 * HASH_BATCH, "{} pages", before.len());

        let lock = WriteLock::acquire(&path, DEFAULT_BUSY_TIMEOUT).unwrap();
        // Rewritten as they are, these pages now live in the WAL.
        for pgno in [2u32, 400, 900] {
            lock.write_page(pgno, &before[pgno as usize - 1]).unwrap();
        }
        let committed = lock.commit().unwrap();
        let after = pages(&path);
        let mut blocks: Vec<ObjectId> = after
            .iter()
            .map(|page| migsnap_store::codec::blob_id(page))
            .collect();

        // The first page that does not hold as `plan` says, read back.
        let first_bad = |plan: &Plan| {
            let (unchanged, seen, first_bad) =
                hash_back(&committed, plan, &after[0], PAGE, &mut Silent).unwrap();
            assert!(unchanged);
            assert_eq!(seen as usize, after.len());
            first_bad
        };
        // A plan that writes `write`, over pages whose sums are `sums`,
        // with `blocks` the restored listing.
        let plan = |write: &[u32], sums: &[u64], blocks: &[ObjectId]| {
            let mut plan = Plan {
                write: Vec::new(),
                kept_sums: sums.to_vec(),
                unsummed: Vec::new(),
            };
            for (pgno, id) in (1..).zip(blocks) {
                plan.add(pgno, *id, !write.contains(&pgno));
            }
            plan
        };
        let write = [1, 2, 400, 900];
        assert_eq!(first_bad(&plan(&write, &[], &blocks)), None);

        // Kept pages are checked by their sums, written ones by their ids.
        let mut sums: Vec<u64> = after.iter().map(|page| PageSums::of(page)).collect();
        assert_eq!(first_bad(&plan(&write, &sums, &blocks)), None);
        sums[700] ^= 1;
        assert_eq!(
            first_bad(&plan(&write, &sums, &blocks)),
            Some(701),
            "a kept page whose sum differs"
        );
        let mut wrong_written = blocks.clone();
        wrong_written[399] = blocks[3];
        assert_eq!(
            first_bad(&plan(&write, &sums, &wrong_written)),
            Some(400),
            "a written page is checked by its id"
        );

        // Unknown sums (0) fall back to the ids.
        sums[11] = 0;
        blocks[800] = blocks[3];
        blocks[11] = blocks[3];
        assert_eq!(first_bad(&plan(&write, &sums, &blocks)), Some(12));
        assert_eq!(first_bad(&plan(&write, &[], &blocks)), Some(12));
        drop(conn);
    }
}
