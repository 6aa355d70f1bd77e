//! SIGKILL at random moments of every write path (`snapshot`, `restore`,
//! `gc`, `gc` packing loose packs, `forget`, `repair --apply`,
//! `stamp --verify`, `fix --apply`, `init`, `checkout --force`, and
//! `restore` as a delta over a WAL database whose page count changes): the
//! store must pass
//! `fsck --read-data`, every ref must name a complete snapshot, the database
//! must be entirely the old one or entirely the new one and pass
//! `integrity_check`, and no temporary file may outlive the next command.
//!
//! The number of kills comes from `MIGSNAP_CRASH_KILLS` (the whole suite's
//! total, split evenly over the eleven paths; default [`DEFAULT_KILLS`], the
//! fast subset `cargo test` runs). The full run is
//! `MIGSNAP_CRASH_KILLS=200 cargo test --test it crash`; figures are in
//! `docs/reliability.md`.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;

use crate::common::{
    Journal, TestEnv, create_db, dump_digest, exec, exit, hex, integrity_check, pseudo_random, seed,
};

/// Kills in the whole crash suite when `MIGSNAP_CRASH_KILLS` is unset.
const DEFAULT_KILLS: usize = 60;
/// The write paths the kills are spread over.
const PATHS: usize = 11;

const ROWS: usize = 4000;
const PAYLOAD: usize = 1000;
const JUNK_ROWS: usize = 400;

/// Rewrites `n` random rows (of the first `rows`) with fresh random payloads.
pub(crate) fn mutate(path: &Path, rows: usize, rng: &mut StdRng, n: usize) {
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

/// After a kill: the store passes a full fsck, every ref names a snapshot
/// that `show` can read, and once that fsck (a reader) has run the store
/// directory holds no hot journal and no temporary file. A journal whose
/// header was never completed may stay: SQLite ignores it, and the next
/// write transaction removes it (see [`assert_no_leftovers`]).
#[track_caller]
pub(crate) fn check_store(env: &TestEnv, context: &str) {
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
    let leftovers: Vec<String> = store_leftovers(env)
        .into_iter()
        .filter(|name| name != "store.db-journal" || is_hot(&env.store_dir().join(name)))
        .collect();
    assert!(
        leftovers.is_empty(),
        "{context}: left in .migsnap/ after the next command: {leftovers:?}"
    );
}

/// A database is written in place by one SQLite transaction, so a kill
/// inside its commit leaves the rollback journal. The next connection rolls
/// a hot one back (the caller has opened the database since) and ignores
/// one without its header, which the next writer removes: after that open
/// the journal must not be hot. It is removed as that writer would.
fn clear_cold_journal(db: &Path, context: &str) {
    let mut journal = db.as_os_str().to_owned();
    journal.push("-journal");
    let journal = std::path::PathBuf::from(journal);
    if journal.exists() {
        assert!(!is_hot(&journal), "{context}: a hot journal was left");
        std::fs::remove_file(&journal).unwrap();
    }
}

/// Whether a rollback journal is hot: SQLite writes the header magic only
/// once the journal is complete and synced, before it changes the database
/// file (<https://www.sqlite.org/fileformat.html#the_rollback_journal>); a
/// journal without it describes no change and is ignored by readers.
pub(crate) fn is_hot(journal: &Path) -> bool {
    let bytes = std::fs::read(journal).unwrap_or_default();
    bytes.len() >= 8 && bytes[..8] != [0u8; 8]
}

/// After a command that ran to completion and wrote to the store (the
/// "next command" after a kill): nothing at all is left in `.migsnap/`.
#[track_caller]
fn assert_no_leftovers(env: &TestEnv, context: &str) {
    assert_eq!(
        store_leftovers(env),
        Vec::<String>::new(),
        "{context}: left in .migsnap/ after a command that finished"
    );
}

/// After a restore, repair or stamp that ran to completion: besides
/// [`assert_no_leftovers`], no temporary rebuild file is left beside the
/// databases, its own or one of a killed run (those commands remove the
/// files of dead processes before they start their own).
#[track_caller]
fn assert_no_rebuild_temps(env: &TestEnv, context: &str) {
    assert_no_leftovers(env, context);
    assert_eq!(
        env.restore_temps(env.path()),
        Vec::<String>::new(),
        "{context}: restore temporary files left after a command that finished"
    );
}

/// Files in `.migsnap/` that only an unfinished write leaves: SQLite
/// journals and temporary files.
pub(crate) fn store_leftovers(env: &TestEnv) -> Vec<String> {
    std::fs::read_dir(env.store_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.ends_with("-journal")
                || n.ends_with("-wal")
                || n.ends_with("-shm")
                || n.starts_with('.')
                || n.contains("tmp")
        })
        .collect()
}

