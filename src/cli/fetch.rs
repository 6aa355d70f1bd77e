//! `migsnap fetch`.

use super::output::{Paint, bytes};
use super::{CliError, Ctx, Status};
use crate::remotes::TRACKING_PREFIX;
use crate::remotes::fetch::{self, Movement};
use migsnap_store::ObjectId;

/// Bring a remote's snapshots into this store: downloads the packs holding
/// objects the store lacks, re-hashes every object, and imports them in one
/// transaction with the remote-tracking refs (`remotes/NAME/…`, named in
/// REVs as `NAME/heads/DB` or `NAME/DB`).
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// The remote (default: `origin`, or the only one).
    remote: Option<String>,
}

pub fn run(args: FetchArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    let fetched = fetch::fetch(
        &mut repo,
        args.remote.as_deref(),
        ctx.out.progress().as_mut(),
    )?;
    if ctx.out.is_json() {
        ctx.out.json(&fetched)?;
        return Ok(Status::Ok);
    }
    ctx.out
        .line(&format!("From {} ({})", fetched.remote, fetched.url))?;
    for update in &fetched.updates {
        let id = |id: &ObjectId| ctx.out.paint(Paint::Id, &format!("{id:.12}"));
        let shown = update
            .name
            .as_str()
            .strip_prefix(TRACKING_PREFIX)
            .unwrap_or(update.name.as_str());
        // git's marks: `*` new, `=` unchanged, ` ` fast-forward, `+` forced,
        // and `!` for a ref that went back in its own history.
        let line = match (update.movement, update.old) {
            (Movement::New, _) | (_, None) => {
                format!(" * [new]        {} {shown}", id(&update.new))
            }
            (Movement::Unchanged, _) => format!(" = [up to date] {} {shown}", id(&update.new)),
            (Movement::FastForward, Some(old)) => {
                format!("   {}..{} {shown}", id(&old), id(&update.new))
            }
            (Movement::Forced, Some(old)) => {
                format!(
                    " + {}...{} {shown} (forced update)",
                    id(&old),
                    id(&update.new)
                )
            }
            (Movement::RolledBack, Some(old)) => {
                ctx.out.warn(&format!(
                    "{shown} moved back from {old:.12} to {:.12}, an older snapshot of its history: a `push --force`, or someone who can write the remote put an old ref back; look at `migsnap log {shown}` before restoring from it",
                    update.new
                ));
                format!(" ! {}..{} {shown} (rolled back)", id(&old), id(&update.new))
            }
        };
        ctx.out.line(&line)?;
    }
    ctx.out.line(&format!(
        "downloaded {} in {} pack(s) ({} new object(s))",
        bytes(fetched.report.bytes),
        fetched.report.packs,
        fetched.report.objects
    ))?;
    Ok(Status::Ok)
}
