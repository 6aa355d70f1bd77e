//! The up/down/up round trip of `migsnap test`: for every revision, its
//! downgrade must undo its upgrade exactly, and upgrading again must give
//! the same schema as the first time.
//!
//! Each revision R is tested from the state "everything R needs is applied,
//! R is not": the state of R's first parent (a copy made earlier in the same
//! run, else its recorded reference, else the empty database), upgraded to
//! each of R's prerequisites (the other parents of a merge, `depends_on`
//! targets). Then R is upgraded (AFTER), downgraded by exactly one step
//! (must equal BEFORE) and upgraded again (must equal AFTER). Schemas are
//! compared by their semantic hash, so only a difference in meaning counts,
//! and `alembic_version` is metadata, not schema. A difference of form only
//! (the same columns in another order, the same constraint under another
//! name) is not a failure: it is reported as a `drift.order` or
//! `drift.name` finding (info), and the round trip goes on.
//!
//! Every revision is tested, not only up to the first failure: a revision
//! starts from its parent's state right after the parent's *upgrade*, so a
//! bad downgrade earlier in the history does not spill into later results.
//! One runner (for Alembic, one Python process) serves the whole test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::finding::{Finding, Severity};
use crate::migrations::drift::{self, LiveDatabase};
use crate::migrations::history::graph::{Graph, ResolveError, Resolved};
use crate::migrations::history::project::{MigrationKind, Project};
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::replay::runner::{Runner, StepFailure};
use crate::migrations::replay::{self, Chain, ReplayError, Replayer, State};
use crate::repo::Repo;
use crate::schema::Schema;
use crate::schema::diff::{self, SchemaDiff};

/// The stable finding codes of `migsnap test`.
pub mod codes {
    /// A revision fails the round trip: a step raised, or its downgrade or
    /// re-upgrade left a schema that differs in definition.
    pub const FAILED: &str = "roundtrip.failed";

    /// Every code a round trip can emit: its own, and the drift codes for
    /// differences of form.
    pub const ALL: &[&str] = &[
        FAILED,
        crate::migrations::drift::codes::ORDER,
        crate::migrations::drift::codes::NAME,
    ];
}

/// What keeps a round trip from running (a revision that fails it is not
/// one of these: it is an outcome in [`RoundTripReport`]).
#[derive(Debug, thiserror::Error)]
pub enum RoundTripError {
    /// The project migrates through an `upgrade` command template, which
    /// has no way down.
    #[error(
        "the round trip needs Alembic or a SQL folder: `upgrade = \"{template}\"` in migsnap.toml only goes up"
    )]
    NoDowngrade {
        /// The template.
        template: String,
    },
    /// The revision to start from names no revision (the CLI says which
    /// flag gave it).
    #[error(transparent)]
    Since(ResolveError),
    /// Starting the runner, loading a state or reading the scratch
    /// database failed.
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// The step of the round trip a revision failed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailedStep {
    /// Upgrading to a prerequisite or to the revision itself raised.
    UpgradeError,
    /// The downgrade raised.
    DowngradeError,
    /// The downgrade ran but left a schema other than the one before the
    /// upgrade.
    DowngradeDiffers,
    /// Upgrading again after the downgrade raised.
    ReupgradeError,
    /// Upgrading again gave a schema other than the first upgrade's.
    ReupgradeDiffers,
}

impl FailedStep {
    /// Its name in output: `downgrade-differs` and so on.
    pub fn name(self) -> &'static str {
        match self {
            FailedStep::UpgradeError => "upgrade-error",
            FailedStep::DowngradeError => "downgrade-error",
            FailedStep::DowngradeDiffers => "downgrade-differs",
            FailedStep::ReupgradeError => "reupgrade-error",
            FailedStep::ReupgradeDiffers => "reupgrade-differs",
        }
    }
}

/// How one revision did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RevisionOutcome {
    /// The revision.
    pub revision: RevisionId,
    /// Its file.
    pub file: PathBuf,
    /// Whether it round-trips.
    pub ok: bool,
    /// The step it failed at.
    pub step: Option<FailedStep>,
    /// For a `*-differs` step: from the expected schema (before the upgrade,
    /// or after the first upgrade) to the one found.
    pub difference: Option<SchemaDiff>,
    /// For a `*-error` step: what the migration tool said.
    pub error: Option<StepFailure>,
    /// Steps that left a schema differing in form only: not failures.
    pub form: Vec<FormDifference>,
}

/// A step that left the schema differing from the expected one in form
/// only (column order, constraint or index names).
#[derive(Clone, Debug, serde::Serialize)]
pub struct FormDifference {
    /// The step: `downgrade-differs` or `reupgrade-differs`.
    pub step: FailedStep,
    /// From the expected schema to the one found; every change is one of
    /// form.
    pub difference: SchemaDiff,
}

