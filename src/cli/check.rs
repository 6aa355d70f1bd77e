//! `migsnap check`: the scheduled check, one command for cron or a systemd
//! timer (see docs/scheduling.md). The engine runs every step
//! ([`crate::check`]); this renders one summary and exits with the worst
//! step's code.

use std::time::Duration;

use serde::Serialize;

use super::error::ErrorKind;
use super::forget::PolicyArgs;
use super::output::ErrorBody;
use super::{CliError, Ctx, Status, verdict};
use migsnap_store::fsck::{FsckOptions, ReadData, Subset};

use crate::check::{self, CheckOptions, CheckReport, DatabaseCheck, GcStep, StatusError};
use crate::config::check::{CheckConfig, FsckLevel};
use crate::finding::Finding;
use crate::migrations::drift::StatusReport;
use crate::migrations::models::ModelsComparison;
use crate::policy::Verdict;
use crate::snapshots::retention::{Count, Policy};
use crate::snapshots::snapshot::SnapshotOutcome;

/// Run the weekly check for every tracked database: snapshot it when it
/// changed, work out its migration status when a project is found, apply
/// the retention policy (default: the newest snapshot of each of the last
/// 4 weeks, besides each head and every tagged snapshot), run `gc` when it
/// is due (a loose pack, or forgotten data past its grace period),
/// optionally `fsck`. Prints one summary;
/// exits 0 when all is well, 1 when a finding or an fsck problem counts,
/// else the code of the worst step that failed.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    verdict: verdict::VerdictArgs,
    /// The retention rules, as `forget` takes them; given, they replace
    /// the `[check]` table's policy as a whole (default: `--keep-weekly 4`).
    #[command(flatten)]
    policy: PolicyArgs,
    /// How long forgotten data and reflog entries stay before `gc` frees
    /// them (default: `[check] gc_grace`, else 14 days).
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    gc_grace: Option<Duration>,
    /// Check the store's structure afterwards (`fsck`).
    #[arg(long)]
    fsck: bool,
    /// Check the store and read every object back (`fsck --read-data`).
    #[arg(long, conflicts_with = "read_data_subset")]
    read_data: bool,
    /// Check the store and read back the objects of subset N of T of the
    /// packs (`fsck --read-data-subset`).
    #[arg(long, value_name = "N/T", value_parser = Subset::parse)]
    read_data_subset: Option<Subset>,
    /// Push every head and tag to REMOTE (default: `origin`, or the only
    /// one) at the end (default: `[check] push`); a failed push fails the
    /// check with its exit code.
    #[arg(long, value_name = "REMOTE", num_args = 0..=1, default_missing_value = "")]
    push: Option<String>,
}

/// How many subsets `[check] fsck = "sampled"` cycles through: one a week
/// reads every pack in four weeks, the span the default retention keeps.
const SAMPLED_SUBSETS: u32 = 4;

/// One step's outcome in JSON: its result, or the error it failed with
/// (the `error` object of an error document).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Step<T> {
    Ok(T),
    Error(#[serde(serialize_with = "error_body")] CliError),
}

fn error_body<S: serde::Serializer>(error: &CliError, out: S) -> Result<S::Ok, S::Error> {
    ErrorBody::new(error).serialize(out)
}

#[derive(Serialize)]
struct SnapshotItem {
    id: String,
    recorded: bool,
}

#[derive(Serialize)]
struct StatusItem {
    class: &'static str,
    schema_matches: Option<bool>,
    heads: Vec<String>,
}

#[derive(Serialize)]
struct DatabaseItem {
    name: String,
    snapshot: Step<SnapshotItem>,
    /// `null` when no migration project was found.
    status: Option<Step<StatusItem>>,
    verdict: Verdict,
}

#[derive(Serialize)]
struct RetentionItem {
    kept: usize,
    forgotten: usize,
}

#[derive(Serialize)]
struct GcItem {
    ran: bool,
    deleted_objects: u64,
    freed_bytes: u64,
    packed_objects: u64,
}

#[derive(Serialize)]
struct PushItem {
    remote: String,
    url: String,
    packs: u64,
    bytes: u64,
    /// Refs the remote did not have at these values.
    updated: usize,
}