/// Kills per write path: `MIGSNAP_CRASH_KILLS` (a suite total) over
/// [`PATHS`], rounded up.
fn kills_per_path() -> usize {
    let total = std::env::var("MIGSNAP_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    total.div_ceil(PATHS).max(1)
}

/// Snapshots whose data `forget` gave up.
fn forgotten(env: &TestEnv) -> Vec<String> {
    let conn = env.store_conn();
    let mut stmt = conn.prepare("SELECT snapshot FROM forgotten").unwrap();
    stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|r| hex(&r.unwrap()))
        .collect()
}

fn timed(env: &TestEnv, args: &[&str]) -> Duration {
    let start = Instant::now();
    env.run(args).assert_success();
    start.elapsed()
}

/// How a run meant to be killed ended.
enum Ended {
    /// The kill interrupted it.
    Killed,
    /// It succeeded first, after this long.
    Finished(Duration),
}

/// Starts `args` and kills it with SIGKILL after `delay`, unless it ends
/// first: then it must have succeeded, and how long it took is returned, so
/// a caller can draw later delays from the runs it actually sees.
fn run_until_killed(env: &TestEnv, args: &[&str], delay: Duration) -> Ended {
    let start = Instant::now();
    let mut child = env.spawn(args);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() >= delay {
            child.kill().unwrap();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let elapsed = start.elapsed();
    if status.signal() == Some(libc::SIGKILL) {
        return Ended::Killed;
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    assert_eq!(
        status.code(),
        Some(0),
        "{args:?} failed before it was killed: {stderr}"
    );
    Ended::Finished(elapsed)
}

/// Runs `args` and kills it after a delay drawn from `run_time`, unless it
/// ends first; a run that ends first narrows `run_time` to how long it
/// took, since the timing runs may have met a busier machine than the
/// later ones (kill delays drawn from them would mostly land after the
/// end). Returns whether the kill interrupted it, and the delay.
fn kill_within(
    env: &TestEnv,
    rng: &mut StdRng,
    args: &[&str],
    run_time: &mut Duration,
) -> (bool, Duration) {
    let delay = random_delay(rng, *run_time);
    match run_until_killed(env, args, delay) {
        Ended::Killed => (true, delay),
        Ended::Finished(elapsed) => {
            *run_time = (*run_time).min(elapsed);
            (false, delay)
        }
    }
}

fn random_delay(rng: &mut StdRng, run_time: Duration) -> Duration {
    let max = run_time.as_micros() as u64 * 3 / 2;
    Duration::from_micros(rng.random_range(0..=max.max(1)))
}

#[test]
fn sigkill_during_snapshot_restore_gc_and_forget_leaves_a_consistent_store() {
    let seed = seed("sigkill loop");
    let mut rng = StdRng::seed_from_u64(seed);
    let env = TestEnv::with_store();
    let big = env.join("big.db");
    create_db(&big, Journal::Delete, ROWS, PAYLOAD);
    create_db(&env.join("junk.db"), Journal::Delete, JUNK_ROWS, PAYLOAD);
    assert!(std::fs::metadata(&big).unwrap().len() > 4 << 20);
    env.run(&["track", "big", "big.db"]).assert_success();
    env.run(&["track", "junk", "junk.db"]).assert_success();

    // Known snapshots of big and the digest of their content.
    let mut known: HashMap<String, String> = HashMap::new();
    let s0 = env.snapshot(&["big", "--tag", "base"]);
    known.insert(s0.clone(), dump_digest(&big));

    // How long each command takes when left alone.
    mutate(&big, ROWS, &mut rng, 100);
    let mut t_snapshot = timed(&env, &["snapshot", "big"]);
    known.insert(head(&env, "big").unwrap(), dump_digest(&big));
    mutate(&big, ROWS, &mut rng, 100);
    let before_restore = dump_digest(&big);
    let start = Instant::now();
    let restored = env.run(&["--format", "json", "restore", &s0]).ok_json();
    let mut t_restore = start.elapsed();
    // Every restore below is over a live version of big.db: the kills land
    // in a delta rebuild (issue 14) or the in-place write after it.
    assert!(
        restored["rebuild"]["delta"].is_object(),
        "the restore path is not a delta: {restored}"
    );
    known.insert(head(&env, "big").unwrap(), before_restore);
    assert_eq!(dump_digest(&big), known[&s0]);
    make_garbage(&env, &mut rng);
    let mut t_gc = timed(&env, &["gc", "--grace", "0s"]);
    let forget = ["forget", "big", "--keep-last", "4"];
    mutate(&big, ROWS, &mut rng, 20);
    known.insert(env.snapshot(&["big"]), dump_digest(&big));
    let mut t_forget = timed(&env, &forget);
    // gc with the default grace deletes nothing here: it only packs.
    mutate(&big, ROWS, &mut rng, 40);
    known.insert(env.snapshot(&["big"]), dump_digest(&big));
    let mut t_pack = timed(&env, &["gc"]);
    eprintln!(
        "uninterrupted: snapshot {t_snapshot:?}, restore {t_restore:?}, gc {t_gc:?}, forget {t_forget:?}, pack {t_pack:?}"
    );

    const OPS: [&str; 5] = ["snapshot", "restore", "gc", "forget", "pack"];
    let iterations = OPS.len() * kills_per_path();
    let mut interrupted = [0usize; OPS.len()];
    let start = Instant::now();
    for i in 0..iterations {
        let op = i % OPS.len();
        match op {
            0 => {
                mutate(&big, ROWS, &mut rng, 40);
                let content = dump_digest(&big);
                let head_before = head(&env, "big");
                let message = format!("crash {i}");
                let (killed, delay) = kill_within(
                    &env,
                    &mut rng,
                    &["snapshot", "big", "-m", &message],
                    &mut t_snapshot,
                );
                interrupted[0] += usize::from(killed);
                let context = format!("iteration {i} (snapshot killed after {delay:?})");
                if !killed {
                    assert_no_leftovers(&env, &context);
                }
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
                let (killed, delay) =
                    kill_within(&env, &mut rng, &["restore", &target], &mut t_restore);
                interrupted[1] += usize::from(killed);
                let context = format!(
                    "iteration {i} (restore {:.12} killed after {delay:?})",
                    target
                );
                if !killed {
                    assert_no_rebuild_temps(&env, &context);
                }
                check_store(&env, &context);
                assert_eq!(integrity_check(&big), "ok", "{context}");
                let now = dump_digest(&big);
                assert!(
                    now == old || now == known[&target],
                    "{context}: the database is neither the old nor the restored content"
                );
                assert!(
                    !env.join("big.db-wal").exists(),
                    "{context}: big.db-wal left behind"
                );
                // integrity_check above opened the database, which rolls a
                // hot journal back before the content was compared.
                clear_cold_journal(&big, &context);
                let head_after = head(&env, "big");
                if head_after != head_before {
                    // The safety snapshot holds the state before the restore.
                    known.insert(head_after.unwrap(), old);
                }
            }
            2 => {
                make_garbage(&env, &mut rng);
                let (killed, delay) =
                    kill_within(&env, &mut rng, &["gc", "--grace", "0s"], &mut t_gc);
                interrupted[2] += usize::from(killed);
                let context = format!("iteration {i} (gc killed after {delay:?})");
                if !killed {
                    assert_no_leftovers(&env, &context);
                }
                check_store(&env, &context);
            }
            4 => {
                // A snapshot leaves loose packs for gc to pack.
                mutate(&big, ROWS, &mut rng, 40);
                known.insert(env.snapshot(&["big"]), dump_digest(&big));
                let (killed, delay) = kill_within(&env, &mut rng, &["gc"], &mut t_pack);
                interrupted[4] += usize::from(killed);
                check_store(
                    &env,
                    &format!("iteration {i} (packing killed after {delay:?})"),
                );
            }
            _ => {
                // One more snapshot, so that every forget has one to give up.
                mutate(&big, ROWS, &mut rng, 20);
                let content = dump_digest(&big);
                known.insert(env.snapshot(&["big"]), content);
                let (killed, delay) = kill_within(&env, &mut rng, &forget, &mut t_forget);
                interrupted[3] += usize::from(killed);
                let context = format!("iteration {i} (forget killed after {delay:?})");
                // No leftover check of its own: a forget with nothing to
                // forget writes nothing, so it leaves a never-completed
                // journal of a killed command for the next writer;
                // check_store still rules out a hot one.
                check_store(&env, &context);
                // Forgotten data is no longer promised: gc may free it.
                for id in forgotten(&env) {
                    known.remove(&id);
                }
                assert!(known.contains_key(&s0), "forget gave up the tagged base");
            }
        }
    }
    let report: Vec<String> = OPS
        .iter()
        .zip(interrupted)
        .map(|(op, n)| format!("{op} {n}/{}", iterations / OPS.len()))
        .collect();
    eprintln!(
        "kills: {iterations} in {:?}; interrupted mid-run: {}",
        start.elapsed(),
        report.join(", ")
    );
    assert!(
        interrupted.iter().sum::<usize>() >= iterations / 3,
        "too few commands were actually interrupted: {interrupted:?}"
    );

    // Every snapshot seen along the way is still there and restorable.
    for (id, content) in &known {
        env.run(&["checkout", id, "-o", "verify.db", "--force"])
            .assert_success();
        assert_eq!(
            &dump_digest(&env.join("verify.db")),
            content,
            "snapshot {id}"
        );
    }
    // A successful restore cleans up after the killed ones.
    env.run(&["restore", &s0]).assert_success();
    assert_eq!(dump_digest(&big), known[&s0]);
    assert_eq!(
        env.restore_temps(env.path()),
        Vec::<String>::new(),
        "temporary files of killed restores remain after a successful restore"
    );
}

/// Schema (every `sqlite_schema` row and `user_version`) and rows of a
/// database, hashed: what "entirely the old or entirely the new database"
/// compares.
pub(crate) fn schema_and_rows(path: &Path) -> String {
    let conn = Connection::open(path).unwrap();
    let mut hasher = blake3::Hasher::new();
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, ifnull(sql, '') FROM sqlite_schema ORDER BY name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok(format!(
                "{}|{}|{}|{}\n",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?
            ))
        })
        .unwrap();
    for row in rows {
        hasher.update(row.unwrap().as_bytes());
    }
    let user_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    hasher.update(&user_version.to_le_bytes());
    hasher.update(dump_digest(path).as_bytes());
    hasher.finalize().to_hex().to_string()
}

