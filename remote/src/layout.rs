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

use migsnap_store::transfer::{EncodedObject, VerifiedObject, VerifyError};
use migsnap_store::{Kind, ObjectId, RefName};

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
/// The zstd level of remote packs: zstd's default, a balance of upload
/// bytes and push time.
const LEVEL: i32 = 3;

const PACK_MAGIC: &[u8; 8] = b"MSNPPACK";
const INDEX_MAGIC: &[u8; 8] = b"MSNPINDX";
const FORMAT: u8 = 1;
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

/// Packs `objects` in order into one pack file, named by `cipher`
/// ([`Cipher::pack_name`]).
pub fn build(objects: &[EncodedObject], cipher: &Cipher) -> BuiltPack {
    let mut raw = Vec::with_capacity(objects.iter().map(|o| o.bytes.len()).sum());
    let mut entries = Vec::with_capacity(objects.len());
    for object in objects {
        entries.push(IndexEntry {
            id: object.id,
            kind: object.kind,
            offset: raw.len() as u64,
            len: u32::try_from(object.bytes.len()).expect("holds because objects are under 4 GiB"),
        });
        raw.extend_from_slice(&object.bytes);
    }
    let mut pack = Vec::with_capacity(raw.len() / 2);
    pack.extend_from_slice(PACK_MAGIC);
    pack.push(FORMAT);
    pack.extend(
        zstd::bulk::compress(&raw, LEVEL).expect("holds because compressing to memory cannot fail"),
    );
    BuiltPack {
        name: cipher.pack_name(&pack),
        index: Index {
            pack_len: pack.len() as u64,
            raw_len: raw.len() as u64,
            entries,
        },
        pack,
    }
}

impl Index {
    /// The index's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INDEX_HEADER + self.entries.len() * INDEX_ENTRY + 32);
        out.extend_from_slice(INDEX_MAGIC);
        out.push(FORMAT);
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
        if &body[..8] != INDEX_MAGIC || body[8] != FORMAT {
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

/// The verified objects of pack `name`, whose file is `bytes` (its name
/// checked already, [`check_name`]): the file must unpack to what `index`
/// lists, and every object must hash to its id ([`VerifiedObject`]).
pub fn unpack(
    name: &ObjectId,
    bytes: &[u8],
    index: &Index,
) -> Result<Vec<VerifiedObject>, LayoutError> {
    let damaged = |reason: String| LayoutError::Pack {
        pack: *name,
        reason,
    };
    if bytes.len() < 9 || &bytes[..8] != PACK_MAGIC || bytes[8] != FORMAT {
        return Err(damaged("not a migsnap pack of format 1".into()));
    }
    let raw_len = usize::try_from(index.raw_len)
        .ok()
        .filter(|len| *len <= migsnap_store::codec::DECODE_LIMIT)
        .ok_or_else(|| damaged(format!("its index claims {} bytes", index.raw_len)))?;
    let raw = zstd::bulk::decompress(&bytes[9..], raw_len)
        .map_err(|e| damaged(format!("it does not decompress: {e}")))?;
    if raw.len() != raw_len {
        return Err(damaged(format!(
            "it unpacks to {} bytes, not {raw_len}",
            raw.len()
        )));
    }
    let mut objects = Vec::with_capacity(index.entries.len());
    for entry in &index.entries {
        let start = entry.offset as usize;
        let encoded = raw[start..start + entry.len as usize].to_vec();
        let object =
            VerifiedObject::new(entry.id, encoded).map_err(|source| LayoutError::Object {
                pack: *name,
                source,
            })?;
        if object.kind() != entry.kind {
            return Err(damaged(format!(
                "its index lists {} as a {}, but it is a {}",
                entry.id,
                entry.kind.name(),
                object.kind().name()
            )));
        }
        objects.push(object);
    }
    Ok(objects)
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
        let built = build(&objects, &Cipher::Plain);
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
        let built = build(&[encoded(b"page")], &Cipher::Plain);
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
        assert_eq!(&built.pack[..9], b"MSNPPACK\x01");
    }

    fn hex_le(value: u64, width: usize) -> String {
        value.to_le_bytes()[..width]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn a_flipped_byte_is_found() {
        let built = build(&[encoded(b"page")], &Cipher::Plain);
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
