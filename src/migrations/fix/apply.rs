//! Applying a fix: every step runs on one verified copy of the database,
//! each checked, and the copy replaces the database only when the end state
//! is healthy ([`restore::rewrite`]: write lock, safety snapshot, copy,
//! `quick_check`, atomic replacement). A step that fails leaves the
//! database untouched, and a kill at any moment leaves the old database or
//! the fixed one, never a half-fixed one (stamped but not upgraded).
//!
//! What needs the store (references, the accepted variant) is read before
//! the copy is made or recorded after it replaced the database, because
//! the copy is edited while the store is busy with the rewrite.

use std::path::{Path, PathBuf};
use std::time::Duration;

use migsnap_store::{ObjectId, Progress};
use serde::Serialize;

use crate::migrations::adopt::{self, AdoptRequest, ModelsAdoptRequest};
use crate::migrations::drift::{self, AcceptPlan, LiveDatabase};
use crate::migrations::history::graph::Graph;
use crate::migrations::history::position::{self, Position};
use crate::migrations::history::project::HistoryError;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::history::targets::Targets;
use crate::migrations::repair::{self, RepairPlan};
use crate::migrations::replay::{ReplayError, ReplayEvent, Replayer};
use crate::migrations::stamp;
use crate::repo::{Repo, SelectError};
use crate::schema::Schema;
use crate::schema::canon::SchemaHash;
use crate::schema::diff::{self, Change, Op};
use crate::snapshots::restore::{self, ReplaceOptions, RestoreError};

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
    /// The steps that ran on the copy, in order; when `fixed` is false the
    /// last one failed.
    pub applied: Vec<AppliedStep>,
    /// The snapshot taken before the database was replaced (the undo).
    pub safety_snapshot: Option<ObjectId>,
    /// Whether every step ran, the result is healthy and it replaced the
    /// database.
    pub fixed: bool,
    /// Whether the database was replaced by the fixed copy; false means it
    /// was not changed at all. (Only recording the accepted variant comes
    /// after, so `replaced` without `fixed` means that failed.)
    pub replaced: bool,
    /// Why the copy was not healthy after every step succeeded (not at its
    /// heads, or not their schema), so it did not replace the database.
    pub unhealthy: Option<String>,
}

