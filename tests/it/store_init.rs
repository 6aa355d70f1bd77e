//! `init` and finding the store: walk-up discovery, `--store`, `MIGSNAP_STORE`.

use insta::assert_snapshot;

use crate::common::{Journal, TestEnv, exit, file_hash, mode};

#[test]
fn init_creates_a_private_store() {
    let env = TestEnv::new();
    let out = env.run(&["init"]);
    out.expect(exit::OK);
    assert_snapshot!(env.redact(&out.stdout), @"Initialized empty migsnap store in [TMP]/.migsnap");
    assert_eq!(out.stderr, "");

    assert_eq!(mode(&env.store_dir()), 0o700, ".migsnap must be 0700");
    assert_eq!(mode(&env.store_db()), 0o600, "store.db must be 0600");

    // It is a SQLite file marked as a migsnap store, with the documented tables.
    let conn = env.store_conn();
    let (app_id, format): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT application_id FROM pragma_application_id),
                    (SELECT user_version FROM pragma_user_version)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(app_id, 0x6d73_6e70);
    assert_eq!(format, 3);
    // The packs table as docs/format.md documents it (format 3 added `level`).
    let packs: Vec<(String, String, bool)> = conn
        .prepare("SELECT name, type, \"notnull\" FROM pragma_table_info('packs') ORDER BY cid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        ("seq", "INTEGER", false),
        ("raw_len", "INTEGER", true),
        ("compression", "INTEGER", true),
        ("dictionary", "BLOB", false),
        ("data", "BLOB", true),
        ("level", "INTEGER", true),
    ];
    assert_eq!(
        packs,
        expected.map(|(n, t, nn)| (n.to_owned(), t.to_owned(), nn)),
    );
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in ["forgotten", "objects", "refs", "reflog"] {
        assert!(
            tables.iter().any(|t| t == table),
            "no table {table} in {tables:?}"
        );
        let rows: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "{table} is not empty");
    }
}

#[test]
fn init_twice_is_refused_and_keeps_the_store() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 20);
    let id = env.snapshot(&["app.db"]);
    let before = file_hash(&env.store_db());

    let out = env.run(&["init"]);
    out.expect_error(exit::REFUSED, &["already exists"]);
    assert_snapshot!(env.redact(&out.stderr), @"error: a migsnap store already exists at [TMP]/.migsnap");
    assert_eq!(out.stdout, "");
    assert_eq!(file_hash(&env.store_db()), before, "store.db changed");
    assert_eq!(env.log_ids(None), [id]);
}

#[test]
fn init_with_track_tracks_the_database() {
    let env = TestEnv::new();
    env.make_db("app.db", Journal::Delete, 5);
    let out = env.run(&["init", "--track", "app.db"]);
    out.expect(exit::OK);
    assert_snapshot!(env.redact(&out.stdout), @r"
    Initialized empty migsnap store in [TMP]/.migsnap
    Tracking [TMP]/app.db as 'app'
    ");
    assert_eq!(
        env.run(&["track"]).assert_success(),
        format!("app\t{}\n", env.join("app.db").display())
    );
}

#[test]
fn init_with_a_bad_track_path_reports_the_file() {
    let env = TestEnv::new();
    std::fs::write(env.join("notes.txt"), "hello").unwrap();
    env.run(&["init", "--track", "notes.txt"])
        .expect_error(exit::INPUT, &["notes.txt", "not a SQLite database"]);
}

#[test]
fn commands_find_the_store_from_a_subdirectory() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 10);
    env.run(&["track", "app", "app.db"]).assert_success();
    let deep = env.join("src/pkg/deep");
    std::fs::create_dir_all(&deep).unwrap();

    let listed = env.run_in(&deep, &["track"], &[]);
    assert_eq!(
        listed.assert_success(),
        format!("app\t{}\n", env.join("app.db").display())
    );
    let out = env.run_in(&deep, &["--format", "json", "snapshot"], &[]);
    let id = out.ok_json()["id"].as_str().unwrap().to_owned();
    assert_eq!(env.log_ids(None), std::slice::from_ref(&id));
    // A path relative to the subdirectory names the same database.
    let out = env.run_in(&deep, &["log", "--oneline", "../../../app.db"], &[]);
    assert!(
        out.assert_success().starts_with(&id[..12]),
        "{}",
        out.stdout
    );
}

#[test]
fn without_a_store_commands_say_how_to_make_one() {
    let env = TestEnv::new();
    if env
        .path()
        .ancestors()
        .any(|d| d.join(".migsnap/store.db").is_file())
    {
        eprintln!("skipped: a .migsnap store exists above the temp dir");
        return;
    }
    let out = env.run(&["log"]);
    out.expect_error(
        exit::INPUT,
        &[
            "no migsnap store found in",
            &env.path().display().to_string(),
        ],
    );
    assert!(
        out.stderr.contains("hint: run `migsnap init`"),
        "{}",
        out.stderr
    );
    // Nothing was created.
    assert!(!env.store_dir().exists());
}

