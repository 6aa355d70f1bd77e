//! `migsnap bisect drift [--revisions]`: bisection with
//! the built-in drift predicates, no session and no test command.

use std::path::Path;

use migsnap_store::ObjectId;

use super::migrations::{self, failure_lines, replay_progress};
use super::output::{Paint, drift_lines};
use super::{CliError, Ctx, ErrorKind, Output, Status};
use serde::Serialize;

use crate::migrations::bisect;
use crate::migrations::drift::{
    self, LiveDatabase, NoChain, RevisionBisect, RevisionBisectError, SnapshotOutcomeKind,
};
use crate::schema::diff::{ChangeKind, Op};

/// `bisect drift [DB]`: the first snapshot of a tracked database that
/// drifted from its recorded revision's reference.
pub fn drift(
    ctx: &Ctx,
    db: Option<&str>,
    project: &migrations::ProjectArgs,
) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, db, project)?;
    let tracked = match &opened.tracked {
        Some(tracked) => tracked.clone(),
        None => opened.repo.select(db)?,
    };
    let line = bisect::snapshot_line(&opened.repo, &tracked)?;
    let (repo, replayer, graph) = opened.parts();
    let found = drift::bisect_snapshots(repo, &replayer, graph, line, &mut replay_progress(ctx))?;
    if ctx.out.is_json() {
        ctx.out
            .json(&serde_json::to_value(&found).expect("holds: plain data"))?;
        return Ok(if found.first_bad.is_some() {
            Status::Problems
        } else {
            Status::Ok
        });
    }
    let out = &ctx.out;
    let short = |id: &ObjectId| out.paint(Paint::Id, &format!("{id:.12}"));
    match (found.outcome, &found.first_bad) {
        (SnapshotOutcomeKind::Found, Some(first_bad)) => {
            out.line(&format!(
                "first drifted snapshot: {} ({} judged)",
                short(first_bad),
                found.tested
            ))?;
            match &found.last_good {
                Some(good) => out.line(&format!("last good snapshot:     {}", short(good)))?,
                None => out.line("last good snapshot:     none (the oldest one drifted)")?,
            }
            if let Some(explained) = &found.explained {
                out.line(&recorded_line(explained))?;
                for line in drift_lines(out, &explained.drift, "    ") {
                    out.line(&line)?;
                }
                let matches: Vec<String> =
                    explained.matches.iter().map(|m| m.join(" + ")).collect();
                out.line(&match matches.as_slice() {
                    [] => "its schema matches no revision".to_owned(),
                    _ => format!("its schema matches {} instead", matches.join(" or ")),
                })?;
            }
            Ok(Status::Problems)
        }
        (SnapshotOutcomeKind::OnlySkipped, _) => {
            out.line("only snapshots that recorded no revision are left; the first drifted one is one of:")?;
            for id in &found.candidates {
                out.line(&format!("    {}", short(id)))?;
            }
            Ok(Status::Problems)
        }
        _ => {
            out.line(&format!(
                "no drift: the newest snapshot of '{}' matches its reference",
                tracked.name
            ))?;
            Ok(Status::Ok)
        }
    }
}

/// What a first drifted snapshot recorded, and what it is compared with.
fn recorded_line(explained: &drift::FirstBad) -> String {
    let recorded = if explained.targets.is_empty() {
        "an empty alembic_version".to_owned()
    } else {
        explained.targets.join(" + ")
    };
    let undeclared = if explained.unknown == explained.targets {
        "which no migration script declares".to_owned()
    } else {
        format!(
            "of which no migration script declares {}",
            explained.unknown.join(" + ")
        )
    };
    match (&explained.compared_with, explained.unknown.is_empty()) {
        (None, true) => format!("it recorded {recorded} and differs from its reference:"),
        (Some(nearest), _) => format!(
            "it recorded {recorded}, {undeclared}; compared with {}, \
             the revision(s) its schema {}:",
            nearest.join(" + "),
            if explained.drift.is_empty() {
                "matches"
            } else {
                "is nearest to"
            }
        ),
        (None, false) => format!(
            "it recorded {recorded}, {undeclared}, and no reference could be built to compare it with"
        ),
    }
}

