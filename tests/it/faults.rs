//! I/O faults on real file systems: a full disk at every step of each write
//! path, a rename that fails, and a read-only file system. Each fault must
//! give one clear `error:` line and a non-zero exit, leave nothing
//! half-written (the store passes `fsck --read-data`, the database is the old
//! one and passes `integrity_check`, no temporary file stays), and the next
//! run must work.
//!
//! The faults are real: each test mounts a small `tmpfs` over its project
//! directory, so `ENOSPC` comes from the kernel when the file system is full;
//! a file bind-mounted onto itself cannot be renamed over (`EBUSY`); a
//! read-only remount gives `EROFS`. Mounting needs root (CI runs as root);
//! elsewhere the tests say they were skipped and pass. fsync failures are
//! injected by an `LD_PRELOAD` shim instead, in `fsync_faults.rs`.
//! `docs/reliability.md` has the figures.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::common::{Journal, Output, StoreState, TestEnv, create_db, integrity_check};
use crate::crash::{
    check_store, is_hot, migration_project, mutate, put_back, schema_and_rows, store_leftovers,
};

/// Size of each test's file system.
const TMPFS_MIB: u64 = 64;
/// Most runs one sweep makes before it gives up on seeing a success.
const MAX_RUNS: usize = 120;
const ROWS: usize = 2000;
const PAYLOAD: usize = 1000;

/// A [`TestEnv`] whose directory is a fresh `tmpfs`, plus any mounts made
/// inside it; everything is unmounted (lazily, in reverse) on drop.
pub(crate) struct FaultEnv {
    pub(crate) env: TestEnv,
    mounts: Vec<PathBuf>,
}

impl Drop for FaultEnv {
    fn drop(&mut self) {
        for dir in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(dir).status();
        }
    }
}

/// Runs `mount` with `args`; says whether it worked.
fn mount(args: &[&str], target: &Path) -> bool {
    Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .is_ok_and(|out| out.status.success())
}

impl FaultEnv {
    /// A project directory on its own `tmpfs` with an initialised store, or
    /// `None` (after saying so) when mounting is not allowed here.
    pub(crate) fn new(test: &str) -> Option<FaultEnv> {
        let env = TestEnv::new();
        let size = format!("size={TMPFS_MIB}m");
        if !mount(&["-t", "tmpfs", "-o", &size, "tmpfs"], env.path()) {
            eprintln!("note: {test}: skipped (mounting a tmpfs needs root)");
            return None;
        }
        let fx = FaultEnv {
            mounts: vec![env.path().to_path_buf()],
            env,
        };
        fx.env.run(&["init"]).assert_success();
        Some(fx)
    }

    /// Fills the file system so that only `free` bytes (rounded to pages)
    /// stay available: writes `filler` until `ENOSPC`, then gives back
    /// `free` bytes by truncating it.
    fn leave_free(&self, free: u64) {
        let path = self.env.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0xa5u8; 1 << 20];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        file.set_len(written.saturating_sub(free)).unwrap();
    }

    /// Gives all space back.
    fn free_all(&self) {
        let _ = std::fs::remove_file(self.env.join("filler"));
    }

    /// Bind-mounts `file` onto itself: it can still be read and written,
    /// but not renamed over or removed (`EBUSY`).
    fn pin(&mut self, file: &Path) {
        assert!(
            mount(&["--bind", file.to_str().unwrap()], file),
            "bind mount"
        );
        self.mounts.push(file.to_path_buf());
    }

    /// Makes `dir` read-only (`EROFS`) by a read-only bind mount onto itself.
    pub(crate) fn read_only(&mut self, dir: &Path) {
        assert!(mount(&["--bind", dir.to_str().unwrap()], dir), "bind mount");
        self.mounts.push(dir.to_path_buf());
        assert!(mount(&["-o", "remount,bind,ro"], dir), "read-only remount");
    }

    /// Undoes the last [`pin`](Self::pin) or [`read_only`](Self::read_only).
    pub(crate) fn unmount_last(&mut self) {
        let dir = self.mounts.pop().expect("a mount to undo");
        let status = Command::new("umount").arg(&dir).status().unwrap();
        assert!(status.success(), "umount {}", dir.display());
    }
}

