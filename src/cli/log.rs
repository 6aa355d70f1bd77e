//! `migsnap log`: list a database's snapshots, newest first.

use serde::Serialize;

use migsnap_store::ObjectId;

use super::graph::Layout;
use super::output::{Paint, bytes, diff_lines};
use super::{CliError, Ctx, Status};
use crate::schema::diff::{Change, SchemaDiff};
use crate::snapshots::log::{
    LogEntry, ObjectChange, ObjectSpec, SchemaCache, changed_log, first_parent_log, graph_log,
    patch,
};
use crate::snapshots::snapshot::{IntegrityFailure, Safety};
use crate::timestamp;

/// Show the snapshot history of a database: hash, time, message, tags,
/// Alembic revisions, size, bytes added and whether the schema changed.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Tracked database name or path (default: the only tracked one), or
    /// any REV to list the history from (`origin/webui`, `v1`, `HEAD~3`).
    db: Option<String>,
    /// One line per snapshot.
    #[arg(long)]
    oneline: bool,
    /// Show at most N snapshots.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    max_count: Option<usize>,
    /// Only snapshots where this schema object appeared, changed or
    /// disappeared compared with the first parent: `table:NAME`,
    /// `column:TABLE.COLUMN`, `index:NAME`, `trigger:NAME` or `view:NAME`.
    #[arg(long, value_name = "SPEC")]
    changed: Option<String>,
    /// Under each snapshot, its schema diff from its first parent.
    #[arg(short = 'p', long)]
    patch: bool,
    /// Draw the history as a graph, as `git log --graph` does: every
    /// parent, not only the first, children before parents.
    #[arg(long, conflicts_with = "changed")]
    graph: bool,
}

/// The JSON of `log`: the database's snapshots, newest first, and with
/// `--changed` the spec they were filtered by.
#[derive(Serialize)]
struct LogDocument<'a> {
    database: &'a str,
    snapshots: Vec<LogItem<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<String>,
}

/// One snapshot in `log`'s JSON: the entry, how it changed the `--changed`
/// object and, with `--patch`, its schema changes.
#[derive(Serialize)]
struct LogItem<'a> {
    #[serde(flatten)]
    entry: EntryDocument<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    change: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<&'a [Change]>,
}

/// Where the log starts, and the database it is of: a REV that names no
/// tracked database (a remote-tracking ref such as `origin/webui`, a tag, a
/// hash), or else the head of the database named by name or path (or the
/// only one), which may not have a snapshot yet.
fn start(
    ctx: &Ctx,
    repo: &mut crate::repo::Repo,
    arg: Option<&str>,
) -> Result<(String, Option<ObjectId>), CliError> {
    if let Some(arg) = arg.filter(|arg| repo.database(arg).is_none())
        && let Ok(id) = crate::snapshots::revspec::resolve(repo, arg, None)
    {
        let database = repo.store.view().read_snapshot(&id)?.database;
        return Ok((database, Some(id)));
    }
    let db = ctx.select_db(repo, arg)?;
    let head = repo.store.view().find_ref(&db.head_ref())?;
    Ok((db.name, head))
}

pub fn run(args: LogArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    let (database, head) = start(ctx, &mut repo, args.db.as_deref())?;
    let spec = args
        .changed
        .as_deref()
        .map(str::parse::<ObjectSpec>)
        .transpose()?;
    let view = repo.store.view();
    let entries: Vec<(LogEntry, Option<ObjectChange>)> = match (head, &spec) {
        (Some(head), Some(spec)) => changed_log(view, head, spec, args.max_count)
            .map_err(CliError::from)?
            .into_iter()
            .map(|(entry, change)| (entry, Some(change)))
            .collect(),
        (Some(head), None) => {
            let walk = if args.graph {
                graph_log
            } else {
                first_parent_log
            };
            walk(view, head, args.max_count)?
                .into_iter()
                .map(|entry| (entry, None))
                .collect()
        }
        (None, _) => Vec::new(),
    };
    let mut cache = SchemaCache::default();
    let patches: Vec<Option<SchemaDiff>> = entries
        .iter()
        .map(|(entry, _)| {
            args.patch
                .then(|| patch(view, &mut cache, entry))
                .transpose()
        })
        .collect::<Result<_, _>>()
        .map_err(CliError::from)?;
    if ctx.out.is_json() {
        ctx.out.json(&LogDocument {
            database: &database,
            snapshots: entries
                .iter()
                .zip(&patches)
                .map(|((entry, change), patch)| LogItem {
                    entry: EntryDocument::new(entry),
                    change: change.map(|c| c.verb()),
                    patch: patch.as_ref().map(|p| p.changes.as_slice()),
                })
                .collect(),
            changed: spec.as_ref().map(ToString::to_string),
        })?;
        return Ok(Status::Ok);
    }
    if let (Some(spec), true, Some(_)) = (&spec, entries.is_empty(), head) {
        ctx.out
            .note(&format!("no snapshot of '{database}' changed {spec}"));
    } else if entries.is_empty() {
        ctx.out.note(&format!(
            "no snapshots of '{database}' yet; take one with `migsnap snapshot`"
        ));
    }
    let mut layout = args.graph.then(Layout::default);
    let paint = |paint: Paint, text: &str| ctx.out.paint(paint, text);
    for ((entry, change), patch) in entries.iter().zip(&patches) {
        let change = change.map(|change| {
            (
                change,
                spec.as_ref().expect("holds because a change needs a spec"),
            )
        });
        let mut text = if args.oneline {
            let mut line = oneline(ctx, entry);
            if let Some((change, spec)) = change {
                line = format!("{line} {}: {spec}", change.verb());
            }
            vec![line]
        } else {
            long(ctx, entry, change)
        };
        if let Some(patch) = patch {
            text.extend(diff_lines(&ctx.out, patch, "    "));
            if args.oneline && !patch.is_empty() {
                text.push(String::new());
            }
        }
        if let Some(layout) = &mut layout {
            text = layout
                .place(&entry.id, &entry.snapshot.parents)
                .lines(&text, &paint);
        }
        for line in &text {
            ctx.out.line(line)?;
        }
    }
    Ok(Status::Ok)
}

