//! Garbage collection: delete what no ref, recent reflog entry or retained
//! image needs.
//!
//! Safety rules:
//! - the whole collection runs in one write transaction, so no snapshot can
//!   start using an object between the reachability walk and the deletion, and
//!   an interrupted gc deletes nothing (run it again);
//! - reflog entries and forgotten images are kept for a grace period, so a
//!   mistaken `forget` or ref move can be undone until then;
//! - gc refuses to run when anything reachable is missing or unreadable, or a
//!   ref or reflog row cannot be read: deleting around a hole could delete
//!   what the hole would have kept, such as the packs of objects whose index
//!   rows were lost, which a repair could still recover.
//!
//! Last, in the same transaction, gc packs what snapshots left loose
//! ([`crate::repack`]): the reachability check above is what makes deleting
//! the loose packs safe.

use std::collections::HashMap;

use crate::id::ObjectId;
use crate::idset::IdSet;
use crate::odb::{BrokenRef, Error, Result, Store, now};
use crate::progress::Progress;
use crate::reach::{self, Visit};
use crate::repack::{self, PackReport};

/// How gc behaves.
#[derive(Clone, Copy, Debug)]
pub struct GcOptions {
    /// Seconds that reflog entries and forgotten images are kept for.
    pub grace_secs: i64,
    /// Compute and report, but delete nothing.
    pub dry_run: bool,
}

/// What a gc did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Objects deleted.
    pub deleted_objects: u64,
    /// Stored bytes those objects took.
    pub freed_bytes: u64,
    /// Objects kept.
    pub kept_objects: u64,
    /// Reflog entries expired.
    pub expired_reflog: u64,
    /// Store file size before and after (equal for a dry run).
    pub file_size: (u64, u64),
    /// What packing the loose packs did.
    pub packed: PackReport,
}

/// Whether [`collect`] with `grace_secs` has work that is known without
/// marking anything: a loose pack to pack, or data forgotten at or before
/// the grace period's cutoff to free. Unreachable objects (a deleted tag's
/// history) wait for a run that is due for one of those reasons.
pub fn due(store: &Store, grace_secs: i64) -> Result<bool> {
    let view = store.view();
    let cutoff = now() - grace_secs.max(0);
    Ok(view.has_loose_packs(crate::compress::PACKED_LEVEL)?
        || view.forgotten()?.iter().any(|(_, at)| *at <= cutoff))
}

/// Why gc refused to run.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// A reachable object could not be read.
    #[error("gc refused: reachable object {id} is unreadable ({reason})")]
    Unreadable {
        /// The object.
        id: ObjectId,
        /// What went wrong.
        reason: String,
    },
    /// A reachable object is not in the store (its index row, its pack or
    /// its pack's dictionary is gone).
    #[error("gc refused: reachable object {id} is missing")]
    Missing {
        /// The object.
        id: ObjectId,
    },
    /// A ref or reflog row cannot be read, so what it keeps is unknown.
    #[error("gc refused: {broken}")]
    BrokenRef {
        /// The first such row.
        broken: BrokenRef,
    },
    /// A store error.
    #[error(transparent)]
    Store(#[from] Error),
}

/// Adds the listings and pages of image `image_id` to `live`. The data of a
/// forgotten image is no longer promised: a gc with a shorter grace may have
/// collected some or all of it already, so its absent parts are given up,
/// not damage, and only what is still there is kept.
fn mark_image(
    view: crate::odb::View<'_>,
    image_id: ObjectId,
    forgotten: bool,
    live: &mut IdSet,
) -> Result<(), GcError> {
    match live.add_image(view, &image_id, forgotten) {
        Ok(()) => Ok(()),
        Err(e) if e.is_store_file() => Err(GcError::Store(e)),
        Err(Error::NotFound { .. }) if forgotten => Ok(()),
        Err(other) => Err(GcError::Unreadable {
            id: image_id,
            reason: other.to_string(),
        }),
    }
}

/// Runs a garbage collection of `store`.
pub fn collect(
    store: &mut Store,
    options: GcOptions,
    progress: &mut dyn Progress,
) -> Result<GcReport, GcError> {
    let size_before = store.view().file_size()?;
    let cutoff = now() - options.grace_secs.max(0);
    let mut tx = store.transaction()?;
    let view = tx.view();
    let forgotten: HashMap<ObjectId, i64> = view.forgotten()?.into_iter().collect();
    if let Some(broken) = view.broken_refs()?.into_iter().next() {
        return Err(GcError::BrokenRef { broken });
    }

    let mut live = IdSet::default();
    let mut snapshots = Vec::new();
    let mut problem = None;
    reach::walk_snapshots(view, reach::roots(view, cutoff)?, |visit| match visit {
        Visit::Snapshot(id, snapshot) => snapshots.push((id, snapshot)),
        Visit::Broken { id, error, .. } => {
            problem.get_or_insert((id, error.to_string()));
        }
        Visit::Cycle { id } => {
            problem.get_or_insert((id, "parent cycle".into()));
        }
    })?;
    if let Some((id, reason)) = problem {
        return Err(GcError::Unreadable { id, reason });
    }
    progress.start("marking", snapshots.len() as u64);
    live.add(
        snapshots
            .iter()
            .flat_map(|(id, snapshot)| [*id, snapshot.schema])
            .collect(),
    );
    for (id, snapshot) in &snapshots {
        // Strictly after the cutoff, so that `--grace 0s` frees what was
        // forgotten in this very second.
        let forgotten_at = forgotten.get(id);
        if let (Some(image_id), true) = (snapshot.image, forgotten_at.is_none_or(|t| *t > cutoff)) {
            mark_image(view, image_id, forgotten_at.is_some(), &mut live)?;
        }
        progress.advance(1);
    }
    progress.finish();
    // Packs are deleted when no index row uses them: with a live object's
    // row lost, its bytes would go too.
    for id in live.iter() {
        if !view.contains(id)? {
            return Err(GcError::Missing { id: *id });
        }
    }

    let mut doomed: Vec<ObjectId> = Vec::new();
    let mut kept = 0u64;
    view.for_each_object(|id, info| match (id, info) {
        (Some(id), Some(_)) if !live.contains(&id) => doomed.push(id),
        _ => kept += 1,
    })?;
    // A dry run deletes inside the transaction too and then rolls back, so
    // its figures are exactly what a real run would report.
    progress.start("deleting", doomed.len() as u64);
    for batch in doomed.chunks(4096) {
        tx.delete_objects(batch)?;
        progress.advance(batch.len() as u64);
    }
    let freed_bytes = tx.delete_orphan_packs()?;
    progress.finish();
    // Marks of forgotten snapshots that are gone now; the live set is
    // dropped before packing, which has its own memory to spend.
    let gone: Vec<ObjectId> = forgotten
        .keys()
        .filter(|id| !live.contains(id))
        .copied()
        .collect();
    drop(live);
    let mut report = GcReport {
        deleted_objects: doomed.len() as u64,
        freed_bytes,
        kept_objects: kept,
        expired_reflog: tx.expire_reflog(cutoff)? as u64,
        file_size: (size_before, size_before),
        packed: repack::pack_loose(&mut tx, progress)?,
    };
    if options.dry_run {
        return Ok(report);
    }
    tx.drop_forgotten_marks(&gone)?;
    tx.commit(&[], "")?;
    store.vacuum()?;
    report.file_size.1 = store.view().file_size()?;
    Ok(report)
}
