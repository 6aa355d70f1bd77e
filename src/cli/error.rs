//! The one place where library errors get a kind (and so an exit code),
//! a `caused by:` chain and hints.

use migsnap_store::Error as StoreError;

use super::exit;
use crate::migrations::bisect::BisectError;
use crate::migrations::side::SideError;
use crate::remotes::{CheckoutFailure, RemoteError};
use crate::repo::RepoError;
use crate::snapshots::datadiff::DataDiffError;
use crate::snapshots::log::LogError;
use crate::snapshots::pages::ImageError;
use crate::snapshots::restore::RestoreError;
use crate::snapshots::revspec::RevError;
use crate::snapshots::snapshot::SnapshotError;
use crate::snapshots::sqlite::SqliteError;

/// How an error is classified; decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command line is wrong in a way clap cannot see.
    Usage,
    /// Bad input: files, revisions, names, configuration.
    Input,
    /// Refused for safety.
    Refused,
    /// Corrupt or missing objects in the store (or on a remote).
    Corrupt,
    /// A remote did not answer: worth trying again.
    Unreachable,
    /// A bug or unexpected system failure.
    Internal,
    /// stdout was closed by the reader (`migsnap log | head`).
    BrokenPipe,
}

impl ErrorKind {
    /// The process exit code for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Usage => exit::USAGE,
            ErrorKind::Input => exit::INPUT,
            ErrorKind::Refused => exit::REFUSED,
            ErrorKind::Corrupt => exit::CORRUPT,
            ErrorKind::Unreachable => exit::UNREACHABLE,
            ErrorKind::Internal => exit::INTERNAL,
            ErrorKind::BrokenPipe => exit::OK,
        }
    }

    /// Stable name for JSON output.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Input => "input",
            ErrorKind::Refused => "refused",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Internal => "internal",
            ErrorKind::BrokenPipe => "broken-pipe",
        }
    }
}

/// An error ready to show a person.
#[derive(Debug)]
pub struct CliError {
    /// Classification.
    pub kind: ErrorKind,
    /// The one-line message.
    pub message: String,
    /// Underlying causes, outermost first.
    pub causes: Vec<String>,
    /// What to do about it.
    pub hints: Vec<String>,
    /// Everything behind a summarised message (each quick_check problem),
    /// shown only in JSON.
    pub details: Vec<String>,
}

impl CliError {
    /// An error with no cause chain.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CliError {
        CliError {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hints: Vec::new(),
            details: Vec::new(),
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hints.push(hint.into());
        self
    }

    /// Puts `message` in front: the error's own message becomes its first
    /// cause, and its kind and hints stay.
    fn context(mut self, message: impl Into<String>) -> CliError {
        let own = std::mem::replace(&mut self.message, message.into());
        self.causes.insert(0, own);
        self
    }

    fn from_error(kind: ErrorKind, error: &dyn std::error::Error) -> CliError {
        let message = error.to_string();
        let mut causes: Vec<String> = Vec::new();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if text != message && causes.last() != Some(&text) {
                causes.push(text);
            }
            source = cause.source();
        }
        CliError {
            kind,
            message,
            causes,
            hints: Vec::new(),
            details: Vec::new(),
        }
    }

    /// A failed write to stdout.
    pub fn from_stdout(error: std::io::Error) -> CliError {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::new(ErrorKind::BrokenPipe, "broken pipe")
        } else {
            CliError::from_error(ErrorKind::Internal, &error)
        }
    }
}

fn io_kind(error: &std::io::Error) -> ErrorKind {
    match error.kind() {
        // A full disk is the environment refusing, as it is for the store.
        std::io::ErrorKind::PermissionDenied
        | std::io::ErrorKind::ReadOnlyFilesystem
        | std::io::ErrorKind::StorageFull
        | std::io::ErrorKind::QuotaExceeded => ErrorKind::Refused,
        std::io::ErrorKind::NotFound => ErrorKind::Input,
        _ => ErrorKind::Internal,
    }
}