#[derive(Serialize)]
struct FsckItem {
    problems: usize,
    damaged_rows: usize,
    objects: u64,
    /// `all`, `none`, or the subset of packs read back (`2/4`).
    read_data: String,
    objects_read: u64,
}

/// `check --format json`: every step, and the exit code it comes to.
#[derive(Serialize)]
struct CheckDocument {
    databases: Vec<DatabaseItem>,
    retention: Step<RetentionItem>,
    gc: Step<GcItem>,
    /// `null` without `--fsck` or `--read-data`.
    fsck: Option<Step<FsckItem>>,
    /// `null` without `--push` or `[check] push`.
    push: Option<Step<PushItem>>,
    exit_code: u8,
}

/// Runs `migsnap check`.
pub fn run(args: CheckArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    let config = repo.check_config().clone();
    let read_data = match (
        args.read_data,
        args.read_data_subset,
        args.fsck,
        config.fsck,
    ) {
        (true, ..) => Some(ReadData::All),
        (_, Some(subset), ..) => Some(ReadData::Subset(subset)),
        (_, _, true, _) => Some(ReadData::None),
        (.., Some(FsckLevel::Structure)) => Some(ReadData::None),
        (.., Some(FsckLevel::ReadData)) => Some(ReadData::All),
        // The store's clock, so MIGSNAP_NOW moves the week as it moves
        // retention's.
        (.., Some(FsckLevel::Sampled)) => Some(ReadData::Subset(Subset::of_week(
            migsnap_store::odb::now(),
            SAMPLED_SUBSETS,
        ))),
        (.., Some(FsckLevel::Off) | None) => None,
    };
    let gc_grace = match (args.gc_grace, &config.gc_grace) {
        (Some(grace), _) => grace,
        // The repository checked that it parses.
        (None, Some(text)) => crate::duration::parse(text)
            .expect("holds because the repository checked [check] gc_grace when it loaded"),
        (None, None) => DEFAULT_GRACE,
    };
    let options = CheckOptions {
        policy: policy(&args, &config),
        gc_grace,
        fsck: read_data.map(|read_data| FsckOptions { read_data }),
        message: "scheduled check".to_owned(),
        busy_timeout: ctx.busy_timeout,
        push: match (args.push, config.push) {
            (Some(remote), _) | (None, Some(remote)) => {
                Some(Some(remote).filter(|name| !name.is_empty()))
            }
            (None, None) => None,
        },
    };
    let report = check::check(&mut repo, &ctx.cwd, &options, ctx.out.progress().as_mut());
    let findings = repo.findings().clone();
    let document = document(report, |found| args.verdict.judge(&findings, found));
    if ctx.out.is_json() {
        ctx.out.json(&document)?;
    } else {
        render(ctx, &document)?;
        // Each failure in full, causes and hints, as any command's error.
        for error in failures(&document) {
            ctx.out.error(error);
        }
    }
    Ok(match document.exit_code {
        super::exit::OK => Status::Ok,
        super::exit::PROBLEMS => Status::Problems,
        _ => Status::Failed(worst_kind(&document)),
    })
}

/// `gc`'s grace period when neither the flag nor `[check]` sets one.
const DEFAULT_GRACE: Duration = Duration::from_secs(14 * 24 * 3600);

/// The retention policy: the flags' when any is given, else the `[check]`
/// table's, else the newest snapshot of each of the last 4 weeks.
fn policy(args: &CheckArgs, config: &CheckConfig) -> Policy {
    if !args.policy.is_empty() {
        return args.policy.policy();
    }
    let rule = |keep: Option<u32>| keep.map_or(Count::default(), Count::Most);
    let table = Policy {
        last: rule(config.keep_last),
        daily: rule(config.keep_daily),
        weekly: rule(config.keep_weekly),
        monthly: rule(config.keep_monthly),
        ..Policy::default()
    };
    if table.is_empty() {
        Policy {
            weekly: Count::Most(4),
            ..Policy::default()
        }
    } else {
        table
    }
}

