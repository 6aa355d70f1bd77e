//! Checking a remote, as `restic check` does (`migsnap fsck --remote`).
//!
//! Without reading data: every index opens and parses, every pack an index
//! names is there with the size the index implies, every ref and forgotten
//! mark reads, and the whole history of every ref (snapshots, parents,
//! schemas, image listings, pages) is listed in the indexes; for that last
//! check the packs holding snapshots and image listings are downloaded and
//! verified. With `read_data`, every pack is downloaded and every object in
//! it re-hashed against its id.
//!
//! A check changes nothing on the remote; it reports every problem it finds
//! rather than stopping at the first, and stops only when the remote cannot
//! be read at all.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use migsnap_store::{ObjectId, Progress};
use serde::Serialize;

use crate::connection::Connection;
use crate::contents::{self, ContentsError, Packs, RemoteRef};
use crate::layout::{self, Index, PACKS, REFS};
use crate::reach::{self, Scratch};
use crate::transport::TransportError;

/// What is wrong with one key of the remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// An index that does not open or parse.
    DamagedIndex,
    /// A pack an index names is not there.
    MissingPack,
    /// A pack whose size is not the one its index implies.
    WrongSize,
    /// A pack that does not open, hash to its name, or unpack to the
    /// objects its index lists.
    DamagedPack,
    /// A ref that does not open or parse.
    DamagedRef,
    /// An object a ref's history needs that no index lists.
    MissingObject,
}

impl Fault {
    /// Its name in text and JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Fault::DamagedIndex => "damaged-index",
            Fault::MissingPack => "missing-pack",
            Fault::WrongSize => "wrong-size",
            Fault::DamagedPack => "damaged-pack",
            Fault::DamagedRef => "damaged-ref",
            Fault::MissingObject => "missing-object",
        }
    }
}

/// One problem.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// The key at fault (`packs/<name>.pack`, `refs/<name>`).
    pub key: String,
    /// What kind of problem.
    pub fault: Fault,
    /// What exactly.
    pub detail: String,
}

/// What a check of a remote found.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// Whether every pack was downloaded and every object re-hashed.
    pub read_data: bool,
    /// Packs with an index.
    pub packs: u64,
    /// Objects their indexes list.
    pub objects: u64,
    /// Refs.
    pub refs: u64,
    /// Objects the refs' histories need.
    pub needed_objects: u64,
    /// Packs downloaded and verified.
    pub packs_read: u64,
    /// Bytes downloaded.
    pub bytes_read: u64,
    /// Objects re-hashed.
    pub objects_read: u64,
    /// Packs without an index: left by a push cut short, garbage that a
    /// remote gc removes, not damage.
    pub unindexed_packs: u64,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

/// Why a check could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The remote could not be read.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The remote's contents could not be listed or opened at all.
    #[error(transparent)]
    Contents(#[from] ContentsError),
    /// The scratch store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
}

