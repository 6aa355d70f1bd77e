//! The `migrations` table of `migsnap.toml`: what kind of migrations a
//! project has and everything discovery would otherwise guess.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How a project's migrations are written and applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationKind {
    /// Alembic revision files, applied by Alembic.
    Alembic,
    /// A folder of `.sql` files, applied by migsnap.
    Sql,
}

/// The `migrations` table of a database in `migsnap.toml`: everything
/// discovery would otherwise guess.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MigrationsConfig {
    /// `alembic` or `sql`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<MigrationKind>,
    /// The Alembic ini file (as `alembic -c`), relative to the project root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// The ini section (as `alembic -n`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// The folder of `.sql` migrations, relative to the project root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The Python interpreter that has the project's Alembic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<PathBuf>,
    /// A command that applies one revision, for other migration tools;
    /// `{db}`, `{url}` and `{rev}` are replaced.
    pub upgrade: Option<String>,
    /// Environment variables that receive the scratch database URL during a
    /// replay (default `DATABASE_URL`).
    pub url_env: Option<Vec<String>>,
    /// Whether to pass the scratch URL as `sqlalchemy.url` too (default yes).
    pub url_in_ini: Option<bool>,
    /// How long one replay step may take, e.g. `2m` (default 10 minutes).
    pub timeout: Option<String>,
    /// The application's SQLAlchemy models, as `package.module:attribute`
    /// (a `MetaData` or a declarative base), when env.py does not set
    /// `target_metadata`: the schema `replay` records as the models
    /// reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<String>,
    /// `migsnap lint` settings (`[migrations.lint]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint: Option<super::lint::LintConfig>,
    /// The bootstrap of the `[replay]` table that applies (the database's
    /// own, else the project-wide one). Not a key of this table: the
    /// repository fills it in, so every replay of the project, from any
    /// command, runs the same bootstrap.
    #[serde(skip)]
    pub bootstrap: Option<super::replay::BootstrapConfig>,
}
