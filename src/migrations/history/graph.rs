//! The revision graph of a migration history: revisions, their parents
//! (`down_revision`), dependencies (`depends_on`) and branch labels, with the
//! findings that make a history suspect.
//!
//! Alembic's words are used throughout: a *head* has no child, a *base* has no
//! parent, a *branch point* has several children and a *merge point* several
//! parents. Children and heads follow `down_revision` only, as in Alembic; a
//! dependency orders revisions (it is applied first) without making its
//! target a parent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::data_steps::DataStep;
use super::revision_id::RevisionId;
use super::touched::Touched;
use crate::finding::{Finding, Severity};

/// The stable finding codes of a revision graph.
pub mod codes {
    /// More than one head: two branches were never merged.
    pub const MULTIPLE_HEADS: &str = "history.multiple-heads";
    /// `down_revision` names a revision that does not exist.
    pub const ORPHAN_PARENT: &str = "history.orphan-parent";
    /// Two files declare the same revision id.
    pub const DUPLICATE_ID: &str = "history.duplicate-id";
    /// Following `down_revision` (and `depends_on`) loops.
    pub const CYCLE: &str = "history.cycle";
    /// A revision id has characters Alembic rejects (`@`, `-`, `+`).
    pub const ILLEGAL_ID: &str = "history.illegal-id";
    /// The docstring header (`Revises:`) disagrees with `down_revision`.
    pub const HEADER_MISMATCH: &str = "history.header-mismatch";
    /// The ids came from the docstring header because the variables are
    /// missing.
    pub const HEADER_FALLBACK: &str = "history.header-fallback";
    /// `depends_on` names neither a revision nor a branch label.
    pub const UNKNOWN_DEPENDENCY: &str = "history.unknown-dependency";
    /// Two revisions claim the same branch label.
    pub const DUPLICATE_LABEL: &str = "history.duplicate-label";
    /// A revision file could not be read or parsed.
    pub const UNREADABLE: &str = "history.unreadable";

    /// Every code above, for validating configuration.
    pub const ALL: &[&str] = &[
        MULTIPLE_HEADS,
        ORPHAN_PARENT,
        DUPLICATE_ID,
        CYCLE,
        ILLEGAL_ID,
        HEADER_MISMATCH,
        HEADER_FALLBACK,
        UNKNOWN_DEPENDENCY,
        DUPLICATE_LABEL,
        UNREADABLE,
    ];
}

impl crate::snapshots::snapshot::MigrationFiles for Graph {
    fn applied_files(&self, rows: &[String]) -> BTreeMap<String, String> {
        self.closure(rows.iter().map(String::as_str))
            .into_iter()
            .filter_map(|id| {
                self.get(id.as_str())
                    .map(|r| (id.to_string(), r.file_hash.clone()))
            })
            .collect()
    }
}

/// One revision: a migration step.
#[derive(Clone, Debug, Serialize)]
pub struct Revision {
    /// Its id (`revision`).
    pub id: RevisionId,
    /// Its parents (`down_revision`); empty for a base.
    pub parents: Vec<RevisionId>,
    /// Revisions that must be applied first, as written: an id or a branch
    /// label (so text, until [`Graph::prerequisites`] resolves it).
    pub depends_on: Vec<String>,
    /// Its branch labels.
    pub branch_labels: Vec<String>,
    /// The file that declares it.
    pub path: PathBuf,
    /// BLAKE3 of the file's bytes, hex: the key of everything cached about
    /// what the revision does.
    pub file_hash: String,
    /// The first line of its docstring, or its name.
    pub message: Option<String>,
    /// Where its upgrade moves rows rather than only changing the schema,
    /// read statically: what a schema-only repair skipping it leaves undone.
    pub data_steps: Vec<DataStep>,
}

/// A revision graph with its findings.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    revisions: BTreeMap<RevisionId, Revision>,
    children: BTreeMap<RevisionId, Vec<RevisionId>>,
    labels: BTreeMap<String, RevisionId>,
    findings: Vec<Finding>,
}

/// What a revision name given by a user resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// These revisions (one for an id or label, several for `heads`).
    Revisions(Vec<RevisionId>),
    /// `base`: before the first revision.
    Base,
}

