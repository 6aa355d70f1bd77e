//! `migsnap forget`.

use super::{CliError, Ctx, Status};

/// TODO(helper): see the issue.
#[derive(Debug, clap::Args)]
pub struct ForgetArgs {}

pub fn run(_args: ForgetArgs, _ctx: &mut Ctx) -> Result<Status, CliError> {
    Err(CliError::new(super::ErrorKind::Internal, "not yet"))
}
