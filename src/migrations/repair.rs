//! Repair: the SQL that brings a live schema to the reference schema of a
//! revision, planned first and applied only on request, through a verified
//! copy.
//!
//! The target is the reference, except that objects the database has and
//! the reference lacks (extra tables, columns, indexes, views, triggers) are
//! kept unless the caller allows destructive steps: they are reported, not
//! silently dropped. Applying runs the plan on a copy of the database in one
//! transaction, with foreign-key enforcement off outside it and
//! `foreign_key_check` before the commit, then requires the copy's schema to
//! mean exactly the target; only then does the copy replace the database
//! (see [`crate::snapshots::restore::rewrite`]). [`repair`] is the whole workflow:
//! the reference, the plan, and on request the application with its
//! snapshots before and after.
//!
//! A repair changes the schema only. When the schema is exactly an earlier
//! revision's, the revisions between it and the targets may also move rows
//! (a backfill); a repair skips those steps, so it warns about each such
//! revision ([`codes::SKIPS_DATA_STEPS`]) and names the fix that runs
//! them: a verified stamp at the located revision, then the upgrade.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use migsnap_store::ObjectId;
use migsnap_store::progress::Progress;
use rusqlite::Connection;
use serde::Serialize;

use crate::finding::{Finding, Severity};
use crate::migrations::drift::{self, LiveDatabase};
use crate::migrations::history::data_steps;
use crate::migrations::history::graph::Revision;
use crate::migrations::history::project::MigrationKind;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::history::targets::{TargetError, Targets};
use crate::migrations::replay::{ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::repo::{Repo, SelectError, Tracked};
use crate::schema::diff::{self, Op, SchemaDiff};
use crate::schema::model::{IndexOrigin, fold};
use crate::schema::plan::{self, Plan};
use crate::schema::{self as schema_mod, Schema};
use crate::snapshots::restore::{self, ReplaceOptions, RestoreError};
use crate::snapshots::snapshot::{self, SnapshotError, SnapshotOptions};

/// The stable finding codes of `repair`.
pub mod codes {
    /// The repair skips revisions whose upgrade moves rows, which no schema
    /// change reproduces.
    pub const SKIPS_DATA_STEPS: &str = "repair.skips-data-steps";

    /// Every code above, for validating configuration.
    pub const ALL: &[&str] = &[SKIPS_DATA_STEPS];
}

/// What a repair would do.
#[derive(Clone, Debug, Serialize)]
pub struct RepairPlan {
    /// The schema the database will have: the reference, plus the extras
    /// that are kept.
    #[serde(skip)]
    pub target: Schema,
    /// The statements, each with its reason.
    pub plan: Plan,
    /// Objects only the database has, kept because destructive steps were
    /// not allowed (the `added` changes from the reference to the database).
    pub kept: SchemaDiff,
    /// Whether some step can still lose data (a table rebuilt without a
    /// column, a type narrowed): refused unless allowed.
    pub destructive: bool,
}

/// Plans the change from `live` to `reference`. Without
/// `allow_destructive`, what only `live` has is kept in the target.
pub fn plan(live: &Schema, reference: &Schema, allow_destructive: bool) -> RepairPlan {
    let mut target = reference.clone();
    let mut kept = SchemaDiff::default();
    if !allow_destructive {
        let extras = diff::diff(reference, live);
        keep_extras(&mut target, live);
        kept.changes = extras
            .changes
            .into_iter()
            .filter(|c| c.op == Op::Added)
            .collect();
    }
    target.excluded = live.excluded.clone();
    let plan = plan::plan(live, &target);
    let destructive = plan.steps.iter().any(|s| s.destructive);
    RepairPlan {
        target,
        plan,
        kept,
        destructive,
    }
}

/// Adds to `target` what `live` has beyond it: whole tables, created
/// indexes, views and triggers, and extra columns of shared tables
/// (appended, so the reference's columns keep their order).
fn keep_extras(target: &mut Schema, live: &Schema) {
    for (key, table) in &live.tables {
        match target.tables.get_mut(key) {
            None => {
                target.tables.insert(key.clone(), table.clone());
                // With its constraint indexes, which are part of the table.
                for (index_key, index) in &live.indexes {
                    if fold(&index.table) == *key {
                        target.indexes.insert(index_key.clone(), index.clone());
                    }
                }
            }
            Some(shared) => {
                for column in &table.columns {
                    if !shared
                        .columns
                        .iter()
                        .any(|c| c.name.eq_ignore_ascii_case(&column.name))
                    {
                        shared.columns.push(column.clone());
                    }
                }
            }
        }
    }
    for (key, index) in &live.indexes {
        if index.origin == IndexOrigin::Created && !target.indexes.contains_key(key) {
            target.indexes.insert(key.clone(), index.clone());
        }
    }
    for (key, view) in &live.views {
        target
            .views
            .entry(key.clone())
            .or_insert_with(|| view.clone());
    }
    for (key, trigger) in &live.triggers {
        target
            .triggers
            .entry(key.clone())
            .or_insert_with(|| trigger.clone());
    }
    schema_mod::canon::canonicalise(target);
}

/// Why applying a plan failed; the database file it ran on is then left
/// as it was (the transaction is rolled back).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A statement failed.
    #[error("step {step} failed: {message} (SQL: {sql})")]
    Statement {
        /// Its position, from 1.
        step: usize,
        /// The statement.
        sql: String,
        /// SQLite's message.
        message: String,
    },
    /// `PRAGMA foreign_key_check` found rows that break a foreign key.
    #[error(
        "the change leaves {count} row(s) breaking foreign keys (first: table {table}, rowid {rowid})"
    )]
    ForeignKeys {
        /// How many violations.
        count: usize,
        /// The first violating table.
        table: String,
        /// Its rowid.
        rowid: i64,
    },
    /// The result does not mean the target schema.
    #[error("after the change the schema still differs from the target in {} object(s)", remaining.changes.len())]
    Unverified {
        /// What still differs (target → result).
        remaining: SchemaDiff,
    },
    /// The copy could not be opened or read.
    #[error("cannot work on the copy of the database: {0}")]
    Open(String),
}