/// What a sweep saw.
#[derive(Debug, Default)]
struct Sweep {
    /// Failed runs, one per amount of free space.
    failures: usize,
    /// The distinct error lines (ids and paths redacted): the steps at which
    /// the disk ran out.
    errors: Vec<String>,
    /// Free bytes with which the command first succeeded.
    succeeded_with: u64,
}

/// Asserts that a failed run reported one clear error: a non-zero exit, an
/// `error:` first line and only `caused by:`/`hint:` lines after it, with
/// the OS reason (`needle`) somewhere in the chain. Returns the error line.
#[track_caller]
pub(crate) fn assert_clear_error(
    env: &TestEnv,
    out: &Output,
    needles: &[&str],
    context: &str,
) -> String {
    assert_ne!(out.status, 0, "{context}: `{}` succeeded", out.command);
    assert!(
        [4, 5, 70].contains(&out.status),
        "{context}: `{}` exited {}, not a documented failure code\n{}",
        out.command,
        out.status,
        out.stderr
    );
    // Progress lines of a replay may come first; then exactly one error.
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .skip_while(|l| l.starts_with("replaying "))
        .collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("error: "))
            && lines[1..]
                .iter()
                .all(|l| l.starts_with("caused by: ") || l.starts_with("hint: ")),
        "{context}: `{}`: stderr is not one error with its causes:\n{}",
        out.command,
        out.stderr
    );
    let lower = out.stderr.to_lowercase();
    assert!(
        needles.iter().any(|n| lower.contains(n)),
        "{context}: `{}`: the error does not say {needles:?}:\n{}",
        out.command,
        out.stderr
    );
    let temp = regex::Regex::new(r"\.migsnap-restore-\d+-\w+").unwrap();
    let line = env.redact(lines[0]);
    format!(
        "exit {}: {}",
        out.status,
        temp.replace_all(&line, ".migsnap-restore-[PID]-[RANDOM]")
    )
}

/// How `state` may differ after a failed run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StoreRule {
    /// Exactly as before: refs, reflog, objects, config.
    Unchanged,
    /// A restore or rewrite may have committed its safety snapshot (a
    /// complete one: `check_store` verifies it) before the fault.
    SafetySnapshotAllowed,
}

/// Runs `args` with 0, `step`, 2 `step`, … bytes free until it succeeds.
/// After every failure: one clear error, `db` still has `old` content and
/// passes `integrity_check`, the store is as `rule` allows and passes
/// `fsck --read-data`, and no temporary file is left.
fn sweep_full_disk(fx: &FaultEnv, args: &[&str], step: u64, db: &Path, rule: StoreRule) -> Sweep {
    let env = &fx.env;
    let old = schema_and_rows(db);
    let before: StoreState = env.store_state();
    let mut sweep = Sweep::default();
    for run in 0..MAX_RUNS {
        let free = run as u64 * step;
        fx.leave_free(free);
        let out = env.run(args);
        if out.status == 0 {
            fx.free_all();
            sweep.succeeded_with = free;
            return sweep;
        }
        let context = format!("{args:?} with {free} bytes free");
        let line = assert_clear_error(
            env,
            &out,
            &["no space left", "disk is full", "full"],
            &context,
        );
        if !sweep.errors.contains(&line) {
            sweep.errors.push(line);
        }
        sweep.failures += 1;
        assert_eq!(schema_and_rows(db), old, "{context}: the database changed");
        assert_eq!(integrity_check(db), "ok", "{context}");
        assert_eq!(
            env.restore_temps(db.parent().unwrap()),
            Vec::<String>::new(),
            "{context}: a temporary file was left"
        );
        if rule == StoreRule::Unchanged {
            assert_eq!(env.store_state(), before, "{context}: the store changed");
        }
        fx.free_all();
        check_store(env, &context);
        let hot: Vec<String> = store_leftovers(env)
            .into_iter()
            .filter(|n| n != "store.db-journal" || is_hot(&env.store_dir().join(n)))
            .collect();
        assert_eq!(hot, Vec::<String>::new(), "{context}: left in .migsnap/");
    }
    panic!(
        "{args:?} never succeeded with up to {} bytes free",
        MAX_RUNS as u64 * step
    );
}

