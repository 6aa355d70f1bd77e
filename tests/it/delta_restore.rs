//! `restore` in place as a delta: the verified file is a copy of the live
//! database with only the pages that differ from the snapshot read from the
//! store. Whatever the live file holds, the result is the snapshot's.

use std::path::Path;

use rusqlite::Connection;

use crate::checkout_restore::same_but_commit_stamp;
use crate::common::{Journal, TestEnv, create_db, dump, exec, integrity_check};

/// Restores `rev` over app.db and returns the JSON report, after checking
/// that the file is the checkout of the same snapshot (but for what an
/// in-place commit stamps) and sound.
#[track_caller]
fn restore_matches_checkout(env: &TestEnv, rev: &str) -> serde_json::Value {
    let out = format!("expected-{}.db", &rev[..12]);
    env.run(&["checkout", rev, "-o", &out]).assert_success();
    let json = env.run(&["--format", "json", "restore", rev]).ok_json();
    let restored = std::fs::read(env.join("app.db")).unwrap();
    let expected = std::fs::read(env.join(&out)).unwrap();
    assert!(
        same_but_commit_stamp(&restored, &expected),
        "restore of {rev} differs from its checkout: {json}"
    );
    assert_eq!(integrity_check(&env.join("app.db")), "ok");
    assert_eq!(dump(&env.join("app.db")), dump(&env.join(&out)));
    json
}

fn counts(json: &serde_json::Value) -> (u64, u64) {
    let delta = &json["rebuild"]["delta"];
    assert!(delta.is_object(), "not a delta: {json}");
    (
        delta["pages_fetched"].as_u64().unwrap(),
        delta["pages_reused"].as_u64().unwrap(),
    )
}

fn page_count(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len() / 4096
}

#[test]
fn a_restore_over_an_older_version_reads_only_the_changed_pages() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 300);
    let s1 = env.snapshot(&["app.db"]);
    // One row rewritten in place: its leaf page and page 1 (the change
    // counter) differ, nothing else.
    exec(
        &db,
        "UPDATE items SET name = 'x' || substr(name, 2) WHERE id = 150;",
    );
    env.snapshot(&[]);
    let json = restore_matches_checkout(&env, &s1);
    let (fetched, reused) = counts(&json);
    assert_eq!(fetched, 2, "{json}");
    assert_eq!(fetched + reused, page_count(&db), "{json}");
}

#[test]
fn a_delta_restore_shrinks_and_grows_the_file() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 200);
    let small = env.snapshot(&["app.db"]);
    exec(
        &db,
        "INSERT INTO items(name, payload) SELECT name || '+', payload FROM items;",
    );
    let grown = env.snapshot(&[]);
    assert!(page_count(&db) > 2 * 10);

    let json = restore_matches_checkout(&env, &small);
    let (fetched, reused) = counts(&json);
    assert!(
        reused > 0 && fetched < reused,
        "shrinking reuses the common pages: {json}"
    );
    let json = restore_matches_checkout(&env, &grown);
    let (fetched, _) = counts(&json);
    assert!(fetched > 0, "the grown pages come from the store: {json}");
}

#[test]
fn a_delta_restore_sees_through_uncheckpointed_wal_frames() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Wal, 200);
    let s1 = env.snapshot(&["app.db"]);
    // Leave committed frames in app.db-wal that the main file does not have:
    // copy both files while a connection holds them uncheckpointed.
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             UPDATE items SET name = name || '!' WHERE id % 2 = 0;
             DELETE FROM items WHERE id % 7 = 0;",
        )
        .unwrap();
        std::fs::copy(&db, env.join("live.db")).unwrap();
        std::fs::copy(env.join("app.db-wal"), env.join("live.db-wal")).unwrap();
    }
    std::fs::rename(env.join("live.db"), &db).unwrap();
    std::fs::rename(env.join("live.db-wal"), env.join("app.db-wal")).unwrap();
    assert!(std::fs::metadata(env.join("app.db-wal")).unwrap().len() > 0);
    let live = dump(&db);
    let json = restore_matches_checkout(&env, &s1);
    counts(&json);
    // The safety snapshot has the WAL's content, not the stale main file's.
    let safety = json["safety_snapshot"].as_str().unwrap().to_owned();
    env.run(&["checkout", &safety, "-o", "before.db"])
        .assert_success();
    assert_eq!(dump(&env.join("before.db")), live);
}

#[test]
fn a_restore_over_another_page_size_is_a_full_rebuild() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 200);
    let s1 = env.snapshot(&["app.db"]);
    exec(&db, "PRAGMA page_size = 8192; VACUUM;");
    let json = restore_matches_checkout(&env, &s1);
    assert_eq!(json["rebuild"], "full", "{json}");
    assert_eq!(json["method"], "rename", "{json}");
}

#[test]
fn a_delta_restore_over_an_unrelated_database_is_still_the_snapshot() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 200);
    let s1 = env.snapshot(&["app.db"]);
    std::fs::remove_file(&db).unwrap();
    create_db(&db, Journal::Delete, 50, 900);
    exec(
        &db,
        "CREATE TABLE other(a, b); INSERT INTO other VALUES (1, 2);",
    );
    let json = restore_matches_checkout(&env, &s1);
    let (fetched, _) = counts(&json);
    assert!(fetched > 0, "{json}");
}

#[test]
fn the_safety_snapshot_of_an_unchanged_database_writes_nothing() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 200);
    let s1 = env.snapshot(&["app.db"]);
    exec(&db, "UPDATE items SET name = 'changed' WHERE id = 3;");
    let s2 = env.snapshot(&[]);
    let store = env.store_db();
    let rows = |table: &str| -> i64 {
        Connection::open(&store)
            .unwrap()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    let before = rows("objects");
    let json = env.run(&["--format", "json", "restore", &s1]).ok_json();
    assert_eq!(
        json["safety_snapshot"],
        s2.as_str(),
        "live == head: the head is the safety snapshot"
    );
    assert_eq!(rows("objects"), before, "nothing new stored");
    assert_eq!(env.log_ids(None).len(), 2);
}
