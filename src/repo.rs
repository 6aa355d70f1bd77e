//! A migsnap repository: the store directory (`.migsnap/`), the project root
//! that holds it, and the databases it tracks.
//!
//! The store is found as git finds `.git`: an explicit directory
//! (`--store`/`MIGSNAP_STORE`) or the nearest `.migsnap/` walking up from the
//! current directory. Commands that use the store only as a cache (`lint`,
//! `history`) can instead run on a scratch store ([`Repo::open_or_scratch`])
//! when there is none, so they work in a clone where `migsnap init` never
//! ran. Tracked databases come from `migsnap.toml` at the
//! project root (checked in, hand-written) and from `.migsnap/config.toml`
//! (written by `migsnap track`). Relative paths are relative to the project
//! root, so a repository can move as a whole.
//!
//! Configuration files may name commands migsnap runs (`python = "…"`,
//! `upgrade = "…"`). Such settings are honoured only from a file that
//! [`crate::trust`] trusts; otherwise opening the repository fails with
//! [`RepoError::Untrusted`] before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use migsnap_store::{RefName, Store};

use crate::config::check::CheckConfig;
use crate::config::findings::FindingsConfig;

use crate::config::migrations::MigrationsConfig;
use crate::config::remote::RemoteConfig;
use crate::config::replay::ReplayConfig;
use crate::snapshots::sqlite::{SqliteError, check_file};
use serde::{Deserialize, Serialize};

/// Name of the store directory.
pub const STORE_DIR: &str = ".migsnap";
/// Name of the per-project configuration file at the project root.
pub const PROJECT_CONFIG: &str = "migsnap.toml";
/// Name of the configuration file `track` writes inside the store directory.
pub const STORE_CONFIG: &str = "config.toml";
pub use crate::trust::SAFE_DIRECTORIES_ENV;

/// A database a command names: already tracked, or an untracked SQLite
/// file tracked just now under its file stem.
#[derive(Clone, Debug)]
pub struct Selected {
    /// The tracked database.
    pub tracked: Tracked,
    /// Whether it was tracked just now.
    pub newly_tracked: bool,
}

/// Why the database a command names could not be selected.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// None or several are tracked, the name is unknown, or the store could
    /// not be read.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The file named is not a readable SQLite database.
    #[error(transparent)]
    File(#[from] SqliteError),
    /// The file could not be tracked under its file stem.
    #[error("cannot track {} under its file name", path.display())]
    Track {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: RepoError,
    },
}

