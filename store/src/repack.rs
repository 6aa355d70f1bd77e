//! Packing: recompressing loose packs into the compact form, git's
//! loose-objects-then-`gc` idea.
//!
//! A snapshot writes its packs fast ([`SNAPSHOT_LEVEL`], 32 pages a frame,
//! no dictionary training) so the user is not kept waiting; every pack row
//! records the level it was written with, and one written below
//! [`PACKED_LEVEL`] is *loose*, unless it holds a large object stored
//! uncompressed (a full page listing: there is nothing to gain, see
//! `loose` in `odb/view.rs`). Packing moves every object of the loose packs
//! into compact packs ([`PACKED_LEVEL`], [`PACKED_OBJECTS`] pages a frame,
//! the store's dictionary, trained here on the loose pages if the store has
//! none yet), re-points their index rows and deletes the loose packs.
//!
//! Ids cannot change: an id is the hash of the encoded bytes, which are
//! copied as they are (and verified on the way). Everything happens in the
//! caller's transaction, so a crash leaves the loose packs or the compact
//! ones, never a mix of half-moved rows.

use std::collections::{BTreeMap, HashSet};
use std::ops::RangeInclusive;

use crossbeam_channel::{bounded, unbounded};

use crate::compress::{self, Compressor, Dictionary, PACKED_LEVEL};
use crate::id::ObjectId;
use crate::object::Kind;
use crate::odb::{Result, Transaction};
use crate::pack::{PACKED_OBJECTS, PreparedPack};
use crate::progress::Progress;

#[cfg(doc)]
use crate::compress::SNAPSHOT_LEVEL;

/// Pages sampled to train the store's dictionary; fewer make a poor one.
const DICTIONARY_SAMPLES: usize = 1000;

/// Stored bytes of loose packs below which no dictionary is trained: a
/// dictionary saves less than a tenth of the compressed size (see the layout
/// table in docs/design.md), so below about 640 KiB it cannot pay for its
/// own 64 KiB, and training it would be wasted work.
const DICTIONARY_MIN_BYTES: u64 = 16 * compress::DICTIONARY_SIZE as u64;

/// What packing did (or, inside a rolled-back dry run, would do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackReport {
    /// Loose packs replaced.
    pub loose_packs: u64,
    /// Compact packs written in their place.
    pub packed_packs: u64,
    /// Objects moved (their ids are unchanged).
    pub objects: u64,
    /// Stored bytes of the loose packs.
    pub bytes_before: u64,
    /// Stored bytes of the compact packs (and of a dictionary trained now).
    pub bytes_after: u64,
    /// Whether the store's first dictionary was trained by this pass.
    pub trained_dictionary: bool,
}

/// One object to move: where it is now.
struct Loose {
    pack: i64,
    id: ObjectId,
    kind: Kind,
    offset: i64,
    len: i64,
}

/// Objects read into memory at a time, about 64 bytes each: packing reads
/// the loose packs in runs of whole packs of about this many objects, so
/// its memory does not grow with the store (a 4 GiB image is a million).
const CHUNK_OBJECTS: u64 = 1 << 17;

/// Packs every loose pack of the store inside `tx`. The caller must have
/// checked that every reachable object is present (as gc does): the loose
/// packs are deleted once their indexed objects moved, so bytes of an object
/// whose index row was lost would go with them.
pub fn pack_loose(tx: &mut Transaction<'_>, progress: &mut dyn Progress) -> Result<PackReport> {
    let counts = tx.view().loose_pack_counts(PACKED_LEVEL)?;
    let mut report = PackReport::default();
    let total: u64 = counts.iter().map(|(_, objects)| objects).sum();
    if total == 0 {
        return Ok(report);
    }
    let chunks = chunks(&counts);
    if !tx.has_dictionary() {
        let all: Vec<i64> = counts.iter().map(|(pack, _)| *pack).collect();
        if tx.view().packs_size(&all)? >= DICTIONARY_MIN_BYTES {
            let added_before = tx.added().bytes;
            report.trained_dictionary = train(tx, &chunks, total)?;
            report.bytes_after += tx.added().bytes - added_before;
        }
    }
    progress.start("packing", total);
    for chunk in chunks {
        let (loose, packs) = read_chunk(tx, chunk)?;
        if loose.is_empty() {
            continue;
        }
        report.bytes_before += tx.view().packs_size(&packs)?;
        recompress(tx, &loose, &packs, &mut report, progress)?;
        report.loose_packs += packs.len() as u64;
        report.objects += loose.len() as u64;
    }
    progress.finish();
    Ok(report)
}

/// Cuts the loose packs (`counts`: each pack with its number of objects, in
/// order) into ranges of whole packs of about [`CHUNK_OBJECTS`] objects.
fn chunks(counts: &[(i64, u64)]) -> Vec<RangeInclusive<i64>> {
    let mut chunks = Vec::new();
    let mut first = None;
    let mut objects = 0;
    for &(pack, count) in counts {
        let start = *first.get_or_insert(pack);
        objects += count;
        if objects >= CHUNK_OBJECTS {
            chunks.push(start..=pack);
            (first, objects) = (None, 0);
        }
    }
    if let (Some(start), Some(&(last, _))) = (first, counts.last()) {
        chunks.push(start..=last);
    }
    chunks
}

