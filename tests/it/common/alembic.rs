//! Real Alembic projects, migrated by real Alembic.
//!
//! [`AlembicProject`] writes a project into a test's temp dir the way
//! `alembic init` and `alembic revision` lay one out (`alembic.ini`,
//! `migrations/env.py`, `migrations/script.py.mako`,
//! `migrations/versions/<id>_<slug>.py`), with revision files whose ids,
//! parents, labels, dependencies and `upgrade()`/`downgrade()` bodies the test
//! chooses. Its methods run the real `alembic` command line with the Python
//! of `MIGSNAP_TEST_PYTHON`, which `scripts/test.sh` points at `.venv/` (pinned
//! Alembic and SQLAlchemy, `scripts/requirements-test.txt`).
//!
//! Without `MIGSNAP_TEST_PYTHON` a test that needs Alembic fails and says how
//! to run it, unless `MIGSNAP_SKIP_ALEMBIC=1` asks to skip those tests.
//! [`AlembicProject::chat_app`] is a canned Open-WebUI-like history.
//!
//! Each `alembic` run starts Python (about a second with SQLAlchemy loaded),
//! so tests should run as few as they need.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rusqlite::{Connection, OpenFlags};

use super::{Output, TestEnv};

/// The Python that has the pinned Alembic (set by `scripts/test.sh`).
pub const PYTHON_VAR: &str = "MIGSNAP_TEST_PYTHON";
/// `1` skips the tests that need Alembic instead of failing them.
pub const SKIP_VAR: &str = "MIGSNAP_SKIP_ALEMBIC";

/// What the environment says about running Alembic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interpreter {
    /// Run Alembic with this Python.
    Use(PathBuf),
    /// `MIGSNAP_SKIP_ALEMBIC=1`: skip, and say so.
    Skip,
    /// Neither: the test must fail with this message.
    Missing(String),
}

/// Decides from the values of [`PYTHON_VAR`] and [`SKIP_VAR`]. An explicit
/// skip wins; an empty or unset Python, or one that does not exist, is an
/// error.
pub fn interpreter_from(python: Option<OsString>, skip: Option<OsString>) -> Interpreter {
    if skip.as_deref().is_some_and(|s| s == "1") {
        return Interpreter::Skip;
    }
    let how = format!(
        "run the whole suite with `bash scripts/test.sh`, which installs the pinned \
         Alembic into .venv/ and sets {PYTHON_VAR}; or run \
         `bash scripts/test-venv.sh && export {PYTHON_VAR}=$PWD/.venv/bin/python` \
         before `cargo test`; or set {SKIP_VAR}=1 to skip the tests that need Alembic"
    );
    match python.filter(|p| !p.is_empty()) {
        None => Interpreter::Missing(format!(
            "this test runs real Alembic, but {PYTHON_VAR} is not set: {how}"
        )),
        Some(p) => {
            let path = PathBuf::from(p);
            if path.is_file() {
                Interpreter::Use(path)
            } else {
                Interpreter::Missing(format!(
                    "{PYTHON_VAR}={} does not exist: {how}",
                    path.display()
                ))
            }
        }
    }
}

/// The Python to run Alembic with; `None` when the test is to be skipped
/// (and it says so on stderr, past the test harness's capture). Panics with
/// instructions when Alembic is not set up.
#[track_caller]
pub fn python_or_skip() -> Option<PathBuf> {
    match interpreter_from(std::env::var_os(PYTHON_VAR), std::env::var_os(SKIP_VAR)) {
        Interpreter::Use(path) => Some(path),
        Interpreter::Skip => {
            super::skip(&format!("{SKIP_VAR}=1; it needs Alembic"));
            None
        }
        Interpreter::Missing(message) => panic!("{message}"),
    }
}

/// `down_revision` of a revision file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    /// `None`: a base.
    Base,
    /// One parent.
    One(String),
    /// A merge: a tuple of parents.
    Merge(Vec<String>),
}

