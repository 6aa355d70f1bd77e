//! `migsnap forget`: give up the data of snapshots a retention policy does
//! not keep.

use std::time::Duration;

use serde::Serialize;

use super::output::Paint;
use super::{CliError, Ctx, Status};
use crate::snapshots::retention::{self, Count, ForgetReport, Judged, Policy};
use crate::timestamp;

/// Give up the data (pages) of the snapshots a restic-style policy does not
/// keep; their schema and place in history stay. Policies apply to each
/// database on its own. The head of each database and every tagged snapshot
/// are always kept. `migsnap gc` frees the pages after its grace period.
#[derive(Debug, clap::Args)]
pub struct ForgetArgs {
    /// Tracked database name or path (default: every database in the store).
    db: Option<String>,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Report what would be forgotten, change nothing.
    #[arg(long, short = 'n')]
    dry_run: bool,
}

/// The `--keep-…` rules of a retention policy, as `forget` and `check` take
/// them.
#[derive(Debug, clap::Args)]
pub(super) struct PolicyArgs {
    // No short flags (restic has -l, -d, -m, ...): in migsnap -m is a
    // message and -d a deletion, and a mistyped policy forgets data.
    /// Keep the N newest snapshots (`unlimited` for all).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    keep_last: Option<Count>,
    /// Keep the newest snapshot of each of the last N hours (UTC).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    keep_hourly: Option<Count>,
    /// Keep the newest snapshot of each of the last N days (UTC).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    keep_daily: Option<Count>,
    /// Keep the newest snapshot of each of the last N ISO weeks (UTC).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    keep_weekly: Option<Count>,
    /// Keep the newest snapshot of each of the last N months (UTC).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    keep_monthly: Option<Count>,
    /// Keep the newest snapshot of each of the last N years (UTC).
    #[arg(long, value_name = "N", value_parser = parse_count)]
    keep_yearly: Option<Count>,
    /// Keep every snapshot newer than the newest one minus DURATION, e.g.
    /// `7days`, `1month 2days`.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    keep_within: Option<Duration>,
    /// Keep the snapshot tag TAG points at (repeatable).
    #[arg(long, value_name = "TAG")]
    keep_tag: Vec<String>,
}

impl PolicyArgs {
    /// Whether no rule was given.
    pub(super) fn is_empty(&self) -> bool {
        self.policy().is_empty()
    }

    /// The policy the rules make (rules not given are off).
    pub(super) fn policy(&self) -> Policy {
        Policy {
            last: self.keep_last.unwrap_or_default(),
            hourly: self.keep_hourly.unwrap_or_default(),
            daily: self.keep_daily.unwrap_or_default(),
            weekly: self.keep_weekly.unwrap_or_default(),
            monthly: self.keep_monthly.unwrap_or_default(),
            yearly: self.keep_yearly.unwrap_or_default(),
            within: self.keep_within,
            tags: self.keep_tag.clone(),
        }
    }
}

/// Parses a `--keep-*` count: a number, or `unlimited` as in restic.
fn parse_count(text: &str) -> Result<Count, String> {
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(Count::Unlimited);
    }
    text.parse::<u32>()
        .map(Count::Most)
        .map_err(|_| format!("'{text}' is not a count: use a number or `unlimited`"))
}

/// The JSON of `forget`: the snapshots kept (with why) and forgotten.
#[derive(Serialize)]
struct ForgetDocument<'a> {
    dry_run: bool,
    kept: Vec<KeptItem<'a>>,
    forgotten: Vec<SnapshotItem<'a>>,
}

/// A snapshot in `forget`'s JSON: which, when, of what.
#[derive(Serialize)]
struct SnapshotItem<'a> {
    id: String,
    time: String,
    database: &'a str,
}

impl<'a> SnapshotItem<'a> {
    /// The item of `judged`.
    fn new(judged: &'a Judged) -> Self {
        SnapshotItem {
            id: judged.id.to_string(),
            time: timestamp::rfc3339(judged.time),
            database: &judged.database,
        }
    }
}

/// A snapshot kept, and the rules that keep it.
#[derive(Serialize)]
struct KeptItem<'a> {
    #[serde(flatten)]
    snapshot: SnapshotItem<'a>,
    reasons: &'a [String],
}

