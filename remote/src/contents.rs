//! What a remote holds: its complete packs (those with an index) and its refs.

use std::collections::HashSet;

use migsnap_store::{ObjectId, RefName};

use crate::connection::{Connection, ConnectionError};
use crate::crypt::CryptError;
use crate::layout::{self, FORGOTTEN, Index, LayoutError, PACKS, REFS};
use crate::transport::{TransportError, Version};

/// Why a remote's contents could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContentsError {
    /// The remote could not be read.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The key does not fit, or an object does not decrypt.
    #[error(transparent)]
    Crypt(#[from] CryptError),
    /// An index or ref on it is damaged.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

impl From<ConnectionError> for ContentsError {
    fn from(error: ConnectionError) -> ContentsError {
        match error {
            ConnectionError::Transport(e) => ContentsError::Transport(e),
            ConnectionError::Crypt(e) => ContentsError::Crypt(e),
        }
    }
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
    pub fn read(remote: &Connection) -> Result<Packs, ContentsError> {
        let mut packs = Vec::new();
        let mut objects = HashSet::new();
        for listed in remote.transport.list(PACKS)? {
            let Some(name) = layout::pack_of_index(&listed.key) else {
                continue;
            };
            // Listed a moment ago, and indexes are never deleted: absence
            // now is damage.
            let (bytes, _) = remote.get(&listed.key)?.ok_or_else(|| LayoutError::Index {
                pack: name,
                reason: "it was listed but cannot be read".into(),
            })?;
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
pub fn read_ref(remote: &Connection, name: &RefName) -> Result<Option<RemoteRef>, ContentsError> {
    read_key(remote, &remote.ref_key(name))
}

/// Reads the ref at `key`, or `None` when there is none there (or `key` is
/// not a ref's, such as a file remote's `.lock` file).
fn read_key(remote: &Connection, key: &str) -> Result<Option<RemoteRef>, ContentsError> {
    if key.ends_with(".lock") {
        return Ok(None);
    }
    let Some((bytes, version)) = remote.get(key)? else {
        return Ok(None);
    };
    Ok(remote
        .decode_ref(key, &bytes)?
        .map(|(name, target)| RemoteRef {
            name,
            target,
            version,
        }))
}

/// Every ref of the remote, sorted by name. Keys under `refs/` that are not
/// ref names (a file remote's `.lock` files) are left out.
pub fn read_refs(remote: &Connection) -> Result<Vec<RemoteRef>, ContentsError> {
    let mut refs = Vec::new();
    for listed in remote.transport.list(REFS)? {
        // A ref may not be deleted by migsnap, but one removed by hand
        // between the listing and the read is simply not there.
        if let Some(found) = read_key(remote, &listed.key)? {
            refs.push(found);
        }
    }
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(refs)
}

/// The forgotten marks of the remote: snapshots whose image may be partly
/// absent, with the time retention gave it up. A mark whose bytes are not a
/// time counts as made at time 0 (the image is forgotten either way).
pub fn read_forgotten(remote: &Connection) -> Result<Vec<(ObjectId, i64)>, ContentsError> {
    let mut marks = Vec::new();
    for listed in remote.transport.list(FORGOTTEN)? {
        let bytes = remote
            .get(&listed.key)?
            .map(|(bytes, _)| bytes)
            .unwrap_or_default();
        if let Some(mark) = remote.decode_forgotten(&listed.key, &bytes) {
            marks.push(mark);
        }
    }
    Ok(marks)
}
