//! Migration lint: reviews new revisions by what their files say and by
//! their *effect*, the schema difference each one makes on the reference
//! chain (see [`rules::Effect`]).
//!
//! Invariants:
//! - Every finding has a stable `lint.*` code from [`codes`] (history
//!   findings of the graph and `replay.failed` pass through with theirs),
//!   and a revision and file whenever it concerns one.
//! - References are replayed only when one is missing or stale, so linting
//!   an unchanged project runs no Python.
//! - Effect and file rules judge only the new revisions of the [`Scope`];
//!   `lint.edited-after-applied` and `lint.multiple-heads` judge the whole
//!   history.

pub mod applied;
pub mod git;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::lint::LintConfig;
use crate::finding::{Finding, Severity};
use crate::migrations::history::graph::{self, Graph, ResolveError, Resolved};
use crate::migrations::history::project::MigrationKind;
use crate::migrations::history::revision_file;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::replay::{ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::migrations::{drift, models};
use crate::repo::Repo;
use crate::schema::Schema;
use rules::{Effect, Owners};

/// The stable finding codes of the lint.
pub mod codes {
    /// A new revision changes a table that existed before it.
    pub const ALTERS_EXISTING_TABLE: &str = "lint.alters-existing-table";
    /// A new revision drops a table or column, or narrows a column.
    pub const DESTRUCTIVE: &str = "lint.destructive";
    /// A new revision branches off below a head, or adds a head.
    pub const PARENT_NOT_HEAD: &str = "lint.parent-not-head";
    /// The history has more than one head.
    pub const MULTIPLE_HEADS: &str = "lint.multiple-heads";
    /// A new foreign key points into another feature's table.
    pub const CROSS_FEATURE_FK: &str = "lint.cross-feature-fk";
    /// A new table's primary key has another type than the project's ids.
    pub const INCONSISTENT_ID_TYPE: &str = "lint.inconsistent-id-type";
    /// A new UNIQUE, CHECK or foreign key has no name.
    pub const UNNAMED_CONSTRAINT: &str = "lint.unnamed-constraint";
    /// `downgrade()` is missing, empty or raises.
    pub const IRREVERSIBLE_DOWNGRADE: &str = "lint.irreversible-downgrade";
    /// A revision file changed after a snapshot recorded it as applied.
    pub const EDITED_AFTER_APPLIED: &str = "lint.edited-after-applied";
    /// A new head revision changes tables the models need no change in.
    pub const BEYOND_MODELS: &str = "lint.beyond-models";

    /// Every lint code, for validating severity overrides.
    pub const ALL: [&str; 10] = [
        ALTERS_EXISTING_TABLE,
        DESTRUCTIVE,
        PARENT_NOT_HEAD,
        MULTIPLE_HEADS,
        CROSS_FEATURE_FK,
        INCONSISTENT_ID_TYPE,
        UNNAMED_CONSTRAINT,
        IRREVERSIBLE_DOWNGRADE,
        EDITED_AFTER_APPLIED,
        BEYOND_MODELS,
    ];
}

/// What can stop a lint (a failing migration does not: it is a finding).
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// `--since` names no revision.
    #[error(transparent)]
    Since(#[from] ResolveError),
    /// `git` could not be started.
    #[error("cannot run git")]
    GitMissing(#[source] std::io::Error),
    /// `--base` or `--staged` outside a git work tree.
    #[error("{} is not in a git repository: {stderr}", root.display())]
    NotARepository {
        /// The project root.
        root: PathBuf,
        /// What git said.
        stderr: String,
    },
    /// `--since REV` names a head that is itself new, so "after it" would
    /// check nothing.
    #[error(
        "'{rev}' is head {head} ({}), which is itself new: no snapshot records it as applied and git HEAD does not have its file, so nothing after it would be checked",
        file.display()
    )]
    SinceNewHead {
        /// The revision as given.
        rev: String,
        /// The new head it resolved to.
        head: RevisionId,
        /// Its file.
        file: PathBuf,
    },
    /// The database `--since head` reads is stamped with a revision no
    /// file declares.
    #[error("'{rev}' means the stamped revision, but {} is stamped {stamped}, which no revision file declares", database.display())]
    UnknownStamp {
        /// The revision as given.
        rev: String,
        /// The database.
        database: PathBuf,
        /// The unknown row.
        stamped: RevisionId,
    },
    /// The database `--since head` reads could not be read.
    #[error(transparent)]
    Database(#[from] crate::snapshots::sqlite::SqliteError),
    /// A `git` command failed.
    #[error("`{command}` failed: {stderr}")]
    Git {
        /// The command line.
        command: String,
        /// What git said.
        stderr: String,
    },
    /// The `--base` reference names no commit.
    #[error("{gitref}: no such commit in the git repository {}", root.display())]
    BadRef {
        /// The reference as given.
        gitref: String,
        /// The repository's top level.
        root: PathBuf,
    },
    /// `--base` on a project that is not Alembic.
    #[error(
        "comparing with a git commit reads Alembic revision files; this project is a SQL folder"
    )]
    NotAlembic,
    /// Building or reading references failed.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
}