/// A SQL-folder migration project (`migsnap.toml`, `sql/0001`, `sql/0002`)
/// with two tracked databases of about 4 MiB: `rep.db` at 0001 with the
/// column `users.email` lost (for `repair --apply`) and `app.db` with the
/// schema of 0002 but no version rows (for `stamp --verify 0002`). Returns
/// the pristine bytes of each.
pub(crate) fn migration_project(env: &TestEnv) -> (Vec<u8>, Vec<u8>) {
    const USERS_0001: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, payload BLOB, email TEXT);";
    const POSTS_0002: &str = "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), body TEXT);";
    std::fs::create_dir(env.join("sql")).unwrap();
    std::fs::write(env.join("sql/0001_users.sql"), USERS_0001).unwrap();
    std::fs::write(env.join("sql/0002_posts.sql"), POSTS_0002).unwrap();
    std::fs::write(
        env.join("migsnap.toml"),
        "[migrations]\nkind = \"sql\"\ndir = \"sql\"\n",
    )
    .unwrap();
    let fill = |path: &Path, schema: &str, user_version: u32| {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(&format!("{schema} PRAGMA user_version = {user_version};"))
            .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..ROWS as u64 {
            tx.execute(
                "INSERT INTO users (id, name, payload) VALUES (?1, ?2, ?3)",
                rusqlite::params![
                    i as i64 + 1,
                    format!("user-{i}"),
                    pseudo_random("users", i, PAYLOAD)
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    };
    fill(
        &env.join("rep.db"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, payload BLOB);",
        1,
    );
    // No position recorded (`user_version` 0): `stamp` has something
    // to write.
    fill(
        &env.join("app.db"),
        &format!("{USERS_0001} {POSTS_0002}"),
        0,
    );
    env.run(&["track", "rep", "rep.db"]).assert_success();
    env.run(&["track", "app", "app.db"]).assert_success();
    (
        std::fs::read(env.join("rep.db")).unwrap(),
        std::fs::read(env.join("app.db")).unwrap(),
    )
}

/// Puts `bytes` back as `path` by rename, as a user's own restore would.
pub(crate) fn put_back(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("pristine");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

#[test]
fn sigkill_during_repair_and_stamp_leaves_the_old_or_the_new_database() {
    let seed = seed("sigkill repair/stamp");
    let mut rng = StdRng::seed_from_u64(seed);
    let env = TestEnv::with_store();
    let (rep_bytes, app_bytes) = migration_project(&env);
    let repair = ["repair", "rep", "--apply"];
    let stamp = ["stamp", "--verify", "0002", "--db", "app"];
    let (rep, app) = (env.join("rep.db"), env.join("app.db"));

    // The first runs build the reference chain; the fastest of the next
    // three sets the range of the kill delays.
    let mut expected = Vec::new();
    for (args, db, bytes) in [
        (&repair[..], &rep, &rep_bytes),
        (&stamp[..], &app, &app_bytes),
    ] {
        let old = schema_and_rows(db);
        env.run(args).assert_success();
        let new = schema_and_rows(db);
        assert_ne!(old, new, "{args:?} changed nothing");
        let mut time = Duration::MAX;
        for _ in 0..3 {
            put_back(db, bytes);
            time = time.min(timed(&env, args));
            assert_eq!(schema_and_rows(db), new, "{args:?} is not deterministic");
        }
        put_back(db, bytes);
        expected.push((old, new, time));
    }
    eprintln!(
        "uninterrupted: repair --apply {:?}, stamp --verify {:?}",
        expected[0].2, expected[1].2
    );

    let iterations = 2 * kills_per_path();
    let mut interrupted = [0usize; 2];
    let mut ended_new = [0usize; 2];
    let start = Instant::now();
    for i in 0..iterations {
        let op = i % 2;
        let (args, db, bytes) = match op {
            0 => (&repair[..], &rep, &rep_bytes),
            _ => (&stamp[..], &app, &app_bytes),
        };
        put_back(db, bytes);
        let (killed, delay) = kill_within(&env, &mut rng, args, &mut expected[op].2);
        let (old, new, _) = &expected[op];
        interrupted[op] += usize::from(killed);
        let context = format!("iteration {i} ({} killed after {delay:?})", args[0]);
        if !killed {
            assert_no_rebuild_temps(&env, &context);
        }
        check_store(&env, &context);
        assert_eq!(integrity_check(db), "ok", "{context}");
        let now = schema_and_rows(db);
        assert!(
            &now == old || &now == new,
            "{context}: the database is neither the old one nor the new one"
        );
        ended_new[op] += usize::from(&now == new);
        // integrity_check above opened the database, which rolls a hot
        // journal back before the content was compared.
        clear_cold_journal(db, &context);
    }
    eprintln!(
        "kills: {iterations} in {:?}; interrupted mid-run: repair {}/{n}, stamp {}/{n}; \
         ended as the new database: repair {}, stamp {}",
        start.elapsed(),
        interrupted[0],
        interrupted[1],
        ended_new[0],
        ended_new[1],
        n = iterations / 2,
    );
    assert!(
        interrupted.iter().sum::<usize>() >= iterations / 3,
        "too few commands were actually interrupted: {interrupted:?}"
    );
    // The next runs work and clean up after the killed ones.
    for (args, db, bytes) in [
        (&repair[..], &rep, &rep_bytes),
        (&stamp[..], &app, &app_bytes),
    ] {
        put_back(db, bytes);
        env.run(args).assert_success();
    }
    assert_eq!(env.restore_temps(env.path()), Vec::<String>::new());
    check_store(&env, "after the last runs");
}

/// `fix --apply` is two steps here (stamp where the schema is, then
/// upgrade), run on one copy: a kill at any moment leaves the old
/// database or the fixed one, never one that is stamped but not upgraded.
#[test]
fn sigkill_during_fix_apply_leaves_the_old_or_the_fixed_database() {
    let seed = seed("sigkill fix");
    let mut rng = StdRng::seed_from_u64(seed);
    let env = TestEnv::with_store();
    migration_project(&env);
    // The schema of 0001, and no position recorded: `fix` stamps 0001 and
    // upgrades to 0002.
    let db = env.join("fix.db");
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, payload BLOB, email TEXT);",
        )
        .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..ROWS as u64 {
            tx.execute(
                "INSERT INTO users (id, name, payload) VALUES (?1, ?2, ?3)",
                rusqlite::params![
                    i as i64 + 1,
                    format!("user-{i}"),
                    pseudo_random("fix", i, PAYLOAD)
                ],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    env.run(&["track", "fix", "fix.db"]).assert_success();
    let bytes = std::fs::read(&db).unwrap();
    let args = ["fix", "fix", "--apply"];
    let old = schema_and_rows(&db);
    env.run(&args).assert_success();
    let new = schema_and_rows(&db);
    assert_ne!(old, new, "fix changed nothing");
    let mut time = Duration::MAX;
    for _ in 0..3 {
        put_back(&db, &bytes);
        time = time.min(timed(&env, &args));
        assert_eq!(schema_and_rows(&db), new, "fix is not deterministic");
    }

    let iterations = kills_per_path();
    let (mut interrupted, mut ended_new) = (0, 0);
    for i in 0..iterations {
        put_back(&db, &bytes);
        let (killed, delay) = kill_within(&env, &mut rng, &args, &mut time);
        interrupted += usize::from(killed);
        let context = format!("iteration {i} (fix killed after {delay:?})");
        if !killed {
            assert_no_rebuild_temps(&env, &context);
        }
        check_store(&env, &context);
        assert_eq!(integrity_check(&db), "ok", "{context}");
        let now = schema_and_rows(&db);
        assert!(
            now == old || now == new,
            "{context}: the database is neither the old one nor the fixed one"
        );
        ended_new += usize::from(now == new);
        clear_cold_journal(&db, &context);
    }
    eprintln!(
        "fix --apply: {iterations} kills, {interrupted} mid-run, {ended_new} ended fixed (uninterrupted {time:?})"
    );
    assert!(
        interrupted >= iterations / 3,
        "too few runs were actually interrupted: {interrupted}/{iterations}"
    );
    put_back(&db, &bytes);
    env.run(&args).assert_success();
    assert_eq!(schema_and_rows(&db), new);
    assert_eq!(env.restore_temps(env.path()), Vec::<String>::new());
    check_store(&env, "after the last fix");
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
    // Another page size: the restore rebuilds the file beside the database
    // (a restore in place writes no file).
    exec(&big, "PRAGMA page_size = 8192; VACUUM;");
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

    // The next restore cleans up, even one that writes in place.
    exec(&big, "PRAGMA page_size = 4096; VACUUM;");
    let json = env.run(&["--format", "json", "restore", &s0]).ok_json();
    assert!(json["method"]["in-place"].is_object(), "{json}");
    assert_eq!(dump_digest(&big), content0);
    assert_eq!(
        env.restore_temps(env.path()),
        Vec::<String>::new(),
        "the killed restore's temporary file is still there after a successful restore"
    );
}

/// Issue 10, item 15: SIGKILL during `init` left a 0-byte `store.db` in 16 of
/// 60 kills, after which init said "already exists" and every other command
/// "not a migsnap store". After a killed init there is no store or a whole
/// one, and the next init either creates it or says it exists, leaving no
/// temporary file.
#[test]
fn sigkill_during_init_leaves_no_store_or_a_whole_one() {
    let mut rng = StdRng::seed_from_u64(seed("sigkill init"));
    let mut t_init = timed(&TestEnv::new(), &["init"]);
    let (mut interrupted, mut whole) = (0, 0);
    for i in 0..kills_per_path() {
        let env = TestEnv::new();
        let context = format!("init kill {i}");
        let (killed, _) = kill_within(&env, &mut rng, &["init"], &mut t_init);
        interrupted += usize::from(killed);
        if env.store_db().exists() {
            whole += 1;
            env.run(&["fsck"]).assert_success();
            env.run(&["init"])
                .expect_error(exit::REFUSED, &["already exists"]);
        } else {
            env.run(&["init"]).assert_success();
        }
        check_store(&env, &context);
        let names: Vec<String> = std::fs::read_dir(env.store_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["store.db"], "{context}: left in .migsnap/");
    }
    eprintln!(
        "init: {interrupted} of {} kills interrupted it, {whole} left a whole store",
        kills_per_path()
    );
}

#[test]
fn sigkill_during_checkout_force_leaves_the_old_or_the_new_file() {
    let seed = seed("sigkill checkout --force");
    let mut rng = StdRng::seed_from_u64(seed);
    let env = TestEnv::with_store();
    let big = env.join("big.db");
    create_db(&big, Journal::Delete, ROWS, PAYLOAD);
    let s0 = env.snapshot(&["big.db"]);
    let d0 = dump_digest(&big);
    mutate(&big, ROWS, &mut rng, 300);
    let s1 = env.snapshot(&[]);
    let d1 = dump_digest(&big);
    let known = HashMap::from([(s0.clone(), d0), (s1.clone(), d1)]);

    // Over an existing database (written in place) and over a file that is
    // not one (renamed over).
    let out = env.join("out.db");
    env.run(&["checkout", &s0, "-o", "out.db"]).assert_success();
    let mut t_checkout = timed(&env, &["checkout", &s1, "-o", "out.db", "--force"]);
    let mut interrupted = 0;
    for i in 0..kills_per_path() {
        if i % 4 == 3 {
            std::fs::write(&out, b"not a database").unwrap();
        }
        let old = std::fs::read(&out).unwrap();
        let old_digest = (integrity_check(&out) == "ok").then(|| dump_digest(&out));
        let target = if i % 2 == 0 { &s0 } else { &s1 };
        let (killed, delay) = kill_within(
            &env,
            &mut rng,
            &["checkout", target, "-o", "out.db", "--force"],
            &mut t_checkout,
        );
        interrupted += usize::from(killed);
        let context =
            format!("iteration {i} (checkout --force {target:.12} killed after {delay:?})");
        check_store(&env, &context);
        match &old_digest {
            None if std::fs::read(&out).unwrap() == old => {}
            _ => {
                assert_eq!(integrity_check(&out), "ok", "{context}");
                let now = dump_digest(&out);
                assert!(
                    Some(&now) == old_digest.as_ref() || now == known[target],
                    "{context}: out.db is neither the old nor the checked-out content"
                );
            }
        }
    }
    eprintln!(
        "checkout --force: {interrupted} of {} runs killed (seed {seed})",
        kills_per_path()
    );
    env.run(&["checkout", &s0, "-o", "out.db", "--force"])
        .assert_success();
    assert_eq!(
        env.restore_temps(env.path()),
        Vec::<String>::new(),
        "temporary files of killed checkouts remain after a successful one"
    );
}

/// Changes the WAL database `db` through `change` and leaves the change in
/// its `-wal`, not checkpointed into the main file, whose pages on disk are
/// then not the database's content: a delta restore copies that main file
/// and must see through it. Returns the content ([`dump_digest`]) after the
/// change.
fn change_in_wal(db: &Path, change: impl FnOnce(&Path)) -> String {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    // While this connection is open, no other one that closes is the last,
    // so none checkpoints: the files are copied in that state.
    let holder = Connection::open(db).unwrap();
    holder
        .query_row("SELECT count(*) FROM items", [], |_| Ok(()))
        .unwrap();
    change(db);
    let content = dump_digest(db);
    std::fs::copy(db, with(".stage")).unwrap();
    std::fs::copy(with("-wal"), with(".stage-wal")).unwrap();
    drop(holder);
    std::fs::rename(with(".stage"), db).unwrap();
    std::fs::rename(with(".stage-wal"), with("-wal")).unwrap();
    assert!(std::fs::metadata(with("-wal")).unwrap().len() > 0);
    content
}

/// The delta restore (a copy of the live file, only the pages whose hash is
/// not the snapshot's read from the store) over a WAL database, killed at
/// random: before each kill the live database was changed in its main file,
/// or changed and left in its `-wal`, or grown and left in its `-wal`; the
/// targets are snapshots of fewer and of more pages than the live file.
/// Afterwards the store passes fsck and the database is the old or the
/// restored content.
#[test]
fn sigkill_during_a_delta_restore_leaves_the_old_or_the_new_database() {
    let seed = seed("sigkill delta restore");
    let mut rng = StdRng::seed_from_u64(seed);
    let env = TestEnv::with_store();
    let db = env.join("wal.db");
    create_db(&db, Journal::Wal, ROWS, PAYLOAD);
    env.run(&["track", "wal", "wal.db"]).assert_success();
    let grow = |path: &Path| {
        exec(
            path,
            "INSERT INTO items(name, payload) SELECT name || '+', payload FROM items WHERE id % 20 = 0;",
        )
    };
    let mut known: HashMap<String, String> = HashMap::new();
    let small = env.snapshot(&["wal"]);
    known.insert(small.clone(), dump_digest(&db));
    grow(&db);
    let grown = env.snapshot(&["wal"]);
    known.insert(grown.clone(), dump_digest(&db));

    // Two uninterrupted restores time the kills; the shorter counts, as
    // the first also pays for what a cold start costs, and kill delays
    // drawn from a longer run would mostly land after the end.
    let mut t_restore = Duration::MAX;
    for target in [&small, &grown] {
        let before = change_in_wal(&db, |path| mutate(path, ROWS, &mut rng, 40));
        let start = Instant::now();
        let json = env.run(&["--format", "json", "restore", target]).ok_json();
        t_restore = t_restore.min(start.elapsed());
        assert!(json["rebuild"]["delta"].is_object(), "not a delta: {json}");
        assert_eq!(dump_digest(&db), known[target]);
        known.insert(head(&env, "wal").unwrap(), before);
    }

    let iterations = kills_per_path();
    let mut interrupted = 0;
    for i in 0..iterations {
        let old = match i % 3 {
            0 => {
                mutate(&db, ROWS, &mut rng, 40);
                dump_digest(&db)
            }
            1 => change_in_wal(&db, |path| mutate(path, ROWS, &mut rng, 40)),
            _ => change_in_wal(&db, grow),
        };
        let mut ids: Vec<&String> = known.keys().collect();
        ids.sort();
        let target = ids[rng.random_range(0..ids.len())].clone();
        let head_before = head(&env, "wal");
        let (killed, delay) = kill_within(&env, &mut rng, &["restore", &target], &mut t_restore);
        interrupted += usize::from(killed);
        let context = format!(
            "iteration {i} (delta restore {:.12} killed after {delay:?})",
            target
        );
        if !killed {
            assert_no_rebuild_temps(&env, &context);
        }
        check_store(&env, &context);
        assert_eq!(integrity_check(&db), "ok", "{context}");
        let now = dump_digest(&db);
        assert!(
            now == old || now == known[&target],
            "{context}: the database is neither the old nor the restored content"
        );
        clear_cold_journal(&db, &context);
        let head_after = head(&env, "wal");
        if head_after != head_before {
            // The safety snapshot holds the state before the restore.
            known.insert(head_after.unwrap(), old);
        }
    }
    eprintln!(
        "delta restore: {interrupted} of {iterations} runs killed mid-run (uninterrupted {t_restore:?}, seed {seed})"
    );
    assert!(
        interrupted >= iterations / 3,
        "too few runs were actually interrupted: {interrupted}/{iterations}"
    );
    // Every snapshot seen along the way restores to its content, and a
    // finished restore cleans up after the killed ones.
    for (id, content) in &known {
        env.run(&["restore", id]).assert_success();
        assert_eq!(&dump_digest(&db), content, "snapshot {id}");
    }
    assert_eq!(
        env.restore_temps(env.path()),
        Vec::<String>::new(),
        "temporary files of killed delta restores remain after a successful restore"
    );
}
