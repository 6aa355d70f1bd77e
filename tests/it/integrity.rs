//! A database that fails `PRAGMA quick_check` is recorded anyway, flagged,
//! and goes back into its own file only with `--force` (issue 14).

use migsnap_store::{Object, ObjectId, ObjectStore, Store};

use crate::checkout_restore::same_but_commit_stamp;
use crate::common::{Journal, TestEnv, exec, exit, integrity_check};

/// Overwrites the b-tree header of page `pgno` with garbage: quick_check
/// then fails, while the pages, the schema and the metadata still read.
fn damage_page(db: &std::path::Path, pgno: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    file.write_all_at(&[0xff; 64], (pgno - 1) * 4096 + 8)
        .unwrap();
}

/// A store with a sound snapshot of `app.db`, then `app.db` damaged: the
/// environment, the sound snapshot and the damaged file's bytes.
fn damaged_app() -> (TestEnv, String, Vec<u8>) {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 300);
    let sound = env.snapshot(&["app.db"]);
    damage_page(&db, 3);
    assert_ne!(integrity_check(&db), "ok");
    let bytes = std::fs::read(&db).unwrap();
    (env, sound, bytes)
}

/// The full id of the newest snapshot of `app`.
fn head(env: &TestEnv) -> String {
    let json = env
        .run(&["--format", "json", "log", "app", "-n", "1"])
        .ok_json();
    json["snapshots"][0]["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_database_failing_quick_check_is_recorded_flagged_and_reported() {
    let (env, sound, _) = damaged_app();
    let db = env.join("app.db");

    // Recorded: the id on stdout, one finding line on stderr naming the
    // file and the first problem, and the verdict's exit code.
    let out = env.run(&["snapshot", "app"]);
    out.expect(exit::PROBLEMS);
    let flagged = head(&env);
    assert!(flagged.starts_with(out.stdout.trim()), "{}", out.stdout);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(
        errors[0].starts_with("error: [snapshot.integrity-failed] ")
            && errors[0].contains(&db.display().to_string())
            && errors[0].contains("quick_check found")
            && errors[0].contains("the first: "),
        "{}",
        errors[0]
    );

    // JSON carries the finding; the verdict is not clean.
    let out = env.run(&["--format", "json", "snapshot", "app", "--allow-empty"]);
    out.expect(exit::PROBLEMS);
    let json = out.json();
    assert_eq!(json["recorded"], true, "{json}");
    assert_eq!(json["clean"], false, "{json}");
    assert_eq!(json["findings"][0]["code"], "snapshot.integrity-failed");
    assert_eq!(json["findings"][0]["severity"], "error");
    // Asked to fail only on nothing, the snapshot is still recorded and the
    // exit is 0: the flag is a finding like any other.
    env.run(&["snapshot", "app", "--allow-empty", "--fail-on", "never"])
        .assert_success();
    // Nothing changed, nothing recorded: the database still fails, and a
    // scheduled snapshot keeps saying so.
    let before = env.store_state();
    let out = env.run(&["snapshot", "app"]);
    out.expect(exit::PROBLEMS);
    assert!(out.stdout.contains("nothing changed"), "{}", out.stdout);
    assert!(
        out.stderr.contains("error: [snapshot.integrity-failed] "),
        "{}",
        out.stderr
    );
    let out = env.run(&["--format", "json", "snapshot", "app"]);
    out.expect(exit::PROBLEMS);
    let json = out.json();
    assert_eq!(json["recorded"], false, "{json}");
    assert_eq!(json["findings"][0]["code"], "snapshot.integrity-failed");
    assert_eq!(env.store_state(), before);

    // log and show, text and JSON.
    let log = env.run(&["log", "app", "--oneline"]);
    let lines: Vec<&str> = log.assert_success().lines().collect();
    assert!(
        lines[0].contains("[fails integrity check]"),
        "{}",
        log.stdout
    );
    assert!(
        !lines.last().unwrap().contains("integrity"),
        "{}",
        log.stdout
    );
    let json = env.run(&["--format", "json", "log", "app"]).ok_json();
    let snapshots = json["snapshots"].as_array().unwrap();
    assert!(snapshots[0]["integrity"]["problem_count"].as_u64().unwrap() >= 1);
    assert!(
        !snapshots[0]["integrity"]["problems"][0]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(snapshots.last().unwrap()["id"], sound.as_str());
    assert!(snapshots.last().unwrap()["integrity"].is_null(), "{json}");
    let show = env.run(&["show", &flagged]);
    assert!(
        show.assert_success()
            .contains("Integrity: FAILED, quick_check found"),
        "{}",
        show.stdout
    );
    let json = env.run(&["--format", "json", "show", &sound]).ok_json();
    assert!(json["integrity"].is_null(), "{json}");
}

#[test]
fn a_flagged_snapshot_goes_back_in_place_only_with_force_and_checks_out_with_a_warning() {
    let (env, sound, damaged) = damaged_app();
    let db = env.join("app.db");
    env.run(&["snapshot", "app"]).expect(exit::PROBLEMS);
    let flagged = head(&env);

    // A restore over the damaged database records it as a flagged safety
    // snapshot, then refuses without --force: the damage may come from a
    // stray sidecar, and only the files keep what lies under it.
    env.run(&["restore", &sound]).expect_error(
        exit::REFUSED,
        &[
            "app.db fails its integrity check",
            // Nothing changed since the flagged snapshot: it is the safety
            // snapshot.
            &format!("kept as snapshot {}", &flagged[..12]),
        ],
    );
    assert!(std::fs::read(&db).unwrap() == damaged);
    assert!(
        std::fs::read_dir(env.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("unsnapshotted")),
        "a refusal kept a raw copy"
    );
    // With --force it goes ahead, and keeps a raw copy too.
    let out = env.run(&["restore", "--force", &sound]);
    out.assert_success();
    assert!(
        out.stderr
            .contains("records a database that fails its integrity check"),
        "{}",
        out.stderr
    );
    let kept = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("warning: the previous file is also kept as "))
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no raw-copy warning:\n{}", out.stderr));
    assert!(
        std::fs::read(kept).unwrap() == damaged,
        "the raw copy differs"
    );
    assert_eq!(integrity_check(&db), "ok");
    let sound_bytes = std::fs::read(&db).unwrap();

    // In place without --force: refused, one line naming the snapshot, the
    // live file untouched.
    let before = env.store_state();
    let out = env.run(&["restore", &flagged]);
    out.expect_error(
        exit::REFUSED,
        &[
            &format!("snapshot {}", &flagged[..12]),
            "fails its integrity check",
        ],
    );
    assert!(out.stderr.contains("hint: pass --force"), "{}", out.stderr);
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1
    );
    assert!(
        std::fs::read(&db).unwrap() == sound_bytes,
        "the database changed"
    );
    assert_eq!(env.store_state(), before, "a refusal records nothing");
    let json = env.run(&["--format", "json", "restore", &flagged]);
    json.expect(exit::REFUSED);
    assert!(std::fs::read(&db).unwrap() == sound_bytes);

    // With --force: the damaged file comes back, byte for byte but for the
    // commit stamp an in-place write must give page 1.
    let out = env.run(&["restore", "--force", &flagged]);
    out.assert_success();
    assert!(
        out.stderr.contains(&format!(
            "warning: snapshot {} records a database that fails its integrity check",
            &flagged[..12]
        )),
        "{}",
        out.stderr
    );
    assert!(same_but_commit_stamp(
        &std::fs::read(&db).unwrap(),
        &damaged
    ));

    // checkout into a new file works, exactly, with the warning in text and
    // JSON.
    let out = env.run(&["checkout", &flagged, "-o", "copy.db"]);
    out.assert_success();
    assert!(out.stderr.contains("warning: snapshot"), "{}", out.stderr);
    assert!(std::fs::read(env.join("copy.db")).unwrap() == damaged);
    let json = env
        .run(&["--format", "json", "checkout", &flagged, "-o", "copy2.db"])
        .ok_json();
    assert!(
        json["warnings"][0]
            .as_str()
            .unwrap()
            .contains("fails its integrity check"),
        "{json}"
    );
    let json = env
        .run(&["--format", "json", "checkout", &sound, "-o", "copy3.db"])
        .ok_json();
    assert_eq!(json["warnings"], serde_json::json!([]), "{json}");
}

