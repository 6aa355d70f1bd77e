//! The line a built-in or interactive bisection of snapshots runs along:
//! a tracked database's first-parent history.

use migsnap_store::ObjectId;

use super::BisectError;
use crate::repo::{Repo, Tracked};
use crate::snapshots::log::first_parents;

/// The first-parent history of `db`'s head, oldest first, read from
/// snapshot objects only. A database without snapshots has nothing to
/// bisect.
pub fn snapshot_line(repo: &Repo, db: &Tracked) -> Result<Vec<ObjectId>, BisectError> {
    let view = repo.store.view();
    let mut line = first_parents(view, view.find_ref(&db.head_ref())?)
        .map(|step| step.map(|(id, _)| id))
        .collect::<Result<Vec<_>, _>>()?;
    if line.is_empty() {
        return Err(BisectError::NoHistory {
            database: db.name.clone(),
        });
    }
    line.reverse();
    Ok(line)
}