fn decorations(ctx: &Ctx, entry: &LogEntry) -> String {
    if entry.refs.is_empty() {
        return String::new();
    }
    let names: Vec<String> = entry.refs.iter().map(|name| decoration(name)).collect();
    format!(
        " {}",
        ctx.out
            .paint(Paint::Ref, &format!("({})", names.join(", ")))
    )
}

/// How one ref reads in a decoration: `tag: NAME`, `HEAD -> DB` for a
/// database's head, and a labelled leaf for the refs a bisect session
/// (`bisect/DB/start`, `bisect/DB/marks/00000001-bad`) or the replay cache
/// (`replay/CHAIN/revs/REV`) keeps: those are no branch, so never `HEAD ->`;
/// a remote-tracking ref as `REMOTE/DB`.
fn decoration(name: &str) -> String {
    if let Some(tag) = name.strip_prefix("tags/") {
        return format!("tag: {tag}");
    }
    // A remote-tracking ref reads as git shows one: `origin/webui`,
    // `origin/tag: v1`.
    if let Some((remote, rest)) = name
        .strip_prefix(crate::remotes::TRACKING_PREFIX)
        .and_then(|rest| rest.split_once('/'))
    {
        return match rest.strip_prefix("heads/") {
            Some(head) => format!("{remote}/{head}"),
            None => format!("{remote}/{}", decoration(rest)),
        };
    }
    for label in ["bisect", "replay"] {
        if let Some(rest) = name
            .strip_prefix(label)
            .and_then(|rest| rest.strip_prefix('/'))
        {
            // The database (or chain) name is the log's own, so it is left out.
            let leaf = rest.split_once('/').map_or(rest, |(_, leaf)| leaf);
            let leaf = match label {
                "bisect" => leaf.strip_prefix("marks/").unwrap_or(leaf),
                _ => leaf,
            };
            return format!("{label}: {leaf}");
        }
    }
    format!("HEAD -> {}", name.trim_start_matches("heads/"))
}

fn flags(entry: &LogEntry) -> Vec<String> {
    let mut flags = Vec::new();
    if entry.schema_changed {
        flags.push("schema changed".to_owned());
    }
    if entry.snapshot.image.is_none() {
        flags.push("schema-only".to_owned());
    }
    if entry.forgotten {
        flags.push("data forgotten".to_owned());
    }
    if entry.recorded.integrity.is_some() {
        flags.push("fails integrity check".to_owned());
    }
    match &entry.recorded.safety {
        Some(Safety::Restore { restoring }) => {
            flags.push(format!("safety: restore of {restoring:.12}"));
        }
        Some(Safety::Rewrite) => flags.push("safety: rewrite in place".to_owned()),
        None => {}
    }
    flags
}

/// One snapshot on one line: `ID TIME [alembic:REVS] [[FLAGS]] MESSAGE
/// [(REFS)]`, as `log --oneline` and `bisect` print it.
pub(super) fn oneline(ctx: &Ctx, entry: &LogEntry) -> String {
    let flags = flags(entry);
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", flags.join(", "))
    };
    let alembic = entry
        .recorded
        .meta
        .alembic_versions
        .as_ref()
        .map(|v| {
            format!(
                " alembic:{}",
                if v.is_empty() {
                    "-".to_owned()
                } else {
                    v.join(",")
                }
            )
        })
        .unwrap_or_default();
    format!(
        "{} {}{alembic}{flags} {}{}",
        ctx.out.paint(Paint::Id, &format!("{:.12}", entry.id)),
        &timestamp::utc(entry.snapshot.time)[..16],
        entry.snapshot.message.lines().next().unwrap_or_default(),
        decorations(ctx, entry)
    )
}