/// Runs `plan` on the database at `path` in one transaction and commits
/// only when the result's schema means `target` and no foreign key is
/// broken; otherwise rolls back.
pub fn apply(path: &Path, plan: &Plan, target: &Schema) -> Result<(), ApplyError> {
    let conn = Connection::open(path).map_err(|e| ApplyError::Open(e.to_string()))?;
    let statement_error = |step: usize, sql: &str, e: rusqlite::Error| ApplyError::Statement {
        step,
        sql: sql.to_owned(),
        message: e.to_string(),
    };
    let rollback = |conn: &Connection| {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let _ = conn.execute_batch("PRAGMA foreign_keys=ON");
    };
    for (index, step) in plan.steps.iter().enumerate() {
        let number = index + 1;
        let sql = step.sql.trim();
        if sql.eq_ignore_ascii_case("COMMIT") {
            // Everything is in place but not committed: judge it now.
            if let Err(e) = verify(&conn, target) {
                rollback(&conn);
                return Err(e);
            }
        }
        if sql.eq_ignore_ascii_case("PRAGMA foreign_key_check") {
            match foreign_key_check(&conn) {
                Ok(None) => continue,
                Ok(Some(broken)) => {
                    rollback(&conn);
                    return Err(broken);
                }
                Err(e) => {
                    rollback(&conn);
                    return Err(statement_error(number, sql, e));
                }
            }
        }
        if let Err(e) = conn.execute_batch(sql) {
            rollback(&conn);
            return Err(statement_error(number, sql, e));
        }
    }
    if !conn.is_autocommit() {
        // A plan always ends its transaction; this is for an empty plan.
        conn.execute_batch("COMMIT")
            .map_err(|e| statement_error(plan.steps.len(), "COMMIT", e))?;
    }
    Ok(())
}

