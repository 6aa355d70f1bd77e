//! Where a database stands in its migration history, from the rows of its
//! `alembic_version` table read as a set.

use std::collections::BTreeSet;

use serde::Serialize;

use super::graph::Graph;
use super::revision_id::RevisionId;

/// The class of a database's position, with what each class needs to say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "kebab-case")]
pub enum Position {
    /// No `alembic_version` table: the database was never stamped.
    Unversioned,
    /// Nothing is left to apply: the rows are the heads (or imply them
    /// through dependencies).
    AtHeads,
    /// Every head is reachable by upgrading: these revisions are pending,
    /// in the order `alembic upgrade heads` applies them. An empty table
    /// (at base) is behind everything.
    Behind {
        /// Revisions to apply, prerequisites first.
        pending: Vec<RevisionId>,
    },
    /// The rows follow some branches only: these heads descend from no row,
    /// so their branches are not applied at all.
    OnSomeBranches {
        /// The heads no row leads to.
        untracked_heads: Vec<RevisionId>,
        /// Revisions to apply to reach every head, prerequisites first.
        pending: Vec<RevisionId>,
    },
    /// A row names a revision the migration scripts do not have.
    UnknownRevision {
        /// The rows with no script.
        unknown: Vec<RevisionId>,
    },
    /// One row is an ancestor of another: Alembic never leaves a table so.
    Inconsistent {
        /// The ancestor row.
        ancestor: RevisionId,
        /// The row it is an ancestor of.
        descendant: RevisionId,
    },
}

impl Position {
    /// The class name used in text and JSON (`at-heads`, `behind`, …).
    pub fn class(&self) -> &'static str {
        match self {
            Position::Unversioned => "unversioned",
            Position::AtHeads => "at-heads",
            Position::Behind { .. } => "behind",
            Position::OnSomeBranches { .. } => "on-some-branches",
            Position::UnknownRevision { .. } => "unknown-revision",
            Position::Inconsistent { .. } => "inconsistent",
        }
    }

    /// The revisions still to apply, when the class knows them.
    pub fn pending(&self) -> &[RevisionId] {
        match self {
            Position::Behind { pending } | Position::OnSomeBranches { pending, .. } => pending,
            _ => &[],
        }
    }
}

/// Classifies a database whose `alembic_version` rows are `rows` (`None`
/// when the table does not exist).
pub fn classify(graph: &Graph, rows: Option<&[RevisionId]>) -> Position {
    let Some(rows) = rows else {
        return Position::Unversioned;
    };
    let rows: BTreeSet<&RevisionId> = rows.iter().collect();
    let unknown: Vec<RevisionId> = rows
        .iter()
        .filter(|r| graph.get(r).is_none())
        .map(|&r| r.clone())
        .collect();
    if !unknown.is_empty() {
        return Position::UnknownRevision { unknown };
    }
    for row in &rows {
        let ancestors = graph.ancestors(row);
        if let Some(ancestor) = rows.iter().find(|other| ancestors.contains(**other)) {
            return Position::Inconsistent {
                ancestor: (*ancestor).clone(),
                descendant: (*row).clone(),
            };
        }
    }
    let applied = graph.closure(rows.iter().map(|r| r.as_str()));
    let pending: Vec<RevisionId> = graph
        .topological()
        .into_iter()
        .filter(|id| !applied.contains(id))
        .collect();
    // Nothing left to apply. (Not "the rows are the heads": a head that
    // another head depends on is applied without a row of its own.)
    if pending.is_empty() {
        return Position::AtHeads;
    }
    let untracked_heads: Vec<RevisionId> = graph
        .heads()
        .into_iter()
        .filter(|head| {
            !applied.contains(head) && !rows.iter().any(|row| graph.ancestors(head).contains(*row))
        })
        .collect();
    if untracked_heads.is_empty() || rows.is_empty() {
        Position::Behind { pending }
    } else {
        Position::OnSomeBranches {
            untracked_heads,
            pending,
        }
    }
}

#[cfg(test)]
mod tests {

    use super::super::graph::Revision;
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Graph {
        Graph::build(
            edges
                .iter()
                .map(|(id, parents)| Revision::bare(id, parents))
                .collect(),
            Vec::new(),
        )
    }

    fn rows(ids: &[&str]) -> Vec<RevisionId> {
        ids.iter().map(|&s| s.into()).collect()
    }

    #[test]
    fn classifies_every_class() {
        let g = graph(&[
            ("a", &[]),
            ("b", &["a"]),
            ("c1", &["b"]),
            ("d1", &["c1"]),
            ("c2", &["b"]),
        ]);
        assert_eq!(classify(&g, None), Position::Unversioned);
        assert_eq!(classify(&g, Some(&rows(&["d1", "c2"]))), Position::AtHeads);
        assert_eq!(
            classify(&g, Some(&rows(&["b"]))),
            Position::Behind {
                pending: rows(&["c1", "d1", "c2"])
            }
        );
        assert_eq!(
            classify(&g, Some(&[])),
            Position::Behind {
                pending: rows(&["a", "b", "c1", "d1", "c2"])
            }
        );
        assert_eq!(
            classify(&g, Some(&rows(&["c1"]))),
            Position::OnSomeBranches {
                untracked_heads: rows(&["c2"]),
                pending: rows(&["d1", "c2"])
            }
        );
        assert_eq!(
            classify(&g, Some(&rows(&["c1", "zzz"]))),
            Position::UnknownRevision {
                unknown: rows(&["zzz"])
            }
        );
        assert_eq!(
            classify(&g, Some(&rows(&["a", "d1"]))),
            Position::Inconsistent {
                ancestor: "a".into(),
                descendant: "d1".into()
            }
        );
        assert_eq!(
            classify(&g, Some(&rows(&["c1", "c2"]))),
            Position::Behind {
                pending: rows(&["d1"])
            }
        );
    }
}
