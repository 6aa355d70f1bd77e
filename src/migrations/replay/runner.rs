//! The ways a replay applies one revision to its scratch database: the
//! project's own Alembic through one long-lived Python process, a command
//! template for other tools, or migsnap itself for a folder of `.sql` files.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::migrations::history::sql_folder::{self, SqlMigration};

/// Why one step failed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StepFailure {
    /// One line: the error as the tool gave it.
    pub error: String,
    /// The revision file the error came from, when known.
    pub file: Option<PathBuf>,
    /// The tool's own account: a traceback or the tail of its output.
    pub detail: String,
}

/// Applies revisions to the scratch database.
pub trait Runner {
    /// Upgrades the scratch database from its current state to `target`.
    fn upgrade(&mut self, target: &str) -> Result<(), StepFailure>;
    /// Downgrades the scratch database from its current state to `target`:
    /// an Alembic downgrade target (`<rev>@-1`, a parent id) for Alembic, a
    /// migration id or `base` for a SQL folder. Used by the round trip of
    /// `migsnap test`; replay only ever upgrades.
    fn downgrade(&mut self, target: &str) -> Result<(), StepFailure>;
    /// Whether this runner has started an external process.
    fn started_process(&self) -> bool;
    /// Calls the Python callable `module:function` with the scratch
    /// database's URL `url`: a bootstrap. Only the Alembic driver runs
    /// Python; other runners refuse.
    fn bootstrap(&mut self, callable: &str, url: &str) -> Result<(), StepFailure> {
        let _ = url;
        Err(failure(format!(
            "the bootstrap {callable} is a Python callable, which only a project replayed by Alembic can run; use a SQL file or a snapshot's tables"
        )))
    }
}

/// The last lines a child process wrote, for error reports.
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<VecDeque<String>>>);

/// How many lines of a tool's output an error report keeps.
const TAIL_LINES: usize = 40;

