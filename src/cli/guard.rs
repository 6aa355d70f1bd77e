//! `migsnap guard -- CMD…`: snapshot, run a risky command (`alembic upgrade
//! head`), check the result, and say how to undo it, or undo it.

use std::process::Command;

use super::migrations::{self, replay_progress};
use super::output::{diff_lines, drift_lines};
use super::verdict::finding_line;
use super::{CliError, Ctx, ErrorKind, Status};
use crate::drift::{self, Live};
use crate::finding::Severity;
use crate::replay::Replayer;
use crate::restore::{self, RestoreOptions};
use crate::schema::diff;
use crate::snapshot::{self, SnapshotOptions, SnapshotOutcome};

/// Snapshot the database, run CMD, then check its status; on failure or
/// drift, say what happened and how to restore (or restore, with
/// --restore-on-failure).
#[derive(Debug, clap::Args)]
pub struct GuardArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// The database: a tracked name or a path.
    db: Option<String>,
    /// Put the snapshot back when CMD fails or leaves drift.
    #[arg(long)]
    restore_on_failure: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

pub fn run(args: GuardArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut own_repo = ctx.open_repo()?;
    let tracked = ctx.select_db(&mut own_repo, args.db.as_deref())?;
    // Without a migration project there is nothing to check the result
    // against; the snapshot and the way back still stand.
    let mut opened = match migrations::open(ctx, Some(&tracked.name), &args.project) {
        Ok(opened) => Some(opened),
        Err(e) => {
            ctx.out
                .note(&format!("no status check afterwards: {}", e.message));
            None
        }
    };
    // The snapshot records which migration files were applied, as
    // `migsnap snapshot` does, for lint's edited-after-applied rule.
    let history = opened
        .as_ref()
        .map(|o| std::sync::Arc::new(o.graph.clone()));
    let repo: &mut crate::repo::Repo = match &mut opened {
        Some(opened) => &mut opened.repo,
        None => &mut own_repo,
    };
    let before = match snapshot::take(
        repo,
        &tracked,
        &SnapshotOptions {
            message: format!("before `{}`", shell_words::join(&args.command)),
            busy_timeout: ctx.busy_timeout,
            migrations: history,
            ..SnapshotOptions::default()
        },
        ctx.out.progress().as_mut(),
    )? {
        SnapshotOutcome::Recorded { id, .. } | SnapshotOutcome::Unchanged { head: id } => id,
    };
    ctx.out.note(&format!(
        "snapshot {before:.12} taken; running `{}`",
        shell_words::join(&args.command)
    ));
    let exit = Command::new(&args.command[0])
        .args(&args.command[1..])
        .current_dir(&ctx.cwd)
        .status()
        .map_err(|e| {
            CliError::new(
                ErrorKind::Input,
                format!("cannot run {}: {e}", args.command[0]),
            )
        })?;

    let live = Live::capture(&tracked.path, ctx.busy_timeout)?;
    let before_snapshot = repo.store.view().read_snapshot(&before)?;
    let before_schema =
        crate::schema::Schema::from_blob(&repo.store.view().read_blob(&before_snapshot.schema)?)
            .map_err(|e| CliError::new(ErrorKind::Corrupt, e.to_string()))?;
    let changed = diff::diff(&before_schema, &live.schema);
    let status = match &mut opened {
        Some(opened) => {
            let replayer = Replayer::new(&opened.project, &opened.graph, opened.chain.clone());
            Some(drift::status(
                &mut opened.repo,
                &replayer,
                &opened.graph,
                &live,
                &mut replay_progress(ctx),
            )?)
        }
        None => None,
    };
    let drifted = status.as_ref().is_some_and(|s| {
        s.comparison.as_ref().is_some_and(|c| !c.drift.is_empty())
            || s.findings.iter().any(|f| f.severity == Severity::Error)
    });
    let failed = !exit.success() || drifted;
    let mut restored = None;
    if failed && args.restore_on_failure {
        let repo: &mut crate::repo::Repo = match &mut opened {
            Some(opened) => &mut opened.repo,
            None => &mut own_repo,
        };
        let written = restore::restore(
            repo,
            before,
            &tracked,
            &RestoreOptions {
                force: false,
                message: format!("after failed `{}`", shell_words::join(&args.command)),
                busy_timeout: ctx.busy_timeout,
                ..RestoreOptions::default()
            },
            ctx.out.progress().as_mut(),
        )?;
        restored = Some(written.safety);
    }

    if ctx.out.is_json() {
        ctx.out.json(&serde_json::json!({
            "database": tracked.path,
            "command": args.command,
            "exit_code": exit.code(),
            "before": before,
            "schema_changes": changed,
            "status": status,
            "failed": failed,
            "restored": args.restore_on_failure && failed,
            "failed_state_snapshot": restored.flatten(),
        }))?;
        return Ok(if failed { Status::Problems } else { Status::Ok });
    }
    let out = &ctx.out;
    let command = shell_words::join(&args.command);
    match exit.code() {
        Some(0) => out.line(&format!("`{command}` succeeded"))?,
        Some(code) => out.line(&format!("`{command}` FAILED with exit code {code}"))?,
        None => out.line(&format!("`{command}` was killed ({exit})"))?,
    }
    if changed.is_empty() {
        out.line("the schema did not change")?;
    } else {
        out.line("schema changes since the snapshot:")?;
        for line in diff_lines(out, &changed, "    ") {
            out.line(&line)?;
        }
    }
    if let Some(status) = &status {
        out.line(&format!(
            "status: {}{}",
            status.position.class(),
            status
                .rows
                .as_ref()
                .map(|r| format!(" at {}", r.join(", ")))
                .unwrap_or_default()
        ))?;
        if let Some(comparison) = status.comparison.as_ref().filter(|c| !c.drift.is_empty()) {
            out.line(&format!(
                "DRIFT from the reference for {}:",
                comparison.targets.join(" + ")
            ))?;
            for line in drift_lines(out, &comparison.drift, "    ") {
                out.line(&line)?;
            }
        }
        for finding in status
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
        {
            out.line(&format!(
                "{}: {}",
                finding.severity.as_str(),
                finding_line(finding)
            ))?;
        }
    }
    if failed {
        match restored {
            Some(state) => out.line(&format!(
                "restored {} to snapshot {before:.12}{}",
                tracked.path.display(),
                state
                    .map(|s| format!("; the failed state is kept as {s:.12}"))
                    .unwrap_or_default()
            ))?,
            None => out.line(&format!(
                "to undo: migsnap restore {before:.12} {}",
                tracked.name
            ))?,
        }
        return Ok(Status::Problems);
    }
    Ok(Status::Ok)
}