/// `bisect drift --revisions [DB] [--to REV]`: the first revision along the
/// chain after which the database shows the defects it shows at the tip.
pub fn revisions(
    ctx: &Ctx,
    db: Option<&str>,
    to: Option<&str>,
    project: &migrations::ProjectArgs,
) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, db, project)?;
    let path = opened.database(db)?;
    let live = LiveDatabase::capture(&path, ctx.busy_timeout)?;
    let (repo, replayer, graph) = opened.parts();
    let found =
        drift::bisect_revisions(repo, &replayer, graph, &live, to, &mut replay_progress(ctx))
            .map_err(|e| match e {
                RevisionBisectError::NoChain(no_chain) => {
                    no_chain_error(no_chain, opened.repo.root())
                }
                RevisionBisectError::Replay(e) => e.into(),
            })?;
    let status = if found.first_bad.is_some() || !found.extra.is_empty() {
        Status::Problems
    } else {
        Status::Ok
    };
    if ctx.out.is_json() {
        let report = RevisionBisectJson {
            found: &found,
            database: path.display().to_string(),
        };
        ctx.out
            .json(&serde_json::to_value(&report).expect("holds: plain data"))?;
        return Ok(status);
    }
    let shown = migrations::shown(&path, opened.repo.root());
    render_revisions(&ctx.out, &found, &shown)?;
    Ok(status)
}

/// The CLI error for a revision bisection that could not run.
fn no_chain_error(no_chain: NoChain, root: &Path) -> CliError {
    match no_chain {
        NoChain::Failed(failure) => {
            let lines = failure_lines(&failure, root);
            CliError::new(
                ErrorKind::Input,
                format!("the reference chain could not be built: {}", lines[0]),
            )
            .hint("`migsnap replay` shows the whole error")
        }
        NoChain::Unresolved(e) => CliError::new(ErrorKind::Input, e.to_string()),
        NoChain::NotOneRevision { name } => CliError::new(
            ErrorKind::Input,
            format!("--to {name} does not name one revision"),
        ),
        NoChain::Ambiguous => CliError::new(
            ErrorKind::Input,
            "which revision chain? neither the database's stamp nor the history's heads name a single revision to end it at",
        )
        .hint("name the end of the chain with --to REV"),
    }
}

/// The text of a revision bisection of the database shown as `shown`.
fn render_revisions(out: &Output, found: &RevisionBisect, shown: &str) -> Result<(), CliError> {
    if let Some(tip) = &found.compared_with {
        let matches = found.first_bad.is_none() && found.extra.is_empty();
        out.line(&format!(
            "{shown} is stamped {}, which no migration script declares; \
             the chain ends at {tip} instead, the revision its schema {}",
            found.unknown.join(" + "),
            if matches { "matches" } else { "is nearest to" }
        ))?;
    }
    let tip = &found.tip;
    match (&found.first_bad, &found.drift) {
        (Some(first_bad), Some(drift)) => {
            out.line(&format!(
                "first bad revision: {} ({} judged along {} revisions up to {tip})",
                out.paint(Paint::Id, first_bad),
                found.tested,
                found.line.len()
            ))?;
            out.line(&match &found.last_good {
                Some(good) => format!("last good revision: {good}"),
                None => "last good revision: none (the first revision is already bad)".to_owned(),
            })?;
            out.line(&format!(
                "what the database lacks or contradicts of {first_bad}'s reference, as of {tip}'s:"
            ))?;
            for line in drift_lines(out, drift, "    ") {
                out.line(&line)?;
            }
        }
        _ => out.line(&format!(
            "{shown} has everything of every revision up to {tip}"
        ))?,
    }
    if !found.extra.is_empty() {
        render_extra(out, found)?;
    }
    Ok(())
}

/// What the database has beyond the tip's reference, and which revision
/// dropped what an earlier one had.
fn render_extra(out: &Output, found: &RevisionBisect) -> Result<(), CliError> {
    out.line(&format!(
        "extra in the database, not in the reference of {}:",
        found.tip
    ))?;
    for line in drift_lines(out, &found.extra, "    ") {
        out.line(&line)?;
    }
    for dropped in &found.dropped {
        out.line(&format!(
            "{} {} was dropped by {} ({} is the last revision that has it); the database missed that",
            dropped.kind.name(),
            match &dropped.table {
                Some(table) if dropped.kind == ChangeKind::Column => {
                    format!("{table}.{}", dropped.name)
                }
                _ => dropped.name.clone(),
            },
            out.paint(Paint::Id, &dropped.dropped_by),
            dropped.last_had
        ))?;
    }
    let added = found
        .extra
        .changes
        .iter()
        .filter(|c| c.op == Op::Added)
        .count();
    if added > found.dropped.len() {
        out.line(&format!(
            "no revision along the chain made {}",
            if found.dropped.is_empty() {
                "them"
            } else {
                "the others"
            }
        ))?;
    }
    Ok(())
}

/// The JSON of `bisect drift --revisions`: the engine's report and the
/// database judged.
#[derive(Serialize)]
struct RevisionBisectJson<'a> {
    #[serde(flatten)]
    found: &'a RevisionBisect,
    database: String,
}
