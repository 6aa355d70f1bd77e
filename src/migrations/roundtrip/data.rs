//! The round trip on real data (`migsnap test --data`): the revisions a
//! real database has not applied yet, run up/down/up on a scratch copy of
//! it, with its rows compared as well as its schema.
//!
//! A data migration that passes on empty databases can still fail on real
//! rows (a backfill that leaves NULLs before a NOT NULL, a unique index
//! over duplicates); this is where that shows before the real upgrade runs.
//!
//! - The source (a database file, or a snapshot) is copied to a scratch
//!   file; the source is only read. A file is copied as one read
//!   transaction sees it, WAL pages included, so a writer at work does not
//!   tear the copy.
//! - The pending revisions are those the copy's `alembic_version` rows (a
//!   SQL folder's `user_version`) leave to apply, in the order `alembic
//!   upgrade heads` applies them. Each is tested from the state the ones
//!   before it left, as the real upgrade would run them; the test stops at
//!   the first failure, since the revisions after it would start from a
//!   state the real upgrade never reaches.
//! - Rows, at each state, per ordinary table: the row count and a hash of
//!   the rows ([`super::content`]). After the downgrade, every table
//!   that was there before must hold as many rows as before, and the same
//!   rows, except a table the upgrade changed the rows of without changing
//!   its definition (a data step such as a backfill, which a downgrade is
//!   not expected to take back). After the second upgrade, every table must
//!   hold as many rows as after the first (not the same rows: a backfill
//!   may stamp the time).
//! - A revision whose upgrade adds a version row instead of replacing its
//!   parent's (its `down_revision` is not where the database stands) starts
//!   a second head: it fails as `second-head`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use super::content::{self, TableContent};
use super::{FailedStep, Point, RevisionOutcome, RoundTrip, RoundTripError, Watch};
use crate::finding::Finding;
use crate::migrations::drift::{self, LiveDatabase};
use crate::migrations::history::position::{self, Position};
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::replay::runner::StepFailure;
use crate::migrations::replay::{self, ReplayError};
use crate::migrations::side::Side;
use crate::repo::Repo;
use crate::schema::Schema;
use crate::schema::diff::{self, SchemaDiff};
use crate::snapshots::sqlite::{Database, EachPage, SqliteError};

/// What the round trip on real data found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DataReport {
    /// The database tested on, as shown: a path, `NAME (live)` or a
    /// snapshot's short id.
    pub source: String,
    /// The revisions its copy records as applied.
    pub stamped: Vec<RevisionId>,
    /// The pending revisions tested, in the order they were applied.
    pub revisions: Vec<DataOutcome>,
    /// Pending revisions after the first failure, not tested.
    pub untested: Vec<RevisionId>,
    /// How many failed: 0 or 1.
    pub failures: usize,
    /// One `roundtrip.failed`, `roundtrip.data-differs` or
    /// `roundtrip.second-head` (error) for the failure, one `drift.order`
    /// or `drift.name` (info) per difference of form.
    pub findings: Vec<Finding>,
}

/// How one pending revision did on the copy.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DataOutcome {
    /// The round trip of its schema, as on empty databases.
    #[serde(flatten)]
    pub round_trip: RevisionOutcome,
    /// Row counts per table at each state.
    pub rows: Vec<TableRows>,
    /// For a `*-data-differs` step: the tables whose rows are wrong.
    pub data: Vec<DataDifference>,
    /// For an `upgrade-error`: what the failed upgrade left behind, from
    /// the schema before it (a half-created table, a batch copy), when it
    /// left anything.
    pub left: Option<SchemaDiff>,
}

/// One table's row counts through a round trip; `None` where the table
/// does not exist (or the step was not reached).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableRows {
    /// The table.
    pub table: String,
    /// Before the upgrade.
    pub before: Option<u64>,
    /// After the first upgrade.
    pub upgraded: Option<u64>,
    /// After the downgrade.
    pub downgraded: Option<u64>,
    /// After the second upgrade.
    pub reupgraded: Option<u64>,
}

/// A table whose rows are not what the step should have left.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DataDifference {
    /// The table.
    pub table: String,
    /// The rows it should hold: before the upgrade (after a downgrade) or
    /// after the first upgrade (after the second).
    pub expected_rows: u64,
    /// The rows it holds.
    pub found_rows: u64,
    /// As many rows, but not the same ones.
    pub content_differs: bool,
}

impl DataDifference {
    /// One line: `user: 3 rows, expected 5` or `user: other rows`.
    pub fn describe(&self) -> String {
        if self.content_differs {
            format!("{}: the same {} rows changed", self.table, self.found_rows)
        } else {
            format!(
                "{}: {} rows, expected {}",
                self.table, self.found_rows, self.expected_rows
            )
        }
    }
}

