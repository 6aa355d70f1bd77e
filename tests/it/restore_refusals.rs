//! What `checkout` and `restore` refuse, and that a refusal changes nothing:
//! stale sidecars, targets that are not regular files, a stray WAL, a
//! safety snapshot that does not read back, a corrupt database.

use std::os::unix::fs::FileTypeExt;

use rusqlite::Connection;

use crate::common::{Journal, TestEnv, chmod, dump, dump_conn, exec, exit, page_ids};

/// Leaves committed WAL frames of a newer state of `db` in `db-wal` (as a
/// crashed writer would) and returns that state and the WAL's bytes.
fn newer_state_in_wal(db: &std::path::Path) -> (String, Vec<u8>) {
    let conn = Connection::open(db).unwrap();
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint = 0;
         UPDATE items SET name = 'newer' WHERE id <= 30;",
    )
    .unwrap();
    let newer = dump_conn(&conn);
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let bytes = std::fs::read(&wal).unwrap();
    // Closing would fold the WAL in; leak the connection's file instead by
    // copying the WAL out first.
    drop(conn);
    (newer, bytes)
}

#[test]
fn checkout_refuses_a_stale_wal_beside_an_absent_file_and_force_deletes_it() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Wal, 60);
    let s1 = env.snapshot(&["app.db"]);
    let state1 = dump(&db);
    let (_newer, wal) = newer_state_in_wal(&db);
    // "Delete the broken app.db, check out the good snapshot as app.db":
    // the -wal stays behind.
    std::fs::remove_file(&db).unwrap();
    let _ = std::fs::remove_file(env.join("app.db-shm"));
    std::fs::write(env.join("app.db-wal"), &wal).unwrap();

    let out = env.run(&["checkout", &s1, "-o", "app.db"]);
    out.expect_error(exit::REFUSED, &["app.db-wal"]);
    assert!(out.stderr.contains("hint: move them away, or pass --force"));
    assert!(!db.exists(), "a refused checkout created the file");
    assert_eq!(std::fs::read(env.join("app.db-wal")).unwrap(), wal);

    env.run(&["checkout", &s1, "-o", "app.db", "--force"])
        .assert_success();
    assert!(!env.join("app.db-wal").exists());
    assert_eq!(dump(&db), state1, "the stale WAL leaked into the checkout");
}

#[test]
fn nothing_but_a_regular_file_is_ever_replaced() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 20);
    let s1 = env.snapshot(&["app.db"]);
    let fifo = env.join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    for force in [true, false] {
        let mut args = vec!["checkout", &s1, "-o", "pipe"];
        if force {
            args.push("--force");
        }
        let out = env.run(&args);
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        out.expect_error(exit::INPUT, &["pipe", "not a regular file"]);
    }
    // A device, as root could replace it.
    let null = std::fs::metadata("/dev/null").unwrap();
    let out = env.run(&["checkout", &s1, "-o", "/dev/null", "--force"]);
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    out.expect_error(exit::INPUT, &["/dev/null", "not a regular file"]);
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata("/dev/null").unwrap()),
        std::os::unix::fs::MetadataExt::ino(&null)
    );
    // Restore over a FIFO where the database was.
    std::fs::remove_file(&db).unwrap();
    std::fs::rename(&fifo, &db).unwrap();
    env.run(&["restore", "--force", &s1])
        .expect_error(exit::INPUT, &["app.db", "not a regular file"]);
    assert!(std::fs::metadata(&db).unwrap().file_type().is_fifo());
}

#[test]
fn a_refused_restore_leaves_a_stray_wal_and_the_main_file_untouched() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Wal, 200);
    let s1 = env.snapshot(&["app.db"]);
    // The -wal of a copy that went its own way lands beside app.db (which
    // was compacted meanwhile): replayed, it makes app.db malformed.
    let other = env.join("other.db");
    std::fs::copy(&db, &other).unwrap();
    exec(&db, "DELETE FROM items WHERE id % 2 = 0; VACUUM;");
    {
        let conn = Connection::open(&other).unwrap();
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             DELETE FROM items WHERE id > 150;
             UPDATE items SET name = 'x' WHERE id < 20;",
        )
        .unwrap();
        std::fs::copy(env.join("other.db-wal"), env.join("app.db-wal")).unwrap();
    }
    let main = std::fs::read(&db).unwrap();
    let wal = std::fs::read(env.join("app.db-wal")).unwrap();
    let out = env.run(&["restore", &s1]);
    assert!(
        std::fs::read(&db).unwrap() == main,
        "a refused restore rewrote the main file"
    );
    assert!(
        std::fs::read(env.join("app.db-wal")).unwrap() == wal,
        "a refused restore changed the -wal"
    );
    // The damaged state is recorded (flagged) in the safety snapshot, but
    // what lies under the stray WAL is only in the files: refused.
    out.expect_error(
        exit::REFUSED,
        &["app.db fails its integrity check", "was not changed"],
    );
    assert!(out.stderr.contains("stray -wal"), "{}", out.stderr);
    assert!(out.stderr.contains("pass --force"), "{}", out.stderr);
    // Deleting the stray WAL still recovers the intact file.
    std::fs::remove_file(env.join("app.db-wal")).unwrap();
    let _ = std::fs::remove_file(env.join("app.db-shm"));
    assert_eq!(crate::common::integrity_check(&db), "ok");
}

