//! Garbage collection on a remote (`migsnap gc --remote`): deletes the
//! packs no ref needs, under the remote's exclusive lock ([`crate::lock`]).
//!
//! Invariants:
//! - nothing is deleted unless the exclusive lock is held (refreshed as a
//!   push's is, and confirmed still this process's just before deleting)
//!   and no push holds a fresh lock, and the history of every ref is
//!   complete (a damaged remote is refused, as the store's gc refuses);
//! - a pack is deleted only when no object in it is needed by any ref and
//!   both it and its index are older than the grace period, so a push that
//!   does not take locks (an older migsnap) still has that long between
//!   uploading a pack and moving its ref;
//! - a pack's index goes before the pack: a gc cut short leaves a pack
//!   without an index (garbage the next gc removes), never an index that
//!   names a missing pack;
//! - a pack needed in part is rewritten with only what is needed when at
//!   least a fifth of it is unneeded, else kept whole; the new packs are
//!   complete, indexes included, before the old ones are deleted.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use migsnap_store::transfer::{EncodedObject, VerifiedObject};
use migsnap_store::{IdSet, ObjectId, Progress, RefName};
use serde::Serialize;

use crate::connection::Connection;
use crate::contents::{self, ContentsError, Packs};
use crate::layout::{self, LayoutError, PACK_TARGET, PACKS};
use crate::lock::{self, Lock, LockError, now};
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
    /// Indexes whose pack is gone, deleted: no reader counts them (see
    /// [`contents::visit_indexes`]), and `fsck --remote` reports each.
    pub deleted_packless: u64,
    /// Bytes those deletions freed.
    pub freed_bytes: u64,
    /// Unneeded packs kept because they are younger than the grace period.
    pub kept_young: u64,
    /// Packs kept because a ref needs something in them.
    pub kept_needed: u64,
    /// Forgotten marks of snapshots no ref reaches, deleted.
    pub deleted_marks: u64,
    /// Packs needed in part, with at least a fifth of their bytes unneeded,
    /// rewritten with only what is needed (and then deleted).
    pub repacked_packs: u64,
    /// Packs those were rewritten into.
    pub written_packs: u64,
    /// Bytes uploaded for them (packs and indexes).
    pub uploaded_bytes: u64,
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

/// A pack needed in part is rewritten when at least one in this many of
/// its unpacked bytes is unneeded (restic's `prune` repacks likewise).
const REPACK_UNUSED: u64 = 5;

/// Collects garbage on `remote`, reading its history in a scratch store
/// inside `work_dir`.
pub fn collect(
    remote: &Connection,
    work_dir: &Path,
    options: GcOptions,
    progress: &mut dyn Progress,
) -> Result<GcReport, GcError> {
    let mut lock = lock::exclusive(remote, options.break_locks)?;
    let listed: HashMap<String, Listed> = remote
        .transport
        .list(PACKS)?
        .into_iter()
        .map(|l| (l.key.clone(), l))
        .collect();
    let packs = Packs::read(remote)?;
    let marks = contents::read_forgotten(remote)?;
    let needed = needed_by_refs(remote, work_dir, &packs, &marks, &mut lock, progress)?;
    let cutoff = now() - i64::try_from(options.grace.as_secs()).unwrap_or(i64::MAX);
    let old = |key: &str| listed.get(key).is_none_or(|l| l.modified <= cutoff);
    let size = |key: &str| listed.get(key).map_or(0, |l| l.size);
    let mut report = GcReport {
        dry_run: options.dry_run,
        packs: packs.packs.len() as u64,
        ..GcReport::default()
    };
    let mut doomed = Vec::new();
    let mut repack = Vec::new();
    for (name, index) in &packs.packs {
        let (pack, idx) = (layout::pack_key(name), layout::index_key(name));
        let unneeded: u64 = index
            .entries
            .iter()
            .filter(|e| !needed.contains(&e.id))
            .map(|e| u64::from(e.len))
            .sum();
        if unneeded < index.raw_len {
            if unneeded * REPACK_UNUSED >= index.raw_len && old(&pack) && old(&idx) {
                report.repacked_packs += 1;
                report.freed_bytes += size(&pack) + size(&idx);
                repack.push((name, index));
                doomed.extend([idx, pack]);
            } else {
                report.kept_needed += 1;
            }
        } else if old(&pack) && old(&idx) {
            report.deleted_packs += 1;
            report.freed_bytes += size(&pack) + size(&idx);
            doomed.extend([idx, pack]);
        } else {
            report.kept_young += 1;
        }
    }
    let mut orphans = orphans(&listed, cutoff);
    for (snapshot, _) in &marks {
        if !needed.contains(snapshot) {
            report.deleted_marks += 1;
            doomed.push(remote.forgotten_key(snapshot));
        }
    }
    if !options.dry_run {
        // Every rewritten pack is complete, index included, before any
        // pack it replaces goes, and none of them is deleted (one that
        // lands on the name of a pack without an index, a rewrite cut short
        // before, is no orphan in the listing below either).
        let written = rewrite(remote, &repack, &needed, &mut report, &mut lock, progress)?;
        doomed.retain(|key| !written.contains(key));
        // Nothing is deleted by a gc whose lock someone broke meanwhile.
        lock.confirm()?;
        still_orphaned(remote, &mut orphans)?;
    }
    for orphan in &orphans {
        if orphan.pack {
            report.deleted_unindexed += 1;
        } else {
            report.deleted_packless += 1;
        }
        report.freed_bytes += orphan.size;
    }
    if !options.dry_run {
        doomed.extend(orphans.into_iter().map(|orphan| orphan.key));
        progress.start("deleting", doomed.len() as u64);
        for key in &doomed {
            remote.transport.delete(key)?;
            lock.refresh()?;
            progress.advance(1);
        }
        progress.finish();
    }
    lock.release()?;
    Ok(report)
}

