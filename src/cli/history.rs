//! `migsnap history`: the revision graph read statically from the migration
//! files, with its heads, bases, branch and merge points, and findings.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::graph::Layout;
use super::migrations::{self, shown};
use super::output::Paint;
use super::{CliError, Ctx, Status, verdict};
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

/// The marks after a revision in the text listing (and the report's
/// timeline): head, base, merge, branch point, labels.
pub(super) fn marks(
    head: bool,
    parents: &[RevisionId],
    children: &[RevisionId],
    labels: &[String],
) -> Vec<String> {
    let mut marks = Vec::new();
    if head {
        marks.push("head".to_owned());
    }
    if parents.is_empty() {
        marks.push("base".to_owned());
    }
    if parents.len() > 1 {
        marks.push("merge".to_owned());
    }
    if children.len() > 1 {
        marks.push("branchpoint".to_owned());
    }
    marks.extend(labels.iter().map(|l| format!("label: {l}")));
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
    // Parents drawn are those in the order: not an orphan's missing
    // parent, nor a revision on a cycle, whose lanes would never close.
    let drawn: HashSet<&RevisionId> = order.iter().collect();
    let mut layout = args.graph.then(Layout::default);
    let paint = |paint: Paint, text: &str| out.paint(paint, text);
    // Newest first, as `alembic history` and `git log` print.
    for id in order.iter().rev() {
        let Some(revision) = graph.get(id) else {
            continue;
        };
        let arrow = if revision.parents.is_empty() {
            "<base>".to_owned()
        } else {
            revision.parents.join(", ")
        };
        let children = graph.children(id);
        // Its children, not a search of the heads: a history may have many.
        let marks = marks(
            children.is_empty(),
            &revision.parents,
            children,
            &revision.branch_labels,
        );
        let line = format!(
            "{} -> {}{}{}  {}",
            arrow,
            out.paint(Paint::Id, id.as_str()),
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
        );
        let Some(layout) = &mut layout else {
            out.line(&line)?;
            continue;
        };
        // `depends_on` orders revisions but is no edge: Alembic's heads
        // and branches follow `down_revision` only.
        let parents: Vec<&RevisionId> = revision
            .parents
            .iter()
            .filter(|parent| drawn.contains(parent))
            .collect();
        let text = [line, format!(" {}", shown(&revision.path, &root))];
        for line in layout.place(&id, &parents).lines(&text, &paint) {
            out.line(&line)?;
        }
    }
    verdict::render(ctx, &judged, &root)?;
    Ok(status)
}