/// Turns the engine's report into the document both formats render, with
/// every error as the CLI shows it and the exit code the steps come to.
fn document(report: CheckReport, judge: impl Fn(Vec<Finding>) -> Verdict) -> CheckDocument {
    let databases: Vec<DatabaseItem> = report
        .databases
        .into_iter()
        .map(|db| database_item(db, &judge))
        .collect();
    let retention = match report.retention {
        Ok(r) => Step::Ok(RetentionItem {
            kept: r.kept.len(),
            forgotten: r.forgotten.len(),
        }),
        Err(e) => failed(e),
    };
    let gc = match report.gc {
        Ok(GcStep::NotDue) => Step::Ok(GcItem {
            ran: false,
            deleted_objects: 0,
            freed_bytes: 0,
            packed_objects: 0,
        }),
        Ok(GcStep::Ran(r)) => Step::Ok(GcItem {
            ran: true,
            deleted_objects: r.deleted_objects,
            freed_bytes: r.freed_bytes,
            packed_objects: r.packed.objects,
        }),
        Err(e) => failed(e),
    };
    let fsck = report.fsck.map(|fsck| match fsck {
        Ok(r) => Step::Ok(FsckItem {
            problems: r.problems.len(),
            damaged_rows: r.damaged_rows.len(),
            objects: r.objects,
            read_data: match r.read_data {
                ReadData::None => "none".to_owned(),
                ReadData::All => "all".to_owned(),
                ReadData::Subset(subset) => subset.to_string(),
            },
            objects_read: r.read_back,
        }),
        Err(e) => failed(e),
    });
    let push = report.push.map(|push| match push {
        Ok(pushed) => Step::Ok(PushItem {
            updated: pushed
                .report
                .refs
                .iter()
                .filter(|r| r.outcome != migsnap_remote::Outcome::UpToDate)
                .count(),
            packs: pushed.report.packs,
            bytes: pushed.report.bytes,
            remote: pushed.remote,
            url: pushed.url,
        }),
        Err(e) => failed(e),
    });
    let mut document = CheckDocument {
        databases,
        retention,
        gc,
        fsck,
        push,
        exit_code: super::exit::OK,
    };
    document.exit_code = exit_code(&document);
    document
}

fn failed<T>(error: impl Into<CliError>) -> Step<T> {
    Step::Error(error.into())
}

/// One database's snapshot and status, with their findings judged.
fn database_item(db: DatabaseCheck, judge: &impl Fn(Vec<Finding>) -> Verdict) -> DatabaseItem {
    let mut findings = Vec::new();
    let snapshot = match db.snapshot {
        Ok(recorded) => {
            findings.extend(recorded.findings);
            let (id, recorded) = match recorded.outcome {
                SnapshotOutcome::Recorded { id, .. } => (id, true),
                SnapshotOutcome::Unchanged { head } => (head, false),
            };
            Step::Ok(SnapshotItem {
                id: id.to_string(),
                recorded,
            })
        }
        Err(e) => failed(e),
    };
    let status = db.status.map(|status| match status {
        Ok(check) => {
            findings.extend(check.report.findings.iter().cloned());
            findings.extend(check.models.iter().flat_map(ModelsComparison::findings));
            Step::Ok(status_item(&check.report))
        }
        Err(StatusError::History(e)) => failed(e),
        Err(StatusError::Database(e)) => failed(e),
        Err(StatusError::Replay(e)) => failed(e),
    });
    DatabaseItem {
        name: db.name,
        snapshot,
        status,
        verdict: judge(findings),
    }
}

fn status_item(report: &StatusReport) -> StatusItem {
    StatusItem {
        class: report.position.class(),
        schema_matches: report.schema_matches(),
        heads: report.heads.iter().map(ToString::to_string).collect(),
    }
}

/// The failed steps' errors, every one.
fn failures(document: &CheckDocument) -> impl Iterator<Item = &CliError> {
    fn error<T>(step: &Step<T>) -> Option<&CliError> {
        match step {
            Step::Ok(_) => None,
            Step::Error(e) => Some(e),
        }
    }
    let databases = document.databases.iter().flat_map(|db| {
        error(&db.snapshot)
            .into_iter()
            .chain(db.status.as_ref().and_then(error))
    });
    databases
        .chain(error(&document.retention))
        .chain(error(&document.gc))
        .chain(document.fsck.as_ref().and_then(error))
        .chain(document.push.as_ref().and_then(error))
}