/// The objects of the loose packs in `chunk`, in pack and offset order, and
/// those packs, once each. A pack with an unreadable index row cannot be
/// emptied: it is left out, loose, for fsck to report.
fn read_chunk(tx: &Transaction<'_>, chunk: RangeInclusive<i64>) -> Result<(Vec<Loose>, Vec<i64>)> {
    let rows = tx.view().loose_objects(PACKED_LEVEL, chunk)?;
    let damaged: HashSet<i64> = rows
        .iter()
        .filter(|row| row.object.is_none())
        .map(|row| row.pack)
        .collect();
    let loose: Vec<Loose> = rows
        .into_iter()
        .filter(|row| !damaged.contains(&row.pack))
        .filter_map(|row| {
            row.object.map(|(id, kind)| Loose {
                pack: row.pack,
                id,
                kind,
                offset: row.offset,
                len: row.len,
            })
        })
        .collect();
    let mut packs: Vec<i64> = loose.iter().map(|object| object.pack).collect();
    packs.dedup();
    Ok((loose, packs))
}

/// A group of encoded objects to compress into one pack, numbered in the
/// order they were read, with how many loose packs are emptied once it and
/// every group before it are written.
struct Job {
    number: u64,
    emptied: usize,
    objects: Vec<(Kind, Vec<u8>)>,
    /// Whether they are pages, compressed with the dictionary.
    pages: bool,
}

/// Reads every object of `loose` in order, groups them, compresses the
/// groups on worker threads (one per core, at most 8), writes the packs back
/// in reading order (so the compact packs keep the pages' order) and deletes
/// each loose pack in `packs` as soon as all its objects are written
/// elsewhere, so SQLite reuses its pages and the store file grows by little
/// more than a few packs while packing.
///
/// SQLite connections stay on this thread: it reads and writes, the workers
/// only compress. The job queue is bounded and results are drained after
/// every job, so at most a few groups are in memory whatever the store size.
fn recompress(
    tx: &mut Transaction<'_>,
    loose: &[Loose],
    packs: &[i64],
    report: &mut PackReport,
    progress: &mut dyn Progress,
) -> Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let compressors: Vec<_> = (0..workers)
        .map(|_| {
            (
                tx.compressor_at(PACKED_LEVEL, true),
                tx.compressor_at(PACKED_LEVEL, false),
            )
        })
        .collect();
    std::thread::scope(|scope| {
        let (job_tx, job_rx) = bounded::<Job>(2 * workers);
        let (done_tx, done_rx) = unbounded::<(u64, (usize, PreparedPack))>();
        for (mut pages, mut others) in compressors {
            let (job_rx, done_tx) = (job_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                for job in job_rx {
                    let compressor = if job.pages { &mut pages } else { &mut others };
                    let pack = PreparedPack::from_encoded(job.objects, compressor);
                    // A closed channel means the writer failed; it reports why.
                    if done_tx.send((job.number, (job.emptied, pack))).is_err() {
                        return;
                    }
                }
            });
        }
        drop((job_rx, done_tx));
        let mut writer = InOrder {
            packs,
            deleted: 0,
            next: 0,
            ready: BTreeMap::new(),
        };
        let mut sent = 0u64;
        let mut send = |tx: &mut Transaction<'_>,
                        writer: &mut InOrder,
                        emptied,
                        objects: Vec<(Kind, Vec<u8>)>| {
            let job = Job {
                number: sent,
                emptied,
                pages: matches!(objects.as_slice(), [(Kind::Blob, _), ..]),
                objects,
            };
            job_tx
                .send(job)
                .expect("BUG: workers outlive the job channel");
            sent += 1;
            writer.ready.extend(done_rx.try_iter());
            writer.write(tx, report)
        };
        let mut group: Vec<(Kind, Vec<u8>)> = Vec::with_capacity(PACKED_OBJECTS);
        // The index in `packs` of the object being read, and of the first
        // object of the group being filled.
        let (mut current, mut group_from) = (0usize, 0usize);
        for (k, object) in loose.iter().enumerate() {
            while packs[current] != object.pack {
                current += 1;
            }
            let encoded = read_encoded(tx, object)?;
            // Packs before the next object's are read whole.
            let read = loose.get(k + 1).map_or(packs.len(), |next| {
                current + usize::from(next.pack != object.pack)
            });
            // Blobs (pages, and the odd schema blob) go together, in the
            // order the snapshot wrote them; other objects (listings,
            // snapshots) keep a pack of their own, as writers give them.
            if object.kind == Kind::Blob {
                if group.is_empty() {
                    group_from = current;
                }
                group.push((object.kind, encoded));
                if group.len() == PACKED_OBJECTS {
                    send(tx, &mut writer, read, std::mem::take(&mut group))?;
                }
            } else {
                // A loose pack is emptied only when the group being filled
                // no longer holds any of its objects.
                let emptied = if group.is_empty() {
                    read
                } else {
                    read.min(group_from)
                };
                send(tx, &mut writer, emptied, vec![(object.kind, encoded)])?;
            }
            progress.advance(1);
        }
        if !group.is_empty() {
            send(tx, &mut writer, packs.len(), group)?;
        }
        drop(job_tx);
        writer.ready.extend(done_rx.iter());
        writer.write(tx, report)?;
        // The last job empties every loose pack, so this deletes none; it
        // keeps "every loose pack goes" true without relying on that.
        tx.delete_packs(&packs[writer.deleted..])
    })
}

