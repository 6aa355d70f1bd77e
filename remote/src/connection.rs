//! An opened remote: its [`Transport`] and its [`Cipher`], decided once by
//! reading the remote's `config` object against the key configured (or
//! not) for it.
//!
//! Invariants:
//! - a sealed remote is never read or written without its key, a plain one
//!   never with a key, and a wrong key is refused before any other request;
//! - every object goes through [`Connection::put`] / [`Connection::get`],
//!   so it is sealed exactly when the remote is.

use std::path::{Path, PathBuf};

use migsnap_store::{ObjectId, RefName};

use crate::crypt::{self, CONFIG, Cipher, CryptError, Key};
use crate::layout::{self, LayoutError, PACKS, REFS};
use crate::transport::{Transport, TransportError, Version};

/// Why a remote could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The remote could not be read or written.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The key does not fit the remote, or an object does not open.
    #[error(transparent)]
    Crypt(#[from] CryptError),
}

/// A key and the file it came from (named in messages).
#[derive(Clone, Debug)]
pub struct KeyFile {
    /// The key.
    pub key: Key,
    /// Where it is.
    pub path: PathBuf,
}

impl KeyFile {
    /// Reads the key file at `path`.
    pub fn load(path: &Path) -> Result<KeyFile, CryptError> {
        Ok(KeyFile {
            key: Key::load(path)?,
            path: path.to_path_buf(),
        })
    }
}

/// A remote ready to use.
pub struct Connection {
    /// The keys and bytes.
    pub transport: Transport,
    cipher: Cipher,
    /// The key to write a `config` object with, while the remote (sealed,
    /// empty, never pushed to) has none.
    unmarked: Option<KeyFile>,
}

impl Connection {
    /// Opens the remote behind `transport` with `key` (or none): reads its
    /// `config` object and refuses a wrong key, a missing key, or a key
    /// for a remote that holds plain data.
    pub fn open(
        transport: Transport,
        key: Option<&KeyFile>,
    ) -> Result<Connection, ConnectionError> {
        let config = transport.get(CONFIG)?;
        let remote = transport.name().to_owned();
        let (cipher, unmarked) = match (config, key) {
            (Some(_), None) => return Err(CryptError::NeedsKey { remote }.into()),
            (None, None) => (Cipher::Plain, None),
            (Some(config), Some(key)) => {
                crypt::check_config(&remote, &config.bytes, &key.key, &key.path)?;
                (Cipher::sealed(&key.key), None)
            }
            (None, Some(key)) => {
                if !transport.list(REFS)?.is_empty() || !transport.list(PACKS)?.is_empty() {
                    return Err(CryptError::NotEncrypted { remote }.into());
                }
                (Cipher::sealed(&key.key), Some(key.clone()))
            }
        };
        Ok(Connection {
            transport,
            cipher,
            unmarked,
        })
    }

    /// The remote's URL, for messages.
    pub fn name(&self) -> &str {
        self.transport.name()
    }

    /// How objects are sealed.
    pub fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    /// Before the first write to a sealed remote: writes its `config`
    /// object, created only if absent. Another client that created it
    /// meanwhile must have used the same key.
    pub fn mark(&mut self) -> Result<(), ConnectionError> {
        let Some(key) = self.unmarked.take() else {
            return Ok(());
        };
        match self
            .transport
            .put_ref(CONFIG, crypt::encode_config(&key.key), None)
        {
            Ok(()) => Ok(()),
            Err(TransportError::Changed { .. }) => {
                let config = self.transport.get(CONFIG)?.map(|c| c.bytes);
                crypt::check_config(
                    self.transport.name(),
                    config.as_deref().unwrap_or_default(),
                    &key.key,
                    &key.path,
                )?;
                Ok(())
            }
            Err(other) => Err(other.into()),
        }
    }

    /// The plaintext at `key` with its stored version, or `None`.
    pub fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>, ConnectionError> {
        let Some(fetched) = self.transport.get(key)? else {
            return Ok(None);
        };
        let plain = self.cipher.open(key, fetched.bytes)?;
        Ok(Some((plain, fetched.version)))
    }

