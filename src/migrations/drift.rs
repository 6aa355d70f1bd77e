//! Drift: how a live database compares with the reference chain. This is
//! where `status`, `locate` and the built-in bisect predicates get their
//! answers.
//!
//! A database *drifts* when its schema differs from the reference of the
//! revisions its `alembic_version` rows name. A reference can have accepted
//! variants (recorded with `migsnap accept`): some revisions create tables
//! only "if missing", so one revision can leave more than one valid shape,
//! and a database matching any of them does not drift.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use migsnap_store::{Change as RefChange, Expected, ObjectId, Prefix, RefEdit, RefName};
use serde::Serialize;

use crate::finding::{Finding, Severity};
use crate::migrations::bisect::{self, Bisection, Next, Verdict};
use crate::migrations::history::graph::{Graph, ResolveError, Resolved};
use crate::migrations::history::position::{self, Position};
use crate::migrations::history::project::MigrationKind;
use crate::migrations::history::touched::Touched;
use crate::migrations::replay::{ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::repo::Repo;
use crate::schema::Schema;
use crate::schema::diff::{self, Change, ChangeKind, FieldChange, Meaning, Op, SchemaDiff};
use crate::schema::finding::forget_artefacts;
use crate::schema::model::{fold, same_name};
use crate::snapshots::log::snapshot_schema;
use crate::snapshots::snapshot::{self, Recorded, SnapshotOptions, SnapshotOutcome, Target};
use crate::snapshots::sqlite::{Database, DbMeta, SqliteError};
use migsnap_store::progress::Silent;

/// The stable finding codes of `status`.
pub mod codes {
    /// The schema differs from the reference of the stamped revisions.
    pub const DRIFT: &str = "drift.schema";
    /// A table has the reference's columns in another order (info: SQLite
    /// and SQLAlchemy name their columns).
    pub const ORDER: &str = "drift.order";
    /// A constraint or index is the reference's under another name (info).
    pub const NAME: &str = "drift.name";
    /// Revisions are pending.
    pub const BEHIND: &str = "status.behind";
    /// Some branches are not applied at all.
    pub const ON_SOME_BRANCHES: &str = "status.on-some-branches";
    /// `alembic_version` names a revision the scripts do not have.
    pub const UNKNOWN_REVISION: &str = "status.unknown-revision";
    /// One `alembic_version` row is an ancestor of another.
    pub const INCONSISTENT: &str = "status.inconsistent";
    /// No `alembic_version` table.
    pub const UNVERSIONED: &str = "status.unversioned";
    /// The reference could not be built: a migration failed in replay.
    pub const REPLAY_FAILED: &str = "replay.failed";
    /// `locate`: the schema is not what the stamped revision makes.
    pub const STAMP_MISMATCH: &str = "locate.stamp-mismatch";

    /// Every code `status` and `locate` can emit themselves (the capture's
    /// artefact codes are listed in [`crate::schema::finding::codes::ALL`]).
    pub const ALL: &[&str] = &[
        DRIFT,
        ORDER,
        NAME,
        BEHIND,
        ON_SOME_BRANCHES,
        UNKNOWN_REVISION,
        INCONSISTENT,
        UNVERSIONED,
        REPLAY_FAILED,
    ];
}

/// A live database's schema and metadata, read once.
#[derive(Clone, Debug)]
pub struct Live {
    /// The database file.
    pub path: PathBuf,
    /// Its schema.
    pub schema: Schema,
    /// Its semantic hash, hex.
    pub semantic: String,
    /// Its metadata (`alembic_version` rows and the rest).
    pub meta: DbMeta,
    /// What the capture noticed (migration artefacts).
    pub findings: Vec<Finding>,
}

impl Live {
    /// Reads the database at `path` (read-only, one read transaction).
    pub fn capture(path: &Path, busy_timeout: Duration) -> Result<Live, SqliteError> {
        let mut db = Database::open(path, busy_timeout)?;
        let capture = db.capture(None, None)?;
        let schema = capture
            .schema
            .expect("holds: no stamp was given, so the schema is read");
        Ok(Live {
            path: path.to_path_buf(),
            semantic: schema.semantic_hash().to_string(),
            schema,
            meta: capture.meta,
            findings: capture.findings,
        })
    }
}

/// The ref prefix of every accepted variant of the chain's references.
fn accepted_root(replayer: &Replayer<'_>) -> String {
    format!("{}accepted/", replayer.chain().prefix())
}

/// The ref prefix of the accepted variants of the reference for `targets`.
fn accepted_prefix(replayer: &Replayer<'_>, targets: &[String]) -> String {
    let reference = replayer.chain().ref_for(targets);
    let tail = reference
        .as_str()
        .strip_prefix(&replayer.chain().prefix())
        .unwrap_or(reference.as_str());
    format!("{}{tail}/", accepted_root(replayer))
}

/// The semantic hashes of the accepted variants for `targets`, with their
/// snapshots.
pub fn accepted(
    repo: &Repo,
    replayer: &Replayer<'_>,
    targets: &[String],
) -> Result<Vec<(ObjectId, String)>, ReplayError> {
    let view = repo.store.view();
    let mut out = Vec::new();
    for (_, id) in view.refs(&accepted_prefix(replayer, targets))? {
        let snapshot = view.read_snapshot(&id)?;
        if let Some(semantic) = Recorded::from_snapshot(&snapshot).schema_semantic {
            out.push((id, semantic));
        }
    }
    Ok(out)
}

/// What can go wrong accepting, listing or removing a variant.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// No accepted variant's id starts with the prefix.
    #[error("no accepted variant {prefix}")]
    NoVariant {
        /// The prefix given.
        prefix: String,
    },
    /// More than one accepted variant's id starts with the prefix.
    #[error("accepted variant {prefix} is ambiguous: {}", candidates.iter().map(|c| format!("{c:.12}")).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// The variants it matches.
        candidates: Vec<ObjectId>,
    },
    /// The database's schema changed between showing it and accepting it.
    #[error(
        "the schema of {path} changed while it was being accepted; nothing was accepted, run the command again"
    )]
    Changed {
        /// The database.
        path: PathBuf,
    },
    /// The reference or the store failed.
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