/// What can go wrong finding or configuring a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No `.migsnap` directory up from the start directory.
    #[error("no migsnap store found in {start} or any parent directory")]
    NoStore {
        /// Where the search started.
        start: PathBuf,
    },
    /// The nearest `.migsnap` is not a usable store. Discovery stops there
    /// rather than fall through to a parent directory's store.
    #[error("{path} is not a usable migsnap store: {problem}")]
    BrokenStore {
        /// The `.migsnap` found.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The store itself failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
    /// A configuration file does not parse or is inconsistent.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No database is tracked.
    #[error("no database is tracked in this store")]
    NoDatabase,
    /// A database must be named because several are tracked.
    #[error("several databases are tracked ({}); name one", names.join(", "))]
    WhichDatabase {
        /// The tracked names.
        names: Vec<String>,
    },
    /// The name is not tracked.
    #[error("no tracked database is called '{name}'")]
    UnknownDatabase {
        /// The name asked for.
        name: String,
        /// The tracked names.
        known: Vec<String>,
    },
    /// The name cannot be used for a database.
    #[error("'{name}' cannot name a database: use letters, digits, '.', '_' and '-'")]
    BadName {
        /// The rejected name.
        name: String,
    },
    /// The name cannot be used for a remote.
    #[error("'{name}' cannot name a remote: use letters, digits, '.', '_' and '-'")]
    BadRemoteName {
        /// The rejected name.
        name: String,
    },
    /// A remote of that name is configured already.
    #[error("a remote called '{name}' exists already")]
    RemoteExists {
        /// The name.
        name: String,
    },
    /// No remote of that name is configured.
    #[error("no remote is called '{name}'")]
    UnknownRemote {
        /// The name asked for.
        name: String,
        /// The configured names.
        known: Vec<String>,
    },
    /// The name is taken by another path.
    #[error("database name '{name}' already tracks {existing}")]
    NameTaken {
        /// The name.
        name: String,
        /// The path it tracks.
        existing: PathBuf,
    },
    /// A tag has the name: a database of that name would hide it, because
    /// revisions look names up as tags first.
    #[error("'{name}' is already a tag; a database of that name would be shadowed by it")]
    TagNamed {
        /// The name.
        name: String,
        /// The path that was to be tracked.
        path: PathBuf,
    },
    /// A configuration file owned by another user names commands to run.
    #[error(
        "{path} is owned by {owner}, not by you or root, and sets {keys}; refusing to run commands it names"
    )]
    Untrusted {
        /// The file.
        path: PathBuf,
        /// Its owner: `uid N (name)`.
        owner: String,
        /// The settings that name commands (`python`, `upgrade`).
        keys: String,
    },
    /// The temporary directory of a scratch store could not be made.
    #[error("cannot make a scratch store in {}", dir.display())]
    Scratch {
        /// The temporary directory it was to go in.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a configuration file failed.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A database tracked by the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracked {
    /// Its name, used in refs and revisions (`webui~2`).
    pub name: String,
    /// Its path, absolute.
    pub path: PathBuf,
    /// Its own migration settings (`[databases.NAME.migrations]`), if any.
    pub migrations: Option<MigrationsConfig>,
    /// Its own replay settings (`[databases.NAME.replay]`), if any.
    pub replay: Option<ReplayConfig>,
}

impl Tracked {
    /// The ref that points at its latest snapshot.
    pub fn head_ref(&self) -> RefName {
        head_ref(&self.name)
    }
}

