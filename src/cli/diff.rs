//! `migsnap diff`: the schema difference between two sides, each a
//! snapshot, a tracked database's live file, or any SQLite file; as text,
//! `--stat`, `--name-only`, JSON, or the SQL that turns one into the other.

use std::path::{Path, PathBuf};

use migsnap_store::ObjectStore;

use super::output::Paint;
use super::{CliError, Ctx, ErrorKind, Format, Status};
use crate::log::first_parent_log;
use crate::repo::Repo;
use crate::revision;
use crate::schema::Schema;
use crate::schema::diff::{Change, Op, SchemaDiff, diff};
use crate::schema::plan::plan_from_diff;
use crate::sqlite::Database;

/// Show how the schema differs between two snapshots or databases.
///
/// Each side is a revision (hash prefix, tag, HEAD~N, @{N}), `live` or a
/// tracked database's name (its live file, read-only), or the path of any
/// SQLite file. With no sides, compares HEAD with the live database; with
/// one, that side with the live database. Exits 0 when the schemas mean the
/// same, 1 when they differ. `--format sql` prints SQLite DDL that turns
/// the first side into the second.
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
}

/// One side, as resolved.
struct Side {
    label: String,
    schema: Schema,
    /// The tracked database a snapshot side belongs to: what `live` on the
    /// other side means when several are tracked.
    database: Option<String>,
}

pub fn run(args: DiffArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let (a, b) = match (args.a, args.b) {
        (None, _) => ("HEAD".to_owned(), "live".to_owned()),
        (Some(a), None) => (a, "live".to_owned()),
        (Some(a), Some(b)) => (a, b),
    };
    let mut repo = None;
    let old = load(&a, ctx, &mut repo, None)?;
    let new = load(&b, ctx, &mut repo, old.database.as_deref())?;
    let changes = diff(&old.schema, &new.schema);
    let status = if changes.is_empty() {
        Status::Ok
    } else {
        Status::Problems
    };
    if ctx.out.is_json() {
        let value = serde_json::json!({
            "a": old.label,
            "b": new.label,
            "changes": serde_json::to_value(&changes.changes)
                .expect("holds because changes are plain data"),
        });
        ctx.out.json(&value)?;
        return Ok(status);
    }
    if ctx.format == Format::Sql {
        let plan = plan_from_diff(&old.schema, &new.schema, &changes);
        let script = plan.to_script();
        if !script.is_empty() {
            ctx.out
                .line(&format!("-- migsnap diff: {} -> {}", old.label, new.label))?;
            ctx.out.line(script.trim_end())?;
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
    for change in &changes.changes {
        let (sigil, paint) = match change.op {
            Op::Added => ("+", Some(Paint::Good)),
            Op::Removed => ("-", Some(Paint::Bad)),
            Op::Changed => ("~", None),
        };
        let name = match (&change.table, change.kind.name()) {
            (Some(table), "column") => format!("{table}.{}", change.name),
            (Some(table), _) => format!("{} on {table}", change.name),
            (None, _) => change.name.clone(),
        };
        let head = format!("{sigil} {} {name}", change.kind.name().replace('_', " "));
        ctx.out.line(&match paint {
            Some(paint) => ctx.out.paint(paint, &head),
            None => head,
        })?;
        if change.op == Op::Changed {
            let shown = |value: &Option<String>| value.clone().unwrap_or_else(|| "(none)".into());
            for field in &change.fields {
                ctx.out.line(&format!(
                    "    {}: {} → {}",
                    field.field,
                    shown(&field.before),
                    shown(&field.after)
                ))?;
            }
        }
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
fn load(
    spec: &str,
    ctx: &Ctx,
    repo: &mut Option<Repo>,
    database: Option<&str>,
) -> Result<Side, CliError> {
    let path = Path::new(spec);
    if spec != "live" && path.is_file() && !looks_tracked(spec, ctx, repo) {
        return load_file(path, spec.to_owned(), ctx);
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
    if spec == "live" || repo.database(spec).is_some() {
        let name = if spec == "live" { database } else { Some(spec) };
        let tracked = repo.select(name)?;
        let label = format!("{} (live)", tracked.name);
        return load_file(&tracked.path, label, ctx);
    }
    let id = revision::resolve(repo, spec, None)?;
    let entry = first_parent_log(repo.store.view(), id, Some(1))?
        .pop()
        .expect("holds because the revision resolved to a snapshot");
    let blob = match repo.store.read(&entry.snapshot.schema)? {
        migsnap_store::Object::Blob(bytes) => bytes,
        other => {
            return Err(CliError::new(
                ErrorKind::Corrupt,
                format!(
                    "schema {} of snapshot {id:.12} is a {}",
                    entry.snapshot.schema,
                    other.kind().name()
                ),
            ));
        }
    };
    let schema = Schema::from_blob(&blob).map_err(|e| {
        CliError::new(
            ErrorKind::Corrupt,
            format!("schema {} of snapshot {id:.12}: {e}", entry.snapshot.schema),
        )
        .hint("run `migsnap fsck` to check the store")
    })?;
    Ok(Side {
        label: format!("{id:.12}"),
        schema,
        database: Some(entry.snapshot.database.clone()),
    })
}

/// Whether `spec` names a tracked database (which wins over a file of the
/// same name in the current directory). Without a store, nothing is tracked.
fn looks_tracked(spec: &str, ctx: &Ctx, repo: &mut Option<Repo>) -> bool {
    if repo.is_none() {
        *repo = ctx.open_repo().ok();
    }
    repo.as_ref().is_some_and(|r| r.database(spec).is_some())
}

fn load_file(path: &Path, label: String, ctx: &Ctx) -> Result<Side, CliError> {
    let path: PathBuf = path.to_path_buf();
    let mut db = Database::open(&path, ctx.busy_timeout)?;
    let capture = db.capture(None)?;
    Ok(Side {
        label,
        schema: capture.schema,
        database: None,
    })
}
