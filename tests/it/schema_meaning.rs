//! What a difference means (issue #11): a table a migration keeps on
//! purpose is schema, not an artefact; the same columns in another order
//! are a difference of form (`drift.order`, info), said in words; one
//! missing column is one difference. Real Alembic projects, run by real
//! Alembic, and the real binary.

use std::path::Path;

use crate::common::alembic::{AlembicProject, Revision};
use crate::common::{TestEnv, exec};

const CONFIG: &str = "rev_config";
const KEEP_OLD: &str = "rev_keep_old";
const USERS: &str = "rev_users";
const DROP_SCIM: &str = "rev_drop_scim";
const FORGETS: &str = "rev_forgets";
const EMAIL_INDEX: &str = "rev_email_ix";

fn status_json(env: &TestEnv, db: &Path) -> (i32, serde_json::Value) {
    let out = env.run(&["--format", "json", "status", db.to_str().unwrap()]);
    assert!(out.status == 0 || out.status == 1, "{out:?}");
    (out.status, out.json())
}

/// (code, severity) of every finding.
fn findings(json: &serde_json::Value) -> Vec<(String, String)> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `config`, then a migration that renames it to `config_old`, keeps it
/// beside a new `config`, and needs it in its downgrade.
fn keeps_config_old(env: &TestEnv) -> Option<AlembicProject> {
    let mut project = AlembicProject::new(env)?;
    project.revision(
        Revision::new(CONFIG, "config")
            .upgrade(
                r#"
                op.create_table(
                    "config",
                    sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("data", sa.Text(), nullable=False),
                )
                "#,
            )
            .downgrade(r#"op.drop_table("config")"#),
    );
    project.revision(
        Revision::new(KEEP_OLD, "versioned config, old kept")
            .down(CONFIG)
            .upgrade(
                r#"
                op.rename_table("config", "config_old")
                op.create_table(
                    "config",
                    sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("data", sa.JSON(), nullable=False),
                    sa.Column("version", sa.Integer(), nullable=False),
                )
                "#,
            )
            .downgrade(
                r#"
                op.drop_table("config")
                op.rename_table("config_old", "config")
                "#,
            ),
    );
    project.configure_store(env, "");
    project.upgrade("head").assert_success();
    Some(project)
}

#[test]
fn a_table_the_reference_has_is_never_an_artefact() {
    let env = TestEnv::new();
    let Some(project) = keeps_config_old(&env) else {
        return;
    };
    let db = project.db_path();
    let db_arg = db.to_str().unwrap();

    // Before any reference is cached, the snapshot reads the migration
    // files: one of them names config_old, so it is schema, not debris.
    let out = env.run(&["snapshot", db_arg]);
    out.expect(0);
    assert!(!out.stderr.contains("artefact"), "{}", out.stderr);

    let (code, json) = status_json(&env, &db);
    assert_eq!(code, 0, "{json}");
    assert!(
        findings(&json)
            .iter()
            .all(|(c, _)| !c.starts_with("artefact.")),
        "{json}"
    );
    let text = env.run(&["status", db_arg]);
    text.expect(0);
    assert!(!text.stdout.contains("artefact"), "{}", text.stdout);

    // The reference is cached now: the snapshot knows config_old is schema.
    exec(&db, "INSERT INTO config_old(data) VALUES ('x')");
    let out = env.run(&["snapshot", db_arg]);
    out.expect(0);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    let json = env
        .run(&["--format", "json", "snapshot", "--allow-empty", db_arg])
        .expect(0)
        .json();
    assert_eq!(json["findings"], serde_json::json!([]), "{json}");

    // The downgrade needs it, and works: behind, and no drift.
    assert_eq!(project.downgrade(CONFIG).status, 0);
    let (_, json) = status_json(&env, &db);
    assert_eq!(
        findings(&json),
        [("status.behind".into(), "warning".into())]
    );

    // A table the reference lacks is still flagged.
    project.upgrade("head").assert_success();
    exec(&db, "CREATE TABLE config_new(id INTEGER PRIMARY KEY)");
    let (code, json) = status_json(&env, &db);
    assert_eq!(code, 1, "{json}");
    let flagged: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "artefact.half-rebuilt")
        .map(|f| f["object"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, ["config_new"], "{json}");
}

/// `user` with `scim` in the middle of its columns.
fn scim_in_the_middle(env: &TestEnv) -> Option<AlembicProject> {
    let mut project = AlembicProject::new(env)?;
    project.revision(
        Revision::new(USERS, "users")
            .upgrade(
                r#"
                op.create_table(
                    "user",
                    sa.Column("id", sa.String(), nullable=False),
                    sa.Column("name", sa.String(), nullable=False),
                    sa.Column("scim", sa.JSON(), nullable=True),
                    sa.Column("email", sa.String(), nullable=False),
                    sa.Column("role", sa.String(), nullable=False),
                    sa.PrimaryKeyConstraint("id"),
                )
                "#,
            )
            .downgrade(r#"op.drop_table("user")"#),
    );
    project.configure_store(env, "");
    project.upgrade("head").assert_success();
    Some(project)
}

#[test]
fn a_hand_added_column_at_the_end_is_a_difference_of_order() {
    let env = TestEnv::new();
    let Some(project) = scim_in_the_middle(&env) else {
        return;
    };
    let db = project.db_path();
    let db_arg = db.to_str().unwrap();

    // The column is missing: one difference, counted once everywhere.
    exec(&db, r#"ALTER TABLE "user" DROP COLUMN scim"#);
    let (code, json) = status_json(&env, &db);
    assert_eq!(code, 1, "{json}");
    let drift = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "drift.schema")
        .unwrap_or_else(|| panic!("{json}"));
    assert!(
        drift["message"]
            .as_str()
            .unwrap()
            .ends_with("1 missing, 0 extra, 0 changed"),
        "{drift}"
    );
    assert_eq!(
        json["comparison"]["drift"]["changes"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{json}"
    );
    let located = env.run(&["locate", db_arg]);
    assert!(
        located
            .stdout
            .contains(&format!("nearest is {USERS} (1 difference)")),
        "{located:?}"
    );

    // The hand fix appends it: same columns, different order. Under guard
    // it is a fix, not new drift: nothing is restored.
    let fix = format!(
        "import sqlite3; c = sqlite3.connect('{}'); c.execute('ALTER TABLE \"user\" ADD COLUMN scim JSON'); c.commit()",
        db.display()
    );
    let python = crate::common::sqlite_python();
    let guarded = env.run(&[
        "--format",
        "json",
        "guard",
        db_arg,
        "--restore-on-failure",
        "--",
        &python,
        "-c",
        &fix,
    ]);
    guarded.expect(0);
    let report = guarded.json();
    assert_eq!(report["failed"], false, "{report:#}");
    assert_eq!(report["restored"], false, "{report:#}");
    assert_eq!(report["clean"], true, "{report:#}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "guard.drift-fixed"),
        "{report:#}"
    );
    let text = env.run(&["status", db_arg]);
    text.expect(0);
    assert!(
        text.stdout
            .contains("same columns, different order (scim moved)"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("DRIFT"), "{}", text.stdout);
    let (code, json) = status_json(&env, &db);
    assert_eq!(code, 0, "{json}");
    assert_eq!(findings(&json), [("drift.order".into(), "info".into())]);
    // `--strict` makes differences of form count.
    env.run(&["status", "--strict", db_arg]).expect(1);
    let change = &json["comparison"]["drift"]["changes"][0];
    assert_eq!(change["kind"], "table", "{json}");
    assert_eq!(change["meaning"], "order", "{json}");
    assert_eq!(change["moved"], serde_json::json!(["scim"]), "{json}");

    // locate still names the revision, and the stamp matches.
    let located = env
        .run(&["--format", "json", "locate", db_arg])
        .expect(0)
        .json();
    assert_eq!(located["exact"][0]["targets"], serde_json::json!([USERS]));
    assert_eq!(located["stamped_matches"], true, "{located}");
}

#[test]
fn a_round_trip_that_only_reorders_columns_passes_with_a_note() {
    let env = TestEnv::new();
    let Some(mut project) = scim_in_the_middle(&env) else {
        return;
    };
    // The downgrade adds the dropped column back, at the end.
    project.revision(
        Revision::new(DROP_SCIM, "drop user scim")
            .down(USERS)
            .upgrade(r#"op.drop_column("user", "scim")"#)
            .downgrade(r#"op.add_column("user", sa.Column("scim", sa.JSON(), nullable=True))"#),
    );
    // A downgrade that forgets its table: a real failure.
    project.revision(
        Revision::new(FORGETS, "audit table")
            .down(DROP_SCIM)
            .upgrade(r#"op.create_table("audit", sa.Column("id", sa.Integer(), primary_key=True))"#)
            .downgrade("pass"),
    );
    let out = env.run(&["--format", "json", "test"]);
    out.expect(1);
    let json = out.json();
    let outcome = |revision: &str| {
        json["revisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["revision"] == revision)
            .unwrap_or_else(|| panic!("{json}"))
            .clone()
    };
    let reordered = outcome(DROP_SCIM);
    assert_eq!(reordered["ok"], true, "{json}");
    assert_eq!(reordered["form"][0]["step"], "downgrade-differs", "{json}");
    assert_eq!(outcome(FORGETS)["ok"], false, "{json}");
    let about: Vec<(String, String, String)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["revision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        about,
        [
            ("drift.order".into(), "info".into(), DROP_SCIM.into()),
            ("roundtrip.failed".into(), "error".into(), FORGETS.into()),
        ]
    );
    let text = env.run(&["test"]);
    text.expect(1);
    assert!(
        text.stdout
            .contains("downgrade-differs in form only (not a failure):"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("same columns, different order (scim moved)"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("1 of 3 revisions fail the round trip"),
        "{}",
        text.stdout
    );
}

#[test]
fn an_index_under_another_name_is_a_difference_of_name_and_mixed_drift_counts_the_real_ones() {
    let env = TestEnv::new();
    let Some(mut project) = scim_in_the_middle(&env) else {
        return;
    };
    project.revision(
        Revision::new(EMAIL_INDEX, "index user email")
            .down(USERS)
            .upgrade(r#"op.create_index("ix_user_email", "user", ["email"])"#)
            .downgrade(r#"op.drop_index("ix_user_email", table_name="user")"#),
    );
    project.upgrade("head").assert_success();
    let db = project.db_path();
    let db_arg = db.to_str().unwrap();
    exec(
        &db,
        r#"DROP INDEX ix_user_email; CREATE INDEX user_email_idx ON "user"(email);"#,
    );
    let text = env.run(&["status", db_arg]);
    text.expect(0);
    assert!(
        text.stdout
            .contains("same index, different name: ix_user_email → user_email_idx"),
        "{}",
        text.stdout
    );
    let (code, json) = status_json(&env, &db);
    assert_eq!(code, 0, "{json}");
    assert_eq!(findings(&json), [("drift.name".into(), "info".into())]);
    assert_eq!(json["comparison"]["drift"]["changes"][0]["meaning"], "name");

    // A real difference beside it: drift.schema counts only the real one,
    // and the difference of name is still its own info finding.
    exec(&db, r#"ALTER TABLE "user" DROP COLUMN role"#);
    let (code, json) = status_json(&env, &db);
    assert_eq!(code, 1, "{json}");
    assert_eq!(
        findings(&json),
        [
            ("drift.schema".into(), "error".into()),
            ("drift.name".into(), "info".into()),
        ]
    );
    assert!(
        json["findings"][0]["message"]
            .as_str()
            .unwrap()
            .ends_with("1 missing, 0 extra, 0 changed"),
        "{json}"
    );
}
