//! The reference chain: the schema each revision produces on an empty
//! database, built by running the project's real migrations and recorded as
//! snapshots in the store.
//!
//! Each revision's reference is a snapshot under
//! `replay/<chain>/revs/<revision>` whose parents are the references of the
//! revision's parents, so the chain mirrors the revision graph and `log`,
//! `show` and `diff` work on it. A reference records a *key*: the BLAKE3 of
//! the files of every revision it contains (the revision and all it needs),
//! `env.py` and the way it was run. A reference whose key still matches is
//! reused without running anything, so an unchanged project replays with no
//! Python at all, and an edited revision file replays only the revisions
//! that contain it.
//!
//! References are full snapshots, not schema-only ones: the scratch
//! databases are tiny, and keeping their pages lets a later replay resume
//! from any cached revision (migrations may insert rows that later ones
//! rely on, which a schema alone would lose).

pub mod bootstrap;
mod models;
mod recorder;
pub mod runner;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use migsnap_store::{ObjectId, RefName, Snapshot};

use crate::migrations::history::graph::Graph;
use crate::migrations::history::project::{MigrationKind, Project};
use crate::migrations::history::revision_id::RevisionId;
use crate::repo::Repo;
use crate::schema::{Schema, SchemaError};
use crate::snapshots::log::{LogError, snapshot_schema};
use crate::snapshots::restore::RestoreError;
use crate::snapshots::snapshot::{self, SnapshotError, SnapshotOptions, Target};
use bootstrap::Bootstrap;
pub use models::{ModelsOutcome, ModelsReference, ModelsSource};
use recorder::{Job, Recorder};
use runner::{AlembicDriver, AlembicLaunch, Runner, SqlRunner, StepFailure, TemplateRunner};

/// Header holding a reference's key.
const H_KEY: &str = "replay-key";
/// Header naming the revision(s) a reference is for.
const H_TARGET: &str = "replay-target";
/// Bumped when the key's inputs or meaning change, so old references are
/// replayed again rather than trusted.
const KEY_VERSION: &str = "migsnap-replay-1";

/// What can stop a replay before or between steps (a failing migration is
/// not one of these: it is reported in [`ReplayReport::failure`]).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No Python to run Alembic with.
    #[error("no Python found to run Alembic: tried {}; set python = \"…\" under [databases.NAME.migrations] in migsnap.toml", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NoPython {
        /// The interpreters looked for.
        tried: Vec<PathBuf>,
    },
    /// The project's Alembic could not be started.
    #[error("cannot start Alembic with {python}: {}", failure.error)]
    Start {
        /// The interpreter.
        python: PathBuf,
        /// What went wrong.
        failure: StepFailure,
    },
    /// A setting is unusable.
    #[error("migsnap.toml: {0}")]
    Setting(String),
    /// Something the replay would run belongs to another user.
    #[error(transparent)]
    Untrusted(#[from] crate::trust::Untrusted),
    /// Recording a reference failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Putting a cached reference back into the scratch database failed.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
    /// A reference's schema could not be decoded.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The database to compare could not be read.
    #[error(transparent)]
    Database(#[from] crate::snapshots::sqlite::SqliteError),
    /// The scratch directory failed.
    #[error("cannot use the replay scratch space")]
    Scratch(#[source] std::io::Error),
    /// The bootstrap failed on a scratch database.
    #[error("the bootstrap ({what}) failed: {}", failure.error)]
    Bootstrap {
        /// The bootstrap, as shown.
        what: String,
        /// Its file, if it is one.
        file: Option<PathBuf>,
        /// What failed (boxed: every replay result carries this enum).
        failure: Box<StepFailure>,
    },
}

impl From<LogError> for ReplayError {
    /// A snapshot's schema that does not decode is a schema error here, as
    /// the references' messages have always said.
    fn from(error: LogError) -> ReplayError {
        match error {
            LogError::Store(e) => ReplayError::Store(e),
            LogError::Schema { source, .. } => ReplayError::Schema(source),
        }
    }
}

/// A recorded reference.
#[derive(Clone, Debug)]
pub struct Reference {
    /// The revisions it is the reference for.
    pub targets: Vec<RevisionId>,
    /// Its snapshot.
    pub id: ObjectId,
    /// The snapshot object.
    pub snapshot: Snapshot,
}

impl Reference {
    /// Its schema.
    pub fn schema(&self, repo: &Repo) -> Result<Schema, ReplayError> {
        Ok(snapshot_schema(repo.store.view(), self.id, &self.snapshot)?)
    }
}

/// One revision's part of a replay.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepReport {
    /// The revision(s).
    pub targets: Vec<RevisionId>,
    /// The reference snapshot.
    pub snapshot: ObjectId,
    /// Whether it came from the cache.
    pub cached: bool,
    /// How long the migration took, when it ran.
    pub seconds: Option<f64>,
}

/// A migration that failed during a replay.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReplayFailure {
    /// The revision being replayed (the ids joined by spaces, for the
    /// step that merges several heads' states).
    pub revision: String,
    /// Its file.
    pub file: Option<PathBuf>,
    /// What failed.
    #[serde(flatten)]
    pub failure: StepFailure,
    /// Tables the step found missing although it started from the empty
    /// database (after the bootstrap, if any): what a base revision expects
    /// something outside Alembic to have made. Empty otherwise.
    pub expects: Vec<String>,
    /// The project's own database, when it has every table of `expects`:
    /// they are made outside Alembic, and the revision is not to blame
    /// (see [`ReplayFailure::confirm_outside`]).
    pub outside_alembic: Option<PathBuf>,
}

