//! `migsnap fetch`.

use super::output::{Paint, bytes};
use super::{CliError, Ctx, Status};
use crate::remotes::fetch;

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
    for found in &fetched.report.refs {
        ctx.out.line(&format!(
            " {} {}/{}",
            ctx.out.paint(Paint::Id, &format!("{:.12}", found.target)),
            fetched.remote,
            found.name
        ))?;
    }
    ctx.out.line(&format!(
        "downloaded {} in {} pack(s) ({} new object(s))",
        bytes(fetched.report.bytes),
        fetched.report.packs,
        fetched.report.objects
    ))?;
    Ok(Status::Ok)
}
