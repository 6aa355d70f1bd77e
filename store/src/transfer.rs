//! Moving objects between stores: what a set of refs needs, each object's
//! encoded bytes, and importing objects that came from elsewhere.
//!
//! Invariants:
//! - objects travel as their *encoded* bytes ([`crate::codec`]), the bytes
//!   their id is the hash of, so no second encoding exists;
//! - an object from elsewhere enters a store only as a [`VerifiedObject`],
//!   which can only be made by hashing its bytes against the id it was sent
//!   under (and, for snapshots and images, decoding them canonically);
//! - an import is one [`crate::Transaction`]: all of it commits, or none.

use crate::codec::{self, DecodeError};
use crate::compress::{self, Compression, SNAPSHOT_LEVEL};
use crate::id::ObjectId;
use crate::idset::IdSet;
use crate::object::Kind;
use crate::odb::{Error, PackBatch, Result, View};
use crate::pack::{PACK_OBJECTS, PackMember, PreparedPack};
use crate::reach::{self, Visit};

/// Every object the snapshots `roots` need, each once: the snapshots and
/// their ancestors, their schema blobs, their image listings (the whole
/// delta chain) and their pages. They can be asked for by id, and walked in
/// the order the store keeps them, so reading them one after the other
/// reads each pack once.
///
/// The image of a snapshot that retention forgot is included as far as the
/// store still has it (gc may have collected it in part), as gc keeps it.
/// Anything else missing or unreadable is an error: a copy of a damaged
/// history would carry the damage elsewhere unseen.
pub fn reachable(view: View<'_>, roots: &[ObjectId]) -> Result<Reachable> {
    view.consistent(|view| {
        let ids = needed(view, roots)?;
        // Each id's place beside its rank: 16 bytes an object while
        // sorting, where the id itself beside its place took 56, and the
        // result a third vector of ids.
        let mut places = Vec::with_capacity(ids.len());
        for (rank, id) in ids.iter().enumerate() {
            let (pack, offset, _) = view.locate(id)?.ok_or(Error::NotFound { id: *id })?;
            let offset = u32::try_from(offset).map_err(|_| Error::Unreadable {
                id: *id,
                reason: format!("its index row puts it at offset {offset} of pack {pack}"),
            })?;
            let rank = u32::try_from(rank).expect("holds because a store holds under 2^32 objects");
            places.push((pack, offset, rank));
        }
        places.sort_unstable();
        let order = places.into_iter().map(|(_, _, rank)| rank).collect();
        Ok(Reachable { ids, order })
    })
}

/// What [`reachable`] found: 36 bytes an object.
#[derive(Debug)]
pub struct Reachable {
    ids: IdSet,
    /// Each id's rank in `ids`, in the order the store keeps them.
    order: Vec<u32>,
}

impl Reachable {
    /// How many objects.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.len() == 0
    }

    /// Where `id` is in id order (`0..len()`), if it is one of them: a key
    /// for marking objects without a set of ids of one's own.
    pub fn rank(&self, id: &ObjectId) -> Option<usize> {
        self.ids.rank(id)
    }

    /// Every object as its rank and id, in the order the store keeps them.
    pub fn in_store_order(&self) -> impl Iterator<Item = (usize, &ObjectId)> {
        self.order.iter().map(|&rank| {
            let rank = rank as usize;
            (
                rank,
                self.ids
                    .get(rank)
                    .expect("holds because ranks index the ids"),
            )
        })
    }
}

/// Checks that the store holds every object the snapshots `roots` need, as
/// [`reachable`] counts them, without putting them in order (a fetch's
/// check that a remote ref's history arrived whole).
pub fn check_complete(view: View<'_>, roots: &[ObjectId]) -> Result<()> {
    view.consistent(|view| {
        // In id order, which is the index's: each look-up lands near the last.
        for &id in needed(view, roots)?.iter() {
            view.locate(&id)?.ok_or(Error::NotFound { id })?;
        }
        Ok(())
    })
}

