//! Reading many blobs in a given order, with decompression and verification
//! spread over worker threads.
//!
//! SQLite connections cannot be shared between threads, so the calling
//! thread does all store reads (locating objects, fetching compressed pack
//! rows) and hands the CPU work (zstd, BLAKE3) to workers. Results come back
//! out of order and are put back in order before the caller sees them, so the
//! caller's callback runs on its own thread and needs not be `Send`. At most
//! [`IN_FLIGHT`] packs are in the pipeline, so memory stays flat.

use std::collections::BTreeMap;
use std::sync::Arc;

use crossbeam_channel::{bounded, unbounded};

use crate::compress::{Decompressors, Dictionary};
use crate::id::ObjectId;
use crate::object::Kind;
use crate::odb::{Error, RawPack, Result, View, extract};

/// Packs handed to workers and not yet consumed.
const IN_FLIGHT: usize = 32;

/// One pack's worth of consecutive requested objects.
struct Job {
    number: u64,
    pack: RawPack,
    /// (object, offset, length) in request order.
    members: Vec<(ObjectId, i64, i64)>,
}

struct Done {
    number: u64,
    blobs: Result<Vec<Vec<u8>>>,
}

/// Calls `each` with the bytes of every blob in `ids`, in order, each
/// verified against its id (owned, so the caller can hand them on). Stops at the first error, which is the store's
/// ([`Error::NotFound`], [`Error::Corrupt`], ...) or the callback's.
pub fn read_blobs<E: From<Error>>(
    view: View<'_>,
    ids: &[ObjectId],
    threads: usize,
    mut each: impl FnMut(Vec<u8>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    view.consistent(|view| read_blobs_in(view, ids, threads, &mut each))
}

fn read_blobs_in<E: From<Error>>(
    view: View<'_>,
    ids: &[ObjectId],
    threads: usize,
    each: &mut impl FnMut(Vec<u8>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let dictionaries = Arc::new(view.dictionaries()?);
    std::thread::scope(|scope| {
        let (job_tx, job_rx) = bounded::<Job>(IN_FLIGHT);
        let (done_tx, done_rx) = unbounded::<Done>();
        for _ in 0..threads.max(1) {
            let job_rx = job_rx.clone();
            let done_tx = done_tx.clone();
            let dictionaries = Arc::clone(&dictionaries);
            scope.spawn(move || work(&job_rx, &done_tx, &dictionaries));
        }
        drop(done_tx);

        let mut next_fetch = 0usize;
        let (mut sent, mut delivered) = (0u64, 0u64);
        let mut ready: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
        loop {
            while next_fetch < ids.len() && sent - delivered < IN_FLIGHT as u64 {
                let job = next_job(view, ids, &mut next_fetch, sent)?;
                job_tx
                    .send(job)
                    .expect("BUG: workers outlive the job channel");
                sent += 1;
            }
            if delivered == sent {
                return Ok(());
            }
            let done = done_rx.recv().expect("BUG: a worker died");
            ready.insert(done.number, done.blobs?);
            while let Some(blobs) = ready.remove(&delivered) {
                for blob in blobs {
                    each(blob)?;
                }
                delivered += 1;
            }
        }
    })
}

/// Gathers the next run of requested objects that share a pack.
fn next_job(view: View<'_>, ids: &[ObjectId], next: &mut usize, number: u64) -> Result<Job> {
    let mut members = Vec::new();
    let mut pack_seq = None;
    while let Some(id) = ids.get(*next) {
        let (pack, offset, len) = view.locate(id)?.ok_or(Error::NotFound { id: *id })?;
        match pack_seq {
            None => pack_seq = Some(pack),
            Some(seq) if seq != pack => break,
            Some(_) => {}
        }
        members.push((*id, offset, len));
        *next += 1;
    }
    let seq = pack_seq.expect("BUG: next_job called with nothing left");
    let pack = view.fetch_pack(seq).map_err(|e| match e {
        Error::Unreadable { reason, .. } => Error::Unreadable {
            id: members[0].0,
            reason,
        },
        other => other,
    })?;
    Ok(Job {
        number,
        pack,
        members,
    })
}

fn work(
    jobs: &crossbeam_channel::Receiver<Job>,
    done: &crossbeam_channel::Sender<Done>,
    dictionaries: &[Dictionary],
) {
    let mut decompressors = Decompressors::default();
    for dictionary in dictionaries {
        // A dictionary that does not load makes its packs fail to unpack,
        // which is reported per object below.
        let _ = decompressors.add(Some(dictionary));
    }
    for job in jobs {
        let blobs = unpack_job(job.pack, &job.members, &mut decompressors);
        if done
            .send(Done {
                number: job.number,
                blobs,
            })
            .is_err()
        {
            return;
        }
    }
}

fn unpack_job(
    pack: RawPack,
    members: &[(ObjectId, i64, i64)],
    decompressors: &mut Decompressors,
) -> Result<Vec<Vec<u8>>> {
    let seq = pack.seq;
    let first = members[0].0;
    let bytes = pack.unpack(decompressors).map_err(|e| match e {
        Error::Unreadable { reason, .. } => Error::Unreadable { id: first, reason },
        other => other,
    })?;
    members
        .iter()
        .map(|(id, offset, len)| {
            let mut encoded = extract(&bytes, id, seq, *offset, *len)?;
            if encoded.first() != Some(&(Kind::Blob as u8)) {
                return Err(Error::WrongKind {
                    id: *id,
                    expected: "blob",
                    actual: encoded
                        .first()
                        .and_then(|k| Kind::from_byte(*k))
                        .map_or("unknown", Kind::name),
                });
            }
            encoded.drain(..2);
            Ok(encoded)
        })
        .collect()
}
