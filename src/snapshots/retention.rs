//! Retention: which snapshots keep their data, by restic's `forget` rules.
//!
//! `forget` gives up the *data* (the page image) of the snapshots a policy
//! does not keep. The snapshot object, its schema and its place in history
//! stay, so `log` still lists it ("data forgotten") and bisecting over schema
//! history keeps working. Giving up is only a mark
//! ([`migsnap_store::Transaction::forget_image`]); `gc` frees the pages once
//! its grace period has passed, so a mistaken `forget` can be undone until
//! then.
//!
//! The rules are restic's (`internal/restic/snapshot_policy.go`), applied per
//! database as restic applies them per `--group-by` group:
//! - snapshots are sorted newest first (ties keep their history order);
//! - each bucket rule (`last`, `hourly`, `daily`, `weekly`, `monthly`,
//!   `yearly`) keeps a snapshot when its bucket (an hour, day, ISO week,
//!   month or year in UTC; for `last`, every snapshot is its own bucket)
//!   differs from that of the snapshot the rule kept before, until the rule
//!   has used its count; so the newest snapshot of each bucket is kept;
//! - while a rule still has count left, it also keeps the oldest snapshot, so
//!   a short history is kept as long as possible (restic does the same);
//! - `within` keeps every snapshot newer than the newest snapshot's time
//!   minus the duration (snapshots in the future do not count as newest);
//! - `tags` keeps the snapshots those tags point at.
//!
//! Beyond restic, the head of each database and every tagged snapshot are
//! always kept: the head is what the next snapshot is recorded against, and a
//! tag is a promise to keep a snapshot by name. Snapshots kept for several
//! reasons report all of them.
//!
//! Only snapshots that hold data are candidates: schema-only snapshots have
//! nothing to give up and forgotten ones have given it up already, so neither
//! takes up a `last` or bucket slot.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;
use migsnap_store::{ObjectId, RefName, Store, View};

use crate::snapshots::log::first_parents;

/// Reason given for a database's current head.
pub const REASON_HEAD: &str = "head";
/// Reason given for a snapshot a tag points at.
pub const REASON_TAGGED: &str = "tagged";
/// Reason given to every snapshot when a policy has no rule (never produced
/// by [`apply`], which refuses such a policy).
pub const REASON_EMPTY: &str = "policy is empty";

/// How many buckets a rule keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// At most this many; `Most(0)` turns the rule off.
    Most(u32),
    /// Every bucket (restic's `unlimited`).
    Unlimited,
}

impl Count {
    /// Whether the rule keeps anything at all.
    pub fn is_on(self) -> bool {
        self != Count::Most(0)
    }
}

impl Default for Count {
    /// Off, as an option that was not given.
    fn default() -> Count {
        Count::Most(0)
    }
}

/// A retention policy: the restic `--keep-*` rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Keep the N newest snapshots.
    pub last: Count,
    /// Keep the newest snapshot of each of the last N hours.
    pub hourly: Count,
    /// Keep the newest snapshot of each of the last N days.
    pub daily: Count,
    /// Keep the newest snapshot of each of the last N ISO weeks.
    pub weekly: Count,
    /// Keep the newest snapshot of each of the last N months.
    pub monthly: Count,
    /// Keep the newest snapshot of each of the last N years.
    pub yearly: Count,
    /// Keep every snapshot newer than the newest one's time minus this.
    pub within: Option<Duration>,
    /// Keep the snapshots these tags point at.
    pub tags: Vec<String>,
}

impl Policy {
    /// Whether no rule is set, in which case restic, and [`apply`], refuse to
    /// run rather than guess.
    pub fn is_empty(&self) -> bool {
        self.buckets().iter().all(|(count, ..)| !count.is_on())
            && self.within.is_none_or(|d| d.is_zero())
            && self.tags.is_empty()
    }

    /// Checks the policy can be applied: it has a rule, and its tag names are
    /// valid.
    pub fn check(&self) -> Result<(), RetentionError> {
        if self.is_empty() {
            return Err(RetentionError::EmptyPolicy);
        }
        for name in &self.tags {
            RefName::new(format!("tags/{name}")).map_err(|e| RetentionError::BadTag {
                name: name.clone(),
                reason: e.reason,
            })?;
        }
        Ok(())
    }

