//! Fix: the repair a careful person would choose for a database that has
//! drifted from its migration history, the reason in one sentence, and the
//! exact steps ([`plan`]); then those steps run, each verified, with the
//! database put back when one fails ([`apply`]).
//!
//! The planner prefers steps that let the project's own migrations run:
//! when the schema is exactly some revision's, the fix is to record that
//! revision and upgrade, so that data migrations run for real. `repair`
//! (schema statements written by migsnap) is chosen only for objects that
//! are missing while the version row is right.

mod apply;
mod plan;

use std::path::PathBuf;

use serde::Serialize;

use crate::finding::Finding;
use crate::migrations::history::position::Position;
use crate::migrations::history::revision_id::RevisionId;
use crate::schema::diff::SchemaDiff;

pub use apply::{AppliedStep, FixError, FixOptions, FixReport, apply};
pub use plan::plan;

/// The stable finding codes of `fix`.
pub mod codes {
    /// The database needs a fix (the plan names it).
    pub const NEEDED: &str = "fix.needed";
    /// The history has several heads: a history fix comes first.
    pub const MULTIPLE_HEADS: &str = "fix.multiple-heads";
    /// No fix is safe to choose without a person (the plan says why).
    pub const UNSURE: &str = "fix.unsure";

    /// Every code above, for validating configuration.
    pub const ALL: &[&str] = &[NEEDED, MULTIPLE_HEADS, UNSURE];
}

/// What the planner found the database to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixClass {
    /// At its heads, and its schema is theirs: nothing to do.
    Healthy,
    /// Its schema is what its version rows say; revisions are pending.
    Behind,
    /// Its schema is exactly another revision's than its version rows say
    /// (stamped ahead or behind, tables made by hand that a later revision
    /// makes, no or an unknown version row).
    Misstamped,
    /// Objects of its revision are missing (a dropped column, a lost
    /// index), and nothing is extra.
    MissingObjects,
    /// It has objects no revision makes (a hand-made feature), and nothing
    /// is missing.
    ExtraObjects,
    /// Both missing and extra objects.
    MissingAndExtraObjects,
    /// The database is what its history makes, but the models declare
    /// tables or columns no migration creates: the history needs a
    /// revision, written from the models, and the database an upgrade.
    ModelsAhead,
    /// The history has several heads: not a database fix.
    MultipleHeads,
    /// No fix can be chosen safely; the reason says what a person must
    /// decide.
    Unsure,
}

impl FixClass {
    /// The class name used in text and JSON (`misstamped`, …).
    pub fn name(self) -> &'static str {
        match self {
            FixClass::Healthy => "healthy",
            FixClass::Behind => "behind",
            FixClass::Misstamped => "misstamped",
            FixClass::MissingObjects => "missing-objects",
            FixClass::ExtraObjects => "extra-objects",
            FixClass::MissingAndExtraObjects => "missing-and-extra-objects",
            FixClass::ModelsAhead => "models-ahead",
            FixClass::MultipleHeads => "multiple-heads",
            FixClass::Unsure => "unsure",
        }
    }
}

/// One step of a fix, as a command a person could run instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum FixStep {
    /// Record `revisions` in `alembic_version`, after verifying that the
    /// schema is theirs (`migsnap stamp --verify`).
    Stamp {
        /// The revisions to record.
        revisions: Vec<RevisionId>,
    },
    /// Run the project's upgrade to its heads (`alembic upgrade heads`),
    /// so that every pending migration, data steps included, runs.
    Upgrade,
    /// Add what the reference of `towards` has and the database lacks,
    /// keeping everything else (`migsnap repair --apply`).
    Repair {
        /// The revisions whose reference is the goal.
        towards: Vec<RevisionId>,
    },
    /// Record the database's shape, extra objects included, as a valid
    /// variant of `revisions` (`migsnap accept`).
    Accept {
        /// The revisions the shape is accepted for.
        revisions: Vec<RevisionId>,
    },
    /// Write a new revision on the head that creates the extra objects,
    /// and record it (`migsnap adopt`): the history then describes the
    /// database, so every other copy gets the objects by upgrading.
    Adopt {
        /// The objects the revision creates, as `kind name`.
        objects: Vec<String>,
        /// The revision's message (its docstring and file name).
        message: String,
    },
    /// Write a new revision on the head that creates what the models
    /// declare for `tables` and no migration creates (`migsnap adopt
    /// --from-models`); it runs before the copy is made, as it changes the
    /// history, not the database.
    AdoptModels {
        /// The tables whose declarations the revision creates.
        tables: Vec<String>,
        /// The revision's message.
        message: String,
    },
    /// Drop the extra objects (`migsnap repair --apply
    /// --allow-destructive`): destructive.
    Drop {
        /// The revisions whose reference is the goal.
        towards: Vec<RevisionId>,
        /// The extra objects dropped, as `kind name`.
        objects: Vec<String>,
        /// The rows the dropped tables hold.
        rows: u64,
    },
}

impl FixStep {
    /// The step's name, as in JSON (`stamp`, `upgrade`, …).
    pub fn name(&self) -> &'static str {
        match self {
            FixStep::Stamp { .. } => "stamp",
            FixStep::Upgrade => "upgrade",
            FixStep::Repair { .. } => "repair",
            FixStep::Accept { .. } => "accept",
            FixStep::Adopt { .. } => "adopt",
            FixStep::AdoptModels { .. } => "adopt-models",
            FixStep::Drop { .. } => "drop",
        }
    }

    /// Whether the step can lose data.
    pub fn destructive(&self) -> bool {
        matches!(self, FixStep::Drop { .. })
    }

    /// Whether the step needs the store or the project's files and so runs
    /// on the database once the fixed copy replaced it, not on the copy.
    pub fn after_replacing(&self) -> bool {
        matches!(self, FixStep::Accept { .. } | FixStep::Adopt { .. })
    }
}

/// A way out of extra objects, with why it is (or is not) recommended.
#[derive(Clone, Debug, Serialize)]
pub struct FixOption {
    /// `adopt`, `accept` or `drop`.
    pub name: &'static str,
    /// The steps it takes, in order (the rest of the plan follows).
    pub steps: Vec<FixStep>,
    /// What it means, in one sentence.
    pub why: String,
}

/// The fix for one database: what it is, why, and the steps.
#[derive(Clone, Debug, Serialize)]
pub struct FixPlan {
    /// The database file.
    pub database: PathBuf,
    /// Its `alembic_version` rows (`None`: no table).
    pub rows: Option<Vec<RevisionId>>,
    /// Where the rows put it.
    pub position: Position,
    /// What the planner found.
    pub class: FixClass,
    /// The revisions the schema is (or, with differences, is nearest to).
    pub anchor: Option<Vec<RevisionId>>,
    /// How the schema differs from the anchor's reference (`added`: extra
    /// in the database, `removed`: missing from it).
    pub drift: SchemaDiff,
    /// Why this fix, in one sentence.
    pub reason: String,
    /// The recommended steps, in order; empty when there is nothing to do
    /// or nothing safe to do.
    pub steps: Vec<FixStep>,
    /// Other ways out of extra objects, the recommended one first.
    pub options: Vec<FixOption>,
    /// The verdict's input: one finding when a fix is needed.
    pub findings: Vec<Finding>,
}

impl FixPlan {
    /// Whether there is nothing to fix.
    pub fn healthy(&self) -> bool {
        self.class == FixClass::Healthy
    }
}
