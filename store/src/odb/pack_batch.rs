//! Many packs written into one transaction, their index rows inserted in id
//! order.
//!
//! The id index (`objects`, keyed by a BLAKE3 hash) takes its rows in
//! random order. Past about a million objects (a 4 GiB database) it is
//! some 50 MB and no longer fits SQLite's page cache, and every insert
//! reads back and dirties a page the pack rows streaming past had pushed
//! out: a first 4 GiB snapshot wrote each store page 2.9 times. Rows held
//! back and inserted sorted touch each index page once per run instead
//! (`docs/design.md`, "Index rows in sorted runs").
//!
//! A held-back row cannot say at once whether its object is new, so a
//! [`PackBatch`] stores every pack it is given and settles at each flush:
//! a row whose id is indexed already (or came earlier in the batch) is
//! dropped, and a pack none of whose rows went in is deleted again. A pack
//! whose first object the store has already goes in the old way, a row at
//! a time. While a batch lives it borrows its transaction mutably, so
//! nothing can read the index before its rows are in.

use super::{Result, Transaction};
use crate::pack::{PackMember, PreparedPack};

/// Rows held back at most before they are inserted: 48 bytes each, so
/// 12 MiB. A run this long touched each index page once at 4 GiB,
/// where unsorted inserts cost 1.6 times the CPU (`benches/index_order.py`).
const HELD_ROWS: usize = 262_144;

/// Packs written into a [`Transaction`] whose index rows are held back
/// and inserted in id order, made by [`Transaction::pack_batch`].
///
/// [`PackBatch::finish`] inserts the last rows and says how many objects
/// were new. A batch dropped without it leaves its transaction refusing
/// every later write and the commit, as after a failed write.
pub struct PackBatch<'t, 's> {
    tx: &'t mut Transaction<'s>,
    rows: Vec<HeldRow>,
    /// The packs stored since the last flush, by number, with their stored
    /// size: each stays only if one of its rows goes in.
    packs: Vec<(i64, u64)>,
    /// Objects found new so far.
    new: usize,
    /// Rows held at most: [`HELD_ROWS`], less in tests of runs.
    limit: usize,
    finished: bool,
}

/// An index row held back: a pack member, and which of the batch's packs
/// since the last flush holds it.
struct HeldRow {
    member: PackMember,
    slot: u32,
}

impl<'t, 's> PackBatch<'t, 's> {
    pub(super) fn new(tx: &'t mut Transaction<'s>) -> Self {
        PackBatch {
            tx,
            // Reserved whole, once: grown by doubling, and again after each
            // flush, the held rows raised a 4 GiB clone's peak RSS by 31 MB
            // instead of 12-17. Pages of it never written (a small batch)
            // are never resident.
            rows: Vec::with_capacity(HELD_ROWS),
            packs: Vec::new(),
            new: 0,
            limit: HELD_ROWS,
            finished: false,
        }
    }

    /// A compressor as [`Transaction::compressor_at`] makes it.
    pub(crate) fn compressor_at(&self, level: i32, pages: bool) -> crate::compress::Compressor {
        self.tx.compressor_at(level, pages)
    }

    /// Stores `pack` and holds its members' index rows back. After a
    /// failure every later write of the transaction is refused.
    pub fn write_pack(&mut self, pack: &PreparedPack) -> Result<()> {
        let written = self.hold(pack);
        self.tx.failed |= written.is_err();
        written
    }

    fn hold(&mut self, pack: &PreparedPack) -> Result<()> {
        // A pack whose first object the store has is most likely pages it
        // holds already (a copy of a database it has a snapshot of): it
        // goes in a row at a time, and is not stored at all if every one is
        // there, rather than stored and deleted again at the flush. One
        // look-up a pack is a thirty-second of what inserting every row
        // at once cost.
        if let Some(first) = pack.members.first()
            && self.tx.view().contains(&first.id)?
        {
            self.new += self.tx.insert_pack(pack)?;
            return Ok(());
        }
        let seq = self.tx.insert_pack_row(pack, None)?;
        let slot = u32::try_from(self.packs.len()).expect(
            "holds because a flush comes every HELD_ROWS rows, and a pack holds one or more",
        );
        self.packs.push((seq, pack.data.len() as u64));
        self.rows
            .extend(pack.members.iter().map(|&member| HeldRow { member, slot }));
        if self.rows.len() >= self.limit {
            self.flush()?;
        }
        Ok(())
    }

