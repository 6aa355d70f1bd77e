//! `migsnap gc`: delete unreachable objects and pack loose ones.

use std::time::Duration;

use migsnap_store::gc::{self, GcOptions};
use serde::Serialize;

use super::output::bytes;
use super::{CliError, Ctx, Status};
use crate::remotes::gc as remote_gc;

/// Delete objects no ref, reflog entry (younger than the grace period) or
/// retained snapshot needs, recompress what snapshots wrote fast (loose
/// packs) into compact packs, and report both. Safe to interrupt: it is one
/// transaction.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Report what would be deleted, delete nothing.
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Keep reflog entries and forgotten data this long (`0s` = collect
    /// now; default 14days). With --remote: keep unneeded packs younger than
    /// this (default 1h).
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    grace: Option<Duration>,
    /// Collect remote NAME instead of the store: delete the packs no remote
    /// ref needs, under the remote's exclusive lock.
    #[arg(long, value_name = "NAME")]
    remote: Option<String>,
    /// With --remote: delete every lock on the remote first, also fresh ones
    /// (only when no other migsnap uses the remote).
    #[arg(long, requires = "remote")]
    break_lock: bool,
}

/// The grace period of the store's gc when none is given.
const STORE_GRACE: Duration = Duration::from_secs(14 * 24 * 3600);
/// The grace period of a remote gc when none is given.
const REMOTE_GRACE: Duration = Duration::from_secs(3600);

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
    packed: PackedDocument,
}

/// The packing part of `gc`'s JSON.
#[derive(Serialize)]
struct PackedDocument {
    loose_packs: u64,
    packed_packs: u64,
    objects: u64,
    bytes_before: u64,
    bytes_after: u64,
    trained_dictionary: bool,
}

pub fn run(args: GcArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    if let Some(remote) = &args.remote {
        let options = migsnap_remote::GcOptions {
            grace: args.grace.unwrap_or(REMOTE_GRACE),
            dry_run: args.dry_run,
            break_locks: args.break_lock,
        };
        return run_remote(&repo, remote, options, ctx);
    }
    let grace = args.grace.unwrap_or(STORE_GRACE);
    let options = GcOptions {
        grace_secs: i64::try_from(grace.as_secs()).unwrap_or(i64::MAX),
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
            packed: PackedDocument {
                loose_packs: report.packed.loose_packs,
                packed_packs: report.packed.packed_packs,
                objects: report.packed.objects,
                bytes_before: report.packed.bytes_before,
                bytes_after: report.packed.bytes_after,
                trained_dictionary: report.packed.trained_dictionary,
            },
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
        let packed = &report.packed;
        if packed.objects > 0 {
            let verb = if args.dry_run { "would pack" } else { "packed" };
            ctx.out.line(&format!(
                "{verb} {} objects from {} loose packs into {} ({} -> {}){}",
                packed.objects,
                packed.loose_packs,
                packed.packed_packs,
                bytes(packed.bytes_before),
                bytes(packed.bytes_after),
                if packed.trained_dictionary {
                    ", with a new dictionary"
                } else {
                    ""
                },
            ))?;
        }
    }
    Ok(Status::Ok)
}

/// `gc --remote NAME`.
fn run_remote(
    repo: &crate::repo::Repo,
    remote: &str,
    options: migsnap_remote::GcOptions,
    ctx: &mut Ctx,
) -> Result<Status, CliError> {
    let collected = remote_gc::collect(repo, Some(remote), options, ctx.out.progress().as_mut())?;
    if ctx.out.is_json() {
        ctx.out.json(&collected)?;
        return Ok(Status::Ok);
    }
    let report = &collected.report;
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    ctx.out.line(&format!(
        "{} ({}): {verb} {} of {} pack(s), {} pack(s) without an index and {} index(es) without a pack; kept {} needed, {} younger than the grace period; {verb} {} forgotten mark(s)",
        collected.remote,
        collected.url,
        report.deleted_packs,
        report.packs,
        report.deleted_unindexed,
        report.deleted_packless,
        report.kept_needed,
        report.kept_young,
        report.deleted_marks,
    ))?;
    if report.repacked_packs > 0 {
        let verb = if report.dry_run {
            "would repack"
        } else {
            "repacked"
        };
        ctx.out.line(&format!(
            "{verb} {} pack(s) needed in part into {} ({} uploaded)",
            report.repacked_packs,
            report.written_packs,
            bytes(report.uploaded_bytes)
        ))?;
    }
    ctx.out.line(&format!(
        "{} freed",
        bytes(report.freed_bytes.saturating_sub(report.uploaded_bytes))
    ))?;
    Ok(Status::Ok)
}
