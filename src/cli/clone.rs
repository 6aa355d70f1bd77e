//! `migsnap clone`.

use std::path::PathBuf;

use super::output::{Paint, bytes};
use super::{CliError, Ctx, Status};
use crate::config::remote::RemoteConfig;
use crate::remotes::fetch;

/// Create a store from a remote, for a new machine: DIR/.migsnap gets every
/// snapshot the remote's refs need (each object re-hashed), the remote's refs
/// as its own, and the remote as `origin`. Then `migsnap checkout REV -o
/// FILE` or `restore` bring a database back; or, in one step, `--checkout
/// REV -o FILE` writes it while the pages download.
#[derive(Debug, clap::Args)]
pub struct CloneArgs {
    /// `s3://BUCKET/PREFIX` or `file:///PATH`.
    url: String,
    /// The directory to create the store in (default: the URL's last part).
    dir: Option<PathBuf>,
    /// Endpoint of an S3-compatible server (plain http only on loopback).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// The S3 region.
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// The key file of an encrypted remote (copied into the new store).
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Also write this snapshot's database into FILE (`-o`), verified as
    /// `checkout` does: a ref of the remote (`heads/webui`) is written as
    /// its pages download; any other revision after the download.
    #[arg(long, value_name = "REV", requires = "output")]
    checkout: Option<String>,
    /// The file `--checkout` creates (relative to the current directory).
    #[arg(short, long, value_name = "FILE", requires = "checkout")]
    output: Option<PathBuf>,
}

pub fn run(args: CloneArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let settings = RemoteConfig {
        url: args.url,
        endpoint: args.endpoint,
        region: args.region,
        key_file: None,
    };
    let checkout = args
        .checkout
        .zip(args.output)
        .map(|(rev, out)| fetch::CloneCheckout { rev, out });
    let cloned = fetch::clone(
        settings,
        args.key_file.as_deref(),
        args.dir.as_deref(),
        &ctx.cwd,
        checkout.as_ref(),
        ctx.out.progress().as_mut(),
    )?;
    for warning in cloned.checkout.iter().flat_map(|c| &c.warnings) {
        ctx.out.warn(warning);
    }
    if ctx.out.is_json() {
        ctx.out.json(&cloned)?;
        return Ok(Status::Ok);
    }
    ctx.out.line(&format!(
        "cloned {} into {}: {} ref(s), {} in {} pack(s)",
        cloned.url,
        cloned.dir.display(),
        cloned.report.refs.len(),
        bytes(cloned.report.bytes),
        cloned.report.packs
    ))?;
    if let Some(written) = &cloned.checkout {
        ctx.out.line(&format!(
            "checked out {} into {} ({}, verified)",
            ctx.out
                .paint(Paint::Id, &format!("{:.12}", written.snapshot)),
            written.path.display(),
            bytes(written.bytes)
        ))?;
    }
    Ok(Status::Ok)
}
