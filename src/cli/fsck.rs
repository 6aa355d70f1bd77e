//! `migsnap fsck`: check the store.

use std::collections::BTreeSet;

use migsnap_store::ObjectId;
use migsnap_store::fsck::{self, Fault, FsckOptions, ReadData, Subset};
use serde::Serialize;

use super::error::ErrorKind;
use super::output::bytes;
use super::{CliError, Ctx, Status};
use crate::remotes::check;

/// Check that every ref and reflog row is readable, refs resolve, every
/// reachable object is present (with its pack's dictionary) and parents form
/// no cycle; with --read-data, that every object hashes to its id. Exits 1
/// when anything is wrong.
#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    /// Read and re-hash every object.
    #[arg(long, conflicts_with = "read_data_subset")]
    read_data: bool,
    /// Read and re-hash the objects of subset N of T of the packs (as
    /// restic's); running 1/T to T/T in turn reads every pack once.
    #[arg(long, value_name = "N/T", value_parser = Subset::parse)]
    read_data_subset: Option<Subset>,
    /// Check remote NAME instead of the store: its indexes, packs (present,
    /// right size), refs and the completeness of every ref's history; with
    /// --read-data, download every pack and re-hash every object. Exits 5
    /// when the remote is damaged.
    #[arg(long, value_name = "NAME", conflicts_with = "read_data_subset")]
    remote: Option<String>,
}

impl FsckArgs {
    fn read_data(&self) -> ReadData {
        match (self.read_data, self.read_data_subset) {
            (true, _) => ReadData::All,
            (false, Some(subset)) => ReadData::Subset(subset),
            (false, None) => ReadData::None,
        }
    }
}

/// `fsck --format json`: what was checked and what is wrong.
#[derive(Serialize)]
struct FsckDocument<'a> {
    clean: bool,
    snapshots: u64,
    objects: u64,
    /// Every object read back.
    read_data: bool,
    /// `n/t` when only a subset of the packs was read back, else null.
    read_data_subset: Option<String>,
    /// How many objects were read back and re-hashed.
    objects_read: u64,
    problems: Vec<ProblemEntry<'a>>,
    damaged_rows: &'a [String],
}

/// One damaged or missing object, and what it affects.
#[derive(Serialize)]
struct ProblemEntry<'a> {
    object: ObjectId,
    fault: &'static str,
    detail: String,
    snapshots: &'a BTreeSet<ObjectId>,
    refs: Vec<String>,
}

pub fn run(args: FsckArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let repo = ctx.open_repo()?;
    if let Some(remote) = &args.remote {
        return run_remote(&repo, remote, args.read_data, ctx);
    }
    let options = FsckOptions {
        read_data: args.read_data(),
    };
    let report = fsck::check(&repo.store, options, ctx.out.progress().as_mut())?;
    if ctx.out.is_json() {
        let problems = report
            .problems
            .iter()
            .map(|p| {
                let (fault, detail) = describe(&p.fault);
                ProblemEntry {
                    object: p.id,
                    fault,
                    detail,
                    snapshots: &p.snapshots,
                    refs: p.refs.iter().map(ToString::to_string).collect(),
                }
            })
            .collect();
        ctx.out.json(&FsckDocument {
            clean: report.is_clean(),
            snapshots: report.snapshots,
            objects: report.objects,
            read_data: args.read_data,
            read_data_subset: args.read_data_subset.map(|subset| subset.to_string()),
            objects_read: report.read_back,
            problems,
            damaged_rows: &report.damaged_rows,
        })?;
    } else {
        for p in &report.problems {
            let (fault, detail) = describe(&p.fault);
            let mut affected: Vec<String> =
                p.snapshots.iter().map(|s| format!("{s:.12}")).collect();
            affected.extend(p.refs.iter().map(ToString::to_string));
            let affected = if affected.is_empty() {
                "unreachable".to_owned()
            } else {
                format!("affects {}", affected.join(", "))
            };
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            };
            ctx.out
                .line(&format!("{fault} object {}{detail}: {affected}", p.id))?;
        }
        for row in &report.damaged_rows {
            ctx.out.line(&format!("damaged {row}"))?;
        }
        ctx.out.line(&format!(
            "checked {} snapshots and {} objects{}: {}",
            report.snapshots,
            report.objects,
            match report.read_data {
                ReadData::All => " (data read and re-hashed)".to_owned(),
                ReadData::Subset(subset) => format!(
                    " (data of pack subset {subset} read and re-hashed: {} objects)",
                    report.read_back
                ),
                ReadData::None => String::new(),
            },
            if report.is_clean() {
                "no problems".to_owned()
            } else {
                format!(
                    "{} problem(s)",
                    report.problems.len() + report.damaged_rows.len()
                )
            }
        ))?;
    }
    Ok(if report.is_clean() {
        Status::Ok
    } else {
        Status::Problems
    })
}

fn describe(fault: &Fault) -> (&'static str, String) {
    match fault {
        Fault::Missing => ("missing", String::new()),
        Fault::Corrupt(reason) => ("corrupt", reason.clone()),
        Fault::Cycle => ("cycle", "snapshot is its own ancestor".to_owned()),
    }
}

/// `fsck --remote NAME`: exit 5 when the remote is damaged, as a fetch
/// finding the same damage would.
fn run_remote(
    repo: &crate::repo::Repo,
    remote: &str,
    read_data: bool,
    ctx: &mut Ctx,
) -> Result<Status, CliError> {
    let checked = check::check(repo, Some(remote), read_data, ctx.out.progress().as_mut())?;
    if ctx.out.is_json() {
        ctx.out.json(&checked)?;
    } else {
        let report = &checked.report;
        for problem in &report.problems {
            ctx.out.line(&format!(
                "{} {}: {}",
                problem.fault.name(),
                problem.key,
                problem.detail
            ))?;
        }
        ctx.out.line(&format!(
            "checked {} ({}): {} pack(s), {} object(s), {} ref(s); {} object(s) needed; {}",
            checked.remote,
            checked.url,
            report.packs,
            report.objects,
            report.refs,
            report.needed_objects,
            if read_data {
                format!(
                    "{} pack(s) read ({}), {} object(s) re-hashed",
                    report.packs_read,
                    bytes(report.bytes_read),
                    report.objects_read
                )
            } else {
                format!("{} pack(s) of history read", report.packs_read)
            }
        ))?;
        if report.unindexed_packs > 0 {
            ctx.out.line(&format!(
                "{} pack(s) without an index (left by a push cut short; `migsnap remote gc` removes them)",
                report.unindexed_packs
            ))?;
        }
        ctx.out.line(&if checked.clean {
            "no problems".to_owned()
        } else {
            format!("{} problem(s)", report.problems.len())
        })?;
    }
    Ok(if checked.clean {
        Status::Ok
    } else {
        Status::Failed(ErrorKind::Corrupt)
    })
}
