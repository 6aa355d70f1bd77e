//! Object ids and hex prefixes.
//!
//! An [`ObjectId`] is the BLAKE3 hash of an object's canonical encoded bytes
//! (see [`crate::codec`]). There is exactly one hash function and no hash
//! agility: the id *is* the 32 bytes.

use std::fmt;
use std::str::FromStr;

/// The 32-byte BLAKE3 name of an object. Ids order as their bytes do.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId([u8; 32]);

/// Byte order, decided by the first eight bytes read as one big-endian
/// integer whenever they differ: ids are uniform, so they almost always
/// do, and that comparison is inlined where comparing the arrays is a
/// call to `memcmp`. Sorting and searching ids (a history's id set, a
/// clone's history check) spent a tenth of a second of a 1 GiB clone in
/// `memcmp`.
impl Ord for ObjectId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.head()
            .cmp(&other.head())
            .then_with(|| self.0[8..].cmp(&other.0[8..]))
    }
}

impl PartialOrd for ObjectId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl ObjectId {
    /// The first eight bytes as one big-endian integer: where the id falls
    /// in the order, as a share of `u64::MAX` (ids are uniform).
    pub fn head(&self) -> u64 {
        u64::from_be_bytes(
            *self
                .0
                .first_chunk()
                .expect("holds because ids are 32 bytes"),
        )
    }

    /// Length of an id in bytes.
    pub const LEN: usize = 32;

    /// Names `bytes` by hashing them.
    pub fn hash(bytes: &[u8]) -> Self {
        ObjectId(*blake3::hash(bytes).as_bytes())
    }

    /// Appends the id of each of `objects` to `out`, in order: what
    /// [`ObjectId::hash`] gives each, faster for many objects of one length
    /// (pages), which are hashed side by side.
    pub fn hash_each(objects: &[&[u8]], out: &mut Vec<ObjectId>) {
        crate::hash_lanes::hash_each(objects, out);
    }

    /// Wraps raw id bytes, as read from the store or decoded from an object.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        ObjectId(bytes)
    }

    /// The raw id bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps a slice that must be exactly [`ObjectId::LEN`] bytes long.
    pub fn try_from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(ObjectId)
    }
}

/// Serialises as the full lowercase hex id, the form every JSON output uses.
impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for ObjectId {
    /// Lowercase hex; honours precision so `{:.12}` prints a short id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&blake3::Hash::from_bytes(self.0).to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// The digits of a [`Prefix`], one per nibble.
const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why a string is not an object id or prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseIdError {
    /// The string has a character outside `0-9a-f`.
    #[error("'{input}' is not hexadecimal")]
    NotHex {
        /// The rejected input.
        input: String,
    },
    /// The string has the wrong number of hex digits.
    #[error("'{input}' has {len} hex digits; {expected}")]
    BadLength {
        /// The rejected input.
        input: String,
        /// How many digits it had.
        len: usize,
        /// What was expected, in words.
        expected: &'static str,
    },
}

fn parse_nibbles(input: &str) -> Result<Vec<u8>, ParseIdError> {
    input
        .bytes()
        .map(nibble)
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| ParseIdError::NotHex {
            input: input.to_owned(),
        })
}

impl FromStr for ObjectId {
    type Err = ParseIdError;

    /// Parses exactly 64 hex digits.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        // Not-hex is reported before a wrong length, as for a prefix.
        let len = parse_nibbles(input)?.len();
        if len != 64 {
            return Err(ParseIdError::BadLength {
                input: input.to_owned(),
                len,
                expected: "an object id has 64",
            });
        }
        let hash = blake3::Hash::from_hex(input).expect("holds: 64 hex digits");
        Ok(ObjectId(*hash.as_bytes()))
    }
}

/// A hex prefix of an object id, at least [`Prefix::MIN_LEN`] digits long,
/// used to name objects the short way, as git does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix {
    nibbles: Vec<u8>,
}

impl Prefix {
    /// The shortest prefix accepted: shorter ones are too often ambiguous.
    pub const MIN_LEN: usize = 4;

    /// The smallest id that starts with this prefix.
    pub fn lower_bound(&self) -> ObjectId {
        self.bound(0)
    }

    /// The largest id that starts with this prefix.
    pub fn upper_bound(&self) -> ObjectId {
        self.bound(0xf)
    }