/// A pack without its index (a push cut short), or an index without its
/// pack (the pack deleted by hand), older than the grace period.
struct Orphan {
    key: String,
    /// The key of the missing half.
    other: String,
    size: u64,
    /// Whether it is the pack (else the index).
    pack: bool,
}

/// The orphaned halves in `listed` last written at or before `cutoff`.
fn orphans(listed: &HashMap<String, Listed>, cutoff: i64) -> Vec<Orphan> {
    listed
        .iter()
        .filter_map(|(key, entry)| {
            let (stem, other, pack) = match (key.strip_suffix(".pack"), key.strip_suffix(".idx")) {
                (Some(stem), _) => (stem, "idx", true),
                (_, Some(stem)) => (stem, "pack", false),
                _ => return None,
            };
            let other = format!("{stem}.{other}");
            (!listed.contains_key(&other) && entry.modified <= cutoff).then(|| Orphan {
                key: key.clone(),
                other,
                size: entry.size,
                pack,
            })
        })
        .collect()
}

/// Keeps of `orphans` those still alone in a listing made now: a push
/// whose lock went stale may have sent the other half (or the same pack
/// again) since the first listing, and a rewrite may have landed on the
/// name of a pack without an index.
fn still_orphaned(remote: &Connection, orphans: &mut Vec<Orphan>) -> Result<(), GcError> {
    if orphans.is_empty() {
        return Ok(());
    }
    let now: HashSet<String> = remote
        .transport
        .list(PACKS)?
        .into_iter()
        .map(|l| l.key)
        .collect();
    orphans.retain(|orphan| !now.contains(&orphan.other));
    Ok(())
}

/// What the refs of the remote need (see [`reach::needed`]), read from the
/// packs of snapshots and image listings in a scratch store inside
/// `work_dir`; an incomplete history is refused.
fn needed_by_refs(
    remote: &Connection,
    work_dir: &Path,
    packs: &Packs,
    marks: &[(ObjectId, i64)],
    lock: &mut Lock<'_>,
    progress: &mut dyn Progress,
) -> Result<IdSet, GcError> {
    let refs = contents::read_refs(remote)?;
    let forgotten: HashSet<ObjectId> = marks.iter().map(|(id, _)| *id).collect();
    let mut scratch = Scratch::new(work_dir)?;
    let mut tx = scratch.store.transaction()?;
    let history: Vec<_> = packs
        .packs
        .iter()
        .filter(|(_, index)| reach::holds_metadata(index))
        .collect();
    progress.start("reading history", history.len() as u64);
    let mut batch = tx.pack_batch();
    for (name, index) in history {
        let (objects, _) = read_whole(remote, name, index)?;
        migsnap_store::transfer::import(&mut batch, objects)?;
        lock.refresh()?;
        progress.advance(1);
    }
    batch.finish()?;
    progress.finish();
    let needed = reach::needed(tx.view(), &packs.objects, &refs, &forgotten)?;
    if let Some((name, object)) = needed.missing.into_iter().next() {
        return Err(GcError::Incomplete { name, object });
    }
    Ok(needed.objects)
}

/// Pack `name`, verified whole; a pack whose index is there but which is
/// not is damage.
fn read_whole(
    remote: &Connection,
    name: &ObjectId,
    index: &layout::Index,
) -> Result<(Vec<VerifiedObject>, u64), GcError> {
    Ok(contents::read_pack(remote, name, index)?.ok_or_else(|| {
        ContentsError::Layout(LayoutError::Pack {
            pack: *name,
            reason: "it is missing, though its index is there".into(),
        })
    })?)
}

/// Rewrites the `needed` objects of the packs in `repack` into new packs of
/// about [`PACK_TARGET`] unpacked bytes, each uploaded before its index;
/// returns the keys written.
fn rewrite(
    remote: &Connection,
    repack: &[(&ObjectId, &layout::Index)],
    needed: &IdSet,
    report: &mut GcReport,
    lock: &mut Lock<'_>,
    progress: &mut dyn Progress,
) -> Result<HashSet<String>, GcError> {
    progress.start("repacking", repack.len() as u64);
    let mut batch: Vec<EncodedObject> = Vec::new();
    let mut batch_bytes = 0;
    let mut written = HashSet::new();
    let mut flush = |batch: &mut Vec<EncodedObject>, report: &mut GcReport| {
        let built = layout::build(std::mem::take(batch), remote.cipher());
        let (pack, index) = (
            layout::pack_key(&built.name),
            layout::index_key(&built.name),
        );
        report.uploaded_bytes += remote.put(&pack, built.pack)?;
        report.uploaded_bytes += remote.put(&index, built.index.encode())?;
        report.written_packs += 1;
        written.extend([pack, index]);
        Ok::<_, GcError>(())
    };
    for (name, index) in repack {
        let (objects, _) = read_whole(remote, name, index)?;
        for object in objects.into_iter().filter(|o| needed.contains(&o.id())) {
            let object = object.into_encoded();
            batch_bytes += object.bytes.len();
            batch.push(object);
            if batch_bytes >= PACK_TARGET {
                flush(&mut batch, report)?;
                batch_bytes = 0;
            }
        }
        lock.refresh()?;
        progress.advance(1);
    }
    if !batch.is_empty() {
        flush(&mut batch, report)?;
    }
    progress.finish();
    Ok(written)
}
