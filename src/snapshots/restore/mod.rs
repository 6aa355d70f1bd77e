//! Writing a snapshot's database back: `checkout` into a new file, `restore`
//! in place.
//!
//! Both rebuild the image into a temporary file in the target's directory
//! and verify it (every page hash on read, the whole-image hash on write,
//! then `PRAGMA quick_check`) before the target is touched.
//!
//! An existing, sound database is then changed **in place** under SQLite's
//! own write lock (`in_place`): writers wait on the lock and afterwards
//! see the new content, so no commit can land between the safety snapshot
//! and the restore, or in a replaced file. Only what that cannot do (no
//! target, a target SQLite cannot lock, another page size, FULL
//! auto-vacuum) falls back to renaming the verified file over the target,
//! with the identity and holders of the old file checked around the rename.
//!
//! `restore` first records a safety snapshot of the current database and
//! reads it back, so a restore can itself be undone by restoring it.

mod in_place;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use migsnap_store::bulk::Proof;
use migsnap_store::image;
use migsnap_store::{ObjectId, Progress, View};
use tempfile::NamedTempFile;

use crate::repo::{Repo, Tracked};
use crate::snapshots::page_sums::PageSums;
use crate::snapshots::pages::{self, ImageError};
use crate::snapshots::snapshot::{
    self, IntegrityFailure, Recorded, Safety, SnapshotError, SnapshotOptions,
};
use crate::snapshots::sqlite::{self, FileId, SqliteError, WriteLock};

/// What can go wrong writing a snapshot back.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The snapshot has no pages.
    #[error("snapshot {snapshot:.12} is schema-only: it has no data to restore")]
    SchemaOnly {
        /// The snapshot.
        snapshot: ObjectId,
    },
    /// Retention gave up the snapshot's pages.
    #[error(
        "the data of snapshot {snapshot:.12} was forgotten by retention; only its schema remains"
    )]
    Forgotten {
        /// The snapshot.
        snapshot: ObjectId,
    },
    /// The output exists and `--force` was not given.
    #[error("{path} already exists")]
    Exists {
        /// The output path.
        path: PathBuf,
    },
    /// `-wal`, `-shm` or `-journal` files lie beside an absent output:
    /// SQLite would replay them into the new file.
    #[error("{path} has leftover {}: SQLite would apply them to the new file", .sidecars.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Sidecars {
        /// The output path.
        path: PathBuf,
        /// The leftover files.
        sidecars: Vec<PathBuf>,
    },
    /// The output path is a symlink.
    #[error(
        "{path} is a symbolic link (to {real}); refusing to write through it, name the real file"
    )]
    Symlink {
        /// The output path.
        path: PathBuf,
        /// Where it points, resolved.
        real: PathBuf,
    },
    /// The output exists but is not a regular file (a device, a FIFO, a
    /// directory): it is never replaced.
    #[error("{path} is not a regular file; refusing to replace it")]
    NotRegular {
        /// The output path.
        path: PathBuf,
    },
    /// The database file has no write permission.
    #[error("{path} is read-only (mode {mode:o})")]
    ReadOnly {
        /// The database.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Other processes have the database open.
    #[error("database {path} is in use by process(es) {}", pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))]
    InUse {
        /// The database.
        path: PathBuf,
        /// Processes holding it, where known.
        pids: Vec<u32>,
    },
    /// Another writer kept the database locked past the busy timeout while
    /// the write lock was being taken (`--force` does not override this:
    /// nothing can be written without the lock).
    #[error("database {path} stayed locked by another writer for {waited:?}")]
    Locked {
        /// The database.
        path: PathBuf,
        /// How long the lock was waited for.
        waited: std::time::Duration,
    },
    /// The current database could not be snapshotted first.
    #[error("cannot take the safety snapshot of {path}")]
    Safety {
        /// The database.
        path: PathBuf,
        /// Whether a restore asked (which can go ahead without one).
        restoring: bool,
        /// Why.
        #[source]
        source: Box<SnapshotError>,
    },
    /// The safety snapshot does not read back: the undo would not work.
    #[error(
        "the safety snapshot {snapshot:.12} of {path} does not read back, so the change could not be undone; nothing was written"
    )]
    UndoUnreadable {
        /// The database.
        path: PathBuf,
        /// The safety snapshot.
        snapshot: ObjectId,
        /// Why.
        #[source]
        source: Box<ImageError>,
    },
    /// The database changed while a rewrite was being prepared.
    #[error(
        "{path} changed while the change was being prepared; nothing was written, run the command again"
    )]
    Changed {
        /// The database.
        path: PathBuf,
    },
    /// After the rename, processes still have the replaced file open: what
    /// they write from now on goes to a file that no longer has a name.
    #[error("{path} was replaced, but process(es) {} still have the old file open and may write to it; restart them (the old state is in the safety snapshot)", pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))]
    StillOpen {
        /// The database.
        path: PathBuf,
        /// The processes.
        pids: Vec<u32>,
    },
    /// Another process put a file at the target right after the rename.
    #[error(
        "{path} was replaced by another process right after the restored file was renamed into place; check what it holds (the previous state is in the safety snapshot)"
    )]
    Raced {
        /// The database.
        path: PathBuf,
    },
    /// The pages written in place do not read back as the snapshot's.
    #[error("{path}: page {pgno} does not read back as written; restore the safety snapshot")]
    ReadBack {
        /// The database.
        path: PathBuf,
        /// The first page that differs (0: the page count differs).
        pgno: u32,
    },
    /// The snapshot was recorded from a database that failed its
    /// integrity check, and `--force` was not given.
    #[error(
        "snapshot {snapshot:.12} was recorded from a database that fails its integrity check ({})",
        failure.summary()
    )]
    Damaged {
        /// The snapshot.
        snapshot: ObjectId,
        /// How it failed.
        failure: IntegrityFailure,
    },
    /// The database to change fails its integrity check: its safety
    /// snapshot keeps it, and it is not changed.
    #[error(
        "database {path} fails its integrity check ({}); it is kept as snapshot {safety:.12} and was not changed",
        failure.summary()
    )]
    DamagedDatabase {
        /// The database.
        path: PathBuf,
        /// Whether a restore asked (which can go ahead with `--force`).
        restoring: bool,
        /// Its safety snapshot, flagged.
        safety: ObjectId,
        /// How it failed.
        failure: IntegrityFailure,
    },
    /// The rebuilt file fails `PRAGMA quick_check`.
    #[error(
        "snapshot {snapshot:.12} rebuilds into a database that fails quick_check: {}",
        sqlite::summarise_problems(problems)
    )]
    QuickCheck {
        /// The snapshot.
        snapshot: ObjectId,
        /// SQLite's verdict, one problem a line.
        problems: Vec<String>,
    },
    /// Rebuilding failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
    /// Checking the rebuilt or current database failed.
    #[error(transparent)]
    Sqlite(#[from] SqliteError),
    /// File system work on the target failed.
    #[error("cannot write {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How the target was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A new file renamed into place (no target, or one that could not be
    /// written in place).
    Rename,
    /// Changed pages written into the live database under its write lock.
    InPlace {
        /// Pages written (the rest were already equal).
        pages_written: u32,
    },
}

