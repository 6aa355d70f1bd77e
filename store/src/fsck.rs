//! Consistency checks: every ref and reflog row is readable, refs resolve,
//! everything reachable is present (with its pack and the dictionary that
//! pack names), parents form no cycle, and (with `read_data`) every object,
//! or those of a subset of the packs, hashes to its id.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::id::ObjectId;
use crate::image;
use crate::odb::{Error, Result, Store, View};
use crate::progress::Progress;
use crate::reach::{self, Visit};
use crate::refs::RefName;

/// What fsck checks.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsckOptions {
    /// Which objects are read and re-hashed, not just checked to be there.
    pub read_data: ReadData,
}

/// Which objects a check reads back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadData {
    /// None: presence only.
    #[default]
    None,
    /// Every object.
    All,
    /// The objects of one subset of the packs.
    Subset(Subset),
}

/// Subset `n` of `t` of the packs, as restic's `--read-data-subset n/t`:
/// the packs whose number is `n - 1` modulo `t`. Reading subsets 1 to `t`
/// in turn reads every pack once, at a `t`-th of the cost each time. By
/// pack, not by object: reading one object decompresses its whole pack,
/// so a sample of objects would decompress nearly every pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subset {
    n: u32,
    t: u32,
}

impl Subset {
    /// Subset `n` of `t`, when `1 <= n <= t`.
    pub fn new(n: u32, t: u32) -> Option<Subset> {
        (1..=t).contains(&n).then_some(Subset { n, t })
    }

    /// Parses `n/t`.
    pub fn parse(text: &str) -> std::result::Result<Subset, String> {
        let (n, t) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not n/t (for example 1/4)"))?;
        let number = |part: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| format!("{text:?} is not n/t (for example 1/4)"))
        };
        let (n, t) = (number(n)?, number(t)?);
        Subset::new(n, t).ok_or_else(|| format!("{text:?}: n must be between 1 and t"))
    }

    /// The subset a run at `time` (seconds since the epoch) reads, of
    /// `t`: a schedule that runs once a week reads subset 1, 2, …, `t` in
    /// turn, and so every pack once every `t` weeks.
    pub fn of_week(time: i64, t: u32) -> Subset {
        let week = time.div_euclid(7 * 24 * 3600);
        let t = t.max(1);
        Subset {
            n: u32::try_from(week.rem_euclid(i64::from(t))).expect("holds because it is below t")
                + 1,
            t,
        }
    }

    fn holds(&self, pack: i64) -> bool {
        pack.rem_euclid(i64::from(self.t)) == i64::from(self.n - 1)
    }
}

impl std::fmt::Display for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.n, self.t)
    }
}

/// What is wrong with one object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The object is absent.
    Missing,
    /// The object is present but unreadable or hashes wrong.
    Corrupt(String),
    /// The object is its own ancestor.
    Cycle,
}

/// One broken object and what depends on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The broken object.
    pub id: ObjectId,
    /// What is wrong.
    pub fault: Fault,
    /// Snapshots whose content or history it breaks.
    pub snapshots: BTreeSet<ObjectId>,
    /// Refs that point straight at it.
    pub refs: BTreeSet<RefName>,
}

/// The outcome of a check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Problems, ordered by object id.
    pub problems: Vec<Problem>,
    /// Reachable snapshots checked.
    pub snapshots: u64,
    /// Distinct objects checked.
    pub objects: u64,
    /// Which objects were to be read back.
    pub read_data: ReadData,
    /// Of those checked (and of the unreachable ones), how many were read
    /// back and re-hashed.
    pub read_back: u64,
    /// Damaged rows outside the object graph: unreadable refs and reflog
    /// entries, packs naming a dictionary the store lacks or recording no
    /// zstd level, dictionaries whose bytes do not match their name.
    pub damaged_rows: Vec<String>,
}

impl FsckReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.damaged_rows.is_empty()
    }
}

/// Checks `store`.
pub fn check(
    store: &Store,
    options: FsckOptions,
    progress: &mut dyn Progress,
) -> Result<FsckReport> {
    store
        .view()
        .consistent(|view| check_view(view, options, progress))
}

