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
use migsnap_store::{Kind, ObjectId, RefName, Store, View};

use crate::contents::RemoteRef;
use crate::layout::Index;

/// A temporary store into which downloaded objects are imported to be
/// read (never committed); removed when dropped.
pub struct Scratch {
    /// The store.
    pub store: Store,
    _dir: tempfile::TempDir,
}

impl Scratch {
    /// Creates one in a temporary directory inside `beside`.
    pub fn new(beside: &Path) -> Result<Scratch, migsnap_store::Error> {
        let dir = tempfile::Builder::new()
            .prefix("remote-check-")
            .tempdir_in(beside)
            .map_err(|source| migsnap_store::Error::Io {
                path: beside.to_path_buf(),
                source,
            })?;
        let store = Store::init(&dir.path().join("store"))?;
        Ok(Scratch { store, _dir: dir })
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
    pub objects: HashSet<ObjectId>,
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
    indexed: &HashSet<ObjectId>,
    refs: &[RemoteRef],
    forgotten: &HashSet<ObjectId>,
) -> Result<Needed, migsnap_store::Error> {
    let mut needed = Needed::default();
    let mut seen_snapshots = HashSet::new();
    for remote_ref in refs {
        let need = |id: ObjectId, needed: &mut Needed| {
            if indexed.contains(&id) {
                needed.objects.insert(id);
                true
            } else {
                needed.missing.push((remote_ref.name.clone(), id));
                false
            }
        };
        let mut stack = vec![remote_ref.target];
        while let Some(id) = stack.pop() {
            if !seen_snapshots.insert(id) || !need(id, &mut needed) || !view.contains(&id)? {
                continue;
            }
            let snapshot = view.read_snapshot(&id)?;
            stack.extend(snapshot.parents.iter().copied());
            need(snapshot.schema, &mut needed);
            // Retention gave up this image: its pages may be gone, and are
            // not needed (a fetch records the snapshot as forgotten).
            let Some(image_id) = snapshot.image.filter(|_| !forgotten.contains(&id)) else {
                continue;
            };
            if !need(image_id, &mut needed) || !view.contains(&image_id)? {
                continue;
            }
            let resolved = match image::resolve(view, &image_id) {
                Ok(resolved) => resolved,
                // A listing the chain needs is not indexed (missing), or in
                // a pack that did not verify (reported as damaged).
                Err(migsnap_store::Error::NotFound { id }) => {
                    need(id, &mut needed);
                    continue;
                }
                Err(error) => return Err(error),
            };
            for object in resolved.chain.into_iter().chain(resolved.blocks) {
                need(object, &mut needed);
            }
        }
    }
    Ok(needed)
}
