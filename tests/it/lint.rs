//! `migsnap lint` on real Alembic projects replayed by real Alembic: every
//! rule with a revision that triggers it and one that does not, `--since`,
//! `--base` against a real git repository, `--fail-on`, severity overrides
//! and a revision file edited after a snapshot recorded it as applied.
//!
//! Each replay starts Python once (about a second), so one project carries
//! the triggers of several rules.

use std::collections::BTreeSet;

use crate::common::alembic::{AlembicProject, Revision};
use crate::common::{TestEnv, git};

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

/// A store and a `migsnap.toml` whose `[findings]` table is `findings`.
fn setup_findings(env: &TestEnv, project: &AlembicProject, findings: &str) {
    project.configure_store(env, &format!("\n[findings]\n{findings}"));
}

/// `lint ARGS --format json`, which must exit `code`: the document.
fn lint(env: &TestEnv, args: &[&str], code: i32) -> serde_json::Value {
    let mut all = vec!["--format", "json", "lint"];
    all.extend_from_slice(args);
    env.run(&all).expect(code).json()
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

    // Destructive is an error.
    let json = lint(&env, &["--since", USERS], 1);
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
    // The guide's rules are errors by default: altering an existing table,
    // and a foreign key across features.
    assert_eq!(
        json["counts"],
        serde_json::json!({"error": 4, "warning": 5, "info": 0})
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

    // Cached references: text output, one line per finding, no Python
    // (an interpreter that cannot run would fail a replay).
    std::fs::write(
        env.join("migsnap.toml"),
        "[migrations]\npython = \"/bin/false\"\n",
    )
    .unwrap();
    let out = env.run(&["lint", "--since", CHAT_TAGS]);
    assert_eq!(out.status, 1, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.contains(&"error lint.destructive migrations/versions/d4d4d4d4d4d4_slim_user.py: drops column user.bio (hint: data can be lost; deprecate first and drop in a later release, or widen instead)"),
        "{}",
        out.stdout
    );
    assert_eq!(
        lines[lines.len() - 2..],
        [
            "1 revision checked",
            "FAIL: 3 errors, 1 warning (fail on error)"
        ]
    );

    // Severity overrides: the errors become warnings, unnamed constraints
    // are off; the default threshold then passes and --fail-on warning fails.
    setup_findings(
        &env,
        &project,
        "severity = { \"lint.destructive\" = \"warning\", \"lint.alters-existing-table\" = \"warning\", \"lint.cross-feature-fk\" = \"warning\", \"lint.unnamed-constraint\" = \"off\" }\n",
    );
    let json = lint(&env, &["--since", USERS], 0);
    assert!(
        !findings(&json)
            .iter()
            .any(|(code, _, _)| code == "lint.unnamed-constraint")
    );
    assert_eq!(
        json["counts"],
        serde_json::json!({"error": 0, "warning": 7, "info": 0})
    );
    lint(&env, &["--since", USERS, "--fail-on", "warning"], 1);

    // Configured features: note belongs with user, so its key is in-feature.
    setup(
        &env,
        &project,
        "features = { accounts = [\"user\", \"note*\"] }\n",
    );
    let json = lint(&env, &["--since", USERS], 1);
    assert!(
        !findings(&json)
            .iter()
            .any(|(code, _, _)| code == "lint.cross-feature-fk"),
        "{json:#}"
    );

    // A misspelt code and an unknown revision are bad input.
    setup_findings(
        &env,
        &project,
        "severity = { \"lint.destrutive\" = \"off\" }\n",
    );
    env.run(&["lint"])
        .expect_error(3, &["unknown finding code 'lint.destrutive'"]);
    setup(&env, &project, "");
    env.run(&["lint", "--since", "nope"])
        .expect_error(3, &["nope"]);
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
    let json = lint(&env, &["--base", "HEAD", "--fail-on", "warning"], 0);
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
    // Multiple heads is an error.
    let json = lint(&env, &["--base", "HEAD"], 1);
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
    // The two-heads hint follows the guide: fork point, branches, how far
    // behind each is, whether they touch the same tables, re-point the
    // newer one; merge only what has shipped.
    let heads = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "lint.multiple-heads")
        .unwrap();
    assert_eq!(heads["severity"], "error");
    let hint = heads["hint"].as_str().unwrap();
    for needle in [
        "fork point e1e1e1e1e1e1_one.py",
        "branch to e3e3e3e3e3e3: e2e2e2e2e2e2_two.py, e3e3e3e3e3e3_three.py (2 revisions since the fork; 1 revision behind the other head)",
        "branch to e4e4e4e4e4e4: e4e4e4e4e4e4_four.py (1 revision since the fork; 2 revisions behind the other head)",
        "the branches touch different tables (e3e3e3e3e3e3: three, two; e4e4e4e4e4e4: four), so re-pointing is safe",
        "re-point the down_revision of e4e4e4e4e4e4_four.py (the newer branch, by file time) at e3e3e3e3e3e3",
        "only when both branches have already shipped",
    ] {
        assert!(hint.contains(needle), "{needle:?} not in {hint}");
    }
    assert!(!hint.contains("merge heads"), "{hint}");

    env.run(&["lint", "--base", "no-such-ref"])
        .expect_error(3, &["no-such-ref: no such commit"]);
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
    project.upgrade("head").assert_success();
    setup(&env, &project, "");
    let db = project.db_path();
    let snapshot = env.snapshot(&[db.to_str().unwrap()]);

    // `--since head`: nothing new, so no replay; the rule covers every
    // revision regardless.
    let json = lint(&env, &["--since", "head"], 0);
    assert_eq!(json["findings"], serde_json::json!([]));

    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n# tidied up after it ran\n");
    std::fs::write(&path, text).unwrap();
    let json = lint(&env, &["--since", "head"], 1);
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
    assert!(message.contains(&snapshot[..12]), "{message}");
    assert!(
        json["findings"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("/migrations/versions/f1f1f1f1f1f1_one.py"),
        "JSON paths are absolute: {json:#}"
    );
    // `head` meant the tracked database's stamped revision.
    assert_eq!(json["since"]["after"], serde_json::json!(["f1f1f1f1f1f1"]));
    assert!(json["since"]["database"].is_string(), "{json:#}");
}

/// `op.create_table` of a feature table with a `sa.String()` id.
fn feature_table(table: &str, extra: &str) -> String {
    format!("op.create_table(\"{table}\", sa.Column(\"id\", sa.String(), primary_key=True){extra})")
}

/// An app whose ids are `sa.String()` (VARCHAR) and TEXT, as Open WebUI's
/// are, then a feature that follows the guide's id type but adds a foreign
/// key to chat.id, and one that adds a column to user.
fn guide_project(env: &TestEnv) -> Option<AlembicProject> {
    let mut p = AlembicProject::new(env)?;
    p.revision(
        Revision::new("g1g1g1g1g1g1", "app")
            .upgrade(&format!(
                "{}\n{}\n{}",
                feature_table("user", ""),
                feature_table("chat", ""),
                "op.create_table(\"auth\", sa.Column(\"id\", sa.Text(), primary_key=True))",
            ))
            .downgrade("op.drop_table(\"auth\")\nop.drop_table(\"chat\")\nop.drop_table(\"user\")"),
    );
    p.revision(
        Revision::new("g2g2g2g2g2g2", "notes")
            .down("g1g1g1g1g1g1")
            .upgrade(&feature_table(
                "note",
                ", sa.Column(\"chat_id\", sa.String()), sa.ForeignKeyConstraint([\"chat_id\"], [\"chat.id\"], name=\"fk_note_chat\")",
            ))
            .downgrade("op.drop_table(\"note\")"),
    );
    p.revision(
        Revision::new("g3g3g3g3g3g3", "scim")
            .down("g2g2g2g2g2g2")
            .upgrade("op.add_column(\"user\", sa.Column(\"scim\", sa.JSON()))")
            .downgrade("op.drop_column(\"user\", \"scim\")"),
    );
    Some(p)
}

#[test]
fn lint_fails_by_default_on_what_the_guide_forbids_and_accepts_string_ids() {
    let env = TestEnv::new();
    let Some(project) = guide_project(&env) else {
        return;
    };
    setup(&env, &project, "");
    let json = lint(&env, &["--since", "g1g1g1g1g1g1"], 1);
    // sa.String() ids beside VARCHAR and TEXT ones: no id-type finding.
    let expected: BTreeSet<_> = [
        finding("lint.cross-feature-fk", "g2g2g2g2g2g2", "note(chat_id)"),
        finding("lint.alters-existing-table", "g3g3g3g3g3g3", "user"),
    ]
    .into();
    assert_eq!(findings(&json), expected, "{json:#}");
    assert!(
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "error"),
        "{json:#}"
    );

    // Each on its own fails; "1 revision", and the revision named once.
    let out = env.run(&["lint", "--since", "g2g2g2g2g2g2"]);
    assert_eq!(out.status, 1, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "error lint.alters-existing-table migrations/versions/g3g3g3g3g3g3_scim.py: alters existing table user: added column scim (hint: a feature creates its own tables; put the new data in a table of its own that references this one)",
            "1 revision checked",
            "FAIL: 1 error (fail on error)",
        ]
    );

    // A project relaxes the guide in migsnap.toml.
    setup_findings(
        &env,
        &project,
        "severity = { \"lint.alters-existing-table\" = \"warning\", \"lint.cross-feature-fk\" = \"off\" }\n",
    );
    let json = lint(&env, &["--since", "g1g1g1g1g1g1"], 0);
    assert_eq!(
        json["counts"],
        serde_json::json!({"error": 0, "warning": 1, "info": 0})
    );
}

