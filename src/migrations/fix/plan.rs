//! The planner: from the position, the comparison with the stamped
//! revisions' reference and `locate`, the one fix to recommend.

use std::time::Duration;

use crate::finding::{Finding, Severity};
use crate::migrations::adopt;
use crate::migrations::drift::{self, LiveDatabase, StatusReport};
use crate::migrations::history::data_steps;
use crate::migrations::history::graph::{Graph, Revision};
use crate::migrations::history::position::{self, Position};
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::models;
use crate::migrations::repair;
use crate::migrations::replay::{ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::repo::Repo;
use crate::schema::diff::{Change, ChangeKind, Op, SchemaDiff};
use crate::snapshots::sqlite::Database;

use super::{FixClass, FixOption, FixPlan, FixStep, codes};

/// Plans the fix of `live` against `graph`: builds the references it needs
/// (`on_event` hears of each replay step) and changes nothing; counting the
/// rows of extra tables waits up to `busy_timeout` for a writer.
pub fn plan(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    live: &LiveDatabase,
    busy_timeout: Duration,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<FixPlan, ReplayError> {
    let status = drift::status(repo, replayer, graph, live, on_event)?;
    let mut plan = FixPlan {
        database: live.path.clone(),
        rows: status.rows.clone(),
        position: status.position.clone(),
        class: FixClass::Healthy,
        anchor: None,
        drift: SchemaDiff::default(),
        reason: String::new(),
        steps: Vec::new(),
        options: Vec::new(),
        findings: Vec::new(),
    };
    let heads = graph.heads();
    if heads.len() > 1 {
        let reason = format!(
            "the history has {} heads ({}): that is fixed in the migration files, not in the database; \
             re-point the newer branch's first down_revision at the other head, or `alembic merge` \
             them when both have shipped (`migsnap history` shows the fork), then run `migsnap fix` again",
            heads.len(),
            heads
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        );
        return Ok(plan.decided(FixClass::MultipleHeads, reason));
    }
    if let Some(failure) = &status.replay_failure {
        return Ok(plan.decided(FixClass::Unsure, replay_failed(failure)));
    }
    if let Some(decided) = stamped_is_right(&status, &mut plan) {
        return models_ahead(repo, replayer, graph, decided, on_event);
    }
    let located = drift::locate(
        repo,
        replayer,
        graph,
        &live.schema,
        live.semantic,
        status.rows.clone(),
        on_event,
    )?;
    if let (Some(first), Some(last)) = (located.exact.first(), located.exact.last()) {
        // Revisions that only move rows leave the schema as it was, so the
        // schema matches each of them alike; whether their rows moved is
        // for a person to check.
        let moved = data_steps::between(graph, &first.targets, &last.targets);
        if !moved.is_empty() {
            return Ok(rows_undecided(plan, &first.targets, &last.targets, &moved));
        }
        return Ok(misstamped(plan, graph, last.targets.clone()));
    }
    // No revision is exactly this schema: fix the differences from the
    // stamped revisions' reference when there is one, else from the
    // nearest reference.
    let (anchor, residual) = match (&status.comparison, &located.nearest) {
        (Some(comparison), _) => (comparison.targets.clone(), comparison.drift.clone()),
        (None, Some(nearest)) => (nearest.targets.clone(), nearest.drift.clone()),
        (None, None) => {
            let reason = "no revision's reference is near this schema; compare it with \
                          `migsnap locate` before changing anything"
                .to_owned();
            return Ok(plan.decided(FixClass::Unsure, reason));
        }
    };
    let (anchor, residual) = match later_anchor(repo, replayer, graph, live, &anchor, &residual)? {
        Some((later, drift)) => {
            // Repair would reach the later revision by DDL alone.
            let skipped = data_steps::between(graph, &anchor, &later);
            if !skipped.is_empty() {
                let reason = format!(
                    "objects made by hand belong to revision {}, and reaching it by repair would skip \
                     the data steps of {}; drop the hand-made objects and upgrade, or run those steps \
                     by hand before `migsnap repair --to {}`",
                    later.join(" + "),
                    skipped
                        .iter()
                        .map(|r| r.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    later.join(" --to ")
                );
                plan.anchor = Some(later);
                plan.drift = drift;
                return Ok(plan.decided(FixClass::Unsure, reason));
            }
            (later, drift)
        }
        None => (anchor, residual),
    };
    let inputs = Inputs {
        repo,
        replayer,
        graph,
        live,
        busy_timeout,
    };
    drifted(plan, inputs, anchor, residual)
}

/// Why nothing can be fixed while the reference cannot be built: the base
/// revision's tables are made outside Alembic (configure a bootstrap), or
/// a migration fails (fix it first).
fn replay_failed(failure: &ReplayFailure) -> String {
    if failure.outside_alembic.is_some() {
        format!(
            "{}, so there is no reference to fix towards: {}",
            failure.summary(),
            drift::BOOTSTRAP_HINT
        )
    } else {
        format!(
            "revision {} fails in replay ({}), so there is no reference to fix towards; \
             fix the migration first (`migsnap replay` shows the error)",
            failure.revision, failure.failure.error
        )
    }
}

/// When objects extra against `anchor` are what a later revision makes (a
/// fix script created some of a later revision's tables by hand), the
/// first later revision whose reference has every one of them, with the
/// difference from it: there, nothing is extra, and the upgrade will not
/// meet "table already exists". `None` when nothing is extra or no later
/// revision explains it all.
fn later_anchor(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    live: &LiveDatabase,
    anchor: &[RevisionId],
    residual: &SchemaDiff,
) -> Result<Option<(Vec<RevisionId>, SchemaDiff)>, ReplayError> {
    let extra = |drift: &SchemaDiff| {
        drift
            .changes
            .iter()
            .any(|c| c.op == Op::Added && !c.meaning.is_form())
    };
    if !extra(residual) {
        return Ok(None);
    }
    let applied = graph.closure(anchor.iter().map(RevisionId::as_str));
    for id in graph.topological() {
        if applied.contains(&id) || !graph.ancestors(&id).iter().any(|a| applied.contains(a)) {
            continue;
        }
        let targets = vec![id];
        let Some(reference) = replayer.cached(repo, &targets)? else {
            continue;
        };
        let drift = crate::schema::diff::diff(&reference.schema(repo)?, &live.schema);
        if !extra(&drift) {
            return Ok(Some((targets, drift)));
        }
    }
    Ok(None)
}

/// The plan when the schema is what the version rows say: nothing to do,
/// or only the upgrade. `None` when it is not.
fn stamped_is_right(status: &StatusReport, plan: &mut FixPlan) -> Option<FixPlan> {
    if status.schema_matches() != Some(true) {
        return None;
    }
    let rows = status.rows.clone().unwrap_or_default();
    plan.anchor = Some(rows.clone());
    let revision = rows.join(" + ");
    Some(match &status.position {
        Position::AtHeads => plan.clone().decided(
            FixClass::Healthy,
            format!("the schema is that of its revision {revision}, and nothing is pending"),
        ),
        _ => {
            let pending = status.position.pending().len();
            let mut plan = plan.clone();
            plan.steps = vec![FixStep::Upgrade];
            plan.decided(
                FixClass::Behind,
                format!(
                    "the schema is that of its revision {revision} and {pending} revision(s) are pending: \
                     the project's upgrade applies them"
                ),
            )
        }
    })
}

/// `decided` (the database is what its history makes), or, when the
/// models declare tables or columns no migration creates, the plan that
/// writes their revision from the models and upgrades.
fn models_ahead(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    mut decided: FixPlan,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<FixPlan, ReplayError> {
    let Some(comparison) = models::compare(repo, replayer, graph, on_event)? else {
        return Ok(decided);
    };
    if comparison.failure.is_some() || comparison.missing_in_migrations.is_empty() {
        return Ok(decided);
    }
    let mut tables: Vec<String> = Vec::new();
    for field in &comparison.missing_in_migrations {
        if !tables.contains(&field.table) {
            tables.push(field.table.clone());
        }
    }
    let fields: Vec<String> = comparison
        .missing_in_migrations
        .iter()
        .map(|f| f.describe())
        .collect();
    decided.findings.clear();
    decided.steps = vec![
        FixStep::AdoptModels {
            message: format!("from the models: {}", tables.join(", ")),
            tables: tables.clone(),
        },
        FixStep::Upgrade,
    ];
    let reason = format!(
        "the schema is what its history makes, but the models declare {}, which no migration \
         creates: write a revision for {} from the models (one feature's tables per revision: \
         name them with `migsnap adopt --from-models --tables`), then upgrade",
        fields.join(", "),
        tables.join(", ")
    );
    Ok(decided.decided(FixClass::ModelsAhead, reason))
}

/// The plan when the schema is exactly `located`'s and the version rows
/// say otherwise: record the truth, then let the migrations run.
fn misstamped(mut plan: FixPlan, graph: &Graph, located: Vec<RevisionId>) -> FixPlan {
    let revision = located.join(" + ");
    let said = said(&plan.position, plan.rows.as_deref());
    let upgrade = position::classify(graph, Some(&located)) != Position::AtHeads;
    plan.steps = vec![FixStep::Stamp {
        revisions: located.clone(),
    }];
    let then = if upgrade {
        plan.steps.push(FixStep::Upgrade);
        let moving: Vec<String> = data_steps::between(graph, &located, &graph.heads())
            .iter()
            .map(|r| format!("{} ({})", r.id, data_steps::summary(&r.data_steps)))
            .collect();
        let runs = if moving.is_empty() {
            String::new()
        } else {
            format!("; it runs the data steps of {}", moving.join(", "))
        };
        format!(
            "record it (verified), then upgrade, so that the migrations after it run for real{runs}"
        )
    } else {
        "record it (verified); nothing is pending after it".to_owned()
    };
    plan.anchor = Some(located);
    plan.decided(
        FixClass::Misstamped,
        format!("{said}, but the schema is exactly revision {revision}: {then}"),
    )
}

/// The plan when the schema is exactly that of `first` through `last`, and
/// revisions in between move rows: the schema cannot tell whether they ran.
fn rows_undecided(
    mut plan: FixPlan,
    first: &[RevisionId],
    last: &[RevisionId],
    moved: &[&Revision],
) -> FixPlan {
    let (first, last) = (first.join(" + "), last.join(" + "));
    let moved: Vec<String> = moved
        .iter()
        .map(|r| format!("{} ({})", r.id, data_steps::summary(&r.data_steps)))
        .collect();
    plan.anchor = None;
    let reason = format!(
        "the schema is that of every revision from {first} to {last}, and {} move rows without \
         changing the schema, so the schema cannot tell whether they ran; check the rows, then \
         `migsnap stamp --verify` {first} (to run them) or {last} (if they ran), and upgrade",
        moved.join(", ")
    );
    plan.decided(FixClass::Unsure, reason)
}

/// What the planner reads from, lent to the steps that need all of it.
struct Inputs<'r, 'a> {
    repo: &'r mut Repo,
    replayer: &'r Replayer<'a>,
    graph: &'r Graph,
    live: &'r LiveDatabase,
    busy_timeout: Duration,
}

/// The plan when the schema differs from the reference of `anchor` by
/// `residual`: repair what is missing, offer the ways out of what is
/// extra, then record `anchor` and upgrade.
fn drifted(
    mut plan: FixPlan,
    Inputs {
        repo,
        replayer,
        graph,
        live,
        busy_timeout,
    }: Inputs<'_, '_>,
    anchor: Vec<RevisionId>,
    residual: SchemaDiff,
) -> Result<FixPlan, ReplayError> {
    let definition: Vec<&Change> = residual
        .changes
        .iter()
        .filter(|c| !c.meaning.is_form())
        .collect();
    let missing = definition.iter().filter(|c| c.op != Op::Added).count();
    let extra: Vec<&Change> = definition
        .iter()
        .copied()
        .filter(|c| c.op == Op::Added)
        .collect();
    let revision = anchor.join(" + ");
    plan.anchor = Some(anchor.clone());
    plan.drift = residual.clone();
    if missing > 0 {
        let reference = replayer
            .cached(repo, &anchor)?
            .expect("holds: the anchor's reference was built by status or locate")
            .schema(repo)?;
        if repair::plan(&live.schema, &reference, false).destructive {
            let reason = format!(
                "bringing the schema to revision {revision} needs steps that can lose data; \
                 review them with `migsnap repair --to {}` before deciding",
                anchor.join(" --to ")
            );
            return Ok(plan.decided(FixClass::Unsure, reason));
        }
    }
    let mut tail = Vec::new();
    if plan.rows.as_deref() != Some(anchor.as_slice()) {
        tail.push(FixStep::Stamp {
            revisions: anchor.clone(),
        });
    }
    if position::classify(graph, Some(&anchor)) != Position::AtHeads {
        tail.push(FixStep::Upgrade);
    }
    let repair_step = (missing > 0).then(|| FixStep::Repair {
        towards: anchor.clone(),
    });
    // The sentence: what the rows say when it is not the anchor, what
    // differs, and what the steps after the repair do.
    let start = if plan.rows.as_deref() == Some(anchor.as_slice()) {
        format!("the schema is revision {revision} with differences")
    } else {
        format!(
            "{}; the schema is nearest to revision {revision}",
            said(&plan.position, plan.rows.as_deref())
        )
    };
    let then = match (tail.first(), tail.len()) {
        (None, _) => String::new(),
        (Some(FixStep::Upgrade), _) => ", then upgrade".to_owned(),
        (_, 1) => format!(", then record {revision} (verified)"),
        _ => format!(", then record {revision} (verified) and upgrade"),
    };
    if extra.is_empty() {
        plan.steps = repair_step.into_iter().chain(tail).collect();
        let reason = format!(
            "{start}: {missing} object(s) missing and nothing extra; repair adds them \
             (schema only, every row kept){then}"
        );
        return Ok(plan.decided(FixClass::MissingObjects, reason));
    }
    let options = ExtraObjects {
        live,
        busy_timeout,
        adopt_onto: adopt::destination(replayer.project(), graph)
            .ok()
            .map(|(head, _)| head),
        anchor: &anchor,
        extra: &extra,
    };
    plan.options = options
        .ways_out(repair_step, &tail)
        .map_err(ReplayError::from)?;
    plan.steps = plan.options[0].steps.clone();
    let names = extra
        .iter()
        .map(|c| shown(c))
        .collect::<Vec<_>>()
        .join(", ");
    let (class, repaired) = if missing > 0 {
        (
            FixClass::MissingAndExtraObjects,
            format!("{missing} object(s) missing, which repair adds; "),
        )
    } else {
        (FixClass::ExtraObjects, String::new())
    };
    let kept = if plan.options[0].name == ADOPT {
        let adopt = "adopt them into a new revision, so the history makes them too";
        match then.strip_prefix(", then ") {
            Some(before) => format!("; {before}, then {adopt}"),
            None => format!("; {adopt}"),
        }
    } else {
        format!(", kept as a valid variant so nothing is lost{then}")
    };
    let reason = format!(
        "{start}: {repaired}{} object(s) no revision makes ({names}){kept}",
        extra.len()
    );
    Ok(plan.decided(class, reason))
}

/// The option names of the ways out of extra objects.
const ADOPT: &str = "adopt";
const ACCEPT: &str = "accept";
const DROP: &str = "drop";

/// Extra objects of a database, beside the reference of `anchor`, and
/// what the ways out of them need to know.
struct ExtraObjects<'e> {
    live: &'e LiveDatabase,
    busy_timeout: Duration,
    /// The head an adopted revision would build on; `None` when the
    /// project cannot take one (a SQL folder, several heads).
    adopt_onto: Option<RevisionId>,
    anchor: &'e [RevisionId],
    extra: &'e [&'e Change],
}

impl ExtraObjects<'_> {
    /// The ways out, the recommended one first, each followed by `tail`:
    /// adopt them into a new revision (recommended for a hand-made table:
    /// a feature, which every copy of the database should get), accept
    /// them as a variant (recommended for indexes and columns alone: a
    /// local tweak), or drop them (their rows are counted first).
    fn ways_out(
        &self,
        repair_step: Option<FixStep>,
        tail: &[FixStep],
    ) -> Result<Vec<FixOption>, crate::snapshots::sqlite::SqliteError> {
        let db = Database::open(&self.live.path, self.busy_timeout)?;
        let tables: Vec<&str> = self
            .extra
            .iter()
            .filter(|c| c.kind == ChangeKind::Table)
            .map(|c| c.name.as_str())
            .collect();
        let mut rows = 0;
        for table in &tables {
            rows += db.row_count(table)?;
        }
        let objects: Vec<String> = self.extra.iter().map(|c| shown(c)).collect();
        let revision = self.anchor.join(" + ");
        let before = || repair_step.iter().cloned();
        let accept = FixOption {
            name: ACCEPT,
            steps: before()
                .chain([FixStep::Accept {
                    revisions: self.anchor.to_vec(),
                }])
                .chain(tail.iter().cloned())
                .collect(),
            why: format!(
                "accept them as a valid variant of revision {revision}, so status and stamp \
                 stay clean and nothing is lost; the history does not make them, so other \
                 copies of the database will not have them"
            ),
        };
        let drop = FixOption {
            name: DROP,
            steps: [FixStep::Drop {
                towards: self.anchor.to_vec(),
                objects: objects.clone(),
                rows,
            }]
            .into_iter()
            .chain(tail.iter().cloned())
            .collect(),
            why: format!(
                "drop them, which loses {rows} row(s): only for leftovers nobody uses \
                 (needs --allow-destructive)"
            ),
        };
        let Some(head) = &self.adopt_onto else {
            return Ok(vec![accept, drop]);
        };
        let named = if tables.is_empty() {
            "hand-made objects".to_owned()
        } else {
            tables.join(", ")
        };
        let adopt = FixOption {
            name: ADOPT,
            steps: before()
                .chain(tail.iter().cloned())
                .chain([FixStep::Adopt {
                    objects,
                    message: format!("adopt {named}"),
                }])
                .collect(),
            why: format!(
                "adopt them into a new revision on {head} that creates them, and record it \
                 (verified): their {rows} row(s) stay, and a fresh `alembic upgrade head` and \
                 every other copy of the database get them too (commit the new file)"
            ),
        };
        Ok(if tables.is_empty() {
            vec![accept, adopt, drop]
        } else {
            vec![adopt, accept, drop]
        })
    }
}

/// A change's object as `kind name` (`table.column` for a column).
fn shown(change: &Change) -> String {
    match &change.table {
        Some(table) if change.kind == ChangeKind::Column => {
            format!("column {table}.{}", change.name)
        }
        _ => format!("{} {}", change.kind.name(), change.name),
    }
}

/// What the version rows say, as the start of a sentence.
fn said(position: &Position, rows: Option<&[RevisionId]>) -> String {
    match (position, rows) {
        (Position::Unversioned, _) | (_, None) => "there is no alembic_version table".to_owned(),
        (_, Some([])) => "alembic_version is empty".to_owned(),
        (Position::UnknownRevision { unknown }, _) => format!(
            "alembic_version names {}, which no migration script declares",
            unknown.join(", ")
        ),
        (_, Some(rows)) => format!("alembic_version says {}", rows.join(" + ")),
    }
}

impl FixPlan {
    /// The plan with its class, reason and the verdict's finding. The
    /// finding is short: the reason is the plan's own field.
    fn decided(mut self, class: FixClass, reason: String) -> FixPlan {
        let db = self.database.display().to_string();
        let steps = self
            .steps
            .iter()
            .map(FixStep::name)
            .collect::<Vec<_>>()
            .join(", then ");
        let finding = match class {
            FixClass::Healthy => None,
            FixClass::MultipleHeads => Some(Finding::new(
                codes::MULTIPLE_HEADS,
                Severity::Error,
                &db,
                "the history has several heads: merge them first (a history fix, not a database fix)",
            )),
            FixClass::Unsure => Some(Finding::new(
                codes::UNSURE,
                Severity::Error,
                &db,
                format!("no fix can be chosen safely: {reason}"),
            )),
            // Pending revisions alone are a warning, as in `status`.
            FixClass::Behind => Some(
                Finding::new(
                    codes::NEEDED,
                    Severity::Warning,
                    &db,
                    "revisions are pending",
                )
                .hint("`migsnap fix --apply` runs the upgrade, a safety snapshot first"),
            ),
            _ => Some(
                Finding::new(
                    codes::NEEDED,
                    Severity::Error,
                    &db,
                    format!("{}: fixed by {steps}", class.name()),
                )
                .hint("`migsnap fix --apply` runs these steps, a safety snapshot first"),
            ),
        };
        self.findings.extend(finding);
        self.class = class;
        self.reason = reason;
        self
    }
}
