//! `status`: a live database against the reference of its stamped
//! revisions, and the findings that comparison gives.

use std::collections::HashSet;
use std::path::PathBuf;

use migsnap_store::ObjectId;
use serde::Serialize;

use crate::finding::{Finding, Severity};
use crate::migrations::history::graph::Graph;
use crate::migrations::history::position::{self, Position};
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::replay::{ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::repo::Repo;
use crate::schema::diff::{self, ChangeKind, Op, SchemaDiff};
use crate::schema::finding::forget_artefacts;
use crate::schema::model::fold;
use crate::schema::{Schema, SchemaHash};
use crate::snapshots::snapshot::Recorded;

use super::accept::accepted;
use super::form::form_findings;
use super::locate::{closest, locate};
use super::{BOOTSTRAP_HINT, LiveDatabase, codes, stamped};

/// How the schema compares with the reference of its stamped revisions.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The stamped revisions the reference is for.
    pub targets: Vec<RevisionId>,
    /// The reference snapshot.
    pub reference: ObjectId,
    /// The accepted variant the schema matches, if it matches one rather
    /// than the reference itself.
    pub variant: Option<ObjectId>,
    /// What differs from the reference: `added` objects are extra in the
    /// database, `removed` ones are missing from it. Empty when it matches
    /// the reference or a variant.
    pub drift: SchemaDiff,
    /// Whether `targets` were inferred from the schema rather than read
    /// from the version rows: the database records a revision no script
    /// declares, so it is compared with the revision [`nearest`] finds.
    pub inferred: bool,
}

/// Everything `status` reports.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    /// The database file.
    pub database: PathBuf,
    /// The `alembic_version` rows (`None`: no table).
    pub rows: Option<Vec<RevisionId>>,
    /// Where that puts the database.
    pub position: Position,
    /// The history's heads.
    pub heads: Vec<RevisionId>,
    /// The comparison with the reference, when one could be had.
    pub comparison: Option<Comparison>,
    /// Why the reference could not be built, if it could not.
    pub replay_failure: Option<ReplayFailure>,
    /// What is wrong, from the history, the capture and the comparison.
    pub findings: Vec<Finding>,
}

impl StatusReport {
    /// Whether the schema means what the reference of the stamped revisions
    /// (or an accepted variant of it) means: differences of form (column
    /// order, constraint names) do not count. `None` when it could not be
    /// compared, or compared only with an inferred revision (the stamp is
    /// unknown, so nothing can match it).
    pub fn schema_matches(&self) -> Option<bool> {
        self.comparison
            .as_ref()
            .filter(|c| !c.inferred)
            .map(|c| c.drift.is_empty() || c.drift.is_form_only())
    }
}

