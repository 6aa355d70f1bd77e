//! `migsnap push`: send refs and the snapshots they need to a remote, then
//! record what the remote now has as remote-tracking refs.

use migsnap_remote::PushReport;
use migsnap_store::{Change, Expected, ObjectId, Progress, RefEdit, RefName};
use serde::Serialize;

use super::{RemoteError, choose, connect, tracking_ref};
use crate::repo::Repo;

/// What a push did, and to which remote.
#[derive(Clone, Debug, Serialize)]
pub struct Pushed {
    /// The remote's name.
    pub remote: String,
    /// Its URL.
    pub url: String,
    /// Packs, bytes and refs.
    #[serde(flatten)]
    pub report: PushReport,
}

/// The refs pushed when none are named: every database head and tag.
const DEFAULT_PREFIXES: [&str; 2] = ["heads/", "tags/"];

/// Pushes `refs` (default: every head and tag) to remote `remote` (default:
/// see [`choose`]). `force` pushes refs that are not fast-forwards, still
/// conditionally on the value read.
pub fn push(
    repo: &mut Repo,
    remote: Option<&str>,
    refs: &[String],
    force: bool,
    progress: &mut dyn Progress,
) -> Result<Pushed, RemoteError> {
    let (name, settings) = choose(repo, remote)?;
    let selected = select(repo, refs)?;
    let mut remote = connect(&settings, repo.store.dir())?;
    let report = migsnap_remote::push(&repo.store, &mut remote, &selected, force, progress)?;
    let edits: Vec<RefEdit> = report
        .refs
        .iter()
        .map(|pushed| RefEdit {
            name: tracking_ref(&name, &pushed.name),
            change: Change::Update {
                expected: Expected::Any,
                new: pushed.new,
            },
        })
        .collect();
    repo.store
        .transaction()?
        .commit(&edits, &format!("push {name}"))?;
    Ok(Pushed {
        remote: name,
        url: settings.url,
        report,
    })
}

/// The local refs named by `names` (a full ref name, a database name for
/// its head, or a tag name), or every head and tag when none is named.
fn select(repo: &Repo, names: &[String]) -> Result<Vec<(RefName, ObjectId)>, RemoteError> {
    let view = repo.store.view();
    if names.is_empty() {
        let mut all = Vec::new();
        for prefix in DEFAULT_PREFIXES {
            all.extend(view.refs(prefix)?);
        }
        return Ok(all);
    }
    let mut selected = Vec::new();
    for name in names {
        let mut found = None;
        for candidate in [
            name.clone(),
            format!("heads/{name}"),
            format!("tags/{name}"),
        ] {
            let Ok(candidate) = RefName::new(candidate) else {
                continue;
            };
            if let Some(id) = view.find_ref(&candidate)? {
                found = Some((candidate, id));
                break;
            }
        }
        selected.push(found.ok_or_else(|| RemoteError::UnknownRef { name: name.clone() })?);
    }
    Ok(selected)
}
