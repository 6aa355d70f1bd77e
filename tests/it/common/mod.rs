//! Shared fixtures: a temporary project directory, the real `migsnap` binary
//! run as a user runs it, real SQLite files made with rusqlite, and ways to
//! look at results (file hashes, logical dumps, integrity checks, the store's
//! own tables).

#![allow(dead_code)]

pub mod alembic;
pub mod moto;
pub mod proxy;
pub mod shim;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_migsnap");

/// Whether the tests run as root (then file ownership can be given away, and
/// file permissions do not stop the test process).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Says that the running test is skipped and why, as `note: TEST: SKIPPED
/// (why)`. Straight to the file descriptor: `eprintln!` would be captured
/// and never shown for a passing test, hiding the skip.
pub fn skip(why: &str) {
    use std::io::Write as _;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "note: {test}: SKIPPED ({why})");
}

/// Exit codes, as documented in `src/cli/mod.rs`.
pub mod exit {
    pub const OK: i32 = 0;
    pub const PROBLEMS: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const INPUT: i32 = 3;
    pub const REFUSED: i32 = 4;
    pub const CORRUPT: i32 = 5;
    pub const UNREACHABLE: i32 = 6;
}

/// What one run of the binary produced.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// The exit code, or -1 when killed by a signal.
    pub status: i32,
    /// What was run, for failure messages.
    pub command: String,
}

impl Output {
    /// Asserts the exit code, showing both streams when it is wrong.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Output {
        assert_eq!(
            self.status, code,
            "`{}` exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.status, self.stdout, self.stderr
        );
        self
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn assert_success(&self) -> &str {
        self.expect(exit::OK);
        &self.stdout
    }

    /// Parses stdout as the one JSON document of `--format json`.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print JSON ({e}):\n{}\n--- stderr\n{}",
                self.command, self.stdout, self.stderr
            )
        })
    }

    /// Asserts that stderr is exactly one `error:` line (plus optional
    /// `caused by:`/`hint:` lines) that contains every one of `needles`.
    #[track_caller]
    pub fn expect_error(&self, code: i32, needles: &[&str]) -> &Output {
        self.expect(code);
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "`{}`: expected exactly one `error:` line, got:\n{}",
            self.command,
            self.stderr
        );
        assert!(
            self.stderr.starts_with("error: "),
            "`{}`: stderr must start with the error line:\n{}",
            self.command,
            self.stderr
        );
        for line in self.stderr.lines() {
            assert!(
                ["error: ", "caused by: ", "hint: "]
                    .iter()
                    .any(|p| line.starts_with(p)),
                "`{}`: unexpected stderr line {line:?} in:\n{}",
                self.command,
                self.stderr
            );
        }
        for needle in needles {
            assert!(
                errors[0].contains(needle),
                "`{}`: error line {:?} does not mention {needle:?}\n(stderr:\n{})",
                self.command,
                errors[0],
                self.stderr
            );
        }
        self
    }
}

