//! `migsnap stamp --verify`: write `alembic_version`, but only when the
//! live schema matches the reference of the revisions written.

use std::path::Path;

use super::migrations::{self, reference_error, replay_progress};
use super::output::drift_lines;
use super::{CliError, Ctx, ErrorKind, Status};
use crate::drift::{self, Live};
use crate::history::position::{self, Position};
use crate::replay::Replayer;
use crate::restore::{self, RestoreOptions};

/// Write alembic_version (several REVs for several branches) after
/// verifying that the live schema matches their reference; a safety
/// snapshot is taken first.
#[derive(Debug, clap::Args)]
#[command(override_usage = "migsnap stamp [OPTIONS] [DB] <REV>...")]
pub struct StampArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// The database first, as for every command (a tracked name or a path;
    /// default: the only tracked one, or the SQLite file the Alembic
    /// configuration names), then the revision(s) to record: ids,
    /// prefixes, labels, `head`, `heads`.
    #[arg(required = true, value_name = "REV")]
    args: Vec<String>,
    /// Verify before writing. Always on: migsnap never stamps blindly; the
    /// flag is accepted so scripts can say what they mean.
    #[arg(long)]
    verify: bool,
    /// The database, instead of the first argument (kept for scripts that
    /// name it so).
    #[arg(long)]
    db: Option<String>,
    /// Write even though other processes have the database open.
    #[arg(long)]
    force: bool,
}

pub fn run(args: StampArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    // Asked only of arguments that could be misplaced, so the usual forms
    // open nothing more.
    let names_database = |arg: &str| {
        Path::new(arg).is_file()
            || ctx
                .open_repo()
                .is_ok_and(|repo| repo.select(Some(arg)).is_ok())
    };
    // `stamp DB REV...` like every other command, and `stamp REV... --db DB`
    // as before: the first of several arguments is the database when it
    // names one.
    let (db, revisions) = match args.args.split_first() {
        Some((first, rest)) if args.db.is_none() && !rest.is_empty() && names_database(first) => {
            (Some(first.clone()), rest.to_vec())
        }
        _ => (args.db.clone(), args.args.clone()),
    };
    let mut opened = migrations::open(ctx, db.as_deref(), &args.project)?;
    // A database where a revision belongs: say where it goes, rather than
    // "unknown revision".
    if let Some(misplaced) = revisions
        .iter()
        .find(|r| opened.graph.resolve(r).is_err() && names_database(r))
    {
        let others: Vec<&str> = revisions
            .iter()
            .filter(|r| *r != misplaced)
            .map(String::as_str)
            .collect();
        let usage = if others.is_empty() {
            format!("migsnap stamp {misplaced} REV")
        } else {
            format!("migsnap stamp {misplaced} {}", others.join(" "))
        };
        return Err(CliError::new(
            ErrorKind::Usage,
            format!("{misplaced} is a database, not a revision to stamp"),
        )
        .hint(format!(
            "the database comes first, then the revision(s): `{usage}`"
        )));
    }
    let path = opened.database(db.as_deref())?;
    let targets = opened.targets(&revisions, None, "stamp")?;
    if let Position::Inconsistent {
        ancestor,
        descendant,
    } = position::classify(&opened.graph, Some(&targets))
    {
        return Err(CliError::new(
            ErrorKind::Input,
            format!("{ancestor} is an ancestor of {descendant}: stamp only the descendant"),
        ));
    }
    let live = Live::capture(&path, ctx.busy_timeout)?;
    let replayer = Replayer::new(&opened.project, &opened.graph, opened.chain.clone());
    let (comparison, failure) = drift::compare(
        &mut opened.repo,
        &replayer,
        &targets,
        &live.schema,
        &live.semantic,
        &mut replay_progress(ctx),
    )?;
    let Some(comparison) = comparison else {
        let failure = failure.expect("holds: no comparison means a failed step");
        return Err(reference_error(&failure, &targets, opened.repo.root()));
    };
    let towards = targets.join(" + ");
    // Alembic does not care about column order or constraint names, so a
    // schema that differs only in form is the revision's schema.
    if !comparison.drift.is_empty() && !comparison.drift.is_form_only() {
        if ctx.out.is_json() {
            ctx.out.json(&serde_json::json!({
                "database": path, "targets": targets, "stamped": false,
                "reference": comparison.reference, "drift": comparison.drift,
            }))?;
        } else {
            ctx.out.line(&format!(
                "refusing to stamp {towards}: {} does not match its reference ({:.12}):",
                path.display(),
                comparison.reference
            ))?;
            for line in drift_lines(&ctx.out, &comparison.drift, "    ") {
                ctx.out.line(&line)?;
            }
            ctx.out.line("`migsnap locate` shows which revision it does match; `migsnap repair --to REV` plans the fix")?;
        }
        return Ok(Status::Problems);
    }
    if live.meta.alembic_versions.as_deref() == Some(targets.as_slice()) {
        if ctx.out.is_json() {
            ctx.out.json(&serde_json::json!({
                "database": path, "targets": targets, "stamped": false,
                "reference": comparison.reference, "unchanged": true,
            }))?;
        } else {
            ctx.out.line(&format!(
                "{} is already stamped {towards}, and matches it",
                path.display()
            ))?;
        }
        return Ok(Status::Ok);
    }
    let tracked = ctx.select_db(&mut opened.repo, Some(&path.display().to_string()))?;
    let options = RestoreOptions {
        force: args.force,
        message: format!("before stamp {towards}"),
        busy_timeout: ctx.busy_timeout,
        ..RestoreOptions::default()
    };
    let (written, rows) = restore::rewrite(
        &mut opened.repo,
        &tracked,
        &options,
        ctx.out.progress().as_mut(),
        |copy| {
            let rows = crate::stamp::write_versions(copy, &targets).map_err(|e| {
                CliError::new(
                    ErrorKind::Internal,
                    format!("cannot write alembic_version: {e}"),
                )
            })?;
            if rows != targets {
                return Err(CliError::new(
                    ErrorKind::Refused, // a stamp whose result does not verify: exit 4
                    format!("alembic_version reads back as {rows:?} after writing {targets:?}"),
                ));
            }
            Ok(rows)
        },
    )?;
    let safety = written.safety.expect("holds: rewrite always takes one");
    if ctx.out.is_json() {
        ctx.out.json(&serde_json::json!({
            "database": path, "targets": rows, "stamped": true,
            "reference": comparison.reference, "variant": comparison.variant,
            "safety_snapshot": safety,
        }))?;
    } else {
        ctx.out.line(&format!(
            "stamped {} as {towards} (schema verified)",
            path.display()
        ))?;
        ctx.out.line(&format!(
            "safety snapshot: {safety}  (undo: migsnap restore {safety:.12})"
        ))?;
    }
    Ok(Status::Ok)
}
