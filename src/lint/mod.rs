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
pub mod config;
pub mod git;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::drift;
use crate::finding::{Finding, Severity};
use crate::history::graph::{self, Graph, ResolveError, Resolved};
use crate::history::project::MigrationKind;
use crate::history::revision_file;
use crate::replay::{ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::repo::Repo;
use crate::schema::Schema;
use config::LintConfig;
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

    /// Every lint code, for validating severity overrides.
    pub const ALL: [&str; 9] = [
        ALTERS_EXISTING_TABLE,
        DESTRUCTIVE,
        PARENT_NOT_HEAD,
        MULTIPLE_HEADS,
        CROSS_FEATURE_FK,
        INCONSISTENT_ID_TYPE,
        UNNAMED_CONSTRAINT,
        IRREVERSIBLE_DOWNGRADE,
        EDITED_AFTER_APPLIED,
    ];
}

/// What can stop a lint (a failing migration does not: it is a finding).
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// A severity override names a code no rule reports.
    #[error("migsnap.toml: [migrations.lint] severity names unknown code '{code}'")]
    UnknownCode {
        /// The code as written.
        code: String,
    },
    /// `--since` names no revision.
    #[error(transparent)]
    Since(#[from] ResolveError),
    /// `git` could not be started.
    #[error("cannot run git: --base needs git on PATH")]
    GitMissing(#[source] std::io::Error),
    /// A `git` command failed.
    #[error("`{command}` failed: {stderr}")]
    Git {
        /// The command line.
        command: String,
        /// What git said.
        stderr: String,
    },
    /// The `--base` reference names no commit.
    #[error("--base {gitref}: no such commit in the git repository {}", root.display())]
    BadRef {
        /// The reference as given.
        gitref: String,
        /// The repository's top level.
        root: PathBuf,
    },
    /// `--base` on a project that is not Alembic.
    #[error("--base reads Alembic revision files; this project is a SQL folder")]
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
    /// Those not applied by upgrading to this revision (an id, prefix,
    /// label, `head` or `heads`).
    Since(String),
    /// Those whose ids the revision files at this git commit do not declare.
    Base(String),
}

/// What a lint found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LintReport {
    /// The new revisions, prerequisites first.
    pub revisions_checked: Vec<String>,
    /// The findings, severities as configured; whole-history findings
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
    config.validate()?;
    let (new, base) = select(graph, replayer, scope)?;
    let order: Vec<String> = graph
        .topological()
        .into_iter()
        .filter(|id| new.contains(id))
        .collect();

    let mut findings: Vec<Finding> = graph
        .findings()
        .iter()
        .map(|finding| match finding.code {
            graph::codes::MULTIPLE_HEADS => Finding {
                code: codes::MULTIPLE_HEADS,
                severity: Severity::Error,
                ..finding.clone()
            },
            _ => finding.clone(),
        })
        .collect();
    findings.extend(applied::edited_after_applied(repo, graph)?);
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
        findings: findings
            .into_iter()
            .filter_map(|finding| config.apply(finding))
            .collect(),
    })
}

/// The new revisions of `scope`, and the graph they are new against: the
/// graph at the git base, or the rest of the current graph.
fn select(
    graph: &Graph,
    replayer: &Replayer<'_>,
    scope: &Scope,
) -> Result<(BTreeSet<String>, Graph), LintError> {
    let all = || graph.revisions().map(|r| r.id.clone());
    let new: BTreeSet<String> = match scope {
        Scope::All => all().collect(),
        Scope::Since(name) => match graph.resolve(name)? {
            Resolved::Base => all().collect(),
            Resolved::Revisions(ids) => {
                let old = graph.closure(ids.iter().map(String::as_str));
                all().filter(|id| !old.contains(id)).collect()
            }
        },
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
            return Ok((new, base));
        }
    };
    let old = graph
        .revisions()
        .filter(|r| !new.contains(&r.id))
        .cloned()
        .collect();
    Ok((new, Graph::build(old, Vec::new())))
}

/// The findings of every effect rule on the new revisions (`order`),
/// replaying the references that are missing.
fn effects(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    order: &[String],
    config: &LintConfig,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<Vec<Finding>, LintError> {
    let mut findings = Vec::new();
    // Every reference, not only the new revisions' closure: who created a
    // table is judged over the whole history, and one replay process for
    // all of it is cheaper than one per new revision.
    let report = replayer.replay_all(repo, on_event)?;
    findings.extend(report.failure.as_ref().map(replay_failed));
    let mut schemas: BTreeMap<String, Schema> = BTreeMap::new();
    let mut owners = Owners::default();
    for id in graph.topological() {
        if let Some(reference) = replayer.cached(repo, std::slice::from_ref(&id))? {
            let schema = reference.schema(repo)?;
            owners.record(&id, &schema);
            schemas.insert(id, schema);
        }
    }
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
        findings.extend(Effect::new(revision, before, after).findings(&owners, config));
    }
    Ok(findings)
}

/// A migration that failed while building references: the effects it hides
/// are not checked.
fn replay_failed(failure: &ReplayFailure) -> Finding {
    let mut finding = Finding::new(
        drift::codes::REPLAY_FAILED,
        Severity::Error,
        &failure.revision,
        format!(
            "migration {} failed in replay: {}; its effect and those after it are not checked",
            failure.revision, failure.failure.error
        ),
    )
    .revision(&failure.revision)
    .hint("run `migsnap replay` for the traceback");
    if let Some(file) = &failure.file {
        finding = finding.file(file);
    }
    finding
}
