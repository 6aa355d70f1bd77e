//! The built-in bisect's predicates: over snapshots (is this one drifted?)
//! and over revisions (which one first made the defect `locate` shows).

use std::collections::HashMap;

use migsnap_store::ObjectId;
use serde::Serialize;

use crate::migrations::bisect::{self, Bisection, Next, Verdict};
use crate::migrations::history::graph::{Graph, ResolveError, Resolved};
use crate::migrations::history::position::{self, Position};
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::replay::{ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::repo::Repo;
use crate::schema::Schema;
use crate::schema::diff::{self, Change, ChangeKind, Op, SchemaDiff};
use crate::snapshots::log::snapshot_schema;
use crate::snapshots::snapshot::Recorded;

use super::accept::accepted;
use super::locate::{closest, is_defect, locate, same_defect, same_object};
use super::{LiveDatabase, stamped};

/// The first bad item of a built-in bisection, explained.
#[derive(Clone, Debug, Serialize)]
pub struct FirstBad {
    /// The revisions it recorded.
    pub targets: Vec<RevisionId>,
    /// Those of them no migration script declares.
    pub unknown: Vec<RevisionId>,
    /// With an unknown revision recorded: the revisions it is compared with
    /// instead, the ones its schema matches or is nearest to (there is no
    /// reference for a revision the scripts lack).
    pub compared_with: Option<Vec<RevisionId>>,
    /// How it differs from the reference it is compared with.
    pub drift: SchemaDiff,
    /// The revisions its schema matches instead.
    pub matches: Vec<Vec<RevisionId>>,
}

/// How a built-in bisection over a database's snapshots ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotOutcomeKind {
    /// The first drifted snapshot is known.
    Found,
    /// Only snapshots that recorded no revision are left; one of them is
    /// the first drifted one.
    OnlySkipped,
    /// The newest snapshot matches its reference.
    NoDrift,
}

/// What a built-in bisection over a database's snapshots found.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotBisect {
    /// The outcome.
    pub outcome: SnapshotOutcomeKind,
    /// The first snapshot that drifted.
    pub first_bad: Option<ObjectId>,
    /// The snapshot before it, which matched.
    pub last_good: Option<ObjectId>,
    /// With only skipped snapshots left: where the first bad one may be.
    pub candidates: Vec<ObjectId>,
    /// How many snapshots were judged.
    pub tested: usize,
    /// The first bad snapshot, explained.
    pub explained: Option<FirstBad>,
}

