//! The keys and bytes of a remote (`docs/format.md`, "Remotes"):
//!
//! - `packs/<hash>.pack`: `MSNPPACK`, format byte `1`, then one zstd frame of
//!   encoded objects back to back (the store's own encoding, see
//!   [`migsnap_store::codec`]); `<hash>` is the BLAKE3 of the whole file, so
//!   a pack is immutable and names itself;
//! - `packs/<hash>.idx`: `MSNPINDX`, format byte `1`, the pack's length and
//!   unpacked length, the number of objects, one entry per object (id,
//!   kind, offset, length) and a BLAKE3 of everything before it;
//! - `refs/<name>`: the 64 hex digits of a snapshot id and a newline;
//! - `forgotten/<id>`: a snapshot whose image retention gave up in the
//!   pushing store (`migsnap forget`), and when: its pages may be partly or
//!   wholly absent, as they are in that store.
//!
//! A pack counts as on the remote only once its index is: an uploader
//! writes the pack first, so an index never names a pack that is not
//! there.

use migsnap_store::compress::{Compression, Compressor, LARGE_BYTES};
use migsnap_store::transfer::{
    self, EncodedObject, PackError, VerifiedObject, VerifiedPack, VerifyError,
};
use migsnap_store::{Kind, ObjectId, PackBatch, PackMember, RefName};

use crate::crypt::Cipher;

/// Where packs and their indexes live.
pub const PACKS: &str = "packs/";
/// Where refs live.
pub const REFS: &str = "refs/";
/// Where the marks of forgotten images live.
pub const FORGOTTEN: &str = "forgotten/";
/// About how many unpacked bytes go in one pack: small enough that an
/// interrupted push loses little and memory stays flat, large enough that
/// zstd without a dictionary compresses pages well.
pub const PACK_TARGET: usize = 8 << 20;
/// About how many unpacked bytes of pages go in one block of a pack: the
/// store keeps a fetched block as one of its pack rows, and reading one page
/// unpacks its whole row. Larger blocks compress a little better (a 1 GiB
/// database's pages at zstd level 3: 2.5% more bytes than 8 MiB blocks),
/// smaller ones are quicker to read one page from.
pub const BLOCK_TARGET: usize = 1 << 20;
/// The zstd level of remote packs: zstd's default, a balance of upload
/// bytes and push time. Below the store's compact level, so a fetched
/// block is a loose pack there.
const LEVEL: i32 = 3;

const PACK_MAGIC: &[u8; 8] = b"MSNPPACK";
const INDEX_MAGIC: &[u8; 8] = b"MSNPINDX";
/// The format byte of packs this version writes; it reads format 1 too.
const FORMAT: u8 = 2;
/// The format byte of indexes.
const INDEX_FORMAT: u8 = 1;
/// Bytes before a block's stored bytes: compression, stored length,
/// unpacked length.
const BLOCK_HEADER: usize = 1 + 4 + 4;
/// Bytes before the entries: magic, format, pack length, unpacked length, count.
const INDEX_HEADER: usize = 8 + 1 + 8 + 8 + 4;
/// Bytes per entry: id, kind, offset, length.
const INDEX_ENTRY: usize = 32 + 1 + 8 + 4;

