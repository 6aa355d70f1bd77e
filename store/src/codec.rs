//! The one place that turns values into bytes and back.
//!
//! Every encoded object is `[kind byte][format version byte][body]`, and its id
//! is the BLAKE3 hash of exactly those bytes, so the kind and version are
//! covered by the hash (domain separation: a blob can never collide with a
//! snapshot that has the same body bytes).
//!
//! - A blob's body is its raw bytes.
//! - Any other body is bincode 2 with [`config`]: little-endian, variable-length
//!   integers, and a decode limit so hostile input cannot allocate without bound.
//!
//! These bytes are the on-disk format. They are pinned by the golden tests at
//! the bottom of this file and documented in `docs/format.md`; changing them
//! means a new format version.

use crate::id::ObjectId;
use crate::object::{Image, Kind, Listing, Object};

/// The object format version this code writes and the newest it reads.
pub const FORMAT_VERSION: u8 = 1;

/// The largest body [`decode`] accepts, in bytes.
pub const DECODE_LIMIT: usize = 256 << 20;

/// The fixed bincode configuration of the on-disk format.
pub fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
        .with_limit::<DECODE_LIMIT>()
}

/// Why bytes are not a valid encoded value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than the two header bytes.
    #[error("object is shorter than its 2-byte header")]
    Truncated,
    /// The kind byte is not a known kind.
    #[error("unknown object kind byte {0}")]
    UnknownKind(u8),
    /// Written by a newer format version than this program reads.
    #[error(
        "object format version {found} is newer than this migsnap reads ({supported}); upgrade migsnap"
    )]
    NewerVersion {
        /// The version byte found.
        found: u8,
        /// The newest version this build reads.
        supported: u8,
    },
    /// The body does not decode.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// bincode's description of the problem.
        reason: String,
    },
    /// The body decodes but leaves bytes over, so it is not canonical.
    #[error("{what} has {extra} trailing bytes")]
    TrailingBytes {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
}

/// Encodes a value with the on-disk bincode configuration.
pub fn encode<T: bincode::Encode>(value: &T) -> Vec<u8> {
    bincode::encode_to_vec(value, config())
        .expect("holds because encoding into a Vec cannot fail for derived types")
}

/// Decodes a value that must use every byte of `bytes`, in their one
/// canonical form. bincode accepts longer-than-needed varints, so a value
/// is re-encoded and compared: otherwise one object could be stored under
/// two ids (found by the `decode_object` fuzz target).
pub fn decode<T: bincode::Decode<()> + bincode::Encode>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    let (value, used) =
        bincode::decode_from_slice(bytes, config()).map_err(|e| DecodeError::Malformed {
            what,
            reason: e.to_string(),
        })?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            what,
            extra: bytes.len() - used,
        });
    }
    if !encodes_to(&value, bytes) {
        return Err(DecodeError::Malformed {
            what,
            reason: "not in canonical form (an integer is longer than it needs to be)".into(),
        });
    }
    Ok(value)
}