impl From<migsnap_store::Error> for AcceptError {
    fn from(error: migsnap_store::Error) -> AcceptError {
        AcceptError::Replay(error.into())
    }
}

/// What accepting a database's shape would record.
#[derive(Clone, Debug, Serialize)]
pub struct Proposal {
    /// The revisions the shape would be valid for.
    pub targets: Vec<String>,
    /// Their reference.
    pub reference: ObjectId,
    /// How the database differs from the reference: what would be accepted
    /// (`added`: extra in the database, `removed`: missing from it).
    pub diff: SchemaDiff,
    /// The database's semantic schema hash.
    pub semantic: String,
}

/// Whether a database's shape can be accepted.
#[derive(Clone, Debug)]
pub enum AcceptPlan {
    /// It differs from the reference and from every accepted variant.
    Propose(Proposal),
    /// It already is the reference: nothing to accept.
    IsReference,
    /// It already is this accepted variant.
    AlreadyAccepted(ObjectId),
    /// The reference could not be built.
    ReplayFailed(ReplayFailure),
}

/// Works out what accepting the shape of the database at `path` for
/// `targets` would record, building the reference if needed. Records
/// nothing: [`accept`] does, once the difference is confirmed.
pub fn plan_accept(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    targets: &[String],
    path: &Path,
    busy_timeout: Duration,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<AcceptPlan, ReplayError> {
    let (reference, report) = replayer.reference(repo, targets, on_event)?;
    let Some(reference) = reference else {
        return Ok(match report.failure {
            Some(failure) => AcceptPlan::ReplayFailed(failure),
            None => unreachable!("BUG: a reference that was not built has a failure"),
        });
    };
    let live = Live::capture(path, busy_timeout)?;
    if Recorded::from_snapshot(&reference.snapshot)
        .schema_semantic
        .as_deref()
        == Some(live.semantic.as_str())
    {
        return Ok(AcceptPlan::IsReference);
    }
    if let Some((id, _)) = accepted(repo, replayer, targets)?
        .into_iter()
        .find(|(_, s)| *s == live.semantic)
    {
        return Ok(AcceptPlan::AlreadyAccepted(id));
    }
    Ok(AcceptPlan::Propose(Proposal {
        targets: targets.to_vec(),
        reference: reference.id,
        diff: diff::diff(&reference.schema(repo)?, &live.schema),
        semantic: live.semantic,
    }))
}

/// Records the schema of the database at `path` as an accepted variant of
/// the reference `proposal` names: a schema-only snapshot whose parent is
/// the reference, under `replay/<chain>/accepted/…`. Refuses when the
/// schema is no longer the one proposed. Returns the ref and the snapshot.
pub fn accept(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    proposal: &Proposal,
    path: &Path,
    busy_timeout: Duration,
) -> Result<(RefName, ObjectId), AcceptError> {
    let targets = &proposal.targets;
    let changed = || AcceptError::Changed {
        path: path.to_path_buf(),
    };
    if Live::capture(path, busy_timeout)
        .map_err(ReplayError::from)?
        .semantic
        != proposal.semantic
    {
        return Err(changed());
    }
    let name = RefName::new(format!(
        "{}{}",
        accepted_prefix(replayer, targets),
        &proposal.semantic[..proposal.semantic.len().min(24)]
    ))
    .expect("holds: the prefix is a valid ref and the hash is hex");
    let target = Target {
        database: format!("accepted/{}", targets.join("+")),
        reference: name.clone(),
        parents: Some(vec![proposal.reference]),
        headers: Vec::new(),
    };
    let options = SnapshotOptions {
        message: format!("accepted variant of {}", targets.join(" + ")),
        schema_only: true,
        allow_empty: true,
        busy_timeout,
        ..SnapshotOptions::default()
    };
    let id = match snapshot::take_into(repo, path, &target, &options, &mut Silent)
        .map_err(ReplayError::from)?
    {
        SnapshotOutcome::Recorded { id, .. } => id,
        SnapshotOutcome::Unchanged { head } => head,
    };
    // The snapshot reads the schema again: a change in between would have
    // accepted a shape nobody saw, so it is taken back.
    let recorded = repo.store.view().read_snapshot(&id)?;
    if Recorded::from_snapshot(&recorded)
        .schema_semantic
        .as_deref()
        != Some(proposal.semantic.as_str())
    {
        remove_ref(repo, &name, id)?;
        return Err(changed());
    }
    Ok((name, id))
}

/// One accepted variant, as `accept --list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct AcceptedVariant {
    /// Its snapshot: the id `status` and `locate` name.
    pub id: ObjectId,
    /// Its ref.
    #[serde(rename = "ref")]
    pub reference_name: String,
    /// The revisions it is a valid shape for.
    pub targets: Vec<String>,
    /// When it was accepted, seconds since the Unix epoch.
    pub time: i64,
    /// The reference it varies.
    pub reference: Option<ObjectId>,
    /// How it differs from that reference.
    pub diff: SchemaDiff,
}