    /// The bucket rules in restic's order: count, bucket function, reason.
    fn buckets(&self) -> [(Count, Bucketer, &'static str); 6] {
        [
            (self.last, |_, nr| nr as i64, "last snapshot"),
            (self.hourly, hour_bucket, "hourly snapshot"),
            (self.daily, day_bucket, "daily snapshot"),
            (self.weekly, week_bucket, "weekly snapshot"),
            (self.monthly, month_bucket, "monthly snapshot"),
            (self.yearly, year_bucket, "yearly snapshot"),
        ]
    }
}

impl fmt::Display for Policy {
    /// Describes the policy as restic does: `keep 3 latest, 7 daily snapshots
    /// and all snapshots within 1day of the newest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = ["latest", "hourly", "daily", "weekly", "monthly", "yearly"];
        let counts: Vec<String> = self
            .buckets()
            .iter()
            .zip(names)
            .filter_map(|((count, ..), name)| match count {
                Count::Most(0) => None,
                Count::Most(n) => Some(format!("{n} {name}")),
                Count::Unlimited => Some(format!("all {name}")),
            })
            .collect();
        let mut parts = Vec::new();
        if !counts.is_empty() {
            parts.push(format!("{} snapshots", counts.join(", ")));
        }
        if !self.tags.is_empty() {
            parts.push(format!("all snapshots tagged {}", self.tags.join(", ")));
        }
        if let Some(within) = self.within.filter(|d| !d.is_zero()) {
            parts.push(format!(
                "all snapshots within {} of the newest",
                crate::duration::display(within)
            ));
        }
        if parts.is_empty() {
            return f.write_str("keep everything (the policy has no rule)");
        }
        write!(f, "keep {}", parts.join(" and "))
    }
}

/// A snapshot that holds data and so can give it up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The snapshot's id.
    pub id: ObjectId,
    /// When it was taken, in seconds since the Unix epoch.
    pub time: i64,
    /// The database whose history it is in; policies apply per database.
    pub database: String,
    /// Names of the tags pointing at it (it is tagged when this is not
    /// empty).
    pub tags: Vec<String>,
    /// Whether it is the current head of its database.
    pub head: bool,
}

impl Candidate {
    /// Whether any tag points at it.
    pub fn tagged(&self) -> bool {
        !self.tags.is_empty()
    }
}

/// What the policy decided for one candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The snapshot's id.
    pub id: ObjectId,
    /// Whether it keeps its data.
    pub keep: bool,
    /// Why it is kept, in the order: head, tagged, tag rules, within, then
    /// the bucket rules from `last` to `yearly`. Empty when not kept.
    pub reasons: Vec<String>,
}

/// What can go wrong applying a policy.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The policy has no rule at all.
    #[error("no retention rule given; refusing to decide which snapshots to forget")]
    EmptyPolicy,
    /// A tag to keep is not a valid tag name.
    #[error("'{name}' is not a valid tag name: {reason}")]
    BadTag {
        /// The name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
}

/// Decides which candidates keep their data, as restic would at any time
/// after all of them were taken. See [`plan_at`].
pub fn plan(candidates: &[Candidate], policy: &Policy) -> Vec<Decision> {
    plan_at(candidates, policy, i64::MAX)
}

/// Decides which candidates keep their data; `now` (seconds since the Unix
/// epoch) only matters for `within`, where snapshots from the future do not
/// count as the newest, so that one with a wrong clock cannot make `within`
/// keep nothing else.
///
/// Decisions come grouped by database (by name), newest first within each.
/// An empty policy keeps everything with [`REASON_EMPTY`], as restic's does.
pub fn plan_at(candidates: &[Candidate], policy: &Policy, now: i64) -> Vec<Decision> {
    let mut groups: BTreeMap<&str, Vec<&Candidate>> = BTreeMap::new();
    for candidate in candidates {
        groups
            .entry(candidate.database.as_str())
            .or_default()
            .push(candidate);
    }
    let mut out = Vec::with_capacity(candidates.len());
    for mut group in groups.into_values() {
        // Stable, so snapshots of the same second keep their history order.
        group.sort_by_key(|c| Reverse(c.time));
        plan_group(&group, policy, now, &mut out);
    }
    out
}

/// Maps a snapshot time and its position (newest first) to a bucket number.
type Bucketer = fn(i64, usize) -> i64;