/// One snapshot as `log` shows it by default: a header line, fields, and
/// the message indented, each element a line.
fn long(ctx: &Ctx, entry: &LogEntry, change: Option<(ObjectChange, &ObjectSpec)>) -> Vec<String> {
    let out = &ctx.out;
    let mut lines = vec![
        format!(
            "{}{}",
            out.paint(Paint::Id, &format!("snapshot {}", entry.id)),
            decorations(ctx, entry)
        ),
        format!("Date:    {}", timestamp::utc(entry.snapshot.time)),
    ];
    if let Some(versions) = &entry.recorded.meta.alembic_versions {
        let text = if versions.is_empty() {
            "(empty alembic_version)".to_owned()
        } else {
            versions.join(", ")
        };
        lines.push(format!("Alembic: {text}"));
    }
    let size = match &entry.image {
        Some(image) => format!(
            "{} ({} pages of {} B)",
            bytes(image.len()),
            image.block_count,
            image.block_size
        ),
        None => "schema only".to_owned(),
    };
    lines.push(format!(
        "Size:    {size}; added {} in {} objects",
        bytes(entry.snapshot.added.bytes),
        entry.snapshot.added.objects
    ));
    let flags = flags(entry);
    if !flags.is_empty() {
        lines.push(format!("Notes:   {}", flags.join(", ")));
    }
    if let Some((change, spec)) = change {
        lines.push(format!("Change:  {spec} {}", change.verb()));
    }
    lines.push(String::new());
    for line in entry.snapshot.message.lines() {
        lines.push(format!("    {line}"));
    }
    if !entry.snapshot.message.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// The JSON form of a log entry; field names are documented in docs/cli.md.
#[derive(Serialize)]
pub struct EntryDocument<'a> {
    id: String,
    parents: Vec<String>,
    database: &'a str,
    time: String,
    message: &'a str,
    refs: &'a [String],
    alembic_versions: Option<&'a [String]>,
    peewee_migrations: Option<&'a [String]>,
    schema_changed: bool,
    schema_only: bool,
    data_forgotten: bool,
    logical_size: Option<u64>,
    page_size: Option<u32>,
    page_count: Option<u32>,
    added_bytes: u64,
    added_objects: u64,
    integrity: Option<&'a IntegrityFailure>,
    safety: Option<&'a Safety>,
}

impl<'a> EntryDocument<'a> {
    /// The document of `entry`.
    pub fn new(entry: &'a LogEntry) -> Self {
        EntryDocument {
            id: entry.id.to_string(),
            parents: entry
                .snapshot
                .parents
                .iter()
                .map(ToString::to_string)
                .collect(),
            database: &entry.snapshot.database,
            time: timestamp::rfc3339(entry.snapshot.time),
            message: &entry.snapshot.message,
            refs: &entry.refs,
            alembic_versions: entry.recorded.meta.alembic_versions.as_deref(),
            peewee_migrations: entry.recorded.meta.peewee_migrations.as_deref(),
            schema_changed: entry.schema_changed,
            schema_only: entry.snapshot.image.is_none(),
            data_forgotten: entry.forgotten,
            logical_size: entry.image.as_ref().map(|i| i.len()),
            page_size: entry.image.as_ref().map(|i| i.block_size),
            page_count: entry.image.as_ref().map(|i| i.block_count),
            added_bytes: entry.snapshot.added.bytes,
            added_objects: entry.snapshot.added.objects,
            integrity: entry.recorded.integrity.as_ref(),
            safety: entry.recorded.safety.as_ref(),
        }
    }
}

/// [`EntryDocument`] as a JSON value, for `show`, which adds its own
/// fields to it.
pub fn json_entry(entry: &LogEntry) -> serde_json::Value {
    serde_json::to_value(EntryDocument::new(entry)).expect("holds: plain data")
}

#[cfg(test)]
mod tests {
    use super::decoration;

    #[test]
    fn session_and_cache_refs_are_labelled_not_branches() {
        assert_eq!(decoration("heads/app"), "HEAD -> app");
        assert_eq!(decoration("tags/v1"), "tag: v1");
        assert_eq!(decoration("bisect/app/start"), "bisect: start");
        assert_eq!(decoration("remotes/origin/heads/app"), "origin/app");
        assert_eq!(decoration("remotes/origin/tags/v1"), "origin/tag: v1");
        assert_eq!(decoration("bisect/app/from-root"), "bisect: from-root");
        assert_eq!(
            decoration("bisect/app/marks/00000001-bad"),
            "bisect: 00000001-bad"
        );
        assert_eq!(
            decoration("replay/app/revs/beef0003"),
            "replay: revs/beef0003"
        );
        assert_eq!(
            decoration("replay/default/accepted/revs/beef0003/0123abcd"),
            "replay: accepted/revs/beef0003/0123abcd"
        );
    }
}
