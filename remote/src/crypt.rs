//! Client-side encryption of a remote (`docs/format.md`, "Encrypted
//! remotes"; the threat model is in `docs/design.md`).
//!
//! A remote is either plain ([`Cipher::Plain`]: the format of phase 1,
//! unchanged) or sealed with a 32-byte key that never leaves the machine
//! ([`Cipher::Sealed`]). Sealed, every object written (packs, indexes,
//! refs, forgotten marks) is `nonce ‖ XChaCha20-Poly1305(plaintext)` with a
//! random 24-byte nonce and the object's key on the remote as associated
//! data, so an object moved to another key does not open. Names are keyed
//! BLAKE3 hashes, so they reveal neither content hashes nor ref names.
//!
//! Invariants:
//! - the encryption key, the naming key and the key check value are derived
//!   from the key file's key with distinct [`blake3::derive_key`] contexts;
//!   the key itself is used for nothing else;
//! - a sealed remote has a `config` object, written once with a conditional
//!   create, whose key check value refuses a wrong key before anything is
//!   read or written; a plain remote never has one.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use migsnap_store::ObjectId;

/// The key of a remote's encryption marker, at the top of its prefix.
pub const CONFIG: &str = "config";
/// Bytes a sealed object adds to its plaintext: the nonce and the tag.
pub const OVERHEAD: u64 = (NONCE + TAG) as u64;

const NONCE: usize = 24;
const TAG: usize = 16;
const CONFIG_MAGIC: &[u8; 8] = b"MSNPCRYP";
const CONFIG_FORMAT: u8 = 1;
/// The one scheme so far: XChaCha20-Poly1305, names by keyed BLAKE3.
const SCHEME: u8 = 1;
const CONTEXT_ENCRYPT: &str = "migsnap 2026-12 remote object encryption v1";
const CONTEXT_NAMES: &str = "migsnap 2026-12 remote object names v1";
const CONTEXT_CHECK: &str = "migsnap 2026-12 remote key check v1";