fn report(path: &str, sweep: &Sweep) {
    eprintln!(
        "{path}: {} full-disk failures, first success with {} KiB free; errors seen:",
        sweep.failures,
        sweep.succeeded_with / 1024
    );
    for line in &sweep.errors {
        eprintln!("    {line}");
    }
}

#[test]
fn a_full_disk_at_every_step_of_snapshot_restore_gc_and_forget_changes_nothing() {
    let Some(fx) = FaultEnv::new("full disk: snapshot, restore, gc, forget") else {
        return;
    };
    let env = &fx.env;
    let mut rng = StdRng::seed_from_u64(11);
    let db = env.join("big.db");
    create_db(&db, Journal::Delete, ROWS, PAYLOAD);
    env.run(&["track", "big", "big.db"]).assert_success();
    let first = env.snapshot(&["big"]);
    for _ in 0..3 {
        mutate(&db, ROWS, &mut rng, 50);
        env.snapshot(&["big"]);
    }

    // snapshot: about 300 changed pages to pack, then the commit.
    mutate(&db, ROWS, &mut rng, 300);
    let sweep = sweep_full_disk(
        &fx,
        &["snapshot", "big"],
        64 << 10,
        &db,
        StoreRule::Unchanged,
    );
    report("snapshot", &sweep);
    assert!(
        sweep.failures >= 5,
        "the sweep hit too few steps: {sweep:?}"
    );

    // restore: safety snapshot, then the rebuilt copy beside the database.
    mutate(&db, ROWS, &mut rng, 300);
    let sweep = sweep_full_disk(
        &fx,
        &["restore", &first],
        128 << 10,
        &db,
        StoreRule::SafetySnapshotAllowed,
    );
    report("restore", &sweep);
    assert!(
        sweep.failures >= 5,
        "the sweep hit too few steps: {sweep:?}"
    );

    // checkout into a new file: its room is reserved before any page is
    // written, so every run short of it fails at once, leaving nothing.
    let sweep = sweep_full_disk(
        &fx,
        &["checkout", &first, "-o", "copy.db"],
        128 << 10,
        &db,
        StoreRule::Unchanged,
    );
    report("checkout", &sweep);
    assert!(
        sweep.failures >= 5 && sweep.succeeded_with >= std::fs::metadata(&db).unwrap().len() / 2,
        "the sweep hit too few steps: {sweep:?}"
    );
    std::fs::remove_file(env.join("copy.db")).unwrap();

    // forget, then gc of what it gave up.
    let sweep = sweep_full_disk(
        &fx,
        &["forget", "--keep-last", "1"],
        4 << 10,
        &db,
        StoreRule::Unchanged,
    );
    report("forget", &sweep);
    // gc also packs the loose packs the snapshots above wrote (about 2 MiB:
    // the rollback journal keeps the pages it reuses), so it needs more room.
    let sweep = sweep_full_disk(
        &fx,
        &["gc", "--grace", "0s"],
        48 << 10,
        &db,
        StoreRule::Unchanged,
    );
    report("gc", &sweep);
    check_store(env, "after the sweeps");
}