impl Tail {
    fn collect(&self, stream: impl Read + Send + 'static) -> std::thread::JoinHandle<()> {
        let lines = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut lines = lines.lock().unwrap_or_else(|p| p.into_inner());
                if lines.len() == TAIL_LINES {
                    lines.pop_front();
                }
                lines.push_back(line);
            }
        })
    }

    fn text(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// The driver migsnap ships and runs with the project's Python.
const DRIVER: &str = include_str!("alembic_driver.py");

/// What the driver answers.
#[derive(serde::Deserialize)]
struct Reply {
    ok: bool,
    #[serde(default)]
    error: String,
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    traceback: String,
    /// `models`: whether there were models to create.
    #[serde(default)]
    models: bool,
    /// `models`: the project files the models were loaded from.
    #[serde(default)]
    files: Vec<PathBuf>,
}

/// How to start the Alembic driver.
#[derive(Clone, Debug)]
pub struct AlembicLaunch {
    /// The project's Python.
    pub python: PathBuf,
    /// The directory Alembic runs in (the ini's directory).
    pub cwd: PathBuf,
    /// The ini file, if the project has one.
    pub ini: Option<PathBuf>,
    /// `pyproject.toml`, when the settings come from `[tool.alembic]`.
    pub toml: Option<PathBuf>,
    /// The ini section.
    pub section: String,
    /// The scratch database URL to set as `sqlalchemy.url`, or `None` to
    /// leave the ini's URL alone (then only the environment carries it).
    pub url_in_ini: Option<String>,
    /// Environment variables to set, such as `DATABASE_URL`.
    pub env: Vec<(String, String)>,
    /// The revision directories, to name the file a failure came from.
    pub version_dirs: Vec<PathBuf>,
    /// The longest one step may take.
    pub timeout: Duration,
}

/// One Python process running the project's Alembic for every step.
pub struct AlembicDriver {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    stderr: Tail,
    timeout: Duration,
    _script: tempfile::NamedTempFile,
}

impl AlembicDriver {
    /// Starts the driver and waits until Alembic and the project's
    /// configuration are loaded.
    pub fn start(launch: &AlembicLaunch) -> Result<AlembicDriver, StepFailure> {
        let mut script = tempfile::Builder::new()
            .prefix("migsnap-alembic-driver-")
            .suffix(".py")
            .tempfile()
            .map_err(|e| failure(format!("cannot write the replay driver: {e}")))?;
        script
            .write_all(DRIVER.as_bytes())
            .map_err(|e| failure(format!("cannot write the replay driver: {e}")))?;
        let path_arg = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or_else(|| "-".into(), |p| p.as_os_str().to_owned())
        };
        let mut command = Command::new(&launch.python);
        command
            .arg(script.path())
            .arg(path_arg(&launch.ini))
            .arg(path_arg(&launch.toml))
            .arg(&launch.section)
            .arg(launch.url_in_ini.as_deref().unwrap_or("-"))
            .args(&launch.version_dirs)
            .current_dir(&launch.cwd)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| {
            failure(format!(
                "cannot run Python {}: {e}",
                launch.python.display()
            ))
        })?;
        let stderr = Tail::default();
        stderr.collect(child.stderr.take().expect("holds: stderr is piped"));
        let stdout = child.stdout.take().expect("holds: stdout is piped");
        let (send, replies) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().expect("holds: stdin is piped");
        let mut driver = AlembicDriver {
            child,
            stdin,
            replies,
            stderr,
            timeout: launch.timeout,
            _script: script,
        };
        driver.answer("loading Alembic")?;
        Ok(driver)
    }

    /// Waits for the next answer.
    fn answer(&mut self, doing: &str) -> Result<Reply, StepFailure> {
        let line = match self.replies.recv_timeout(self.timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(StepFailure {
                    error: format!(
                        "{doing} did not finish within {}; the replay was stopped",
                        crate::duration::display(self.timeout)
                    ),
                    file: None,
                    detail: self.stderr.text(),
                });
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().ok();
                // Give the stderr reader a moment to drain what the process
                // said before it died.
                std::thread::sleep(Duration::from_millis(50));
                return Err(StepFailure {
                    error: format!(
                        "Python exited while {doing}{}",
                        status.map(|s| format!(" ({s})")).unwrap_or_default()
                    ),
                    file: None,
                    detail: self.stderr.text(),
                });
            }
        };
        let reply: Reply = serde_json::from_str(&line).map_err(|e| StepFailure {
            error: format!("the replay driver answered something unexpected ({e})"),
            file: None,
            detail: line.clone(),
        })?;
        if reply.ok {
            self.stderr.clear();
            Ok(reply)
        } else {
            Err(StepFailure {
                error: reply.error,
                file: reply.file,
                detail: if reply.traceback.is_empty() {
                    self.stderr.text()
                } else {
                    reply.traceback
                },
            })
        }
    }
}

impl AlembicDriver {
    /// Sends one `upgrade` or `downgrade` request and waits for its answer.
    fn request(&mut self, op: &str, target: &str) -> Result<(), StepFailure> {
        let doing = if op == "downgrade" {
            "downgrading"
        } else {
            "upgrading"
        };
        self.send(
            &serde_json::json!({"op": op, "target": target}),
            &format!("{doing} to {target}"),
        )
        .map(|_| ())
    }