/// e1 ── e2 ── e3 on one branch, e4 on another from e1.
fn forked_project(env: &TestEnv) -> Option<AlembicProject> {
    let mut p = AlembicProject::new(env)?;
    let create = |table: &str| {
        format!("op.create_table(\"{table}\", sa.Column(\"id\", sa.String(36), primary_key=True))")
    };
    let drop = |table: &str| format!("op.drop_table(\"{table}\")");
    for (id, message, down) in [
        ("e1e1e1e1e1e1", "one", None),
        ("e2e2e2e2e2e2", "two", Some("e1e1e1e1e1e1")),
        ("e3e3e3e3e3e3", "three", Some("e2e2e2e2e2e2")),
        ("e4e4e4e4e4e4", "four", Some("e1e1e1e1e1e1")),
    ] {
        let mut revision = Revision::new(id, message)
            .upgrade(&create(message))
            .downgrade(&drop(message));
        if let Some(down) = down {
            revision = revision.down(down);
        }
        p.revision(revision);
    }
    Some(p)
}

#[test]
fn history_graph_draws_two_branches_in_two_lanes_and_two_heads_are_an_error() {
    let env = TestEnv::new();
    let Some(project) = forked_project(&env) else {
        return;
    };
    setup(&env, &project, "");
    let out = env.run(&["history", "--graph"]);
    assert_eq!(out.status, 1, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("* ")).unwrap();
    assert_eq!(
        lines[start..start + 9],
        [
            "* e1e1e1e1e1e1 -> e4e4e4e4e4e4 (head)  four",
            "|  migrations/versions/e4e4e4e4e4e4_four.py",
            "| * e2e2e2e2e2e2 -> e3e3e3e3e3e3 (head)  three",
            "| |  migrations/versions/e3e3e3e3e3e3_three.py",
            "| * e1e1e1e1e1e1 -> e2e2e2e2e2e2  two",
            "| |  migrations/versions/e2e2e2e2e2e2_two.py",
            "|/",
            "* <base> -> e1e1e1e1e1e1 (base, branchpoint)  one",
            "   migrations/versions/e1e1e1e1e1e1_one.py",
        ],
        "{}",
        out.stdout
    );
    let error = lines
        .iter()
        .find(|l| l.contains("history.multiple-heads"))
        .unwrap();
    assert!(error.starts_with("error: "), "{error}");
    assert!(error.contains("fork point e1e1e1e1e1e1_one.py"), "{error}");

    // A first review of everything: the two heads, and no "adds a head"
    // against an empty base.
    let json = lint(&env, &[], 1);
    assert_eq!(
        findings(&json),
        [finding(
            "lint.multiple-heads",
            "-",
            "e3e3e3e3e3e3, e4e4e4e4e4e4"
        )]
        .into(),
        "{json:#}"
    );
}