#[test]
fn a_full_disk_at_every_step_of_repair_and_stamp_changes_nothing() {
    let Some(fx) = FaultEnv::new("full disk: repair, stamp") else {
        return;
    };
    let env = &fx.env;
    let (rep_bytes, app_bytes) = migration_project(env);
    let (rep, app) = (env.join("rep.db"), env.join("app.db"));
    // Build the reference chain with room to spare, then undo the repair.
    env.run(&["repair", "rep", "--apply"]).assert_success();
    put_back(&rep, &rep_bytes);
    for (name, args, db) in [
        ("repair --apply", &["repair", "rep", "--apply"][..], &rep),
        (
            "stamp --verify",
            &["stamp", "--verify", "0002", "--db", "app"][..],
            &app,
        ),
    ] {
        let sweep = sweep_full_disk(&fx, args, 256 << 10, db, StoreRule::SafetySnapshotAllowed);
        report(name, &sweep);
        assert!(
            sweep.failures >= 5,
            "the sweep hit too few steps: {sweep:?}"
        );
        assert_ne!(schema_and_rows(db), "", "{name}");
    }
    put_back(&app, &app_bytes);
    check_store(env, "after the sweeps");
}

#[test]
fn a_rename_that_fails_leaves_the_database_and_no_temporary_file() {
    let Some(mut fx) = FaultEnv::new("rename failure") else {
        return;
    };
    let (rep_bytes, app_bytes) = migration_project(&fx.env);
    let (rep, app) = (fx.env.join("rep.db"), fx.env.join("app.db"));
    let first = fx.env.snapshot(&["app"]);
    crate::common::exec(
        &app,
        "INSERT INTO posts (user_id, body) VALUES (1, 'later')",
    );
    // Only a target that is not a database SQLite can write in place is
    // renamed over.
    let out_db = fx.env.join("out.db");
    std::fs::write(&out_db, b"placeholder").unwrap();
    let args = ["checkout", &first, "-o", "out.db", "--force"];
    let context = "checkout --force with out.db pinned";
    fx.pin(&out_db);
    let out = fx.env.run(&args);
    let line = assert_clear_error(&fx.env, &out, &["busy"], context);
    eprintln!("rename refused: {line}");
    fx.unmount_last();
    assert_eq!(std::fs::read(&out_db).unwrap(), b"placeholder");
    assert_eq!(
        fx.env.restore_temps(fx.env.path()),
        Vec::<String>::new(),
        "{context}: the temporary file was left"
    );
    check_store(&fx.env, context);
    fx.env.run(&args).assert_success();

    // A database bind-mounted as a single file (as in Docker) cannot be
    // renamed over, and needs not be: restore, repair and stamp write it in
    // place.
    let cases: [(&[&str], &PathBuf); 3] = [
        (&["restore", &first, "app"], &app),
        (&["repair", "rep", "--apply"], &rep),
        (&["stamp", "--verify", "0002", "--db", "app"], &app),
    ];
    for (args, target) in cases {
        let context = format!("{args:?} with {} pinned", target.display());
        fx.pin(target);
        fx.env.run(args).assert_success();
        fx.unmount_last();
        assert_eq!(integrity_check(target), "ok", "{context}");
        assert_eq!(
            fx.env.restore_temps(fx.env.path()),
            Vec::<String>::new(),
            "{context}: the temporary file was left"
        );
        check_store(&fx.env, &context);
        if target == &app {
            put_back(&app, &app_bytes);
            crate::common::exec(
                &app,
                "INSERT INTO posts (user_id, body) VALUES (1, 'later')",
            );
        }
    }
    put_back(&rep, &rep_bytes);
}