/// Why a key or a sealed remote cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    /// The key file could not be read or written.
    #[error("cannot {operation} key file {path}")]
    KeyFile {
        /// What was being done.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold a key.
    #[error("key file {path} does not hold a migsnap key (64 hex digits)")]
    NotAKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is not the remote's.
    #[error("the key in {path} is not the key of remote {remote}")]
    WrongKey {
        /// The remote.
        remote: String,
        /// The key file.
        path: PathBuf,
    },
    /// The remote is encrypted and no key was given.
    #[error("remote {remote} is encrypted and no key file is configured for it")]
    NeedsKey {
        /// The remote.
        remote: String,
    },
    /// A key was given, but the remote holds unencrypted data.
    #[error("remote {remote} is not encrypted, but a key file is configured for it")]
    NotEncrypted {
        /// The remote.
        remote: String,
    },
    /// The remote's `config` object is not one this version reads.
    #[error("remote {remote} has a config object this migsnap cannot read: {reason}")]
    Config {
        /// The remote.
        remote: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A sealed object does not open: damaged, moved, or forged.
    #[error("{key} on the remote does not decrypt: damaged, moved or not written with this key")]
    Open {
        /// The object's key.
        key: String,
    },
}

/// A remote's 32-byte key, as kept in its key file.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// Creates a random key in a new file at `path` (`O_EXCL`, mode 0600,
    /// synced), creating its directory (mode 0700) if needed.
    pub fn create(path: &Path) -> Result<Key, CryptError> {
        let failed = |operation, source| CryptError::KeyFile {
            operation,
            path: path.to_path_buf(),
            source,
        };
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| failed("generate", std::io::Error::other(e.to_string())))?;
        let key = Key(key);
        key.write(path).map_err(|e| failed("create", e))?;
        Ok(key)
    }

    /// Writes the key into a new file at `path` (see [`Key::create`]).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(format!("{}\n", ObjectId::from_bytes(self.0)).as_bytes())?;
        file.sync_all()
    }

    /// Reads the key in the file at `path`: 64 hex digits, surrounding
    /// white space allowed.
    pub fn load(path: &Path) -> Result<Key, CryptError> {
        let text = std::fs::read_to_string(path).map_err(|source| CryptError::KeyFile {
            operation: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let hex = text.trim();
        match hex.parse::<ObjectId>() {
            Ok(id) if hex.len() == 64 => Ok(Key(*id.as_bytes())),
            _ => Err(CryptError::NotAKey {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The key check value the remote's `config` object holds.
    fn check(&self) -> [u8; 32] {
        blake3::derive_key(CONTEXT_CHECK, &self.0)
    }
}

/// The subkeys of a sealed remote.
#[derive(Clone)]
pub struct Keys {
    encrypt: XChaCha20Poly1305,
    names: [u8; 32],
}

/// How objects are written to and read from one remote.
#[derive(Clone)]
pub enum Cipher {
    /// As they are: content-addressed names, plaintext bytes.
    Plain,
    /// Sealed with a key: keyed names, authenticated encryption.
    Sealed(Box<Keys>),
}

impl Cipher {
    /// The cipher of a remote sealed with `key`.
    pub fn sealed(key: &Key) -> Cipher {
        let encrypt = blake3::derive_key(CONTEXT_ENCRYPT, &key.0);
        Cipher::Sealed(Box::new(Keys {
            encrypt: XChaCha20Poly1305::new(&encrypt.into()),
            names: blake3::derive_key(CONTEXT_NAMES, &key.0),
        }))
    }

    /// Whether objects are sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self, Cipher::Sealed(_))
    }

    /// The name of the pack whose (plaintext) file is `pack`: its BLAKE3
    /// when plain, a keyed BLAKE3 when sealed. Either way the same objects
    /// in the same order get the same name, so a re-sent pack lands on the
    /// same key.
    pub fn pack_name(&self, pack: &[u8]) -> ObjectId {
        match self {
            Cipher::Plain => ObjectId::hash(pack),
            Cipher::Sealed(keys) => keys.name(b"pack", pack),
        }
    }

    /// The name under which a sealed remote keeps `what` of domain
    /// `domain` (`b"ref"` and a ref name, `b"forgotten"` and a snapshot
    /// id): a keyed hash, so the name says nothing of what it names.
    /// `None` when plain: the name is the thing itself.
    pub fn hidden_name(&self, domain: &[u8], what: &[u8]) -> Option<ObjectId> {
        match self {
            Cipher::Plain => None,
            Cipher::Sealed(keys) => Some(keys.name(domain, what)),
        }
    }

    /// The bytes stored for `plaintext` at `key`.
    pub fn seal(&self, key: &str, plaintext: Vec<u8>) -> Vec<u8> {
        let Cipher::Sealed(keys) = self else {
            return plaintext;
        };
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).expect("holds because the OS has a random source");
        let sealed = keys
            .encrypt
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: key.as_bytes(),
                },
            )
            .expect("holds because encrypting to memory cannot fail");
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend(sealed);
        out
    }

    /// The plaintext of the bytes `stored` at `key`: authenticated, so
    /// damaged, moved or forged bytes are [`CryptError::Open`].
    pub fn open(&self, key: &str, stored: Vec<u8>) -> Result<Vec<u8>, CryptError> {
        let Cipher::Sealed(keys) = self else {
            return Ok(stored);
        };
        let failed = || CryptError::Open {
            key: key.to_owned(),
        };
        if stored.len() < NONCE + TAG {
            return Err(failed());
        }
        let (nonce, sealed) = stored.split_at(NONCE);
        keys.encrypt
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| failed())
    }

    /// How many bytes the remote stores for `plain` bytes of plaintext.
    pub fn stored_len(&self, plain: u64) -> u64 {
        match self {
            Cipher::Plain => plain,
            Cipher::Sealed(_) => plain + OVERHEAD,
        }
    }
}