impl ReplayFailure {
    /// Records that `database`, the project's own, has every table the
    /// failing step expected (`expects`): they are made outside Alembic.
    /// Does nothing when it lacks one, or nothing was expected.
    pub fn confirm_outside(&mut self, database: &Path, schema: &Schema) {
        if !self.expects.is_empty()
            && self.expects.iter().all(|table| {
                schema
                    .tables
                    .contains_key(&crate::schema::model::fold(table))
            })
        {
            self.outside_alembic = Some(database.to_path_buf());
        }
    }

    /// The failure in one sentence: the migration and its error, or, when
    /// the tables it expects are made outside Alembic, that and what to do
    /// (the file is not named: it is not to blame).
    pub fn summary(&self) -> String {
        match &self.outside_alembic {
            Some(_) => format!(
                "the base revision {} expects tables that are created outside Alembic ({}); configure a bootstrap",
                self.revision,
                self.expects.join(", ")
            ),
            None => format!("migration {} failed: {}", self.revision, self.failure.error),
        }
    }
}

/// The tables a failed step's error says do not exist: SQLite's `no such
/// table: X` (`main.X` too) and SQLAlchemy's `NoSuchTableError: X` (a
/// batch operation reflecting the table), from the error line and the
/// traceback.
fn missing_tables(failure: &StepFailure) -> Vec<String> {
    let mut tables: Vec<String> = Vec::new();
    for text in [&failure.error, &failure.detail] {
        for marker in ["no such table: ", "NoSuchTableError: "] {
            for (at, _) in text.match_indices(marker) {
                let rest = &text[at + marker.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !"'\"`[](),;".contains(*c))
                    .collect();
                let name = name.strip_prefix("main.").unwrap_or(&name).to_owned();
                if !name.is_empty() && !tables.contains(&name) {
                    tables.push(name);
                }
            }
        }
    }
    tables
}

/// What a replay did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReplayReport {
    /// The references, prerequisites first.
    pub steps: Vec<StepReport>,
    /// The migration that failed; the steps before it are kept.
    pub failure: Option<ReplayFailure>,
    /// Whether a migration process ran at all (false: everything cached).
    pub ran_migrations: bool,
}

/// Progress of a replay, for a caller that shows it.
pub enum ReplayEvent<'a> {
    /// About to run the migration of these revisions.
    Running(&'a [RevisionId]),
    /// Finished a step.
    Done(&'a StepReport),
}

/// A database state a replay step can start from.
pub(crate) enum State<'a> {
    /// The empty database.
    Empty,
    /// A copy of a state replayed earlier in this run.
    Copy(&'a Path),
    /// A recorded reference.
    Stored(ObjectId),
}

/// The scratch side of one replay run.
struct Session<'a> {
    /// The run's temporary folder.
    dir: &'a Path,
    /// The database the migrations run on.
    scratch: PathBuf,
    runner: Box<dyn Runner>,
    /// References recorded before this run, by targets.
    known: BTreeMap<Vec<RevisionId>, ObjectId>,
    /// What the scratch file holds: `None` is the empty database.
    holds: Option<Vec<RevisionId>>,
    /// Copies of the states replayed in this run, by targets.
    copies: BTreeMap<Vec<RevisionId>, PathBuf>,
}