fn check_view(
    view: View<'_>,
    options: FsckOptions,
    progress: &mut dyn Progress,
) -> Result<FsckReport> {
    let forgotten: HashSet<ObjectId> = view.forgotten()?.into_iter().map(|(id, _)| id).collect();
    let mut damaged_rows: Vec<String> = view
        .broken_refs()?
        .iter()
        .map(ToString::to_string)
        .collect();
    damaged_rows.extend(view.pack_row_problems()?);
    let mut checker = Checker {
        view,
        read_data: options.read_data,
        read_back: 0,
        status: HashMap::new(),
        problems: BTreeMap::new(),
    };
    for (name, id) in view.refs("")? {
        if !view.contains(&id)? {
            checker.fault(id, Fault::Missing).refs.insert(name);
        }
    }

    let mut snapshots = Vec::new();
    reach::walk_snapshots(view, reach::roots(view, i64::MIN)?, |visit| match visit {
        Visit::Snapshot(id, snapshot) => snapshots.push((id, snapshot)),
        Visit::Broken {
            id,
            error,
            children,
        } => {
            let fault = match error {
                Error::NotFound { .. } => Fault::Missing,
                other => Fault::Corrupt(other.to_string()),
            };
            checker.fault(id, fault).snapshots.extend(children);
        }
        Visit::Cycle { id } => {
            checker.fault(id, Fault::Cycle).snapshots.insert(id);
        }
    })?;

    progress.start("checking snapshots", snapshots.len() as u64);
    for (id, snapshot) in &snapshots {
        checker.status.insert(*id, true);
        checker.check(snapshot.schema, *id)?;
        if let (Some(image_id), false) = (snapshot.image, forgotten.contains(id)) {
            match image::resolve(view, &image_id) {
                Ok(resolved) => {
                    for block in resolved.chain.iter().chain(&resolved.blocks) {
                        checker.check(*block, *id)?;
                    }
                }
                Err(e) if e.is_store_file() => return Err(e),
                Err(error) => {
                    let broken = match &error {
                        Error::NotFound { id }
                        | Error::Corrupt { id, .. }
                        | Error::Unreadable { id, .. }
                        | Error::WrongKind { id, .. } => *id,
                        _ => image_id,
                    };
                    let fault = match error {
                        Error::NotFound { .. } => Fault::Missing,
                        other => Fault::Corrupt(other.to_string()),
                    };
                    checker.fault(broken, fault).snapshots.insert(*id);
                }
            }
        }
        progress.advance(1);
    }
    progress.finish();

    if options.read_data != ReadData::None {
        let mut all = Vec::new();
        view.for_each_object(|id, info| {
            if let (Some(id), Some(info)) = (id, info)
                && reads(options.read_data, info.pack)
            {
                all.push(id);
            }
        })?;
        progress.start("reading objects", all.len() as u64);
        for id in all {
            if !checker.status.contains_key(&id) {
                checker.verify(id)?;
            }
            progress.advance(1);
        }
        progress.finish();
    }

    // A broken snapshot that a ref names directly has no child to report it
    // through: name the ref.
    for (name, id) in view.refs("")? {
        if let Some(problem) = checker.problems.get_mut(&id) {
            problem.refs.insert(name);
        }
    }

    Ok(FsckReport {
        objects: checker.status.len() as u64,
        read_data: options.read_data,
        read_back: checker.read_back,
        snapshots: snapshots.len() as u64,
        problems: checker.problems.into_values().collect(),
        damaged_rows,
    })
}

/// Whether `read_data` reads the objects of pack `pack`.
fn reads(read_data: ReadData, pack: i64) -> bool {
    match read_data {
        ReadData::None => false,
        ReadData::All => true,
        ReadData::Subset(subset) => subset.holds(pack),
    }
}

struct Checker<'a> {
    view: View<'a>,
    read_data: ReadData,
    read_back: u64,
    /// Objects already looked at, and whether they were fine.
    status: HashMap<ObjectId, bool>,
    problems: BTreeMap<ObjectId, Problem>,
}

impl Checker<'_> {
    fn fault(&mut self, id: ObjectId, fault: Fault) -> &mut Problem {
        self.status.insert(id, false);
        self.problems.entry(id).or_insert_with(|| Problem {
            id,
            fault,
            snapshots: BTreeSet::new(),
            refs: BTreeSet::new(),
        })
    }

    /// Checks an object that `snapshot` needs.
    fn check(&mut self, id: ObjectId, snapshot: ObjectId) -> Result<()> {
        let ok = match self.status.get(&id) {
            Some(ok) => *ok,
            None => self.verify(id)?,
        };
        if let (false, Some(problem)) = (ok, self.problems.get_mut(&id)) {
            problem.snapshots.insert(snapshot);
        }
        Ok(())
    }

    /// Looks at one object once and records the verdict.
    fn verify(&mut self, id: ObjectId) -> Result<bool> {
        let read = match self.read_data {
            ReadData::None => false,
            ReadData::All => true,
            ReadData::Subset(_) => self
                .view
                .locate(&id)?
                .is_some_and(|(pack, _, _)| reads(self.read_data, pack)),
        };
        let fault = if read {
            self.read_back += 1;
            match self.view.try_read(&id) {
                Ok(Some(_)) => None,
                Ok(None) => Some(Fault::Missing),
                Err(e) if e.is_store_file() => return Err(e),
                Err(other) => Some(Fault::Corrupt(other.to_string())),
            }
        } else {
            // contains() also requires the object's pack to exist, and the
            // dictionary that pack names.
            match (self.view.contains(&id)?, self.view.locate(&id)?) {
                (true, _) => None,
                (false, None) => Some(Fault::Missing),
                (false, Some((pack, _, _))) => Some(Fault::Corrupt(format!(
                    "its pack {pack} is missing or needs a dictionary the store lacks"
                ))),
            }
        };
        match fault {
            None => {
                self.status.insert(id, true);
                Ok(true)
            }
            Some(fault) => {
                self.fault(id, fault);
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Subset;

    #[test]
    fn subsets_parse_as_n_of_t_and_turn_with_the_weeks() {
        assert_eq!(Subset::parse("2/4"), Ok(Subset { n: 2, t: 4 }));
        assert_eq!(Subset::parse("2/4").unwrap().to_string(), "2/4");
        for bad in ["0/4", "5/4", "4", "a/4", "1/0", ""] {
            assert!(Subset::parse(bad).is_err(), "{bad}");
        }
        let week = 7 * 24 * 3600;
        let first = Subset::of_week(0, 4);
        let turns: Vec<Subset> = (0..5)
            .map(|w| Subset::of_week(w * week + 3600, 4))
            .collect();
        assert_eq!(turns[0], first);
        assert_eq!(
            turns.iter().map(|s| s.n).collect::<Vec<_>>(),
            [1, 2, 3, 4, 1]
        );
        // Every pack number is in exactly one subset.
        for pack in -3..20 {
            let holding = (1..=4).filter(|&n| Subset::new(n, 4).unwrap().holds(pack));
            assert_eq!(holding.count(), 1, "pack {pack}");
        }
    }
}