impl Keys {
    fn name(&self, domain: &[u8], what: &[u8]) -> ObjectId {
        let mut hasher = blake3::Hasher::new_keyed(&self.names);
        hasher.update(domain);
        hasher.update(b"\0");
        hasher.update(what);
        ObjectId::from_bytes(*hasher.finalize().as_bytes())
    }
}

/// The bytes of the `config` object of a remote sealed with `key`.
pub fn encode_config(key: &Key) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 2 + 32);
    out.extend_from_slice(CONFIG_MAGIC);
    out.push(CONFIG_FORMAT);
    out.push(SCHEME);
    out.extend_from_slice(&key.check());
    out
}

/// Checks `key` against the `config` object `bytes` of remote `remote`.
pub fn check_config(
    remote: &str,
    bytes: &[u8],
    key: &Key,
    key_path: &Path,
) -> Result<(), CryptError> {
    let bad = |reason| CryptError::Config {
        remote: remote.to_owned(),
        reason,
    };
    if bytes.len() != 8 + 2 + 32 || &bytes[..8] != CONFIG_MAGIC {
        return Err(bad("not a migsnap encryption marker"));
    }
    if bytes[8] != CONFIG_FORMAT || bytes[9] != SCHEME {
        return Err(bad(
            "an unknown format or scheme (written by a newer migsnap?)",
        ));
    }
    if bytes[10..] != key.check() {
        return Err(CryptError::WrongKey {
            remote: remote.to_owned(),
            path: key_path.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key([byte; 32])
    }

    #[test]
    fn sealed_objects_open_only_at_their_key_with_their_key() {
        let cipher = Cipher::sealed(&key(1));
        let sealed = cipher.seal("packs/a.pack", b"secret rows".to_vec());
        assert_eq!(sealed.len() as u64, cipher.stored_len(11));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            cipher.open("packs/a.pack", sealed.clone()).unwrap(),
            b"secret rows"
        );
        assert!(cipher.open("packs/b.pack", sealed.clone()).is_err());
        assert!(
            Cipher::sealed(&key(2))
                .open("packs/a.pack", sealed.clone())
                .is_err()
        );
        let mut flipped = sealed;
        flipped[30] ^= 1;
        assert!(cipher.open("packs/a.pack", flipped).is_err());
        // Two seals of the same bytes differ (a fresh nonce each).
        assert_ne!(
            cipher.seal("k", b"x".to_vec()),
            cipher.seal("k", b"x".to_vec())
        );
    }

    #[test]
    fn names_are_keyed_and_plain_names_are_content_hashes() {
        let pack = b"MSNPPACK\x01...";
        assert_eq!(Cipher::Plain.pack_name(pack), ObjectId::hash(pack));
        let one = Cipher::sealed(&key(1));
        assert_ne!(one.pack_name(pack), ObjectId::hash(pack));
        assert_eq!(one.pack_name(pack), one.pack_name(pack));
        assert_ne!(one.pack_name(pack), Cipher::sealed(&key(2)).pack_name(pack));
        assert_ne!(
            one.hidden_name(b"ref", b"x"),
            one.hidden_name(b"forgotten", b"x")
        );
        assert_eq!(Cipher::Plain.hidden_name(b"ref", b"x"), None);
    }

    #[test]
    fn the_config_refuses_a_wrong_key() {
        let config = encode_config(&key(1));
        check_config("r", &config, &key(1), Path::new("k")).unwrap();
        assert!(matches!(
            check_config("r", &config, &key(2), Path::new("k")),
            Err(CryptError::WrongKey { .. })
        ));
        assert!(matches!(
            check_config("r", b"junk", &key(1), Path::new("k")),
            Err(CryptError::Config { .. })
        ));
    }

    #[test]
    fn key_files_round_trip_and_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/origin.key");
        let created = Key::create(&path).unwrap();
        assert_eq!(Key::load(&path).unwrap().0, created.0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(Key::create(&path).is_err(), "never overwrites a key");
        std::fs::write(dir.path().join("bad"), "nope").unwrap();
        assert!(matches!(
            Key::load(&dir.path().join("bad")),
            Err(CryptError::NotAKey { .. })
        ));
    }
}