impl From<StoreError> for CliError {
    fn from(error: StoreError) -> CliError {
        let kind = match &error {
            StoreError::NotAStore { .. } | StoreError::Foreign { .. } => ErrorKind::Input,
            StoreError::AlreadyExists { .. }
            | StoreError::NewerFormat { .. }
            | StoreError::OldFormat { .. }
            | StoreError::ReadOnly { .. }
            | StoreError::Busy { .. }
            | StoreError::DiskFull { .. }
            | StoreError::RefMismatch { .. } => ErrorKind::Refused,
            StoreError::NotFound { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Unreadable { .. }
            | StoreError::WrongKind { .. }
            | StoreError::Damaged { .. }
            | StoreError::BadRef { .. } => ErrorKind::Corrupt,
            // `--store FILE`: the store directory is a file.
            StoreError::Io { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory
                ) =>
            {
                ErrorKind::Input
            }
            StoreError::Io { source, .. } => io_kind(source),
            // A guard against a bug: a write after SQLite ended the transaction.
            StoreError::OutsideTransaction { .. } | StoreError::AfterFailedWrite { .. } => {
                ErrorKind::Internal
            }
            StoreError::CannotOpen { .. } => ErrorKind::Refused,
            StoreError::Malformed { .. } => ErrorKind::Corrupt,
            StoreError::Sqlite { .. } => ErrorKind::Internal,
        };
        let e = CliError::from_error(kind, &error);
        match error {
            StoreError::NotAStore { .. } => {
                e.hint("run `migsnap init` there, or pass --store DIR (or set MIGSNAP_STORE)")
            }
            StoreError::ReadOnly { .. } => e.hint("check the permissions of the store directory"),
            StoreError::Busy { .. } => {
                e.hint("another migsnap is writing to this store; try again when it is done")
            }
            StoreError::RefMismatch { .. } => {
                e.hint("another process changed the store meanwhile; run the command again")
            }
            StoreError::NotFound { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Unreadable { .. } => {
                e.hint("run `migsnap fsck --read-data` to see what is damaged")
            }
            StoreError::Damaged { .. } => {
                e.hint("store.db was altered outside migsnap; restore .migsnap from a backup")
            }
            StoreError::BadRef { .. } => e.hint(
                "`migsnap fsck` lists damaged refs; `migsnap refs --delete-broken` removes them",
            ),
            StoreError::Malformed { .. } | StoreError::WrongKind { .. } => {
                e.hint("store.db itself is damaged; check it with `sqlite3 store.db 'PRAGMA integrity_check'`")
            }
            _ => e,
        }
    }
}

impl From<SqliteError> for CliError {
    fn from(error: SqliteError) -> CliError {
        let kind = match &error {
            SqliteError::Busy { .. }
            | SqliteError::HotJournal { .. }
            | SqliteError::DiskFull { .. } => ErrorKind::Refused,
            SqliteError::Io { source, .. } => io_kind(source),
            SqliteError::CannotOpen { .. } => ErrorKind::Input,
            SqliteError::ReadOnly { .. } => ErrorKind::Refused,
            SqliteError::Sqlite { .. } => ErrorKind::Internal,
            _ => ErrorKind::Input,
        };
        let read_only = kind == ErrorKind::Refused
            && !matches!(
                error,
                SqliteError::Busy { .. }
                    | SqliteError::HotJournal { .. }
                    | SqliteError::DiskFull { .. }
            );
        let e = CliError::from_error(kind, &error);
        match error {
            SqliteError::Busy { .. } => {
                e.hint("wait for the writer to finish, or raise --busy-timeout")
            }
            SqliteError::DiskFull { .. } => {
                e.hint("free space on the database's file system, then run the command again")
            }
            SqliteError::NotUtf8 { .. } => e.hint(
                "give it a valid UTF-8 name and SQL (for a table: ALTER TABLE … RENAME TO …), then snapshot again",
            ),
            // Deleting the journal would keep the crashed writer's half
            // transaction in the file.
            SqliteError::HotJournal { path, .. } => e.hint(format!(
                "run migsnap again as a user who may write {0} and its directory (or `sqlite3 {0} 'PRAGMA quick_check'`): SQLite then restores the last committed state; never delete the journal",
                path.display()
            )),
            // Even a reader of a WAL database must create or write its
            // `-shm` file (https://sqlite.org/wal.html#readonly).
            _ if read_only => e.hint(
                "SQLite could not write beside the database: check that you may write to its directory (a WAL database needs its -shm file)",
            ),
            _ => e,
        }
    }
}

impl From<RepoError> for CliError {
    fn from(error: RepoError) -> CliError {
        let error = match error {
            RepoError::Store(inner) => return inner.into(),
            other => other,
        };
        let hint = match &error {
            RepoError::NoStore { .. } => Some(
                "run `migsnap init` to create one, or pass --store DIR (or set MIGSNAP_STORE)"
                    .to_owned(),
            ),
            RepoError::BrokenStore { path, .. } => Some(format!(
                "migsnap does not look past it to a parent's store; repair or remove {}, or pass --store DIR",
                path.display()
            )),
            RepoError::NoDatabase => Some("track one with `migsnap track NAME PATH`".to_owned()),
            RepoError::UnknownDatabase { known, .. } if known.is_empty() => {
                Some("track it with `migsnap track NAME PATH`".to_owned())
            }
            RepoError::UnknownDatabase { known, .. } => {
                Some(format!("tracked: {}", known.join(", ")))
            }
            RepoError::TagNamed { path, .. } => Some(format!(
                "track it under another name: `migsnap track NAME {}`",
                path.display()
            )),
            RepoError::Untrusted { path, .. } => Some(format!(
                "if you trust it, add its directory to {0} (`export {0}={1}`), or chown the file to yourself",
                crate::repo::SAFE_DIRECTORIES_ENV,
                path.parent().unwrap_or(path).display()
            )),
            RepoError::UnknownRemote { known, .. } if known.is_empty() => {
                Some("add one with `migsnap remote add NAME URL`".to_owned())
            }
            RepoError::UnknownRemote { known, .. } => {
                Some(format!("remotes: {}", known.join(", ")))
            }
            RepoError::Scratch { .. } => Some(
                "set TMPDIR to a writable directory, or run `migsnap init` to keep a store here"
                    .to_owned(),
            ),
            _ => None,
        };
        let kind = match &error {
            RepoError::Io { source, .. } | RepoError::Scratch { source, .. } => io_kind(source),
            RepoError::NameTaken { .. }
            | RepoError::RemoteExists { .. }
            | RepoError::TagNamed { .. }
            | RepoError::Untrusted { .. } => ErrorKind::Refused,
            RepoError::BrokenStore { .. } => ErrorKind::Corrupt,
            _ => ErrorKind::Input,
        };
        let e = CliError::from_error(kind, &error);
        match hint {
            Some(hint) => e.hint(hint),
            None => e,
        }
    }
}

impl From<RemoteError> for CliError {
    fn from(error: RemoteError) -> CliError {
        use migsnap_remote::{CheckError, FetchError, GcError, PushError};
        let error = match error {
            RemoteError::Repo(inner) => return inner.into(),
            RemoteError::CheckoutTarget(inner) => return clone_checkout_error(*inner),
            RemoteError::Checkout { dir, source } => {
                let inner: CliError = match *source {
                    CheckoutFailure::Rev(e) => e.into(),
                    CheckoutFailure::Restore(e) => clone_checkout_error(e),
                };
                return inner
                    .context(format!(
                        "cloned into {}, but the checkout failed",
                        dir.display()
                    ))
                    .hint(format!(
                        "the clone is complete: run `migsnap checkout REV -o FILE` in {}",
                        dir.display()
                    ));
            }
            RemoteError::Store(inner)
            | RemoteError::Push(PushError::Store(inner))
            | RemoteError::Fetch(FetchError::Store(inner))
            | RemoteError::Check(CheckError::Store(inner))
            | RemoteError::Gc(GcError::Store(inner)) => return inner.into(),
            other => other,
        };
        let (kind, hint) = match crypt_of(&error) {
            Some(crypt) => crypt_kind(crypt),
            None => remote_kind(&error),
        };
        let e = CliError::from_error(kind, &error);
        match hint {
            Some(hint) => e.hint(hint),
            None => e,
        }
    }
}

/// A `clone --checkout` error: as `checkout`'s, but `clone` has no
/// `--force`, so the hints that name it name what to do instead.
fn clone_checkout_error(error: RestoreError) -> CliError {
    match error {
        RestoreError::Exists { .. } => CliError::from_error(ErrorKind::Refused, &error)
            .hint("name another file with -o, or move that one away first"),
        RestoreError::Sidecars { .. } => {
            CliError::from_error(ErrorKind::Refused, &error).hint("move them away first")
        }
        other => other.into(),
    }
}

/// The kind and hint of a remote error that is not about keys.
fn remote_kind(error: &RemoteError) -> (ErrorKind, Option<String>) {
    use migsnap_remote::contents::ContentsError;
    use migsnap_remote::{CheckError, FetchError, GcError, LockError, PushError, TransportError};
    match (error, transport_of(error)) {
            (_, Some(TransportError::Unreachable { .. })) => (
                ErrorKind::Unreachable,
                Some("check the URL and --endpoint (`migsnap remote list`) and the network, then try again".to_owned()),
            ),
            (_, Some(TransportError::Denied { .. })) => (
                ErrorKind::Input,
                Some("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE and ~/.aws/credentials)".to_owned()),
            ),
            (_, Some(TransportError::Missing { .. })) => (
                ErrorKind::Input,
                Some("create the bucket (or the directory) first, or fix the URL".to_owned()),
            ),
            (_, Some(TransportError::Locked { path })) => (
                ErrorKind::Refused,
                Some(format!(
                    "another push is updating it; if none is running, a push died holding it: remove {}",
                    path.display()
                )),
            ),
            (RemoteError::Push(PushError::NotFastForward { .. }), _) => (
                ErrorKind::Refused,
                Some("the remote has snapshots this store lacks: `migsnap fetch` first and look at them (`migsnap log REMOTE/DB`), or push --force to replace them".to_owned()),
            ),
            (RemoteError::Push(PushError::RefChanged { .. }), _) => (
                ErrorKind::Refused,
                Some("another push moved it meanwhile: `migsnap fetch` first, then push again".to_owned()),
            ),
            (RemoteError::Push(PushError::Contents(ContentsError::Layout(_))), _)
            | (RemoteError::Fetch(FetchError::Contents(ContentsError::Layout(_))), _)
            | (RemoteError::Fetch(FetchError::Damaged(_)), _)
            | (RemoteError::Fetch(FetchError::Incomplete { .. }), _)
            | (RemoteError::Check(CheckError::Contents(ContentsError::Layout(_))), _) => (
                ErrorKind::Corrupt,
                Some("nothing was imported; the remote is damaged: push to it again from a sound store, or use another remote".to_owned()),
            ),
            (RemoteError::Fetch(FetchError::MissingPack { .. }), _) => (
                ErrorKind::Corrupt,
                Some("nothing was imported; a `gc --remote` that ran meanwhile removes packs (run the fetch again), else the remote is damaged (`migsnap fsck --remote NAME`)".to_owned()),
            ),
            (RemoteError::Gc(GcError::Contents(ContentsError::Layout(_))), _)
            | (RemoteError::Gc(GcError::Incomplete { .. }), _) => (
                ErrorKind::Corrupt,
                Some("nothing was deleted; `migsnap fsck --remote NAME` lists the damage".to_owned()),
            ),
            (RemoteError::Push(PushError::Lock(LockError::Lost { .. })), _)
            | (RemoteError::Fetch(FetchError::Lock(LockError::Lost { .. })), _)
            | (RemoteError::Gc(GcError::Lock(LockError::Lost { .. })), _) => (
                ErrorKind::Refused,
                Some("another client broke this lock (`--break-lock`) or took it as stale, so this command stopped: run it again".to_owned()),
            ),
            (RemoteError::Push(PushError::Lock(LockError::Held { .. })), _)
            | (RemoteError::Fetch(FetchError::Lock(LockError::Held { .. })), _)
            | (RemoteError::Gc(GcError::Lock(LockError::Held { .. })), _) => (
                ErrorKind::Refused,
                Some(format!(
                    "another migsnap is using the remote; a lock not refreshed for {} minutes is ignored as left by a client that died; if you know none runs: `migsnap gc --remote NAME --break-lock`",
                    migsnap_remote::lock::STALE_AFTER.as_secs() / 60
                )),
            ),
            (RemoteError::WhichRemote { .. }, _) => (
                ErrorKind::Input,
                Some("name the remote, or add one with `migsnap remote add origin URL`".to_owned()),
            ),
            (RemoteError::UnknownRef { .. }, _) => (
                ErrorKind::Input,
                Some("name a database, a tag or a ref (`migsnap refs` lists them)".to_owned()),
            ),
            (RemoteError::CloneTarget { .. }, _) => (
                ErrorKind::Refused,
                Some("clone into another directory".to_owned()),
            ),
            (RemoteError::KeyExists { .. }, _) => (
                ErrorKind::Refused,
                Some("it may be the only copy of a key: to use it, pass it with --key-file; else move it away first".to_owned()),
            ),
            (RemoteError::Url(_), _) => (ErrorKind::Input, None),
            (RemoteError::Io { source, .. }, _)
            | (RemoteError::Fetch(FetchError::Io { source, .. }), _) => (io_kind(source), None),
            _ => (ErrorKind::Internal, None),
    }
}

/// The transport error behind a remote error, wherever it is nested.
fn transport_of(error: &RemoteError) -> Option<&migsnap_remote::TransportError> {
    use migsnap_remote::contents::ContentsError;
    use migsnap_remote::{CheckError, FetchError, GcError, LockError, PushError};
    match error {
        RemoteError::Transport(e)
        | RemoteError::Gc(GcError::Transport(e))
        | RemoteError::Gc(GcError::Contents(ContentsError::Transport(e)))
        | RemoteError::Gc(GcError::Lock(LockError::Transport(e)))
        | RemoteError::Push(PushError::Lock(LockError::Transport(e)))
        | RemoteError::Fetch(FetchError::Lock(LockError::Transport(e)))
        | RemoteError::Check(CheckError::Transport(e))
        | RemoteError::Check(CheckError::Contents(ContentsError::Transport(e)))
        | RemoteError::Push(PushError::Transport(e))
        | RemoteError::Push(PushError::Contents(ContentsError::Transport(e)))
        | RemoteError::Fetch(FetchError::Transport(e))
        | RemoteError::Fetch(FetchError::Contents(ContentsError::Transport(e))) => Some(e),
        _ => None,
    }
}

/// The key or decryption error behind a remote error, wherever it is nested.
fn crypt_of(error: &RemoteError) -> Option<&migsnap_remote::CryptError> {
    use migsnap_remote::contents::ContentsError;
    use migsnap_remote::{CheckError, FetchError, GcError, LockError, PushError};
    match error {
        RemoteError::Crypt(e)
        | RemoteError::Gc(GcError::Contents(ContentsError::Crypt(e)))
        | RemoteError::Gc(GcError::Lock(LockError::Crypt(e)))
        | RemoteError::Push(PushError::Lock(LockError::Crypt(e)))
        | RemoteError::Fetch(FetchError::Lock(LockError::Crypt(e)))
        | RemoteError::Check(CheckError::Contents(ContentsError::Crypt(e)))
        | RemoteError::Push(PushError::Contents(ContentsError::Crypt(e)))
        | RemoteError::Fetch(FetchError::Contents(ContentsError::Crypt(e))) => Some(e),
        _ => None,
    }
}

/// The kind and hint of a key or decryption error: an object that does not
/// open is damage (5); a key that does not fit is bad input (3).
fn crypt_kind(error: &migsnap_remote::CryptError) -> (ErrorKind, Option<String>) {
    use migsnap_remote::CryptError;
    match error {
        CryptError::Open { .. } => (
            ErrorKind::Corrupt,
            Some("nothing was imported; the remote is damaged, or someone without the key wrote to it".to_owned()),
        ),
        CryptError::WrongKey { .. } => (
            ErrorKind::Input,
            Some("use the key file this remote was created with (`remote add --key-file`, `clone --key-file`)".to_owned()),
        ),
        CryptError::NeedsKey { .. } => (
            ErrorKind::Input,
            Some("give its key file: `migsnap clone URL --key-file PATH`, or `migsnap remote add NAME URL --key-file PATH`".to_owned()),
        ),
        CryptError::NotEncrypted { .. } => (
            ErrorKind::Input,
            Some("a remote is encrypted from its first push on: use an empty bucket or directory for an encrypted remote, or add this one without --encrypt".to_owned()),
        ),
        CryptError::KeyFile { source, .. } => (io_kind(source), None),
        CryptError::NotAKey { .. } | CryptError::Config { .. } => (ErrorKind::Input, None),
    }
}

impl From<ImageError> for CliError {
    fn from(error: ImageError) -> CliError {
        match error {
            ImageError::Store(e) => e.into(),
            ImageError::Source(e) => e.into(),
            ImageError::BadPage { .. } | ImageError::Digest { .. } => {
                CliError::from_error(ErrorKind::Corrupt, &error)
                    .hint("run `migsnap fsck --read-data` to see what is damaged")
            }
            ImageError::Io { ref source, .. } => CliError::from_error(io_kind(source), &error),
            ImageError::NoRoom { ref source, .. } => CliError::from_error(io_kind(source), &error)
                .hint("free at least that much space there, then run it again"),
        }
    }
}

impl From<SnapshotError> for CliError {
    fn from(error: SnapshotError) -> CliError {
        match error {
            SnapshotError::Source(e) => e.into(),
            SnapshotError::Image(e) => e.into(),
            SnapshotError::Store(e) => e.into(),
            SnapshotError::Repo(e) => e.into(),
            SnapshotError::Tag(e) => e.into(),
        }
    }
}

impl From<RestoreError> for CliError {
    fn from(error: RestoreError) -> CliError {
        match error {
            RestoreError::Image(e) => e.into(),
            RestoreError::Store(e) => e.into(),
            RestoreError::Sqlite(e) => e.into(),
            RestoreError::SchemaOnly { .. }
            | RestoreError::Forgotten { .. }
            | RestoreError::NotRegular { .. } => CliError::from_error(ErrorKind::Input, &error),
            RestoreError::Damaged { snapshot, .. } => {
                CliError::from_error(ErrorKind::Refused, &error).hint(format!(
                    "pass --force to restore it anyway, or look at it first with `migsnap checkout {snapshot:.12} -o FILE`"
                ))
            }
            RestoreError::DamagedDatabase {
                restoring: true, ..
            } => CliError::from_error(ErrorKind::Refused, &error).hint(
                "look for a stray -wal or -journal beside it; pass --force to restore over it anyway (a raw copy of the file and its -wal/-journal is kept beside it)",
            ),
            RestoreError::DamagedDatabase { safety, .. } => {
                CliError::from_error(ErrorKind::Refused, &error).hint(format!(
                    "recover the database first (`sqlite3 FILE .recover`, or `migsnap restore --force` of a sound snapshot); `migsnap checkout {safety:.12} -o FILE` gives you a copy"
                ))
            }
            RestoreError::QuickCheck { ref problems, .. } => CliError {
                details: problems.clone(),
                ..CliError::from_error(ErrorKind::Corrupt, &error)
            },
            RestoreError::UndoUnreadable { .. } => CliError::from_error(ErrorKind::Corrupt, &error)
                .hint("run `migsnap fsck --read-data` to see what is damaged"),
            RestoreError::ReadBack { .. } => CliError::from_error(ErrorKind::Corrupt, &error),
            RestoreError::Io { ref source, .. } => CliError::from_error(io_kind(source), &error),
            // The flags that override a refusal are named here, at the edge.
            RestoreError::Exists { .. } => CliError::from_error(ErrorKind::Refused, &error)
                .hint("pass --force to overwrite it"),
            RestoreError::Sidecars { .. } => CliError::from_error(ErrorKind::Refused, &error)
                .hint("move them away, or pass --force to delete them"),
            RestoreError::ReadOnly { .. } => CliError::from_error(ErrorKind::Refused, &error)
                .hint("pass --force to write it anyway"),
            RestoreError::InUse { .. } => {
                CliError::from_error(ErrorKind::Refused, &error).hint("stop them, or pass --force")
            }
            RestoreError::Locked { .. } => CliError::from_error(ErrorKind::Refused, &error)
                .hint("run again when it is idle, or raise --busy-timeout"),
            RestoreError::Safety { restoring, .. } => {
                let e = CliError::from_error(ErrorKind::Refused, &error);
                if restoring {
                    e.hint("pass --no-safety-snapshot to restore anyway (a raw copy of the file is kept beside it)")
                } else {
                    e
                }
            }
            RestoreError::Symlink { .. }
            | RestoreError::Changed { .. }
            | RestoreError::StillOpen { .. }
            | RestoreError::Raced { .. } => CliError::from_error(ErrorKind::Refused, &error),
        }
    }
}

impl From<crate::migrations::stamp::StampError> for CliError {
    fn from(error: crate::migrations::stamp::StampError) -> CliError {
        use crate::migrations::stamp::StampError;
        match error {
            StampError::Database(e) => e.into(),
            StampError::Replay(e) => e.into(),
            StampError::Restore(e) => e.into(),
            StampError::Track(e) => e.into(),
            StampError::Targets(e) => super::migrations::target_error(e, "stamp", "REV"),
            StampError::Recorded { .. } => CliError::from_error(ErrorKind::Input, &error).hint(
                "`migsnap locate` shows the revision the schema is nearest to; `migsnap fix` plans the way there",
            ),
            StampError::Inconsistent { .. } | StampError::Reference { .. } => {
                CliError::from_error(ErrorKind::Input, &error)
            }
            StampError::Write(_) => CliError::from_error(ErrorKind::Internal, &error),
            // A stamp whose result does not verify is refused (exit 4), as
            // documented: the safety snapshot holds the state before it.
            StampError::ReadBack { .. } => CliError::from_error(ErrorKind::Refused, &error),
        }
    }
}

impl From<crate::migrations::adopt::AdoptError> for CliError {
    fn from(error: crate::migrations::adopt::AdoptError) -> CliError {
        use crate::migrations::adopt::AdoptError;
        match error {
            AdoptError::Database(e) => e.into(),
            AdoptError::Replay(e) => e.into(),
            AdoptError::History(e) => e.into(),
            AdoptError::Stamp { ref source, .. } => {
                // The stamp's kind, under the message that says the file
                // is gone again.
                let kind = match &**source {
                    crate::migrations::stamp::StampError::Replay(_)
                    | crate::migrations::stamp::StampError::Write(_) => ErrorKind::Internal,
                    crate::migrations::stamp::StampError::Restore(_)
                    | crate::migrations::stamp::StampError::ReadBack { .. } => ErrorKind::Refused,
                    _ => ErrorKind::Input,
                };
                CliError::from_error(kind, &error)
            }
            AdoptError::NotOnlyExtra { .. } => CliError::from_error(ErrorKind::Input, &error).hint(
                "`migsnap repair` restores what is missing or changed; `migsnap fix` plans the whole way",
            ),
            AdoptError::NothingExtra { .. }
            | AdoptError::NotAlembic
            | AdoptError::Heads { .. }
            | AdoptError::NoVersions
            | AdoptError::Naming(_)
            | AdoptError::NoModels
            | AdoptError::NotInModels { .. }
            | AdoptError::NothingFromModels { .. }
            | AdoptError::NotNullWithoutDefault { .. }
            | AdoptError::Reference { .. } => CliError::from_error(ErrorKind::Input, &error),
            AdoptError::ModelsNotLoaded { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("`migsnap replay` loads the models with the project's Python and shows the whole error"),
            AdoptError::ModelsNotReached { .. } => CliError::from_error(ErrorKind::Refused, &error),
            AdoptError::Write { ref source, .. } => {
                let kind = io_kind(source);
                CliError::from_error(kind, &error)
            }
        }
    }
}

impl From<crate::migrations::repair::RepairError> for CliError {
    fn from(error: crate::migrations::repair::RepairError) -> CliError {
        use crate::migrations::repair::{ApplyError, RepairError};
        match error {
            RepairError::Replay(e) => e.into(),
            RepairError::Track(e) => e.into(),
            RepairError::Restore(e) => e.into(),
            RepairError::Snapshot(e) => e.into(),
            RepairError::Reference { .. } => CliError::from_error(ErrorKind::Input, &error),
            RepairError::NoneRecorded => CliError::from_error(ErrorKind::Input, &error)
                .hint("name the revision(s) with --to REV"),
            RepairError::Unlocated { ref failure, .. } => {
                let e = CliError::from_error(ErrorKind::Input, &error);
                match failure {
                    Some(failure) => e.hint(format!(
                        "migration {} failed in replay ({}); `migsnap replay` shows the whole error",
                        failure.revision, failure.failure.error
                    )),
                    None => e,
                }
                .hint("name the revision to repair towards with --to REV")
            }
            // Applying towards a guess is refused like a destructive plan
            // (exit 4): the command could act, and a flag says it may.
            RepairError::Inferred { ref targets } => CliError::from_error(ErrorKind::Refused, &error)
                .hint(format!(
                    "review the plan with `migsnap repair --to {}`, then add --apply; `migsnap fix` plans the whole way, the version row included",
                    targets.join(" --to ")
                )),
            RepairError::Apply(ApplyError::Open(_)) => {
                CliError::from_error(ErrorKind::Internal, &error)
            }
            RepairError::Destructive { .. } | RepairError::Apply(_) => {
                CliError::from_error(ErrorKind::Refused, &error)
            }
        }
    }
}

impl From<crate::migrations::report::ReportError> for CliError {
    fn from(error: crate::migrations::report::ReportError) -> CliError {
        use crate::migrations::report::ReportError;
        match error {
            ReportError::Database(e) => e.into(),
            ReportError::Replay(e) => e.into(),
            ReportError::Repair(e) => e.into(),
            ReportError::Log(e) => e.into(),
        }
    }
}

impl From<RevError> for CliError {
    fn from(error: RevError) -> CliError {
        match error {
            RevError::Repo(e) => e.into(),
            RevError::Store(e) => e.into(),
            RevError::Ambiguous { ref candidates, .. } => {
                let list: Vec<String> = candidates.iter().map(|id| format!("{id:.12}")).collect();
                CliError::from_error(ErrorKind::Input, &error)
                    .hint(format!("candidates: {}", list.join(", ")))
                    .hint("use more hex digits")
            }
            RevError::Unknown { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("name a snapshot by hash prefix (4+ digits), tag, database name, HEAD~N or @{N}; see `migsnap log`"),
            _ => CliError::from_error(ErrorKind::Input, &error),
        }
    }
}

impl From<SideError> for CliError {
    fn from(error: SideError) -> CliError {
        match error {
            SideError::Repo(e) => e.into(),
            SideError::Revision(e) => e.into(),
            SideError::Store(e) => e.into(),
            SideError::Log(e) => e.into(),
            SideError::Sqlite(e) => e.into(),
        }
    }
}

impl From<LogError> for CliError {
    fn from(error: LogError) -> CliError {
        match error {
            LogError::Store(e) => e.into(),
            LogError::Schema { .. } => CliError::from_error(ErrorKind::Corrupt, &error)
                .hint("run `migsnap fsck` to check the store"),
        }
    }
}

impl From<DataDiffError> for CliError {
    fn from(error: DataDiffError) -> CliError {
        // Both sides are files the user named (or checkouts migsnap just
        // verified), so a failure to read one is bad input.
        CliError::from_error(ErrorKind::Input, &error)
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> CliError {
        CliError::from_error(io_kind(&error), &error)
    }
}

impl From<super::man::WriteError> for CliError {
    fn from(error: super::man::WriteError) -> CliError {
        let kind = match error.source.kind() {
            // `--out FILE`, or a file on the way: the path named is wrong.
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory => {
                ErrorKind::Input
            }
            _ => io_kind(&error.source),
        };
        CliError::from_error(kind, &error)
    }
}

impl From<BisectError> for CliError {
    fn from(error: BisectError) -> CliError {
        let reset = "`migsnap bisect reset` ends the session";
        match error {
            BisectError::Checkout(e) => e.into(),
            BisectError::Store(e) => e.into(),
            BisectError::Active { .. } => {
                CliError::from_error(ErrorKind::Refused, &error).hint(reset)
            }
            BisectError::NoSession { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("start one with `migsnap bisect start [BAD [GOOD...]]`"),
            BisectError::NotOnLine { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("bisect marks snapshots of the database's history; see `migsnap log`"),
            BisectError::Inconsistent { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("mark the other snapshot again if it was wrong, or see `migsnap bisect log`"),
            BisectError::ForeignRef { .. } => {
                CliError::from_error(ErrorKind::Input, &error).hint(reset)
            }
            BisectError::Aborted { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("exit 0 means good, 125 skip, 1-127 bad; the marks made so far are kept"),
            BisectError::Spawn { ref source, .. } | BisectError::Io { ref source, .. } => {
                CliError::from_error(io_kind(source), &error)
            }
            BisectError::NoHistory { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("take snapshots with `migsnap snapshot` first"),
        }
    }
}

impl From<crate::migrations::history::project::HistoryError> for CliError {
    fn from(error: crate::migrations::history::project::HistoryError) -> CliError {
        use crate::migrations::history::project::HistoryError;
        let e = CliError::from_error(
            match &error {
                HistoryError::Config(
                    crate::migrations::history::alembic_config::ConfigError::Io { source, .. },
                )
                | HistoryError::Directory { source, .. } => match io_kind(source) {
                    ErrorKind::Internal => ErrorKind::Input,
                    kind => kind,
                },
                _ => ErrorKind::Input,
            },
            &error,
        );
        match error {
            HistoryError::Config(_) => {
                e.hint("fix alembic.ini, or name the migrations in migsnap.toml ([databases.NAME.migrations])")
            }
            _ => e,
        }
    }
}

impl From<crate::migrations::replay::ReplayError> for CliError {
    fn from(error: crate::migrations::replay::ReplayError) -> CliError {
        use crate::migrations::replay::ReplayError;
        match error {
            ReplayError::Snapshot(e) => e.into(),
            ReplayError::Restore(e) => e.into(),
            ReplayError::Store(e) => e.into(),
            ReplayError::Database(e) => e.into(),
            ReplayError::Schema(_) => CliError::from_error(ErrorKind::Corrupt, &error)
                .hint("run `migsnap fsck` to check the store"),
            ReplayError::Scratch(ref source) => CliError::from_error(io_kind(source), &error),
            ReplayError::Start { ref failure, .. } => {
                let mut e = CliError::from_error(ErrorKind::Input, &error);
                if let Some(last) = failure.detail.lines().rev().find(|l| !l.trim().is_empty())
                    && !e.message.contains(last.trim())
                {
                    e.causes.push(last.trim().to_owned());
                }
                e.hint("the Python that runs the migrations needs the project's Alembic and imports; set python = \"…\" under [databases.NAME.migrations] in migsnap.toml")
            }
            ReplayError::Untrusted(ref untrusted) => {
                let dir = untrusted.directory().display().to_string();
                let config = crate::trust::user_config().map_or_else(
                    || "your config.toml".to_owned(),
                    |p| p.display().to_string(),
                );
                CliError::from_error(ErrorKind::Refused, &error).hint(format!(
                    "if you trust it, add it to {env} (`export {env}={dir}`) or to safe_directories in {config}",
                    env = crate::trust::SAFE_DIRECTORIES_ENV,
                ))
            }
            ReplayError::NoPython { .. } | ReplayError::Setting(_) => {
                CliError::from_error(ErrorKind::Input, &error)
            }
            ReplayError::Bootstrap {
                ref file,
                ref failure,
                ..
            } => {
                let mut e = CliError::from_error(ErrorKind::Input, &error);
                if let Some(last) = failure.detail.lines().rev().find(|l| !l.trim().is_empty())
                    && !e.message.contains(last.trim())
                {
                    e.causes.push(last.trim().to_owned());
                }
                match file {
                    Some(file) => e.hint(format!(
                        "fix {}, or the bootstrap of [replay] in migsnap.toml",
                        file.display()
                    )),
                    None => e.hint("fix the bootstrap of [replay] in migsnap.toml, or record another with `migsnap replay --bootstrap-from`"),
                }
            }
        }
    }
}

impl From<crate::migrations::lint::LintError> for CliError {
    fn from(error: crate::migrations::lint::LintError) -> CliError {
        use crate::migrations::lint::LintError;
        match error {
            LintError::Replay(e) => e.into(),
            LintError::Store(e) => e.into(),
            LintError::Since(_) => CliError::from_error(ErrorKind::Input, &error)
                .hint("`migsnap history` lists the revisions"),
            LintError::Database(e) => e.into(),
            LintError::SinceNewHead { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("name the revision before it (--since PARENT), review uncommitted files with --base HEAD or --staged, or track the database so that head means its stamped revision"),
            LintError::GitMissing(_) => CliError::from_error(ErrorKind::Input, &error)
                .hint("--base and --staged need git on PATH"),
            LintError::UnknownStamp { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("--since head reads the database's alembic_version; name a revision instead"),
            LintError::BadRef { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("--base takes a commit, branch or tag of the project's git repository"),
            LintError::NotAlembic => CliError::from_error(ErrorKind::Input, &error)
                .hint("--base is for Alembic projects; use --since REV"),
            LintError::Git { .. } | LintError::NotARepository { .. } => {
                CliError::from_error(ErrorKind::Input, &error)
            }
        }
    }
}

impl From<crate::migrations::roundtrip::RoundTripError> for CliError {
    fn from(error: crate::migrations::roundtrip::RoundTripError) -> CliError {
        use crate::migrations::roundtrip::RoundTripError;
        match error {
            RoundTripError::Replay(e) => e.into(),
            RoundTripError::NoDowngrade { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("point [migrations] at the Alembic project or the SQL folder instead of an `upgrade` template"),
            // ResolveError has no source: its text is all there is to keep.
            RoundTripError::Since(e) => CliError::new(ErrorKind::Input, format!("--since: {e}"))
                .hint("`migsnap history` lists the revisions"),
            RoundTripError::Unplaced { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("`migsnap status` on the database says what its rows mean, `migsnap fix` how to place it"),
            RoundTripError::Content(_) => CliError::from_error(ErrorKind::Internal, &error),
        }
    }
}

impl From<crate::snapshots::tag::TagError> for CliError {
    fn from(error: crate::snapshots::tag::TagError) -> CliError {
        use crate::snapshots::tag::TagError;
        match error {
            TagError::Store(e) => e.into(),
            TagError::Exists { ref name, .. } => {
                let hint = format!("delete it first with `migsnap tag -d {name}`");
                CliError::from_error(ErrorKind::Input, &error).hint(hint)
            }
            TagError::BadName { .. } | TagError::Missing { .. } => {
                CliError::from_error(ErrorKind::Input, &error)
            }
        }
    }
}

impl From<crate::snapshots::retention::RetentionError> for CliError {
    fn from(error: crate::snapshots::retention::RetentionError) -> CliError {
        use crate::snapshots::retention::RetentionError;
        match error {
            RetentionError::Store(e) => e.into(),
            RetentionError::EmptyPolicy => CliError::from_error(ErrorKind::Input, &error)
                .hint("give at least one rule, e.g. `--keep-last 10` or `--keep-daily 7`"),
            RetentionError::BadTag { .. } => CliError::from_error(ErrorKind::Input, &error),
        }
    }
}

impl From<migsnap_store::gc::GcError> for CliError {
    fn from(error: migsnap_store::gc::GcError) -> CliError {
        use migsnap_store::gc::GcError;
        match error {
            GcError::Store(e) => e.into(),
            GcError::Unreadable { .. } | GcError::Missing { .. } | GcError::BrokenRef { .. } => {
                CliError::from_error(ErrorKind::Corrupt, &error)
                    .hint("run `migsnap fsck --read-data` to see what is damaged; gc deletes nothing until it is repaired")
            }
        }
    }
}

impl From<crate::migrations::history::graph::ResolveError> for CliError {
    fn from(error: crate::migrations::history::graph::ResolveError) -> CliError {
        CliError::from_error(ErrorKind::Input, &error)
    }
}

impl From<crate::snapshots::log::SpecError> for CliError {
    fn from(error: crate::snapshots::log::SpecError) -> CliError {
        CliError::from_error(ErrorKind::Input, &error)
    }
}

impl From<crate::migrations::drift::AcceptError> for CliError {
    fn from(error: crate::migrations::drift::AcceptError) -> CliError {
        use crate::migrations::drift::AcceptError;
        match error {
            AcceptError::Replay(e) => e.into(),
            AcceptError::NoVariant { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("`migsnap accept --list` shows the accepted variants"),
            AcceptError::Ambiguous { .. } => {
                CliError::from_error(ErrorKind::Input, &error).hint("give more digits of the id")
            }
            AcceptError::Changed { .. } => CliError::from_error(ErrorKind::Refused, &error),
        }
    }
}

impl From<crate::migrations::guard::GuardError> for CliError {
    /// Everything but the undo hint of
    /// [`GuardError::AfterCommand`](crate::migrations::guard::GuardError::AfterCommand), which needs
    /// the tracked database's name and is added by `cli::guard`.
    fn from(error: crate::migrations::guard::GuardError) -> CliError {
        use crate::migrations::guard::GuardError;
        match error {
            GuardError::AfterCommand { source, .. } => (*source).into(),
            GuardError::NoCommand => CliError::from_error(ErrorKind::Usage, &error),
            GuardError::Start { .. } => CliError::from_error(ErrorKind::Input, &error),
            GuardError::Snapshot(e) => e.into(),
            GuardError::Read(e) => e.into(),
            GuardError::Check(e) => e.into(),
            GuardError::Restore(e) => e.into(),
            GuardError::Damaged { before, .. } => CliError::from_error(ErrorKind::Refused, &error)
                .hint(format!(
                    "recover the database first; `migsnap checkout {before:.12} -o FILE` gives you a copy"
                )),
        }
    }
}

impl From<crate::migrations::workspace::DatabaseError> for CliError {
    fn from(error: crate::migrations::workspace::DatabaseError) -> CliError {
        use crate::migrations::workspace::DatabaseError;
        match error {
            DatabaseError::File(e) => e.into(),
            DatabaseError::NotFound { .. } => CliError::from_error(ErrorKind::Input, &error)
                .hint("name it: `migsnap status path/to/app.db`, or `migsnap track NAME PATH`, or [databases.NAME] path = \"…\" in migsnap.toml"),
        }
    }
}

impl From<crate::migrations::record::RecordError> for CliError {
    fn from(e: crate::migrations::record::RecordError) -> Self {
        use crate::migrations::record::RecordError;
        match e {
            RecordError::Snapshot(e) => e.into(),
            RecordError::Log(e) => e.into(),
            RecordError::Replay(e) => e.into(),
        }
    }
}

impl From<crate::demo::DemoError> for CliError {
    fn from(error: crate::demo::DemoError) -> CliError {
        // The demo builds its own database in its own directory: a failure
        // there is migsnap's, not the user's input.
        CliError::from_error(ErrorKind::Internal, &error)
    }
}

impl From<crate::repo::SelectError> for CliError {
    fn from(error: crate::repo::SelectError) -> CliError {
        use crate::repo::{RepoError, SelectError};
        match error {
            SelectError::Repo(e) => e.into(),
            SelectError::File(e) => e.into(),
            SelectError::Track { path, source } => {
                let from_stem = matches!(source, RepoError::BadName { .. });
                let e = CliError::from(source);
                if from_stem {
                    e.hint(format!(
                        "the name comes from the file name; choose one with `migsnap track NAME {}`",
                        path.display()
                    ))
                } else {
                    e
                }
            }
        }
    }
}

impl From<crate::migrations::fix::FixError> for CliError {
    fn from(error: crate::migrations::fix::FixError) -> CliError {
        use crate::migrations::fix::FixError;
        match error {
            // Applying a fix nobody can choose safely is a safety refusal.
            FixError::NothingSafe { .. } => CliError::from_error(ErrorKind::Refused, &error),
            FixError::UnknownOption { .. } => CliError::from_error(ErrorKind::Usage, &error),
            FixError::Destructive { .. } => CliError::from_error(ErrorKind::Refused, &error)
                .hint("pass --allow-destructive to drop them, or leave out --choose to take the recommended way out, which keeps them"),
            FixError::Track(e) => e.into(),
            FixError::Restore(e) => e.into(),
            FixError::Replay(e) => e.into(),
            FixError::History(e) => e.into(),
        }
    }
}
