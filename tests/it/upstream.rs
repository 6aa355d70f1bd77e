//! Histories nobody here wrote: real upstream Alembic migrations, shipped in
//! PyPI wheels, run by real Alembic, checked with the real binary.
//!
//! `scripts/upstream-histories.sh` downloads the wheels pinned by sha256 in
//! `scripts/upstream-requirements.txt` and unpacks their migrations into
//! `.cache/upstream/`; `scripts/test.sh` passes that directory in
//! `MIGSNAP_TEST_UPSTREAM`. Each test builds an Alembic project in its temp
//! dir whose `version_locations` is the package's own versions folder, with
//! our `tests/upstream/env.py` (the apps' env.py import the whole app) and
//! `tests/upstream/shims` on `sys.path` for the one app type Open WebUI's
//! revisions import. See `tests/upstream/README.md`.
//!
//! Policy as for `MIGSNAP_TEST_PYTHON`: without `MIGSNAP_TEST_UPSTREAM` a
//! test fails and says how to fetch the histories, unless
//! `MIGSNAP_SKIP_UPSTREAM=1` (or `MIGSNAP_SKIP_ALEMBIC=1`) asks to skip.
//!
//! What a correct database must get: exit 0 from `history`, `status`,
//! `locate` and `snapshot` (no warning), from `lint` over a window of recent
//! revisions (the whole history really does alter existing tables, which
//! the guide forbids: those codes are relaxed in the test's `[findings]`),
//! and from `test` over the same window. The whole-history round trip must
//! fail exactly the revisions whose downgrade really loses schema, not those
//! that differ only in column order or constraint names. What a broken
//! database must get: one stamped ahead of its schema fails `status`,
//! `locate` names the revision the schema really is and `bisect drift
//! --revisions` the first one it lacks; a dropped column is found by
//! `status` and by `bisect drift --revisions`, which names the revision
//! that added it.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::common::alembic::{AlembicProject, Interpreter, SKIP_VAR};
use crate::common::{Output, TestEnv, exec};

/// The directory `scripts/upstream-histories.sh` fills (set by `scripts/test.sh`).
const UPSTREAM_VAR: &str = "MIGSNAP_TEST_UPSTREAM";
/// `1` skips the upstream-history tests only.
const SKIP_UPSTREAM_VAR: &str = "MIGSNAP_SKIP_UPSTREAM";

/// One upstream history and the revisions the tests lean on.
struct History {
    /// The directory under `MIGSNAP_TEST_UPSTREAM` (as the script names it).
    name: &'static str,
    /// The versions folder inside it.
    versions: &'static str,
    /// The single head.
    head: &'static str,
    /// How many revision files it has.
    revisions: usize,
    /// Codes of the `info` findings `status` reports on a correct database
    /// (notes about the files, not the database): `--fail-on info` fails
    /// on them, the default does not.
    info_codes: &'static [&'static str],
    /// `lint --since` and `test --since` check the revisions after this one.
    window_since: &'static str,
    /// Codes `lint --since window_since` reports that the upstream history
    /// really violates, relaxed to warnings by the test's `[findings]`
    /// table (see `lint_of_recent_revisions`).
    relaxed: &'static [&'static str],
    /// The revisions whose downgrade really does not undo their upgrade on
    /// SQLite, with why: the only ones the whole-history round trip may
    /// fail. Differences of column order or constraint names alone are
    /// not failures.
    lossy_downgrades: &'static [(&'static str, &'static str)],
    /// The schema is this revision's; the stamp says `head`.
    stamped_ahead_at: &'static str,
    /// The first revision after `stamped_ahead_at` that changes the schema:
    /// what `bisect drift --revisions` must name on that database.
    first_ahead: &'static str,
    /// (table, column, the revision that adds it): dropped by hand.
    dropped: (&'static str, &'static str, &'static str),
}

