//! Fetching from a remote: download the packs that hold objects the store
//! lacks, verify them, and import them with ref edits in one transaction.
//!
//! A fetch ([`Staging::Resumable`]) has two phases, so the store's write
//! lock is not held over the network: packs are downloaded into
//! `fetch-packs/` inside the store directory
//! (each checked against its name as it arrives, and renamed into place
//! whole), then imported in one transaction in which every object is
//! re-hashed and the history of every remote ref must be complete. A fetch
//! that fails or is killed imports nothing; run again, it keeps the packs
//! that arrived (checked against their names again) and downloads only the
//! rest. The directory is removed once a fetch has imported. A clone
//! ([`Staging::Direct`]) verifies and imports each pack as it arrives.
//! While packs download, the fetch holds a lock on the remote
//! ([`lock::reading`]), so that a remote gc does not delete them meanwhile.

use std::path::{Path, PathBuf};

use migsnap_store::{Kind, ObjectId, PackMember, Progress, RefEdit, RefName, Store, Transaction};
use migsnap_store::{codec, transfer};
use serde::Serialize;

use crate::connection::{Connection, ConnectionError};
use crate::contents::{self, ContentsError, RemoteRef};
use crate::layout::{self, LayoutError};
use crate::lock::{self, Lock, LockError};
use crate::transport::TransportError;
use crate::wanted::{IndexFile, WantedPack};

/// One ref as fetched.
#[derive(Clone, Debug, Serialize)]
pub struct FetchedRef {
    /// Its name on the remote (`heads/webui`).
    pub name: RefName,
    /// The snapshot it points to.
    pub target: ObjectId,
}

/// What a fetch did.
#[derive(Clone, Debug, Serialize)]
pub struct FetchReport {
    /// Packs downloaded.
    pub packs: u64,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Packs a fetch that was cut short had downloaded already: imported
    /// without downloading them again.
    pub resumed: u64,
    /// Objects new to the store.
    pub objects: u64,
    /// The remote's refs.
    pub refs: Vec<FetchedRef>,
}