/// What to repair, and how.
#[derive(Clone, Debug)]
pub struct RepairRequest<'a> {
    /// The revisions whose reference is the goal.
    pub targets: &'a Targets,
    /// Whether `targets` were inferred from the schema (see
    /// [`recorded_targets`]): planned, never applied.
    pub inferred: bool,
    /// Apply the plan (else only plan it).
    pub apply: bool,
    /// Drop what the reference lacks, and allow steps that can lose data.
    pub allow_destructive: bool,
    /// Apply even though other processes have the database open.
    pub force: bool,
    /// How long to wait for a database locked by a writer.
    pub busy_timeout: Duration,
}

/// What a repair planned and did. Serialized, it is the JSON of
/// `migsnap repair --format json`.
#[derive(Clone, Debug, Serialize)]
pub struct RepairReport {
    /// The database file.
    pub database: PathBuf,
    /// The revisions repaired towards.
    pub targets: Targets,
    /// Whether `targets` were inferred from the schema because the version
    /// rows name a revision no script declares: the nearest revision, for
    /// a plan to review, never applied.
    pub inferred: bool,
    /// Their reference snapshot.
    pub reference: ObjectId,
    /// The plan, what it keeps, and whether it can lose data.
    #[serde(flatten)]
    pub planned: RepairPlan,
    /// Warnings about what the plan cannot do: revisions it skips whose
    /// upgrade moves rows ([`codes::SKIPS_DATA_STEPS`]).
    pub findings: Vec<Finding>,
    /// Whether the plan was applied (never for an empty plan).
    pub applied: bool,
    /// The snapshot taken before applying (the undo).
    pub safety_snapshot: Option<ObjectId>,
    /// The snapshot of the repaired database.
    pub after_snapshot: Option<ObjectId>,
    /// The database, when this call began tracking it (its snapshots need a
    /// name); not part of the JSON, where the database is named already.
    #[serde(skip)]
    pub newly_tracked: Option<Tracked>,
}

impl RepairReport {
    /// Whether the database is left with nothing to repair: the plan was
    /// empty, or it was applied. Never with inferred targets: the version
    /// rows still name a revision no script declares.
    pub fn settled(&self) -> bool {
        !self.inferred && (self.planned.plan.is_empty() || self.applied)
    }
}

