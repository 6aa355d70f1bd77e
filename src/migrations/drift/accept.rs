//! Accepted variants: the other valid shapes of a reference, recorded
//! with `migsnap accept` and kept as refs next to the chain's references.

use std::path::{Path, PathBuf};
use std::time::Duration;

use migsnap_store::progress::Silent;
use migsnap_store::{Change as RefChange, Expected, ObjectId, Prefix, RefEdit, RefName};
use serde::Serialize;

use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::history::targets::Targets;
use crate::migrations::replay::{ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::repo::Repo;
use crate::schema::diff::{self, SchemaDiff};
use crate::schema::{Schema, SchemaHash};
use crate::snapshots::snapshot::{self, Recorded, SnapshotOptions, Target};

use super::LiveDatabase;

/// The ref prefix of every accepted variant of the chain's references.
fn accepted_root(replayer: &Replayer<'_>) -> String {
    format!("{}accepted/", replayer.chain().prefix())
}

/// The ref prefix of the accepted variants of the reference for `targets`.
fn accepted_prefix(replayer: &Replayer<'_>, targets: &[RevisionId]) -> String {
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
    targets: &[RevisionId],
) -> Result<Vec<(ObjectId, SchemaHash)>, ReplayError> {
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
    pub targets: Targets,
    /// Their reference.
    pub reference: ObjectId,
    /// How the database differs from the reference: what would be accepted
    /// (`added`: extra in the database, `removed`: missing from it).
    pub diff: SchemaDiff,
    /// The database's semantic schema hash.
    pub semantic: SchemaHash,
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
    targets: &Targets,
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
    let live = LiveDatabase::capture(path, busy_timeout)?;
    if Recorded::from_snapshot(&reference.snapshot).schema_semantic == Some(live.semantic) {
        return Ok(AcceptPlan::IsReference);
    }
    if let Some((id, _)) = accepted(repo, replayer, targets)?
        .into_iter()
        .find(|(_, s)| *s == live.semantic)
    {
        return Ok(AcceptPlan::AlreadyAccepted(id));
    }
    Ok(AcceptPlan::Propose(Proposal {
        targets: targets.clone(),
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
    if LiveDatabase::capture(path, busy_timeout)
        .map_err(ReplayError::from)?
        .semantic
        != proposal.semantic
    {
        return Err(changed());
    }
    let name = RefName::new(format!(
        "{}{}",
        accepted_prefix(replayer, targets),
        format_args!("{:.24}", proposal.semantic)
    ))
    .expect("holds: the prefix is a valid ref and the hash is hex");
    let target = Target {
        database: format!("accepted/{}", targets.join("+")),
        reference: name.clone(),
        parents: Some(vec![proposal.reference]),
        headers: Vec::new(),
    };
    let options = SnapshotOptions {
        message: format!("accepted variant of {targets}"),
        schema_only: true,
        allow_empty: true,
        busy_timeout,
        ..SnapshotOptions::default()
    };
    let id = snapshot::take_into(repo, path, &target, &options, &mut Silent)
        .map_err(ReplayError::from)?
        .id();
    // The snapshot reads the schema again: a change in between would have
    // accepted a shape nobody saw, so it is taken back.
    let recorded = repo.store.view().read_snapshot(&id)?;
    if Recorded::from_snapshot(&recorded).schema_semantic != Some(proposal.semantic) {
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
    pub targets: Vec<RevisionId>,
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
                .map(RevisionId::from)
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