#[test]
fn lint_since_head_means_the_stamped_revision_and_refuses_a_new_head() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    project.revision(
        Revision::new("h1h1h1h1h1h1", "one")
            .upgrade(&feature_table("one", ""))
            .downgrade("op.drop_table(\"one\")"),
    );
    project.revision(
        Revision::new("h2h2h2h2h2h2", "two")
            .down("h1h1h1h1h1h1")
            .upgrade(&feature_table("two", ""))
            .downgrade("op.drop_table(\"two\")"),
    );
    setup(&env, &project, "");

    // No database, no snapshot, no git: head is the file just added.
    env.run(&["lint", "--since", "head"]).expect_error(
        3,
        &[
            "'head' is head h2h2h2h2h2h2",
            "is itself new",
            "nothing after it would be checked",
        ],
    );
    // An explicit revision is "after it in the graph".
    let json = lint(&env, &["--since", "h1h1h1h1h1h1"], 0);
    assert_eq!(
        json["revisions_checked"],
        serde_json::json!(["h2h2h2h2h2h2"])
    );

    // The database Alembic would upgrade (sqlalchemy.url) is at h1: head
    // means that.
    project.upgrade("h1h1h1h1h1h1").expect(0);
    let json = lint(&env, &["--since", "head"], 0);
    assert_eq!(
        json["revisions_checked"],
        serde_json::json!(["h2h2h2h2h2h2"])
    );
    assert_eq!(json["since"]["after"], serde_json::json!(["h1h1h1h1h1h1"]));
    let out = env.run(&["lint", "--since", "head"]);
    assert!(
        out.stdout
            .contains("since head: after h1h1h1h1h1h1 (stamped in data/app.db)"),
        "{}",
        out.stdout
    );

    // Without a database, a committed head is not new: nothing after it.
    std::fs::remove_file(project.db_path()).unwrap();
    git(env.path(), &["init", "-q"]);
    git(env.path(), &["add", "alembic.ini", "migrations"]);
    git(env.path(), &["commit", "-q", "-m", "base"]);
    let json = lint(&env, &["--since", "head"], 0);
    assert_eq!(json["revisions_checked"], serde_json::json!([]));
}