/// Every accepted variant of the chain's references, oldest first.
pub fn accepted_variants(
    repo: &Repo,
    replayer: &Replayer<'_>,
) -> Result<Vec<AcceptedVariant>, AcceptError> {
    let view = repo.store.view();
    let mut variants = Vec::new();
    for (name, id) in view.refs(&accepted_root(replayer))? {
        let snapshot = view.read_snapshot(&id)?;
        let schema = |blob: &ObjectId| -> Result<Schema, AcceptError> {
            Schema::from_blob(&view.read_blob(blob)?)
                .map_err(|e| AcceptError::Replay(ReplayError::from(e)))
        };
        let reference = snapshot.parents.first().copied();
        let base = match reference {
            Some(parent) => schema(&view.read_snapshot(&parent)?.schema)?,
            None => Schema::default(),
        };
        variants.push(AcceptedVariant {
            id,
            reference_name: name.as_str().to_owned(),
            targets: snapshot
                .database
                .strip_prefix("accepted/")
                .unwrap_or(&snapshot.database)
                .split('+')
                .map(str::to_owned)
                .collect(),
            time: snapshot.time,
            reference,
            diff: diff::diff(&base, &schema(&snapshot.schema)?),
        });
    }
    variants.sort_by_key(|v| v.time);
    Ok(variants)
}

/// Removes the accepted variant whose id starts with `prefix` (the
/// database's shape is drift again) and returns it. Its snapshot stays in
/// the store until gc.
pub fn remove_accepted(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    prefix: &Prefix,
) -> Result<AcceptedVariant, AcceptError> {
    let mut matching: Vec<AcceptedVariant> = accepted_variants(repo, replayer)?
        .into_iter()
        .filter(|v| prefix.matches(&v.id))
        .collect();
    let variant = match matching.len() {
        0 => {
            return Err(AcceptError::NoVariant {
                prefix: prefix.to_string(),
            });
        }
        1 => matching.remove(0),
        _ => {
            return Err(AcceptError::Ambiguous {
                prefix: prefix.to_string(),
                candidates: matching.iter().map(|v| v.id).collect(),
            });
        }
    };
    let name = RefName::new(variant.reference_name.clone())
        .expect("holds: the name was read from the store's refs");
    remove_ref(repo, &name, variant.id)?;
    Ok(variant)
}

/// Deletes ref `name`, expected to point at `id`.
fn remove_ref(repo: &mut Repo, name: &RefName, id: ObjectId) -> Result<(), AcceptError> {
    let edit = RefEdit {
        name: name.clone(),
        change: RefChange::Delete {
            expected: Expected::MustEqual(id),
        },
    };
    repo.store
        .transaction()?
        .commit(&[edit], &format!("remove accepted variant {id:.12}"))?;
    Ok(())
}

/// How the schema compares with the reference of its stamped revisions.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The stamped revisions the reference is for.
    pub targets: Vec<String>,
    /// The reference snapshot.
    pub reference: ObjectId,
    /// The accepted variant the schema matches, if it matches one rather
    /// than the reference itself.
    pub variant: Option<ObjectId>,
    /// What differs from the reference: `added` objects are extra in the
    /// database, `removed` ones are missing from it. Empty when it matches
    /// the reference or a variant.
    pub drift: SchemaDiff,
}

/// Everything `status` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The database file.
    pub database: PathBuf,
    /// The `alembic_version` rows (`None`: no table).
    pub rows: Option<Vec<String>>,
    /// Where that puts the database.
    pub position: Position,
    /// The history's heads.
    pub heads: Vec<String>,
    /// The comparison with the reference, when one could be had.
    pub comparison: Option<Comparison>,
    /// Why the reference could not be built, if it could not.
    pub replay_failure: Option<ReplayFailure>,
    /// What is wrong, from the history, the capture and the comparison.
    pub findings: Vec<Finding>,
}

impl Status {
    /// Whether the schema means what the reference of the stamped revisions
    /// (or an accepted variant of it) means: differences of form (column
    /// order, constraint names) do not count. `None` when it could not be
    /// compared.
    pub fn schema_matches(&self) -> Option<bool> {
        self.comparison
            .as_ref()
            .map(|c| c.drift.is_empty() || c.drift.is_form_only())
    }
}

/// Compares `schema` with the reference for `targets` and its accepted
/// variants, building the reference if needed. `Ok(None)` when a migration
/// failed during the replay (the failure is returned beside it).
pub fn compare(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    targets: &[String],
    schema: &Schema,
    semantic: &str,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<(Option<Comparison>, Option<ReplayFailure>), ReplayError> {
    let (reference, report) = replayer.reference(repo, targets, on_event)?;
    let Some(reference) = reference else {
        return Ok((None, report.failure));
    };
    let same = Recorded::from_snapshot(&reference.snapshot)
        .schema_semantic
        .as_deref()
        == Some(semantic);
    let variant = if same {
        None
    } else {
        accepted(repo, replayer, targets)?
            .into_iter()
            .find(|(_, s)| s == semantic)
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
        }),
        None,
    ))
}

