//! `migsnap lint` on real Alembic projects replayed by real Alembic: every
//! rule with a revision that triggers it and one that does not, `--since`,
//! `--base` against a real git repository, `--fail-on`, severity overrides
//! and a revision file edited after a snapshot recorded it as applied.
//!
//! Each replay starts Python once (about a second), so one project carries
//! the triggers of several rules.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::common::TestEnv;
use crate::common::alembic::{AlembicProject, Revision};

const USERS: &str = "a1a1a1a1a1a1";
const NOTES: &str = "b2b2b2b2b2b2";
const CHAT_TAGS: &str = "c3c3c3c3c3c3";
const SLIM_USER: &str = "d4d4d4d4d4d4";

/// A store beside `project`, told which Python has its Alembic; `lint` is
/// the body of `[migrations.lint]`.
fn setup(env: &TestEnv, project: &AlembicProject, lint: &str) {
    project.configure_store(
        env,
        &format!(
            "
[migrations.lint]
{lint}"
        ),
    );
}

/// `lint ARGS --format json`: exit status and the document.
fn lint(env: &TestEnv, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["--format", "json", "lint"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    assert!(out.status == 0 || out.status == 1, "{out:?}");
    (out.status, out.json())
}

/// (code, revision, object) of every finding.
fn findings(json: &serde_json::Value) -> BTreeSet<(String, String, String)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["revision"].as_str().unwrap_or("-").to_owned(),
                f["object"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn finding(code: &str, revision: &str, object: &str) -> (String, String, String) {
    (code.to_owned(), revision.to_owned(), object.to_owned())
}

/// Users and chats, then three new revisions: notes (a cross-feature,
/// unnamed foreign key, an INTEGER id, no downgrade), chat tags (named
/// constraints in the chat feature: clean) and a slimmer user table
/// (altered, a column dropped and one narrowed, a downgrade that raises).
fn feature_project(env: &TestEnv) -> Option<AlembicProject> {
    let mut p = AlembicProject::new(env)?;
    p.revision(
        Revision::new(USERS, "users and chats")
            .upgrade(
                r#"
                op.create_table(
                    "user",
                    sa.Column("id", sa.String(36), primary_key=True),
                    sa.Column("name", sa.Text()),
                    sa.Column("bio", sa.Text()),
                )
                op.create_table(
                    "chat",
                    sa.Column("id", sa.String(36), primary_key=True),
                    sa.Column("user_id", sa.String(36)),
                    sa.ForeignKeyConstraint(["user_id"], ["user.id"], name="fk_chat_user"),
                )
                "#,
            )
            .downgrade(
                r#"
                op.drop_table("chat")
                op.drop_table("user")
                "#,
            ),
    );
    p.revision(Revision::new(NOTES, "notes").down(USERS).upgrade(
        r#"
            op.create_table(
                "note",
                sa.Column("id", sa.Integer(), primary_key=True),
                sa.Column("user_id", sa.String(36), sa.ForeignKey("user.id")),
                sa.Column("slug", sa.String(40), unique=True),
            )
            "#,
    ));
    p.revision(
        Revision::new(CHAT_TAGS, "chat tags")
            .down(NOTES)
            .upgrade(
                r#"
                op.create_table(
                    "chat_tag",
                    sa.Column("id", sa.String(36), primary_key=True),
                    sa.Column("chat_id", sa.String(36)),
                    sa.Column("name", sa.String(40)),
                    sa.ForeignKeyConstraint(["chat_id"], ["chat.id"], name="fk_chat_tag_chat"),
                    sa.UniqueConstraint("chat_id", "name", name="uq_chat_tag_name"),
                    sa.CheckConstraint("length(name) > 0", name="ck_chat_tag_name"),
                )
                "#,
            )
            .downgrade(r#"op.drop_table("chat_tag")"#),
    );
    p.revision(
        Revision::new(SLIM_USER, "slim user")
            .down(CHAT_TAGS)
            .upgrade(
                r#"
                with op.batch_alter_table("user") as batch_op:
                    batch_op.drop_column("bio")
                    batch_op.alter_column("name", type_=sa.String(20))
                    batch_op.add_column(sa.Column("email", sa.Text()))
                "#,
            )
            .downgrade(r#"raise NotImplementedError("one way")"#),
    );
    Some(p)
}

#[test]
fn lint_judges_what_new_revisions_do_to_the_schema() {
    let env = TestEnv::new();
    let Some(project) = feature_project(&env) else {
        return;
    };
    setup(&env, &project, "");

    let (status, json) = lint(&env, &["--since", USERS]);
    assert_eq!(status, 1, "destructive is an error: {json:#}");
    assert_eq!(
        json["revisions_checked"],
        serde_json::json!([NOTES, CHAT_TAGS, SLIM_USER])
    );
    let expected: BTreeSet<_> = [
        finding("lint.cross-feature-fk", NOTES, "note(user_id)"),
        finding("lint.inconsistent-id-type", NOTES, "note.id"),
        finding("lint.unnamed-constraint", NOTES, "note"),
        finding("lint.irreversible-downgrade", NOTES, NOTES),
        finding("lint.alters-existing-table", SLIM_USER, "user"),
        finding("lint.destructive", SLIM_USER, "user.bio"),
        finding("lint.destructive", SLIM_USER, "user.name"),
        finding("lint.irreversible-downgrade", SLIM_USER, SLIM_USER),
    ]
    .into();
    assert_eq!(findings(&json), expected, "{json:#}");
    // Two unnamed constraints on note: the foreign key and the UNIQUE.
    let unnamed = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "lint.unnamed-constraint")
        .count();
    assert_eq!(unnamed, 2, "{json:#}");
    assert_eq!(
        json["counts"],
        serde_json::json!({"error": 2, "warning": 7, "info": 0})
    );
    let notes = &json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "lint.cross-feature-fk")
        .unwrap();
    assert_eq!(
        notes["file"].as_str().map(std::path::Path::new),
        Some(
            env.join("migrations/versions/b2b2b2b2b2b2_notes.py")
                .as_path()
        ),
        "paths in JSON are absolute"
    );
    assert!(notes["hint"].as_str().is_some_and(|h| !h.is_empty()));

    // Cached references: text output, one line per finding, no Python.
    let out = env.run(&["lint", "--since", CHAT_TAGS]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(!out.stderr.contains("replaying"), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.contains(&"error lint.destructive d4d4d4d4d4d4 migrations/versions/d4d4d4d4d4d4_slim_user.py user.bio: drops column user.bio (hint: data can be lost; deprecate first and drop in a later release, or widen instead)"),
        "{}",
        out.stdout
    );
    assert_eq!(
        lines.last(),
        Some(&"1 revision checked: 2 error, 2 warning, 0 info")
    );

    // Severity overrides: destructive becomes a warning, unnamed constraints
    // are off; the default threshold then passes and --fail-on warning fails.
    setup(
        &env,
        &project,
        "severity = { \"lint.destructive\" = \"warning\", \"lint.unnamed-constraint\" = \"off\" }\n",
    );
    let (status, json) = lint(&env, &["--since", USERS]);
    assert_eq!(status, 0, "{json:#}");
    assert!(
        !findings(&json)
            .iter()
            .any(|(code, _, _)| code == "lint.unnamed-constraint")
    );
    assert_eq!(
        json["counts"],
        serde_json::json!({"error": 0, "warning": 7, "info": 0})
    );
    let (status, _) = lint(&env, &["--since", USERS, "--fail-on", "warning"]);
    assert_eq!(status, 1);

    // Configured features: note belongs with user, so its key is in-feature.
    setup(
        &env,
        &project,
        "features = { accounts = [\"user\", \"note*\"] }\n",
    );
    let (_, json) = lint(&env, &["--since", USERS]);
    assert!(
        !findings(&json)
            .iter()
            .any(|(code, _, _)| code == "lint.cross-feature-fk"),
        "{json:#}"
    );

    // A misspelt code and an unknown revision are bad input.
    setup(
        &env,
        &project,
        "severity = { \"lint.destrutive\" = \"off\" }\n",
    );
    env.run(&["lint"])
        .expect_error(3, &["unknown code 'lint.destrutive'"]);
    setup(&env, &project, "");
    env.run(&["lint", "--since", "nope"])
        .expect_error(3, &["nope"]);
}

/// `git -C dir ARGS`, which must succeed; git is required, not optional.
#[track_caller]
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=lint test",
            "-c",
            "user.email=lint@example.com",
        ])
        .args(args)
        .output()
        .expect("this test needs `git` on PATH");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lint_base_reviews_files_added_since_a_git_commit() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    let create = |table: &str| {
        format!("op.create_table(\"{table}\", sa.Column(\"id\", sa.String(36), primary_key=True))")
    };
    let drop = |table: &str| format!("op.drop_table(\"{table}\")");
    project.revision(
        Revision::new("e1e1e1e1e1e1", "one")
            .upgrade(&create("one"))
            .downgrade(&drop("one")),
    );
    project.revision(
        Revision::new("e2e2e2e2e2e2", "two")
            .down("e1e1e1e1e1e1")
            .upgrade(&create("two"))
            .downgrade(&drop("two")),
    );
    setup(&env, &project, "");
    git(env.path(), &["init", "-q"]);
    git(env.path(), &["add", "alembic.ini", "migrations"]);
    git(env.path(), &["commit", "-q", "-m", "base"]);

    // On the head, not yet committed: new, and clean.
    project.revision(
        Revision::new("e3e3e3e3e3e3", "three")
            .down("e2e2e2e2e2e2")
            .upgrade(&create("three"))
            .downgrade(&drop("three")),
    );
    let (status, json) = lint(&env, &["--base", "HEAD", "--fail-on", "warning"]);
    assert_eq!(status, 0, "{json:#}");
    assert_eq!(
        json["revisions_checked"],
        serde_json::json!(["e3e3e3e3e3e3"])
    );
    assert_eq!(json["findings"], serde_json::json!([]));

    // Below the base's head: a branch, and two heads.
    project.revision(
        Revision::new("e4e4e4e4e4e4", "four")
            .down("e1e1e1e1e1e1")
            .upgrade(&create("four"))
            .downgrade(&drop("four")),
    );
    let (status, json) = lint(&env, &["--base", "HEAD"]);
    assert_eq!(status, 1, "multiple heads is an error: {json:#}");
    assert_eq!(
        json["revisions_checked"],
        serde_json::json!(["e3e3e3e3e3e3", "e4e4e4e4e4e4"])
    );
    let expected: BTreeSet<_> = [
        finding("lint.multiple-heads", "-", "e3e3e3e3e3e3, e4e4e4e4e4e4"),
        finding("lint.parent-not-head", "e4e4e4e4e4e4", "e4e4e4e4e4e4"),
    ]
    .into();
    assert_eq!(findings(&json), expected, "{json:#}");
    let parent = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "lint.parent-not-head")
        .unwrap();
    assert!(
        parent["message"]
            .as_str()
            .unwrap()
            .contains("e1e1e1e1e1e1 is not a head of the base (heads: e2e2e2e2e2e2)"),
        "{parent}"
    );

    env.run(&["lint", "--base", "no-such-ref"])
        .expect_error(3, &["--base no-such-ref: no such commit"]);
}

