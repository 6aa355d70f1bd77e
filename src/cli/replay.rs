//! `migsnap replay`: build the reference chain, the schema every revision
//! produces on an empty database, by running the project's own migrations.

use super::migrations::{self, failure_lines, shown};
use super::{CliError, Ctx, Status};
use crate::replay::{ReplayEvent, Replayer};

/// Build (or refresh) the reference schema of every revision by running
/// the project's migrations on a scratch database; cached by file hashes.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// Whose migration settings to use: a tracked database name.
    #[arg(long)]
    db: Option<String>,
}

pub fn run(args: ReplayArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, args.db.as_deref(), &args.project)?;
    let replayer = Replayer::new(&opened.project, &opened.graph, opened.chain.clone());
    let json = ctx.out.is_json();
    let out = &ctx.out;
    let mut on_event = |event: ReplayEvent<'_>| match event {
        ReplayEvent::Running(targets) => out.note(&format!("replaying {} …", targets.join(" + "))),
        ReplayEvent::Done(step) if !json => {
            let _ = out.line(&format!(
                "{} {:<14} {}",
                out.paint(super::output::Paint::Id, &format!("{:.12}", step.snapshot)),
                step.targets.join(" + "),
                match step.seconds {
                    Some(s) => format!("replayed in {:.0} ms", s * 1000.0),
                    None => "cached".to_owned(),
                }
            ));
        }
        ReplayEvent::Done(_) => {}
    };
    let report = replayer.replay_all(&mut opened.repo, &mut on_event)?;
    let status = if report.failure.is_some() {
        Status::Problems
    } else {
        Status::Ok
    };
    if json {
        let mut value = serde_json::to_value(&report).expect("holds: plain data");
        value["chain"] = opened.chain.prefix().trim_end_matches('/').into();
        ctx.out.json(&value)?;
        return Ok(status);
    }
    let cached = report.steps.iter().filter(|s| s.cached).count();
    ctx.out.line(&format!(
        "{} references ({} cached, {} replayed) under refs {}*",
        report.steps.len(),
        cached,
        report.steps.len() - cached,
        opened.chain.prefix()
    ))?;
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