/// Works out the status of `live` against `graph`.
pub fn status(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    live: &Live,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<Status, ReplayError> {
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
            &live.semantic,
            on_event,
        )?
    } else {
        (None, None)
    };
    if let Some(failure) = &replay_failure {
        findings.push(replay_failure_finding(failure));
    }
    if let Some(comparison) = &comparison {
        comparison_findings(comparison, &db, &mut findings);
    }
    Ok(Status {
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
        .hint("run `migsnap locate` to see which revision it matches, then `migsnap stamp --verify`"),
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
        .hint("the scripts may be from another branch or version of the app; `migsnap locate` shows what the schema matches"),
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
        .hint("Alembic never writes this; `migsnap locate`, then `migsnap stamp --verify` the right revision"),
    })
}

/// The finding for a reference that could not be built.
fn replay_failure_finding(failure: &ReplayFailure) -> Finding {
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
        findings.push(
            Finding::new(
                codes::DRIFT,
                Severity::Error,
                db,
                format!(
                    "the schema does not match revision {revision}: {} missing, {} extra, {} changed",
                    tally.removed, tally.added, tally.changed
                ),
            )
            .revision(comparison.targets.join(" "))
            .hint("`migsnap locate` shows which revision it does match; `migsnap repair` plans the fix"),
        );
    }
    findings.extend(
        form_findings(&comparison.drift, &format!("revision {revision}"))
            .into_iter()
            .map(|f| f.revision(comparison.targets.join(" "))),
    );
}

/// The revisions a database says it is at: its `alembic_version` rows, or
/// for a SQL folder the migration numbered `PRAGMA user_version` (none at
/// 0). `None`: the database records no position at all.
pub fn stamped(kind: MigrationKind, meta: &DbMeta, graph: &Graph) -> Option<Vec<String>> {
    match kind {
        MigrationKind::Alembic => meta.alembic_versions.clone(),
        MigrationKind::Sql => {
            if meta.user_version == 0 {
                return Some(Vec::new());
            }
            let number = u64::try_from(meta.user_version).ok();
            let found = graph
                .revisions()
                .find(|r| r.id.parse::<u64>().ok() == number)
                .map(|r| r.id.clone());
            Some(vec![found.unwrap_or_else(|| meta.user_version.to_string())])
        }
    }
}

/// The artefact findings of `schema`, a database whose metadata is `meta`:
/// the name heuristics' guesses, less the tables the reference of its
/// stamped revisions has, when the store already holds that reference, or
/// else less the tables the migration files themselves name in their
/// `op.*` calls (`op.rename_table('config', 'config_old')` makes
/// `config_old` on purpose). No replay: a snapshot must stay cheap.
pub fn artefacts(
    repo: &Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    schema: &Schema,
    meta: &DbMeta,
) -> Result<Vec<Finding>, ReplayError> {
    let mut findings = schema.artefacts();
    if findings.is_empty() {
        return Ok(findings);
    }
    let targets = stamped(replayer.project().kind, meta, graph).unwrap_or_default();
    if targets.is_empty() || targets.iter().any(|t| graph.get(t).is_none()) {
        return Ok(findings);
    }
    if let Some(reference) = replayer.cached(repo, &targets)? {
        let reference = reference.schema(repo)?;
        forget_artefacts(&mut findings, |table| {
            reference.tables.contains_key(&fold(table))
        });
        return Ok(findings);
    }
    let mut named = Touched::default();
    for revision in graph.revisions() {
        // An unreadable file is a history finding of its own.
        if let Ok(text) = std::fs::read_to_string(&revision.path) {
            named.scan(&text);
        }
    }
    forget_artefacts(&mut findings, |table| {
        named.tables.contains(&table.to_ascii_lowercase())
    });
    Ok(findings)
}

/// One `drift.order` or `drift.name` finding (info) per change of form in
/// `drift`, a diff from the expected schema (`expected` says what it is, as
/// "revision abc") to the one found. Differences of definition are left to
/// the caller, which knows what they mean for its verdict.
pub fn form_findings(drift: &SchemaDiff, expected: &str) -> Vec<Finding> {
    drift
        .changes
        .iter()
        .filter_map(|change| match change.meaning {
            Meaning::Definition => None,
            Meaning::Order => Some(order_finding(change, expected)),
            Meaning::Name => Some(name_finding(change, expected)),
        })
        .collect()
}

fn order_finding(change: &Change, expected: &str) -> Finding {
    let moved = match change.moved.as_slice() {
        [] => String::new(),
        [one] => format!(" ({one} moved)"),
        many => format!(" ({} moved)", many.join(", ")),
    };
    Finding::new(
        codes::ORDER,
        Severity::Info,
        &change.name,
        format!("same columns as {expected}, different order{moved}"),
    )
    .hint(
        "SQLite and SQLAlchemy name columns, so only `SELECT *` or an INSERT without column \
         names sees the order; `migsnap repair` rebuilds the table in the reference's order \
         if it matters",
    )
}