/// How the revision file's header and functions are written: Alembic's
/// template has changed over the years, and real projects (Open WebUI among
/// them) mix files made by several versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderStyle {
    /// What `alembic revision` writes today:
    /// `down_revision: Union[str, Sequence[str], None] = '…'`, docstrings in
    /// `upgrade() -> None`.
    Typed,
    /// The earlier typed template: `down_revision: Union[str, None] = '…'`,
    /// no docstrings.
    TypedLegacy,
    /// The untyped template (`revision = "…"`), as formatted by black with
    /// double quotes, like Open WebUI's early revisions.
    Untyped,
}

/// One revision file, built up and then written by
/// [`AlembicProject::revision`].
#[derive(Debug, Clone)]
pub struct Revision {
    pub id: String,
    pub message: String,
    pub down: Down,
    pub branch_labels: Vec<String>,
    pub depends_on: Vec<String>,
    /// Python statements, any common indentation (they are re-indented).
    pub upgrade: String,
    pub downgrade: String,
    pub style: HeaderStyle,
    /// `Create Date:` of the docstring header.
    pub create_date: String,
    /// Replaces the `Revises:` header line's value (to write a header that
    /// disagrees with `down_revision`).
    pub header_revises: Option<String>,
}

impl Revision {
    /// A base revision (`down_revision = None`) with empty bodies.
    pub fn new(id: &str, message: &str) -> Revision {
        Revision {
            id: id.to_owned(),
            message: message.to_owned(),
            down: Down::Base,
            branch_labels: Vec::new(),
            depends_on: Vec::new(),
            upgrade: String::new(),
            downgrade: String::new(),
            style: HeaderStyle::Typed,
            create_date: "2024-06-01 12:00:00.000000".to_owned(),
            header_revises: None,
        }
    }

    /// Its parent.
    pub fn down(mut self, parent: &str) -> Revision {
        self.down = Down::One(parent.to_owned());
        self
    }

    /// Its parents: a merge revision.
    pub fn merge(mut self, parents: &[&str]) -> Revision {
        self.down = Down::Merge(parents.iter().map(|p| (*p).to_owned()).collect());
        self
    }

    pub fn branch_label(mut self, label: &str) -> Revision {
        self.branch_labels.push(label.to_owned());
        self
    }

    pub fn depends_on(mut self, rev: &str) -> Revision {
        self.depends_on.push(rev.to_owned());
        self
    }

    /// The body of `upgrade()`.
    pub fn upgrade(mut self, body: &str) -> Revision {
        self.upgrade = body.to_owned();
        self
    }

    /// The body of `downgrade()`.
    pub fn downgrade(mut self, body: &str) -> Revision {
        self.downgrade = body.to_owned();
        self
    }

    pub fn style(mut self, style: HeaderStyle) -> Revision {
        self.style = style;
        self
    }

    pub fn create_date(mut self, date: &str) -> Revision {
        self.create_date = date.to_owned();
        self
    }

    pub fn header_revises(mut self, text: &str) -> Revision {
        self.header_revises = Some(text.to_owned());
        self
    }

