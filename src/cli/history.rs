//! `migsnap history`: the revision graph read statically from the migration
//! files, with its heads, bases, branch and merge points, and findings.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::migrations::{self, shown};
use super::{CliError, Ctx, Status, verdict};
use crate::migrations::history::graph::{Graph, Revision};
use crate::migrations::history::project::MigrationKind;
use crate::migrations::history::revision_id::RevisionId;
use crate::policy::Verdict;

/// Show the migration history: revisions, heads, bases, branch and merge
/// points, dependencies, and what is wrong with it.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// Draw the graph, newest first, with branch and merge lines.
    #[arg(long)]
    graph: bool,
    #[command(flatten)]
    verdict: verdict::VerdictArgs,
}

/// `history --format json`: the graph, revisions prerequisites first, and
/// the verdict.
#[derive(Serialize)]
struct HistoryDocument<'a> {
    kind: MigrationKind,
    version_locations: Vec<PathBuf>,
    revisions: Vec<RevisionEntry<'a>>,
    heads: Vec<RevisionId>,
    bases: Vec<RevisionId>,
    branch_points: Vec<RevisionId>,
    merge_points: Vec<RevisionId>,
    #[serde(flatten)]
    verdict: &'a Verdict,
}

/// One revision in `history`'s JSON.
#[derive(Serialize)]
struct RevisionEntry<'a> {
    revision: &'a RevisionId,
    down_revision: &'a [RevisionId],
    depends_on: &'a [String],
    branch_labels: &'a [String],
    message: Option<&'a str>,
    file: &'a Path,
    file_hash: &'a str,
    children: &'a [RevisionId],
}

/// The marks after a revision in the text listing: head, base, merge,
/// branch point, labels.
fn marks(graph: &Graph, heads: &[RevisionId], revision: &Revision) -> Vec<String> {
    let id = &revision.id;
    let mut marks = Vec::new();
    if heads.contains(id) {
        marks.push("head".to_owned());
    }
    if revision.parents.is_empty() {
        marks.push("base".to_owned());
    }
    if revision.parents.len() > 1 {
        marks.push("merge".to_owned());
    }
    if graph.children(id).len() > 1 {
        marks.push("branchpoint".to_owned());
    }
    marks.extend(revision.branch_labels.iter().map(|l| format!("label: {l}")));
    marks
}

