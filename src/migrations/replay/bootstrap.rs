//! The bootstrap: what runs on each scratch database before a project's
//! base revision, for projects whose first tables are made outside Alembic
//! (`metadata.create_all`, an older migration tool) and whose base revision
//! alters them.
//!
//! It is configured (`[replay] bootstrap`: a SQL file, a Python callable,
//! or the tables of a snapshot or a database file) or recorded for a chain
//! (`migsnap replay --bootstrap-from DB --tables T1,T2`, a schema-only
//! snapshot at `replay/<chain>/bootstrap`); the configuration wins. Its
//! digest is part of every reference's key, so changing it replays the
//! chain.

use std::path::{Path, PathBuf};
use std::time::Duration;

use migsnap_store::{ObjectId, RefName};
use serde::Serialize;

use crate::config::replay::{BootstrapConfig, BootstrapSource};
use crate::migrations::history::project::Project;
use crate::repo::Repo;
use crate::schema::Schema;
use crate::schema::model::fold;
use crate::snapshots::log::snapshot_schema;
use crate::snapshots::revspec;
use crate::snapshots::snapshot::{self, Recorded, SnapshotOptions, Target};
use crate::snapshots::sqlite::{DEFAULT_BUSY_TIMEOUT, Database, DbMeta};

use super::runner::{Runner, StepFailure};
use super::{Chain, ReplayError, scratch_dir};

/// Header of a recorded bootstrap: where its tables were taken from.
const H_SOURCE: &str = "bootstrap-source";

/// A bootstrap, ready to run.
#[derive(Clone, Debug)]
pub enum Bootstrap {
    /// SQL migsnap runs on the scratch database: a SQL file's text, or the
    /// `CREATE` statements of a schema's tables.
    Sql {
        /// How it is shown: `SQL file boot.sql`, `tables user, config of
        /// data/app.db`.
        source: String,
        /// The SQL file, when it is one.
        file: Option<PathBuf>,
        /// The statements.
        sql: String,
    },
    /// A Python callable (`module:function`) the Alembic driver calls with
    /// the scratch database's URL.
    Python {
        /// `module:function`.
        callable: String,
        /// The module's file, when it is found under the project's root.
        module_file: Option<PathBuf>,
        /// That file's content when resolved: part of the digest.
        module_content: Vec<u8>,
    },
}

/// A bootstrap as reports show it.
#[derive(Clone, Debug, Serialize)]
pub struct BootstrapSummary {
    /// Where its tables come from.
    pub source: String,
    /// Whether it was recorded for the chain (`--bootstrap-from`) rather
    /// than configured.
    pub recorded: bool,
    /// The BLAKE3 of what it runs, as part of the references' key.
    pub digest: String,
}

impl Bootstrap {
    /// The bootstrap of `project`, whose references live in `chain`: the
    /// configured one (`[replay] bootstrap`), else the one recorded for the
    /// chain, else none. Files are read and schemas taken now, once.
    pub fn resolve(
        repo: &Repo,
        project: &Project,
        chain: &Chain,
    ) -> Result<Option<Bootstrap>, ReplayError> {
        match &project.settings.bootstrap {
            Some(config) => configured(repo, project, config).map(Some),
            None => recorded(repo, chain),
        }
    }

    /// How it is shown.
    pub fn describe(&self) -> String {
        match self {
            Bootstrap::Sql { source, .. } => source.clone(),
            Bootstrap::Python { callable, .. } => format!("Python callable {callable}"),
        }
    }

    /// The BLAKE3 (hex) of what it runs: the SQL text, or the callable and
    /// its module file's content as resolved. (Modules that one imports
    /// are not followed: name the module that holds the tables.)
    pub fn digest(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        match self {
            Bootstrap::Sql { sql, .. } => {
                hasher.update(b"sql\0");
                hasher.update(sql.as_bytes());
            }
            Bootstrap::Python {
                callable,
                module_content,
                ..
            } => {
                hasher.update(b"python\0");
                hasher.update(callable.as_bytes());
                hasher.update(b"\0");
                hasher.update(module_content);
            }
        }
        hasher.finalize().to_hex().to_string()
    }

    /// The report's view of it.
    pub fn summary(&self, project: &Project) -> BootstrapSummary {
        BootstrapSummary {
            source: self.describe(),
            recorded: project.settings.bootstrap.is_none(),
            digest: self.digest(),
        }
    }