    /// The file name `alembic revision` would give it: `<id>_<slug>.py`.
    pub fn file_name(&self) -> String {
        format!("{}_{}.py", self.id, slug(&self.message))
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let q = match self.style {
            HeaderStyle::Untyped => '"',
            HeaderStyle::Typed | HeaderStyle::TypedLegacy => '\'',
        };
        let revises = match (&self.header_revises, &self.down) {
            (Some(text), _) => text.clone(),
            (None, Down::Base) => String::new(),
            (None, Down::One(p)) => p.clone(),
            (None, Down::Merge(ps)) => ps.join(", "),
        };
        let down = match &self.down {
            Down::Base => "None".to_owned(),
            Down::One(p) => py_str(p, q),
            Down::Merge(ps) => py_tuple(ps, q),
        };
        let labels = py_tuple_or_none(&self.branch_labels, q);
        let depends = match self.depends_on.as_slice() {
            [] => "None".to_owned(),
            [one] => py_str(one, q),
            many => py_tuple(many, q),
        };
        let id = py_str(&self.id, q);
        let upgrade = indent_body(&self.upgrade);
        let downgrade = indent_body(&self.downgrade);
        let mut out = format!(
            "\"\"\"{}\n\nRevision ID: {}\nRevises: {revises}\nCreate Date: {}\n\n\"\"\"\n",
            self.message, self.id, self.create_date
        );
        match self.style {
            HeaderStyle::Typed | HeaderStyle::TypedLegacy => {
                let down_type = if self.style == HeaderStyle::Typed {
                    "Union[str, Sequence[str], None]"
                } else {
                    "Union[str, None]"
                };
                let (up_doc, down_doc) = if self.style == HeaderStyle::Typed {
                    (
                        "    \"\"\"Upgrade schema.\"\"\"\n",
                        "    \"\"\"Downgrade schema.\"\"\"\n",
                    )
                } else {
                    ("", "")
                };
                out.push_str(&format!(
                    "from typing import Sequence, Union\n\
                     \n\
                     from alembic import op\n\
                     import sqlalchemy as sa\n\
                     \n\
                     \n\
                     # revision identifiers, used by Alembic.\n\
                     revision: str = {id}\n\
                     down_revision: {down_type} = {down}\n\
                     branch_labels: Union[str, Sequence[str], None] = {labels}\n\
                     depends_on: Union[str, Sequence[str], None] = {depends}\n\
                     \n\
                     \n\
                     def upgrade() -> None:\n\
                     {up_doc}{upgrade}\n\
                     \n\
                     def downgrade() -> None:\n\
                     {down_doc}{downgrade}"
                ));
            }
            HeaderStyle::Untyped => {
                out.push_str(&format!(
                    "\n\
                     from alembic import op\n\
                     import sqlalchemy as sa\n\
                     \n\
                     \n\
                     # revision identifiers, used by Alembic.\n\
                     revision = {id}\n\
                     down_revision = {down}\n\
                     branch_labels = {labels}\n\
                     depends_on = {depends}\n\
                     \n\
                     \n\
                     def upgrade():\n\
                     {upgrade}\n\
                     \n\
                     def downgrade():\n\
                     {downgrade}"
                ));
            }
        }
        out
    }
}

/// Alembic's file-name slug: the message's words joined by `_`, lowercased,
/// cut at a word boundary past 40 characters.
pub fn slug(message: &str) -> String {
    let words: Vec<String> = message
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let slug = words.join("_");
    if slug.chars().count() > 40 {
        let cut: String = slug.chars().take(40).collect();
        match cut.rsplit_once('_') {
            Some((head, _)) => format!("{head}_"),
            None => format!("{cut}_"),
        }
    } else {
        slug
    }
}

fn py_str(text: &str, quote: char) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        if c == '\\' || c == quote {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(quote);
    out
}