/// What a round trip found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RoundTripReport {
    /// Every revision tested, in topological order.
    pub revisions: Vec<RevisionOutcome>,
    /// How many of them fail.
    pub failures: usize,
    /// One `roundtrip.failed` (error) per failing revision, one
    /// `drift.order` or `drift.name` (info) per difference of form.
    pub findings: Vec<Finding>,
}

/// Runs the round trip over a project's revisions.
pub struct RoundTrip<'a> {
    replayer: Replayer<'a>,
    graph: &'a Graph,
    busy_timeout: Duration,
}

impl<'a> RoundTrip<'a> {
    /// A round trip of `project`, starting from the references under `chain`
    /// where this run has not made the state itself.
    pub fn new(
        project: &'a Project,
        graph: &'a Graph,
        chain: Chain,
        busy_timeout: Duration,
    ) -> RoundTrip<'a> {
        RoundTrip {
            replayer: Replayer::new(project, graph, chain),
            graph,
            busy_timeout,
        }
    }

    /// The revisions to test, in topological order: all of them, or with
    /// `since`, those that upgrading to `since` does not apply.
    pub fn revisions(&self, since: Option<&str>) -> Result<Vec<RevisionId>, RoundTripError> {
        let done = match since {
            None => Default::default(),
            Some(name) => match self.graph.resolve(name).map_err(RoundTripError::Since)? {
                Resolved::Base => Default::default(),
                Resolved::Revisions(ids) => self.graph.closure(ids.iter().map(RevisionId::as_str)),
            },
        };
        Ok(self
            .graph
            .topological()
            .into_iter()
            .filter(|id| !done.contains(id))
            .collect())
    }

    /// Tests `revisions` (prerequisites first, as [`RoundTrip::revisions`]
    /// gives them), every one of them even after a failure; `on_testing`
    /// hears of each before it starts, for a caller that shows progress.
    pub fn run(
        &self,
        repo: &Repo,
        revisions: &[RevisionId],
        on_testing: &mut dyn FnMut(&str),
    ) -> Result<RoundTripReport, RoundTripError> {
        if let Some(template) = &self.replayer.project().settings.upgrade {
            return Err(RoundTripError::NoDowngrade {
                template: template.clone(),
            });
        }
        let mut report = RoundTripReport::default();
        if revisions.is_empty() {
            return Ok(report);
        }
        let scratch_dir = replay::scratch_dir()?;
        let scratch = scratch_dir.path().join("scratch.db");
        std::fs::write(&scratch, b"").map_err(ReplayError::Scratch)?;
        let mut runner = self.replayer.runner(&scratch)?;
        // Copies of "revision applied" states made in this run, by revision.
        let mut applied: BTreeMap<RevisionId, PathBuf> = BTreeMap::new();
        for revision in revisions {
            on_testing(revision);
            let keep = scratch_dir
                .path()
                .join(format!("applied-{}.db", applied.len()));
            let outcome = self.one(repo, runner.as_mut(), &scratch, revision, &applied, &keep)?;
            if keep.is_file() {
                applied.insert(revision.clone(), keep);
            }
            report.failures += usize::from(!outcome.ok);
            report.findings.extend(outcome_findings(&outcome));
            report.revisions.push(outcome);
        }
        Ok(report)
    }

    /// The round trip of one revision; the state right after its upgrade is
    /// copied to `keep` for the revisions that start from it.
    fn one(
        &self,
        repo: &Repo,
        runner: &mut dyn Runner,
        scratch: &Path,
        revision: &RevisionId,
        applied: &BTreeMap<RevisionId, PathBuf>,
        keep: &Path,
    ) -> Result<RevisionOutcome, RoundTripError> {
        let file = self
            .graph
            .get(revision)
            .map(|r| r.path.clone())
            .unwrap_or_default();
        let mut form = Vec::new();
        let outcome = |step: Option<FailedStep>, difference, error, form| RevisionOutcome {
            revision: revision.clone(),
            file: file.clone(),
            ok: step.is_none(),
            step,
            difference,
            error,
            form,
        };
        let failed = |step, error, form| Ok(outcome(Some(step), None, Some(error), form));

        let first_parent = self
            .graph
            .get(revision)
            .and_then(|r| r.parents.first().cloned());
        let stored;
        let start = match &first_parent {
            None => State::Empty,
            Some(parent) => match applied.get(parent) {
                Some(copy) => State::Copy(copy),
                None => {
                    stored = self.replayer.cached(repo, std::slice::from_ref(parent))?;
                    stored
                        .as_ref()
                        .map_or(State::Empty, |r| State::Stored(r.id))
                }
            },
        };
        self.replayer.load_state(repo, start, scratch)?;
        // Upgrading to what is already applied changes nothing, so this
        // also covers the first parent when its state was not at hand.
        for prerequisite in self.graph.prerequisites(revision) {
            if let Err(error) = runner.upgrade(&prerequisite) {
                return failed(FailedStep::UpgradeError, error, form);
            }
        }
        let before = self.capture(scratch)?;

        if let Err(error) = runner.upgrade(revision) {
            return failed(FailedStep::UpgradeError, error, form);
        }
        let after = self.capture(scratch)?;
        std::fs::copy(scratch, keep).map_err(ReplayError::Scratch)?;

        if let Err(error) = runner.downgrade(&self.downgrade_target(revision)) {
            return failed(FailedStep::DowngradeError, error, form);
        }
        let down = self.capture(scratch)?;
        if down.semantic_hash() != before.semantic_hash() {
            let difference = diff::diff(&before, &down);
            if !difference.is_form_only() {
                return Ok(outcome(
                    Some(FailedStep::DowngradeDiffers),
                    Some(difference),
                    None,
                    form,
                ));
            }
            form.push(FormDifference {
                step: FailedStep::DowngradeDiffers,
                difference,
            });
        }

        if let Err(error) = runner.upgrade(revision) {
            return failed(FailedStep::ReupgradeError, error, form);
        }
        let again = self.capture(scratch)?;
        if again.semantic_hash() != after.semantic_hash() {
            let difference = diff::diff(&after, &again);
            if !difference.is_form_only() {
                return Ok(outcome(
                    Some(FailedStep::ReupgradeDiffers),
                    Some(difference),
                    None,
                    form,
                ));
            }
            form.push(FormDifference {
                step: FailedStep::ReupgradeDiffers,
                difference,
            });
        }
        Ok(outcome(None, None, None, form))
    }

    /// The downgrade target that removes exactly `revision` from a database
    /// holding its closure, as checked against Alembic 1.20:
    /// - a merge: any one of its parents. `<merge>@-1`, `<merge>-1` and a
    ///   bare `-1` are refused ("Ambiguous walk"); downgrading to one parent
    ///   unmerges, leaving both parents as heads.
    /// - anything else: `<revision>@-1`, one step down the revision's own
    ///   branch. `<revision>-1` would do for most, but for a base revision
    ///   with `depends_on` it resolves to `base` and downgrades the
    ///   dependency too.
    ///
    /// A SQL folder is a line: the previous migration, or `base`.
    fn downgrade_target(&self, revision: &str) -> String {
        let parents = self
            .graph
            .get(revision)
            .map(|r| r.parents.as_slice())
            .unwrap_or_default();
        match (self.replayer.project().kind, parents) {
            (MigrationKind::Sql, [parent, ..]) => parent.to_string(),
            (MigrationKind::Sql, []) => "base".to_owned(),
            (MigrationKind::Alembic, [first, _, ..]) => first.to_string(),
            (MigrationKind::Alembic, _) => format!("{revision}@-1"),
        }
    }

    /// The scratch database's schema. An empty file (the state before a
    /// base revision) is the empty schema; SQLite reads it as such, but
    /// migsnap's capture refuses empty files as a likely mistake.
    fn capture(&self, scratch: &Path) -> Result<Schema, ReplayError> {
        if std::fs::metadata(scratch)
            .map_err(ReplayError::Scratch)?
            .len()
            == 0
        {
            return Ok(Schema::default());
        }
        Ok(LiveDatabase::capture(scratch, self.busy_timeout)?.schema)
    }
}

