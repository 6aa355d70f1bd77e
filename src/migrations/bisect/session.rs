//! An interactive bisection of one tracked database's snapshot history,
//! kept in the store's refs so every mark is one store transaction and a
//! session survives crashes and concurrent commands; and the pieces
//! `bisect run` needs: checking a candidate out and running a test on it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use migsnap_store::{Change, Expected, ObjectId, Progress, RefEdit, RefName};

use super::{BisectError, Bisection, Next, Verdict};
use crate::repo::{Repo, Tracked};
use crate::snapshots::log::{LogEntry, first_parent_log};
use crate::snapshots::restore;

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
    restore::checkout(
        repo,
        entry.id,
        &path,
        true,
        crate::snapshots::sqlite::DEFAULT_BUSY_TIMEOUT,
        progress,
    )?;
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
    use super::*;

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
}