/// How the verified file beside the target was built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rebuild {
    /// Every page read from the store.
    Full,
    /// A copy of the live database, with only the pages whose hash is not
    /// the snapshot's read from the store.
    Delta {
        /// Pages read from the store.
        pages_fetched: u32,
        /// Pages the live file already held (never decompressed).
        pages_reused: u32,
    },
}

/// Something the user should know about a restore that went ahead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The snapshot was taken of another database.
    OtherDatabase {
        /// The database the snapshot belongs to.
        from: String,
    },
    /// The file had other hard links: written in place, every name has the
    /// new content; renamed over, only this one.
    HardLinks {
        /// The link count before the restore.
        links: u64,
        /// Whether the file was written in place.
        in_place: bool,
    },
    /// The snapshot written, or the safety snapshot of the database it
    /// replaced, records a database that fails its integrity check.
    Damaged {
        /// The snapshot.
        snapshot: ObjectId,
        /// Whether it is the safety snapshot.
        safety: bool,
        /// How it failed.
        failure: IntegrityFailure,
    },
    /// The current file could not be snapshotted; a raw copy was kept.
    RawCopy {
        /// The copy of the main file (its sidecars beside it).
        path: PathBuf,
        /// Whether a (flagged) safety snapshot was taken too.
        snapshotted: bool,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::OtherDatabase { from } => {
                write!(f, "the snapshot was taken of database {from}, not this one")
            }
            Warning::HardLinks {
                links,
                in_place: true,
            } => write!(
                f,
                "the file has {links} hard links: all of them now have the restored content"
            ),
            Warning::HardLinks {
                links,
                in_place: false,
            } => write!(
                f,
                "the file had {links} hard links: only this name has the restored content, the others keep the old file"
            ),
            Warning::Damaged {
                snapshot,
                safety,
                failure,
            } => write!(
                f,
                "{} {snapshot:.12} records a database that fails its integrity check: {}",
                if *safety {
                    "the safety snapshot"
                } else {
                    "snapshot"
                },
                failure.summary()
            ),
            Warning::RawCopy {
                path,
                snapshotted: false,
            } => write!(
                f,
                "no safety snapshot: the previous file is kept as {}",
                path.display()
            ),
            Warning::RawCopy {
                path,
                snapshotted: true,
            } => write!(
                f,
                "the previous file is also kept as {}, with its -wal or -journal",
                path.display()
            ),
        }
    }
}

/// What a checkout or restore wrote.
#[derive(Clone, Debug)]
pub struct Restored {
    /// The file written.
    pub path: PathBuf,
    /// The snapshot it came from.
    pub snapshot: ObjectId,
    /// Its size in bytes.
    pub bytes: u64,
    /// The safety snapshot taken first (restore only), or the head when the
    /// database was already recorded unchanged.
    pub safety: Option<ObjectId>,
    /// How the file was written.
    pub method: Method,
    /// How the verified file was built.
    pub rebuild: Rebuild,
    /// What the user should know.
    pub warnings: Vec<Warning>,
}

/// What is at a target path.
enum Target {
    Absent,
    File(std::fs::Metadata),
}

/// Refuses symlinks and anything but a regular file.
fn inspect(path: &Path) -> Result<Target, RestoreError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Target::Absent),
        Err(e) => Err(io(path)(e)),
        Ok(meta) if meta.file_type().is_symlink() => Err(RestoreError::Symlink {
            path: path.to_path_buf(),
            real: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        }),
        Ok(meta) if !meta.is_file() => Err(RestoreError::NotRegular {
            path: path.to_path_buf(),
        }),
        Ok(meta) => Ok(Target::File(meta)),
    }
}

/// Writes the database of `snapshot` to the file `out`. An existing `out`
/// is replaced only with `force`, in place when it is a database SQLite can
/// lock (its writers wait, and see the new content after), waiting up to
/// `busy_timeout` for that lock.
pub fn checkout(
    repo: &Repo,
    snapshot: ObjectId,
    out: &Path,
    force: bool,
    busy_timeout: std::time::Duration,
    progress: &mut dyn Progress,
) -> Result<Restored, RestoreError> {
    let view = repo.store.view();
    let damaged = integrity_of(view, snapshot)?;
    let mut written = match inspect(out)? {
        Target::File(_) if !force => Err(RestoreError::Exists {
            path: out.to_path_buf(),
        }),
        Target::File(meta) => {
            let lock = lock_if_database(out, busy_timeout)?;
            // A checkout gets the permissions the database had, not the
            // replaced file's: written in place, the file is given them.
            let built = rebuild(view, snapshot, out, None, Seed::Empty, progress)?;
            let permissions = built
                .temp
                .as_file()
                .metadata()
                .map_err(io(built.temp.path()))?
                .permissions();
            let written = replace(view, snapshot, built, out, &meta, lock, None)?;
            if matches!(written.method, Method::InPlace { .. }) {
                std::fs::set_permissions(out, permissions).map_err(io(out))?;
            }
            Ok(written)
        }
        Target::Absent => {
            let sidecars = existing_sidecars(out);
            if !sidecars.is_empty() && !force {
                return Err(RestoreError::Sidecars {
                    path: out.to_path_buf(),
                    sidecars,
                });
            }
            let built = rebuild(view, snapshot, out, None, Seed::Empty, progress)?;
            create(built, out, snapshot)
        }
    }?;
    written
        .warnings
        .splice(0..0, damaged_warning(snapshot, damaged, false));
    Ok(written)
}

