//! `migsnap locate`: which revision does this database's schema really
//! match?

use std::path::Path;

use migsnap_store::ObjectId;
use serde::Serialize;

use super::migrations::{self, failure_lines, replay_progress};
use super::output::drift_lines;
use super::{CliError, Ctx, Status, verdict};
use crate::migrations::drift;
use crate::migrations::side::{Side, SideSchema};
use crate::policy::Verdict;
use crate::snapshots::revspec;

/// Find the revision(s) whose reference schema the database matches, or
/// the nearest one and what differs.
#[derive(Debug, clap::Args)]
pub struct LocateArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    #[command(flatten)]
    verdict: verdict::VerdictArgs,
    /// A tracked database name or path (default: the only tracked one), or a
    /// snapshot (hash prefix, tag, HEAD~N) to locate what it recorded.
    target: Option<String>,
}

pub fn run(args: LocateArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, args.target.as_deref(), &args.project)?;
    // What is located: a database (its absolute path, for JSON) or a
    // snapshot.
    let side = match opened.database(args.target.as_deref()) {
        Ok(path) => Side::File {
            label: path.display().to_string(),
            path,
        },
        Err(not_a_database) => {
            let Some(spec) = args.target.as_deref() else {
                return Err(not_a_database.into());
            };
            let id = revspec::resolve(&opened.repo, spec, opened.tracked.as_ref())
                .map_err(|_| not_a_database)?;
            Side::snapshot(&opened.repo, id)?
        }
    };
    let what = match &side {
        Side::File { label, .. } => label.clone(),
        Side::Snapshot { id, .. } => format!("snapshot {id:.12}"),
    };
    let SideSchema {
        schema,
        semantic,
        meta,
    } = side.schema(Some(&opened.repo), ctx.busy_timeout)?;
    let stamped = drift::stamped(opened.project.kind, &meta, &opened.graph);
    let (repo, replayer, graph) = opened.parts();
    let located = drift::locate(
        repo,
        &replayer,
        graph,
        &schema,
        semantic,
        stamped,
        &mut replay_progress(ctx),
    )?;
    let stamped_matches = located.stamped_matches();
    let judged = args
        .verdict
        .judge(opened.repo.findings(), located.findings(&what));
    let status = verdict::status(&judged);
    if ctx.out.is_json() {
        let (database, snapshot) = match &side {
            Side::File { path, .. } => (Some(path.as_path()), None),
            Side::Snapshot { id, .. } => (None, Some(*id)),
        };
        ctx.out.json(&LocateDocument {
            located: &located,
            database,
            snapshot,
            stamped_matches,
            verdict: &judged,
        })?;
        return Ok(status);
    }
    let out = &ctx.out;
    let stamped = match &located.stamped {
        None => "no alembic_version table".to_owned(),
        Some(rows) if rows.is_empty() => "alembic_version empty".to_owned(),
        Some(rows) => format!("stamped {}", rows.join(" + ")),
    };
    if !located.exact.is_empty() {
        let names: Vec<String> = located
            .exact
            .iter()
            .map(|c| {
                let targets = c.targets.join(" + ");
                if c.accepted {
                    format!("{targets} (accepted variant {:.12})", c.snapshot)
                } else {
                    targets
                }
            })
            .collect();
        out.line(&format!(
            "{what} looks like {}, {stamped}",
            names.join(" or ")
        ))?;
        // A match in form only: say how the form differs.
        if let Some(first) = located.exact.first() {
            for line in drift_lines(out, &first.drift, "    ") {
                out.line(&line)?;
            }
        }
    } else if let Some(nearest) = &located.nearest {
        out.line(&format!(
            "{what} matches no revision exactly; nearest is {} ({} difference{}), {stamped}:",
            nearest.targets.join(" + "),
            nearest.drift.changes.len(),
            if nearest.drift.changes.len() == 1 {
                ""
            } else {
                "s"
            }
        ))?;
        for line in drift_lines(out, &nearest.drift, "    ") {
            out.line(&line)?;
        }
    } else {
        out.line(&format!("{what}: no reference to compare with, {stamped}"))?;
    }
    if let Some(failure) = &located.replay_failure {
        out.line("some references could not be built:")?;
        for line in failure_lines(failure, opened.repo.root()) {
            out.line(&format!("    {line}"))?;
        }
    }
    verdict::render(ctx, &judged, opened.repo.root())?;
    Ok(status)
}

/// The JSON of `locate`: what the engine found, what was located, whether
/// the stamp matches, and the verdict.
#[derive(Serialize)]
struct LocateDocument<'a> {
    #[serde(flatten)]
    located: &'a drift::Located,
    /// The database file located (absolute); null for a snapshot.
    database: Option<&'a Path>,
    /// The snapshot located, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<ObjectId>,
    stamped_matches: bool,
    /// `findings` (the counting ones), `ignored`, `fail_on`, `strict`,
    /// `clean`.
    #[serde(flatten)]
    verdict: &'a Verdict,
}
