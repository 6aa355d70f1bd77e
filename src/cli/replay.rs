//! `migsnap replay`: build the reference chain, the schema every revision
//! produces on an empty database, by running the project's own migrations.

use super::migrations::{self, failure_lines, shown};
use super::{CliError, Ctx, Status};
use crate::migrations::replay::{Chain, ModelsOutcome, ReplayEvent};

/// Build (or refresh) the reference schema of every revision by running
/// the project's migrations on a scratch database; cached by file hashes.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// Whose migration settings to use: a tracked database name or path,
    /// given like every other command's database.
    db: Option<String>,
    /// The same as DB (the form earlier versions took).
    #[arg(long = "db", value_name = "DB", conflicts_with = "db", hide = true)]
    db_flag: Option<String>,
}

pub fn run(args: ReplayArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, args.db.or(args.db_flag).as_deref(), &args.project)?;
    let (repo, replayer, _) = opened.parts();
    // A bar that moves once per revision on a terminal; nothing otherwise
    // (a log or a pipe gets the summary below, JSON the steps).
    let mut progress = ctx.out.progress();
    progress.start("replay", replayer.all_targets().len() as u64);
    let report = replayer.replay_all(repo, &mut |event| {
        if let ReplayEvent::Done(_) = event {
            progress.advance(1);
        }
    });
    progress.finish();
    let report = report?;
    let models = replayer.models(repo)?;
    let models_failed = models.as_ref().is_some_and(|m| m.failure.is_some());
    let status = if report.failure.is_some() || models_failed {
        Status::Problems
    } else {
        Status::Ok
    };
    if ctx.out.is_json() {
        let mut value = serde_json::to_value(&report).expect("holds: plain data");
        value["chain"] = opened.chain.prefix().trim_end_matches('/').into();
        value["models"] = serde_json::to_value(&models).expect("holds: plain data");
        ctx.out.json(&value)?;
        return Ok(status);
    }
    let cached = report.steps.iter().filter(|s| s.cached).count();
    let seconds: f64 = report.steps.iter().filter_map(|s| s.seconds).sum();
    ctx.out.line(&format!(
        "{} reference{} ({} cached, {} replayed in {:.1} s) under refs {}*",
        report.steps.len(),
        if report.steps.len() == 1 { "" } else { "s" },
        cached,
        report.steps.len() - cached,
        seconds,
        opened.chain.prefix()
    ))?;
    if let Some(models) = &models {
        ctx.out.line(&models_line(models, &opened.chain))?;
        if let Some(failure) = &models.failure {
            for line in failure.detail.trim_end().lines() {
                ctx.out.line(&format!("    {line}"))?;
            }
        }
    }
    if let Some(failure) = &report.failure {
        for line in failure_lines(failure, opened.repo.root()) {
            ctx.out.line(&line)?;
        }
        ctx.out.line(&format!(
            "the references before it are kept; fix {} and run `migsnap replay` again",
            failure
                .file
                .as_ref()
                .map(|f| shown(f, opened.repo.root()))
                .unwrap_or_else(|| failure.revision.clone())
        ))?;
    }
    Ok(status)
}

/// What became of the models reference, in one line.
fn models_line(models: &ModelsOutcome, chain: &Chain) -> String {
    match &models.failure {
        Some(failure) => format!("the models could not be loaded: {}", failure.error),
        None => format!(
            "the models' schema ({}, from {} file{}) under ref {}",
            if models.cached { "cached" } else { "recorded" },
            models.files.len(),
            if models.files.len() == 1 { "" } else { "s" },
            chain.models_ref()
        ),
    }
}
