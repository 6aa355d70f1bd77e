//! `migsnap test --data`: the round trip of the pending revisions on a copy
//! of a real database (a file or a snapshot), with real Alembic, rows
//! compared as well as schemas, and the database itself left alone.

use crate::common::alembic::{AlembicProject, Revision, version_rows};
use crate::common::{TestEnv, exec, file_hash};

/// Ids that the output redaction (12 hex digits) leaves alone.
const USERS: &str = "rev_users";
const HANDLE: &str = "rev_handle";
const NOTES: &str = "rev_notes";

/// `user` with a nullable `email`.
fn users() -> Revision {
    Revision::new(USERS, "users")
        .upgrade(
            r#"
            op.create_table(
                "user",
                sa.Column("id", sa.Integer(), primary_key=True),
                sa.Column("email", sa.String(), nullable=True),
            )
            "#,
        )
        .downgrade(r#"op.drop_table("user")"#)
}

/// `user.handle`, backfilled from the email, then made NOT NULL: fine on an
/// empty table, raises on a user without an email.
fn handle() -> Revision {
    Revision::new(HANDLE, "user handle")
        .down(USERS)
        .upgrade(
            r#"
            with op.batch_alter_table("user") as batch_op:
                batch_op.add_column(sa.Column("handle", sa.String(), nullable=True))
            op.execute("UPDATE user SET handle = lower(email)")
            with op.batch_alter_table("user") as batch_op:
                batch_op.alter_column("handle", existing_type=sa.String(), nullable=False)
            "#,
        )
        .downgrade(
            r#"
            with op.batch_alter_table("user") as batch_op:
                batch_op.drop_column("handle")
            "#,
        )
}

/// A `note` table, after the backfill.
fn notes() -> Revision {
    Revision::new(NOTES, "notes")
        .down(HANDLE)
        .upgrade(r#"op.create_table("note", sa.Column("id", sa.Integer(), primary_key=True))"#)
        .downgrade(r#"op.drop_table("note")"#)
}

/// `migsnap --format json test ARGS`, which must exit with `code`.
fn test_json(env: &TestEnv, args: &[&str], code: i32) -> serde_json::Value {
    let mut all = vec!["--format", "json", "test"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    out.expect(code);
    out.json()
}

/// (revision, step) of every revision tested, `ok` for a passing one.
fn steps(json: &serde_json::Value) -> Vec<(String, String)> {
    json["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let step = r["step"].as_str().unwrap_or("ok");
            (r["revision"].as_str().unwrap().to_owned(), step.to_owned())
        })
        .collect()
}

fn pair(revision: &str, step: &str) -> (String, String) {
    (revision.to_owned(), step.to_owned())
}

/// The case `--data` exists for: a backfill that passes on empty databases
/// and raises on real rows (a user without an email leaves a NULL handle).
#[test]
fn a_backfill_that_fails_only_on_real_rows_is_caught() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    project.revision(users());
    project.revision(handle());
    project.revision(notes());
    project.configure_store(&env, "");
    project.upgrade(USERS).assert_success();
    let db = project.db_path();
    exec(
        &db,
        "INSERT INTO user (email) VALUES ('Ann@example.com'), (NULL);",
    );
    let live = file_hash(&db);

    // On empty databases every revision round-trips.
    let json = test_json(&env, &[], 0);
    assert_eq!(
        steps(&json),
        [pair(USERS, "ok"), pair(HANDLE, "ok"), pair(NOTES, "ok")]
    );

    // On the real rows the backfill's NOT NULL raises; NOTES is not tried.
    let json = test_json(&env, &["--data", AlembicProject::DB], 1);
    assert_eq!(json["source"], AlembicProject::DB);
    assert_eq!(json["stamped"], serde_json::json!([USERS]));
    assert_eq!(steps(&json), [pair(HANDLE, "upgrade-error")]);
    assert_eq!(json["untested"], serde_json::json!([NOTES]));
    assert_eq!(json["failures"], 1);
    let error = json["revisions"][0]["error"]["error"].as_str().unwrap();
    assert!(error.contains("NOT NULL"), "{error}");
    let codes: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["roundtrip.failed"]);
    let user = &json["revisions"][0]["rows"][0];
    assert_eq!(
        (&user["table"], &user["before"], &user["downgraded"]),
        (&"user".into(), &2.into(), &serde_json::Value::Null)
    );

    // The text names the revision and the error.
    let out = env.run(&["test", "--data", AlembicProject::DB]);
    out.expect(1);
    assert!(
        out.stdout
            .contains("on a copy of data/app.db (at rev_users): 2 pending revisions\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("FAILED rev_handle"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "rev_handle fails the round trip on the data of data/app.db; 1 pending revision after it not tested"
        ),
        "{}",
        out.stdout
    );

    // The live database was only read.
    assert_eq!(file_hash(&db), live);
    assert_eq!(version_rows(&db), Some(vec![USERS.to_owned()]));

    // A snapshot of the bad rows fails the same way; once the live rows
    // are fixed, the live file passes, with its rows counted at each step.
    let snapshot = env.run(&["--format", "json", "snapshot", AlembicProject::DB]);
    let id = snapshot.json()["id"].as_str().unwrap().to_owned();
    exec(
        &db,
        "UPDATE user SET email = 'bob@example.com' WHERE email IS NULL;",
    );
    let json = test_json(&env, &["--data", &id[..12]], 1);
    assert_eq!(steps(&json), [pair(HANDLE, "upgrade-error")]);
    let json = test_json(&env, &["--data", AlembicProject::DB], 0);
    assert_eq!(steps(&json), [pair(HANDLE, "ok"), pair(NOTES, "ok")]);
    let user = &json["revisions"][0]["rows"][0];
    assert_eq!(user["table"], "user");
    for state in ["before", "upgraded", "downgraded", "reupgraded"] {
        assert_eq!(user[state], 2, "{state}: {user}");
    }
    assert_eq!(version_rows(&db), Some(vec![USERS.to_owned()]));
}

/// A downgrade that gives back the schema but not the rows (drop and
/// create instead of a batch drop_column) is caught; a pure data step whose
/// downgrade leaves its backfill is not a failure.
#[test]
fn a_downgrade_that_loses_rows_is_caught() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    project.revision(users());
    project.revision(
        Revision::new("rev_lower", "lower emails")
            .down(USERS)
            .upgrade(r#"op.execute("UPDATE user SET email = lower(email)")"#)
            .downgrade("pass"),
    );
    project.revision(
        Revision::new("rev_rebuild", "user name")
            .down("rev_lower")
            .upgrade(
                r#"
                with op.batch_alter_table("user") as batch_op:
                    batch_op.add_column(sa.Column("name", sa.String(), nullable=True))
                "#,
            )
            .downgrade(
                r#"
                op.drop_table("user")
                op.create_table(
                    "user",
                    sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("email", sa.String(), nullable=True),
                )
                "#,
            ),
    );
    project.configure_store(&env, "");
    project.upgrade(USERS).assert_success();
    exec(
        &project.db_path(),
        "INSERT INTO user (email) VALUES ('Ann@example.com'), ('bob@example.com');",
    );
    test_json(&env, &[], 0);
    let json = test_json(&env, &["--data", AlembicProject::DB], 1);
    assert_eq!(
        steps(&json),
        [
            pair("rev_lower", "ok"),
            pair("rev_rebuild", "downgrade-data-differs")
        ]
    );
    assert_eq!(
        json["revisions"][1]["data"],
        serde_json::json!([{"table": "user", "expected_rows": 2, "found_rows": 0, "content_differs": false}])
    );
    assert_eq!(json["findings"][0]["code"], "roundtrip.data-differs");

    // At the heads nothing is pending, and nothing fails.
    project.upgrade("heads").assert_success();
    let out = env.run(&["test", "--data", AlembicProject::DB]);
    out.expect(0);
    assert!(
        out.stdout
            .contains("nothing pending: the database is at the heads\n"),
        "{}",
        out.stdout
    );
}

/// The copy is one committed state read through SQLite: rows that still sit
/// in the WAL of a database the application holds open are in it, and the
/// database file is not written (no checkpoint).
#[test]
fn a_database_in_wal_mode_is_copied_with_its_wal() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    project.revision(users());
    project.revision(handle());
    project.configure_store(&env, "");
    project.upgrade(USERS).assert_success();
    let db = project.db_path();
    // The application: WAL mode, a row committed to the WAL, still open.
    let app = rusqlite::Connection::open(&db).unwrap();
    app.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         INSERT INTO user (email) VALUES ('ann@example.com');",
    )
    .unwrap();
    let live = file_hash(&db);
    let json = test_json(&env, &["--data", AlembicProject::DB], 0);
    assert_eq!(steps(&json), [pair(HANDLE, "ok")]);
    assert_eq!(json["revisions"][0]["rows"][0]["before"], 1, "{json}");
    assert_eq!(file_hash(&db), live);
    drop(app);
}