/// A temporary project directory in which the binary runs.
pub struct TestEnv {
    dir: tempfile::TempDir,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::Builder::new()
                .prefix("migsnap-it-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    /// A fresh directory with an initialised store.
    pub fn with_store() -> TestEnv {
        let env = TestEnv::new();
        env.run(&["init"]).assert_success();
        env
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn store_dir(&self) -> PathBuf {
        self.join(".migsnap")
    }

    pub fn store_db(&self) -> PathBuf {
        self.join(".migsnap/store.db")
    }

    /// The binary with the test environment: cwd = the temp dir, no colour,
    /// no inherited store.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("MIGSNAP_STORE")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the binary to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        run_command(self.command(args), args)
    }

    /// Runs the binary in `cwd` with extra environment variables.
    pub fn run_in(&self, cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        cmd.current_dir(cwd);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        run_command(cmd, args)
    }

    /// Starts the binary without waiting (output discarded).
    pub fn spawn(&self, args: &[&str]) -> Child {
        // stderr is kept for the caller to show when the run fails; an
        // error is a few lines, far below a pipe's buffer.
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn migsnap")
    }

    /// Takes a snapshot and returns its full id (fails unless one was recorded).
    #[track_caller]
    pub fn snapshot(&self, args: &[&str]) -> String {
        let mut all = vec!["--format", "json", "snapshot"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        let json = out.expect(exit::OK).json();
        assert_eq!(json["recorded"], true, "no snapshot recorded: {json}");
        json["id"].as_str().expect("id").to_owned()
    }

    /// `log --format json` entries of `db` (or the only database).
    #[track_caller]
    pub fn log(&self, db: Option<&str>) -> Vec<serde_json::Value> {
        let mut args = vec!["--format", "json", "log"];
        args.extend(db);
        let json = self.run(&args).expect(exit::OK).json();
        json["snapshots"].as_array().expect("snapshots").clone()
    }

    /// The ids of `log`, newest first.
    #[track_caller]
    pub fn log_ids(&self, db: Option<&str>) -> Vec<String> {
        self.log(db)
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// Resolves a revision through `show --format json`.
    #[track_caller]
    pub fn resolve(&self, rev: &str) -> String {
        let json = self.run(&["--format", "json", "show", rev]).ok_json();
        json["id"].as_str().expect("id").to_owned()
    }

    /// Creates a database file (see [`create_db`]) named `name` in the temp dir.
    pub fn make_db(&self, name: &str, mode: Journal, rows: usize) -> PathBuf {
        let path = self.join(name);
        create_db(&path, mode, rows, 200);
        path
    }

    /// A read-write connection to the store file.
    pub fn store_conn(&self) -> Connection {
        let conn = Connection::open(self.store_db()).expect("open store.db");
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    /// Refs as (name, hex id), sorted.
    pub fn refs(&self) -> Vec<(String, String)> {
        let conn = self.store_conn();
        let mut stmt = conn
            .prepare("SELECT name, id FROM refs ORDER BY name")
            .unwrap();
        stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, hex(&row.get::<_, Vec<u8>>(1)?)))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// Everything a failed command must leave alone: refs, reflog, object ids,
    /// tracked databases.
    pub fn store_state(&self) -> StoreState {
        let conn = self.store_conn();
        let objects: Vec<String> = conn
            .prepare("SELECT id FROM objects ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(|r| hex(&r.unwrap()))
            .collect();
        let reflog: i64 = conn
            .query_row("SELECT count(*) FROM reflog", [], |r| r.get(0))
            .unwrap();
        StoreState {
            refs: self.refs(),
            reflog,
            objects,
            config: std::fs::read_to_string(self.store_dir().join("config.toml"))
                .unwrap_or_default(),
        }
    }

    /// Replaces the temp dir path, ids and times with placeholders so output
    /// can be pinned with insta.
    pub fn redact(&self, text: &str) -> String {
        let text = text.replace(&self.path().display().to_string(), "[TMP]");
        redact(&text)
    }

    /// Names of `.migsnap-restore-*` temporary files left in `dir`.
    pub fn restore_temps(&self, dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".migsnap-restore-"))
            .collect()
    }
}

/// Refs, reflog length and objects of a store, to prove a command changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreState {
    pub refs: Vec<(String, String)>,
    pub reflog: i64,
    pub objects: Vec<String>,
    pub config: String,
}

impl Output {
    /// Asserts success and parses JSON.
    #[track_caller]
    pub fn ok_json(&self) -> serde_json::Value {
        self.expect(exit::OK);
        self.json()
    }
}

/// Runs a prepared command (from [`TestEnv::command`]) to completion.
pub fn run_command(mut cmd: Command, args: &[&str]) -> Output {
    let out = cmd.output().expect("run migsnap");
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status.code().unwrap_or(-1),
        command: format!("migsnap {}", args.join(" ")),
    }
}

/// Hashes, short hashes and times replaced by placeholders.
pub fn redact(text: &str) -> String {
    use std::sync::OnceLock;
    static RULES: OnceLock<Vec<(regex::Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"\b[0-9a-f]{64}\b", "[ID]"),
            (r"\b[0-9a-f]{12}\b", "[SHORT]"),
            (r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?( UTC|Z)?", "[TIME]"),
        ]
        .into_iter()
        .map(|(re, to)| (regex::Regex::new(re).unwrap(), to))
        .collect()
    });
    let mut out = text.to_owned();
    for (re, to) in rules {
        out = re.replace_all(&out, *to).into_owned();
    }
    out
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(s, "{b:02x}").unwrap();
    }
    s
}

/// Bytes from hex.
pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// SQLite journal mode of a test database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Journal {
    /// Rollback journal (`delete`).
    Delete,
    /// Write-ahead log.
    Wal,
}

/// Deterministic, incompressible bytes for `(label, index)`.
pub fn pseudo_random(label: &str, index: u64, len: usize) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(label.as_bytes());
    hasher.update(&index.to_le_bytes());
    let mut out = vec![0u8; len];
    hasher.finalize_xof().fill(&mut out);
    out
}

