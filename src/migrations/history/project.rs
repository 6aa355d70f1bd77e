//! A migration project: where its migrations are, how they are applied, and
//! its revision graph, found with no configuration for an ordinary Alembic
//! project and configurable in `migsnap.toml` for everything else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::alembic_config::{self, AlembicConfig, ConfigError};
use super::graph::{self, Graph, Revision};
use super::revision_file::{self, DownRevision};
use super::revision_id::RevisionId;
use super::sql_folder;
use crate::finding::{Finding, Severity};

pub use crate::config::migrations::{MigrationKind, MigrationsConfig};

/// What can go wrong finding or reading a migration project.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// No migrations were found, and none are configured.
    #[error(
        "no migrations found in {dir}: no alembic.ini or pyproject.toml [tool.alembic]; \
         name them with `[databases.NAME.migrations]` in migsnap.toml (config = \"path/alembic.ini\", or kind = \"sql\" and dir = \"migrations\")"
    )]
    NotFound {
        /// Where discovery looked.
        dir: PathBuf,
    },
    /// The Alembic configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A versions directory does not exist or cannot be listed.
    #[error("cannot read migrations directory {path}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A setting in `migsnap.toml` is wrong.
    #[error("migsnap.toml: {0}")]
    Setting(String),
}

/// A migration project found on disk.
#[derive(Clone, Debug)]
pub struct Project {
    /// How its migrations are applied.
    pub kind: MigrationKind,
    /// The directory commands run in: the ini's directory, or the project
    /// root.
    pub root: PathBuf,
    /// The Alembic settings, for an Alembic project.
    pub alembic: Option<AlembicConfig>,
    /// The migration folder, for a SQL project.
    pub sql_dir: Option<PathBuf>,
    /// The explicit settings it was found with.
    pub settings: MigrationsConfig,
}

/// The default step timeout of a replay.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

impl Project {
    /// Finds the project: the explicit settings first, then `alembic.ini`
    /// (or `ALEMBIC_CONFIG`, or `pyproject.toml`) in `cwd`, then in `root`.
    pub fn discover(
        root: &Path,
        cwd: &Path,
        settings: &MigrationsConfig,
    ) -> Result<Project, HistoryError> {
        let env_config = std::env::var_os("ALEMBIC_CONFIG").map(PathBuf::from);
        let explicit = settings.config.as_ref().map(|c| root.join(c));
        let kind = settings.kind.unwrap_or(if settings.dir.is_some() {
            MigrationKind::Sql
        } else {
            MigrationKind::Alembic
        });
        if kind == MigrationKind::Sql {
            let dir =
                settings.dir.as_ref().map(|d| root.join(d)).ok_or_else(|| {
                    HistoryError::Setting("kind = \"sql\" needs dir = \"…\"".into())
                })?;
            return Ok(Project {
                kind,
                root: root.to_path_buf(),
                alembic: None,
                sql_dir: Some(dir),
                settings: settings.clone(),
            });
        }
        let section = settings.section.as_deref();
        let mut last = None;
        for dir in [cwd, root] {
            match alembic_config::find(dir, explicit.as_deref(), env_config.as_deref(), section) {
                Ok(config) => {
                    let root = match &config.source {
                        alembic_config::ConfigSource::Ini(p)
                        | alembic_config::ConfigSource::Pyproject(p) => {
                            p.parent().unwrap_or(root).to_path_buf()
                        }
                    };
                    return Ok(Project {
                        kind,
                        root,
                        alembic: Some(config),
                        sql_dir: None,
                        settings: settings.clone(),
                    });
                }
                Err(ConfigError::NotFound { .. }) => last = Some(dir),
                Err(e) => return Err(e.into()),
            }
        }
        Err(HistoryError::NotFound {
            dir: last.unwrap_or(root).to_path_buf(),
        })
    }

    /// The directories that hold revision files.
    pub fn version_dirs(&self) -> Vec<PathBuf> {
        match (&self.alembic, &self.sql_dir) {
            (Some(config), _) => config.version_locations.clone(),
            (None, Some(dir)) => vec![dir.clone()],
            (None, None) => Vec::new(),
        }
    }

    /// What tells this project from another in one repository: its kind,
    /// and the folders its migrations live in, relative to `root` (the
    /// repository root, so the identity survives moving the checkout;
    /// absolute when outside it), with the ini section for Alembic (one
    /// `env.py` can serve several sections, each a history of its own).
    /// Two ini files naming the same folders and section are one project.
    pub fn identity(&self, root: &Path) -> String {
        let shown = |path: &Path| {
            path.strip_prefix(root)
                .unwrap_or(path)
                .display()
                .to_string()
        };
        match (&self.alembic, &self.sql_dir) {
            (Some(config), _) => {
                let versions: Vec<String> = config
                    .version_locations
                    .iter()
                    .map(|dir| shown(dir))
                    .collect();
                format!(
                    "alembic\0{}\0{}\0{}",
                    shown(&config.script_location),
                    config.section,
                    versions.join("\0")
                )
            }
            (None, Some(dir)) => format!("sql\0{}", shown(dir)),
            (None, None) => format!("{:?}", self.kind),
        }
    }

    /// The ini file and section to hand to Alembic.
    pub fn ini(&self) -> Option<(&Path, &str)> {
        let config = self.alembic.as_ref()?;
        match &config.source {
            alembic_config::ConfigSource::Ini(path) => Some((path, &config.section)),
            alembic_config::ConfigSource::Pyproject(_) => None,
        }
    }