/// A unique index over duplicate values raises on real rows only; the
/// table the revision created before it is what the failed upgrade left
/// behind, which the report shows (SQLite runs Alembic's DDL outside a
/// transaction).
#[test]
fn a_unique_index_over_duplicates_fails_and_what_it_left_is_shown() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    project.revision(users());
    project.revision(
        Revision::new("rev_unique", "tags, unique emails")
            .down(USERS)
            .upgrade(
                r#"
                op.create_table("tag", sa.Column("id", sa.Integer(), primary_key=True))
                op.create_index("ix_user_email", "user", ["email"], unique=True)
                "#,
            )
            .downgrade(
                r#"
                op.drop_index("ix_user_email", table_name="user")
                op.drop_table("tag")
                "#,
            ),
    );
    project.configure_store(&env, "");
    project.upgrade(USERS).assert_success();
    exec(
        &project.db_path(),
        "INSERT INTO user (email) VALUES ('ann@example.com'), ('ann@example.com');",
    );
    test_json(&env, &[], 0);
    let json = test_json(&env, &["--data", AlembicProject::DB], 1);
    assert_eq!(steps(&json), [pair("rev_unique", "upgrade-error")]);
    let error = json["revisions"][0]["error"]["error"].as_str().unwrap();
    assert!(error.contains("UNIQUE constraint failed"), "{error}");
    let left: Vec<_> = json["revisions"][0]["left"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} {}", c["op"], c["kind"], c["name"]))
        .collect();
    assert_eq!(left, [r#""added" "table" "tag""#]);
    let out = env.run(&["test", "--data", AlembicProject::DB]);
    out.expect(1);
    let text = &out.stdout;
    let at = text.find("    the failed upgrade left:\n").expect(text);
    assert!(text[at..].contains("tag"), "{text}");
}