/// The ref holding the latest snapshot of database `name`.
pub fn head_ref(name: &str) -> RefName {
    RefName::new(format!("heads/{name}")).expect("holds because database names are validated")
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    migrations: Option<MigrationsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    findings: Option<FindingsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<CheckConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replay: Option<ReplayConfig>,
    #[serde(default)]
    databases: BTreeMap<String, DatabaseEntry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    remotes: BTreeMap<String, RemoteConfig>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseEntry {
    path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    migrations: Option<MigrationsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replay: Option<ReplayConfig>,
}

/// An open repository.
pub struct Repo {
    /// The object store.
    pub store: Store,
    root: PathBuf,
    databases: BTreeMap<String, Tracked>,
    remotes: BTreeMap<String, RemoteConfig>,
    migrations: Option<MigrationsConfig>,
    replay: Option<ReplayConfig>,
    findings: FindingsConfig,
    check: CheckConfig,
    /// The temporary directory of a scratch store, removed when the
    /// repository is dropped (after the store, which is declared first).
    scratch: Option<tempfile::TempDir>,
}

impl Repo {
    /// Creates a store at `store_dir`; its parent becomes the project root.
    pub fn init(store_dir: &Path) -> Result<Repo, RepoError> {
        let store = Store::init(store_dir)?;
        Repo::with_store(store)
    }

    /// Opens the store at `store_dir`, or the nearest `.migsnap` up from `cwd`.
    pub fn open(store_dir: Option<&Path>, cwd: &Path) -> Result<Repo, RepoError> {
        let dir = match store_dir {
            Some(dir) => dir.to_path_buf(),
            None => discover(cwd)?,
        };
        Repo::with_store(Store::open(&dir)?)
    }

    /// Opens the store as [`Repo::open`] does; where there is none (no
    /// `.migsnap` up from `cwd`, and none named), a scratch store in a new
    /// temporary directory, removed with the repository. Its project root
    /// is the nearest directory up from `cwd` that holds a `migsnap.toml`
    /// (where `migsnap init` would have put the store), else `cwd`, so the
    /// checked-in configuration applies as it would with a store.
    ///
    /// Only for commands that use the store as a cache of what they can
    /// rebuild (reference chains): nothing a scratch store holds survives
    /// the command. A broken `.migsnap`, or a named store that cannot be
    /// opened, is still an error, never passed over.
    pub fn open_or_scratch(store_dir: Option<&Path>, cwd: &Path) -> Result<Repo, RepoError> {
        match Repo::open(store_dir, cwd) {
            Err(RepoError::NoStore { .. }) => {}
            opened => return opened,
        }
        let cwd = absolute(cwd);
        let root = cwd
            .ancestors()
            .find(|dir| dir.join(PROJECT_CONFIG).is_file())
            .unwrap_or(&cwd)
            .to_path_buf();
        let scratch = tempfile::Builder::new()
            .prefix("migsnap-scratch-")
            .tempdir()
            .map_err(|source| RepoError::Scratch {
                dir: std::env::temp_dir(),
                source,
            })?;
        let store = Store::init(&scratch.path().join(STORE_DIR))?;
        let mut repo = Repo::with_store_at(store, root)?;
        repo.scratch = Some(scratch);
        Ok(repo)
    }

    fn with_store(store: Store) -> Result<Repo, RepoError> {
        let dir = absolute(store.dir());
        let root = dir.parent().map_or_else(|| dir.clone(), Path::to_path_buf);
        Repo::with_store_at(store, root)
    }

    fn with_store_at(store: Store, root: PathBuf) -> Result<Repo, RepoError> {
        let mut repo = Repo {
            store,
            root,
            databases: BTreeMap::new(),
            remotes: BTreeMap::new(),
            migrations: None,
            replay: None,
            findings: FindingsConfig::default(),
            check: CheckConfig::default(),
            scratch: None,
        };
        repo.load()?;
        Ok(repo)
    }

    /// Whether the store is a scratch store ([`Repo::open_or_scratch`]):
    /// what is recorded in it is gone when the command ends.
    pub fn is_scratch(&self) -> bool {
        self.scratch.is_some()
    }

    fn load(&mut self) -> Result<(), RepoError> {
        let mut databases = BTreeMap::new();
        let project = read_config(&self.project_config())?;
        if !project.remotes.is_empty() {
            return Err(RepoError::Config {
                path: self.project_config(),
                message:
                    "[remotes] belong in .migsnap/config.toml: add them with `migsnap remote add`"
                        .into(),
            });
        }
        self.remotes = read_config(&self.store_config())?.remotes;
        self.migrations = project.migrations;
        self.replay = project.replay;
        self.findings = project.findings.unwrap_or_default();
        self.check = project.check.unwrap_or_default();
        if let Some(grace) = &self.check.gc_grace {
            crate::duration::parse(grace).map_err(|e| RepoError::Config {
                path: self.project_config(),
                message: format!("[check] gc_grace: {e}"),
            })?;
        }
        for path in [self.project_config(), self.store_config()] {
            let config = read_config(&path)?;
            check_trusted(&path, &config)?;
            for (name, entry) in config.databases {
                validate_name(&name).map_err(|e| RepoError::Config {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                let tracked = Tracked {
                    path: self.root.join(&entry.path),
                    name: name.clone(),
                    migrations: entry.migrations,
                    replay: entry.replay,
                };
                let existing = databases.get(&name).map(|t: &Tracked| t.path.clone());
                if let Some(existing) = existing.filter(|e| *e != tracked.path) {
                    return Err(RepoError::Config {
                        path,
                        message: format!(
                            "database '{name}' is also defined in {PROJECT_CONFIG} as {}",
                            existing.display()
                        ),
                    });
                }
                databases.insert(name, tracked);
            }
        }
        self.databases = databases;
        Ok(())
    }

    /// The project's `migsnap.toml`.
    pub fn project_config(&self) -> PathBuf {
        self.root.join(PROJECT_CONFIG)
    }

    fn store_config(&self) -> PathBuf {
        absolute(self.store.dir()).join(STORE_CONFIG)
    }

    /// How findings become verdicts: the `[findings]` table of
    /// `migsnap.toml`.
    pub fn findings(&self) -> &FindingsConfig {
        &self.findings
    }

    /// What `migsnap check` keeps and checks by default: the `[check]`
    /// table of `migsnap.toml`.
    pub fn check_config(&self) -> &CheckConfig {
        &self.check
    }

    /// The project root: the directory holding the store directory (for a
    /// scratch store, see [`Repo::open_or_scratch`]).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Tracked databases by name.
    pub fn databases(&self) -> impl Iterator<Item = &Tracked> {
        self.databases.values()
    }

    /// Configured remotes by name.
    pub fn remotes(&self) -> &BTreeMap<String, RemoteConfig> {
        &self.remotes
    }

    /// Adds remote `name` (recorded in `.migsnap/config.toml`). The name
    /// becomes one component of `remotes/NAME/…` refs, so it follows the
    /// rules of database names.
    pub fn add_remote(&mut self, name: &str, remote: RemoteConfig) -> Result<(), RepoError> {
        self.check_new_remote(name)?;
        self.edit_store_config(|config| {
            config.remotes.insert(name.to_owned(), remote.clone());
        })?;
        self.remotes.insert(name.to_owned(), remote);
        Ok(())
    }

    /// Checks that `name` can name a new remote.
    pub fn check_new_remote(&self, name: &str) -> Result<(), RepoError> {
        if validate_name(name).is_err() {
            return Err(RepoError::BadRemoteName {
                name: name.to_owned(),
            });
        }
        if self.remotes.contains_key(name) {
            return Err(RepoError::RemoteExists {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Removes remote `name` from `.migsnap/config.toml` and returns its
    /// settings. Its remote-tracking refs are the caller's to delete.
    pub fn remove_remote(&mut self, name: &str) -> Result<RemoteConfig, RepoError> {
        if !self.remotes.contains_key(name) {
            return Err(self.unknown_remote(name));
        }
        self.edit_store_config(|config| {
            config.remotes.remove(name);
        })?;
        Ok(self
            .remotes
            .remove(name)
            .expect("holds because it was checked above"))
    }

    /// The error for a remote name that is not configured.
    pub fn unknown_remote(&self, name: &str) -> RepoError {
        RepoError::UnknownRemote {
            name: name.to_owned(),
            known: self.remotes.keys().cloned().collect(),
        }
    }

    /// Reads `.migsnap/config.toml`, applies `edit` and writes it back atomically.
    fn edit_store_config(&self, edit: impl FnOnce(&mut ConfigFile)) -> Result<(), RepoError> {
        let config_path = self.store_config();
        let mut config = read_config(&config_path)?;
        edit(&mut config);
        let text = toml::to_string(&config).expect("holds because the config is plain data");
        // Private, as the store beside it.
        write_atomically(&config_path, text.as_bytes(), 0o600).map_err(|source| RepoError::Io {
            path: config_path.clone(),
            source,
        })
    }

    /// Starts tracking `path` as `name` (recorded in `.migsnap/config.toml`).
    /// Tracking the same path under the same name again is a no-op.
    pub fn track(&mut self, name: &str, path: &Path) -> Result<Tracked, RepoError> {
        validate_name(name)?;
        let path = absolute(path);
        if let Some(existing) = self.databases.get(name) {
            if existing.path == path {
                return Ok(existing.clone());
            }
            return Err(RepoError::NameTaken {
                name: name.to_owned(),
                existing: existing.path.clone(),
            });
        }
        let tag = RefName::new(format!("tags/{name}")).expect("holds because the name is valid");
        if self.store.view().find_ref(&tag)?.is_some() {
            return Err(RepoError::TagNamed {
                name: name.to_owned(),
                path,
            });
        }
        let stored = path
            .strip_prefix(&self.root)
            .map_or_else(|_| path.clone(), Path::to_path_buf);
        self.edit_store_config(|config| {
            config.databases.insert(
                name.to_owned(),
                DatabaseEntry {
                    path: stored,
                    migrations: None,
                    replay: None,
                },
            );
        })?;
        let tracked = Tracked {
            name: name.to_owned(),
            path,
            migrations: None,
            replay: None,
        };
        self.databases.insert(name.to_owned(), tracked.clone());
        Ok(tracked)
    }

    /// Picks the database a command works on: by name, by path, or the only
    /// one tracked when `arg` is `None`.
    pub fn select(&self, arg: Option<&str>) -> Result<Tracked, RepoError> {
        let Some(arg) = arg else {
            let mut all = self.databases.values();
            return match (all.next(), all.next()) {
                (None, _) => Err(RepoError::NoDatabase),
                (Some(one), None) => Ok(one.clone()),
                _ => Err(RepoError::WhichDatabase {
                    names: self.databases.keys().cloned().collect(),
                }),
            };
        };
        if let Some(tracked) = self.databases.get(arg) {
            return Ok(tracked.clone());
        }
        let as_path = absolute(Path::new(arg));
        self.databases
            .values()
            .find(|t| t.path == as_path)
            .cloned()
            .ok_or_else(|| RepoError::UnknownDatabase {
                name: arg.to_owned(),
                known: self.databases.keys().cloned().collect(),
            })
    }

    /// Picks the database a command works on as [`Repo::select`] does, and
    /// tracks an untracked SQLite file that `arg` names under its file
    /// stem, as `git add` takes a new file.
    pub fn select_or_track(&mut self, arg: Option<&str>) -> Result<Selected, SelectError> {
        let unknown = match self.select(arg) {
            Ok(tracked) => {
                return Ok(Selected {
                    tracked,
                    newly_tracked: false,
                });
            }
            Err(e @ RepoError::UnknownDatabase { .. }) => e,
            Err(e) => return Err(e.into()),
        };
        let arg = arg.expect("holds: without an argument nothing is unknown");
        let path = Path::new(arg);
        if path.is_file() {
            check_file(path)?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tracked = self
                .track(&name, path)
                .map_err(|source| SelectError::Track {
                    path: path.to_path_buf(),
                    source,
                })?;
            return Ok(Selected {
                tracked,
                newly_tracked: true,
            });
        }
        // A path that names no file is better told as such than as an
        // unknown database name.
        if arg.contains('/') || path.extension().is_some() {
            check_file(path)?;
        }
        Err(unknown.into())
    }

    /// [`Repo::select_or_track`] for a database given by its path: the
    /// workflows that write to a database record their snapshots under it.
    pub fn select_or_track_path(&mut self, path: &Path) -> Result<Selected, SelectError> {
        self.select_or_track(Some(&path.to_string_lossy()))
    }

    /// The migration settings for `db`: its own, else the project-wide
    /// `[migrations]` of `migsnap.toml`, else none (discovery decides);
    /// with the bootstrap of its own `[replay]` table, else the
    /// project-wide one.
    pub fn migrations_for(&self, db: Option<&Tracked>) -> MigrationsConfig {
        let mut settings = db
            .and_then(|t| t.migrations.clone())
            .or_else(|| self.migrations.clone())
            .unwrap_or_default();
        settings.bootstrap = db
            .and_then(|t| t.replay.as_ref())
            .or(self.replay.as_ref())
            .and_then(|replay| replay.bootstrap.clone());
        settings
    }

    /// Looks a database up by name.
    pub fn database(&self, name: &str) -> Option<&Tracked> {
        self.databases.get(name)
    }
}

/// Finds the nearest `.migsnap/` holding a store, from `start` upwards.
pub fn discover(start: &Path) -> Result<PathBuf, RepoError> {
    let start = absolute(start);
    let found = start
        .ancestors()
        .map(|dir| dir.join(STORE_DIR))
        .find(|candidate| candidate.symlink_metadata().is_ok())
        .ok_or(RepoError::NoStore {
            start: start.clone(),
        })?;
    let file = std::fs::metadata(found.join(migsnap_store::odb::STORE_FILE));
    let problem = match (found.is_dir(), file) {
        (false, _) => "it is not a directory",
        (true, Err(_)) => "it has no store.db",
        (true, Ok(m)) if m.is_dir() => "its store.db is a directory",
        (true, Ok(m)) if !m.is_file() => "its store.db is not a regular file",
        (true, Ok(m)) if m.len() == 0 => "its store.db is empty (an interrupted init?)",
        (true, Ok(_)) => return Ok(found),
    };
    Err(RepoError::BrokenStore {
        path: found,
        problem,
    })
}

/// Checks that `name` can name a database (and so a ref component).
pub fn validate_name(name: &str) -> Result<(), RepoError> {
    let ok = !name.is_empty()
        && !name.contains('/')
        && name != "HEAD"
        && RefName::new(format!("heads/{name}")).is_ok();
    if ok {
        Ok(())
    } else {
        Err(RepoError::BadName {
            name: name.to_owned(),
        })
    }
}

fn read_config(path: &Path) -> Result<ConfigFile, RepoError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(source) => {
            return Err(RepoError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    toml::from_str(&text).map_err(|e| RepoError::Config {
        path: path.to_path_buf(),
        message: e.message().to_owned(),
    })
}

/// Refuses a configuration file that names commands (`python`, `upgrade`)
/// unless [`crate::trust`] trusts it: running a command named by someone
/// else's file would run their code as us.
fn check_trusted(path: &Path, config: &ConfigFile) -> Result<(), RepoError> {
    let mut keys = Vec::new();
    let bootstraps = config
        .replay
        .iter()
        .chain(config.databases.values().filter_map(|d| d.replay.as_ref()));
    for replay in bootstraps {
        if replay.bootstrap.is_some() && !keys.contains(&"bootstrap") {
            keys.push("bootstrap");
        }
    }
    let sections = config.migrations.iter().chain(
        config
            .databases
            .values()
            .filter_map(|d| d.migrations.as_ref()),
    );
    for settings in sections {
        if settings.python.is_some() && !keys.contains(&"python") {
            keys.push("python");
        }
        if settings.upgrade.is_some() && !keys.contains(&"upgrade") {
            keys.push("upgrade");
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    match crate::trust::foreign_owner(path) {
        None => Ok(()),
        Some(owner) => Err(RepoError::Untrusted {
            path: path.to_path_buf(),
            owner: crate::trust::describe_uid(owner),
            keys: keys.join(" and "),
        }),
    }
}

/// The absolute form of `path` with `.` and `..` folded lexically, without
/// resolving symlinks, so `sub/../app.db` and `app.db` name the same
/// tracked database.
pub fn absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Replaces `path` with `bytes` through a temporary file and a rename, so
/// readers see the old or the new file, never half of one. The new file
/// gets permission bits `mode`, less the umask, as `open(2)` would give it.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_folds_dot_and_dot_dot() {
        assert_eq!(
            absolute(Path::new("/r/sub/../app.db")),
            PathBuf::from("/r/app.db")
        );
        assert_eq!(
            absolute(Path::new("/r/./app.db")),
            PathBuf::from("/r/app.db")
        );
        assert_eq!(absolute(Path::new("/../app.db")), PathBuf::from("/app.db"));
    }
}
