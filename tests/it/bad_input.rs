//! Bad input: each case exits with its code, prints one `error:` line that
//! names the file or revision, and changes nothing in the store.

use std::time::{Duration, Instant};

use insta::assert_snapshot;
use rusqlite::Connection;

use crate::common::{Journal, TestEnv, chmod, exit, file_hash};

/// A store with one tracked database and one snapshot.
fn tracked() -> (TestEnv, String) {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 30);
    let id = env.snapshot(&["app.db"]);
    (env, id)
}

#[test]
fn files_that_are_not_databases() {
    let (env, _id) = tracked();
    std::fs::write(env.join("notes.txt"), "just some text, long enough to fill a header ...........................................................").unwrap();
    std::fs::write(env.join("empty.db"), b"").unwrap();
    let whole = std::fs::read(env.join("app.db")).unwrap();
    std::fs::write(env.join("half.db"), &whole[..whole.len() / 2]).unwrap();
    std::fs::write(env.join("tiny.db"), b"SQLite format 3\0").unwrap();
    std::fs::create_dir(env.join("somedir")).unwrap();
    let before = env.store_state();

    let cases: [(&[&str], &[&str]); 10] = [
        (
            &["snapshot", "notes.txt"],
            &["notes.txt", "is not a SQLite database"],
        ),
        (&["snapshot", "empty.db"], &["empty.db", "is an empty file"]),
        (
            &["snapshot", "half.db"],
            &[
                "half.db",
                "is truncated",
                &format!("{} bytes", whole.len() / 2),
            ],
        ),
        (
            &["snapshot", "tiny.db"],
            &["tiny.db", "is not a SQLite database"],
        ),
        (&["snapshot", "missing.db"], &["missing.db"]),
        (&["snapshot", "somedir"], &["somedir"]),
        (
            &["track", "n", "notes.txt"],
            &["notes.txt", "is not a SQLite database"],
        ),
        (&["track", "h", "half.db"], &["half.db", "is truncated"]),
        (
            &["track", "m", "missing.db"],
            &["missing.db", "does not exist"],
        ),
        (
            &["track", "d", "somedir"],
            &["somedir", "is not a regular file"],
        ),
    ];
    for (args, needles) in cases {
        let out = env.run(args);
        out.expect_error(exit::INPUT, needles);
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(env.store_state(), before, "{args:?} changed the store");
    }
    let out = env.run(&["snapshot", "notes.txt"]);
    assert_snapshot!(out.stderr, @"error: notes.txt is not a SQLite database (no 'SQLite format 3' header)");
    let out = env.run(&["snapshot", "half.db"]);
    assert_snapshot!(
        out.stderr.replace(&whole.len().to_string(), "[FULL]").replace(&(whole.len() / 2).to_string(), "[HALF]"),
        @"error: database half.db is truncated: [HALF] bytes, but its header needs [FULL]"
    );
}

#[test]
fn a_tracked_database_that_went_bad() {
    let (env, id) = tracked();
    let db = env.join("app.db");
    let before = env.store_state();

    std::fs::write(&db, b"").unwrap();
    env.run(&["snapshot"])
        .expect_error(exit::INPUT, &[&db.display().to_string(), "empty file"]);
    std::fs::remove_file(&db).unwrap();
    env.run(&["snapshot"])
        .expect_error(exit::INPUT, &[&db.display().to_string(), "does not exist"]);
    std::fs::create_dir(&db).unwrap();
    env.run(&["snapshot"]).expect_error(
        exit::INPUT,
        &[&db.display().to_string(), "not a regular file"],
    );
    assert_eq!(env.store_state(), before);
    std::fs::remove_dir(&db).unwrap();
    // The snapshot can still bring it back.
    env.run(&["restore", &id]).ok();
}

#[test]
fn a_database_locked_by_a_writer_past_the_busy_timeout_is_refused() {
    let (env, _id) = tracked();
    let db = env.join("app.db");
    let bytes = file_hash(&db);
    let before = env.store_state();
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE; INSERT INTO items(name) VALUES ('uncommitted');")
        .unwrap();

    let start = Instant::now();
    let out = env.run(&["--busy-timeout", "200ms", "snapshot"]);
    let took = start.elapsed();
    out.expect_error(
        exit::REFUSED,
        &[&db.display().to_string(), "locked by another process"],
    );
    assert!(
        out.stderr
            .contains("hint: wait for the writer to finish, or raise --busy-timeout")
    );
    assert!(took >= Duration::from_millis(200), "did not wait: {took:?}");
    assert!(
        took < Duration::from_secs(4),
        "ignored --busy-timeout: {took:?}"
    );
    assert_eq!(env.store_state(), before);

    // Once the writer commits, the snapshot sees the committed row.
    conn.execute_batch("COMMIT;").unwrap();
    drop(conn);
    assert_ne!(file_hash(&db), bytes);
    env.snapshot(&[]);
    // A malformed duration is a usage error.
    env.run(&["--busy-timeout", "soon", "snapshot"])
        .expect(exit::USAGE);
}

