//! Bisect: find the first bad item along a first-parent line, git-style.
//!
//! Two layers:
//! - [`Bisection`], a state machine generic over the item (snapshot ids here,
//!   Alembic revision ids elsewhere): the caller marks items good, bad or
//!   skipped and asks [`Bisection::next`] what to do; [`search`] drives it
//!   with a predicate.
//! - [`Session`], an interactive bisection over one tracked database's
//!   snapshot history whose state lives in the store's refs, so every mark is
//!   one store transaction and a session survives crashes and concurrent
//!   commands.
//!
//! Invariants of the search (as git's): the line is oldest first with
//! distinct items; a good item implies every older one is good and a bad item
//! every newer one bad, so the first bad item is the oldest one that is bad.
//! A later mark of the same item replaces an earlier one.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use migsnap_store::{Change, Expected, ObjectId, Progress, RefEdit, RefName};

use crate::log::{LogEntry, first_parent_log};
use crate::repo::{Repo, Tracked};
use crate::restore::{self, RestoreError};

/// A verdict on one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The item does not show the problem.
    Good,
    /// The item shows the problem.
    Bad,
    /// The item cannot be judged (it does not build, has no data...).
    Skip,
}

impl Verdict {
    /// The lowercase word used in refs, output and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Bad => "bad",
            Verdict::Skip => "skip",
        }
    }

    fn from_name(name: &str) -> Option<Verdict> {
        [Verdict::Good, Verdict::Bad, Verdict::Skip]
            .into_iter()
            .find(|verdict| verdict.name() == name)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What a bisection needs next, or what it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next<T> {
    /// Test this item next. `remaining` untested candidates lie between the
    /// last good and the first bad item (this one included), and about
    /// `steps` more verdicts (this one included) will settle the search.
    Test {
        /// The item to test.
        item: T,
        /// Untested, unskipped candidates left, this one included.
        remaining: usize,
        /// Good or bad verdicts still needed at worst, this one included.
        steps: u32,
    },
    /// Done: the first bad item, and the good one just before it (`None` when
    /// the oldest item is bad).
    Found {
        /// The oldest bad item.
        first_bad: T,
        /// The item just before it, known good.
        last_good: Option<T>,
    },
    /// Only skipped items remain between the last good and the first bad
    /// item: the first bad item is one of `candidates` (oldest first; the
    /// last is the known bad one).
    OnlySkipped {
        /// Where the first bad item may be.
        candidates: Vec<T>,
    },
    /// No item is marked bad yet.
    NeedBad,
    /// No item is marked good yet (and the line has no open start).
    NeedGood,
    /// A good item is newer than a bad one, which the search cannot explain.
    Inconsistent {
        /// The newest good item.
        good: T,
        /// The oldest bad item, older than `good`.
        bad: T,
    },
}

/// The candidates of a bisection, oldest first, and what is known about them.
#[derive(Clone, Debug)]
pub struct Bisection<T> {
    line: Vec<T>,
    positions: HashMap<T, usize>,
    verdicts: Vec<Option<Verdict>>,
    open_start: bool,
}

impl<T: Clone + Eq + Hash + fmt::Display> Bisection<T> {
    /// A bisection of `line` (oldest first, distinct items) that needs one
    /// item marked good and one marked bad before it proposes a test.
    pub fn new(line: Vec<T>) -> Self {
        let positions = line
            .iter()
            .enumerate()
            .map(|(position, item)| (item.clone(), position))
            .collect();
        Bisection {
            verdicts: vec![None; line.len()],
            line,
            positions,
            open_start: false,
        }
    }

    /// A bisection of `line` where the state before its oldest item counts
    /// as good, so only a bad mark is needed, and the search may conclude
    /// that the oldest item is already bad (`Found { last_good: None }`).
    pub fn with_open_start(line: Vec<T>) -> Self {
        Bisection {
            open_start: true,
            ..Bisection::new(line)
        }
    }

    /// Where `item` is on the line (0 = oldest), if it is there.
    pub fn position(&self, item: &T) -> Option<usize> {
        self.positions.get(item).copied()
    }

    /// Records `verdict` for `item`, replacing any earlier verdict on it.
    pub fn mark(&mut self, item: &T, verdict: Verdict) -> Result<(), BisectError> {
        let position = self.position(item).ok_or_else(|| BisectError::NotOnLine {
            item: item.to_string(),
        })?;
        self.verdicts[position] = Some(verdict);
        Ok(())
    }

    /// What to do next.
    ///
    /// The next item to test is the median of the *untested* candidates
    /// strictly between the last good and the first bad item. Without skips
    /// that is the midpoint of the interval. Skipped items drop out of the
    /// count, so when the midpoint is skipped the choice moves to the nearest
    /// untested item on the side that keeps both halves even; this keeps the
    /// number of good/bad verdicts at most ceil(log2(untested + 1)) however
    /// the skips fall (git instead picks by distance from the midpoint, with
    /// a random bias away from skip clusters).
    pub fn next(&self) -> Next<T> {
        let Some(first_bad) = self.verdicts.iter().position(|v| *v == Some(Verdict::Bad)) else {
            return Next::NeedBad;
        };
        let last_good = self
            .verdicts
            .iter()
            .rposition(|v| *v == Some(Verdict::Good));
        match last_good {
            None if !self.open_start => return Next::NeedGood,
            Some(good) if good > first_bad => {
                return Next::Inconsistent {
                    good: self.line[good].clone(),
                    bad: self.line[first_bad].clone(),
                };
            }
            _ => {}
        }
        let between = last_good.map_or(0, |good| good + 1)..first_bad;
        let untested: Vec<usize> = between
            .clone()
            .filter(|&position| self.verdicts[position].is_none())
            .collect();
        if let Some(&median) = untested.get(untested.len() / 2) {
            return Next::Test {
                item: self.line[median].clone(),
                remaining: untested.len(),
                steps: usize::BITS - untested.len().leading_zeros(),
            };
        }
        if between.is_empty() {
            Next::Found {
                first_bad: self.line[first_bad].clone(),
                last_good: last_good.map(|good| self.line[good].clone()),
            }
        } else {
            Next::OnlySkipped {
                candidates: self.line[between.start..=first_bad].to_vec(),
            }
        }
    }
}

/// Runs a whole bisection with `test` as the judge: tests what
/// [`Bisection::next`] proposes until it returns anything but
/// [`Next::Test`], and returns that. Each item is tested at most once, and
/// `test` is called at most ceil(log2(n)) times plus once per skip, for a
/// line of n items whose newest is marked bad.
pub fn search<T, E>(
    mut bisection: Bisection<T>,
    mut test: impl FnMut(&T) -> Result<Verdict, E>,
) -> Result<Next<T>, E>
where
    T: Clone + Eq + Hash + fmt::Display,
{
    loop {
        match bisection.next() {
            Next::Test { item, .. } => {
                let verdict = test(&item)?;
                bisection
                    .mark(&item, verdict)
                    .expect("holds because next() proposes items of the line");
            }
            done => return Ok(done),
        }
    }
}

/// What can go wrong bisecting.
#[derive(Debug, thiserror::Error)]
pub enum BisectError {
    /// The item is not one of the candidates.
    #[error("{item} is not on the first-parent history being bisected")]
    NotOnLine {
        /// The item, as text.
        item: String,
    },
    /// A session for the database exists already.
    #[error("a bisect session of '{database}' is already in progress")]
    Active {
        /// The database.
        database: String,
    },
    /// There is no session for the database.
    #[error("no bisect session of '{database}' is in progress")]
    NoSession {
        /// The database.
        database: String,
    },
    /// The database has no snapshots.
    #[error("database '{database}' has no snapshots to bisect")]
    NoHistory {
        /// The database.
        database: String,
    },
    /// The marks would contradict each other; nothing was recorded.
    #[error("snapshot {good:.12} would be good but is newer than snapshot {bad:.12}, marked bad")]
    Inconsistent {
        /// The newest good snapshot.
        good: ObjectId,
        /// The oldest bad snapshot.
        bad: ObjectId,
    },
    /// A ref under `bisect/DB/` that migsnap does not write.
    #[error("ref {name} is not part of a bisect session migsnap wrote")]
    ForeignRef {
        /// The ref.
        name: RefName,
    },
    /// The test command could not be started.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The test command exited with 128 or more, or died of a signal.
    #[error("bisect run aborted: `{command}` {status}")]
    Aborted {
        /// The command line.
        command: String,
        /// How it ended, as text (`exited with 200`, `was killed by signal 9`).
        status: String,
    },
    /// Writing the candidate's database failed.
    #[error(transparent)]
    Checkout(#[from] RestoreError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
    /// File system work on the bisect directory failed.
    #[error("cannot write {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// An interactive bisection of one database's snapshot history.
///
/// It is stored as refs under `bisect/DB/`:
/// - `start`: the database's head when the session started; the line is the
///   first-parent history of this snapshot, fixed for the whole session;
/// - `from-root` (optional, pointing at the oldest snapshot): the state before
///   the oldest snapshot counts as good;
/// - `marks/NNNNNNNN-VERDICT`: one ref per mark, pointing at the snapshot
///   marked, numbered in the order given. Replaying them in name order gives
///   the state (a later mark of a snapshot replaces an earlier one) and is
///   what `bisect log` prints, independently of reflog expiry.
///
/// Refs keep the marked snapshots alive through `gc` while the session lasts.
pub struct Session {
    start: ObjectId,
    from_root: bool,
    line: Vec<LogEntry>,
    marks: Vec<(ObjectId, Verdict)>,
    bisection: Bisection<ObjectId>,
}

/// How to start a [`Session`].
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// The bad snapshot (default: the database's head).
    pub bad: Option<ObjectId>,
    /// Snapshots known to be good.
    pub good: Vec<ObjectId>,
    /// Count the state before the oldest snapshot as good, so no good mark is
    /// needed.
    pub from_root: bool,
}

fn session_prefix(db: &Tracked) -> String {
    format!("bisect/{}/", db.name)
}

fn session_ref(db: &Tracked, leaf: &str) -> RefName {
    RefName::new(format!("{}{leaf}", session_prefix(db)))
        .expect("holds because database names are valid ref components")
}

impl Session {
    /// Starts a session on `db`'s first-parent history, recording the bad
    /// mark first and then the good ones, in one transaction. Refused when a
    /// session exists; nothing is written when a mark is off the line or the
    /// marks contradict each other.
    pub fn start(
        repo: &mut Repo,
        db: &Tracked,
        options: &StartOptions,
    ) -> Result<Session, BisectError> {
        let view = repo.store.view();
        if !view.refs(&session_prefix(db))?.is_empty() {
            return Err(BisectError::Active {
                database: db.name.clone(),
            });
        }
        let start = view
            .find_ref(&db.head_ref())?
            .ok_or_else(|| BisectError::NoHistory {
                database: db.name.clone(),
            })?;
        let line = oldest_first(repo, start)?;
        let mut session = Session::new(start, options.from_root, line);
        let mut edits = vec![RefEdit {
            name: session_ref(db, "start"),
            change: Change::Update {
                expected: Expected::MustNotExist,
                new: start,
            },
        }];
        if options.from_root {
            edits.push(RefEdit {
                name: session_ref(db, "from-root"),
                change: Change::Update {
                    expected: Expected::MustNotExist,
                    new: session.line[0].id,
                },
            });
        }
        let marks: Vec<(ObjectId, Verdict)> =
            std::iter::once((options.bad.unwrap_or(start), Verdict::Bad))
                .chain(options.good.iter().map(|&good| (good, Verdict::Good)))
                .collect();
        session.commit(
            repo,
            db,
            &marks,
            edits,
            &format!("bisect start {}", db.name),
        )?;
        Ok(session)
    }

    /// The session of `db`, if one is in progress.
    pub fn try_load(repo: &Repo, db: &Tracked) -> Result<Option<Session>, BisectError> {
        let view = repo.store.view();
        let prefix = session_prefix(db);
        let refs = view.refs(&prefix)?;
        let Some(start) = refs
            .iter()
            .find(|(name, _)| name.as_str()[prefix.len()..] == *"start")
            .map(|(_, id)| *id)
        else {
            return match refs.into_iter().next() {
                Some((name, _)) => Err(BisectError::ForeignRef { name }),
                None => Ok(None),
            };
        };
        let mut from_root = false;
        let mut marks = Vec::new();
        for (name, id) in refs {
            match &name.as_str()[prefix.len()..] {
                "start" => {}
                "from-root" => from_root = true,
                leaf => {
                    let verdict = leaf
                        .strip_prefix("marks/")
                        .and_then(|mark| mark.split_once('-'))
                        .filter(|(seq, _)| {
                            seq.len() == 8 && seq.bytes().all(|b| b.is_ascii_digit())
                        })
                        .and_then(|(_, verdict)| Verdict::from_name(verdict));
                    match verdict {
                        Some(verdict) => marks.push((id, verdict)),
                        None => return Err(BisectError::ForeignRef { name }),
                    }
                }
            }
        }
        let line = oldest_first(repo, start)?;
        let mut session = Session::new(start, from_root, line);
        for (id, verdict) in marks {
            session.bisection.mark(&id, verdict)?;
            session.marks.push((id, verdict));
        }
        Ok(Some(session))
    }

    /// The session of `db`; an error when none is in progress.
    pub fn load(repo: &Repo, db: &Tracked) -> Result<Session, BisectError> {
        Session::try_load(repo, db)?.ok_or_else(|| BisectError::NoSession {
            database: db.name.clone(),
        })
    }

    fn new(start: ObjectId, from_root: bool, line: Vec<LogEntry>) -> Session {
        let ids = line.iter().map(|entry| entry.id).collect();
        Session {
            start,
            from_root,
            line,
            marks: Vec::new(),
            bisection: if from_root {
                Bisection::with_open_start(ids)
            } else {
                Bisection::new(ids)
            },
        }
    }

    /// The state after `marks` and the ref edits that record them; an error
    /// when one is off the line or they would contradict earlier marks.
    fn plan(
        &self,
        db: &Tracked,
        marks: &[(ObjectId, Verdict)],
    ) -> Result<(Bisection<ObjectId>, Vec<RefEdit>), BisectError> {
        let mut bisection = self.bisection.clone();
        for (id, verdict) in marks {
            bisection.mark(id, *verdict)?;
        }
        if let Next::Inconsistent { good, bad } = bisection.next() {
            return Err(BisectError::Inconsistent { good, bad });
        }
        let edits = marks
            .iter()
            .enumerate()
            .map(|(offset, (id, verdict))| RefEdit {
                // MustNotExist on the next number makes two concurrent marks
                // conflict instead of one silently replacing the other.
                name: session_ref(
                    db,
                    &format!("marks/{:08}-{verdict}", self.marks.len() + offset + 1),
                ),
                change: Change::Update {
                    expected: Expected::MustNotExist,
                    new: *id,
                },
            })
            .collect();
        Ok((bisection, edits))
    }

    /// Records `marks` in order, in one transaction. Nothing is recorded when
    /// one is off the line or they would contradict earlier marks.
    pub fn record(
        &mut self,
        repo: &mut Repo,
        db: &Tracked,
        marks: &[(ObjectId, Verdict)],
    ) -> Result<(), BisectError> {
        let words: Vec<&str> = marks.iter().map(|(_, verdict)| verdict.name()).collect();
        self.commit(
            repo,
            db,
            marks,
            Vec::new(),
            &format!("bisect {} {}", words.join(" "), db.name),
        )
    }

    /// Commits `edits` and the edits recording `marks` as one transaction,
    /// then updates the session to match.
    fn commit(
        &mut self,
        repo: &mut Repo,
        db: &Tracked,
        marks: &[(ObjectId, Verdict)],
        mut edits: Vec<RefEdit>,
        message: &str,
    ) -> Result<(), BisectError> {
        let (bisection, mark_edits) = self.plan(db, marks)?;
        edits.extend(mark_edits);
        repo.store.transaction()?.commit(&edits, message)?;
        self.bisection = bisection;
        self.marks.extend_from_slice(marks);
        Ok(())
    }

    /// The head snapshot when the session started: the newest candidate.
    pub fn start_id(&self) -> ObjectId {
        self.start
    }

    /// Whether the state before the oldest snapshot counts as good.
    pub fn from_root(&self) -> bool {
        self.from_root
    }

    /// The marks in the order given.
    pub fn marks(&self) -> &[(ObjectId, Verdict)] {
        &self.marks
    }

    /// The log entry of a snapshot on the line.
    pub fn entry(&self, id: &ObjectId) -> Option<&LogEntry> {
        self.bisection
            .position(id)
            .map(|position| &self.line[position])
    }

    /// What to do next.
    pub fn next(&self) -> Next<ObjectId> {
        self.bisection.next()
    }
}

/// The first-parent history of `start`, oldest first.
fn oldest_first(repo: &Repo, start: ObjectId) -> Result<Vec<LogEntry>, BisectError> {
    let mut line = first_parent_log(repo.store.view(), start, None)?;
    line.reverse();
    Ok(line)
}

/// Deletes every ref of `db`'s session and its checked-out database, in one
/// transaction. Returns whether there was a session.
pub fn reset(repo: &mut Repo, db: &Tracked) -> Result<bool, BisectError> {
    let refs = repo.store.view().refs(&session_prefix(db))?;
    let edits: Vec<RefEdit> = refs
        .iter()
        .map(|(name, id)| RefEdit {
            name: name.clone(),
            change: Change::Delete {
                expected: Expected::MustEqual(*id),
            },
        })
        .collect();
    if !edits.is_empty() {
        let tx = repo.store.transaction()?;
        tx.commit(&edits, &format!("bisect reset {}", db.name))?;
    }
    remove_checkout(&checkout_path(repo, db))?;
    Ok(!edits.is_empty())
}

/// Where a session's candidate is checked out: `bisect/DB.db` inside the
/// store directory, never the live database.
pub fn checkout_path(repo: &Repo, db: &Tracked) -> PathBuf {
    crate::repo::absolute(repo.store.dir())
        .join("bisect")
        .join(format!("{}.db", db.name))
}

/// Writes `entry`'s database to [`checkout_path`] (verified, atomically, as
/// `migsnap checkout` does) and returns the path. A schema-only snapshot, or
/// one whose data retention forgot, has no database to write: the path is
/// then removed, so a test cannot see the previous candidate, and `None`
/// comes back.
pub fn checkout_candidate(
    repo: &Repo,
    db: &Tracked,
    entry: &LogEntry,
    progress: &mut dyn Progress,
) -> Result<Option<PathBuf>, BisectError> {
    let path = checkout_path(repo, db);
    if entry.snapshot.image.is_none() || entry.forgotten {
        remove_checkout(&path)?;
        return Ok(None);
    }
    let dir = path
        .parent()
        .expect("holds because the path is dir/bisect/DB.db");
    std::fs::create_dir_all(dir).map_err(|source| BisectError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    restore::checkout(repo, entry.id, &path, true, progress)?;
    Ok(Some(path))
}

fn remove_checkout(path: &Path) -> Result<(), BisectError> {
    match std::fs::remove_file(path) {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => Err(BisectError::Io {
            path: path.to_path_buf(),
            source,
        }),
        _ => Ok(()),
    }
}

/// How one run of a `bisect run` test command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestOutcome {
    /// Its verdict.
    pub verdict: Verdict,
    /// Its exit code.
    pub exit_code: i32,
}

/// Runs `command` (program and arguments) on a candidate with git's
/// `bisect run` contract: exit 0 is good, 125 skip, 1 to 127 otherwise bad;
/// 128 and above, or death by a signal, abort with [`BisectError::Aborted`].
///
/// The command gets `MIGSNAP_BISECT_REV` (the full snapshot id) and, when the
/// candidate has a database, `MIGSNAP_BISECT_DB` (its path). Its stdout goes
/// to our stderr, so migsnap's own stdout stays one result document.
pub fn run_test(
    command: &[String],
    candidate: ObjectId,
    database: Option<&Path>,
) -> Result<TestOutcome, BisectError> {
    let (program, args) = command
        .split_first()
        .expect("holds because clap requires a command");
    let line = command.join(" ");
    let mut child = Command::new(program);
    child
        .args(args)
        .env("MIGSNAP_BISECT_REV", candidate.to_string())
        .stdout(Stdio::from(std::io::stderr()));
    match database {
        Some(path) => child.env("MIGSNAP_BISECT_DB", path),
        None => child.env_remove("MIGSNAP_BISECT_DB"),
    };
    let status = child.status().map_err(|source| BisectError::Spawn {
        command: line.clone(),
        source,
    })?;
    verdict_of(status).ok_or_else(|| BisectError::Aborted {
        command: line,
        status: describe(status),
    })
}

fn verdict_of(status: ExitStatus) -> Option<TestOutcome> {
    let exit_code = status.code()?;
    let verdict = match exit_code {
        0 => Verdict::Good,
        125 => Verdict::Skip,
        1..=127 => Verdict::Bad,
        _ => return None,
    };
    Some(TestOutcome { verdict, exit_code })
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended without an exit code".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn line(n: u32) -> Vec<u32> {
        (0..n).collect()
    }

    #[test]
    fn needs_bad_then_good() {
        let mut bisection = Bisection::new(line(10));
        assert_eq!(bisection.next(), Next::NeedBad);
        bisection.mark(&9, Verdict::Bad).unwrap();
        assert_eq!(bisection.next(), Next::NeedGood);
        bisection.mark(&0, Verdict::Good).unwrap();
        assert_eq!(
            bisection.next(),
            Next::Test {
                item: 5,
                remaining: 8,
                steps: 4
            }
        );
    }

    #[test]
    fn open_start_needs_only_bad_and_can_find_the_oldest() {
        let mut bisection = Bisection::with_open_start(line(3));
        bisection.mark(&2, Verdict::Bad).unwrap();
        bisection.mark(&1, Verdict::Bad).unwrap();
        bisection.mark(&0, Verdict::Bad).unwrap();
        assert_eq!(
            bisection.next(),
            Next::Found {
                first_bad: 0,
                last_good: None
            }
        );
    }

    #[test]
    fn a_later_mark_replaces_an_earlier_one() {
        let mut bisection = Bisection::new(line(4));
        bisection.mark(&0, Verdict::Good).unwrap();
        bisection.mark(&3, Verdict::Good).unwrap();
        bisection.mark(&2, Verdict::Bad).unwrap();
        assert_eq!(bisection.next(), Next::Inconsistent { good: 3, bad: 2 });
        bisection.mark(&3, Verdict::Bad).unwrap();
        assert_eq!(
            bisection.next(),
            Next::Test {
                item: 1,
                remaining: 1,
                steps: 1
            }
        );
    }

    #[test]
    fn only_skipped_lists_the_skipped_and_the_bad() {
        let mut bisection = Bisection::new(line(6));
        bisection.mark(&1, Verdict::Good).unwrap();
        bisection.mark(&4, Verdict::Bad).unwrap();
        bisection.mark(&2, Verdict::Skip).unwrap();
        bisection.mark(&3, Verdict::Skip).unwrap();
        assert_eq!(
            bisection.next(),
            Next::OnlySkipped {
                candidates: vec![2, 3, 4]
            }
        );
    }

    #[test]
    fn a_skipped_midpoint_moves_to_the_median_of_the_untested() {
        let mut bisection = Bisection::new(line(9));
        bisection.mark(&0, Verdict::Good).unwrap();
        bisection.mark(&8, Verdict::Bad).unwrap();
        // Untested 1..=7: the median is 4.
        assert!(matches!(bisection.next(), Next::Test { item: 4, .. }));
        bisection.mark(&4, Verdict::Skip).unwrap();
        // Untested 1,2,3,5,6,7: index 3 of them is 5, a neighbour of 4.
        assert!(matches!(
            bisection.next(),
            Next::Test {
                item: 5,
                remaining: 6,
                ..
            }
        ));
    }

    #[test]
    fn unknown_items_are_an_error() {
        let mut bisection = Bisection::new(line(3));
        let error = bisection.mark(&7, Verdict::Good).unwrap_err();
        assert!(matches!(error, BisectError::NotOnLine { ref item } if item == "7"));
    }

    #[test]
    fn exit_codes_follow_git() {
        use std::os::unix::process::ExitStatusExt;
        let verdict = |code: i32| verdict_of(ExitStatus::from_raw(code << 8)).map(|o| o.verdict);
        assert_eq!(verdict(0), Some(Verdict::Good));
        assert_eq!(verdict(1), Some(Verdict::Bad));
        assert_eq!(verdict(125), Some(Verdict::Skip));
        assert_eq!(verdict(127), Some(Verdict::Bad));
        assert_eq!(verdict(128), None);
        assert_eq!(verdict(200), None);
        assert_eq!(verdict_of(ExitStatus::from_raw(9)), None, "SIGKILL aborts");
    }

    fn ceil_log2(n: usize) -> usize {
        (usize::BITS - n.saturating_sub(1).leading_zeros()) as usize
    }

    proptest! {
        #[test]
        fn search_finds_the_first_bad(
            (n, first_bad, skips) in (1usize..300).prop_flat_map(|n| {
                (Just(n), 0..n, proptest::collection::vec(proptest::bool::weighted(0.2), n))
            })
        ) {
            let line: Vec<usize> = (0..n).collect();
            let mut bisection = Bisection::with_open_start(line);
            bisection.mark(&(n - 1), Verdict::Bad).unwrap();
            let mut tested = HashSet::new();
            let (mut judged, mut skipped) = (0usize, 0usize);
            let found = search(bisection, |&item| {
                assert!(tested.insert(item), "tested {item} twice");
                if skips[item] {
                    skipped += 1;
                    return Ok::<_, ()>(Verdict::Skip);
                }
                judged += 1;
                Ok(if item >= first_bad { Verdict::Bad } else { Verdict::Good })
            })
            .unwrap();
            match found {
                Next::Found { first_bad: found, last_good } => {
                    prop_assert_eq!(found, first_bad);
                    prop_assert_eq!(last_good, first_bad.checked_sub(1));
                }
                Next::OnlySkipped { candidates } => {
                    prop_assert!(candidates.contains(&first_bad), "{candidates:?} lacks {first_bad}");
                    let (bad, skipped_ones) = candidates.split_last().unwrap();
                    prop_assert!(*bad >= first_bad);
                    prop_assert!(skipped_ones.iter().all(|&item| skips[item]));
                }
                other => prop_assert!(false, "unexpected {other:?}"),
            }
            prop_assert!(judged <= ceil_log2(n), "{judged} verdicts for {n} items");
            prop_assert!(judged + skipped <= ceil_log2(n) + 1 + skipped);
        }
    }
}
