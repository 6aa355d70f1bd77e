//! Findings: facts worth a person's attention, each with a stable code that
//! scripts can match on.
//!
//! Every area that judges something (schema capture, the migration history,
//! drift, lint) reports through this one type, so text and JSON output and
//! `--fail-on` thresholds treat them all alike.

use std::path::PathBuf;

use serde::Serialize;

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Probably wrong.
    Warning,
    /// Wrong, and data may be at risk.
    Error,
}

impl Severity {
    /// The lower-case word used in text output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, `area.name`; each area lists its codes in a `codes`
    /// module.
    pub code: &'static str,
    /// How much it matters.
    pub severity: Severity,
    /// The object it is about (a table or revision name, as written).
    pub object: String,
    /// What was found.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The migration revision it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The file it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl Finding {
    /// A finding about `object` with no revision, file or hint yet.
    pub fn new(
        code: &'static str,
        severity: Severity,
        object: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            code,
            severity,
            object: object.into(),
            message: message.into(),
            hint: None,
            revision: None,
            file: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Finding {
        self.hint = Some(hint.into());
        self
    }

    /// Names the revision it concerns.
    pub fn revision(mut self, revision: impl Into<String>) -> Finding {
        self.revision = Some(revision.into());
        self
    }

    /// Names the file it concerns.
    pub fn file(mut self, file: impl Into<PathBuf>) -> Finding {
        self.file = Some(file.into());
        self
    }
}
