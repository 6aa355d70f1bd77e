//! The `[findings]` table of `migsnap.toml`: per-code severities, the
//! ignore list, the default threshold and strictness. What they do to a
//! command's findings is [`crate::policy`]'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::finding::Severity;

/// The `[findings]` table of `migsnap.toml`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FindingsConfig {
    /// A level per finding code (`"history.header-mismatch" = "warning"`),
    /// replacing its default; `off` moves its findings to the ignored list.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub severity: BTreeMap<String, Level>,
    /// Known, intended findings: matched ones are listed as ignored and do
    /// not count toward the verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<IgnoreRule>,
    /// The default `--fail-on` threshold (`error` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on: Option<Threshold>,
    /// The default for `--strict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// A level a code can be set to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Not reported as a finding; listed as ignored.
    Off,
    /// Worth knowing.
    Info,
    /// Probably wrong.
    Warning,
    /// Wrong.
    Error,
}

impl Level {
    /// The severity this level gives, `None` for `off`.
    pub fn severity(self) -> Option<Severity> {
        match self {
            Level::Off => None,
            Level::Info => Some(Severity::Info),
            Level::Warning => Some(Severity::Warning),
            Level::Error => Some(Severity::Error),
        }
    }
}

/// The least severity that makes a verdict fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Threshold {
    /// Any finding fails.
    Info,
    /// Warnings and errors fail.
    Warning,
    /// Only errors fail (the default).
    Error,
    /// Nothing fails: report only.
    Never,
}

impl Threshold {
    /// Whether a finding of `severity` reaches this threshold.
    pub fn reached_by(self, severity: Severity) -> bool {
        match self {
            Threshold::Info => true,
            Threshold::Warning => severity >= Severity::Warning,
            Threshold::Error => severity >= Severity::Error,
            Threshold::Never => false,
        }
    }

    /// The lower-case word used in text output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Threshold::Info => "info",
            Threshold::Warning => "warning",
            Threshold::Error => "error",
            Threshold::Never => "never",
        }
    }
}

/// One entry of the ignore list. Every field given must match; `object`
/// and `revision` compare exactly, `code` may end in `*` to match a prefix
/// (`"artefact.*"`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IgnoreRule {
    /// The finding code.
    pub code: String,
    /// The object it is about (a table, a database path, a revision list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The revision it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Why it is fine, shown beside the ignored finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
