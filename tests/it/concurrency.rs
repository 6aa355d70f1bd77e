//! Snapshots taken while another connection keeps writing must each be one
//! consistent state of the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::Connection;

use crate::common::{Journal, TestEnv, integrity_check};

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
    env.run(&["track", "ledger", "ledger.db"]).ok();

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
        env.run(&["checkout", id, "-o", out.to_str().unwrap()]).ok();
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