/// Creates a database at `path`: table `items(id, name, payload)` with `rows`
/// rows of `payload_len` pseudo-random bytes each (unique per file name, so
/// two test databases share no data pages), and `PRAGMA user_version = 1`.
pub fn create_db(path: &Path, mode: Journal, rows: usize, payload_len: usize) {
    let conn = Connection::open(path).expect("create db");
    let label = path.file_name().unwrap().to_string_lossy().into_owned();
    if mode == Journal::Wal {
        let m: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(m, "wal");
    }
    conn.execute_batch(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, payload BLOB);
         PRAGMA user_version = 1;",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut stmt = tx
            .prepare("INSERT INTO items(id, name, payload) VALUES (?1, ?2, ?3)")
            .unwrap();
        for i in 0..rows {
            stmt.execute(rusqlite::params![
                i as i64 + 1,
                format!("{label}-item-{i}"),
                pseudo_random(&label, i as u64, payload_len)
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Runs SQL on a database and closes it.
pub fn exec(path: &Path, sql: &str) {
    let conn = Connection::open(path).expect("open db");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute_batch(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Blake3 of a file's bytes, hex.
pub fn file_hash(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    blake3::hash(&bytes).to_hex().to_string()
}

/// Permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Sets permission bits.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn open_for_reading(path: &Path) -> Connection {
    assert!(path.is_file(), "{} does not exist", path.display());
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

fn visit_rows(conn: &Connection, mut each: impl FnMut(&str, &[ValueRef<'_>])) {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
            .unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let values: Vec<ValueRef<'_>> = (0..n).map(|i| row.get_ref(i).unwrap()).collect();
            each(&table, &values);
        }
    }
}

/// A logical dump: every row of every table, ordered by rowid, one line each.
pub fn dump(path: &Path) -> String {
    dump_conn(&open_for_reading(path))
}

/// [`dump`] through an existing connection.
pub fn dump_conn(conn: &Connection) -> String {
    let mut out = String::new();
    visit_rows(conn, |table, values| {
        out.push_str(table);
        for v in values {
            match v {
                ValueRef::Null => out.push_str("|NULL"),
                ValueRef::Integer(i) => write!(out, "|{i}").unwrap(),
                ValueRef::Real(f) => write!(out, "|{f:?}").unwrap(),
                ValueRef::Text(t) => write!(out, "|'{}'", String::from_utf8_lossy(t)).unwrap(),
                ValueRef::Blob(b) => write!(out, "|x'{}'", hex(b)).unwrap(),
            }
        }
        out.push('\n');
    });
    out
}

/// A digest of [`dump`], cheap for large databases.
pub fn dump_digest(path: &Path) -> String {
    let conn = open_for_reading(path);
    let mut hasher = blake3::Hasher::new();
    visit_rows(&conn, |table, values| {
        hasher.update(table.as_bytes());
        for v in values {
            match v {
                ValueRef::Null => hasher.update(b"N"),
                ValueRef::Integer(i) => hasher.update(b"I").update(&i.to_le_bytes()),
                ValueRef::Real(f) => hasher.update(b"R").update(&f.to_le_bytes()),
                ValueRef::Text(t) => hasher
                    .update(b"T")
                    .update(&(t.len() as u64).to_le_bytes())
                    .update(t),
                ValueRef::Blob(b) => hasher
                    .update(b"B")
                    .update(&(b.len() as u64).to_le_bytes())
                    .update(b),
            };
        }
        hasher.update(b"\n");
    });
    hasher.finalize().to_hex().to_string()
}

/// `PRAGMA integrity_check`, lines joined with "; " ("ok" when sound;
/// SQLite's error when it cannot even check).
pub fn integrity_check(path: &Path) -> String {
    let conn = open_for_reading(path);
    // A file damaged badly enough makes SQLite fail instead of answering.
    let lines: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect());
    match lines {
        Ok(lines) => lines.join("; "),
        Err(e) => format!("error: {e}"),
    }
}

/// The ids the store gives the pages of a database file: BLAKE3 of the blob
/// header `[kind=1, version=1]` followed by the page (docs: codec.rs).
pub fn page_ids(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n => usize::from(n),
    };
    bytes
        .chunks(page_size)
        .map(|page| {
            let mut h = blake3::Hasher::new();
            h.update(&[1, 1]);
            h.update(page);
            h.finalize().to_hex().to_string()
        })
        .collect()
}

/// Seed for randomised tests: `MIGSNAP_IT_SEED` or the clock; printed so a
/// failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("MIGSNAP_IT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: seed {seed} (replay with MIGSNAP_IT_SEED={seed})");
    seed
}

/// A Python 3 for small `sqlite3` scripts run as another process, with its
/// own SQLite build: the test venv's (`MIGSNAP_TEST_PYTHON`), else `python3`.
pub fn sqlite_python() -> String {
    std::env::var(alembic::PYTHON_VAR).unwrap_or_else(|_| "python3".to_owned())
}

/// A SQL-folder migration project at the root of `env`: `sql/0001_init.sql`
/// (table `t`), `sql/0002_more.sql` (adds column `x`) and a `migsnap.toml`
/// that names it.
pub fn write_sql_project(env: &TestEnv) {
    std::fs::create_dir(env.join("sql")).unwrap();
    std::fs::write(
        env.join("sql/0001_init.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    )
    .unwrap();
    std::fs::write(
        env.join("sql/0002_more.sql"),
        "ALTER TABLE t ADD COLUMN x INTEGER;",
    )
    .unwrap();
    std::fs::write(
        env.join("migsnap.toml"),
        "[migrations]\nkind = \"sql\"\ndir = \"sql\"\n",
    )
    .unwrap();
}

/// `git -C dir ARGS` with a fixed identity, which must succeed (git is
/// required, not optional); its stdout.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=migsnap test",
            "-c",
            "user.email=test@example.com",
        ])
        .args(args)
        .output()
        .expect("this test needs `git` on PATH");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The path in the environment variable `name`, which `scripts/test.sh`
/// sets; a failure that says how to set it when it is not.
#[track_caller]
pub fn test_path(name: &str, what: &str) -> PathBuf {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "{name} is not set: run `bash scripts/test.sh`, which makes {what} (or set it by hand, see scripts/test.sh)"
            )
        })
}
