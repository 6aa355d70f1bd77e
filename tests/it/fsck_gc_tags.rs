//! Tags, fsck on a healthy store, and gc.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use insta::assert_snapshot;

use crate::common::{Journal, TestEnv, exec, exit, file_hash, integrity_check};

#[test]
fn tag_list_and_delete() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 10);
    let s1 = env.snapshot(&["app.db"]);
    exec(&db, "DELETE FROM items WHERE id = 2;");
    let s2 = env.snapshot(&[]);

    let out = env.run(&["tag", "v2"]);
    assert_eq!(
        out.assert_success(),
        format!("Tagged {} as 'v2'\n", &s2[..12])
    );
    let out = env.run(&["tag", "v1", "HEAD~1"]);
    assert_eq!(
        out.assert_success(),
        format!("Tagged {} as 'v1'\n", &s1[..12])
    );
    let out = env.run(&["tags"]);
    assert_snapshot!(env.redact(out.assert_success()), @r"
    [SHORT]	v1
    [SHORT]	v2
    ");
    assert_eq!(
        out.stdout,
        format!("{}\tv1\n{}\tv2\n", &s1[..12], &s2[..12])
    );
    let json = env.run(&["--format", "json", "tags"]).ok_json();
    assert_eq!(
        json,
        serde_json::json!({"tags": [{"name": "v1", "target": s1}, {"name": "v2", "target": s2}]})
    );

    let before = env.store_state();
    env.run(&["tag", "v1"])
        .expect_error(exit::INPUT, &["tag 'v1' already exists", &s1[..12]]);
    env.run(&["tag", "bad name"])
        .expect_error(exit::INPUT, &["bad name"]);
    env.run(&["tag", "a/../b"])
        .expect_error(exit::INPUT, &["a/../b"]);
    assert_eq!(env.store_state(), before);

    let out = env.run(&["tag", "-d", "v1"]);
    assert_eq!(
        out.assert_success(),
        format!("Deleted tag 'v1' (was {})\n", &s1[..12])
    );
    assert_eq!(
        env.run(&["tags"]).assert_success(),
        format!("{}\tv2\n", &s2[..12])
    );
    env.run(&["tag", "-d", "v1"])
        .expect_error(exit::INPUT, &["tag 'v1' does not exist"]);
    env.run(&["show", "v1"]).expect_error(exit::INPUT, &["v1"]);
    // The deletion is in the reflog, and the name can be reused.
    let reflog: i64 = env
        .store_conn()
        .query_row(
            "SELECT count(*) FROM reflog WHERE name = 'tags/v1' AND new IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reflog, 1);
    env.run(&["tag", "v1", &s2]).assert_success();
    assert_eq!(env.resolve("v1"), s2);
}

#[test]
fn fsck_of_a_healthy_store() {
    let env = TestEnv::with_store();
    let out = env.run(&["fsck"]);
    assert_snapshot!(out.assert_success(), @"checked 0 snapshots and 0 objects: no problems");
    let db = env.make_db("app.db", Journal::Wal, 30);
    env.snapshot(&["app.db"]);
    exec(&db, "UPDATE items SET name = 'x' WHERE id = 1;");
    env.snapshot(&["--tag", "t"]);
    let out = env.run(&["fsck", "--read-data"]);
    let text = regex::Regex::new(r"and \d+ objects")
        .unwrap()
        .replace(out.assert_success(), "and [N] objects");
    assert_snapshot!(text, @"checked 2 snapshots and [N] objects (data read and re-hashed): no problems");
    let json = env
        .run(&["--format", "json", "fsck", "--read-data"])
        .ok_json();
    assert_eq!(json["clean"], true);
    assert_eq!(json["snapshots"], 2);
    let stored: i64 = env
        .store_conn()
        .query_row("SELECT count(*) FROM objects", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        json["objects"].as_i64().unwrap(),
        stored,
        "read-data visits every object"
    );
}

/// Two tracked databases, `x` tagged `t`; then heads/x and its reflog are
/// dropped (as if x had been untracked), so x's snapshot is reachable only
/// through the tag.
fn untracked_history() -> (TestEnv, String, String) {
    let env = TestEnv::with_store();
    env.make_db("x.db", Journal::Delete, 80);
    let y = env.make_db("y.db", Journal::Delete, 40);
    let sx = env.snapshot(&["x.db", "--tag", "t"]);
    let sy1 = env.snapshot(&["y.db"]);
    exec(&y, "DELETE FROM items WHERE id > 20;");
    env.snapshot(&["y"]);
    env.store_conn()
        .execute_batch(
            "DELETE FROM refs WHERE name = 'heads/x';
             DELETE FROM reflog WHERE name = 'heads/x';",
        )
        .unwrap();
    (env, sx, sy1)
}

fn objects(env: &TestEnv) -> i64 {
    env.store_conn()
        .query_row("SELECT count(*) FROM objects", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn gc_keeps_a_deleted_tags_snapshot_during_the_grace_period() {
    let (env, sx, sy1) = untracked_history();
    env.run(&["gc", "--grace", "0s"]).assert_success();
    env.run(&["show", &sx]).assert_success();
    env.run(&["tag", "-d", "t"]).assert_success();

    // Within the default grace period the reflog entry keeps it.
    let n = objects(&env);
    let json = env.run(&["--format", "json", "gc"]).ok_json();
    assert_eq!(json["deleted_objects"], 0, "{json}");
    assert_eq!(objects(&env), n);
    env.run(&["show", &sx]).assert_success();
    env.run(&["checkout", &sx, "-o", "still.db"])
        .assert_success();
    assert_eq!(integrity_check(&env.join("still.db")), "ok");

    // Fifteen days later (the reflog entry backdated), it is collected.
    env.store_conn()
        .execute_batch("UPDATE reflog SET time = time - 15 * 86400;")
        .unwrap();
    let dry = env.run(&["--format", "json", "gc", "--dry-run"]).ok_json();
    assert!(dry["deleted_objects"].as_u64().unwrap() > 0, "{dry}");
    assert_eq!(objects(&env), n, "--dry-run deleted objects");
    let json = env.run(&["--format", "json", "gc"]).ok_json();
    assert_eq!(json["deleted_objects"], dry["deleted_objects"], "{json}");
    assert!(json["freed_bytes"].as_u64().unwrap() > 0, "{json}");
    assert!(
        json["expired_reflog_entries"].as_u64().unwrap() > 0,
        "{json}"
    );
    assert_eq!(objects(&env), n - json["deleted_objects"].as_i64().unwrap());
    env.run(&["show", &sx])
        .expect_error(exit::INPUT, &["unknown revision"]);

    // Nothing anyone still needs went away.
    env.run(&["fsck", "--read-data"]).assert_success();
    env.run(&["checkout", &sy1, "-o", "y1.db"]).assert_success();
    assert_eq!(integrity_check(&env.join("y1.db")), "ok");
    env.run(&["checkout", "y", "-o", "y2.db"]).assert_success();
    assert!(file_hash(&env.join("y2.db")) == file_hash(&env.join("y.db")));
    let again = env
        .run(&["--format", "json", "gc", "--grace", "0s"])
        .ok_json();
    assert_eq!(again["deleted_objects"], 0);
}

#[test]
fn gc_collects_an_unreachable_history_and_keeps_the_rest() {
    let (env, sx, sy1) = untracked_history();
    // Drop the tag's ref and reflog too: nothing points at x's snapshot.
    env.store_conn()
        .execute_batch(
            "DELETE FROM refs WHERE name = 'tags/t';
             DELETE FROM reflog WHERE name = 'tags/t';",
        )
        .unwrap();
    let n = objects(&env);
    let out = env.run(&["gc", "--grace", "0s"]);
    let text = out.assert_success();
    let freed = regex::Regex::new(r"^deleted (\d+) objects \((.*?)\), kept (\d+); \d+ reflog entries expired; store file .* -> .*\n(packed \d+ objects from \d+ loose packs into \d+ \(.* -> .*\)(, with a new dictionary)?\n)?$")
        .unwrap()
        .captures(text)
        .unwrap_or_else(|| panic!("unexpected gc output: {text}"));
    let deleted: i64 = freed[1].parse().unwrap();
    assert!(deleted > 0);
    assert_ne!(&freed[2], "0 B");
    assert_eq!(freed[3].parse::<i64>().unwrap(), n - deleted);
    assert_eq!(objects(&env), n - deleted);
    env.run(&["show", &sx])
        .expect_error(exit::INPUT, &["unknown revision"]);
    env.run(&["fsck", "--read-data"]).assert_success();
    env.run(&["checkout", &sy1, "-o", "y1.db"]).assert_success();
    assert_eq!(integrity_check(&env.join("y1.db")), "ok");
}

#[test]
fn gc_with_zero_grace_collects_a_just_deleted_tag() {
    let (env, sx, _sy1) = untracked_history();
    // Run the deletion and the gc inside one wall-clock second, the common
    // case for `migsnap tag -d old && migsnap gc --grace 0s`.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    std::thread::sleep(
        Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()))
            + Duration::from_millis(5),
    );
    env.run(&["tag", "-d", "t"]).assert_success();
    let json = env
        .run(&["--format", "json", "gc", "--grace", "0s"])
        .ok_json();
    assert!(
        json["deleted_objects"].as_u64().unwrap() > 0 && json["freed_bytes"].as_u64().unwrap() > 0,
        "`gc --grace 0s` (\"0s = collect now\") kept the snapshot of a tag deleted in the same second: {json}"
    );
    env.run(&["show", &sx])
        .expect_error(exit::INPUT, &["unknown revision"]);
    env.run(&["fsck", "--read-data"]).assert_success();
}

