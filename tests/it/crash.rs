//! SIGKILL at random moments of `snapshot`, `restore` and `gc`: the store
//! must stay consistent and the database must be the old or the new one.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;

use crate::common::{Journal, TestEnv, create_db, dump_digest, exit, integrity_check, seed};

const ROWS: usize = 4000;
const PAYLOAD: usize = 1000;
const JUNK_ROWS: usize = 400;

/// Rewrites `n` random rows (of the first `rows`) with fresh random payloads.
fn mutate(path: &Path, rows: usize, rng: &mut StdRng, n: usize) {
    let mut conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let tx = conn.transaction().unwrap();
    for _ in 0..n {
        let id = rng.random_range(1..=rows as i64);
        let mut payload = vec![0u8; PAYLOAD];
        rng.fill(&mut payload[..]);
        tx.execute(
            "UPDATE items SET payload = ?1 WHERE id = ?2",
            rusqlite::params![payload, id],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

fn head(env: &TestEnv, name: &str) -> Option<String> {
    env.refs()
        .into_iter()
        .find(|(n, _)| n == &format!("heads/{name}"))
        .map(|(_, id)| id)
}

/// Makes unreachable objects for gc: a fresh snapshot of `junk` whose ref and
/// reflog are then dropped.
fn make_garbage(env: &TestEnv, rng: &mut StdRng) {
    mutate(&env.join("junk.db"), JUNK_ROWS, rng, 60);
    env.snapshot(&["junk"]);
    let conn = env.store_conn();
    conn.execute_batch(
        "DELETE FROM refs WHERE name = 'heads/junk';
         DELETE FROM reflog WHERE name = 'heads/junk';",
    )
    .unwrap();
}

/// After a kill: the store passes a full fsck, and every ref names a snapshot
/// that `show` can read.
#[track_caller]
fn check_store(env: &TestEnv, context: &str) {
    let out = env.run(&["fsck", "--read-data"]);
    assert_eq!(
        out.status,
        exit::OK,
        "{context}: fsck after SIGKILL:\n{}{}",
        out.stdout,
        out.stderr
    );
    for (name, id) in env.refs() {
        let out = env.run(&["--format", "json", "show", &id]);
        assert_eq!(
            out.status,
            exit::OK,
            "{context}: ref {name} -> {id}: {}",
            out.stderr
        );
        assert_eq!(out.json()["id"], id.as_str());
    }
}

fn timed(env: &TestEnv, args: &[&str]) -> Duration {
    let start = Instant::now();
    env.run(args).ok();
    start.elapsed()
}

/// Starts `args`, kills it with SIGKILL after `delay`, and says whether the
/// kill interrupted it.
fn run_and_kill(env: &TestEnv, args: &[&str], delay: Duration) -> bool {
    let mut child = env.spawn(args);
    std::thread::sleep(delay);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    match status.signal() {
        Some(libc::SIGKILL) => true,
        _ => {
            assert_eq!(
                status.code(),
                Some(0),
                "{args:?} failed before it was killed"
            );
            false
        }
    }
}

/// A delay from 0 to 1.5 times the uninterrupted run time: most kills land
/// somewhere inside the command, some after it finished.
fn random_delay(rng: &mut StdRng, run_time: Duration) -> Duration {
    let max = run_time.as_micros() as u64 * 3 / 2;
    Duration::from_micros(rng.random_range(0..=max.max(1)))
}

#[test]
fn sigkill_during_snapshot_restore_and_gc_leaves_a_consistent_store() {
    let seed = seed("sigkill loop");
    let mut rng = StdRng::seed_from_u64(seed);
    let env = TestEnv::with_store();
    let big = env.join("big.db");
    create_db(&big, Journal::Delete, ROWS, PAYLOAD);
    create_db(&env.join("junk.db"), Journal::Delete, JUNK_ROWS, PAYLOAD);
    assert!(std::fs::metadata(&big).unwrap().len() > 4 << 20);
    env.run(&["track", "big", "big.db"]).ok();
    env.run(&["track", "junk", "junk.db"]).ok();

    // Known snapshots of big and the digest of their content.
    let mut known: HashMap<String, String> = HashMap::new();
    let s0 = env.snapshot(&["big"]);
    known.insert(s0.clone(), dump_digest(&big));

    // How long each command takes when left alone.
    mutate(&big, ROWS, &mut rng, 100);
    let t_snapshot = timed(&env, &["snapshot", "big"]);
    known.insert(head(&env, "big").unwrap(), dump_digest(&big));
    mutate(&big, ROWS, &mut rng, 100);
    let before_restore = dump_digest(&big);
    let t_restore = timed(&env, &["restore", &s0]);
    known.insert(head(&env, "big").unwrap(), before_restore);
    assert_eq!(dump_digest(&big), known[&s0]);
    make_garbage(&env, &mut rng);
    let t_gc = timed(&env, &["gc", "--grace", "0s"]);
    eprintln!("uninterrupted: snapshot {t_snapshot:?}, restore {t_restore:?}, gc {t_gc:?}");

    const ITERATIONS: usize = 54;
    let mut interrupted = [0usize; 3];
    let mut leftover_temps = 0;
    for i in 0..ITERATIONS {
        let op = i % 3;
        match op {
            0 => {
                mutate(&big, ROWS, &mut rng, 40);
                let content = dump_digest(&big);
                let head_before = head(&env, "big");
                let message = format!("crash {i}");
                let delay = random_delay(&mut rng, t_snapshot);
                interrupted[0] += usize::from(run_and_kill(
                    &env,
                    &["snapshot", "big", "-m", &message],
                    delay,
                ));
                let context = format!("iteration {i} (snapshot killed after {delay:?})");
                check_store(&env, &context);
                assert_eq!(integrity_check(&big), "ok", "{context}");
                assert_eq!(
                    dump_digest(&big),
                    content,
                    "{context}: snapshot changed the database"
                );
                let head_after = head(&env, "big");
                if head_after != head_before {
                    known.insert(head_after.unwrap(), content);
                }
            }
            1 => {
                let mut ids: Vec<&String> = known.keys().collect();
                ids.sort();
                let target = ids[rng.random_range(0..ids.len())].clone();
                let old = dump_digest(&big);
                let head_before = head(&env, "big");
                let delay = random_delay(&mut rng, t_restore);
                interrupted[1] += usize::from(run_and_kill(&env, &["restore", &target], delay));
                let context = format!(
                    "iteration {i} (restore {:.12} killed after {delay:?})",
                    target
                );
                check_store(&env, &context);
                assert_eq!(integrity_check(&big), "ok", "{context}");
                let now = dump_digest(&big);
                assert!(
                    now == old || now == known[&target],
                    "{context}: the database is neither the old nor the restored content"
                );
                for sidecar in ["big.db-journal", "big.db-wal"] {
                    assert!(
                        !env.join(sidecar).exists(),
                        "{context}: {sidecar} left behind"
                    );
                }
                let head_after = head(&env, "big");
                if head_after != head_before {
                    // The safety snapshot holds the state before the restore.
                    known.insert(head_after.unwrap(), old);
                }
                leftover_temps = env.restore_temps(env.path()).len();
            }
            _ => {
                make_garbage(&env, &mut rng);
                let delay = random_delay(&mut rng, t_gc);
                interrupted[2] += usize::from(run_and_kill(&env, &["gc", "--grace", "0s"], delay));
                check_store(&env, &format!("iteration {i} (gc killed after {delay:?})"));
            }
        }
    }
    eprintln!(
        "interrupted: {} of {} snapshots, {} of {} restores, {} of {} gcs; {leftover_temps} restore temp files left",
        interrupted[0],
        ITERATIONS / 3,
        interrupted[1],
        ITERATIONS / 3,
        interrupted[2],
        ITERATIONS / 3
    );
    assert!(
        interrupted.iter().sum::<usize>() >= ITERATIONS / 3,
        "too few commands were actually interrupted: {interrupted:?}"
    );

    // Every snapshot seen along the way is still there and restorable.
    for (id, content) in &known {
        env.run(&["checkout", id, "-o", "verify.db", "--force"])
            .ok();
        assert_eq!(
            &dump_digest(&env.join("verify.db")),
            content,
            "snapshot {id}"
        );
    }
    // A successful restore cleans up after the killed ones.
    env.run(&["restore", &s0]).ok();
    assert_eq!(dump_digest(&big), known[&s0]);
    assert_eq!(
        env.restore_temps(env.path()),
        Vec::<String>::new(),
        "temporary files of killed restores remain after a successful restore"
    );
}

#[test]
fn a_killed_restore_leaves_no_temp_file_after_the_next_restore() {
    let env = TestEnv::with_store();
    let big = env.join("big.db");
    create_db(&big, Journal::Delete, ROWS, PAYLOAD);
    let s0 = env.snapshot(&["big.db"]);
    let content0 = dump_digest(&big);
    let mut rng = StdRng::seed_from_u64(7);
    mutate(&big, ROWS, &mut rng, 200);
    let content1 = dump_digest(&big);

    // Kill the restore as soon as its temporary file appears.
    let mut child = env.spawn(&["restore", &s0]);
    let start = Instant::now();
    let mut seen = false;
    while start.elapsed() < Duration::from_secs(10) {
        if !env.restore_temps(env.path()).is_empty() {
            seen = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(seen, "restore never created its temporary file");
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "restore finished before the kill"
    );
    assert_eq!(env.restore_temps(env.path()).len(), 1);
    // The database is untouched and the store consistent.
    assert_eq!(dump_digest(&big), content1);
    check_store(&env, "after the killed restore");

    env.run(&["restore", &s0]).ok();
    assert_eq!(dump_digest(&big), content0);
    assert_eq!(
        env.restore_temps(env.path()),
        Vec::<String>::new(),
        "the killed restore's temporary file is still there after a successful restore"
    );
}
