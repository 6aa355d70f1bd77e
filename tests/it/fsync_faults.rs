//! fsync failures at every sync of each write path (`snapshot`, `restore`,
//! `gc`, `forget`, `repair --apply`, `stamp --verify`).
//!
//! The calls are the real ones: `tests/it/fsync_shim.c`, compiled here with
//! `cc` and loaded with `LD_PRELOAD`, interposes `fsync`, `fdatasync` and
//! `sync_file_range`, so SQLite's unix VFS and Rust's `File::sync_all` in the
//! real binary get `-1`/`EIO` from the call they made. A counting run first
//! learns how many syncs the command makes; then, from the same starting
//! files each time, the command runs with `MIGSNAP_FAIL_FSYNC_AFTER=n` for
//! every `n` below that count. Each failure must give one clear `error:` line
//! and a non-zero exit, leave the database as it was (and passing
//! `integrity_check`) and the store passing `fsck --read-data` with no hot
//! journal, leave no temporary file after the next run, and the next run
//! must work. A failure past the point of no return (the directory sync
//! after a rename, gc's vacuum after its commit) must leave exactly the
//! finished result instead; the sweep lists those, the errors reported with
//! exit 3 (an I/O error during a reference replay, blamed on the migration)
//! and the temporary files the next run had to remove.
//!
//! A second sweep fails only call `n` (`MIGSNAP_FAIL_FSYNC_ONLY`), so a
//! failure that is ignored is not hidden by a later call that fails: a
//! command that succeeds then has ignored a failed sync. The only ones
//! allowed are SQLite's syncs of a directory after it created a journal,
//! which SQLite ignores on purpose ("many systems are unable to fsync a
//! directory, so ignore errors", `unixSync` in `os_unix.c`).
//! `docs/reliability.md` has the figures.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::common::shim::Shim;
use crate::common::{BIN, Journal, Output, TestEnv, create_db, exit, integrity_check};
use crate::crash::{check_store, migration_project, mutate, schema_and_rows};
use crate::faults::assert_clear_error;

const ROWS: usize = 1000;

/// The compiled `fsync_shim.c`.
struct FsyncShim(Shim);

impl FsyncShim {
    fn build() -> FsyncShim {
        FsyncShim(Shim::build("fsync_shim"))
    }

    fn log(&self) -> PathBuf {
        self.0.dir.path().join("calls.log")
    }

    /// Runs `args` under the shim with `fault` (`("MIGSNAP_FAIL_FSYNC_AFTER",
    /// "3")`, say, or none) and returns the output with the calls it made.
    fn run(
        &self,
        env: &TestEnv,
        args: &[&str],
        fault: Option<(&str, usize)>,
    ) -> (Output, Vec<Call>) {
        let log = self.log();
        let _ = std::fs::remove_file(&log);
        let so = self.0.preload();
        let log_str = log.to_str().unwrap();
        let count;
        let mut envs = vec![("LD_PRELOAD", so), ("MIGSNAP_COUNT_FSYNC", log_str)];
        if let Some((var, n)) = fault {
            count = n.to_string();
            envs.push((var, &count));
        }
        let out = env.run_in(env.path(), args, &envs);
        let calls = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(Call::parse)
            .collect();
        (out, calls)
    }
}

/// One line of the shim's log.
#[derive(Debug, Clone)]
struct Call {
    index: usize,
    function: String,
    failed: bool,
    /// Return address, as an offset into the binary.
    caller: u64,
    /// Whether the descriptor is a directory.
    dir: bool,
    path: String,
}

impl Call {
    fn parse(line: &str) -> Call {
        let mut parts = line.splitn(6, ' ');
        let mut next = || parts.next().expect("a complete shim log line");
        Call {
            index: next().parse().unwrap(),
            function: next().to_owned(),
            failed: next() == "FAIL",
            caller: u64::from_str_radix(next().trim_start_matches("0x"), 16).unwrap(),
            dir: next() == "dir",
            path: next().to_owned(),
        }
    }
}

