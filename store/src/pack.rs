//! Packs: several encoded objects stored as one compressed row.
//!
//! Objects keep their own ids and are found through the `objects` table
//! (`id → pack, offset, raw_len`); a pack is only how their bytes are kept.
//! Small objects get a pack of their own; a snapshot packs up to
//! [`PACK_OBJECTS`] new pages together, which compresses far better than
//! pages one by one.

use crate::codec;
use crate::compress::{Compression, Compressor};
use crate::id::ObjectId;
use crate::object::Kind;

/// How many pages a snapshot puts in one loose pack (128 KiB of 4 KiB pages).
pub const PACK_OBJECTS: usize = 32;

/// How many pages `gc` puts in one compact pack (256 KiB of 4 KiB pages):
/// larger frames compress better, and packing is off the critical path.
pub const PACKED_OBJECTS: usize = 64;

/// One object inside a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackMember {
    /// The object's id.
    pub id: ObjectId,
    /// Its kind.
    pub kind: Kind,
    /// Where its encoded bytes start in the decompressed pack.
    pub offset: u32,
    /// How long they are.
    pub len: u32,
}

/// A blob's bytes with its id. The id is computed by [`HashedBlob::new`]
/// or [`HashedBlob::each`] and nowhere else, so a pack built from these
/// cannot name bytes wrongly.
#[derive(Clone, Copy, Debug)]
pub struct HashedBlob<'a> {
    id: ObjectId,
    bytes: &'a [u8],
}

impl<'a> HashedBlob<'a> {
    /// Hashes `bytes` as a blob.
    pub fn new(bytes: &'a [u8]) -> Self {
        HashedBlob {
            id: codec::blob_id(bytes),
            bytes,
        }
    }

    /// Hashes each of `pages` as a blob, in order: as [`HashedBlob::new`]
    /// does, faster for many pages of one size ([`codec::blob_ids`]).
    pub fn each(pages: impl ExactSizeIterator<Item = &'a [u8]> + Clone) -> Vec<Self> {
        let mut ids = Vec::with_capacity(pages.len());
        codec::blob_ids(pages.clone(), &mut ids);
        ids.into_iter()
            .zip(pages)
            .map(|(id, bytes)| HashedBlob { id, bytes })
            .collect()
    }

    /// The blob's id.
    pub fn id(&self) -> ObjectId {
        self.id
    }
}

/// A pack encoded, hashed and compressed, ready to insert. Building one needs
/// no store, so it happens on worker threads.
pub struct PreparedPack {
    pub(crate) members: Vec<PackMember>,
    pub(crate) raw_len: usize,
    pub(crate) level: i32,
    pub(crate) compression: Compression,
    pub(crate) dictionary: Option<ObjectId>,
    pub(crate) data: Vec<u8>,
}

impl PreparedPack {
    /// Packs the blobs `blocks`, in order. Their ids come with them, so a
    /// page that was hashed to compare it with its parent's is not hashed
    /// again here, and its bytes are copied once, straight into the pack.
    pub fn blobs<'a>(
        blocks: impl IntoIterator<Item = HashedBlob<'a>>,
        compressor: &mut Compressor,
    ) -> PreparedPack {
        let mut raw = Vec::new();
        let mut members = Vec::new();
        for blob in blocks {
            let offset = raw.len();
            codec::encode_blob_into(blob.bytes, &mut raw);
            members.push(PackMember {
                id: blob.id,
                kind: Kind::Blob,
                offset: u32::try_from(offset).expect("holds because packs are small"),
                len: u32::try_from(raw.len() - offset)
                    .expect("holds because objects are under 4 GiB"),
            });
        }
        PreparedPack::compress(members, raw, compressor)
    }

    /// Packs already encoded objects, in order.
    pub(crate) fn from_encoded(
        mut objects: Vec<(Kind, Vec<u8>)>,
        compressor: &mut Compressor,
    ) -> PreparedPack {
        // A lone object is its own pack: reuse its buffer (a full image
        // listing of a 1 GiB database is 8 MiB).
        if let [(kind, _)] = objects.as_slice() {
            let kind = *kind;
            let bytes = objects.pop().expect("holds because there is one object").1;
            let member = PackMember {
                id: ObjectId::hash(&bytes),
                kind,
                offset: 0,
                len: u32::try_from(bytes.len()).expect("holds because objects are under 4 GiB"),
            };
            return PreparedPack::compress(vec![member], bytes, compressor);
        }
        let mut raw = Vec::with_capacity(objects.iter().map(|(_, bytes)| bytes.len()).sum());
        let mut members = Vec::with_capacity(objects.len());
        for (kind, bytes) in objects {
            members.push(PackMember {
                id: ObjectId::hash(&bytes),
                kind,
                offset: u32::try_from(raw.len()).expect("holds because packs are small"),
                len: u32::try_from(bytes.len()).expect("holds because objects are under 4 GiB"),
            });
            raw.extend_from_slice(&bytes);
        }
        PreparedPack::compress(members, raw, compressor)
    }

    fn compress(
        members: Vec<PackMember>,
        raw: Vec<u8>,
        compressor: &mut Compressor,
    ) -> PreparedPack {
        let raw_len = raw.len();
        let level = compressor.level();
        let (compression, dictionary, data) = compressor.compress(raw);
        PreparedPack {
            members,
            raw_len,
            level,
            compression,
            dictionary,
            data,
        }
    }

    /// The objects in the pack.
    pub fn members(&self) -> &[PackMember] {
        &self.members
    }

    /// Bytes the pack takes in the store.
    pub fn stored_len(&self) -> usize {
        self.data.len()
    }
}