impl Session<'_> {
    /// Copies the scratch file, which holds `targets` after step `index`,
    /// aside twice, and returns the copy for the recorder: the recorder
    /// deletes its file when done, so the run keeps one of its own as a
    /// starting point for later steps.
    fn keep(&mut self, index: usize, targets: &[RevisionId]) -> Result<PathBuf, ReplayError> {
        let copy = self.dir.join(format!("state-{index}.db"));
        std::fs::copy(&self.scratch, &copy).map_err(ReplayError::Scratch)?;
        let keep = self.dir.join(format!("start-{index}.db"));
        std::fs::copy(&copy, &keep).map_err(ReplayError::Scratch)?;
        self.copies.insert(targets.to_vec(), keep);
        self.holds = Some(targets.to_vec());
        Ok(copy)
    }
}

/// Where the reference chain of a project lives in refs: `replay/<name>`
/// for the project a chain's settings find at the repository root, and
/// `replay/<name>/projects/<id>` for any other project opened under the
/// same settings (another `alembic.ini` named with `-c`, or found from the
/// working directory), so two projects that reuse revision ids
/// (`a1b2c3d4e5f6`) never share a reference or an accepted variant.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The ref prefix without its final `/`.
    root: String,
}

impl Chain {
    /// The chain called `name` (a database name, or `default`).
    pub fn new(name: &str) -> Chain {
        Chain {
            root: format!("replay/{name}"),
        }
    }

    /// The chain of a project called `name` that is not the one its
    /// settings find at the repository root: keyed by the project's
    /// `identity` (see [`Project::identity`]) as well.
    pub fn of_project(name: &str, identity: &str) -> Chain {
        let digest = blake3::hash(identity.as_bytes()).to_hex();
        Chain {
            root: format!("replay/{name}/projects/{}", &digest[..12]),
        }
    }

    /// The ref of the reference for `targets` (one revision or a set).
    pub fn ref_for(&self, targets: &[RevisionId]) -> RefName {
        let name = match targets {
            [one] if RefName::new(format!("x/{one}")).is_ok() && !one.contains('/') => {
                format!("{}/revs/{one}", self.root)
            }
            _ => {
                let mut sorted = targets.to_vec();
                sorted.sort();
                let digest = blake3::hash(sorted.join("\n").as_bytes()).to_hex();
                format!("{}/sets/{}", self.root, &digest[..24])
            }
        };
        RefName::new(name)
            .expect("holds: the chain name is a database name and the rest is checked")
    }

    /// The ref prefix of every reference of this chain.
    pub fn prefix(&self) -> String {
        format!("{}/", self.root)
    }

    /// The name its snapshots record as their database.
    fn database(&self) -> String {
        self.root.clone()
    }
}

/// Builds and looks up references for one project.
pub struct Replayer<'a> {
    project: &'a Project,
    graph: &'a Graph,
    chain: Chain,
    run_identity: String,
    /// The bootstrap, resolved on first use (it may need the store).
    bootstrap: OnceLock<Option<Bootstrap>>,
}

