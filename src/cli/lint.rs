//! `migsnap lint`: reviews new migrations by what their files say and what
//! they do to the schema.

use std::collections::BTreeMap;

use serde::Serialize;

use super::migrations::{self, replay_progress, shown};
use super::{CliError, Ctx, Status, verdict};
use crate::finding::Finding;
use crate::finding::Severity;
use crate::migrations::history::graph::display_path;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::lint::{self, Scope, Since, Stamped};
use crate::policy::Verdict;

/// Review new migrations: what each one does to the schema (from the
/// reference chain) and what its file says. Without --since, --base or
/// --staged, every revision is new. Where there is no store, the
/// references are built in a temporary one.
#[derive(Debug, clap::Args)]
pub struct LintArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// Review the revisions after REV in the graph (those an upgrade to REV
    /// would not apply). `head` and `heads` mean the revisions the database
    /// is stamped with, when one is known (tracked, or sqlalchemy.url);
    /// otherwise a head that is itself new is refused.
    #[arg(long, value_name = "REV", conflicts_with_all = ["base", "staged"])]
    since: Option<String>,
    /// Review the revisions whose files are not in git commit GITREF.
    #[arg(long, value_name = "GITREF", conflicts_with = "staged")]
    base: Option<String>,
    /// Review the revision files staged in git's index (added or
    /// modified), as a pre-commit hook does.
    #[arg(long)]
    staged: bool,
    #[command(flatten)]
    verdict: verdict::VerdictArgs,
}

/// The JSON of `lint`: the report's revisions and `since` (null when not
/// given), the counts by severity after the policy, and the verdict in
/// place of the report's findings.
#[derive(Serialize)]
struct LintDocument<'a> {
    revisions_checked: &'a [RevisionId],
    since: Option<&'a Since>,
    /// `error`, `warning` and `info`: how many counting findings of each.
    counts: BTreeMap<&'static str, usize>,
    /// `findings` (the counting ones), `ignored`, `fail_on`, `strict`,
    /// `clean`.
    #[serde(flatten)]
    verdict: &'a Verdict,
}

/// Lints, prints the findings, and fails when one reaches `--fail-on`.
pub fn run(args: LintArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut opened = migrations::open_or_scratch(ctx, &args.project)?;
    let scope = match (args.since, args.base, args.staged) {
        (Some(rev), _, _) => Scope::Since {
            // A tracked database absent here (a CI checkout) is no
            // database: `head` then resolves in the graph.
            database: opened
                .database(None)
                .ok()
                .filter(|path| path.is_file())
                .map(|path| Stamped {
                    path,
                    busy_timeout: ctx.busy_timeout,
                }),
            rev,
        },
        (None, Some(gitref), _) => Scope::Base(gitref),
        (None, None, true) => Scope::Staged,
        (None, None, false) => Scope::All,
    };
    let (repo, replayer, graph) = opened.parts();
    let mut report = lint::lint(repo, &replayer, graph, &scope, &mut replay_progress(ctx))?;
    if opened.repo.is_scratch() && !report.revisions_checked.is_empty() {
        ctx.out.note(
            "no migsnap store here: the references were replayed into a temporary store, now removed (`migsnap init` keeps them for the next run)",
        );
    }
    let root = opened.repo.root();
    // Text names files relative to the project root; JSON keeps them
    // absolute, as every path in JSON is.
    if !ctx.out.is_json() {
        for finding in &mut report.findings {
            finding.file = finding.file.as_deref().map(|f| display_path(f, root));
        }
    }
    let judged = args
        .verdict
        .judge(opened.repo.findings(), std::mem::take(&mut report.findings));
    let status = verdict::status(&judged);
    let counts = [Severity::Error, Severity::Warning, Severity::Info].map(|s| (s, judged.count(s)));

    if ctx.out.is_json() {
        ctx.out.json(&LintDocument {
            revisions_checked: &report.revisions_checked,
            since: report.since.as_ref(),
            counts: counts.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
            verdict: &judged,
        })?;
        return Ok(status);
    }
    let out = &ctx.out;
    for finding in &judged.findings {
        let hint = finding
            .hint
            .as_ref()
            .map(|h| format!(" (hint: {h})"))
            .unwrap_or_default();
        let line = format!(
            "{} {} {}: {}{hint}",
            finding.severity.as_str(),
            finding.code,
            place(finding),
            finding.message
        );
        if judged.fail_on.reached_by(finding.severity) {
            out.verdict(&line)?;
        } else {
            out.line(&line)?;
        }
    }
    for ignored in &judged.ignored {
        out.line(&format!(
            "ignored {} {}: {}",
            ignored.finding.code,
            place(&ignored.finding),
            ignored.reason
        ))?;
    }
    // Say what --since meant when it was not a revision id as resolved
    // (`head`, a label, a prefix).
    if let Some(since) = report
        .since
        .as_ref()
        .filter(|s| s.after != [s.rev.as_str()])
    {
        let after = if since.after.is_empty() {
            "base".to_owned()
        } else {
            since.after.join(", ")
        };
        out.line(&format!(
            "since {}: after {after}{}",
            since.rev,
            since
                .database
                .as_ref()
                .map(|db| format!(" (stamped in {})", shown(db, root)))
                .unwrap_or_default()
        ))?;
    }
    let checked = report.revisions_checked.len();
    out.line(&format!(
        "{checked} revision{} checked",
        if checked == 1 { "" } else { "s" },
    ))?;
    out.verdict(&judged.summary())?;
    Ok(status)
}

/// Where a finding is, naming the revision and its file once: the file
/// alone when its name holds the revision id (Alembic's `<id>_<slug>.py`),
/// else both; the object when there is neither.
fn place(finding: &Finding) -> String {
    match (&finding.revision, &finding.file) {
        (Some(revision), Some(file)) => {
            let named = file
                .file_name()
                .is_some_and(|name| name.to_string_lossy().contains(revision.as_str()));
            if named {
                file.display().to_string()
            } else {
                format!("{revision} ({})", file.display())
            }
        }
        (Some(revision), None) => revision.clone(),
        (None, Some(file)) => file.display().to_string(),
        (None, None) => finding.object.clone(),
    }
}
