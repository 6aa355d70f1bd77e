//! `remote add`, `remote list` and `remote remove`: the remotes configured
//! in `.migsnap/config.toml`.

use migsnap_remote::Location;
use migsnap_store::{Change, Expected, RefEdit};
use serde::Serialize;

use super::{KeySource, RemoteError, TRACKING_PREFIX, install_key};
use crate::config::remote::RemoteConfig;
use crate::repo::Repo;

/// One configured remote.
#[derive(Clone, Debug, Serialize)]
pub struct RemoteEntry {
    /// Its name.
    pub name: String,
    /// Its settings.
    #[serde(flatten)]
    pub settings: RemoteConfig,
}

/// Adds remote `name` after checking that its URL parses, with its key when
/// `key` says it is encrypted (the key file goes into `.migsnap/keys/`).
/// Nothing is sent: a remote may be configured before its bucket exists.
pub fn add(
    repo: &mut Repo,
    name: &str,
    mut settings: RemoteConfig,
    key: &KeySource,
) -> Result<RemoteEntry, RemoteError> {
    Location::parse(&settings.url)?;
    repo.check_new_remote(name)?;
    settings.key_file = install_key(repo.store.dir(), name, key)?;
    repo.add_remote(name, settings.clone())?;
    Ok(RemoteEntry {
        name: name.to_owned(),
        settings,
    })
}

/// Every configured remote, by name.
pub fn list(repo: &Repo) -> Vec<RemoteEntry> {
    repo.remotes()
        .iter()
        .map(|(name, settings)| RemoteEntry {
            name: name.clone(),
            settings: settings.clone(),
        })
        .collect()
}

/// What `remote remove` did.
#[derive(Clone, Debug, Serialize)]
pub struct Removed {
    /// The remote as it was configured.
    #[serde(flatten)]
    pub remote: RemoteEntry,
    /// How many remote-tracking refs were deleted with it.
    pub tracking_refs: usize,
}

/// Removes remote `name` and its remote-tracking refs. The remote itself is
/// not touched.
pub fn remove(repo: &mut Repo, name: &str) -> Result<Removed, RemoteError> {
    if !repo.remotes().contains_key(name) {
        return Err(repo.unknown_remote(name).into());
    }
    let tracking = repo
        .store
        .view()
        .refs(&format!("{TRACKING_PREFIX}{name}/"))?;
    let edits: Vec<RefEdit> = tracking
        .iter()
        .map(|(ref_name, id)| RefEdit {
            name: ref_name.clone(),
            change: Change::Delete {
                expected: Expected::MustEqual(*id),
            },
        })
        .collect();
    repo.store
        .transaction()?
        .commit(&edits, &format!("remote remove {name}"))?;
    let settings = repo.remove_remote(name)?;
    Ok(Removed {
        remote: RemoteEntry {
            name: name.to_owned(),
            settings,
        },
        tracking_refs: edits.len(),
    })
}
