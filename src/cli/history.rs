//! `migsnap history`: the revision graph read statically from the migration
//! files, with its heads, bases, branch and merge points, and findings.

use super::migrations::{self, shown};
use super::{CliError, Ctx, Status, verdict};

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

pub fn run(args: HistoryArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let opened = migrations::open(ctx, None, &args.project)?;
    let graph = &opened.graph;
    let root = opened.repo.root().to_path_buf();
    let judged = args
        .verdict
        .judge(opened.repo.findings(), graph.findings().to_vec());
    let status = verdict::status(&judged);
    let order = graph.topological();
    if ctx.out.is_json() {
        let revisions: Vec<serde_json::Value> = order
            .iter()
            .filter_map(|id| graph.get(id))
            .map(|r| {
                serde_json::json!({
                    "revision": r.id,
                    "down_revision": r.parents,
                    "depends_on": r.depends_on,
                    "branch_labels": r.branch_labels,
                    "message": r.message,
                    "file": r.path,
                    "file_hash": r.file_hash,
                    "children": graph.children(&r.id),
                })
            })
            .collect();
        let mut value = serde_json::json!({
            "kind": opened.project.kind,
            "version_locations": opened.project.version_dirs(),
            "revisions": revisions,
            "heads": graph.heads(),
            "bases": graph.bases(),
            "branch_points": graph.branch_points(),
            "merge_points": graph.merge_points(),
        });
        verdict::extend_json(&mut value, &judged);
        ctx.out.json(&value)?;
        return Ok(status);
    }
    let out = &ctx.out;
    out.line(&opened.describe())?;
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
    // Newest first, as `alembic history` and `git log` print.
    for id in order.iter().rev() {
        let Some(revision) = graph.get(id) else {
            continue;
        };
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
        let arrow = if revision.parents.is_empty() {
            "<base>".to_owned()
        } else {
            revision.parents.join(", ")
        };
        let prefix = if args.graph {
            graph_prefix(graph.children(id).len(), revision.parents.len())
        } else {
            ""
        };
        out.line(&format!(
            "{prefix}{} -> {}{}{}  {}",
            arrow,
            out.paint(super::output::Paint::Id, id),
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
            out.line(&format!("|   {}", shown(&revision.path, &root)))?;
        }
    }
    verdict::render(ctx, &judged, &root)?;
    Ok(status)
}

/// The graph column for a revision with `children` children and `parents`
/// parents: a plain node, a branch point or a merge.
fn graph_prefix(children: usize, parents: usize) -> &'static str {
    match (children > 1, parents > 1) {
        (_, true) => "*-. ",
        (true, false) => "*/  ",
        (false, false) => "*   ",
    }
}
