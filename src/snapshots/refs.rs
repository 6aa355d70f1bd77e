//! Every ref of the store with its target, and repairing ref and reflog rows
//! that cannot be read (`migsnap refs`).

use migsnap_store::{ObjectId, Store};

/// One readable ref and its target.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RefEntry {
    /// The full ref name (`heads/app`, `tags/v1`, ...).
    pub name: String,
    /// The object it points at.
    pub target: ObjectId,
}

/// Every ref, and the rows that cannot be read (`refs --format json`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RefsReport {
    /// The readable refs, by name.
    pub refs: Vec<RefEntry>,
    /// The damaged ref and reflog rows, described.
    pub damaged: Vec<String>,
}

impl RefsReport {
    /// Whether no row is damaged.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// The damaged rows that were deleted (`refs --delete-broken --format json`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BrokenDeleted {
    /// The deleted rows, described as [`RefsReport::damaged`] lists them.
    pub deleted: Vec<String>,
}

/// Lists every ref and every damaged row.
pub fn list(store: &Store) -> Result<RefsReport, migsnap_store::Error> {
    let view = store.view();
    let refs = view
        .refs("")?
        .into_iter()
        .map(|(name, target)| RefEntry {
            name: name.as_str().to_owned(),
            target,
        })
        .collect();
    let damaged = view
        .broken_refs()?
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(RefsReport { refs, damaged })
}

/// Deletes every ref and reflog row that cannot be read, in one
/// transaction; the snapshots they named are kept until gc.
pub fn delete_broken(store: &mut Store) -> Result<BrokenDeleted, migsnap_store::Error> {
    let mut tx = store.transaction()?;
    let deleted = tx.delete_broken_refs()?;
    tx.commit(&[], "")?;
    Ok(BrokenDeleted {
        deleted: deleted.iter().map(ToString::to_string).collect(),
    })
}
