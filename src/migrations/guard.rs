//! Guard: snapshot a database, run a risky command on it (`alembic upgrade
//! head`, a data fix), and judge what the **command** did.
//!
//! The judgement compares the database after the command with the
//! database **before** it, and consults the reference only for what the
//! command changed:
//! - drift that was there before and is unchanged is reported, but it is
//!   not the command's failure;
//! - drift the command removed is a success;
//! - drift the command introduced is a failure, as is a non-zero exit.
//!
//! Only those two failures restore the snapshot (with
//! `restore_on_failure`), through [`restore::restore`] and its safety
//! snapshot of the failed state; nothing else ever does.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::Duration;

use migsnap_store::{ObjectId, Progress};
use serde::Serialize;

use crate::finding::{Finding, Severity};
use crate::migrations::drift::{self, LiveDatabase};
use crate::migrations::history::graph::Graph;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::replay::{ReplayError, ReplayEvent, Replayer};
use crate::repo::{Repo, Tracked};
use crate::schema::diff::{self, Change, ChangeKind, Op, SchemaDiff};
use crate::schema::field::{Field, Value, names_of};
use crate::schema::model::same_name;
use crate::snapshots::restore::{self, ReplaceOptions, RestoreError};
use crate::snapshots::snapshot::{
    self, IntegrityFailure, Recorded, SnapshotError, SnapshotOptions,
};
use crate::snapshots::sqlite::SqliteError;

/// The stable finding codes of `guard`.
pub mod codes {
    /// The command exited non-zero or was killed.
    pub const COMMAND_FAILED: &str = "guard.command-failed";
    /// The command left a difference from the reference that was not
    /// there before it ran.
    pub const NEW_DRIFT: &str = "guard.new-drift";
    /// The command removed a difference from the reference.
    pub const DRIFT_FIXED: &str = "guard.drift-fixed";
    /// A difference from the reference that was there before the command
    /// and that it left unchanged: not the command's doing.
    pub const PREEXISTING_DRIFT: &str = "guard.preexisting-drift";

    /// Every code above, for validating configuration.
    pub const ALL: &[&str] = &[COMMAND_FAILED, NEW_DRIFT, DRIFT_FIXED, PREEXISTING_DRIFT];
}

/// What can go wrong guarding a command.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// No command was given.
    #[error("no command to guard")]
    NoCommand,
    /// The command could not be started.
    #[error("cannot run {program}")]
    Start {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A snapshot (before or after the command) could not be taken.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The database could not be read.
    #[error(transparent)]
    Read(#[from] SqliteError),
    /// The reference to judge by could not be had.
    #[error(transparent)]
    Check(#[from] ReplayError),
    /// The snapshot could not be put back.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// The database fails its integrity check before the command: it is
    /// recorded, and the command is not run on it.
    #[error(
        "database {path} fails its integrity check ({}); it is kept as snapshot {before:.12} and the command was not run",
        failure.summary()
    )]
    Damaged {
        /// The database.
        path: PathBuf,
        /// Its snapshot, flagged.
        before: ObjectId,
        /// How it failed.
        failure: IntegrityFailure,
    },
    /// Something failed after the command ran: the snapshot taken before it
    /// is what undoes it.
    #[error("{source}")]
    AfterCommand {
        /// The snapshot taken before the command.
        before: ObjectId,
        /// What failed.
        source: Box<GuardError>,
    },
}

/// How to judge the database against its migrations; without one, guard
/// reports the command's exit and the schema changes only.
#[derive(Clone, Copy)]
pub struct Check<'a> {
    /// Builds the references.
    pub replayer: &'a Replayer<'a>,
    /// The project's revision graph.
    pub graph: &'a Graph,
}

/// How to guard.
#[derive(Clone, Debug, Default)]
pub struct GuardOptions {
    /// Put the snapshot back on a non-zero exit or new drift.
    pub restore_on_failure: bool,
    /// Where to run the command.
    pub cwd: PathBuf,
    /// How long to wait for a writer holding the database locked.
    pub busy_timeout: Duration,
    /// The migration history, recorded with the snapshots as `migsnap
    /// snapshot` does (for lint's edited-after-applied rule).
    pub migrations: Option<Arc<Graph>>,
    /// Send the command's stdout to stderr, so that it cannot mix with a
    /// JSON report on stdout.
    pub stdout_to_stderr: bool,
}