/// Why a fix could not be applied at all (a step that fails is not an
/// error: the report says so, and the database is unchanged).
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    /// The plan has nothing safe to apply.
    #[error("nothing to apply to {}: {reason}", database.display())]
    NothingSafe {
        /// The database.
        database: PathBuf,
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
    #[error("dropping {objects} from {} loses {rows} row(s) and was not allowed", database.display())]
    Destructive {
        /// The database.
        database: PathBuf,
        /// The objects.
        objects: String,
        /// Their rows.
        rows: u64,
    },
    /// The database could not be tracked for its snapshots.
    #[error(transparent)]
    Track(#[from] SelectError),
    /// The database could not be replaced (in use, locked, full, …):
    /// nothing was changed.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// A reference could not be built or read.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The history could not be read again after a revision was written.
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Applies `plan` to its database through one verified copy.
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
    if let Some(FixStep::AdoptModels { tables, message }) = steps.first() {
        let (tables, message) = (tables.clone(), message.clone());
        return models_first(
            repo, replayer, plan, &tables, &message, options, on_event, progress,
        );
    }
    let mut report = FixReport {
        plan,
        applied: Vec::new(),
        safety_snapshot: None,
        fixed: false,
        replaced: false,
        unhealthy: None,
    };
    if report.plan.healthy() {
        report.fixed = true;
        return Ok(report);
    }
    let expected = Expected::read(
        repo,
        replayer,
        graph,
        &report.plan,
        &steps,
        options,
        on_event,
    )?;
    let tracked = repo.select_or_track_path(&report.plan.database)?.tracked;
    let replace = ReplaceOptions {
        force: options.force,
        message: format!("before fix ({})", report.plan.class.name()),
        busy_timeout: options.busy_timeout,
        ..ReplaceOptions::default()
    };
    let mut applied = Vec::new();
    let edited = restore::rewrite(repo, &tracked, &replace, progress, |copy| {
        let mut editor = Editor {
            replayer,
            graph,
            copy,
            expected: &expected,
            busy_timeout: options.busy_timeout,
        };
        for step in &steps {
            let outcome = editor.run(step);
            let ok = outcome.is_ok();
            applied.push(AppliedStep {
                step: step.clone(),
                ok,
                detail: outcome.clone().unwrap_or_else(|why| why),
            });
            outcome.map_err(EditError::Step)?;
        }
        editor.healthy().map_err(EditError::Step)
    });
    report.applied = applied;
    match edited {
        Ok((written, ())) => {
            report.safety_snapshot = written.safety;
            report.fixed = true;
            report.replaced = true;
        }
        Err(EditError::Step(why)) => {
            // A failed step is in `applied` already; else every step ran
            // and the end state is what failed.
            if report.applied.iter().all(|a| a.ok) {
                report.unhealthy = Some(why);
            }
            return Ok(report);
        }
        Err(EditError::Restore(e)) => return Err(e.into()),
    }
    // The steps that need the store or the project's files run on the
    // database now that it is the fixed copy.
    for applied in report
        .applied
        .iter_mut()
        .filter(|a| a.step.after_replacing())
    {
        let settled = match &applied.step {
            FixStep::Adopt { message, .. } => adopt_extra(
                repo,
                replayer,
                graph,
                &report.plan.database,
                message,
                options,
                on_event,
                progress,
            ),
            _ => record_variant(
                repo,
                replayer,
                graph,
                &report.plan,
                &graph.heads(),
                options,
                on_event,
            ),
        };
        applied.ok = settled.is_ok();
        applied.detail = settled.unwrap_or_else(|why| why);
        report.fixed = applied.ok;
    }
    Ok(report)
}

/// Writes the revision from the models, then plans and applies the rest
/// against the history read again with it (the database is then behind
/// that revision: the upgrade applies it). A revision that cannot be
/// written or verified ends the fix with the database untouched.
#[allow(clippy::too_many_arguments)] // apply's inputs, passed through
fn models_first(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    plan: FixPlan,
    tables: &[String],
    message: &str,
    options: &FixOptions,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
    progress: &mut dyn Progress,
) -> Result<FixReport, FixError> {
    let step = FixStep::AdoptModels {
        tables: tables.to_vec(),
        message: message.to_owned(),
    };
    let request = ModelsAdoptRequest {
        tables,
        message,
        dry_run: false,
    };
    let project = replayer.project();
    let written = adopt::adopt_models(
        repo,
        project,
        replayer.graph(),
        replayer.chain(),
        &request,
        on_event,
    );
    let mut report = FixReport {
        plan,
        applied: Vec::new(),
        safety_snapshot: None,
        fixed: false,
        replaced: false,
        unhealthy: None,
    };
    let adopted = match written {
        Ok(adopted) => adopted,
        Err(why) => {
            report.applied.push(AppliedStep {
                step,
                ok: false,
                detail: why.to_string(),
            });
            return Ok(report);
        }
    };
    report.applied.push(AppliedStep {
        step,
        ok: true,
        detail: format!(
            "wrote revision {} ({}), verified by replaying it; commit the file",
            adopted.revision,
            adopted.path.display()
        ),
    });
    let graph = project.load_graph()?;
    let replayer = Replayer::new(project, &graph, replayer.chain().clone());
    let live = LiveDatabase::capture(&report.plan.database, options.busy_timeout)
        .map_err(ReplayError::from)?;
    let next = super::plan(
        repo,
        &replayer,
        &graph,
        &live,
        options.busy_timeout,
        on_event,
    )?;
    if next.class == FixClass::ModelsAhead {
        report.unhealthy = Some(format!(
            "the models are still ahead after revision {}: {}",
            adopted.revision, next.reason
        ));
        return Ok(report);
    }
    let rest = apply(repo, &replayer, &graph, next, options, on_event, progress)?;
    report.applied.extend(rest.applied);
    report.safety_snapshot = rest.safety_snapshot;
    report.fixed = rest.fixed;
    report.replaced = rest.replaced;
    report.unhealthy = rest.unhealthy;
    Ok(report)
}

/// The steps to run: the recommended ones, or those of the option asked
/// for; refused when there is nothing safe or a step loses data unasked.
fn chosen_steps(plan: &FixPlan, options: &FixOptions) -> Result<Vec<FixStep>, FixError> {
    if matches!(plan.class, FixClass::Unsure | FixClass::MultipleHeads) {
        return Err(FixError::NothingSafe {
            database: plan.database.clone(),
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
            database: plan.database.clone(),
            objects: objects.join(", "),
            rows: *rows,
        });
    }
    Ok(steps)
}

/// What the steps are checked against, read from the store before the
/// copy is made.
struct Expected {
    /// The reference of the plan's anchor, which the stamp verifies.
    anchor: Option<Schema>,
    /// The semantic hashes of the variants accepted for the anchor, which
    /// the stamp takes as its schema too.
    anchor_variants: Vec<SchemaHash>,
    /// The repair of the live schema towards the anchor, when a step
    /// repairs or drops.
    repair: Option<RepairPlan>,
    /// The reference of the heads, which the end state must mean.
    heads: Schema,
    /// The semantic hashes of the variants accepted for the heads.
    heads_variants: Vec<SchemaHash>,
    /// The extra objects that stay (the adopt and accept ways out), which
    /// the checks allow beside a reference.
    extra: Vec<Change>,
}

impl Expected {
    fn read(
        repo: &mut Repo,
        replayer: &Replayer<'_>,
        graph: &Graph,
        plan: &FixPlan,
        steps: &[FixStep],
        options: &FixOptions,
        on_event: &mut dyn FnMut(ReplayEvent<'_>),
    ) -> Result<Expected, FixError> {
        let mut reference = |repo: &mut Repo, targets: &[RevisionId]| -> Result<Schema, FixError> {
            let (built, replayed) = replayer.reference(repo, targets, on_event)?;
            match built {
                Some(reference) => Ok(reference.schema(repo)?),
                None => Err(FixError::NothingSafe {
                    database: plan.database.clone(),
                    reason: format!(
                        "the reference of {} cannot be built: {}",
                        targets.join(" + "),
                        replayed
                            .failure
                            .map(|f| f.failure.error)
                            .unwrap_or_default()
                    ),
                }),
            }
        };
        let anchor = match &plan.anchor {
            Some(anchor) => Some(reference(repo, anchor)?),
            None => None,
        };
        let heads = reference(repo, &graph.heads())?;
        let variants = |repo: &Repo, targets: &[RevisionId]| -> Result<Vec<SchemaHash>, FixError> {
            Ok(drift::accepted(repo, replayer, targets)?
                .into_iter()
                .map(|(_, semantic)| semantic)
                .collect())
        };
        let anchor_variants = match &plan.anchor {
            Some(anchor) => variants(repo, anchor)?,
            None => Vec::new(),
        };
        let heads_variants = variants(repo, &graph.heads())?;
        let dropping = steps.iter().any(FixStep::destructive);
        let repairing = steps
            .iter()
            .any(|s| matches!(s, FixStep::Repair { .. } | FixStep::Drop { .. }));
        let repair = match (&anchor, repairing) {
            (Some(anchor), true) => {
                let live = LiveDatabase::capture(&plan.database, options.busy_timeout)
                    .map_err(ReplayError::from)?;
                Some(repair::plan(&live.schema, anchor, dropping))
            }
            _ => None,
        };
        let extra = if steps.iter().any(FixStep::after_replacing) {
            plan.drift
                .changes
                .iter()
                .filter(|c| c.op == Op::Added && !c.meaning.is_form())
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        Ok(Expected {
            anchor,
            anchor_variants,
            heads_variants,
            repair,
            heads,
            extra,
        })
    }
}

/// Whether `live` means `reference`, allowing differences of form and the
/// `extra` objects, or is one of the accepted `variants` of it.
fn fits(
    live: &LiveDatabase,
    reference: &Schema,
    variants: &[SchemaHash],
    extra: &[Change],
) -> Result<(), String> {
    if variants.contains(&live.semantic) {
        return Ok(());
    }
    let drift = diff::diff(reference, &live.schema);
    let unexpected: Vec<&Change> = drift
        .changes
        .iter()
        .filter(|c| !c.meaning.is_form())
        .filter(|c| {
            !(c.op == Op::Added
                && extra
                    .iter()
                    .any(|e| e.kind == c.kind && e.name == c.name && e.table == c.table))
        })
        .collect();
    match unexpected.as_slice() {
        [] => Ok(()),
        [first, ..] => Err(format!(
            "{} difference(s) from the reference, first: {:?} {} {}",
            unexpected.len(),
            first.op,
            first.kind.name(),
            first.name
        )),
    }
}

/// Why editing the copy stopped.
enum EditError {
    /// A step failed, or the end state is not healthy.
    Step(String),
    /// Making or replacing the copy failed.
    Restore(RestoreError),
}

impl From<RestoreError> for EditError {
    fn from(error: RestoreError) -> Self {
        EditError::Restore(error)
    }
}

/// Runs steps on the copy; each returns what it did, or why it failed.
struct Editor<'e, 'a> {
    replayer: &'e Replayer<'a>,
    graph: &'e Graph,
    copy: &'e Path,
    expected: &'e Expected,
    busy_timeout: Duration,
}

impl Editor<'_, '_> {
    fn run(&mut self, step: &FixStep) -> Result<String, String> {
        match step {
            FixStep::Stamp { revisions } => self.stamp(revisions),
            FixStep::Upgrade => self.upgrade(),
            FixStep::Repair { towards } | FixStep::Drop { towards, .. } => self.repair(towards),
            // Recorded once the copy is in place.
            FixStep::Accept { revisions } => Ok(format!(
                "the extra objects stay; recorded as valid for {} once the fix is in place",
                revisions.join(" + ")
            )),
            FixStep::Adopt { .. } => Ok(
                "the extra objects stay; adopted into a new revision once the fix is in place"
                    .to_owned(),
            ),
            // `apply` writes it before any copy is made.
            FixStep::AdoptModels { .. } => Ok("written before the copy was made".to_owned()),
        }
    }

    fn capture(&self) -> Result<LiveDatabase, String> {
        LiveDatabase::capture(self.copy, self.busy_timeout).map_err(|e| e.to_string())
    }

    fn stamp(&mut self, revisions: &[RevisionId]) -> Result<String, String> {
        let anchor = self
            .expected
            .anchor
            .as_ref()
            .expect("holds: a plan that stamps has an anchor");
        let expected = self.expected;
        fits(
            &self.capture()?,
            anchor,
            &expected.anchor_variants,
            &expected.extra,
        )
        .map_err(|why| {
            format!(
                "the schema is not revision {}: {why}",
                revisions.join(" + ")
            )
        })?;
        let mut rows = revisions.to_vec();
        rows.sort();
        let kind = self.replayer.project().kind;
        let written = stamp::write_position(kind, self.copy, &rows).map_err(|e| e.to_string())?;
        if written != rows {
            return Err(format!(
                "alembic_version reads back as {}",
                written.join(", ")
            ));
        }
        Ok(format!(
            "stamped {} (verified, read back)",
            rows.join(" + ")
        ))
    }

    fn upgrade(&mut self) -> Result<String, String> {
        let heads = self.graph.heads();
        let [head] = heads.as_slice() else {
            return Err(format!("the history has {} heads", heads.len()));
        };
        let mut runner = self.replayer.runner(self.copy).map_err(|e| e.to_string())?;
        runner.upgrade(head).map_err(|failure| {
            let file = failure
                .file
                .map(|f| format!(" ({})", f.display()))
                .unwrap_or_default();
            format!("the upgrade failed{file}: {}", failure.error)
        })?;
        Ok(format!("upgraded to {head}"))
    }

    fn repair(&mut self, towards: &[RevisionId]) -> Result<String, String> {
        let planned = self
            .expected
            .repair
            .as_ref()
            .expect("holds: a plan that repairs has its repair read");
        repair::apply(self.copy, &planned.plan, &planned.target).map_err(|e| e.to_string())?;
        Ok(format!(
            "{} statement(s) towards {} (verified)",
            planned.plan.steps.len(),
            towards.join(" + ")
        ))
    }

    /// Whether the copy is at its heads with their schema.
    fn healthy(&self) -> Result<(), String> {
        let live = self.capture()?;
        let rows = drift::stamped(self.replayer.project().kind, &live.meta, self.graph);
        let expected = self.expected;
        match position::classify(self.graph, rows.as_deref()) {
            Position::AtHeads => fits(
                &live,
                &expected.heads,
                &expected.heads_variants,
                &expected.extra,
            ),
            other => Err(format!("it is {}, not at its heads", other.class())),
        }
    }
}

/// Adopts the fixed database's extra objects into a new revision on the
/// head, and stamps the database at it (verified).
#[allow(clippy::too_many_arguments)] // the adoption's inputs, passed through
fn adopt_extra(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    database: &Path,
    message: &str,
    options: &FixOptions,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
    progress: &mut dyn Progress,
) -> Result<String, String> {
    let request = AdoptRequest {
        database,
        message,
        dry_run: false,
        force: options.force,
        busy_timeout: options.busy_timeout,
    };
    let chain = replayer.chain();
    let report = adopt::adopt(
        repo,
        replayer.project(),
        graph,
        chain,
        &request,
        on_event,
        progress,
    )
    .map_err(|e| e.to_string())?;
    if !report.settled() {
        return Err(format!(
            "revision {} did not verify, so {} was removed again",
            report.revision,
            report.path.display()
        ));
    }
    Ok(format!(
        "wrote revision {} ({}) and stamped the database at it (verified); commit the file",
        report.revision,
        report.path.display()
    ))
}

/// Records the fixed database's shape as a valid variant of `revisions`,
/// so that its extra objects are acknowledged rather than drift.
fn record_variant(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    plan: &FixPlan,
    revisions: &[RevisionId],
    options: &FixOptions,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<String, String> {
    let targets =
        Targets::resolve(graph, &[], Some(revisions.to_vec())).map_err(|e| e.to_string())?;
    let busy = options.busy_timeout;
    let path = plan.database.as_path();
    match drift::plan_accept(repo, replayer, &targets, path, busy, on_event)
        .map_err(|e| e.to_string())?
    {
        AcceptPlan::Propose(proposal) => {
            let (name, _) =
                drift::accept(repo, replayer, &proposal, path, busy).map_err(|e| e.to_string())?;
            Ok(format!("the extra objects are recorded as valid ({name})"))
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