/// Whether `value` encodes to exactly `bytes`. Compared as it is encoded,
/// never built: a full page listing is 32 MiB at 4 GiB, and reading one
/// already holds its bytes and its decoded value.
fn encodes_to<T: bincode::Encode>(value: &T, bytes: &[u8]) -> bool {
    /// Checks each written piece against what is left of the expected bytes.
    struct Compare<'a>(&'a [u8]);
    impl std::io::Write for Compare<'_> {
        fn write(&mut self, piece: &[u8]) -> std::io::Result<usize> {
            match self.0.strip_prefix(piece) {
                Some(rest) => {
                    self.0 = rest;
                    Ok(piece.len())
                }
                // Stops the encoding at the first difference.
                None => Err(std::io::ErrorKind::InvalidData.into()),
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut compare = Compare(bytes);
    bincode::encode_into_std_write(value, &mut compare, config()).is_ok() && compare.0.is_empty()
}

/// Encodes an object into its canonical bytes.
pub fn encode_object(object: &Object) -> Vec<u8> {
    let mut out = vec![object.kind() as u8, FORMAT_VERSION];
    match object {
        Object::Blob(bytes) => out.extend_from_slice(bytes),
        Object::Image(image) => encode_into(image, &mut out),
        Object::Snapshot(snapshot) => encode_into(snapshot, &mut out),
    }
    out
}

/// Appends the encoding of `value` to `out`, in place: a full page listing
/// (32 MiB at 4 GiB) is not built apart and then copied over, and `out`
/// grows once, to the size a first, counting pass measured, instead of
/// doubling its way there (which held up to twice the listing).
fn encode_into<T: bincode::Encode>(value: &T, out: &mut Vec<u8>) {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::encode_into_writer(value, &mut size, config())
        .expect("holds because counting cannot fail and objects are under the limit");
    out.reserve_exact(size.bytes_written);
    bincode::encode_into_std_write(value, out, config())
        .expect("holds because writing into a Vec cannot fail and objects are under the limit");
}

/// Appends the encoding of the blob holding `bytes` to `out`, without
/// building an [`Object`] first (the hot path of a snapshot, once per page).
pub fn encode_blob_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[Kind::Blob as u8, FORMAT_VERSION]);
    out.extend_from_slice(bytes);
}

/// The content of an encoded blob (its bytes after the kind and version
/// header), or `None` when `encoded` is not a blob of this format.
pub fn blob_content(encoded: &[u8]) -> Option<&[u8]> {
    match encoded {
        [kind, version, content @ ..]
            if *kind == Kind::Blob as u8 && *version == FORMAT_VERSION =>
        {
            Some(content)
        }
        _ => None,
    }
}

/// The largest page SQLite writes, and so the largest blob [`blob_id`]
/// hashes through its reused buffer.
const MAX_PAGE: usize = 65536;

thread_local! {
    /// Pages encoded as blobs, to hash: [`blob_id`] and [`blob_ids`] reuse it.
    static ENCODED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The id of the blob holding `bytes`, without allocating.
pub fn blob_id(bytes: &[u8]) -> ObjectId {
    // BLAKE3 hashes the whole 1 KiB chunks of one contiguous input in
    // parallel lanes; fed the two header bytes and then the page, it must
    // hash the first chunk block by block. Copying a page into a reused
    // buffer costs far less than that: a 4 KiB page hashes in half the time.
    // Beyond the largest SQLite page the copy would stop paying, and the
    // buffer would keep that much memory per thread.
    if bytes.len() > MAX_PAGE {
        return unbuffered_blob_id(bytes);
    }
    ENCODED.with_borrow_mut(|encoded| {
        encoded.clear();
        encode_blob_into(bytes, encoded);
        ObjectId::hash(encoded)
    })
}

/// Pages encoded and hashed together by [`blob_ids`]: as many as BLAKE3
/// has lanes, 64 KiB of 4 KiB pages, which stay in the cache between the
/// copy and the hash.
const PAGES_AT_ONCE: usize = 16;

/// Appends the id of the blob holding each of `pages` to `out`, in order:
/// [`blob_id`] of each, faster, as pages of one size are hashed side by
/// side ([`ObjectId::hash_each`]).
pub fn blob_ids<'p>(pages: impl IntoIterator<Item = &'p [u8]>, out: &mut Vec<ObjectId>) {
    let mut pages = pages.into_iter().peekable();
    ENCODED.with_borrow_mut(|encoded| {
        while pages.peek().is_some() {
            encoded.clear();
            let mut ends = [0usize; PAGES_AT_ONCE];
            let mut count = 0;
            while count < PAGES_AT_ONCE {
                let Some(page) = pages.next_if(|page| page.len() <= MAX_PAGE) else {
                    break;
                };
                encode_blob_into(page, encoded);
                ends[count] = encoded.len();
                count += 1;
            }
            let mut objects = [&encoded[..0]; PAGES_AT_ONCE];
            let mut start = 0;
            for (object, &end) in objects.iter_mut().zip(&ends[..count]) {
                *object = &encoded[start..end];
                start = end;
            }
            ObjectId::hash_each(&objects[..count], out);
            if count < PAGES_AT_ONCE {
                out.extend(pages.next().map(unbuffered_blob_id));
            }
        }
    });
}

