//! `guard` on real Alembic projects: it judges what the guarded command
//! did (its exit, the version rows and schema before and after, drift it
//! introduced or fixed), not the drift that was there before, and restores
//! only a failure.

use std::path::Path;

use crate::common::alembic::{AlembicProject, Revision, chat_app, tables, version_rows};
use crate::common::{Journal, TestEnv, dump, exec};

const USERS: &str = "INSERT INTO user VALUES ('u1', 'Ann', 'ann@example.com', 'admin', 1), \
                     ('u2', 'Bob', 'bob@example.com', 'user', 2)";

/// A chat_app database at its head with two users, in a store that knows
/// the project.
fn at_head(env: &TestEnv) -> Option<AlembicProject> {
    let project = AlembicProject::chat_app(env)?;
    project.configure_store(env, "");
    project.upgrade("head").assert_success();
    exec(&project.db_path(), USERS);
    Some(project)
}

/// `python -c CODE` run on the database: a hand-written command. It prints
/// to stdout, which guard keeps out of its JSON.
fn python_sql(project: &AlembicProject, sql: &str, exit: i32) -> Vec<String> {
    vec![
        project.python().to_str().unwrap().to_owned(),
        "-c".to_owned(),
        format!(
            "import sqlite3, sys; c = sqlite3.connect('{}'); c.executescript({sql:?}); c.commit(); print('done'); sys.exit({exit})",
            project.db_path().display()
        ),
    ]
}