/// What guard tells its caller while it works.
pub enum GuardEvent<'e> {
    /// The snapshot is taken and the command is about to run.
    Running {
        /// The snapshot taken before the command.
        before: ObjectId,
    },
    /// A reference is being built.
    Replay(ReplayEvent<'e>),
}

/// The command's `alembic_version` rows (or, for a SQL folder, the
/// migration `PRAGMA user_version` names) before and after it ran; `None`:
/// no such table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Versions {
    /// Before the command.
    pub before: Option<Vec<RevisionId>>,
    /// After it.
    pub after: Option<Vec<RevisionId>>,
}

/// The drift after the command, judged against the drift before it. Each
/// list is a change list from a reference to the database (`added`: extra
/// in the database, `removed`: missing from it).
#[derive(Clone, Debug, Default, Serialize)]
pub struct DriftJudgement {
    /// The revisions the database was compared with before the command.
    pub targets_before: Option<Vec<RevisionId>>,
    /// The revisions it was compared with after it.
    pub targets_after: Option<Vec<RevisionId>>,
    /// Drift the command introduced (or changed): its failure.
    pub introduced: SchemaDiff,
    /// Drift the command removed.
    pub fixed: SchemaDiff,
    /// Drift that was there before and is unchanged.
    pub preexisting: SchemaDiff,
}

/// Everything guard found, and what it did about it.
#[derive(Clone, Debug, Serialize)]
pub struct GuardReport {
    /// The database file.
    pub database: PathBuf,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// Its exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// The snapshot taken before the command.
    pub before: ObjectId,
    /// The snapshot of the state the command left (`before` when it
    /// changed nothing).
    pub after: ObjectId,
    /// Whether the command changed anything: schema, version rows or data.
    pub changed: bool,
    /// The version rows before and after.
    pub alembic_version: Versions,
    /// The schema changes the command made (the partial state, when it
    /// failed half-way).
    pub schema_changes: SchemaDiff,
    /// The drift judgement; `None` without a migration project.
    pub drift: Option<DriftJudgement>,
    /// The status after the command; `None` without a migration project.
    pub status: Option<drift::StatusReport>,
    /// What the command did wrong (or fixed); findings that were there
    /// before it ran and are unchanged are left out, except drift, which
    /// is reported as pre-existing.
    pub findings: Vec<Finding>,
    /// Whether the command failed: a non-zero exit or new drift. Only this
    /// restores.
    pub failed: bool,
    /// Whether the snapshot was put back (only after a failure that
    /// changed something).
    pub restored: bool,
    /// The safety snapshot of the failed state, taken by the restore.
    pub failed_state_snapshot: Option<ObjectId>,
}

