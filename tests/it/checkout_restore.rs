//! `checkout` into a new file and `restore` in place.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use insta::assert_snapshot;
use rusqlite::Connection;

use crate::common::{Journal, TestEnv, chmod, dump, dump_conn, exec, exit, integrity_check, mode};

/// Whether two database files are equal but for the page-1 bytes SQLite
/// stamps on every commit (change counter, version-valid-for, version) and
/// the schema cookie: what an in-place write through SQLite must change so
/// that open connections notice.
pub(crate) fn same_but_commit_stamp(a: &[u8], b: &[u8]) -> bool {
    let clear = |bytes: &[u8]| {
        let mut bytes = bytes.to_vec();
        for range in [24..28, 40..44, 92..100] {
            if bytes.len() >= range.end {
                bytes[range].fill(0);
            }
        }
        bytes
    };
    clear(a) == clear(b)
}

#[test]
fn checkout_of_a_rollback_journal_db_is_byte_identical() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 200);
    chmod(&db, 0o640);
    let bytes_v1 = std::fs::read(&db).unwrap();
    let s1 = env.snapshot(&["app.db"]);
    exec(
        &db,
        "UPDATE items SET name = name || '!' WHERE id % 3 = 0;
         INSERT INTO items(name, payload) VALUES ('late', zeroblob(5000));",
    );
    let bytes_v2 = std::fs::read(&db).unwrap();
    assert_ne!(bytes_v1, bytes_v2);
    let s2 = env.snapshot(&[]);

    let out = env.run(&["checkout", &s1, "-o", "v1.db"]);
    assert_snapshot!(env.redact(out.assert_success()), @"checked out [SHORT] into v1.db (56.0 KiB, verified)");
    assert!(
        std::fs::read(env.join("v1.db")).unwrap() == bytes_v1,
        "checkout of s1 differs from the file at s1"
    );
    assert_eq!(integrity_check(&env.join("v1.db")), "ok");
    assert_eq!(
        mode(&env.join("v1.db")),
        0o640,
        "checkout keeps the recorded mode"
    );

    // A directory that does not exist is bad input, named.
    env.run(&["checkout", "HEAD", "-o", "nodir/v2.db"])
        .expect_error(exit::INPUT, &["nodir"]);
    let json = env
        .run(&["--format", "json", "checkout", "HEAD", "-o", "v2.db"])
        .ok_json();
    assert_eq!(json["snapshot"], s2.as_str());
    assert_eq!(json["verified"], true);
    assert_eq!(json["bytes"].as_u64().unwrap(), bytes_v2.len() as u64);
    assert!(std::fs::read(env.join("v2.db")).unwrap() == bytes_v2);

    // An existing file is not overwritten without --force.
    let out = env.run(&["checkout", &s1, "-o", "v2.db"]);
    out.expect_error(exit::REFUSED, &["v2.db already exists"]);
    // The library names no flag; the CLI adds it as a hint.
    assert!(out.stderr.contains("hint: pass --force to overwrite it"));
    assert!(
        std::fs::read(env.join("v2.db")).unwrap() == bytes_v2,
        "refused checkout changed the file"
    );
    // --force overwrites an existing database in place, under its lock:
    // only the change counter SQLite stamps on every commit differs.
    env.run(&["checkout", &s1, "-o", "v2.db", "--force"])
        .assert_success();
    assert!(same_but_commit_stamp(
        &std::fs::read(env.join("v2.db")).unwrap(),
        &bytes_v1
    ));
    assert!(env.restore_temps(env.path()).is_empty());
    // The source database was never touched.
    assert!(std::fs::read(&db).unwrap() == bytes_v2);
}