/// Open WebUI 0.12.4: one linear chain of 66 revisions; keeps `config_old`
/// on purpose (3ff2c63645b8 renames `config` and its downgrade needs it);
/// `Revises:` headers that disagree with `down_revision`.
const OPEN_WEBUI: History = History {
    name: "open-webui",
    versions: "open_webui/migrations/versions",
    head: "0bd252b206fb",
    revisions: 66,
    // d4e5f6a7b8c9's header says `Revises: f1e2d3c4b5a6`; its
    // down_revision is a3dd5bedd151.
    info_codes: &["history.header-mismatch"],
    // e7b9d4a023bc (model history), f8c0e5b134cd (tool and function
    // history), b8f2c6d91a04 (a PostgreSQL-only index), c92da83b017f (apps),
    // 0bd252b206fb (rows only). Mostly new tables, as the guide wants, but
    // each history revision also adds `version_id` to the table it
    // versions, and apps add `app_id` to `message` and `channel_member`.
    // (The whole history: 21 errors, mostly `lint.destructive` for the
    // config reshape, and 108 warnings.)
    window_since: "d6a8c3f912ab",
    relaxed: &["lint.alters-existing-table"],
    // Five more fail today only by form (issue 11: "five of the ten"):
    // 242a2047eae0, 37f288994c47, 3e0e00844bb0 and f1e2d3c4b5a6 put columns
    // back at the end; 3ab32c4b8f59 leaves the primary key named `pk_id`.
    lossy_downgrades: &[
        (
            "1af9b942657b",
            "leaves chat.pinned, chat.meta and tag's new shape",
        ),
        ("2f1211949ecc", "leaves channel_member's four new columns"),
        (
            "b10670c03dd5",
            "does not restore user's UNIQUE api_key and oauth_sub",
        ),
        ("374d2f66af06", "leaves prompt.id"),
        (
            "f0bd01a18a3d",
            "keeps uq_user_email_lower: SQLAlchemy's SQLite inspector does not list \
             expression indexes, so `_index_exists()` is false",
        ),
    ],
    // d4c1a8e37b62 adds chat.timer_at; a7d3e9f2b641, after it, adds
    // auth.mfa and auth.session_stamp.
    stamped_ahead_at: "d4c1a8e37b62",
    first_ahead: "a7d3e9f2b641",
    dropped: ("user", "scim", "b2c3d4e5f6a7"),
};

/// conda-store-server 2025.2.2: 14 revisions, a hand-made rebuild through
/// `conda_package_tmp`, enum columns altered in batch mode.
const CONDA_STORE: History = History {
    name: "conda-store-server",
    versions: "conda_store_server/_internal/alembic/versions",
    head: "bf065abf375b",
    revisions: 14,
    info_codes: &[],
    // e17b4cc6e086 adds build.hash, bf065abf375b adds
    // specification.is_lockfile: conda-store grows its tables in place.
    window_since: "03c839888c82",
    relaxed: &["lint.alters-existing-table"],
    // 16f65805dc8f fails today only by form: its downgrade names the
    // rebuilt tables' primary keys.
    lossy_downgrades: &[(
        "5ad723de2abd",
        "widens build_artifact.artifact_type to VARCHAR(18) and keeps it \
         (\"harmless to keep extra enum around\")",
    )],
    // e17b4cc6e086 adds build.hash; bf065abf375b (head) adds
    // specification.is_lockfile.
    stamped_ahead_at: "e17b4cc6e086",
    first_ahead: "bf065abf375b",
    dropped: ("environment", "description", "8d63a091aff8"),
};

/// The unpacked histories; `None` when the test is to be skipped (and it
/// says so on stderr, past the harness's capture, as `python_or_skip`
/// does). Panics with instructions when they are not there.
#[track_caller]
fn upstream_or_skip() -> Option<PathBuf> {
    match upstream_from(
        std::env::var_os(UPSTREAM_VAR),
        std::env::var_os(SKIP_UPSTREAM_VAR),
    ) {
        Interpreter::Use(dir) => Some(dir),
        Interpreter::Skip => {
            let thread = std::thread::current();
            let test = thread.name().unwrap_or("a test");
            let _ = writeln!(
                std::io::stderr(),
                "note: {test}: skipped ({SKIP_UPSTREAM_VAR}=1; it needs the upstream histories)"
            );
            None
        }
        Interpreter::Missing(message) => panic!("{message}"),
    }
}

