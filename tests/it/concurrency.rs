//! Snapshots taken while another connection keeps writing must each be one
//! consistent state of the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::Connection;

use crate::common::{Journal, TestEnv, exec, exit, integrity_check};

/// Every writer transaction inserts a +x/-x pair into `ledger` and sets the
/// one `counter` row to the ledger's row count, touching pages at both ends
/// of the file; a torn snapshot breaks `SUM(amount) = 0` or the counter.
fn writer(
    path: std::path::PathBuf,
    pause: Duration,
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
) {
    let conn = Connection::open(&path).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let mut x: i64 = 1;
    while !stop.load(Ordering::Relaxed) {
        let tx = conn.unchecked_transaction().expect("writer: begin");
        tx.execute(
            "INSERT INTO ledger(amount, memo) VALUES (?1, ?2), (?3, ?2)",
            rusqlite::params![x, "m".repeat(300 + (x % 700) as usize), -x],
        )
        .expect("writer: insert");
        tx.execute(
            "UPDATE counter SET n = (SELECT count(*) FROM ledger), last = ?1 WHERE id = 1",
            [x],
        )
        .expect("writer: update");
        tx.commit().expect("writer: commit");
        commits.fetch_add(1, Ordering::Relaxed);
        x += 1;
        std::thread::sleep(pause);
    }
}

