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

/// A tag that was created (`tag --format json`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Tagged {
    /// The tag's name.
    pub tag: String,
    /// The snapshot it names.
    pub target: ObjectId,
}

/// A tag that was deleted (`tag -d --format json`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Deleted {
    /// The tag's name.
    pub deleted: String,
    /// Where it pointed; `None` when its row was damaged and had no
    /// readable target.
    pub target: Option<ObjectId>,
}

/// One tag and its target (`tags --format json`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TagEntry {
    /// The tag's name, without `tags/`.
    pub name: String,
    /// The snapshot it names.
    pub target: ObjectId,
}

/// Creates tag `name` at `target`.
pub fn create(repo: &mut Repo, name: &str, target: ObjectId) -> Result<Tagged, TagError> {
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
    Ok(Tagged {
        tag: name.to_owned(),
        target,
    })
}

/// Deletes tag `name` and returns where it pointed. The reflog keeps the
/// snapshot reachable for gc's grace period. A tag whose row is damaged has
/// no target to show; deleting the row is how it is repaired.
pub fn delete(store: &mut Store, name: &str) -> Result<Deleted, TagError> {
    let refname = tag_ref(name)?;
    let found = match store.view().find_ref(&refname) {
        Err(migsnap_store::Error::BadRef { .. }) => None,
        other => Some(other?),
    };
    let Some(found) = found else {
        let mut tx = store.transaction()?;
        tx.delete_broken_ref(&refname)?;
        tx.commit(&[], "")?;
        return Ok(Deleted {
            deleted: name.to_owned(),
            target: None,
        });
    };
    let target = found.ok_or_else(|| TagError::Missing {
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
    Ok(Deleted {
        deleted: name.to_owned(),
        target: Some(target),
    })
}

/// All tags with their targets, by name.
pub fn list(store: &Store) -> Result<Vec<TagEntry>, TagError> {
    Ok(store
        .view()
        .refs("tags/")?
        .into_iter()
        .map(|(name, target)| TagEntry {
            name: name.as_str()["tags/".len()..].to_owned(),
            target,
        })
        .collect())
}