pub fn run(args: HistoryArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let opened = migrations::open_or_scratch(ctx, &args.project)?;
    let graph = &opened.graph;
    let root = opened.repo.root().to_path_buf();
    let judged = args
        .verdict
        .judge(opened.repo.findings(), graph.findings().to_vec());
    let status = verdict::status(&judged);
    let order = graph.topological();
    if ctx.out.is_json() {
        ctx.out.json(&HistoryDocument {
            kind: opened.project.kind,
            version_locations: opened.project.version_dirs(),
            revisions: order
                .iter()
                .filter_map(|id| graph.get(id))
                .map(|r| RevisionEntry {
                    revision: &r.id,
                    down_revision: &r.parents,
                    depends_on: &r.depends_on,
                    branch_labels: &r.branch_labels,
                    message: r.message.as_deref(),
                    file: &r.path,
                    file_hash: &r.file_hash,
                    children: graph.children(&r.id),
                })
                .collect(),
            heads: graph.heads(),
            bases: graph.bases(),
            branch_points: graph.branch_points(),
            merge_points: graph.merge_points(),
            verdict: &judged,
        })?;
        return Ok(status);
    }
    let out = &ctx.out;
    out.line(&migrations::describe(&opened))?;
    out.line(&format!("heads: {}", graph.heads().join(", ")))?;
    out.line(&format!("bases: {}", graph.bases().join(", ")))?;
    if !graph.branch_points().is_empty() {
        out.line(&format!(
            "branch points: {}",
            graph.branch_points().join(", ")
        ))?;
    }
    if !graph.merge_points().is_empty() {
        out.line(&format!(
            "merge points: {}",
            graph.merge_points().join(", ")
        ))?;
    }
    out.line("")?;
    let heads = graph.heads();
    let mut lanes = Lanes::default();
    // Newest first, as `alembic history` and `git log` print.
    for id in order.iter().rev() {
        let Some(revision) = graph.get(id) else {
            continue;
        };
        let marks = marks(graph, &heads, revision);
        let arrow = if revision.parents.is_empty() {
            "<base>".to_owned()
        } else {
            revision.parents.join(", ")
        };
        let mut prefix = String::new();
        let mut after = Vec::new();
        if args.graph {
            let parents: Vec<&str> = revision
                .parents
                .iter()
                .filter(|p| graph.get(p).is_some())
                .map(RevisionId::as_str)
                .collect();
            let drawn = lanes.place(id.as_str(), &parents);
            for line in &drawn.before {
                out.line(line)?;
            }
            prefix = format!("{} ", drawn.node);
            after = drawn.after;
        }
        out.line(&format!(
            "{prefix}{} -> {}{}{}  {}",
            arrow,
            out.paint(super::output::Paint::Id, id.as_str()),
            if marks.is_empty() {
                String::new()
            } else {
                format!(" ({})", marks.join(", "))
            },
            if revision.depends_on.is_empty() {
                String::new()
            } else {
                format!(" [depends on {}]", revision.depends_on.join(", "))
            },
            revision.message.as_deref().unwrap_or(""),
        ))?;
        if args.graph {
            let lanes_now = lanes.row(None);
            out.line(&format!(
                "{lanes_now:<width$}  {}",
                shown(&revision.path, &root),
                width = prefix.len().saturating_sub(1)
            ))?;
            for line in &after {
                out.line(line)?;
            }
        }
    }
    verdict::render(ctx, &judged, &root)?;
    Ok(status)
}

/// The lanes of `history --graph`, drawn as `git log --graph` draws them:
/// one column per line of descent still waiting for its next (older)
/// revision, `*` for a revision, `|` for a lane passing by, `/` where a lane
/// joins the one to its left (a fork point, read newest first) and `\`
/// where a merge opens a lane for its other parent. Any number of
/// branches.
#[derive(Debug, Default)]
struct Lanes {
    /// Per column, the revision it waits for; `None` for a free column.
    waiting: Vec<Option<String>>,
}

/// The lines one revision adds to the graph.
struct Drawn {
    /// Lines before it: lanes joining the one it is placed in.
    before: Vec<String>,
    /// Its own row of lanes, with `*` in its column.
    node: String,
    /// Lines after it: lanes a merge opens.
    after: Vec<String>,
}

impl Lanes {
    /// Places revision `id` (newest first) whose parents in the graph are
    /// `parents`.
    fn place(&mut self, id: &str, parents: &[&str]) -> Drawn {
        let mut before = Vec::new();
        let waiting: Vec<usize> = (0..self.waiting.len())
            .filter(|&i| self.waiting[i].as_deref() == Some(id))
            .collect();
        let column = match waiting.first() {
            Some(&first) => first,
            // A head: the first free column.
            None => {
                let free = self.waiting.iter().position(Option::is_none);
                let column = free.unwrap_or(self.waiting.len());
                if column == self.waiting.len() {
                    self.waiting.push(None);
                }
                self.waiting[column] = Some(id.to_owned());
                column
            }
        };
        // Every other lane waiting for `id` joins it, rightmost first, each
        // into its left neighbour when that waits for `id` too.
        for (k, &joining) in waiting.iter().enumerate().skip(1).rev() {
            let into = if waiting[k - 1] == joining - 1 {
                joining - 1
            } else {
                column
            };
            before.push(self.join(into, joining));
        }
        let node = self.row(Some(column));
        let mut after = Vec::new();
        match parents.split_first() {
            None => self.waiting[column] = None,
            Some((first, others)) => {
                self.waiting[column] = Some((*first).to_owned());
                for (offset, parent) in others.iter().enumerate() {
                    if self.waiting.iter().any(|w| w.as_deref() == Some(*parent)) {
                        continue;
                    }
                    after.push(self.open(column + offset));
                    self.waiting
                        .insert(column + offset + 1, Some((*parent).to_owned()));
                }
            }
        }
        while self.waiting.last().is_some_and(Option::is_none) {
            self.waiting.pop();
        }
        Drawn {
            before,
            node,
            after,
        }
    }