fn guard(env: &TestEnv, db: &Path, flags: &[&str], command: &[String]) -> crate::common::Output {
    let mut args = vec!["guard", db.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend(command.iter().map(String::as_str));
    env.run(&args)
}

fn guard_json(env: &TestEnv, db: &Path, flags: &[&str], command: &[String]) -> serde_json::Value {
    let mut args = vec!["--format", "json", "guard", db.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend(command.iter().map(String::as_str));
    let out = env.run(&args);
    assert!(out.status == 0 || out.status == 1, "{out:?}");
    let json = out.json();
    let failed_by_error = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["severity"] == "error");
    assert_eq!(out.status, i32::from(failed_by_error), "{json}");
    json
}

/// The `(code, severity, object)` of every finding.
fn findings(json: &serde_json::Value) -> Vec<(String, String, String)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["object"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn finding(code: &str, severity: &str, object: &str) -> (String, String, String) {
    (code.to_owned(), severity.to_owned(), object.to_owned())
}

/// The names in one of the judgement's change lists.
fn names(json: &serde_json::Value, list: &str) -> Vec<String> {
    json["drift"][list]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_data_fix_on_a_drifted_database_is_judged_on_its_own_and_kept() {
    // Regression: the drift that was there before made guard call the data
    // fix a failure and restore the snapshot over it.
    let env = TestEnv::new();
    let Some(project) = at_head(&env) else {
        return;
    };
    let db = project.db_path();
    exec(&db, "CREATE INDEX chat_title_idx ON chat(title)");
    let fix = python_sql(
        &project,
        "UPDATE user SET name = 'Ann B' WHERE id = 'u1'",
        0,
    );

    let out = guard(&env, &db, &["--restore-on-failure"], &fix);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains("succeeded"), "{out:?}");
    assert!(out.stdout.contains("the schema did not change"), "{out:?}");
    assert!(
        out.stdout.contains("drift that was there before"),
        "{out:?}"
    );
    assert!(out.stdout.contains("extra index chat_title_idx"), "{out:?}");
    assert!(!out.stdout.contains("restored"), "{out:?}");
    // The data changed, so there is something to undo.
    assert!(out.stdout.contains("to undo: migsnap restore"), "{out:?}");
    let name = |db: &Path| {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("SELECT name FROM user WHERE id = 'u1'", [], |r| {
                r.get::<_, String>(0)
            })
            .unwrap()
    };
    assert_eq!(name(&db), "Ann B");

    let fix = python_sql(
        &project,
        "UPDATE user SET name = 'Ann C' WHERE id = 'u1'",
        0,
    );
    let json = guard_json(&env, &db, &["--restore-on-failure"], &fix);
    assert_eq!(json["failed"], false);
    assert_eq!(json["restored"], false);
    assert_eq!(json["changed"], true);
    assert_eq!(json["exit_code"], 0);
    assert_eq!(
        json["alembic_version"],
        serde_json::json!({"before": [chat_app::HEAD], "after": [chat_app::HEAD]})
    );
    assert_eq!(names(&json, "preexisting"), ["chat_title_idx"]);
    assert_eq!(names(&json, "introduced"), Vec::<String>::new());
    assert_eq!(
        findings(&json),
        [finding(
            "guard.preexisting-drift",
            "warning",
            "chat_title_idx on chat"
        )]
    );
    assert_eq!(name(&db), "Ann C");
}

#[test]
fn a_failing_upgrade_reports_the_version_rows_and_is_restored() {
    let env = TestEnv::new();
    let Some(mut project) = at_head(&env) else {
        return;
    };
    let db = project.db_path();
    // Two new revisions: the first works, the second creates a table and
    // then fails. SQLite's DDL is not transactional under Alembic's
    // generic env.py, so the first one's version row and the second one's
    // table both stay behind.
    const NOTES: &str = "8b0d2f4a6c78";
    const BROKEN: &str = "9c1e3a5b7d89";
    project.revision(
        Revision::new(NOTES, "add note table")
            .down(chat_app::HEAD)
            .upgrade(
                r#"op.create_table("note", sa.Column("id", sa.String(), nullable=False), sa.PrimaryKeyConstraint("id"))"#,
            )
            .downgrade(r#"op.drop_table("note")"#),
    );
    project.revision(
        Revision::new(BROKEN, "add audit table, then fail")
            .down(NOTES)
            .upgrade(
                r#"
                op.create_table("audit", sa.Column("id", sa.String(), nullable=False), sa.PrimaryKeyConstraint("id"))
                raise RuntimeError("the audit backfill failed")
                "#,
            )
            .downgrade(r#"op.drop_table("audit")"#),
    );
    let before = dump(&db);
    let upgrade: Vec<String> = [
        project.python().to_str().unwrap(),
        "-m",
        "alembic",
        "-c",
        "alembic.ini",
        "upgrade",
        "head",
    ]
    .map(str::to_owned)
    .to_vec();

    let out = guard(&env, &db, &[], &upgrade);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.stdout.contains("FAILED with exit code 1"), "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("version: {} → {NOTES}", chat_app::HEAD)),
        "{out:?}"
    );
    assert!(out.stdout.contains("+ table audit"), "{out:?}");
    assert!(out.stdout.contains("+ table note"), "{out:?}");
    assert!(out.stdout.contains("NEW drift"), "{out:?}");
    assert!(out.stdout.contains("extra table audit"), "{out:?}");
    assert!(tables(&db).contains(&"audit".to_owned()));
    assert_eq!(version_rows(&db), Some(vec![NOTES.to_owned()]));
    let undo = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("to undo: migsnap restore "))
        .expect("an undo line")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    env.run(&["restore", &undo, "app"]).assert_success();
    assert_eq!(dump(&db), before);

    let json = guard_json(&env, &db, &["--restore-on-failure"], &upgrade);
    assert_eq!(json["exit_code"], 1);
    assert_eq!(json["failed"], true);
    assert_eq!(
        json["alembic_version"],
        serde_json::json!({"before": [chat_app::HEAD], "after": [NOTES]})
    );
    let made: Vec<&str> = json["schema_changes"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(made, ["audit", "note"]);
    assert_eq!(names(&json, "introduced"), ["audit"]);
    let found = findings(&json);
    assert!(
        found.contains(&finding("guard.new-drift", "error", "audit")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.0 == "guard.command-failed" && f.1 == "error"),
        "{found:?}"
    );
    // Behind before and behind after: the version line says how far it got.
    assert!(!found.iter().any(|f| f.0 == "status.behind"), "{found:?}");
    assert_eq!(json["restored"], true);
    assert!(json["failed_state_snapshot"].is_string());
    assert_eq!(dump(&db), before);
    assert_eq!(version_rows(&db), Some(vec![chat_app::HEAD.to_owned()]));
    assert!(!tables(&db).contains(&"audit".to_owned()));
}

#[test]
fn a_command_that_introduces_drift_fails_and_is_restored() {
    let env = TestEnv::new();
    let Some(project) = at_head(&env) else {
        return;
    };
    let db = project.db_path();
    let before = dump(&db);
    // Exits 0, but loses an index the migrations made.
    let breaks = python_sql(&project, "DROP INDEX chat_user_id_idx", 0);
    let json = guard_json(&env, &db, &["--restore-on-failure"], &breaks);
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["failed"], true);
    assert_eq!(names(&json, "introduced"), ["chat_user_id_idx"]);
    assert_eq!(
        findings(&json),
        [finding(
            "guard.new-drift",
            "error",
            "chat_user_id_idx on chat"
        )]
    );
    assert_eq!(json["restored"], true);
    assert_eq!(dump(&db), before);
}

#[test]
fn a_command_that_fixes_drift_succeeds() {
    let env = TestEnv::new();
    let Some(project) = at_head(&env) else {
        return;
    };
    let db = project.db_path();
    exec(&db, "DROP INDEX chat_user_id_idx; CREATE TABLE scratch (x)");
    let fix = python_sql(
        &project,
        "CREATE INDEX chat_user_id_idx ON chat (user_id)",
        0,
    );
    let out = guard(&env, &db, &["--restore-on-failure"], &fix);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains("drift the command fixed:"), "{out:?}");
    assert!(
        out.stdout.contains("missing index chat_user_id_idx"),
        "{out:?}"
    );
    assert!(out.stdout.contains("extra table scratch"), "{out:?}");
    assert!(!out.stdout.contains("restored"), "{out:?}");
    assert!(out.stdout.contains("to undo: migsnap restore"), "{out:?}");

    // Fixing the rest is judged the same way, in JSON.
    let fix = python_sql(&project, "DROP TABLE scratch", 0);
    let json = guard_json(&env, &db, &["--restore-on-failure"], &fix);
    assert_eq!(json["failed"], false);
    assert_eq!(names(&json, "fixed"), ["scratch"]);
    assert_eq!(
        findings(&json),
        [finding("guard.drift-fixed", "info", "scratch")]
    );
    assert_eq!(
        json["status"]["comparison"]["drift"]["changes"],
        serde_json::json!([])
    );
}

#[test]
fn nothing_to_undo_when_the_command_changed_nothing() {
    let env = TestEnv::new();
    let Some(project) = at_head(&env) else {
        return;
    };
    let db = project.db_path();
    let python = project.python().to_str().unwrap().to_owned();
    let out = guard(
        &env,
        &db,
        &[],
        &[python.clone(), "-c".into(), "pass".into()],
    );
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains("nothing changed"), "{out:?}");
    assert!(!out.stdout.contains("to undo"), "{out:?}");
    let json = guard_json(
        &env,
        &db,
        &[],
        &[python.clone(), "-c".into(), "pass".into()],
    );
    assert_eq!(json["changed"], false);
    assert_eq!(json["before"], json["after"]);
    assert_eq!(json["findings"], serde_json::json!([]));

    // A failure that changed nothing: reported, and nothing to put back.
    let fails = [python, "-c".into(), "import sys; sys.exit(3)".into()];
    let out = guard(&env, &db, &["--restore-on-failure"], &fails);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.stdout.contains("FAILED with exit code 3"), "{out:?}");
    assert!(!out.stdout.contains("to undo"), "{out:?}");
    assert!(!out.stdout.contains("restored"), "{out:?}");
    let json = guard_json(&env, &db, &["--restore-on-failure"], &fails);
    assert_eq!(json["exit_code"], 3);
    assert_eq!(json["failed"], true);
    assert_eq!(json["restored"], false);
    let found = findings(&json);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "guard.command-failed");
}