impl<'a> Replayer<'a> {
    /// A replayer for `project`, whose references live under `chain`.
    pub fn new(project: &'a Project, graph: &'a Graph, chain: Chain) -> Replayer<'a> {
        Replayer {
            project,
            graph,
            chain,
            run_identity: run_identity(project),
            bootstrap: OnceLock::new(),
        }
    }

    /// The bootstrap every scratch database gets before the base revision
    /// (see [`bootstrap`]), if the project has one.
    pub fn bootstrap(&self, repo: &Repo) -> Result<Option<&Bootstrap>, ReplayError> {
        if let Some(resolved) = self.bootstrap.get() {
            return Ok(resolved.as_ref());
        }
        let resolved = Bootstrap::resolve(repo, self.project, &self.chain)?;
        // Another thread may have resolved it meanwhile: the same value.
        let _ = self.bootstrap.set(resolved);
        Ok(self
            .bootstrap
            .get()
            .expect("holds: it was just set")
            .as_ref())
    }

    /// The project it replays.
    pub fn project(&self) -> &Project {
        self.project
    }

    /// The revision graph whose references it builds.
    pub fn graph(&self) -> &'a Graph {
        self.graph
    }

    /// The chain's name in refs.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The key a reference for `targets` must carry to be current.
    pub fn key(&self, repo: &Repo, targets: &[RevisionId]) -> Result<String, ReplayError> {
        let mut hasher = blake3::Hasher::new();
        hasher.update(KEY_VERSION.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.run_identity.as_bytes());
        // Without a bootstrap the key is what it always was, so existing
        // references stay current.
        if let Some(bootstrap) = self.bootstrap(repo)? {
            hasher.update(b"\0bootstrap\0");
            hasher.update(bootstrap.digest().as_bytes());
        }
        let mut sorted = targets.to_vec();
        sorted.sort();
        for target in &sorted {
            hasher.update(b"\0target\0");
            hasher.update(target.as_bytes());
        }
        for id in self.graph.closure(targets.iter().map(RevisionId::as_str)) {
            let revision = self
                .graph
                .get(&id)
                .expect("holds: the closure holds known ids");
            hasher.update(b"\0rev\0");
            hasher.update(id.as_bytes());
            hasher.update(b"\0");
            hasher.update(revision.file_hash.as_bytes());
        }
        Ok(hasher.finalize().to_hex().to_string())
    }

    /// The current reference for `targets`, if one is recorded.
    pub fn cached(
        &self,
        repo: &Repo,
        targets: &[RevisionId],
    ) -> Result<Option<Reference>, ReplayError> {
        let view = repo.store.view();
        let Some(id) = view.find_ref(&self.chain.ref_for(targets))? else {
            return Ok(None);
        };
        let snapshot = view.read_snapshot(&id)?;
        let key = self.key(repo, targets)?;
        let current = snapshot.header_values(H_KEY).next() == Some(key.as_str());
        Ok(current.then(|| Reference {
            targets: targets.to_vec(),
            id,
            snapshot,
        }))
    }

    /// Makes sure every revision has a current reference, and the set of
    /// heads too when there are several: a whole replay.
    pub fn replay_all(
        &self,
        repo: &mut Repo,
        on_event: &mut dyn FnMut(ReplayEvent<'_>),
    ) -> Result<ReplayReport, ReplayError> {
        let wanted = self.all_targets();
        self.ensure(repo, &wanted, on_event)
    }

    /// What [`Replayer::replay_all`] builds, one step each: every revision
    /// in topological order, then all heads together when there are
    /// several.
    pub fn all_targets(&self) -> Vec<Vec<RevisionId>> {
        let mut wanted: Vec<Vec<RevisionId>> = self
            .graph
            .topological()
            .into_iter()
            .map(|id| vec![id])
            .collect();
        let heads = self.graph.heads();
        if heads.len() > 1 {
            wanted.push(heads);
        }
        wanted
    }

    /// Makes sure `targets` (one revision, or a set such as the rows of a
    /// multi-row `alembic_version`) has a current reference, replaying what
    /// is missing.
    pub fn reference(
        &self,
        repo: &mut Repo,
        targets: &[RevisionId],
        on_event: &mut dyn FnMut(ReplayEvent<'_>),
    ) -> Result<(Option<Reference>, ReplayReport), ReplayError> {
        let closure = self.graph.closure(targets.iter().map(RevisionId::as_str));
        let mut wanted: Vec<Vec<RevisionId>> = self
            .graph
            .topological()
            .into_iter()
            .filter(|id| closure.contains(id))
            .map(|id| vec![id])
            .collect();
        if targets.len() > 1 {
            wanted.push(targets.to_vec());
        }
        let report = self.ensure(repo, &wanted, on_event)?;
        Ok((self.cached(repo, targets)?, report))
    }

    /// Replays the wanted references that are not current, in order
    /// (singletons prerequisites first, then sets), stopping at the first
    /// failing migration.
    ///
    /// Recording a reference overlaps with the next migration (see
    /// [`recorder`]). The copies of the replayed states also serve as the
    /// starting states of later steps, so a branch never waits for a
    /// checkout of something recorded in the same run.
    fn ensure(
        &self,
        repo: &mut Repo,
        wanted: &[Vec<RevisionId>],
        on_event: &mut dyn FnMut(ReplayEvent<'_>),
    ) -> Result<ReplayReport, ReplayError> {
        let mut report = ReplayReport::default();
        let mut known: BTreeMap<Vec<RevisionId>, ObjectId> = BTreeMap::new();
        let mut missing: Vec<&Vec<RevisionId>> = Vec::new();
        for targets in wanted {
            match self.cached(repo, targets)? {
                Some(reference) => {
                    known.insert(targets.clone(), reference.id);
                    let step = StepReport {
                        targets: targets.clone(),
                        snapshot: reference.id,
                        cached: true,
                        seconds: None,
                    };
                    on_event(ReplayEvent::Done(&step));
                    report.steps.push(step);
                }
                None => missing.push(targets),
            }
        }
        if missing.is_empty() {
            return Ok(report);
        }

        let scratch_dir = scratch_dir()?;
        let scratch = scratch_dir.path().join("scratch.db");
        std::fs::write(&scratch, b"").map_err(ReplayError::Scratch)?;
        let mut runner = self.runner(&scratch)?;
        report.ran_migrations = true;
        // The empty state every chain starts from has the bootstrap's
        // tables.
        self.load_state(repo, State::Empty, &scratch, runner.as_mut())?;
        let mut session = Session {
            dir: scratch_dir.path(),
            scratch,
            runner,
            known,
            holds: None,
            copies: BTreeMap::new(),
        };
        let store_dir = repo.store.dir().to_path_buf();
        let root = repo.root().to_path_buf();
        let repo = &*repo;
        std::thread::scope(|scope| {
            let recorder = Recorder::start(scope, self, store_dir, root, session.known.clone());
            let outcome = self.replay_missing(
                repo,
                &missing,
                &mut session,
                &recorder,
                &mut report,
                on_event,
            );
            let drained = recorder.finish(&mut report, on_event);
            outcome.and(drained)
        })?;
        Ok(report)
    }

    /// Runs the `missing` steps in order, handing each replayed state to the
    /// recorder; a failing migration ends the run with `report.failure`.
    fn replay_missing(
        &self,
        repo: &Repo,
        missing: &[&Vec<RevisionId>],
        session: &mut Session<'_>,
        recorder: &Recorder,
        report: &mut ReplayReport,
        on_event: &mut dyn FnMut(ReplayEvent<'_>),
    ) -> Result<(), ReplayError> {
        for (index, targets) in missing.iter().copied().enumerate() {
            let from_empty = self.load_start(repo, session, targets)?;
            on_event(ReplayEvent::Running(targets));
            let began = Instant::now();
            let mut step = Ok(());
            for target in targets {
                step = session.runner.upgrade(target);
                if step.is_err() {
                    break;
                }
            }
            if let Err(failure) = step {
                let file = failure
                    .file
                    .clone()
                    .or_else(|| self.graph.get(&targets[0]).map(|r| r.path.clone()));
                let expects = if from_empty {
                    missing_tables(&failure)
                } else {
                    Vec::new()
                };
                report.failure = Some(ReplayFailure {
                    revision: targets.join(" "),
                    file,
                    failure,
                    expects,
                    outside_alembic: None,
                });
                return Ok(());
            }
            let seconds = began.elapsed().as_secs_f64();
            let copy = session.keep(index, targets)?;
            recorder.send(Job {
                targets: targets.clone(),
                parents: self.parent_targets(targets),
                file: copy,
                seconds,
            });
            recorder.drain(report, on_event)?;
        }
        Ok(())
    }

    /// Puts the state the step for `targets` starts from into the scratch
    /// file, unless it holds that state already: the first target's first
    /// parent (or the first target itself, for a set); the migration tool
    /// applies whatever else the targets need. `true` when that is the
    /// empty database (with the bootstrap's tables).
    fn load_start(
        &self,
        repo: &Repo,
        session: &mut Session<'_>,
        targets: &[RevisionId],
    ) -> Result<bool, ReplayError> {
        let start: Option<Vec<RevisionId>> = match targets {
            [one] => self
                .graph
                .get(one)
                .and_then(|r| r.parents.first())
                .map(|p| vec![p.clone()]),
            many => Some(vec![many[0].clone()]),
        };
        if start == session.holds {
            return Ok(start.is_none());
        }
        let scratch = &session.scratch;
        let runner = session.runner.as_mut();
        let state = match &start {
            None => State::Empty,
            Some(from) => match session.copies.get(from) {
                Some(copy) => State::Copy(copy),
                None => match self.known_or_cached(repo, &session.known, from)? {
                    Some(id) => State::Stored(id),
                    None => State::Empty,
                },
            },
        };
        let empty = matches!(state, State::Empty);
        self.load_state(repo, state, scratch, runner)?;
        Ok(empty)
    }

    /// The targets of the references that are the parents of the one for
    /// `targets`.
    fn parent_targets(&self, targets: &[RevisionId]) -> Vec<Vec<RevisionId>> {
        match targets {
            [one] => self
                .graph
                .get(one)
                .map(|r| r.parents.iter().map(|p| vec![p.clone()]).collect())
                .unwrap_or_default(),
            many => many.iter().map(|t| vec![t.clone()]).collect(),
        }
    }

    fn known_or_cached(
        &self,
        repo: &Repo,
        known: &BTreeMap<Vec<RevisionId>, ObjectId>,
        targets: &[RevisionId],
    ) -> Result<Option<ObjectId>, ReplayError> {
        match known.get(targets) {
            Some(id) => Ok(Some(*id)),
            None => Ok(self.cached(repo, targets)?.map(|r| r.id)),
        }
    }

    /// Puts a state (empty, a copy from this run, or a recorded reference)
    /// into the scratch file, in place: an application that keeps a
    /// connection open across steps (some `env.py` files import the app,
    /// which opens its engine once) still sees the same file. The empty
    /// state gets the bootstrap's tables, run through `runner`.
    pub(crate) fn load_state(
        &self,
        repo: &Repo,
        state: State<'_>,
        scratch: &Path,
        runner: &mut dyn Runner,
    ) -> Result<(), ReplayError> {
        for suffix in ["-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(crate::snapshots::sqlite::with_suffix(scratch, suffix));
        }
        match state {
            State::Empty => {
                std::fs::write(scratch, b"").map_err(ReplayError::Scratch)?;
                match self.bootstrap(repo)? {
                    Some(bootstrap) => bootstrap
                        .run(scratch, &sqlite_url(scratch), runner)
                        .map_err(|failure| ReplayError::Bootstrap {
                            what: bootstrap.describe(),
                            file: bootstrap.file().map(Path::to_path_buf),
                            failure: Box::new(failure),
                        }),
                    None => Ok(()),
                }
            }
            State::Copy(copy) => std::fs::copy(copy, scratch)
                .map(|_| ())
                .map_err(ReplayError::Scratch),
            State::Stored(id) => self.load_stored(repo, id, scratch),
        }
    }

    /// Puts the recorded snapshot `id` into the scratch file, in place (see
    /// [`Replayer::load_state`]).
    pub(crate) fn load_stored(
        &self,
        repo: &Repo,
        id: ObjectId,
        scratch: &Path,
    ) -> Result<(), ReplayError> {
        let staged = scratch.with_extension("staged");
        crate::snapshots::restore::checkout(
            repo,
            id,
            &staged,
            true,
            crate::snapshots::sqlite::DEFAULT_BUSY_TIMEOUT,
            &mut migsnap_store::progress::Silent,
        )?;
        std::fs::copy(&staged, scratch).map_err(ReplayError::Scratch)?;
        std::fs::remove_file(&staged).map_err(ReplayError::Scratch)
    }

    fn record(
        &self,
        repo: &mut Repo,
        scratch: &Path,
        targets: &[RevisionId],
        parents: Vec<ObjectId>,
    ) -> Result<ObjectId, ReplayError> {
        let mut headers = vec![(H_KEY.to_owned(), self.key(repo, targets)?)];
        headers.extend(targets.iter().map(|t| (H_TARGET.to_owned(), t.to_string())));
        let target = Target {
            database: self.chain.database(),
            reference: self.chain.ref_for(targets),
            parents: Some(parents),
            headers,
        };
        let message = match targets {
            [one] => {
                let summary = self
                    .graph
                    .get(one)
                    .and_then(|r| r.message.clone())
                    .unwrap_or_default();
                format!("reference for {one}: {summary}")
                    .trim_end_matches([':', ' '])
                    .to_owned()
            }
            many => format!("reference for {}", many.join(" + ")),
        };
        let options = SnapshotOptions {
            message,
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

    /// The runner the project's settings call for, working on `scratch`
    /// (for Alembic: the driver, started and loaded).
    pub(crate) fn runner(&self, scratch: &Path) -> Result<Box<dyn Runner>, ReplayError> {
        let project = self.project;
        let timeout = self.step_timeout()?;
        check_trust(project, None)?;
        let url = sqlite_url(scratch);
        if let Some(template) = &project.settings.upgrade {
            let env = self.url_env(&url);
            return Ok(Box::new(
                TemplateRunner::new(template, scratch, &url, &project.root, env, timeout)
                    .map_err(ReplayError::Setting)?,
            ));
        }
        match project.kind {
            MigrationKind::Sql => {
                let dir = project
                    .sql_dir
                    .as_ref()
                    .expect("holds: a SQL project has a folder");
                Ok(Box::new(
                    SqlRunner::new(dir, scratch).map_err(ReplayError::Scratch)?,
                ))
            }
            MigrationKind::Alembic => Ok(Box::new(self.alembic_driver(&url)?)),
        }
    }

    /// How long one step may take, from the settings.
    fn step_timeout(&self) -> Result<Duration, ReplayError> {
        self.project.timeout().map_err(|e| match e {
            // Both say "migsnap.toml: " in front; keep one.
            crate::migrations::history::project::HistoryError::Setting(message) => {
                ReplayError::Setting(message)
            }
            other => ReplayError::Setting(other.to_string()),
        })
    }

    /// The environment variables that carry the database URL `url`.
    fn url_env(&self, url: &str) -> Vec<(String, String)> {
        self.project
            .settings
            .url_env
            .clone()
            .unwrap_or_else(|| vec!["DATABASE_URL".to_owned()])
            .into_iter()
            .map(|name| (name, url.to_owned()))
            .collect()
    }

    /// The project's Alembic driver, started and loaded, with `url` as the
    /// database (in the ini when the settings say so, and in the URL
    /// environment variables).
    fn alembic_driver(&self, url: &str) -> Result<AlembicDriver, ReplayError> {
        let project = self.project;
        let timeout = self.step_timeout()?;
        let env = self.url_env(url);
        let config = project
            .alembic
            .as_ref()
            .expect("holds: an Alembic project has a config");
        let python = find_python(project)?;
        check_trust(project, Some(&python))?;
        let (ini, toml) = match &config.source {
            crate::migrations::history::alembic_config::ConfigSource::Ini(p) => {
                (Some(p.clone()), None)
            }
            crate::migrations::history::alembic_config::ConfigSource::Pyproject(p) => {
                let ini = project.root.join("alembic.ini");
                (ini.is_file().then_some(ini), Some(p.clone()))
            }
        };
        let launch = AlembicLaunch {
            python: python.clone(),
            cwd: project.root.clone(),
            ini,
            toml,
            section: config.section.clone(),
            url_in_ini: project
                .settings
                .url_in_ini
                .unwrap_or(true)
                .then(|| url.to_owned()),
            env,
            version_dirs: config.version_locations.clone(),
            timeout,
        };
        AlembicDriver::start(&launch).map_err(|failure| ReplayError::Start { python, failure })
    }
}

/// A private directory for the scratch databases: in shared memory where
/// there is some, because a scratch database needs no durability and every
/// migration commits (and so fsyncs) once; that halves the Python side of a
/// replay. Elsewhere the ordinary temporary directory.
pub(crate) fn scratch_dir() -> Result<tempfile::TempDir, ReplayError> {
    let builder = || {
        let mut builder = tempfile::Builder::new();
        builder.prefix("migsnap-replay-");
        builder
    };
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = builder().tempdir_in(shm)
    {
        return Ok(dir);
    }
    builder().tempdir().map_err(ReplayError::Scratch)
}

/// What, besides the revision files, decides what a replay produces: the
/// runner and its settings, and `env.py`.
fn run_identity(project: &Project) -> String {
    let settings = &project.settings;
    let mut identity = format!(
        "kind={:?}\0upgrade={:?}\0url_env={:?}\0url_in_ini={:?}",
        project.kind, settings.upgrade, settings.url_env, settings.url_in_ini
    );
    if let Some(config) = &project.alembic {
        let env_py = std::fs::read(config.script_location.join("env.py")).unwrap_or_default();
        identity.push_str(&format!(
            "\0section={}\0env.py={}",
            config.section,
            blake3::hash(&env_py).to_hex()
        ));
    }
    identity
}

/// Holds everything a replay of `project` runs to [`crate::trust`]'s rule:
/// the directory commands run in, the migration folder, Alembic's
/// environment (`env.py`) and revision files, and the interpreter.
fn check_trust(project: &Project, python: Option<&Path>) -> Result<(), crate::trust::Untrusted> {
    use crate::trust::check;
    check(&project.root, "the project's migrations from it")?;
    if let Some(dir) = &project.sql_dir {
        check(dir, "the migrations in it")?;
    }
    if let Some(config) = &project.alembic {
        check(&config.script_location, "Alembic's env.py from it")?;
        check(&config.script_location.join("env.py"), "it")?;
        for dir in &config.version_locations {
            check(dir, "the revision files in it")?;
            check_tree(dir)?;
        }
    }
    if let Some(python) = python {
        check(python, "it as the project's Python")?;
        if let Some(bin) = python.parent() {
            check(bin, "the project's Python from it")?;
        }
    }
    Ok(())
}

/// Checks everything under a version directory, subdirectories included
/// (`recursive_version_locations`); symbolic links are checked, not followed.
fn check_tree(dir: &Path) -> Result<(), crate::trust::Untrusted> {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        crate::trust::check(&path, "it as a revision file")?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            check_tree(&path)?;
        }
    }
    Ok(())
}

/// The SQLAlchemy URL of a SQLite file.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite:///{}", path.display())
}

/// The project's Python: the configured one, else the project's own
/// `.venv` or `venv`, else the active virtualenv (`VIRTUAL_ENV`) when
/// Alembic is installed there, else the virtualenv migsnap itself runs from
/// when Alembic is installed there (`beside_executable`), else the
/// interpreter of the `alembic` command on `PATH` (its `#!` line), else
/// `python3` on `PATH`.
///
/// An active virtualenv without Alembic is passed over because pre-commit
/// runs a `language: python` hook with `VIRTUAL_ENV` set to the hook's own
/// environment (migsnap alone), in front of the developer's activated one,
/// whose `alembic` is still on `PATH`.
pub fn find_python(project: &Project) -> Result<PathBuf, ReplayError> {
    if let Some(python) = &project.settings.python {
        let python = project.root.join(python);
        return if python.is_file() {
            Ok(python)
        } else {
            Err(ReplayError::NoPython {
                tried: vec![python],
            })
        };
    }
    let mut tried = Vec::new();
    let mut candidates: Vec<PathBuf> = [".venv", "venv"]
        .iter()
        .map(|venv| project.root.join(venv).join("bin").join("python"))
        .collect();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        candidates.extend(with_alembic(&PathBuf::from(venv).join("bin")));
    }
    candidates.extend(beside_executable());
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = |name: &str| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    };
    if let Some(python) = on_path("alembic").and_then(|script| shebang(&script)) {
        candidates.push(python);
    }
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate);
    }
    if let Some(python) = on_path("python3") {
        return Ok(python);
    }
    tried.push(PathBuf::from("python3 on PATH"));
    Err(ReplayError::NoPython { tried })
}

