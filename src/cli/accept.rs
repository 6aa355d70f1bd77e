//! `migsnap accept`: record a database's schema as another valid shape of
//! the reference for its revision(s); list and remove such shapes.
//!
//! Some revisions create tables only "if missing" (Open WebUI's first one
//! does), so a database can be right in more than one shape. Accepting its
//! shape stops `status`, `locate` and bisect from calling it drift, so the
//! difference is shown first and must be confirmed.

use std::io::IsTerminal;

use migsnap_store::{ObjectId, ParseIdError, Prefix};
use serde::Serialize;

use super::migrations::{self, Workspace, reference_error, replay_progress};
use super::output::drift_lines;
use super::{CliError, Ctx, ErrorKind, Status};
use crate::migrations::drift::{self, AcceptPlan, AcceptedVariant, LiveDatabase};
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::history::targets::Targets;
use crate::schema::diff::SchemaDiff;
use crate::timestamp;

/// Accept the database's current schema as a valid variant of the
/// reference for its stamped revision(s) (or --revision). Shows the
/// difference first; records it only with --yes or a confirmation on a
/// terminal.
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
    /// Accept without asking.
    #[arg(long, short = 'y')]
    yes: bool,
    /// List the accepted variants: id, revision(s), when, and what differs
    /// from the reference.
    #[arg(long, conflicts_with_all = ["revisions", "yes", "remove"])]
    list: bool,
    /// Remove the accepted variant ID (a unique prefix): the shape is drift
    /// again.
    #[arg(long, value_name = "ID", conflicts_with_all = ["revisions", "yes"])]
    remove: Option<String>,
}

pub fn run(args: AcceptArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut opened = migrations::open(ctx, args.db.as_deref(), &args.project)?;
    if args.list {
        list(ctx, &opened)
    } else if let Some(prefix) = &args.remove {
        remove(ctx, &mut opened, prefix)
    } else {
        accept(ctx, &args, &mut opened)
    }
}

/// The JSON of `accept --list`.
#[derive(Serialize)]
struct VariantsDocument<'a> {
    variants: &'a [AcceptedVariant],
}

/// The JSON of `accept --remove`.
#[derive(Serialize)]
struct RemovedDocument<'a> {
    removed: &'a AcceptedVariant,
}

/// The JSON of `accept`: the difference shown, and whether it was
/// accepted (then with the variant's snapshot and ref).
#[derive(Serialize)]
struct AcceptDocument<'a> {
    targets: &'a Targets,
    reference: ObjectId,
    diff: &'a SchemaDiff,
    accepted: bool,
    /// Absent when not accepted.
    #[serde(flatten)]
    recorded: Option<Recorded<'a>>,
}

/// Where an accepted variant was recorded.
#[derive(Serialize)]
struct Recorded<'a> {
    snapshot: ObjectId,
    #[serde(rename = "ref")]
    name: &'a str,
}

/// `accept --list`: every accepted variant with its difference.
fn list(ctx: &Ctx, opened: &Workspace) -> Result<Status, CliError> {
    let variants =
        drift::accepted_variants(&opened.repo, &opened.replayer()).map_err(CliError::from)?;
    if ctx.out.is_json() {
        ctx.out.json(&VariantsDocument {
            variants: &variants,
        })?;
        return Ok(Status::Ok);
    }
    if variants.is_empty() {
        ctx.out.line("no accepted variants")?;
    }
    for variant in &variants {
        ctx.out.line(&format!(
            "{:.12}  {}  accepted {}  ({} difference{} from the reference)",
            variant.id,
            variant.targets.join(" + "),
            timestamp::utc(variant.time),
            variant.diff.changes.len(),
            if variant.diff.changes.len() == 1 {
                ""
            } else {
                "s"
            }
        ))?;
        for line in drift_lines(&ctx.out, &variant.diff, "    ") {
            ctx.out.line(&line)?;
        }
    }
    Ok(Status::Ok)
}