fn plan_group(list: &[&Candidate], policy: &Policy, now: i64, out: &mut Vec<Decision>) {
    if policy.is_empty() {
        out.extend(list.iter().map(|c| Decision {
            id: c.id,
            keep: true,
            reasons: vec![REASON_EMPTY.to_owned()],
        }));
        return;
    }
    let mut buckets = policy.buckets().map(|(count, bucket, reason)| Bucket {
        count,
        bucket,
        reason,
        last: None,
    });
    // restic's "latest": the newest snapshot not in the future, or the dawn
    // of time when there is none (so `within` then keeps everything).
    let latest = list
        .iter()
        .map(|c| c.time)
        .filter(|t| *t < now)
        .max()
        .unwrap_or(i64::MIN);
    let within = policy.within.filter(|d| !d.is_zero()).map(|d| {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        (latest.saturating_sub(secs), crate::duration::display(d))
    });
    for (nr, cur) in list.iter().enumerate() {
        let mut reasons = Vec::new();
        if cur.head {
            reasons.push(REASON_HEAD.to_owned());
        }
        if cur.tagged() {
            reasons.push(REASON_TAGGED.to_owned());
        }
        for tag in &policy.tags {
            if cur.tags.contains(tag) {
                reasons.push(format!("has tag {tag}"));
            }
        }
        if let Some((cutoff, text)) = &within
            && cur.time > *cutoff
        {
            reasons.push(format!("within {text}"));
        }
        let oldest = nr + 1 == list.len();
        for bucket in &mut buckets {
            if !bucket.count.is_on() {
                continue;
            }
            let value = (bucket.bucket)(cur.time, nr);
            if bucket.last != Some(value) || oldest {
                bucket.last = Some(value);
                if let Count::Most(n) = &mut bucket.count {
                    *n -= 1;
                }
                reasons.push(bucket.reason.to_owned());
            }
        }
        out.push(Decision {
            id: cur.id,
            keep: !reasons.is_empty(),
            reasons,
        });
    }
}

struct Bucket {
    count: Count,
    bucket: Bucketer,
    reason: &'static str,
    last: Option<i64>,
}

/// The UTC calendar time of `secs`. Times outside jiff's range (years
/// -9999..=9999) can only come from a damaged clock; they share the range's
/// first or last bucket rather than failing the whole policy.
fn civil(secs: i64) -> DateTime {
    let timestamp = Timestamp::from_second(secs).unwrap_or(if secs < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    Offset::UTC.to_datetime(timestamp)
}

/// `YYYYMMDDHH`.
fn hour_bucket(secs: i64, _: usize) -> i64 {
    let t = civil(secs);
    day_bucket(secs, 0) * 100 + i64::from(t.hour())
}

/// `YYYYMMDD`.
fn day_bucket(secs: i64, _: usize) -> i64 {
    let t = civil(secs);
    month_bucket(secs, 0) * 100 + i64::from(t.day())
}

/// `YYYYWW` of the ISO week date: the first days of January can belong to
/// the last week of the year before, and the last days of December to week 1
/// of the next.
fn week_bucket(secs: i64, _: usize) -> i64 {
    let week = civil(secs).iso_week_date();
    i64::from(week.year()) * 100 + i64::from(week.week())
}

/// `YYYYMM`.
fn month_bucket(secs: i64, _: usize) -> i64 {
    let t = civil(secs);
    i64::from(t.year()) * 100 + i64::from(t.month())
}

/// `YYYY`.
fn year_bucket(secs: i64, _: usize) -> i64 {
    i64::from(civil(secs).year())
}

/// A snapshot with what the policy decided for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    /// The snapshot's id.
    pub id: ObjectId,
    /// When it was taken, in seconds since the Unix epoch.
    pub time: i64,
    /// Its database.
    pub database: String,
    /// Why it is kept; empty for a forgotten one.
    pub reasons: Vec<String>,
}

/// What [`apply`] did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForgetReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Candidates that keep their data, by database, newest first.
    pub kept: Vec<Judged>,
    /// Candidates whose data was (or would be) forgotten, by database, newest
    /// first.
    pub forgotten: Vec<Judged>,
    /// Schema-only snapshots seen, which have no data to forget.
    pub schema_only: usize,
    /// Snapshots seen whose data was forgotten before.
    pub already_forgotten: usize,
    /// Tags the policy names that do not exist.
    pub unknown_tags: Vec<String>,
}

