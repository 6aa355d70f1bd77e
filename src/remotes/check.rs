//! `migsnap fsck --remote`: check a remote's packs, indexes and refs, and
//! with `--read-data` every object in it (see `migsnap_remote::verify`).

use migsnap_remote::CheckReport;
use migsnap_store::Progress;
use serde::Serialize;

use super::{RemoteError, choose, connect};
use crate::repo::Repo;

/// What a check of a remote found, and which remote.
#[derive(Clone, Debug, Serialize)]
pub struct RemoteChecked {
    /// The remote's name.
    pub remote: String,
    /// Its URL.
    pub url: String,
    /// Whether no problem was found.
    pub clean: bool,
    /// Counts and problems.
    #[serde(flatten)]
    pub report: CheckReport,
}

/// Checks remote `remote` (default: see [`choose`]); with `read_data`,
/// downloads every pack and re-hashes every object.
pub fn check(
    repo: &Repo,
    remote: Option<&str>,
    read_data: bool,
    progress: &mut dyn Progress,
) -> Result<RemoteChecked, RemoteError> {
    let (name, settings) = choose(repo, remote)?;
    let connection = connect(&settings, repo.store.dir())?;
    let report = migsnap_remote::verify::check(&connection, repo.store.dir(), read_data, progress)?;
    Ok(RemoteChecked {
        remote: name,
        url: settings.url,
        clean: report.problems.is_empty(),
        report,
    })
}