#[test]
fn a_read_only_store_is_refused() {
    let (env, _id) = tracked();
    crate::common::exec(&env.join("app.db"), "DELETE FROM items WHERE id < 5;");
    let is_root = unsafe { libc::geteuid() } == 0;
    let state = env.store_state();
    // chmod does not stop root; run the binary as nobody instead, over files
    // it owns but cannot write.
    let run = |args: &[&str]| {
        if is_root {
            use std::os::unix::process::CommandExt;
            let mut cmd = env.command(args);
            cmd.uid(65534).gid(65534);
            let out = cmd.output().unwrap();
            crate::common::Output {
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                status: out.status.code().unwrap_or(-1),
                command: format!("(as nobody) migsnap {}", args.join(" ")),
            }
        } else {
            env.run(args)
        }
    };
    if is_root {
        chown_tree(env.path(), 65534);
    }
    let store = env.store_dir();
    chmod(&store.join("store.db"), 0o400);
    chmod(&store.join("config.toml"), 0o400);
    chmod(&store, 0o500);

    let out = run(&["snapshot"]);
    let restore_perms = || {
        chmod(&store, 0o700);
        chmod(&store.join("store.db"), 0o600);
        chmod(&store.join("config.toml"), 0o600);
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        out.expect_error(
            exit::REFUSED,
            &["read-only", &env.store_db().display().to_string()],
        );
        // Reading still works.
        let log = run(&["log", "--oneline"]);
        assert_eq!(log.status, exit::OK, "{}", log.stderr);
        run(&["tag", "v1"]).expect_error(exit::REFUSED, &["read-only"]);
    }));
    restore_perms();
    result.unwrap();
    assert_eq!(env.store_state(), state);
}

fn chown_tree(path: &std::path::Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

#[test]
fn unknown_and_ambiguous_revisions_change_nothing() {
    let (env, id) = tracked();
    let before = env.store_state();
    for args in [
        &["show", "nope"][..],
        &["checkout", "nope", "-o", "x.db"],
        &["restore", "nope"],
        &["tag", "t", "nope"],
        &["show", "HEAD~1"],
    ] {
        let rev = if args[1] == "t" { args[2] } else { args[1] };
        env.run(args).expect_error(exit::INPUT, &[rev]);
    }
    env.run(&["tag", "-d", "nope"])
        .expect_error(exit::INPUT, &["tag 'nope' does not exist"]);
    assert_eq!(env.store_state(), before);
    assert!(!env.join("x.db").exists());
    // Usage errors are exit 2.
    env.run(&["checkout", &id]).expect(exit::USAGE);
    env.run(&["frobnicate"]).expect(exit::USAGE);
    env.run(&["log", "-n", "many"]).expect(exit::USAGE);
    env.run(&["--format", "yaml", "log"]).expect(exit::USAGE);
}

#[test]
fn a_store_of_a_newer_format_is_refused() {
    let (env, id) = tracked();
    env.store_conn()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let bytes = file_hash(&env.store_db());
    for args in [
        &["log"][..],
        &["snapshot", "--allow-empty"],
        &["fsck"],
        &["gc"],
        &["show", &id],
        &["track", "x", "app.db"],
    ] {
        let out = env.run(args);
        out.expect_error(
            exit::REFUSED,
            &["newer", "99", &env.store_db().display().to_string()],
        );
    }
    let out = env.run(&["log"]);
    assert_snapshot!(env.redact(&out.stderr), @"error: store [TMP]/.migsnap/store.db has format 99, newer than this migsnap reads (1); upgrade migsnap");
    assert_eq!(
        file_hash(&env.store_db()),
        bytes,
        "a refused command wrote the store"
    );
}

#[test]
fn a_foreign_sqlite_file_as_store_is_bad_input() {
    let env = TestEnv::new();
    std::fs::create_dir(env.store_dir()).unwrap();
    crate::common::create_db(&env.store_db(), Journal::Delete, 3, 10);
    let bytes = file_hash(&env.store_db());
    env.run(&["log"])
        .expect_error(exit::INPUT, &["is not a migsnap store"]);
    assert_eq!(
        file_hash(&env.store_db()),
        bytes,
        "a foreign database was written to"
    );
    std::fs::write(env.store_db(), "plain text, not SQLite at all").unwrap();
    let out = env.run(&["log"]);
    assert!(
        [exit::INPUT, exit::CORRUPT].contains(&out.status),
        "a text file as store.db: exit {} {}",
        out.status,
        out.stderr
    );
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
}