/// Why bytes on a remote cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// An index that is not one.
    #[error("index of pack {pack} is damaged: {reason}")]
    Index {
        /// The pack it indexes.
        pack: ObjectId,
        /// What is wrong.
        reason: String,
    },
    /// A pack whose bytes are not what its name or index says.
    #[error("pack {pack} is damaged: {reason}")]
    Pack {
        /// The pack.
        pack: ObjectId,
        /// What is wrong.
        reason: String,
    },
    /// An object in a pack that is not the object its index names.
    #[error("pack {pack} holds a damaged object")]
    Object {
        /// The pack.
        pack: ObjectId,
        /// Which object, and how.
        #[source]
        source: VerifyError,
    },
    /// A ref whose value is not a snapshot id.
    #[error("remote ref {name} is damaged: {reason}")]
    Ref {
        /// The ref.
        name: RefName,
        /// What is wrong.
        reason: &'static str,
    },
    /// A sealed ref whose plaintext names no ref.
    #[error("remote ref at {key} is damaged: {reason}")]
    SealedRef {
        /// Its key.
        key: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The key of pack `name`.
pub fn pack_key(name: &ObjectId) -> String {
    format!("{PACKS}{name}.pack")
}

/// The key of the index of pack `name`.
pub fn index_key(name: &ObjectId) -> String {
    format!("{PACKS}{name}.idx")
}

/// The pack an index key belongs to, if `key` is one.
pub fn pack_of_index(key: &str) -> Option<ObjectId> {
    key.strip_prefix(PACKS)?.strip_suffix(".idx")?.parse().ok()
}

/// The key of the forgotten mark of snapshot `id`.
pub fn forgotten_key(id: &ObjectId) -> String {
    format!("{FORGOTTEN}{id}")
}

/// The snapshot a forgotten mark's key names, if `key` is one.
pub fn snapshot_of_forgotten(key: &str) -> Option<ObjectId> {
    key.strip_prefix(FORGOTTEN)?.parse().ok()
}

/// The bytes of a forgotten mark: the time (seconds since the Unix epoch)
/// in decimal, and a newline.
pub fn encode_forgotten(time: i64) -> Vec<u8> {
    format!("{time}\n").into_bytes()
}

/// The time a forgotten mark's bytes hold, if they are one.
pub fn decode_forgotten(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes)
        .ok()?
        .strip_suffix('\n')?
        .parse()
        .ok()
}

/// The key of ref `name`.
pub fn ref_key(name: &RefName) -> String {
    format!("{REFS}{name}")
}

/// The bytes of a ref that points to `id`.
pub fn encode_ref(id: &ObjectId) -> Vec<u8> {
    format!("{id}\n").into_bytes()
}

/// The id a ref's bytes hold.
pub fn decode_ref(name: &RefName, bytes: &[u8]) -> Result<ObjectId, LayoutError> {
    let damaged = |reason| LayoutError::Ref {
        name: name.clone(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| damaged("not text"))?;
    let hex = text.strip_suffix('\n').ok_or(damaged("no final newline"))?;
    if hex.len() != 64 {
        return Err(damaged("not 64 hex digits"));
    }
    hex.parse().map_err(|_| damaged("not 64 hex digits"))
}

/// The plaintext of a sealed ref, whose key hides its name: the name, a
/// newline, then the bytes of a plain ref ([`encode_ref`]).
pub fn encode_named_ref(name: &RefName, id: &ObjectId) -> Vec<u8> {
    let mut bytes = format!("{name}\n").into_bytes();
    bytes.extend(encode_ref(id));
    bytes
}

/// The name and id of the plaintext `bytes` of the sealed ref at `key`
/// ([`encode_named_ref`]).
pub fn decode_named_ref(key: &str, bytes: &[u8]) -> Result<(RefName, ObjectId), LayoutError> {
    let unnamed = |reason| LayoutError::SealedRef {
        key: key.to_owned(),
        reason,
    };
    let split = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(unnamed("no name"))?;
    let name = std::str::from_utf8(&bytes[..split])
        .ok()
        .and_then(|name| RefName::new(name).ok())
        .ok_or(unnamed("its name is not a ref name"))?;
    let id = decode_ref(&name, &bytes[split + 1..])?;
    Ok((name, id))
}

/// One object in a pack, as its index lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The object's id.
    pub id: ObjectId,
    /// Its kind.
    pub kind: Kind,
    /// Where its encoded bytes start in the unpacked pack.
    pub offset: u64,
    /// How many they are.
    pub len: u32,
}