    /// The lanes as one row: `*` in `column`, `|` for a waiting lane.
    fn row(&self, column: Option<usize>) -> String {
        let cells: Vec<&str> = self
            .waiting
            .iter()
            .enumerate()
            .map(|(i, w)| match (Some(i) == column, w) {
                (true, _) => "*",
                (false, Some(_)) => "|",
                (false, None) => " ",
            })
            .collect();
        cells.join(" ").trim_end().to_owned()
    }

    /// The line on which lane `joining` runs left into lane `column` (with
    /// `_` over any lanes between), the lanes right of it shifting left;
    /// the lane is then gone.
    fn join(&mut self, column: usize, joining: usize) -> String {
        let mut line: Vec<char> = Vec::new();
        for (i, w) in self.waiting.iter().enumerate() {
            let (gap, cell) = if i <= column {
                (' ', if w.is_some() { '|' } else { ' ' })
            } else if i < joining {
                ('_', if w.is_some() { '|' } else { '_' })
            } else if i == joining || w.is_some() {
                // The joining lane and those right of it move one left.
                ('/', ' ')
            } else {
                (' ', ' ')
            };
            if i > 0 {
                line.push(gap);
            }
            line.push(cell);
        }
        self.waiting.remove(joining);
        line.into_iter().collect::<String>().trim_end().to_owned()
    }

    /// The line on which a merge in `column` opens a lane right of it, the
    /// lanes right of that shifting right.
    fn open(&self, column: usize) -> String {
        let mut line = String::new();
        for (i, w) in self.waiting.iter().enumerate() {
            line.push(match (i <= column, w) {
                (true, Some(_)) => '|',
                _ => ' ',
            });
            // The new lane leaves from `column`; those right of it shift.
            line.push(if i == column || (i > column && w.is_some()) {
                '\\'
            } else {
                ' '
            });
        }
        line.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The graph lines of revisions given newest first with their parents.
    fn draw(revisions: &[(&str, &[&str])]) -> Vec<String> {
        let mut lanes = Lanes::default();
        let mut lines = Vec::new();
        for (id, parents) in revisions {
            let drawn = lanes.place(id, parents);
            lines.extend(drawn.before);
            lines.push(format!("{} {id}", drawn.node));
            lines.extend(drawn.after);
        }
        lines
    }

    #[test]
    fn two_branches_take_two_lanes_and_join_at_the_fork() {
        let lines = draw(&[("y1", &["a"]), ("x2", &["x1"]), ("x1", &["a"]), ("a", &[])]);
        assert_eq!(lines, ["* y1", "| * x2", "| * x1", "|/", "* a"]);
    }

    #[test]
    fn three_branches_and_a_merge() {
        let lines = draw(&[
            ("m", &["c1", "c2"]),
            ("c2", &["b"]),
            ("z", &["b"]),
            ("c1", &["b"]),
            ("b", &[]),
        ]);
        assert_eq!(
            lines,
            [
                "* m", "|\\", "| * c2", "| | * z", "* | | c1", "| |/", "|/", "* b"
            ]
        );
    }

    #[test]
    fn a_merge_beside_another_lane_shifts_it_right() {
        let lines = draw(&[
            ("z", &["a"]),
            ("m", &["c1", "c2"]),
            ("c2", &["a"]),
            ("c1", &["a"]),
            ("a", &[]),
        ]);
        assert_eq!(
            lines,
            [
                "* z", "| * m", "| |\\", "| | * c2", "| * | c1", "| |/", "|/", "* a"
            ]
        );
    }
}