/// Decides from the values of [`UPSTREAM_VAR`] and [`SKIP_UPSTREAM_VAR`],
/// as `interpreter_from` does for the Python: an explicit skip wins; an
/// unset or empty directory, or one without the histories, is an error.
fn upstream_from(dir: Option<OsString>, skip: Option<OsString>) -> Interpreter {
    if skip.as_deref().is_some_and(|s| s == "1") {
        return Interpreter::Skip;
    }
    let how = format!(
        "run the whole suite with `bash scripts/test.sh`, which fetches them into \
         .cache/upstream/ and sets {UPSTREAM_VAR}; or run `bash scripts/upstream-histories.sh \
         && export {UPSTREAM_VAR}=$PWD/.cache/upstream` before `cargo test`; or set \
         {SKIP_UPSTREAM_VAR}=1 (or {SKIP_VAR}=1) to skip the tests that need them"
    );
    let Some(dir) = dir.filter(|d| !d.is_empty()).map(PathBuf::from) else {
        return Interpreter::Missing(format!(
            "this test runs upstream Alembic histories, but {UPSTREAM_VAR} is not set: {how}"
        ));
    };
    for history in [&OPEN_WEBUI, &CONDA_STORE] {
        let versions = dir.join(history.name).join(history.versions);
        if !versions.is_dir() {
            return Interpreter::Missing(format!(
                "{UPSTREAM_VAR}={} has no {}: {how}",
                dir.display(),
                versions.display()
            ));
        }
    }
    Interpreter::Use(dir)
}

/// The folder of our env.py and shims.
fn ours() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream")
}

/// `alembic.ini` of a project that runs `history` from the unpacked wheel:
/// our `env.py` (in `migrations/`, where [`AlembicProject`] keeps it), the
/// package's versions folder, and on `sys.path` our shims and the unpacked
/// package (for `open_webui.migrations.util`).
fn ini(upstream: &Path, history: &History) -> String {
    let root = upstream.join(history.name);
    format!(
        "[alembic]\n\
         script_location = %(here)s/migrations\n\
         version_locations = {versions}\n\
         prepend_sys_path = {shims}:{root}\n\
         path_separator = os\n\
         sqlalchemy.url = sqlite:///data/app.db\n\
         \n\
         [loggers]\nkeys = root\n\
         [handlers]\nkeys = console\n\
         [formatters]\nkeys = generic\n\
         [logger_root]\nlevel = WARNING\nhandlers = console\n\
         [handler_console]\nclass = StreamHandler\nargs = (sys.stderr,)\nlevel = NOTSET\nformatter = generic\n\
         [formatter_generic]\nformat = %(levelname)-5.5s [%(name)s] %(message)s\n",
        versions = root.join(history.versions).display(),
        shims = ours().join("shims").display(),
        root = root.display(),
    )
}

/// An Alembic project in `env` that runs `history`, with a store whose
/// `migsnap.toml` names the test Python, followed by `toml`. `None` when
/// the test is skipped.
#[track_caller]
fn project(env: &TestEnv, history: &History, toml: &str) -> Option<AlembicProject> {
    let project = AlembicProject::new(env)?;
    let upstream = upstream_or_skip()?;
    std::fs::write(project.ini_path(), ini(&upstream, history)).unwrap();
    std::fs::write(
        project.migrations_dir().join("env.py"),
        std::fs::read(ours().join("env.py")).unwrap(),
    )
    .unwrap();
    // The versions folder AlembicProject made is not used: say so by its
    // absence.
    std::fs::remove_dir(project.versions_dir()).unwrap();
    project.configure_store(env, toml);
    Some(project)
}