/// A pack's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    /// Length of the pack file.
    pub pack_len: u64,
    /// Length of the unpacked objects.
    pub raw_len: u64,
    /// The objects, in pack order.
    pub entries: Vec<IndexEntry>,
}

/// A pack ready to upload.
pub struct BuiltPack {
    /// Its name: the BLAKE3 of `pack`.
    pub name: ObjectId,
    /// The pack file.
    pub pack: Vec<u8>,
    /// Its index.
    pub index: Index,
}

/// Packs `objects` in order into one pack file (format 2), named by
/// `cipher` ([`Cipher::pack_name`]). Runs of blobs go into blocks of about
/// [`BLOCK_TARGET`] unpacked bytes; every other object gets a block of its
/// own, as the store keeps it. The objects are taken: a large last object
/// that does not compress (a full image listing: 32 MiB at 4 GiB) becomes
/// the pack's own buffer, with what comes before it moved in front, so it
/// is not held twice.
pub fn build(mut objects: Vec<EncodedObject>, cipher: &Cipher) -> BuiltPack {
    let mut compressor = Compressor::new(LEVEL, None)
        .expect("holds because a zstd context without a dictionary can always be made");
    let mut pack = Vec::new();
    pack.extend_from_slice(PACK_MAGIC);
    pack.push(FORMAT);
    let mut entries = Vec::with_capacity(objects.len());
    let mut raw_len = 0u64;
    let mut start = 0;
    while start < objects.len() {
        let block = &objects[start..start + block_len(&objects[start..])];
        start += block.len();
        for object in block {
            entries.push(IndexEntry {
                id: object.id,
                kind: object.kind,
                offset: raw_len,
                len: u32::try_from(object.bytes.len())
                    .expect("holds because objects are under 4 GiB"),
            });
            raw_len += object.bytes.len() as u64;
        }
        // A lone object is compressed where it is, not copied into a
        // block first.
        let raw: std::borrow::Cow<'_, [u8]> = match block {
            [one] => std::borrow::Cow::Borrowed(&one.bytes),
            _ => {
                let mut raw = Vec::with_capacity(block.iter().map(|o| o.bytes.len()).sum());
                for object in block {
                    raw.extend_from_slice(&object.bytes);
                }
                std::borrow::Cow::Owned(raw)
            }
        };
        let unpacked = u32::try_from(raw.len()).expect("holds because blocks are under 4 GiB");
        let packed = compressor.shrink(&raw);
        let (compression, stored) = match &packed {
            Some(packed) => (Compression::Zstd, &packed[..]),
            None => (Compression::None, &raw[..]),
        };
        let stored_len = u32::try_from(stored.len())
            .expect("holds because blocks are under 4 GiB")
            .to_le_bytes();
        pack.push(compression as u8);
        pack.extend_from_slice(&stored_len);
        pack.extend_from_slice(&unpacked.to_le_bytes());
        let last_lone_raw = matches!(raw, std::borrow::Cow::Borrowed(_))
            && packed.is_none()
            && start == objects.len();
        if last_lone_raw && stored.len() > LARGE_BYTES {
            drop(raw);
            let mut whole = std::mem::take(&mut objects[start - 1].bytes);
            whole.splice(0..0, pack);
            pack = whole;
        } else {
            if stored.len() > LARGE_BYTES {
                // Grown by exactly this block, not doubled past it.
                pack.reserve_exact(stored.len());
            }
            pack.extend_from_slice(stored);
        }
    }
    BuiltPack {
        name: cipher.pack_name(&pack),
        index: Index {
            pack_len: pack.len() as u64,
            raw_len,
            entries,
        },
        pack,
    }
}

/// How many of `objects` (not empty) go into the next block: one object
/// that is not a blob, or the blobs up to one that would take the block
/// past [`BLOCK_TARGET`].
fn block_len(objects: &[EncodedObject]) -> usize {
    let (mut count, mut bytes) = (0, 0);
    for object in objects {
        let full = count > 0 && bytes + object.bytes.len() > BLOCK_TARGET;
        if object.kind != Kind::Blob || full {
            break;
        }
        count += 1;
        bytes += object.bytes.len();
    }
    count.max(1)
}