/// Snapshots `tracked`, runs `command`, judges what it did, and restores
/// the snapshot when it failed and `options.restore_on_failure` is set.
pub fn guard(
    repo: &mut Repo,
    tracked: &Tracked,
    check: Option<Check<'_>>,
    command: &[String],
    options: &GuardOptions,
    progress: &mut dyn Progress,
    on_event: &mut dyn FnMut(GuardEvent<'_>),
) -> Result<GuardReport, GuardError> {
    let Some((program, arguments)) = command.split_first() else {
        return Err(GuardError::NoCommand);
    };
    let shown = shell_words::join(command);
    let take = |repo: &mut Repo, message, progress: &mut dyn Progress| {
        take_snapshot(repo, tracked, options, message, progress)
    };
    let before = take(repo, format!("before `{shown}`"), progress)?;
    // A command run on a damaged database may make the damage worse, and
    // restoring on failure could not start from a sound state.
    if let Some(failure) = integrity_of(repo, before)? {
        return Err(GuardError::Damaged {
            path: tracked.path.clone(),
            before,
            failure,
        });
    }
    let live_before = LiveDatabase::capture(&tracked.path, options.busy_timeout)?;
    // The reference is built before the command runs, so that a slow
    // replay does not stand between the command and its judgement.
    let status_before = check
        .map(|c| status(repo, c, &live_before, on_event))
        .transpose()?;
    on_event(GuardEvent::Running { before });
    let exit = run_command(program, arguments, options)?;
    let after_command = |source: GuardError| GuardError::AfterCommand {
        before,
        source: Box::new(source),
    };

    // A snapshot of the result tells whether anything changed at all,
    // data included, and keeps the result even when it is then restored.
    let after = take(repo, format!("after `{shown}`"), progress).map_err(after_command)?;
    let live_after = LiveDatabase::capture(&tracked.path, options.busy_timeout)
        .map_err(|e| after_command(e.into()))?;
    let status_after = check
        .map(|c| status(repo, c, &live_after, on_event))
        .transpose()
        .map_err(after_command)?;
    let schema_changes = diff::diff(&live_before.schema, &live_after.schema);
    let rows = |status: &Option<drift::StatusReport>, live: &LiveDatabase| match status {
        Some(status) => status.rows.clone(),
        None => live
            .meta
            .alembic_versions
            .as_ref()
            .map(|rows| rows.iter().map(|row| row.as_str().into()).collect()),
    };

    let changed = after != before;
    let mut findings = Vec::new();
    // The before state passed (checked above): a result that fails is the
    // command's doing, kept in the flagged snapshot `after`.
    let damaged = integrity_of(repo, after).map_err(|e| after_command(e.into()))?;
    findings.extend(damaged.map(|failure| failure.finding(&tracked.path.display().to_string())));
    if !exit.success() {
        findings.push(command_failed(
            exit,
            &shown,
            changed.then_some((before, after)),
        ));
    }
    let drift = match (&status_before, &status_after) {
        (Some(was), Some(now)) => {
            let judged = judge(was, now);
            findings.extend(drift_findings(&judged, &shown, (before, after)));
            findings.extend(new_findings(was, now));
            Some(judged)
        }
        _ => None,
    };
    let failed = !exit.success() || drift.as_ref().is_some_and(|d| !d.introduced.is_empty());
    let mut failed_state_snapshot = None;
    // A failed command that changed nothing leaves nothing to put back.
    let restored = failed && changed && options.restore_on_failure;
    if restored {
        let written = restore::restore(
            repo,
            before,
            tracked,
            &ReplaceOptions {
                message: format!("after failed `{shown}`"),
                busy_timeout: options.busy_timeout,
                ..ReplaceOptions::default()
            },
            progress,
        )
        .map_err(|e| after_command(e.into()))?;
        failed_state_snapshot = written.safety;
    }
    Ok(GuardReport {
        database: tracked.path.clone(),
        command: command.to_vec(),
        exit_code: exit.code(),
        signal: signal(exit),
        before,
        after,
        changed,
        alembic_version: Versions {
            before: rows(&status_before, &live_before),
            after: rows(&status_after, &live_after),
        },
        schema_changes,
        drift,
        status: status_after,
        findings,
        failed,
        restored,
        failed_state_snapshot,
    })
}

/// Snapshots `tracked`; an unchanged database gives its current head.
fn take_snapshot(
    repo: &mut Repo,
    tracked: &Tracked,
    options: &GuardOptions,
    message: String,
    progress: &mut dyn Progress,
) -> Result<ObjectId, GuardError> {
    let outcome = snapshot::take(
        repo,
        tracked,
        &SnapshotOptions {
            message,
            busy_timeout: options.busy_timeout,
            migrations: options
                .migrations
                .clone()
                .map(|graph| graph as Arc<dyn crate::snapshots::snapshot::MigrationFiles>),
            ..SnapshotOptions::default()
        },
        progress,
    )?;
    Ok(outcome.id())
}

/// How the database recorded in `snapshot` failed its integrity check;
/// `None` when it passed.
fn integrity_of(
    repo: &Repo,
    snapshot: ObjectId,
) -> Result<Option<IntegrityFailure>, SnapshotError> {
    let recorded = repo.store.view().read_snapshot(&snapshot)?;
    Ok(Recorded::from_snapshot(&recorded).integrity)
}

/// Runs the guarded command and waits for it.
fn run_command(
    program: &str,
    arguments: &[String],
    options: &GuardOptions,
) -> Result<std::process::ExitStatus, GuardError> {
    let mut run = Command::new(program);
    run.args(arguments).current_dir(&options.cwd);
    if options.stdout_to_stderr {
        run.stdout(std::io::stderr());
    }
    run.status().map_err(|source| GuardError::Start {
        program: program.to_owned(),
        source,
    })
}

/// The finding for a command that failed; `changed` holds the snapshots
/// before and after it when it changed the database.
fn command_failed(
    exit: std::process::ExitStatus,
    shown: &str,
    changed: Option<(ObjectId, ObjectId)>,
) -> Finding {
    let finding = Finding::new(
        codes::COMMAND_FAILED,
        Severity::Error,
        shown,
        format!("`{shown}` {}", describe_exit(exit)),
    );
    match changed {
        Some((before, after)) => finding.hint(format!(
            "it changed the database before it stopped: `migsnap diff {before:.12} {after:.12}` shows how far it got"
        )),
        None => finding,
    }
}

fn status(
    repo: &mut Repo,
    check: Check<'_>,
    live: &LiveDatabase,
    on_event: &mut dyn FnMut(GuardEvent<'_>),
) -> Result<drift::StatusReport, GuardError> {
    Ok(drift::status(
        repo,
        check.replayer,
        check.graph,
        live,
        &mut |event| on_event(GuardEvent::Replay(event)),
    )?)
}

/// "exited with code 2" or "was killed by signal 9".
fn describe_exit(exit: ExitStatus) -> String {
    match (exit.code(), signal(exit)) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended abnormally ({exit})"),
    }
}

#[cfg(unix)]
fn signal(exit: ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&exit)
}