/// Why a user's revision name does not resolve.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Nothing has that id, prefix or label.
    #[error("no revision '{0}' in the migration history")]
    Unknown(String),
    /// A prefix of several ids.
    #[error("revision '{name}' is ambiguous: {}", candidates.join(", "))]
    Ambiguous {
        /// What was asked for.
        name: String,
        /// The ids it could mean.
        candidates: Vec<RevisionId>,
    },
    /// `head` when there are several heads.
    #[error("'head' is ambiguous: the history has several heads ({}); use 'heads' or name one", heads.join(", "))]
    SeveralHeads {
        /// The heads.
        heads: Vec<RevisionId>,
    },
}

impl Graph {
    /// Builds a graph from revisions as declared, reporting duplicates,
    /// orphans, cycles, illegal ids and unknown dependencies. Findings from
    /// reading the files (`findings`) are kept in front.
    pub fn build(declared: Vec<Revision>, mut findings: Vec<Finding>) -> Graph {
        let revisions = unique_revisions(declared, &mut findings);
        let labels = branch_labels(&revisions, &mut findings);
        let children = children(&revisions, &labels, &mut findings);

        let mut graph = Graph {
            revisions,
            children,
            labels,
            findings,
        };
        for cycle in graph.cycles() {
            let first = &graph.revisions[&cycle[0]];
            let finding = Finding::new(
                codes::CYCLE,
                Severity::Error,
                &first.id,
                format!(
                    "revisions form a cycle: {} → {}",
                    cycle.join(" → "),
                    cycle[0]
                ),
            )
            .revision(&first.id)
            .file(&first.path)
            .hint("one of these down_revision or depends_on entries must point elsewhere");
            graph.findings.push(finding);
        }
        if let Some(finding) = graph.multiple_heads(&BTreeSet::new()) {
            graph.findings.push(finding);
        }
        graph
    }

    /// Every revision, by id.
    pub fn revisions(&self) -> impl Iterator<Item = &Revision> {
        self.revisions.values()
    }

    /// How many revisions there are.
    pub fn len(&self) -> usize {
        self.revisions.len()
    }

    /// Whether the history has no revision.
    pub fn is_empty(&self) -> bool {
        self.revisions.is_empty()
    }

    /// The revision with this exact id (a [`RevisionId`], or text that may
    /// be one).
    pub fn get(&self, id: impl AsRef<str>) -> Option<&Revision> {
        self.revisions.get(id.as_ref())
    }

    /// What is wrong or noteworthy about the history.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The children of `id` (revisions whose `down_revision` names it).
    pub fn children(&self, id: impl AsRef<str>) -> &[RevisionId] {
        self.children.get(id.as_ref()).map_or(&[], Vec::as_slice)
    }

    /// Revisions without children, sorted.
    pub fn heads(&self) -> Vec<RevisionId> {
        self.revisions
            .keys()
            .filter(|id| self.children(id).is_empty())
            .cloned()
            .collect()
    }

    /// Revisions without parents, sorted.
    pub fn bases(&self) -> Vec<RevisionId> {
        self.revisions
            .values()
            .filter(|r| r.parents.is_empty())
            .map(|r| r.id.clone())
            .collect()
    }

    /// Revisions with more than one child.
    pub fn branch_points(&self) -> Vec<RevisionId> {
        self.children
            .iter()
            .filter(|(_, c)| c.len() > 1)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Revisions with more than one parent.
    pub fn merge_points(&self) -> Vec<RevisionId> {
        self.revisions
            .values()
            .filter(|r| r.parents.len() > 1)
            .map(|r| r.id.clone())
            .collect()
    }

    /// The revisions `id` must come after: its parents and its dependencies
    /// (labels resolved), those that exist.
    pub fn prerequisites(&self, id: impl AsRef<str>) -> Vec<RevisionId> {
        let Some(revision) = self.revisions.get(id.as_ref()) else {
            return Vec::new();
        };
        let mut out: Vec<RevisionId> = Vec::new();
        let parents = revision.parents.iter().map(RevisionId::as_str);
        for name in parents.chain(revision.depends_on.iter().map(String::as_str)) {
            let target = self.labels.get(name).map_or(name, RevisionId::as_str);
            if let Some((target, _)) = self.revisions.get_key_value(target)
                && !out.contains(target)
            {
                out.push(target.clone());
            }
        }
        out
    }

    /// `ids` and everything they need: what upgrading to them applies.
    pub fn closure<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> BTreeSet<RevisionId> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<RevisionId> = ids.into_iter().map(RevisionId::from).collect();
        while let Some(id) = stack.pop() {
            if self.revisions.contains_key(id.as_str()) && seen.insert(id.clone()) {
                stack.extend(self.prerequisites(id.as_str()));
            }
        }
        seen
    }

