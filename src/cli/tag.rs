//! `migsnap tag` and `migsnap tags`.

use serde::Serialize;

use super::output::Paint;
use super::{CliError, Ctx, Status};
use crate::snapshots::revspec;
use crate::snapshots::tag;

/// Name a snapshot with a tag, or delete a tag with -d.
#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// The tag name.
    name: String,
    /// The snapshot to tag (default: HEAD).
    #[arg(conflicts_with = "delete")]
    rev: Option<String>,
    /// Delete the tag.
    #[arg(short, long)]
    delete: bool,
}

/// List tags.
#[derive(Debug, clap::Args)]
pub struct TagsArgs {}

pub fn run(args: TagArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    if args.delete {
        let deleted = tag::delete(&mut repo.store, &args.name)?;
        if ctx.out.is_json() {
            ctx.out.json(&deleted)?;
        } else if let Some(target) = deleted.target {
            ctx.out
                .line(&format!("Deleted tag '{}' (was {target:.12})", args.name))?;
        } else {
            ctx.out
                .line(&format!("Deleted damaged tag '{}'", args.name))?;
        }
        return Ok(Status::Ok);
    }
    let target = revspec::resolve(&repo, args.rev.as_deref().unwrap_or("HEAD"), None)?;
    let tagged = tag::create(&mut repo, &args.name, target)?;
    if ctx.out.is_json() {
        ctx.out.json(&tagged)?;
    } else {
        ctx.out.line(&format!(
            "Tagged {} as '{}'",
            ctx.out.paint(Paint::Id, &format!("{target:.12}")),
            args.name
        ))?;
    }
    Ok(Status::Ok)
}

/// `tags --format json`: every tag and its target.
#[derive(Serialize)]
struct TagsDocument<'a> {
    tags: &'a [tag::TagEntry],
}

pub fn run_list(_args: TagsArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let repo = ctx.open_repo()?;
    let tags = tag::list(&repo.store)?;
    if ctx.out.is_json() {
        ctx.out.json(&TagsDocument { tags: &tags })?;
    } else {
        for entry in &tags {
            ctx.out.line(&format!(
                "{}\t{}",
                ctx.out.paint(Paint::Id, &format!("{:.12}", entry.target)),
                entry.name
            ))?;
        }
    }
    Ok(Status::Ok)
}
