//! Moving objects between stores: what a set of refs needs, each object's
//! encoded bytes, and importing objects that came from elsewhere.
//!
//! Invariants:
//! - objects travel as their *encoded* bytes ([`crate::codec`]), the bytes
//!   their id is the hash of, so no second encoding exists;
//! - an object from elsewhere enters a store only as a [`VerifiedObject`],
//!   which can only be made by hashing its bytes against the id it was sent
//!   under (and, for snapshots and images, decoding them canonically);
//! - an import is one [`Transaction`]: all of it commits, or none.

use std::collections::HashSet;

use crate::codec::{self, DecodeError};
use crate::compress::SNAPSHOT_LEVEL;
use crate::id::ObjectId;
use crate::image;
use crate::object::Kind;
use crate::odb::{Error, Result, Transaction, View, extract};
use crate::pack::{PACK_OBJECTS, PreparedPack};
use crate::reach::{self, Visit};

/// Every object the snapshots `roots` need, each once: the snapshots and
/// their ancestors, their schema blobs, their image listings (the whole
/// delta chain) and their pages, in the order the store keeps them, so
/// reading them one after the other reads each pack once.
///
/// The image of a snapshot that retention forgot is included as far as the
/// store still has it (gc may have collected it in part), as gc keeps it.
/// Anything else missing or unreadable is an error: a copy of a damaged
/// history would carry the damage elsewhere unseen.
pub fn reachable(view: View<'_>, roots: &[ObjectId]) -> Result<Vec<ObjectId>> {
    view.consistent(|view| {
        let mut snapshots = Vec::new();
        let mut problem = None;
        reach::walk_snapshots(view, roots.iter().copied(), |visit| match visit {
            Visit::Snapshot(id, snapshot) => snapshots.push((id, snapshot)),
            Visit::Broken { error, .. } => {
                problem.get_or_insert(error);
            }
            Visit::Cycle { id } => {
                problem.get_or_insert(Error::Unreadable {
                    id,
                    reason: "it is its own ancestor".into(),
                });
            }
        })?;
        if let Some(error) = problem {
            return Err(error);
        }
        let mut seen = HashSet::new();
        for (id, snapshot) in &snapshots {
            seen.insert(*id);
            seen.insert(snapshot.schema);
            let Some(image_id) = snapshot.image else {
                continue;
            };
            let forgotten = view.is_forgotten(id)?;
            match image::resolve(view, &image_id) {
                Ok(resolved) => {
                    for object in resolved.chain.into_iter().chain(resolved.blocks) {
                        if !forgotten || view.contains(&object)? {
                            seen.insert(object);
                        }
                    }
                }
                Err(Error::NotFound { .. }) if forgotten => {}
                Err(error) => return Err(error),
            }
        }
        let mut located = Vec::with_capacity(seen.len());
        for id in seen {
            let place = view.locate(&id)?.ok_or(Error::NotFound { id })?;
            located.push((place, id));
        }
        located.sort_unstable();
        Ok(located.into_iter().map(|(_, id)| id).collect())
    })
}

/// Whether snapshot `ancestor` is `descendant` or one of its ancestors, by
/// the parent links of the snapshots this store holds. `false` when
/// `ancestor` is not in the store's history of `descendant` at all.
pub fn is_ancestor(view: View<'_>, ancestor: &ObjectId, descendant: &ObjectId) -> Result<bool> {
    let mut found = false;
    view.consistent(|view| {
        reach::walk_snapshots(view, [*descendant], |visit| {
            if let Visit::Snapshot(id, _) = visit {
                found |= id == *ancestor;
            }
        })
    })?;
    Ok(found)
}

/// An object's encoded bytes, as read from a store and checked against its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedObject {
    /// The object's id: the hash of `bytes`.
    pub id: ObjectId,
    /// Its kind.
    pub kind: Kind,
    /// Its encoded bytes (kind, format version, body).
    pub bytes: Vec<u8>,
}

/// Reads object `id`'s encoded bytes; they are re-hashed, and a mismatch is
/// [`Error::Corrupt`]. Absence is [`Error::NotFound`].
pub fn read_encoded(view: View<'_>, id: &ObjectId) -> Result<EncodedObject> {
    view.consistent(|view| {
        let (pack, offset, len) = view.locate(id)?.ok_or(Error::NotFound { id: *id })?;
        let unpacked = view.pack_bytes(pack).map_err(|e| match e {
            Error::Unreadable { reason, .. } => Error::Unreadable { id: *id, reason },
            other => other,
        })?;
        let bytes = extract(&unpacked, id, pack, offset, len)?;
        let kind = codec::peek_kind(&bytes).map_err(|e| Error::Unreadable {
            id: *id,
            reason: e.to_string(),
        })?;
        Ok(EncodedObject {
            id: *id,
            kind,
            bytes,
        })
    })
}

/// Encoded bytes that hash to the id they were sent under and decode as the
/// object they claim to be: the only way into [`import`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedObject(EncodedObject);

/// Why bytes from elsewhere are not the object they were sent as.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The bytes hash to another id.
    #[error("object {expected} has bytes that hash to {actual}")]
    Mismatch {
        /// The id the bytes were sent under.
        expected: ObjectId,
        /// What they hash to.
        actual: ObjectId,
    },
    /// The bytes hash right but are not a canonical object.
    #[error("object {id} does not decode: {source}")]
    Undecodable {
        /// The object.
        id: ObjectId,
        /// What the decoder said.
        source: DecodeError,
    },
}