impl Index {
    /// The index's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INDEX_HEADER + self.entries.len() * INDEX_ENTRY + 32);
        out.extend_from_slice(INDEX_MAGIC);
        out.push(INDEX_FORMAT);
        out.extend_from_slice(&self.pack_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        let count = u32::try_from(self.entries.len()).expect("holds because packs are small");
        out.extend_from_slice(&count.to_le_bytes());
        for entry in &self.entries {
            out.extend_from_slice(entry.id.as_bytes());
            out.push(entry.kind as u8);
            out.extend_from_slice(&entry.offset.to_le_bytes());
            out.extend_from_slice(&entry.len.to_le_bytes());
        }
        let check = ObjectId::hash(&out);
        out.extend_from_slice(check.as_bytes());
        out
    }

    /// Reads the index of pack `pack`, checking its checksum and that its
    /// entries tile the unpacked pack without gaps or overlaps.
    pub fn decode(pack: &ObjectId, bytes: &[u8]) -> Result<Index, LayoutError> {
        let damaged = |reason: &str| LayoutError::Index {
            pack: *pack,
            reason: reason.to_owned(),
        };
        if bytes.len() < INDEX_HEADER + 32 {
            return Err(damaged("too short"));
        }
        let (body, check) = bytes.split_at(bytes.len() - 32);
        if ObjectId::hash(body).as_bytes() != check {
            return Err(damaged("its checksum does not match"));
        }
        if &body[..8] != INDEX_MAGIC || body[8] != INDEX_FORMAT {
            return Err(damaged("not a migsnap index of format 1"));
        }
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        let u32_at = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes"));
        let (pack_len, raw_len, count) = (u64_at(9), u64_at(17), u32_at(25) as usize);
        if body.len() != INDEX_HEADER + count * INDEX_ENTRY {
            return Err(damaged("its length does not match its count"));
        }
        let mut entries = Vec::with_capacity(count);
        let mut next = 0u64;
        for chunk in body[INDEX_HEADER..].chunks_exact(INDEX_ENTRY) {
            let id = ObjectId::try_from_slice(&chunk[..32]).expect("32 bytes");
            let kind = Kind::from_byte(chunk[32]).ok_or_else(|| damaged("an unknown kind"))?;
            let offset = u64::from_le_bytes(chunk[33..41].try_into().expect("8 bytes"));
            let len = u32::from_le_bytes(chunk[41..45].try_into().expect("4 bytes"));
            if offset != next {
                return Err(damaged("its entries do not follow each other"));
            }
            next = offset + u64::from(len);
            entries.push(IndexEntry {
                id,
                kind,
                offset,
                len,
            });
        }
        if next != raw_len {
            return Err(damaged("its entries do not cover the pack"));
        }
        Ok(Index {
            pack_len,
            raw_len,
            entries,
        })
    }
}

/// Checks that the (plaintext) file `bytes` of pack `name` is named by
/// its content as `cipher` names packs.
pub fn check_name(name: &ObjectId, bytes: &[u8], cipher: &Cipher) -> Result<(), LayoutError> {
    let actual = cipher.pack_name(bytes);
    if actual != *name {
        return Err(LayoutError::Pack {
            pack: *name,
            reason: format!("its bytes hash to {actual}"),
        });
    }
    Ok(())
}

/// One block of a pack: stored bytes and the index entries it holds, with
/// offsets into the block's unpacked bytes.
struct Block {
    compression: Compression,
    /// Where its stored bytes are in the pack file.
    stored: std::ops::Range<usize>,
    raw_len: usize,
    members: Vec<PackMember>,
}

