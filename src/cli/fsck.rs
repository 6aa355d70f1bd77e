//! `migsnap fsck`: check the store.

use std::collections::BTreeSet;

use migsnap_store::ObjectId;
use migsnap_store::fsck::{self, Fault, FsckOptions};
use serde::Serialize;

use super::{CliError, Ctx, Status};

/// Check that every ref and reflog row is readable, refs resolve, every
/// reachable object is present (with its pack's dictionary) and parents form
/// no cycle; with --read-data, that every object hashes to its id. Exits 1
/// when anything is wrong.
#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    /// Read and re-hash every object.
    #[arg(long)]
    read_data: bool,
}

/// `fsck --format json`: what was checked and what is wrong.
#[derive(Serialize)]
struct FsckDocument<'a> {
    clean: bool,
    snapshots: u64,
    objects: u64,
    read_data: bool,
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
    let options = FsckOptions {
        read_data: args.read_data,
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
            if args.read_data {
                " (data read and re-hashed)"
            } else {
                ""
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
