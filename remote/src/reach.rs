//! What a remote's refs need, worked out on the client: the packs holding
//! snapshots and image listings are downloaded (verified) into a scratch
//! store, and the history of every ref is walked there against the
//! remote's indexes. `fsck --remote` reports what is missing; a remote gc
//! keeps the packs of what is needed.
//!
//! Invariants:
//! - the scratch store is a temporary directory beside the local store,
//!   never committed to and removed when dropped;
//! - the image of a snapshot with a forgotten mark is not needed: retention
//!   gave it up ([`crate::layout::FORGOTTEN`]), so its pages may be absent,
//!   and a gc may remove them; anything else a ref needs and no index lists
//!   is missing.

use std::collections::HashSet;
use std::path::Path;

use migsnap_store::image;
use migsnap_store::{IdSet, Kind, ObjectId, RefName, Store, View};

use crate::contents::RemoteRef;
use crate::layout::Index;

/// A temporary store into which downloaded objects are imported to be
/// read (never committed); removed when dropped.
pub struct Scratch {
    /// The store.
    pub store: Store,
    _dir: tempfile::TempDir,
}

/// The name prefix of scratch directories inside the store directory.
const SCRATCH_PREFIX: &str = "remote-check-";
/// A scratch directory older than this was left by a check or gc that was
/// killed (a scratch store lives as long as one command).
const SCRATCH_STALE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl Scratch {
    /// Creates one in a temporary directory inside `beside`, removing the
    /// ones killed commands left there (a day old or more).
    pub fn new(beside: &Path) -> Result<Scratch, migsnap_store::Error> {
        remove_stale(beside, SCRATCH_STALE);
        let dir = tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir_in(beside)
            .map_err(|source| migsnap_store::Error::Io {
                path: beside.to_path_buf(),
                source,
            })?;
        let store = Store::init(&dir.path().join("store"))?;
        Ok(Scratch { store, _dir: dir })
    }
}

/// Removes the scratch directories in `dir` not modified for `age`; what
/// cannot be removed stays for the next time.
fn remove_stale(dir: &Path, age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|elapsed| elapsed >= age);
        if stale
            && entry
                .file_name()
                .to_string_lossy()
                .starts_with(SCRATCH_PREFIX)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether a pack holds objects a history walk reads (snapshots, image
/// listings), rather than only pages and schemas.
pub fn holds_metadata(index: &Index) -> bool {
    index
        .entries
        .iter()
        .any(|entry| matches!(entry.kind, Kind::Snapshot | Kind::Image))
}

/// What the refs need.
#[derive(Debug, Default)]
pub struct Needed {
    /// Every object a ref needs that an index lists.
    pub objects: IdSet,
    /// Objects a ref needs that no index lists: the ref and the object.
    pub missing: Vec<(RefName, ObjectId)>,
}

/// Walks the history of every ref in `view` (a scratch store holding at
/// least the indexed snapshots and image listings): each snapshot, its
/// parents, schema, image listing chain and pages. `indexed` is every
/// object the remote's indexes list; `forgotten` the snapshots with a
/// forgotten mark. An object that is indexed but not in `view` (its pack
/// is damaged) is counted as needed and not descended into.
pub fn needed(
    view: View<'_>,
    indexed: &IdSet,
    refs: &[RemoteRef],
    forgotten: &HashSet<ObjectId>,
) -> Result<Needed, migsnap_store::Error> {
    let mut missing = Vec::new();
    // One mark for each indexed id, by its place in the set's order: a
    // byte an id, where a set of the needed ids themselves would be
    // another copy of most of them.
    let mut marked = vec![false; indexed.len()];
    let mut seen_snapshots = HashSet::new();
    for remote_ref in refs {
        let mut mark = |rank: Option<usize>, id: ObjectId| match rank {
            Some(rank) => {
                marked[rank] = true;
                true
            }
            None => {
                missing.push((remote_ref.name.clone(), id));
                false
            }
        };
        let mut stack = vec![remote_ref.target];
        while let Some(id) = stack.pop() {
            if !seen_snapshots.insert(id) || !mark(indexed.rank(&id), id) || !view.contains(&id)? {
                continue;
            }
            let snapshot = view.read_snapshot(&id)?;
            stack.extend(snapshot.parents.iter().copied());
            mark(indexed.rank(&snapshot.schema), snapshot.schema);
            // Retention gave up this image: its pages may be gone, and are
            // not needed (a fetch records the snapshot as forgotten).
            let Some(image_id) = snapshot.image.filter(|_| !forgotten.contains(&id)) else {
                continue;
            };
            if !mark(indexed.rank(&image_id), image_id) || !view.contains(&image_id)? {
                continue;
            }
            let resolved = match image::resolve(view, &image_id) {
                Ok(resolved) => resolved,
                // A listing the chain needs is not indexed (missing), or in
                // a pack that did not verify (reported as damaged).
                Err(migsnap_store::Error::NotFound { id }) => {
                    mark(indexed.rank(&id), id);
                    continue;
                }
                Err(error) => return Err(error),
            };
            for object in resolved.chain {
                mark(indexed.rank(&object), object);
            }
            // The pages in the set's order, looked up in one pass.
            let mut blocks = resolved.blocks;
            blocks.sort_unstable();
            blocks.dedup();
            for (object, rank) in indexed.rank_sorted(&blocks) {
                mark(rank, object);
            }
        }
    }
    let mut ids = Vec::with_capacity(marked.iter().filter(|&&m| m).count());
    ids.extend(
        indexed
            .iter()
            .zip(marked)
            .filter_map(|(id, marked)| marked.then_some(*id)),
    );
    let mut objects = IdSet::default();
    objects.add(ids);
    Ok(Needed { objects, missing })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_scratch_directories_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("remote-check-left")).unwrap();
        std::fs::create_dir(dir.path().join("fetch-packs")).unwrap();
        let scratch = Scratch::new(dir.path()).unwrap();
        // Young: kept.
        assert!(dir.path().join("remote-check-left").exists());
        remove_stale(dir.path(), std::time::Duration::ZERO);
        assert!(!dir.path().join("remote-check-left").exists());
        assert!(dir.path().join("fetch-packs").exists());
        drop(scratch);
    }
}