/// The function that made each call, with the functions inlined into it
/// (innermost first, one a line), from the binary's debug info through
/// `addr2line`.
fn callers(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|call| {
            // The return address points after the call instruction.
            let out = Command::new("addr2line")
                .args(["-f", "-i", "-C", "-e", BIN])
                .arg(format!("{:#x}", call.caller - 1))
                .output();
            match out {
                Ok(out) => String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .step_by(2)
                    .collect::<Vec<_>>()
                    .join("\n"),
                Err(_) => "(addr2line unavailable)".to_owned(),
            }
        })
        .collect()
}

fn describe(call: &Call, caller: &str, env: &TestEnv) -> String {
    format!(
        "call {} {}({}) from {}",
        call.index,
        call.function,
        env.redact(&call.path),
        // The outermost frame: `unixSync` for SQLite, `sync_all` for Rust.
        caller.lines().last().unwrap_or("?")
    )
}

/// A copy of every file under a directory, to start each run from the same
/// files.
struct Tree(Vec<(PathBuf, Vec<u8>, u32)>);

impl Tree {
    fn save(root: &Path) -> Tree {
        let mut files = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    dirs.push(path);
                } else {
                    let rel = path.strip_prefix(root).unwrap().to_path_buf();
                    files.push((
                        rel,
                        std::fs::read(&path).unwrap(),
                        meta.permissions().mode(),
                    ));
                }
            }
        }
        Tree(files)
    }

    /// Makes `root` hold exactly the saved files again.
    fn put_back(&self, root: &Path) {
        for entry in std::fs::read_dir(root).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
        for (rel, bytes, mode) in &self.0 {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
    }
}

/// What a sweep saw.
#[derive(Debug, Default)]
struct Sweep {
    /// Syncs an unfailed run makes.
    syncs: usize,
    /// Runs that failed with fsync failing from call `n` on.
    failures: usize,
    /// The distinct error lines (redacted), with the exit code.
    errors: Vec<String>,
    /// Failures reported with exit 3 ("bad input"): an I/O error while the
    /// reference is replayed is blamed on the migration.
    misclassified: Vec<String>,
    /// Failures from the directory sync after the rename on: the command
    /// fails, but the database is already the new one.
    after_rename: Vec<String>,
    /// Failures after the command had committed its change to the store.
    after_commit: Vec<String>,
    /// Temporary files left by the failed run (removed by the next one).
    temps_left: Vec<String>,
    /// Calls whose failure alone let the command succeed, described.
    ignored: Vec<String>,
}

const EIO: [&str; 2] = ["i/o error", "input/output error"];

/// Checks a failed run's error (see [`assert_clear_error`]) and returns its
/// line. Exit 3 is let through only for a reference replay that failed, and
/// recorded: its code says bad input, which an I/O error is not.
#[track_caller]
fn check_error(env: &TestEnv, out: &Output, context: &str, sweep: &mut Sweep) -> String {
    if out.status == exit::INPUT && out.stderr.contains("could not be built") {
        let as_internal = Output {
            status: 70,
            ..out.clone()
        };
        let line = assert_clear_error(env, &as_internal, &EIO, context);
        let line = line.replacen("exit 70", "exit 3", 1);
        if !sweep.misclassified.contains(&line) {
            sweep.misclassified.push(line.clone());
        }
        return line;
    }
    assert_clear_error(env, out, &EIO, context)
}

/// Whether `call` is a directory sync made by our code, not SQLite's: the
/// one after a rename.
fn is_our_dir_sync(call: &Call, caller: &str) -> bool {
    call.dir && !caller.lines().any(|f| f == "unixSync")
}

