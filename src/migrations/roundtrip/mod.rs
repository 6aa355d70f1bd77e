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
//!
//! A revision that starts a second head (its `down_revision` already leads
//! to another line that never merges with it) fails even when its steps
//! pass: on a database holding both lines, `alembic downgrade -1` picks a
//! head by itself (Alembic 1.20 warns, then undoes the main line's head
//! rather than the revision just applied).
//!
//! [`data`] runs the same steps on a copy of a real database, for the
//! revisions it has not applied yet, and compares its rows too.

pub mod content;
pub mod data;

use std::collections::{BTreeMap, BTreeSet};
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

    /// A revision starts a second head: its `down_revision` already leads
    /// to another line, and the two never merge.
    pub const SECOND_HEAD: &str = "roundtrip.second-head";

    /// On real data, a downgrade lost or changed rows of a table it should
    /// restore, or upgrading again left other row counts than the first
    /// upgrade.
    pub const DATA_DIFFERS: &str = "roundtrip.data-differs";

    /// Every code a round trip can emit: its own, and the drift codes for
    /// differences of form.
    pub const ALL: &[&str] = &[
        FAILED,
        SECOND_HEAD,
        DATA_DIFFERS,
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
    /// The database to test on records revisions that place it nowhere in
    /// the history, so nothing says which revisions are pending.
    #[error(
        "cannot tell which revisions are pending: the database to test on records {revisions} ({class})"
    )]
    Unplaced {
        /// The position's class (`unknown-revision`, `inconsistent`).
        class: &'static str,
        /// The rows in question.
        revisions: String,
    },
    /// The rows of the scratch copy could not be read.
    #[error(transparent)]
    Content(#[from] content::ContentError),
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
    /// On real data: the downgrade lost rows of a table that was there
    /// before, or changed the rows of one it claims to restore.
    DowngradeDataDiffers,
    /// On real data: upgrading again left other row counts than the first
    /// upgrade.
    ReupgradeDataDiffers,
    /// The steps pass, but the revision starts a second head.
    SecondHead,
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
            FailedStep::DowngradeDataDiffers => "downgrade-data-differs",
            FailedStep::ReupgradeDataDiffers => "reupgrade-data-differs",
            FailedStep::SecondHead => "second-head",
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
    /// For a `*-error` step: what the migration tool said; for
    /// `second-head`: which line the revision forks from.
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

impl RevisionOutcome {
    /// This outcome, failed at `step`.
    fn failed(
        mut self,
        step: FailedStep,
        difference: Option<SchemaDiff>,
        error: Option<StepFailure>,
    ) -> RevisionOutcome {
        self.ok = false;
        self.step = Some(step);
        self.difference = difference;
        self.error = error;
        self
    }

    /// This passing outcome, failed because the revision starts a second
    /// head (`why` says beside which line).
    fn second_head(self, why: StepFailure) -> RevisionOutcome {
        self.failed(FailedStep::SecondHead, None, Some(why))
    }
}

/// The difference from `expected` to `found` when it is one of meaning; a
/// difference of form only is kept in `form` (under `step`) instead.
fn differs(
    expected: &Schema,
    found: &Schema,
    step: FailedStep,
    form: &mut Vec<FormDifference>,
) -> Option<SchemaDiff> {
    if found.semantic_hash() == expected.semantic_hash() {
        return None;
    }
    let difference = diff::diff(expected, found);
    if !difference.is_form_only() {
        return Some(difference);
    }
    form.push(FormDifference { step, difference });
    None
}

/// The states of the scratch database a round trip looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    /// Before the upgrade.
    Before,
    /// After the first upgrade.
    Upgraded,
    /// After the downgrade, its schema already found to mean BEFORE.
    Downgraded,
    /// After the second upgrade, its schema already found to mean AFTER.
    Reupgraded,
}

/// What a round trip checks beyond the schema, or keeps, at each state.
trait Watch {
    /// Looks at the scratch database (whose schema is `schema`) at `point`;
    /// a step returned fails the revision there (heard only at
    /// [`Point::Downgraded`] and [`Point::Reupgraded`]).
    fn at(
        &mut self,
        point: Point,
        scratch: &Path,
        schema: &Schema,
    ) -> Result<Option<FailedStep>, RoundTripError>;
}

/// The empty-database round trip's watch: it keeps a copy of the state
/// right after the upgrade, for the revisions that start from it.
struct KeepUpgraded<'a>(&'a Path);