fn py_tuple(items: &[String], quote: char) -> String {
    let parts: Vec<String> = items.iter().map(|i| py_str(i, quote)).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

fn py_tuple_or_none(items: &[String], quote: char) -> String {
    if items.is_empty() {
        "None".to_owned()
    } else {
        py_tuple(items, quote)
    }
}

/// Dedents `body` and indents it by four spaces, one line per statement
/// line; an empty body is `pass`. Ends with a newline.
fn indent_body(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let first = lines.iter().position(|l| !l.trim().is_empty());
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    let (Some(first), Some(last)) = (first, last) else {
        return "    pass\n".to_owned();
    };
    let lines = &lines[first..=last];
    let margin = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in lines {
        if line.trim().is_empty() {
            out.push('\n');
        } else {
            out.push_str("    ");
            out.push_str(line[margin..].trim_end());
            out.push('\n');
        }
    }
    out
}

/// The project's `alembic.ini`: today's `alembic init` template, shortened,
/// with a SQLite URL relative to the directory Alembic runs in (the project
/// root) and `script_location` relative to the ini file.
pub const ALEMBIC_INI: &str = r#"# A generic, single database configuration.

[alembic]
# path to migration scripts; %(here)s is the directory of this file
script_location = %(here)s/migrations

# sys.path path, will be prepended to sys.path if present.
prepend_sys_path = .

# path separator for version_locations and prepend_sys_path
path_separator = os

# The URL env.py uses unless DATABASE_URL is set (as in Open WebUI).
sqlalchemy.url = sqlite:///data/app.db


[post_write_hooks]

# Logging configuration
[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
"#;

/// `migrations/env.py`: Alembic's generic template, with the database URL
/// taken from `DATABASE_URL` when set (as Open WebUI's env.py does) and batch
/// mode on, so `op.alter_column` and friends work on SQLite.
pub const ENV_PY: &str = r#"import os
from logging.config import fileConfig

from sqlalchemy import engine_from_config
from sqlalchemy import pool

from alembic import context

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# add your model's MetaData object here
# for 'autogenerate' support
target_metadata = None

# Like Open WebUI: the application's DATABASE_URL wins over alembic.ini.
DATABASE_URL = os.environ.get("DATABASE_URL")
if DATABASE_URL:
    config.set_main_option("sqlalchemy.url", DATABASE_URL.replace("%", "%%"))


def run_migrations_offline() -> None:
    """Run migrations in 'offline' mode: emit SQL, no Engine."""
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations in 'online' mode, on a connection."""
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )

    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
        )

        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
"#;

/// `migrations/script.py.mako`, verbatim from Alembic 1.20's generic
/// template, so `alembic revision` works in the project too.
pub const SCRIPT_PY_MAKO: &str = r#""""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: Union[str, Sequence[str], None] = ${repr(down_revision)}
branch_labels: Union[str, Sequence[str], None] = ${repr(branch_labels)}
depends_on: Union[str, Sequence[str], None] = ${repr(depends_on)}


def upgrade() -> None:
    """Upgrade schema."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Downgrade schema."""
    ${downgrades if downgrades else "pass"}
"#;

/// An Alembic project on disk, and the real `alembic` to run in it.
pub struct AlembicProject {
    root: PathBuf,
    python: PathBuf,
    /// Revision ids in the order they were written.
    written: Vec<String>,
}

impl AlembicProject {
    /// The database path relative to the project root, as the ini names it.
    pub const DB: &'static str = "data/app.db";

    /// A project with no revisions at the root of `env`; `None` when the
    /// Alembic tests are skipped (see [`python_or_skip`]).
    #[track_caller]
    pub fn new(env: &TestEnv) -> Option<AlembicProject> {
        Self::new_in(env, ".")
    }

    /// The same in a subdirectory of `env` (created), as Open WebUI keeps
    /// its `alembic.ini` in `backend/open_webui/`.
    #[track_caller]
    pub fn new_in(env: &TestEnv, rel: &str) -> Option<AlembicProject> {
        let python = python_or_skip()?;
        let root = env.join(rel);
        let project = AlembicProject {
            root,
            python,
            written: Vec::new(),
        };
        std::fs::create_dir_all(project.versions_dir()).unwrap();
        std::fs::create_dir_all(project.root.join("data")).unwrap();
        std::fs::write(project.ini_path(), ALEMBIC_INI).unwrap();
        let migrations = project.migrations_dir();
        std::fs::write(migrations.join("env.py"), ENV_PY).unwrap();
        std::fs::write(migrations.join("script.py.mako"), SCRIPT_PY_MAKO).unwrap();
        std::fs::write(
            migrations.join("README"),
            "Generic single-database configuration.\n",
        )
        .unwrap();
        Some(project)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Gives `env` a store (unless it has one) and a `migsnap.toml` that
    /// names this project's Python, followed by `extra` (more settings of
    /// the `[migrations]` table, or further tables).
    pub fn configure_store(&self, env: &TestEnv, extra: &str) {
        if !env.store_dir().exists() {
            env.run(&["init"]).assert_success();
        }
        std::fs::write(
            env.join("migsnap.toml"),
            format!(
                "[migrations]\npython = \"{}\"\n{extra}",
                self.python.display()
            ),
        )
        .unwrap();
    }

    pub fn python(&self) -> &Path {
        &self.python
    }

    pub fn ini_path(&self) -> PathBuf {
        self.root.join("alembic.ini")
    }

    pub fn migrations_dir(&self) -> PathBuf {
        self.root.join("migrations")
    }

    pub fn versions_dir(&self) -> PathBuf {
        self.root.join("migrations/versions")
    }

    /// `data/app.db` under the root: the database of `sqlalchemy.url`.
    pub fn db_path(&self) -> PathBuf {
        self.root.join(Self::DB)
    }

    /// Ids of the revisions written so far, in order.
    pub fn revision_ids(&self) -> &[String] {
        &self.written
    }

    /// Writes a revision file into `migrations/versions/` and returns its path.
    pub fn revision(&mut self, rev: Revision) -> PathBuf {
        let path = self.versions_dir().join(rev.file_name());
        std::fs::write(&path, rev.render()).unwrap();
        self.written.push(rev.id.clone());
        path
    }

    /// `python -m alembic -c alembic.ini ARGS` in the project root, with a
    /// clean environment: no inherited `DATABASE_URL`, `ALEMBIC_CONFIG` or
    /// `PYTHONPATH`, no bytecode written into the project.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.args(["-m", "alembic", "-c", "alembic.ini"])
            .args(args)
            .current_dir(&self.root)
            .env_remove("DATABASE_URL")
            .env_remove("ALEMBIC_CONFIG")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONIOENCODING", "utf-8")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `alembic ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Runs `alembic ARGS` with extra environment variables (`DATABASE_URL`).
    pub fn run_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap_or_else(|e| {
            panic!(
                "cannot run {} -m alembic (from {PYTHON_VAR}): {e}",
                self.python.display()
            )
        });
        Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            status: out.status.code().unwrap_or(-1),
            command: format!("alembic {}", args.join(" ")),
        }
    }

    pub fn upgrade(&self, target: &str) -> Output {
        self.run(&["upgrade", target])
    }

    pub fn downgrade(&self, target: &str) -> Output {
        self.run(&["downgrade", target])
    }

    pub fn stamp(&self, rev: &str) -> Output {
        self.run(&["stamp", rev])
    }

    pub fn current(&self) -> Output {
        self.run(&["current"])
    }

    pub fn heads(&self) -> Output {
        self.run(&["heads"])
    }

    /// The revisions `alembic current` reports, sorted (it also lists the
    /// "effective heads" that dependencies imply).
    #[track_caller]
    pub fn current_revisions(&self) -> Vec<String> {
        first_words(self.current().assert_success())
    }

    /// The heads `alembic heads` reports, sorted.
    #[track_caller]
    pub fn head_revisions(&self) -> Vec<String> {
        first_words(self.heads().assert_success())
    }

    /// The rows of `alembic_version` in the project's database, sorted;
    /// `None` without the table.
    pub fn version_rows(&self) -> Option<Vec<String>> {
        version_rows(&self.db_path())
    }
}

/// The first word of each non-empty line, sorted.
fn first_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    words.sort();
    words
}