/// `alembic upgrade TARGET`, which must succeed.
#[track_caller]
fn upgrade(project: &AlembicProject, target: &str) {
    project.upgrade(target).assert_success();
}

/// Collects failed expectations so one test reports every command that
/// disagrees, not only the first.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    /// Expects exit `code` from `out`.
    /// A JSON report is summed up by its findings, which say why.
    fn exit(&mut self, out: &Output, code: i32) {
        if out.status == code {
            return;
        }
        let findings = serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|report| report["findings"].as_array().cloned());
        let stdout = match findings {
            Some(findings) => findings
                .iter()
                .map(|f| {
                    format!(
                        "{} {} {}: {}",
                        f["severity"].as_str().unwrap_or("?"),
                        f["code"].as_str().unwrap_or("?"),
                        f["object"].as_str().unwrap_or("-"),
                        f["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            None => tail(&out.stdout),
        };
        self.0.push(format!(
            "`{}` exited {} (expected {code})\n--- stdout (findings of a JSON report)\n{stdout}\n--- stderr\n{}",
            out.command,
            out.status,
            tail(&out.stderr)
        ));
    }

    /// Expects `ok`, explained by `what`.
    fn that(&mut self, ok: bool, what: String) {
        if !ok {
            self.0.push(what);
        }
    }

    #[track_caller]
    fn done(self) {
        assert!(
            self.0.is_empty(),
            "{} check(s) failed:\n\n{}",
            self.0.len(),
            self.0.join("\n\n")
        );
    }
}

/// The last 40 lines of `text`: enough to see why, short enough to read.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// `migsnap --format json ARGS`.
fn json(env: &TestEnv, args: &[&str]) -> (Output, serde_json::Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    let value = serde_json::from_str(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, value)
}

/// The revision sets `locate` found exact matches for.
fn exact(located: &serde_json::Value) -> Vec<Vec<String>> {
    located["exact"]
        .as_array()
        .map(|matches| {
            matches
                .iter()
                .map(|m| serde_json::from_value(m["targets"].clone()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// The (op, kind, `table.column` or name) of `status`'s drift.
fn drift(status: &serde_json::Value) -> Vec<(String, String, String)> {
    status["comparison"]["drift"]["changes"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|c| {
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            let name = match c["table"].as_str() {
                Some(t) if c["kind"] == "column" => format!("{t}.{}", text(&c["name"])),
                _ => text(&c["name"]),
            };
            (text(&c["op"]), text(&c["kind"]), name)
        })
        .collect()
}

/// The codes of a report's findings.
fn codes(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|f| f["code"].as_str().map(str::to_owned))
        .collect()
}

/// A database that real Alembic upgraded to head passes every check.
fn correct_database_passes_every_check(history: &History) {
    let env = TestEnv::new();
    let Some(project) = project(&env, history, "") else {
        return;
    };
    upgrade(&project, "head");
    let db = project.db_path();
    let db = db.to_str().unwrap();
    let mut checks = Checks::default();

    let (out, graph) = json(&env, &["history"]);
    checks.exit(&out, 0);
    checks.that(
        graph["heads"] == serde_json::json!([history.head]),
        format!(
            "history: heads {} (expected [{}])",
            graph["heads"], history.head
        ),
    );
    let count = graph["revisions"].as_array().map_or(0, Vec::len);
    checks.that(
        count == history.revisions,
        format!(
            "history: {count} revisions (expected {})",
            history.revisions
        ),
    );

    let (out, status) = json(&env, &["status", db]);
    checks.exit(&out, 0);
    checks.that(
        status["class"] == "at-heads",
        format!("status: class {} (expected at-heads)", status["class"]),
    );
    let found = drift(&status);
    checks.that(
        found.is_empty(),
        format!("status: drift {found:?} on a correct database"),
    );

    let infos: Vec<String> = status["findings"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter(|f| f["severity"] == "info")
        .filter_map(|f| f["code"].as_str().map(str::to_owned))
        .collect();
    for code in history.info_codes {
        checks.that(
            infos.iter().any(|c| c == code),
            format!("status: no info {code} (info findings: {infos:?})"),
        );
    }
    let out = env.run(&["status", "--fail-on", "info", db]);
    checks.exit(&out, i32::from(!history.info_codes.is_empty()));

    let (out, located) = json(&env, &["locate", db]);
    checks.exit(&out, 0);
    checks.that(
        exact(&located).contains(&vec![history.head.to_owned()]),
        format!(
            "locate: exact {:?} (expected [{}] among them)",
            exact(&located),
            history.head
        ),
    );

    // `fix` has nothing to do, and `repair` nothing to plan.
    let (out, planned) = json(&env, &["fix", db]);
    checks.exit(&out, 0);
    checks.that(
        planned["class"] == "healthy" && planned["steps"] == serde_json::json!([]),
        format!(
            "fix: class {} with steps {} on a correct database",
            planned["class"], planned["steps"]
        ),
    );
    let out = env.run(&["repair", db]);
    checks.exit(&out, 0);

    // A snapshot of a correct database has nothing to warn about (no
    // artefact: what the reference has is part of the schema).
    env.run(&["track", "app", db]).assert_success();
    let out = env.run(&["snapshot", "-m", "at head"]);
    checks.exit(&out, 0);
    checks.that(
        !out.stderr.contains("warning") && !out.stdout.contains("artefact"),
        format!(
            "snapshot warned on a correct database:\n{}{}",
            out.stdout, out.stderr
        ),
    );
    checks.done();
}

/// `lint` over the recent revisions. The whole history would report what
/// upstream really does against the guide (altering existing tables from
/// the start); a window of recent revisions is what a reviewer would run.
/// Codes the window itself violates are relaxed in `[findings]`, the
/// documented way to adopt the guide on an existing project, and the test
/// checks they are reported (relaxed, not gone).
fn lint_of_recent_revisions(history: &History) {
    let env = TestEnv::new();
    let relaxed: String = history
        .relaxed
        .iter()
        .map(|code| format!("\"{code}\" = \"warning\"\n"))
        .collect();
    let toml = if relaxed.is_empty() {
        String::new()
    } else {
        format!("\n[findings.severity]\n{relaxed}")
    };
    let Some(_project) = project(&env, history, &toml) else {
        return;
    };
    let (out, report) = json(&env, &["lint", "--since", history.window_since]);
    let mut checks = Checks::default();
    checks.exit(&out, 0);
    let found = codes(&report);
    for code in history.relaxed {
        checks.that(
            found.iter().any(|c| c == code),
            format!("lint: {code} not reported (found {found:?})"),
        );
    }
    checks.done();
}

/// `migsnap test` round-trips the recent revisions.
fn recent_revisions_round_trip(history: &History) {
    let env = TestEnv::new();
    let Some(_project) = project(&env, history, "") else {
        return;
    };
    let (out, report) = json(&env, &["test", "--since", history.window_since]);
    let failed: Vec<String> = report["revisions"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter(|r| r["ok"] != true)
        .map(|r| format!("{} {}: {}", r["revision"], r["step"], r["difference"]))
        .collect();
    let mut checks = Checks::default();
    checks.exit(&out, 0);
    checks.that(failed.is_empty(), format!("test: failures {failed:?}"));
    checks.that(
        report["revisions"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        format!("test: no revision tested: {report}"),
    );
    checks.done();
}

/// `migsnap test` over the whole history fails exactly the revisions whose
/// downgrade really loses the schema, and passes those that differ only in
/// column order or constraint names.
fn whole_history_round_trip_fails_only_lossy_downgrades(history: &History) {
    let env = TestEnv::new();
    let Some(_project) = project(&env, history, "") else {
        return;
    };
    let (out, report) = json(&env, &["test"]);
    let revisions = report["revisions"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&str> = revisions
        .iter()
        .filter(|r| r["ok"] != true)
        .filter_map(|r| r["revision"].as_str())
        .collect();
    let expected: Vec<&str> = history.lossy_downgrades.iter().map(|(r, _)| *r).collect();
    let mut checks = Checks::default();
    checks.exit(&out, 1);
    checks.that(
        revisions.len() == history.revisions,
        format!(
            "test: {} revisions tested (expected {})",
            revisions.len(),
            history.revisions
        ),
    );
    let unexpected: Vec<String> = revisions
        .iter()
        .filter(|r| r["ok"] != true)
        .filter(|r| !expected.iter().any(|e| r["revision"] == *e))
        .map(|r| format!("{} {}: {}", r["revision"], r["step"], r["difference"]))
        .collect();
    checks.that(
        unexpected.is_empty(),
        format!("test: failures upstream does not have (form only?): {unexpected:#?}"),
    );
    for (revision, why) in history.lossy_downgrades {
        checks.that(
            failed.contains(revision),
            format!("test: {revision} passed, but its downgrade {why}"),
        );
    }
    checks.done();
}

/// The schema of `stamped_ahead_at`, stamped head: `status` fails,
/// `locate` names the real revision and `bisect drift --revisions` the
/// first one the database lacks.
fn stamped_ahead_is_located(history: &History) {
    let env = TestEnv::new();
    let Some(project) = project(&env, history, "") else {
        return;
    };
    upgrade(&project, history.stamped_ahead_at);
    project.stamp("head").assert_success();
    let db = project.db_path();
    let db = db.to_str().unwrap();
    let mut checks = Checks::default();

    let (out, status) = json(&env, &["status", db]);
    checks.that(
        out.status != 0,
        format!(
            "status exited 0 on a database stamped ahead:\n{}",
            tail(&out.stdout)
        ),
    );
    checks.that(
        codes(&status).iter().any(|c| c == "drift.schema"),
        format!("status: no drift.schema in {:?}", codes(&status)),
    );

    let (out, located) = json(&env, &["locate", db]);
    checks.exit(&out, 1);
    checks.that(
        exact(&located) == [[history.stamped_ahead_at]],
        format!(
            "locate: exact {:?} (expected [[{}]])",
            exact(&located),
            history.stamped_ahead_at
        ),
    );
    checks.that(
        located["stamped"] == serde_json::json!([history.head]),
        format!(
            "locate: stamped {} (expected [{}])",
            located["stamped"], history.head
        ),
    );
    let (out, bisected) = json(&env, &["bisect", "drift", "--revisions", db]);
    checks.exit(&out, 1);
    checks.that(
        bisected["first_bad"] == history.first_ahead
            && bisected["last_good"] == history.stamped_ahead_at,
        format!(
            "bisect drift --revisions: first bad {}, last good {} (expected {}, {})",
            bisected["first_bad"],
            bisected["last_good"],
            history.first_ahead,
            history.stamped_ahead_at
        ),
    );
    let text = env.run(&["locate", db]);
    let words = format!(
        "looks like {}, stamped {}",
        history.stamped_ahead_at, history.head
    );
    checks.that(
        text.stdout.contains(&words),
        format!("locate does not say {words:?}:\n{}", text.stdout),
    );

    // The fix records where the schema is and lets the project's own
    // migrations run the rest; applied, the database is healthy.
    let (out, planned) = json(&env, &["fix", db]);
    checks.exit(&out, 1);
    let steps: Vec<&str> = planned["steps"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["step"].as_str()).collect())
        .unwrap_or_default();
    checks.that(
        planned["anchor"] == serde_json::json!([history.stamped_ahead_at])
            && steps == ["stamp", "upgrade"],
        format!(
            "fix: anchor {} steps {steps:?} (expected [{}], stamp then upgrade)",
            planned["anchor"], history.stamped_ahead_at
        ),
    );
    let (out, applied) = json(&env, &["fix", db, "--apply"]);
    checks.exit(&out, 0);
    checks.that(
        applied["fixed"] == true,
        format!("fix --apply: {}", applied["applied"]),
    );
    let (out, _) = json(&env, &["status", db]);
    checks.exit(&out, 0);
    checks.done();
}

/// A column dropped by hand from a database at head: `status` finds it
/// missing, and `bisect drift --revisions` names the revision that added
/// it.
fn dropped_column_is_found(history: &History) {
    let env = TestEnv::new();
    let Some(project) = project(&env, history, "") else {
        return;
    };
    upgrade(&project, "head");
    let (table, column, added_by) = history.dropped;
    let db = project.db_path();
    exec(
        &db,
        &format!("ALTER TABLE \"{table}\" DROP COLUMN \"{column}\""),
    );
    let db = db.to_str().unwrap();
    let mut checks = Checks::default();

    let (out, status) = json(&env, &["status", db]);
    checks.exit(&out, 1);
    let expected = (
        "removed".to_owned(),
        "column".to_owned(),
        format!("{table}.{column}"),
    );
    checks.that(
        drift(&status).contains(&expected),
        format!("status: {expected:?} not in {:?}", drift(&status)),
    );

    let (out, bisected) = json(&env, &["bisect", "drift", "--revisions", db]);
    checks.exit(&out, 1);
    checks.that(
        bisected["first_bad"] == added_by,
        format!(
            "bisect drift --revisions: first bad {} (expected {added_by}, which adds {table}.{column})",
            bisected["first_bad"]
        ),
    );
    checks.done();
}

#[test]
fn open_webui_correct_database_passes_every_check() {
    correct_database_passes_every_check(&OPEN_WEBUI);
}

#[test]
fn open_webui_lint_of_recent_revisions_passes() {
    lint_of_recent_revisions(&OPEN_WEBUI);
}

#[test]
fn open_webui_recent_revisions_round_trip() {
    recent_revisions_round_trip(&OPEN_WEBUI);
}

#[test]
fn open_webui_whole_history_round_trip_fails_only_lossy_downgrades() {
    whole_history_round_trip_fails_only_lossy_downgrades(&OPEN_WEBUI);
}

#[test]
fn open_webui_stamped_ahead_is_located() {
    stamped_ahead_is_located(&OPEN_WEBUI);
}

#[test]
fn open_webui_dropped_column_is_found() {
    dropped_column_is_found(&OPEN_WEBUI);
}

#[test]
fn conda_store_correct_database_passes_every_check() {
    correct_database_passes_every_check(&CONDA_STORE);
}

#[test]
fn conda_store_lint_of_recent_revisions_passes_with_the_guide_relaxed() {
    lint_of_recent_revisions(&CONDA_STORE);
}

#[test]
fn conda_store_recent_revisions_round_trip() {
    recent_revisions_round_trip(&CONDA_STORE);
}

#[test]
fn conda_store_whole_history_round_trip_fails_only_lossy_downgrades() {
    whole_history_round_trip_fails_only_lossy_downgrades(&CONDA_STORE);
}

#[test]
fn conda_store_stamped_ahead_is_located() {
    stamped_ahead_is_located(&CONDA_STORE);
}

#[test]
fn conda_store_dropped_column_is_found() {
    dropped_column_is_found(&CONDA_STORE);
}

#[test]
fn without_the_histories_the_tests_fail_unless_told_to_skip() {
    let empty = TestEnv::new();
    let empty = Some(empty.path().as_os_str().to_owned());
    assert!(matches!(
        upstream_from(None, None),
        Interpreter::Missing(m) if m.contains("is not set") && m.contains("scripts/test.sh")
    ));
    assert!(matches!(
        upstream_from(Some(OsString::new()), Some("0".into())),
        Interpreter::Missing(m) if m.contains("is not set")
    ));
    assert!(matches!(
        upstream_from(empty.clone(), None),
        Interpreter::Missing(m) if m.contains("has no") && m.contains("upstream-histories.sh")
    ));
    assert_eq!(upstream_from(empty, Some("1".into())), Interpreter::Skip);
    assert_eq!(upstream_from(None, Some("1".into())), Interpreter::Skip);
}