impl RoundTrip<'_> {
    /// Tests the revisions `source` has not applied yet on a scratch copy
    /// of it, stopping at the first that fails; `on_testing` hears of each
    /// before it starts.
    pub fn run_on_data(
        &self,
        repo: &Repo,
        source: &Side,
        on_testing: &mut dyn FnMut(&str),
    ) -> Result<DataReport, RoundTripError> {
        self.check_way_down()?;
        let scratch_dir = replay::scratch_dir()?;
        let work = scratch_dir.path().join("data.db");
        self.copy_source(repo, source, &work)?;
        let meta = LiveDatabase::capture(&work, self.busy_timeout)
            .map_err(ReplayError::from)?
            .meta;
        let kind = self.replayer.project().kind;
        let stamped = drift::stamped(kind, &meta, self.graph).unwrap_or_default();
        let pending = self.pending(&stamped)?;
        let mut report = DataReport {
            source: source.label(),
            stamped,
            revisions: Vec::new(),
            untested: Vec::new(),
            failures: 0,
            findings: Vec::new(),
        };
        if pending.is_empty() {
            return Ok(report);
        }
        let mut runner = self.replayer.runner(&work)?;
        for (at, revision) in pending.iter().enumerate() {
            on_testing(revision);
            let mut watch = DataWatch::new(self.busy_timeout);
            let mut round_trip = self.steps(runner.as_mut(), &work, revision, &mut watch)?;
            let left = match round_trip.step {
                Some(FailedStep::UpgradeError) => {
                    let difference = diff::diff(&watch.before, &self.capture(&work)?);
                    (!difference.changes.is_empty()).then_some(difference)
                }
                _ => None,
            };
            if round_trip.ok
                && let Some(why) = self.second_head_on_data(revision, &watch)
            {
                round_trip = round_trip.second_head(why);
            }
            let data = std::mem::take(&mut watch.differences);
            let described: Vec<String> = data.iter().map(DataDifference::describe).collect();
            report.findings.extend(super::outcome_findings(
                &round_trip,
                Some(&described.join("; ")),
            ));
            let failed = !round_trip.ok;
            report.revisions.push(DataOutcome {
                round_trip,
                rows: watch.rows(),
                data,
                left,
            });
            if failed {
                report.failures = 1;
                report.untested = pending[at + 1..].to_vec();
                break;
            }
        }
        Ok(report)
    }

    /// Copies `source` to the new file `work`. A database file is read in
    /// one read transaction, page by page through SQLite, so the copy is
    /// one committed state even while the application writes.
    fn copy_source(&self, repo: &Repo, source: &Side, work: &Path) -> Result<(), RoundTripError> {
        match source {
            Side::File { path, .. } => {
                let mut database =
                    Database::open(path, self.busy_timeout).map_err(ReplayError::from)?;
                let mut file = std::fs::File::create_new(work).map_err(ReplayError::Scratch)?;
                let mut sink = EachPage::new(|_, page: &[u8]| {
                    file.write_all(page).map_err(|source| SqliteError::Io {
                        path: work.to_path_buf(),
                        source,
                    })
                });
                database
                    .capture(Some(&mut sink), None)
                    .map_err(ReplayError::from)?;
            }
            Side::Snapshot { id, .. } => {
                self.replayer.load_stored(repo, *id, work)?;
            }
        }
        Ok(())
    }

    /// The revisions a database at `stamped` has to apply, in order.
    fn pending(&self, stamped: &[RevisionId]) -> Result<Vec<RevisionId>, RoundTripError> {
        let listed = |ids: &[&RevisionId]| {
            ids.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let position = position::classify(self.graph, Some(stamped));
        match &position {
            Position::UnknownRevision { unknown } => Err(RoundTripError::Unplaced {
                class: position.class(),
                revisions: listed(&unknown.iter().collect::<Vec<_>>()),
            }),
            Position::Inconsistent {
                ancestor,
                descendant,
            } => Err(RoundTripError::Unplaced {
                class: position.class(),
                revisions: listed(&[ancestor, descendant]),
            }),
            _ => Ok(position.pending().to_vec()),
        }
    }

    /// Why `revision` starts a second head on this database: its upgrade
    /// added a version row instead of replacing its parent's. A base
    /// revision or a labelled branch adds a row by design.
    fn second_head_on_data(&self, revision: &RevisionId, watch: &DataWatch) -> Option<StepFailure> {
        let declared = self.graph.get(revision)?;
        let (Some(before), Some(upgraded)) = (&watch.versions[0], &watch.versions[1]) else {
            return None;
        };
        if declared.parents.is_empty()
            || !declared.branch_labels.is_empty()
            || upgraded.len() <= before.len()
        {
            return None;
        }
        let parents = declared
            .parents
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Some(StepFailure {
            error: format!(
                "its down_revision {parents} is not where the database stands ({}): upgrading to it adds a second head, \
                 where `alembic downgrade -1` picks which head to undo by itself",
                before.join(", ")
            ),
            file: None,
            detail: String::new(),
        })
    }
}