/// The blocks of the (plaintext) file `bytes` of pack `name`, each with the
/// entries of `index` it holds: format 2's blocks, or format 1's one frame.
/// Nothing is unpacked yet; the blocks must hold every entry, each whole.
fn blocks(name: &ObjectId, bytes: &[u8], index: &Index) -> Result<Vec<Block>, LayoutError> {
    let damaged = |reason: String| LayoutError::Pack {
        pack: *name,
        reason,
    };
    if bytes.len() < 9 || &bytes[..8] != PACK_MAGIC {
        return Err(damaged("not a migsnap pack".into()));
    }
    let too_large = |len: u64| damaged(format!("it claims a block of {len} bytes"));
    let mut spans = Vec::new();
    match bytes[8] {
        1 => {
            let raw_len = usize::try_from(index.raw_len)
                .ok()
                .filter(|len| *len <= migsnap_store::codec::DECODE_LIMIT)
                .ok_or_else(|| too_large(index.raw_len))?;
            spans.push((Compression::Zstd, 9..bytes.len(), raw_len));
        }
        FORMAT => {
            let mut at = 9;
            while at < bytes.len() {
                let rest = &bytes[at..];
                if rest.len() < BLOCK_HEADER {
                    return Err(damaged("it ends inside a block header".into()));
                }
                let compression = Compression::from_tag(i64::from(rest[0]))
                    .ok_or_else(|| damaged(format!("a block has compression {}", rest[0])))?;
                let u32_at =
                    |at: usize| u32::from_le_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
                let (stored_len, raw_len) = (u32_at(1) as usize, u32_at(5) as usize);
                if raw_len > migsnap_store::codec::DECODE_LIMIT {
                    return Err(too_large(raw_len as u64));
                }
                let stored = at + BLOCK_HEADER..at + BLOCK_HEADER + stored_len;
                if stored.end > bytes.len() {
                    return Err(damaged("it ends inside a block".into()));
                }
                at = stored.end;
                spans.push((compression, stored, raw_len));
            }
        }
        other => return Err(damaged(format!("it has the unknown format {other}"))),
    }
    let mut entries = index.entries.iter().peekable();
    let mut start = 0u64;
    let mut blocks = Vec::with_capacity(spans.len());
    for (compression, stored, raw_len) in spans {
        let end = start + raw_len as u64;
        let mut members = Vec::new();
        while let Some(entry) = entries.next_if(|entry| entry.offset < end) {
            if entry.offset + u64::from(entry.len) > end {
                return Err(damaged(format!("object {} straddles two blocks", entry.id)));
            }
            members.push(PackMember {
                id: entry.id,
                kind: entry.kind,
                offset: u32::try_from(entry.offset - start)
                    .expect("holds because blocks are under 4 GiB"),
                len: entry.len,
            });
        }
        blocks.push(Block {
            compression,
            stored,
            raw_len,
            members,
        });
        start = end;
    }
    if start != index.raw_len || entries.next().is_some() {
        return Err(damaged(format!(
            "its blocks unpack to {start} bytes, its index lists {}",
            index.raw_len
        )));
    }
    Ok(blocks)
}

/// A pack's contents, verified, in the form the store imports cheapest.
pub enum Verified {
    /// Format 2: pack rows the store keeps as they came.
    Packs(Vec<VerifiedPack>),
    /// Format 1: one frame of [`PACK_TARGET`] bytes, too large for a store
    /// to read one page from quickly, so its objects are packed again.
    Objects(Vec<VerifiedObject>),
}

impl Verified {
    /// Imports the contents into `batch`.
    pub fn import(self, batch: &mut PackBatch<'_, '_>) -> Result<(), migsnap_store::Error> {
        match self {
            Verified::Packs(packs) => packs
                .iter()
                .try_for_each(|pack| transfer::import_pack(batch, pack)),
            Verified::Objects(objects) => transfer::import(batch, objects),
        }
    }
}

