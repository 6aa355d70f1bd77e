//! `lint.edited-after-applied`: revision files that changed after a snapshot
//! recorded them as applied to a database.
//!
//! Every snapshot records the BLAKE3 of each revision file its database had
//! applied. A database that ran the old text never runs the new one, so an
//! edit silently forks the schema between machines. Only snapshot objects
//! are read (their headers), never schemas or pages.

use std::collections::BTreeMap;

use migsnap_store::ObjectId;

use super::codes;
use crate::finding::{Finding, Severity};
use crate::history::graph::Graph;
use crate::repo::Repo;
use crate::snapshot::Recorded;

/// The newest snapshot that recorded an older text of a revision.
struct Stale {
    time: i64,
    snapshot: ObjectId,
    database: String,
}

/// One finding per revision whose file differs from what a snapshot on the
/// first-parent history of a tracked database's head recorded; it names
/// the newest such snapshot.
pub fn edited_after_applied(
    repo: &Repo,
    graph: &Graph,
) -> Result<Vec<Finding>, migsnap_store::Error> {
    let view = repo.store.view();
    let mut stale: BTreeMap<String, Stale> = BTreeMap::new();
    for database in repo.databases() {
        let mut next = view.find_ref(&database.head_ref())?;
        while let Some(id) = next {
            let snapshot = view.read_snapshot(&id)?;
            for (revision, recorded) in Recorded::from_snapshot(&snapshot).migration_files {
                let edited = graph
                    .get(&revision)
                    .is_some_and(|current| current.file_hash != recorded);
                let newer = stale
                    .get(&revision)
                    .is_none_or(|seen| snapshot.time > seen.time);
                if edited && newer {
                    stale.insert(
                        revision,
                        Stale {
                            time: snapshot.time,
                            snapshot: id,
                            database: database.name.clone(),
                        },
                    );
                }
            }
            next = snapshot.parents.first().copied();
        }
    }
    Ok(stale
        .into_iter()
        .map(|(id, stale)| {
            let revision = graph.get(&id).expect("holds: only known revisions are kept");
            // The file name: the full path is in `file`, shown relative.
            let name = revision
                .path
                .file_name()
                .map_or_else(|| revision.path.display().to_string(), |n| {
                    n.to_string_lossy().into_owned()
                });
            Finding::new(
                codes::EDITED_AFTER_APPLIED,
                Severity::Error,
                &id,
                format!(
                    "{} changed after snapshot {:.12} of {} recorded revision {id} as applied",
                    name,
                    stale.snapshot,
                    stale.database
                ),
            )
            .revision(&id)
            .file(&revision.path)
            .hint("databases that ran the old text will not run the edit; restore the file and put the change in a new revision")
        })
        .collect())
}