/// Applies `policy` to the history of `database` (every database in the
/// store when `None`): walks each head back along first parents, plans, and
/// marks the data of the snapshots not kept as forgotten, all in one store
/// transaction so that no snapshot taken meanwhile can be misjudged. A dry
/// run only reads.
pub fn apply(
    store: &mut Store,
    database: Option<&str>,
    policy: &Policy,
    dry_run: bool,
) -> Result<ForgetReport, RetentionError> {
    policy.check()?;
    let now = migsnap_store::odb::now();
    if dry_run {
        let gathered = gather(store.view(), database, policy)?;
        return Ok(judge(gathered, policy, now, true));
    }
    let mut tx = store.transaction()?;
    let gathered = gather(tx.view(), database, policy)?;
    let report = judge(gathered, policy, now, false);
    if report.forgotten.is_empty() {
        return Ok(report);
    }
    for judged in &report.forgotten {
        tx.forget_image(&judged.id, now)?;
    }
    tx.commit(&[], "")?;
    Ok(report)
}

/// Candidates and what else the walk saw.
struct Gathered {
    candidates: Vec<Candidate>,
    schema_only: usize,
    already_forgotten: usize,
    unknown_tags: Vec<String>,
}

fn gather(
    view: View<'_>,
    database: Option<&str>,
    policy: &Policy,
) -> Result<Gathered, migsnap_store::Error> {
    let mut tags: HashMap<ObjectId, Vec<String>> = HashMap::new();
    let mut tag_names: HashSet<String> = HashSet::new();
    for (name, id) in view.refs("tags/")? {
        let name = name.as_str()["tags/".len()..].to_owned();
        tag_names.insert(name.clone());
        tags.entry(id).or_default().push(name);
    }
    let forgotten: HashSet<ObjectId> = view.forgotten()?.into_iter().map(|(id, _)| id).collect();
    let mut gathered = Gathered {
        candidates: Vec::new(),
        schema_only: 0,
        already_forgotten: 0,
        unknown_tags: policy
            .tags
            .iter()
            .filter(|t| !tag_names.contains(*t))
            .cloned()
            .collect(),
    };
    let mut seen: HashSet<ObjectId> = HashSet::new();
    for (name, head) in view.refs("heads/")? {
        let db = &name.as_str()["heads/".len()..];
        if database.is_some_and(|wanted| wanted != db) {
            continue;
        }
        for step in first_parents(view, Some(head)).until_seen(&mut seen) {
            let (id, snapshot) = step?;
            if snapshot.image.is_none() {
                gathered.schema_only += 1;
            } else if forgotten.contains(&id) {
                gathered.already_forgotten += 1;
            } else {
                gathered.candidates.push(Candidate {
                    id,
                    time: snapshot.time,
                    database: db.to_owned(),
                    tags: tags.get(&id).cloned().unwrap_or_default(),
                    head: id == head,
                });
            }
        }
    }
    Ok(gathered)
}

