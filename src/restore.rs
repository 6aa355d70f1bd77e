//! Writing a snapshot's database back: `checkout` into a new file, `restore`
//! in place.
//!
//! Both rebuild the image into a temporary file in the target's directory,
//! verify it (every page hash on read, the whole-image hash on write, then
//! `PRAGMA quick_check`), fsync it and rename it over the target, so the
//! target is always either the old file or the complete new one. Nothing is
//! touched until the new file has passed every check.
//!
//! `restore` first records a safety snapshot of the current database, so a
//! restore can itself be undone by restoring that snapshot.

use std::fs::File;
use std::path::{Path, PathBuf};

use migsnap_store::image;
use migsnap_store::{ObjectId, Progress, View};
use tempfile::NamedTempFile;

use crate::image::ImageError;
use crate::repo::{Repo, Tracked};
use crate::snapshot::{self, Recorded, SnapshotError, SnapshotOptions, SnapshotOutcome};
use crate::sqlite::{self, SqliteError};

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
    #[error("{path} already exists; pass --force to overwrite it")]
    Exists {
        /// The output path.
        path: PathBuf,
    },
    /// The output path is a symlink.
    #[error("{path} is a symbolic link; refusing to write through it")]
    Symlink {
        /// The output path.
        path: PathBuf,
    },
    /// Other processes have the database open.
    #[error("database {path} is in use by process(es) {}; stop them, or pass --force", pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))]
    InUse {
        /// The database.
        path: PathBuf,
        /// Processes holding it, where known.
        pids: Vec<u32>,
    },
    /// The current database could not be snapshotted first.
    #[error("cannot take the safety snapshot of {path}; pass --force to restore without one")]
    Safety {
        /// The database.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<SnapshotError>,
    },
    /// The database changed while a rewrite was being prepared.
    #[error(
        "{path} changed while the change was being prepared; nothing was written, run the command again"
    )]
    Changed {
        /// The database.
        path: PathBuf,
    },
    /// The rebuilt file fails `PRAGMA quick_check`.
    #[error("snapshot {snapshot:.12} rebuilds into a database that fails quick_check: {verdict}")]
    QuickCheck {
        /// The snapshot.
        snapshot: ObjectId,
        /// SQLite's verdict lines, joined.
        verdict: String,
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

/// What a checkout or restore wrote.
#[derive(Clone, Debug)]
pub struct Written {
    /// The file written.
    pub path: PathBuf,
    /// The snapshot it came from.
    pub snapshot: ObjectId,
    /// Its size in bytes.
    pub bytes: u64,
    /// The safety snapshot taken first (restore only), or the head when the
    /// database was already recorded unchanged.
    pub safety: Option<ObjectId>,
}

/// Writes the database of `snapshot` to the new file `out`.
pub fn checkout(
    repo: &Repo,
    snapshot: ObjectId,
    out: &Path,
    force: bool,
    progress: &mut dyn Progress,
) -> Result<Written, RestoreError> {
    refuse_symlink(out)?;
    if out.exists() && !force {
        return Err(RestoreError::Exists {
            path: out.to_path_buf(),
        });
    }
    let built = rebuild(repo.store.view(), snapshot, out, None, progress)?;
    let bytes = built.bytes;
    if force {
        remove_sidecars(out)?;
        built.temp.persist(out).map_err(|e| io(out)(e.error))?;
    } else {
        built
            .temp
            .persist_noclobber(out)
            .map_err(|e| match e.error.kind() {
                std::io::ErrorKind::AlreadyExists => RestoreError::Exists {
                    path: out.to_path_buf(),
                },
                _ => io(out)(e.error),
            })?;
    }
    sync_parent(out)?;
    Ok(Written {
        path: out.to_path_buf(),
        snapshot,
        bytes,
        safety: None,
    })
}

/// Options for [`restore`].
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Restore even though other processes hold the database, or without a
    /// safety snapshot when one cannot be taken.
    pub force: bool,
    /// Message of the safety snapshot.
    pub message: String,
    /// Busy timeout for reading the current database.
    pub busy_timeout: std::time::Duration,
}

