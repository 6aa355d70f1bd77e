//! `migsnap diff`: the schema difference between two sides, each a
//! snapshot, a tracked database's live file, or any SQLite file; as text,
//! `--stat`, `--name-only`, JSON, or the SQL that turns one into the other.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::output::{Paint, diff_lines};
use super::{CliError, Ctx, ErrorKind, Format, Status};
use crate::migrations::side::Side as Source;
use crate::repo::Repo;
use crate::schema::diff::{Change, Op, SchemaDiff, diff};
use crate::schema::plan::plan_from_diff;
use crate::schema::{Schema, alembic};
use crate::snapshots::datadiff;
use crate::snapshots::restore;

/// Show how the schema differs between two snapshots or databases.
///
/// Each side is a revision (hash prefix, tag, HEAD~N, @{N}), `live` or a
/// tracked database's name (its live file, read-only), or the path of any
/// SQLite file. With no sides, compares HEAD with the live database; with
/// one, that side with the live database. Exits 0 when the schemas mean the
/// same, 1 when they differ. `--format sql` prints SQLite DDL that turns
/// the first side into the second; `--format alembic` prints the same as
/// the `upgrade()` and `downgrade()` of an Alembic revision.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The old side (default: HEAD).
    a: Option<String>,
    /// The new side (default: live).
    b: Option<String>,
    /// Only count the changes per object.
    #[arg(long, conflicts_with = "name_only")]
    stat: bool,
    /// Only name the changed objects, one per line.
    #[arg(long)]
    name_only: bool,
    /// Compare the data instead of the schema: per table, row counts and rows
    /// added, removed and changed, keyed by primary key or rowid. Snapshot
    /// sides are checked out (verified) to temporary files first.
    #[arg(long, conflicts_with_all = ["stat", "name_only"])]
    data: bool,
    /// With --data, print the differing rows themselves.
    #[arg(long, requires = "data")]
    rows: bool,
    /// With --rows, at most this many rows per table.
    #[arg(long, requires = "rows", default_value_t = 100)]
    limit: usize,
}

/// One side's schema, with the label it is shown under.
struct Side {
    label: String,
    schema: Schema,
}

/// The JSON of `diff`: the two sides' labels and the schema changes.
#[derive(Serialize)]
struct DiffDocument<'a> {
    a: &'a str,
    b: &'a str,
    changes: &'a [Change],
}

/// The JSON of `diff --data`: the two sides' labels and each table's rows.
#[derive(Serialize)]
struct DataDiffDocument<'a> {
    a: &'a str,
    b: &'a str,
    tables: &'a [datadiff::TableDiff],
}

pub fn run(args: DiffArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let (a, b) = match (args.a, args.b) {
        (None, _) => ("HEAD".to_owned(), "live".to_owned()),
        (Some(a), None) => (a, "live".to_owned()),
        (Some(a), Some(b)) => (a, b),
    };
    let mut repo = None;
    let old_source = resolve(&a, ctx, &mut repo, None)?;
    let new_source = resolve(&b, ctx, &mut repo, old_source.database())?;
    if args.data {
        let options = datadiff::Options {
            rows: args.rows,
            limit: args.limit,
        };
        return data(ctx, repo.as_ref(), &old_source, &new_source, options);
    }
    let old = schema_side(&old_source, ctx, repo.as_ref())?;
    let new = schema_side(&new_source, ctx, repo.as_ref())?;
    let changes = diff(&old.schema, &new.schema);
    let status = if changes.is_empty() {
        Status::Ok
    } else {
        Status::Problems
    };
    if ctx.out.is_json() {
        ctx.out.json(&DiffDocument {
            a: &old.label,
            b: &new.label,
            changes: &changes.changes,
        })?;
        return Ok(status);
    }
    if ctx.out.format() == Format::Sql {
        let plan = plan_from_diff(&old.schema, &new.schema, &changes);
        let script = plan.to_script();
        if !script.is_empty() {
            ctx.out
                .line(&format!("-- migsnap diff: {} -> {}", old.label, new.label))?;
            ctx.out.line(script.trim_end())?;
        }
        return Ok(status);
    }
    if ctx.out.format() == Format::Alembic {
        let operations = alembic::operations(&old.schema, &new.schema);
        if !operations.is_empty() {
            ctx.out
                .line(&format!("# migsnap diff: {} -> {}", old.label, new.label))?;
            ctx.out.line(operations.to_module().trim_end())?;
        }
        return Ok(status);
    }
    if args.name_only {
        let mut seen = Vec::new();
        for change in &changes.changes {
            let name = qualified(change);
            if !seen.contains(&name) {
                ctx.out.line(&name)?;
                seen.push(name);
            }
        }
    } else if args.stat {
        stat(ctx, &changes)?;
    } else {
        text(ctx, &changes)?;
    }
    Ok(status)
}

/// `kind:name`, with `table.` before a column: the object syntax of
/// `log --changed`.
fn qualified(change: &Change) -> String {
    match (&change.table, change.kind.name()) {
        (Some(table), "column") => format!("column:{table}.{}", change.name),
        (Some(_), "index" | "trigger") => format!("{}:{}", change.kind.name(), change.name),
        (Some(table), kind) => format!("{kind}:{table}.{}", change.name),
        (None, kind) => format!("{kind}:{}", change.name),
    }
}

fn text(ctx: &Ctx, changes: &SchemaDiff) -> Result<(), CliError> {
    for line in diff_lines(&ctx.out, changes, "") {
        ctx.out.line(&line)?;
    }
    Ok(())
}