    fn bound(&self, fill: u8) -> ObjectId {
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let hi = self.nibbles.get(2 * i).copied().unwrap_or(fill);
            let lo = self.nibbles.get(2 * i + 1).copied().unwrap_or(fill);
            *byte = (hi << 4) | lo;
        }
        ObjectId(bytes)
    }

    /// Whether `id` starts with this prefix.
    pub fn matches(&self, id: &ObjectId) -> bool {
        self.lower_bound() <= *id && *id <= self.upper_bound()
    }

    /// Number of hex digits.
    pub fn len(&self) -> usize {
        self.nibbles.len()
    }

    /// Always false: a prefix has at least [`Prefix::MIN_LEN`] digits.
    pub fn is_empty(&self) -> bool {
        self.nibbles.is_empty()
    }
}

impl FromStr for Prefix {
    type Err = ParseIdError;

    /// Parses 4 to 64 hex digits.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let nibbles = parse_nibbles(input)?;
        if !(Self::MIN_LEN..=64).contains(&nibbles.len()) {
            return Err(ParseIdError::BadLength {
                input: input.to_owned(),
                len: nibbles.len(),
                expected: "a prefix needs 4 to 64",
            });
        }
        Ok(Prefix { nibbles })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self
            .nibbles
            .iter()
            .map(|n| char::from(HEX[usize::from(*n)]))
            .collect();
        f.pad(&hex)
    }
}

/// What a prefix names in a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrefixResolution {
    /// No object starts with the prefix.
    None,
    /// Exactly one object does.
    One(ObjectId),
    /// Several do; the candidates are listed so an error can show them.
    Ambiguous(Vec<ObjectId>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids order as their bytes do, whichever byte first differs.
    #[test]
    fn ids_order_as_their_bytes() {
        let mut ids: Vec<ObjectId> = (0..32u8)
            .flat_map(|at| {
                [0u8, 1, 0x7f, 0x80, 0xff].map(|value| {
                    let mut bytes = [0x40; 32];
                    bytes[usize::from(at)] = value;
                    ObjectId(bytes)
                })
            })
            .chain((0..200u32).map(|i| ObjectId::hash(&i.to_le_bytes())))
            .collect();
        let mut by_bytes = ids.clone();
        by_bytes.sort_unstable_by_key(|id| id.0);
        ids.sort_unstable();
        assert_eq!(ids, by_bytes);
        for pair in ids.windows(2) {
            assert_eq!(pair[0].cmp(&pair[1]), pair[0].0.cmp(&pair[1].0));
            assert_eq!(pair[1].cmp(&pair[0]), pair[1].0.cmp(&pair[0].0));
        }
    }

    #[test]
    fn display_is_lowercase_hex_and_honours_precision() {
        let id = ObjectId::hash(b"");
        // BLAKE3 of the empty input, from the BLAKE3 test vectors.
        let full = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
        assert_eq!(id.to_string(), full);
        assert_eq!(format!("{id:.12}"), &full[..12]);
        assert_eq!(full.parse::<ObjectId>().unwrap(), id);
        assert_eq!(full.to_uppercase().parse::<ObjectId>().unwrap(), id);
    }

    #[test]
    fn parse_rejects_bad_ids() {
        assert!(matches!(
            "xyz".parse::<ObjectId>(),
            Err(ParseIdError::NotHex { .. })
        ));
        assert!(matches!(
            "abcd".parse::<ObjectId>(),
            Err(ParseIdError::BadLength { len: 4, .. })
        ));
        assert!(matches!(
            "abc".parse::<Prefix>(),
            Err(ParseIdError::BadLength { len: 3, .. })
        ));
    }

    #[test]
    fn prefix_bounds_cover_odd_lengths() {
        let prefix: Prefix = "abcde".parse().unwrap();
        assert_eq!(
            prefix.lower_bound().to_string(),
            format!("abcde{}", "0".repeat(59))
        );
        assert_eq!(
            prefix.upper_bound().to_string(),
            format!("abcde{}", "f".repeat(59))
        );
        let id: ObjectId = format!("abcde7{}", "1".repeat(58)).parse().unwrap();
        assert!(prefix.matches(&id));
        let other: ObjectId = format!("abcdf0{}", "0".repeat(58)).parse().unwrap();
        assert!(!prefix.matches(&other));
    }
}
