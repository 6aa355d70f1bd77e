//! `migsnap refs`: list every ref, and remove ref rows that cannot be read.

use super::{CliError, Ctx, Status};
use crate::snapshots::refs;

/// List every ref (heads, tags, references of replay chains) with its
/// target, and any damaged ref or reflog row (exit 1 when there is one).
/// With --delete-broken, delete the damaged rows instead, as `migsnap fsck`
/// lists them; the snapshots they named are kept until gc.
#[derive(Debug, clap::Args)]
pub struct RefsArgs {
    /// Delete ref and reflog rows that cannot be read.
    #[arg(long)]
    delete_broken: bool,
}

pub fn run(args: RefsArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    if args.delete_broken {
        let report = refs::delete_broken(&mut repo.store)?;
        if ctx.out.is_json() {
            ctx.out.json(&report)?;
        } else {
            for row in &report.deleted {
                ctx.out.line(&format!("deleted damaged {row}"))?;
            }
            ctx.out
                .line(&format!("{} damaged row(s) deleted", report.deleted.len()))?;
        }
        return Ok(Status::Ok);
    }
    let report = refs::list(&repo.store)?;
    if ctx.out.is_json() {
        ctx.out.json(&report)?;
    } else {
        for entry in &report.refs {
            ctx.out.line(&format!("{} {}", entry.target, entry.name))?;
        }
        for row in &report.damaged {
            ctx.out.line(&format!("damaged {row}"))?;
        }
    }
    Ok(if report.is_clean() {
        Status::Ok
    } else {
        Status::Problems
    })
}