#[test]
fn checkout_of_a_wal_db_includes_pages_still_in_the_wal() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Wal, 50);
    // A writer that keeps its commits in the WAL (no checkpoint while open).
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint = 0;
         INSERT INTO items(name, payload) SELECT 'wal-' || name, payload FROM items;
         UPDATE items SET name = 'changed' WHERE id = 3;",
    )
    .unwrap();
    let wal = env.join("app.db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "commits should sit in the WAL"
    );
    let state1 = dump_conn(&conn);
    let s1 = env.snapshot(&["app.db"]);

    conn.execute_batch("DELETE FROM items WHERE id > 60; CREATE TABLE more(x);")
        .unwrap();
    let state2 = dump_conn(&conn);
    let s2 = env.snapshot(&[]);
    drop(conn);

    env.run(&["checkout", &s1, "-o", "one.db"]).assert_success();
    env.run(&["checkout", &s2, "-o", "two.db"]).assert_success();
    for (file, want) in [("one.db", &state1), ("two.db", &state2)] {
        let path = env.join(file);
        assert_eq!(integrity_check(&path), "ok", "{file}");
        assert!(
            &dump(&path) == want,
            "{file}: content differs from the database at snapshot time"
        );
    }
    assert_ne!(state1, state2);
    let json = env.run(&["--format", "json", "show", &s1]).ok_json();
    assert_eq!(json["journal_mode"], "wal");
}

fn three_states() -> (TestEnv, std::path::PathBuf, String, String) {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 100);
    chmod(&db, 0o640);
    let s1 = env.snapshot(&["app.db", "-m", "before migration"]);
    let state1 = dump(&db);
    exec(
        &db,
        "ALTER TABLE items ADD COLUMN extra TEXT DEFAULT 'x';
         DELETE FROM items WHERE id % 2 = 0;",
    );
    (env, db, s1, state1)
}

#[test]
fn restore_puts_an_old_state_back_and_can_be_undone() {
    let (env, db, s1, state1) = three_states();
    let state2 = dump(&db);
    let bytes2 = std::fs::read(&db).unwrap();

    let out = env.run(&["restore", &s1]);
    out.expect(exit::OK);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let safety = lines[0]
        .strip_prefix("saved the previous state as ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no safety snapshot line: {}", out.stdout))
        .to_owned();
    assert_eq!(
        lines[0],
        format!("saved the previous state as {safety} (undo with `migsnap restore {safety}`)")
    );
    assert!(
        lines[1].starts_with(&format!("restored {} into {} (", &s1[..12], db.display())),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(", verified)"), "{}", lines[1]);
    assert_eq!(dump(&db), state1);
    assert_eq!(integrity_check(&db), "ok");
    assert_eq!(mode(&db), 0o640, "restore keeps the file's mode");
    assert!(env.restore_temps(env.path()).is_empty());

    // The safety snapshot is the new head, holds the state before the restore,
    // and says so.
    let log = env.log(None);
    assert!(log[0]["id"].as_str().unwrap().starts_with(&safety));
    assert_eq!(
        log[0]["message"],
        format!("safety snapshot before restoring {}", &s1[..12])
    );
    assert_eq!(log[0]["parents"][0], s1.as_str());

    // Undo.
    let out = env.run(&["restore", &safety]);
    out.assert_success();
    assert!(
        same_but_commit_stamp(&std::fs::read(&db).unwrap(), &bytes2),
        "undo is byte-identical but for the change counter"
    );
    assert_eq!(dump(&db), state2);
    assert_eq!(mode(&db), 0o640);

    // JSON form.
    let json = env.run(&["--format", "json", "restore", &s1]).ok_json();
    assert_eq!(json["snapshot"], s1.as_str());
    assert_eq!(json["database"], "app");
    assert_eq!(json["verified"], true);
    assert_eq!(dump(&db), state1);
    // Its safety snapshot is the new head and holds state 2 again.
    let head = env.log(None)[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(json["safety_snapshot"], head.as_str());
    assert_ne!(&head[..12], safety.as_str());
    env.run(&["checkout", &head, "-o", "again.db"])
        .assert_success();
    assert_eq!(dump(&env.join("again.db")), state2);
}