/// Compressed packs waiting for their turn to be written, and the loose
/// packs they empty.
struct InOrder<'p> {
    packs: &'p [i64],
    /// How many of `packs` are deleted.
    deleted: usize,
    next: u64,
    ready: BTreeMap<u64, (usize, PreparedPack)>,
}

impl InOrder<'_> {
    /// Writes the packs that are next in order, moving their objects, and
    /// deletes the loose packs that are now empty.
    fn write(&mut self, tx: &mut Transaction<'_>, report: &mut PackReport) -> Result<()> {
        while let Some((emptied, pack)) = self.ready.remove(&self.next) {
            tx.move_into_pack(&pack)?;
            report.packed_packs += 1;
            report.bytes_after += pack.stored_len() as u64;
            self.next += 1;
            if emptied > self.deleted {
                tx.delete_packs(&self.packs[self.deleted..emptied])?;
                self.deleted = emptied;
            }
        }
        Ok(())
    }
}

/// The encoded bytes of `object`, verified against its id.
fn read_encoded(tx: &Transaction<'_>, object: &Loose) -> Result<Vec<u8>> {
    tx.view()
        .encoded_at(&object.id, object.pack, object.offset, object.len)
}

/// Trains the store's dictionary on up to [`DICTIONARY_SAMPLES`] pages
/// spaced evenly over the loose packs (`chunks`, holding `objects` objects),
/// off the snapshot's critical path, and keeps it only if it pays for
/// itself ([`pays_off`]). Too few pages to train on is not an error: the
/// packs are then compressed without one.
fn train(tx: &mut Transaction<'_>, chunks: &[RangeInclusive<i64>], objects: u64) -> Result<bool> {
    let step = (objects / DICTIONARY_SAMPLES as u64).max(1);
    let mut samples = Vec::new();
    let mut pages = 0u64;
    for chunk in chunks {
        let (loose, _) = read_chunk(tx, chunk.clone())?;
        for object in loose.iter().filter(|o| o.kind == Kind::Blob) {
            if pages.is_multiple_of(step) && samples.len() < DICTIONARY_SAMPLES {
                samples.push(read_encoded(tx, object)?);
            }
            pages += 1;
        }
    }
    if samples.is_empty() {
        return Ok(false);
    }
    let Ok(bytes) = compress::train_dictionary(&samples) else {
        return Ok(false);
    };
    let dictionary = Dictionary::new(bytes);
    if !pays_off(&samples, &dictionary, pages as usize) {
        return Ok(false);
    }
    tx.add_dictionary(dictionary.bytes)?;
    Ok(true)
}

/// Whether `dictionary` saves more than its own size on `pages` pages:
/// the samples, compressed in frames as packing will, with and without it,
/// and the difference scaled up. Pages with nothing in common (random
/// bytes, already compressed data) gain less than the 64 KiB it costs.
fn pays_off(samples: &[Vec<u8>], dictionary: &Dictionary, pages: usize) -> bool {
    let compressed = |dictionary: Option<&Dictionary>| {
        let mut compressor = Compressor::new(PACKED_LEVEL, dictionary).ok()?;
        let total = samples
            .chunks(PACKED_OBJECTS)
            .map(|frame| compressor.compress(frame.concat()).2.len())
            .sum::<usize>();
        Some(total as f64)
    };
    match (compressed(None), compressed(Some(dictionary))) {
        (Some(plain), Some(primed)) => {
            (plain - primed) * pages as f64 / samples.len() as f64 > dictionary.bytes.len() as f64
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{CHUNK_OBJECTS, chunks};

    #[test]
    fn chunks_hold_whole_packs_of_about_the_chunk_size() {
        assert!(chunks(&[]).is_empty());
        assert_eq!(chunks(&[(3, 5), (9, 7)]), vec![3..=9]);
        let half = CHUNK_OBJECTS / 2;
        let counts = [
            (1, half),
            (2, half),
            (4, half),
            (5, 1),
            (6, CHUNK_OBJECTS * 3),
        ];
        assert_eq!(chunks(&counts), vec![1..=2, 4..=6]);
        assert_eq!(chunks(&[(7, CHUNK_OBJECTS), (8, 1)]), vec![7..=7, 8..=8]);
    }
}