/// The flag is what lets a damaged rebuild through: the same snapshot
/// without it (as if damage appeared in the store, undetected by the page
/// hashes) is refused by checkout and by a restore that rebuilds the file,
/// even with --force. (A restore in place writes hash-checked pages of a
/// snapshot whose recorded verdict it trusts; see docs/design.md.)
#[test]
fn an_unflagged_snapshot_that_rebuilds_damaged_is_still_refused() {
    let (env, sound, _) = damaged_app();
    let db = env.join("app.db");
    env.run(&["snapshot", "app"]).expect(exit::PROBLEMS);
    let flagged = head(&env);
    env.run(&["restore", "--force", &sound]).assert_success();
    let sound_bytes = std::fs::read(&db).unwrap();

    let unflagged = {
        let mut store = Store::open(&env.store_dir()).unwrap();
        let Object::Snapshot(mut snapshot) =
            store.read(&flagged.parse::<ObjectId>().unwrap()).unwrap()
        else {
            panic!("not a snapshot");
        };
        let headers = snapshot.headers.len();
        snapshot
            .headers
            .retain(|(key, _)| !key.starts_with("integrity-"));
        assert!(snapshot.headers.len() < headers, "no integrity headers");
        store
            .write(&Object::Snapshot(snapshot))
            .unwrap()
            .to_string()
    };
    // Without a current file, the restore rebuilds one beside it.
    std::fs::rename(&db, env.join("kept.db")).unwrap();
    for args in [
        vec!["restore", "--force", unflagged.as_str()],
        vec!["checkout", unflagged.as_str(), "-o", "copy.db"],
    ] {
        env.run(&args).expect_error(
            exit::CORRUPT,
            &["rebuilds into a database that fails quick_check"],
        );
    }
    assert!(!db.exists());
    assert!(!env.join("copy.db").exists());
    assert!(std::fs::read(env.join("kept.db")).unwrap() == sound_bytes);
}

