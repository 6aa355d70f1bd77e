//! The id of an Alembic revision (`revision = "ae1027a6acf"`), or of a step
//! of a SQL-folder history: a string kept apart from the other strings a
//! history holds (branch labels, paths, hashes, user input not yet
//! resolved).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::Serialize;

/// A revision id as declared by a script or recorded by a database. It does
/// not claim the id is declared in any graph: version rows may name an id
/// the scripts lack, and are still ids (see `drift::stamped`). Serialized as
/// the plain string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RevisionId(String);

impl RevisionId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for RevisionId {
    fn from(id: String) -> RevisionId {
        RevisionId(id)
    }
}

impl From<&str> for RevisionId {
    fn from(id: &str) -> RevisionId {
        RevisionId(id.to_owned())
    }
}

/// Debug output is the string's, so messages that list ids with `{:?}`
/// read as they did when ids were strings.
impl fmt::Debug for RevisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for RevisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// An id reads as the text it is (`&id` where a `&str` is wanted), so
/// hashing, ref names and SQL parameters take it as they took the string.
impl Deref for RevisionId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// Maps and sets keyed by id are looked up with the `&str` a caller holds.
impl Borrow<str> for RevisionId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for RevisionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for RevisionId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RevisionId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Findings and messages keep ids as plain text.
impl From<&RevisionId> for String {
    fn from(id: &RevisionId) -> String {
        id.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// An id prints, serializes and debug-prints as the bare string did, so
    /// retyping changed no output; maps keyed by id answer a `&str`.
    #[test]
    fn reads_as_its_string() {
        let id = RevisionId::from("ae1027a6acf");
        assert_eq!(id.to_string(), "ae1027a6acf");
        assert_eq!(format!("{id:>12}"), " ae1027a6acf");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""ae1027a6acf""#);
        assert_eq!(format!("{:?}", [&id]), r#"["ae1027a6acf"]"#);
        let map = BTreeMap::from([(id.clone(), 1)]);
        assert_eq!(map.get("ae1027a6acf"), Some(&1));
        assert_eq!(id, "ae1027a6acf");
    }
}
