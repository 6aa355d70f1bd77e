//! Adopt: turn the objects a database has beyond the reference of its
//! project's head into a new Alembic revision, then stamp the database at
//! it, verified.
//!
//! Invariants:
//! - Only extra objects are adopted. Anything the database lacks or defines
//!   otherwise than the head's reference is refused ([`AdoptError::NotOnlyExtra`]):
//!   bringing a database to its reference is `repair`'s work.
//! - The revision's `upgrade()` is [`alembic::operations`] from the head's
//!   reference to the database's schema, so replaying it makes the
//!   database's schema; its `downgrade()` takes exactly those objects away.
//! - The file is kept only when the verified stamp succeeds, which replays
//!   the new revision (so the file is checked by real Alembic) and compares
//!   the database with its reference. Otherwise the file is removed again
//!   and nothing else was changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use migsnap_store::progress::Progress;

mod models;
mod revision;

pub use models::{ModelsAdoptReport, ModelsAdoptRequest, adopt_models};

use revision::Draft;
use serde::Serialize;

use crate::migrations::drift::{self, LiveDatabase};
use crate::migrations::history::file_name::FileNameError;
use crate::migrations::history::graph::Graph;
use crate::migrations::history::project::{HistoryError, MigrationKind, Project};
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::history::targets::Targets;
use crate::migrations::replay::{Chain, ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::migrations::stamp::{self, StampError, StampOutcome, StampReport, StampRequest};
use crate::repo::Repo;
use crate::schema::alembic;
use crate::schema::diff::{Change, ChangeKind, Op, SchemaDiff};
use crate::schema::field::Field;
use crate::snapshots::sqlite::SqliteError;

/// What to adopt, and how.
#[derive(Clone, Debug)]
pub struct AdoptRequest<'a> {
    /// The database file.
    pub database: &'a Path,
    /// The revision's message (its docstring and file name).
    pub message: &'a str,
    /// Render the revision without writing or stamping anything.
    pub dry_run: bool,
    /// Stamp even though other processes have the database open.
    pub force: bool,
    /// How long to wait for a database locked by a writer.
    pub busy_timeout: Duration,
}

/// What `adopt` did. Serialized, it is the JSON of `migsnap adopt`.
#[derive(Clone, Debug, Serialize)]
pub struct AdoptReport {
    /// The database file.
    pub database: PathBuf,
    /// The new revision's id.
    pub revision: RevisionId,
    /// Its parent: the head it was adopted onto.
    pub down_revision: RevisionId,
    /// The revision file (written unless a dry run or a refused stamp).
    pub path: PathBuf,
    /// Whether the file was made from the project's `script.py.mako`
    /// (`false`: migsnap's copy of Alembic's generic template).
    pub project_template: bool,
    /// The extra objects the revision creates.
    pub adopted: SchemaDiff,
    /// The file's text.
    pub source: String,
    /// Whether the file is on disk now.
    pub written: bool,
    /// The verified stamp at the new revision; `None` for a dry run.
    pub stamp: Option<StampReport>,
}

impl AdoptReport {
    /// Whether the revision was written and the database stamped at it (or
    /// a dry run rendered it).
    pub fn settled(&self) -> bool {
        match &self.stamp {
            None => true,
            Some(stamp) => self.written && stamp.stamped,
        }
    }
}

