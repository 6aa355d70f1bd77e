//! The `[replay]` table of `migsnap.toml` (and a database's own
//! `[databases.NAME.replay]`): how the scratch databases of a replay are
//! prepared before the base revision runs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `[replay]` table.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// What creates the tables the base revision expects, for projects
    /// whose first tables are made outside Alembic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapConfig>,
}

/// `bootstrap = { … }`: exactly one of `sql`, `python`, `snapshot` or
/// `database`; `tables` only with the last two. Which one is checked where
/// the bootstrap is used ([`BootstrapConfig::source`]), so a file with an
/// unused mistake still opens.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    /// A SQL file, relative to the repository root, run by migsnap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<PathBuf>,
    /// A Python callable, `module:function`, called with the scratch
    /// database's URL by the replay's own driver and interpreter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// A snapshot (any REV: a tag, a hash prefix) whose schema's tables
    /// are created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// A SQLite file, relative to the repository root, whose tables are
    /// created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<PathBuf>,
    /// With `snapshot` or `database`: the tables to take (with their
    /// indexes and triggers); all of them when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<Vec<String>>,
}

/// Where a bootstrap's tables come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootstrapSource {
    /// A SQL file.
    Sql(PathBuf),
    /// A Python callable, `module:function`.
    Python(String),
    /// The schema of a snapshot.
    Snapshot(String),
    /// The schema of a SQLite file.
    Database(PathBuf),
}

impl BootstrapConfig {
    /// The one source the table names, or why it does not name one.
    pub fn source(&self) -> Result<BootstrapSource, String> {
        let mut sources = Vec::new();
        if let Some(sql) = &self.sql {
            sources.push(BootstrapSource::Sql(sql.clone()));
        }
        if let Some(python) = &self.python {
            sources.push(BootstrapSource::Python(python.clone()));
        }
        if let Some(snapshot) = &self.snapshot {
            sources.push(BootstrapSource::Snapshot(snapshot.clone()));
        }
        if let Some(database) = &self.database {
            sources.push(BootstrapSource::Database(database.clone()));
        }
        let source = match sources.len() {
            1 => sources.remove(0),
            0 => return Err("bootstrap needs one of sql, python, snapshot or database".into()),
            _ => {
                return Err(
                    "bootstrap takes one of sql, python, snapshot or database, not several".into(),
                );
            }
        };
        if self.tables.is_some()
            && matches!(source, BootstrapSource::Sql(_) | BootstrapSource::Python(_))
        {
            return Err("bootstrap tables = [...] goes with snapshot or database".into());
        }
        if let BootstrapSource::Python(callable) = &source {
            let well_formed = callable.split_once(':').is_some_and(|(module, function)| {
                !module.is_empty()
                    && !function.is_empty()
                    && !function.contains(':')
                    && module.split('.').all(is_identifier)
                    && is_identifier(function)
            });
            if !well_formed {
                return Err(format!(
                    "bootstrap python = \"{callable}\" is not `module:function`"
                ));
            }
        }
        Ok(source)
    }
}

/// Whether `name` is a Python identifier (ASCII, as module paths are).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BootstrapSource, String> {
        let config: ReplayConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.bootstrap.expect("a bootstrap").source()
    }

    #[test]
    fn a_bootstrap_names_exactly_one_source() {
        assert_eq!(
            parse(r#"bootstrap = { sql = "boot.sql" }"#),
            Ok(BootstrapSource::Sql("boot.sql".into()))
        );
        assert_eq!(
            parse(r#"bootstrap = { python = "app.models:create_all" }"#),
            Ok(BootstrapSource::Python("app.models:create_all".into()))
        );
        assert_eq!(
            parse(r#"bootstrap = { snapshot = "before", tables = ["user"] }"#),
            Ok(BootstrapSource::Snapshot("before".into()))
        );
        assert_eq!(
            parse(r#"bootstrap = { database = "data/seed.db" }"#),
            Ok(BootstrapSource::Database("data/seed.db".into()))
        );
        for (text, needle) in [
            ("bootstrap = {}", "needs one of"),
            (
                r#"bootstrap = { sql = "a", python = "m:f" }"#,
                "not several",
            ),
            (r#"bootstrap = { sql = "a", tables = ["t"] }"#, "goes with"),
            (
                r#"bootstrap = { python = "app.models" }"#,
                "not `module:function`",
            ),
            (
                r#"bootstrap = { python = "app-x:f" }"#,
                "not `module:function`",
            ),
            (r#"bootstrap = { file = "a" }"#, "unknown field `file`"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }
}