/// A temporary file beside a checkout's output that is filled before the
/// checkout runs ([`checkout_prepared`]): a clone writes the pages it
/// downloads into it. Dropped unused, it is removed.
pub struct Prepared(NamedTempFile);

impl Prepared {
    /// A new empty file beside `out`, which must not exist.
    pub fn beside(out: &Path) -> Result<Prepared, RestoreError> {
        match inspect(out)? {
            Target::File(_) => Err(RestoreError::Exists {
                path: out.to_path_buf(),
            }),
            Target::Absent => Ok(Prepared(temp_beside(out)?)),
        }
    }

    /// The file, for writing pages into at their offsets.
    pub fn file(&self) -> &File {
        self.0.as_file()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// What is known of a [`Prepared`] file's pages when its checkout starts.
pub enum Prefilled<'a> {
    /// Nothing: every page is hashed in place.
    Unknown,
    /// These pages were written there from objects checked against their
    /// ids: only the others are read from the store.
    Written(pages::Written<'a>),
    /// Every page was written, the whole-image digest matched the file's
    /// bytes, and the file was synced and checked ([`check_file`]).
    Checked(FileChecked),
}

/// A rebuilt file synced and put through `quick_check`.
#[derive(Debug)]
pub struct FileChecked {
    /// What `quick_check` found; none when the file is sound.
    problems: Vec<String>,
}

/// Syncs `file` (at `path`) and runs `quick_check` on it, side by side:
/// both wait on the disk or the page cache. Both must pass before a
/// rebuilt file is renamed anywhere.
pub fn check_file(file: &File, path: &Path) -> Result<FileChecked, RestoreError> {
    let (synced, verdict) = std::thread::scope(|scope| {
        let sync = scope.spawn(|| file.sync_all());
        let verdict = sqlite::quick_check(path);
        (sync.join().expect("BUG: fsync thread panicked"), verdict)
    });
    synced.map_err(io(path))?;
    Ok(FileChecked { problems: verdict? })
}

/// Checks `snapshot` out into the absent `out`, starting from `prepared`
/// and what is known of it ([`Prefilled`]): only the pages it does not
/// already hold are read from the store, and the file is verified as any
/// checkout's is (whole-image digest, `quick_check`, fsync) before it is
/// renamed to `out`.
pub fn checkout_prepared(
    repo: &Repo,
    snapshot: ObjectId,
    out: &Path,
    prepared: Prepared,
    prefilled: Prefilled<'_>,
    progress: &mut dyn Progress,
) -> Result<Restored, RestoreError> {
    let view = repo.store.view();
    let damaged = integrity_of(view, snapshot)?;
    let sidecars = existing_sidecars(out);
    if !sidecars.is_empty() {
        return Err(RestoreError::Sidecars {
            path: out.to_path_buf(),
            sidecars,
        });
    }
    let built = rebuild(
        view,
        snapshot,
        out,
        None,
        Seed::Prepared(prepared.0, prefilled),
        progress,
    )?;
    let mut written = create(built, out, snapshot)?;
    written.warnings = damaged_warning(snapshot, damaged, false);
    Ok(written)
}

/// How `snapshot`'s database failed its integrity check when recorded;
/// `None` when it passed.
fn integrity_of(
    view: View<'_>,
    snapshot: ObjectId,
) -> Result<Option<IntegrityFailure>, RestoreError> {
    Ok(Recorded::from_snapshot(&view.read_snapshot(&snapshot)?).integrity)
}

/// The warning that `snapshot` (`safety`: the safety snapshot just taken)
/// records a database that failed its integrity check, if it does.
fn damaged_warning(
    snapshot: ObjectId,
    failure: Option<IntegrityFailure>,
    safety: bool,
) -> Vec<Warning> {
    failure
        .map(|failure| Warning::Damaged {
            snapshot,
            safety,
            failure,
        })
        .into_iter()
        .collect()
}

/// Renames a verified file to the absent `out`, after removing sidecars
/// that belong to no file (a deleted database's).
fn create(built: Built, out: &Path, snapshot: ObjectId) -> Result<Restored, RestoreError> {
    remove_sidecars(out)?;
    let bytes = built.bytes;
    let rebuild = built.rebuild;
    built
        .temp
        .persist_noclobber(out)
        .map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => RestoreError::Exists {
                path: out.to_path_buf(),
            },
            _ => io(out)(e.error),
        })?;
    sync_parent(out)?;
    Ok(Restored {
        path: out.to_path_buf(),
        snapshot,
        bytes,
        safety: None,
        method: Method::Rename,
        rebuild,
        warnings: Vec::new(),
    })
}

/// How a live database file is replaced in place: by [`restore`], and by
/// [`rewrite`], which stamp, repair and guard use.
#[derive(Clone, Debug, Default)]
pub struct ReplaceOptions {
    /// Go ahead even though other processes have the database open (they
    /// wait on its lock, then see the new content), or it is read-only.
    pub force: bool,
    /// Restore even when the current database cannot be snapshotted first
    /// (a raw copy of the file is kept beside it instead).
    pub no_safety_snapshot: bool,
    /// Message of the safety snapshot.
    pub message: String,
    /// Busy timeout for reading and locking the current database.
    pub busy_timeout: std::time::Duration,
}

