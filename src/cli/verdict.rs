//! The flags and rendering every judging command shares: `--fail-on`,
//! `--strict`, the findings list and the verdict line. One file, so the same
//! findings give the same exit code and look the same in every command.

use std::path::Path;

use super::migrations::shown;
use super::{CliError, Ctx, Status};
use crate::finding::Finding;
use crate::policy::{Ask, FindingsConfig, Threshold, Verdict};

/// How findings decide the exit code.
#[derive(Debug, Default, clap::Args)]
pub struct VerdictArgs {
    /// Exit 1 when a finding at or above LEVEL remains after the ignore
    /// list (default: `[findings] fail_on` in migsnap.toml, else error).
    #[arg(long, value_enum, value_name = "LEVEL")]
    fail_on: Option<Threshold>,
    /// Count cosmetic differences (column order, constraint names) as
    /// errors.
    #[arg(long)]
    strict: bool,
}

impl VerdictArgs {
    /// Judges `findings` under the project's configuration and these flags.
    pub fn judge(&self, config: &FindingsConfig, findings: Vec<Finding>) -> Verdict {
        config.judge(
            findings,
            Ask {
                fail_on: self.fail_on,
                strict: self.strict,
            },
        )
    }
}

/// The exit status a verdict gives.
pub fn status(verdict: &Verdict) -> Status {
    if verdict.clean {
        Status::Ok
    } else {
        Status::Problems
    }
}

/// Prints the findings, the ignored ones in brief, and the verdict line.
/// Under `-q` only the findings that fail the verdict and the verdict line
/// are printed.
pub fn render(ctx: &Ctx, verdict: &Verdict, root: &Path) -> Result<(), CliError> {
    let out = &ctx.out;
    if !verdict.findings.is_empty() {
        out.line("")?;
    }
    for finding in &verdict.findings {
        let line = format!(
            "{}: {}{}",
            finding.severity.as_str(),
            finding_line(finding),
            finding
                .file
                .as_ref()
                .map(|f| format!(" [{}]", shown(f, root)))
                .unwrap_or_default()
        );
        if verdict.fail_on.reached_by(finding.severity) {
            out.verdict(&line)?;
        } else {
            out.line(&line)?;
        }
    }
    for ignored in &verdict.ignored {
        out.line(&format!(
            "ignored: [{}] {}: {}",
            ignored.finding.code, ignored.finding.object, ignored.reason
        ))?;
    }
    out.verdict(&verdict.summary())
}

/// One finding as a line: `[code] object: message (hint: …)`.
pub fn finding_line(finding: &Finding) -> String {
    let hint = finding
        .hint
        .as_ref()
        .map(|h| format!(" (hint: {h})"))
        .unwrap_or_default();
    format!(
        "[{}] {}: {}{hint}",
        finding.code, finding.object, finding.message
    )
}