    /// Runs it on the scratch database `scratch` (URL `url`); a callable
    /// through `runner`, the replay's own driver.
    pub(crate) fn run(
        &self,
        scratch: &Path,
        url: &str,
        runner: &mut dyn Runner,
    ) -> Result<(), StepFailure> {
        match self {
            Bootstrap::Sql { sql, .. } => rusqlite::Connection::open(scratch)
                .and_then(|conn| conn.execute_batch(sql))
                .map_err(|e| StepFailure {
                    error: e.to_string(),
                    file: None,
                    detail: String::new(),
                }),
            Bootstrap::Python { callable, .. } => runner.bootstrap(callable, url),
        }
    }

    /// The file to name when it fails, if it is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Bootstrap::Sql { file, .. } => file.as_deref(),
            Bootstrap::Python { module_file, .. } => module_file.as_deref(),
        }
    }
}

/// The ref of the bootstrap recorded for `chain`.
fn bootstrap_ref(chain: &Chain) -> RefName {
    RefName::new(format!("{}bootstrap", chain.prefix()))
        .expect("holds: the chain's prefix is a ref name")
}

/// The configured bootstrap, read.
fn configured(
    repo: &Repo,
    project: &Project,
    config: &BootstrapConfig,
) -> Result<Bootstrap, ReplayError> {
    let setting = |message: String| ReplayError::Setting(format!("[replay] {message}"));
    let source = config.source().map_err(setting)?;
    let tables = config.tables.as_deref();
    Ok(match source {
        BootstrapSource::Sql(file) => {
            let file = repo.root().join(file);
            let sql = std::fs::read_to_string(&file).map_err(|e| {
                setting(format!(
                    "bootstrap sql = \"{}\": cannot read it: {e}",
                    file.display()
                ))
            })?;
            Bootstrap::Sql {
                source: format!("SQL file {}", shown(repo, &file)),
                file: Some(file),
                sql,
            }
        }
        BootstrapSource::Python(callable) => {
            let module_file = module_file(project, &callable);
            let module_content = module_file
                .as_deref()
                .and_then(|file| std::fs::read(file).ok())
                .unwrap_or_default();
            Bootstrap::Python {
                callable,
                module_file,
                module_content,
            }
        }
        BootstrapSource::Snapshot(spec) => {
            let found = snapshot_source(repo, &spec)?;
            found.before_alembic()?;
            schema_bootstrap(&found.schema, tables, &found.shown)?
        }
        BootstrapSource::Database(path) => {
            let found = file_source(repo, &repo.root().join(path))?;
            found.before_alembic()?;
            schema_bootstrap(&found.schema, tables, &found.shown)?
        }
    })
}

/// The bootstrap recorded for `chain`, if there is one: every table of its
/// schema.
fn recorded(repo: &Repo, chain: &Chain) -> Result<Option<Bootstrap>, ReplayError> {
    let view = repo.store.view();
    let Some(id) = view.find_ref(&bootstrap_ref(chain))? else {
        return Ok(None);
    };
    let snapshot = view.read_snapshot(&id)?;
    let schema = snapshot_schema(view, id, &snapshot)?;
    let source = snapshot
        .header_values(H_SOURCE)
        .next()
        .map_or_else(|| format!("{id:.12}"), str::to_owned);
    schema_bootstrap(&schema, None, &source).map(Some)
}

/// What `--bootstrap-from` recorded.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedBootstrap {
    /// The schema-only snapshot holding the tables.
    pub snapshot: ObjectId,
    /// Its ref.
    pub reference: String,
    /// The tables, as named in the source.
    pub tables: Vec<String>,
    /// Where they were taken from.
    pub source: String,
    /// The revisions the source recorded, undone to take the tables as
    /// they were before the base revision; empty when it recorded none.
    pub undone: Vec<String>,
}