/// Which revisions count as new.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every revision (a first review of a whole project).
    All,
    /// Those after this revision in the graph: not applied by upgrading
    /// to it (an id, prefix, label, `head` or `heads`).
    Since {
        /// The revision as given.
        rev: String,
        /// The database whose stamped revisions `head` and `heads` mean,
        /// when one is known (see [`Since`]).
        database: Option<Stamped>,
    },
    /// Those whose ids the revision files at this git commit do not declare.
    Base(String),
    /// Those whose files are staged in git's index, added or modified.
    Staged,
}

/// The database `--since head` is resolved against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamped {
    /// Its file.
    pub path: PathBuf,
    /// How long to wait for a writer's lock.
    pub busy_timeout: Duration,
}

/// What `--since REV` resolved to, and from where.
///
/// `head` and `heads` mean the revisions the known database is stamped
/// with, because a revision file just added is already the graph's head:
/// "after head" would then check nothing. Without a database (or one
/// without `alembic_version`) they resolve in the graph, and a resolved
/// head that is itself new (no snapshot records it as applied, and git
/// `HEAD` does not have its file) is rejected with
/// [`LintError::SinceNewHead`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Since {
    /// The revision as given.
    pub rev: String,
    /// The revisions whose closure counts as old.
    pub after: Vec<RevisionId>,
    /// The database whose `alembic_version` gave `after`, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<PathBuf>,
}

/// What a lint found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LintReport {
    /// The new revisions, prerequisites first.
    pub revisions_checked: Vec<RevisionId>,
    /// What `--since` resolved to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Since>,
    /// The findings, with their default severities (the caller's
    /// [`crate::policy`] applies the project's); whole-history findings
    /// first, then by revision.
    pub findings: Vec<Finding>,
}