/// Why a repair could not run. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The reference could not be built or read.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// A migration failed while the reference was built.
    #[error("the reference for {targets} could not be built: migration {} failed", failure.revision)]
    Reference {
        /// The revisions whose reference was needed.
        targets: Targets,
        /// The step that failed.
        failure: Box<ReplayFailure>,
    },
    /// No revision was named, and the version rows record none.
    #[error("the database records no revision to repair towards")]
    NoneRecorded,
    /// No revision was named, a version row names a revision no script
    /// declares, and no reference could be built to find the nearest.
    #[error(
        "the database records revision {unknown}, which no migration script declares, and no reference could be built to find the revision nearest to its schema"
    )]
    Unlocated {
        /// The unknown revision.
        unknown: RevisionId,
        /// The replay step that failed, if one did.
        failure: Option<Box<ReplayFailure>>,
    },
    /// Applying was asked for towards a revision inferred from the schema.
    #[error(
        "the stamped revision is unknown; the plan goes towards the nearest revision, {targets}, and is applied only towards a revision named; nothing was changed"
    )]
    Inferred {
        /// The nearest revision(s).
        targets: Targets,
    },
    /// Applying was asked for, but the plan can lose data and that was not
    /// allowed.
    #[error("the repair of {} has steps that can lose data; nothing was changed", path.display())]
    Destructive {
        /// The database.
        path: PathBuf,
    },
    /// The database could not be tracked for its snapshots.
    #[error(transparent)]
    Track(#[from] SelectError),
    /// The safety snapshot, the copy or the write failed.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// The plan failed on the copy, or did not give the target. Its text
    /// is the reason (it has no cause of its own), so it is part of this
    /// message; what a person must know first is that nothing changed.
    #[error("repair failed, nothing was changed: {0}")]
    Apply(ApplyError),
    /// The snapshot after the repair could not be taken (the repair
    /// itself is done).
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Plans the repair of `live` towards the reference of `request.targets`
/// (built if needed; `on_event` hears of each replay step) and, when asked,
/// applies it: a safety snapshot, the plan on a verified copy that replaces
/// the database, then an "after" snapshot. An untracked database is
/// tracked (under its file stem) for those snapshots only when there is
/// something to apply.
pub fn repair(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    live: &LiveDatabase,
    request: &RepairRequest<'_>,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
    progress: &mut dyn Progress,
) -> Result<RepairReport, RepairError> {
    let targets = request.targets;
    if request.apply && request.inferred {
        return Err(RepairError::Inferred {
            targets: targets.clone(),
        });
    }
    let (reference, replayed) = replayer.reference(repo, targets, on_event)?;
    let Some(reference) = reference else {
        let mut failure = replayed
            .failure
            .expect("holds: no reference means a failed step");
        failure.confirm_outside(&live.path, &live.schema);
        return Err(RepairError::Reference {
            targets: targets.clone(),
            failure: Box::new(failure),
        });
    };
    let reference_schema = reference.schema(repo)?;
    let planned = plan(&live.schema, &reference_schema, request.allow_destructive);
    // An empty plan skips nothing: the schema is the targets' already.
    let findings = if planned.plan.is_empty() {
        Vec::new()
    } else {
        skipped_data(repo, replayer, live, targets)?
            .map(|skipped| skipped.findings(targets, replayer.project().kind))
            .unwrap_or_default()
    };
    let mut report = RepairReport {
        database: live.path.clone(),
        targets: targets.clone(),
        inferred: request.inferred,
        reference: reference.id,
        planned,
        findings,
        applied: false,
        safety_snapshot: None,
        after_snapshot: None,
        newly_tracked: None,
    };
    if !request.apply || report.planned.plan.is_empty() {
        return Ok(report);
    }
    if report.planned.destructive && !request.allow_destructive {
        return Err(RepairError::Destructive {
            path: live.path.clone(),
        });
    }
    let selected = repo.select_or_track_path(&live.path)?;
    let tracked = selected.tracked;
    let towards = targets.to_string();
    let options = ReplaceOptions {
        force: request.force,
        message: format!("before repair towards {towards}"),
        busy_timeout: request.busy_timeout,
        ..ReplaceOptions::default()
    };
    let planned = &report.planned;
    let (written, ()) = restore::rewrite(repo, &tracked, &options, progress, |copy| {
        apply(copy, &planned.plan, &planned.target).map_err(RepairError::Apply)
    })?;
    let after = snapshot::take(
        repo,
        &tracked,
        &SnapshotOptions {
            message: format!("repaired towards {towards}"),
            busy_timeout: request.busy_timeout,
            ..SnapshotOptions::default()
        },
        progress,
    )?;
    report.applied = true;
    report.newly_tracked = selected.newly_tracked.then_some(tracked);
    report.safety_snapshot = Some(written.safety.expect("holds: rewrite always takes one"));
    report.after_snapshot = Some(after.id());
    Ok(report)
}

/// The revisions a repair works towards when none are named: those the
/// version rows of `live` record, or, when a row names a revision no script
/// declares, the revision(s) its schema is nearest to (built if needed;
/// `on_event` hears of each replay step), with `true`: inferred.
pub fn recorded_targets(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    live: &LiveDatabase,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<(Targets, bool), RepairError> {
    let graph = replayer.graph();
    let rows = drift::stamped(replayer.project().kind, &live.meta, graph);
    match Targets::resolve(graph, &[], rows) {
        Ok(targets) => Ok((targets, false)),
        Err(TargetError::Undeclared { revision }) => {
            match drift::nearest(repo, replayer, graph, live, on_event)? {
                (Some(nearest), _) => Ok((Targets::declared(graph, nearest), true)),
                (None, failure) => Err(RepairError::Unlocated {
                    unknown: revision,
                    failure: failure.map(Box::new),
                }),
            }
        }
        // Without names, an empty record is the only other way to fail.
        Err(_) => Err(RepairError::NoneRecorded),
    }
}

/// Revisions with data steps that a repair towards some targets skips.
#[derive(Clone, Debug)]
pub struct SkippedData<'g> {
    /// The revisions whose reference the schema matches exactly (the
    /// earliest such match up to the targets): where an upgrade would
    /// start.
    pub located: Vec<RevisionId>,
    /// The revisions after `located`, up to the targets, whose upgrade
    /// moves rows, prerequisites first.
    pub revisions: Vec<SkippedRevision<'g>>,
}

/// One revision a repair skips whose upgrade moves rows.
#[derive(Clone, Debug)]
pub struct SkippedRevision<'g> {
    /// The revision, with its data steps.
    pub revision: &'g Revision,
    /// The schema also matches a revision at or after this one: it changes
    /// nothing the schema shows, so whether its rows moved already cannot
    /// be told.
    pub maybe_ran: bool,
}

