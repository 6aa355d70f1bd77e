//! A version row that names a revision no file declares (issue 17 §1): a
//! feature branch deleted after its migration ran, its hand-made tables left
//! behind. `status`, `repair` and `stamp` compare the schema with the
//! revision `locate` finds nearest, say so, and list what is extra.

use crate::common::alembic::{AlembicProject, Revision, version_rows};
use crate::common::{TestEnv, exec, exit, file_hash};

const USERS: &str = "0a0a0a0a0a01";
const EMAIL: &str = "0a0a0a0a0a02";
const TAGS: &str = "0a0a0a0a0a03";
/// The id the deleted branch's revision had.
const GONE: &str = "feedface0042";

/// Three revisions: `user`, its `email` column, `tag`.
fn project(env: &TestEnv) -> Option<AlembicProject> {
    let mut p = AlembicProject::new(env)?;
    p.revision(
        Revision::new(USERS, "users")
            .upgrade(
                r#"op.create_table("user", sa.Column("id", sa.Integer(), primary_key=True),
                                   sa.Column("name", sa.String(), nullable=False))"#,
            )
            .downgrade(r#"op.drop_table("user")"#),
    );
    p.revision(
        Revision::new(EMAIL, "user email")
            .down(USERS)
            .upgrade(r#"op.add_column("user", sa.Column("email", sa.String()))"#),
    );
    p.revision(
        Revision::new(TAGS, "tags")
            .down(EMAIL)
            .upgrade(r#"op.create_table("tag", sa.Column("id", sa.Integer(), primary_key=True))"#)
            .downgrade(r#"op.drop_table("tag")"#),
    );
    p.configure_store(env, "");
    Some(p)
}

/// The database at head, then a feature branch's tables made by its
/// (since deleted) revision, and that revision's id in `alembic_version`.
fn deleted_branch(project: &AlembicProject) {
    project.upgrade("head").assert_success();
    exec(
        &project.db_path(),
        &format!(
            "CREATE TABLE feature_x (id INTEGER PRIMARY KEY, v TEXT);
             CREATE INDEX ix_feature_x_v ON feature_x (v);
             CREATE TABLE feature_y (id INTEGER PRIMARY KEY, x_id INTEGER REFERENCES feature_x (id));
             INSERT INTO feature_x VALUES (1, 'a');
             UPDATE alembic_version SET version_num = '{GONE}';"
        ),
    );
}

/// The names of the `added` changes of a drift, as `kind name`.
fn extra(drift: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = drift["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["op"] == "added")
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            )
        })
        .collect();
    names.sort();
    names
}

/// The lines of `text` that start (after indentation) with `prefix`.
fn lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with(prefix))
        .collect()
}

#[test]
fn status_compares_an_unknown_stamp_with_the_nearest_revision_and_lists_what_is_extra() {
    let env = TestEnv::new();
    let Some(project) = project(&env) else {
        return;
    };
    deleted_branch(&project);
    let db = project.db_path();
    let path = db.to_str().unwrap();

    let out = env.run(&["status", path]);
    out.expect(exit::PROBLEMS);
    let schema = lines_with(&out.stdout, "schema:");
    assert_eq!(schema.len(), 1, "{out:?}");
    assert!(
        schema[0].starts_with(&format!(
            "schema:     the stamped revision is unknown; compared with the nearest revision, {TAGS} ("
        )),
        "{out:?}"
    );
    assert_eq!(
        lines_with(&out.stdout, "extra "),
        [
            "extra table feature_x",
            "extra table feature_y",
            "extra index ix_feature_x_v on feature_x"
        ],
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!(
            "[drift.schema] {}: the stamped revision is unknown; compared with the nearest revision, {TAGS}: 0 missing, 3 extra, 0 changed",
            db.canonicalize().unwrap().display()
        )),
        "{out:?}"
    );
    assert!(out.stdout.contains("[status.unknown-revision]"), "{out:?}");

    let out = env.run(&["--format", "json", "status", path]);
    out.expect(exit::PROBLEMS);
    let json = out.json();
    assert_eq!(json["class"], "unknown-revision");
    assert_eq!(json["rows"], serde_json::json!([GONE]));
    let comparison = &json["comparison"];
    assert_eq!(comparison["inferred"], true, "{json}");
    assert_eq!(comparison["targets"], serde_json::json!([TAGS]));
    assert_eq!(
        extra(&comparison["drift"]),
        ["index ix_feature_x_v", "table feature_x", "table feature_y"]
    );
    // Nothing matches the stamp itself: `schema_matches` stays null.
    assert_eq!(json["schema_matches"], serde_json::Value::Null, "{json}");
    let codes: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["status.unknown-revision", "drift.schema"], "{json}");
}