/// Compares `schema` with the reference for `targets` and its accepted
/// variants, building the reference if needed. `Ok(None)` when a migration
/// failed during the replay (the failure is returned beside it).
pub fn compare(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    targets: &[RevisionId],
    schema: &Schema,
    semantic: SchemaHash,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<(Option<Comparison>, Option<ReplayFailure>), ReplayError> {
    let (reference, report) = replayer.reference(repo, targets, on_event)?;
    let Some(reference) = reference else {
        return Ok((None, report.failure));
    };
    let same = Recorded::from_snapshot(&reference.snapshot).schema_semantic == Some(semantic);
    let variant = if same {
        None
    } else {
        accepted(repo, replayer, targets)?
            .into_iter()
            .find(|(_, s)| *s == semantic)
            .map(|(id, _)| id)
    };
    let drift = if same || variant.is_some() {
        SchemaDiff::default()
    } else {
        diff::diff(&reference.schema(repo)?, schema)
    };
    Ok((
        Some(Comparison {
            targets: targets.to_vec(),
            reference: reference.id,
            variant,
            drift,
            inferred: false,
        }),
        None,
    ))
}

/// The revision(s) a schema is nearest to, as `locate` finds them over
/// every reference (built if needed): the latest exact match, else the
/// reference with the fewest differences. `None` when no reference could
/// be built (the replay's failure is returned beside it).
pub fn nearest(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    live: &LiveDatabase,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<(Option<Vec<RevisionId>>, Option<ReplayFailure>), ReplayError> {
    let located = locate(
        repo,
        replayer,
        graph,
        &live.schema,
        live.semantic,
        None,
        on_event,
    )?;
    let targets = closest(&located).map(|c| c.targets.clone());
    Ok((targets, located.replay_failure))
}

/// [`compare`] with the revision(s) [`nearest`] finds, for a database whose
/// version rows name a revision no script declares: there is no reference
/// for the stamp itself, and comparing with nothing would hide which
/// objects are extra.
fn compare_nearest(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    live: &LiveDatabase,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<(Option<Comparison>, Option<ReplayFailure>), ReplayError> {
    let (targets, failure) = nearest(repo, replayer, graph, live, on_event)?;
    let Some(targets) = targets else {
        return Ok((None, failure));
    };
    let (comparison, failure) = compare(
        repo,
        replayer,
        &targets,
        &live.schema,
        live.semantic,
        on_event,
    )?;
    Ok((
        comparison.map(|c| Comparison {
            inferred: true,
            ..c
        }),
        failure,
    ))
}

/// Works out the status of `live` against `graph`.
pub fn status(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    live: &LiveDatabase,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<StatusReport, ReplayError> {
    let rows = stamped(replayer.project().kind, &live.meta, graph);
    let position = position::classify(graph, rows.as_deref());
    let mut findings: Vec<Finding> = graph.findings().to_vec();
    findings.extend(live.findings.iter().cloned());
    let db = live.path.display().to_string();
    findings.extend(position_finding(&position, &db));

    let comparable = matches!(
        position,
        Position::AtHeads | Position::Behind { .. } | Position::OnSomeBranches { .. }
    ) && rows.as_ref().is_some_and(|r| !r.is_empty());
    let (comparison, replay_failure) = if comparable {
        let targets = rows.clone().unwrap_or_default();
        compare(
            repo,
            replayer,
            &targets,
            &live.schema,
            live.semantic,
            on_event,
        )?
    } else if let Position::UnknownRevision { .. } = position {
        compare_nearest(repo, replayer, graph, live, on_event)?
    } else {
        (None, None)
    };
    let mut replay_failure = replay_failure;
    if let Some(failure) = &mut replay_failure {
        failure.confirm_outside(&live.path, &live.schema);
        findings.push(replay_failure_finding(failure));
    }
    if let Some(comparison) = &comparison {
        comparison_findings(comparison, &db, &mut findings);
    }
    Ok(StatusReport {
        database: live.path.clone(),
        rows,
        position,
        heads: graph.heads(),
        comparison,
        replay_failure,
        findings,
    })
}

/// What is wrong with where the database `db` stands, if anything.
fn position_finding(position: &Position, db: &str) -> Option<Finding> {
    let pending = position.pending().join(", ");
    Some(match position {
        Position::AtHeads => return None,
        Position::Unversioned => Finding::new(
            codes::UNVERSIONED,
            // `alembic upgrade` would try to create every table again.
            Severity::Error,
            db,
            format!("{db} has no alembic_version table"),
        )
        .hint("`migsnap fix` finds the revision the schema is and records it, verified"),
        Position::Behind { pending: list } => Finding::new(
            codes::BEHIND,
            Severity::Warning,
            db,
            format!("{} revision(s) pending: {pending}", list.len()),
        )
        .hint("`alembic upgrade heads` (take a snapshot first, or use `migsnap guard`)"),
        Position::OnSomeBranches { untracked_heads, .. } => Finding::new(
            codes::ON_SOME_BRANCHES,
            Severity::Warning,
            db,
            format!(
                "the database follows some branches only; not applied: {}",
                untracked_heads.join(", ")
            ),
        )
        .hint("`alembic upgrade heads` applies every branch"),
        Position::UnknownRevision { unknown } => Finding::new(
            codes::UNKNOWN_REVISION,
            Severity::Error,
            unknown.join(", "),
            format!(
                "alembic_version names {}, which no migration script declares",
                unknown.join(", ")
            ),
        )
        .hint("the scripts may be from another branch or version of the app; `migsnap fix` finds the nearest revision and plans the way there"),
        Position::Inconsistent {
            ancestor,
            descendant,
        } => Finding::new(
            codes::INCONSISTENT,
            Severity::Error,
            format!("{ancestor}, {descendant}"),
            format!("alembic_version holds both {ancestor} and its descendant {descendant}"),
        )
        .revision(ancestor)
        .hint("Alembic never writes this; `migsnap fix` finds the right revision and records it, verified"),
    })
}

/// The finding for a reference that could not be built: the base
/// revision's tables made outside Alembic (the file is not to blame), or a
/// migration that failed.
fn replay_failure_finding(failure: &ReplayFailure) -> Finding {
    if failure.outside_alembic.is_some() {
        return Finding::new(
            codes::NEEDS_BOOTSTRAP,
            Severity::Error,
            &failure.revision,
            failure.summary(),
        )
        .revision(&failure.revision)
        .hint(BOOTSTRAP_HINT);
    }
    let mut finding = Finding::new(
        codes::REPLAY_FAILED,
        Severity::Error,
        &failure.revision,
        format!(
            "the reference for {} could not be built: {}",
            failure.revision, failure.failure.error
        ),
    )
    .revision(&failure.revision)
    .hint("`migsnap replay` shows the whole error; fix the migration or its environment");
    if let Some(file) = &failure.file {
        finding.file = Some(file.clone());
    }
    finding
}

/// Adds what the comparison of the database `db` with its reference found
/// to `findings`, and drops the artefact findings the reference explains.
fn comparison_findings(comparison: &Comparison, db: &str, findings: &mut Vec<Finding>) {
    // An object the reference has is part of the schema, never an
    // artefact: of the tables the heuristics flag, only those the
    // reference lacks (the extra tables of the drift) stay flagged.
    let extra: HashSet<String> = comparison
        .drift
        .changes
        .iter()
        .filter(|c| c.op == Op::Added && c.kind == ChangeKind::Table)
        .map(|c| fold(&c.name))
        .collect();
    forget_artefacts(findings, |table| !extra.contains(&fold(table)));
    let revision = comparison.targets.join(" + ");
    let tally = comparison.drift.tally();
    if tally.definition() > 0 {
        let counts = format!(
            "{} missing, {} extra, {} changed",
            tally.removed, tally.added, tally.changed
        );
        findings.push(
            Finding::new(
                codes::DRIFT,
                Severity::Error,
                db,
                if comparison.inferred {
                    format!(
                        "the stamped revision is unknown; compared with the nearest revision, {revision}: {counts}"
                    )
                } else {
                    format!("the schema does not match revision {revision}: {counts}")
                },
            )
            .revision(comparison.targets.join(" "))
            .hint("`migsnap fix` plans the fix: which revision the schema really is, and the steps"),
        );
    }
    let against = if comparison.inferred {
        format!("the nearest revision, {revision}")
    } else {
        format!("revision {revision}")
    };
    findings.extend(
        form_findings(&comparison.drift, &against)
            .into_iter()
            .map(|f| f.revision(comparison.targets.join(" "))),
    );
}