/// [`blob_id`] without copying `bytes`: for blobs past [`MAX_PAGE`].
fn unbuffered_blob_id(bytes: &[u8]) -> ObjectId {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[Kind::Blob as u8, FORMAT_VERSION]);
    hasher.update(bytes);
    ObjectId::from_bytes(*hasher.finalize().as_bytes())
}

/// Reads the kind from the header of encoded bytes.
pub fn peek_kind(bytes: &[u8]) -> Result<Kind, DecodeError> {
    let (&kind, rest) = bytes.split_first().ok_or(DecodeError::Truncated)?;
    let &version = rest.first().ok_or(DecodeError::Truncated)?;
    let kind = Kind::from_byte(kind).ok_or(DecodeError::UnknownKind(kind))?;
    if version > FORMAT_VERSION {
        return Err(DecodeError::NewerVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    // Format 1 is the first; a smaller number is damage, and accepting it
    // would give one object two encodings.
    if version < FORMAT_VERSION {
        return Err(DecodeError::Malformed {
            what: "object header",
            reason: format!("format version {version} does not exist"),
        });
    }
    Ok(kind)
}

/// Decodes canonical object bytes.
pub fn decode_object(bytes: &[u8]) -> Result<Object, DecodeError> {
    let kind = peek_kind(bytes)?;
    let body = &bytes[2..];
    Ok(match kind {
        Kind::Blob => Object::Blob(body.to_vec()),
        Kind::Image => Object::Image(decode("image", body)?),
        Kind::Snapshot => Object::Snapshot(decode("snapshot", body)?),
    })
}

/// Checks that `bytes` are a canonical object, as [`decode_object`] does,
/// and returns its kind, without building it: a blob's body is opaque, and
/// an image with a full listing is checked by its header, which must be
/// canonical, and the length of its ids (32 bytes each, any value is
/// canonical). Verifying a fetched full listing (32 MiB at 4 GiB) built a
/// second copy of it.
pub fn check_object(bytes: &[u8]) -> Result<Kind, DecodeError> {
    let kind = peek_kind(bytes)?;
    if kind == Kind::Blob {
        return Ok(kind);
    }
    let mut reader = bytes;
    // Near the decoder's limit (a listing of 4 million pages, a 16 GiB
    // database), its own accounting of what it may allocate decides.
    if bytes.len() < DECODE_LIMIT / 2
        && let Some((image, count)) = read_full_listing_header(&mut reader)
        && reader.len() as u64 == count.saturating_mul(32)
        && encode_full_listing_header(&image, count)[2..] == bytes[2..bytes.len() - reader.len()]
    {
        return Ok(kind);
    }
    // Anything else, a full listing that is not what it claims included:
    // the decoder decides, and names the fault.
    decode_object(bytes).map(|object| object.kind())
}

/// Decodes the object `reader` holds, and only it, without holding its
/// bytes: for objects too large to read whole beside their decoded form (a
/// full page listing, 32 MiB at 4 GiB). The object is returned only when
/// its canonical encoding hashes to `id`, which proves both that it is the
/// object asked for and that the stored bytes were canonical. `None` means
/// they were not, for a reason the caller tells from the bytes themselves.
pub fn decode_object_from(reader: &mut impl std::io::Read, id: &ObjectId) -> Option<Object> {
    let mut header = [0u8; 2];
    reader.read_exact(&mut header).ok()?;
    let object = match peek_kind(&header).ok()? {
        Kind::Blob => {
            let mut body = Vec::new();
            reader.read_to_end(&mut body).ok()?;
            Object::Blob(body)
        }
        Kind::Image => Object::Image(bincode::decode_from_std_read(reader, config()).ok()?),
        Kind::Snapshot => Object::Snapshot(bincode::decode_from_std_read(reader, config()).ok()?),
    };
    // Trailing bytes are not part of the object.
    if reader.read(&mut [0u8; 1]).ok()? != 0 {
        return None;
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(&header);
    {
        // bincode writes an id at a time; BLAKE3 is fastest fed in bulk.
        let mut hashing = std::io::BufWriter::with_capacity(STREAM_BUFFER, &mut hasher);
        match &object {
            Object::Blob(body) => std::io::Write::write_all(&mut hashing, body).ok()?,
            Object::Image(image) => encode_into_std_write(image, &mut hashing)?,
            Object::Snapshot(snapshot) => encode_into_std_write(snapshot, &mut hashing)?,
        }
        std::io::Write::flush(&mut hashing).ok()?;
    }
    (ObjectId::from_bytes(*hasher.finalize().as_bytes()) == *id).then_some(object)
}

/// The bytes an image with a full listing of `count` ids encodes to before
/// its first id: what [`encode_object`] writes for it, and
/// [`read_full_listing_header`] reads. The ids follow, 32 bytes each.
pub fn encode_full_listing_header(image: &Image, count: u64) -> Vec<u8> {
    let mut out = vec![Kind::Image as u8, FORMAT_VERSION];
    let fields = (
        image.block_size,
        image.block_count,
        image.digest,
        0u32,
        count,
    );
    encode_into(&fields, &mut out);
    out
}

/// Reads the start of an encoded image whose listing is full, up to its
/// first block id: the image (with an empty listing) and how many ids
/// follow, 32 bytes each, to the end of the object. `None` when `reader`
/// does not start an image of this format with a full listing. What it
/// read is not checked against any id: the caller hashes the whole object.
pub fn read_full_listing_header(reader: &mut impl std::io::Read) -> Option<(Image, u64)> {
    let mut header = [0u8; 2];
    reader.read_exact(&mut header).ok()?;
    if peek_kind(&header).ok()? != Kind::Image {
        return None;
    }
    // An image's fields in order, then its listing's variant (0: full) and
    // the id count: what bincode writes for `Image` up to the ids.
    let (block_size, block_count, digest, variant, count): (u32, u32, [u8; 32], u32, u64) =
        bincode::decode_from_std_read(reader, config()).ok()?;
    (variant == 0).then_some((
        Image {
            block_size,
            block_count,
            digest,
            listing: Listing::Full(Vec::new()),
        },
        count,
    ))
}

/// The buffer between a streamed object and the blob handle or the hasher:
/// bincode reads and writes a few bytes at a time.
pub const STREAM_BUFFER: usize = 64 << 10;

fn encode_into_std_write<T: bincode::Encode>(
    value: &T,
    out: &mut impl std::io::Write,
) -> Option<()> {
    bincode::encode_into_std_write(value, out, config())
        .ok()
        .map(drop)
}

#[cfg(test)]
mod tests {
    //! Golden bytes: if one of these fails, the on-disk format changed.

    use super::*;
    use crate::object::{Added, BlockChange, Image, Listing, Snapshot};

    fn id(byte: u8) -> ObjectId {
        ObjectId::from_bytes([byte; 32])
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn blob_ids_hash_the_encoding_whatever_the_size() {
        for len in [0, 1, 1022, 1023, 4096, MAX_PAGE, MAX_PAGE + 1, 3 * MAX_PAGE] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut encoded = Vec::new();
            encode_blob_into(&bytes, &mut encoded);
            assert_eq!(blob_id(&bytes), ObjectId::hash(&encoded), "{len} bytes");
            assert_eq!(blob_content(&encoded), Some(&bytes[..]), "{len} bytes");
        }
        let image = encode_object(&Object::Image(Image {
            block_size: 4096,
            block_count: 0,
            digest: [0; 32],
            listing: Listing::Full(Vec::new()),
        }));
        assert_eq!(blob_content(&image), None);
        assert_eq!(blob_content(&[Kind::Blob as u8]), None);
    }

    /// Pages hashed together get the ids they get one by one, in order,
    /// whatever their sizes, past one group and past the largest page.
    #[test]
    fn blob_ids_are_each_pages_blob_id() {
        let sizes = [4096, 4096, 0, 512, MAX_PAGE + 1, 1024, 8192, 3 * MAX_PAGE];
        let pages: Vec<Vec<u8>> = (0..41)
            .map(|i| {
                let len = if i < 20 { 4096 } else { sizes[i % sizes.len()] };
                (0..len).map(|b| (b * 7 % 251 + i) as u8).collect()
            })
            .collect();
        let mut ids = Vec::new();
        blob_ids(pages.iter().map(Vec::as_slice), &mut ids);
        let one_by_one: Vec<ObjectId> = pages.iter().map(|page| blob_id(page)).collect();
        assert_eq!(ids, one_by_one);
    }

    #[test]
    fn blob_golden_bytes_and_id() {
        let object = Object::Blob(b"hello".to_vec());
        let bytes = encode_object(&object);
        assert_eq!(hex(&bytes), "010168656c6c6f");
        let mut appended = b"x".to_vec();
        encode_blob_into(b"hello", &mut appended);
        assert_eq!(appended[1..], bytes);
        assert_eq!(ObjectId::hash(&bytes), blob_id(b"hello"));
        assert_eq!(
            blob_id(b"hello").to_string(),
            "2cba7a74c736881490175f5742210913d9c239a69f9ade17d79fcc2f88a6ed6b"
        );
        assert_eq!(decode_object(&bytes).unwrap(), object);
    }

    #[test]
    fn full_image_golden_bytes() {
        let image = Object::Image(Image {
            block_size: 4096,
            block_count: 2,
            digest: [0xdd; 32],
            listing: Listing::Full(vec![id(0xaa), id(0xbb)]),
        });
        let bytes = encode_object(&image);
        let expected = [
            "0201",           // kind image, format 1
            "fb0010",         // block_size 4096 (varint u16 marker 0xfb, LE)
            "02",             // block_count 2
            &"dd".repeat(32), // digest
            "00",             // Listing::Full
            "02",             // two ids
            &"aa".repeat(32),
            &"bb".repeat(32),
        ]
        .concat();
        assert_eq!(hex(&bytes), expected);
        assert_eq!(decode_object(&bytes).unwrap(), image);
        // Read up to its ids, the rest is exactly the ids.
        let mut reader = &bytes[..];
        let (header, count) = read_full_listing_header(&mut reader).unwrap();
        assert_eq!(count, 2);
        assert_eq!((header.block_size, header.block_count), (4096, 2));
        assert_eq!(header.digest, [0xdd; 32]);
        assert_eq!(hex(reader), ["aa".repeat(32), "bb".repeat(32)].concat());
        // And written apart from its ids, it is the same bytes.
        let Object::Image(image) = image else {
            unreachable!()
        };
        let mut streamed = encode_full_listing_header(&image, 2);
        streamed.extend_from_slice(&[0xaa; 32]);
        streamed.extend_from_slice(&[0xbb; 32]);
        assert_eq!(hex(&streamed), expected);
    }

    #[test]
    fn only_a_full_image_has_a_full_listing_header() {
        let delta = encode_object(&Object::Image(Image {
            block_size: 512,
            block_count: 1,
            digest: [0; 32],
            listing: Listing::Delta {
                base: id(0x11),
                depth: 1,
                chain_changes: 0,
                changes: Vec::new(),
            },
        }));
        assert!(read_full_listing_header(&mut &delta[..]).is_none());
        let blob = encode_object(&Object::Blob(vec![0; 64]));
        assert!(read_full_listing_header(&mut &blob[..]).is_none());
        assert!(read_full_listing_header(&mut &[2u8][..]).is_none());
    }

    #[test]
    fn delta_image_golden_bytes() {
        let image = Object::Image(Image {
            block_size: 512,
            block_count: 300,
            digest: [0x01; 32],
            listing: Listing::Delta {
                base: id(0x11),
                depth: 1,
                chain_changes: 1,
                changes: vec![BlockChange {
                    index: 299,
                    block: id(0x22),
                }],
            },
        });
        let bytes = encode_object(&image);
        let expected = [
            "0201",
            "fb0002",         // 512
            "fb2c01",         // 300
            &"01".repeat(32), // digest
            "01",             // Listing::Delta
            &"11".repeat(32), // base
            "01",             // depth
            "01",             // chain_changes
            "01",             // one change
            "fb2b01",         // index 299
            &"22".repeat(32), // block
        ]
        .concat();
        assert_eq!(hex(&bytes), expected);
        assert_eq!(decode_object(&bytes).unwrap(), image);
    }

    /// The snapshot whose bytes `snapshot_golden_bytes_and_id` pins.
    fn golden_snapshot() -> Object {
        Object::Snapshot(Snapshot {
            parents: vec![id(0x01)],
            schema: id(0x02),
            image: None,
            database: "db".into(),
            time: 1_700_000_000,
            message: "m".into(),
            host: "h".into(),
            tool: "t".into(),
            added: Added {
                objects: 3,
                bytes: 300,
            },
            headers: vec![("k".into(), "v".into())],
        })
    }

    #[test]
    fn snapshot_golden_bytes_and_id() {
        let snapshot = golden_snapshot();
        let bytes = encode_object(&snapshot);
        let expected = [
            "0301",
            "01",             // one parent
            &"01".repeat(32), // parent
            &"02".repeat(32), // schema
            "00",             // image: None
            "026462",         // "db"
            "fc00e2a7ca",     // time: zigzag(1_700_000_000) as u32 LE
            "016d",           // "m"
            "0168",           // "h"
            "0174",           // "t"
            "03",             // added.objects
            "fb2c01",         // added.bytes = 300
            "01016b0176",     // headers [("k", "v")]
        ]
        .concat();
        assert_eq!(hex(&bytes), expected);
        assert_eq!(decode_object(&bytes).unwrap(), snapshot);
        assert_eq!(ObjectId::hash(&bytes).to_string(), SNAPSHOT_GOLDEN_ID);
    }

    /// The full image of `full_image_golden_bytes`, and the same with its
    /// block_count 2 written as a three-byte varint (0xfb 0x02 0x00)
    /// instead of 0x02: one value, two encodings.
    fn full_image_and_a_long_varint() -> (Object, Vec<u8>, Vec<u8>) {
        let image = Object::Image(Image {
            block_size: 4096,
            block_count: 2,
            digest: [0xdd; 32],
            listing: Listing::Full(vec![id(0xaa), id(0xbb)]),
        });
        let canonical = encode_object(&image);
        let mut long = canonical[..5].to_vec();
        long.extend([0xfb, 0x02, 0x00]);
        long.extend(&canonical[6..]);
        (image, canonical, long)
    }

    #[test]
    fn non_canonical_varints_are_refused() {
        let (_, canonical, long) = full_image_and_a_long_varint();
        assert!(decode_object(&canonical).is_ok());
        assert!(matches!(
            decode_object(&long),
            Err(DecodeError::Malformed { .. })
        ));
    }

    /// `check_object` accepts exactly what `decode_object` accepts, of
    /// every kind, and a full listing by its header and length alone.
    #[test]
    fn checking_an_object_agrees_with_decoding_it() {
        let (_, full, long) = full_image_and_a_long_varint();
        let mut trailing = full.clone();
        trailing.push(0);
        let delta = encode_object(&Object::Image(Image {
            block_size: 4096,
            block_count: 3,
            digest: [0xdd; 32],
            listing: Listing::Delta {
                base: id(0x11),
                depth: 1,
                chain_changes: 1,
                changes: vec![BlockChange {
                    index: 2,
                    block: id(0xcc),
                }],
            },
        }));
        let snapshot = encode_object(&golden_snapshot());
        let blob = encode_object(&Object::Blob(b"page".to_vec()));
        let mut cases = vec![
            full.clone(),
            long,
            trailing,
            full[..full.len() - 1].to_vec(),
            full[..full.len() - 32].to_vec(),
            delta.clone(),
            delta[..delta.len() - 1].to_vec(),
            snapshot.clone(),
            snapshot[..snapshot.len() - 1].to_vec(),
            blob,
            vec![],
            vec![9, 1],
            vec![Kind::Image as u8, FORMAT_VERSION + 1],
        ];
        // The id count claims one id more, or less, than follow.
        for claim in [3u8, 1] {
            let mut wrong = full.clone();
            let at = full.len() - 64 - 1;
            assert_eq!(wrong[at], 2, "the count is the byte before the ids");
            wrong[at] = claim;
            cases.push(wrong);
        }
        for bytes in &cases {
            assert_eq!(
                check_object(bytes).ok(),
                decode_object(bytes).ok().map(|object| object.kind()),
                "{}",
                hex(bytes)
            );
        }
        assert_eq!(check_object(&full), Ok(Kind::Image));
        assert_eq!(check_object(&snapshot), Ok(Kind::Snapshot));
    }

    proptest::proptest! {
        /// Any byte of an encoded full listing changed, and any cut: the
        /// check and the decoder still agree.
        #[test]
        fn checking_agrees_with_decoding_on_damaged_listings(
            count in 0u8..6,
            at in proptest::prelude::any::<proptest::sample::Index>(),
            value in proptest::prelude::any::<u8>(),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let mut bytes = encode_object(&Object::Image(Image {
                block_size: 4096,
                block_count: u32::from(count),
                digest: [0xdd; 32],
                listing: Listing::Full((0..count).map(id).collect()),
            }));
            let at = at.index(bytes.len());
            bytes[at] = value;
            bytes.truncate(bytes.len() - cut.index(3));
            proptest::prop_assert_eq!(
                check_object(&bytes).ok(),
                decode_object(&bytes).ok().map(|object| object.kind())
            );
        }
    }

    #[test]
    fn streamed_decoding_returns_only_the_object_its_id_names() {
        let (image, canonical, long) = full_image_and_a_long_varint();
        let image_id = ObjectId::hash(&canonical);
        let decode = |bytes: &[u8], id: &ObjectId| decode_object_from(&mut &bytes[..], id);
        assert_eq!(decode(&canonical, &image_id), Some(image));
        // The same value with a three-byte varint: not these bytes' object.
        assert_eq!(decode(&long, &ObjectId::hash(&long)), None);
        // A trailing byte, a cut body, another id.
        let mut trailing = canonical.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing, &image_id), None);
        assert_eq!(decode(&canonical[..canonical.len() - 1], &image_id), None);
        assert_eq!(decode(&canonical, &id(0xaa)), None);
        let blob = encode_object(&Object::Blob(b"page".to_vec()));
        assert_eq!(
            decode(&blob, &ObjectId::hash(&blob)),
            Some(Object::Blob(b"page".to_vec()))
        );
    }

    // Cross-checked with the reference Python `blake3` package.
    const SNAPSHOT_GOLDEN_ID: &str =
        "850165bac566cd98e22d49276c794f1f9ba3cecbd46362e77ca1ead6970628de";

    #[test]
    fn decode_rejects_bad_headers_and_trailing_bytes() {
        assert_eq!(decode_object(&[]), Err(DecodeError::Truncated));
        assert_eq!(decode_object(&[9, 1]), Err(DecodeError::UnknownKind(9)));
        assert_eq!(
            decode_object(&[1, FORMAT_VERSION + 1]),
            Err(DecodeError::NewerVersion {
                found: FORMAT_VERSION + 1,
                supported: FORMAT_VERSION
            })
        );
        let mut bytes = encode_object(&Object::Snapshot(Snapshot {
            parents: vec![],
            schema: id(0),
            image: None,
            database: String::new(),
            time: 0,
            message: String::new(),
            host: String::new(),
            tool: String::new(),
            added: Added::default(),
            headers: vec![],
        }));
        bytes.push(0);
        assert!(matches!(
            decode_object(&bytes),
            Err(DecodeError::TrailingBytes { extra: 1, .. })
        ));
        assert!(matches!(
            decode_object(&bytes[..10]),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