/// Commands that change a database through a verified copy (stamp,
/// repair, fix) refuse a damaged one, after keeping it as a flagged safety
/// snapshot (they used to fail taking it).
#[test]
fn a_rewrite_refuses_a_damaged_database_and_keeps_it() {
    let env = TestEnv::with_store();
    std::fs::create_dir(env.join("sql")).unwrap();
    std::fs::write(
        env.join("sql/0001_init.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    )
    .unwrap();
    std::fs::write(
        env.join("migsnap.toml"),
        "[migrations]\nkind = \"sql\"\ndir = \"sql\"\n",
    )
    .unwrap();
    let db = env.join("app.db");
    exec(
        &db,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
         INSERT INTO t SELECT i, printf('%.200c', 'x') FROM n;",
    );
    env.run(&["track", "app", "app.db"]).assert_success();
    damage_page(&db, 3);
    assert_ne!(integrity_check(&db), "ok");
    let damaged = std::fs::read(&db).unwrap();

    let out = env.run(&["stamp", "app", "0001"]);
    out.expect_error(
        exit::REFUSED,
        &["app.db fails its integrity check", "was not changed"],
    );
    assert!(std::fs::read(&db).unwrap() == damaged);
    let json = env
        .run(&["--format", "json", "log", "app", "-n", "1"])
        .ok_json();
    assert!(json["snapshots"][0]["integrity"].is_object(), "{json}");
}

/// `guard` records a damaged database before the command and refuses to
/// run the command on it.
#[test]
fn guard_keeps_a_damaged_database_and_does_not_run_the_command() {
    let (env, _, damaged) = damaged_app();
    let db = env.join("app.db");
    let marker = env.join("ran");
    let out = env.run(&["guard", "app", "--", "touch", marker.to_str().unwrap()]);
    out.expect(exit::REFUSED);
    assert!(
        out.stderr.lines().any(|l| l.starts_with("error: ")
            && l.contains("app.db fails its integrity check")
            && l.contains("the command was not run")),
        "{}",
        out.stderr
    );
    assert!(!marker.exists(), "the command ran");
    assert!(std::fs::read(&db).unwrap() == damaged);
    let json = env
        .run(&["--format", "json", "log", "app", "-n", "1"])
        .ok_json();
    assert!(json["snapshots"][0]["integrity"].is_object(), "{json}");
}

/// `--no-safety-snapshot` asks for the raw copy, so it also restores over a
/// database that fails its integrity check; the flagged safety snapshot is
/// taken all the same.
#[test]
fn no_safety_snapshot_also_restores_over_a_damaged_database() {
    let (env, sound, damaged) = damaged_app();
    let db = env.join("app.db");
    let json = env
        .run(&[
            "--format",
            "json",
            "restore",
            "--no-safety-snapshot",
            &sound,
        ])
        .ok_json();
    assert!(json["safety_snapshot"].is_string(), "{json}");
    let warnings: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings[0].starts_with("the safety snapshot ")
            && warnings[0].contains("fails its integrity check"),
        "{json}"
    );
    let kept = warnings[1]
        .strip_prefix("the previous file is also kept as ")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no raw-copy warning: {json}"));
    assert!(std::fs::read(kept).unwrap() == damaged);
    assert_eq!(integrity_check(&db), "ok");
}

/// A command that damages a sound database fails its guard: the result is
/// recorded, flagged, and reported as `snapshot.integrity-failed`.
#[test]
fn guard_reports_a_command_that_damages_the_database() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 300);
    env.run(&["track", "app", "app.db"]).assert_success();
    let script = format!(
        "printf '\\377%.0s' $(seq 64) | dd of='{}' bs=1 seek={} conv=notrunc 2>/dev/null",
        db.display(),
        2 * 4096 + 8
    );
    let out = env.run(&[
        "--format", "json", "guard", "app", "--", "sh", "-c", &script,
    ]);
    out.expect(exit::PROBLEMS);
    assert_ne!(integrity_check(&db), "ok");
    let json = out.json();
    let codes: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["snapshot.integrity-failed"], "{json}");
    assert_eq!(json["exit_code"], 0, "{json}");
    let log = env.run(&["--format", "json", "log", "app"]).ok_json();
    assert!(log["snapshots"][0]["integrity"].is_object(), "{log}");
    assert!(log["snapshots"][1]["integrity"].is_null(), "{log}");
}
