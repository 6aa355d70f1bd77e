//! `migsnap push`.

use super::output::{Paint, bytes};
use super::{CliError, Ctx, Status};
use crate::remotes::push;
use migsnap_remote::Outcome;

/// Send snapshots to a remote: uploads, as packs, only the objects the
/// remote lacks, then moves the remote's refs with conditional writes. A ref
/// that is not a fast-forward of the remote's is refused (fetch first) unless
/// --force.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The remote (default: `origin`, or the only one).
    remote: Option<String>,
    /// Refs to push: a database name (its head), a tag, or a ref such as
    /// `heads/webui` (default: every head and tag).
    refs: Vec<String>,
    /// Replace remote refs that are not ancestors of the local ones (still
    /// only if no one else pushed meanwhile).
    #[arg(long)]
    force: bool,
}

pub fn run(args: PushArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    let pushed = push::push(
        &mut repo,
        args.remote.as_deref(),
        &args.refs,
        args.force,
        ctx.out.progress().as_mut(),
    )?;
    if ctx.out.is_json() {
        ctx.out.json(&pushed)?;
        return Ok(Status::Ok);
    }
    let report = &pushed.report;
    ctx.out
        .line(&format!("To {} ({})", pushed.remote, pushed.url))?;
    for entry in &report.refs {
        let what = match entry.outcome {
            Outcome::Created => "[new]".to_owned(),
            Outcome::FastForward => format!(
                "{:.12}..",
                entry
                    .old
                    .expect("holds because a fast-forward has an old value")
            ),
            Outcome::Forced => format!(
                "+ {:.12}...",
                entry
                    .old
                    .expect("holds because a forced update has an old value")
            ),
            Outcome::UpToDate => "[up to date]".to_owned(),
        };
        ctx.out.line(&format!(
            " {what} {} {}",
            ctx.out.paint(Paint::Id, &format!("{:.12}", entry.new)),
            entry.name
        ))?;
    }
    ctx.out.line(&format!(
        "uploaded {} in {} pack(s) ({} object(s); {} already there)",
        bytes(report.bytes),
        report.packs,
        report.objects,
        report.objects_present
    ))?;
    Ok(Status::Ok)
}