#[test]
fn lint_names_a_file_edited_after_a_snapshot_recorded_it_as_applied() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    let path = project.revision(
        Revision::new("f1f1f1f1f1f1", "one")
            .upgrade(r#"op.create_table("one", sa.Column("id", sa.Integer(), primary_key=True))"#)
            .downgrade(r#"op.drop_table("one")"#),
    );
    project.upgrade("head").ok();
    setup(&env, &project, "");
    let db = project.db_path();
    let snapshot = env.snapshot(&[db.to_str().unwrap()]);

    // `--since head`: nothing new, so no replay; the rule covers every
    // revision regardless.
    let (status, json) = lint(&env, &["--since", "head"]);
    assert_eq!((status, &json["findings"]), (0, &serde_json::json!([])));

    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n# tidied up after it ran\n");
    std::fs::write(&path, text).unwrap();
    let (status, json) = lint(&env, &["--since", "head"]);
    assert_eq!(status, 1, "{json:#}");
    assert_eq!(
        findings(&json),
        [finding(
            "lint.edited-after-applied",
            "f1f1f1f1f1f1",
            "f1f1f1f1f1f1"
        )]
        .into()
    );
    let message = json["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains("f1f1f1f1f1f1_one.py"), "{message}");
    assert!(message.contains(&snapshot[..12]), "{message}");
}