/// `accept --remove ID`.
fn remove(ctx: &Ctx, opened: &mut Workspace, prefix: &str) -> Result<Status, CliError> {
    let prefix: Prefix = prefix.parse().map_err(|e: ParseIdError| {
        CliError::new(ErrorKind::Input, format!("accept --remove: {e}"))
            .hint("give 4 or more hex digits of an id from `migsnap accept --list`")
    })?;
    let (repo, replayer, _) = opened.parts();
    let removed = drift::remove_accepted(repo, &replayer, &prefix).map_err(CliError::from)?;
    if ctx.out.is_json() {
        ctx.out.json(&RemovedDocument { removed: &removed })?;
    } else {
        ctx.out.line(&format!(
            "removed accepted variant {:.12} of {}; a database of that shape is drift again",
            removed.id,
            removed.targets.join(" + ")
        ))?;
    }
    Ok(Status::Ok)
}

/// Shows the difference and, confirmed, records it as an accepted variant.
fn accept(ctx: &Ctx, args: &AcceptArgs, opened: &mut Workspace) -> Result<Status, CliError> {
    let path = opened.database(args.db.as_deref())?;
    let stamped = if args.revisions.is_empty() {
        let live = LiveDatabase::capture(&path, ctx.busy_timeout)?;
        drift::stamped(opened.project.kind, &live.meta, &opened.graph)
    } else {
        None
    };
    let targets = migrations::targets(
        opened,
        &args.revisions,
        stamped,
        "accept a shape for",
        "--revision",
    )?;
    let root = opened.repo.root().to_path_buf();
    let (repo, replayer, _) = opened.parts();
    let plan = drift::plan_accept(
        &mut *repo,
        &replayer,
        &targets,
        &path,
        ctx.busy_timeout,
        &mut replay_progress(ctx),
    )?;
    let proposal = match plan {
        AcceptPlan::Propose(proposal) => proposal,
        AcceptPlan::IsReference => {
            return Err(CliError::new(
                ErrorKind::Input,
                format!(
                    "{} already matches the reference for {}; nothing to accept",
                    path.display(),
                    targets.join(" + ")
                ),
            ));
        }
        AcceptPlan::AlreadyAccepted(id) => {
            return Err(CliError::new(
                ErrorKind::Input,
                format!(
                    "{} already matches accepted variant {id:.12} of {}; nothing to accept",
                    path.display(),
                    targets.join(" + ")
                ),
            )
            .hint("`migsnap accept --list` shows the accepted variants"));
        }
        AcceptPlan::ReplayFailed(failure) => {
            return Err(reference_error(&failure, &targets, &root));
        }
    };
    if !ctx.out.is_json() {
        ctx.out.line(&format!(
            "{} differs from the reference for {} ({:.12}):",
            path.display(),
            targets.join(" + "),
            proposal.reference
        ))?;
        for line in drift_lines(&ctx.out, &proposal.diff, "    ") {
            ctx.out.line(&line)?;
        }
    }
    if !(args.yes || confirm(&targets)?) {
        if ctx.out.is_json() {
            ctx.out.json(&AcceptDocument {
                targets: &targets,
                reference: proposal.reference,
                diff: &proposal.diff,
                accepted: false,
                recorded: None,
            })?;
        }
        return Err(CliError::new(
            ErrorKind::Refused,
            "not accepted: accepting makes this difference count as a valid shape",
        )
        .hint("check the difference above, then run again with --yes"));
    }
    let (name, id) = drift::accept(repo, &replayer, &proposal, &path, ctx.busy_timeout)
        .map_err(CliError::from)?;
    if ctx.out.is_json() {
        ctx.out.json(&AcceptDocument {
            targets: &targets,
            reference: proposal.reference,
            diff: &proposal.diff,
            accepted: true,
            recorded: Some(Recorded {
                snapshot: id,
                name: name.as_str(),
            }),
        })?;
    } else {
        ctx.out.line(&format!(
            "accepted {id:.12} as a variant of {} (undo with `migsnap accept --remove {id:.12}`)",
            targets.join(" + "),
        ))?;
    }
    Ok(Status::Ok)
}

/// Asks on the terminal; `false` when stdin is not one, or on anything but
/// yes.
fn confirm(targets: &[RevisionId]) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!(
        "accept this as a valid shape of {}? [y/N] ",
        targets.join(" + ")
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