    /// Writes immutable `plaintext` at `key` (sealed when the remote is) and
    /// returns the bytes stored.
    pub fn put(&self, key: &str, plaintext: Vec<u8>) -> Result<u64, TransportError> {
        let stored = self.cipher.seal(key, plaintext);
        let len = stored.len() as u64;
        self.transport.put(key, stored)?;
        Ok(len)
    }

    /// Writes `plaintext` at `key` conditionally (see
    /// [`Transport::put_ref`]).
    pub fn put_ref(
        &self,
        key: &str,
        plaintext: Vec<u8>,
        expected: Option<&Version>,
    ) -> Result<(), TransportError> {
        self.transport
            .put_ref(key, self.cipher.seal(key, plaintext), expected)
    }

    /// The key of ref `name`: `refs/<name>`, or a keyed name when sealed.
    pub fn ref_key(&self, name: &RefName) -> String {
        match self.cipher.hidden_name(b"ref", name.as_str().as_bytes()) {
            None => layout::ref_key(name),
            Some(hidden) => format!("{REFS}{hidden}"),
        }
    }

    /// The bytes of ref `name` pointing to `id`: a sealed ref also carries
    /// its name, which its key hides.
    pub fn encode_ref(&self, name: &RefName, id: &ObjectId) -> Vec<u8> {
        match self.cipher {
            Cipher::Plain => layout::encode_ref(id),
            Cipher::Sealed(_) => layout::encode_named_ref(name, id),
        }
    }

    /// The ref at `key` whose plaintext is `bytes`, or `None` when `key`
    /// is not a ref's (a file remote's `.lock`).
    pub fn decode_ref(
        &self,
        key: &str,
        bytes: &[u8],
    ) -> Result<Option<(RefName, ObjectId)>, LayoutError> {
        let Some(rest) = key.strip_prefix(REFS) else {
            return Ok(None);
        };
        match self.cipher {
            Cipher::Plain => {
                let Ok(name) = RefName::new(rest) else {
                    return Ok(None);
                };
                let id = layout::decode_ref(&name, bytes)?;
                Ok(Some((name, id)))
            }
            Cipher::Sealed(_) => {
                let (name, id) = layout::decode_named_ref(key, bytes)?;
                if self.ref_key(&name) != key {
                    return Err(LayoutError::Ref {
                        name,
                        reason: "it is stored under another ref's key",
                    });
                }
                Ok(Some((name, id)))
            }
        }
    }

    /// The key of the forgotten mark of snapshot `id`.
    pub fn forgotten_key(&self, id: &ObjectId) -> String {
        match self.cipher.hidden_name(b"forgotten", id.as_bytes()) {
            None => layout::forgotten_key(id),
            Some(hidden) => layout::forgotten_key(&hidden),
        }
    }

    /// The bytes of the forgotten mark of `id`, made at `time`.
    pub fn encode_forgotten(&self, id: &ObjectId, time: i64) -> Vec<u8> {
        match self.cipher {
            Cipher::Plain => layout::encode_forgotten(time),
            Cipher::Sealed(_) => {
                let mut bytes = format!("{id}\n").into_bytes();
                bytes.extend(layout::encode_forgotten(time));
                bytes
            }
        }
    }

    /// The snapshot and time of the forgotten mark at `key` whose plaintext
    /// is `bytes`; a time that does not read counts as 0 (the image is
    /// forgotten either way). `None` when it names no snapshot.
    pub fn decode_forgotten(&self, key: &str, bytes: &[u8]) -> Option<(ObjectId, i64)> {
        match self.cipher {
            Cipher::Plain => Some((
                layout::snapshot_of_forgotten(key)?,
                layout::decode_forgotten(bytes).unwrap_or(0),
            )),
            Cipher::Sealed(_) => {
                let text = std::str::from_utf8(bytes).ok()?;
                let (id, time) = text.split_once('\n')?;
                let id: ObjectId = id.parse().ok()?;
                (self.forgotten_key(&id) == key)
                    .then(|| (id, layout::decode_forgotten(time.as_bytes()).unwrap_or(0)))
            }
        }
    }
}