#[test]
fn restore_refuses_when_the_safety_snapshot_does_not_read_back() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 300);
    let s1 = env.snapshot(&["app.db"]);
    exec(
        &db,
        "UPDATE items SET name = 'second ' || id; INSERT INTO items(name) VALUES ('new');",
    );
    env.snapshot(&[]);
    // The database equals HEAD, so its safety snapshot is HEAD, whose pages
    // are never read when it is reused. Rot one page only HEAD has.
    let first: std::collections::BTreeSet<String> = {
        let out = env.join("first.db");
        env.run(&["checkout", &s1, "-o", out.to_str().unwrap()])
            .assert_success();
        page_ids(&out).into_iter().collect()
    };
    let only_head = page_ids(&db)
        .into_iter()
        .find(|id| !first.contains(id))
        .expect("a page only the current state has");
    crate::corruption::flip_a_byte(&env, &only_head);
    let bytes = std::fs::read(&db).unwrap();

    env.run(&["restore", &s1]).expect_error(
        exit::CORRUPT,
        &[
            "safety snapshot",
            "does not read back",
            "nothing was written",
        ],
    );
    assert!(std::fs::read(&db).unwrap() == bytes, "the database changed");
}

/// Puts garbage over the cells of `sqlite_schema` on page 1, so the
/// database cannot even be read, let alone snapshotted. (Damage that leaves
/// it readable is recorded in a flagged safety snapshot: tests/it/integrity.rs.)
fn make_unreadable(db: &std::path::Path) {
    let mut bytes = std::fs::read(db).unwrap();
    bytes[3900..4000].fill(0x07);
    bytes[100 + 8..100 + 12].copy_from_slice(&[0xff; 4]);
    std::fs::write(db, &bytes).unwrap();
}

#[test]
fn restore_over_an_unreadable_database_keeps_a_raw_copy_and_force_is_only_for_in_use() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 300);
    let s1 = env.snapshot(&["app.db"]);
    make_unreadable(&db);
    let bytes = std::fs::read(&db).unwrap();

    // --force overrides "in use" and read-only, not the safety snapshot.
    for args in [vec!["restore", &s1], vec!["restore", "--force", &s1]] {
        let out = env.run(&args);
        out.expect_error(exit::REFUSED, &["safety snapshot"]);
        assert!(out.stderr.contains("hint: pass --no-safety-snapshot"));
        assert!(
            out.stderr.lines().count() <= 6,
            "the refusal is short:\n{}",
            out.stderr
        );
        assert!(std::fs::read(&db).unwrap() == bytes);
    }

    let out = env.run(&["restore", "--no-safety-snapshot", &s1]);
    out.assert_success();
    let kept = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("warning: no safety snapshot: the previous file is kept as "))
        .unwrap_or_else(|| panic!("no raw-copy warning:\n{}", out.stderr));
    assert!(
        std::fs::read(kept).unwrap() == bytes,
        "the raw copy differs"
    );
    assert_eq!(crate::common::integrity_check(&db), "ok");
}

#[test]
fn restore_warns_about_another_database_and_refuses_a_read_only_file() {
    let env = TestEnv::with_store();
    let app = env.make_db("app.db", Journal::Delete, 50);
    env.make_db("small.db", Journal::Delete, 5);
    env.run(&["track", "app", "app.db"]).assert_success();
    env.run(&["track", "small", "small.db"]).assert_success();
    env.run(&["snapshot", "app"]).assert_success();
    let small = env.snapshot(&["small"]);

    let out = env.run(&["--format", "json", "restore", &small, "app"]);
    let json = out.ok_json();
    assert!(
        out.stderr.contains("taken of database small"),
        "{}",
        out.stderr
    );
    assert!(
        json["warnings"][0].as_str().unwrap().contains("small"),
        "{json}"
    );

    // A hard link elsewhere shares the inode, so it shares the restore.
    let link = env.join("app-link.db");
    std::fs::hard_link(&app, &link).unwrap();
    let out = env.run(&["restore", "app", "app"]);
    out.assert_success();
    assert!(out.stderr.contains("2 hard links"), "{}", out.stderr);
    std::fs::remove_file(&link).unwrap();

    chmod(&app, 0o444);
    let bytes = std::fs::read(&app).unwrap();
    env.run(&["restore", "app", "app"])
        .expect_error(exit::REFUSED, &["app.db", "read-only"]);
    assert!(std::fs::read(&app).unwrap() == bytes);
    chmod(&app, 0o644);
}

/// A writer that keeps the database locked past `--busy-timeout` makes
/// `checkout --force` (and `restore --force`) refuse with what happened
/// and how to get past it, not with "pass --force" (which was given), and
/// the file keeps its content.
#[test]
fn a_lock_held_past_the_busy_timeout_is_named_not_forced() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 50);
    let snapshot = env.snapshot(&["app.db"]);
    exec(&db, "UPDATE items SET name = 'later';");
    let before = dump(&db);
    let holder = Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    for args in [
        vec![
            "--busy-timeout",
            "300ms",
            "checkout",
            &snapshot,
            "-o",
            "app.db",
            "--force",
        ],
        vec!["--busy-timeout", "300ms", "restore", &snapshot, "--force"],
    ] {
        let out = env.run(&args);
        out.expect_error(exit::REFUSED, &["stayed locked by another writer"]);
        assert!(
            out.stderr
                .contains("hint: run again when it is idle, or raise --busy-timeout")
        );
    }
    holder.execute_batch("ROLLBACK;").unwrap();
    drop(holder);
    assert_eq!(dump(&db), before, "a refused command changed the database");
}