/// Records the schema of `tables` (all when `None`) of `source` (a SQLite
/// file, else a snapshot REV) as the bootstrap of `replayer`'s chain: a
/// schema-only snapshot at `replay/<chain>/bootstrap`, which every later
/// replay of the chain runs unless `[replay] bootstrap` configures one.
///
/// A source that records revisions (the application's own database) has
/// its tables as the revisions left them, not as the base revision found
/// them. So its schema, with its version rows and no data, is first
/// downgraded to `base` by the project's own migrations, as the round trip
/// of `migsnap test` downgrades, and the tables are taken from what
/// remains.
pub fn record_bootstrap(
    repo: &mut Repo,
    replayer: &super::Replayer<'_>,
    source: &str,
    tables: Option<&[String]>,
) -> Result<RecordedBootstrap, ReplayError> {
    let path = Path::new(source);
    let found = if path.is_file() {
        file_source(repo, &crate::repo::absolute(path))?
    } else {
        snapshot_source(repo, source)?
    };
    let dir = scratch_dir()?;
    let (schema, undone) = unwound(replayer, &found, &dir.path().join("unwound.db"))?;
    let names = selected(&schema, tables, &found.shown)?;
    let scratch = dir.path().join("bootstrap.db");
    rusqlite::Connection::open(&scratch)
        .and_then(|conn| conn.execute_batch(&only_tables(&schema, &names).to_sql()))
        .map_err(|e| {
            ReplayError::Setting(format!("the tables of {} do not create: {e}", found.shown))
        })?;
    let source_text = format!("tables {} of {}", names.join(", "), found.shown);
    let chain = replayer.chain();
    let reference = bootstrap_ref(chain);
    let target = Target {
        database: chain.prefix().trim_end_matches('/').to_owned(),
        reference: reference.clone(),
        parents: Some(Vec::new()),
        headers: vec![(H_SOURCE.to_owned(), source_text.clone())],
    };
    let options = SnapshotOptions {
        message: format!("bootstrap: {source_text}"),
        schema_only: true,
        allow_empty: true,
        busy_timeout: Duration::from_secs(5),
        ..SnapshotOptions::default()
    };
    let outcome = snapshot::take_into(
        repo,
        &scratch,
        &target,
        &options,
        &mut migsnap_store::progress::Silent,
    )?;
    Ok(RecordedBootstrap {
        snapshot: outcome.id(),
        reference: reference.as_str().to_owned(),
        tables: names,
        source: found.shown,
        undone,
    })
}

/// The schema of `found` before the base revision: as it is when it
/// records no revision, else its schema and version rows written into
/// `scratch` and downgraded to `base` by `replayer`'s runner. With the
/// revisions it undid.
fn unwound(
    replayer: &super::Replayer<'_>,
    found: &Source,
    scratch: &Path,
) -> Result<(Schema, Vec<String>), ReplayError> {
    let rows = found.recorded();
    if rows.is_empty() {
        return Ok((found.schema.clone(), rows));
    }
    let undo = |error: String| {
        ReplayError::Setting(format!(
            "bootstrap: {} records {}, and undoing it to take its tables as they were before the base revision failed: {error}; record them from a database or snapshot from before the first upgrade",
            found.shown,
            rows.join(", ")
        ))
    };
    if let Some(unknown) = rows.iter().find(|row| replayer.graph().get(row).is_none()) {
        return Err(undo(format!("no migration script declares {unknown}")));
    }
    let mut sql = found.schema.to_sql();
    match &found.meta.alembic_versions {
        Some(versions) => {
            sql.push_str(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, \
                 CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));\n",
            );
            for version in versions {
                sql.push_str(&format!(
                    "INSERT INTO alembic_version VALUES ('{}');\n",
                    version.replace('\'', "''")
                ));
            }
        }
        None => sql.push_str(&format!(
            "PRAGMA user_version = {};\n",
            found.meta.user_version
        )),
    }
    rusqlite::Connection::open(scratch)
        .and_then(|conn| conn.execute_batch(&sql))
        .map_err(|e| undo(e.to_string()))?;
    let mut runner = replayer.runner(scratch)?;
    runner
        .downgrade("base")
        .map_err(|failure| undo(failure.error))?;
    drop(runner);
    Ok((capture_file(scratch)?.0, rows))
}

/// A database file or snapshot a bootstrap's tables are taken from.
struct Source {
    schema: Schema,
    meta: DbMeta,
    /// How it is shown: a path relative to the repository root, or
    /// `snapshot REV (id)`.
    shown: String,
}

impl Source {
    /// The revisions it records: its `alembic_version` rows, or a SQL
    /// folder's `user_version` when it has no such table.
    fn recorded(&self) -> Vec<String> {
        match &self.meta.alembic_versions {
            Some(rows) => rows.clone(),
            None if self.meta.user_version != 0 => vec![self.meta.user_version.to_string()],
            None => Vec::new(),
        }
    }

    /// Refuses a source that records revisions, for a configured
    /// bootstrap: its tables are what the revisions made of them, and
    /// undoing them on every use would run Python for every key check.
    fn before_alembic(&self) -> Result<(), ReplayError> {
        let rows = self.recorded();
        if rows.is_empty() {
            return Ok(());
        }
        Err(ReplayError::Setting(format!(
            "[replay] bootstrap: {} records {}, so its tables are what the revisions made of them; name a database or snapshot from before the first upgrade, or record its tables with `migsnap replay --bootstrap-from`, which undoes the revisions first",
            self.shown,
            rows.join(", ")
        )))
    }
}