    /// Inserts the rows held so far, then deletes the packs none of whose
    /// rows went in, and counts the rest as added.
    fn flush(&mut self) -> Result<()> {
        // The first copy of an object written is the one kept, as when
        // packs are written one at a time.
        self.rows
            .sort_unstable_by_key(|row| (row.member.id, row.slot, row.member.offset));
        self.rows.dedup_by_key(|row| row.member.id);
        let mut kept = vec![false; self.packs.len()];
        let mut new = 0;
        for row in &self.rows {
            let slot = row.slot as usize;
            if self.tx.index_member(&row.member, self.packs[slot].0)? {
                new += 1;
                kept[slot] = true;
            }
        }
        self.rows.clear();
        self.new += new;
        self.tx.added.objects += new as u64;
        let mut gone = Vec::new();
        for ((seq, bytes), kept) in std::mem::take(&mut self.packs).into_iter().zip(kept) {
            if kept {
                self.tx.added.bytes += bytes;
            } else {
                gone.push(seq);
            }
        }
        self.tx.delete_packs(&gone)
    }

    /// Inserts the rows still held, and returns how many of the objects
    /// written through this batch were new to the store.
    pub fn finish(mut self) -> Result<usize> {
        let flushed = self.flush();
        self.tx.failed |= flushed.is_err();
        flushed?;
        self.finished = true;
        Ok(self.new)
    }
}

impl Drop for PackBatch<'_, '_> {
    fn drop(&mut self) {
        // Held rows not inserted would leave packs the index does not
        // point into, and objects the caller thinks written.
        if !self.finished {
            self.tx.failed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odb::{Error, ObjectStore, Store};
    use crate::pack::HashedBlob;

    fn page(n: u32) -> Vec<u8> {
        n.to_le_bytes().repeat(1024)
    }

    /// Packs of the pages numbered `numbers`, `per` to a pack.
    fn packs(tx: &Transaction<'_>, numbers: &[u32], per: usize) -> Vec<PreparedPack> {
        let pages: Vec<Vec<u8>> = numbers.iter().map(|&n| page(n)).collect();
        let mut compressor = tx.compressor();
        pages
            .chunks(per)
            .map(|chunk| {
                PreparedPack::blobs(chunk.iter().map(|p| HashedBlob::new(p)), &mut compressor)
            })
            .collect()
    }

    /// A connection of its own to the store in `dir`, to count and damage
    /// rows behind the store's back.
    fn raw(dir: &tempfile::TempDir) -> rusqlite::Connection {
        rusqlite::Connection::open(dir.path().join("s").join(super::super::STORE_FILE)).unwrap()
    }

    fn pack_count(dir: &tempfile::TempDir) -> i64 {
        raw(dir)
            .query_row("SELECT count(*) FROM packs", [], |r| r.get(0))
            .unwrap()
    }

    /// Runs of three rows, and packs whose first page is new, so every
    /// row goes through a flush: the copies of an object land in one pack,
    /// in two packs of one run, in an earlier run, or in the index before
    /// the batch, and each is counted once; a pack with nothing new is
    /// deleted and its bytes not counted as added.
    #[test]
    fn duplicates_within_and_across_runs_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join("s")).unwrap();
        let mut tx = store.transaction().unwrap();
        tx.write(&crate::Object::Blob(page(9))).unwrap();
        let before = tx.added();
        // Runs: [1 2] [2 1] | [3 2] [4 4] | [5 9]. The second pack's rows
        // are all copies held beside the first's; 2 in the third is in the
        // index from the first run; 9 was there before the batch.
        let packs = packs(&tx, &[1, 2, 2, 1, 3, 2, 4, 4, 5, 9], 2);
        let mut batch = tx.pack_batch();
        batch.limit = 3;
        for pack in &packs {
            batch.write_pack(pack).unwrap();
        }
        assert_eq!(batch.finish().unwrap(), 5, "pages 1 to 5");
        let kept: u64 = [&packs[0], &packs[2], &packs[3], &packs[4]]
            .iter()
            .map(|p| p.data.len() as u64)
            .sum();
        assert_eq!(tx.added().objects - before.objects, 5);
        assert_eq!(tx.added().bytes - before.bytes, kept);
        tx.commit(&[], "pages").unwrap();
        assert_eq!(pack_count(&dir), 1 + 4, "the page 9 pack and four of five");
        for n in [1, 2, 3, 4, 5, 9] {
            let id = crate::codec::blob_id(&page(n));
            assert_eq!(store.view().read_blob(&id).unwrap(), page(n));
        }
        let report = crate::fsck::check(
            &store,
            crate::fsck::FsckOptions {
                read_data: crate::fsck::ReadData::All,
            },
            &mut crate::progress::Silent,
        )
        .unwrap();
        assert!(
            report.problems.is_empty() && report.damaged_rows.is_empty(),
            "{report:?}"
        );
    }

