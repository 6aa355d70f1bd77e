//! `migsnap report`: the engine's report ([`crate::migrations::report`])
//! as one self-contained HTML page (inline CSS, no script, nothing fetched)
//! or as JSON. The page is written to a temporary file and renamed over
//! the output, so a browser or a web server never sees half of one.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::man::WriteError;
use super::migrations::{self, replay_progress};
use super::{CliError, Ctx, ErrorKind, Status, verdict};
use crate::migrations::report::{self, Report, ReportOptions};
use crate::policy::Verdict;

mod html;

/// Write a one-page HTML report on a database: the revision timeline,
/// where the database sits (its stamp and the revision its schema really
/// matches), its drift with the SQL a repair would run (shown, never
/// applied), its recent snapshots with their sizes, and the findings. Exits
/// as `status` does: 0 when the verdict is clean, 1 when not; the report
/// is written either way.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    #[command(flatten)]
    verdict: verdict::VerdictArgs,
    /// The database: a tracked name or a path (default: the only tracked
    /// one, or the SQLite file the Alembic configuration names).
    db: Option<String>,
    /// Write the HTML page to FILE (needed unless --format json, which
    /// prints the report on stdout and writes the page too when given).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace FILE even when it is not a report migsnap wrote.
    #[arg(long)]
    force: bool,
    /// How many of the newest snapshots to list.
    #[arg(long = "snapshots", value_name = "N", default_value_t = 10)]
    snapshots: usize,
}

/// The JSON of `migsnap report`: the engine's report, where the page was
/// written, and the verdict.
#[derive(Serialize)]
struct ReportDocument<'a> {
    #[serde(flatten)]
    report: &'a Report,
    /// The HTML page written, if one was (absolute).
    output: Option<&'a Path>,
    /// `findings` (the counting ones), `ignored`, `fail_on`, `strict`,
    /// `clean`.
    #[serde(flatten)]
    verdict: &'a Verdict,
}

/// Marks the pages this command writes, so a later run may replace them
/// without `--force`. It sits in the first bytes of the file.
const GENERATOR: &str = r#"<meta name="generator" content="migsnap report">"#;

pub fn run(args: ReportArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let output = match (&args.output, ctx.out.is_json()) {
        (Some(path), _) => Some(crate::repo::absolute(&ctx.cwd.join(path))),
        (None, true) => None,
        (None, false) => {
            return Err(CliError::new(
                ErrorKind::Usage,
                "report needs -o FILE for the HTML page",
            )
            .hint("e.g. `migsnap report -o report.html`, or --format json for the report on stdout"));
        }
    };
    // Refused before any work, so a wrong path costs nothing.
    if let Some(path) = &output {
        check_output(path, args.force)?;
    }
    let mut opened = migrations::open(ctx, args.db.as_deref(), &args.project)?;
    let path = opened.database(args.db.as_deref())?;
    let options = ReportOptions {
        snapshots: args.snapshots,
        busy_timeout: ctx.busy_timeout,
    };
    let report = report::report(&mut opened, &path, &options, &mut replay_progress(ctx))?;
    let judged = args
        .verdict
        .judge(opened.repo.findings(), report.findings());
    let status = verdict::status(&judged);
    if let Some(path) = &output {
        let page = html::page(&report, &judged, opened.repo.root());
        crate::repo::write_atomically(path, page.as_bytes(), 0o666).map_err(|source| {
            WriteError {
                path: path.clone(),
                source,
            }
        })?;
    }
    if ctx.out.is_json() {
        ctx.out.json(&ReportDocument {
            report: &report,
            output: output.as_deref(),
            verdict: &judged,
        })?;
    } else if let Some(path) = &output {
        ctx.out.line(&format!("wrote {}", path.display()))?;
        ctx.out.verdict(&judged.summary())?;
    }
    Ok(status)
}

/// Refuses an output that is not a regular file (exit 3, even with
/// `--force`: a directory or a link is never replaced), or a file this
/// command did not write (exit 4 without `--force`).
fn check_output(path: &Path, force: bool) -> Result<(), CliError> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(WriteError {
                path: path.to_owned(),
                source,
            }
            .into());
        }
        Ok(meta) => meta,
    };
    if !meta.is_file() {
        return Err(CliError::new(
            ErrorKind::Input,
            format!(
                "{} is not a regular file (a directory, a symbolic link, a device); refusing to replace it",
                path.display()
            ),
        )
        .hint("name the file itself, or a path that does not exist yet"));
    }
    if force || is_report(path) {
        return Ok(());
    }
    Err(CliError::new(
        ErrorKind::Refused,
        format!(
            "{} already exists and is not a migsnap report",
            path.display()
        ),
    )
    .hint("pass --force to overwrite it"))
}

/// Whether the file at `path` begins as the pages of this command do.
fn is_report(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(path)
        .and_then(|file| file.take(512).read_to_end(&mut head))
        .is_ok_and(|_| String::from_utf8_lossy(&head).contains(GENERATOR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Ask, FindingsConfig};

    #[test]
    fn the_page_marks_itself_as_a_report_in_its_first_bytes() {
        let report = html::tests::hostile_report();
        let verdict = FindingsConfig::default().judge(Vec::new(), Ask::default());
        let page = html::page(&report, &verdict, Path::new("/srv"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        std::fs::write(&path, &page).unwrap();
        assert!(is_report(&path));
        std::fs::write(&path, "<!DOCTYPE html><title>mine</title>").unwrap();
        assert!(!is_report(&path));
        assert!(page.find(GENERATOR).unwrap() < 512);
    }
}