/// Puts the database of `snapshot` back in place of `db`.
pub fn restore(
    repo: &mut Repo,
    snapshot: ObjectId,
    db: &Tracked,
    options: &ReplaceOptions,
    progress: &mut dyn Progress,
) -> Result<Restored, RestoreError> {
    let target = db.path.as_path();
    // A damaged state goes back into the application's own file only when
    // asked; `checkout` into another file is how to look at it first.
    let damaged = match integrity_of(repo.store.view(), snapshot)? {
        Some(failure) if !options.force => {
            return Err(RestoreError::Damaged { snapshot, failure });
        }
        failure => damaged_warning(snapshot, failure, false),
    };
    let meta = match inspect(target)? {
        Target::Absent => {
            let built = rebuild(
                repo.store.view(),
                snapshot,
                target,
                None,
                Seed::Empty,
                progress,
            )?;
            let mut written = create(built, target, snapshot)?;
            written.warnings = [damaged, other_database(repo, snapshot, db)?].concat();
            return Ok(written);
        }
        Target::File(meta) => meta,
    };
    // Check the snapshot can be rebuilt before anything else happens.
    let (wanted, _) = plan(repo.store.view(), snapshot)?;
    refuse_unless_forced(target, &meta, options)?;
    // Every decision below is taken before anything is written: a refusal
    // leaves the file, its sidecars and the store as they were.
    let lock = lock_if_database(target, options.busy_timeout)?;
    let mut warnings = [damaged, other_database(repo, snapshot, db)?].concat();
    let (safety, kept_sums) = safety_of_restored(
        repo,
        db,
        snapshot,
        options,
        lock.as_ref(),
        &mut warnings,
        progress,
    )?;
    let lock = match (lock, safety) {
        (Some(lock), Some(safety)) => {
            let view = repo.store.view();
            match from_store_in_place(
                view,
                lock,
                snapshot,
                safety,
                &wanted,
                kept_sums,
                repo.store.dir(),
                &meta,
                target,
                progress,
            )? {
                Ok(mut written) => {
                    written.warnings.splice(0..0, warnings);
                    return Ok(written);
                }
                Err(lock) => Some(lock),
            }
        }
        (lock, _) => lock,
    };
    // A live database of the snapshot's page size seeds the rebuild: most
    // of its pages are usually the snapshot's already.
    let block_size = wanted.image.block_size;
    let seed = match &lock {
        Some(_) if live_page_size(target)? == Some(block_size) => Seed::Live(target),
        _ => Seed::Empty,
    };
    let built = rebuild(
        repo.store.view(),
        snapshot,
        target,
        Some(&meta),
        seed,
        progress,
    )?;
    if let Some(safety) = safety {
        // The undo is proven before the target is touched: every block of
        // the safety snapshot that the restored file will not hold is read
        // back from the store here. The blocks it shares with the restored
        // image are in the rebuilt file, each hash-checked (fetched from the
        // store by a full rebuild, or kept from the live file by a delta
        // one), and undoing is itself a restore that reuses them; reading
        // their store copies too would decompress the unchanged 99% that
        // the delta exists to skip. `fsck --read-data` checks those copies.
        let undo = undo_listing(repo.store.view(), target, safety, repo.store.dir())?;
        prove_undo(repo.store.view(), target, safety, undo, &wanted, progress)?;
    }
    let mut written = replace(
        repo.store.view(),
        snapshot,
        built,
        target,
        &meta,
        lock,
        safety,
    )?;
    written.warnings.splice(0..0, warnings);
    Ok(written)
}

/// Takes the safety snapshot of the database a restore replaces. A damaged
/// database is refused unless `--force` or `--no-safety-snapshot` asks to
/// go on, and a database that cannot be snapshotted only with
/// `--no-safety-snapshot`; both then get a raw copy, named in `warnings`.
/// With the database's write `lock`, a restore in place may follow: it
/// reads its result back and checks the pages it kept against their
/// CRC-64 from this snapshot's pass, which come back with it (none
/// without a lock or a snapshot).
fn safety_of_restored(
    repo: &mut Repo,
    db: &Tracked,
    restoring: ObjectId,
    options: &ReplaceOptions,
    lock: Option<&WriteLock>,
    warnings: &mut Vec<Warning>,
    progress: &mut dyn Progress,
) -> Result<(Option<ObjectId>, Vec<u64>), RestoreError> {
    let target = db.path.as_path();
    let sums = match lock {
        Some(lock) => Some(Arc::new(PageSums::with_pages(
            lock.facts()?.page_count as usize,
        ))),
        None => None,
    };
    let before = Safety::Restore { restoring };
    let safety = match take_safety(repo, db, options, before, sums.clone(), progress) {
        Ok(safety) => {
            // The damage may come from a sidecar (a stray -wal replayed
            // into the file): only a raw copy of the files keeps what lies
            // under it, and only --force (or --no-safety-snapshot, which
            // asks for that copy) replaces them.
            if let Some(failure) = integrity_of(repo.store.view(), safety)? {
                if !options.force && !options.no_safety_snapshot {
                    return Err(RestoreError::DamagedDatabase {
                        path: target.to_path_buf(),
                        restoring: true,
                        safety,
                        failure,
                    });
                }
                warnings.extend(damaged_warning(safety, Some(failure), true));
                warnings.push(Warning::RawCopy {
                    path: keep_raw_copy(target)?,
                    snapshotted: true,
                });
            }
            Some(safety)
        }
        Err(_) if options.no_safety_snapshot => {
            warnings.push(Warning::RawCopy {
                path: keep_raw_copy(target)?,
                snapshotted: false,
            });
            None
        }
        Err(e) => return Err(e),
    };
    // The snapshot's options are gone, and with them the other holder of
    // the sums; if one lingered, every page is hashed instead.
    let kept_sums = sums
        .and_then(|sums| Arc::try_unwrap(sums).ok())
        .map(PageSums::into_inner)
        .unwrap_or_default();
    Ok((safety, kept_sums))
}

