//! What a remote holds: its complete packs (those with an index) and its refs.

use std::collections::HashSet;

use migsnap_store::{ObjectId, RefName};

use crate::layout::{self, FORGOTTEN, Index, LayoutError, PACKS, REFS};
use crate::transport::{Transport, TransportError, Version};

/// Why a remote's contents could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContentsError {
    /// The remote could not be read.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// An index or ref on it is damaged.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// The complete packs of a remote, with their indexes.
pub struct Packs {
    /// Each pack's name and index.
    pub packs: Vec<(ObjectId, Index)>,
    /// Every object they hold.
    pub objects: HashSet<ObjectId>,
}

impl Packs {
    /// Lists `packs/` and reads every index. A pack without an index (an
    /// upload cut short between the two) does not count.
    pub fn read(transport: &Transport) -> Result<Packs, ContentsError> {
        let mut packs = Vec::new();
        let mut objects = HashSet::new();
        for listed in transport.list(PACKS)? {
            let Some(name) = layout::pack_of_index(&listed.key) else {
                continue;
            };
            // Listed a moment ago, and indexes are never deleted: absence
            // now is damage.
            let bytes = transport
                .get(&listed.key)?
                .ok_or_else(|| LayoutError::Index {
                    pack: name,
                    reason: "it was listed but cannot be read".into(),
                })?
                .bytes;
            let index = Index::decode(&name, &bytes)?;
            objects.extend(index.entries.iter().map(|entry| entry.id));
            packs.push((name, index));
        }
        packs.sort_by_key(|(name, _)| *name);
        Ok(Packs { packs, objects })
    }
}

/// One ref on a remote, with the version a conditional write must find.
#[derive(Clone, Debug)]
pub struct RemoteRef {
    /// The ref's name (`heads/webui`), without `refs/`.
    pub name: RefName,
    /// The snapshot it points to.
    pub target: ObjectId,
    /// Its version as read.
    pub version: Version,
}

/// Reads ref `name`, or `None` when the remote lacks it.
pub fn read_ref(transport: &Transport, name: &RefName) -> Result<Option<RemoteRef>, ContentsError> {
    let Some(fetched) = transport.get(&layout::ref_key(name))? else {
        return Ok(None);
    };
    Ok(Some(RemoteRef {
        name: name.clone(),
        target: layout::decode_ref(name, &fetched.bytes)?,
        version: fetched.version,
    }))
}

/// Every ref of the remote, sorted by name. Keys under `refs/` that are not
/// ref names (a file remote's `.lock` files) are left out.
pub fn read_refs(transport: &Transport) -> Result<Vec<RemoteRef>, ContentsError> {
    let mut refs = Vec::new();
    for listed in transport.list(REFS)? {
        let Some(name) = listed
            .key
            .strip_prefix(REFS)
            .and_then(|name| RefName::new(name).ok())
        else {
            continue;
        };
        // A ref may not be deleted by migsnap, but one removed by hand
        // between the listing and the read is simply not there.
        if let Some(found) = read_ref(transport, &name)? {
            refs.push(found);
        }
    }
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(refs)
}

/// The forgotten marks of the remote: snapshots whose image may be partly
/// absent, with the time retention gave it up. A mark whose bytes are not a
/// time counts as made at time 0 (the image is forgotten either way).
pub fn read_forgotten(transport: &Transport) -> Result<Vec<(ObjectId, i64)>, ContentsError> {
    let mut marks = Vec::new();
    for listed in transport.list(FORGOTTEN)? {
        let Some(snapshot) = layout::snapshot_of_forgotten(&listed.key) else {
            continue;
        };
        let time = transport
            .get(&listed.key)?
            .and_then(|fetched| layout::decode_forgotten(&fetched.bytes))
            .unwrap_or(0);
        marks.push((snapshot, time));
    }
    Ok(marks)
}