/// Checks `remote`, downloading into a scratch store inside `work_dir`.
pub fn check(
    remote: &Connection,
    work_dir: &Path,
    read_data: bool,
    progress: &mut dyn Progress,
) -> Result<CheckReport, CheckError> {
    let mut problems = Vec::new();
    let listed: HashMap<String, u64> = remote
        .transport
        .list(PACKS)?
        .into_iter()
        .map(|l| (l.key, l.size))
        .collect();
    let packs = read_indexes(remote, &listed, &mut problems)?;
    let unindexed_packs = listed
        .keys()
        .filter(|key| {
            key.strip_suffix(".pack")
                .is_some_and(|stem| !listed.contains_key(&format!("{stem}.idx")))
        })
        .count() as u64;
    let refs = read_refs(remote, &mut problems)?;
    let forgotten: HashSet<ObjectId> = contents::read_forgotten(remote)?
        .into_iter()
        .map(|(snapshot, _)| snapshot)
        .collect();
    let mut report = CheckReport {
        read_data,
        packs: packs.packs.len() as u64,
        objects: packs.objects.len() as u64,
        refs: refs.len() as u64,
        needed_objects: 0,
        packs_read: 0,
        bytes_read: 0,
        objects_read: 0,
        unindexed_packs,
        problems: Vec::new(),
    };
    let mut scratch = Scratch::new(work_dir)?;
    let mut tx = scratch.store.transaction()?;
    let to_read: Vec<&(ObjectId, Index)> = packs
        .packs
        .iter()
        .filter(|(name, index)| {
            (read_data || reach::holds_metadata(index))
                && listed.contains_key(&layout::pack_key(name))
        })
        .collect();
    progress.start("checking packs", to_read.len() as u64);
    for (name, index) in to_read {
        let read = contents::download_pack(remote, name).and_then(|pack| {
            pack.map(|(bytes, stored)| Ok((layout::verify(name, bytes, index)?, stored)))
                .transpose()
        });
        match read {
            Ok(Some((verified, bytes))) => {
                report.packs_read += 1;
                report.bytes_read += bytes;
                report.objects_read += index.entries.len() as u64;
                // The walk below reads only snapshots and listings: a pack
                // of pages is verified whole (above) but not kept.
                if reach::holds_metadata(index) {
                    let mut batch = tx.pack_batch();
                    verified.import(&mut batch)?;
                    batch.finish()?;
                }
            }
            Ok(None) => problems.push(missing_pack(name)),
            Err(ContentsError::Transport(e)) => return Err(e.into()),
            Err(damaged) => problems.push(Problem {
                key: layout::pack_key(name),
                fault: Fault::DamagedPack,
                detail: damaged.to_string(),
            }),
        }
        progress.advance(1);
    }
    progress.finish();
    let needed = reach::needed(tx.view(), &packs.objects, &refs, &forgotten)?;
    report.needed_objects = needed.objects.len() as u64;
    for (name, object) in needed.missing {
        problems.push(Problem {
            key: remote.ref_key(&name),
            fault: Fault::MissingObject,
            detail: format!("{name} needs object {object}, which no index lists"),
        });
    }
    report.problems = problems;
    Ok(report)
}

fn missing_pack(name: &ObjectId) -> Problem {
    Problem {
        key: layout::pack_key(name),
        fault: Fault::MissingPack,
        detail: format!("pack {name} is missing, though its index is there"),
    }
}

/// Reads every listed index, and checks that its pack is listed with the
/// size it implies; a damaged index is a problem, not an error.
fn read_indexes(
    remote: &Connection,
    listed: &HashMap<String, u64>,
    problems: &mut Vec<Problem>,
) -> Result<Packs, CheckError> {
    let mut packs = Vec::new();
    let mut keys: Vec<&String> = listed.keys().filter(|k| k.ends_with(".idx")).collect();
    keys.sort();
    for key in keys {
        let (name, index) = match contents::read_index(remote, key) {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(ContentsError::Transport(e)) => return Err(e.into()),
            Err(damaged) => {
                problems.push(Problem {
                    key: key.clone(),
                    fault: Fault::DamagedIndex,
                    detail: damaged.to_string(),
                });
                continue;
            }
        };
        let expected = remote.cipher().stored_len(index.pack_len);
        match listed.get(&layout::pack_key(&name)) {
            None => problems.push(missing_pack(&name)),
            Some(size) if *size != expected => problems.push(Problem {
                key: layout::pack_key(&name),
                fault: Fault::WrongSize,
                detail: format!("pack {name} has {size} bytes, its index says {expected}"),
            }),
            Some(_) => {}
        }
        packs.push((name, index));
    }
    Ok(Packs::new(packs))
}

/// Reads every ref; a damaged one is a problem, not an error.
fn read_refs(
    remote: &Connection,
    problems: &mut Vec<Problem>,
) -> Result<Vec<RemoteRef>, CheckError> {
    let mut refs = Vec::new();
    for listed in remote.transport.list(REFS)? {
        match contents::read_ref_at(remote, &listed.key) {
            Ok(Some(found)) => refs.push(found),
            Ok(None) => {}
            Err(ContentsError::Transport(e)) => return Err(e.into()),
            Err(damaged) => problems.push(Problem {
                key: listed.key,
                fault: Fault::DamagedRef,
                detail: damaged.to_string(),
            }),
        }
    }
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(refs)
}
