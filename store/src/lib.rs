//! A content-addressed object store with refs, a reflog, retention, gc,
//! fsck and the transfer of objects to and from other stores. It knows
//! nothing about SQL: it stores blobs, block images and snapshots, named by
//! the BLAKE3 hash of their canonical bytes.
//!
//! Invariants:
//! - an object's id is the hash of its encoded bytes ([`codec`]); every read
//!   re-hashes, so corruption is reported as [`Error::Corrupt`], never returned;
//! - objects are immutable and writing one twice is a no-op;
//! - refs move only through [`Transaction::commit`], atomically with the
//!   objects they name, with compare-and-swap and a reflog entry.
//!
//! ```
//! use migsnap_store::{Change, Expected, Object, ObjectStore, RefEdit, RefName, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let mut store = Store::init(&dir.path().join(".migsnap"))?;
//!
//! let mut tx = store.transaction()?;
//! let id = tx.write(&Object::Blob(b"hello".to_vec()))?;
//! let name = RefName::new("tags/greeting")?;
//! let edit = RefEdit { name: name.clone(), change: Change::Update { expected: Expected::MustNotExist, new: id } };
//! tx.commit(&[edit], "tag greeting")?;
//!
//! assert_eq!(store.read(&id)?, Object::Blob(b"hello".to_vec()));
//! assert_eq!(store.view().find_ref(&name)?, Some(id));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod block_file;
pub mod bulk;
pub mod codec;
pub mod compress;
pub mod fsck;
pub mod gc;
mod hash_lanes;
pub mod id;
mod idset;
pub mod image;
pub mod object;
pub mod odb;
pub mod pack;
pub mod progress;
mod reach;
pub mod refs;
pub mod repack;
pub mod split_digest;
pub mod transfer;

pub use id::{ObjectId, ParseIdError, Prefix, PrefixResolution};
pub use idset::IdSet;
pub use object::{Added, BlockChange, Image, Kind, Listing, Object, Snapshot};
pub use odb::{
    BrokenRef, Error, ObjectInfo, ObjectStore, PackBatch, Result, Storage, Store, Transaction, View,
};
pub use pack::{HashedBlob, PackMember, PreparedPack};
pub use progress::Progress;
pub use refs::{Change, Expected, RefEdit, RefName, RefNameError, ReflogEntry};