// A row that names no revision over a schema that is exactly one revision's
// (the row was edited by hand): compared, matching, and still unhealthy.
#[test]
fn an_unknown_stamp_over_an_exact_schema_matches_the_nearest_and_still_fails() {
    let env = TestEnv::new();
    let Some(project) = project(&env) else {
        return;
    };
    project.upgrade(EMAIL).assert_success();
    let db = project.db_path();
    let path = db.to_str().unwrap();
    exec(
        &db,
        &format!("UPDATE alembic_version SET version_num = '{GONE}'"),
    );

    let out = env.run(&["status", path]);
    out.expect(exit::PROBLEMS);
    assert_eq!(
        lines_with(&out.stdout, "schema:"),
        [format!(
            "schema:     the stamped revision is unknown; compared with the nearest revision, {EMAIL}: matches its reference"
        )],
        "{out:?}"
    );
    let json = env.run(&["--format", "json", "status", path]).json();
    assert_eq!(json["comparison"]["inferred"], true);
    assert_eq!(json["comparison"]["targets"], serde_json::json!([EMAIL]));
    assert_eq!(
        json["comparison"]["drift"]["changes"],
        serde_json::json!([])
    );
    assert_eq!(json["schema_matches"], serde_json::Value::Null);
    assert_eq!(json["clean"], false);

    // The verified stamp puts the revision there and says what it replaced.
    let out = env.run(&["--format", "json", "stamp", path, EMAIL]);
    let stamped = out.json();
    assert_eq!(out.status, exit::OK, "{stamped}");
    assert_eq!(stamped["unknown"], serde_json::json!([GONE]));
    assert_eq!(version_rows(&db), Some(vec![EMAIL.to_owned()]));
    let json = env.run(&["--format", "json", "status", path]).json();
    assert_eq!(json["class"], "behind", "{json}");
    assert_eq!(json["comparison"]["inferred"], false);
}

#[test]
fn repair_plans_towards_the_nearest_revision_and_applies_only_towards_one_named() {
    let env = TestEnv::new();
    let Some(project) = project(&env) else {
        return;
    };
    deleted_branch(&project);
    let db = project.db_path();
    let path = db.to_str().unwrap();
    // The branch also dropped a column the history has.
    exec(&db, "ALTER TABLE user DROP COLUMN email");
    let hash = file_hash(&db);

    let out = env.run(&["repair", path]);
    out.expect(exit::PROBLEMS);
    assert!(
        out.stdout.starts_with(&format!(
            "the stamped revision is unknown; compared with the nearest revision, {TAGS} (a plan to review: it applies only with --to {TAGS})\n"
        )),
        "{out:?}"
    );
    assert!(out.stdout.contains("ADD COLUMN"), "{out:?}");
    assert!(
        out.stdout
            .contains("kept 3 object(s) the reference of 0a0a0a0a0a03 lacks"),
        "{out:?}"
    );
    let json = env.run(&["--format", "json", "repair", path]).json();
    assert_eq!(json["inferred"], true, "{json}");
    assert_eq!(json["targets"], serde_json::json!([TAGS]));
    assert_eq!(
        extra(&json["kept"]),
        ["index ix_feature_x_v", "table feature_x", "table feature_y"]
    );

    // The error used to stop mid-sentence ("…cannot repair towards").
    let out = env.run(&["repair", path, "--apply"]);
    out.expect_error(
        exit::REFUSED,
        &[&format!(
            "the stamped revision is unknown; the plan goes towards the nearest revision, {TAGS}, and is applied only towards a revision named; nothing was changed"
        )],
    );
    assert!(
        out.stderr.contains(&format!(
            "hint: review the plan with `migsnap repair --to {TAGS}`, then add --apply"
        )),
        "{out:?}"
    );
    assert_eq!(file_hash(&db), hash);

    // Named, it applies: the column is back, the extra tables kept.
    let json = env
        .run(&["--format", "json", "repair", path, "--to", TAGS, "--apply"])
        .json();
    assert_eq!(json["applied"], true, "{json}");
    assert_eq!(json["inferred"], false);
    let out = env.run(&["--format", "json", "status", path]).json();
    assert_eq!(out["comparison"]["inferred"], true);
    assert_eq!(
        extra(&out["comparison"]["drift"]),
        ["index ix_feature_x_v", "table feature_x", "table feature_y"]
    );
    assert_eq!(
        out["comparison"]["drift"]["changes"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "only the extra objects remain: {out}"
    );
}

#[test]
fn stamp_names_the_unknown_row_it_refuses_over_and_the_one_it_cannot_verify() {
    let env = TestEnv::new();
    let Some(project) = project(&env) else {
        return;
    };
    deleted_branch(&project);
    let db = project.db_path();
    let path = db.to_str().unwrap();
    let hash = file_hash(&db);

    let out = env.run(&["stamp", path, TAGS]);
    out.expect(exit::PROBLEMS);
    assert!(
        out.stdout.contains(&format!(
            "the stamped revision, {GONE}, is unknown: no migration script declares it"
        )),
        "{out:?}"
    );
    assert_eq!(lines_with(&out.stdout, "extra ").len(), 3, "{out:?}");
    let json = env.run(&["--format", "json", "stamp", path, TAGS]).json();
    assert_eq!(json["stamped"], false);
    assert_eq!(json["unknown"], serde_json::json!([GONE]));

    // Stamping the row it already has: no reference can verify it.
    let out = env.run(&["stamp", path, GONE]);
    out.expect_error(
        exit::INPUT,
        &[&format!(
            "{GONE} is the revision the database records, but no migration script declares it"
        )],
    );
    assert!(
        out.stderr
            .contains("hint: `migsnap locate` shows the revision the schema is nearest to"),
        "{out:?}"
    );
    // A revision that is neither declared nor recorded is simply unknown.
    env.run(&["stamp", path, "feedface0043"]).expect_error(
        exit::INPUT,
        &["no revision 'feedface0043' in the migration history"],
    );
    assert_eq!(file_hash(&db), hash);
}
