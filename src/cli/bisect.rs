//! `migsnap bisect`: find the first bad snapshot of a database, git-style.

use std::path::PathBuf;

use migsnap_store::ObjectId;
use serde::Serialize;

use super::log::{EntryDocument, oneline};
use super::output::{diff_lines, plural};
use super::{CliError, Ctx, ErrorKind, Status};
use crate::migrations::bisect::{self, Next, Session, StartOptions, Verdict};
use crate::repo::{Repo, Tracked};
use crate::schema::diff::Change;
use crate::snapshots::log::{LogEntry, SchemaCache, patch};
use crate::snapshots::revspec;

/// Find the first bad snapshot of a database by binary search along its
/// first-parent history, as `git bisect` does. Each candidate is checked out
/// into `.migsnap/bisect/DB.db` in the store; the live database is never
/// touched. The session lives in the store's refs until `bisect reset`.
#[derive(Debug, clap::Args)]
pub struct BisectArgs {
    /// Tracked database name (default: the only tracked one).
    #[arg(long, global = true, value_name = "NAME")]
    db: Option<String>,
    #[command(subcommand)]
    command: BisectCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BisectCommand {
    /// Start a session: BAD (default: the head) is bad, each GOOD is good.
    Start {
        /// A bad snapshot (REV syntax).
        bad: Option<String>,
        /// Good snapshots (REV syntax).
        good: Vec<String>,
        /// Count the state before the oldest snapshot as good, so no GOOD is
        /// needed and the oldest snapshot itself can turn out bad.
        #[arg(long)]
        from_root: bool,
    },
    /// Mark REV (default: the current candidate) good.
    Good {
        /// The snapshot (REV syntax).
        rev: Option<String>,
    },
    /// Mark REV (default: the current candidate) bad.
    Bad {
        /// The snapshot (REV syntax).
        rev: Option<String>,
    },
    /// Mark snapshots (default: the current candidate) as untestable.
    Skip {
        /// The snapshots (REV syntax).
        revs: Vec<String>,
    },
    /// Show where the session stands, checking the candidate out afresh.
    #[command(visible_alias = "view")]
    Status,
    /// Print the marks in the order they were given.
    Log,
    /// End the session: delete its refs and its checked-out database.
    Reset,
    /// Find, without a session, the first snapshot whose schema no longer
    /// matches the reference of the revision(s) it recorded (the built-in
    /// drift predicate; reads no data pages). With --revisions, bisect
    /// along the revision chain instead: the first revision whose reference
    /// introduces something the database lacks or contradicts.
    Drift {
        /// The database (instead of --db): a tracked name, or with
        /// --revisions also a path.
        database: Option<String>,
        /// Bisect the revision chain against the live database.
        #[arg(long)]
        revisions: bool,
        /// With --revisions: the revision the chain ends at (default: the
        /// stamped revision, or the only head).
        #[arg(long, value_name = "REV", requires = "revisions")]
        to: Option<String>,
        #[command(flatten)]
        project: super::migrations::ProjectArgs,
    },
    /// Judge each candidate by running CMD until the first bad is found:
    /// exit 0 is good, 125 skip, 1-127 bad; 128 and above, or a signal,
    /// abort. CMD gets MIGSNAP_BISECT_DB (the checked-out database) and
    /// MIGSNAP_BISECT_REV (the snapshot id); its stdout goes to stderr.
    Run {
        /// The command and its arguments.
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<String>,
    },
}

pub fn run(args: BisectArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    match args.command {
        BisectCommand::Drift {
            database,
            revisions: false,
            project,
            ..
        } => {
            return super::bisect_builtin::drift(ctx, database.or(args.db).as_deref(), &project);
        }
        BisectCommand::Drift {
            database,
            revisions: true,
            to,
            project,
        } => {
            return super::bisect_builtin::revisions(
                ctx,
                database.or(args.db).as_deref(),
                to.as_deref(),
                &project,
            );
        }
        _ => {}
    }
    let mut repo = ctx.open_repo()?;
    let db = ctx.select_db(&mut repo, args.db.as_deref())?;
    match args.command {
        BisectCommand::Start {
            bad,
            good,
            from_root,
        } => {
            let options = StartOptions {
                bad: bad.map(|rev| resolve(&repo, &db, &rev)).transpose()?,
                good: good
                    .iter()
                    .map(|rev| resolve(&repo, &db, rev))
                    .collect::<Result<_, _>>()?,
                from_root,
            };
            let session = Session::start(&mut repo, &db, &options)?;
            show_step(ctx, &repo, &db, &session, session.marks())
        }
        BisectCommand::Good { rev } => mark(ctx, repo, &db, Verdict::Good, Vec::from_iter(rev)),
        BisectCommand::Bad { rev } => mark(ctx, repo, &db, Verdict::Bad, Vec::from_iter(rev)),
        BisectCommand::Skip { revs } => mark(ctx, repo, &db, Verdict::Skip, revs),
        BisectCommand::Status => {
            let session = Session::load(&repo, &db)?;
            show_step(ctx, &repo, &db, &session, &[])
        }
        BisectCommand::Log => show_log(ctx, &repo, &db),
        BisectCommand::Reset => {
            let ended = bisect::reset(&mut repo, &db)?;
            if ctx.out.is_json() {
                ctx.out.json(&ResetDocument {
                    database: &db.name,
                    reset: ended,
                })?;
            } else if ended {
                ctx.out
                    .line(&format!("bisect session of '{}' ended", db.name))?;
            } else {
                ctx.out
                    .note(&format!("no bisect session of '{}' to reset", db.name));
            }
            Ok(Status::Ok)
        }
        BisectCommand::Run { command } => run_command(ctx, repo, &db, &command),
        BisectCommand::Drift { .. } => unreachable!("BUG: handled before a session is loaded"),
    }
}

fn resolve(repo: &Repo, db: &Tracked, rev: &str) -> Result<ObjectId, CliError> {
    Ok(revspec::resolve(repo, rev, Some(db))?)
}

/// Records `verdict` on `revs`, or on the current candidate when none are
/// named, then shows the next step.
fn mark(
    ctx: &Ctx,
    mut repo: Repo,
    db: &Tracked,
    verdict: Verdict,
    revs: Vec<String>,
) -> Result<Status, CliError> {
    let mut session = Session::load(&repo, db)?;
    let ids: Vec<ObjectId> = match (revs.is_empty(), session.next()) {
        (false, _) => revs
            .iter()
            .map(|rev| resolve(&repo, db, rev))
            .collect::<Result<_, _>>()?,
        (true, Next::Test { item, .. }) => vec![item],
        (true, _) => {
            return Err(CliError::new(
                ErrorKind::Usage,
                format!("there is no candidate to mark {verdict}"),
            )
            .hint(format!("name the snapshot: `migsnap bisect {verdict} REV`")));
        }
    };
    let marks: Vec<(ObjectId, Verdict)> = ids.into_iter().map(|id| (id, verdict)).collect();
    session.record(&mut repo, db, &marks)?;
    show_step(ctx, &repo, db, &session, &marks)
}

/// Prints the marks just made and where the session stands now.
fn show_step(
    ctx: &Ctx,
    repo: &Repo,
    db: &Tracked,
    session: &Session,
    marked: &[(ObjectId, Verdict)],
) -> Result<Status, CliError> {
    let state = State::of(ctx, repo, db, session)?;
    if ctx.out.is_json() {
        ctx.out.json(&StepDocument {
            database: &db.name,
            marked: marked
                .iter()
                .map(|(id, verdict)| Marked {
                    id: id.to_string(),
                    verdict: verdict.name(),
                })
                .collect(),
            next: &state.next,
        })?;
        return Ok(Status::Ok);
    }
    for (id, verdict) in marked {
        ctx.out.line(&format!(
            "marked {verdict}: {}",
            oneline(ctx, entry(session, id))
        ))?;
    }
    state.print(ctx)?;
    Ok(Status::Ok)
}

/// The JSON of `bisect reset`.
#[derive(Serialize)]
struct ResetDocument<'a> {
    database: &'a str,
    /// Whether a session was there to end.
    reset: bool,
}

