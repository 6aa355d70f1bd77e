//! `migsnap du`: where the store's space goes.

use std::collections::HashSet;

use migsnap_store::image::read_image;
use migsnap_store::{ObjectId, View};

use super::output::{Paint, bytes, time, time_rfc3339};
use super::{CliError, Ctx, Status};
use crate::log::{LogEntry, first_parent_log, first_parents};

/// Show the store's size, and for each snapshot (newest first) its logical
/// size, what it added to the store and whether its data was forgotten. The
/// dedup ratio compares the logical size of every snapshot in the store that
/// still holds its data with the bytes the store keeps.
#[derive(Debug, clap::Args)]
pub struct DuArgs {
    /// Tracked database name or path (default: every tracked database).
    db: Option<String>,
}

/// Runs `migsnap du`.
pub fn run(args: DuArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    let selected = match args.db.as_deref() {
        Some(arg) => vec![ctx.select_db(&mut repo, Some(arg))?],
        None => repo.databases().cloned().collect(),
    };
    let view = repo.store.view();
    let file_size = view.file_size()?;
    // Objects are stored in compressed packs; see View::storage.
    let storage = view.storage()?;
    let (objects, stored) = (storage.objects, storage.pack_bytes);

    let mut listed: Vec<LogEntry> = Vec::new();
    let mut seen = HashSet::new();
    for db in &selected {
        if let Some(head) = view.find_ref(&db.head_ref())? {
            walk(view, head, &mut seen, &mut listed)?;
        }
    }
    // Stable: snapshots of the same second stay in history order.
    listed.sort_by_key(|e| std::cmp::Reverse(e.snapshot.time));

    // The ratio is about the whole store, whose bytes every database shares,
    // so it counts every line of history, listed or not.
    let roots = view.refs("heads/")?.into_iter().chain(view.refs("tags/")?);
    let logical_total = held_total(view, roots.map(|(_, id)| id))?;
    let dedup_ratio = (stored > 0).then(|| logical_total as f64 / stored as f64);

    if ctx.out.is_json() {
        let snapshots: Vec<_> = listed
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.id.to_string(),
                    "database": e.snapshot.database,
                    "time": time_rfc3339(e.snapshot.time),
                    "logical_size": e.image.as_ref().map(|i| i.len()),
                    "added_bytes": e.snapshot.added.bytes,
                    "added_objects": e.snapshot.added.objects,
                    "data_forgotten": e.forgotten,
                })
            })
            .collect();
        ctx.out.json(&serde_json::json!({
            "store_file_bytes": file_size,
            "objects": objects,
            "stored_bytes": stored,
            "snapshots": snapshots,
            "logical_total": logical_total,
            "dedup_ratio": dedup_ratio,
        }))?;
        return Ok(Status::Ok);
    }

    let out = &ctx.out;
    out.line(&format!(
        "store: {} file, {objects} objects, {} stored",
        bytes(file_size),
        bytes(stored)
    ))?;
    if listed.is_empty() {
        out.note("no snapshots yet; take one with `migsnap snapshot`");
    } else {
        out.line("")?;
        let width = listed
            .iter()
            .map(|e| e.snapshot.database.len())
            .max()
            .unwrap_or(0)
            .max("Database".len());
        out.line(&format!(
            "{:<12}  {:<23}  {:<width$}  {:>11}  {:>10}  {:>7}  Data",
            "ID", "Time", "Database", "Size", "Added", "Objects"
        ))?;
        for e in &listed {
            let size = match (&e.image, e.snapshot.image) {
                (Some(image), _) => bytes(image.len()),
                (None, None) => "schema only".to_owned(),
                (None, Some(_)) => "-".to_owned(),
            };
            let data = if e.forgotten { "forgotten" } else { "" };
            // Pad before painting: escape codes would count towards the width.
            let id = out.paint(Paint::Id, &format!("{:.12}", e.id));
            let line = format!(
                "{id}  {:<23}  {:<width$}  {size:>11}  {:>10}  {:>7}  {data}",
                time(e.snapshot.time),
                e.snapshot.database,
                bytes(e.snapshot.added.bytes),
                e.snapshot.added.objects,
            );
            out.line(line.trim_end())?;
        }
    }
    out.line("")?;
    let ratio = dedup_ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}x"));
    out.line(&format!(
        "logical size of the snapshots in the store that hold data: {}; stored: {}; {ratio} smaller (dedup and compression)",
        bytes(logical_total),
        bytes(stored)
    ))?;
    Ok(Status::Ok)
}

/// Appends the first-parent history from `start` to `out`, up to a snapshot
/// already in `seen` (listed from another database).
fn walk(
    view: View<'_>,
    start: ObjectId,
    seen: &mut HashSet<ObjectId>,
    out: &mut Vec<LogEntry>,
) -> Result<(), CliError> {
    let fresh = first_parent_log(view, start, None)?
        .into_iter()
        .take_while(|e| seen.insert(e.id));
    out.extend(fresh);
    Ok(())
}

/// The logical size of every snapshot on the first-parent lines from `roots`
/// whose data the store still holds, each counted once. Walks snapshot
/// objects only, and stops where a line joins one already walked, because a
/// tag usually points into a head's history.
fn held_total(view: View<'_>, roots: impl Iterator<Item = ObjectId>) -> Result<u64, CliError> {
    let forgotten: HashSet<ObjectId> = view.forgotten()?.into_iter().map(|(id, _)| id).collect();
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for root in roots {
        for step in first_parents(view, Some(root)).until_seen(&mut seen) {
            let (id, snapshot) = step?;
            if let (Some(image), false) = (snapshot.image, forgotten.contains(&id)) {
                total += read_image(view, &image)?.len();
            }
        }
    }
    Ok(total)
}