/// The watch of the round trip on real data: the rows at every state, and
/// the version rows before and after the upgrade.
struct DataWatch {
    busy_timeout: std::time::Duration,
    /// The schema before the upgrade.
    before: Schema,
    /// The schema after the first upgrade.
    upgraded: Schema,
    /// Each table's rows at each [`Point`], in its order.
    contents: [BTreeMap<String, TableContent>; 4],
    /// `alembic_version` rows before and after the first upgrade.
    versions: [Option<Vec<String>>; 2],
    /// What the downgrade or the second upgrade got wrong.
    differences: Vec<DataDifference>,
}

impl DataWatch {
    fn new(busy_timeout: std::time::Duration) -> DataWatch {
        DataWatch {
            busy_timeout,
            before: Schema::default(),
            upgraded: Schema::default(),
            contents: Default::default(),
            versions: Default::default(),
            differences: Vec::new(),
        }
    }

    /// The row counts of every table seen, at each state.
    fn rows(&self) -> Vec<TableRows> {
        let tables: BTreeSet<&String> = self.contents.iter().flat_map(|c| c.keys()).collect();
        let count =
            |point: Point, table: &str| self.contents[point as usize].get(table).map(|c| c.rows);
        tables
            .into_iter()
            .map(|table| TableRows {
                table: table.clone(),
                before: count(Point::Before, table),
                upgraded: count(Point::Upgraded, table),
                downgraded: count(Point::Downgraded, table),
                reupgraded: count(Point::Reupgraded, table),
            })
            .collect()
    }

    /// Whether the upgrade changed the rows of `table` and not its
    /// definition: a data step, which a downgrade need not take back.
    fn data_step(&self, table: &str) -> bool {
        let [before, upgraded, ..] = &self.contents;
        self.before.table(table).is_some()
            && self.before.table(table) == self.upgraded.table(table)
            && before.get(table).map(|c| c.hash) != upgraded.get(table).map(|c| c.hash)
    }

    /// The tables of `expected` whose rows `found` does not have: by count,
    /// and by content where `same_rows` says the rows must be the same.
    fn compare(
        expected: &BTreeMap<String, TableContent>,
        found: &BTreeMap<String, TableContent>,
        same_rows: impl Fn(&str) -> bool,
    ) -> Vec<DataDifference> {
        expected
            .iter()
            .filter_map(|(table, wanted)| {
                // A table gone is a schema difference, reported as such.
                let got = found.get(table)?;
                let content_differs =
                    got.rows == wanted.rows && got.hash != wanted.hash && same_rows(table);
                (got.rows != wanted.rows || content_differs).then(|| DataDifference {
                    table: table.clone(),
                    expected_rows: wanted.rows,
                    found_rows: got.rows,
                    content_differs,
                })
            })
            .collect()
    }
}

impl Watch for DataWatch {
    fn at(
        &mut self,
        point: Point,
        scratch: &Path,
        schema: &Schema,
    ) -> Result<Option<FailedStep>, RoundTripError> {
        self.contents[point as usize] = content::read(scratch, schema)?;
        let versions = || -> Result<Option<Vec<String>>, RoundTripError> {
            Ok(LiveDatabase::capture(scratch, self.busy_timeout)
                .map_err(ReplayError::from)?
                .meta
                .alembic_versions)
        };
        let [before, upgraded, downgraded, reupgraded] = &self.contents;
        let (differences, step) = match point {
            Point::Before => {
                self.before = schema.clone();
                self.versions[0] = versions()?;
                return Ok(None);
            }
            Point::Upgraded => {
                self.upgraded = schema.clone();
                self.versions[1] = versions()?;
                return Ok(None);
            }
            Point::Downgraded => (
                DataWatch::compare(before, downgraded, |table| !self.data_step(table)),
                FailedStep::DowngradeDataDiffers,
            ),
            Point::Reupgraded => (
                DataWatch::compare(upgraded, reupgraded, |_| false),
                FailedStep::ReupgradeDataDiffers,
            ),
        };
        if differences.is_empty() {
            return Ok(None);
        }
        self.differences = differences;
        Ok(Some(step))
    }
}