/// The findings of one revision's round trip: `roundtrip.failed` for a
/// failure, `drift.order`/`drift.name` for each difference of form.
fn outcome_findings(outcome: &RevisionOutcome) -> Vec<Finding> {
    let about = |finding: Finding| {
        finding
            .revision(&outcome.revision)
            .file(outcome.file.clone())
    };
    let mut findings = Vec::new();
    for form in &outcome.form {
        let expected = match form.step {
            FailedStep::ReupgradeDiffers => "the first upgrade",
            _ => "the schema before the upgrade",
        };
        findings.extend(
            drift::form_findings(&form.difference, expected)
                .into_iter()
                .map(about),
        );
    }
    if let Some(step) = outcome.step {
        let what = match (&outcome.difference, &outcome.error) {
            (Some(difference), _) => {
                let tally = difference.tally();
                format!(
                    "{} missing, {} extra, {} changed",
                    tally.removed, tally.added, tally.changed
                )
            }
            (None, Some(error)) => error.error.clone(),
            (None, None) => String::new(),
        };
        findings.push(about(
            Finding::new(
                codes::FAILED,
                Severity::Error,
                &outcome.revision,
                format!("{} fails the round trip at {}: {what}", outcome.revision, step.name()),
            )
            .hint(match step {
                FailedStep::DowngradeDiffers => {
                    "make downgrade() undo exactly what upgrade() does"
                }
                FailedStep::ReupgradeDiffers => {
                    "upgrade() gives another schema the second time: it depends on state the downgrade leaves"
                }
                _ => "the error above names the statement; fix the migration",
            }),
        ));
    }
    findings
}
