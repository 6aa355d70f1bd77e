//! Remotes of a migsnap store: copies of its history on S3-compatible
//! object storage or in a directory, kept with `push` and read back with
//! `fetch`. Like the store, it knows nothing about SQL.
//!
//! Invariants:
//! - a remote holds immutable, content-addressed packs of the store's own
//!   encoded objects ([`layout`]), marks of snapshots whose image retention
//!   gave up, refs, locks ([`lock`]) and, when encrypted, a `config`
//!   marker ([`crypt`]); nothing else is ever written, and only a remote gc
//!   ([`gc`]) deletes packs, under the exclusive lock;
//! - a ref names only objects whose packs and indexes are complete: a push
//!   uploads every pack before its index and every index before moving a
//!   ref ([`mod@push`]);
//! - refs move only by conditional writes ([`transport::Transport::put_ref`]),
//!   so two pushers never overwrite each other unseen;
//! - every downloaded object is re-hashed before it is used or stored, and
//!   a fetch imports in one transaction ([`mod@fetch`]);
//! - a remote opened with a key ([`connection`]) holds only sealed objects
//!   under keyed names ([`crypt`]), and one without a key only plain ones.
//!
//! The network is driven from sync code through a current-thread tokio
//! runtime inside [`transport::Transport`]: the rest of migsnap stays
//! synchronous.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod connection;
pub mod contents;
pub mod crypt;
pub mod fetch;
pub mod gc;
pub mod layout;
pub mod location;
pub mod lock;
mod profile;
pub mod push;
pub mod reach;
pub mod transport;
pub mod verify;
mod wanted;

pub use connection::{Connection, ConnectionError, KeyFile};
pub use contents::RemoteRef;
pub use crypt::{CryptError, Key};
pub use fetch::{BlobSink, FetchError, FetchReport, Staging, Tap, fetch};
pub use gc::{GcError, GcOptions, GcReport};
pub use location::{Location, Settings, UrlError};
pub use lock::LockError;
pub use push::{Outcome, PushError, PushReport, push};
pub use transport::{Transport, TransportError};
pub use verify::{CheckError, CheckReport};