#[test]
fn a_command_that_leaves_nothing_to_compare_with_fixes_no_drift() {
    // With alembic_version emptied there is no reference after the
    // command: the drift before it is not "fixed", and the status says why.
    let env = TestEnv::new();
    let Some(project) = at_head(&env) else {
        return;
    };
    let db = project.db_path();
    exec(&db, "CREATE INDEX chat_title_idx ON chat(title)");
    let unstamp = python_sql(&project, "DELETE FROM alembic_version", 0);
    let json = guard_json(&env, &db, &[], &unstamp);
    assert_eq!(
        json["alembic_version"],
        serde_json::json!({"before": [chat_app::HEAD], "after": []})
    );
    assert_eq!(json["drift"]["targets_after"], serde_json::Value::Null);
    assert_eq!(names(&json, "fixed"), Vec::<String>::new());
    assert_eq!(names(&json, "introduced"), Vec::<String>::new());
    let found = findings(&json);
    assert!(found.iter().any(|f| f.0 == "status.behind"), "{found:?}");
    assert!(
        !found.iter().any(|f| f.0.starts_with("guard.")),
        "{found:?}"
    );
}

#[test]
fn without_a_project_guard_judges_the_exit_and_sees_data_changes_in_wal() {
    // No migrations to judge drift by. A data change in a WAL database
    // (which leaves the file change counter alone) still counts as a
    // change, and a failing command is put back.
    let env = TestEnv::with_store();
    let db = env.make_db("plain.db", Journal::Wal, 20);
    let python = crate::common::sqlite_python();
    let sql = |sql: &str, exit: i32| {
        vec![
            python.clone(),
            "-c".to_owned(),
            format!(
                "import sqlite3, sys; c = sqlite3.connect('{}'); c.executescript({sql:?}); c.commit(); sys.exit({exit})",
                db.display()
            ),
        ]
    };
    let out = guard(
        &env,
        &db,
        &[],
        &sql("UPDATE items SET name = 'x' WHERE id = 1", 0),
    );
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains("the schema did not change"), "{out:?}");
    assert!(out.stdout.contains("to undo: migsnap restore"), "{out:?}");

    let before = dump(&db);
    let json = guard_json(
        &env,
        &db,
        &["--restore-on-failure"],
        &sql("DELETE FROM items WHERE id > 10", 1),
    );
    assert_eq!(json["drift"], serde_json::Value::Null);
    assert_eq!(json["changed"], true);
    assert_eq!(json["restored"], true);
    assert_eq!(dump(&db), before);
}

