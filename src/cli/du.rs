//! `migsnap du`.

use super::{CliError, Ctx, Status};

/// TODO(helper): see the issue.
#[derive(Debug, clap::Args)]
pub struct DuArgs {}

pub fn run(_args: DuArgs, _ctx: &mut Ctx) -> Result<Status, CliError> {
    Err(CliError::new(super::ErrorKind::Internal, "not yet"))
}