fn snapshots_under_load(mode: Journal) {
    let env = TestEnv::with_store();
    let db = env.join("ledger.db");
    {
        let conn = Connection::open(&db).unwrap();
        if mode == Journal::Wal {
            conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
        }
        conn.execute_batch(
            "CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, last INTEGER);
             INSERT INTO counter VALUES (1, 0, 0);
             CREATE TABLE ledger(id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, memo TEXT);
             CREATE INDEX ledger_by_amount ON ledger(amount);",
        )
        .unwrap();
    }
    env.run(&["track", "ledger", "ledger.db"]).assert_success();

    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let handle = {
        let (db, stop, commits) = (db.clone(), stop.clone(), commits.clone());
        // In rollback-journal mode a writer that commits back to back holds
        // readers off almost all the time (SQLite's locking, not migsnap's);
        // a short pause between transactions, as real applications have,
        // lets a reader in.
        let pause = match mode {
            Journal::Wal => Duration::ZERO,
            Journal::Delete => Duration::from_millis(2),
        };
        std::thread::spawn(move || writer(db, pause, stop, commits))
    };
    // Let the writer get going, so every snapshot overlaps writes.
    while commits.load(Ordering::Relaxed) < 20 {
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut ids = Vec::new();
    let mut during = Vec::new();
    for _ in 0..10 {
        let before = commits.load(Ordering::Relaxed);
        let out = env.run(&["--format", "json", "snapshot", "ledger"]);
        let after = commits.load(Ordering::Relaxed);
        let json = out.ok_json();
        if json["recorded"] == true {
            ids.push(json["id"].as_str().unwrap().to_owned());
        }
        during.push(after - before);
    }
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("writer panicked");
    assert!(
        during.iter().filter(|n| **n > 0).count() >= 5,
        "the writer should commit while most snapshots run: {during:?}"
    );
    assert!(
        ids.len() >= 5,
        "most snapshots should record a new state: {ids:?}"
    );

    let mut last_n = -1i64;
    for (i, id) in ids.iter().enumerate() {
        let out = env.join(format!("check-{i}.db"));
        env.run(&["checkout", id, "-o", out.to_str().unwrap()])
            .assert_success();
        assert_eq!(integrity_check(&out), "ok", "snapshot {id}");
        let conn = Connection::open(&out).unwrap();
        let (sum, count, pairs): (i64, i64, i64) = conn
            .query_row(
                "SELECT coalesce(sum(amount), 0), count(*),
                        (SELECT count(*) FROM ledger a JOIN ledger b ON b.amount = -a.amount
                         WHERE a.amount > 0)
                 FROM ledger",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        let (n, last): (i64, i64) = conn
            .query_row("SELECT n, last FROM counter WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(sum, 0, "snapshot {id}: ledger does not balance");
        assert_eq!(n, count, "snapshot {id}: counter disagrees with the ledger");
        assert_eq!(pairs * 2, count, "snapshot {id}: unpaired ledger rows");
        assert_eq!(
            last * 2,
            count,
            "snapshot {id}: last transaction is not the newest"
        );
        assert!(
            n > last_n,
            "snapshot {id}: went back in time ({n} after {last_n})"
        );
        last_n = n;
    }
}

#[test]
fn snapshots_of_a_wal_database_under_concurrent_writes_are_consistent() {
    snapshots_under_load(Journal::Wal);
}

#[test]
fn snapshots_of_a_rollback_journal_database_under_concurrent_writes_are_consistent() {
    snapshots_under_load(Journal::Delete);
}

/// What one of several migsnap processes sharing a store may do: succeed, or
/// refuse with exit 4 and one `error:` line saying the store was locked or
/// changed meanwhile. Anything else (a crash, exit 5, exit 70) fails.
#[track_caller]
fn succeeded_or_refused_politely(out: &crate::common::Output) -> bool {
    if out.status == exit::OK {
        return true;
    }
    out.expect_error(exit::REFUSED, &[]);
    assert!(
        ["locked by another process", "changed", "concurrently"]
            .iter()
            .any(|why| out.stderr.contains(why)),
        "`{}` refused for an unexpected reason:\n{}",
        out.command,
        out.stderr
    );
    false
}

#[test]
fn processes_sharing_a_store_snapshot_gc_and_read_at_once() {
    let env = TestEnv::with_store();
    let names = ["a", "b", "c"];
    for name in names {
        env.make_db(&format!("{name}.db"), Journal::Wal, 80);
        env.run(&["track", name, &format!("{name}.db")])
            .assert_success();
    }
    env.snapshot(&["a"]);
    let env = Arc::new(env);
    let rounds = 6;
    let mut workers = Vec::new();
    // One snapshotter per database, changing it between snapshots, and two
    // more that snapshot database `a` too, so refs race.
    for (i, name) in names.iter().chain(["a", "a"].iter()).enumerate() {
        let env = env.clone();
        let name = name.to_string();
        workers.push(std::thread::spawn(move || {
            let db = env.join(format!("{name}.db"));
            let mut ok = 0;
            for round in 0..rounds {
                crate::common::exec(
                    &db,
                    &format!(
                        "UPDATE items SET name = 'w{i}-r{round}' WHERE id % 7 = {};",
                        round % 7
                    ),
                );
                let out = env.run(&["snapshot", &name, "-m", &format!("w{i} r{round}")]);
                ok += usize::from(succeeded_or_refused_politely(&out));
            }
            ok
        }));
    }
    // A gc loop with no grace (the harshest), and readers.
    {
        let env = env.clone();
        workers.push(std::thread::spawn(move || {
            let mut ok = 0;
            for _ in 0..rounds {
                let out = env.run(&["gc", "--grace", "0s"]);
                ok += usize::from(succeeded_or_refused_politely(&out));
            }
            ok
        }));
    }
    for args in [&["log", "a"][..], &["fsck"], &["tags"]] {
        let env = env.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        workers.push(std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut ok = 0;
            for _ in 0..rounds {
                let out = env.run(&args);
                // fsck exits 1 on problems: that must never happen here.
                ok += usize::from(succeeded_or_refused_politely(&out));
            }
            ok
        }));
    }
    let succeeded: Vec<usize> = workers
        .into_iter()
        .map(|w| w.join().expect("a worker panicked"))
        .collect();
    eprintln!(
        "shared store: successes per process out of {rounds}: {succeeded:?} (the rest refused politely)"
    );
    assert!(
        succeeded.iter().all(|n| *n > 0),
        "every process should get through at least once: {succeeded:?}"
    );

    // The store is whole, and every snapshot of every database rebuilds.
    env.run(&["fsck", "--read-data"]).assert_success();
    for name in names {
        let ids = env.log_ids(Some(name));
        assert!(!ids.is_empty(), "{name} has no snapshot");
        for (i, id) in ids.iter().enumerate() {
            let out = format!("{name}-{i}.db");
            env.run(&["checkout", id, "-o", &out]).assert_success();
            assert_eq!(integrity_check(&env.join(&out)), "ok", "{name} {id}");
        }
    }
}

#[test]
fn a_write_lock_on_the_store_is_waited_for_and_a_killed_holder_never_blocks() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 30);
    let first = env.snapshot(&["app.db"]);
    let state = env.store_state();

    // A live process holding the store's write lock makes migsnap wait, not
    // fail: it goes ahead once the lock is released.
    let holder = Connection::open(env.store_db()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE;").unwrap();
    crate::common::exec(&env.join("app.db"), "DELETE FROM items WHERE id < 5;");
    let mut child = env
        .command(&["tag", "waited"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "migsnap did not wait for the store lock"
    );
    holder.execute_batch("COMMIT;").unwrap();
    drop(holder);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the waiting run failed after the lock was released"
    );

    // A writer killed inside its transaction leaves a hot journal and a
    // dead lock; the next migsnap run neither waits nor sees its writes.
    let python = crate::common::sqlite_python();
    let killed = std::process::Command::new(&python)
        .arg("-c")
        .arg(
            "import os, sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('PRAGMA cache_size = 1')\n\
             c.execute('BEGIN IMMEDIATE')\n\
             c.execute(\"DELETE FROM refs\")\n\
             c.execute(\"INSERT INTO reflog(name, old, new, time, message) SELECT name, old, new, time, 'killed' FROM reflog\")\n\
             c.execute(\"UPDATE packs SET data = zeroblob(length(data))\")\n\
             os.kill(os.getpid(), 9)\n",
        )
        .arg(env.store_db())
        .status();
    let Ok(killed) = killed else {
        eprintln!("skipped the killed-writer half: no {python}");
        return;
    };
    assert!(!killed.success(), "the writer was meant to die");
    let journal = env.join(".migsnap/store.db-journal");
    assert!(journal.exists(), "the killed writer left no hot journal");

    let start = std::time::Instant::now();
    env.run(&["fsck", "--read-data"]).assert_success();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "a dead writer's lock blocked fsck for {:?}",
        start.elapsed()
    );
    let after = env.store_state();
    assert_eq!(
        after.refs.len(),
        state.refs.len() + 1,
        "the killed writer's deletes survived"
    );
    env.snapshot(&[]);
    env.run(&["checkout", &first, "-o", "first.db"])
        .assert_success();
    assert_eq!(integrity_check(&env.join("first.db")), "ok");
}

