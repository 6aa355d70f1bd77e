//! Lint settings from `migsnap.toml`: feature ownership of tables and the
//! project's id type. Severities are not here: every command's findings,
//! lint's included, take theirs from the one `[findings]` table
//! ([`crate::policy`]).
//!
//! They live under `[migrations.lint]` (or `[databases.NAME.migrations.lint]`)
//! rather than a top-level `[lint]`, because `migsnap.toml` rejects unknown
//! top-level tables: a typo there must not silently drop a setting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `lint` table of a migrations configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LintConfig {
    /// Features by name, each owning the tables that match one of its
    /// patterns (a name, or a glob with `*`): `chat = ["chat", "chat_*"]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub features: BTreeMap<String, Vec<String>>,
    /// The primary-key column type every new table should use (`VARCHAR`),
    /// instead of the most common one among existing tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_type: Option<String>,
}

impl LintConfig {
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
    fn features_own_tables_by_pattern() {
        let config: LintConfig =
            toml::from_str("features = { chat = [\"chat\", \"chat_*\"] }\n").unwrap();
        assert_eq!(config.feature_of("chat_tag"), Some("chat"));
        assert_eq!(config.feature_of("user"), None);
        // Severities moved to [findings]; an old key is refused, not dropped.
        assert!(toml::from_str::<LintConfig>("severity = {}").is_err());
    }
}