#[test]
fn restore_into_a_missing_file_recreates_it_with_the_recorded_mode() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 40);
    chmod(&db, 0o640);
    let bytes = std::fs::read(&db).unwrap();
    let s1 = env.snapshot(&["app.db"]);
    std::fs::remove_file(&db).unwrap();

    let out = env.run(&["restore", "HEAD"]);
    let stdout = out.assert_success();
    assert!(
        stdout.starts_with(&format!("restored {}", &s1[..12])),
        "{stdout}"
    );
    assert!(
        !stdout.contains("saved the previous state"),
        "no safety snapshot of nothing"
    );
    assert!(std::fs::read(&db).unwrap() == bytes);
    assert_eq!(mode(&db), 0o640);
}

#[test]
fn restore_removes_a_stale_wal_and_shm() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Wal, 60);
    let s1 = env.snapshot(&["app.db"]);
    let state1 = dump(&db);

    // Leave a -wal with committed frames of a newer state beside the file,
    // as a crashed writer would, plus a -shm.
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint = 0;
         UPDATE items SET name = 'newer' WHERE id <= 30;
         INSERT INTO items(name) VALUES ('only in the wal');",
    )
    .unwrap();
    let newer = dump_conn(&conn);
    let wal_bytes = std::fs::read(env.join("app.db-wal")).unwrap();
    let shm_bytes = std::fs::read(env.join("app.db-shm")).unwrap();
    assert!(!wal_bytes.is_empty());
    drop(conn);
    std::fs::write(env.join("app.db-wal"), &wal_bytes).unwrap();
    std::fs::write(env.join("app.db-shm"), &shm_bytes).unwrap();

    let out = env.run(&["restore", &s1]);
    let safety = out
        .assert_success()
        .split_whitespace()
        .nth(5)
        .unwrap()
        .to_owned();
    for sidecar in ["app.db-wal", "app.db-shm", "app.db-journal"] {
        assert!(
            !env.join(sidecar).exists(),
            "{sidecar} left beside the restored file"
        );
    }
    assert_eq!(integrity_check(&db), "ok");
    assert_eq!(
        dump(&db),
        state1,
        "stale WAL frames leaked into the restored file"
    );
    // The committed WAL content was saved by the safety snapshot.
    env.run(&["checkout", &safety, "-o", "saved.db"])
        .assert_success();
    assert_eq!(dump(&env.join("saved.db")), newer);
}

#[test]
fn restore_refuses_while_another_process_has_the_database_open() {
    let (env, db, s1, state1) = three_states();
    let bytes = std::fs::read(&db).unwrap();
    let before = env.store_state();

    // A child process holding the file open (as any SQLite client would).
    let mut holder = Command::new("sh")
        .arg("-c")
        .arg("exec 3<app.db; echo ready; exec sleep 60")
        .current_dir(env.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    // `exec sleep` keeps fd 3 and the pid.
    let pid = holder.id().to_string();

    let out = env.run(&["restore", &s1]);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        out.expect_error(
            exit::REFUSED,
            &["in use by process(es)", &pid, &db.display().to_string()],
        );
        assert!(out.stderr.contains("hint: stop them, or pass --force"));
        assert!(
            std::fs::read(&db).unwrap() == bytes,
            "refused restore changed the file"
        );
        assert_eq!(
            env.store_state(),
            before,
            "refused restore changed the store"
        );

        // --force overrides.
        env.run(&["restore", "--force", &s1]).assert_success();
        assert_eq!(dump(&db), state1);
    }));
    holder.kill().unwrap();
    holder.wait().unwrap();
    result.unwrap();
}

#[test]
fn restore_refuses_while_this_process_holds_a_sqlite_lock() {
    let (env, db, s1, _state1) = three_states();
    let bytes = std::fs::read(&db).unwrap();
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("BEGIN; SELECT count(*) FROM items;")
        .unwrap();
    let out = env.run(&["restore", &s1]);
    out.expect_error(
        exit::REFUSED,
        &["in use by process(es)", &std::process::id().to_string()],
    );
    conn.execute_batch("COMMIT;").unwrap();
    drop(conn);
    assert!(std::fs::read(&db).unwrap() == bytes);
    // Once it is closed, the restore goes ahead.
    env.run(&["restore", &s1]).assert_success();
}