    /// Pages the store has already (a copy of a database it holds) are not
    /// stored again: their packs are not written, even to be deleted.
    #[test]
    fn packs_of_pages_the_store_has_are_not_stored_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join("s")).unwrap();
        // Pages zstd cannot shrink, so each pack spills into pages of its
        // own, and a pack stored and deleted again would leave them free.
        let noise: Vec<Vec<u8>> = (0u32..5)
            .map(|n| {
                let mut page = vec![0; 4096];
                blake3::Hasher::new()
                    .update(&n.to_le_bytes())
                    .finalize_xof()
                    .fill(&mut page);
                page
            })
            .collect();
        let free = || -> i64 {
            raw(&dir)
                .query_row("PRAGMA freelist_count", [], |r| r.get(0))
                .unwrap()
        };
        let free_before = free();
        for round in 0..2 {
            let mut tx = store.transaction().unwrap();
            let mut compressor = tx.compressor();
            let packs: Vec<PreparedPack> = noise
                .chunks(2)
                .map(|chunk| {
                    PreparedPack::blobs(chunk.iter().map(|p| HashedBlob::new(p)), &mut compressor)
                })
                .collect();
            let mut batch = tx.pack_batch();
            for pack in &packs {
                batch.write_pack(pack).unwrap();
            }
            let new = batch.finish().unwrap();
            assert_eq!(new, if round == 0 { 5 } else { 0 });
            assert_eq!(tx.added().objects, new as u64);
            if round == 1 {
                assert_eq!(tx.added().bytes, 0);
            }
            tx.commit(&[], "pages").unwrap();
            assert_eq!(pack_count(&dir), 3, "round {round}");
            assert_eq!(free(), free_before, "round {round}: pages freed");
        }
    }

    /// An object indexed in a pack that is gone counts as absent, and a
    /// batch that writes it again points the index at the new copy.
    #[test]
    fn a_batch_heals_an_object_whose_pack_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join("s")).unwrap();
        let id = store.write(&crate::Object::Blob(page(1))).unwrap();
        // A later pack keeps the number of the first from being taken again.
        store.write(&crate::Object::Blob(page(5))).unwrap();
        raw(&dir)
            .execute("DELETE FROM packs WHERE seq = 1", [])
            .unwrap();
        assert!(!store.contains(&id).unwrap());
        let mut tx = store.transaction().unwrap();
        let packs = packs(&tx, &[1, 2], 2);
        let mut batch = tx.pack_batch();
        batch.write_pack(&packs[0]).unwrap();
        assert_eq!(batch.finish().unwrap(), 2);
        tx.commit(&[], "pages").unwrap();
        assert_eq!(store.view().read_blob(&id).unwrap(), page(1));
    }

    /// Rows still held when a batch is dropped were never indexed: the
    /// transaction refuses to commit, and nothing of it is kept.
    #[test]
    fn a_batch_dropped_unfinished_fails_its_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join("s")).unwrap();
        let mut tx = store.transaction().unwrap();
        let packs = packs(&tx, &[1, 2], 2);
        let mut batch = tx.pack_batch();
        batch.write_pack(&packs[0]).unwrap();
        drop(batch);
        assert!(matches!(
            tx.commit(&[], "pages"),
            Err(Error::AfterFailedWrite { .. })
        ));
        assert_eq!(pack_count(&dir), 0);
    }
}
