//! `migsnap tag` and `migsnap tags`.

use super::output::Paint;
use super::{CliError, Ctx, Status};
use crate::snapshots::revspec;
use crate::snapshots::tag::{self, TagError};

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
        let target = match tag::delete(&mut repo.store, &args.name) {
            // A tag whose row is damaged has no target to show; deleting the
            // row is how it is repaired.
            Err(TagError::Store(migsnap_store::Error::BadRef { .. })) => {
                let name = migsnap_store::RefName::new(format!("tags/{}", args.name))
                    .expect("holds because tag::delete found a row by this name");
                let mut tx = repo.store.transaction()?;
                tx.delete_broken_ref(&name)?;
                tx.commit(&[], "")?;
                if ctx.out.is_json() {
                    ctx.out
                        .json(&serde_json::json!({"deleted": args.name, "target": null}))?;
                } else {
                    ctx.out
                        .line(&format!("Deleted damaged tag '{}'", args.name))?;
                }
                return Ok(Status::Ok);
            }
            other => other?,
        };
        if ctx.out.is_json() {
            ctx.out
                .json(&serde_json::json!({"deleted": args.name, "target": target.to_string()}))?;
        } else {
            ctx.out
                .line(&format!("Deleted tag '{}' (was {target:.12})", args.name))?;
        }
        return Ok(Status::Ok);
    }
    let target = revspec::resolve(&repo, args.rev.as_deref().unwrap_or("HEAD"), None)?;
    tag::create(&mut repo, &args.name, target)?;
    if ctx.out.is_json() {
        ctx.out
            .json(&serde_json::json!({"tag": args.name, "target": target.to_string()}))?;
    } else {
        ctx.out.line(&format!(
            "Tagged {} as '{}'",
            ctx.out.paint(Paint::Id, &format!("{target:.12}")),
            args.name
        ))?;
    }
    Ok(Status::Ok)
}

pub fn run_list(_args: TagsArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let repo = ctx.open_repo()?;
    let tags = tag::list(&repo.store)?;
    if ctx.out.is_json() {
        let list: Vec<_> = tags
            .iter()
            .map(|(name, id)| serde_json::json!({"name": name, "target": id.to_string()}))
            .collect();
        ctx.out.json(&serde_json::json!({ "tags": list }))?;
    } else {
        for (name, id) in &tags {
            ctx.out.line(&format!(
                "{}\t{name}",
                ctx.out.paint(Paint::Id, &format!("{id:.12}"))
            ))?;
        }
    }
    Ok(Status::Ok)
}