#[test]
fn a_read_only_file_system_refuses_every_write_path_cleanly() {
    let Some(mut fx) = FaultEnv::new("read-only file system") else {
        return;
    };
    let (_, _) = migration_project(&fx.env);
    let (rep, app) = (fx.env.join("rep.db"), fx.env.join("app.db"));
    let first = fx.env.snapshot(&["app"]);
    crate::common::exec(
        &app,
        "INSERT INTO posts (user_id, body) VALUES (1, 'later')",
    );
    let store = fx.env.store_dir();
    // The store read-only: every command that writes it.
    let cases: [(&[&str], &PathBuf); 6] = [
        (&["snapshot", "app"], &app),
        (&["restore", &first, "app"], &app),
        (&["forget", "--keep-last", "1"], &app),
        (&["gc", "--grace", "0s"], &app),
        (&["repair", "rep", "--apply"], &rep),
        (&["stamp", "--verify", "0002", "--db", "app"], &app),
    ];
    let before = fx.env.store_state();
    fx.read_only(&store);
    for (args, db) in cases {
        let context = format!("{args:?} with a read-only store");
        let old = schema_and_rows(db);
        let out = fx.env.run(args);
        if args[0] == "forget" || args[0] == "gc" {
            // Nothing to forget or collect yet: no write is attempted.
            if out.status == 0 {
                eprintln!("read-only store: {args:?} had nothing to write");
                continue;
            }
        }
        let line = assert_clear_error(&fx.env, &out, &["read-only", "readonly"], &context);
        eprintln!("read-only store: {line}");
        assert_eq!(schema_and_rows(db), old, "{context}: the database changed");
    }
    fx.unmount_last();
    assert_eq!(fx.env.store_state(), before, "a read-only store changed");
    check_store(&fx.env, "after the read-only store");
    // The next runs work.
    fx.env.run(&["snapshot", "app"]).assert_success();
    fx.env.run(&["restore", &first, "app"]).assert_success();

    // The database's directory read-only, the store writable: SQLite
    // cannot create the rollback journal the restore in place writes
    // through (nor could a rebuilt copy be created beside the database).
    let data = fx.env.join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("d.db");
    create_db(&db, Journal::Delete, ROWS, PAYLOAD);
    fx.env.run(&["track", "d", "data/d.db"]).assert_success();
    let snapshot = fx.env.snapshot(&["d"]);
    crate::common::exec(&db, "DELETE FROM items WHERE id % 7 = 0");
    let old = schema_and_rows(&db);
    fx.read_only(&data);
    let args = ["restore", &snapshot, "d"];
    let out = fx.env.run(&args);
    let line = assert_clear_error(
        &fx.env,
        &out,
        &["read-only", "readonly"],
        "read-only database directory",
    );
    eprintln!("read-only database directory: {line}");
    fx.unmount_last();
    assert_eq!(
        schema_and_rows(&db),
        old,
        "a restore into a read-only directory changed the database"
    );
    assert_eq!(fx.env.restore_temps(&data), Vec::<String>::new());
    check_store(&fx.env, "after the read-only database directory");
    fx.env.run(&args).assert_success();
    assert_ne!(schema_and_rows(&db), old);
}

