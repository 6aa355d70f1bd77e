//! Remotes: copies of the store's history elsewhere (S3 or a directory),
//! the git way. `remote add/list/remove` keep their settings in
//! `.migsnap/config.toml` ([`manage`]); `push`, `fetch` and `clone` move
//! snapshots ([`push`], [`fetch`]) through the `migsnap-remote` crate.
//!
//! What the remote had when last seen is kept locally as remote-tracking
//! refs, `remotes/NAME/<ref>` (`remotes/origin/heads/webui`), which REVs
//! name as `origin/heads/webui` or `origin/webui`.

pub mod check;
pub mod fetch;
pub mod gc;
pub mod manage;
pub mod push;

use std::path::{Path, PathBuf};

use migsnap_remote::{
    CheckError, Connection, ConnectionError, CryptError, FetchError, GcError, Key, KeyFile,
    Location, PushError, Settings, Transport, TransportError, UrlError,
};
use migsnap_store::RefName;

use crate::config::remote::RemoteConfig;
use crate::repo::{Repo, RepoError};

/// The remote `push` and `fetch` use when none is named, as in git.
pub const DEFAULT_REMOTE: &str = "origin";

/// Where remote-tracking refs live.
pub const TRACKING_PREFIX: &str = "remotes/";

/// Why a remote command failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No remote was named, and which to use is not clear.
    #[error("no remote named, and {}", which_remote(known))]
    WhichRemote {
        /// The configured remotes.
        known: Vec<String>,
    },
    /// A ref to push does not exist locally.
    #[error("nothing to push is called '{name}'")]
    UnknownRef {
        /// The name as given.
        name: String,
    },
    /// The directory to clone into holds a store already.
    #[error("{path} holds a migsnap store already")]
    CloneTarget {
        /// The directory.
        path: std::path::PathBuf,
    },
    /// The URL names no remote.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The remote could not be reached or read.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The key file is unusable, or does not fit the remote.
    #[error(transparent)]
    Crypt(#[from] CryptError),
    /// A key file for the remote's name exists already.
    #[error("key file {path} exists already")]
    KeyExists {
        /// The key file.
        path: PathBuf,
    },
    /// The push failed or was refused.
    #[error(transparent)]
    Push(#[from] PushError),
    /// The fetch failed; nothing was imported.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A check of the remote could not run.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// A gc of the remote did not run or stopped.
    #[error(transparent)]
    Gc(#[from] GcError),
    /// The repository or its configuration failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
    /// A clone's checkout (`clone --checkout`) could not begin: nothing was
    /// cloned.
    #[error(transparent)]
    CheckoutTarget(Box<crate::snapshots::restore::RestoreError>),
    /// The clone is complete, but its checkout failed.
    #[error("cloned into {}, but the checkout failed", dir.display())]
    Checkout {
        /// The new project directory, which stays.
        dir: PathBuf,
        /// Why the checkout failed.
        #[source]
        source: Box<CheckoutFailure>,
    },
    /// A file or directory of a clone could not be made.
    #[error("cannot create {path}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a clone's checkout failed, for [`RemoteError::Checkout`].
#[derive(Debug, thiserror::Error)]
pub enum CheckoutFailure {
    /// The revision names no snapshot of the clone.
    #[error(transparent)]
    Rev(#[from] crate::snapshots::revspec::RevError),
    /// Writing or verifying the file failed.
    #[error(transparent)]
    Restore(#[from] crate::snapshots::restore::RestoreError),
}

/// Why no remote could be chosen, for [`RemoteError::WhichRemote`].
fn which_remote(known: &[String]) -> String {
    if known.is_empty() {
        "none is configured".to_owned()
    } else {
        format!("there is no '{DEFAULT_REMOTE}' among {}", known.join(", "))
    }
}

impl From<ConnectionError> for RemoteError {
    fn from(error: ConnectionError) -> RemoteError {
        match error {
            ConnectionError::Transport(e) => RemoteError::Transport(e),
            ConnectionError::Crypt(e) => RemoteError::Crypt(e),
        }
    }
}

/// Connects to the remote `settings` describe, with its key file (relative
/// to `store_dir`) when it has one: a wrong or missing key is refused here.
pub fn connect(settings: &RemoteConfig, store_dir: &Path) -> Result<Connection, RemoteError> {
    let location = Location::parse(&settings.url)?;
    let key = settings
        .key_file
        .as_ref()
        .map(|path| KeyFile::load(&store_dir.join(path)))
        .transpose()?;
    let transport = Transport::open(
        &location,
        &Settings {
            endpoint: settings.endpoint.clone(),
            region: settings.region.clone(),
        },
    )?;
    Ok(Connection::open(transport, key.as_ref())?)
}

/// Where the key of a remote being added comes from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// None: the remote is plain.
    Plain,
    /// A new random key (`remote add --encrypt`).
    Generate,
    /// An existing key file, copied into the store (`--key-file PATH`).
    File(PathBuf),
}

/// The directory of the store's key files.
const KEYS_DIR: &str = "keys";

/// Puts the key `source` names for remote `name` into
/// `store_dir/keys/NAME.key` (mode 0600) and returns that path relative to
/// `store_dir`, for the remote's `key_file`; `None` for a plain remote. An
/// existing key file is never overwritten (it may be the only copy of a
/// key), unless it already holds the key given.
pub fn install_key(
    store_dir: &Path,
    name: &str,
    source: &KeySource,
) -> Result<Option<PathBuf>, RemoteError> {
    let relative = Path::new(KEYS_DIR).join(format!("{name}.key"));
    let path = store_dir.join(&relative);
    match source {
        KeySource::Plain => return Ok(None),
        KeySource::Generate if path.exists() => return Err(RemoteError::KeyExists { path }),
        KeySource::Generate => {
            Key::create(&path)?;
        }
        KeySource::File(from) => {
            let key = Key::load(from)?;
            if path.exists() {
                if Key::load(&path).is_ok_and(|there| there == key) {
                    return Ok(Some(relative));
                }
                return Err(RemoteError::KeyExists { path });
            }
            key.write(&path).map_err(|source| CryptError::KeyFile {
                operation: "write",
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(Some(relative))
}

/// The remote called `name`, or the default one: `origin`, or the only
/// remote there is.
pub fn choose(repo: &Repo, name: Option<&str>) -> Result<(String, RemoteConfig), RemoteError> {
    let remotes = repo.remotes();
    if let Some(name) = name {
        return remotes
            .get(name)
            .map(|settings| (name.to_owned(), settings.clone()))
            .ok_or_else(|| repo.unknown_remote(name).into());
    }
    if let Some(settings) = remotes.get(DEFAULT_REMOTE) {
        return Ok((DEFAULT_REMOTE.to_owned(), settings.clone()));
    }
    let mut all = remotes.iter();
    match (all.next(), all.next()) {
        (Some((name, settings)), None) => Ok((name.clone(), settings.clone())),
        _ => Err(RemoteError::WhichRemote {
            known: remotes.keys().cloned().collect(),
        }),
    }
}

/// The remote-tracking ref of remote ref `name` on remote `remote`.
pub fn tracking_ref(remote: &str, name: &RefName) -> RefName {
    RefName::new(format!("{TRACKING_PREFIX}{remote}/{name}"))
        .expect("holds because both parts are valid ref names")
}