    /// Sends one request and waits for its answer.
    fn send(&mut self, request: &serde_json::Value, doing: &str) -> Result<Reply, StepFailure> {
        writeln!(self.stdin, "{request}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| failure(format!("cannot talk to the replay driver: {e}")))?;
        self.answer(doing)
    }

    /// Creates the tables of the application's SQLAlchemy models on the
    /// database at `url`: the metadata `attribute` names
    /// (`package.module:attribute`), else the `target_metadata` env.py
    /// configures. `Ok(None)` when there is no metadata; otherwise the
    /// project's Python files the models were loaded from.
    pub fn models(
        &mut self,
        url: &str,
        attribute: Option<&str>,
    ) -> Result<Option<Vec<PathBuf>>, StepFailure> {
        let reply = self.send(
            &serde_json::json!({"op": "models", "url": url, "attribute": attribute}),
            "creating the models' tables",
        )?;
        Ok(reply.models.then_some(reply.files))
    }
}

impl Runner for AlembicDriver {
    fn upgrade(&mut self, target: &str) -> Result<(), StepFailure> {
        self.request("upgrade", target)
    }

    fn bootstrap(&mut self, callable: &str, url: &str) -> Result<(), StepFailure> {
        self.send(
            &serde_json::json!({"op": "bootstrap", "callable": callable, "url": url}),
            &format!("running the bootstrap {callable}"),
        )
        .map(|_| ())
    }

    fn downgrade(&mut self, target: &str) -> Result<(), StepFailure> {
        self.request("downgrade", target)
    }

    fn started_process(&self) -> bool {
        true
    }
}

impl Drop for AlembicDriver {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", serde_json::json!({"op": "quit"}));
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn failure(error: String) -> StepFailure {
    StepFailure {
        error,
        file: None,
        detail: String::new(),
    }
}

/// A command per step, from a template in `migsnap.toml`: `{db}` (the
/// scratch file), `{url}` (its SQLAlchemy URL) and `{rev}` are replaced in
/// each word after splitting, so no value is ever parsed by a shell.
pub struct TemplateRunner {
    words: Vec<String>,
    db: PathBuf,
    url: String,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    timeout: Duration,
    started: bool,
}

impl TemplateRunner {
    /// Prepares `template`; fails when it does not split into words.
    pub fn new(
        template: &str,
        db: &Path,
        url: &str,
        cwd: &Path,
        env: Vec<(String, String)>,
        timeout: Duration,
    ) -> Result<TemplateRunner, String> {
        let words = shell_words::split(template)
            .map_err(|e| format!("upgrade = \"{template}\" does not split into words: {e}"))?;
        if words.is_empty() {
            return Err("upgrade = \"\" names no command".into());
        }
        Ok(TemplateRunner {
            words,
            db: db.to_path_buf(),
            url: url.to_owned(),
            cwd: cwd.to_path_buf(),
            env,
            timeout,
            started: false,
        })
    }
}

impl Runner for TemplateRunner {
    fn upgrade(&mut self, target: &str) -> Result<(), StepFailure> {
        let db = self.db.display().to_string();
        let words: Vec<String> = self
            .words
            .iter()
            .map(|w| {
                w.replace("{db}", &db)
                    .replace("{url}", &self.url)
                    .replace("{rev}", target)
            })
            .collect();
        self.started = true;
        let mut child = Command::new(&words[0])
            .args(&words[1..])
            .current_dir(&self.cwd)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failure(format!("cannot run {}: {e}", words[0])))?;
        let output = Tail::default();
        let readers = [
            output.collect(child.stdout.take().expect("holds: piped")),
            output.collect(child.stderr.take().expect("holds: piped")),
        ];
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(StepFailure {
                        error: format!(
                            "`{}` did not finish within {}; it was stopped",
                            words.join(" "),
                            crate::duration::display(self.timeout)
                        ),
                        file: None,
                        detail: output.text(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(failure(format!("cannot wait for {}: {e}", words[0]))),
            }
        };
        for reader in readers {
            let _ = reader.join();
        }
        if status.success() {
            Ok(())
        } else {
            Err(StepFailure {
                error: format!("`{}` failed ({status})", words.join(" ")),
                file: None,
                detail: output.text(),
            })
        }
    }

    /// A template names one command, which only upgrades: there is no
    /// setting for a way down, so the round trip refuses such projects
    /// before it gets here.
    fn downgrade(&mut self, target: &str) -> Result<(), StepFailure> {
        Err(failure(format!(
            "cannot downgrade to {target}: the `upgrade` template has no downgrade counterpart"
        )))
    }

