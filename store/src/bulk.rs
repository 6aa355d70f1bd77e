//! Reading many blobs in a given order, with decompression and verification
//! spread over worker threads.
//!
//! SQLite connections cannot be shared between threads, so the calling
//! thread does all store reads (locating objects, fetching compressed pack
//! rows) and hands the CPU work (zstd, BLAKE3) to workers. Results come back
//! out of order and are put back in order before the caller sees them, so the
//! caller's callback runs on its own thread and needs not be `Send`. At most
//! `IN_FLIGHT` packs, and about `IN_FLIGHT_BYTES` of requested objects,
//! are in the pipeline, so memory stays flat.
//!
//! A pack's objects are not always wanted in one run: a page changed since
//! the base snapshot interrupts the base pack's run, and a snapshot's new
//! pages sit together in packs of their own, each wanted once per stretch
//! of the image. So every pack goes to the same worker (by its sequence
//! number), which keeps the last `CACHED_PACKS` it unpacked: a pack that
//! comes back soon is not decompressed again.
//!
//! A pack is decoded only as far as its last object wanted soon: a restore
//! in place wants a few pages here and there, two of a pack of 64 on
//! average, and decoding whole packs cost it most of its time. The calling
//! thread locates objects `LOOKAHEAD` ahead of the jobs it makes, so a job
//! knows how far into its pack the objects wanted in the coming runs lie;
//! a worker that is later asked for more of a pack it holds in part
//! decodes it again, further.
//!
//! Each blob is hashed against its id before it is handed over, unless the
//! caller asks for [`Proof::ByCaller`]: a checkout proves the whole image
//! against its digest anyway, and a second hash of every byte was 12% of
//! its CPU.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crossbeam_channel::{Sender, bounded, unbounded};

use crate::compress::{Decompressors, Dictionary};
use crate::id::ObjectId;
use crate::object::Kind;
use crate::odb::{Error, RawPack, Result, View, member_bytes};

/// Who proves the bytes [`read_blobs`] hands over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// Each blob is hashed and checked against its id before it is handed
    /// over; a mismatch is [`Error::Corrupt`] naming it.
    EachBlob,
    /// No blob is hashed here. The caller proves everything it was handed
    /// at once, against a digest it trusts (an image's), and on a mismatch
    /// reads again with [`Proof::EachBlob`] to name the blob at fault.
    /// The blobs' kind, place and the packs' decompression are still
    /// checked.
    ByCaller,
}

/// Packs handed to workers and not yet consumed.
const IN_FLIGHT: usize = 32;

/// Bytes of requested objects handed to workers and not yet consumed: a
/// job's unpacked objects wait in memory until their turn, and a pack
/// fetched from a remote holds about a megabyte of them (a snapshot's
/// loose pack, 128 KiB).
const IN_FLIGHT_BYTES: u64 = 8 << 20;

/// Unpacked packs each worker keeps at most: a pack of pages is 32 or 64
/// of them, a few hundred KiB.
const CACHED_PACKS: usize = 8;

/// Unpacked bytes each worker keeps at most (a pack fetched from a remote
/// is about a megabyte): memory stays flat whatever the packs' size.
const CACHED_BYTES: usize = 4 << 20;

/// Requested objects located ahead of the jobs made from them.
const LOOKAHEAD: usize = 512;

/// (object, offset, length) of requested objects in one pack, in request order.
type Members = Vec<(ObjectId, i64, i64)>;

/// One pack's worth of consecutive requested objects.
struct Job {
    number: u64,
    seq: i64,
    /// The pack, unless the worker still holds it unpacked.
    pack: Option<RawPack>,
    members: Members,
    /// How many of the pack's unpacked bytes this job and the coming ones
    /// want (the end of the furthest object).
    need: usize,
}

/// The packs a worker holds unpacked, most recently used first, with their
/// unpacked sizes. The calling thread keeps a copy of each worker's (the
/// same updates, in the same job order) to know which packs it needs not
/// fetch.
struct Cache<T> {
    packs: VecDeque<(i64, usize, T)>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Cache {
            packs: VecDeque::new(),
        }
    }
}

impl<T> Cache<T> {
    /// Moves `seq` to the front and returns it, if held.
    fn take(&mut self, seq: i64) -> Option<&mut T> {
        let at = self.packs.iter().position(|(held, _, _)| *held == seq)?;
        let entry = self.packs.remove(at).expect("BUG: position out of range");
        self.packs.push_front(entry);
        self.packs.front_mut().map(|(_, _, value)| value)
    }

