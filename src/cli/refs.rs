//! `migsnap refs`: list every ref, and remove ref rows that cannot be read.

use super::{CliError, Ctx, Status};

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
        let mut tx = repo.store.transaction()?;
        let deleted = tx.delete_broken_refs()?;
        tx.commit(&[], "")?;
        if ctx.out.is_json() {
            let rows: Vec<String> = deleted.iter().map(ToString::to_string).collect();
            ctx.out.json(&serde_json::json!({ "deleted": rows }))?;
        } else {
            for row in &deleted {
                ctx.out.line(&format!("deleted damaged {row}"))?;
            }
            ctx.out
                .line(&format!("{} damaged row(s) deleted", deleted.len()))?;
        }
        return Ok(Status::Ok);
    }
    let view = repo.store.view();
    let refs = view.refs("")?;
    let broken = view.broken_refs()?;
    if ctx.out.is_json() {
        let refs: Vec<_> = refs
            .iter()
            .map(|(name, id)| serde_json::json!({"name": name.as_str(), "target": id.to_string()}))
            .collect();
        let broken: Vec<String> = broken.iter().map(ToString::to_string).collect();
        ctx.out
            .json(&serde_json::json!({ "refs": refs, "damaged": broken }))?;
    } else {
        for (name, id) in &refs {
            ctx.out.line(&format!("{id} {name}"))?;
        }
        for row in &broken {
            ctx.out.line(&format!("damaged {row}"))?;
        }
    }
    Ok(if broken.is_empty() {
        Status::Ok
    } else {
        Status::Problems
    })
}