impl<'a> KeptItem<'a> {
    /// The item of `judged`, with its reasons.
    fn new(judged: &'a Judged) -> Self {
        KeptItem {
            snapshot: SnapshotItem::new(judged),
            reasons: &judged.reasons,
        }
    }
}

/// Runs `migsnap forget`: applies the policy and reports what it kept and forgot.
pub fn run(args: ForgetArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    let database = args
        .db
        .as_deref()
        .map(|arg| ctx.select_db(&mut repo, Some(arg)))
        .transpose()?
        .map(|db| db.name);
    let policy = args.policy.policy();
    let report = retention::apply(&mut repo.store, database.as_deref(), &policy, args.dry_run)?;
    for tag in &report.unknown_tags {
        ctx.out.warn(&format!(
            "no tag is called '{tag}'; --keep-tag {tag} keeps nothing"
        ));
    }
    if ctx.out.is_json() {
        ctx.out.json(&ForgetDocument {
            dry_run: report.dry_run,
            kept: report.kept.iter().map(KeptItem::new).collect(),
            forgotten: report.forgotten.iter().map(SnapshotItem::new).collect(),
        })?;
        return Ok(Status::Ok);
    }
    text(ctx, &policy, &report)?;
    Ok(Status::Ok)
}

fn text(ctx: &Ctx, policy: &Policy, report: &ForgetReport) -> Result<(), CliError> {
    let out = &ctx.out;
    out.line(&format!(
        "applying policy: {policy}; the head of each database and tagged snapshots are always kept"
    ))?;
    let mut databases: Vec<&str> = report
        .kept
        .iter()
        .chain(&report.forgotten)
        .map(|j| j.database.as_str())
        .collect();
    databases.sort_unstable();
    databases.dedup();
    for database in databases {
        out.line("")?;
        out.line(&format!("database '{database}':"))?;
        let kept: Vec<&Judged> = report
            .kept
            .iter()
            .filter(|j| j.database == database)
            .collect();
        let forgotten: Vec<&Judged> = report
            .forgotten
            .iter()
            .filter(|j| j.database == database)
            .collect();
        table(ctx, &format!("keep {}", plural(kept.len())), &kept, true)?;
        if !forgotten.is_empty() {
            let verb = if report.dry_run {
                "would forget the data of"
            } else {
                "forget the data of"
            };
            table(
                ctx,
                &format!("{verb} {}", plural(forgotten.len())),
                &forgotten,
                false,
            )?;
        }
    }
    let mut skipped = Vec::new();
    if report.schema_only > 0 {
        skipped.push(format!("{} schema-only", report.schema_only));
    }
    if report.already_forgotten > 0 {
        skipped.push(format!("{} forgotten before", report.already_forgotten));
    }
    if !skipped.is_empty() {
        out.note(&format!(
            "skipped snapshots without data to forget: {}",
            skipped.join(", ")
        ));
    }
    out.line("")?;
    let n = report.forgotten.len();
    if n == 0 {
        out.line("nothing to forget")?;
    } else if report.dry_run {
        out.line(&format!(
            "would forget the data of {} (dry run: nothing changed)",
            plural(n)
        ))?;
    } else {
        out.line(&format!(
            "forgot the data of {}; run `migsnap gc` to free space (after the grace period, or `gc --grace 0s` now)",
            plural(n)
        ))?;
    }
    Ok(())
}

/// Prints a restic-like table of snapshots under `title`.
fn table(ctx: &Ctx, title: &str, rows: &[&Judged], with_reasons: bool) -> Result<(), CliError> {
    let out = &ctx.out;
    out.line(&format!("{title}:"))?;
    if rows.is_empty() {
        return Ok(());
    }
    let header = format!("{:<12}  {:<23}", "ID", "Time");
    out.line(&if with_reasons {
        format!("{header}  Reasons")
    } else {
        header.trim_end().to_owned()
    })?;
    for row in rows {
        // Pad before painting: escape codes would count towards the width.
        let id = out.paint(Paint::Id, &format!("{:.12}", row.id));
        let line = format!("{id}  {:<23}", timestamp::utc(row.time));
        out.line(&if with_reasons {
            format!("{line}  {}", row.reasons.join(", "))
        } else {
            line.trim_end().to_owned()
        })?;
    }
    Ok(())
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 snapshot".to_owned()
    } else {
        format!("{n} snapshots")
    }
}