/// The refusals `--force` overrides: other processes have the file open,
/// or it has no write permission.
fn refuse_unless_forced(
    target: &Path,
    meta: &std::fs::Metadata,
    options: &ReplaceOptions,
) -> Result<(), RestoreError> {
    use std::os::unix::fs::PermissionsExt;
    if options.force {
        return Ok(());
    }
    let pids = sqlite::holders(target);
    if !pids.is_empty() || sqlite::is_locked(target) {
        return Err(RestoreError::InUse {
            path: target.to_path_buf(),
            pids,
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o222 == 0 {
        return Err(RestoreError::ReadOnly {
            path: target.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Takes the write lock of `path` when SQLite can (a database file); a
/// file SQLite cannot open as a database gets none. A lock held past the
/// busy timeout is "in use".
fn lock_if_database(
    path: &Path,
    busy_timeout: std::time::Duration,
) -> Result<Option<WriteLock>, RestoreError> {
    match WriteLock::acquire(path, busy_timeout) {
        Ok(lock) => Ok(Some(lock)),
        Err(SqliteError::Busy { path, waited }) => Err(RestoreError::Locked { path, waited }),
        Err(
            SqliteError::Corrupt { .. }
            | SqliteError::NotSqlite { .. }
            | SqliteError::Empty { .. }
            | SqliteError::Truncated { .. },
        ) => Ok(None),
        Err(SqliteError::ReadOnly { .. } | SqliteError::CannotOpen { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A warning when `snapshot` belongs to another database than `db`.
fn other_database(
    repo: &Repo,
    snapshot: ObjectId,
    db: &Tracked,
) -> Result<Vec<Warning>, RestoreError> {
    let from = repo.store.view().read_snapshot(&snapshot)?.database;
    Ok(if from == db.name {
        Vec::new()
    } else {
        vec![Warning::OtherDatabase { from }]
    })
}

/// Records the safety snapshot of `db`, marked as taken `before` what
/// (or finds the head already holds its content: the head is then the
/// safety snapshot, unmarked, as nothing new is written).
fn take_safety(
    repo: &mut Repo,
    db: &Tracked,
    options: &ReplaceOptions,
    before: Safety,
    page_sums: Option<Arc<PageSums>>,
    progress: &mut dyn Progress,
) -> Result<ObjectId, RestoreError> {
    let restoring = matches!(before, Safety::Restore { .. });
    let safety_options = SnapshotOptions {
        message: options.message.clone(),
        busy_timeout: options.busy_timeout,
        safety: Some(before),
        page_sums,
        ..SnapshotOptions::default()
    };
    let safety = match snapshot::take(repo, db, &safety_options, progress) {
        Ok(outcome) => outcome.id(),
        Err(e) => {
            return Err(RestoreError::Safety {
                path: db.path.clone(),
                restoring,
                source: Box::new(e),
            });
        }
    };
    Ok(safety)
}

/// Writes `wanted`, the image of `snapshot`, into the live database (`meta`)
/// that `lock` holds, straight from the store, when it can take it in place: same
/// page size, no FULL auto-vacuum, and a safety snapshot that lists the
/// pages it holds now. Gives the lock back when it cannot.
///
/// The undo is proven first (see [`prove_undo`]), and nothing is copied:
/// the safety snapshot hashed every live page under this lock, so the pages
/// that differ are known from the two listings, and only those are read
/// from the store and written.
#[allow(clippy::too_many_arguments)] // restore's inputs, passed through
fn from_store_in_place(
    view: View<'_>,
    lock: WriteLock,
    snapshot: ObjectId,
    safety: ObjectId,
    wanted: &image::SpilledImage,
    kept_sums: Vec<u64>,
    spill_dir: &Path,
    meta: &std::fs::Metadata,
    target: &Path,
    progress: &mut dyn Progress,
) -> Result<Result<Restored, WriteLock>, RestoreError> {
    // What a killed checkout or restore left beside the target goes, as
    // when a file is rebuilt here.
    remove_stale_temp_files(parent_dir(target));
    let facts = lock.facts()?;
    let live = undo_listing(view, target, safety, spill_dir)?;
    let fits = facts.page_size == wanted.image.block_size
        && !facts.full_auto_vacuum
        && live.image.block_size == facts.page_size
        && live.image.block_count == facts.page_count;
    if !fits {
        return Ok(Err(lock));
    }
    // Which pages to write, and which to read back for the undo, is all a
    // restore needs of the two listings: each is read from its file a
    // window at a time, never held (32 bytes a page).
    let plan = in_place::Plan::new(&live, wanted, kept_sums)?;
    prove_undo(view, target, safety, live, wanted, progress)?;
    let written =
        in_place::apply_from_store(lock, &facts, view, &wanted.image, &plan, target, progress)?;
    Ok(Ok(Restored {
        path: target.to_path_buf(),
        snapshot,
        bytes: wanted.image.len(),
        safety: Some(safety),
        method: Method::InPlace {
            pages_written: written.pages,
        },
        rebuild: Rebuild::Delta {
            pages_fetched: written.pages,
            pages_reused: written.kept,
        },
        warnings: hard_links(meta, true),
    }))
}

/// The listing of the safety snapshot `safety` of `path`, spilled to a
/// file in `dir` (in memory when no file can be made); a store that cannot
/// resolve it means the undo would not work.
fn undo_listing(
    view: View<'_>,
    path: &Path,
    safety: ObjectId,
    dir: &Path,
) -> Result<image::SpilledImage, RestoreError> {
    let unreadable = |e: migsnap_store::Error| RestoreError::UndoUnreadable {
        path: path.to_path_buf(),
        snapshot: safety,
        source: Box::new(e.into()),
    };
    let record = view.read_snapshot(&safety).map_err(unreadable)?;
    let image_id = record
        .image
        .ok_or(RestoreError::SchemaOnly { snapshot: safety })?;
    let live = image::spill_or_hold(view, &image_id, dir).map_err(unreadable)?;
    // A safety snapshot that is an older head retention forgot may have
    // lost pages; `prove_undo` reads every one the restore will not hold.
    Ok(live)
}

/// Proves the undo of a restore can be carried out before anything is
/// written: reads back every page of the safety snapshot `safety` (listed
/// by `resolved`, hash-checked as read) except those the restored snapshot holds at the
/// same index in `restored` (its listing), which the restored file holds,
/// hash-checked.
/// The safety snapshot may reuse pages stored long ago, or be the head
/// itself; nothing read them then. `resolved` is dropped as soon as the
/// pages to read are known, before any is read.
fn prove_undo(
    view: View<'_>,
    path: &Path,
    safety: ObjectId,
    resolved: image::SpilledImage,
    restored: &image::SpilledImage,
    progress: &mut dyn Progress,
) -> Result<(), RestoreError> {
    let unreadable = |source: ImageError| RestoreError::UndoUnreadable {
        path: path.to_path_buf(),
        snapshot: safety,
        source: Box::new(source),
    };
    // Compared index by index, not through a set of every id: a set of a
    // 4 GiB image's million ids costs more memory than the rest of the
    // restore, and a page the restored image holds at another index is
    // only read back once more.
    let mut seen = std::collections::HashSet::new();
    let mut missing: Vec<ObjectId> = Vec::new();
    for (first, live) in resolved.windows() {
        let live = live.map_err(|e| unreadable(ImageError::Store(e)))?;
        // Unreadable, the restored listing holds nothing: all is read back.
        let restored = restored
            .blocks(first..first + image::WINDOW)
            .unwrap_or_default();
        missing.extend(live.iter().enumerate().filter_map(|(offset, id)| {
            (restored.get(offset) != Some(id) && seen.insert(*id)).then_some(*id)
        }));
    }
    drop(seen);
    let block_size = resolved.image.block_size;
    drop(resolved);
    progress.start(
        "reading back the safety snapshot",
        missing.len() as u64 * u64::from(block_size),
    );
    pages::read_pages(view, &missing, 2, block_size, Proof::EachBlob, |_, _| {
        progress.advance(u64::from(block_size));
        Ok::<_, ImageError>(())
    })
    .map_err(unreadable)?;
    progress.finish();
    Ok(())
}

/// Copies the file that could not be snapshotted, with its sidecars, to
/// `FILE.migsnap-unsnapshotted-<unix time>`, so its readable rows survive
/// the restore. Returns the copy's path.
fn keep_raw_copy(target: &Path) -> Result<PathBuf, RestoreError> {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let copy = sqlite::with_suffix(target, &format!(".migsnap-unsnapshotted-{time}"));
    for suffix in ["", "-wal", "-journal"] {
        let (from, to) = (
            sqlite::with_suffix(target, suffix),
            sqlite::with_suffix(&copy, suffix),
        );
        // Through the locked file's own descriptor: opening and closing the
        // database again would drop this process's SQLite locks.
        let copied = sqlite::with_file(&from, |mut file| {
            let mut out = File::create(&to)?;
            std::io::copy(&mut file, &mut out)?;
            out.sync_all()
        });
        match copied {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
            Err(e) => return Err(io(&to)(e)),
        }
    }
    sync_parent(&copy)?;
    Ok(copy)
}

/// Replaces the existing `target` (metadata `meta`) by the verified `built`
/// image of `snapshot`: in place under `lock` when the live database allows
/// it, otherwise by a rename checked against the file's identity and
/// holders. `safety` is the snapshot of the current content, if any, whose
/// page list tells which pages are already equal.
fn replace(
    view: View<'_>,
    snapshot: ObjectId,
    built: Built,
    target: &Path,
    meta: &std::fs::Metadata,
    lock: Option<WriteLock>,
    safety: Option<ObjectId>,
) -> Result<Restored, RestoreError> {
    use std::os::unix::fs::MetadataExt;
    let bytes = built.bytes;
    let rebuild = built.rebuild;
    let written = |method, warnings| Restored {
        path: target.to_path_buf(),
        snapshot,
        bytes,
        safety,
        method,
        rebuild,
        warnings,
    };
    let lock = match lock {
        Some(lock) => {
            let facts = lock.facts()?;
            if facts.page_size == built.page_size && !facts.full_auto_vacuum {
                let old_blocks = match safety {
                    Some(id) => Some(plan(view, id)?.0),
                    None => None,
                };
                let pages_written =
                    in_place::apply(lock, &facts, &built, old_blocks.as_ref(), target)?;
                return Ok(written(
                    Method::InPlace { pages_written },
                    hard_links(meta, true),
                ));
            }
            Some(lock)
        }
        None => None,
    };
    put_in_place(built.temp, target, (meta.dev(), meta.ino()), lock)?;
    Ok(written(Method::Rename, hard_links(meta, false)))
}

/// The warning that the file `meta` describes has other hard links.
fn hard_links(meta: &std::fs::Metadata, in_place: bool) -> Vec<Warning> {
    use std::os::unix::fs::MetadataExt;
    match meta.nlink() {
        1 => Vec::new(),
        links => vec![Warning::HardLinks { links, in_place }],
    }
}

/// Changes `db` in place through a verified copy, the way every
/// destructive operation on a database must: refuse when the database is
/// in use (unless `force`), take its write lock (writers wait until the
/// end), take a safety snapshot and read it back, rebuild it into a
/// temporary file beside the database, let `edit` change that copy (it
/// must verify its own result, and fail to leave the database untouched),
/// check the copy with `quick_check`, and write it over the database.
/// Returns what was written, with the safety snapshot, and what `edit`
/// returned.
pub fn rewrite<T, E>(
    repo: &mut Repo,
    db: &Tracked,
    options: &ReplaceOptions,
    progress: &mut dyn Progress,
    edit: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<(Restored, T), E>
where
    E: From<RestoreError>,
{
    let target = db.path.as_path();
    let meta = match inspect(target)? {
        Target::File(meta) => meta,
        Target::Absent => {
            return Err(RestoreError::from(SqliteError::Missing {
                path: target.to_path_buf(),
            })
            .into());
        }
    };
    refuse_unless_forced(target, &meta, options)?;
    let lock = WriteLock::acquire(target, options.busy_timeout).map_err(|e| match e {
        SqliteError::Busy { path, waited } => RestoreError::Locked { path, waited },
        other => other.into(),
    })?;
    let safety = take_safety(repo, db, options, Safety::Rewrite, None, progress)?;
    // A damaged database is recorded, never edited: the edit would start
    // from pages SQLite cannot read right.
    if let Some(failure) = integrity_of(repo.store.view(), safety)? {
        return Err(RestoreError::DamagedDatabase {
            path: target.to_path_buf(),
            restoring: false,
            safety,
            failure,
        }
        .into());
    }
    // Rebuilding the safety snapshot reads back every page of it,
    // hash-checked, before anything is written: that proves the undo.
    let built = rebuild(
        repo.store.view(),
        safety,
        target,
        Some(&meta),
        Seed::Empty,
        progress,
    )?;
    let result = edit(built.temp.path())?;
    let problems = check_file(built.temp.as_file(), built.temp.path())?.problems;
    if !problems.is_empty() {
        return Err(RestoreError::QuickCheck {
            snapshot: safety,
            problems,
        }
        .into());
    }
    let bytes = std::fs::metadata(built.temp.path())
        .map_err(io(built.temp.path()))?
        .len();
    // The edit may have changed any page, even the page size: compare
    // bytes, not listings.
    let built = Built {
        bytes,
        page_size: page_size_of(built.temp.path())?,
        blocks: None,
        ..built
    };
    let mut written = replace(
        repo.store.view(),
        safety,
        built,
        target,
        &meta,
        Some(lock),
        None,
    )?;
    written.safety = Some(safety);
    Ok((written, result))
}

/// Renames a verified temporary file over `target`, durably, then removes
/// the sidecars of the file it replaced (only after the rename succeeded: a
/// failed rename must leave the old database whole). `old` is the identity
/// the target had when it was checked; `lock` (on the old file) keeps its
/// writers waiting across the rename. Fails loudly when the target changed
/// identity before the rename, or when processes still have the old file
/// open after it.
fn put_in_place(
    temp: NamedTempFile,
    target: &Path,
    old: FileId,
    lock: Option<WriteLock>,
) -> Result<(), RestoreError> {
    let old_files = sqlite::database_files(target);
    if sqlite::file_id(target) != Some(old) {
        return Err(RestoreError::Changed {
            path: target.to_path_buf(),
        });
    }
    let new = sqlite::file_id(temp.path());
    // The old file is counted by its inode number, which the kernel reuses
    // for new files once the old one is gone: keep it open until its
    // holders are counted (the lock's own descriptor does that when there
    // is a lock), and count before its sidecars are unlinked.
    let keep_old = if lock.is_none() {
        File::open(target).ok()
    } else {
        None
    };
    temp.persist(target).map_err(|e| io(target)(e.error))?;
    sync_parent(target)?;
    if sqlite::file_id(target) != new {
        return Err(RestoreError::Raced {
            path: target.to_path_buf(),
        });
    }
    let pids = sqlite::holders_of(&old_files);
    remove_sidecars(target)?;
    sync_parent(target)?;
    drop(lock);
    drop(keep_old);
    if !pids.is_empty() {
        return Err(RestoreError::StillOpen {
            path: target.to_path_buf(),
            pids,
        });
    }
    Ok(())
}

/// A verified image in a temporary file beside its target.
struct Built {
    temp: NamedTempFile,
    bytes: u64,
    /// The page size, from the image's header.
    page_size: u32,
    /// One stored block id per page, when the file is exactly a stored image.
    blocks: Option<image::SpilledImage>,
    /// How it was built.
    rebuild: Rebuild,
}

/// The page size a database file's header declares.
fn page_size_of(path: &Path) -> Result<u32, RestoreError> {
    use std::os::unix::fs::FileExt;
    let mut field = [0u8; 2];
    File::open(path)
        .and_then(|f| f.read_exact_at(&mut field, 16))
        .map_err(io(path))?;
    Ok(page_size_from(field))
}

/// Resolves what rebuilding `snapshot` needs, failing early when it
/// cannot be. The listing is spilled to a file in the store's directory
/// ([`image::spill_or_hold`]), and read from it a window at a time.
fn plan(
    view: View<'_>,
    snapshot: ObjectId,
) -> Result<(image::SpilledImage, Recorded), RestoreError> {
    let record = view.read_snapshot(&snapshot)?;
    let image_id = record.image.ok_or(RestoreError::SchemaOnly { snapshot })?;
    // A forgotten snapshot stays restorable until gc frees its pages; its
    // listing may outlive them (as the base of a newer delta), so check the
    // pages too before promising anything.
    let forgotten = view.is_forgotten(&snapshot)?;
    let listed = match image::spill_or_hold(view, &image_id, view.dir()) {
        Ok(listed) => listed,
        Err(_) if forgotten => return Err(RestoreError::Forgotten { snapshot }),
        Err(e) => return Err(e.into()),
    };
    if forgotten {
        for (_, blocks) in listed.windows() {
            for block in &blocks? {
                if !view.contains(block)? {
                    return Err(RestoreError::Forgotten { snapshot });
                }
            }
        }
    }
    Ok((listed, Recorded::from_snapshot(&record)))
}

/// What a rebuilt file starts from.
enum Seed<'a> {
    /// Nothing: every page is read from the store.
    Empty,
    /// A copy of the live database at this path.
    Live(&'a Path),
    /// A file beside the target that already holds some of the pages,
    /// and what is known of them.
    Prepared(NamedTempFile, Prefilled<'a>),
}

/// Rebuilds the database of `snapshot` in a verified temporary file next to
/// `target`, with the permissions (and, when possible, owner) the target
/// should have. With a seed, the file starts as the seed and only pages
/// that do not hash to the snapshot's are read from the store
/// ([`pages::patch`]).
fn rebuild(
    view: View<'_>,
    snapshot: ObjectId,
    target: &Path,
    owner: Option<&std::fs::Metadata>,
    seed: Seed<'_>,
    progress: &mut dyn Progress,
) -> Result<Built, RestoreError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (resolved, recorded) = plan(view, snapshot)?;
    let (mut temp, copy_of, prefilled) = match seed {
        Seed::Empty => (temp_beside(target)?, None, Prefilled::Unknown),
        Seed::Live(live) => (temp_beside(target)?, Some(Some(live)), Prefilled::Unknown),
        Seed::Prepared(temp, prefilled) => (temp, Some(None), prefilled),
    };
    let temp_path = temp.path().to_path_buf();
    let (written, checked) = match prefilled {
        Prefilled::Unknown => (None, None),
        Prefilled::Written(written) => (Some(written), None),
        Prefilled::Checked(checked) => (None, Some(checked)),
    };
    let rebuild = match (copy_of, &checked) {
        (_, Some(_)) => Rebuild::Delta {
            pages_fetched: 0,
            pages_reused: resolved.image.block_count,
        },
        (None, None) => {
            pages::write(view, &resolved, temp.as_file_mut(), &temp_path, progress)?;
            Rebuild::Full
        }
        (Some(live), None) => {
            if let Some(live) = live {
                copy_live(live, temp.as_file_mut(), &temp_path)?;
            }
            let fetched = pages::patch(
                view,
                &resolved,
                temp.as_file(),
                &temp_path,
                written,
                progress,
            )?;
            let pages_fetched = u32::try_from(fetched.len()).expect("BUG: page count over u32");
            Rebuild::Delta {
                pages_fetched,
                pages_reused: resolved.image.block_count - pages_fetched,
            }
        }
    };
    let file: &File = temp.as_file();
    let problems = match checked {
        Some(checked) => checked.problems,
        None => check_file(file, &temp_path)?.problems,
    };
    // A snapshot flagged as failing its integrity check rebuilds, verified
    // byte for byte by its hashes, into the same damaged file: that is what
    // it promised. Any other failure is new damage, and refused.
    if !problems.is_empty() && recorded.integrity.is_none() {
        return Err(RestoreError::QuickCheck { snapshot, problems });
    }
    let mode = owner
        .map(|m| m.permissions().mode() & 0o777)
        .or(recorded.file_mode)
        .unwrap_or(0o600);
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io(&temp_path))?;
    if let Some(meta) = owner {
        // Only root can give a file away; for others this is a no-op when
        // the owner is already themselves, and failure is not fatal.
        let _ = std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(Built {
        temp,
        bytes: resolved.image.len(),
        page_size: resolved.image.block_size,
        blocks: Some(resolved),
        rebuild,
    })
}

/// Copies the live database's main file (not its WAL: [`pages::patch`]
/// fixes whatever pages that leaves stale) into `out`. Through the locked
/// file's own descriptor, as opening and closing the database again would
/// drop this process's SQLite locks; `std::io::copy` between files is
/// `copy_file_range` on Linux, so the bytes need not pass through here.
fn copy_live(live: &Path, out: &mut File, out_path: &Path) -> Result<(), RestoreError> {
    use std::io::{Seek, SeekFrom};
    sqlite::with_file(live, |mut file| {
        file.seek(SeekFrom::Start(0))?;
        std::io::copy(&mut file, out).map(drop)
    })
    .map_err(io(out_path))
}

/// The page size the live database's header declares, read through the
/// locked descriptor; `None` when the file is too short to have one.
fn live_page_size(path: &Path) -> Result<Option<u32>, RestoreError> {
    use std::os::unix::fs::FileExt;
    let mut field = [0u8; 2];
    match sqlite::with_file(path, |file| file.read_exact_at(&mut field, 16)) {
        Ok(()) => Ok(Some(page_size_from(field))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// The page size a header's bytes 16-17 encode (1 means 65536).
fn page_size_from(field: [u8; 2]) -> u32 {
    match u16::from_be_bytes(field) {
        1 => 65536,
        n => u32::from(n),
    }
}

/// Temporary files are named `.migsnap-restore-<pid>-<random>`, so one left
/// by a killed process can be told from one still being written.
const TEMP_PREFIX: &str = ".migsnap-restore-";

/// A new temporary file in `target`'s directory, named so that a later
/// run removes it if this process dies ([`remove_stale_temp_files`]).
fn temp_beside(target: &Path) -> Result<NamedTempFile, RestoreError> {
    let dir = parent_dir(target);
    remove_stale_temp_files(dir);
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .tempfile_in(dir)
        .map_err(io(dir))
}

/// Removes temporary files that a killed checkout or restore left in `dir`:
/// those whose process no longer exists.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The `-wal`, `-shm` and `-journal` files beside `path`.
fn sidecars(path: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    ["-wal", "-shm", "-journal"]
        .into_iter()
        .map(move |suffix| sqlite::with_suffix(path, suffix))
}

/// The sidecars of `path` that exist (as anything, even a dangling link).
fn existing_sidecars(path: &Path) -> Vec<PathBuf> {
    sidecars(path)
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect()
}

/// Removes `-wal`, `-shm` and `-journal` files left beside `path` by the file
/// it replaced: SQLite would otherwise apply them to the new file.
fn remove_sidecars(path: &Path) -> Result<(), RestoreError> {
    for sidecar in sidecars(path) {
        match std::fs::remove_file(&sidecar) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&sidecar)(e)),
        }
    }
    Ok(())
}

/// Makes a rename durable by syncing the directory that holds it.
fn sync_parent(path: &Path) -> Result<(), RestoreError> {
    let dir = parent_dir(path);
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}
