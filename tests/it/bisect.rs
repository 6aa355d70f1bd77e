//! `bisect`: interactive sessions kept in the store's refs, `bisect run`
//! with git's exit-code contract, and the live database left alone.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::common::{TestEnv, exec, exit, file_hash};

/// Snapshot number (1-based) where column `marks.flag` appears.
const FLAG_AT: usize = 7;

/// app.db with `n` full snapshots ("snapshot 1" … "snapshot n"), oldest
/// first; snapshot i holds the rows 1..=i of `marks`, and from snapshot
/// [`FLAG_AT`] on, the column `marks.flag`.
fn history(n: usize) -> (TestEnv, PathBuf, Vec<String>) {
    let env = TestEnv::with_store();
    let db = env.join("app.db");
    exec(&db, "CREATE TABLE marks(n INTEGER NOT NULL);");
    let ids = (1..=n)
        .map(|i| {
            let mut sql = format!("INSERT INTO marks(n) VALUES ({i});");
            if i == FLAG_AT {
                sql.push_str("ALTER TABLE marks ADD COLUMN flag INTEGER;");
            }
            exec(&db, &sql);
            env.snapshot(&["app.db", "-m", &format!("snapshot {i}")])
        })
        .collect();
    (env, db, ids)
}

/// The newest `marks` row of a checked-out database: which snapshot it is.
fn snapshot_number(path: &Path) -> usize {
    let conn = Connection::open(path).unwrap();
    conn.query_row("SELECT max(n) FROM marks", [], |row| row.get::<_, i64>(0))
        .unwrap() as usize
}

/// A `bisect run` test in Python (guaranteed on CI, unlike the sqlite3
/// shell): bad once `marks.flag` exists; exit 125 for the snapshot numbers
/// in `skip`.
fn has_flag(skip: &[usize]) -> Vec<String> {
    let script = format!(
        "import os, sqlite3, sys\n\
         conn = sqlite3.connect(os.environ['MIGSNAP_BISECT_DB'])\n\
         n = conn.execute('SELECT max(n) FROM marks').fetchone()[0]\n\
         if n in {skip:?}: sys.exit(125)\n\
         columns = [row[1] for row in conn.execute('PRAGMA table_info(marks)')]\n\
         sys.exit(1 if 'flag' in columns else 0)\n"
    );
    ["python3", "-c", &script].map(String::from).to_vec()
}

fn run_args<'a>(prefix: &[&'a str], command: &'a [String]) -> Vec<&'a str> {
    let mut args = prefix.to_vec();
    args.extend(command.iter().map(String::as_str));
    args
}

fn bisect_refs(env: &TestEnv) -> Vec<String> {
    env.refs()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("bisect/"))
        .collect()
}