/// Puts the database of `snapshot` back in place of `db`.
pub fn restore(
    repo: &mut Repo,
    snapshot: ObjectId,
    db: &Tracked,
    options: &RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<Written, RestoreError> {
    let target = db.path.as_path();
    refuse_symlink(target)?;
    // Check the snapshot can be rebuilt before anything else happens.
    plan(repo.store.view(), snapshot)?;
    let exists = target.exists();
    if exists && !options.force {
        let pids = sqlite::holders(target);
        if !pids.is_empty() || sqlite::is_locked(target) {
            return Err(RestoreError::InUse {
                path: target.to_path_buf(),
                pids,
            });
        }
    }

    let mut safety = None;
    let mut owner = None;
    if exists {
        owner = Some(std::fs::metadata(target).map_err(io(target))?);
        // Fold any WAL into the file and roll back a hot journal, so that no
        // stale -wal or -journal can be replayed onto the restored file.
        sqlite::settle(target)?;
        let safety_options = SnapshotOptions {
            message: options.message.clone(),
            busy_timeout: options.busy_timeout,
            ..SnapshotOptions::default()
        };
        match snapshot::take(repo, db, &safety_options, progress) {
            Ok(SnapshotOutcome::Recorded { id, .. })
            | Ok(SnapshotOutcome::Unchanged { head: id }) => safety = Some(id),
            Err(e) if options.force => drop(e),
            Err(e) => {
                return Err(RestoreError::Safety {
                    path: target.to_path_buf(),
                    source: Box::new(e),
                });
            }
        }
    }

    let built = rebuild(
        repo.store.view(),
        snapshot,
        target,
        owner.as_ref(),
        progress,
    )?;
    let bytes = built.bytes;
    put_in_place(built.temp, target)?;
    Ok(Written {
        path: target.to_path_buf(),
        snapshot,
        bytes,
        safety,
    })
}

/// Changes `db` in place through a verified copy, the way every
/// destructive operation on a database must: refuse when the database is
/// in use (unless `force`), take a safety snapshot, rebuild it into a
/// temporary file beside the database, let `edit` change that copy (it
/// must verify its own result, and fail to leave the database untouched),
/// check the copy with `quick_check`, make sure the database did not change
/// meanwhile, and rename the copy over it. Returns what was written, with
/// the safety snapshot, and what `edit` returned.
pub fn rewrite<T, E>(
    repo: &mut Repo,
    db: &Tracked,
    options: &RestoreOptions,
    progress: &mut dyn Progress,
    edit: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<(Written, T), E>
where
    E: From<RestoreError>,
{
    let target = db.path.as_path();
    refuse_symlink(target)?;
    if !options.force {
        let pids = sqlite::holders(target);
        if !pids.is_empty() || sqlite::is_locked(target) {
            return Err(RestoreError::InUse {
                path: target.to_path_buf(),
                pids,
            }
            .into());
        }
    }
    let owner = std::fs::metadata(target).map_err(io(target))?;
    sqlite::settle(target).map_err(RestoreError::from)?;
    let safety_options = SnapshotOptions {
        message: options.message.clone(),
        busy_timeout: options.busy_timeout,
        ..SnapshotOptions::default()
    };
    let safety = match snapshot::take(repo, db, &safety_options, progress) {
        Ok(SnapshotOutcome::Recorded { id, .. }) | Ok(SnapshotOutcome::Unchanged { head: id }) => {
            id
        }
        Err(e) => {
            return Err(RestoreError::Safety {
                path: target.to_path_buf(),
                source: Box::new(e),
            }
            .into());
        }
    };
    let built = rebuild(repo.store.view(), safety, target, Some(&owner), progress)?;
    let result = edit(built.temp.path())?;
    let file: &File = built.temp.as_file();
    file.sync_all().map_err(io(built.temp.path()))?;
    let verdict = sqlite::quick_check(built.temp.path()).map_err(RestoreError::from)?;
    if verdict != ["ok"] {
        return Err(RestoreError::QuickCheck {
            snapshot: safety,
            verdict: verdict.join("; "),
        }
        .into());
    }
    // A write that landed after the safety snapshot would be lost by the
    // rename: refuse instead.
    match snapshot::take(repo, db, &safety_options, progress) {
        Ok(SnapshotOutcome::Unchanged { head }) if head == safety => {}
        Ok(_) => {
            return Err(RestoreError::Changed {
                path: target.to_path_buf(),
            }
            .into());
        }
        Err(e) => {
            return Err(RestoreError::Safety {
                path: target.to_path_buf(),
                source: Box::new(e),
            }
            .into());
        }
    }
    let bytes = std::fs::metadata(built.temp.path())
        .map_err(io(built.temp.path()))?
        .len();
    put_in_place(built.temp, target)?;
    Ok((
        Written {
            path: target.to_path_buf(),
            snapshot: safety,
            bytes,
            safety: Some(safety),
        },
        result,
    ))
}

/// Renames a verified temporary file over `target`, durably. The caller
/// has settled the target (its WAL folded in), so removing the sidecars
/// first loses nothing, and a crash before the rename leaves the old file
/// intact.
fn put_in_place(temp: NamedTempFile, target: &Path) -> Result<(), RestoreError> {
    remove_sidecars(target)?;
    temp.persist(target).map_err(|e| io(target)(e.error))?;
    sync_parent(target)
}

struct Built {
    temp: NamedTempFile,
    bytes: u64,
}

/// Resolves what rebuilding `snapshot` needs, failing early when it cannot be.
fn plan(
    view: View<'_>,
    snapshot: ObjectId,
) -> Result<(image::ResolvedImage, Recorded), RestoreError> {
    let record = view.read_snapshot(&snapshot)?;
    let image_id = record.image.ok_or(RestoreError::SchemaOnly { snapshot })?;
    // A forgotten snapshot stays restorable until gc frees its pages; its
    // listing may outlive them (as the base of a newer delta), so check the
    // pages too before promising anything.
    let forgotten = view.is_forgotten(&snapshot)?;
    let resolved = match image::resolve(view, &image_id) {
        Ok(resolved) => resolved,
        Err(_) if forgotten => return Err(RestoreError::Forgotten { snapshot }),
        Err(e) => return Err(e.into()),
    };
    if forgotten {
        for block in &resolved.blocks {
            if !view.contains(block)? {
                return Err(RestoreError::Forgotten { snapshot });
            }
        }
    }
    Ok((resolved, Recorded::from_snapshot(&record)))
}

/// Rebuilds the database of `snapshot` in a verified temporary file next to
/// `target`, with the permissions (and, when possible, owner) the target
/// should have.
fn rebuild(
    view: View<'_>,
    snapshot: ObjectId,
    target: &Path,
    owner: Option<&std::fs::Metadata>,
    progress: &mut dyn Progress,
) -> Result<Built, RestoreError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (resolved, recorded) = plan(view, snapshot)?;
    let dir = parent_dir(target);
    remove_stale_temp_files(dir);
    let mut temp = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .tempfile_in(dir)
        .map_err(io(dir))?;
    let temp_path = temp.path().to_path_buf();
    crate::image::write(view, &resolved, temp.as_file_mut(), &temp_path, progress)?;
    let file: &File = temp.as_file();
    // fsync and quick_check both wait on the disk or the page cache; run
    // them side by side. Both must pass before anything is renamed.
    let (synced, verdict) = std::thread::scope(|scope| {
        let sync = scope.spawn(|| file.sync_all());
        let verdict = sqlite::quick_check(&temp_path);
        (sync.join().expect("BUG: fsync thread panicked"), verdict)
    });
    synced.map_err(io(&temp_path))?;
    let verdict = verdict?;
    if verdict != ["ok"] {
        return Err(RestoreError::QuickCheck {
            snapshot,
            verdict: verdict.join("; "),
        });
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
    })
}

/// Temporary files are named `.migsnap-restore-<pid>-<random>`, so one left
/// by a killed process can be told from one still being written.
const TEMP_PREFIX: &str = ".migsnap-restore-";

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

fn refuse_symlink(path: &Path) -> Result<(), RestoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(RestoreError::Symlink {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// Removes `-wal`, `-shm` and `-journal` files left beside `path` by the file
/// it replaced: SQLite would otherwise apply them to the new file.
fn remove_sidecars(path: &Path) -> Result<(), RestoreError> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let sidecar = PathBuf::from(name);
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