/// The Python of the virtualenv the running executable was installed into
/// (`pip install migsnap` into the app's venv, then `.venv/bin/migsnap`
/// run without activating it), when that venv also has Alembic: its
/// `alembic` command sits beside migsnap. A venv made for migsnap alone, as
/// `pipx` and `uvx` make, has no Alembic to replay with and is passed over.
fn beside_executable() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?;
    bin.parent()?
        .join("pyvenv.cfg")
        .is_file()
        .then(|| with_alembic(bin))
        .flatten()
}

/// The `python` of a virtualenv's `bin` directory when Alembic is installed
/// there (its `alembic` command is).
fn with_alembic(bin: &Path) -> Option<PathBuf> {
    bin.join("alembic").is_file().then(|| bin.join("python"))
}

/// The interpreter a script's `#!` line names, when it is a plain path.
fn shebang(script: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script).ok()?.read(&mut head).ok()?;
    let text = std::str::from_utf8(&head[..n]).ok()?;
    let line = text.strip_prefix("#!")?.lines().next()?.trim();
    let interpreter = line.split_whitespace().next()?;
    interpreter
        .starts_with('/')
        .then(|| PathBuf::from(interpreter))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> Vec<RevisionId> {
        ids.iter().map(|&id| id.into()).collect()
    }

    /// An id is a ref component as written (13 characters, a word, mixed
    /// case); one a ref name cannot hold goes by the digest of a set.
    #[test]
    fn references_are_named_by_the_id_as_written() {
        let chain = Chain::new("default");
        for id in [
            "1975ea83b712a",
            "add_user_email",
            "Ae1027a6acf",
            "ae1027a6acf",
        ] {
            assert_eq!(
                chain.ref_for(&ids(&[id])).as_str(),
                format!("replay/default/revs/{id}")
            );
        }
        let odd = chain.ref_for(&ids(&["x..y"]));
        assert!(odd.as_str().starts_with("replay/default/sets/"), "{odd}");
        assert_ne!(odd, chain.ref_for(&ids(&["x..z"])));
        assert_eq!(chain.prefix(), "replay/default/");
    }

    /// Another project's chain is a namespace of the same name, by
    /// identity: the same id is two references, and one identity is
    /// always the same namespace.
    #[test]
    fn another_project_has_a_namespace_of_its_own() {
        let other = Chain::of_project("default", "alembic\0other/migrations\0alembic");
        let same = Chain::of_project("default", "alembic\0other/migrations\0alembic");
        let third = Chain::of_project("default", "alembic\0third/migrations\0alembic");
        let target = ids(&["a1b2c3d4e5f6"]);
        let name = other.ref_for(&target);
        assert!(
            name.as_str().starts_with("replay/default/projects/")
                && name.as_str().ends_with("/revs/a1b2c3d4e5f6"),
            "{name}"
        );
        assert_eq!(name, same.ref_for(&target));
        assert_ne!(name, third.ref_for(&target));
        assert_ne!(name, Chain::new("default").ref_for(&target));
        assert_eq!(
            other.models_ref().as_str(),
            format!("{}models", other.prefix())
        );
    }
}