#[cfg(not(unix))]
fn signal(_: ExitStatus) -> Option<i32> {
    None
}

/// Sorts the drift after the command into introduced and pre-existing, and
/// finds what it fixed, by comparing with the drift before it. The
/// references may differ (an upgrade moves the version rows); a difference
/// is the same when it is about the same object and the database's side
/// of it did not change.
///
/// Without a comparison after the command (it left no version rows, or
/// unknown ones) nothing is judged: the status findings say why. Without
/// one before it, every difference after it is the command's.
fn judge(before: &drift::StatusReport, after: &drift::StatusReport) -> DriftJudgement {
    // A comparison with an inferred revision (the rows name one no script
    // declares) says nothing about what the command did to the revision
    // the rows claim: it is left to the status findings too.
    fn compared(status: &drift::StatusReport) -> Option<&drift::Comparison> {
        status.comparison.as_ref().filter(|c| !c.inferred)
    }
    // Differences of form (column order, names) are no failure of the
    // command; the status after it reports them as info findings.
    let drift_of = |status: &drift::StatusReport| -> Vec<Change> {
        compared(status)
            .map(|c| {
                c.drift
                    .changes
                    .iter()
                    .filter(|change| !change.meaning.is_form())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let (was, now) = (drift_of(before), drift_of(after));
    let mut judged = DriftJudgement {
        targets_before: compared(before).map(|c| c.targets.clone()),
        targets_after: compared(after).map(|c| c.targets.clone()),
        ..DriftJudgement::default()
    };
    if compared(after).is_none() {
        return judged;
    }
    for change in &now {
        if was.iter().any(|old| same_drift(old, change)) {
            judged.preexisting.changes.push(change.clone());
        } else {
            judged.introduced.changes.push(change.clone());
        }
    }
    judged.fixed.changes = was
        .into_iter()
        .filter(|old| !now.iter().any(|new| same_object(old, new)))
        .collect();
    judged
}

/// Whether two changes are about the same object in the same way.
fn same_object(a: &Change, b: &Change) -> bool {
    a.op == b.op
        && a.kind == b.kind
        && same_name(&a.name, &b.name)
        && match (&a.table, &b.table) {
            (Some(x), Some(y)) => same_name(x, y),
            (None, None) => true,
            _ => false,
        }
}

/// Whether `new` is the drift `old` was: the same object, and the
/// database's side of every differing field unchanged. A table's column
/// list counts as unchanged when one list keeps the other's names in
/// order: columns added or dropped show as changes of their own.
fn same_drift(old: &Change, new: &Change) -> bool {
    if !same_object(old, new) {
        return false;
    }
    let is_column_list = |field: Field| old.kind == ChangeKind::Table && field == Field::Columns;
    let sides = |change: &Change| -> Vec<(Field, Option<Value>)> {
        let mut sides: Vec<_> = change
            .fields
            .iter()
            .filter(|f| !is_column_list(f.field))
            .map(|f| (f.field, f.after.clone()))
            .collect();
        // A change names each field once: sorting by field alone is total.
        sides.sort_by_key(|(field, _)| field.name());
        sides
    };
    fn column_list(change: &Change) -> Option<&[String]> {
        change
            .fields
            .iter()
            .find(|f| change.kind == ChangeKind::Table && f.field == Field::Columns)
            .map(|f| names_of(&f.after))
    }
    let same_columns = match (column_list(old), column_list(new)) {
        (Some(a), Some(b)) => drift::extends(a, b) || drift::extends(b, a),
        (a, b) => a.is_none() == b.is_none(),
    };
    old.op == Op::Removed || (sides(old) == sides(new) && same_columns)
}

/// The object a change is about, as findings name it: `user.email` for a
/// column, `chat_title_idx on chat` for a table's part, else its name.
fn object(change: &Change) -> String {
    match (&change.table, change.kind) {
        (Some(table), ChangeKind::Column) => format!("{table}.{}", change.name),
        (Some(table), _) if !same_name(table, &change.name) => {
            format!("{} on {table}", change.name)
        }
        _ => change.name.clone(),
    }
}

/// A drift change in words: `extra index chat_title_idx on chat`.
fn drift_words(change: &Change) -> String {
    let op = match change.op {
        Op::Added => "extra",
        Op::Removed => "missing",
        Op::Changed => "differing",
    };
    format!(
        "{op} {} {}",
        change.kind.name().replace('_', " "),
        object(change)
    )
}

/// Whether `change` only says that the column list of a table differs
/// while `changes` lists those columns themselves: it is then counted once,
/// through them.
fn only_columns(change: &Change, changes: &SchemaDiff) -> bool {
    change.kind == ChangeKind::Table
        && change.op == Op::Changed
        && change.fields.iter().all(|f| f.field == Field::Columns)
        && changes.changes.iter().any(|c| {
            c.kind == ChangeKind::Column
                && c.table
                    .as_deref()
                    .is_some_and(|t| same_name(t, &change.name))
        })
}

/// One finding per introduced, fixed and pre-existing difference.
/// `snapshots` are those before and after the command.
fn drift_findings(
    judged: &DriftJudgement,
    shown: &str,
    snapshots: (ObjectId, ObjectId),
) -> Vec<Finding> {
    let targets = |t: &Option<Vec<RevisionId>>| t.clone().unwrap_or_default().join(" + ");
    let (before, after) = (
        targets(&judged.targets_before),
        targets(&judged.targets_after),
    );
    let mut findings = Vec::new();
    let mut each = |diff: &SchemaDiff,
                    code: &'static str,
                    severity: Severity,
                    revision: &str,
                    message: &dyn Fn(&Change) -> String,
                    hint: Option<String>| {
        for change in diff.changes.iter().filter(|c| !only_columns(c, diff)) {
            let mut finding =
                Finding::new(code, severity, object(change), message(change)).revision(revision);
            finding.hint = hint.clone();
            findings.push(finding);
        }
    };
    each(
        &judged.introduced,
        codes::NEW_DRIFT,
        Severity::Error,
        &after,
        &|c| {
            format!(
                "`{shown}` left {} (not there before it ran)",
                drift_words(c)
            )
        },
        Some(format!(
            "`migsnap diff {:.12} {:.12}` shows everything the command changed",
            snapshots.0, snapshots.1
        )),
    );
    each(
        &judged.fixed,
        codes::DRIFT_FIXED,
        Severity::Info,
        &before,
        &|c| format!("`{shown}` fixed the {}", drift_words(c)),
        None,
    );
    each(
        &judged.preexisting,
        codes::PREEXISTING_DRIFT,
        Severity::Warning,
        &after,
        &|c| {
            format!(
                "{} was there before `{shown}` and is unchanged",
                drift_words(c)
            )
        },
        Some("not the command's doing; `migsnap fix` plans its fix".into()),
    );
    findings
}

/// The findings of the status after the command about something the
/// status before it had no finding of that code about; drift is judged
/// separately. By code and object, not message: "2 revisions pending"
/// becoming "1 revision pending" is not news.
fn new_findings(before: &drift::StatusReport, after: &drift::StatusReport) -> Vec<Finding> {
    after
        .findings
        .iter()
        .filter(|f| {
            f.code != drift::codes::DRIFT
                && !before
                    .findings
                    .iter()
                    .any(|old| old.code == f.code && old.object == f.object)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::diff::FieldChange;

    fn change(op: Op, kind: ChangeKind, table: Option<&str>, name: &str) -> Change {
        Change {
            op,
            kind,
            table: table.map(str::to_owned),
            name: name.to_owned(),
            fields: Vec::new(),
            meaning: Default::default(),
            moved: Vec::new(),
        }
    }

    fn columns(before: &[&str], after: &[&str]) -> Change {
        let names =
            |list: &[&str]| Some(Value::Names(list.iter().map(|n| n.to_string()).collect()));
        let mut table = change(Op::Changed, ChangeKind::Table, None, "user");
        table.fields.push(FieldChange {
            field: Field::Columns,
            before: names(before),
            after: names(after),
        });
        table
    }

    #[test]
    fn an_extra_column_kept_across_an_upgrade_is_the_same_drift() {
        // The reference grew `x`; the database kept its extra `scim`.
        let old = columns(&["id", "name"], &["id", "name", "scim"]);
        let new = columns(&["id", "name", "x"], &["id", "name", "scim", "x"]);
        assert!(same_drift(&old, &new));
    }

    #[test]
    fn a_column_named_with_a_comma_is_one_column() {
        // The database's "a, b" is one column, not `a` and `b`: a reference
        // of `a`, `b`, `c` is not what the database kept.
        let old = columns(&["a, b", "c"], &["c", "a, b"]);
        let new = columns(&["a", "b", "c"], &["a", "b", "c"]);
        assert!(!same_drift(&old, &new));
        let kept = columns(&["a, b", "c", "x"], &["c", "a, b", "x"]);
        assert!(same_drift(&old, &kept));
    }

    #[test]
    fn a_column_named_with_a_comma_moved_by_the_command_is_new_drift() {
        let schema = crate::migrations::drift::schema_of;
        let table = |old: &str, new: &str| {
            diff::diff(&schema(old), &schema(new))
                .changes
                .into_iter()
                .find(|c| c.kind == ChangeKind::Table)
                .expect("the shared columns are in another order")
        };
        let before = table(
            r#"CREATE TABLE t(c, "a, b")"#,
            r#"CREATE TABLE t("a, b", c)"#,
        );
        // The upgrade added `d`; the command added `a` and `b` and moved
        // "a, b" behind `c`. Rendered, the old list `a, b, c` reads as kept
        // in `a, b, d, c, a, b`; as names it is not.
        let after = table(
            r#"CREATE TABLE t(c, "a, b", d)"#,
            r#"CREATE TABLE t(a, b, d, c, "a, b")"#,
        );
        assert_eq!(
            before.fields[0].after.as_ref().unwrap().to_string(),
            "a, b, c"
        );
        assert!(!same_drift(&before, &after));
    }

    #[test]
    fn a_reordered_column_list_is_new_drift() {
        // The command moved `scim` behind `name`.
        let old = columns(&["id", "name", "scim"], &["id", "scim", "name"]);
        let new = columns(&["id", "name", "scim", "x"], &["id", "name", "scim", "x"]);
        assert!(!same_drift(&old, &new));
    }

    #[test]
    fn a_changed_type_is_new_drift_and_a_missing_object_stays_the_same() {
        let typed = |after: &str| {
            let mut column = change(Op::Changed, ChangeKind::Column, Some("user"), "age");
            column.fields.push(FieldChange {
                field: Field::DeclaredType,
                before: Some(Value::Text("INTEGER".into())),
                after: Some(Value::Text(after.into())),
            });
            column
        };
        assert!(same_drift(&typed("TEXT"), &typed("TEXT")));
        assert!(!same_drift(&typed("TEXT"), &typed("BLOB")));
        let missing = change(Op::Removed, ChangeKind::Table, None, "Tag");
        assert!(same_drift(
            &missing,
            &change(Op::Removed, ChangeKind::Table, None, "tag")
        ));
        assert!(!same_object(
            &missing,
            &change(Op::Added, ChangeKind::Table, None, "tag")
        ));
    }
}