/// Issue 10, item 17: one unreadable ref or reflog row made every command
/// exit 5, fsck and `tag -d` included. Now fsck lists such rows (exit 1),
/// other commands work, gc refuses (it cannot know what the row kept), and
/// `tag -d` and `refs --delete-broken` remove them.
#[test]
fn damaged_ref_rows_are_listed_by_fsck_and_can_be_deleted() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 10);
    let s1 = env.snapshot(&["app.db"]);
    env.run(&["tag", "good"]).assert_success();
    env.store_conn()
        .execute_batch(
            "INSERT INTO refs(name, id) VALUES ('tags/short', x'0102030405');
             INSERT INTO reflog(name, old, new, time, message)
                 VALUES ('tags/bad..name', NULL, zeroblob(32), 0, 'hand-made');",
        )
        .unwrap();

    let out = env.run(&["fsck"]);
    out.expect(exit::PROBLEMS);
    assert!(
        out.stdout
            .contains("damaged ref 'tags/short': its target id is 5 bytes, not 32\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("damaged reflog entry ") && out.stdout.contains("'tags/bad..name'"),
        "{}",
        out.stdout
    );
    let json = env.run(&["--format", "json", "fsck"]).json();
    assert_eq!(json["damaged_rows"].as_array().unwrap().len(), 2, "{json}");

    // Commands that do not need the damaged rows work.
    env.run(&["tags"]).assert_success();
    env.run(&["log"]).assert_success();
    exec(&db, "DELETE FROM items WHERE id = 3;");
    env.snapshot(&[]);
    env.run(&["checkout", &s1, "-o", "old.db"]).assert_success();
    assert_eq!(integrity_check(&env.join("old.db")), "ok");
    // gc cannot tell what the rows kept alive.
    env.run(&["gc", "--grace", "0s"])
        .expect_error(exit::CORRUPT, &["gc refused", "tags/short"]);

    let out = env.run(&["tag", "-d", "short"]);
    assert_eq!(out.assert_success(), "Deleted damaged tag 'short'\n");
    let out = env.run(&["refs"]);
    out.expect(exit::PROBLEMS);
    assert!(
        out.stdout.contains(&format!("{s1} tags/good\n")),
        "{}",
        out.stdout
    );
    let out = env.run(&["refs", "--delete-broken"]);
    assert!(
        out.assert_success().ends_with("1 damaged row(s) deleted\n"),
        "{}",
        out.stdout
    );
    env.run(&["fsck"]).assert_success();
    env.run(&["refs"]).assert_success();
    env.run(&["gc", "--grace", "0s"]).assert_success();
}