/// Checks every object of pack `name`, whose file is `bytes` (its name
/// checked already, [`check_name`]), against `index`: the file must unpack
/// to what `index` lists, and every object must hash to its id and be the
/// kind listed ([`VerifiedPack`]).
pub fn verify(name: &ObjectId, bytes: Vec<u8>, index: &Index) -> Result<Verified, LayoutError> {
    verify_visiting(name, bytes, index, &mut |_, _| {})
}

/// As [`verify`], and hands each object's encoded bytes to `each` once
/// they are checked ([`VerifiedPack::visiting`]). Objects of a format 1
/// pack are not handed over.
pub fn verify_visiting(
    name: &ObjectId,
    bytes: Vec<u8>,
    index: &Index,
    each: &mut dyn FnMut(&PackMember, &[u8]),
) -> Result<Verified, LayoutError> {
    if bytes.get(8) == Some(&1) {
        return unpack(name, &bytes, index).map(Verified::Objects);
    }
    let blocks = blocks(name, &bytes, index)?;
    let mut verify = |block: Block, stored: Vec<u8>| {
        VerifiedPack::visiting(
            block.compression,
            stored,
            block.raw_len,
            LEVEL,
            block.members,
            &mut *each,
        )
        .map_err(|e| damaged_object(name, e))
    };
    let packs = if let [_] = blocks.as_slice() {
        // A pack of one block (a snapshot, a listing: 32 MiB at 4 GiB)
        // hands the block its own buffer rather than a copy of it.
        let block = blocks
            .into_iter()
            .next()
            .expect("holds because there is one");
        let mut stored = bytes;
        stored.truncate(block.stored.end);
        stored.drain(..block.stored.start);
        vec![verify(block, stored)?]
    } else {
        blocks
            .into_iter()
            .map(|block| {
                let stored = bytes[block.stored.clone()].to_vec();
                verify(block, stored)
            })
            .collect::<Result<_, _>>()?
    };
    Ok(Verified::Packs(packs))
}

/// The verified objects of pack `name`, whose file is `bytes` (its name
/// checked already, [`check_name`]), checked as [`verify`] checks them.
pub fn unpack(
    name: &ObjectId,
    bytes: &[u8],
    index: &Index,
) -> Result<Vec<VerifiedObject>, LayoutError> {
    let mut objects = Vec::with_capacity(index.entries.len());
    for block in blocks(name, bytes, index)? {
        objects.extend(
            transfer::unpack_objects(
                block.compression,
                &bytes[block.stored.clone()],
                block.raw_len,
                &block.members,
            )
            .map_err(|e| damaged_object(name, e))?,
        );
    }
    Ok(objects)
}

