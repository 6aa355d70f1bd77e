//! Lint settings from `migsnap.toml`: severity overrides, feature ownership
//! of tables and the project's id type.
//!
//! They live under `[migrations.lint]` (or `[databases.NAME.migrations.lint]`)
//! rather than a top-level `[lint]`, because `migsnap.toml` rejects unknown
//! top-level tables: a typo there must not silently drop a setting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{LintError, codes};
use crate::finding::{Finding, Severity};

/// The `lint` table of a migrations configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LintConfig {
    /// A level per finding code (`"lint.destructive" = "warning"`), replacing
    /// the rule's default; `off` drops the rule's findings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub severity: BTreeMap<String, Level>,
    /// Features by name, each owning the tables that match one of its
    /// patterns (a name, or a glob with `*`): `chat = ["chat", "chat_*"]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub features: BTreeMap<String, Vec<String>>,
    /// The primary-key column type every new table should use (`VARCHAR`),
    /// instead of the most common one among existing tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_type: Option<String>,
}

/// What a severity override sets a code to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The rule does not report.
    Off,
    /// Reported as info.
    Info,
    /// Reported as a warning.
    Warning,
    /// Reported as an error.
    Error,
}

impl LintConfig {
    /// Fails on an override of a code no rule reports, so a misspelt code
    /// does not silently leave a rule at its default.
    pub fn validate(&self) -> Result<(), LintError> {
        match self
            .severity
            .keys()
            .find(|code| !codes::ALL.contains(&code.as_str()))
        {
            Some(code) => Err(LintError::UnknownCode { code: code.clone() }),
            None => Ok(()),
        }
    }

    /// `finding` with its configured severity, or `None` when its code is
    /// turned off.
    pub fn apply(&self, mut finding: Finding) -> Option<Finding> {
        if let Some(level) = self.severity.get(finding.code) {
            finding.severity = match level {
                Level::Off => return None,
                Level::Info => Severity::Info,
                Level::Warning => Severity::Warning,
                Level::Error => Severity::Error,
            };
        }
        Some(finding)
    }

    /// The feature that owns `table` by configuration: the first feature (by
    /// name) with a matching pattern.
    pub fn feature_of(&self, table: &str) -> Option<&str> {
        self.features
            .iter()
            .find(|(_, patterns)| patterns.iter().any(|p| glob_match(p, table)))
            .map(|(name, _)| name.as_str())
    }
}

/// Whether `name` matches `pattern`, ASCII case-insensitively as SQLite
/// compares names; `*` matches any run of characters.
fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole name must match.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names_case_insensitively() {
        assert!(glob_match("chat", "Chat"));
        assert!(!glob_match("chat", "chat_message"));
        assert!(glob_match("chat_*", "chat_message"));
        assert!(!glob_match("chat_*", "chat"));
        assert!(glob_match("*_audit", "user_audit"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxc"));
    }

    #[test]
    fn overrides_change_or_drop_findings_and_unknown_codes_fail() {
        let config: LintConfig = toml::from_str(
            "severity = { \"lint.destructive\" = \"warning\", \"lint.unnamed-constraint\" = \"off\" }\n\
             features = { chat = [\"chat\", \"chat_*\"] }\n",
        )
        .unwrap();
        config.validate().unwrap();
        let destructive = Finding::new(codes::DESTRUCTIVE, Severity::Error, "t", "m");
        assert_eq!(
            config.apply(destructive).unwrap().severity,
            Severity::Warning
        );
        let unnamed = Finding::new(codes::UNNAMED_CONSTRAINT, Severity::Warning, "t", "m");
        assert!(config.apply(unnamed).is_none());
        assert_eq!(config.feature_of("chat_tag"), Some("chat"));
        assert_eq!(config.feature_of("user"), None);

        let typo: LintConfig =
            toml::from_str("severity = { \"lint.destrutive\" = \"off\" }").unwrap();
        assert!(matches!(
            typo.validate(),
            Err(LintError::UnknownCode { code }) if code == "lint.destrutive"
        ));
    }

    /// The shipped guide profile is valid TOML, names only codes that
    /// exist, and states the defaults the rules really have.
    #[test]
    fn the_guide_profile_names_real_codes_and_the_guide_defaults() {
        let profile: toml::Table =
            toml::from_str(include_str!("../../docs/guide-profile.toml")).unwrap();
        let severity = profile["findings"]["severity"].as_table().unwrap();
        for (code, level) in severity {
            assert!(
                codes::ALL.contains(&code.as_str()) || code.starts_with("history."),
                "{code}"
            );
            let level: Level = level.clone().try_into().unwrap();
            if [codes::ALTERS_EXISTING_TABLE, codes::CROSS_FEATURE_FK].contains(&code.as_str()) {
                assert_eq!(level, Level::Error, "{code}");
            }
        }
        assert_eq!(severity.len(), codes::ALL.len() + 2);
    }
}