/// The JSON of `bisect start`, `good`, `bad`, `skip` and `status`: the
/// marks just made and where the session stands.
#[derive(Serialize)]
struct StepDocument<'a> {
    database: &'a str,
    marked: Vec<Marked>,
    next: &'a NextDocument<'a>,
}

/// A mark just made.
#[derive(Serialize)]
struct Marked {
    id: String,
    verdict: &'static str,
}

/// Where a bisect session stands, as JSON: `state` names the variant.
#[derive(Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
enum NextDocument<'s> {
    /// A candidate to test, checked out at `path` (null when it has no
    /// data).
    Test {
        candidate: EntryDocument<'s>,
        remaining: usize,
        steps: u32,
        path: Option<PathBuf>,
    },
    /// The search ended; `patch` is the first bad snapshot's schema change.
    Found {
        // Boxed: two entries inline make this variant far larger than the
        // others (clippy::large_enum_variant).
        first_bad: Box<EntryDocument<'s>>,
        last_good: Option<EntryDocument<'s>>,
        patch: Vec<Change>,
    },
    /// Only skipped snapshots are left; any of them could be the first bad.
    OnlySkipped {
        candidates: Vec<EntryDocument<'s>>,
    },
    NeedBad,
    NeedGood,
    /// A good snapshot is newer than a bad one.
    Inconsistent {
        good: String,
        bad: String,
    },
}