impl VerifiedObject {
    /// Checks that `bytes` hash to `expected` and decode canonically (a
    /// blob's body is opaque, so only its header is checked).
    pub fn new(expected: ObjectId, bytes: Vec<u8>) -> std::result::Result<Self, VerifyError> {
        let actual = ObjectId::hash(&bytes);
        if actual != expected {
            return Err(VerifyError::Mismatch { expected, actual });
        }
        let undecodable = |source| VerifyError::Undecodable {
            id: expected,
            source,
        };
        let kind = codec::peek_kind(&bytes).map_err(undecodable)?;
        if kind != Kind::Blob {
            codec::decode_object(&bytes).map_err(undecodable)?;
        }
        Ok(VerifiedObject(EncodedObject {
            id: expected,
            kind,
            bytes,
        }))
    }

    /// The object's id.
    pub fn id(&self) -> ObjectId {
        self.0.id
    }

    /// The object's kind.
    pub fn kind(&self) -> Kind {
        self.0.kind
    }

    /// The object's encoded bytes with its id and kind, to send on (a
    /// remote gc rewriting a pack with what it still needs).
    pub fn into_encoded(self) -> EncodedObject {
        self.0
    }
}

/// Writes verified objects into `tx`, and returns how many were new. Pages
/// are packed [`PACK_OBJECTS`] at a time with the store's dictionary, as a
/// snapshot packs them; every other object gets a pack of its own without
/// it, as [`crate::ObjectStore::write`] does (see `docs/format.md`). The
/// packs are loose: `gc` packs them later.
pub fn import(tx: &mut Transaction<'_>, objects: Vec<VerifiedObject>) -> Result<usize> {
    let mut new = 0;
    let mut pages = Vec::new();
    for object in objects {
        let EncodedObject { kind, bytes, .. } = object.0;
        if kind == Kind::Blob {
            pages.push((kind, bytes));
            if pages.len() == PACK_OBJECTS {
                new += write(tx, std::mem::take(&mut pages), true)?;
            }
        } else {
            new += write(tx, vec![(kind, bytes)], false)?;
        }
    }
    if !pages.is_empty() {
        new += write(tx, pages, true)?;
    }
    Ok(new)
}

fn write(tx: &mut Transaction<'_>, objects: Vec<(Kind, Vec<u8>)>, pages: bool) -> Result<usize> {
    let pack = PreparedPack::from_encoded(objects, &mut tx.compressor_at(SNAPSHOT_LEVEL, pages));
    tx.write_pack(&pack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Change, Expected, Object, ObjectStore, RefEdit, RefName, Store};

    fn snapshot(parents: Vec<ObjectId>, schema: ObjectId) -> Object {
        Object::Snapshot(crate::Snapshot {
            parents,
            schema,
            image: None,
            database: "app".into(),
            time: 0,
            message: String::new(),
            host: String::new(),
            tool: String::new(),
            added: crate::Added::default(),
            headers: Vec::new(),
        })
    }

    #[test]
    fn reachable_objects_copy_into_another_store_verified() {
        let dir = tempfile::tempdir().unwrap();
        let mut from = Store::init(&dir.path().join("a")).unwrap();
        let mut tx = from.transaction().unwrap();
        let schema = tx.write(&Object::Blob(b"schema".to_vec())).unwrap();
        let first = tx.write(&snapshot(vec![], schema)).unwrap();
        let second = tx.write(&snapshot(vec![first], schema)).unwrap();
        tx.write(&Object::Blob(b"unrelated".to_vec())).unwrap();
        tx.commit(&[], "").unwrap();

        let ids = reachable(from.view(), &[second]).unwrap();
        assert_eq!(ids.len(), 3);
        assert!(is_ancestor(from.view(), &first, &second).unwrap());
        assert!(!is_ancestor(from.view(), &second, &first).unwrap());

        let mut to = Store::init(&dir.path().join("b")).unwrap();
        let mut tx = to.transaction().unwrap();
        let verified = ids
            .iter()
            .map(|id| {
                let encoded = read_encoded(from.view(), id).unwrap();
                VerifiedObject::new(*id, encoded.bytes).unwrap()
            })
            .collect();
        assert_eq!(import(&mut tx, verified).unwrap(), 3);
        let name = RefName::new("heads/app").unwrap();
        let edit = RefEdit {
            name: name.clone(),
            change: Change::Update {
                expected: Expected::MustNotExist,
                new: second,
            },
        };
        tx.commit(&[edit], "import").unwrap();
        assert_eq!(to.read(&first).unwrap(), from.read(&first).unwrap());
        assert_eq!(reachable(to.view(), &[second]).unwrap().len(), 3);
    }

    #[test]
    fn bytes_sent_under_another_id_are_refused() {
        let bytes = codec::encode_object(&Object::Blob(b"page".to_vec()));
        let claimed = ObjectId::hash(b"something else");
        assert!(matches!(
            VerifiedObject::new(claimed, bytes),
            Err(VerifyError::Mismatch { expected, .. }) if expected == claimed
        ));
    }
}
