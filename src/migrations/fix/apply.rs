//! Applying a fix: a safety snapshot, then each step with a check that it
//! reached its state, then a final status. A step that fails, or a final
//! state that is not healthy, puts the safety snapshot back.

use std::path::Path;
use std::time::Duration;

use migsnap_store::{ObjectId, Progress};
use serde::Serialize;

use crate::migrations::drift::{self, AcceptPlan, LiveDatabase};
use crate::migrations::history::graph::Graph;
use crate::migrations::history::position::Position;
use crate::migrations::repair::{self, RepairError, RepairRequest};
use crate::migrations::replay::{ReplayError, ReplayEvent, Replayer};
use crate::migrations::stamp::{self, StampError, StampOutcome, StampRequest};
use crate::repo::{Repo, SelectError, Tracked};
use crate::snapshots::restore::{self, ReplaceOptions, RestoreError};
use crate::snapshots::snapshot::{self, SnapshotError, SnapshotOptions, SnapshotOutcome};

use super::{FixClass, FixPlan, FixStep};

/// How to apply a fix.
#[derive(Clone, Debug, Default)]
pub struct FixOptions {
    /// The way out of extra objects to take (`accept`, `drop`); `None`:
    /// the recommended one.
    pub option: Option<String>,
    /// Allow steps that can lose data (dropping extra objects).
    pub allow_destructive: bool,
    /// Write even though other processes have the database open.
    pub force: bool,
    /// How long to wait for a writer holding the database locked.
    pub busy_timeout: Duration,
}

/// One step as it ran.
#[derive(Clone, Debug, Serialize)]
pub struct AppliedStep {
    /// The step.
    #[serde(flatten)]
    pub step: FixStep,
    /// Whether it ran and reached its state.
    pub ok: bool,
    /// What it did, or why it failed.
    pub detail: String,
}

/// What applying a fix did. Serialized, it is the JSON of `migsnap fix
/// --apply --format json`.
#[derive(Clone, Debug, Serialize)]
pub struct FixReport {
    /// The plan that was applied.
    #[serde(flatten)]
    pub plan: FixPlan,
    /// The steps that ran, in order; the last failed when `fixed` is false.
    pub applied: Vec<AppliedStep>,
    /// The snapshot taken before the first step (the undo).
    pub safety_snapshot: Option<ObjectId>,
    /// Whether every step ran and the database is now healthy.
    pub fixed: bool,
    /// Whether the safety snapshot was put back after a failure.
    pub restored: bool,
    /// The snapshot of the failed state, taken by the restore.
    pub failed_state_snapshot: Option<ObjectId>,
}

