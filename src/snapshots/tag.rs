//! Tags: immutable names for snapshots, kept as `tags/NAME` refs.
//!
//! A revision's name is looked up as a tag first (see [`crate::snapshots::revspec`]),
//! so a new tag must not be able to mean anything else: not a tracked
//! database, not `HEAD`, not a full ref name, not a snapshot id prefix, and
//! not an option. [`check_name`] holds those rules, as git's
//! `check-ref-format` does for branches.

use migsnap_store::{Change, Expected, ObjectId, RefEdit, RefName, Store};

use crate::repo::Repo;

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
    #[error("tag '{name}' already exists (at {target:.12})")]
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

/// The ref of an existing tag `name`; only the ref syntax is checked, so a
/// tag made before [`check_name`]'s rules can still be deleted.
fn tag_ref(name: &str) -> Result<RefName, TagError> {
    RefName::new(format!("tags/{name}")).map_err(|e| TagError::BadName {
        name: name.to_owned(),
        reason: e.reason,
    })
}

/// Checks that `name` can be a new tag in `repo` and returns its ref.
pub fn check_name(repo: &Repo, name: &str) -> Result<RefName, TagError> {
    let bad = |reason| {
        Err(TagError::BadName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.starts_with('-') {
        return bad("it starts with '-', which reads as an option");
    }
    if name == "HEAD" {
        return bad("HEAD names the latest snapshot");
    }
    if name.contains('/') {
        return bad("'/' makes it a full ref name, such as heads/NAME or tags/NAME");
    }
    if name.len() >= 4 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad("it looks like a snapshot id prefix");
    }
    if repo.database(name).is_some() {
        return bad("a tracked database has that name, and the tag would hide its latest snapshot");
    }
    tag_ref(name)
}

/// Fails with [`TagError::Exists`] when tag `refname` exists in `view`.
pub fn check_free(view: migsnap_store::View<'_>, refname: &RefName) -> Result<(), TagError> {
    match view.find_ref(refname)? {
        Some(existing) => Err(TagError::Exists {
            name: refname.as_str()["tags/".len()..].to_owned(),
            target: existing,
        }),
        None => Ok(()),
    }
}

/// Creates tag `name` at `target`.
pub fn create(repo: &mut Repo, name: &str, target: ObjectId) -> Result<(), TagError> {
    let refname = check_name(repo, name)?;
    check_free(repo.store.view(), &refname)?;
    let edit = RefEdit {
        name: refname,
        change: Change::Update {
            expected: Expected::MustNotExist,
            new: target,
        },
    };
    repo.store
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
