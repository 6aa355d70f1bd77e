//! `migsnap show`: one snapshot's metadata and its schema as SQL (the exact
//! texts the database stored).

use super::log::json_entry;
use super::output::bytes;
use super::{CliError, Ctx, Status};
use crate::snapshots::log::{first_parent_log, snapshot_schema};
use crate::snapshots::revspec;
use crate::timestamp;

/// Show a snapshot's metadata and its schema as SQL.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The snapshot: hash prefix, tag, database name, HEAD~N, @{N}.
    #[arg(default_value = "HEAD")]
    rev: String,
}

pub fn run(args: ShowArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let repo = ctx.open_repo()?;
    let id = revspec::resolve(&repo, &args.rev, None)?;
    let view = repo.store.view();
    let entry = first_parent_log(view, id, Some(1))?
        .pop()
        .expect("holds because the revision resolved to a snapshot");
    let schema = snapshot_schema(view, id, &entry.snapshot)?;
    if ctx.out.is_json() {
        let mut value = json_entry(&entry);
        value["host"] = entry.snapshot.host.clone().into();
        value["tool"] = entry.snapshot.tool.clone().into();
        value["path"] = entry.recorded.path.clone().into();
        value["user_version"] = entry.recorded.meta.user_version.into();
        value["application_id"] = entry.recorded.meta.application_id.into();
        value["journal_mode"] = entry.recorded.meta.journal_mode.clone().into();
        value["schema"] =
            serde_json::to_value(&schema).expect("holds because the model is plain data");
        value["schema_sql"] = schema.exact_sql().into();
        value["findings"] = serde_json::to_value(schema.artefacts())
            .expect("holds because findings are plain data");
        ctx.out.json(&value)?;
        return Ok(Status::Ok);
    }
    let out = &ctx.out;
    out.line(&format!("snapshot {id}"))?;
    if !entry.refs.is_empty() {
        out.line(&format!("Refs:     {}", entry.refs.join(", ")))?;
    }
    for parent in &entry.snapshot.parents {
        out.line(&format!("Parent:   {parent}"))?;
    }
    out.line(&format!(
        "Database: {} ({})",
        entry.snapshot.database, entry.recorded.path
    ))?;
    out.line(&format!(
        "Date:     {}",
        timestamp::utc(entry.snapshot.time)
    ))?;
    out.line(&format!(
        "Host:     {}  ({})",
        entry.snapshot.host, entry.snapshot.tool
    ))?;
    match &entry.recorded.meta.alembic_versions {
        Some(v) if v.is_empty() => out.line("Alembic:  (alembic_version is empty)")?,
        Some(v) => out.line(&format!("Alembic:  {}", v.join(", ")))?,
        None => out.line("Alembic:  (no alembic_version table)")?,
    }
    if let Some(migrations) = &entry.recorded.meta.peewee_migrations {
        out.line(&format!(
            "Peewee:   {} migration(s) in migratehistory{}",
            migrations.len(),
            migrations
                .last()
                .map(|m| format!(", last {m}"))
                .unwrap_or_default()
        ))?;
    }
    out.line(&format!(
        "Meta:     user_version={} application_id={} journal_mode={}",
        entry.recorded.meta.user_version,
        entry.recorded.meta.application_id,
        entry.recorded.meta.journal_mode
    ))?;
    match &entry.image {
        Some(image) => out.line(&format!(
            "Data:     {} ({} pages of {} B){}",
            bytes(image.len()),
            image.block_count,
            image.block_size,
            if entry.forgotten {
                ", forgotten by retention"
            } else {
                ""
            }
        ))?,
        None => out.line("Data:     none (schema-only snapshot)")?,
    }
    if let Some(failure) = &entry.recorded.integrity {
        out.line(&format!("Integrity: FAILED, {}", failure.summary()))?;
        for problem in failure.problems.iter().skip(1) {
            out.line(&format!("          {problem}"))?;
        }
    }
    out.line(&format!(
        "Added:    {} in {} objects",
        bytes(entry.snapshot.added.bytes),
        entry.snapshot.added.objects
    ))?;
    out.line("")?;
    for line in entry.snapshot.message.lines() {
        out.line(&format!("    {line}"))?;
    }
    out.line("")?;
    for finding in schema.artefacts() {
        out.line(&format!(
            "Finding:  {}",
            super::verdict::finding_line(&finding)
        ))?;
    }
    out.line(schema.exact_sql().trim_end())?;
    Ok(Status::Ok)
}
