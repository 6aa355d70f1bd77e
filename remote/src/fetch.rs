//! Fetching from a remote: download the packs that hold objects the store
//! lacks, verify them, and import them with ref edits in one transaction.
//!
//! Two phases, so the store's write lock is not held over the network:
//! packs are downloaded into `fetch-packs/` inside the store directory
//! (each checked against its name as it arrives, and renamed into place
//! whole), then imported in one transaction in which every object is
//! re-hashed and the history of every remote ref must be complete. A fetch
//! that fails or is killed imports nothing; run again, it keeps the packs
//! that arrived (checked against their names again) and downloads only the
//! rest. The directory is removed once a fetch has imported.

use std::path::{Path, PathBuf};

use migsnap_store::transfer;
use migsnap_store::{ObjectId, Progress, RefEdit, RefName, Store};
use serde::Serialize;

use crate::connection::{Connection, ConnectionError};
use crate::contents::{self, ContentsError, Packs, RemoteRef};
use crate::layout::{self, LayoutError};
use crate::transport::TransportError;

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
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
    /// A temporary file in the store directory failed.
    #[error("cannot write downloaded pack to {path}")]
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

/// Fetches every ref of the remote and what it needs. `edits` turns each
/// remote ref into the local ref edits to commit with the objects (the
/// remote-tracking ref; for `clone`, the local ref too); `message` goes into
/// the reflog.
pub fn fetch(
    store: &mut Store,
    remote: &Connection,
    edits: impl Fn(&RemoteRef) -> Vec<RefEdit>,
    message: &str,
    progress: &mut dyn Progress,
) -> Result<FetchReport, FetchError> {
    let refs = contents::read_refs(remote)?;
    let packs = Packs::read(remote)?;
    let mut forgotten = contents::read_forgotten(remote)?;
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
        for (name, index) in packs.packs {
            if index_lacks(&view, &index)? {
                wanted.push((name, index));
            }
        }
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
    download(remote, &downloads, &wanted, &mut report, progress)?;

    let mut tx = store.transaction()?;
    progress.start("importing", wanted.len() as u64);
    // Unpacking and re-hashing the next pack overlaps with writing this
    // one into the store: one thread each, handing over one pack at a time
    // (a rendezvous: measured on a 1 GiB clone, 4.2 to 4.9 s against 5.5 to
    // 5.7 s on one thread, for 40 MiB more peak RSS; docs/benchmarks.md).
    let (sender, receiver) = std::sync::mpsc::sync_channel(0);
    let unpacked = std::thread::scope(|scope| {
        let (dir, packs) = (&downloads, &wanted);
        // The sender moves into the thread, so the channel closes when it
        // is done.
        let unpacker = scope.spawn(move || unpack_all(dir, packs, &sender));
        for verified in receiver {
            report.objects += verified.import(&mut tx)? as u64;
            report.packs += 1;
            progress.advance(1);
        }
        unpacker
            .join()
            .expect("BUG: the unpacking thread does not panic")
    });
    unpacked?;
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
        transfer::reachable(tx.view(), &[remote_ref.target]).map_err(|source| {
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

/// Where a fetch keeps the packs it downloaded, in the store directory,
/// until it has imported them.
const DOWNLOADS: &str = "fetch-packs";

/// Downloads the `wanted` packs into `dir`, each checked against its name
/// before it is written (to a temporary name, then renamed), and keeps
/// those a fetch cut short left there if they still check.
fn download(
    remote: &Connection,
    dir: &Path,
    wanted: &[(ObjectId, layout::Index)],
    report: &mut FetchReport,
    progress: &mut dyn Progress,
) -> Result<(), FetchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    progress.start("downloading", wanted.len() as u64);
    for (name, _) in wanted {
        let path = dir.join(format!("{name}.pack"));
        let kept = std::fs::read(&path)
            .is_ok_and(|bytes| layout::check_name(name, &bytes, remote.cipher()).is_ok());
        if kept {
            report.resumed += 1;
        } else {
            // Checked now, so damage is reported before anything is
            // imported and names the pack; the objects are checked again
            // on import.
            let (bytes, stored) = contents::download_pack(remote, name)?
                .ok_or(FetchError::MissingPack { pack: *name })?;
            report.bytes += stored;
            let partial = dir.join(format!("{name}.part"));
            std::fs::write(&partial, &bytes).map_err(io(&partial))?;
            std::fs::rename(&partial, &path).map_err(io(&path))?;
        }
        progress.advance(1);
    }
    progress.finish();
    Ok(())
}

/// Reads each of the `wanted` packs from `dir`, verifies it (every object
/// re-hashed against its id) and sends its contents on; stops when the
/// receiver is gone (an import failed).
fn unpack_all(
    dir: &Path,
    wanted: &[(ObjectId, layout::Index)],
    sender: &std::sync::mpsc::SyncSender<layout::Verified>,
) -> Result<(), FetchError> {
    for (name, index) in wanted {
        let path = dir.join(format!("{name}.pack"));
        let bytes = std::fs::read(&path).map_err(|source| FetchError::Io { path, source })?;
        if sender.send(layout::verify(name, &bytes, index)?).is_err() {
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