fn open_read_only(db: &Path) -> Connection {
    assert!(db.is_file(), "{} does not exist", db.display());
    Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()))
}

/// The rows of `alembic_version`, sorted; `None` without the table.
pub fn version_rows(db: &Path) -> Option<Vec<String>> {
    let conn = open_read_only(db);
    let exists: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'alembic_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if !exists {
        return None;
    }
    let mut rows: Vec<String> = conn
        .prepare("SELECT version_num FROM alembic_version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    Some(rows)
}

/// Names of the tables in `db` (not SQLite's own), sorted.
pub fn tables(db: &Path) -> Vec<String> {
    open_read_only(db)
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A column as `PRAGMA table_info` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub decl_type: String,
    pub not_null: bool,
    /// Position in the primary key, 0 when not part of it.
    pub pk: i64,
}

/// The columns of `table`, in order.
pub fn columns(db: &Path, table: &str) -> Vec<Column> {
    open_read_only(db)
        .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)")
        .unwrap()
        .query_map([table], |r| {
            Ok(Column {
                name: r.get(0)?,
                decl_type: r.get(1)?,
                not_null: r.get(2)?,
                pk: r.get(3)?,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `(sql, rootpage)` of `table` in `sqlite_schema`.
pub fn table_entry(db: &Path, table: &str) -> (String, i64) {
    open_read_only(db)
        .query_row(
            "SELECT sql, rootpage FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap_or_else(|e| panic!("table {table} in {}: {e}", db.display()))
}

/// The canned history of [`AlembicProject::chat_app`]: a small Open-WebUI-like
/// chat application.
///
/// ```text
/// BASE ── ADD_ARCHIVED ── RENAME_BATCH ─┬─ FOLDERS (branch label "folders") ─┬─ MERGE ── FOLDER_ID (depends_on FOLDERS)
///                                       └─ TAGS ─────────────────────────────┘
/// ```
pub mod chat_app {
    /// Creates `user` and `chat` (columns `chat`, `title NOT NULL`), index
    /// `chat_user_id_idx`. Untyped header.
    pub const BASE: &str = "1f3a5c7e9b01";
    /// `op.add_column`: `chat.archived BOOLEAN NOT NULL DEFAULT false`.
    /// Legacy typed header.
    pub const ADD_ARCHIVED: &str = "2b4d6f8a0c12";
    /// `batch_alter_table("chat")`: renames `chat.chat` to `chat.content` and
    /// makes `chat.title` nullable; on SQLite this rebuilds the table through
    /// `_alembic_tmp_chat`.
    pub const RENAME_BATCH: &str = "3c5e7a9b1d23";
    /// Branch one, labelled `folders`: creates `folder`.
    pub const FOLDERS: &str = "4d6f8b0c2e34";
    /// Branch two: creates `tag` (composite primary key).
    pub const TAGS: &str = "5e7a9c1d3f45";
    /// Merges `FOLDERS` and `TAGS`; changes nothing. Legacy typed header.
    pub const MERGE: &str = "6f8b0d2e4a56";
    /// Adds `chat.folder_id` and index `chat_folder_id_idx` (batch, no
    /// rebuild on upgrade); `depends_on = FOLDERS`.
    pub const FOLDER_ID: &str = "7a9c1e3f5b67";
    /// The single head.
    pub const HEAD: &str = FOLDER_ID;
    /// Every revision in the order written (a topological order).
    pub const ALL: [&str; 7] = [
        BASE,
        ADD_ARCHIVED,
        RENAME_BATCH,
        FOLDERS,
        TAGS,
        MERGE,
        FOLDER_ID,
    ];
    /// The label of the `FOLDERS` branch.
    pub const FOLDERS_LABEL: &str = "folders";
    /// The tables at `HEAD` besides `alembic_version`, sorted.
    pub const HEAD_TABLES: [&str; 4] = ["chat", "folder", "tag", "user"];
}

impl AlembicProject {
    /// A project with the [`chat_app`] history, nothing applied.
    #[track_caller]
    pub fn chat_app(env: &TestEnv) -> Option<AlembicProject> {
        use chat_app::*;
        let mut p = AlembicProject::new(env)?;
        p.revision(
            Revision::new(BASE, "init user and chat tables")
                .style(HeaderStyle::Untyped)
                .create_date("2024-03-02 10:15:00.000000")
                .upgrade(
                    r#"
                    op.create_table(
                        "user",
                        sa.Column("id", sa.String(), nullable=False),
                        sa.Column("name", sa.String(), nullable=False),
                        sa.Column("email", sa.String(), nullable=False),
                        sa.Column("role", sa.String(), nullable=False),
                        sa.Column("created_at", sa.BigInteger(), nullable=False),
                        sa.PrimaryKeyConstraint("id"),
                        sa.UniqueConstraint("email"),
                    )
                    op.create_table(
                        "chat",
                        sa.Column("id", sa.String(), nullable=False),
                        sa.Column("user_id", sa.String(), nullable=False),
                        sa.Column("title", sa.Text(), nullable=False),
                        sa.Column("chat", sa.Text(), nullable=False),
                        sa.Column("created_at", sa.BigInteger(), nullable=False),
                        sa.Column("updated_at", sa.BigInteger(), nullable=False),
                        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
                        sa.PrimaryKeyConstraint("id"),
                    )
                    op.create_index("chat_user_id_idx", "chat", ["user_id"])
                    "#,
                )
                .downgrade(
                    r#"
                    op.drop_index("chat_user_id_idx", table_name="chat")
                    op.drop_table("chat")
                    op.drop_table("user")
                    "#,
                ),
        );
        p.revision(
            Revision::new(ADD_ARCHIVED, "add archived to chat")
                .down(BASE)
                .style(HeaderStyle::TypedLegacy)
                .create_date("2024-04-11 08:30:00.000000")
                .upgrade(
                    r#"
                    op.add_column(
                        "chat",
                        sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false()),
                    )
                    "#,
                )
                .downgrade(
                    r#"
                    with op.batch_alter_table("chat") as batch_op:
                        batch_op.drop_column("archived")
                    "#,
                ),
        );
        p.revision(
            Revision::new(RENAME_BATCH, "rename chat.chat to content, title nullable")
                .down(ADD_ARCHIVED)
                .create_date("2024-05-20 17:45:00.000000")
                .upgrade(
                    r#"
                    with op.batch_alter_table("chat", schema=None) as batch_op:
                        batch_op.alter_column(
                            "chat",
                            new_column_name="content",
                            existing_type=sa.Text(),
                            existing_nullable=False,
                        )
                        batch_op.alter_column("title", existing_type=sa.Text(), nullable=True)
                    "#,
                )
                .downgrade(
                    r#"
                    with op.batch_alter_table("chat", schema=None) as batch_op:
                        batch_op.alter_column("title", existing_type=sa.Text(), nullable=False)
                        batch_op.alter_column(
                            "content",
                            new_column_name="chat",
                            existing_type=sa.Text(),
                            existing_nullable=False,
                        )
                    "#,
                ),
        );
        p.revision(
            Revision::new(FOLDERS, "add folder table")
                .down(RENAME_BATCH)
                .branch_label(FOLDERS_LABEL)
                .create_date("2024-06-03 09:00:00.000000")
                .upgrade(
                    r#"
                    op.create_table(
                        "folder",
                        sa.Column("id", sa.String(), nullable=False),
                        sa.Column("user_id", sa.String(), nullable=False),
                        sa.Column("parent_id", sa.String(), nullable=True),
                        sa.Column("name", sa.Text(), nullable=False),
                        sa.Column("created_at", sa.BigInteger(), nullable=False),
                        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
                        sa.PrimaryKeyConstraint("id"),
                    )
                    op.create_index("folder_user_id_idx", "folder", ["user_id"])
                    "#,
                )
                .downgrade(
                    r#"
                    op.drop_index("folder_user_id_idx", table_name="folder")
                    op.drop_table("folder")
                    "#,
                ),
        );
        p.revision(
            Revision::new(TAGS, "add tag table")
                .down(RENAME_BATCH)
                .create_date("2024-06-04 14:20:00.000000")
                .upgrade(
                    r#"
                    op.create_table(
                        "tag",
                        sa.Column("id", sa.String(), nullable=False),
                        sa.Column("name", sa.String(), nullable=False),
                        sa.Column("user_id", sa.String(), nullable=False),
                        sa.Column("meta", sa.JSON(), nullable=True),
                        sa.PrimaryKeyConstraint("id", "user_id", name="pk_id_user_id"),
                    )
                    "#,
                )
                .downgrade(r#"op.drop_table("tag")"#),
        );
        p.revision(
            Revision::new(MERGE, "merge folder and tag heads")
                .merge(&[FOLDERS, TAGS])
                .style(HeaderStyle::TypedLegacy)
                .create_date("2024-06-05 11:00:00.000000"),
        );
        p.revision(
            Revision::new(FOLDER_ID, "add folder_id to chat")
                .down(MERGE)
                .depends_on(FOLDERS)
                .create_date("2024-06-10 16:05:00.000000")
                .upgrade(
                    r#"
                    with op.batch_alter_table("chat", schema=None) as batch_op:
                        batch_op.add_column(sa.Column("folder_id", sa.String(), nullable=True))
                        batch_op.create_index("chat_folder_id_idx", ["folder_id"])
                    "#,
                )
                .downgrade(
                    r#"
                    with op.batch_alter_table("chat", schema=None) as batch_op:
                        batch_op.drop_index("chat_folder_id_idx")
                        batch_op.drop_column("folder_id")
                    "#,
                ),
        );
        Some(p)
    }
}