/// 0 when all is well; the highest code of a failed step; else 1 when a
/// finding counts or fsck found problems.
fn exit_code(document: &CheckDocument) -> u8 {
    if let Some(worst) = failures(document).map(|e| e.kind.exit_code()).max() {
        return worst;
    }
    let findings = document.databases.iter().any(|db| !db.verdict.clean);
    let damaged = matches!(&document.fsck, Some(Step::Ok(f)) if f.problems + f.damaged_rows > 0);
    if findings || damaged {
        super::exit::PROBLEMS
    } else {
        super::exit::OK
    }
}

/// The error class of the worst failed step.
fn worst_kind(document: &CheckDocument) -> ErrorKind {
    failures(document)
        .map(|e| e.kind)
        .max_by_key(|kind| kind.exit_code())
        .unwrap_or(ErrorKind::Internal)
}

/// The text summary: a line per database and per store step.
fn render(ctx: &Ctx, document: &CheckDocument) -> Result<(), CliError> {
    let out = &ctx.out;
    for db in &document.databases {
        let snapshot = match &db.snapshot {
            Step::Ok(s) if s.recorded => format!("snapshot {:.12}", s.id),
            Step::Ok(s) => format!("unchanged since {:.12}", s.id),
            Step::Error(e) => format!("snapshot FAILED: {}", e.message),
        };
        let status = match &db.status {
            None => "no migration project".to_owned(),
            Some(Step::Ok(s)) => match s.schema_matches {
                Some(false) => format!("{}, schema differs", s.class),
                _ => s.class.to_owned(),
            },
            Some(Step::Error(e)) => format!("status FAILED: {}", e.message),
        };
        let findings = match db.verdict.findings.len() {
            0 => String::new(),
            n => format!("; {n} finding{}", super::output::plural(n)),
        };
        out.line(&format!("{}: {snapshot}; {status}{findings}", db.name))?;
        for finding in &db.verdict.findings {
            out.line(&format!("  {}", finding.message))?;
        }
    }
    let line = |name: &str, step: String| out.line(&format!("{name}: {step}"));
    line(
        "retention",
        match &document.retention {
            Step::Ok(r) => format!("kept {}, forgot {}", r.kept, r.forgotten),
            Step::Error(e) => format!("FAILED: {}", e.message),
        },
    )?;
    line(
        "gc",
        match &document.gc {
            Step::Ok(g) if g.ran => format!(
                "deleted {} objects ({}), packed {}",
                g.deleted_objects,
                super::output::bytes(g.freed_bytes),
                g.packed_objects
            ),
            Step::Ok(_) => "not due".to_owned(),
            Step::Error(e) => format!("FAILED: {}", e.message),
        },
    )?;
    if let Some(fsck) = &document.fsck {
        line(
            "fsck",
            match fsck {
                Step::Ok(f) if f.problems + f.damaged_rows == 0 => match f.read_data.as_str() {
                    "none" => format!("{} objects, no problems", f.objects),
                    "all" => format!("{} objects, all read back, no problems", f.objects),
                    subset => format!(
                        "{} objects, {} read back (pack subset {subset}), no problems",
                        f.objects, f.objects_read
                    ),
                },
                Step::Ok(f) => format!(
                    "{} problems, {} damaged rows: run `migsnap fsck` for the list",
                    f.problems, f.damaged_rows
                ),
                Step::Error(e) => format!("FAILED: {}", e.message),
            },
        )?;
    }
    if let Some(push) = &document.push {
        line(
            "push",
            match push {
                Step::Ok(p) => format!(
                    "{} ({}): {} ref(s) updated, uploaded {} in {} pack(s)",
                    p.remote,
                    p.url,
                    p.updated,
                    super::output::bytes(p.bytes),
                    p.packs
                ),
                Step::Error(e) => format!("FAILED: {}", e.message),
            },
        )?;
    }
    Ok(())
}