/// Lints the project of `replayer` (whose graph is `graph`) with its
/// `[migrations.lint]` settings, replaying missing references first.
pub fn lint(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    scope: &Scope,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<LintReport, LintError> {
    let project = replayer.project();
    let config = project.settings.lint.clone().unwrap_or_default();
    let Selected { new, base, since } = select(repo, graph, replayer, scope)?;
    let order: Vec<RevisionId> = graph
        .topological()
        .into_iter()
        .filter(|id| new.contains(id))
        .collect();

    // The graph's findings, with multiple heads re-judged knowing which
    // revisions are new: the newer branch is the one under review.
    let mut findings: Vec<Finding> = graph
        .findings()
        .iter()
        .filter(|finding| finding.code != graph::codes::MULTIPLE_HEADS)
        .cloned()
        .collect();
    findings.extend(graph.multiple_heads(&new).map(|finding| Finding {
        code: codes::MULTIPLE_HEADS,
        ..finding
    }));
    findings.extend(applied::edited_after_applied(repo, project, graph)?);
    findings.extend(rules::heads(graph, &base, &new));
    if project.kind == MigrationKind::Alembic {
        findings.extend(order.iter().filter_map(|id| {
            let revision = graph.get(id).expect("holds: ids come from the graph");
            // An unreadable file is already a history finding.
            let text = std::fs::read_to_string(&revision.path).ok()?;
            let file = revision_file::parse(&text).ok()?;
            rules::irreversible_downgrade(revision, file.downgrade)
        }));
    }
    if !order.is_empty() {
        findings.extend(effects(repo, replayer, graph, &order, &config, on_event)?);
    }
    Ok(LintReport {
        revisions_checked: order,
        since,
        findings,
    })
}

/// The revisions a scope selects.
struct Selected {
    /// The new revisions.
    new: BTreeSet<RevisionId>,
    /// The graph they are new against: the graph at the git base, or the
    /// rest of the current graph.
    base: Graph,
    /// What `--since` resolved to.
    since: Option<Since>,
}

/// The new revisions of `scope`, and what they are new against.
fn select(
    repo: &Repo,
    graph: &Graph,
    replayer: &Replayer<'_>,
    scope: &Scope,
) -> Result<Selected, LintError> {
    let all = || graph.revisions().map(|r| r.id.clone());
    let mut since = None;
    let new: BTreeSet<RevisionId> = match scope {
        Scope::All => all().collect(),
        Scope::Since { rev, database } => {
            let resolved = resolve_since(repo, graph, replayer, rev, database.as_ref())?;
            let old = graph.closure(resolved.after.iter().map(RevisionId::as_str));
            since = Some(resolved);
            all().filter(|id| !old.contains(id)).collect()
        }
        Scope::Staged => {
            let staged = git::staged(&replayer.project().root)?;
            graph
                .revisions()
                .filter(|r| {
                    let path = std::fs::canonicalize(&r.path).unwrap_or_else(|_| r.path.clone());
                    staged.contains(&path)
                })
                .map(|r| r.id.clone())
                .collect()
        }
        Scope::Base(gitref) => {
            let project = replayer.project();
            let alembic = project.alembic.as_ref().ok_or(LintError::NotAlembic)?;
            let base = git::graph_at(
                &project.root,
                gitref,
                &alembic.version_locations,
                alembic.recursive_version_locations,
            )?;
            let new = all().filter(|id| base.get(id).is_none()).collect();
            return Ok(Selected {
                new,
                base,
                since: None,
            });
        }
    };
    let old = graph
        .revisions()
        .filter(|r| !new.contains(&r.id))
        .cloned()
        .collect();
    Ok(Selected {
        new,
        base: Graph::build(old, Vec::new()),
        since,
    })
}

/// Resolves `--since REV` as [`Since`] documents.
fn resolve_since(
    repo: &Repo,
    graph: &Graph,
    replayer: &Replayer<'_>,
    rev: &str,
    database: Option<&Stamped>,
) -> Result<Since, LintError> {
    if let (true, Some(database)) = (matches!(rev, "head" | "heads"), database) {
        let live = drift::LiveDatabase::capture(&database.path, database.busy_timeout)?;
        if let Some(rows) = drift::stamped(replayer.project().kind, &live.meta, graph) {
            if let Some(unknown) = rows.iter().find(|row| graph.get(row).is_none()) {
                return Err(LintError::UnknownStamp {
                    rev: rev.to_owned(),
                    database: database.path.clone(),
                    stamped: unknown.clone(),
                });
            }
            return Ok(Since {
                rev: rev.to_owned(),
                after: rows,
                database: Some(database.path.clone()),
            });
        }
    }
    let after = match graph.resolve(rev)? {
        Resolved::Base => Vec::new(),
        Resolved::Revisions(ids) => ids,
    };
    let heads = graph.heads();
    let mut applied = None;
    for id in after.iter().filter(|id| heads.contains(id)) {
        let revision = graph.get(id).expect("holds: resolved ids exist");
        if git::committed(&revision.path) {
            continue;
        }
        let applied = match &mut applied {
            Some(applied) => applied,
            None => applied.insert(applied::recorded(repo, replayer.project())?),
        };
        if !applied.contains(id.as_str()) {
            return Err(LintError::SinceNewHead {
                rev: rev.to_owned(),
                head: id.clone(),
                file: revision.path.clone(),
            });
        }
    }
    Ok(Since {
        rev: rev.to_owned(),
        after,
        database: None,
    })
}

/// The findings of every effect rule on the new revisions (`order`),
/// replaying the references that are missing.
fn effects(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    order: &[RevisionId],
    config: &LintConfig,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<Vec<Finding>, LintError> {
    let mut findings = Vec::new();
    // Every reference, not only the new revisions' closure: who created a
    // table is judged over the whole history, and one replay process for
    // all of it is cheaper than one per new revision.
    let report = replayer.replay_all(repo, on_event)?;
    findings.extend(report.failure.as_ref().map(replay_failed));
    let mut schemas: BTreeMap<RevisionId, Schema> = BTreeMap::new();
    let mut owners = Owners::default();
    for id in graph.topological() {
        if let Some(reference) = replayer.cached(repo, std::slice::from_ref(&id))? {
            let schema = reference.schema(repo)?;
            owners.record(&id, &schema);
            schemas.insert(id, schema);
        }
    }
    let heads = graph.heads();
    // Loading the models may start Python: only when a head is judged.
    let models = if order.iter().any(|id| heads.contains(id)) {
        models_schema(repo, replayer)?
    } else {
        None
    };
    let empty = Schema::default();
    for id in order {
        // Missing: the replay failed at or before it (reported above).
        let Some(after) = schemas.get(id) else {
            continue;
        };
        let prerequisites = graph.prerequisites(id);
        let set;
        let before = match prerequisites.as_slice() {
            [] => &empty,
            [one] => match schemas.get(one) {
                Some(schema) => schema,
                None => continue,
            },
            several => {
                let (reference, report) = replayer.reference(repo, several, on_event)?;
                findings.extend(report.failure.as_ref().map(replay_failed));
                let Some(reference) = reference else {
                    continue;
                };
                set = reference.schema(repo)?;
                &set
            }
        };
        let revision = graph.get(id).expect("holds: ids come from the graph");
        let effect = Effect::new(revision, before, after);
        findings.extend(effect.findings(&owners, config));
        if let Some(models) = models.as_ref().filter(|_| heads.contains(id)) {
            findings.extend(models::beyond_models(
                revision,
                before,
                &effect.diff,
                models,
            ));
        }
    }
    Ok(findings)
}

/// The schema of the project's models, when it has models that load (a
/// failure to load them is `status`'s finding, not lint's).
fn models_schema(repo: &mut Repo, replayer: &Replayer<'_>) -> Result<Option<Schema>, LintError> {
    if replayer.models(repo)?.is_none() {
        return Ok(None);
    }
    Ok(match replayer.cached_models(repo)? {
        Some(models) => Some(models.schema(repo)?),
        None => None,
    })
}

/// A migration that failed while building references: the effects it hides
/// are not checked.
fn replay_failed(failure: &ReplayFailure) -> Finding {
    let mut finding = Finding::new(
        drift::codes::REPLAY_FAILED,
        Severity::Error,
        &failure.revision,
        format!(
            "failed in replay: {}; its effect and those after it are not checked",
            failure.failure.error
        ),
    )
    .revision(&failure.revision)
    .hint("run `migsnap replay` for the traceback");
    if let Some(file) = &failure.file {
        finding = finding.file(file);
    }
    finding
}