    /// The strict `down_revision` ancestors of `id` (not its dependencies):
    /// what Alembic means when it says one version row is "an ancestor of"
    /// another.
    pub fn ancestors(&self, id: impl AsRef<str>) -> BTreeSet<RevisionId> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&RevisionId> = self
            .revisions
            .get(id.as_ref())
            .map(|r| r.parents.iter().collect())
            .unwrap_or_default();
        while let Some(next) = stack.pop() {
            if let Some(revision) = self.revisions.get(next)
                && seen.insert(next.clone())
            {
                stack.extend(&revision.parents);
            }
        }
        seen
    }

    /// Every revision, prerequisites first. Among revisions ready at the
    /// same time, a child of the revision just placed comes first, so a
    /// replay continues along a branch instead of jumping between branches;
    /// otherwise ids order them. Revisions on a cycle are left out (the
    /// cycle is a finding).
    pub fn topological(&self) -> Vec<RevisionId> {
        let mut waiting: HashMap<&str, usize> = self
            .revisions
            .keys()
            .map(|id| (id.as_str(), self.prerequisites(id.as_str()).len()))
            .collect();
        let mut dependents: HashMap<RevisionId, Vec<&str>> = HashMap::new();
        for id in self.revisions.keys() {
            for before in self.prerequisites(id.as_str()) {
                dependents.entry(before).or_default().push(id.as_str());
            }
        }
        let mut ready: BTreeSet<&str> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| *id)
            .collect();
        let mut order: Vec<RevisionId> = Vec::with_capacity(self.revisions.len());
        while let Some(next) = order
            .last()
            .and_then(|last| {
                self.children(last.as_str())
                    .iter()
                    .find(|c| ready.contains(c.as_str()))
                    .map(RevisionId::as_str)
            })
            .or_else(|| ready.first().copied())
        {
            ready.remove(next);
            order.push(next.into());
            for dependent in dependents.get(next).into_iter().flatten() {
                let count = waiting
                    .get_mut(dependent)
                    .expect("holds: every id has a count");
                *count -= 1;
                if *count == 0 {
                    ready.insert(dependent);
                }
            }
        }
        order
    }

    /// Resolves what a user typed: a full id, a unique id prefix, a branch
    /// label, `head` (the only head), `heads` or `base`.
    pub fn resolve(&self, name: &str) -> Result<Resolved, ResolveError> {
        match name {
            "base" => return Ok(Resolved::Base),
            "heads" => return Ok(Resolved::Revisions(self.heads())),
            "head" => {
                let heads = self.heads();
                return match heads.len() {
                    1 => Ok(Resolved::Revisions(heads)),
                    _ => Err(ResolveError::SeveralHeads { heads }),
                };
            }
            _ => {}
        }
        if self.revisions.contains_key(name) {
            return Ok(Resolved::Revisions(vec![name.into()]));
        }
        if let Some(id) = self.labels.get(name) {
            return Ok(Resolved::Revisions(vec![id.clone()]));
        }
        let candidates: Vec<RevisionId> = self
            .revisions
            .range::<str, _>((Bound::Included(name), Bound::Unbounded))
            .take_while(|(id, _)| id.as_str().starts_with(name))
            .map(|(id, _)| id.clone())
            .collect();
        match candidates.len() {
            0 => Err(ResolveError::Unknown(name.to_owned())),
            1 => Ok(Resolved::Revisions(candidates)),
            _ => Err(ResolveError::Ambiguous {
                name: name.to_owned(),
                candidates,
            }),
        }
    }

    /// `history.multiple-heads`, an error: `alembic upgrade head` refuses to
    /// run. The hint is the guide's: name the fork point and each branch
    /// (its revisions, how far behind the others it is), say whether the
    /// branches touch the same tables, and re-point the newer branch rather
    /// than merge; a merge revision is for branches that have both shipped.
    ///
    /// The newer branch is one holding a revision of `new` (what a lint
    /// reviews), else the one whose files were modified last. `None` with
    /// one head or none.
    pub fn multiple_heads(&self, new: &BTreeSet<RevisionId>) -> Option<Finding> {
        let heads = self.heads();
        if heads.len() < 2 {
            return None;
        }
        let lines: Vec<BTreeSet<RevisionId>> = heads
            .iter()
            .map(|head| {
                let mut line = self.ancestors(head);
                line.insert(head.clone());
                line
            })
            .collect();
        let common: BTreeSet<RevisionId> =
            lines.iter().skip(1).fold(lines[0].clone(), |acc, line| {
                acc.intersection(line).cloned().collect()
            });
        let below: BTreeSet<RevisionId> = common
            .iter()
            .flat_map(|id| self.ancestors(id.as_str()))
            .collect();
        let forks: Vec<&RevisionId> = common.difference(&below).collect();
        let order = self.topological();
        let mut branches: Vec<Branch> = heads
            .iter()
            .zip(&lines)
            .enumerate()
            .map(|(i, (head, line))| {
                // The revisions on this head's line and no other.
                let own = |id: &RevisionId| {
                    line.contains(id)
                        && !lines
                            .iter()
                            .enumerate()
                            .any(|(j, l)| j != i && l.contains(id))
                };
                self.branch(head.as_str(), order.iter().filter(|id| own(id)), new)
            })
            .collect();
        let total: usize = branches.iter().map(|b| b.revisions.len()).sum();

        let fork = match forks.as_slice() {
            [] => "the heads share no revision (separate bases)".to_owned(),
            several => format!(
                "fork point {}",
                several
                    .iter()
                    .map(|id| self.shown(id))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        };
        let described: Vec<String> = branches
            .iter()
            .map(|branch| {
                let count = branch.revisions.len();
                let behind = total - count;
                format!(
                    "branch to {}: {} ({count} revision{} since the fork; {behind} revision{} behind the other head{})",
                    branch.head,
                    branch
                        .revisions
                        .iter()
                        .map(|r| self.shown(&r.id))
                        .collect::<Vec<_>>()
                        .join(", "),
                    plural(count),
                    plural(behind),
                    plural(heads.len() - 1),
                )
            })
            .collect();
        // Oldest first: each newer branch goes on top of the one before.
        branches.sort_by(|a, b| {
            (a.is_new, a.newest)
                .cmp(&(b.is_new, b.newest))
                .then(a.head.cmp(b.head))
        });
        let tables = tables_verdict(&branches);
        let repoint: Vec<String> = branches
            .windows(2)
            .map(|pair| self.repoint(&pair[0], &pair[1]))
            .collect();
        let finding = Finding::new(
            codes::MULTIPLE_HEADS,
            Severity::Error,
            heads.join(", "),
            format!(
                "{} heads: `alembic upgrade head` fails until there is one",
                heads.len()
            ),
        )
        .hint(format!(
            "{fork}; {}; {tables}; the usual fix: {}, then lint again; \
             merge the heads (`alembic merge`) only when both branches have already shipped to databases, never blindly",
            described.join("; "),
            repoint.join(", then "),
        ));
        Some(finding)
    }

    /// The branch to `head` made of the revisions `ids` (oldest first).
    fn branch<'a>(
        &'a self,
        head: &'a str,
        ids: impl Iterator<Item = &'a RevisionId>,
        new: &BTreeSet<RevisionId>,
    ) -> Branch<'a> {
        let revisions: Vec<&Revision> = ids.filter_map(|id| self.revisions.get(id)).collect();
        let mut touched = Touched::default();
        let mut newest = None;
        for revision in &revisions {
            match std::fs::read_to_string(&revision.path) {
                Ok(text) => touched.scan(&text),
                Err(_) => touched.opaque = true,
            }
            let modified = std::fs::metadata(&revision.path)
                .and_then(|m| m.modified())
                .ok();
            newest = newest.max(modified);
        }
        Branch {
            head,
            is_new: revisions.iter().any(|r| new.contains(&r.id)),
            revisions,
            touched,
            newest,
        }
    }

    /// The advice to put the `newer` branch on top of the `older` one.
    fn repoint(&self, older: &Branch<'_>, newer: &Branch<'_>) -> String {
        let firsts: Vec<String> = newer
            .revisions
            .iter()
            .filter(|r| {
                !r.parents
                    .iter()
                    .any(|p| newer.revisions.iter().any(|o| &o.id == p))
            })
            .map(|r| self.shown(&r.id))
            .collect();
        let why = if newer.is_new && !older.is_new {
            "the new branch"
        } else {
            "the newer branch, by file time"
        };
        format!(
            "re-point the down_revision of {} ({why}) at {}",
            firsts.join(" and "),
            older.head
        )
    }

    /// A revision as a hint names it: its file name when that holds the id
    /// (Alembic's `<id>_<slug>.py`), else the id and the file name.
    fn shown(&self, id: &RevisionId) -> String {
        let Some(name) = self
            .revisions
            .get(id)
            .and_then(|r| r.path.file_name())
            .map(|n| n.to_string_lossy().into_owned())
        else {
            return id.to_string();
        };
        if name.contains(id.as_str()) {
            name
        } else {
            format!("{id} ({name})")
        }
    }

    /// The cycles among prerequisites, each as the ids along it, starting
    /// from its smallest id so each is reported once.
    fn cycles(&self) -> Vec<Vec<RevisionId>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Open,
            Done,
        }
        let mut marks: HashMap<RevisionId, Mark> = HashMap::new();
        let mut found: BTreeSet<Vec<RevisionId>> = BTreeSet::new();
        for start in self.revisions.keys() {
            if marks.contains_key(start) {
                continue;
            }
            // Iterative depth-first search: (node, next prerequisite index).
            let mut path: Vec<(RevisionId, Vec<RevisionId>, usize)> =
                vec![(start.clone(), self.prerequisites(start.as_str()), 0)];
            marks.insert(start.clone(), Mark::Open);
            while let Some((node, nexts, index)) = path.last_mut() {
                let Some(next) = nexts.get(*index).cloned() else {
                    marks.insert(node.clone(), Mark::Done);
                    path.pop();
                    continue;
                };
                *index += 1;
                match marks.get(&next) {
                    Some(Mark::Open) => {
                        let from = path
                            .iter()
                            .position(|(n, _, _)| *n == next)
                            .expect("holds: an open node is on the path");
                        let mut cycle: Vec<RevisionId> =
                            path[from..].iter().map(|(n, _, _)| n.clone()).collect();
                        // Parents point backwards in time; report forwards.
                        cycle.reverse();
                        let smallest = (0..cycle.len())
                            .min_by_key(|&i| &cycle[i])
                            .expect("holds: a cycle is not empty");
                        cycle.rotate_left(smallest);
                        found.insert(cycle);
                    }
                    Some(Mark::Done) => {}
                    None => {
                        marks.insert(next.clone(), Mark::Open);
                        let prerequisites = self.prerequisites(next.as_str());
                        path.push((next, prerequisites, 0));
                    }
                }
            }
        }
        found.into_iter().collect()
    }
}

