//! Ref names, ref edits and reflog entries.
//!
//! Refs are the only mutable names in a store. They change only through
//! [`crate::Transaction::commit`], which applies a list of [`RefEdit`]s with
//! compare-and-swap semantics, together with the objects they point to, and
//! appends one reflog entry per edit.

use std::fmt;

use crate::id::ObjectId;

/// A validated ref name such as `heads/webui` or `tags/before-upgrade`.
///
/// Rules (a subset of git's `check-ref-format`): 1 to 255 bytes of
/// `[A-Za-z0-9._/-]`; components separated by `/` are non-empty, do not
/// start with `.`, and do not end with `.lock`; no `..`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RefName(String);

/// Why a string is not a valid ref name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ref name '{name}': {reason}")]
pub struct RefNameError {
    /// The rejected name.
    pub name: String,
    /// Which rule it breaks.
    pub reason: &'static str,
}

impl RefName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<RefName, RefNameError> {
        let name = name.into();
        let reject = |reason| {
            Err(RefNameError {
                name: name.clone(),
                reason,
            })
        };
        if name.is_empty() || name.len() > 255 {
            return reject("must be 1 to 255 bytes long");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
        {
            return reject("only letters, digits, '.', '_', '-' and '/' are allowed");
        }
        if name.contains("..") {
            return reject("must not contain '..'");
        }
        for component in name.split('/') {
            if component.is_empty() {
                return reject("must not have an empty component");
            }
            if component.starts_with('.') {
                return reject("a component must not start with '.'");
            }
            if component.ends_with(".lock") {
                return reject("a component must not end with '.lock'");
            }
        }
        Ok(RefName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for RefName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// What a ref must point to for an edit to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Anything, including nothing.
    Any,
    /// The ref must not exist.
    MustNotExist,
    /// The ref must point to this id.
    MustEqual(ObjectId),
}

/// How a ref changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Create or move the ref to `new`.
    Update {
        /// Precondition on the current value.
        expected: Expected,
        /// The new target.
        new: ObjectId,
    },
    /// Remove the ref.
    Delete {
        /// Precondition on the current value.
        expected: Expected,
    },
}

/// One change to one ref.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefEdit {
    /// Which ref.
    pub name: RefName,
    /// What happens to it.
    pub change: Change,
}

/// One line of a ref's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReflogEntry {
    /// The ref that changed.
    pub name: RefName,
    /// Its value before, if it existed.
    pub old: Option<ObjectId>,
    /// Its value after, if it still exists.
    pub new: Option<ObjectId>,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// Why it changed.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["heads/webui", "tags/v1.0", "tags/before_upgrade-2", "x"] {
            assert_eq!(RefName::new(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn rejects_bad_names() {
        for name in [
            "",
            "a//b",
            "/a",
            "a/",
            "a..b",
            ".hidden",
            "tags/.x",
            "x.lock",
            "has space",
            "semi;colon",
            "quote\"",
            "ünï",
        ] {
            assert!(RefName::new(name).is_err(), "{name:?} should be rejected");
        }
        assert!(RefName::new("a".repeat(256)).is_err());
    }
}