/// Issue 10 item 12: a store with no dictionary yet sampled the database's
/// pages to train one, and a writer that shrank the file (VACUUM) between
/// reading the page count and reading the pages made the snapshot fail with
/// "Query returned no rows" (exit 70). Since issue 14 the dictionary is
/// trained by `gc` from stored pages; snapshots into fresh stores must still
/// never fail while the file shrinks.
#[test]
fn snapshots_while_a_writer_shrinks_the_database_never_fail() {
    let env = TestEnv::new();
    let db = env.join("shrinking.db");
    exec(
        &db,
        "PRAGMA auto_vacuum = FULL; PRAGMA journal_mode = WAL;
         CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB);",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let handle = {
        let (db, stop, cycles) = (db.clone(), stop.clone(), cycles.clone());
        std::thread::spawn(move || {
            let conn = Connection::open(&db).unwrap();
            conn.busy_timeout(Duration::from_secs(30)).unwrap();
            conn.execute_batch("PRAGMA synchronous = OFF;").unwrap();
            while !stop.load(Ordering::Relaxed) {
                // Grows the file to some 600 pages, then shrinks it to two
                // (auto_vacuum truncates the file at each commit).
                conn.execute_batch(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600)
                     INSERT INTO t(body) SELECT randomblob(3000) FROM n;
                     DELETE FROM t;",
                )
                .expect("writer");
                cycles.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while cycles.load(Ordering::Relaxed) < 3 {
        std::thread::sleep(Duration::from_millis(2));
    }
    let rounds = 20;
    let mut failures = Vec::new();
    for round in 0..rounds {
        let store = format!("store-{round}");
        env.run(&["--store", &store, "init"]).assert_success();
        let out = env.run(&["--store", &store, "snapshot", "shrinking.db"]);
        if out.status != exit::OK {
            failures.push(out.stderr.clone());
        }
    }
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("writer panicked");
    assert!(
        cycles.load(Ordering::Relaxed) >= rounds,
        "the writer should shrink the file during most snapshots"
    );
    assert!(
        failures.is_empty(),
        "{} of {rounds} snapshots failed: {failures:#?}",
        failures.len()
    );
}

/// Issue 10 item 20: `--busy-timeout` also bounds the wait for another
/// process's lock on the store (a stopped snapshot held it for the 60 s
/// default), and the refusal says the store is locked.
#[test]
fn busy_timeout_bounds_the_wait_for_the_store_lock() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 10);
    env.snapshot(&["app.db"]);
    let before = env.store_state();
    let holder = Connection::open(env.store_db()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE;").unwrap();
    let start = std::time::Instant::now();
    let out = env.run(&["--busy-timeout", "300ms", "tag", "t"]);
    let took = start.elapsed();
    out.expect_error(exit::REFUSED, &["store", "locked by another process"]);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(10),
        "waited {took:?} for the store lock with --busy-timeout 300ms"
    );
    holder.execute_batch("ROLLBACK;").unwrap();
    drop(holder);
    assert_eq!(env.store_state(), before);
    env.run(&["--busy-timeout", "300ms", "tag", "t"])
        .assert_success();
}

/// How a racing writer holds its connection.
#[derive(Clone, Copy, Debug)]
enum Connecting {
    /// A new connection per commit (cron jobs, CLI tools, many web apps).
    PerCommit,
    /// One connection for its whole life.
    LongLived,
}

/// A writer process (Python's `sqlite3`, so another process with its own
/// SQLite build) that inserts `base + 1, base + 2, ...` into `acks`, one
/// row per transaction, and prints each id whose COMMIT succeeded: the
/// commits the application was told are durable. It stops when `stop`
/// exists.
const ACKNOWLEDGING_WRITER: &str = r#"
import os, sqlite3, sys, time
path, connecting, base, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def connect():
    return sqlite3.connect(path, timeout=30, isolation_level=None)