fn name_finding(change: &Change, expected: &str) -> Finding {
    let kind = change.kind.name().replace('_', " ");
    let (before, after) = change
        .fields
        .iter()
        .find(|f| f.field == "name")
        .map(|f| (f.before.clone(), f.after.clone()))
        .unwrap_or_default();
    let shown = |name: Option<String>| name.map_or("unnamed".to_owned(), |n| format!("'{n}'"));
    let object = match &change.table {
        Some(table) if *table != change.name => format!("{table}.{}", change.name),
        _ => change.name.clone(),
    };
    Finding::new(
        codes::NAME,
        Severity::Info,
        &object,
        format!(
            "same {kind}, different name ({} in {expected}, {} here)",
            shown(before),
            shown(after)
        ),
    )
    .hint(
        "names matter only to a migration that drops or alters the constraint by name; \
         `migsnap repair` gives it the reference's name if one will",
    )
}

/// One candidate of `locate`.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    /// The revisions it is the reference for.
    pub targets: Vec<String>,
    /// The reference (or accepted variant) snapshot.
    pub snapshot: ObjectId,
    /// Whether `snapshot` is an accepted variant rather than the reference.
    pub accepted: bool,
    /// The difference from it to the database: empty for an exact match,
    /// only changes of form (order, names) for a match in form only.
    pub drift: SchemaDiff,
}

/// What `locate` found.
#[derive(Clone, Debug, Serialize)]
pub struct Located {
    /// The stamped revisions, as read.
    pub stamped: Option<Vec<String>>,
    /// References the schema matches, in history order: exactly, or when
    /// none does, in everything but form (column order, constraint names).
    pub exact: Vec<Candidate>,
    /// With no exact match: the reference with the smallest difference.
    pub nearest: Option<Candidate>,
    /// Why some references could not be built.
    pub replay_failure: Option<ReplayFailure>,
}

impl Located {
    /// Whether an exact match is the stamped revision set.
    pub fn stamped_matches(&self) -> bool {
        let Some(stamped) = &self.stamped else {
            return false;
        };
        let mut stamped = stamped.clone();
        stamped.sort();
        self.exact.iter().any(|c| {
            let mut targets = c.targets.clone();
            targets.sort();
            targets == stamped
        })
    }

    /// The verdict's input: a finding when the schema is not what the stamp
    /// says, naming what it does match and the verified fix.
    pub fn findings(&self, what: &str) -> Vec<Finding> {
        if self.stamped_matches() {
            return Vec::new();
        }
        let stamped = match &self.stamped {
            None => "no alembic_version table".to_owned(),
            Some(rows) if rows.is_empty() => "an empty alembic_version".to_owned(),
            Some(rows) => format!("alembic_version {}", rows.join(" + ")),
        };
        let finding = match (self.exact.first(), &self.nearest) {
            (Some(exact), _) => {
                let real = exact.targets.join(" ");
                Finding::new(
                    codes::STAMP_MISMATCH,
                    Severity::Error,
                    what,
                    format!(
                        "the schema is revision {}, but the database has {stamped}",
                        exact.targets.join(" + ")
                    ),
                )
                .hint(format!(
                    "`migsnap stamp --verify {real}` records the truth (a safety snapshot first)"
                ))
            }
            (None, Some(nearest)) => Finding::new(
                codes::STAMP_MISMATCH,
                Severity::Error,
                what,
                format!(
                    "the schema matches no revision; nearest is {} ({} difference{}), and the database has {stamped}",
                    nearest.targets.join(" + "),
                    nearest.drift.changes.len(),
                    if nearest.drift.changes.len() == 1 { "" } else { "s" }
                ),
            )
            .hint(format!(
                "`migsnap repair --to {}` plans the change that brings it there",
                nearest.targets.join(" --to ")
            )),
            (None, None) => Finding::new(
                codes::STAMP_MISMATCH,
                Severity::Error,
                what,
                format!("no reference to compare with, and the database has {stamped}"),
            ),
        };
        vec![finding]
    }
}

