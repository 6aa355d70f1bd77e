//! `migsnap lint`: reviews new migrations by what their files say and what
//! they do to the schema.

use clap::ValueEnum;

use super::migrations::{self, replay_progress};
use super::{CliError, Ctx, Status};
use crate::finding::Severity;
use crate::history::graph::display_path;
use crate::lint::{self, Scope};
use crate::replay::Replayer;

/// Review new migrations: what each one does to the schema (from the
/// reference chain) and what its file says. Without --since or --base,
/// every revision is new.
#[derive(Debug, clap::Args)]
pub struct LintArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// Review the revisions an upgrade to REV would not apply.
    #[arg(long, value_name = "REV", conflicts_with = "base")]
    since: Option<String>,
    /// Review the revisions whose files are not in git commit GITREF.
    #[arg(long, value_name = "GITREF")]
    base: Option<String>,
    /// Exit 1 when a finding is at least this severe.
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = FailOn::Error)]
    fail_on: FailOn,
}

/// The least severity that fails the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FailOn {
    /// Warnings and errors.
    Warning,
    /// Errors only.
    Error,
}

/// Lints, prints the findings, and fails when one reaches `--fail-on`.
pub fn run(args: LintArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, None, &args.project)?;
    let scope = match (args.since, args.base) {
        (Some(revision), _) => Scope::Since(revision),
        (None, Some(gitref)) => Scope::Base(gitref),
        (None, None) => Scope::All,
    };
    let replayer = Replayer::new(&opened.project, &opened.graph, opened.chain.clone());
    let mut report = lint::lint(
        &mut opened.repo,
        &replayer,
        &opened.graph,
        &scope,
        &mut replay_progress(ctx),
    )?;
    let root = opened.repo.root();
    // Text names files relative to the project root; JSON keeps them
    // absolute, as every path in JSON is.
    if !ctx.out.is_json() {
        for finding in &mut report.findings {
            finding.file = finding.file.as_deref().map(|f| display_path(f, root));
        }
    }
    let threshold = match args.fail_on {
        FailOn::Warning => Severity::Warning,
        FailOn::Error => Severity::Error,
    };
    let status = if report.findings.iter().any(|f| f.severity >= threshold) {
        Status::Problems
    } else {
        Status::Ok
    };
    let count = |severity| {
        report
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    };
    let counts = [Severity::Error, Severity::Warning, Severity::Info].map(|s| (s, count(s)));

    if ctx.out.is_json() {
        ctx.out.json(&serde_json::json!({
            "revisions_checked": report.revisions_checked,
            "findings": report.findings,
            "counts": counts
                .iter()
                .map(|(s, n)| (s.as_str().to_owned(), (*n).into()))
                .collect::<serde_json::Map<_, _>>(),
        }))?;
        return Ok(status);
    }
    let out = &ctx.out;
    for finding in &report.findings {
        let hint = finding
            .hint
            .as_ref()
            .map(|h| format!(" (hint: {h})"))
            .unwrap_or_default();
        out.line(&format!(
            "{} {} {} {} {}: {}{hint}",
            finding.severity.as_str(),
            finding.code,
            finding.revision.as_deref().unwrap_or("-"),
            finding
                .file
                .as_ref()
                .map_or_else(|| "-".to_owned(), |f| f.display().to_string()),
            finding.object,
            finding.message
        ))?;
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    out.line(&format!(
        "{} revision{} checked: {}",
        report.revisions_checked.len(),
        if report.revisions_checked.len() == 1 {
            ""
        } else {
            "s"
        },
        summary.join(", ")
    ))?;
    Ok(status)
}