#[test]
fn restore_refuses_a_symlink_target() {
    let env = TestEnv::with_store();
    let db = env.make_db("real.db", Journal::Delete, 10);
    std::os::unix::fs::symlink(&db, env.join("link.db")).unwrap();
    let s1 = env.snapshot(&["link.db"]);
    exec(&db, "DELETE FROM items;");
    let bytes = std::fs::read(&db).unwrap();
    // The message names the real file, which can be restored.
    env.run(&["restore", &s1])
        .expect_error(exit::REFUSED, &["link.db", "symbolic link", "real.db"]);
    assert!(std::fs::read(&db).unwrap() == bytes);
    env.run(&["checkout", &s1, "-o", "link.db", "--force"])
        .expect_error(exit::REFUSED, &["symbolic link"]);
    assert!(std::fs::read(&db).unwrap() == bytes);
}

/// A restore in place to an older snapshot with another schema and fewer
/// pages, then forward again, in both journal modes. The in-place write
/// once failed here as "malformed" (the b-tree's cached page 1 went stale
/// under the page writes), after the commit in one variant.
#[test]
fn restore_in_place_to_a_smaller_older_schema_and_back() {
    for journal in [Journal::Delete, Journal::Wal] {
        let env = TestEnv::with_store();
        let db = env.make_db("app.db", journal, 300);
        let old_dump = dump(&db);
        let old = env.snapshot(&["app.db"]);
        exec(
            &db,
            "ALTER TABLE items ADD COLUMN note TEXT;
             CREATE TABLE extra(x);
             INSERT INTO extra SELECT zeroblob(3000) FROM items;",
        );
        let new_dump = dump(&db);
        let new = env.snapshot(&[]);
        let pages = |path: &std::path::Path| -> i64 {
            Connection::open(path)
                .unwrap()
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .unwrap()
        };
        let grown = pages(&db);

        let json = env.run(&["--format", "json", "restore", &old]).ok_json();
        assert!(
            json["method"]["in-place"].is_object(),
            "{journal:?}: {json}"
        );
        assert_eq!(dump(&db), old_dump, "{journal:?}: back to the old snapshot");
        assert_eq!(integrity_check(&db), "ok", "{journal:?}");
        assert!(pages(&db) < grown, "{journal:?}: the file was not cut back");

        env.run(&["restore", &new]).assert_success();
        assert_eq!(dump(&db), new_dump, "{journal:?}: forward again");
        assert_eq!(integrity_check(&db), "ok", "{journal:?}");
    }
}

/// The listing variant of each image over 1 MiB stored raw in a pack of
/// its own, in the order written: 0 full, 1 delta (`docs/format.md`:
/// kind and version bytes, two bincode varints, the digest, the variant).
fn large_raw_listings(env: &TestEnv) -> Vec<u8> {
    let conn = env.store_conn();
    let mut stmt = conn
        .prepare(
            "SELECT data FROM packs WHERE compression = 0 AND raw_len > 1048576
             AND substr(data, 1, 1) = x'02' ORDER BY seq",
        )
        .unwrap();
    let rows = stmt.query_map([], |row| row.get::<_, Vec<u8>>(0)).unwrap();
    let skip_varint = |at: usize, bytes: &[u8]| match bytes[at] {
        251 => at + 3,
        252 => at + 5,
        _ => at + 1,
    };
    rows.map(|data| {
        let data = data.unwrap();
        let at = skip_varint(skip_varint(2, &data), &data) + 32;
        data[at]
    })
    .collect()
}