/// Why a fix could not be applied at all (a step that fails is not an
/// error: the report says so, and the database is put back).
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    /// The plan has nothing safe to apply.
    #[error("nothing to apply: {reason}")]
    NothingSafe {
        /// The plan's reason.
        reason: String,
    },
    /// The option asked for is not one of the plan's.
    #[error("the plan has no option '{name}' (it has: {known})")]
    UnknownOption {
        /// The option asked for.
        name: String,
        /// The plan's options.
        known: String,
    },
    /// A step can lose data and that was not allowed.
    #[error("dropping {objects} loses {rows} row(s) and was not allowed")]
    Destructive {
        /// The objects.
        objects: String,
        /// Their rows.
        rows: u64,
    },
    /// The database could not be tracked for its snapshots.
    #[error(transparent)]
    Track(#[from] SelectError),
    /// The safety snapshot could not be taken.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Putting the safety snapshot back failed: the database is in the
    /// failed state, which the error's safety snapshot keeps.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// A reference could not be built or read.
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// Applies `plan` to its database: a safety snapshot, then each step, each
/// checked; on a failure (or a final state that is not healthy) the safety
/// snapshot is put back.
pub fn apply(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    plan: FixPlan,
    options: &FixOptions,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
    progress: &mut dyn Progress,
) -> Result<FixReport, FixError> {
    let steps = chosen_steps(&plan, options)?;
    let mut report = FixReport {
        plan,
        applied: Vec::new(),
        safety_snapshot: None,
        fixed: false,
        restored: false,
        failed_state_snapshot: None,
    };
    if report.plan.healthy() {
        report.fixed = true;
        return Ok(report);
    }
    let path = report.plan.database.clone();
    let tracked = repo.select_or_track_path(&path)?.tracked;
    let safety = take(repo, &tracked, "before fix", options.busy_timeout, progress)?;
    report.safety_snapshot = Some(safety);
    let mut runner = StepRunner {
        repo,
        replayer,
        graph,
        path: &path,
        options,
        on_event,
        progress,
    };
    let mut failed = false;
    for step in steps {
        let outcome = runner.run(&step);
        failed = outcome.is_err();
        report.applied.push(AppliedStep {
            step,
            ok: !failed,
            detail: outcome.unwrap_or_else(|why| why),
        });
        if failed {
            break;
        }
    }
    if !failed {
        let verdict = runner.healthy();
        failed = verdict.is_err();
        report.fixed = !failed;
        if let Err(why) = verdict {
            report.applied.push(AppliedStep {
                step: FixStep::Upgrade,
                ok: false,
                detail: format!("the database is not healthy after the fix: {why}"),
            });
        }
    }
    if failed {
        let restored = restore::restore(
            repo,
            safety,
            &tracked,
            &ReplaceOptions {
                message: "after failed fix".to_owned(),
                busy_timeout: options.busy_timeout,
                force: options.force,
                ..ReplaceOptions::default()
            },
            progress,
        )?;
        report.restored = true;
        report.failed_state_snapshot = restored.safety;
    }
    Ok(report)
}

/// The steps to run: the recommended ones, or those of the option asked
/// for; refused when there is nothing safe or a step loses data unasked.
fn chosen_steps(plan: &FixPlan, options: &FixOptions) -> Result<Vec<FixStep>, FixError> {
    if matches!(plan.class, FixClass::Unsure | FixClass::MultipleHeads) {
        return Err(FixError::NothingSafe {
            reason: plan.reason.clone(),
        });
    }
    let steps = match &options.option {
        None => plan.steps.clone(),
        Some(name) => plan
            .options
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.steps.clone())
            .ok_or_else(|| FixError::UnknownOption {
                name: name.clone(),
                known: plan
                    .options
                    .iter()
                    .map(|o| o.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
    };
    if !options.allow_destructive
        && let Some(FixStep::Drop { objects, rows, .. }) = steps.iter().find(|s| s.destructive())
    {
        return Err(FixError::Destructive {
            objects: objects.join(", "),
            rows: *rows,
        });
    }
    Ok(steps)
}

/// Snapshots `tracked`; an unchanged database gives its current head.
fn take(
    repo: &mut Repo,
    tracked: &Tracked,
    message: &str,
    busy_timeout: Duration,
    progress: &mut dyn Progress,
) -> Result<ObjectId, SnapshotError> {
    let options = SnapshotOptions {
        message: message.to_owned(),
        busy_timeout,
        ..SnapshotOptions::default()
    };
    Ok(match snapshot::take(repo, tracked, &options, progress)? {
        SnapshotOutcome::Recorded { id, .. } | SnapshotOutcome::Unchanged { head: id } => id,
    })
}

/// Runs steps on one database; each returns what it did, or why it failed.
struct StepRunner<'r, 'a> {
    repo: &'r mut Repo,
    replayer: &'r Replayer<'a>,
    graph: &'r Graph,
    path: &'r Path,
    options: &'r FixOptions,
    on_event: &'r mut dyn FnMut(ReplayEvent<'_>),
    progress: &'r mut dyn Progress,
}

impl StepRunner<'_, '_> {
    fn run(&mut self, step: &FixStep) -> Result<String, String> {
        match step {
            FixStep::Stamp { revisions } => self.stamp(revisions),
            FixStep::Upgrade => self.upgrade(),
            FixStep::Repair { towards } => self.repair(towards, false),
            FixStep::Drop { towards, .. } => self.repair(towards, true),
            FixStep::Accept { revisions } => self.accept(revisions),
        }
    }

    fn stamp(&mut self, revisions: &[String]) -> Result<String, String> {
        let mut targets = revisions.to_vec();
        targets.sort();
        targets.dedup();
        let request = StampRequest {
            database: self.path,
            targets: &targets,
            force: self.options.force,
            busy_timeout: self.options.busy_timeout,
        };
        let report = stamp::stamp_verified(
            self.repo,
            self.replayer,
            self.graph,
            &request,
            self.on_event,
            self.progress,
        )
        .map_err(|e: StampError| e.to_string())?;
        match report.outcome {
            StampOutcome::Refused { drift } => Err(format!(
                "the schema is not revision {} ({} difference(s)); nothing was written",
                targets.join(" + "),
                drift.changes.len()
            )),
            StampOutcome::Unchanged { .. } => {
                Ok(format!("already stamped {}", targets.join(" + ")))
            }
            StampOutcome::Stamped { .. } => Ok(format!(
                "stamped {} (verified, read back)",
                report.targets.join(" + ")
            )),
        }
    }

    fn upgrade(&mut self) -> Result<String, String> {
        let heads = self.graph.heads();
        let [head] = heads.as_slice() else {
            return Err(format!("the history has {} heads", heads.len()));
        };
        let mut runner = self.replayer.runner(self.path).map_err(|e| e.to_string())?;
        runner.upgrade(head).map_err(|failure| {
            let file = failure
                .file
                .map(|f| format!(" ({})", f.display()))
                .unwrap_or_default();
            format!("the upgrade failed{file}: {}", failure.error)
        })?;
        drop(runner);
        let live = self.live()?;
        let rows = drift::stamped(self.replayer.project().kind, &live.meta, self.graph);
        match crate::migrations::history::position::classify(self.graph, rows.as_deref()) {
            Position::AtHeads => Ok(format!("upgraded to {head}")),
            other => Err(format!(
                "the upgrade ran but the database is {}, not at its head",
                other.class()
            )),
        }
    }

    fn repair(&mut self, towards: &[String], allow_destructive: bool) -> Result<String, String> {
        let live = self.live()?;
        let request = RepairRequest {
            targets: towards,
            apply: true,
            allow_destructive,
            force: self.options.force,
            busy_timeout: self.options.busy_timeout,
        };
        let report = repair::repair(
            self.repo,
            self.replayer,
            &live,
            &request,
            self.on_event,
            self.progress,
        )
        .map_err(|e: RepairError| e.to_string())?;
        if !report.settled() {
            return Err("the repair left steps unapplied".to_owned());
        }
        Ok(format!(
            "{} statement(s) applied towards {} (verified)",
            report.planned.plan.steps.len(),
            towards.join(" + ")
        ))
    }

    fn accept(&mut self, revisions: &[String]) -> Result<String, String> {
        let busy = self.options.busy_timeout;
        let planned = drift::plan_accept(
            self.repo,
            self.replayer,
            revisions,
            self.path,
            busy,
            self.on_event,
        )
        .map_err(|e| e.to_string())?;
        match planned {
            AcceptPlan::Propose(proposal) => {
                let (name, _) = drift::accept(self.repo, self.replayer, &proposal, self.path, busy)
                    .map_err(|e| e.to_string())?;
                Ok(format!("accepted the shape as {name}"))
            }
            AcceptPlan::IsReference | AcceptPlan::AlreadyAccepted(_) => {
                Ok("the shape is already valid".to_owned())
            }
            AcceptPlan::ReplayFailed(failure) => Err(format!(
                "the reference could not be built: {}",
                failure.failure.error
            )),
        }
    }

    /// Whether the database is now at its heads with their schema.
    fn healthy(&mut self) -> Result<(), String> {
        let live = self.live()?;
        let status = drift::status(self.repo, self.replayer, self.graph, &live, self.on_event)
            .map_err(|e| e.to_string())?;
        match (&status.position, status.schema_matches()) {
            (Position::AtHeads, Some(true)) => Ok(()),
            (position, Some(false)) => Err(format!(
                "it is {} and its schema differs from the reference",
                position.class()
            )),
            (position, _) => Err(format!("it is {}", position.class())),
        }
    }

    fn live(&self) -> Result<LiveDatabase, String> {
        LiveDatabase::capture(self.path, self.options.busy_timeout).map_err(|e| e.to_string())
    }
}