/// A pack whose object, or whose block, is not what its index says.
fn damaged_object(pack: &ObjectId, error: PackError) -> LayoutError {
    match error {
        PackError::Object(source) => LayoutError::Object {
            pack: *pack,
            source,
        },
        other => LayoutError::Pack {
            pack: *pack,
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use migsnap_store::Object;
    use migsnap_store::codec::encode_object;

    fn encoded(bytes: &[u8]) -> EncodedObject {
        let bytes = encode_object(&Object::Blob(bytes.to_vec()));
        EncodedObject {
            id: ObjectId::hash(&bytes),
            kind: Kind::Blob,
            bytes,
        }
    }

    #[test]
    fn a_pack_round_trips_through_its_index() {
        let objects = [encoded(b"one"), encoded(b"two")];
        let built = build(objects.to_vec(), &Cipher::Plain);
        let index = Index::decode(&built.name, &built.index.encode()).unwrap();
        assert_eq!(index, built.index);
        check_name(&built.name, &built.pack, &Cipher::Plain).unwrap();
        let unpacked = unpack(&built.name, &built.pack, &index).unwrap();
        let ids: Vec<ObjectId> = unpacked.iter().map(VerifiedObject::id).collect();
        assert_eq!(ids, [objects[0].id, objects[1].id]);
        assert_eq!(pack_of_index(&index_key(&built.name)), Some(built.name));
    }

    /// Pins the index bytes of `docs/format.md` ("Remotes"): a one-blob pack.
    #[test]
    fn index_golden_bytes() {
        let built = build(vec![encoded(b"page")], &Cipher::Plain);
        let bytes = built.index.encode();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let id = built.index.entries[0].id;
        let expected_head = format!(
            "4d534e50494e4458{format:02x}{pack_len}{raw_len}{count}{id}{kind}{offset}{len}",
            format = 1,
            pack_len = hex_le(built.pack.len() as u64, 8),
            raw_len = hex_le(6, 8),
            count = hex_le(1, 4),
            kind = "01",
            offset = hex_le(0, 8),
            len = hex_le(6, 4),
        );
        assert_eq!(&hex[..expected_head.len()], expected_head);
        assert_eq!(bytes.len(), INDEX_HEADER + INDEX_ENTRY + 32);
    }

    /// Pins the pack bytes of `docs/format.md` ("Remotes"): a one-blob pack
    /// is one block, stored as is because zstd does not shrink it.
    #[test]
    fn pack_golden_bytes() {
        let page = encoded(b"page");
        let built = build(vec![page.clone()], &Cipher::Plain);
        let mut expected = b"MSNPPACK\x02\x00\x06\x00\x00\x00\x06\x00\x00\x00".to_vec();
        expected.extend_from_slice(&page.bytes);
        assert_eq!(built.pack, expected);
        assert_eq!(page.bytes, b"\x01\x01page");
    }

    /// A large object that does not compress, last in its pack, becomes
    /// the pack's buffer: the bytes are those of any other block, and the
    /// pack reads back.
    #[test]
    fn a_large_last_object_is_packed_in_its_own_buffer() {
        // Bytes zstd cannot shrink, as a listing of page ids is.
        let mut noise = Vec::with_capacity(LARGE_BYTES + 4096);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        while noise.len() < LARGE_BYTES + 4096 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            noise.extend_from_slice(&state.to_le_bytes());
        }
        let (small, large) = (encoded(b"snapshot"), encoded(&noise));
        let built = build(vec![small.clone(), large.clone()], &Cipher::Plain);
        let mut expected = b"MSNPPACK\x02".to_vec();
        for object in [&small, &large] {
            let len = (object.bytes.len() as u32).to_le_bytes();
            expected.push(Compression::None as u8);
            expected.extend_from_slice(&len);
            expected.extend_from_slice(&len);
            expected.extend_from_slice(&object.bytes);
        }
        assert!(built.pack == expected, "the pack's bytes");
        let unpacked = unpack(&built.name, &built.pack, &built.index).unwrap();
        let ids: Vec<ObjectId> = unpacked.iter().map(VerifiedObject::id).collect();
        assert_eq!(ids, [small.id, large.id]);
    }

    /// Packs of format 1 (one zstd frame, as the first remotes were
    /// written) still read; their objects are packed again on import.
    #[test]
    fn a_format_1_pack_still_reads() {
        let objects = [encoded(b"one"), encoded(b"two")];
        let index = build(objects.to_vec(), &Cipher::Plain).index;
        let raw: Vec<u8> = objects.iter().flat_map(|o| o.bytes.clone()).collect();
        let mut pack = b"MSNPPACK\x01".to_vec();
        pack.extend(zstd::bulk::compress(&raw, 3).unwrap());
        let name = Cipher::Plain.pack_name(&pack);
        let ids: Vec<ObjectId> = unpack(&name, &pack, &index)
            .unwrap()
            .iter()
            .map(VerifiedObject::id)
            .collect();
        assert_eq!(ids, [objects[0].id, objects[1].id]);
        assert!(
            matches!(verify(&name, pack.clone(), &index), Ok(Verified::Objects(o)) if o.len() == 2)
        );
    }

    /// Pages share blocks up to the target; every other object has one of
    /// its own; every block arrives as a pack row the store can keep.
    #[test]
    fn blocks_split_pages_by_size_and_keep_other_objects_alone() {
        let page = |n: u8| encoded(&vec![n; 300 << 10]);
        let schema = encode_object(&Object::Blob(b"schema".to_vec()));
        let snapshot_bytes = encode_object(&Object::Image(migsnap_store::Image {
            block_size: 4096,
            block_count: 0,
            digest: [0; 32],
            listing: migsnap_store::Listing::Full(Vec::new()),
        }));
        let image = EncodedObject {
            id: ObjectId::hash(&snapshot_bytes),
            kind: Kind::Image,
            bytes: snapshot_bytes,
        };
        let objects = [
            page(1),
            page(2),
            page(3),
            page(4),
            image,
            page(5),
            EncodedObject {
                id: ObjectId::hash(&schema),
                kind: Kind::Blob,
                bytes: schema,
            },
        ];
        let built = build(objects.to_vec(), &Cipher::Plain);
        let Verified::Packs(packs) = verify(&built.name, built.pack.clone(), &built.index).unwrap()
        else {
            panic!("a format 2 pack verifies as pack rows");
        };
        let sizes: Vec<usize> = packs.iter().map(|p| p.members().len()).collect();
        assert_eq!(sizes, [3, 1, 1, 2]);
        let ids: Vec<ObjectId> = packs
            .iter()
            .flat_map(|p| p.members().iter().map(|m| m.id))
            .collect();
        assert_eq!(ids, objects.iter().map(|o| o.id).collect::<Vec<_>>());
    }

    #[test]
    fn an_object_across_two_blocks_is_damage() {
        let objects = [encoded(&vec![1; 600 << 10]), encoded(&vec![2; 600 << 10])];
        let built = build(objects.to_vec(), &Cipher::Plain);
        let mut index = built.index.clone();
        // Shift the boundary between the two objects into the second block.
        index.entries[0].len += 1;
        index.entries[1].offset += 1;
        index.entries[1].len -= 1;
        assert!(matches!(
            verify(&built.name, built.pack.clone(), &index),
            Err(LayoutError::Pack { reason, .. }) if reason.contains("straddles")
        ));
    }

    fn hex_le(value: u64, width: usize) -> String {
        value.to_le_bytes()[..width]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn a_flipped_byte_is_found() {
        let built = build(vec![encoded(b"page")], &Cipher::Plain);
        let mut pack = built.pack.clone();
        let last = pack.len() - 1;
        pack[last] ^= 1;
        assert!(matches!(
            check_name(&built.name, &pack, &Cipher::Plain),
            Err(LayoutError::Pack { .. })
        ));
        let mut index = built.index.encode();
        index[12] ^= 1;
        assert!(matches!(
            Index::decode(&built.name, &index),
            Err(LayoutError::Index { .. })
        ));
    }

    #[test]
    fn forgotten_marks_name_a_snapshot_and_hold_a_time() {
        let id = ObjectId::hash(b"snapshot");
        assert_eq!(snapshot_of_forgotten(&forgotten_key(&id)), Some(id));
        assert_eq!(
            decode_forgotten(&encode_forgotten(1_700_000_000)),
            Some(1_700_000_000)
        );
        assert_eq!(decode_forgotten(b"soon"), None);
    }

    #[test]
    fn refs_are_hex_and_a_newline() {
        let name = RefName::new("heads/app").unwrap();
        let id = ObjectId::hash(b"x");
        assert_eq!(decode_ref(&name, &encode_ref(&id)).unwrap(), id);
        assert!(decode_ref(&name, format!("{id}").as_bytes()).is_err());
        let named = encode_named_ref(&name, &id);
        assert_eq!(decode_named_ref("k", &named).unwrap(), (name, id));
        assert!(decode_named_ref("k", b"heads/app").is_err());
    }
}