/// Why a fetch failed. Nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The remote could not be read.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// What the remote holds could not be read.
    #[error(transparent)]
    Contents(#[from] ContentsError),
    /// A pack is damaged: it does not hash to its name, or an object in it
    /// does not hash to its id.
    #[error(transparent)]
    Damaged(#[from] LayoutError),
    /// An index names a pack the remote does not have.
    #[error("pack {pack} is missing on the remote, though its index is there")]
    MissingPack {
        /// The pack.
        pack: ObjectId,
    },
    /// A remote ref names a history the remote does not fully hold.
    #[error("remote ref {name} names an incomplete history")]
    Incomplete {
        /// The ref.
        name: RefName,
        /// What is missing.
        #[source]
        source: migsnap_store::Error,
    },
    /// A remote gc holds the remote, or this fetch's lock was broken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
    /// A temporary file in the store directory failed (a downloaded pack,
    /// or the wanted packs' indexes).
    #[error("cannot keep the fetch's temporary files in {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

impl From<ConnectionError> for FetchError {
    fn from(error: ConnectionError) -> FetchError {
        FetchError::Contents(error.into())
    }
}

/// Where a fetch keeps packs between downloading and importing them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Staging {
    /// In the store directory until imported, so that a fetch cut short
    /// resumes; the store's write lock is taken only once every pack has
    /// arrived, so a slow network never blocks a snapshot.
    Resumable,
    /// Nowhere: each pack is verified and imported as it arrives, under the
    /// write lock throughout. For a clone: no one else uses its new store,
    /// and a clone that fails is removed whole, so there is nothing to
    /// resume, and the download overlaps with the import.
    Direct,
}

/// Sees the pages of a fetch as they are verified, for a clone that writes
/// a database while it downloads (`migsnap clone --checkout`). With a tap,
/// the packs that hold no blob (snapshots, listings, schemas) are imported
/// first; [`Tap::start`] then sees them, and each verifying thread's
/// [`Tap::sink`] gets every blob it verifies after that. A blob reaches
/// the tap before the store has committed it, and a fetch that fails
/// afterwards imports nothing: the tap must not trust what it got until
/// the fetch has returned.
pub trait Tap: Sync {
    /// Every pack without a blob is in the store `view` reads; `refs` are
    /// the remote's refs being fetched.
    fn start(&self, view: migsnap_store::View<'_>, refs: &[RemoteRef]);
    /// What one verifying thread hands its blobs to, in the order it checks
    /// them; dropped when the thread is done.
    fn sink(&self) -> Box<dyn BlobSink + '_>;
    /// Every pack is imported; the history check and the commit come next.
    fn downloaded(&self) {}
}

/// One verifying thread's end of a [`Tap`].
pub trait BlobSink {
    /// A blob's content, checked against `id`.
    fn blob(&mut self, id: &ObjectId, content: &[u8]);
}

/// Fetches every ref of the remote and what it needs. `edits` turns each
/// remote ref into the local ref edits to commit with the objects (the
/// remote-tracking ref; for `clone`, the local ref too); `message` goes into
/// the reflog.
pub fn fetch(
    store: &mut Store,
    remote: &Connection,
    staging: Staging,
    edits: impl Fn(&RemoteRef) -> Vec<RefEdit>,
    message: &str,
    tap: Option<&dyn Tap>,
    progress: &mut dyn Progress,
) -> Result<FetchReport, FetchError> {
    // Held from before the listing until the last pack has arrived, so a
    // remote gc neither starts meanwhile nor is running now.
    let mut lock = lock::reading(remote)?;
    let refs = contents::read_refs(remote)?;
    let mut forgotten = contents::read_forgotten(remote)?;
    let mut indexes = IndexFile::create(store.dir())?;
    let mut wanted = Vec::new();
    {
        let view = store.view();
        // Only snapshots new to this store take the mark: one it has
        // already keeps its own image, whatever another store forgot.
        let mut kept = Vec::new();
        for (snapshot, time) in forgotten {
            if !view.contains(&snapshot)? {
                kept.push((snapshot, time));
            }
        }
        forgotten = kept;
        // One index in memory at a time; those of the wanted packs go into
        // the file until their packs are verified.
        contents::visit_indexes(remote, |name, index| {
            if index_lacks(&view, &index)? {
                wanted.push(indexes.add(name, &index)?);
            }
            Ok::<_, FetchError>(())
        })?;
    }
    let mut report = FetchReport {
        packs: 0,
        bytes: 0,
        resumed: 0,
        objects: 0,
        refs: refs
            .iter()
            .map(|r| FetchedRef {
                name: r.name.clone(),
                target: r.target,
            })
            .collect(),
    };
    let downloads = store.dir().join(DOWNLOADS);
    let (source, threads) = match staging {
        Staging::Resumable => {
            download(
                remote,
                &downloads,
                &wanted,
                &mut report,
                &mut lock,
                progress,
            )?;
            // Every pack is here: the rest needs no remote.
            drop(lock.take());
            (Source::Dir(&downloads), VERIFIERS)
        }
        Staging::Direct => (Source::Remote(remote), DOWNLOADERS),
    };

    let mut tx = store.transaction()?;
    progress.start("importing", wanted.len() as u64);
    let mut importer = Importer {
        source: &source,
        indexes: &indexes,
        threads,
        report: &mut report,
        lock: &mut lock,
        progress,
    };
    match tap {
        None => importer.run(&mut tx, &wanted, None)?,
        Some(tap) => {
            // The histories first, so the tap knows what the pages are for
            // before the first one arrives.
            let (pages, histories): (Vec<_>, Vec<_>) =
                wanted.into_iter().partition(|pack| pack.blobs);
            importer.run(&mut tx, &histories, None)?;
            tap.start(tx.view(), &refs);
            importer.run(&mut tx, &pages, Some(tap))?;
            tap.downloaded();
        }
    }
    progress.finish();
    // A new snapshot the pushing store had forgotten the image of is
    // forgotten here too (from its time there, so gc's grace runs on): its
    // pages may be absent, and the history check below must not call that
    // damage.
    for (snapshot, time) in &forgotten {
        if tx.view().contains(snapshot)? {
            tx.forget_image(snapshot, *time)?;
        }
    }
    for remote_ref in &refs {
        transfer::check_complete(tx.view(), &[remote_ref.target]).map_err(|source| {
            FetchError::Incomplete {
                name: remote_ref.name.clone(),
                source,
            }
        })?;
    }
    let edits: Vec<RefEdit> = refs.iter().flat_map(&edits).collect();
    tx.commit(&edits, message)?;
    // Imported: the downloads are no longer needed. A failure to remove
    // them only leaves files the next fetch checks and removes.
    let _ = std::fs::remove_dir_all(&downloads);
    Ok(report)
}

/// Verifies packs and imports them into a fetch's transaction.
struct Importer<'a, 'r> {
    source: &'a Source<'a>,
    /// The wanted packs' indexes.
    indexes: &'a IndexFile,
    threads: usize,
    report: &'a mut FetchReport,
    lock: &'a mut Option<Lock<'r>>,
    progress: &'a mut dyn Progress,
}

impl Importer<'_, '_> {
    /// Verifies `packs` and imports them, in order, into `tx`; `tap` sees
    /// every blob as it is verified.
    fn run(
        &mut self,
        tx: &mut Transaction<'_>,
        packs: &[WantedPack],
        tap: Option<&dyn Tap>,
    ) -> Result<(), FetchError> {
        let threads = self.threads;
        let indexes = self.indexes;
        // Verifying packs (unzstd and BLAKE3 of every object; for a direct
        // fetch, downloading them first) overlaps with writing them into the
        // store: `threads` threads take every `threads`th pack and hand each
        // over by rendezvous, and this thread takes them in turn, so packs go
        // in in order.
        std::thread::scope(|scope| {
            let source = self.source;
            let mut receivers = Vec::with_capacity(threads);
            let verifiers: Vec<_> = (0..threads)
                .map(|first| {
                    let (sender, receiver) = std::sync::mpsc::sync_channel(0);
                    receivers.push(receiver);
                    // The sender moves into the thread, so its channel closes
                    // when the thread is done.
                    scope.spawn(move || {
                        verify_every(source, indexes, packs, first, threads, tap, &sender)
                    })
                })
                .collect();
            let imported = (|| {
                let mut batch = tx.pack_batch();
                for turn in 0..packs.len() {
                    // Closed early only when that verifier failed: its error
                    // is returned below.
                    let Ok((verified, downloaded)) = receivers[turn % threads].recv() else {
                        break;
                    };
                    verified.import(&mut batch)?;
                    self.report.bytes += downloaded;
                    self.report.packs += 1;
                    self.progress.advance(1);
                    refresh(self.lock)?;
                }
                self.report.objects += batch.finish()? as u64;
                Ok::<_, FetchError>(())
            })();
            // Closing the channels stops verifiers waiting to hand a pack over.
            drop(receivers);
            let verified: Result<Vec<()>, FetchError> = verifiers
                .into_iter()
                .map(|verifier| {
                    verifier
                        .join()
                        .expect("BUG: the verifying threads do not panic")
                })
                .collect();
            verified.and(imported)
        })
    }
}

/// Keeps a fetch's lock, if it holds one, from going stale.
fn refresh(lock: &mut Option<Lock<'_>>) -> Result<(), FetchError> {
    lock.as_mut()
        .map_or(Ok(()), Lock::refresh)
        .map_err(FetchError::from)
}

/// Where a fetch keeps the packs it downloaded, in the store directory,
/// until it has imported them.
const DOWNLOADS: &str = "fetch-packs";

/// Packs downloaded at once. One request at a time leaves an S3 link
/// mostly idle between round trips (restic restores with several
/// connections too); see `docs/benchmarks.md`.
const DOWNLOADERS: usize = 4;

/// What became of one wanted pack.
enum Downloaded {
    /// A fetch cut short had left it, and it still checks.
    Kept,
    /// Downloaded now: the bytes the remote stored.
    Fetched(u64),
}

/// Downloads the `wanted` packs into `dir`, [`DOWNLOADERS`] at a time, each
/// checked against its name before it is written (to a temporary name,
/// then renamed), and keeps those a fetch cut short left there if they
/// still check. Stops at the first failure, which it returns.
fn download(
    remote: &Connection,
    dir: &Path,
    wanted: &[WantedPack],
    report: &mut FetchReport,
    lock: &mut Option<Lock<'_>>,
    progress: &mut dyn Progress,
) -> Result<(), FetchError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    std::fs::create_dir_all(dir).map_err(|source| FetchError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    progress.start("downloading", wanted.len() as u64);
    let next = AtomicUsize::new(0);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let failed = std::thread::scope(|scope| {
        for _ in 0..DOWNLOADERS.min(wanted.len()) {
            let (done_tx, next) = (done_tx.clone(), &next);
            scope.spawn(move || {
                while let Some(pack) = wanted.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = download_one(remote, dir, &pack.name);
                    let stop = result.is_err();
                    if done_tx.send(result).is_err() || stop {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut failed = None;
        for result in done_rx {
            match result.and_then(|downloaded| refresh(lock).map(|()| downloaded)) {
                Ok(Downloaded::Kept) => report.resumed += 1,
                Ok(Downloaded::Fetched(bytes)) => report.bytes += bytes,
                Err(error) => {
                    // The others finish the pack they are on and stop.
                    next.store(wanted.len(), Ordering::Relaxed);
                    failed.get_or_insert(error);
                }
            }
            progress.advance(1);
        }
        failed
    });
    progress.finish();
    failed.map_or(Ok(()), Err)
}

/// Downloads pack `name` into `dir`, unless a fetch cut short left it there
/// and it still checks against its name.
fn download_one(
    remote: &Connection,
    dir: &Path,
    name: &ObjectId,
) -> Result<Downloaded, FetchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    let path = dir.join(format!("{name}.pack"));
    let kept = std::fs::read(&path)
        .is_ok_and(|bytes| layout::check_name(name, &bytes, remote.cipher()).is_ok());
    if kept {
        return Ok(Downloaded::Kept);
    }
    // Checked now, so damage is reported before anything is imported and
    // names the pack; the objects are checked again on import.
    let (bytes, stored) =
        contents::download_pack(remote, name)?.ok_or(FetchError::MissingPack { pack: *name })?;
    let partial = dir.join(format!("{name}.part"));
    std::fs::write(&partial, &bytes).map_err(io(&partial))?;
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    Ok(Downloaded::Fetched(stored))
}

/// Threads that verify downloaded packs while the store imports them: on
/// 2 cores, verifying (unzstd and BLAKE3) takes longer than importing.
const VERIFIERS: usize = 2;

/// Where verifiers read packs from.
enum Source<'a> {
    /// The directory a resumable fetch downloaded them into.
    Dir(&'a Path),
    /// The remote itself (a direct fetch).
    Remote(&'a Connection),
}

/// Reads the `wanted` packs `first`, `first + step`, ... from `source`,
/// verifies each (every object re-hashed against its id; `tap` sees the
/// blobs) and sends its contents on with the bytes downloaded for it;
/// stops when the receiver is gone (the import stopped).
fn verify_every(
    source: &Source<'_>,
    indexes: &IndexFile,
    wanted: &[WantedPack],
    first: usize,
    step: usize,
    tap: Option<&dyn Tap>,
    sender: &std::sync::mpsc::SyncSender<(layout::Verified, u64)>,
) -> Result<(), FetchError> {
    let mut sink = tap.map(Tap::sink);
    let mut each = |member: &PackMember, encoded: &[u8]| {
        if let (Some(sink), Kind::Blob) = (sink.as_mut(), member.kind)
            && let Some(content) = codec::blob_content(encoded)
        {
            sink.blob(&member.id, content);
        }
    };
    for pack in wanted.iter().skip(first).step_by(step) {
        let name = &pack.name;
        let (bytes, downloaded) = match source {
            Source::Dir(dir) => {
                let path = dir.join(format!("{name}.pack"));
                let bytes =
                    std::fs::read(&path).map_err(|source| FetchError::Io { path, source })?;
                (bytes, 0)
            }
            Source::Remote(remote) => contents::download_pack(remote, name)?
                .ok_or(FetchError::MissingPack { pack: *name })?,
        };
        let index = indexes.index(pack)?;
        if sender
            .send((
                layout::verify_visiting(name, bytes, &index, &mut each)?,
                downloaded,
            ))
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

/// Whether the store lacks any object the index lists.
fn index_lacks(view: &migsnap_store::View<'_>, index: &layout::Index) -> Result<bool, FetchError> {
    for entry in &index.entries {
        if !view.contains(&entry.id)? {
            return Ok(true);
        }
    }
    Ok(false)
}