/// Every page size SQLite has, over several of the batches a snapshot
/// hashes pages in (64 pages, each a piece of the image digest) and a
/// restore reads back in (256): the snapshot's ids and digest, the
/// checkout's proof by digest and the restore's read-back all agree with
/// the file, whether pages are hashed side by side (1-8 KiB) or alone.
#[test]
fn every_page_size_is_snapshotted_checked_out_and_restored_exactly() {
    let env = TestEnv::with_store();
    for size in [512u32, 1024, 2048, 4096, 8192, 16384, 32768, 65536] {
        let name = format!("p{size}.db");
        let db = env.join(&name);
        // Over 256 pages: batches of 64 and of 256, and part of another.
        let rows = 400 * size / 300;
        exec(
            &db,
            &format!(
                "PRAGMA page_size = {size};
                 CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
                 INSERT INTO t SELECT i, randomblob(300) FROM n;"
            ),
        );
        let bytes = std::fs::read(&db).unwrap();
        let pages = bytes.len() / size as usize;
        assert!(pages > 4 * 64, "{size}: {pages} pages");
        let snapshot = env.snapshot(&[&name]);
        let out = format!("out{size}.db");
        env.run(&["checkout", &snapshot, "-o", &out])
            .assert_success();
        assert!(
            std::fs::read(env.join(&out)).unwrap() == bytes,
            "{size}: the checkout differs"
        );
        let state = dump(&db);
        exec(&db, "UPDATE t SET b = randomblob(300) WHERE id % 7 = 0;");
        let restored = env.run(&["--format", "json", "restore", &snapshot, &name]);
        let json = restored.expect(exit::OK).json();
        assert_eq!(json["verified"], true, "{size}: {json}");
        assert_eq!(dump(&db), state, "{size}: the restore differs");
    }
    // Every object read back and hashed on its own, by `blake3::hash`: ids
    // the lanes got wrong the same way every time would pass the rest.
    env.run(&["fsck", "--read-data"]).assert_success();
}

#[test]
fn a_listing_over_a_mebibyte_is_built_in_a_file_and_streamed_into_the_store() {
    // 512-byte pages: about 72,000, whose full listing (2.2 MiB of ids) is
    // over the size written from a file into a pack of its own, and spans
    // two of the 65,536-id windows in which checkout and restore read
    // listings from their files.
    let env = TestEnv::with_store();
    let db = env.join("big.db");
    exec(
        &db,
        "PRAGMA page_size = 512;
         CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 70000)
         INSERT INTO t SELECT i, randomblob(400) FROM n;",
    );
    let mut versions = vec![std::fs::read(&db).unwrap()];
    let mut snapshots = vec![env.snapshot(&["big.db"])];
    assert_eq!(large_raw_listings(&env), [0], "the first listing is full");
    // Every row rewritten twice: the second delta would bring the chain's
    // changes past the page count, so that listing is full again, made
    // from the parent's listing in a file.
    for _ in 0..2 {
        exec(&db, "UPDATE t SET b = randomblob(400);");
        versions.push(std::fs::read(&db).unwrap());
        snapshots.push(env.snapshot(&[]));
    }
    assert_eq!(large_raw_listings(&env), [0, 1, 0], "full, delta, rebased");
    for (i, (snapshot, bytes)) in snapshots.iter().zip(&versions).enumerate() {
        let out = format!("v{i}.db");
        env.run(&["checkout", snapshot, "-o", &out])
            .assert_success();
        assert!(
            std::fs::read(env.join(&out)).unwrap() == *bytes,
            "checkout of snapshot {i} differs"
        );
    }
    // In place, over a file that differs in rows on both sides of the
    // window boundary, and back: each listing is read a window at a time.
    let state = dump(&db);
    exec(&db, "UPDATE t SET b = randomblob(400) WHERE id % 1000 = 0;");
    env.run(&["restore", &snapshots[1]]).assert_success();
    assert_eq!(dump(&db), dump(&env.join("v1.db")));
    env.run(&["restore", &snapshots[2]]).assert_success();
    assert_eq!(dump(&db), state);
    assert_eq!(integrity_check(&db), "ok");
    env.run(&["fsck", "--read-data"]).assert_success();
}
