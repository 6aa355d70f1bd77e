//! `migsnap du`: where the store's space goes.

use super::output::{Paint, bytes};
use super::{CliError, Ctx, Status};
use crate::snapshots::usage::{self, UsageReport};
use crate::timestamp;

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
    let report = usage::usage(&repo, &selected)?;
    if ctx.out.is_json() {
        ctx.out.json(&report)?;
    } else {
        render(ctx, &report)?;
    }
    Ok(Status::Ok)
}

/// The report as text: the store, a table of snapshots, the dedup line.
fn render(ctx: &Ctx, report: &UsageReport) -> Result<(), CliError> {
    let out = &ctx.out;
    let stored = report.stored_bytes;
    out.line(&format!(
        "store: {} file, {} objects, {} stored",
        bytes(report.store_file_bytes),
        report.objects,
        bytes(stored)
    ))?;
    if report.snapshots.is_empty() {
        out.note("no snapshots yet; take one with `migsnap snapshot`");
    } else {
        out.line("")?;
        let width = report
            .snapshots
            .iter()
            .map(|s| s.database.len())
            .max()
            .unwrap_or(0)
            .max("Database".len());
        out.line(&format!(
            "{:<12}  {:<23}  {:<width$}  {:>11}  {:>10}  {:>7}  Data",
            "ID", "Time", "Database", "Size", "Added", "Objects"
        ))?;
        for s in &report.snapshots {
            let size = match (s.logical_size, s.schema_only) {
                (Some(size), _) => bytes(size),
                (None, true) => "schema only".to_owned(),
                (None, false) => "-".to_owned(),
            };
            let data = if s.data_forgotten { "forgotten" } else { "" };
            // Pad before painting: escape codes would count towards the width.
            let id = out.paint(Paint::Id, &format!("{:.12}", s.id));
            let line = format!(
                "{id}  {:<23}  {:<width$}  {size:>11}  {:>10}  {:>7}  {data}",
                timestamp::utc(s.time),
                s.database,
                bytes(s.added_bytes),
                s.added_objects,
            );
            out.line(line.trim_end())?;
        }
    }
    out.line("")?;
    let ratio = report
        .dedup_ratio
        .map_or_else(|| "-".to_owned(), |r| format!("{r:.1}x"));
    out.line(&format!(
        "logical size of the snapshots in the store that hold data: {}; stored: {}; {ratio} smaller (dedup and compression)",
        bytes(report.logical_total),
        bytes(stored)
    ))?;
    Ok(())
}