/// What a repair of `live` towards `targets` skips that moves rows: the
/// revisions with data steps between the earliest revision whose reference
/// the schema matches exactly and the targets. `None` when no revision up
/// to the targets has data steps (nothing is compared then), when the
/// schema matches no earlier revision, or when none is skipped. Only the
/// references a repair towards `targets` builds are compared: nothing is
/// replayed.
///
/// The earliest match is taken because a revision that only moves rows
/// leaves its parent's schema: whether it ran cannot be told from the
/// schema, so it counts as skipped, marked [`SkippedRevision::maybe_ran`].
pub fn skipped_data<'g>(
    repo: &Repo,
    replayer: &Replayer<'g>,
    live: &LiveDatabase,
    targets: &[RevisionId],
) -> Result<Option<SkippedData<'g>>, ReplayError> {
    let graph = replayer.graph();
    if data_steps::between(graph, &[], targets).is_empty() {
        return Ok(None);
    }
    let matches = drift::locate_up_to(repo, replayer, graph, targets, &live.schema, live.semantic)?;
    let same = |ids: &[RevisionId]| {
        let (mut a, mut b) = (ids.to_vec(), targets.to_vec());
        a.sort();
        b.sort();
        a == b
    };
    if matches.iter().any(|candidate| same(&candidate.targets)) {
        return Ok(None);
    }
    let Some((located, later)) = matches.split_first() else {
        return Ok(None);
    };
    let matched_later: BTreeSet<RevisionId> = later
        .iter()
        .flat_map(|candidate| graph.closure(candidate.targets.iter().map(RevisionId::as_str)))
        .collect();
    let revisions: Vec<SkippedRevision<'g>> = data_steps::between(graph, &located.targets, targets)
        .into_iter()
        .map(|revision| SkippedRevision {
            maybe_ran: matched_later.contains(&revision.id),
            revision,
        })
        .collect();
    Ok((!revisions.is_empty()).then(|| SkippedData {
        located: located.targets.clone(),
        revisions,
    }))
}

impl SkippedData<'_> {
    /// One [`codes::SKIPS_DATA_STEPS`] warning per skipped revision, naming
    /// its data steps, with the fix that runs them: a verified stamp at the
    /// located revision, then the project's upgrade (`kind` says which).
    pub fn findings(&self, targets: &[RevisionId], kind: MigrationKind) -> Vec<Finding> {
        let located = self.located.join(" + ");
        let upgrade = match kind {
            MigrationKind::Alembic => "`alembic upgrade heads`",
            MigrationKind::Sql => "applying the migrations after it",
        };
        let hint = format!(
            "`migsnap stamp --verify {}`, then {upgrade}, runs them; repair is for schema-only fixes",
            self.located.join(" ")
        );
        self.revisions
            .iter()
            .map(|SkippedRevision { revision, maybe_ran }| {
                let named = match &revision.message {
                    Some(message) => format!("{} ({message})", revision.id),
                    None => revision.id.to_string(),
                };
                let unknown = if *maybe_ran {
                    "; the schema is the same after it, so they may have run already"
                } else {
                    ""
                };
                Finding::new(
                    codes::SKIPS_DATA_STEPS,
                    Severity::Warning,
                    &revision.id,
                    format!(
                        "the schema is revision {located}; repairing towards {} skips revision {named}, whose upgrade moves rows ({}){unknown}",
                        targets.join(" + "),
                        data_steps::summary(&revision.data_steps)
                    ),
                )
                .revision(&revision.id)
                .file(&revision.path)
                .hint(hint.clone())
            })
            .collect()
    }
}

