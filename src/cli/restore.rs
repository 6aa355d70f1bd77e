//! `migsnap restore`: put a snapshot's database back in place.

use std::path::Path;

use migsnap_store::ObjectId;
use serde::Serialize;

use super::output::{Paint, bytes};
use super::{CliError, Ctx, Status};
use crate::snapshots::restore::{Method, Rebuild, ReplaceOptions, restore};
use crate::snapshots::revspec;

/// Restore a database to a snapshot, in place. A safety snapshot of the
/// current state is taken first, read back, and its hash printed, so the
/// restore can be undone. The snapshot is rebuilt beside the target and
/// verified (page hashes, whole-image hash, quick_check), then its changed
/// pages are written into the live database under SQLite's write lock.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The snapshot: hash prefix, tag, database name, HEAD~N, @{N}.
    rev: String,
    /// Tracked database to restore into (default: the snapshot's own).
    db: Option<String>,
    /// Restore even if other processes have the database open (they wait
    /// on its lock, then see the restored content), or it is read-only.
    #[arg(long)]
    force: bool,
    /// Restore even when the current database cannot be snapshotted (it is
    /// corrupt, say); a raw copy of it is kept beside it instead.
    #[arg(long)]
    no_safety_snapshot: bool,
}

/// `restore --format json`: what was written, from which snapshot, and the
/// safety snapshot that undoes it.
#[derive(Serialize)]
struct RestoreDocument<'a> {
    snapshot: ObjectId,
    database: &'a str,
    path: &'a Path,
    bytes: u64,
    safety_snapshot: Option<ObjectId>,
    method: Method,
    rebuild: Rebuild,
    warnings: Vec<String>,
    /// Always true: a restore that fails verification is an error.
    verified: bool,
}

pub fn run(args: RestoreArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    let chosen = args
        .db
        .as_deref()
        .map(|arg| ctx.select_db(&mut repo, Some(arg)))
        .transpose()?;
    let id = revspec::resolve(&repo, &args.rev, chosen.as_ref())?;
    let db = match chosen {
        Some(db) => db,
        None => {
            let name = repo.store.view().read_snapshot(&id)?.database;
            ctx.select_db(&mut repo, Some(&name))?
        }
    };
    let options = ReplaceOptions {
        force: args.force,
        no_safety_snapshot: args.no_safety_snapshot,
        message: format!("safety snapshot before restoring {id:.12}"),
        busy_timeout: ctx.busy_timeout,
    };
    let written = restore(&mut repo, id, &db, &options, ctx.out.progress().as_mut())?;
    for warning in &written.warnings {
        ctx.out.warn(&warning.to_string());
    }
    if ctx.out.is_json() {
        ctx.out.json(&RestoreDocument {
            snapshot: id,
            database: &db.name,
            path: &written.path,
            bytes: written.bytes,
            safety_snapshot: written.safety,
            method: written.method,
            rebuild: written.rebuild,
            warnings: written.warnings.iter().map(ToString::to_string).collect(),
            verified: true,
        })?;
    } else {
        if let Some(safety) = written.safety {
            ctx.out.line(&format!(
                "saved the previous state as {} (undo with `migsnap restore {safety:.12}`)",
                ctx.out.paint(Paint::Id, &format!("{safety:.12}"))
            ))?;
        }
        ctx.out.line(&format!(
            "restored {} into {} ({}, verified)",
            ctx.out.paint(Paint::Id, &format!("{id:.12}")),
            written.path.display(),
            bytes(written.bytes)
        ))?;
    }
    Ok(Status::Ok)
}