/// Sweeps `args` (see the module docs); `safety` says whether the store may
/// gain a complete safety snapshot before the failure.
fn sweep(shim: &FsyncShim, env: &TestEnv, args: &[&str], db: &Path, safety: bool) -> Sweep {
    let tree = Tree::save(env.path());
    let old = schema_and_rows(db);
    let before = env.store_state();
    let (out, calls) = shim.run(env, args, None);
    out.expect(exit::OK);
    assert!(!calls.is_empty(), "{args:?}: the shim saw no sync at all");
    let new = schema_and_rows(db);
    let after = env.store_state();
    let mut sweep = Sweep {
        syncs: calls.len(),
        ..Sweep::default()
    };
    let names = callers(&calls);
    // The directory sync that makes the rename over the database durable,
    // or SQLite's sync of the database (or its -wal) when the new pages are
    // committed in place: from there on the database may be the new one.
    let in_place_commit = |call: &Call, caller: &str| {
        let db = db.to_str().unwrap();
        caller.lines().any(|f| f == "unixSync")
            && (call.path == db || call.path == format!("{db}-wal"))
    };
    let rename_sync = calls
        .iter()
        .zip(&names)
        .position(|(call, name)| is_our_dir_sync(call, name) || in_place_commit(call, name));
    eprintln!("{args:?}: {} syncs when nothing fails:", calls.len());
    for (call, name) in calls.iter().zip(&names) {
        eprintln!("    {}", describe(call, name, env));
    }

    for n in 0..calls.len() {
        tree.put_back(env.path());
        let context = format!("{args:?} with fsync failing from call {n} on");
        let (out, seen) = shim.run(env, args, Some(("MIGSNAP_FAIL_FSYNC_AFTER", n)));
        if out.status == exit::OK {
            // Every failure was ignored; the ONLY sweep below names which.
            eprintln!("{context}: succeeded anyway");
            continue;
        }
        let first_failed = seen
            .iter()
            .find(|c| c.failed)
            .unwrap_or_else(|| panic!("{context}: failed without a failed sync:\n{}", out.stderr))
            .clone();
        let line = check_error(env, &out, &context, &mut sweep);
        if !sweep.errors.contains(&line) {
            sweep.errors.push(line.clone());
        }
        sweep.failures += 1;
        let now = schema_and_rows(db);
        if now != old {
            let caller = callers(std::slice::from_ref(&first_failed)).remove(0);
            assert!(
                now == new && rename_sync.is_some_and(|at| first_failed.index >= at),
                "{context}: the database changed ({})",
                describe(&first_failed, &caller, env)
            );
            sweep
                .after_rename
                .push(format!("{}: {line}", describe(&first_failed, &caller, env)));
        }
        assert_eq!(integrity_check(db), "ok", "{context}");
        if !safety {
            let state = env.store_state();
            if state != before {
                // The failure came after the command's own commit (gc's
                // vacuum, say): what it did must be exactly the whole of it.
                assert_eq!(state, after, "{context}: the store changed");
                sweep.after_commit.push(format!(
                    "{}: {line}",
                    describe(
                        &first_failed,
                        &callers(std::slice::from_ref(&first_failed))[0],
                        env
                    )
                ));
            }
        }
        let temps = env.restore_temps(db.parent().unwrap());
        if !temps.is_empty() {
            sweep.temps_left.push(format!("{temps:?} from call {n} on"));
        }
        // fsck is the next command; then nothing may be left.
        check_store(env, &context);
        let next = env.run(args);
        assert_eq!(
            next.status,
            exit::OK,
            "{context}: the next run failed:\n{}",
            next.stderr
        );
        assert_eq!(
            env.restore_temps(db.parent().unwrap()),
            Vec::<String>::new(),
            "{context}: a temporary file outlived the next run"
        );
    }

    for n in 0..calls.len() {
        tree.put_back(env.path());
        let context = format!("{args:?} with only fsync call {n} failing");
        let (out, seen) = shim.run(env, args, Some(("MIGSNAP_FAIL_FSYNC_ONLY", n)));
        if out.status != exit::OK {
            check_error(env, &out, &context, &mut sweep);
            let now = schema_and_rows(db);
            assert!(
                now == old || now == new,
                "{context}: the database is neither old nor new"
            );
            continue;
        }
        let failed: Vec<Call> = seen.into_iter().filter(|c| c.failed).collect();
        let names = callers(&failed);
        for (call, name) in failed.iter().zip(&names) {
            sweep.ignored.push(describe(call, name, env));
            let sqlite_dir_sync = name.lines().any(|f| f == "unixSync") && call.dir;
            assert!(
                sqlite_dir_sync,
                "{context}: succeeded although {} failed",
                describe(call, name, env)
            );
        }
    }
    tree.put_back(env.path());
    env.run(args).expect(exit::OK);
    sweep
}