    fn started_process(&self) -> bool {
        self.started
    }
}

/// Applies a folder of `.sql` files itself: each file in one transaction,
/// which also sets `PRAGMA user_version` to the file's number.
pub struct SqlRunner {
    db: PathBuf,
    migrations: Vec<SqlMigration>,
}

impl SqlRunner {
    /// Reads the folder.
    pub fn new(dir: &Path, db: &Path) -> std::io::Result<SqlRunner> {
        Ok(SqlRunner {
            db: db.to_path_buf(),
            migrations: sql_folder::scan(dir)?.0,
        })
    }
}

impl Runner for SqlRunner {
    fn upgrade(&mut self, target: &str) -> Result<(), StepFailure> {
        let end = self
            .migrations
            .iter()
            .position(|m| m.id == target)
            .ok_or_else(|| failure(format!("no migration '{target}' in the folder")))?;
        let mut conn = rusqlite::Connection::open(&self.db)
            .map_err(|e| failure(format!("cannot open the scratch database: {e}")))?;
        let current: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| failure(e.to_string()))?;
        for migration in &self.migrations[..=end] {
            if i64::try_from(migration.number).is_ok_and(|n| n <= current) {
                continue;
            }
            let sql = std::fs::read_to_string(&migration.up).map_err(|e| StepFailure {
                error: format!("cannot read {}: {e}", migration.up.display()),
                file: Some(migration.up.clone()),
                detail: String::new(),
            })?;
            let applied = conn.transaction().and_then(|tx| {
                tx.execute_batch(&sql)?;
                tx.pragma_update(None, "user_version", migration.number as i64)?;
                tx.commit()
            });
            applied.map_err(|e| StepFailure {
                error: e.to_string(),
                file: Some(migration.up.clone()),
                detail: String::new(),
            })?;
        }
        Ok(())
    }

    /// Undoes, newest first, every applied migration numbered above
    /// `target` (`base`: all of them): each `down.sql` in one transaction
    /// that also sets `user_version` to the number of the migration before
    /// it (0 before the first), as upgrading to that one would have left it.
    fn downgrade(&mut self, target: &str) -> Result<(), StepFailure> {
        let floor = if target == "base" {
            0
        } else {
            self.migrations
                .iter()
                .find(|m| m.id == target)
                .map(|m| m.number)
                .ok_or_else(|| failure(format!("no migration '{target}' in the folder")))?
        };
        let mut conn = rusqlite::Connection::open(&self.db)
            .map_err(|e| failure(format!("cannot open the scratch database: {e}")))?;
        let current: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| failure(e.to_string()))?;
        for (index, migration) in self.migrations.iter().enumerate().rev() {
            if migration.number <= floor
                || i64::try_from(migration.number).is_ok_and(|n| n > current)
            {
                continue;
            }
            let Some(down) = &migration.down else {
                return Err(StepFailure {
                    error: format!("no down.sql for migration {}", migration.id),
                    file: Some(migration.up.clone()),
                    detail: String::new(),
                });
            };
            let sql = std::fs::read_to_string(down).map_err(|e| StepFailure {
                error: format!("cannot read {}: {e}", down.display()),
                file: Some(down.clone()),
                detail: String::new(),
            })?;
            let previous = index
                .checked_sub(1)
                .map_or(0, |before| self.migrations[before].number);
            let applied = conn.transaction().and_then(|tx| {
                tx.execute_batch(&sql)?;
                tx.pragma_update(None, "user_version", previous as i64)?;
                tx.commit()
            });
            applied.map_err(|e| StepFailure {
                error: e.to_string(),
                file: Some(down.clone()),
                detail: String::new(),
            })?;
        }
        Ok(())
    }

    fn started_process(&self) -> bool {
        false
    }
}