/// Judges a recorded snapshot with the built-in drift predicate: good when
/// its schema matches the reference (or an accepted variant) of the
/// revisions it recorded, or differs from it in form only; bad when it does
/// not or names revisions the scripts lack; skipped when it recorded no
/// revision at all. Reads the snapshot and schema objects only, never data
/// pages.
pub fn snapshot_verdict(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    id: &ObjectId,
    snapshot: &migsnap_store::Snapshot,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<(Verdict, Option<Vec<RevisionId>>), ReplayError> {
    let recorded = Recorded::from_snapshot(snapshot);
    let Some(rows) = stamped(replayer.project().kind, &recorded.meta, graph) else {
        return Ok((Verdict::Skip, None));
    };
    let semantic = match &recorded.schema_semantic {
        Some(s) => *s,
        None => snapshot_schema(repo.store.view(), *id, snapshot)?.semantic_hash(),
    };
    if rows.is_empty() {
        let empty = Schema::default().semantic_hash();
        let verdict = if semantic == empty {
            Verdict::Good
        } else {
            Verdict::Bad
        };
        return Ok((verdict, Some(rows)));
    }
    if !matches!(
        position::classify(graph, Some(&rows)),
        Position::AtHeads | Position::Behind { .. } | Position::OnSomeBranches { .. }
    ) {
        return Ok((Verdict::Bad, Some(rows)));
    }
    let (reference, report) = replayer.reference(repo, &rows, on_event)?;
    let Some(reference) = reference else {
        // No reference to judge by: a migration fails in replay.
        let _ = report;
        return Ok((Verdict::Skip, Some(rows)));
    };
    let matches_reference =
        Recorded::from_snapshot(&reference.snapshot).schema_semantic == Some(semantic);
    let good = matches_reference
        || accepted(repo, replayer, &rows)?
            .iter()
            .any(|(_, s)| *s == semantic)
        // A difference of form only is no drift, as in `status`.
        || {
            let schema = snapshot_schema(repo.store.view(), *id, snapshot)?;
            diff::diff(&reference.schema(repo)?, &schema).is_form_only()
        };
    let verdict = if good { Verdict::Good } else { Verdict::Bad };
    Ok((verdict, Some(rows)))
}

/// Finds the first snapshot in `line` (oldest first, a first-parent line)
/// whose schema no longer matches the reference for the revision it
/// recorded.
pub fn bisect_snapshots(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    line: Vec<ObjectId>,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<SnapshotBisect, ReplayError> {
    let mut tested = 0;
    let mut judge = |repo: &mut Repo, id: &ObjectId| -> Result<Verdict, ReplayError> {
        tested += 1;
        let snapshot = repo.store.view().read_snapshot(id)?;
        Ok(snapshot_verdict(repo, replayer, graph, id, &snapshot, on_event)?.0)
    };
    let Some(newest) = line.last().copied() else {
        return Ok(SnapshotBisect {
            outcome: SnapshotOutcomeKind::NoDrift,
            first_bad: None,
            last_good: None,
            candidates: Vec::new(),
            tested: 0,
            explained: None,
        });
    };
    let newest_verdict = judge(repo, &newest)?;
    if newest_verdict != Verdict::Bad {
        return Ok(SnapshotBisect {
            outcome: SnapshotOutcomeKind::NoDrift,
            first_bad: None,
            last_good: None,
            candidates: Vec::new(),
            tested,
            explained: None,
        });
    }
    let mut bisection = Bisection::with_open_start(line);
    bisection
        .mark(&newest, Verdict::Bad)
        .expect("holds: the newest snapshot is on the line");
    let next = bisect::search(bisection, |id| judge(repo, id))?;
    let mut result = SnapshotBisect {
        outcome: SnapshotOutcomeKind::OnlySkipped,
        first_bad: None,
        last_good: None,
        candidates: Vec::new(),
        tested,
        explained: None,
    };
    match next {
        Next::Found {
            first_bad,
            last_good,
        } => {
            result.outcome = SnapshotOutcomeKind::Found;
            result.first_bad = Some(first_bad);
            result.last_good = last_good;
            result.explained = Some(explain_snapshot(repo, replayer, graph, &first_bad)?);
        }
        Next::OnlySkipped { candidates } => result.candidates = candidates,
        other => unreachable!("BUG: a search with a bad end always settles, got {other:?}"),
    }
    Ok(result)
}

/// How a bad snapshot differs from its reference, and what it matches. A
/// snapshot that recorded a revision the scripts lack has no reference: it
/// is compared with the revision(s) its schema matches or is nearest to,
/// rather than with an empty schema (which shows every object as extra).
fn explain_snapshot(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    id: &ObjectId,
) -> Result<FirstBad, ReplayError> {
    let snapshot = repo.store.view().read_snapshot(id)?;
    let recorded = Recorded::from_snapshot(&snapshot);
    let schema = snapshot_schema(repo.store.view(), *id, &snapshot)?;
    let semantic = schema.semantic_hash();
    let targets = stamped(replayer.project().kind, &recorded.meta, graph).unwrap_or_default();
    let unknown = unknown_revisions(graph, &targets);
    let located = locate(repo, replayer, graph, &schema, semantic, None, &mut |_| {})?;
    let (compared_with, drift) = if !unknown.is_empty() {
        match closest(&located) {
            Some(candidate) => (Some(candidate.targets.clone()), candidate.drift.clone()),
            None => (None, SchemaDiff::default()),
        }
    } else {
        let drift = match replayer.cached(repo, &targets)? {
            Some(reference) if !targets.is_empty() => diff::diff(&reference.schema(repo)?, &schema),
            _ => diff::diff(&Schema::default(), &schema),
        };
        (None, drift)
    };
    Ok(FirstBad {
        targets,
        unknown,
        compared_with,
        drift,
        matches: located.exact.into_iter().map(|c| c.targets).collect(),
    })
}

/// The revisions of `targets` that no migration script declares.
fn unknown_revisions(graph: &Graph, targets: &[RevisionId]) -> Vec<RevisionId> {
    targets
        .iter()
        .filter(|t| graph.get(t).is_none())
        .cloned()
        .collect()
}

/// What a bisection along the revision chain found.
#[derive(Clone, Debug, Serialize)]
pub struct RevisionBisect {
    /// The revision the chain ends at: `--to`, else the stamped revision,
    /// else the only head, else (with an unknown stamp) `compared_with`.
    pub tip: RevisionId,
    /// Stamped revisions that no migration script declares.
    pub unknown: Vec<RevisionId>,
    /// With an unknown stamp and no `--to`: the revision the schema matches
    /// or is nearest to, which the chain ends at instead.
    pub compared_with: Option<RevisionId>,
    /// The revisions bisected, oldest first.
    pub line: Vec<RevisionId>,
    /// The first revision after which the database shows a defect it shows
    /// against the tip: something of that revision's reference it lacks or
    /// contradicts. `None` when it shows none against the tip.
    pub first_bad: Option<RevisionId>,
    /// The revision before it, which the database has in full (as far as
    /// the tip's defects go); `None` when the first revision is bad.
    pub last_good: Option<RevisionId>,
    /// The defects the first bad revision introduces, against its reference.
    pub drift: Option<SchemaDiff>,
    /// What the database has beyond the tip's reference (extra objects and
    /// columns): no revision is bad for it.
    pub extra: SchemaDiff,
    /// The extra objects an earlier revision along the chain had: which
    /// revision dropped (or renamed) them. The rest no revision made.
    pub dropped: Vec<Dropped>,
    /// How many revisions were judged.
    pub tested: usize,
}

/// An extra object of the database that a revision along the chain had
/// and a later one dropped or renamed: a drop the database missed.
#[derive(Clone, Debug, Serialize)]
pub struct Dropped {
    /// The kind of object.
    pub kind: ChangeKind,
    /// Its table, for parts of a table and for indexes and triggers.
    pub table: Option<String>,
    /// Its name.
    pub name: String,
    /// The last revision whose reference has it.
    pub last_had: RevisionId,
    /// The revision after that one, which dropped or renamed it.
    pub dropped_by: RevisionId,
}

/// The difference from the reference of revision `id` to `live`, each
/// revision diffed once.
fn drift_against(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    live: &Schema,
    judged: &mut HashMap<RevisionId, SchemaDiff>,
    id: &str,
) -> Result<SchemaDiff, ReplayError> {
    if let Some(drift) = judged.get(id) {
        return Ok(drift.clone());
    }
    let reference = replayer
        .cached(repo, &[id.into()])?
        .expect("holds: the tip's closure was replayed first");
    let drift = diff::diff(&reference.schema(repo)?, live);
    judged.insert(id.into(), drift.clone());
    Ok(drift)
}

/// Why a revision bisection stopped without an answer: the chain to
/// bisect is missing, or replaying a reference failed to run at all.
#[derive(Debug)]
pub enum RevisionBisectError {
    /// There is no chain of revisions to bisect.
    NoChain(NoChain),
    /// Replay could not run (an environment or I/O failure, not a failing
    /// migration).
    Replay(ReplayError),
}

impl From<NoChain> for RevisionBisectError {
    fn from(no_chain: NoChain) -> Self {
        RevisionBisectError::NoChain(no_chain)
    }
}

impl From<ReplayError> for RevisionBisectError {
    fn from(error: ReplayError) -> Self {
        RevisionBisectError::Replay(error)
    }
}

/// Why there is no chain of revisions to bisect.
#[derive(Clone, Debug)]
pub enum NoChain {
    /// A migration failed in replay, so the references are missing.
    Failed(Box<ReplayFailure>),
    /// No single revision to end the chain at: the database records several
    /// or none and the history has several heads, or its unknown stamp is
    /// nearest to several revisions together.
    Ambiguous,
    /// The revision the chain should end at does not resolve.
    Unresolved(ResolveError),
    /// The revision the chain should end at names several revisions, or
    /// `base`, rather than one.
    NotOneRevision {
        /// The name given.
        name: String,
    },
}

/// Bisects the first-parent revision chain that ends at `to` (a revision
/// name as a user types it; default: the stamped revision, else the only
/// head; with an unknown stamp, the revision the schema is nearest to)
/// against the live database.
///
/// Revision R is bad when the database shows, against R's reference, a
/// defect it shows against the tip's: the same object missing, or the same
/// field contradicted. A column missing at the tip is then first missing
/// after the revision that added it. Judging each reference on its own
/// (does the database lack anything of it?) is wrong: every revision whose
/// objects a later one alters or drops looks bad, down to the base.
pub fn bisect_revisions(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    live: &LiveDatabase,
    to: Option<&str>,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<RevisionBisect, RevisionBisectError> {
    let rows = stamped(replayer.project().kind, &live.meta, graph).unwrap_or_default();
    let unknown = unknown_revisions(graph, &rows);
    let (tip, compared_with) = chain_tip(repo, replayer, graph, live, to, &rows, on_event)?;
    let line = first_parent_line(graph, &tip);
    let (_, report) = replayer.reference(repo, std::slice::from_ref(&tip), on_event)?;
    if let Some(failure) = report.failure {
        return Err(NoChain::Failed(Box::new(failure)).into());
    }
    let mut judged: HashMap<RevisionId, SchemaDiff> = HashMap::new();
    let (defects, extra): (Vec<Change>, Vec<Change>) =
        drift_against(repo, replayer, &live.schema, &mut judged, &tip)?
            .changes
            .into_iter()
            .partition(is_defect);
    let mut found = RevisionBisect {
        tip: tip.clone(),
        unknown,
        compared_with,
        line: line.clone(),
        first_bad: None,
        last_good: None,
        drift: None,
        extra: SchemaDiff { changes: extra },
        dropped: Vec::new(),
        tested: 1,
    };
    if !defects.is_empty() {
        let (first_bad, last_good, drift) =
            first_bad(repo, replayer, &live.schema, &mut judged, &line, &defects)?;
        found.drift = Some(drift);
        found.tested = judged.len();
        found.first_bad = Some(first_bad);
        found.last_good = last_good;
    }
    found.dropped = dropped(
        repo,
        replayer,
        &live.schema,
        &mut judged,
        &line,
        &found.extra,
    )?;
    Ok(found)
}

/// The revision the chain ends at, and with an unknown stamp in `rows`
/// and no `to`, the revision the schema is nearest to (which that tip is).
fn chain_tip(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    live: &LiveDatabase,
    to: Option<&str>,
    rows: &[RevisionId],
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<(RevisionId, Option<RevisionId>), RevisionBisectError> {
    Ok(match to {
        Some(name) => match graph.resolve(name) {
            Ok(Resolved::Revisions(ids)) if ids.len() == 1 => (ids[0].clone(), None),
            Ok(_) => {
                return Err(NoChain::NotOneRevision {
                    name: name.to_owned(),
                }
                .into());
            }
            Err(e) => return Err(NoChain::Unresolved(e).into()),
        },
        None if !unknown_revisions(graph, rows).is_empty() => {
            let located = locate(
                repo,
                replayer,
                graph,
                &live.schema,
                live.semantic,
                None,
                on_event,
            )?;
            match closest(&located).map(|c| c.targets.as_slice()) {
                Some([one]) => (one.clone(), Some(one.clone())),
                Some(_) => return Err(NoChain::Ambiguous.into()),
                None => {
                    return Err(match located.replay_failure {
                        Some(failure) => NoChain::Failed(Box::new(failure)),
                        None => NoChain::Ambiguous,
                    }
                    .into());
                }
            }
        }
        None => match (rows, graph.heads().as_slice()) {
            ([one], _) | ([], [one]) => (one.clone(), None),
            _ => return Err(NoChain::Ambiguous.into()),
        },
    })
}

/// The first-parent chain of revisions that ends at `tip`, oldest first.
fn first_parent_line(graph: &Graph, tip: &str) -> Vec<RevisionId> {
    let mut line = vec![RevisionId::from(tip)];
    while let Some(parent) = graph
        .get(line.last().expect("holds: the line starts non-empty"))
        .and_then(|r| r.parents.first())
    {
        if line.contains(parent) {
            break;
        }
        line.push(parent.clone());
    }
    line.reverse();
    line
}

/// The changes of `drift` that are defects the database also shows against
/// the tip (`defects`).
fn shared(defects: &[Change], drift: SchemaDiff) -> Vec<Change> {
    drift
        .changes
        .into_iter()
        .filter(|c| defects.iter().any(|d| same_defect(d, c)))
        .collect()
}

/// Bisects `line`, whose last revision (the tip) shows `defects`: the first
/// bad revision, the last good one, and the defects the first bad one
/// introduces.
fn first_bad(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    live: &Schema,
    judged: &mut HashMap<RevisionId, SchemaDiff>,
    line: &[RevisionId],
    defects: &[Change],
) -> Result<(RevisionId, Option<RevisionId>, SchemaDiff), ReplayError> {
    let tip = line.last().expect("holds: the line ends at the tip");
    let mut bisection = Bisection::with_open_start(line.to_vec());
    bisection
        .mark(tip, Verdict::Bad)
        .expect("holds: the tip is on the line");
    let next = bisect::search(bisection, |id| {
        let drift = drift_against(repo, replayer, live, judged, id)?;
        Ok::<_, ReplayError>(if shared(defects, drift).is_empty() {
            Verdict::Good
        } else {
            Verdict::Bad
        })
    })?;
    let Next::Found {
        first_bad,
        last_good,
    } = next
    else {
        unreachable!("BUG: without skips a search with a bad end finds the first bad")
    };
    let drift = SchemaDiff {
        changes: shared(
            defects,
            drift_against(repo, replayer, live, judged, &first_bad)?,
        ),
    };
    Ok((first_bad, last_good, drift))
}

/// Which revision along `line` dropped (or renamed) each extra object of
/// `extra` that an earlier revision had.
fn dropped(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    live: &Schema,
    judged: &mut HashMap<RevisionId, SchemaDiff>,
    line: &[RevisionId],
    extra: &SchemaDiff,
) -> Result<Vec<Dropped>, ReplayError> {
    let mut dropped = Vec::new();
    // An extra object is not extra against a reference that has it: the
    // newest such revision is the last that had it. A plain scan, newest
    // first; each reference is diffed once however many objects there are.
    for change in extra.changes.iter().filter(|c| c.op == Op::Added) {
        for (at, id) in line.iter().enumerate().rev().skip(1) {
            let has = !drift_against(repo, replayer, live, judged, id)?
                .changes
                .iter()
                .any(|c| c.op == Op::Added && same_object(change, c));
            if has {
                dropped.push(Dropped {
                    kind: change.kind,
                    table: change.table.clone(),
                    name: change.name.clone(),
                    last_had: id.clone(),
                    dropped_by: line[at + 1].clone(),
                });
                break;
            }
        }
    }
    Ok(dropped)
}