/// The declared revisions by id, the first of each id; findings for ids
/// Alembic rejects and for ids declared twice.
fn unique_revisions(
    declared: Vec<Revision>,
    findings: &mut Vec<Finding>,
) -> BTreeMap<RevisionId, Revision> {
    let mut revisions: BTreeMap<RevisionId, Revision> = BTreeMap::new();
    for revision in declared {
        if revision.id.as_str().contains(['@', '-', '+']) {
            findings.push(
                Finding::new(
                    codes::ILLEGAL_ID,
                    Severity::Error,
                    &revision.id,
                    format!(
                        "revision id '{}' has a character Alembic rejects ('@', '-' or '+')",
                        revision.id
                    ),
                )
                .revision(&revision.id)
                .file(&revision.path)
                .hint("rename the revision; Alembic will refuse to load it"),
            );
        }
        if let Some(first) = revisions.get(&revision.id) {
            findings.push(
                Finding::new(
                    codes::DUPLICATE_ID,
                    Severity::Error,
                    &revision.id,
                    format!(
                        "revision '{}' is declared twice, also in {}",
                        revision.id,
                        first.path.display()
                    ),
                )
                .revision(&revision.id)
                .file(&revision.path)
                .hint("give one of the files a new revision id (and fix its children)"),
            );
            continue;
        }
        revisions.insert(revision.id.clone(), revision);
    }
    revisions
}