#[test]
fn drift_kept_across_a_successful_upgrade_is_not_the_upgrades_doing() {
    // The upgrade moves the reference (a new column on chat); the hand-made
    // column it did not touch stays pre-existing, not new drift.
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    project.configure_store(&env, "");
    project.upgrade(chat_app::MERGE).assert_success();
    let db = project.db_path();
    exec(&db, "ALTER TABLE chat ADD COLUMN scim JSON");
    let upgrade: Vec<String> = [
        project.python().to_str().unwrap(),
        "-m",
        "alembic",
        "-c",
        "alembic.ini",
        "upgrade",
        "head",
    ]
    .map(str::to_owned)
    .to_vec();
    let json = guard_json(&env, &db, &["--restore-on-failure"], &upgrade);
    assert_eq!(
        json["alembic_version"],
        serde_json::json!({"before": [chat_app::MERGE], "after": [chat_app::HEAD]})
    );
    assert_eq!(names(&json, "introduced"), Vec::<String>::new(), "{json}");
    assert!(
        names(&json, "preexisting").contains(&"scim".to_owned()),
        "{json}"
    );
    assert_eq!(json["failed"], false);
    assert_eq!(json["restored"], false);
    assert_eq!(version_rows(&db), Some(vec![chat_app::HEAD.to_owned()]));
}