/// The schema a snapshot REV recorded, and how it is shown.
fn snapshot_source(repo: &Repo, spec: &str) -> Result<Source, ReplayError> {
    let id = revspec::resolve(repo, spec, None).map_err(|e| {
        ReplayError::Setting(format!(
            "bootstrap: {spec} is no database file or snapshot: {e}"
        ))
    })?;
    let view = repo.store.view();
    let snapshot = view.read_snapshot(&id)?;
    let schema = snapshot_schema(view, id, &snapshot)?;
    Ok(Source {
        schema,
        meta: Recorded::from_snapshot(&snapshot).meta,
        shown: format!("snapshot {spec} ({id:.12})"),
    })
}

/// The schema and metadata of the SQLite file at `path`.
fn file_source(repo: &Repo, path: &Path) -> Result<Source, ReplayError> {
    let (schema, meta) = capture_file(path)?;
    Ok(Source {
        schema,
        meta,
        shown: shown(repo, path),
    })
}

/// Reads the schema and metadata of the SQLite file at `path`.
fn capture_file(path: &Path) -> Result<(Schema, DbMeta), ReplayError> {
    let mut db = Database::open(path, DEFAULT_BUSY_TIMEOUT)?;
    let capture = db.capture(None, None)?;
    let schema = capture
        .schema
        .expect("holds: no stamp was given, so the schema is read");
    Ok((schema, capture.meta))
}

/// The names of `tables` in `schema` as it spells them (all its tables
/// when `None`), or which one it lacks.
fn selected(
    schema: &Schema,
    tables: Option<&[String]>,
    source: &str,
) -> Result<Vec<String>, ReplayError> {
    match tables {
        None => Ok(schema.tables.values().map(|t| t.name.clone()).collect()),
        Some(names) => names
            .iter()
            .map(|name| {
                schema
                    .tables
                    .get(&fold(name))
                    .map(|t| t.name.clone())
                    .ok_or_else(|| {
                        ReplayError::Setting(format!("bootstrap: {source} has no table {name}"))
                    })
            })
            .collect(),
    }
}

/// The bootstrap that creates `tables` of `schema` (all when `None`) with
/// their indexes and triggers, as [`only_tables`] has them.
fn schema_bootstrap(
    schema: &Schema,
    tables: Option<&[String]>,
    source: &str,
) -> Result<Bootstrap, ReplayError> {
    let names = selected(schema, tables, source)?;
    let source = match tables {
        Some(_) => format!("tables {} of {source}", names.join(", ")),
        None => source.to_owned(),
    };
    Ok(Bootstrap::Sql {
        source,
        file: None,
        sql: only_tables(schema, &names).to_sql(),
    })
}

/// `schema` with only the tables `names` and their indexes and triggers.
/// Views are left out: they may read tables the revisions create.
fn only_tables(schema: &Schema, names: &[String]) -> Schema {
    let keys: Vec<String> = names.iter().map(|n| fold(n)).collect();
    let kept = |table: &str| keys.contains(&fold(table));
    Schema {
        tables: schema
            .tables
            .iter()
            .filter(|(key, _)| keys.contains(key))
            .map(|(key, table)| (key.clone(), table.clone()))
            .collect(),
        indexes: schema
            .indexes
            .iter()
            .filter(|(_, index)| kept(&index.table))
            .map(|(key, index)| (key.clone(), index.clone()))
            .collect(),
        triggers: schema
            .triggers
            .iter()
            .filter(|(_, trigger)| kept(&trigger.table))
            .map(|(key, trigger)| (key.clone(), trigger.clone()))
            .collect(),
        ..Schema::default()
    }
}

/// The file of `module:function`'s module under the project's root
/// (Alembic's `prepend_sys_path = .` puts it on `sys.path`), if it is there.
fn module_file(project: &Project, callable: &str) -> Option<PathBuf> {
    let module = callable.split_once(':')?.0.replace('.', "/");
    let base = project.root.join(module);
    [base.with_extension("py"), base.join("__init__.py")]
        .into_iter()
        .find(|candidate| candidate.is_file())
}

/// `path` relative to the repository root, for messages.
fn shown(repo: &Repo, path: &Path) -> String {
    path.strip_prefix(repo.root())
        .unwrap_or(path)
        .display()
        .to_string()
}