/// The objects the snapshots `roots` need, each once, by id; see
/// [`reachable`].
fn needed(view: View<'_>, roots: &[ObjectId]) -> Result<IdSet> {
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
    let mut needed = IdSet::default();
    needed.add(
        snapshots
            .iter()
            .flat_map(|(id, snapshot)| [*id, snapshot.schema])
            .collect(),
    );
    for (id, snapshot) in &snapshots {
        let Some(image_id) = snapshot.image else {
            continue;
        };
        let forgotten = view.is_forgotten(id)?;
        match needed.add_image(view, &image_id, forgotten) {
            Ok(()) => {}
            Err(Error::NotFound { .. }) if forgotten => {}
            Err(error) => return Err(error),
        }
    }
    Ok(needed)
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
    let bytes = view.encoded(id)?;
    let kind = codec::peek_kind(&bytes).map_err(|e| Error::Unreadable {
        id: *id,
        reason: e.to_string(),
    })?;
    Ok(EncodedObject {
        id: *id,
        kind,
        bytes,
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

/// Checks that `bytes` hash to `expected` and decode canonically (a blob's
/// body is opaque, so only its header is checked); returns its kind.
fn verify(expected: ObjectId, bytes: &[u8]) -> std::result::Result<Kind, VerifyError> {
    verify_hashed(expected, ObjectId::hash(bytes), bytes)
}

/// [`verify`], given the id `bytes` hash to.
fn verify_hashed(
    expected: ObjectId,
    actual: ObjectId,
    bytes: &[u8],
) -> std::result::Result<Kind, VerifyError> {
    if actual != expected {
        return Err(VerifyError::Mismatch { expected, actual });
    }
    let undecodable = |source| VerifyError::Undecodable {
        id: expected,
        source,
    };
    codec::check_object(bytes).map_err(undecodable)
}

impl VerifiedObject {
    /// Checks that `bytes` hash to `expected` and decode canonically (a
    /// blob's body is opaque, so only its header is checked).
    pub fn new(expected: ObjectId, bytes: Vec<u8>) -> std::result::Result<Self, VerifyError> {
        let kind = verify(expected, &bytes)?;
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

/// A pack row from elsewhere (a remote's pack holds several), as the store
/// keeps it: its stored bytes, unpacked once and every member checked
/// ([`VerifiedObject`]'s checks, and the kind it is listed as), so it can be
/// imported without compressing or hashing anything again. The only way
/// into [`import_pack`].
pub struct VerifiedPack(PreparedPack);

/// Why a pack from elsewhere is not what it is listed as.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Its bytes do not unpack to its stated length.
    #[error("it does not unpack: {0}")]
    Unpack(String),
    /// Its members do not tile its unpacked bytes.
    #[error("its members do not cover its {raw_len} unpacked bytes exactly")]
    Members {
        /// The unpacked length it states.
        raw_len: usize,
    },
    /// A member is not the object it is listed as.
    #[error(transparent)]
    Object(#[from] VerifyError),
    /// A member is another kind of object than it is listed as.
    #[error("object {id} is listed as a {listed} but is a {actual}")]
    Kind {
        /// The object.
        id: ObjectId,
        /// The kind it is listed as.
        listed: &'static str,
        /// The kind it is.
        actual: &'static str,
    },
}

impl VerifiedPack {
    /// Unpacks `data` (`compression` without a dictionary, at most `raw_len`
    /// bytes; `level` is the zstd level its writer used, kept as the row's)
    /// and checks that `members` tile the unpacked bytes in order and that
    /// each is the object and kind it is listed as.
    pub fn new(
        compression: Compression,
        data: Vec<u8>,
        raw_len: usize,
        level: i32,
        members: Vec<PackMember>,
    ) -> std::result::Result<Self, PackError> {
        Self::visiting(compression, data, raw_len, level, members, |_, _| {})
    }

    /// As [`VerifiedPack::new`], and hands each member's encoded bytes to
    /// `each` once they are checked: a caller that wants the unpacked
    /// objects (a clone writing a database as it downloads) need not unpack
    /// the pack again. A member that fails stops the walk, but members
    /// before it were handed over already.
    pub fn visiting(
        compression: Compression,
        data: Vec<u8>,
        raw_len: usize,
        level: i32,
        members: Vec<PackMember>,
        each: impl FnMut(&PackMember, &[u8]),
    ) -> std::result::Result<Self, PackError> {
        unpack_each(compression, &data, raw_len, &members, each)?;
        Ok(VerifiedPack(PreparedPack {
            members,
            raw_len,
            level,
            compression,
            dictionary: None,
            data,
        }))
    }

    /// The objects in the pack.
    pub fn members(&self) -> &[PackMember] {
        &self.0.members
    }
}

/// The members of a pack from elsewhere as [`VerifiedObject`]s (checked as
/// [`VerifiedPack::new`] checks them), for a caller that sends them on in
/// other packs.
pub fn unpack_objects(
    compression: Compression,
    data: &[u8],
    raw_len: usize,
    members: &[PackMember],
) -> std::result::Result<Vec<VerifiedObject>, PackError> {
    let mut objects = Vec::with_capacity(members.len());
    unpack_each(compression, data, raw_len, members, |member, bytes| {
        objects.push(VerifiedObject(EncodedObject {
            id: member.id,
            kind: member.kind,
            bytes: bytes.to_vec(),
        }));
    })?;
    Ok(objects)
}

/// Unpacks a pack, checks every member, and calls `each` with each member
/// and its encoded bytes, in order.
fn unpack_each(
    compression: Compression,
    data: &[u8],
    raw_len: usize,
    members: &[PackMember],
    mut each: impl FnMut(&PackMember, &[u8]),
) -> std::result::Result<(), PackError> {
    if raw_len > codec::DECODE_LIMIT {
        return Err(PackError::Unpack(format!("it claims {raw_len} bytes")));
    }
    let unpacked;
    let raw: &[u8] = match compression {
        Compression::None => data,
        Compression::Zstd => {
            if !compress::is_one_frame(data) {
                return Err(PackError::Unpack(compress::NOT_ONE_FRAME.to_owned()));
            }
            unpacked = zstd::bulk::decompress(data, raw_len)
                .map_err(|e| PackError::Unpack(e.to_string()))?;
            &unpacked
        }
    };
    if raw.len() != raw_len {
        return Err(PackError::Unpack(format!(
            "it unpacks to {} bytes, not {raw_len}",
            raw.len()
        )));
    }
    let mut next = 0usize;
    let mut objects = Vec::with_capacity(members.len());
    for member in members {
        let (start, len) = (member.offset as usize, member.len as usize);
        if start != next || start + len > raw_len {
            return Err(PackError::Members { raw_len });
        }
        next = start + len;
        objects.push(&raw[start..next]);
    }
    if next != raw_len {
        return Err(PackError::Members { raw_len });
    }
    // All at once: runs of pages hash side by side.
    let mut ids = Vec::with_capacity(objects.len());
    ObjectId::hash_each(&objects, &mut ids);
    for ((member, bytes), actual) in members.iter().zip(objects).zip(ids) {
        let kind = verify_hashed(member.id, actual, bytes)?;
        if kind != member.kind {
            return Err(PackError::Kind {
                id: member.id,
                listed: member.kind.name(),
                actual: kind.name(),
            });
        }
        each(member, bytes);
    }
    Ok(())
}

/// Stores a verified pack as it came: nothing is compressed or hashed again.
/// [`PackBatch::finish`] says how many of its objects were new. Its row
/// records the writer's level, so a pack from elsewhere below the compact
/// level is loose, and `gc` packs it; a large uncompressed one, which packing
/// never takes, is recorded at the snapshot's level (see `docs/format.md`).
pub fn import_pack(batch: &mut PackBatch<'_, '_>, pack: &VerifiedPack) -> Result<()> {
    batch.write_pack(&pack.0)
}

/// Writes verified objects into `batch`. Pages
/// are packed [`PACK_OBJECTS`] at a time with the store's dictionary, as a
/// snapshot packs them; every other object gets a pack of its own without
/// it, as [`crate::ObjectStore::write`] does (see `docs/format.md`). The
/// packs are loose: `gc` packs them later.
pub fn import(batch: &mut PackBatch<'_, '_>, objects: Vec<VerifiedObject>) -> Result<()> {
    let mut pages = Vec::new();
    for object in objects {
        let EncodedObject { kind, bytes, .. } = object.0;
        if kind == Kind::Blob {
            pages.push((kind, bytes));
            if pages.len() == PACK_OBJECTS {
                write(batch, std::mem::take(&mut pages), true)?;
            }
        } else {
            write(batch, vec![(kind, bytes)], false)?;
        }
    }
    if !pages.is_empty() {
        write(batch, pages, true)?;
    }
    Ok(())
}

fn write(batch: &mut PackBatch<'_, '_>, objects: Vec<(Kind, Vec<u8>)>, pages: bool) -> Result<()> {
    let pack = PreparedPack::from_encoded(objects, &mut batch.compressor_at(SNAPSHOT_LEVEL, pages));
    batch.write_pack(&pack)
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
        let unrelated = tx.write(&Object::Blob(b"unrelated".to_vec())).unwrap();
        tx.commit(&[], "").unwrap();

        let ids = reachable(from.view(), &[second]).unwrap();
        assert_eq!(ids.len(), 3);
        let rank = ids.rank(&first).unwrap();
        assert!(
            ids.in_store_order()
                .any(|(r, id)| r == rank && *id == first)
        );
        assert_eq!(ids.rank(&unrelated), None);
        assert!(is_ancestor(from.view(), &first, &second).unwrap());
        assert!(!is_ancestor(from.view(), &second, &first).unwrap());

        let mut to = Store::init(&dir.path().join("b")).unwrap();
        let mut tx = to.transaction().unwrap();
        let verified = ids
            .in_store_order()
            .map(|(_, id)| {
                let encoded = read_encoded(from.view(), id).unwrap();
                VerifiedObject::new(*id, encoded.bytes).unwrap()
            })
            .collect();
        let mut batch = tx.pack_batch();
        import(&mut batch, verified).unwrap();
        assert_eq!(batch.finish().unwrap(), 3);
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

    /// Members of a pack from elsewhere, and their bytes back to back.
    fn foreign_pack(objects: &[Object]) -> (Vec<PackMember>, Vec<u8>) {
        let mut raw = Vec::new();
        let members = objects
            .iter()
            .map(|object| {
                let bytes = codec::encode_object(object);
                let member = PackMember {
                    id: ObjectId::hash(&bytes),
                    kind: object.kind(),
                    offset: raw.len() as u32,
                    len: bytes.len() as u32,
                };
                raw.extend(bytes);
                member
            })
            .collect();
        (members, raw)
    }

    /// The one row of three integers `sql` selects from the store in `dir/s`.
    fn three_numbers(dir: &std::path::Path, sql: &str) -> (i64, i64, i64) {
        rusqlite::Connection::open(dir.join("s/store.db"))
            .unwrap()
            .query_row(sql, [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
    }

    /// A large object that came uncompressed (a full listing) is streamed
    /// into its row and recorded at the snapshot's level, so SQLite need not
    /// write its zeroblob out in memory; its bytes read back unchanged.
    #[test]
    fn a_large_raw_pack_from_elsewhere_is_kept_at_the_snapshot_level() {
        let big = Object::Blob((0..3 << 20).map(|i: u32| (i % 251) as u8).collect());
        let (members, raw) = foreign_pack(std::slice::from_ref(&big));
        let pack = VerifiedPack::new(
            Compression::None,
            raw.clone(),
            raw.len(),
            3,
            members.clone(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join("s")).unwrap();
        let mut tx = store.transaction().unwrap();
        let mut batch = tx.pack_batch();
        import_pack(&mut batch, &pack).unwrap();
        assert_eq!(batch.finish().unwrap(), 1);
        tx.commit(&[], "import").unwrap();
        assert_eq!(store.read(&members[0].id).unwrap(), big);
        let row = three_numbers(
            dir.path(),
            "SELECT compression, length(data), level FROM packs",
        );
        assert_eq!(row, (0, raw.len() as i64, i64::from(SNAPSHOT_LEVEL)));
    }

    #[test]
    fn a_verified_pack_is_kept_as_it_came_and_reads_back() {
        let objects = [
            Object::Blob(vec![7; 4096]),
            Object::Blob(vec![8; 4096]),
            Object::Blob(vec![7; 4096]),
        ];
        let (mut members, raw) = foreign_pack(&objects[..2]);
        let frame = zstd::bulk::compress(&raw, 3).unwrap();
        let stored = frame.len();
        let pack =
            VerifiedPack::new(Compression::Zstd, frame, raw.len(), 3, members.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join("s")).unwrap();
        let mut tx = store.transaction().unwrap();
        // Twice in one batch, where the second copy's rows are held beside
        // the first's and its pack is deleted again at the flush; then in a
        // batch of its own, where the store has the first object and the
        // pack is not stored at all.
        let mut batch = tx.pack_batch();
        import_pack(&mut batch, &pack).unwrap();
        import_pack(&mut batch, &pack).unwrap();
        assert_eq!(batch.finish().unwrap(), 2);
        let mut batch = tx.pack_batch();
        import_pack(&mut batch, &pack).unwrap();
        assert_eq!(batch.finish().unwrap(), 0, "nothing is new twice");
        assert_eq!(tx.added().bytes, stored as u64);
        tx.commit(&[], "import").unwrap();
        for (member, object) in members.iter().zip(&objects) {
            assert_eq!(&store.read(&member.id).unwrap(), object);
        }
        let rows = three_numbers(
            dir.path(),
            "SELECT count(*), sum(length(data)), max(level) FROM packs",
        );
        assert_eq!(
            rows,
            (1, stored as i64, 3),
            "one row, the bytes as sent, its level"
        );

        // A member listed as another kind is refused.
        members[1].kind = Kind::Snapshot;
        assert!(matches!(
            VerifiedPack::new(
                Compression::None,
                raw.clone(),
                raw.len(),
                3,
                members.clone()
            ),
            Err(PackError::Kind { .. })
        ));
        members[1].kind = Kind::Blob;
        // A flipped byte, and members that leave a gap, are refused.
        let mut flipped = raw.clone();
        flipped[10] ^= 1;
        assert!(matches!(
            VerifiedPack::new(Compression::None, flipped, raw.len(), 3, members.clone()),
            Err(PackError::Object(VerifyError::Mismatch { .. }))
        ));
        assert!(matches!(
            VerifiedPack::new(
                Compression::None,
                raw.clone(),
                raw.len(),
                3,
                members[1..].to_vec()
            ),
            Err(PackError::Members { .. })
        ));
        assert!(matches!(
            VerifiedPack::new(
                Compression::Zstd,
                raw.clone(),
                raw.len(),
                3,
                members.clone()
            ),
            Err(PackError::Unpack(_))
        ));
        // The members in two frames laid end to end, or one frame and a
        // skippable one: zstd reads either whole, a partial read would not,
        // so neither is a pack.
        let half = members[1].offset as usize;
        let two = [
            zstd::bulk::compress(&raw[..half], 3).unwrap(),
            zstd::bulk::compress(&raw[half..], 3).unwrap(),
        ]
        .concat();
        let mut skippable = zstd::bulk::compress(&raw, 3).unwrap();
        skippable.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        skippable.extend_from_slice(&0u32.to_le_bytes());
        for data in [two, skippable] {
            assert!(
                zstd::bulk::decompress(&data, raw.len()).is_ok_and(|whole| whole == raw),
                "zstd reads it whole"
            );
            let refused = VerifiedPack::new(Compression::Zstd, data, raw.len(), 3, members.clone());
            assert!(
                matches!(&refused, Err(PackError::Unpack(reason)) if reason.contains("one zstd frame")),
                "{:?}",
                refused.err()
            );
        }
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