fn foreign_key_check(conn: &Connection) -> rusqlite::Result<Option<ApplyError>> {
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let rows: Vec<(String, i64)> = stmt
        .query_map([], |row| {
            Ok((row.get(0)?, row.get::<_, Option<i64>>(1)?.unwrap_or(0)))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows.first().map(|(table, rowid)| ApplyError::ForeignKeys {
        count: rows.len(),
        table: table.clone(),
        rowid: *rowid,
    }))
}

/// Requires the schema `conn` sees (inside the open transaction) to mean
/// `target`.
fn verify(conn: &Connection, target: &Schema) -> Result<(), ApplyError> {
    let captured =
        schema_mod::capture::capture(conn).map_err(|e| ApplyError::Open(e.to_string()))?;
    if captured.schema.semantic_hash() == target.semantic_hash() {
        return Ok(());
    }
    Err(ApplyError::Unverified {
        remaining: diff::diff(target, &captured.schema),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::SqlProject;
    use crate::migrations::replay::Chain;

    /// The whole workflow through the engine alone: a dry run plans the
    /// missing column, applying it records the snapshots before and after
    /// and leaves nothing to do.
    #[test]
    fn repair_plans_then_applies_with_snapshots_around_it() {
        let SqlProject {
            dir: _dir,
            mut repo,
            project,
            graph,
            db,
        } = SqlProject::new();
        let replayer = Replayer::new(&project, &graph, Chain::new("default"));
        let targets = Targets::one("0002");
        let run = |repo: &mut Repo, apply: bool| {
            let live = LiveDatabase::capture(&db, Duration::from_secs(5)).unwrap();
            let request = RepairRequest {
                targets: &targets,
                inferred: false,
                apply,
                allow_destructive: false,
                force: false,
                busy_timeout: Duration::from_secs(5),
            };
            repair(
                repo,
                &replayer,
                &live,
                &request,
                &mut |_| {},
                &mut migsnap_store::progress::Silent,
            )
            .unwrap()
        };

        let planned = run(&mut repo, false);
        assert!(!planned.applied && !planned.settled(), "{planned:?}");
        assert!(planned.planned.plan.to_script().contains("ADD COLUMN"));
        assert!(
            repo.databases().next().is_none(),
            "a dry run tracks nothing"
        );

        let applied = run(&mut repo, true);
        assert!(applied.applied && applied.settled(), "{applied:?}");
        assert!(applied.safety_snapshot.is_some());
        assert!(applied.after_snapshot.is_some());
        assert!(applied.newly_tracked.is_some(), "applying tracks the file");
        assert_ne!(applied.safety_snapshot, applied.after_snapshot);

        let again = run(&mut repo, false);
        assert!(again.planned.plan.is_empty(), "{again:?}");
    }

    /// A repair that skips a backfill warns, naming the revision, its
    /// step and the verified stamp at the earliest revision the schema
    /// matches; a data-only revision right after it may have run (the
    /// schema cannot tell), and says so. A repair with nothing to do warns
    /// about nothing.
    #[test]
    fn repair_warns_about_skipped_revisions_that_move_rows() {
        let SqlProject {
            dir,
            mut repo,
            project,
            db,
            ..
        } = SqlProject::new();
        let sql = dir.path().join("sql");
        std::fs::write(
            sql.join("0002_more.sql"),
            "INSERT INTO t (id, name) VALUES (100, 'seed');",
        )
        .unwrap();
        std::fs::write(
            sql.join("0003_backfill.sql"),
            "CREATE TABLE b (id INTEGER);\nINSERT INTO b SELECT id FROM t;",
        )
        .unwrap();
        std::fs::write(
            sql.join("0004_more.sql"),
            "ALTER TABLE b ADD COLUMN y INTEGER;",
        )
        .unwrap();
        let graph = project.load_graph().unwrap();
        let replayer = Replayer::new(&project, &graph, Chain::new("default"));
        let live = LiveDatabase::capture(&db, Duration::from_secs(5)).unwrap();
        let mut run = |target: &str| {
            let targets = Targets::one(target);
            let request = RepairRequest {
                targets: &targets,
                inferred: false,
                apply: false,
                allow_destructive: false,
                force: false,
                busy_timeout: Duration::from_secs(5),
            };
            repair(
                &mut repo,
                &replayer,
                &live,
                &request,
                &mut |_| {},
                &mut migsnap_store::progress::Silent,
            )
            .unwrap()
        };

        let report = run("0004");
        let revisions: Vec<&str> = report
            .findings
            .iter()
            .map(|f| f.revision.as_deref().unwrap())
            .collect();
        assert_eq!(revisions, ["0002", "0003"], "{:?}", report.findings);
        let [seed, backfill] = &report.findings[..] else {
            unreachable!("BUG: two findings were checked above");
        };
        assert_eq!(backfill.code, codes::SKIPS_DATA_STEPS);
        assert_eq!(backfill.severity, Severity::Warning);
        assert_eq!(
            backfill.message,
            "the schema is revision 0001; repairing towards 0004 skips revision 0003 (backfill), \
             whose upgrade moves rows (INSERT/UPDATE/DELETE SQL at line 2)"
        );
        assert!(
            seed.message
                .ends_with("; the schema is the same after it, so they may have run already"),
            "{seed:?}"
        );
        assert_eq!(
            backfill.hint.as_deref(),
            Some(
                "`migsnap stamp --verify 0001`, then applying the migrations after it, runs them; \
                 repair is for schema-only fixes"
            )
        );
        assert!(run("0002").findings.is_empty());
    }

    fn schema(sql: &str) -> Schema {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        schema_mod::capture::capture(&conn).unwrap().schema
    }

    const REFERENCE: &str = "CREATE TABLE user (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
                             CREATE TABLE chat (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES user(id));";

    #[test]
    fn extras_are_kept_unless_destruction_is_allowed() {
        let reference = schema(REFERENCE);
        let live = schema(
            "CREATE TABLE user (id INTEGER PRIMARY KEY, name TEXT NOT NULL, nick TEXT);
             CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT UNIQUE);
             CREATE INDEX notes_body ON notes(body);",
        );
        let kept = plan(&live, &reference, false);
        assert!(!kept.destructive);
        let names: Vec<&str> = kept.kept.changes.iter().map(|c| c.name.as_str()).collect();
        assert!(
            names.contains(&"notes") && names.contains(&"nick"),
            "{names:?}"
        );
        // Only chat is missing: one CREATE TABLE, nothing rebuilt.
        let script = kept.plan.to_script();
        assert!(script.contains("CREATE TABLE \"chat\""), "{script}");
        assert!(!script.contains("DROP"), "{script}");

        let dropped = plan(&live, &reference, true);
        assert!(dropped.destructive);
        assert!(dropped.kept.is_empty());
        assert_eq!(dropped.target.semantic_hash(), reference.semantic_hash());
    }

    #[test]
    fn apply_commits_only_a_verified_result() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE user (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             INSERT INTO user VALUES (1, 'ann');",
        )
        .unwrap();
        drop(conn);
        let live = schema("CREATE TABLE user (id INTEGER PRIMARY KEY, name TEXT NOT NULL);");
        let reference = schema(REFERENCE);
        let planned = plan(&live, &reference, false);
        apply(&path, &planned.plan, &planned.target).unwrap();
        let conn = Connection::open(&path).unwrap();
        let after = schema_mod::capture::capture(&conn).unwrap().schema;
        assert_eq!(after.semantic_hash(), reference.semantic_hash());
        let name: String = conn
            .query_row("SELECT name FROM user", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name, "ann");
        drop(conn);

        // A target the plan cannot reach is refused and rolled back.
        let other = schema("CREATE TABLE other (x);");
        let bytes = std::fs::read(&path).unwrap();
        let err = apply(
            &path,
            &Plan {
                steps: planned.plan.steps.clone(),
            },
            &other,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ApplyError::Statement { .. } | ApplyError::Unverified { .. }
        ));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