/// The JSON of `bisect log`.
#[derive(Serialize)]
struct LogDocument<'a> {
    database: &'a str,
    start: String,
    from_root: bool,
    marks: Vec<LogMark<'a>>,
}

/// A mark in `bisect log`, with its snapshot's message.
#[derive(Serialize)]
struct LogMark<'a> {
    verdict: &'static str,
    id: String,
    message: &'a str,
}

/// The JSON of `bisect run`: the steps it took and where it stopped.
#[derive(Serialize)]
struct RunDocument<'a> {
    database: &'a str,
    steps: &'a [RunStep],
    next: &'a NextDocument<'a>,
}

/// One candidate `bisect run` tested.
#[derive(Serialize)]
struct RunStep {
    id: String,
    verdict: &'static str,
    exit_code: i32,
}

/// Where a session stands, rendered both ways, with the candidate (if any)
/// already checked out.
struct State<'s> {
    next: NextDocument<'s>,
    lines: Vec<String>,
    /// The snapshot to test and the path of its database, if it has one.
    candidate: Option<(ObjectId, Option<PathBuf>)>,
}

impl<'s> State<'s> {
    fn of(
        ctx: &Ctx,
        repo: &Repo,
        db: &Tracked,
        session: &'s Session,
    ) -> Result<State<'s>, CliError> {
        let state = |next, lines| State {
            next,
            lines,
            candidate: None,
        };
        Ok(match session.next() {
            Next::Test {
                item,
                remaining,
                steps,
            } => {
                let candidate = entry(session, &item);
                let path =
                    bisect::checkout_candidate(repo, db, candidate, ctx.out.progress().as_mut())?;
                let database = match &path {
                    Some(path) => path.display().to_string(),
                    None if candidate.forgotten => {
                        "none (its data was forgotten by retention)".to_owned()
                    }
                    None => "none (schema-only snapshot)".to_owned(),
                };
                State {
                    next: NextDocument::Test {
                        candidate: EntryDocument::new(candidate),
                        remaining,
                        steps,
                        path: path.clone(),
                    },
                    lines: vec![
                        format!(
                            "Bisecting: {remaining} candidate{} left, about {steps} step{}",
                            plural(remaining),
                            plural(steps as usize)
                        ),
                        format!("candidate {}", oneline(ctx, candidate)),
                        format!("database  {database}"),
                    ],
                    candidate: Some((item, path)),
                }
            }
            Next::Found {
                first_bad,
                last_good,
            } => {
                let bad = entry(session, &first_bad);
                let good = last_good.map(|id| entry(session, &id));
                // The line is a first-parent chain and nothing is left between
                // the two, so the first bad's own patch is the change from the
                // last good.
                let changes = patch(repo.store.view(), &mut SchemaCache::default(), bad)?;
                let mut lines = vec![
                    format!("first bad snapshot: {}", oneline(ctx, bad)),
                    match good {
                        Some(good) => format!("last good snapshot: {}", oneline(ctx, good)),
                        None => "last good snapshot: none (the oldest snapshot is bad)".to_owned(),
                    },
                ];
                if !changes.is_empty() {
                    lines.push("schema changes in the first bad snapshot:".to_owned());
                    lines.extend(diff_lines(&ctx.out, &changes, "    "));
                }
                state(
                    NextDocument::Found {
                        first_bad: Box::new(EntryDocument::new(bad)),
                        last_good: good.map(EntryDocument::new),
                        patch: changes.changes,
                    },
                    lines,
                )
            }
            Next::OnlySkipped { candidates } => {
                let entries: Vec<&LogEntry> =
                    candidates.iter().map(|id| entry(session, id)).collect();
                let mut lines = vec![
                    "There are only skipped snapshots left to test.".to_owned(),
                    "The first bad snapshot could be any of:".to_owned(),
                ];
                lines.extend(entries.iter().map(|entry| oneline(ctx, entry)));
                state(
                    NextDocument::OnlySkipped {
                        candidates: entries.into_iter().map(EntryDocument::new).collect(),
                    },
                    lines,
                )
            }
            Next::NeedBad => state(
                NextDocument::NeedBad,
                vec!["waiting for a bad snapshot: `migsnap bisect bad REV`".to_owned()],
            ),
            Next::NeedGood => state(
                NextDocument::NeedGood,
                vec![
                    "waiting for a good snapshot: `migsnap bisect good REV` \
                     (or `bisect start --from-root`)"
                        .to_owned(),
                ],
            ),
            Next::Inconsistent { good, bad } => state(
                NextDocument::Inconsistent {
                    good: good.to_string(),
                    bad: bad.to_string(),
                },
                vec![format!(
                    "inconsistent marks: {good:.12} is good but newer than {bad:.12}, marked bad"
                )],
            ),
        })
    }

    fn print(&self, ctx: &Ctx) -> Result<(), CliError> {
        self.lines.iter().try_for_each(|line| ctx.out.line(line))
    }
}

