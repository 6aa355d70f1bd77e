//! `migsnap test`: the up/down/up round trip of every revision, on real
//! Alembic projects run by real Alembic and on SQL folders.

use insta::assert_snapshot;

use crate::common::TestEnv;
use crate::common::alembic::{AlembicProject, Revision, chat_app};

/// A store beside `project`, told which Python has its Alembic.
fn setup(env: &TestEnv, project: &AlembicProject) {
    project.configure_store(env, "");
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
            assert_eq!(r["ok"], step == "ok", "{r}");
            (r["revision"].as_str().unwrap().to_owned(), step.to_owned())
        })
        .collect()
}

fn pair(revision: &str, step: &str) -> (String, String) {
    (revision.to_owned(), step.to_owned())
}

/// Ids that the output redaction (12 hex digits) leaves alone.
const USERS: &str = "rev_users";
const EMAIL_INDEX: &str = "rev_email_ix";
const NOTES: &str = "rev_notes";
const SIDE: &str = "rev_side";

/// `user`, then an index on `user.email` (whose downgrade is `downgrade`),
/// then a `note` table with a column added in batch mode.
fn linear(project: &mut AlembicProject, email_index_downgrade: &str) {
    project.revision(
        Revision::new(USERS, "users")
            .upgrade(
                r#"
                op.create_table(
                    "user",
                    sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("email", sa.String(), nullable=False),
                )
                "#,
            )
            .downgrade(r#"op.drop_table("user")"#),
    );
    project.revision(
        Revision::new(EMAIL_INDEX, "index user email")
            .down(USERS)
            .upgrade(r#"op.create_index("ix_user_email", "user", ["email"])"#)
            .downgrade(email_index_downgrade),
    );
    project.revision(
        Revision::new(NOTES, "notes")
            .down(EMAIL_INDEX)
            .upgrade(
                r#"
                op.create_table("note", sa.Column("id", sa.Integer(), primary_key=True))
                with op.batch_alter_table("note") as batch_op:
                    batch_op.add_column(sa.Column("body", sa.Text(), nullable=True))
                "#,
            )
            .downgrade(r#"op.drop_table("note")"#),
    );
}

#[test]
fn a_clean_linear_history_round_trips() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    linear(
        &mut project,
        r#"op.drop_index("ix_user_email", table_name="user")"#,
    );
    // A second base that depends on the first: `SIDE-1` would resolve to
    // `base` and undo USERS too; `SIDE@-1` removes SIDE alone.
    project.revision(
        Revision::new(SIDE, "side")
            .depends_on(USERS)
            .upgrade(r#"op.create_table("side", sa.Column("id", sa.Integer(), primary_key=True))"#)
            .downgrade(r#"op.drop_table("side")"#),
    );
    setup(&env, &project);
    let json = test_json(&env, &[], 0);
    assert_eq!(
        steps(&json),
        [
            pair(USERS, "ok"),
            pair(EMAIL_INDEX, "ok"),
            pair(NOTES, "ok"),
            pair(SIDE, "ok")
        ]
    );
    assert_eq!(json["failures"], 0);

    // --since leaves out what upgrading to REV applies; the first revision
    // tested starts from a state the run did not make (the reference, when
    // replayed, else an upgrade from empty).
    env.run(&["replay"]).assert_success();
    let json = test_json(&env, &["--since", USERS], 0);
    assert_eq!(
        steps(&json),
        [pair(EMAIL_INDEX, "ok"), pair(NOTES, "ok"), pair(SIDE, "ok")]
    );
    let json = test_json(&env, &["--since", "heads"], 0);
    assert_eq!(steps(&json), []);
    env.run(&["test", "--since", "nope"])
        .expect_error(3, &["--since", "nope"]);
}

/// The case the round trip exists for: the downgrade forgets to drop the
/// index its upgrade created, which "the steps run" never notices.
#[test]
fn a_downgrade_that_forgets_an_index_is_caught() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    linear(&mut project, "pass");
    setup(&env, &project);
    let json = test_json(&env, &[], 1);
    // Later revisions are still tested, from the state after the bad one's
    // upgrade.
    assert_eq!(
        steps(&json),
        [
            pair(USERS, "ok"),
            pair(EMAIL_INDEX, "downgrade-differs"),
            pair(NOTES, "ok")
        ]
    );
    assert_eq!(json["failures"], 1);
    let failed = &json["revisions"][1];
    assert!(
        failed["file"]
            .as_str()
            .unwrap()
            .ends_with("rev_email_ix_index_user_email.py"),
        "{failed}"
    );
    let change = &failed["difference"]["changes"][0];
    assert_eq!(
        (
            &change["op"],
            &change["kind"],
            &change["table"],
            &change["name"]
        ),
        (
            &"added".into(),
            &"index".into(),
            &"user".into(),
            &"ix_user_email".into()
        ),
        "{failed}"
    );
    assert_eq!(failed["difference"]["changes"].as_array().unwrap().len(), 1);

    let out = env.run(&["test"]);
    out.expect(1);
    assert_snapshot!(out.stdout, @r"
    ok     rev_users      migrations/versions/rev_users_users.py
    FAILED rev_email_ix   migrations/versions/rev_email_ix_index_user_email.py: downgrade-differs
        extra index ix_user_email on user
    ok     rev_notes      migrations/versions/rev_notes_notes.py
    1 of 3 revisions fail the round trip; the first is rev_email_ix
    FAIL: 1 error (fail on error)
    ");
}

#[test]
fn a_downgrade_that_raises_is_reported_with_its_error() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    linear(
        &mut project,
        r#"raise RuntimeError("cannot undo the email index")"#,
    );
    setup(&env, &project);
    let json = test_json(&env, &[], 1);
    assert_eq!(steps(&json)[1], pair(EMAIL_INDEX, "downgrade-error"));
    let error = &json["revisions"][1]["error"];
    assert_eq!(
        error["error"], "RuntimeError: cannot undo the email index",
        "{error}"
    );
    assert!(
        error["file"]
            .as_str()
            .unwrap()
            .ends_with("rev_email_ix_index_user_email.py")
    );
    assert!(error["detail"].as_str().unwrap().contains("Traceback"));
    let text = env.run(&["test"]).stdout;
    assert!(
        text.contains("downgrade-error\n    RuntimeError: cannot undo the email index\n"),
        "{text}"
    );
}

/// Branches, a merge, `depends_on` and batch rebuilds: each shape needs its
/// own downgrade target to remove exactly one revision.
#[test]
fn a_history_with_branches_a_merge_and_depends_on_round_trips() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    setup(&env, &project);
    let json = test_json(&env, &[], 0);
    let expected: Vec<_> = chat_app::ALL.iter().map(|r| pair(r, "ok")).collect();
    assert_eq!(steps(&json), expected);
}

#[test]
fn sql_folders_round_trip_through_their_down_files() {
    let env = TestEnv::with_store();
    let sql = env.join("sql");
    std::fs::create_dir(&sql).unwrap();
    let write = |name: &str, text: &str| std::fs::write(sql.join(name), text).unwrap();
    write(
        "0001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    );
    write("0001_users.down.sql", "DROP TABLE users;");
    std::fs::create_dir(sql.join("0002_posts")).unwrap();
    write(
        "0002_posts/up.sql",
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id));\
         CREATE INDEX posts_user ON posts(user_id);",
    );
    // Wrong: leaves the table behind.
    write("0002_posts/down.sql", "DROP INDEX posts_user;");
    write(
        "0003_tags.sql",
        "CREATE TABLE tags (name TEXT PRIMARY KEY);",
    );
    std::fs::write(
        env.join("migsnap.toml"),
        "[migrations]\nkind = \"sql\"\ndir = \"sql\"\n",
    )
    .unwrap();
    let json = test_json(&env, &[], 1);
    assert_eq!(
        steps(&json),
        [
            pair("0001", "ok"),
            pair("0002", "downgrade-differs"),
            pair("0003", "downgrade-error")
        ]
    );
    let left: Vec<_> = json["revisions"][1]["difference"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} {}", c["op"], c["kind"], c["name"]))
        .collect();
    assert_eq!(left, [r#""added" "table" "posts""#]);
    assert_eq!(
        json["revisions"][2]["error"]["error"],
        "no down.sql for migration 0003"
    );
}

/// A revision written against an old `down_revision` starts a second head.
/// Its own steps pass, and so did the round trip before, but on a database
/// holding both lines real `alembic downgrade -1` undoes the other line's
/// head: it fails as `second-head`, on empty databases (both unmerged
/// lines) and on real data (the one the database has not applied).
#[test]
fn a_revision_that_starts_a_second_head_fails() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    linear(
        &mut project,
        r#"op.drop_index("ix_user_email", table_name="user")"#,
    );
    const LATE: &str = "rev_late";
    project.revision(
        Revision::new(LATE, "late")
            .down(EMAIL_INDEX)
            .upgrade(r#"op.create_table("late", sa.Column("id", sa.Integer(), primary_key=True))"#)
            .downgrade(r#"op.drop_table("late")"#),
    );
    setup(&env, &project);
    let json = test_json(&env, &[], 1);
    let mut found = steps(&json);
    found.sort();
    assert_eq!(
        found,
        [
            pair(EMAIL_INDEX, "ok"),
            pair(LATE, "second-head"),
            pair(NOTES, "second-head"),
            pair(USERS, "ok"),
        ]
    );
    let codes: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["roundtrip.second-head", "roundtrip.second-head"]);

    // The database is at NOTES; LATE is what it has pending.
    project.upgrade(NOTES).assert_success();
    let json = test_json(&env, &["--data", AlembicProject::DB], 1);
    assert_eq!(steps(&json), [pair(LATE, "second-head")]);
    let error = json["revisions"][0]["error"]["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "its down_revision rev_email_ix is not where the database stands (rev_notes)"
        ),
        "{error}"
    );

    // Why: real Alembic, upgraded to LATE, undoes NOTES on `downgrade -1`.
    project.upgrade(LATE).assert_success();
    project.downgrade("-1").assert_success();
    assert_eq!(project.version_rows(), Some(vec![LATE.to_owned()]));
}
