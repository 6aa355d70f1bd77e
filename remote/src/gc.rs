//! Garbage collection on a remote (`migsnap gc --remote`): deletes the
//! packs no ref needs, under the remote's exclusive lock ([`crate::lock`]).
//!
//! Invariants:
//! - nothing is deleted unless the exclusive lock is held and no push holds
//!   a fresh lock, and the history of every ref is complete (a damaged
//!   remote is refused, as the store's gc refuses);
//! - a pack is deleted only when no object in it is needed by any ref and
//!   both it and its index are older than the grace period, so a push that
//!   does not take locks (an older migsnap) still has that long between
//!   uploading a pack and moving its ref;
//! - a pack's index goes before the pack: a gc cut short leaves a pack
//!   without an index (garbage the next gc removes), never an index that
//!   names a missing pack;
//! - a pack needed in part is kept whole (no repacking yet).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use migsnap_store::{ObjectId, Progress, RefName};
use serde::Serialize;

use crate::connection::Connection;
use crate::contents::{self, ContentsError, Packs};
use crate::layout::{self, LayoutError, PACKS};
use crate::lock::{self, LockError, now};
use crate::reach::{self, Scratch};
use crate::transport::{Listed, TransportError};

/// How a remote gc runs.
#[derive(Clone, Copy, Debug)]
pub struct GcOptions {
    /// Packs younger than this are kept even when unneeded.
    pub grace: Duration,
    /// Report what would be deleted; delete nothing (the lock is still
    /// taken, so the report is of a consistent remote).
    pub dry_run: bool,
    /// Delete every other lock first, fresh or not.
    pub break_locks: bool,
}

/// What a remote gc did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    /// Whether nothing was deleted.
    pub dry_run: bool,
    /// Packs with an index before the gc.
    pub packs: u64,
    /// Packs (and their indexes) deleted.
    pub deleted_packs: u64,
    /// Packs without an index deleted (left by pushes cut short).
    pub deleted_unindexed: u64,
    /// Bytes those deletions freed.
    pub freed_bytes: u64,
    /// Unneeded packs kept because they are younger than the grace period.
    pub kept_young: u64,
    /// Packs kept because a ref needs something in them.
    pub kept_needed: u64,
    /// Forgotten marks of snapshots no ref reaches, deleted.
    pub deleted_marks: u64,
}

/// Why a remote gc did not run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// Another client holds a lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The remote's history is incomplete: deleting anything could lose
    /// more.
    #[error(
        "remote gc refused: ref {name} needs object {object}, which no index lists; run `migsnap fsck --remote`"
    )]
    Incomplete {
        /// The ref.
        name: RefName,
        /// The object.
        object: ObjectId,
    },
    /// The remote could not be read or written.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Its contents are damaged or do not open.
    #[error(transparent)]
    Contents(#[from] ContentsError),
    /// The scratch store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
}

/// Collects garbage on `remote`, reading its history in a scratch store
/// inside `work_dir`.
pub fn collect(
    remote: &Connection,
    work_dir: &Path,
    options: GcOptions,
    progress: &mut dyn Progress,
) -> Result<GcReport, GcError> {
    let lock = lock::exclusive(remote, options.break_locks)?;
    let listed: HashMap<String, Listed> = remote
        .transport
        .list(PACKS)?
        .into_iter()
        .map(|l| (l.key.clone(), l))
        .collect();
    let packs = Packs::read(remote)?;
    let refs = contents::read_refs(remote)?;
    let marks = contents::read_forgotten(remote)?;
    let forgotten: HashSet<ObjectId> = marks.iter().map(|(id, _)| *id).collect();
    let needed = {
        let mut scratch = Scratch::new(work_dir)?;
        let mut tx = scratch.store.transaction()?;
        let history: Vec<_> = packs
            .packs
            .iter()
            .filter(|(_, index)| reach::holds_metadata(index))
            .collect();
        progress.start("reading history", history.len() as u64);
        for (name, index) in history {
            let (objects, _) = contents::read_pack(remote, name, index)?.ok_or_else(|| {
                ContentsError::Layout(LayoutError::Pack {
                    pack: *name,
                    reason: "it is missing, though its index is there".into(),
                })
            })?;
            migsnap_store::transfer::import(&mut tx, objects)?;
            progress.advance(1);
        }
        progress.finish();
        reach::needed(tx.view(), &packs.objects, &refs, &forgotten)?
    };
    if let Some((name, object)) = needed.missing.into_iter().next() {
        return Err(GcError::Incomplete { name, object });
    }
    let cutoff = now() - i64::try_from(options.grace.as_secs()).unwrap_or(i64::MAX);
    let old = |key: &str| listed.get(key).is_none_or(|l| l.modified <= cutoff);
    let size = |key: &str| listed.get(key).map_or(0, |l| l.size);
    let mut report = GcReport {
        dry_run: options.dry_run,
        packs: packs.packs.len() as u64,
        ..GcReport::default()
    };
    let mut doomed = Vec::new();
    for (name, index) in &packs.packs {
        let (pack, idx) = (layout::pack_key(name), layout::index_key(name));
        if index.entries.iter().any(|e| needed.objects.contains(&e.id)) {
            report.kept_needed += 1;
        } else if old(&pack) && old(&idx) {
            report.deleted_packs += 1;
            report.freed_bytes += size(&pack) + size(&idx);
            doomed.extend([idx, pack]);
        } else {
            report.kept_young += 1;
        }
    }
    for (key, entry) in &listed {
        let Some(stem) = key.strip_suffix(".pack") else {
            continue;
        };
        if !listed.contains_key(&format!("{stem}.idx")) && entry.modified <= cutoff {
            report.deleted_unindexed += 1;
            report.freed_bytes += entry.size;
            doomed.push(key.clone());
        }
    }
    for (snapshot, _) in &marks {
        if !needed.objects.contains(snapshot) {
            report.deleted_marks += 1;
            doomed.push(remote.forgotten_key(snapshot));
        }
    }
    if !options.dry_run {
        progress.start("deleting", doomed.len() as u64);
        for key in &doomed {
            remote.transport.delete(key)?;
            progress.advance(1);
        }
        progress.finish();
    }
    lock.release()?;
    Ok(report)
}
