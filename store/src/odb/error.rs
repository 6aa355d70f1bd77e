//! The store's one error type, and how SQLite's failures map onto it.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

use crate::id::ObjectId;
use crate::refs::RefName;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// There is no store at the path.
    #[error("no migsnap store at {path}")]
    NotAStore {
        /// The directory looked at.
        path: PathBuf,
    },
    /// `init` found a store already there.
    #[error("a migsnap store already exists at {path}")]
    AlreadyExists {
        /// The store directory.
        path: PathBuf,
    },
    /// The file is SQLite but not a migsnap store.
    #[error("{path} is not a migsnap store (application_id {found:#x})")]
    Foreign {
        /// The store file.
        path: PathBuf,
        /// Its application id.
        found: i64,
    },
    /// Written by a newer migsnap.
    #[error(
        "store {path} has format {found}, newer than this migsnap reads ({supported}); upgrade migsnap"
    )]
    NewerFormat {
        /// The store file.
        path: PathBuf,
        /// Its format.
        found: i64,
        /// The newest format this build reads.
        supported: i64,
    },
    /// A store of an older format opened read-only: it must be opened for writing once
    /// so it can be upgraded.
    #[error(
        "store {path} has the old format {found}; run any migsnap command once (it opens the store for writing) to upgrade it"
    )]
    OldFormat {
        /// The store file.
        path: PathBuf,
        /// Its format.
        found: i64,
    },
    /// A write was attempted after SQLite had ended the transaction (it rolls
    /// back by itself on a full disk or I/O error): it would have committed
    /// on its own, outside the all-or-nothing transaction, so it is refused.
    #[error("store {path}: write refused because its transaction was already rolled back")]
    OutsideTransaction {
        /// The store file.
        path: PathBuf,
    },
    /// `store.db` lacks a table the format has, or holds a value no
    /// migsnap writes (found without reading objects).
    #[error("store {path} is damaged: {reason}")]
    Damaged {
        /// The store file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A write was attempted after an earlier write of the same transaction
    /// failed: what it would add to a partly written transaction could be
    /// committed as if whole.
    #[error("store {path}: write refused because an earlier write of its transaction failed")]
    AfterFailedWrite {
        /// The store file.
        path: PathBuf,
    },
    /// The store cannot be written.
    #[error("store {path} is read-only")]
    ReadOnly {
        /// The store file.
        path: PathBuf,
    },
    /// Another process kept the store locked past the busy timeout.
    #[error("store {path} is locked by another process")]
    Busy {
        /// The store file.
        path: PathBuf,
    },
    /// The disk is full.
    #[error("disk full while writing store {path}")]
    DiskFull {
        /// The store file.
        path: PathBuf,
    },
    /// An object is missing.
    #[error("object {id} not found")]
    NotFound {
        /// The missing id.
        id: ObjectId,
    },
    /// An object's bytes no longer hash to its id.
    #[error("object {id} is corrupt: its bytes hash to {actual}")]
    Corrupt {
        /// The id it is stored under.
        id: ObjectId,
        /// The hash of the bytes found.
        actual: ObjectId,
    },
    /// An object's stored row cannot be turned back into bytes or decoded.
    #[error("object {id} is corrupt: {reason}")]
    Unreadable {
        /// The id it is stored under.
        id: ObjectId,
        /// What is wrong with it.
        reason: String,
    },
    /// An object is not of the kind the caller needs.
    #[error("object {id} is a {actual}, not a {expected}")]
    WrongKind {
        /// The object.
        id: ObjectId,
        /// What was needed.
        expected: &'static str,
        /// What it is.
        actual: &'static str,
    },
    /// A ref edit's precondition failed: someone else moved the ref.
    #[error("ref {name} was expected to be {expected} but is {actual}")]
    RefMismatch {
        /// The ref.
        name: RefName,
        /// What the edit expected.
        expected: String,
        /// What the ref was.
        actual: String,
    },
    /// A stored ref value is not a valid name or id.
    #[error("store {path} holds an invalid ref '{name}'")]
    BadRef {
        /// The store file.
        path: PathBuf,
        /// The ref as stored.
        name: String,
    },
    /// SQLite cannot open `store.db` (no permission, or its directory is
    /// not searchable).
    #[error("cannot open store {path}")]
    CannotOpen {
        /// The store file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite finds `store.db` itself malformed, or a column holds a value of
    /// a type the store never writes (every column is written with its
    /// declared type, so such a value means the file was altered).
    #[error("store {path} is damaged")]
    Malformed {
        /// The store file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Any other SQLite failure.
    #[error("store {path}")]
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Creating the store directory or a file in it failed.
    #[error("cannot create {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the failure is SQLite's with `store.db` as a whole (it cannot
    /// be opened or read), not one object's: a walk over objects stops on it
    /// instead of blaming the object it was reading.
    pub fn is_store_file(&self) -> bool {
        matches!(
            self,
            Error::Sqlite { .. } | Error::CannotOpen { .. } | Error::Malformed { .. }
        )
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(super) fn sql_error(path: &Path, source: rusqlite::Error) -> Error {
    let path = path.to_path_buf();
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Busy { path },
        Some(ErrorCode::ReadOnly) => Error::ReadOnly { path },
        Some(ErrorCode::DiskFull) => Error::DiskFull { path },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            Error::CannotOpen { path, source }
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            Error::Malformed { path, source }
        }
        _ if matches!(
            source,
            rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
        ) =>
        {
            Error::Malformed { path, source }
        }
        _ => Error::Sqlite { path, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    fn classify(source: rusqlite::Error) -> Error {
        sql_error(Path::new("store.db"), source)
    }

    #[test]
    fn sqlite_failures_get_the_store_own_kinds() {
        use rusqlite::ffi;
        assert!(matches!(
            classify(failure(ffi::SQLITE_BUSY)),
            Error::Busy { .. }
        ));
        assert!(matches!(
            classify(failure(ffi::SQLITE_LOCKED)),
            Error::Busy { .. }
        ));
        assert!(matches!(
            classify(failure(ffi::SQLITE_READONLY)),
            Error::ReadOnly { .. }
        ));
        assert!(matches!(
            classify(failure(ffi::SQLITE_FULL)),
            Error::DiskFull { .. }
        ));
        assert!(matches!(
            classify(failure(ffi::SQLITE_CANTOPEN)),
            Error::CannotOpen { .. }
        ));
        assert!(matches!(
            classify(failure(ffi::SQLITE_PERM)),
            Error::CannotOpen { .. }
        ));
        assert!(matches!(
            classify(failure(ffi::SQLITE_CORRUPT)),
            Error::Malformed { .. }
        ));
        assert!(matches!(
            classify(failure(ffi::SQLITE_NOTADB)),
            Error::Malformed { .. }
        ));
        // A value of a type the store never writes means store.db was altered.
        let wrong_type =
            rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Text);
        assert!(matches!(classify(wrong_type), Error::Malformed { .. }));
        assert!(matches!(
            classify(failure(ffi::SQLITE_IOERR)),
            Error::Sqlite { .. }
        ));
    }

    #[test]
    fn only_whole_file_failures_stop_an_object_walk() {
        use rusqlite::ffi;
        assert!(classify(failure(ffi::SQLITE_CORRUPT)).is_store_file());
        assert!(classify(failure(ffi::SQLITE_IOERR)).is_store_file());
        let id = ObjectId::from_bytes([1; 32]);
        assert!(!Error::NotFound { id }.is_store_file());
    }

    #[test]
    fn messages_do_not_repeat_their_cause() {
        let error = Error::Io {
            path: PathBuf::from("/x/.migsnap/store.db"),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(error.to_string(), "cannot create /x/.migsnap/store.db");
        let error = classify(failure(rusqlite::ffi::SQLITE_CORRUPT));
        assert_eq!(error.to_string(), "store store.db is damaged");
        assert!(std::error::Error::source(&error).is_some());
    }
}
