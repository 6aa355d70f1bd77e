//! `migsnap replay`: build the reference chain, the schema every revision
//! produces on an empty database, by running the project's own migrations.

use super::migrations::{self, failure_lines, shown};
use super::{CliError, Ctx, ErrorKind, Status};
use crate::migrations::drift::LiveDatabase;
use crate::migrations::replay::bootstrap::{RecordedBootstrap, record_bootstrap};
use crate::migrations::replay::{Chain, ModelsOutcome, ReplayEvent, ReplayFailure};

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
    /// Record the tables the base revision expects (made outside Alembic)
    /// from a SQLite file or a snapshot REV, as they were before the base
    /// revision; every later replay creates them first.
    #[arg(long, value_name = "FILE|REV")]
    bootstrap_from: Option<String>,
    /// With --bootstrap-from: the tables to take (default: all).
    #[arg(
        long,
        value_name = "T1,T2",
        value_delimiter = ',',
        requires = "bootstrap_from"
    )]
    tables: Vec<String>,
}

pub fn run(args: ReplayArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let db = args.db.or(args.db_flag);
    let mut opened = migrations::open(ctx, db.as_deref(), &args.project)?;
    let recorded = match &args.bootstrap_from {
        Some(source) => Some(record(&mut opened, source, &args.tables)?),
        None => None,
    };
    let (repo, replayer, _) = opened.parts();
    let bootstrap = replayer
        .bootstrap(repo)?
        .map(|b| b.summary(replayer.project()));
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
    let mut report = report?;
    let models = replayer.models(repo)?;
    let models_failed = models.as_ref().is_some_and(|m| m.failure.is_some());
    let status = if report.failure.is_some() || models_failed {
        Status::Problems
    } else {
        Status::Ok
    };
    if let Some(failure) = &mut report.failure {
        confirm_outside(ctx, &opened, db.as_deref(), failure);
    }
    if ctx.out.is_json() {
        let mut value = serde_json::to_value(&report).expect("holds: plain data");
        value["chain"] = opened.chain.prefix().trim_end_matches('/').into();
        value["bootstrap"] = serde_json::to_value(&bootstrap).expect("holds: plain data");
        value["bootstrap_recorded"] = serde_json::to_value(&recorded).expect("holds: plain data");
        value["models"] = serde_json::to_value(&models).expect("holds: plain data");
        ctx.out.json(&value)?;
        return Ok(status);
    }
    let cached = report.steps.iter().filter(|s| s.cached).count();
    // `+ 0.0`: an empty sum is -0.0, which would print as "-0.0 s".
    let seconds: f64 = report.steps.iter().filter_map(|s| s.seconds).sum::<f64>() + 0.0;
    ctx.out.line(&format!(
        "{} reference{} ({} cached, {} replayed in {:.1} s) under refs {}*",
        report.steps.len(),
        if report.steps.len() == 1 { "" } else { "s" },
        cached,
        report.steps.len() - cached,
        seconds,
        opened.chain.prefix()
    ))?;
    if let Some(recorded) = &recorded {
        ctx.out.line(&format!(
            "bootstrap recorded: tables {} of {}{} under ref {} ({:.12})",
            recorded.tables.join(", "),
            recorded.source,
            if recorded.undone.is_empty() {
                String::new()
            } else {
                format!(
                    " as they were before the base revision (a copy of its schema downgraded from {} to base)",
                    recorded.undone.join(" + ")
                )
            },
            recorded.reference,
            recorded.snapshot
        ))?;
    }
    if let Some(bootstrap) = &bootstrap {
        ctx.out.line(&format!(
            "bootstrap: {}{}",
            bootstrap.source,
            if bootstrap.recorded {
                " (recorded; `[replay] bootstrap` in migsnap.toml would win)"
            } else {
                " ([replay] in migsnap.toml)"
            }
        ))?;
    }
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
        if failure.outside_alembic.is_some() {
            return Ok(status);
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

/// Records the bootstrap `--bootstrap-from` names, unless `migsnap.toml`
/// configures one (which would win).
fn record(
    opened: &mut migrations::Workspace,
    source: &str,
    tables: &[String],
) -> Result<RecordedBootstrap, CliError> {
    if opened.project.settings.bootstrap.is_some() {
        return Err(CliError::new(
            ErrorKind::Input,
            "migsnap.toml configures a bootstrap ([replay] bootstrap), which wins over a recorded one",
        )
        .hint("change it there, or remove it to record one with --bootstrap-from"));
    }
    let tables = (!tables.is_empty()).then_some(tables);
    let (repo, replayer, _) = opened.parts();
    Ok(record_bootstrap(repo, &replayer, source, tables)?)
}

/// Tells `failure` whether the project's own database (the one `db` or the
/// configuration names, when there is one and it reads) has the tables the
/// base revision expects, so the message does not blame the file.
fn confirm_outside(
    ctx: &Ctx,
    opened: &migrations::Workspace,
    db: Option<&str>,
    failure: &mut ReplayFailure,
) {
    if failure.expects.is_empty() {
        return;
    }
    let live = opened
        .database(db)
        .ok()
        .and_then(|path| LiveDatabase::capture(&path, ctx.busy_timeout).ok());
    if let Some(live) = live {
        failure.confirm_outside(&live.path, &live.schema);
    }
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
