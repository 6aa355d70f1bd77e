//! The object database: a SQLite file holding objects, refs and the reflog.
//!
//! Layout of `store.db` (see `docs/format.md`):
//! - `packs(seq INTEGER PRIMARY KEY, raw_len, compression, dictionary, data, level)`:
//!   compressed runs of encoded objects, appended in write order, so a
//!   snapshot's pages land next to each other; `level` says whether a pack
//!   is loose (a snapshot's fast level) or compact (`gc` packed it);
//! - `objects(id PRIMARY KEY, kind, pack, offset, raw_len) WITHOUT ROWID`:
//!   where each object's bytes are (small rows, so keyed by id directly);
//! - `dictionaries(seq INTEGER PRIMARY KEY, data, id)`: zstd dictionaries,
//!   named by the BLAKE3 hash of their bytes (`id`), which is how packs name them;
//! - `refs(name PRIMARY KEY, id)`, `reflog(seq, name, old, new, time, message)`.
//! - `forgotten(snapshot PRIMARY KEY, time)`: snapshots whose image was given
//!   up by retention; their schema and history stay.
//!
//! A [`Transaction`] is one SQLite write transaction: objects, ref edits and
//! reflog entries commit together or not at all, so a crash leaves the old
//! state or the new one, with no fsync/rename choreography.

mod error;
mod pack_batch;
mod packs;
mod rows;
mod store;
mod transaction;
mod view;

use std::time::Duration;

use crate::id::ObjectId;
use crate::object::{Kind, Object};

pub use error::{Error, Result};
pub use pack_batch::PackBatch;
pub(crate) use packs::{RawPack, member_bytes};
pub use rows::BrokenRef;
pub use store::Store;
pub use transaction::Transaction;
pub use view::View;

/// The version of the `store.db` table layout, kept in `PRAGMA user_version`.
/// Format 2 names dictionaries by hash; format 3 records each pack's zstd
/// level, so `gc` can tell loose packs from compact ones. An older store is
/// upgraded in place the first time it is opened for writing ([`Store::open`]).
pub const STORE_FORMAT: i64 = 3;

/// Marks a SQLite file as a migsnap store (`PRAGMA application_id`, "msnp").
pub const APPLICATION_ID: i64 = 0x6d73_6e70;

/// Name of the database file inside a store directory.
pub const STORE_FILE: &str = "store.db";

/// How long a command waits for another process that holds the store's write
/// lock before it gives up with [`Error::Busy`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Reading and writing objects by id.
///
/// Implemented by [`Store`] (each call its own transaction) and by
/// [`Transaction`] (calls see the transaction's uncommitted writes).
pub trait ObjectStore {
    /// Whether an object is present. Does not verify it.
    fn contains(&self, id: &ObjectId) -> Result<bool>;

    /// Reads and verifies an object: the stored bytes are re-hashed and a
    /// mismatch is [`Error::Corrupt`]. `Ok(None)` when absent.
    fn try_read(&self, id: &ObjectId) -> Result<Option<Object>>;

    /// Stores an object and returns its id. Idempotent: writing an object that
    /// already exists succeeds and changes nothing. Atomic on its own; within a
    /// [`Transaction`] it becomes durable only at commit.
    fn write(&mut self, object: &Object) -> Result<ObjectId>;

    /// Like [`ObjectStore::try_read`], but absence is [`Error::NotFound`].
    fn read(&self, id: &ObjectId) -> Result<Object> {
        self.try_read(id)?.ok_or(Error::NotFound { id: *id })
    }
}

/// Size figures of one stored object, read without decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's kind.
    pub kind: Kind,
    /// Length of its encoded bytes.
    pub raw_len: u64,
    /// The pack holding it.
    pub pack: i64,
}

/// Totals over the whole store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Storage {
    /// Number of objects.
    pub objects: u64,
    /// Their encoded size in bytes.
    pub raw_bytes: u64,
    /// Number of packs.
    pub packs: u64,
    /// Bytes the packs take (compressed).
    pub pack_bytes: u64,
}

/// The environment variable that sets the store's clock: whole seconds
/// since the Unix epoch. Tests and simulations of a schedule (five weekly
/// checks in a second) set it instead of sleeping; it moves every time the
/// store records (snapshots, reflog, forget marks) and gc's grace cutoff.
pub const CLOCK_ENV: &str = "MIGSNAP_NOW";

/// Seconds since the Unix epoch, for snapshot, reflog and retention times:
/// [`CLOCK_ENV`] when it is set and valid (see [`clock_override`]), else the
/// system clock.
pub fn now() -> i64 {
    if let Ok(Some(secs)) = clock_override() {
        return secs;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The time [`CLOCK_ENV`] sets: `Ok(None)` when unset, `Err` with the text
/// when it is not a whole number of seconds (the command line refuses to
/// run then, rather than record times from the wrong clock).
pub fn clock_override() -> std::result::Result<Option<i64>, String> {
    match std::env::var(CLOCK_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(text)) => Err(text.to_string_lossy().into_owned()),
        Ok(text) => text.trim().parse::<i64>().map(Some).map_err(|_| text),
    }
}
