//! The typed objects a store holds, and the links between them.
//!
//! Three kinds exist and each is immutable once written:
//! - [`Object::Blob`]: opaque bytes (a database page, an encoded schema);
//! - [`Object::Image`]: how the fixed-size blocks of one byte image are listed,
//!   either in full or as a delta against an earlier image;
//! - [`Object::Snapshot`]: a commit: parents, a schema blob, an optional image,
//!   and who/when/why.
//!
//! The store knows nothing about SQL: a block is just bytes and a schema is just
//! a blob id.

use crate::id::ObjectId;

/// The kind byte that opens every encoded object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Opaque bytes.
    Blob = 1,
    /// A block listing.
    Image = 2,
    /// A commit-like record.
    Snapshot = 3,
}

impl Kind {
    /// The kind for a kind byte, if it is one.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Blob),
            2 => Some(Kind::Image),
            3 => Some(Kind::Snapshot),
            _ => None,
        }
    }

    /// Lowercase name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Image => "image",
            Kind::Snapshot => "snapshot",
        }
    }
}

/// Any object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// Opaque bytes.
    Blob(Vec<u8>),
    /// A block listing.
    Image(Image),
    /// A commit-like record.
    Snapshot(Snapshot),
}

impl Object {
    /// The kind of this object.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Blob(_) => Kind::Blob,
            Object::Image(_) => Kind::Image,
            Object::Snapshot(_) => Kind::Snapshot,
        }
    }
}

/// A byte image cut into blocks of `block_size` bytes, each stored as a blob.
///
/// `digest` is the BLAKE3 hash of the whole image (all blocks concatenated), so
/// a rebuilt image can be verified end to end, independently of the listing.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Image {
    /// Size of every block in bytes.
    pub block_size: u32,
    /// Number of blocks; the image is `block_size * block_count` bytes long.
    pub block_count: u32,
    /// BLAKE3 hash of the whole image.
    pub digest: [u8; 32],
    /// Which blob holds each block.
    pub listing: Listing,
}

impl Image {
    /// Length of the image in bytes.
    pub fn len(&self) -> u64 {
        u64::from(self.block_size) * u64::from(self.block_count)
    }

    /// Whether the image has no blocks.
    pub fn is_empty(&self) -> bool {
        self.block_count == 0
    }
}

/// How an image names its blocks.
///
/// A full listing costs 32 bytes per block (0.8% of a 4 KiB-page database). An
/// incremental snapshot therefore stores a [`Listing::Delta`]: only the blocks
/// that differ from `base`. Chains are bounded (see `depth` and `chain_changes`)
/// so that reading an image never walks far, and a writer rebases to a full
/// listing once the chain would cost more than one.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum Listing {
    /// One blob id per block, in block order.
    Full(Vec<ObjectId>),
    /// The blocks of `base`, truncated or extended to `block_count`, with the
    /// given blocks replaced.
    Delta {
        /// The image this one is relative to.
        base: ObjectId,
        /// Number of deltas between this image and the nearest full listing,
        /// counting this one (so a delta on a full listing has depth 1).
        depth: u32,
        /// Total number of changes along the chain, including these.
        chain_changes: u64,
        /// Replaced or appended blocks, by strictly increasing index.
        changes: Vec<BlockChange>,
    },
}

/// One block of a delta listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct BlockChange {
    /// Zero-based block index.
    pub index: u32,
    /// The blob holding the block.
    pub block: ObjectId,
}

/// A recorded state, linked to the states it came from.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Snapshot {
    /// Earlier snapshots this one follows; the first is the first parent.
    pub parents: Vec<ObjectId>,
    /// A blob describing the structure of the state (for migsnap: the schema).
    pub schema: ObjectId,
    /// The full content, if recorded; `None` for a schema-only snapshot.
    pub image: Option<ObjectId>,
    /// Which tracked database this is a state of.
    pub database: String,
    /// Seconds since the Unix epoch, UTC.
    pub time: i64,
    /// What the person or tool said about this snapshot.
    pub message: String,
    /// Host name of the machine that recorded it.
    pub host: String,
    /// Name and version of the program that recorded it.
    pub tool: String,
    /// What this snapshot added to the store when it was recorded.
    pub added: Added,
    /// Further fields defined by the application, in a stable order, like git's
    /// extra commit headers. Keys may repeat.
    pub headers: Vec<(String, String)>,
}

impl Snapshot {
    /// Values of every header named `key`, in order.
    pub fn header_values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Store growth caused by one snapshot at the time it was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Added {
    /// Objects that were new to the store.
    pub objects: u64,
    /// Their stored (compressed) size in bytes.
    pub bytes: u64,
}

impl bincode::Encode for ObjectId {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        self.as_bytes().encode(encoder)
    }
}

impl<Context> bincode::Decode<Context> for ObjectId {
    fn decode<D: bincode::de::Decoder<Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        Ok(ObjectId::from_bytes(<[u8; 32]>::decode(decoder)?))
    }
}

impl<'de, Context> bincode::BorrowDecode<'de, Context> for ObjectId {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        Ok(ObjectId::from_bytes(<[u8; 32]>::borrow_decode(decoder)?))
    }
}