/// Why nothing was adopted.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// A SQL-folder project has no Alembic revisions to write.
    #[error("adopt writes Alembic revisions; this project is a SQL folder")]
    NotAlembic,
    /// The history has no head, or several.
    #[error("adopt needs exactly one head to build on; the history has {}", describe_heads(.heads))]
    Heads {
        /// The heads.
        heads: Vec<RevisionId>,
    },
    /// The project has no versions folder to write into.
    #[error("the project names no versions folder to write the revision into")]
    NoVersions,
    /// The project has no models (`target_metadata` in env.py, or
    /// `[migrations] models` in migsnap.toml).
    #[error(
        "the project has no models: set target_metadata in env.py, or models = \"module:attribute\" under [migrations] in migsnap.toml"
    )]
    NoModels,
    /// The models could not be loaded.
    #[error("the models ({source_name}) could not be loaded: {error}")]
    ModelsNotLoaded {
        /// Where they come from: env.py's `target_metadata`, or the
        /// configured `module:attribute`.
        source_name: String,
        /// Python's error.
        error: String,
    },
    /// A named table is not in the models.
    #[error("the models declare no table {table}")]
    NotInModels {
        /// The table.
        table: String,
    },
    /// The named tables have nothing the migrations lack.
    #[error("the migrations up to {head} already create everything the models declare for {}: nothing to adopt", tables.join(", "))]
    NothingFromModels {
        /// The tables.
        tables: Vec<String>,
        /// The head.
        head: RevisionId,
    },
    /// A column the models add to an existing table is NOT NULL without a
    /// default: the rows there would have no value.
    #[error(
        "{table}.{column} is NOT NULL without a default, and {table} exists: its rows need a value; give the model a server_default, or write the revision by hand with a backfill"
    )]
    NotNullWithoutDefault {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// Replaying the new revision does not make the planned schema; the
    /// file was removed.
    #[error("replaying the new revision {revision} does not make the models' schema ({} difference(s)); {path} was removed again", drift.changes.len())]
    ModelsNotReached {
        /// The new revision.
        revision: RevisionId,
        /// The removed file.
        path: PathBuf,
        /// How its reference differs from the plan.
        drift: SchemaDiff,
    },
    /// The project's `file_template` or `truncate_slug_length` cannot be
    /// followed.
    #[error("cannot name the revision file as the project's Alembic configuration asks: {0}")]
    Naming(#[from] FileNameError),
    /// The database could not be read.
    #[error(transparent)]
    Database(#[from] SqliteError),
    /// The reference could not be built or read.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The history could not be read again after writing the file.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// A migration failed while the head's reference was built.
    #[error("the reference for {head} could not be built: migration {} failed", failure.revision)]
    Reference {
        /// The head.
        head: RevisionId,
        /// The step that failed.
        failure: Box<ReplayFailure>,
    },
    /// The database matches the head's reference: nothing to adopt.
    #[error("{database} has nothing beyond the schema of {head}: nothing to adopt")]
    NothingExtra {
        /// The database.
        database: PathBuf,
        /// The head.
        head: RevisionId,
    },
    /// The database lacks objects of the reference, or defines some
    /// otherwise.
    #[error("{database} lacks or changes {} object(s) of {head}'s schema; adopt takes only extra objects", .drift.changes.len())]
    NotOnlyExtra {
        /// The database.
        database: PathBuf,
        /// The head.
        head: RevisionId,
        /// The changes that are not extra objects.
        drift: SchemaDiff,
    },
    /// The revision file could not be written.
    #[error("cannot write revision file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The stamp at the new revision failed; the file was removed.
    #[error("cannot stamp at the new revision {revision}; {path} was removed again")]
    Stamp {
        /// The new revision.
        revision: RevisionId,
        /// The removed file.
        path: PathBuf,
        /// Why (boxed: it is rare, and large beside the others).
        #[source]
        source: Box<StampError>,
    },
}

fn describe_heads(heads: &[RevisionId]) -> String {
    if heads.is_empty() {
        "none".to_owned()
    } else {
        format!("{} ({})", heads.len(), heads.join(", "))
    }
}

/// Where an adopted revision goes: the single head of `graph` it builds
/// on, and the versions folder it is written into. Refused for a SQL
/// folder, a history without exactly one head, or no versions folder.
pub fn destination(project: &Project, graph: &Graph) -> Result<(RevisionId, PathBuf), AdoptError> {
    if project.kind != MigrationKind::Alembic {
        return Err(AdoptError::NotAlembic);
    }
    let mut heads = graph.heads();
    if heads.len() != 1 {
        return Err(AdoptError::Heads { heads });
    }
    let versions = project
        .version_dirs()
        .into_iter()
        .next()
        .ok_or(AdoptError::NoVersions)?;
    Ok((heads.remove(0), versions))
}

/// Adopts the extra objects of `request.database` into a new revision on
/// the single head of `graph`, and stamps the database at it (verified).
/// `on_event` hears of each replay step.
pub fn adopt(
    repo: &mut Repo,
    project: &Project,
    graph: &Graph,
    chain: &Chain,
    request: &AdoptRequest<'_>,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
    progress: &mut dyn Progress,
) -> Result<AdoptReport, AdoptError> {
    let (head, versions) = destination(project, graph)?;
    let head = &head;
    let live = LiveDatabase::capture(request.database, request.busy_timeout)?;
    let replayer = Replayer::new(project, graph, chain.clone());
    let targets = [head.clone()];
    let adopted = extra_objects(repo, &replayer, head, &live, on_event)?;
    let reference = replayer
        .cached(repo, &targets)?
        .expect("holds: compare just built it")
        .schema(repo)?;
    let operations = alembic::operations(&reference, &live.schema);
    let draft = Draft::render(
        project,
        graph,
        head,
        &versions,
        request.message,
        &operations,
        request.database.as_os_str().as_encoded_bytes(),
    )?;
    let mut report = AdoptReport {
        database: request.database.to_path_buf(),
        revision: draft.revision.clone(),
        down_revision: head.clone(),
        path: draft.path.clone(),
        project_template: draft.project_template,
        adopted: SchemaDiff { changes: adopted },
        source: draft.source.clone(),
        written: false,
        stamp: None,
    };
    if request.dry_run {
        return Ok(report);
    }
    draft.write()?;
    report.written = true;
    let graph = project.load_graph().inspect_err(|_| draft.remove())?;
    let revision = draft.revision.clone();
    let stamped = stamp_new(
        repo, project, &graph, chain, request, &revision, on_event, progress,
    );
    match stamped {
        Ok(stamp) if stamp.stamped => {
            report.stamp = Some(stamp);
            Ok(report)
        }
        Ok(stamp) => {
            draft.remove();
            report.written = false;
            report.stamp = Some(stamp);
            Ok(report)
        }
        Err(source) => {
            draft.remove();
            Err(AdoptError::Stamp {
                revision,
                path: draft.path,
                source: Box::new(source),
            })
        }
    }
}

/// The changes that make the database's extra objects, beside the
/// reference of `head`: refused when anything else differs, or when
/// nothing is extra.
fn extra_objects(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    head: &RevisionId,
    live: &LiveDatabase,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<Vec<Change>, AdoptError> {
    let targets = [head.clone()];
    let (comparison, failure) = drift::compare(
        repo,
        replayer,
        &targets,
        &live.schema,
        live.semantic,
        on_event,
    )?;
    let Some(comparison) = comparison else {
        return Err(AdoptError::Reference {
            head: head.clone(),
            failure: Box::new(failure.expect("holds: no comparison means a failed step")),
        });
    };
    let (adopted, other): (Vec<Change>, Vec<Change>) = comparison
        .drift
        .changes
        .into_iter()
        .filter(|c| !c.meaning.is_form())
        .partition(is_extra);
    if !other.is_empty() {
        return Err(AdoptError::NotOnlyExtra {
            database: live.path.clone(),
            head: head.clone(),
            drift: SchemaDiff { changes: other },
        });
    }
    if !adopted.iter().any(|c| c.op == Op::Added) {
        return Err(AdoptError::NothingExtra {
            database: live.path.clone(),
            head: head.clone(),
        });
    }
    Ok(adopted)
}

/// Whether a change is part of an extra object: an added one, or the
/// constraint indexes an added UNIQUE or PRIMARY KEY brings to its table.
fn is_extra(change: &Change) -> bool {
    change.op == Op::Added
        || (change.kind == ChangeKind::Table
            && change.op == Op::Changed
            && change
                .fields
                .iter()
                .all(|f| f.field == Field::ConstraintIndexes))
}

/// Stamps the database at the new revision, in `graph`, the history read
/// again with the new file.
#[allow(clippy::too_many_arguments)] // the stamp's inputs, passed through
fn stamp_new(
    repo: &mut Repo,
    project: &Project,
    graph: &Graph,
    chain: &Chain,
    request: &AdoptRequest<'_>,
    revision: &RevisionId,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
    progress: &mut dyn Progress,
) -> Result<StampReport, StampError> {
    let replayer = Replayer::new(project, graph, chain.clone());
    let targets = Targets::one(revision.as_str());
    let stamp_request = StampRequest {
        database: request.database,
        targets: &targets,
        force: request.force,
        busy_timeout: request.busy_timeout,
    };
    let report = stamp::stamp_verified(repo, &replayer, graph, &stamp_request, on_event, progress)?;
    debug_assert!(!matches!(report.outcome, StampOutcome::Unchanged { .. }));
    Ok(report)
}
