//! `migsnap accept`: record a database's schema as another valid shape of
//! the reference for its revision(s).
//!
//! Some revisions create tables only "if missing" (Open WebUI's first one
//! does), so a database can be right in more than one shape. Accepting its
//! shape stops `status`, `locate` and bisect from calling it drift.

use super::migrations::{self, reference_error, replay_progress};
use super::{CliError, Ctx, ErrorKind, Status};
use crate::drift::{self, Live};
use crate::replay::Replayer;

/// Accept the database's current schema as a valid variant of the
/// reference for its stamped revision(s) (or --revision).
#[derive(Debug, clap::Args)]
pub struct AcceptArgs {
    #[command(flatten)]
    project: migrations::ProjectArgs,
    /// A tracked database name or path.
    db: Option<String>,
    /// The revision(s) the shape is valid for (default: the database's
    /// alembic_version rows).
    #[arg(long = "revision", value_name = "REV")]
    revisions: Vec<String>,
}

pub fn run(args: AcceptArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, args.db.as_deref(), &args.project)?;
    let path = opened.database(args.db.as_deref())?;
    let stamped = if args.revisions.is_empty() {
        let live = Live::capture(&path, ctx.busy_timeout)?;
        drift::stamped(opened.project.kind, &live.meta, &opened.graph)
    } else {
        None
    };
    let targets = opened.targets(&args.revisions, stamped, "accept a shape for")?;
    let replayer = Replayer::new(&opened.project, &opened.graph, opened.chain.clone());
    let outcome = drift::accept(
        &mut opened.repo,
        &replayer,
        &targets,
        &path,
        ctx.busy_timeout,
        &mut replay_progress(ctx),
    )?;
    match outcome {
        Ok((name, id)) => {
            if ctx.out.is_json() {
                ctx.out.json(&serde_json::json!({
                    "targets": targets, "snapshot": id, "ref": name.as_str(),
                }))?;
            } else {
                ctx.out.line(&format!(
                    "accepted {id:.12} as a variant of {} ({})",
                    targets.join(" + "),
                    name.as_str()
                ))?;
            }
            Ok(Status::Ok)
        }
        Err(None) => Err(CliError::new(
            ErrorKind::Input,
            format!(
                "{} already matches the reference for {}; nothing to accept",
                path.display(),
                targets.join(" + ")
            ),
        )),
        Err(Some(failure)) => Err(reference_error(&failure, &targets, opened.repo.root())),
    }
}
