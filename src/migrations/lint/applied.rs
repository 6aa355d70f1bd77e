//! `lint.edited-after-applied`: revision files that changed after a snapshot
//! recorded them as applied to a database.
//!
//! Every snapshot records the BLAKE3 of each revision file its database had
//! applied. A database that ran the old text never runs the new one, so an
//! edit silently forks the schema between machines. Only snapshot objects
//! are read (their headers), never schemas or pages.

use std::collections::{BTreeMap, BTreeSet};

use migsnap_store::ObjectId;

use super::codes;
use crate::finding::{Finding, Severity};
use crate::migrations::history::graph::Graph;
use crate::migrations::history::project::Project;
use crate::migrations::workspace::belongs;
use crate::repo::Repo;
use crate::snapshots::log::first_parents;
use crate::snapshots::snapshot::Recorded;

/// The newest snapshot that recorded an older text of a revision.
struct Stale {
    time: i64,
    snapshot: ObjectId,
    database: String,
}

/// Calls `each(time, snapshot, database, revision, recorded hash)` for every
/// revision file recorded by a snapshot on the first-parent history of the
/// head of a tracked database of `project` (see [`belongs`]: another
/// project's revision with the same id is another file).
fn walk(
    repo: &Repo,
    project: &Project,
    mut each: impl FnMut(i64, ObjectId, &str, String, String),
) -> Result<(), migsnap_store::Error> {
    let view = repo.store.view();
    for database in repo.databases().filter(|db| belongs(repo, db, project)) {
        for step in first_parents(view, view.find_ref(&database.head_ref())?) {
            let (id, snapshot) = step?;
            for (revision, recorded) in Recorded::from_snapshot(&snapshot).migration_files {
                each(snapshot.time, id, &database.name, revision, recorded);
            }
        }
    }
    Ok(())
}

/// The revisions some snapshot of a tracked database of `project` recorded
/// as applied.
pub fn recorded(repo: &Repo, project: &Project) -> Result<BTreeSet<String>, migsnap_store::Error> {
    let mut applied = BTreeSet::new();
    walk(repo, project, |_, _, _, revision, _| {
        applied.insert(revision);
    })?;
    Ok(applied)
}

/// One finding per revision whose file differs from what a snapshot on the
/// first-parent history of the head of a tracked database of `project`
/// recorded; it names
/// the newest such snapshot.
pub fn edited_after_applied(
    repo: &Repo,
    project: &Project,
    graph: &Graph,
) -> Result<Vec<Finding>, migsnap_store::Error> {
    let mut stale: BTreeMap<String, Stale> = BTreeMap::new();
    walk(
        repo,
        project,
        |time, snapshot, database, revision, recorded| {
            let edited = graph
                .get(&revision)
                .is_some_and(|current| current.file_hash != recorded);
            let newer = stale.get(&revision).is_none_or(|seen| time > seen.time);
            if edited && newer {
                stale.insert(
                    revision,
                    Stale {
                        time,
                        snapshot,
                        database: database.to_owned(),
                    },
                );
            }
        },
    )?;
    Ok(stale
        .into_iter()
        .map(|(id, stale)| {
            let revision = graph.get(&id).expect("holds: only known revisions are kept");
            Finding::new(
                codes::EDITED_AFTER_APPLIED,
                Severity::Error,
                &id,
                format!(
                    "the file changed after snapshot {:.12} of {} recorded it as applied",
                    stale.snapshot, stale.database
                ),
            )
            .revision(&id)
            .file(&revision.path)
            .hint("databases that ran the old text will not run the edit; restore the file and put the change in a new revision")
        })
        .collect())
}
