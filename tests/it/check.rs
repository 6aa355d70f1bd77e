//! `migsnap check`, the scheduled check: snapshot, status, retention, gc and
//! fsck in one run, one summary, the worst step's exit code.

use crate::common::{TestEnv, exec, exit, write_sql_project};

/// A store, a SQL folder of two migrations, and `app.db` at the head,
/// tracked as `app`.
fn healthy() -> TestEnv {
    let env = TestEnv::with_store();
    write_sql_project(&env);
    exec(
        &env.join("app.db"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, x INTEGER);
         INSERT INTO t VALUES (1, 'a', NULL);
         PRAGMA user_version = 2;",
    );
    env.run(&["track", "app", "app.db"]).assert_success();
    env
}

#[track_caller]
fn check_json(env: &TestEnv, args: &[&str], code: i32) -> serde_json::Value {
    let mut all = vec!["--format", "json", "check"];
    all.extend(args);
    let out = env.run(&all);
    out.expect(code);
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{}", out.stdout));
    assert_eq!(json["exit_code"], code, "{json}");
    json
}

#[test]
fn a_healthy_database_is_recorded_once_and_checks_clean() {
    let env = healthy();
    let first = check_json(&env, &["--fsck"], exit::OK);
    let app = &first["databases"][0];
    assert_eq!(app["name"], "app");
    assert_eq!(app["snapshot"]["ok"]["recorded"], true, "{first}");
    assert_eq!(app["status"]["ok"]["class"], "at-heads", "{first}");
    assert_eq!(app["status"]["ok"]["schema_matches"], true, "{first}");
    assert_eq!(app["verdict"]["clean"], true, "{first}");
    assert_eq!(first["fsck"]["ok"]["problems"], 0, "{first}");
    // The first run packs what the snapshot wrote.
    assert_eq!(first["gc"]["ok"]["ran"], true, "{first}");

    // Nothing changed: no new snapshot, nothing for gc to do.
    let second = check_json(&env, &[], exit::OK);
    let app = &second["databases"][0];
    assert_eq!(app["snapshot"]["ok"]["recorded"], false, "{second}");
    assert_eq!(
        app["snapshot"]["ok"]["id"],
        first["databases"][0]["snapshot"]["ok"]["id"]
    );
    assert_eq!(second["gc"]["ok"]["ran"], false, "{second}");
    assert!(second["fsck"].is_null());

    let text = env.run(&["check"]);
    text.assert_success();
    assert!(
        text.stdout.contains("app: unchanged since"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("gc: not due"), "{}", text.stdout);
}

#[test]
fn drift_is_a_finding_the_check_exits_1_on() {
    let env = healthy();
    exec(&env.join("app.db"), "CREATE TABLE by_hand (id INTEGER);");
    let json = check_json(&env, &[], exit::PROBLEMS);
    let app = &json["databases"][0];
    assert_eq!(app["snapshot"]["ok"]["recorded"], true, "{json}");
    assert_eq!(app["verdict"]["clean"], false, "{json}");
    assert_eq!(app["status"]["ok"]["schema_matches"], false, "{json}");
    let findings = app["verdict"]["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["code"] == "drift.schema"),
        "{json}"
    );
    let text = env.run(&["check"]);
    text.expect(exit::PROBLEMS);
    assert!(
        text.stdout.contains("schema differs") && text.stdout.contains("1 extra"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_database_that_cannot_be_read_fails_its_step_and_the_others_still_run() {
    let env = healthy();
    exec(&env.join("b.db"), "CREATE TABLE u (id INTEGER);");
    env.run(&["track", "b", "b.db"]).assert_success();
    std::fs::write(env.join("b.db"), b"not a database, not at all").unwrap();
    let json = check_json(&env, &[], exit::INPUT);
    let dbs = json["databases"].as_array().unwrap();
    let app = dbs.iter().find(|d| d["name"] == "app").unwrap();
    let b = dbs.iter().find(|d| d["name"] == "b").unwrap();
    assert_eq!(app["snapshot"]["ok"]["recorded"], true, "{json}");
    let error = &b["snapshot"]["error"];
    assert_eq!(error["exit_code"], exit::INPUT, "{json}");
    assert!(
        error["message"].as_str().unwrap().contains("b.db"),
        "{json}"
    );
    // Retention and gc ran all the same.
    assert!(json["retention"]["ok"].is_object(), "{json}");
    assert!(json["gc"]["ok"].is_object(), "{json}");

    // As text: the summary names the failure, and stderr has it in full.
    let text = env.run(&["check"]);
    text.expect(exit::INPUT);
    assert!(
        text.stdout.contains("b: snapshot FAILED"),
        "{}",
        text.stdout
    );
    assert!(
        text.stderr.starts_with("error: ") && text.stderr.contains("b.db"),
        "{}",
        text.stderr
    );
}

#[test]
fn the_check_forgets_by_its_policy_and_collects_after_the_grace() {
    let env = healthy();
    for n in 0..3 {
        exec(
            &env.join("app.db"),
            &format!("INSERT INTO t VALUES ({}, 'n', {n});", n + 10),
        );
        let json = check_json(&env, &["--keep-last", "1", "--gc-grace", "0s"], exit::OK);
        if n > 0 {
            // The previous snapshot's data is forgotten and, with no grace,
            // freed in the same run.
            assert_eq!(json["retention"]["ok"]["forgotten"], 1, "{json}");
            assert_eq!(json["gc"]["ok"]["ran"], true, "{json}");
            assert!(
                json["gc"]["ok"]["deleted_objects"].as_u64().unwrap() > 0,
                "{json}"
            );
        }
    }
    let log = env.run(&["--format", "json", "log", "app"]).ok_json();
    let entries = log["snapshots"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        3,
        "every snapshot stays in the history: {log}"
    );
    let oldest = entries.last().unwrap()["id"].as_str().unwrap().to_owned();
    env.run(&["checkout", &oldest, "-o", "old.db"])
        .expect_error(exit::INPUT, &["forgotten"]);
    let json = check_json(&env, &["--keep-last", "1", "--gc-grace", "0s"], exit::OK);
    assert_eq!(json["retention"]["ok"]["kept"], 1, "{json}");
}

#[test]
fn the_check_table_of_migsnap_toml_sets_what_the_flags_do_not() {
    let env = healthy();
    let toml = env.join("migsnap.toml");
    let base = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!("{base}\n[check]\nkeep_last = 1\ngc_grace = \"0s\"\nfsck = \"read-data\"\n"),
    )
    .unwrap();
    // A policy flag replaces the table's policy; the table still sets fsck.
    for n in 0..2 {
        exec(
            &env.join("app.db"),
            &format!("INSERT INTO t VALUES ({}, 'n', {n});", n + 10),
        );
        let json = check_json(&env, &["--keep-last", "5"], exit::OK);
        assert_eq!(json["fsck"]["ok"]["problems"], 0, "{json}");
        assert_eq!(json["retention"]["ok"]["forgotten"], 0, "{json}");
    }
    // Without flags, the table's: keep the last 1, collect at once.
    let json = check_json(&env, &[], exit::OK);
    assert_eq!(json["retention"]["ok"]["kept"], 1, "{json}");
    assert_eq!(json["retention"]["ok"]["forgotten"], 1, "{json}");
    assert_eq!(json["gc"]["ok"]["ran"], true, "{json}");
    assert!(
        json["gc"]["ok"]["deleted_objects"].as_u64().unwrap() > 0,
        "{json}"
    );

    std::fs::write(&toml, format!("{base}\n[check]\ngc_grace = \"soon\"\n")).unwrap();
    env.run(&["check"])
        .expect_error(exit::INPUT, &["migsnap.toml", "gc_grace"]);
}

/// The same with a real Alembic project: the status step replays it with
/// Alembic, and a version row behind the head is reported, not fatal.
#[test]
fn an_alembic_project_is_checked_as_status_checks_it() {
    let env = TestEnv::new();
    let Some(mut project) = crate::common::alembic::AlembicProject::new(&env) else {
        return;
    };
    let create = |table: &str| {
        format!("op.create_table(\"{table}\", sa.Column(\"id\", sa.Integer(), primary_key=True))")
    };
    project.revision(
        crate::common::alembic::Revision::new("c1c1c1c1c1c1", "one")
            .upgrade(&create("one"))
            .downgrade("op.drop_table(\"one\")"),
    );
    project.configure_store(&env, "");
    project.upgrade("head").assert_success();
    env.run(&["track", "app", crate::common::alembic::AlembicProject::DB])
        .assert_success();
    let json = check_json(&env, &[], exit::OK);
    let app = &json["databases"][0];
    assert_eq!(app["status"]["ok"]["class"], "at-heads", "{json}");
    assert_eq!(
        app["status"]["ok"]["heads"],
        serde_json::json!(["c1c1c1c1c1c1"])
    );

    // A new revision not yet applied: the check says so and still records.
    project.revision(
        crate::common::alembic::Revision::new("c2c2c2c2c2c2", "two")
            .down("c1c1c1c1c1c1")
            .upgrade(&create("two"))
            .downgrade("op.drop_table(\"two\")"),
    );
    let out = env.run(&["--format", "json", "check"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let app = &json["databases"][0];
    assert_eq!(app["status"]["ok"]["class"], "behind", "{json}");
    assert!(app["snapshot"]["ok"].is_object(), "{json}");
    assert_eq!(json["exit_code"], out.status, "{json}");
}

/// Five weekly checks (the store's clock set by `MIGSNAP_NOW`, a week
/// apart) keep the newest snapshot of each of the last 4 weeks; the fifth
/// week forgets the first, and its data is freed by the check that runs
/// once the 14-day grace period is over, which records nothing new.
#[test]
fn weekly_checks_keep_four_weeks_and_free_the_fifth_after_the_grace() {
    let env = healthy();
    const WEEK: i64 = 7 * 24 * 3600;
    // A Monday, 03:00 UTC.
    let start: i64 = 1_767_582_000;
    let at = |time: i64, args: &[&str]| {
        let now = time.to_string();
        let mut all = vec!["--format", "json", "check"];
        all.extend(args);
        let out = env.run_in(env.path(), &all, &[("MIGSNAP_NOW", &now)]);
        out.expect(exit::OK);
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()
    };
    let mut last = serde_json::Value::Null;
    for week in 0..5 {
        exec(
            &env.join("app.db"),
            &format!("INSERT INTO t VALUES ({}, 'week', {week});", week + 10),
        );
        last = at(start + week * WEEK, &[]);
        assert_eq!(last["databases"][0]["snapshot"]["ok"]["recorded"], true);
    }
    assert_eq!(last["retention"]["ok"]["kept"], 4, "{last}");
    assert_eq!(last["retention"]["ok"]["forgotten"], 1, "{last}");
    assert_eq!(last["gc"]["ok"]["deleted_objects"], 0, "{last}");

    let later = at(start + 4 * WEEK + 15 * 24 * 3600, &[]);
    assert_eq!(later["databases"][0]["snapshot"]["ok"]["recorded"], false);
    assert_eq!(later["gc"]["ok"]["ran"], true, "{later}");
    assert!(
        later["gc"]["ok"]["deleted_objects"].as_u64().unwrap() > 0,
        "{later}"
    );

    let out = env.run_in(env.path(), &["check"], &[("MIGSNAP_NOW", "next week")]);
    out.expect_error(exit::INPUT, &["MIGSNAP_NOW", "next week"]);
}

/// `[check] fsck = "sampled"` reads a different quarter of the packs each
/// week (the store's clock, `MIGSNAP_NOW`), so four weekly runs read every
/// object back; `fsck --read-data-subset` does one quarter by hand.
#[test]
fn a_sampled_check_reads_a_quarter_of_the_packs_each_week_and_all_in_four() {
    let env = healthy();
    let toml = env.join("migsnap.toml");
    let base = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{base}\n[check]\nfsck = \"sampled\"\n")).unwrap();
    // A few snapshots, so the store has packs to share out.
    for n in 0..4 {
        exec(
            &env.join("app.db"),
            &format!("INSERT INTO t VALUES ({}, 'n', {n});", n + 10),
        );
        env.run(&["snapshot", "app", "-m", "more"]).assert_success();
    }
    // Packed now, and nothing forgotten below, so the four runs see the
    // same store (which packs are in which subset, the store test shows).
    env.run(&["gc"]).assert_success();
    const WEEK: i64 = 7 * 24 * 3600;
    let mut subsets = Vec::new();
    let mut read = 0;
    for week in 0..4 {
        let now = (week * WEEK + 3600).to_string();
        let out = env.run_in(
            env.path(),
            &["--format", "json", "check", "--keep-last", "100"],
            &[("MIGSNAP_NOW", &now)],
        );
        out.expect(exit::OK);
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let fsck = &json["fsck"]["ok"];
        subsets.push(fsck["read_data"].as_str().unwrap().to_owned());
        read += fsck["objects_read"].as_u64().unwrap();
    }
    assert_eq!(subsets, ["1/4", "2/4", "3/4", "4/4"]);
    let all = env.run(&["--format", "json", "fsck", "--read-data"]);
    all.assert_success();
    let all: serde_json::Value = serde_json::from_str(&all.stdout).unwrap();
    assert_eq!(read, all["objects_read"].as_u64().unwrap(), "{all}");

    let one = env.run(&["fsck", "--read-data-subset", "2/4"]);
    one.assert_success();
    assert!(
        one.stdout.contains("pack subset 2/4 read and re-hashed"),
        "{}",
        one.stdout
    );
    // A usage error, as clap words it (with its --help line).
    let bad = env.run(&["fsck", "--read-data-subset", "5/4"]);
    bad.expect(exit::USAGE);
    assert!(
        bad.stderr.contains("\"5/4\": n must be between 1 and t"),
        "{}",
        bad.stderr
    );
}