fn report(path: &str, sweep: &Sweep) {
    eprintln!(
        "{path}: {} syncs, {} runs failed with fsync failing from call n on; errors seen:",
        sweep.syncs, sweep.failures
    );
    for line in &sweep.errors {
        eprintln!("    {line}");
    }
    for line in &sweep.misclassified {
        eprintln!("    exit 3 for an I/O error: {line}");
    }
    for line in &sweep.after_rename {
        eprintln!("    failed after the rename, database already new: {line}");
    }
    for line in &sweep.after_commit {
        eprintln!("    failed after the store commit: {line}");
    }
    for line in &sweep.temps_left {
        eprintln!("    left until the next run: {line}");
    }
    for call in &sweep.ignored {
        eprintln!("    ignored (SQLite directory sync): {call}");
    }
}

#[test]
fn an_fsync_failure_at_every_sync_of_snapshot_restore_gc_and_forget_changes_nothing() {
    let shim = FsyncShim::build();
    let env = TestEnv::with_store();
    let mut rng = StdRng::seed_from_u64(17);
    let db = env.join("big.db");
    create_db(&db, Journal::Delete, ROWS, 1000);
    create_db(&env.join("junk.db"), Journal::Delete, 200, 1000);
    env.run(&["track", "big", "big.db"]).assert_success();
    env.run(&["track", "junk", "junk.db"]).assert_success();
    let first = env.snapshot(&["big"]);
    for _ in 0..3 {
        mutate(&db, ROWS, &mut rng, 50);
        env.snapshot(&["big"]);
    }

    mutate(&db, ROWS, &mut rng, 200);
    let s = sweep(&shim, &env, &["snapshot", "big"], &db, false);
    report("snapshot", &s);
    assert!(s.failures >= 3, "{s:?}");

    mutate(&db, ROWS, &mut rng, 200);
    let s = sweep(&shim, &env, &["restore", &first, "big"], &db, true);
    report("restore", &s);
    assert!(s.failures >= 3, "{s:?}");

    let s = sweep(
        &shim,
        &env,
        &["forget", "big", "--keep-last", "1"],
        &db,
        false,
    );
    report("forget", &s);
    assert!(s.failures >= 1, "{s:?}");

    // Garbage for gc: a snapshot of junk whose ref and reflog are dropped.
    env.snapshot(&["junk"]);
    env.store_conn()
        .execute_batch(
            "DELETE FROM refs WHERE name = 'heads/junk';
             DELETE FROM reflog WHERE name = 'heads/junk';",
        )
        .unwrap();
    let s = sweep(&shim, &env, &["gc", "--grace", "0s"], &db, false);
    report("gc", &s);
    assert!(s.failures >= 1, "{s:?}");
    check_store(&env, "after the sweeps");
}

#[test]
fn an_fsync_failure_at_every_sync_of_repair_and_stamp_changes_nothing() {
    let shim = FsyncShim::build();
    let env = TestEnv::with_store();
    migration_project(&env);
    let (rep, app) = (env.join("rep.db"), env.join("app.db"));
    for (name, args, db) in [
        ("repair --apply", &["repair", "rep", "--apply"][..], &rep),
        (
            "stamp --verify",
            &["stamp", "--verify", "0002", "--db", "app"][..],
            &app,
        ),
    ] {
        let s = sweep(&shim, &env, args, db, true);
        report(name, &s);
        assert!(s.failures >= 3, "{s:?}");
    }
    check_store(&env, "after the sweeps");
}