/// The revision each branch label names; findings for labels claimed twice.
fn branch_labels(
    revisions: &BTreeMap<RevisionId, Revision>,
    findings: &mut Vec<Finding>,
) -> BTreeMap<String, RevisionId> {
    let mut labels: BTreeMap<String, RevisionId> = BTreeMap::new();
    for revision in revisions.values() {
        for label in &revision.branch_labels {
            match labels.get(label) {
                Some(owner) if owner != &revision.id => findings.push(
                    Finding::new(
                        codes::DUPLICATE_LABEL,
                        Severity::Error,
                        label,
                        format!(
                            "branch label '{label}' is claimed by both '{owner}' and '{}'",
                            revision.id
                        ),
                    )
                    .revision(&revision.id)
                    .file(&revision.path)
                    .hint("a branch label names one revision; remove one of them"),
                ),
                _ => {
                    labels.insert(label.clone(), revision.id.clone());
                }
            }
        }
    }
    labels
}

/// The children of each revision; findings for parents and dependencies
/// that do not exist.
fn children(
    revisions: &BTreeMap<RevisionId, Revision>,
    labels: &BTreeMap<String, RevisionId>,
    findings: &mut Vec<Finding>,
) -> BTreeMap<RevisionId, Vec<RevisionId>> {
    let mut children: BTreeMap<RevisionId, Vec<RevisionId>> = BTreeMap::new();
    for revision in revisions.values() {
        for parent in &revision.parents {
            if revisions.contains_key(parent) {
                children
                    .entry(parent.clone())
                    .or_default()
                    .push(revision.id.clone());
            } else {
                findings.push(
                    Finding::new(
                        codes::ORPHAN_PARENT,
                        Severity::Error,
                        &revision.id,
                        format!(
                            "revision '{}' has down_revision '{parent}', which does not exist",
                            revision.id
                        ),
                    )
                    .revision(&revision.id)
                    .file(&revision.path)
                    .hint("restore the missing revision file, or point down_revision at an existing revision"),
                );
            }
        }
        for dependency in &revision.depends_on {
            if !revisions.contains_key(dependency.as_str()) && !labels.contains_key(dependency) {
                findings.push(
                    Finding::new(
                        codes::UNKNOWN_DEPENDENCY,
                        Severity::Error,
                        &revision.id,
                        format!(
                            "revision '{}' depends on '{dependency}', which is neither a revision nor a branch label",
                            revision.id
                        ),
                    )
                    .revision(&revision.id)
                    .file(&revision.path)
                    .hint("fix depends_on, or restore the revision it names"),
                );
            }
        }
    }
    children
}

