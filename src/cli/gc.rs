//! `migsnap gc`: delete unreachable objects.

use std::time::Duration;

use migsnap_store::gc::{self, GcOptions};
use serde::Serialize;

use super::output::bytes;
use super::{CliError, Ctx, Status};

/// Delete objects no ref, reflog entry (younger than the grace period) or
/// retained snapshot needs, and report the bytes freed. Safe to interrupt:
/// the deletion is one transaction.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Report what would be deleted, delete nothing.
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Keep reflog entries and forgotten data this long (`0s` = collect now).
    #[arg(long, value_name = "DURATION", default_value = "14days", value_parser = crate::duration::parse)]
    grace: Duration,
}

/// The JSON of `gc`: the store's report, its file sizes as two fields.
#[derive(Serialize)]
struct GcDocument {
    dry_run: bool,
    deleted_objects: u64,
    freed_bytes: u64,
    kept_objects: u64,
    expired_reflog_entries: u64,
    store_size_before: u64,
    store_size_after: u64,
}

pub fn run(args: GcArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    let options = GcOptions {
        grace_secs: i64::try_from(args.grace.as_secs()).unwrap_or(i64::MAX),
        dry_run: args.dry_run,
    };
    let report = gc::collect(&mut repo.store, options, ctx.out.progress().as_mut())?;
    if ctx.out.is_json() {
        ctx.out.json(&GcDocument {
            dry_run: args.dry_run,
            deleted_objects: report.deleted_objects,
            freed_bytes: report.freed_bytes,
            kept_objects: report.kept_objects,
            expired_reflog_entries: report.expired_reflog,
            store_size_before: report.file_size.0,
            store_size_after: report.file_size.1,
        })?;
    } else {
        let verb = if args.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        ctx.out.line(&format!(
            "{verb} {} objects ({}), kept {}; {} reflog entries expired; store file {} -> {}",
            report.deleted_objects,
            bytes(report.freed_bytes),
            report.kept_objects,
            report.expired_reflog,
            bytes(report.file_size.0),
            bytes(report.file_size.1),
        ))?;
    }
    Ok(Status::Ok)
}