/// Rows of a store table, to see that a failed run left nothing behind.
fn store_rows(env: &TestEnv, table: &str) -> i64 {
    env.store_conn()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// A database of text pages a dictionary can be trained on, `rows` notes
/// long, each with `noise` random bytes; `word` makes its pages (and
/// dictionary) its own.
fn text_db(path: &Path, rows: usize, noise: usize, word: &str) {
    crate::common::exec(
        path,
        &format!(
            "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, noise BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO notes SELECT i,
                 replace(printf('%.*c', 30, 'x'), 'x', '{word} ' || (i * 7919 % 997) || ' '),
                 randomblob({noise})
             FROM n;"
        ),
    );
}

/// Issue 10, item 1: a snapshot that trains the store's first dictionary
/// and then runs out of space must leave the store exactly as it was (since
/// issue 14 a snapshot trains none, but a full disk must still leave
/// nothing, and later snapshots must use the dictionary gc trains). The
/// old insert loop went on after SQLITE_FULL had rolled the transaction
/// back, so the rest of the batch committed on its own: a pack naming a
/// dictionary that no longer existed, whose row number the next dictionary
/// then reused ("Dictionary mismatch" at checkout, with fsck clean).
#[test]
fn a_full_disk_during_the_first_dictionary_snapshot_leaves_no_orphan_pack() {
    let Some(fx) = FaultEnv::new("full disk: first dictionary") else {
        return;
    };
    let env = &fx.env;
    let big = env.join("big.db");
    // SQLite rolls the whole transaction back (rather than the statement)
    // when the disk fills as it spills dirty pages to the file, which it does
    // once they outgrow the store's 16 MiB page cache: the database must be
    // bigger than that, and the free space smaller.
    text_db(&big, 9000, 2500, "lorem ipsum");
    env.run(&["track", "big", "big.db"]).assert_success();
    let before = env.store_state();
    // Where the disk fills decides which insert of a batch fails; the old
    // code left an orphan only when one came after it in the same batch.
    for free_mib in 2..10 {
        let context = format!("snapshot with {free_mib} MiB free");
        fx.leave_free(free_mib << 20);
        let out = env.run(&["snapshot", "big"]);
        assert_clear_error(env, &out, &["disk full", "no space"], &context);
        assert_eq!(out.status, 4, "{context}: {}", out.stderr);
        fx.free_all();
        assert_eq!(env.store_state(), before, "{context}: the store changed");
        for table in ["packs", "objects", "dictionaries"] {
            assert_eq!(store_rows(env, table), 0, "{context}: {table} rows left");
        }
    }

    // Another database, whose rows share text, gets the store's first
    // dictionary when gc packs it (snapshots train none since issue 14);
    // then the big one is snapshotted again and must come back whole.
    let other = env.join("other.db");
    crate::common::exec(
        &other,
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
         CREATE TEMP TABLE shared AS
             WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 15)
             SELECT j, hex(randomblob(500)) AS text FROM k;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
         INSERT INTO notes SELECT i,
             (SELECT text FROM shared WHERE j = i % 16) || hex(randomblob(300)) FROM n;",
    );
    env.run(&["track", "other", "other.db"]).assert_success();
    env.snapshot(&["other"]);
    env.run(&["gc"]).assert_success();
    assert_eq!(
        store_rows(env, "dictionaries"),
        1,
        "packing other.db trained no dictionary"
    );
    // Its 12 MB are in the store now; the small file system needs the room.
    std::fs::remove_file(&other).unwrap();
    let snapshot = env.snapshot(&["big"]);
    // The file system holds the database or its copy, not both.
    let digest = crate::common::dump_digest(&big);
    std::fs::remove_file(&big).unwrap();
    env.run(&["checkout", &snapshot, "-o", "copy.db"])
        .assert_success();
    assert_eq!(crate::common::dump_digest(&env.join("copy.db")), digest);
    env.run(&["fsck"]).assert_success();
    check_store(env, "after the full disk");
}

#[test]
fn a_failed_rename_keeps_the_committed_rows_in_the_old_wal() {
    let Some(mut fx) = FaultEnv::new("rename failure with a WAL") else {
        return;
    };
    let env = &fx.env;
    // Another page size than the target's: it cannot be written in place,
    // so checkout --force renames.
    let small = env.join("small.db");
    {
        let conn = rusqlite::Connection::open(&small).unwrap();
        conn.execute_batch("PRAGMA page_size = 1024; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let s1 = env.snapshot(&["small.db"]);
    let target = env.join("live.db");
    create_db(&target, Journal::Wal, 20, 100);
    // 100 committed rows that live only in the -wal while a connection is open.
    let conn = rusqlite::Connection::open(&target).unwrap();
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint = 0;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
         INSERT INTO items(name) SELECT 'wal ' || i FROM n;",
    )
    .unwrap();
    let rows = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT count(*) FROM items", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(rows(&conn), 120);
    fx.pin(&target);
    let out = fx.env.run(&["checkout", &s1, "-o", "live.db", "--force"]);
    assert_clear_error(
        &fx.env,
        &out,
        &["busy"],
        "checkout --force onto a pinned WAL db",
    );
    fx.unmount_last();
    assert!(fx.env.join("live.db-wal").exists(), "the -wal was deleted");
    drop(conn);
    let conn = rusqlite::Connection::open(&target).unwrap();
    assert_eq!(rows(&conn), 120, "a failed checkout lost committed rows");
}
