//! `migsnap clone`.

use std::path::PathBuf;

use super::output::bytes;
use super::{CliError, Ctx, Status};
use crate::config::remote::RemoteConfig;
use crate::remotes::fetch;

/// Create a store from a remote, for a new machine: DIR/.migsnap gets every
/// snapshot the remote's refs need (each object re-hashed), the remote's refs
/// as its own, and the remote as `origin`. Then `migsnap checkout REV -o
/// FILE` or `restore` bring a database back.
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
}

pub fn run(args: CloneArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let settings = RemoteConfig {
        url: args.url,
        endpoint: args.endpoint,
        region: args.region,
        key_file: None,
    };
    let cloned = fetch::clone(
        settings,
        args.key_file.as_deref(),
        args.dir.as_deref(),
        &ctx.cwd,
        ctx.out.progress().as_mut(),
    )?;
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
    Ok(Status::Ok)
}