#[test]
fn store_flag_and_environment_override_discovery() {
    let env = TestEnv::with_store();
    env.make_db("a.db", Journal::Delete, 5);
    env.make_db("b.db", Journal::Delete, 5);
    env.run(&["track", "a", "a.db"]).assert_success();

    // A second store elsewhere, created and filled through --store.
    let other = env.join("elsewhere/store");
    let other_s = other.display().to_string();
    let out = env.run(&["--store", &other_s, "init"]);
    assert_eq!(
        out.assert_success(),
        format!("Initialized empty migsnap store in {other_s}\n")
    );
    assert_eq!(mode(&other), 0o700);
    assert_eq!(mode(&other.join("store.db")), 0o600);
    env.run(&["--store", &other_s, "track", "b", "b.db"])
        .assert_success();

    let a_line = format!("a\t{}\n", env.join("a.db").display());
    let b_line = format!("b\t{}\n", env.join("b.db").display());
    assert_eq!(
        env.run(&["track"]).assert_success(),
        a_line,
        "discovered store"
    );
    assert_eq!(
        env.run(&["--store", &other_s, "track"]).assert_success(),
        b_line,
        "--store"
    );
    assert_eq!(
        env.run_in(env.path(), &["track"], &[("MIGSNAP_STORE", &other_s)])
            .assert_success(),
        b_line,
        "MIGSNAP_STORE"
    );
    // A relative --store is relative to the current directory.
    assert_eq!(
        env.run(&["--store", "elsewhere/store", "track"])
            .assert_success(),
        b_line
    );
    // The flag wins over the environment.
    let mine = env.store_dir().display().to_string();
    assert_eq!(
        env.run_in(
            env.path(),
            &["--store", &mine, "track"],
            &[("MIGSNAP_STORE", &other_s)]
        )
        .assert_success(),
        a_line
    );
    // Snapshots land in the chosen store only.
    let id = env.snapshot(&["--store", &other_s, "b"]);
    assert_eq!(env.log_ids(Some("a")), Vec::<String>::new());
    let out = env.run(&["--store", &other_s, "--format", "json", "log", "b"]);
    assert_eq!(out.ok_json()["snapshots"][0]["id"], id.as_str());

    // A --store that holds no store is bad input, and is not created.
    let missing = env.join("nowhere").display().to_string();
    env.run(&["--store", &missing, "log"])
        .expect_error(exit::INPUT, &["no migsnap store at", &missing]);
    assert!(!env.join("nowhere").exists());
}

/// Issue 10, items 15 and 16: an init killed midway left a 0-byte store.db
/// that blocked the next init; racing inits and `--store FILE` exited 70.
#[test]
fn init_is_atomic_and_refuses_cleanly() {
    // An empty store.db, as an interrupted init used to leave, is no store.
    let env = TestEnv::new();
    std::fs::create_dir(env.store_dir()).unwrap();
    std::fs::write(env.store_db(), b"").unwrap();
    env.run(&["init"]).assert_success();
    env.run(&["fsck"]).assert_success();

    // Of racing inits exactly one wins; the others are refused (exit 4).
    let env = TestEnv::new();
    let children: Vec<_> = (0..6)
        .map(|_| {
            env.command(&["init"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    assert!(
        codes.iter().all(|c| [0, exit::REFUSED].contains(c)),
        "{codes:?}"
    );
    env.run(&["fsck"]).assert_success();
    let names: Vec<String> = std::fs::read_dir(env.store_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["store.db"], "temporary files left");

    // A store path that is a file is bad input.
    let env = TestEnv::new();
    std::fs::write(env.join("file"), b"x").unwrap();
    env.run(&["--store", "file", "init"])
        .expect_error(exit::INPUT, &["file"]);
}

/// Issue 10, item 8: a broken inner `.migsnap` (no store.db, store.db a
/// directory or empty, `.migsnap` a file) made discovery fall through to the
/// parent's store, so commands silently used the wrong one. Discovery stops
/// at the first `.migsnap` and says what is wrong with it (exit 5).
#[test]
fn a_broken_inner_store_is_reported_not_skipped() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 5);
    env.snapshot(&["app.db"]);
    let inner = env.join("inner");
    let store = inner.join(".migsnap");
    let cases: [(&str, &dyn Fn()); 4] = [
        ("it has no store.db", &|| {
            std::fs::create_dir_all(&store).unwrap()
        }),
        ("its store.db is a directory", &|| {
            std::fs::create_dir_all(store.join("store.db")).unwrap()
        }),
        ("its store.db is empty", &|| {
            std::fs::create_dir_all(&store).unwrap();
            std::fs::write(store.join("store.db"), b"").unwrap();
        }),
        ("it is not a directory", &|| {
            std::fs::create_dir_all(&inner).unwrap();
            std::fs::write(&store, b"").unwrap();
        }),
    ];
    for (problem, make) in cases {
        let _ = std::fs::remove_dir_all(&inner);
        make();
        let out = env.run_in(&inner, &["log"], &[]);
        out.expect_error(exit::CORRUPT, &[problem, "not a usable migsnap store"]);
        assert!(out.stdout.is_empty(), "{problem}: {}", out.stdout);
    }
}