/// One branch of a forked history: the revisions only its head has.
struct Branch<'a> {
    head: &'a str,
    /// It holds a revision under review.
    is_new: bool,
    revisions: Vec<&'a Revision>,
    touched: Touched,
    /// The newest modification time of its files: which branch is newer.
    newest: Option<SystemTime>,
}

/// Whether the branches touch different tables, in words.
fn tables_verdict(branches: &[Branch<'_>]) -> String {
    let list = |branch: &Branch<'_>| {
        if branch.touched.tables.is_empty() {
            "none named".to_owned()
        } else {
            branch
                .touched
                .tables
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let each: Vec<String> = branches
        .iter()
        .map(|b| format!("{}: {}", b.head, list(b)))
        .collect();
    let mut seen: BTreeSet<&String> = BTreeSet::new();
    let mut shared: BTreeSet<&String> = BTreeSet::new();
    for branch in branches {
        for table in &branch.touched.tables {
            if !seen.insert(table) {
                shared.insert(table);
            }
        }
    }
    if !shared.is_empty() {
        format!(
            "the branches touch the same tables ({}), so check that the newer one still works on top of the other before re-pointing ({})",
            shared.into_iter().cloned().collect::<Vec<_>>().join(", "),
            each.join("; ")
        )
    } else if branches.iter().any(|b| b.touched.opaque) {
        format!(
            "their op.* calls name different tables ({}), but op.execute SQL was not read: check it",
            each.join("; ")
        )
    } else {
        format!(
            "the branches touch different tables ({}), so re-pointing is safe",
            each.join("; ")
        )
    }
}

/// `s` after a count other than one.
fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// BLAKE3 of a file's bytes, hex.
pub fn file_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// A path shown relative to `root` when it is inside it.
pub fn display_path(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

#[cfg(test)]
impl Revision {
    /// A revision with only an id and parents, for tests.
    pub(crate) fn bare(id: &str, parents: &[&str]) -> Revision {
        Revision {
            id: id.into(),
            parents: parents.iter().map(|&p| p.into()).collect(),
            depends_on: Vec::new(),
            branch_labels: Vec::new(),
            path: PathBuf::from(format!("versions/{id}.py")),
            file_hash: String::new(),
            message: None,
            data_steps: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(id: &str, parents: &[&str]) -> Revision {
        Revision::bare(id, parents)
    }

    fn codes_of(graph: &Graph) -> Vec<&'static str> {
        graph.findings().iter().map(|f| f.code).collect()
    }

    #[test]
    fn heads_bases_branches_and_merges() {
        let graph = Graph::build(
            vec![
                rev("a", &[]),
                rev("b", &["a"]),
                rev("c1", &["b"]),
                rev("c2", &["b"]),
                rev("m", &["c1", "c2"]),
            ],
            Vec::new(),
        );
        assert_eq!(graph.heads(), ["m"]);
        assert_eq!(graph.bases(), ["a"]);
        assert_eq!(graph.branch_points(), ["b"]);
        assert_eq!(graph.merge_points(), ["m"]);
        assert!(graph.findings().is_empty());
        assert_eq!(graph.topological(), ["a", "b", "c1", "c2", "m"]);
        assert_eq!(
            graph.ancestors("m"),
            ["a", "b", "c1", "c2"].map(RevisionId::from).into()
        );
    }

    #[test]
    fn topological_order_follows_a_branch_before_switching() {
        let graph = Graph::build(
            vec![
                rev("a", &[]),
                rev("x1", &["a"]),
                rev("y1", &["a"]),
                rev("x2", &["x1"]),
                rev("y2", &["y1"]),
            ],
            Vec::new(),
        );
        assert_eq!(graph.topological(), ["a", "x1", "x2", "y1", "y2"]);
        assert_eq!(codes_of(&graph), [codes::MULTIPLE_HEADS]);
    }

    #[test]
    fn dependencies_order_but_do_not_parent() {
        let mut dependent = rev("n2", &["n1"]);
        dependent.depends_on = vec!["core".into()];
        let mut labelled = rev("c2", &["c1"]);
        labelled.branch_labels = vec!["core".into()];
        let graph = Graph::build(
            vec![rev("n1", &[]), dependent, rev("c1", &[]), labelled],
            Vec::new(),
        );
        let order = graph.topological();
        let at = |id: &str| order.iter().position(|o| o == id).unwrap();
        assert!(at("c2") < at("n2"));
        assert_eq!(graph.heads(), ["c2", "n2"]);
        assert_eq!(
            graph.closure(["n2"]),
            ["c1", "c2", "n1", "n2"].map(RevisionId::from).into()
        );
        assert!(graph.ancestors("n2").contains("n1"));
        assert!(!graph.ancestors("n2").contains("c2"));
    }

    #[test]
    fn reports_orphans_duplicates_cycles_illegal_ids_and_unknown_dependencies() {
        let mut dependent = rev("d", &["a"]);
        dependent.depends_on = vec!["nowhere".into()];
        let graph = Graph::build(
            vec![
                rev("a", &[]),
                rev("a", &[]),
                rev("o", &["missing"]),
                rev("x", &["y"]),
                rev("y", &["x"]),
                rev("bad-id", &["a"]),
                dependent,
            ],
            Vec::new(),
        );
        let codes = codes_of(&graph);
        for code in [
            codes::DUPLICATE_ID,
            codes::ORPHAN_PARENT,
            codes::CYCLE,
            codes::ILLEGAL_ID,
            codes::UNKNOWN_DEPENDENCY,
            codes::MULTIPLE_HEADS,
        ] {
            assert!(codes.contains(&code), "{code} missing from {codes:?}");
        }
        let cycle = graph
            .findings()
            .iter()
            .find(|f| f.code == codes::CYCLE)
            .unwrap();
        assert_eq!(cycle.message, "revisions form a cycle: x → y → x");
        assert!(!graph.topological().contains(&"x".into()));
    }

    #[test]
    fn resolves_ids_prefixes_labels_and_heads() {
        let mut labelled = rev("abc2", &["abc1"]);
        labelled.branch_labels = vec!["feature".into()];
        let graph = Graph::build(vec![rev("abc1", &[]), labelled], Vec::new());
        let one = |id: &str| Ok(Resolved::Revisions(vec![id.into()]));
        assert_eq!(graph.resolve("abc1"), one("abc1"));
        assert_eq!(graph.resolve("feature"), one("abc2"));
        assert_eq!(graph.resolve("head"), one("abc2"));
        assert_eq!(graph.resolve("base"), Ok(Resolved::Base));
        assert!(matches!(
            graph.resolve("abc"),
            Err(ResolveError::Ambiguous { .. })
        ));
        assert!(matches!(graph.resolve("zz"), Err(ResolveError::Unknown(_))));
    }

    #[test]
    fn two_heads_name_the_fork_and_re_point_the_new_branch() {
        let graph = Graph::build(
            vec![
                rev("a", &[]),
                rev("x1", &["a"]),
                rev("x2", &["x1"]),
                rev("y1", &["a"]),
            ],
            Vec::new(),
        );
        let generic = &graph.findings()[0];
        assert_eq!(generic.severity, Severity::Error);
        assert_eq!(generic.object, "x2, y1");
        let new: BTreeSet<RevisionId> = ["y1".into()].into();
        let finding = graph.multiple_heads(&new).unwrap();
        let hint = finding.hint.unwrap();
        for needle in [
            "fork point a.py",
            "branch to x2: x1.py, x2.py (2 revisions since the fork; 1 revision behind the other head)",
            "branch to y1: y1.py (1 revision since the fork; 2 revisions behind the other head)",
            "re-point the down_revision of y1.py (the new branch) at x2",
        ] {
            assert!(hint.contains(needle), "{needle:?} not in {hint}");
        }

        let separate = Graph::build(vec![rev("p", &[]), rev("q", &[])], Vec::new());
        let hint = separate.findings()[0].hint.clone().unwrap();
        assert!(hint.starts_with("the heads share no revision"), "{hint}");
        assert!(
            Graph::build(vec![rev("p", &[])], Vec::new())
                .multiple_heads(&new)
                .is_none()
        );
    }

    #[test]
    fn two_heads_say_whether_the_branches_touch_the_same_tables() {
        let dir = tempfile::tempdir().unwrap();
        let with_file = |id: &str, parents: &[&str], body: &str| {
            let mut revision = rev(id, parents);
            revision.path = dir.path().join(format!("{id}_x.py"));
            std::fs::write(&revision.path, body).unwrap();
            revision
        };
        let graph = Graph::build(
            vec![
                with_file("a", &[], "op.create_table('user')"),
                with_file("x1", &["a"], "op.add_column('user', sa.Column('x'))"),
                with_file("y1", &["a"], "op.create_index('ix', 'User', ['y'])"),
            ],
            Vec::new(),
        );
        let hint = graph.findings()[0].hint.clone().unwrap();
        assert!(
            hint.contains("the branches touch the same tables (user)"),
            "{hint}"
        );
        assert!(hint.contains("fork point a_x.py"), "{hint}");
    }
}