impl Watch for KeepUpgraded<'_> {
    fn at(
        &mut self,
        point: Point,
        scratch: &Path,
        _: &Schema,
    ) -> Result<Option<FailedStep>, RoundTripError> {
        if point == Point::Upgraded {
            std::fs::copy(scratch, self.0).map_err(ReplayError::Scratch)?;
        }
        Ok(None)
    }
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
        self.check_way_down()?;
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
            let mut outcome =
                self.one(repo, runner.as_mut(), &scratch, revision, &applied, &keep)?;
            if keep.is_file() {
                applied.insert(revision.clone(), keep);
            }
            if outcome.ok
                && let Some(sibling) = self.forked_sibling(revision)
            {
                outcome = outcome.second_head(self.second_head(revision, &sibling));
            }
            report.failures += usize::from(!outcome.ok);
            report.findings.extend(outcome_findings(&outcome, None));
            report.revisions.push(outcome);
        }
        Ok(report)
    }

    /// Refuses a project whose migrations only go up.
    fn check_way_down(&self) -> Result<(), RoundTripError> {
        match &self.replayer.project().settings.upgrade {
            Some(template) => Err(RoundTripError::NoDowngrade {
                template: template.clone(),
            }),
            None => Ok(()),
        }
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
        self.replayer.load_state(repo, start, scratch, runner)?;
        // Upgrading to what is already applied changes nothing, so this
        // also covers the first parent when its state was not at hand.
        for prerequisite in self.graph.prerequisites(revision) {
            if let Err(error) = runner.upgrade(&prerequisite) {
                return Ok(self.outcome(revision).failed(
                    FailedStep::UpgradeError,
                    None,
                    Some(error),
                ));
            }
        }
        self.steps(runner, scratch, revision, &mut KeepUpgraded(keep))
    }

    /// A passing outcome for `revision`, to fail if a step fails.
    fn outcome(&self, revision: &RevisionId) -> RevisionOutcome {
        RevisionOutcome {
            revision: revision.clone(),
            file: self
                .graph
                .get(revision)
                .map(|r| r.path.clone())
                .unwrap_or_default(),
            ok: true,
            step: None,
            difference: None,
            error: None,
            form: Vec::new(),
        }
    }

    /// The round trip proper, from the scratch database as it is (BEFORE):
    /// upgrade to `revision` (AFTER), downgrade it by one step (must mean
    /// BEFORE), upgrade again (must mean AFTER). `watch` looks at each of
    /// these states and may fail the revision at any of them.
    fn steps(
        &self,
        runner: &mut dyn Runner,
        scratch: &Path,
        revision: &RevisionId,
        watch: &mut dyn Watch,
    ) -> Result<RevisionOutcome, RoundTripError> {
        let mut outcome = self.outcome(revision);
        let before = self.capture(scratch)?;
        watch.at(Point::Before, scratch, &before)?;

        if let Err(error) = runner.upgrade(revision) {
            return Ok(outcome.failed(FailedStep::UpgradeError, None, Some(error)));
        }
        let after = self.capture(scratch)?;
        watch.at(Point::Upgraded, scratch, &after)?;

        if let Err(error) = runner.downgrade(&self.downgrade_target(revision)) {
            return Ok(outcome.failed(FailedStep::DowngradeError, None, Some(error)));
        }
        let down = self.capture(scratch)?;
        let step = FailedStep::DowngradeDiffers;
        if let Some(difference) = differs(&before, &down, step, &mut outcome.form) {
            return Ok(outcome.failed(step, Some(difference), None));
        }
        if let Some(step) = watch.at(Point::Downgraded, scratch, &down)? {
            return Ok(outcome.failed(step, None, None));
        }

        if let Err(error) = runner.upgrade(revision) {
            return Ok(outcome.failed(FailedStep::ReupgradeError, None, Some(error)));
        }
        let again = self.capture(scratch)?;
        let step = FailedStep::ReupgradeDiffers;
        if let Some(difference) = differs(&after, &again, step, &mut outcome.form) {
            return Ok(outcome.failed(step, Some(difference), None));
        }
        if let Some(step) = watch.at(Point::Reupgraded, scratch, &again)? {
            return Ok(outcome.failed(step, None, None));
        }
        Ok(outcome)
    }

    /// The sibling `revision` forks from its parent beside when it starts a
    /// second head: `revision` has one parent and no branch label (a
    /// labelled branch is meant to stand apart), the parent has another
    /// child, and no revision descends from both (they never merge).
    fn forked_sibling(&self, revision: &RevisionId) -> Option<RevisionId> {
        let declared = self.graph.get(revision)?;
        let [parent] = declared.parents.as_slice() else {
            return None;
        };
        if !declared.branch_labels.is_empty() {
            return None;
        }
        let lines: Vec<BTreeSet<RevisionId>> = self
            .graph
            .heads()
            .into_iter()
            .map(|head| {
                let mut line = self.graph.ancestors(&head);
                line.insert(head);
                line
            })
            .collect();
        self.graph
            .children(parent)
            .iter()
            .find(|sibling| {
                *sibling != revision
                    && !lines
                        .iter()
                        .any(|line| line.contains(*sibling) && line.contains(revision))
            })
            .cloned()
    }

    /// Why `revision`, forking from its parent beside `sibling`, fails.
    fn second_head(&self, revision: &RevisionId, sibling: &RevisionId) -> StepFailure {
        let parent = self
            .graph
            .get(revision)
            .and_then(|r| r.parents.first())
            .map_or_else(String::new, ToString::to_string);
        StepFailure {
            error: format!(
                "its down_revision {parent} already leads to {sibling}, and the two lines never merge: \
                 a second head, where `alembic downgrade -1` picks which head to undo by itself"
            ),
            file: None,
            detail: String::new(),
        }
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

/// The findings of one revision's round trip: `roundtrip.failed`,
/// `roundtrip.second-head` or `roundtrip.data-differs` for a failure (the
/// last described by `data`, which names the tables),
/// `drift.order`/`drift.name` for each difference of form.
fn outcome_findings(outcome: &RevisionOutcome, data: Option<&str>) -> Vec<Finding> {
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
            (None, None) => data.unwrap_or_default().to_owned(),
        };
        let code = match step {
            FailedStep::SecondHead => codes::SECOND_HEAD,
            FailedStep::DowngradeDataDiffers | FailedStep::ReupgradeDataDiffers => {
                codes::DATA_DIFFERS
            }
            _ => codes::FAILED,
        };
        findings.push(about(
            Finding::new(
                code,
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
                FailedStep::DowngradeDataDiffers => {
                    "downgrade() must give back the rows of the tables it restores (a batch rebuild keeps them; drop_table and create_table do not)"
                }
                FailedStep::ReupgradeDataDiffers => {
                    "upgrade() gives other rows the second time: it depends on rows the downgrade leaves"
                }
                FailedStep::SecondHead => {
                    "re-point its down_revision at the current head (`migsnap history` shows the heads); merge only lines that have both shipped"
                }
                _ => "the error above names the statement; fix the migration",
            }),
        ));
    }
    findings
}