    /// The longest a replay step may take.
    pub fn timeout(&self) -> Result<Duration, HistoryError> {
        match &self.settings.timeout {
            None => Ok(DEFAULT_TIMEOUT),
            Some(text) => crate::duration::parse(text)
                .map_err(|e| HistoryError::Setting(format!("timeout = \"{text}\": {e}"))),
        }
    }

    /// Reads every revision file and builds the graph.
    pub fn load_graph(&self) -> Result<Graph, HistoryError> {
        match self.kind {
            MigrationKind::Sql => {
                let dir = self
                    .sql_dir
                    .as_ref()
                    .expect("holds: a SQL project has a folder");
                let (revisions, findings) =
                    sql_folder::read(dir).map_err(|source| HistoryError::Directory {
                        path: dir.clone(),
                        source,
                    })?;
                Ok(Graph::build(revisions, findings))
            }
            MigrationKind::Alembic => {
                let config = self
                    .alembic
                    .as_ref()
                    .expect("holds: an Alembic project has a config");
                let mut files = Vec::new();
                for dir in &config.version_locations {
                    list_revision_files(dir, config.recursive_version_locations, &mut files)?;
                }
                files.sort();
                let mut revisions = Vec::new();
                let mut findings = Vec::new();
                for path in files {
                    if let Some(revision) = read_revision(&path, &mut findings) {
                        revisions.push(revision);
                    }
                }
                Ok(Graph::build(revisions, findings))
            }
        }
    }
}

/// Collects the `.py` files Alembic would load from `dir`: not
/// `__init__*`, not editor lock files (`.#*`).
fn list_revision_files(
    dir: &Path,
    recursive: bool,
    out: &mut Vec<PathBuf>,
) -> Result<(), HistoryError> {
    let entries = std::fs::read_dir(dir).map_err(|source| HistoryError::Directory {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| HistoryError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            if recursive && name != "__pycache__" {
                list_revision_files(&path, recursive, out)?;
            }
        } else if name.ends_with(".py") && !name.starts_with("__init__") && !name.starts_with(".#")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one revision file; a file that cannot be read or parsed becomes a
/// finding instead.
fn read_revision(path: &Path, findings: &mut Vec<Finding>) -> Option<Revision> {
    let unreadable = |message: String| {
        Finding::new(
            graph::codes::UNREADABLE,
            Severity::Error,
            path.display().to_string(),
            message,
        )
        .file(path)
        .hint(
            "Alembic cannot load this file either; fix it or move it out of the versions directory",
        )
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            findings.push(unreadable(e.to_string()));
            return None;
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let file = match revision_file::parse(&text) {
        Ok(file) => file,
        Err(e) => {
            findings.push(unreadable(e.to_string()));
            return None;
        }
    };
    let header_parents = file.header_revises.clone();
    let (id, parents) = match (file.revision.clone(), &file.down_revision) {
        (Some(id), down) if *down != DownRevision::Missing => (id, parents_of(down)),
        (id, _) => {
            // The variables are missing: the docstring header is all there is.
            let Some(id) = id.or_else(|| file.header_revision.clone()) else {
                findings.push(unreadable(
                    "no `revision = ...` and no `Revision ID:` header".to_owned(),
                ));
                return None;
            };
            let parents = header_parents.clone().unwrap_or_default();
            findings.push(
                Finding::new(
                    graph::codes::HEADER_FALLBACK,
                    Severity::Warning,
                    &id,
                    format!(
                        "{}: revision variables are missing; read the docstring header instead",
                        path.display()
                    ),
                )
                .revision(&id)
                .file(path)
                .hint(
                    "declare `revision` and `down_revision` in the file; Alembic reads only those",
                ),
            );
            (id, parents)
        }
    };
    if let Some(header) = &header_parents {
        let mut declared = parents.clone();
        let mut said = header.clone();
        declared.sort();
        said.sort();
        if declared != said {
            findings.push(
                Finding::new(
                    graph::codes::HEADER_MISMATCH,
                    // A comment that disagrees with the code is a note about
                    // the file, not a verdict on any database: Alembic reads
                    // only `down_revision`.
                    Severity::Info,
                    &id,
                    format!(
                        "{}: the header says `Revises: {}` but down_revision is {}",
                        path.display(),
                        header.join(", "),
                        if parents.is_empty() {
                            "None".to_owned()
                        } else {
                            parents.join(", ")
                        }
                    ),
                )
                .revision(&id)
                .file(path)
                .hint("Alembic follows down_revision and ignores the header; correct it only in files your project owns (an upstream file is best left as shipped)"),
            );
        }
    }
    Some(Revision {
        id: id.into(),
        parents: parents.into_iter().map(RevisionId::from).collect(),
        depends_on: file.depends_on.clone(),
        branch_labels: file.branch_labels.clone(),
        path: path.to_path_buf(),
        file_hash: graph::file_hash(&bytes),
        message: file.message.clone(),
        data_steps: file.data_steps.clone(),
    })
}

fn parents_of(down: &DownRevision) -> Vec<String> {
    match down {
        DownRevision::Missing | DownRevision::Base => Vec::new(),
        DownRevision::One(id) => vec![id.clone()],
        DownRevision::Many(ids) => ids.clone(),
    }
}