long_lived = connect() if connecting == "long-lived" else None
i = base
while not os.path.exists(stop):
    i += 1
    conn = long_lived or connect()
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO acks(id, note) VALUES (?, hex(randomblob(200)))", (i,))
        conn.execute("COMMIT")
        print(i, flush=True)
    except sqlite3.Error:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
    if long_lived is None:
        conn.close()
    time.sleep(0.002)
"#;

/// Starts an [`ACKNOWLEDGING_WRITER`] process and a thread that collects
/// the ids it acknowledges, counting them in `commits`.
fn acknowledging_writer(
    path: &std::path::Path,
    connecting: Connecting,
    base: i64,
    stop: &std::path::Path,
    commits: Arc<AtomicU64>,
) -> (std::process::Child, std::thread::JoinHandle<Vec<i64>>) {
    use std::io::BufRead;
    let python = crate::common::sqlite_python();
    let connecting = match connecting {
        Connecting::PerCommit => "per-commit",
        Connecting::LongLived => "long-lived",
    };
    let mut child = std::process::Command::new(&python)
        .arg("-c")
        .arg(ACKNOWLEDGING_WRITER)
        .arg(path)
        .arg(connecting)
        .arg(base.to_string())
        .arg(stop)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the writer process {python}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map(|line| {
                commits.fetch_add(1, Ordering::Relaxed);
                line.unwrap().trim().parse().unwrap()
            })
            .collect()
    });
    (child, reader)
}

/// The ids in `acks` of the database at `path`.
fn acked_ids(path: &std::path::Path) -> std::collections::BTreeSet<i64> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM acks").unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// Restores run while two writers commit (one connecting per commit, one
/// holding a long-lived connection); every commit a writer saw succeed
/// must end up in the restored file or in one of the safety snapshots.
fn restores_under_writers_lose_no_acknowledged_commit(mode: Journal) {
    let env = TestEnv::with_store();
    let db = env.join("app.db");
    {
        let conn = Connection::open(&db).unwrap();
        if mode == Journal::Wal {
            conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
        }
        conn.execute_batch(
            "CREATE TABLE acks(id INTEGER PRIMARY KEY, note TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO acks SELECT i, hex(randomblob(300)) FROM n;",
        )
        .unwrap();
    }
    env.run(&["track", "app", "app.db"]).assert_success();
    let base = env.snapshot(&["app"]);

    let stop = env.join("stop-writers");
    let commits = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = [
        (Connecting::PerCommit, 1_000_000),
        (Connecting::LongLived, 2_000_000),
    ]
    .into_iter()
    .map(|(connecting, first)| acknowledging_writer(&db, connecting, first, &stop, commits.clone()))
    .collect();
    while commits.load(Ordering::Relaxed) < 20 {
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut safeties = Vec::new();
    let mut during = Vec::new();
    for _ in 0..6 {
        let before = commits.load(Ordering::Relaxed);
        // --force: the writer processes have the database open, which is
        // the point.
        let json = env
            .run(&["--format", "json", "restore", "--force", &base])
            .ok_json();
        safeties.push(json["safety_snapshot"].as_str().unwrap().to_owned());
        std::thread::sleep(Duration::from_millis(100));
        during.push(commits.load(Ordering::Relaxed) - before);
    }
    std::fs::write(&stop, b"").unwrap();
    let acked: Vec<i64> = writers
        .into_iter()
        .flat_map(|(mut child, reader)| {
            assert!(child.wait().unwrap().success(), "a writer process failed");
            reader.join().expect("writer output reader panicked")
        })
        .collect();
    assert!(
        during.iter().all(|n| *n > 0),
        "the writers should commit around every restore: {during:?}"
    );

    let mut found = acked_ids(&db);
    assert_eq!(integrity_check(&db), "ok");
    for (i, safety) in safeties.iter().enumerate() {
        let out = env.join(format!("safety-{i}.db"));
        env.run(&["checkout", safety, "-o", out.to_str().unwrap()])
            .assert_success();
        found.extend(acked_ids(&out));
    }
    let lost: Vec<i64> = acked
        .iter()
        .filter(|id| !found.contains(id))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged commits are in neither the database nor a safety snapshot: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(20)]
    );
}

#[test]
fn restores_of_a_rollback_journal_database_under_writers_lose_no_acknowledged_commit() {
    restores_under_writers_lose_no_acknowledged_commit(Journal::Delete);
}

#[test]
fn restores_of_a_wal_database_under_writers_lose_no_acknowledged_commit() {
    restores_under_writers_lose_no_acknowledged_commit(Journal::Wal);
}
