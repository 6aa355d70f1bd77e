//! The models reference: the schema the application's SQLAlchemy models
//! describe, a third reference beside the chain of the migrations and the
//! live database.
//!
//! The project's own Python runs `metadata.create_all` on an empty scratch
//! database (see `models` in `alembic_driver.py`): the metadata `migsnap.toml`
//! names (`models = "package.module:attribute"`), else the `target_metadata`
//! env.py hands to `context.configure`, loaded as Alembic's autogenerate
//! loads it, with no migration run. The scratch database's schema is
//! recorded as a schema-only snapshot under `replay/<chain>/models`.
//!
//! Its key is the BLAKE3 of the replay's run identity (the runner settings
//! and env.py), the configured attribute, and every project Python file the
//! models were loaded from: each file the driver process imported that is
//! not part of Python or an installed package (env.py, the models' modules
//! and what they import). The files are recorded in the snapshot's headers,
//! so checking the cache reads them again with no Python; a reference whose
//! key still matches is reused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use migsnap_store::{ObjectId, RefName, Snapshot};
use serde::Serialize;

use super::runner::StepFailure;
use super::{Chain, H_KEY, ReplayError, Replayer, scratch_dir, sqlite_url};
use crate::migrations::history::project::{MigrationKind, Project};
use crate::repo::Repo;
use crate::schema::Schema;
use crate::snapshots::log::snapshot_schema;
use crate::snapshots::snapshot::{self, SnapshotOptions, Target};

/// Header naming one file the models were loaded from (relative to the
/// project root when under it).
const H_MODELS_FILE: &str = "models-file";
/// Bumped when the key's inputs or meaning change.
const MODELS_KEY_VERSION: &str = "migsnap-models-1";

/// Where a project's models come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelsSource {
    /// The `target_metadata` env.py configures.
    EnvPy,
    /// `models = "package.module:attribute"` in `migsnap.toml`.
    Attribute(String),
}

impl ModelsSource {
    /// The models of `project`, if it has any: the configured attribute,
    /// else env.py when it assigns `target_metadata` something other than
    /// `None` (read statically, so a project without models never starts
    /// Python for them). Alembic projects only: the driver that creates
    /// the tables is Alembic's.
    pub fn of(project: &Project) -> Option<ModelsSource> {
        if project.kind != MigrationKind::Alembic {
            return None;
        }
        if let Some(attribute) = &project.settings.models {
            return Some(ModelsSource::Attribute(attribute.clone()));
        }
        let env_py = project.alembic.as_ref()?.script_location.join("env.py");
        let text = std::fs::read_to_string(env_py).ok()?;
        assigns_metadata(&text).then_some(ModelsSource::EnvPy)
    }

    fn attribute(&self) -> Option<&str> {
        match self {
            ModelsSource::EnvPy => None,
            ModelsSource::Attribute(attribute) => Some(attribute),
        }
    }
}

/// Whether env.py's text gives `target_metadata` a value other than `None`,
/// as an assignment or a `context.configure` keyword; comments do not count,
/// nor does passing the name on (`target_metadata=target_metadata`, which
/// Alembic's template does with `target_metadata = None`).
fn assigns_metadata(text: &str) -> bool {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| line.split_once("target_metadata"))
        .filter_map(|(_, rest)| rest.trim_start().strip_prefix('='))
        .map(str::trim)
        .any(|value| {
            let word = value
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default();
            // `==` is a comparison, not an assignment.
            !value.is_empty()
                && !value.starts_with('=')
                && word != "None"
                && word != "target_metadata"
        })
}

/// The recorded models reference.
#[derive(Clone, Debug)]
pub struct ModelsReference {
    /// Its schema-only snapshot.
    pub id: ObjectId,
    /// The snapshot object.
    pub snapshot: Snapshot,
    /// The project files the models were loaded from.
    pub files: Vec<PathBuf>,
}

impl ModelsReference {
    /// The schema the models describe.
    pub fn schema(&self, repo: &Repo) -> Result<Schema, ReplayError> {
        Ok(snapshot_schema(repo.store.view(), self.id, &self.snapshot)?)
    }
}

/// What making sure of the models reference did.
#[derive(Clone, Debug, Serialize)]
pub struct ModelsOutcome {
    /// The reference, unless the models could not be loaded.
    pub reference: Option<ObjectId>,
    /// Whether it came from the cache.
    pub cached: bool,
    /// The project files the models were loaded from.
    pub files: Vec<PathBuf>,
    /// Why the models could not be loaded or created.
    pub failure: Option<StepFailure>,
}

impl Chain {
    /// The ref of the chain's models reference.
    pub fn models_ref(&self) -> RefName {
        RefName::new(format!("{}models", self.prefix()))
            .expect("holds: the chain name is a database name")
    }
}

