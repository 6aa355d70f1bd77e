//! Walking the snapshot graph from a set of roots, shared by gc and fsck.

use std::collections::{HashMap, HashSet};

use crate::id::ObjectId;
use crate::object::Snapshot;
use crate::odb::{Error, Result, View};

/// What the walk found at one node of the snapshot graph.
pub(crate) enum Visit {
    /// A readable snapshot, with the snapshots that point to it (or none for a root).
    Snapshot(ObjectId, Snapshot),
    /// A node that could not be read as a snapshot; `children` point to it.
    Broken {
        id: ObjectId,
        error: Error,
        children: Vec<ObjectId>,
    },
    /// `id` is its own ancestor.
    Cycle { id: ObjectId },
}

/// Visits every snapshot reachable from `roots` through parent links, each
/// once, depth first. Only store (SQL) errors abort the walk; unreadable
/// objects and cycles are reported to `visit`.
pub(crate) fn walk_snapshots(
    view: View<'_>,
    roots: impl IntoIterator<Item = ObjectId>,
    mut visit: impl FnMut(Visit),
) -> Result<()> {
    #[derive(PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    enum Step {
        Enter(ObjectId, Option<ObjectId>),
        Exit(ObjectId),
    }
    let mut marks: HashMap<ObjectId, Mark> = HashMap::new();
    let mut broken: HashMap<ObjectId, (Error, Vec<ObjectId>)> = HashMap::new();
    let mut stack: Vec<Step> = roots.into_iter().map(|id| Step::Enter(id, None)).collect();
    stack.reverse();
    while let Some(step) = stack.pop() {
        match step {
            Step::Exit(id) => {
                marks.insert(id, Mark::Done);
            }
            Step::Enter(id, child) => {
                if let Some((_, children)) = broken.get_mut(&id) {
                    children.extend(child);
                    continue;
                }
                match marks.get(&id) {
                    Some(Mark::Open) => {
                        visit(Visit::Cycle { id });
                        continue;
                    }
                    Some(Mark::Done) => continue,
                    None => {}
                }
                match view.read_snapshot(&id) {
                    Ok(snapshot) => {
                        marks.insert(id, Mark::Open);
                        stack.push(Step::Exit(id));
                        for parent in snapshot.parents.iter().rev() {
                            stack.push(Step::Enter(*parent, Some(id)));
                        }
                        visit(Visit::Snapshot(id, snapshot));
                    }
                    Err(e) if e.is_store_file() => return Err(e),
                    Err(error) => {
                        broken.insert(id, (error, child.into_iter().collect()));
                    }
                }
            }
        }
    }
    for (id, (error, children)) in broken {
        visit(Visit::Broken {
            id,
            error,
            children,
        });
    }
    Ok(())
}

/// The roots of reachability: every ref target and every id a reflog entry
/// made after `reflog_cutoff` names, deduplicated, refs first.
pub(crate) fn roots(view: View<'_>, reflog_cutoff: i64) -> Result<Vec<ObjectId>> {
    let mut seen = HashSet::new();
    let mut roots = Vec::new();
    for (_, id) in view.refs("")? {
        if seen.insert(id) {
            roots.push(id);
        }
    }
    for entry in view.reflog(None)? {
        if entry.time <= reflog_cutoff {
            continue;
        }
        for id in [entry.old, entry.new].into_iter().flatten() {
            if seen.insert(id) {
                roots.push(id);
            }
        }
    }
    Ok(roots)
}
