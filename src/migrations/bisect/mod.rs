//! Bisect: find the first bad item along a first-parent line, git-style.
//!
//! Two layers:
//! - [`Bisection`], a state machine generic over the item (snapshot ids here,
//!   Alembic revision ids elsewhere): the caller marks items good, bad or
//!   skipped and asks [`Bisection::next`] what to do; [`search`] drives it
//!   with a predicate.
//! - [`Session`], an interactive bisection over one tracked database's
//!   snapshot history whose state lives in the store's refs, so every mark is
//!   one store transaction and a session survives crashes and concurrent
//!   commands.
//!
//! The first layer is the `engine` submodule (which states the search's
//! invariants), the second `session`; both report [`BisectError`], which
//! lives here because it spans the two.

use std::path::PathBuf;

use migsnap_store::{ObjectId, RefName};

use crate::snapshots::restore::RestoreError;

mod engine;
mod line;
mod session;

pub use engine::{Bisection, Next, Verdict, search};
pub use line::snapshot_line;
pub use session::{
    Session, StartOptions, TestOutcome, checkout_candidate, checkout_path, reset, run_test,
};

/// What can go wrong bisecting.
#[derive(Debug, thiserror::Error)]
pub enum BisectError {
    /// The item is not one of the candidates.
    #[error("{item} is not on the first-parent history being bisected")]
    NotOnLine {
        /// The item, as text.
        item: String,
    },
    /// A session for the database exists already.
    #[error("a bisect session of '{database}' is already in progress")]
    Active {
        /// The database.
        database: String,
    },
    /// There is no session for the database.
    #[error("no bisect session of '{database}' is in progress")]
    NoSession {
        /// The database.
        database: String,
    },
    /// The database has no snapshots.
    #[error("database '{database}' has no snapshots to bisect")]
    NoHistory {
        /// The database.
        database: String,
    },
    /// The marks would contradict each other; nothing was recorded.
    #[error("snapshot {good:.12} would be good but is newer than snapshot {bad:.12}, marked bad")]
    Inconsistent {
        /// The newest good snapshot.
        good: ObjectId,
        /// The oldest bad snapshot.
        bad: ObjectId,
    },
    /// A ref under `bisect/DB/` that migsnap does not write.
    #[error("ref {name} is not part of a bisect session migsnap wrote")]
    ForeignRef {
        /// The ref.
        name: RefName,
    },
    /// The test command could not be started.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The test command exited with 128 or more, or died of a signal.
    #[error("bisect run aborted: `{command}` {status}")]
    Aborted {
        /// The command line.
        command: String,
        /// How it ended, as text (`exited with 200`, `was killed by signal 9`).
        status: String,
    },
    /// Writing the candidate's database failed.
    #[error(transparent)]
    Checkout(#[from] RestoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
    /// File system work on the bisect directory failed.
    #[error("cannot write {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