impl Replayer<'_> {
    /// Where the project's models come from, if it has any.
    pub fn models_source(&self) -> Option<ModelsSource> {
        ModelsSource::of(self.project)
    }

    /// The key a models reference loaded from `files` must carry to be
    /// current: see the module documentation.
    fn models_key(&self, source: &ModelsSource, files: &[PathBuf]) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(MODELS_KEY_VERSION.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.run_identity.as_bytes());
        hasher.update(b"\0attribute\0");
        hasher.update(source.attribute().unwrap_or_default().as_bytes());
        let mut sorted = files.to_vec();
        sorted.sort();
        for file in &sorted {
            hasher.update(b"\0file\0");
            hasher.update(file.as_os_str().as_encoded_bytes());
            hasher.update(b"\0");
            match std::fs::read(self.project.root.join(file)) {
                Ok(bytes) => hasher.update(blake3::hash(&bytes).as_bytes()),
                // A file that is gone changes the key as an edit would.
                Err(_) => hasher.update(b"missing"),
            };
        }
        hasher.finalize().to_hex().to_string()
    }

    /// The current models reference, if one is recorded (and the project
    /// still has models).
    pub fn cached_models(&self, repo: &Repo) -> Result<Option<ModelsReference>, ReplayError> {
        let Some(source) = self.models_source() else {
            return Ok(None);
        };
        let view = repo.store.view();
        let Some(id) = view.find_ref(&self.chain.models_ref())? else {
            return Ok(None);
        };
        let snapshot = view.read_snapshot(&id)?;
        let files: Vec<PathBuf> = snapshot
            .header_values(H_MODELS_FILE)
            .map(PathBuf::from)
            .collect();
        let key = self.models_key(&source, &files);
        let current = snapshot.header_values(H_KEY).next() == Some(key.as_str());
        Ok(current.then_some(ModelsReference {
            id,
            snapshot,
            files,
        }))
    }

    /// Makes sure the models reference is current, loading the models with
    /// the project's Python when it is not. `None` when the project has no
    /// models (also when env.py turns out to configure no metadata).
    pub fn models(&self, repo: &mut Repo) -> Result<Option<ModelsOutcome>, ReplayError> {
        let Some(source) = self.models_source() else {
            return Ok(None);
        };
        if let Some(reference) = self.cached_models(repo)? {
            return Ok(Some(ModelsOutcome {
                reference: Some(reference.id),
                cached: true,
                files: reference.files,
                failure: None,
            }));
        }
        let failed = |failure| {
            Ok(Some(ModelsOutcome {
                reference: None,
                cached: false,
                files: Vec::new(),
                failure: Some(failure),
            }))
        };
        let dir = scratch_dir()?;
        // env.py connects to a database of its own even though no
        // migration runs; the models' tables go into another, empty one.
        let env_db = dir.path().join("env.db");
        let models_db = dir.path().join("models.db");
        for file in [&env_db, &models_db] {
            std::fs::write(file, b"").map_err(ReplayError::Scratch)?;
        }
        let mut driver = match self.alembic_driver(&sqlite_url(&env_db)) {
            Ok(driver) => driver,
            Err(ReplayError::Start { failure, .. }) => return failed(failure),
            Err(other) => return Err(other),
        };
        let files = match driver.models(&sqlite_url(&models_db), source.attribute()) {
            Ok(Some(files)) => files,
            Ok(None) => return Ok(None),
            Err(failure) => return failed(failure),
        };
        drop(driver);
        let files: Vec<PathBuf> = files
            .iter()
            .map(|f| relative_to(f, &self.project.root))
            .collect();
        let id = self.record_models(repo, &models_db, &source, &files)?;
        Ok(Some(ModelsOutcome {
            reference: Some(id),
            cached: false,
            files,
            failure: None,
        }))
    }

    /// Records the models' scratch database as the models reference.
    fn record_models(
        &self,
        repo: &mut Repo,
        scratch: &Path,
        source: &ModelsSource,
        files: &[PathBuf],
    ) -> Result<ObjectId, ReplayError> {
        let mut headers = vec![(H_KEY.to_owned(), self.models_key(source, files))];
        headers.extend(
            files
                .iter()
                .map(|f| (H_MODELS_FILE.to_owned(), f.display().to_string())),
        );
        let target = Target {
            database: self.chain.database(),
            reference: self.chain.models_ref(),
            parents: Some(Vec::new()),
            headers,
        };
        let options = SnapshotOptions {
            message: match source {
                ModelsSource::EnvPy => "the models (env.py's target_metadata)".to_owned(),
                ModelsSource::Attribute(attribute) => format!("the models ({attribute})"),
            },
            schema_only: true,
            allow_empty: true,
            busy_timeout: Duration::from_secs(5),
            ..SnapshotOptions::default()
        };
        Ok(snapshot::take_into(
            repo,
            scratch,
            &target,
            &options,
            &mut migsnap_store::progress::Silent,
        )?
        .id())
    }
}

/// `path` relative to `root` when it is under it, else as it is.
fn relative_to(path: &Path, root: &Path) -> PathBuf {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    path.strip_prefix(&root).unwrap_or(path).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::assigns_metadata;

    #[test]
    fn env_py_sets_target_metadata_unless_it_is_none_or_a_comment() {
        assert!(assigns_metadata("target_metadata = Base.metadata\n"));
        assert!(assigns_metadata(
            "    context.configure(connection=c, target_metadata=migration_metadata)\n"
        ));
        assert!(!assigns_metadata("target_metadata = None\n"));
        assert!(!assigns_metadata(
            "# target_metadata = mymodel.Base.metadata\n"
        ));
        assert!(!assigns_metadata(
            "target_metadata = None\ncontext.configure(target_metadata=target_metadata)\n"
        ));
        assert!(!assigns_metadata("if target_metadata == None: pass\n"));
    }
}