#[test]
fn run_finds_the_snapshot_where_a_column_appeared_without_touching_the_live_db() {
    let (env, db, ids) = history(12);
    let live = file_hash(&db);
    let out = env.run(&["bisect", "start", "HEAD", &ids[0]]);
    let text = out.assert_success();
    assert!(
        text.contains("Bisecting: 10 candidates left, about 4 steps"),
        "{text}"
    );
    let checkout = env.store_dir().join("bisect/app.db");
    assert!(
        text.contains(&format!("database  {}", checkout.display())),
        "{text}"
    );

    let command = has_flag(&[]);
    let out = env.run(&run_args(&["bisect", "run"], &command));
    let text = out.assert_success();
    assert!(
        text.contains(&format!("first bad snapshot: {} ", &ids[FLAG_AT - 1][..12]))
            && text.contains(&format!("snapshot {FLAG_AT}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("last good snapshot: {} ", &ids[FLAG_AT - 2][..12])),
        "{text}"
    );
    assert!(
        text.contains("schema changes in the first bad snapshot:\n")
            && text.contains("\n    + column marks.flag\n"),
        "{text}"
    );
    let verdicts = text.lines().filter(|l| l.starts_with("verdict ")).count();
    assert!(
        (1..=4).contains(&verdicts),
        "{verdicts} tests for 10 candidates:\n{text}"
    );

    // The log replays the marks in order: start's bad and good, then the run's.
    let log = env.run(&["--format", "json", "bisect", "log"]).ok_json();
    assert_eq!(log["start"], ids[11].as_str());
    assert_eq!(log["from_root"], false);
    let marks = log["marks"].as_array().unwrap();
    assert_eq!(marks.len(), 2 + verdicts);
    assert_eq!(
        (marks[0]["verdict"].as_str(), marks[0]["id"].as_str()),
        (Some("bad"), Some(ids[11].as_str()))
    );
    assert_eq!(
        (marks[1]["verdict"].as_str(), marks[1]["id"].as_str()),
        (Some("good"), Some(ids[0].as_str()))
    );
    assert_eq!(marks[1]["message"], "snapshot 1");

    assert!(checkout.is_file());
    env.run(&["bisect", "reset"]).assert_success();
    assert!(
        bisect_refs(&env).is_empty(),
        "reset leaves {:?}",
        bisect_refs(&env)
    );
    assert!(!checkout.exists(), "reset leaves the checked-out database");
    assert_eq!(file_hash(&db), live, "bisect changed the live database");
    assert!(
        !env.join("app.db-wal").exists() && !env.join("app.db-journal").exists(),
        "bisect opened the live database for writing"
    );
}

#[test]
fn run_reports_json_and_from_root_can_find_the_oldest() {
    let (env, _db, ids) = history(9);
    let start = env
        .run(&["--format", "json", "bisect", "start", "--from-root"])
        .ok_json();
    assert_eq!(start["database"], "app");
    assert_eq!(start["marked"][0]["id"], ids[8].as_str());
    assert_eq!(start["marked"][0]["verdict"], "bad");
    let next = &start["next"];
    assert_eq!(next["state"], "test");
    assert_eq!(next["remaining"], 8);
    assert_eq!(next["steps"], 4);
    let candidate = next["candidate"]["id"].as_str().unwrap();
    let path = PathBuf::from(next["path"].as_str().unwrap());
    let number = ids.iter().position(|id| id == candidate).unwrap() + 1;
    assert_eq!(
        snapshot_number(&path),
        number,
        "the file is the candidate's database"
    );

    let command = has_flag(&[]);
    let run = env
        .run(&run_args(&["--format", "json", "bisect", "run"], &command))
        .ok_json();
    let steps = run["steps"].as_array().unwrap();
    assert!(!steps.is_empty() && steps.len() <= 4, "{run}");
    for step in steps {
        let id = step["id"].as_str().unwrap();
        let bad = ids.iter().position(|i| i == id).unwrap() + 1 >= FLAG_AT;
        assert_eq!(step["verdict"], if bad { "bad" } else { "good" });
        assert_eq!(step["exit_code"], i32::from(bad));
    }
    let found = &run["next"];
    assert_eq!(found["state"], "found");
    assert_eq!(found["first_bad"]["id"], ids[FLAG_AT - 1].as_str());
    assert_eq!(found["first_bad"]["message"], format!("snapshot {FLAG_AT}"));
    assert_eq!(found["last_good"]["id"], ids[FLAG_AT - 2].as_str());
    let added_column = found["patch"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["kind"] == "column")
        .unwrap();
    assert_eq!(added_column["op"], "added");
    assert_eq!(added_column["table"], "marks");
    assert_eq!(added_column["name"], "flag");

    // From the root, every snapshot bad: the oldest is the first bad one.
    env.run(&["bisect", "reset"]).assert_success();
    env.run(&["bisect", "start", "--from-root"])
        .assert_success();
    let always_bad = ["sh", "-c", "exit 3"].map(String::from);
    let run = env
        .run(&run_args(
            &["--format", "json", "bisect", "run"],
            &always_bad,
        ))
        .ok_json();
    assert_eq!(run["next"]["first_bad"]["id"], ids[0].as_str());
    assert_eq!(run["next"]["last_good"], serde_json::Value::Null);
}

#[test]
fn interactive_good_bad_skip_without_rev_mark_the_candidate() {
    let (env, db, ids) = history(12);
    let live = file_hash(&db);
    let checkout = env.store_dir().join("bisect/app.db");
    let mut next = env
        .run(&["--format", "json", "bisect", "start", "HEAD", "app~11"])
        .ok_json()["next"]
        .clone();
    let mut tests = 0;
    while next["state"] == "test" {
        tests += 1;
        assert!(tests <= 6, "too many steps: {next}");
        let id = next["candidate"]["id"].as_str().unwrap();
        let number = ids.iter().position(|i| i == id).unwrap() + 1;
        assert_eq!(snapshot_number(&checkout), number);
        // Skip the second candidate (snapshot 4: the first is snapshot 7,
        // the first bad one); judge every other one.
        let verdict = match (tests, number >= FLAG_AT) {
            (2, _) => "skip",
            (_, true) => "bad",
            (_, false) => "good",
        };
        let out = env.run(&["--format", "json", "bisect", verdict]).ok_json();
        assert_eq!(out["marked"][0]["id"], id);
        assert_eq!(out["marked"][0]["verdict"], verdict);
        next = out["next"].clone();
    }
    assert_eq!(next["state"], "found", "{next}");
    assert_eq!(next["first_bad"]["id"], ids[FLAG_AT - 1].as_str());

    // Status shows the same result; text names the first bad.
    let status = env.run(&["bisect", "status"]);
    assert!(
        status
            .assert_success()
            .contains(&format!("first bad snapshot: {}", &ids[FLAG_AT - 1][..12])),
        "{}",
        status.stdout
    );
    let log = env.run(&["bisect", "log"]);
    let lines: Vec<&str> = log.assert_success().lines().collect();
    assert!(
        lines[0].starts_with(&format!("start {}", &ids[11][..12])),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("bad {}", &ids[11][..12])),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with(&format!("good {}", &ids[0][..12])),
        "{lines:?}"
    );
    // Each line is `log --oneline`'s, so flags and the mark's ref show.
    assert!(
        lines[3].starts_with("bad ")
            && lines[3].ends_with("[schema changed] snapshot 7 (bisect: 00000003-bad)"),
        "{lines:?}"
    );
    assert!(
        lines[4].starts_with("skip ") && lines[4].ends_with("snapshot 4 (bisect: 00000004-skip)"),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 3 + tests);

    // `log` labels the session's refs instead of showing them as branches
    // (it used to print `HEAD -> bisect/app/start`); JSON keeps full names.
    let log = env.run(&["log", "--oneline"]);
    let newest = log
        .assert_success()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        newest.ends_with("snapshot 12 (bisect: 00000001-bad, bisect: start, HEAD -> app)"),
        "{newest}"
    );
    assert!(!log.stdout.contains("HEAD -> bisect"), "{}", log.stdout);
    let json = env.run(&["--format", "json", "log"]).ok_json();
    let refs = &json["snapshots"][0]["refs"];
    assert_eq!(
        refs,
        &serde_json::json!([
            "bisect/app/marks/00000001-bad",
            "bisect/app/start",
            "heads/app"
        ])
    );

    // Marks are refs: the session survives between processes, and reset
    // deletes them all.
    assert!(bisect_refs(&env).contains(&"bisect/app/start".to_owned()));
    let reset = env.run(&["--format", "json", "bisect", "reset"]).ok_json();
    assert_eq!(reset, serde_json::json!({"database": "app", "reset": true}));
    assert!(bisect_refs(&env).is_empty());
    assert_eq!(file_hash(&db), live, "bisect changed the live database");
}