fn judge(gathered: Gathered, policy: &Policy, now: i64, dry_run: bool) -> ForgetReport {
    let by_id: HashMap<ObjectId, &Candidate> =
        gathered.candidates.iter().map(|c| (c.id, c)).collect();
    let mut report = ForgetReport {
        dry_run,
        schema_only: gathered.schema_only,
        already_forgotten: gathered.already_forgotten,
        unknown_tags: gathered.unknown_tags.clone(),
        ..ForgetReport::default()
    };
    for decision in plan_at(&gathered.candidates, policy, now) {
        let candidate = by_id[&decision.id];
        let judged = Judged {
            id: decision.id,
            time: candidate.time,
            database: candidate.database.clone(),
            reasons: decision.reasons,
        };
        if decision.keep {
            report.kept.push(judged);
        } else {
            report.forgotten.push(judged);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds since the epoch of a UTC calendar time.
    fn at(year: i16, month: i8, day: i8, hour: i8) -> i64 {
        jiff::civil::datetime(year, month, day, hour, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_second()
    }

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes([n; 32])
    }

    fn candidate(n: u8, time: i64) -> Candidate {
        Candidate {
            id: id(n),
            time,
            database: "app".into(),
            tags: Vec::new(),
            head: false,
        }
    }

    /// The numbers of the kept candidates, in decision order.
    fn kept(decisions: &[Decision]) -> Vec<u8> {
        decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.id.as_bytes()[0])
            .collect()
    }

    fn reasons(decisions: &[Decision], n: u8) -> Vec<&str> {
        decisions
            .iter()
            .find(|d| d.id == id(n))
            .unwrap()
            .reasons
            .iter()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn the_helper_computes_utc_epoch_seconds() {
        assert_eq!(at(2025, 1, 1, 0), 1_735_689_600);
        assert_eq!(at(1970, 1, 2, 1), 86_400 + 3_600);
    }

    #[test]
    fn keep_last_keeps_the_newest_n_whatever_the_input_order() {
        let list = [
            candidate(1, 100),
            candidate(3, 300),
            candidate(2, 200),
            candidate(5, 500),
            candidate(4, 400),
        ];
        let policy = Policy {
            last: Count::Most(2),
            ..Policy::default()
        };
        let decisions = plan(&list, &policy);
        let order: Vec<u8> = decisions.iter().map(|d| d.id.as_bytes()[0]).collect();
        assert_eq!(order, [5, 4, 3, 2, 1]);
        assert_eq!(kept(&decisions), [5, 4]);
        assert_eq!(reasons(&decisions, 5), ["last snapshot"]);
        assert!(reasons(&decisions, 3).is_empty());
    }

    #[test]
    fn keep_last_with_more_count_than_snapshots_keeps_all() {
        let list = [candidate(1, 100), candidate(2, 200)];
        let policy = Policy {
            last: Count::Most(5),
            ..Policy::default()
        };
        assert_eq!(kept(&plan(&list, &policy)), [2, 1]);
    }

    #[test]
    fn same_second_snapshots_keep_their_history_order() {
        // History order (newest first) is the input order; keep-last must
        // keep the head-most one, not an arbitrary one of the same second.
        let list = [candidate(9, 100), candidate(8, 100), candidate(7, 100)];
        let policy = Policy {
            last: Count::Most(1),
            ..Policy::default()
        };
        assert_eq!(kept(&plan(&list, &policy)), [9]);
    }

    #[test]
    fn keep_daily_keeps_the_newest_of_each_day() {
        // Day 3 has three snapshots, day 2 two, day 1 one.
        let list = [
            candidate(1, at(2024, 3, 1, 12)),
            candidate(2, at(2024, 3, 2, 8)),
            candidate(3, at(2024, 3, 2, 20)),
            candidate(4, at(2024, 3, 3, 1)),
            candidate(5, at(2024, 3, 3, 9)),
            candidate(6, at(2024, 3, 3, 23)),
        ];
        let policy = Policy {
            daily: Count::Most(2),
            ..Policy::default()
        };
        // Newest of day 3 (23h) and of day 2 (20h); then the count is spent.
        let decisions = plan(&list, &policy);
        assert_eq!(kept(&decisions), [6, 3]);
        assert_eq!(reasons(&decisions, 3), ["daily snapshot"]);
    }

    #[test]
    fn a_rule_with_count_left_also_keeps_the_oldest_snapshot() {
        // Two days, but five allowed: restic keeps the newest of each day
        // and, since counts are left, the oldest snapshot too.
        let list = [
            candidate(1, at(2024, 3, 1, 8)),
            candidate(2, at(2024, 3, 1, 12)),
            candidate(3, at(2024, 3, 2, 9)),
            candidate(4, at(2024, 3, 2, 10)),
        ];
        let policy = Policy {
            daily: Count::Most(5),
            ..Policy::default()
        };
        assert_eq!(kept(&plan(&list, &policy)), [4, 2, 1]);
    }

    #[test]
    fn keep_hourly_buckets_by_utc_hour() {
        let list = [
            candidate(1, at(2024, 3, 1, 8) + 10),
            candidate(2, at(2024, 3, 1, 8) + 3_599),
            candidate(3, at(2024, 3, 1, 9)),
            candidate(4, at(2024, 3, 1, 9) + 60),
        ];
        let policy = Policy {
            hourly: Count::Most(2),
            ..Policy::default()
        };
        assert_eq!(kept(&plan(&list, &policy)), [4, 2]);
    }

    #[test]
    fn keep_weekly_uses_iso_weeks_across_the_year_boundary() {
        // 2024-12-28 is a Saturday of ISO week 2024-W52; Monday 2024-12-30
        // and Thursday 2025-01-02 are both in 2025-W01; Monday 2025-01-06
        // starts 2025-W02. Bucketing by calendar year would split W01 in two.
        let list = [
            candidate(1, at(2024, 12, 28, 12)),
            candidate(2, at(2024, 12, 30, 12)),
            candidate(3, at(2025, 1, 2, 12)),
            candidate(4, at(2025, 1, 6, 12)),
        ];
        let policy = Policy {
            weekly: Count::Most(3),
            ..Policy::default()
        };
        let decisions = plan(&list, &policy);
        assert_eq!(kept(&decisions), [4, 3, 1]);
        assert_eq!(reasons(&decisions, 1), ["weekly snapshot"]);

        // 2020 has 53 ISO weeks: Friday 2021-01-01 is in 2020-W53, with
        // Thursday 2020-12-31; Monday 2021-01-04 is 2021-W01.
        let list = [
            candidate(1, at(2020, 12, 31, 0)),
            candidate(2, at(2021, 1, 1, 0)),
            candidate(3, at(2021, 1, 4, 0)),
        ];
        let policy = Policy {
            weekly: Count::Most(2),
            ..Policy::default()
        };
        assert_eq!(kept(&plan(&list, &policy)), [3, 2]);
    }

    #[test]
    fn keep_monthly_and_yearly() {
        let list = [
            candidate(1, at(2022, 6, 1, 0)),
            candidate(2, at(2023, 11, 5, 0)),
            candidate(3, at(2023, 12, 1, 0)),
            candidate(4, at(2023, 12, 31, 0)),
            candidate(5, at(2024, 1, 15, 0)),
            candidate(6, at(2024, 1, 20, 0)),
        ];
        let monthly = Policy {
            monthly: Count::Most(3),
            ..Policy::default()
        };
        // 2024-01 -> 6, 2023-12 -> 4, 2023-11 -> 2.
        assert_eq!(kept(&plan(&list, &monthly)), [6, 4, 2]);
        let yearly = Policy {
            yearly: Count::Unlimited,
            ..Policy::default()
        };
        // 2024 -> 6, 2023 -> 4, 2022 -> 1.
        assert_eq!(kept(&plan(&list, &yearly)), [6, 4, 1]);
    }

    #[test]
    fn unlimited_keeps_every_bucket() {
        let list: Vec<Candidate> = (1..=10u8)
            .map(|n| candidate(n, at(2024, 1, i8::try_from(n).unwrap(), 0)))
            .collect();
        let policy = Policy {
            daily: Count::Unlimited,
            ..Policy::default()
        };
        assert_eq!(kept(&plan(&list, &policy)).len(), 10);
    }

    #[test]
    fn combined_rules_report_every_reason() {
        let list = [
            candidate(1, at(2024, 1, 10, 0)),
            candidate(2, at(2024, 2, 10, 0)),
            candidate(3, at(2024, 3, 1, 8)),
            candidate(4, at(2024, 3, 1, 9)),
            candidate(5, at(2024, 3, 2, 9)),
            candidate(6, at(2024, 3, 3, 9)),
        ];
        let policy = Policy {
            last: Count::Most(2),
            daily: Count::Most(3),
            monthly: Count::Most(2),
            ..Policy::default()
        };
        let decisions = plan(&list, &policy);
        // last: 6, 5. daily: 6 (03-03), 5 (03-02), 4 (03-01). monthly: 6
        // (2024-03), 2 (2024-02). 3 and 1 are older than every count.
        assert_eq!(kept(&decisions), [6, 5, 4, 2]);
        assert_eq!(
            reasons(&decisions, 6),
            ["last snapshot", "daily snapshot", "monthly snapshot"]
        );
        assert_eq!(reasons(&decisions, 5), ["last snapshot", "daily snapshot"]);
        assert_eq!(reasons(&decisions, 4), ["daily snapshot"]);
        assert_eq!(reasons(&decisions, 2), ["monthly snapshot"]);
    }

    #[test]
    fn keep_within_counts_back_from_the_newest_snapshot_not_now() {
        let newest = at(2020, 5, 10, 12);
        let list = [
            candidate(1, newest - 3 * 86_400),
            candidate(2, newest - 2 * 86_400),
            candidate(3, newest - 86_400 + 1),
            candidate(4, newest),
        ];
        let policy = Policy {
            within: Some(Duration::from_secs(2 * 86_400)),
            ..Policy::default()
        };
        // Exactly two days older than the newest is not *within* (restic's
        // strict After).
        let decisions = plan_at(&list, &policy, at(2025, 1, 1, 0));
        assert_eq!(kept(&decisions), [4, 3]);
        assert_eq!(reasons(&decisions, 4), ["within 2days"]);
    }

    #[test]
    fn keep_within_ignores_snapshots_from_the_future() {
        let now = at(2024, 6, 1, 0);
        let list = [
            candidate(1, now - 2 * 3_600),
            candidate(2, now - 3_600),
            candidate(3, now + 365 * 86_400),
        ];
        let policy = Policy {
            within: Some(Duration::from_secs(3 * 3_600)),
            ..Policy::default()
        };
        // The newest not in the future is 2; the future one is newer still.
        assert_eq!(kept(&plan_at(&list, &policy, now)), [3, 2, 1]);
    }

    #[test]
    fn tagged_and_head_snapshots_are_always_kept() {
        let mut list: Vec<Candidate> = (1..=5u8).map(|n| candidate(n, i64::from(n))).collect();
        list[4].head = true;
        list[1].tags = vec!["v1".into()];
        let policy = Policy {
            last: Count::Most(1),
            ..Policy::default()
        };
        let decisions = plan(&list, &policy);
        assert_eq!(kept(&decisions), [5, 2]);
        assert_eq!(reasons(&decisions, 5), ["head", "last snapshot"]);
        assert_eq!(reasons(&decisions, 2), ["tagged"]);

        // --keep-tag alone is a rule: it keeps what it names, and the head.
        let policy = Policy {
            tags: vec!["v1".into()],
            ..Policy::default()
        };
        let decisions = plan(&list, &policy);
        assert_eq!(kept(&decisions), [5, 2]);
        assert_eq!(reasons(&decisions, 2), ["tagged", "has tag v1"]);
    }

    #[test]
    fn always_kept_snapshots_still_use_their_bucket() {
        // As restic's tagged snapshots do: the head takes the first daily
        // slot, so the second goes to the day before.
        let mut list = vec![
            candidate(1, at(2024, 3, 1, 0)),
            candidate(2, at(2024, 3, 2, 0)),
            candidate(3, at(2024, 3, 3, 0)),
        ];
        list[2].head = true;
        let policy = Policy {
            daily: Count::Most(2),
            ..Policy::default()
        };
        assert_eq!(kept(&plan(&list, &policy)), [3, 2]);
    }

    #[test]
    fn each_database_is_planned_on_its_own() {
        let mut other = candidate(10, 50);
        other.database = "alpha".into();
        let list = [candidate(1, 100), candidate(2, 200), other];
        let policy = Policy {
            last: Count::Most(1),
            ..Policy::default()
        };
        let decisions = plan(&list, &policy);
        // "alpha" sorts first; its only snapshot is its newest.
        let order: Vec<u8> = decisions.iter().map(|d| d.id.as_bytes()[0]).collect();
        assert_eq!(order, [10, 2, 1]);
        assert_eq!(kept(&decisions), [10, 2]);
    }

    #[test]
    fn a_policy_without_rules_is_refused() {
        assert!(Policy::default().is_empty());
        assert!(matches!(
            Policy::default().check(),
            Err(RetentionError::EmptyPolicy)
        ));
        // Zero counts and a zero duration are no rule either, as in restic.
        let zeros = Policy {
            last: Count::Most(0),
            within: Some(Duration::ZERO),
            ..Policy::default()
        };
        assert!(matches!(zeros.check(), Err(RetentionError::EmptyPolicy)));
        // plan itself, like restic's ApplyPolicy, then keeps everything.
        let decisions = plan(&[candidate(1, 1)], &zeros);
        assert_eq!(reasons(&decisions, 1), [REASON_EMPTY]);
        assert!(
            Policy {
                tags: vec!["x".into()],
                ..Policy::default()
            }
            .check()
            .is_ok()
        );
    }

    #[test]
    fn invalid_tag_names_are_refused() {
        let policy = Policy {
            tags: vec!["..".into()],
            ..Policy::default()
        };
        assert!(matches!(policy.check(), Err(RetentionError::BadTag { .. })));
    }

    #[test]
    fn policies_describe_themselves_like_restic() {
        let policy = Policy {
            last: Count::Most(3),
            daily: Count::Most(7),
            monthly: Count::Unlimited,
            within: Some(Duration::from_secs(86_400)),
            ..Policy::default()
        };
        assert_eq!(
            policy.to_string(),
            "keep 3 latest, 7 daily, all monthly snapshots and all snapshots within 1day of the newest"
        );
    }

    #[test]
    fn counts_are_off_by_default_and_only_at_zero() {
        assert_eq!(Count::default(), Count::Most(0));
        assert!(!Count::Most(0).is_on());
        assert!(Count::Most(1).is_on() && Count::Unlimited.is_on());
        let tags_only = Policy {
            tags: vec!["release".into()],
            ..Policy::default()
        };
        assert!(!tags_only.is_empty());
        assert_eq!(tags_only.to_string(), "keep all snapshots tagged release");
        assert_eq!(
            Policy::default().to_string(),
            "keep everything (the policy has no rule)"
        );
    }

    #[test]
    fn times_outside_the_calendar_share_its_first_or_last_bucket() {
        // A damaged clock must not fail the whole policy.
        assert_eq!(year_bucket(i64::MIN, 0), year_bucket(i64::MIN + 1, 0));
        assert_eq!(day_bucket(i64::MAX, 0), day_bucket(i64::MAX - 1, 0));
        let policy = Policy {
            yearly: Count::Most(5),
            ..Policy::default()
        };
        let decisions = plan(
            &[
                candidate(1, i64::MAX),
                candidate(2, i64::MIN),
                candidate(3, 0),
            ],
            &policy,
        );
        assert_eq!(kept(&decisions), [1, 3, 2]);
    }

    #[test]
    fn apply_forgets_in_the_store_and_skips_what_has_no_data() {
        use migsnap_store::{
            Added, Change, Expected, Image, Listing, Object, ObjectStore, RefEdit, Snapshot,
        };
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join(".migsnap")).unwrap();
        let schema = store.write(&Object::Blob(b"schema".to_vec())).unwrap();
        let image = store
            .write(&Object::Image(Image {
                block_size: 4096,
                block_count: 0,
                digest: [0; 32],
                listing: Listing::Full(Vec::new()),
            }))
            .unwrap();
        let mut parent = None;
        let mut ids = Vec::new();
        for (n, with_image) in [(1, true), (2, false), (3, true), (4, true)] {
            let snapshot = Snapshot {
                parents: parent.into_iter().collect(),
                schema,
                image: with_image.then_some(image),
                database: "app".into(),
                time: n,
                message: String::new(),
                host: String::new(),
                tool: String::new(),
                added: Added::default(),
                headers: Vec::new(),
            };
            let id = store.write(&Object::Snapshot(snapshot)).unwrap();
            ids.push(id);
            parent = Some(id);
        }
        let edit = RefEdit {
            name: RefName::new("heads/app").unwrap(),
            change: Change::Update {
                expected: Expected::MustNotExist,
                new: ids[3],
            },
        };
        store.transaction().unwrap().commit(&[edit], "").unwrap();
        let policy = Policy {
            last: Count::Most(1),
            ..Policy::default()
        };

        let dry = apply(&mut store, None, &policy, true).unwrap();
        assert_eq!(dry.schema_only, 1);
        assert_eq!(dry.kept.len(), 1);
        let forgotten: Vec<_> = dry.forgotten.iter().map(|j| j.id).collect();
        assert_eq!(forgotten, [ids[2], ids[0]]);
        assert!(store.view().forgotten().unwrap().is_empty());

        let done = apply(&mut store, Some("app"), &policy, false).unwrap();
        assert_eq!(done.forgotten, dry.forgotten);
        let mut marked: Vec<_> = store
            .view()
            .forgotten()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        marked.sort();
        let mut expected = vec![ids[0], ids[2]];
        expected.sort();
        assert_eq!(marked, expected);

        // Forgotten ones are no longer candidates, so a second run is a no-op.
        let again = apply(&mut store, None, &policy, false).unwrap();
        assert!(again.forgotten.is_empty());
        assert_eq!(again.already_forgotten, 2);

        let nothing = apply(&mut store, Some("other"), &policy, false).unwrap();
        assert!(nothing.kept.is_empty() && nothing.forgotten.is_empty());
        assert!(matches!(
            apply(&mut store, None, &Policy::default(), true),
            Err(RetentionError::EmptyPolicy)
        ));
    }
}