    /// Holds `value`, `size` unpacked bytes, as `seq`, dropping the least
    /// recently used beyond `CACHED_PACKS` or [`CACHED_BYTES`] (the
    /// newest is always held).
    fn put(&mut self, seq: i64, size: usize, value: T) -> &mut T {
        self.packs.push_front((seq, size, value));
        let mut total = 0;
        let keep = self
            .packs
            .iter()
            .take(CACHED_PACKS)
            .take_while(|(_, size, _)| {
                total = size.saturating_add(total);
                total <= CACHED_BYTES
            })
            .count();
        self.packs.truncate(keep.max(1));
        &mut self.packs[0].2
    }
}

struct Done {
    number: u64,
    blobs: Result<Vec<Vec<u8>>>,
}

/// Calls `each` with the bytes of every blob in `ids`, in order (owned,
/// so the caller can hand them on), each verified against its id unless
/// `proof` leaves that to the caller. Stops at the first error, which is
/// the store's ([`Error::NotFound`], [`Error::Corrupt`], ...) or the
/// callback's.
pub fn read_blobs<E: From<Error>>(
    view: View<'_>,
    ids: &[ObjectId],
    threads: usize,
    proof: Proof,
    mut each: impl FnMut(Vec<u8>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    view.consistent(|view| read_blobs_in(view, ids, threads, proof, &mut each))
}

fn read_blobs_in<E: From<Error>>(
    view: View<'_>,
    ids: &[ObjectId],
    threads: usize,
    proof: Proof,
    each: &mut impl FnMut(Vec<u8>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let dictionaries = Arc::new(view.dictionaries()?);
    std::thread::scope(|scope| {
        let workers = threads.max(1);
        let (done_tx, done_rx) = unbounded::<Done>();
        let job_txs: Vec<Sender<Job>> = (0..workers)
            .map(|_| {
                let (job_tx, job_rx) = bounded::<Job>(IN_FLIGHT);
                let done_tx = done_tx.clone();
                let dictionaries = Arc::clone(&dictionaries);
                scope.spawn(move || work(&job_rx, &done_tx, &dictionaries, proof));
                job_tx
            })
            .collect();
        drop(done_tx);
        let mut held: Vec<Cache<()>> = (0..workers).map(|_| Cache::default()).collect();

        let mut located = Located::new(ids);
        let (mut sent, mut delivered) = (0u64, 0u64);
        // The bytes of each job sent and not yet delivered, in job order.
        let (mut pending, mut pending_bytes) = (VecDeque::new(), 0u64);
        let mut ready: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
        loop {
            while !located.is_done()
                && sent - delivered < IN_FLIGHT as u64
                && (pending_bytes < IN_FLIGHT_BYTES || sent == delivered)
            {
                let (seq, members, need) = located.next_run(view)?;
                let bytes: u64 = members.iter().map(|(_, _, len)| len.unsigned_abs()).sum();
                pending.push_back(bytes);
                pending_bytes += bytes;
                let worker = usize::try_from(seq.unsigned_abs()).unwrap_or(0) % workers;
                let pack = match held[worker].take(seq) {
                    Some(()) => None,
                    None => {
                        let pack = fetch(view, seq, members[0].0)?;
                        held[worker].put(seq, pack.unpacked_len(), ());
                        Some(pack)
                    }
                };
                let job = Job {
                    number: sent,
                    seq,
                    pack,
                    members,
                    need,
                };
                job_txs[worker]
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
                pending_bytes -= pending.pop_front().expect("BUG: a job delivered twice");
            }
        }
    })
}

/// The requested objects, located in request order up to `LOOKAHEAD`
/// ahead of the jobs made from them.
struct Located<'a> {
    ids: &'a [ObjectId],
    /// The next of `ids` to locate.
    next: usize,
    /// Located and not yet in a job: (object, pack, offset, length).
    ahead: VecDeque<(ObjectId, i64, i64, i64)>,
}

impl<'a> Located<'a> {
    fn new(ids: &'a [ObjectId]) -> Located<'a> {
        Located {
            ids,
            next: 0,
            ahead: VecDeque::with_capacity(LOOKAHEAD),
        }
    }

    /// Whether every requested object is in a job.
    fn is_done(&self) -> bool {
        self.ahead.is_empty() && self.next == self.ids.len()
    }

    /// The next run of requested objects that share a pack: the pack's
    /// sequence number, (object, offset, length) of each, and the end of
    /// the furthest object wanted from that pack in the run or in the
    /// objects located after it.
    fn next_run(&mut self, view: View<'_>) -> Result<(i64, Members, usize)> {
        while self.ahead.len() < LOOKAHEAD
            && let Some(id) = self.ids.get(self.next)
        {
            let (pack, offset, len) = view.locate(id)?.ok_or(Error::NotFound { id: *id })?;
            self.ahead.push_back((*id, pack, offset, len));
            self.next += 1;
        }
        let seq = self
            .ahead
            .front()
            .expect("BUG: next_run called with nothing left")
            .1;
        let mut members = Vec::new();
        while let Some(&(id, _, offset, len)) =
            self.ahead.front().filter(|(_, pack, ..)| *pack == seq)
        {
            members.push((id, offset, len));
            self.ahead.pop_front();
        }
        let end = |offset: i64, len: i64| {
            usize::try_from(offset.saturating_add(len)).unwrap_or(usize::MAX)
        };
        let need = members
            .iter()
            .map(|&(_, offset, len)| end(offset, len))
            .chain(
                self.ahead
                    .iter()
                    .filter(|(_, pack, ..)| *pack == seq)
                    .map(|&(_, _, offset, len)| end(offset, len)),
            )
            .max()
            .unwrap_or(0);
        Ok((seq, members, need))
    }
}

/// Reads pack `seq`; an unreadable one is reported against `first`, the
/// first object wanted from it.
fn fetch(view: View<'_>, seq: i64, first: ObjectId) -> Result<RawPack> {
    view.fetch_pack(seq).map_err(|e| match e {
        Error::Unreadable { reason, .. } => Error::Unreadable { id: first, reason },
        other => other,
    })
}

fn work(
    jobs: &crossbeam_channel::Receiver<Job>,
    done: &crossbeam_channel::Sender<Done>,
    dictionaries: &[Dictionary],
    proof: Proof,
) {
    let mut decompressors = Decompressors::default();
    for dictionary in dictionaries {
        // A dictionary that does not load makes its packs fail to unpack,
        // which is reported per object below.
        let _ = decompressors.add(Some(dictionary));
    }
    let mut cache: Cache<Unpacked> = Cache::default();
    for job in jobs {
        let first = job.members[0].0;
        let unpacked = match job.pack {
            Some(pack) => {
                let size = pack.unpacked_len();
                Unpacked::new(pack, job.need, &mut decompressors)
                    .map(|unpacked| cache.put(job.seq, size, unpacked))
            }
            // Not held only when unpacking it failed before; that earlier
            // job's error is the one delivered.
            None => cache
                .take(job.seq)
                .ok_or_else(|| Error::Unreadable {
                    id: first,
                    reason: format!("pack {} could not be unpacked", job.seq),
                })
                .and_then(|held| {
                    held.reach(job.need, &mut decompressors)?;
                    Ok(held)
                }),
        };
        let blobs = unpacked
            .map_err(|e| match e {
                Error::Unreadable { reason, .. } => Error::Unreadable { id: first, reason },
                other => other,
            })
            .and_then(|unpacked| unpack_job(&unpacked.bytes, job.seq, &job.members, proof));
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

/// A pack a worker holds, decoded in whole or in part.
struct Unpacked {
    bytes: Vec<u8>,
    /// The pack, kept while `bytes` is only its start.
    pack: Option<RawPack>,
}

impl Unpacked {
    /// `pack` decoded as far as its first `need` bytes, or whole.
    fn new(pack: RawPack, need: usize, decompressors: &mut Decompressors) -> Result<Unpacked> {
        if pack.decodes_in_part(need) {
            Ok(Unpacked {
                bytes: pack.unpack_prefix(decompressors, need)?,
                pack: Some(pack),
            })
        } else {
            Ok(Unpacked {
                bytes: pack.unpack(decompressors)?,
                pack: None,
            })
        }
    }

    /// Makes sure the first `need` bytes are held, decoding the pack again
    /// from its start when fewer are.
    fn reach(&mut self, need: usize, decompressors: &mut Decompressors) -> Result<()> {
        if self.bytes.len() < need
            && let Some(pack) = self.pack.take()
        {
            *self = Unpacked::new(pack, need, decompressors)?;
        }
        Ok(())
    }
}

/// The blobs `members` of the unpacked pack `seq`, checked to be blobs
/// (and hashed, as `proof` says).
fn unpack_job(
    bytes: &[u8],
    seq: i64,
    members: &[(ObjectId, i64, i64)],
    proof: Proof,
) -> Result<Vec<Vec<u8>>> {
    let encoded = members
        .iter()
        .map(|(id, offset, len)| member_bytes(bytes, id, seq, *offset, *len))
        .collect::<Result<Vec<_>>>()?;
    if proof == Proof::EachBlob {
        // All at once: pages of one size hash side by side.
        let mut actual = Vec::with_capacity(encoded.len());
        ObjectId::hash_each(&encoded, &mut actual);
        if let Some(((id, _, _), actual)) =
            members.iter().zip(actual).find(|((id, _, _), a)| a != id)
        {
            return Err(Error::Corrupt { id: *id, actual });
        }
    }
    members
        .iter()
        .zip(encoded)
        .map(|((id, _, _), encoded)| {
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
            // After the kind and the format version.
            encoded
                .get(2..)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Error::Unreadable {
                    id: *id,
                    reason: "a blob without its header".to_owned(),
                })
        })
        .collect()
}