/// Finds which revision(s) `schema` really matches, among every
/// revision's reference, the heads together, and accepted variants.
pub fn locate(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    schema: &Schema,
    semantic: &str,
    stamped: Option<Vec<String>>,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<Located, ReplayError> {
    let report = replayer.replay_all(repo, on_event)?;
    let mut candidates: Vec<Vec<String>> =
        graph.topological().into_iter().map(|id| vec![id]).collect();
    let heads = graph.heads();
    if heads.len() > 1 {
        candidates.push(heads);
    }
    // A multi-row stamp has a reference of its own (heads that depend on
    // each other leave fewer rows than heads).
    if let Some(rows) = stamped.as_ref().filter(|r| r.len() > 1)
        && !candidates.contains(rows)
        && rows.iter().all(|r| graph.get(r).is_some())
    {
        replayer.reference(repo, rows, on_event)?;
        candidates.push(rows.clone());
    }
    let mut exact = Vec::new();
    let mut nearest: Option<Candidate> = None;
    for targets in candidates {
        let Some(reference) = replayer.cached(repo, &targets)? else {
            continue;
        };
        let mut shapes = vec![(
            reference.id,
            Recorded::from_snapshot(&reference.snapshot).schema_semantic,
            false,
        )];
        shapes.extend(
            accepted(repo, replayer, &targets)?
                .into_iter()
                .map(|(id, s)| (id, Some(s), true)),
        );
        for (id, shape, accepted) in shapes {
            if shape.as_deref() == Some(semantic) {
                exact.push(Candidate {
                    targets: targets.clone(),
                    snapshot: id,
                    accepted,
                    drift: SchemaDiff::default(),
                });
            }
        }
        if exact.iter().any(|c| c.drift.is_empty()) {
            continue;
        }
        let drift = diff::diff(&reference.schema(repo)?, schema);
        if drift.is_form_only() {
            exact.push(Candidate {
                targets,
                snapshot: reference.id,
                accepted: false,
                drift,
            });
            continue;
        }
        // Later revisions win ties: an empty migration leaves the same schema
        // as its parent, and the latest is the likelier stamp.
        if nearest
            .as_ref()
            .is_none_or(|n| drift.changes.len() <= n.drift.changes.len())
        {
            nearest = Some(Candidate {
                targets,
                snapshot: reference.id,
                accepted: false,
                drift,
            });
        }
    }
    // A match in form only counts when nothing matches exactly.
    if exact.iter().any(|c| c.drift.is_empty()) {
        exact.retain(|c| c.drift.is_empty());
    }
    Ok(Located {
        stamped,
        nearest: if exact.is_empty() { nearest } else { None },
        exact,
        replay_failure: report.failure,
    })
}

/// Whether `change` (from a reference to a database) is a defect: the
/// database lacks or contradicts something of the reference. Extra objects
/// are not, nor are differences of form (column order, constraint names),
/// nor is a table whose only difference is extra columns.
fn is_defect(change: &Change) -> bool {
    if change.meaning.is_form() {
        return false;
    }
    match change.op {
        Op::Added => false,
        Op::Removed => true,
        Op::Changed => change.fields.iter().any(|f| defect_field(change, f)),
    }
}

/// Whether one changed field of `change` is a defect: a table's `columns`
/// only when the database drops or reorders the reference's columns (an
/// extra column shows as its own change), any other field always.
fn defect_field(change: &Change, field: &FieldChange) -> bool {
    !(change.kind == ChangeKind::Table
        && field.field == "columns"
        && extends(field.before.as_deref(), field.after.as_deref()))
}

/// Whether `change` (against some revision's reference) shows the same
/// defect as `tip` (against the tip's reference): the same object, lacking
/// in both, or contradicted in the same field with the same reference
/// value. The reference value matters: a column whose type a later
/// revision changed is a different defect against the earlier type. A
/// table's column list is the exception, as it grows with every column
/// added: the defect is that the database lacks or reorders the list.
fn same_defect(tip: &Change, change: &Change) -> bool {
    if tip.op != change.op || !same_object(tip, change) || !is_defect(change) {
        return false;
    }
    tip.op != Op::Changed
        || tip.fields.iter().filter(|f| defect_field(tip, f)).any(|f| {
            change.fields.iter().any(|g| {
                g.field == f.field
                    && defect_field(change, g)
                    && (g.field == "columns" || g.before == f.before)
            })
        })
}

/// Whether two changes are about the same object (same kind, table and
/// name, as SQLite compares names).
fn same_object(a: &Change, b: &Change) -> bool {
    a.kind == b.kind
        && a.table.as_deref().map(fold) == b.table.as_deref().map(fold)
        && same_name(&a.name, &b.name)
}

/// Whether the comma-separated list `after` keeps every name of `before`,
/// in order.
pub fn extends(before: Option<&str>, after: Option<&str>) -> bool {
    let split = |s: Option<&str>| -> Vec<String> {
        s.unwrap_or_default()
            .split(", ")
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let after = split(after);
    let mut rest = after.iter();
    split(before).iter().all(|name| rest.any(|a| a == name))
}

/// The first bad item of a built-in bisection, explained.
#[derive(Clone, Debug, Serialize)]
pub struct FirstBad {
    /// The revisions it recorded.
    pub targets: Vec<String>,
    /// Those of them no migration script declares.
    pub unknown: Vec<String>,
    /// With an unknown revision recorded: the revisions it is compared with
    /// instead, the ones its schema matches or is nearest to (there is no
    /// reference for a revision the scripts lack).
    pub compared_with: Option<Vec<String>>,
    /// How it differs from the reference it is compared with.
    pub drift: SchemaDiff,
    /// The revisions its schema matches instead.
    pub matches: Vec<Vec<String>>,
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
) -> Result<(Verdict, Option<Vec<String>>), ReplayError> {
    let recorded = Recorded::from_snapshot(snapshot);
    let Some(rows) = stamped(replayer.project().kind, &recorded.meta, graph) else {
        return Ok((Verdict::Skip, None));
    };
    let semantic = match &recorded.schema_semantic {
        Some(s) => s.clone(),
        None => snapshot_schema(repo.store.view(), *id, snapshot)?
            .semantic_hash()
            .to_string(),
    };
    if rows.is_empty() {
        let empty = Schema::default().semantic_hash().to_string();
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
    let matches_reference = Recorded::from_snapshot(&reference.snapshot)
        .schema_semantic
        .as_deref()
        == Some(&semantic);
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
    let semantic = schema.semantic_hash().to_string();
    let targets = stamped(replayer.project().kind, &recorded.meta, graph).unwrap_or_default();
    let unknown = unknown_revisions(graph, &targets);
    let located = locate(repo, replayer, graph, &schema, &semantic, None, &mut |_| {})?;
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
fn unknown_revisions(graph: &Graph, targets: &[String]) -> Vec<String> {
    targets
        .iter()
        .filter(|t| graph.get(t).is_none())
        .cloned()
        .collect()
}

/// The candidate of `located` a schema is best compared with: the latest
/// exact match (an empty migration leaves its parent's schema, and the
/// latest is the likelier), else the nearest.
fn closest(located: &Located) -> Option<&Candidate> {
    located.exact.last().or(located.nearest.as_ref())
}

/// What a bisection along the revision chain found.
#[derive(Clone, Debug, Serialize)]
pub struct RevisionBisect {
    /// The revision the chain ends at: `--to`, else the stamped revision,
    /// else the only head, else (with an unknown stamp) `compared_with`.
    pub tip: String,
    /// Stamped revisions that no migration script declares.
    pub unknown: Vec<String>,
    /// With an unknown stamp and no `--to`: the revision the schema matches
    /// or is nearest to, which the chain ends at instead.
    pub compared_with: Option<String>,
    /// The revisions bisected, oldest first.
    pub line: Vec<String>,
    /// The first revision after which the database shows a defect it shows
    /// against the tip: something of that revision's reference it lacks or
    /// contradicts. `None` when it shows none against the tip.
    pub first_bad: Option<String>,
    /// The revision before it, which the database has in full (as far as
    /// the tip's defects go); `None` when the first revision is bad.
    pub last_good: Option<String>,
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
    pub last_had: String,
    /// The revision after that one, which dropped or renamed it.
    pub dropped_by: String,
}

/// The difference from the reference of revision `id` to `live`, each
/// revision diffed once.
fn drift_against(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    live: &Schema,
    judged: &mut HashMap<String, SchemaDiff>,
    id: &str,
) -> Result<SchemaDiff, ReplayError> {
    if let Some(drift) = judged.get(id) {
        return Ok(drift.clone());
    }
    let reference = replayer
        .cached(repo, &[id.to_owned()])?
        .expect("holds: the tip's closure was replayed first");
    let drift = diff::diff(&reference.schema(repo)?, live);
    judged.insert(id.to_owned(), drift.clone());
    Ok(drift)
}

/// Why a revision bisection could not run.
#[derive(Clone, Debug)]
pub enum NoChain {
    /// A migration failed in replay, so the references are missing.
    Failed(ReplayFailure),
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
    live: &Live,
    to: Option<&str>,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<Result<RevisionBisect, NoChain>, ReplayError> {
    let rows = stamped(replayer.project().kind, &live.meta, graph).unwrap_or_default();
    let unknown = unknown_revisions(graph, &rows);
    let mut compared_with = None;
    let tip = match to {
        Some(name) => match graph.resolve(name) {
            Ok(Resolved::Revisions(ids)) if ids.len() == 1 => ids[0].clone(),
            Ok(_) => {
                return Ok(Err(NoChain::NotOneRevision {
                    name: name.to_owned(),
                }));
            }
            Err(e) => return Ok(Err(NoChain::Unresolved(e))),
        },
        None if !unknown.is_empty() => {
            let located = locate(
                repo,
                replayer,
                graph,
                &live.schema,
                &live.semantic,
                None,
                on_event,
            )?;
            match closest(&located).map(|c| c.targets.as_slice()) {
                Some([one]) => {
                    compared_with = Some(one.clone());
                    one.clone()
                }
                Some(_) => return Ok(Err(NoChain::Ambiguous)),
                None => {
                    return Ok(Err(match located.replay_failure {
                        Some(failure) => NoChain::Failed(failure),
                        None => NoChain::Ambiguous,
                    }));
                }
            }
        }
        None => match (rows.as_slice(), graph.heads().as_slice()) {
            ([one], _) | ([], [one]) => one.clone(),
            _ => return Ok(Err(NoChain::Ambiguous)),
        },
    };
    let mut line = vec![tip.clone()];
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
    let (_, report) = replayer.reference(repo, std::slice::from_ref(&tip), on_event)?;
    if let Some(failure) = report.failure {
        return Ok(Err(NoChain::Failed(failure)));
    }
    let mut judged: HashMap<String, SchemaDiff> = HashMap::new();
    let drift_of = |repo: &mut Repo, judged: &mut HashMap<String, SchemaDiff>, id: &str| {
        drift_against(repo, replayer, &live.schema, judged, id)
    };
    let (defects, extra): (Vec<Change>, Vec<Change>) = drift_of(repo, &mut judged, &tip)?
        .changes
        .into_iter()
        .partition(is_defect);
    // The defects `drift` shows that the database also shows against the tip.
    let shared = |drift: SchemaDiff| -> Vec<Change> {
        drift
            .changes
            .into_iter()
            .filter(|c| defects.iter().any(|d| same_defect(d, c)))
            .collect()
    };
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
        let mut bisection = Bisection::with_open_start(line.clone());
        bisection
            .mark(&tip, Verdict::Bad)
            .expect("holds: the tip is on the line");
        let next = bisect::search(bisection, |id| {
            Ok::<_, ReplayError>(if shared(drift_of(repo, &mut judged, id)?).is_empty() {
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
        found.drift = Some(SchemaDiff {
            changes: shared(drift_of(repo, &mut judged, &first_bad)?),
        });
        found.tested = judged.len();
        found.first_bad = Some(first_bad);
        found.last_good = last_good;
    }
    // An extra object is not extra against a reference that has it: the
    // newest such revision is the last that had it. A plain scan, newest
    // first; each reference is diffed once however many objects there are.
    for change in found.extra.changes.iter().filter(|c| c.op == Op::Added) {
        for (at, id) in line.iter().enumerate().rev().skip(1) {
            let has = !drift_of(repo, &mut judged, id)?
                .changes
                .iter()
                .any(|c| c.op == Op::Added && same_object(change, c));
            if has {
                found.dropped.push(Dropped {
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
    Ok(Ok(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(sql: &str) -> Schema {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        crate::schema::capture(&tx).unwrap().schema
    }

    #[test]
    fn a_list_extends_another_when_it_keeps_its_names_in_order() {
        assert!(extends(Some("a, b"), Some("a, x, b, y")));
        assert!(extends(None, Some("a")));
        assert!(extends(Some(""), None));
        assert!(extends(Some("a, b"), Some("a, b")));
        assert!(!extends(Some("a, b"), Some("b, a")));
        assert!(!extends(Some("a, b"), Some("a")));
        assert!(!extends(Some("a"), None));
    }

    #[test]
    fn extra_objects_and_differences_of_form_are_not_defects() {
        let reference = schema("CREATE TABLE t(a, b, c); CREATE INDEX ix_t_a ON t(a);");
        for (live, lacks) in [
            (
                "CREATE TABLE t(a, b, c, d); CREATE INDEX ix_t_a ON t(a);",
                false,
            ),
            (
                "CREATE TABLE t(a, x, b, c); CREATE INDEX ix_t_a ON t(a); CREATE TABLE u(a);",
                false,
            ),
            (
                "CREATE TABLE t(c, a, b); CREATE INDEX t_a_idx ON t(a);",
                false,
            ),
            ("CREATE TABLE t(a, c); CREATE INDEX ix_t_a ON t(a);", true),
            (
                "CREATE TABLE t(a, b, c NOT NULL); CREATE INDEX ix_t_a ON t(a);",
                true,
            ),
            ("CREATE TABLE t(a, b, c);", true),
        ] {
            let drift = diff::diff(&reference, &schema(live));
            assert_eq!(
                drift.changes.iter().any(is_defect),
                lacks,
                "{live}: {drift:#?}"
            );
        }
    }

    #[test]
    fn differences_of_form_are_info_findings_in_words() {
        let reference = schema(
            "CREATE TABLE user(id, name, scim, email); CREATE INDEX ix_user_email ON user(email);",
        );
        let live = schema(
            "CREATE TABLE user(id, name, email, scim); CREATE INDEX user_email_idx ON user(email);",
        );
        let findings = form_findings(&diff::diff(&reference, &live), "revision r1");
        let summary: Vec<_> = findings
            .iter()
            .map(|f| (f.code, f.severity, f.object.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    codes::ORDER,
                    Severity::Info,
                    "user",
                    "same columns as revision r1, different order (scim moved)"
                ),
                (
                    codes::NAME,
                    Severity::Info,
                    "user.user_email_idx",
                    "same index, different name ('ix_user_email' in revision r1, 'user_email_idx' here)"
                ),
            ]
        );
    }

    fn change(op: Op, kind: ChangeKind, name: &str, fields: &[(&str, &str, &str)]) -> Change {
        Change {
            op,
            kind,
            table: (kind != ChangeKind::Table).then(|| "t".to_owned()),
            name: name.to_owned(),
            fields: fields
                .iter()
                .map(|(field, before, after)| FieldChange {
                    field: (*field).to_owned(),
                    before: Some((*before).to_owned()).filter(|b| !b.is_empty()),
                    after: Some((*after).to_owned()).filter(|a| !a.is_empty()),
                })
                .collect(),
            meaning: Meaning::Definition,
            moved: Vec::new(),
        }
    }

    #[test]
    fn extra_objects_and_extra_columns_are_not_defects() {
        assert!(!is_defect(&change(Op::Added, ChangeKind::Table, "x", &[])));
        assert!(!is_defect(&change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[("columns", "id, a", "id, a, b")]
        )));
        assert!(is_defect(&change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[("columns", "id, a, b", "id, b")]
        )));
        assert!(is_defect(&change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[("columns", "id, a, b", "id, b, a")]
        )));
        assert!(is_defect(&change(
            Op::Removed,
            ChangeKind::Column,
            "a",
            &[]
        )));
    }

    #[test]
    fn a_contradicted_field_is_the_same_defect_only_against_the_same_reference_value() {
        let tip = change(
            Op::Changed,
            ChangeKind::Column,
            "name",
            &[("declared_type", "TEXT", "INTEGER")],
        );
        let same = change(
            Op::Changed,
            ChangeKind::Column,
            "NAME",
            &[("declared_type", "TEXT", "INTEGER")],
        );
        // Before a later revision changed the type to TEXT, the database
        // contradicted another value: not the defect the tip shows.
        let earlier = change(
            Op::Changed,
            ChangeKind::Column,
            "name",
            &[("declared_type", "VARCHAR", "INTEGER")],
        );
        assert!(same_defect(&tip, &same));
        assert!(!same_defect(&tip, &earlier));
        assert!(!same_defect(
            &tip,
            &change(Op::Added, ChangeKind::Column, "name", &[])
        ));
    }

    #[test]
    fn a_shorter_column_list_is_the_same_defect_whatever_the_list_grew_to() {
        let tip = change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[("columns", "id, a, b, c", "id, b, c")],
        );
        let at_a = change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[("columns", "id, a", "id, b, c")],
        );
        let before_a = change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[("columns", "id", "id, b, c")],
        );
        assert!(same_defect(&tip, &at_a));
        assert!(!same_defect(&tip, &before_a));
    }
}
