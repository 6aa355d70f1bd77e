//! `migsnap remote add|list|remove`.

use std::path::PathBuf;

use serde::Serialize;

use super::{CliError, Ctx, Status};
use crate::config::remote::RemoteConfig;
use crate::remotes::KeySource;
use crate::remotes::manage::{self, RemoteEntry};

/// Manage remotes: other places (an S3 bucket, a directory) that hold a copy
/// of the store's history. Settings live in `.migsnap/config.toml`;
/// credentials come from the AWS environment variables and profile files.
#[derive(Debug, clap::Args)]
pub struct RemoteArgs {
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RemoteCommand {
    /// Add a remote: URL is `s3://BUCKET/PREFIX` or `file:///PATH`.
    Add {
        /// The remote's name (`origin`).
        name: String,
        /// Where it is.
        url: String,
        /// Endpoint of an S3-compatible server (plain http only on loopback).
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// The S3 region.
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// Encrypt everything written to the remote with a new random key,
        /// kept in .migsnap/keys/NAME.key and never uploaded: keep a copy of
        /// it elsewhere, or the remote cannot be read after a disaster.
        #[arg(long, conflicts_with = "key_file")]
        encrypt: bool,
        /// Encrypt with the key in this file (copied into .migsnap/keys/),
        /// for a remote another store encrypted.
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
    },
    /// List remotes.
    #[command(visible_alias = "ls")]
    List,
    /// Remove a remote and its remote-tracking refs (the remote itself is kept).
    #[command(visible_alias = "rm")]
    Remove {
        /// The remote's name.
        name: String,
    },
}

/// `remote list --format json`.
#[derive(Serialize)]
struct ListDocument {
    remotes: Vec<RemoteEntry>,
}

pub fn run(args: RemoteArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    match args.command {
        RemoteCommand::Add {
            name,
            url,
            endpoint,
            region,
            encrypt,
            key_file,
        } => {
            let settings = RemoteConfig {
                url,
                endpoint,
                region,
                key_file: None,
            };
            let key = match (encrypt, key_file) {
                (_, Some(path)) => KeySource::File(ctx.cwd.join(path)),
                (true, None) => KeySource::Generate,
                (false, None) => KeySource::Plain,
            };
            let added = manage::add(&mut repo, &name, settings, &key)?;
            if ctx.out.is_json() {
                ctx.out.json(&added)?;
            } else {
                ctx.out.line(&format!(
                    "added remote '{}' ({})",
                    added.name, added.settings.url
                ))?;
                if let Some(path) = &added.settings.key_file {
                    ctx.out.line(&format!(
                        "encrypted with the key in {}: keep a copy of it off this machine",
                        repo.store.dir().join(path).display()
                    ))?;
                }
            }
        }
        RemoteCommand::List => {
            let remotes = manage::list(&repo);
            if ctx.out.is_json() {
                ctx.out.json(&ListDocument { remotes })?;
            } else {
                for entry in &remotes {
                    let mut line = format!("{}\t{}", entry.name, entry.settings.url);
                    if let Some(endpoint) = &entry.settings.endpoint {
                        line.push_str(&format!(" (endpoint {endpoint})"));
                    }
                    if entry.settings.key_file.is_some() {
                        line.push_str(" (encrypted)");
                    }
                    ctx.out.line(&line)?;
                }
            }
        }
        RemoteCommand::Remove { name } => {
            let removed = manage::remove(&mut repo, &name)?;
            if ctx.out.is_json() {
                ctx.out.json(&removed)?;
            } else {
                ctx.out.line(&format!(
                    "removed remote '{name}' and {} remote-tracking ref(s)",
                    removed.tracking_refs
                ))?;
            }
        }
    }
    Ok(Status::Ok)
}
