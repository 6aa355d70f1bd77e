//! `migsnap checkout`: write a snapshot's database into a new file.

use std::path::PathBuf;

use migsnap_store::ObjectId;
use serde::Serialize;

use super::output::{Paint, bytes};
use super::{CliError, Ctx, Status};
use crate::snapshots::restore;
use crate::snapshots::revspec;

/// Write the database as it was at a snapshot into a file, verified. An
/// existing database is overwritten (with --force) in place, under its
/// write lock; anything but a regular file is never replaced.
#[derive(Debug, clap::Args)]
pub struct CheckoutArgs {
    /// The snapshot: hash prefix, tag, database name, HEAD~N, @{N}.
    rev: String,
    /// The file to create.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Overwrite FILE if it exists, or delete leftover FILE-wal,
    /// FILE-shm, FILE-journal beside an absent FILE.
    #[arg(long)]
    force: bool,
}

/// `checkout --format json`: what was written, and from which snapshot.
#[derive(Serialize)]
struct CheckoutDocument {
    snapshot: ObjectId,
    path: PathBuf,
    bytes: u64,
    /// What the user should know (a snapshot flagged as failing its
    /// integrity check).
    warnings: Vec<String>,
    /// Always true: a checkout that fails verification is an error.
    verified: bool,
}

pub fn run(args: CheckoutArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let repo = ctx.open_repo()?;
    let id = revspec::resolve(&repo, &args.rev, None)?;
    let written = restore::checkout(
        &repo,
        id,
        &args.output,
        args.force,
        ctx.busy_timeout,
        ctx.out.progress().as_mut(),
    )?;
    for warning in &written.warnings {
        ctx.out.warn(&warning.to_string());
    }
    if ctx.out.is_json() {
        ctx.out.json(&CheckoutDocument {
            snapshot: id,
            path: crate::repo::absolute(&written.path),
            bytes: written.bytes,
            warnings: written.warnings.iter().map(ToString::to_string).collect(),
            verified: true,
        })?;
    } else {
        ctx.out.line(&format!(
            "checked out {} into {} ({}, verified)",
            ctx.out.paint(Paint::Id, &format!("{id:.12}")),
            written.path.display(),
            bytes(written.bytes)
        ))?;
    }
    Ok(Status::Ok)
}
