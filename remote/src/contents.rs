//! What a remote holds: its complete packs (those with an index) and its refs.

use std::collections::HashSet;

use migsnap_store::transfer::VerifiedObject;
use migsnap_store::{IdSet, ObjectId, RefName};

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
    /// Every object they hold: a sorted set, as a 4 GiB database's remote
    /// lists a million pages (a hash set of them held 100 MB).
    pub objects: IdSet,
}

impl Packs {
    /// Lists `packs/` and reads every index. A pack without an index (an
    /// upload cut short between the two), or an index without its pack,
    /// does not count ([`visit_indexes`]).
    pub fn read(remote: &Connection) -> Result<Packs, ContentsError> {
        Ok(Packs::new(Packs::read_indexes(remote)?))
    }

    /// Lists `packs/` and reads every index, as [`Packs::read`] does, in no
    /// order and without the set of every object (a fetch needs neither).
    pub fn read_indexes(remote: &Connection) -> Result<Vec<(ObjectId, Index)>, ContentsError> {
        let mut packs = Vec::new();
        visit_indexes(remote, |name, index| {
            packs.push((name, index));
            Ok::<_, ContentsError>(())
        })?;
        Ok(packs)
    }

    /// The packs `packs` (name and index), sorted by name.
    pub fn new(mut packs: Vec<(ObjectId, Index)>) -> Packs {
        packs.sort_by_key(|(name, _)| *name);
        // Sized up front: grown by doubling, the vector of a million ids
        // had room for two.
        let mut ids = Vec::with_capacity(packs.iter().map(|(_, index)| index.entries.len()).sum());
        ids.extend(
            packs
                .iter()
                .flat_map(|(_, index)| index.entries.iter().map(|entry| entry.id)),
        );
        let mut objects = IdSet::default();
        objects.add(ids);
        Packs { packs, objects }
    }
}

/// Lists `packs/` and hands every index to `each` as it is read, with its
/// pack's name, holding one at a time. A pack counts only when both files
/// are listed: a pack without an index is an upload cut short, and an
/// index without its pack (the pack deleted by hand, or by a tool that
/// knows nothing of indexes) must not make a push skip what it lists, nor
/// a fetch want it. A listed pack that is damaged still counts: reading it
/// says so, naming it (`fsck --remote` checks each against its index).
/// Stops at the first error of `each`.
pub fn visit_indexes<E: From<ContentsError>>(
    remote: &Connection,
    mut each: impl FnMut(ObjectId, Index) -> Result<(), E>,
) -> Result<(), E> {
    let listed = remote.transport.list(PACKS).map_err(ContentsError::from)?;
    let packs: HashSet<&str> = listed
        .iter()
        .map(|l| l.key.as_str())
        .filter(|key| key.ends_with(".pack"))
        .collect();
    for entry in &listed {
        let complete = layout::pack_of_index(&entry.key)
            .is_some_and(|name| packs.contains(layout::pack_key(&name).as_str()));
        if !complete {
            continue;
        }
        if let Some((name, index)) = read_index(remote, &entry.key)? {
            each(name, index)?;
        }
    }
    Ok(())
}

/// The pack and index at `key`, or `None` when `key` is not an index's or
/// the index is gone (a remote gc removed it since the listing).
pub fn read_index(
    remote: &Connection,
    key: &str,
) -> Result<Option<(ObjectId, Index)>, ContentsError> {
    let Some(name) = layout::pack_of_index(key) else {
        return Ok(None);
    };
    let Some((bytes, _)) = remote.get(key)? else {
        return Ok(None);
    };
    Ok(Some((name, Index::decode(&name, &bytes)?)))
}

/// Downloads pack `name`: its (plaintext) file, checked to open and to be
/// named by its content, with the bytes downloaded; `None` when absent.
pub fn download_pack(
    remote: &Connection,
    name: &ObjectId,
) -> Result<Option<(Vec<u8>, u64)>, ContentsError> {
    let key = layout::pack_key(name);
    let Some(fetched) = remote.transport.get_immutable(&key)? else {
        return Ok(None);
    };
    let stored = fetched.len() as u64;
    let bytes = remote.cipher().open(&key, fetched)?;
    layout::check_name(name, &bytes, remote.cipher())?;
    Ok(Some((bytes, stored)))
}

/// Downloads pack `name` and checks it whole ([`download_pack`], then every
/// object it unpacks to against `index`). Returns the verified objects and
/// the bytes downloaded, or `None` when the pack is absent.
pub fn read_pack(
    remote: &Connection,
    name: &ObjectId,
    index: &Index,
) -> Result<Option<(Vec<VerifiedObject>, u64)>, ContentsError> {
    let Some((bytes, stored)) = download_pack(remote, name)? else {
        return Ok(None);
    };
    Ok(Some((layout::unpack(name, &bytes, index)?, stored)))
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
    read_ref_at(remote, &remote.ref_key(name))
}

/// Reads the ref at `key`, or `None` when there is none there (or `key` is
/// not a ref's, such as a file remote's `.lock` file).
pub fn read_ref_at(remote: &Connection, key: &str) -> Result<Option<RemoteRef>, ContentsError> {
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
        if let Some(found) = read_ref_at(remote, &listed.key)? {
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