/// Per top-level object (table, index, view, trigger): how many changes
/// of each sort, then the totals.
fn stat(ctx: &Ctx, changes: &SchemaDiff) -> Result<(), CliError> {
    let mut rows: Vec<(String, [usize; 3])> = Vec::new();
    let mut totals = [0usize; 3];
    for change in &changes.changes {
        let object = match (&change.table, change.kind.name()) {
            (Some(_), "index" | "trigger") | (None, _) => {
                format!("{} {}", change.kind.name(), change.name)
            }
            (Some(table), _) => format!("table {table}"),
        };
        let slot = match change.op {
            Op::Added => 0,
            Op::Removed => 1,
            Op::Changed => 2,
        };
        totals[slot] += 1;
        match rows.iter_mut().find(|(name, _)| *name == object) {
            Some((_, counts)) => counts[slot] += 1,
            None => {
                let mut counts = [0; 3];
                counts[slot] = 1;
                rows.push((object, counts));
            }
        }
    }
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, [added, removed, changed]) in &rows {
        let marks = format!(
            "{}{}{}",
            ctx.out.paint(Paint::Good, &"+".repeat(*added)),
            ctx.out.paint(Paint::Bad, &"-".repeat(*removed)),
            "~".repeat(*changed)
        );
        ctx.out.line(&format!(
            " {name:<width$} | {:>3} {marks}",
            added + removed + changed
        ))?;
    }
    if !rows.is_empty() {
        ctx.out.line(&format!(
            " {} objects: {} added, {} removed, {} changed",
            rows.len(),
            totals[0],
            totals[1],
            totals[2]
        ))?;
    }
    Ok(())
}

/// Resolves one side: `live` or a tracked name (its live file), an
/// existing file, else a revision.
fn resolve(
    spec: &str,
    ctx: &Ctx,
    repo: &mut Option<Repo>,
    database: Option<&str>,
) -> Result<Source, CliError> {
    let path = Path::new(spec);
    if spec != "live" && path.is_file() && !looks_tracked(spec, ctx, repo) {
        return Ok(Source::File {
            path: path.to_path_buf(),
            label: spec.to_owned(),
        });
    }
    if repo.is_none() {
        match ctx.open_repo() {
            Ok(opened) => *repo = Some(opened),
            Err(_) if spec != "live" && !path.exists() => {
                return Err(CliError::new(
                    ErrorKind::Input,
                    format!("'{spec}' is not a file, and there is no store to look it up in"),
                )
                .hint("outside a store, give two SQLite files"));
            }
            Err(e) => return Err(e),
        }
    }
    let repo = repo.as_ref().expect("holds because it was just opened");
    Ok(Source::resolve(repo, spec, database)?)
}

/// The schema of one side.
fn schema_side(source: &Source, ctx: &Ctx, repo: Option<&Repo>) -> Result<Side, CliError> {
    Ok(Side {
        label: source.label(),
        schema: source.schema(repo, ctx.busy_timeout)?.schema,
    })
}

/// `diff --data`: compares the rows of two sides table by table.
fn data(
    ctx: &Ctx,
    repo: Option<&Repo>,
    old: &Source,
    new: &Source,
    options: datadiff::Options,
) -> Result<Status, CliError> {
    let scratch = tempfile::tempdir()?;
    let materialise = |source: &Source, name: &str| -> Result<PathBuf, CliError> {
        match source {
            Source::File { path, .. } => Ok(path.clone()),
            Source::Snapshot { id, .. } => {
                let repo = repo.expect("holds because a snapshot side came from the store");
                let out = scratch.path().join(name);
                restore::checkout(
                    repo,
                    *id,
                    &out,
                    false,
                    ctx.busy_timeout,
                    ctx.out.progress().as_mut(),
                )?;
                Ok(out)
            }
        }
    };
    let result = datadiff::compare(
        &materialise(old, "a.db")?,
        &materialise(new, "b.db")?,
        options,
    )?;
    let status = if result.has_changes() {
        Status::Problems
    } else {
        Status::Ok
    };
    if ctx.out.is_json() {
        ctx.out.json(&DataDiffDocument {
            a: &old.label(),
            b: &new.label(),
            tables: &result.tables,
        })?;
        return Ok(status);
    }
    for table in result.tables.iter().filter(|t| t.has_changes()) {
        let presence = match table.presence {
            datadiff::Presence::Both => String::new(),
            datadiff::Presence::OnlyA => format!(" (only in {})", old.label()),
            datadiff::Presence::OnlyB => format!(" (only in {})", new.label()),
        };
        ctx.out.line(&format!(
            "{}{presence}: {} → {} rows, {} added, {} removed, {} changed",
            table.name, table.rows_a, table.rows_b, table.added, table.removed, table.changed
        ))?;
        for row in &table.rows {
            ctx.out.line(&format!(
                "    {}",
                serde_json::to_string(row).expect("holds because rows are plain data")
            ))?;
        }
        if table.truncated {
            ctx.out.line(&format!(
                "    … more rows (raise --limit, now {})",
                options.limit
            ))?;
        }
    }
    Ok(status)
}

/// Whether `spec` names a tracked database (which wins over a file of the
/// same name in the current directory). Without a store, nothing is tracked.
fn looks_tracked(spec: &str, ctx: &Ctx, repo: &mut Option<Repo>) -> bool {
    if repo.is_none() {
        *repo = ctx.open_repo().ok();
    }
    repo.as_ref().is_some_and(|r| r.database(spec).is_some())
}
