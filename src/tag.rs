//! Tags: immutable names for snapshots, kept as `tags/NAME` refs.

use migsnap_store::{Change, Expected, ObjectId, RefEdit, RefName, Store};

/// What can go wrong with a tag.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// The name is not a valid tag name.
    #[error("'{name}' is not a valid tag name: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The tag exists already.
    #[error(
        "tag '{name}' already exists (at {target:.12}); delete it first with `migsnap tag -d {name}`"
    )]
    Exists {
        /// The name.
        name: String,
        /// Where it points.
        target: ObjectId,
    },
    /// No such tag.
    #[error("tag '{name}' does not exist")]
    Missing {
        /// The name.
        name: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
}

fn tag_ref(name: &str) -> Result<RefName, TagError> {
    RefName::new(format!("tags/{name}")).map_err(|e| TagError::BadName {
        name: name.to_owned(),
        reason: e.reason,
    })
}

/// Creates tag `name` at `target`.
pub fn create(store: &mut Store, name: &str, target: ObjectId) -> Result<(), TagError> {
    let refname = tag_ref(name)?;
    if let Some(existing) = store.view().find_ref(&refname)? {
        return Err(TagError::Exists {
            name: name.to_owned(),
            target: existing,
        });
    }
    let edit = RefEdit {
        name: refname,
        change: Change::Update {
            expected: Expected::MustNotExist,
            new: target,
        },
    };
    store
        .transaction()?
        .commit(&[edit], &format!("tag {name}"))?;
    Ok(())
}

/// Deletes tag `name` and returns where it pointed. The reflog keeps the
/// snapshot reachable for gc's grace period.
pub fn delete(store: &mut Store, name: &str) -> Result<ObjectId, TagError> {
    let refname = tag_ref(name)?;
    let target = store
        .view()
        .find_ref(&refname)?
        .ok_or_else(|| TagError::Missing {
            name: name.to_owned(),
        })?;
    let edit = RefEdit {
        name: refname,
        change: Change::Delete {
            expected: Expected::MustEqual(target),
        },
    };
    store
        .transaction()?
        .commit(&[edit], &format!("delete tag {name}"))?;
    Ok(target)
}

/// All tags with their targets, by name.
pub fn list(store: &Store) -> Result<Vec<(String, ObjectId)>, TagError> {
    Ok(store
        .view()
        .refs("tags/")?
        .into_iter()
        .map(|(name, id)| (name.as_str()["tags/".len()..].to_owned(), id))
        .collect())
}
