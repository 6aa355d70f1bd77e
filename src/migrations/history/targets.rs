//! A set of target revisions: what a stamp, repair or accepted shape is for,
//! resolved from the names a user gave (ids, prefixes, branch labels,
//! `head`, `heads`) or from the revisions a database records.

use std::fmt;
use std::ops::Deref;

use serde::Serialize;

use super::graph::{Graph, ResolveError, Resolved};
use super::revision_id::RevisionId;

/// Revisions of one graph that a workflow works towards together: never
/// empty, sorted and without duplicates, so two spellings of the same set
/// (`heads` or its ids in any order) are equal and share one reference.
/// Serialized as the list of ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Targets(Vec<RevisionId>);

/// Why the target revisions cannot be told.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// No names, and the database records no revision.
    #[error("the database records no revision")]
    NoneRecorded,
    /// No names, and the database records a revision no script declares.
    #[error("the database records revision {revision}, which no migration script declares")]
    Undeclared {
        /// The revision.
        revision: RevisionId,
    },
    /// A name does not resolve.
    #[error(transparent)]
    Unresolved(#[from] ResolveError),
    /// A name means `base`, which has no reference.
    #[error("'base' has no reference")]
    Base,
}

impl Targets {
    /// The revisions `names` stand for, or, with no names, the revisions
    /// `stamped` records (which must all be declared in `graph`).
    pub fn resolve(
        graph: &Graph,
        names: &[String],
        stamped: Option<Vec<RevisionId>>,
    ) -> Result<Targets, TargetError> {
        let mut targets = Vec::new();
        if names.is_empty() {
            targets = stamped.unwrap_or_default();
            if targets.is_empty() {
                return Err(TargetError::NoneRecorded);
            }
            if let Some(unknown) = targets.iter().find(|t| graph.get(t).is_none()) {
                return Err(TargetError::Undeclared {
                    revision: unknown.clone(),
                });
            }
        }
        for name in names {
            match graph.resolve(name)? {
                Resolved::Revisions(ids) => targets.extend(ids),
                Resolved::Base => return Err(TargetError::Base),
            }
        }
        targets.sort();
        targets.dedup();
        Ok(Targets(targets))
    }

    /// The one revision `id`, taken as declared (for callers that already
    /// hold a revision of the graph).
    pub fn one(id: &str) -> Targets {
        Targets(vec![id.into()])
    }

    /// The revisions `ids`, which `graph` declares (ids a workflow found in
    /// it, such as the nearest located revisions): taken exactly, never as
    /// prefixes or labels.
    pub fn declared(graph: &Graph, mut ids: Vec<RevisionId>) -> Targets {
        debug_assert!(
            ids.iter().all(|id| graph.get(id).is_some()),
            "BUG: undeclared ids {ids:?}"
        );
        ids.sort();
        ids.dedup();
        Targets(ids)
    }
}

impl Deref for Targets {
    type Target = [RevisionId];

    /// The ids, sorted: what the reference chain and the version rows take.
    fn deref(&self) -> &[RevisionId] {
        &self.0
    }
}

impl fmt::Display for Targets {
    /// The ids joined with ` + `, as messages name a set of revisions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" + "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::history::graph::Revision;

    fn graph() -> Graph {
        let revisions = vec![
            Revision::bare("a", &[]),
            Revision::bare("b1", &["a"]),
            Revision::bare("b2", &["a"]),
        ];
        Graph::build(revisions, Vec::new())
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn ids(ids: &[&str]) -> Vec<RevisionId> {
        ids.iter().map(|&id| id.into()).collect()
    }

    /// Two spellings of one set are one value; it prints and serializes as
    /// the sorted ids.
    #[test]
    fn resolves_names_to_one_sorted_set() {
        let graph = graph();
        let heads = Targets::resolve(&graph, &names(&["heads"]), None).unwrap();
        let spelled = Targets::resolve(&graph, &names(&["b2", "b1", "b2"]), None).unwrap();
        assert_eq!(heads, spelled);
        assert_eq!(heads.to_string(), "b1 + b2");
        assert_eq!(serde_json::to_string(&heads).unwrap(), r#"["b1","b2"]"#);
        assert_eq!(&*Targets::one("a"), ["a"]);
    }

    /// Without names the recorded revisions are the targets, if there are
    /// any and the scripts declare them; `base` is never a target.
    #[test]
    fn falls_back_to_the_recorded_revisions() {
        let graph = graph();
        let recorded = Targets::resolve(&graph, &[], Some(ids(&["b1"]))).unwrap();
        assert_eq!(recorded, Targets::one("b1"));
        assert!(matches!(
            Targets::resolve(&graph, &[], Some(Vec::new())),
            Err(TargetError::NoneRecorded)
        ));
        assert!(matches!(
            Targets::resolve(&graph, &[], Some(ids(&["zz"]))),
            Err(TargetError::Undeclared { revision }) if revision == "zz"
        ));
        assert!(matches!(
            Targets::resolve(&graph, &names(&["base"]), None),
            Err(TargetError::Base)
        ));
    }
}
