//! `migsnap demo`: TODO
use super::{CliError, Ctx, Status};

/// Run a self-contained demonstration in a temporary directory.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

pub fn run(_args: DemoArgs, _ctx: &mut Ctx) -> Result<Status, CliError> {
    Err(CliError::new(super::ErrorKind::Internal, "not yet"))
}
