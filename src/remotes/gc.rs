//! `migsnap gc --remote`: delete the packs no ref of a remote needs, under
//! the remote's exclusive lock (see `migsnap_remote::gc`).

use migsnap_remote::{GcOptions, GcReport};
use migsnap_store::Progress;
use serde::Serialize;

use super::{RemoteError, choose, connect};
use crate::repo::Repo;

/// What a remote gc did, and on which remote.
#[derive(Clone, Debug, Serialize)]
pub struct RemoteCollected {
    /// The remote's name.
    pub remote: String,
    /// Its URL.
    pub url: String,
    /// Packs deleted and kept.
    #[serde(flatten)]
    pub report: GcReport,
}

/// Collects garbage on remote `remote` (default: see [`choose`]).
pub fn collect(
    repo: &Repo,
    remote: Option<&str>,
    options: GcOptions,
    progress: &mut dyn Progress,
) -> Result<RemoteCollected, RemoteError> {
    let (name, settings) = choose(repo, remote)?;
    let connection = connect(&settings, repo.store.dir())?;
    let report = migsnap_remote::gc::collect(&connection, repo.store.dir(), options, progress)?;
    Ok(RemoteCollected {
        remote: name,
        url: settings.url,
        report,
    })
}