#[test]
fn only_skipped_snapshots_left_lists_the_candidates() {
    let (env, _db, ids) = history(8);
    env.run(&["bisect", "start", &ids[6], &ids[2]])
        .assert_success();
    let out = env.run(&[
        "--format", "json", "bisect", "skip", &ids[3], &ids[4], &ids[5],
    ]);
    let json = out.ok_json();
    assert_eq!(json["marked"].as_array().unwrap().len(), 3);
    assert_eq!(json["next"]["state"], "only-skipped");
    let candidates: Vec<&str> = json["next"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        candidates,
        [&ids[3], &ids[4], &ids[5], &ids[6]].map(String::as_str)
    );

    let text = env.run(&["bisect", "status"]);
    let text = text.assert_success();
    assert!(
        text.contains("There are only skipped snapshots left to test."),
        "{text}"
    );
    assert!(
        text.contains("The first bad snapshot could be any of:"),
        "{text}"
    );
    for id in &ids[3..=6] {
        assert!(text.contains(&id[..12]), "{text}");
    }
}

#[test]
fn run_treats_125_as_skip_and_ends_with_the_skipped_candidates() {
    let (env, _db, ids) = history(10);
    env.run(&["bisect", "start", "HEAD", &ids[0]])
        .assert_success();
    let command = has_flag(&[5, 6]);
    let run = env
        .run(&run_args(&["--format", "json", "bisect", "run"], &command))
        .ok_json();
    let skips: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == "skip")
        .map(|s| {
            assert_eq!(s["exit_code"], 125);
            s["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(skips.len(), 2, "{run}");
    assert_eq!(run["next"]["state"], "only-skipped", "{run}");
    let candidates: Vec<&str> = run["next"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(candidates, [&ids[4], &ids[5], &ids[6]].map(String::as_str));
}

#[test]
fn run_aborts_on_exit_codes_from_128_and_on_signals_keeping_earlier_marks() {
    let (env, _db, ids) = history(6);
    env.run(&["bisect", "start", "HEAD", &ids[0]])
        .assert_success();
    let before = env.run(&["--format", "json", "bisect", "log"]).ok_json();

    let out = env.run(&["bisect", "run", "sh", "-c", "exit 200"]);
    out.expect_error(
        exit::INPUT,
        &["bisect run aborted", "`sh -c exit 200` exited with 200"],
    );
    let out = env.run(&["bisect", "run", "sh", "-c", "kill -9 $$"]);
    out.expect_error(exit::INPUT, &["killed by signal 9"]);
    let out = env.run(&["bisect", "run", "./no-such-command"]);
    out.expect_error(exit::INPUT, &["cannot run `./no-such-command`"]);

    let after = env.run(&["--format", "json", "bisect", "log"]).ok_json();
    assert_eq!(before, after, "an aborted step records no mark");

    // The test's stdout goes to stderr: stdout stays one JSON document.
    let run = env.run(&[
        "--format",
        "json",
        "bisect",
        "run",
        "sh",
        "-c",
        "echo noise; exit 1",
    ]);
    run.ok_json();
    assert!(run.stderr.contains("noise"), "{}", run.stderr);
}

#[test]
fn starting_twice_is_refused_and_reset_is_idempotent() {
    let (env, _db, ids) = history(4);
    env.run(&["bisect", "good", &ids[0]])
        .expect_error(exit::INPUT, &["no bisect session of 'app'"]);
    env.run(&["bisect", "start"]).assert_success();
    let state = env.store_state();
    env.run(&["bisect", "start", "HEAD", &ids[0]])
        .expect_error(exit::REFUSED, &["already in progress"]);
    assert_eq!(env.store_state(), state, "a refused start wrote something");
    let out = env.run(&["bisect", "status"]);
    assert!(
        out.assert_success().contains("waiting for a good snapshot"),
        "{}",
        out.stdout
    );
    // No candidate yet, so a bare `good` has nothing to mark.
    env.run(&["bisect", "good"])
        .expect_error(exit::USAGE, &["no candidate to mark good"]);
    env.run(&["bisect", "run", "true"]).expect_error(
        exit::INPUT,
        &["needs a snapshot marked bad and one marked good"],
    );

    env.run(&["bisect", "reset"]).assert_success();
    let again = env.run(&["bisect", "reset"]);
    again.assert_success();
    assert!(
        again.stderr.contains("no bisect session of 'app' to reset"),
        "{}",
        again.stderr
    );
    env.run(&["bisect", "start", "HEAD", &ids[0]])
        .assert_success();
}

#[test]
fn unknown_revisions_and_contradictions_are_bad_input_and_write_nothing() {
    let (env, _db, ids) = history(8);
    env.run(&["bisect", "start", "HEAD", "nosuchrev"])
        .expect_error(exit::INPUT, &["unknown revision 'nosuchrev'"]);
    assert!(bisect_refs(&env).is_empty());

    env.run(&["bisect", "start", &ids[4], &ids[1]])
        .assert_success();
    let state = env.store_state();
    env.run(&["bisect", "bad", "nosuchrev"])
        .expect_error(exit::INPUT, &["unknown revision 'nosuchrev'"]);
    let out = env.run(&["--format", "json", "bisect", "good", &ids[6]]);
    out.expect(exit::INPUT);
    let error: serde_json::Value = serde_json::from_str(out.stderr.trim()).unwrap();
    assert_eq!(error["error"]["kind"], "input");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is newer than snapshot"),
        "{error}"
    );
    assert_eq!(env.store_state(), state, "a refused mark wrote something");

    // A snapshot of another database is not on the line.
    let other = env.join("other.db");
    exec(&other, "CREATE TABLE t(x);");
    let foreign = env.snapshot(&["other.db"]);
    env.run(&["bisect", "--db", "app", "good", &foreign])
        .expect_error(exit::INPUT, &[&foreign, "not on the first-parent history"]);
}

#[test]
fn schema_only_candidates_get_no_database_file() {
    let env = TestEnv::with_store();
    let db = env.join("app.db");
    exec(
        &db,
        "CREATE TABLE marks(n INTEGER NOT NULL); INSERT INTO marks VALUES (1);",
    );
    let first = env.snapshot(&["app.db", "-m", "one"]);
    exec(&db, "CREATE TABLE extra(x);");
    let schema_only = env.snapshot(&["app.db", "--schema-only", "-m", "two"]);
    exec(&db, "INSERT INTO marks VALUES (3);");
    env.snapshot(&["app.db", "-m", "three"]);

    let json = env
        .run(&["--format", "json", "bisect", "start", "HEAD", &first])
        .ok_json();
    assert_eq!(json["next"]["candidate"]["id"], schema_only.as_str());
    assert_eq!(json["next"]["candidate"]["schema_only"], true);
    assert_eq!(json["next"]["path"], serde_json::Value::Null);
    assert!(!env.store_dir().join("bisect/app.db").exists());
    let text = env.run(&["bisect", "status"]);
    assert!(
        text.assert_success()
            .contains("database  none (schema-only snapshot)"),
        "{}",
        text.stdout
    );

    // `bisect run` leaves MIGSNAP_BISECT_DB unset for it.
    let run = env
        .run(&[
            "--format",
            "json",
            "bisect",
            "run",
            "sh",
            "-c",
            "test -z \"$MIGSNAP_BISECT_DB\" && test -n \"$MIGSNAP_BISECT_REV\" && exit 1",
        ])
        .ok_json();
    assert_eq!(run["steps"][0]["verdict"], "bad", "{run}");
    assert_eq!(run["next"]["first_bad"]["id"], schema_only.as_str());
}
