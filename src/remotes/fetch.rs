//! `migsnap fetch` and `migsnap clone`: bring a remote's snapshots into a
//! store, with its refs as remote-tracking refs (and, for a clone, as the
//! new store's own refs).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use migsnap_remote::{FetchReport, Location, RemoteRef, Staging};
use migsnap_store::{Change, Expected, ObjectId, Progress, RefEdit, RefName, View, transfer};
use serde::Serialize;

use super::{
    DEFAULT_REMOTE, KeySource, RemoteError, TRACKING_PREFIX, choose, connect, install_key,
    tracking_ref,
};
use crate::config::remote::RemoteConfig;
use crate::repo::{Repo, STORE_DIR};

/// What a fetch did, and from which remote.
#[derive(Clone, Debug, Serialize)]
pub struct Fetched {
    /// The remote's name.
    pub remote: String,
    /// Its URL.
    pub url: String,
    /// Packs, bytes, objects and refs.
    #[serde(flatten)]
    pub report: FetchReport,
    /// How each remote-tracking ref moved, in the order of `refs`.
    pub updates: Vec<Update>,
}

/// How a remote-tracking ref moved in a fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Movement {
    /// The store had not seen the remote's ref before.
    New,
    /// The remote's ref had not moved.
    Unchanged,
    /// It moved on from what the store had seen: the usual case.
    FastForward,
    /// It moved back to an older snapshot of the history the store had
    /// seen: a `push --force` of an older snapshot, or someone who can
    /// write the bucket (on an encrypted remote, its owner) putting an old
    /// ref back. Worth a look before trusting the remote's value.
    RolledBack,
    /// It moved to a history without what the store had seen: a `push
    /// --force` of another history.
    Forced,
}

/// One remote-tracking ref's move.
#[derive(Clone, Debug, Serialize)]
pub struct Update {
    /// The remote-tracking ref (`remotes/origin/heads/webui`).
    #[serde(rename = "ref")]
    pub name: RefName,
    /// What it was before the fetch.
    pub old: Option<ObjectId>,
    /// What it is now.
    pub new: ObjectId,
    /// How it moved.
    pub movement: Movement,
}

/// How a ref moved from `old` to `new`, by the parent links in `view`.
fn movement(view: View<'_>, old: Option<ObjectId>, new: ObjectId) -> Result<Movement, RemoteError> {
    Ok(match old {
        None => Movement::New,
        Some(old) if old == new => Movement::Unchanged,
        Some(old) if transfer::is_ancestor(view, &old, &new)? => Movement::FastForward,
        Some(old) if transfer::is_ancestor(view, &new, &old)? => Movement::RolledBack,
        Some(_) => Movement::Forced,
    })
}

/// The remote-tracking ref edit for one remote ref: set to the remote's
/// value, whatever it was (like git's `+refs/heads/*:refs/remotes/origin/*`).
fn track(remote: &str, found: &RemoteRef) -> RefEdit {
    RefEdit {
        name: tracking_ref(remote, &found.name),
        change: Change::Update {
            expected: Expected::Any,
            new: found.target,
        },
    }
}

/// Fetches every ref of remote `remote` (default: see [`choose`]) and the
/// snapshots they need, and sets the remote-tracking refs.
pub fn fetch(
    repo: &mut Repo,
    remote: Option<&str>,
    progress: &mut dyn Progress,
) -> Result<Fetched, RemoteError> {
    let (name, settings) = choose(repo, remote)?;
    let remote = connect(&settings, repo.store.dir())?;
    let before: HashMap<RefName, ObjectId> = repo
        .store
        .view()
        .refs(&format!("{TRACKING_PREFIX}{name}/"))?
        .into_iter()
        .collect();
    let report = migsnap_remote::fetch(
        &mut repo.store,
        &remote,
        Staging::Resumable,
        |found| vec![track(&name, found)],
        &format!("fetch {name}"),
        progress,
    )?;
    let view = repo.store.view();
    let updates = report
        .refs
        .iter()
        .map(|found| {
            let tracking = tracking_ref(&name, &found.name);
            let old = before.get(&tracking).copied();
            Ok(Update {
                movement: movement(view, old, found.target)?,
                name: tracking,
                old,
                new: found.target,
            })
        })
        .collect::<Result<_, RemoteError>>()?;
    Ok(Fetched {
        remote: name,
        url: settings.url,
        report,
        updates,
    })
}

/// What a clone made.
#[derive(Clone, Debug, Serialize)]
pub struct Cloned {
    /// The new project directory.
    pub dir: PathBuf,
    /// Its store.
    pub store: PathBuf,
    /// Where it came from, registered as `origin`.
    pub url: String,
    /// What was fetched.
    #[serde(flatten)]
    pub report: FetchReport,
}

/// Creates a store in `dir/.migsnap` (default: a directory named after the
/// URL's last component, in `cwd`) from the remote `settings` describe:
/// the remote becomes `origin`, and every remote ref becomes both a local
/// ref and a remote-tracking one. An encrypted remote needs `key_file`
/// (relative to `cwd`), which is copied into the new store. On failure,
/// what the clone created is removed again.
pub fn clone(
    mut settings: RemoteConfig,
    key_file: Option<&Path>,
    dir: Option<&Path>,
    cwd: &Path,
    progress: &mut dyn Progress,
) -> Result<Cloned, RemoteError> {
    let location = Location::parse(&settings.url)?;
    let dir = match dir {
        Some(dir) => cwd.join(dir),
        None => cwd.join(location.basename().unwrap_or_else(|| "migsnap".into())),
    };
    let store_dir = dir.join(STORE_DIR);
    if store_dir.exists() {
        return Err(RemoteError::CloneTarget { path: dir });
    }
    // Connecting first: a remote that cannot be opened (or a key that does
    // not fit it) leaves nothing behind.
    let key_file = key_file.map(|path| cwd.join(path));
    settings.key_file = key_file.clone();
    let remote = connect(&settings, cwd)?;
    let created_dir = !dir.exists();
    std::fs::create_dir_all(&dir).map_err(|source| RemoteError::Io {
        path: dir.clone(),
        source,
    })?;
    let cloned = (|| {
        let mut repo = Repo::init(&store_dir)?;
        let key = key_file.map_or(KeySource::Plain, KeySource::File);
        settings.key_file = install_key(&store_dir, DEFAULT_REMOTE, &key)?;
        repo.add_remote(DEFAULT_REMOTE, settings.clone())?;
        let report = migsnap_remote::fetch(
            &mut repo.store,
            &remote,
            Staging::Direct,
            |found| {
                vec![
                    track(DEFAULT_REMOTE, found),
                    RefEdit {
                        name: found.name.clone(),
                        change: Change::Update {
                            expected: Expected::MustNotExist,
                            new: found.target,
                        },
                    },
                ]
            },
            &format!("clone {}", settings.url),
            progress,
        )?;
        Ok::<_, RemoteError>(report)
    })();
    match cloned {
        Ok(report) => Ok(Cloned {
            dir: crate::repo::absolute(&dir),
            store: crate::repo::absolute(&store_dir),
            url: settings.url,
            report,
        }),
        Err(error) => {
            // Only what this clone made: the store always, the directory
            // only if it did not exist before.
            let _ = std::fs::remove_dir_all(&store_dir);
            if created_dir {
                let _ = std::fs::remove_dir(&dir);
            }
            Err(error)
        }
    }
}