fn entry<'s>(session: &'s Session, id: &ObjectId) -> &'s LogEntry {
    session
        .entry(id)
        .expect("holds because sessions only name snapshots of their line")
}

fn show_log(ctx: &Ctx, repo: &Repo, db: &Tracked) -> Result<Status, CliError> {
    let session = Session::load(repo, db)?;
    let start = entry(&session, &session.start_id());
    if ctx.out.is_json() {
        ctx.out.json(&LogDocument {
            database: &db.name,
            start: start.id.to_string(),
            from_root: session.from_root(),
            marks: session
                .marks()
                .iter()
                .map(|(id, verdict)| LogMark {
                    verdict: verdict.name(),
                    id: id.to_string(),
                    message: &entry(&session, id).snapshot.message,
                })
                .collect(),
        })?;
        return Ok(Status::Ok);
    }
    let from_root = if session.from_root() {
        " (from root)"
    } else {
        ""
    };
    ctx.out
        .line(&format!("start{from_root} {}", oneline(ctx, start)))?;
    for (id, verdict) in session.marks() {
        ctx.out
            .line(&format!("{verdict} {}", oneline(ctx, entry(&session, id))))?;
    }
    Ok(Status::Ok)
}

/// `bisect run`: test candidates with `command` until the search ends. Each
/// verdict is recorded as it comes, so an aborted run keeps its progress.
fn run_command(
    ctx: &Ctx,
    mut repo: Repo,
    db: &Tracked,
    command: &[String],
) -> Result<Status, CliError> {
    let mut session = Session::load(&repo, db)?;
    if matches!(session.next(), Next::NeedBad | Next::NeedGood) {
        return Err(CliError::new(
            ErrorKind::Input,
            "bisect run needs a snapshot marked bad and one marked good first",
        )
        .hint("mark them with `migsnap bisect bad REV` and `migsnap bisect good REV`, or start with --from-root"));
    }
    let mut steps = Vec::new();
    loop {
        let state = State::of(ctx, &repo, db, &session)?;
        let Some((candidate, path)) = state.candidate.clone() else {
            if ctx.out.is_json() {
                ctx.out.json(&RunDocument {
                    database: &db.name,
                    steps: &steps,
                    next: &state.next,
                })?;
            } else {
                state.print(ctx)?;
            }
            return Ok(Status::Ok);
        };
        if !ctx.out.is_json() {
            state.print(ctx)?;
        }
        let outcome = bisect::run_test(command, candidate, path.as_deref())?;
        session.record(&mut repo, db, &[(candidate, outcome.verdict)])?;
        if !ctx.out.is_json() {
            ctx.out.line(&format!(
                "verdict   {} (exit {})",
                outcome.verdict, outcome.exit_code
            ))?;
        }
        steps.push(RunStep {
            id: candidate.to_string(),
            verdict: outcome.verdict.name(),
            exit_code: outcome.exit_code,
        });
    }
}
