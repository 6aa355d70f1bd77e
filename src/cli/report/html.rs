//! The report as one HTML page: sections of tables and chips, inline CSS,
//! no script. Every string that comes from the database, the project or
//! the store is escaped by [`esc`].

use std::fmt::Write as _;
use std::path::Path;

use super::GENERATOR;
use crate::cli::graph::Layout;
use crate::cli::history::marks;
use crate::cli::migrations::{failure_lines, shown};
use crate::cli::output::{bytes, describe_change, plural};
use crate::cli::verdict::finding_line;
use crate::finding::Severity;
use crate::migrations::drift::{Located, StatusReport};
use crate::migrations::history::position::Position;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::report::{RecentSnapshot, Report, SchemaMatch};
use crate::policy::Verdict;
use crate::schema::diff::{Op, SchemaDiff};
use crate::timestamp;

/// `text` with the characters HTML gives meaning escaped, for text and for
/// quoted attribute values alike. Everything the page shows that comes
/// from the database, the project or the store goes through here.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A short revision or snapshot id in a monospace chip.
fn chip(text: &str, class: &str) -> String {
    format!(r#"<code class="chip {class}">{}</code>"#, esc(text))
}

/// Revision ids as chips, `none` when there are none.
fn chips(ids: &[impl AsRef<str>], class: &str) -> String {
    if ids.is_empty() {
        return r#"<span class="muted">none</span>"#.to_owned();
    }
    ids.iter()
        .map(|id| chip(id.as_ref(), class))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The whole page.
pub(super) fn page(report: &Report, verdict: &Verdict, root: &Path) -> String {
    let name = report.name.clone().unwrap_or_else(|| {
        report.database.file_name().map_or_else(
            || report.database.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    });
    let mut page = String::new();
    let state = if verdict.clean { "clean" } else { "fail" };
    let _ = write!(
        page,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
{GENERATOR}
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>migsnap report: {title}</title>
<style>{STYLE}</style>
</head>
<body>
<header class="top {state}">
<div>
<p class="kicker">migsnap report</p>
<h1 id="database">{title}</h1>
<p class="path">{path}</p>
</div>
<div class="verdict"><span class="badge">{word}</span><p>{summary}</p></div>
</header>
<main>
"#,
        title = esc(&name),
        path = esc(&report.database.display().to_string()),
        word = if verdict.clean { "CLEAN" } else { "FAIL" },
        summary = esc(&verdict.summary()),
    );
    page.push_str(&position_section(report, root));
    page.push_str(&drift_section(&report.status, root));
    page.push_str(&repair_section(report));
    page.push_str(&timeline_section(report, root));
    page.push_str(&snapshots_section(report));
    page.push_str(&findings_section(verdict, root));
    let _ = write!(
        page,
        r#"</main>
<footer>Made by migsnap {version} on {time}. The repair plan is shown, not applied: this report changed nothing.</footer>
</body>
</html>
"#,
        version = env!("CARGO_PKG_VERSION"),
        time = esc(&timestamp::utc(report.generated)),
    );
    page
}

/// Where the database sits: its stamp, what its schema really matches, its
/// position, the heads, the last snapshot, the project.
fn position_section(report: &Report, root: &Path) -> String {
    let status = &report.status;
    let stamped = match &status.rows {
        None => r#"<span class="bad">no alembic_version table</span>"#.to_owned(),
        Some(rows) if rows.is_empty() => {
            r#"<span class="bad">alembic_version is empty</span>"#.to_owned()
        }
        Some(rows) => chips(rows, "stamped"),
    };
    let class = status.position.class();
    let mut position = format!(
        r#"<span class="{}">{}</span>"#,
        if status.position == Position::AtHeads {
            "good"
        } else {
            "bad"
        },
        esc(class)
    );
    if !status.position.pending().is_empty() {
        let _ = write!(
            position,
            r#"<br><span class="muted">pending:</span> {}"#,
            chips(status.position.pending(), "")
        );
    }
    let since = match &report.since_snapshot {
        None if report.name.is_none() => {
            r#"<span class="muted">not tracked: no snapshots</span>"#.to_owned()
        }
        None => r#"<span class="muted">no snapshot yet</span>"#.to_owned(),
        Some(since) if since.changes.is_empty() => format!(
            "unchanged since {}",
            chip(&format!("{:.12}", since.snapshot), "")
        ),
        Some(since) => format!(
            r#"<span class="bad">schema changed</span> since {} ({} change{})"#,
            chip(&format!("{:.12}", since.snapshot), ""),
            since.changes.changes.len(),
            plural(since.changes.changes.len())
        ),
    };
    let dirs: Vec<String> = report
        .project
        .version_locations
        .iter()
        .map(|d| shown(d, root))
        .collect();
    format!(
        r#"<section id="position">
<h2>Where the database sits</h2>
<dl class="facts">
<div><dt>Stamped revision</dt><dd id="stamped">{stamped}</dd></div>
<div><dt>Schema really matches</dt><dd id="located">{located}</dd></div>
<div><dt>Position</dt><dd>{position}</dd></div>
<div><dt>Heads</dt><dd>{heads}</dd></div>
<div><dt>Last snapshot</dt><dd>{since}</dd></div>
<div><dt>Migrations</dt><dd>{kind} in <code>{dirs}</code>, {count} revision{s}</dd></div>
</dl>
</section>
"#,
        located = located_text(&report.located),
        heads = chips(&status.heads, "head"),
        kind = match report.project.kind {
            crate::migrations::history::project::MigrationKind::Alembic => "Alembic",
            crate::migrations::history::project::MigrationKind::Sql => "SQL folder",
        },
        dirs = esc(&dirs.join(", ")),
        count = report.project.revisions,
        s = plural(report.project.revisions),
    )
}

/// What `locate` says, in a sentence with chips, and whether that is the
/// stamped revision.
fn located_text(located: &Located) -> String {
    let is_stamped = |targets: &[RevisionId]| {
        located.stamped.as_ref().is_some_and(|rows| {
            let (mut a, mut b) = (rows.clone(), targets.to_vec());
            a.sort();
            b.sort();
            a == b
        })
    };
    if !located.exact.is_empty() {
        let names: Vec<String> = located
            .exact
            .iter()
            .map(|m| {
                let ids = chips(&m.targets, "match");
                if m.accepted {
                    format!(
                        "{ids} (accepted variant {})",
                        chip(&format!("{:.12}", m.snapshot), "")
                    )
                } else {
                    ids
                }
            })
            .collect();
        let verdict = if located.stamped_matches() {
            r#"<span class="good">as stamped</span>"#
        } else {
            r#"<span class="bad">not the stamped revision</span>"#
        };
        return format!("{}, {verdict}", names.join(" or "));
    }
    match &located.nearest {
        Some(nearest) => {
            let n = nearest.drift.changes.len();
            format!(
                r#"<span class="bad">no revision exactly</span>; nearest is {}{} with {n} difference{}"#,
                chips(&nearest.targets, "nearest"),
                if is_stamped(&nearest.targets) {
                    ", the stamped one,"
                } else {
                    ", not the stamped one,"
                },
                plural(n)
            )
        }
        None => r#"<span class="muted">no reference to compare with</span>"#.to_owned(),
    }
}

/// The drift from the reference of the stamped revisions, one row per
/// object.
fn drift_section(status: &StatusReport, root: &Path) -> String {
    let mut out = String::from("<section id=\"drift\">\n<h2>Drift</h2>\n");
    if let Some(comparison) = status.comparison.as_ref().filter(|c| c.inferred) {
        let _ = writeln!(
            out,
            r#"<p class="bad">The stamped revision is unknown; compared with the nearest revision, {}.</p>"#,
            chips(&comparison.targets, "")
        );
    }
    match (&status.comparison, &status.replay_failure) {
        (Some(comparison), _) if comparison.drift.is_empty() => {
            let _ = writeln!(
                out,
                r#"<p class="good">The schema matches the reference for {}{}.</p>"#,
                chips(&comparison.targets, "stamped"),
                comparison
                    .variant
                    .map(|v| format!(" (accepted variant {})", chip(&format!("{v:.12}"), "")))
                    .unwrap_or_default()
            );
        }
        (Some(comparison), _) => {
            let n = comparison.drift.changes.len();
            let _ = writeln!(
                out,
                r#"<p>{n} difference{} from the reference for {} ({}){}:</p>"#,
                plural(n),
                chips(&comparison.targets, "stamped"),
                chip(&format!("{:.12}", comparison.reference), ""),
                if comparison.drift.is_form_only() {
                    ", in form only"
                } else {
                    ""
                }
            );
            out.push_str(&drift_table(&comparison.drift));
        }
        (None, Some(failure)) => {
            let _ = writeln!(
                out,
                r#"<p class="bad">Not compared: the reference could not be built.</p><pre class="log">{}</pre>"#,
                esc(&failure_lines(failure, root).join("\n"))
            );
        }
        (None, None) => out.push_str(
            "<p class=\"muted\">Not compared: no stamped revision to compare with.</p>\n",
        ),
    }
    out.push_str("</section>\n");
    out
}

/// Drift as a table: `extra`, `missing` or `differs`, then the object with,
/// for a changed definition, its fields under it.
fn drift_table(diff: &SchemaDiff) -> String {
    let mut out = String::from(
        "<table class=\"drift\">\n<thead><tr><th class=\"narrow\"></th><th>Object</th></tr></thead>\n<tbody>\n",
    );
    for change in &diff.changes {
        let word = match change.op {
            Op::Added => "extra",
            Op::Removed => "missing",
            Op::Changed => "differs",
        };
        let (what, fields) = describe_change(change);
        let details: String = fields
            .iter()
            .map(|f| format!(r#"<div class="fields">{}</div>"#, esc(f)))
            .collect();
        let _ = writeln!(
            out,
            r#"<tr class="drift-item"><td class="narrow"><span class="tag {word}">{word}</span></td><td>{}{details}</td></tr>"#,
            esc(&what),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// The SQL a repair would run, never applied, and what it keeps.
fn repair_section(report: &Report) -> String {
    let mut out = String::from("<section id=\"repair\">\n<h2>Repair plan</h2>\n");
    let Some(repair) = &report.repair else {
        out.push_str("<p class=\"muted\">Nothing to repair.</p>\n</section>\n");
        return out;
    };
    let planned = &repair.planned;
    let towards = chips(&repair.targets, "stamped");
    if planned.plan.is_empty() {
        let _ = writeln!(
            out,
            "<p>The database has everything of {towards}; no statement would add or change anything.</p>"
        );
    } else {
        let count = planned.plan.statement_count();
        let _ = writeln!(
            out,
            r#"<p>{count} statement{} would bring the schema to the reference of {towards}. <strong>Not applied</strong>: <code>migsnap repair {} --apply</code> runs it on a verified copy (or <code>migsnap fix</code> chooses the fix a careful person would).</p>
<pre class="sql">{}</pre>"#,
            plural(count),
            esc(&report
                .name
                .clone()
                .unwrap_or_else(|| report.database.display().to_string())),
            esc(planned.plan.to_script().trim_end())
        );
    }
    if planned.destructive {
        out.push_str("<p class=\"bad\">Steps marked DESTRUCTIVE can lose data; applying them needs --allow-destructive.</p>\n");
    }
    if !planned.kept.is_empty() {
        let kept: Vec<String> = planned
            .kept
            .changes
            .iter()
            .map(|change| {
                format!(
                    r#"<span class="kept">{}</span>"#,
                    esc(&describe_change(change).0)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<p>Kept, as the reference lacks {} (<code>--allow-destructive</code> would drop {}): {}.</p>",
            if kept.len() == 1 { "it" } else { "them" },
            if kept.len() == 1 { "it" } else { "them" },
            kept.join(", ")
        );
    }
    out.push_str("</section>\n");
    out
}

/// The revisions newest first, with the lanes of `history --graph` and
/// where the database is along them.
fn timeline_section(report: &Report, root: &Path) -> String {
    let mut out = String::from(
        "<section id=\"timeline\">\n<h2>Revision timeline</h2>\n<table class=\"timeline\">\n<thead><tr><th>Graph</th><th>Revision</th><th>Message</th><th>Where the database is</th></tr></thead>\n<tbody>\n",
    );
    let known: Vec<&str> = report
        .timeline
        .iter()
        .map(|r| r.revision.as_str())
        .collect();
    let mut lanes = Layout::default();
    let lane_row = |out: &mut String, line: &str| {
        let _ = writeln!(
            out,
            r#"<tr class="lane"><td class="graph">{}</td><td colspan="3"></td></tr>"#,
            esc(line)
        );
    };
    for revision in report.timeline.iter().rev() {
        let parents: Vec<&str> = revision
            .parents
            .iter()
            .map(|p| p.as_str())
            .filter(|p| known.contains(p))
            .collect();
        let drawn = lanes.place(&revision.revision.as_str(), &parents);
        // Rows without text, not painted: the page has no terminal colours.
        let rows = drawn.lines(&[], &|_, glyphs| glyphs.to_owned());
        let (before, rest) = rows.split_at(drawn.joins());
        let (node, after) = rest
            .split_first()
            .expect("holds because a node has its own row");
        for line in before {
            lane_row(&mut out, line);
        }
        let mut states = Vec::new();
        if revision.stamped {
            states.push(r#"<span class="tag stamped">stamped</span>"#);
        }
        match revision.schema {
            Some(SchemaMatch::Exact) => {
                states.push(r#"<span class="tag match">schema matches</span>"#)
            }
            Some(SchemaMatch::Nearest) => {
                states.push(r#"<span class="tag nearest">nearest schema</span>"#)
            }
            None => {}
        }
        if !revision.applied {
            states.push(r#"<span class="tag pending">pending</span>"#);
        }
        let marks: Vec<String> = marks(
            revision.head,
            &revision.parents,
            &revision.children,
            &revision.branch_labels,
        )
        .iter()
        .map(|m| format!(r#"<span class="mark">{}</span>"#, esc(m)))
        .collect();
        let _ = writeln!(
            out,
            r#"<tr class="rev{}"><td class="graph">{}</td><td class="narrow">{}{}</td><td title="{}">{}</td><td class="narrow">{}</td></tr>"#,
            if revision.applied { "" } else { " unapplied" },
            esc(node),
            chip(revision.revision.as_str(), ""),
            if marks.is_empty() {
                String::new()
            } else {
                format!(" {}", marks.join(" "))
            },
            esc(&shown(&revision.file, root)),
            esc(revision.message.as_deref().unwrap_or("")),
            states.join(" "),
        );
        for line in after {
            lane_row(&mut out, line);
        }
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}

/// The newest snapshots with what they hold and what they cost.
fn snapshots_section(report: &Report) -> String {
    let mut out = String::from("<section id=\"snapshots\">\n<h2>Recent snapshots</h2>\n");
    if report.snapshots.is_empty() {
        out.push_str(if report.name.is_none() {
            "<p class=\"muted\">The database is not tracked, so it has no snapshots (<code>migsnap track</code>).</p>\n"
        } else {
            "<p class=\"muted\">No snapshot yet (<code>migsnap snapshot</code>).</p>\n"
        });
        out.push_str("</section>\n");
        return out;
    }
    out.push_str("<table class=\"snapshots\">\n<thead><tr><th>Snapshot</th><th>Time</th><th>Message</th><th>Revision</th><th class=\"num\">Size</th><th class=\"num\">Added</th></tr></thead>\n<tbody>\n");
    for snapshot in &report.snapshots {
        out.push_str(&snapshot_row(snapshot));
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}

/// One snapshot as a table row.
fn snapshot_row(snapshot: &RecentSnapshot) -> String {
    let usage = &snapshot.usage;
    let refs: Vec<String> = snapshot
        .refs
        .iter()
        .map(|r| format!(r#"<span class="mark">{}</span>"#, esc(r)))
        .collect();
    let size = match (usage.logical_size, usage.data_forgotten) {
        (Some(size), false) => bytes(size),
        (_, true) => "data forgotten".to_owned(),
        (None, false) => "schema only".to_owned(),
    };
    format!(
        "<tr><td class=\"narrow\">{}{}</td><td class=\"narrow\">{}</td><td>{}{}</td><td class=\"narrow\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
        chip(&format!("{:.12}", usage.id), ""),
        if refs.is_empty() {
            String::new()
        } else {
            format!(" {}", refs.join(" "))
        },
        esc(&timestamp::utc(usage.time)),
        esc(&snapshot.message),
        if snapshot.schema_changed {
            r#" <span class="tag differs">schema changed</span>"#
        } else {
            ""
        },
        snapshot
            .alembic_versions
            .as_deref()
            .map_or_else(String::new, |v| chips(v, "")),
        esc(&size),
        esc(&bytes(usage.added_bytes)),
    )
}

/// The findings that count, then the ignored ones.
fn findings_section(verdict: &Verdict, root: &Path) -> String {
    let mut out = String::from("<section id=\"findings\">\n<h2>Findings</h2>\n");
    if verdict.findings.is_empty() {
        out.push_str("<p class=\"good\">No findings.</p>\n");
    } else {
        out.push_str("<table class=\"findings\">\n<thead><tr><th>Severity</th><th>Code</th><th>Object</th><th>What was found</th></tr></thead>\n<tbody>\n");
        for finding in &verdict.findings {
            let counts = verdict.fail_on.reached_by(finding.severity);
            let severity = finding.severity.as_str();
            let class = match finding.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            let _ = writeln!(
                out,
                r#"<tr><td><span class="tag {class}">{severity}</span>{}</td><td><code>{}</code></td><td>{}</td><td>{}{}{}</td></tr>"#,
                if counts {
                    r#" <span class="muted">fails</span>"#
                } else {
                    ""
                },
                esc(finding.code),
                // A database's path, inside the project, in short.
                esc(&shown(Path::new(&finding.object), root)),
                esc(&finding.message),
                finding
                    .hint
                    .as_ref()
                    .map(|h| format!(r#"<div class="hint">hint: {}</div>"#, esc(h)))
                    .unwrap_or_default(),
                finding
                    .file
                    .as_ref()
                    .map(|f| format!(r#"<div class="file">{}</div>"#, esc(&shown(f, root))))
                    .unwrap_or_default(),
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if !verdict.ignored.is_empty() {
        out.push_str("<p class=\"muted\">Ignored:</p>\n<ul class=\"ignored\">\n");
        for ignored in &verdict.ignored {
            let _ = writeln!(
                out,
                "<li>{} <span class=\"muted\">({})</span></li>",
                esc(&finding_line(&ignored.finding)),
                esc(&ignored.reason)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
    out
}

/// The page's style, inlined: system fonts, one column of cards, a
/// monospace SQL block; nothing loaded from elsewhere.
const STYLE: &str = include_str!("style.css");

#[cfg(test)]
pub(super) mod tests {
    use std::path::PathBuf;

    use migsnap_store::ObjectId;

    use super::*;
    use crate::finding::Finding;
    use crate::migrations::drift::{Comparison, LocateMatch, schema_of};
    use crate::migrations::history::project::MigrationKind;
    use crate::migrations::history::targets::Targets;
    use crate::migrations::repair::{self, RepairReport};
    use crate::migrations::report::TimelineRevision;
    use crate::migrations::workspace::ProjectSummary;
    use crate::policy::{Ask, FindingsConfig};
    use crate::schema::diff;
    use crate::snapshots::usage::SnapshotUsage;

    const SCRIPT: &str = "<script>alert(1)</script>";

    /// A report in which every string a user controls carries markup: a
    /// table named `<script>…`, a column, a revision message, file names, a
    /// snapshot message and a finding.
    pub(in crate::cli::report) fn hostile_report() -> Report {
        let live = schema_of(&format!(
            r#"CREATE TABLE "{SCRIPT}"(x INTEGER); CREATE TABLE chat(id INTEGER PRIMARY KEY);"#
        ));
        let reference =
            schema_of(r#"CREATE TABLE chat(id INTEGER PRIMARY KEY, "<b>archived</b>" INTEGER);"#);
        let revision = "<i>rev</i>";
        let id = ObjectId::hash(b"reference");
        let database = PathBuf::from(format!("/srv/{SCRIPT}/app.db"));
        let status = StatusReport {
            database: database.clone(),
            rows: Some(vec![revision.into()]),
            position: Position::AtHeads,
            heads: vec![revision.into()],
            comparison: Some(Comparison {
                targets: vec![revision.into()],
                reference: id,
                variant: None,
                drift: diff::diff(&reference, &live),
                inferred: false,
            }),
            replay_failure: None,
            findings: vec![
                Finding::new(
                    "drift.schema",
                    Severity::Error,
                    SCRIPT,
                    format!("{SCRIPT} differs"),
                )
                .hint(SCRIPT),
            ],
        };
        Report {
            database: database.clone(),
            name: Some(SCRIPT.to_owned()),
            generated: 0,
            project: ProjectSummary {
                kind: MigrationKind::Alembic,
                root: PathBuf::from("/srv"),
                version_locations: vec![PathBuf::from(format!("/srv/{SCRIPT}"))],
                revisions: 1,
            },
            timeline: vec![TimelineRevision {
                revision: revision.into(),
                parents: Vec::new(),
                children: Vec::new(),
                branch_labels: vec![SCRIPT.to_owned()],
                depends_on: Vec::new(),
                message: Some(SCRIPT.to_owned()),
                file: PathBuf::from(format!("/srv/{SCRIPT}.py")),
                head: true,
                stamped: true,
                applied: true,
                schema: Some(SchemaMatch::Nearest),
            }],
            located: Located {
                stamped: Some(vec![revision.into()]),
                exact: Vec::new(),
                nearest: Some(LocateMatch {
                    targets: vec![revision.into()],
                    snapshot: id,
                    accepted: false,
                    drift: diff::diff(&reference, &live),
                }),
                replay_failure: None,
            },
            repair: Some(RepairReport {
                inferred: false,
                database,
                targets: Targets::one(revision),
                reference: id,
                planned: repair::plan(&live, &reference, false),
                findings: Vec::new(),
                applied: false,
                safety_snapshot: None,
                after_snapshot: None,
                newly_tracked: None,
            }),
            status,
            models: None,
            since_snapshot: None,
            snapshots: vec![RecentSnapshot {
                usage: SnapshotUsage {
                    id,
                    database: SCRIPT.to_owned(),
                    time: 0,
                    logical_size: Some(8192),
                    added_bytes: 100,
                    added_objects: 2,
                    data_forgotten: false,
                    schema_only: false,
                },
                message: SCRIPT.to_owned(),
                refs: vec![format!("tags/{SCRIPT}")],
                alembic_versions: Some(vec![SCRIPT.to_owned()]),
                schema_changed: true,
            }],
        }
    }

    #[test]
    fn markup_in_names_messages_and_paths_is_shown_as_text() {
        let report = hostile_report();
        let verdict = FindingsConfig::default().judge(report.findings(), Ask::default());
        let page = page(&report, &verdict, Path::new("/srv"));
        let lower = page.to_lowercase();
        for tag in ["<script", "<b>", "<i>", "</script"] {
            assert!(!lower.contains(tag), "{tag} reached the page:\n{page}");
        }
        // Shown, escaped: the extra table (drift and the kept list), the
        // missing column (drift, and in the repair's SQL), the stamp.
        assert!(
            page.contains("table &lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(
            page.contains("column chat.&lt;b&gt;archived&lt;/b&gt;"),
            "{page}"
        );
        assert!(
            page.contains("ADD COLUMN &quot;&lt;b&gt;archived&lt;/b&gt;&quot;"),
            "{page}"
        );
        assert!(page.contains("&lt;i&gt;rev&lt;/i&gt;"), "{page}");
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!verdict.clean);
    }
}