#[test]
fn lint_staged_reviews_the_revision_files_in_the_git_index() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    project.revision(
        Revision::new("s1s1s1s1s1s1", "one")
            .upgrade(&feature_table("one", ""))
            .downgrade("op.drop_table(\"one\")"),
    );
    setup(&env, &project, "");
    env.run(&["lint", "--staged"])
        .expect_error(3, &["is not in a git repository"]);

    git(env.path(), &["init", "-q"]);
    git(env.path(), &["add", "alembic.ini", "migrations"]);
    git(env.path(), &["commit", "-q", "-m", "base"]);
    let staged = project.revision(
        Revision::new("s2s2s2s2s2s2", "two")
            .down("s1s1s1s1s1s1")
            .upgrade("op.add_column(\"one\", sa.Column(\"extra\", sa.Text()))")
            .downgrade("op.drop_column(\"one\", \"extra\")"),
    );
    git(env.path(), &["add", staged.to_str().unwrap()]);
    // Written but not staged: not reviewed.
    project.revision(
        Revision::new("s3s3s3s3s3s3", "three")
            .down("s2s2s2s2s2s2")
            .upgrade(&feature_table("three", ""))
            .downgrade("op.drop_table(\"three\")"),
    );
    // An altered table is an error.
    let json = lint(&env, &["--staged"], 1);
    assert_eq!(
        json["revisions_checked"],
        serde_json::json!(["s2s2s2s2s2s2"])
    );
    assert_eq!(
        findings(&json),
        [finding("lint.alters-existing-table", "s2s2s2s2s2s2", "one")].into()
    );
    let out = env.run(&["lint", "--staged"]);
    assert!(
        out.stdout
            .ends_with("1 revision checked\nFAIL: 1 error (fail on error)\n"),
        "{}",
        out.stdout
    );
}
