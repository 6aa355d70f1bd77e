//! `migsnap fix` end to end on a real Alembic project with a data
//! migration: each class planned and applied, with rows checked before and
//! after, and the classes that must not be applied refused.

use crate::common::alembic::{AlembicProject, Revision, tables, version_rows};
use crate::common::{TestEnv, exec, file_hash};

/// The revisions of the notes app, in order.
const USERS: &str = "a1a1a1a1a1a1";
/// Creates `profile` and backfills it from `user`: a data migration.
const PROFILES: &str = "b2b2b2b2b2b2";
const EMAIL: &str = "c3c3c3c3c3c3";
const TAGS: &str = "d4d4d4d4d4d4";

/// A four-revision project whose second revision backfills rows.
fn notes_app(env: &TestEnv) -> Option<AlembicProject> {
    let mut p = AlembicProject::new(env)?;
    p.revision(
        Revision::new(USERS, "users")
            .upgrade(
                r#"
                op.create_table(
                    "user",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("name", sa.String(), nullable=False),
                    sa.PrimaryKeyConstraint("id"),
                )
                "#,
            )
            .downgrade(r#"op.drop_table("user")"#),
    );
    p.revision(
        Revision::new(PROFILES, "profiles, backfilled from users")
            .down(USERS)
            .upgrade(
                r#"
                op.create_table(
                    "profile",
                    sa.Column("user_id", sa.Integer(), nullable=False),
                    sa.Column("display_name", sa.String(), nullable=False),
                    sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
                    sa.PrimaryKeyConstraint("user_id"),
                )
                op.execute("INSERT INTO profile (user_id, display_name) SELECT id, name FROM user")
                "#,
            )
            .downgrade(r#"op.drop_table("profile")"#),
    );
    p.revision(
        Revision::new(EMAIL, "user email")
            .down(PROFILES)
            .upgrade(r#"op.add_column("user", sa.Column("email", sa.String(), nullable=True))"#)
            .downgrade(
                r#"
                with op.batch_alter_table("user") as batch_op:
                    batch_op.drop_column("email")
                "#,
            ),
    );
    p.revision(
        Revision::new(TAGS, "tags")
            .down(EMAIL)
            .upgrade(
                r#"
                op.create_table(
                    "tag",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("name", sa.String(), nullable=False),
                    sa.PrimaryKeyConstraint("id"),
                )
                "#,
            )
            .downgrade(r#"op.drop_table("tag")"#),
    );
    p.configure_store(env, "");
    Some(p)
}

fn count(db: &std::path::Path, table: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
            r.get(0)
        })
        .unwrap()
}

fn plan(env: &TestEnv, db: &str) -> (i32, serde_json::Value) {
    let out = env.run(&["--format", "json", "fix", db]);
    (out.status, out.json())
}

fn step_names(plan: &serde_json::Value) -> Vec<String> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect()
}

fn status_is_clean(env: &TestEnv, db: &str) {
    let out = env.run(&["--format", "json", "status", db]);
    assert_eq!(out.status, 0, "status after the fix: {}", out.json());
}

#[test]
fn stamped_ahead_over_a_data_migration_is_fixed_by_stamp_and_upgrade_so_the_backfill_runs() {
    let env = TestEnv::new();
    let Some(project) = notes_app(&env) else {
        return;
    };
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade(USERS).assert_success();
    exec(
        &db,
        "INSERT INTO user VALUES (1, 'Ann'), (2, 'Bob'), (3, 'Cy')",
    );
    // The version row says head; the schema is that of the first revision.
    project.stamp(TAGS).assert_success();

    let hash = file_hash(&db);
    let (code, planned) = plan(&env, path);
    assert_eq!(code, 1, "{planned}");
    assert_eq!(planned["class"], "misstamped", "{planned}");
    assert_eq!(planned["anchor"], serde_json::json!([USERS]));
    assert_eq!(step_names(&planned), ["stamp", "upgrade"], "{planned}");
    let stamp = planned["commands"][0].as_str().unwrap();
    assert!(
        stamp.starts_with("migsnap stamp --verify") && stamp.ends_with(USERS),
        "{planned}"
    );
    assert_eq!(file_hash(&db), hash, "a dry run changes nothing");

    // The text says why and names the steps.
    let text = env.run(&["fix", path]);
    assert!(text.stdout.contains("exactly revision"), "{text:?}");
    assert!(text.stdout.contains("alembic upgrade heads"), "{text:?}");
    // It names the data step the upgrade runs.
    assert!(
        text.stdout.contains(&format!("data steps of {PROFILES}")),
        "{text:?}"
    );

    let applied = env
        .run(&["--format", "json", "fix", path, "--apply"])
        .ok_json();
    assert_eq!(applied["fixed"], true, "{applied}");
    assert_eq!(applied["replaced"], true);
    assert!(applied["safety_snapshot"].is_string());
    assert_eq!(version_rows(&db), Some(vec![TAGS.to_owned()]));
    // The data migration ran: every user has a profile.
    assert_eq!(count(&db, "profile"), 3);
    status_is_clean(&env, path);
    let (code, again) = plan(&env, path);
    assert_eq!((code, again["class"].as_str()), (0, Some("healthy")));
}

/// The JSON field sets of the plan and of `--apply`, as docs/cli.md lists
/// them.
#[test]
fn fix_json_has_the_documented_fields() {
    let env = TestEnv::new();
    let Some(project) = notes_app(&env) else {
        return;
    };
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade(USERS).assert_success();
    project.stamp(TAGS).assert_success();
    let keys = |json: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let plan_fields = [
        "anchor", "class", "clean", "commands", "database", "drift", "fail_on", "findings",
        "ignored", "options", "position", "reason", "rows", "steps", "strict",
    ];
    let (_, planned) = plan(&env, path);
    assert_eq!(keys(&planned), plan_fields, "{planned}");
    let applied = env
        .run(&["--format", "json", "fix", path, "--apply"])
        .ok_json();
    let mut apply_fields: Vec<&str> = plan_fields
        .iter()
        .copied()
        .filter(|f| !["clean", "fail_on", "ignored", "strict"].contains(f))
        .chain([
            "applied",
            "fixed",
            "replaced",
            "safety_snapshot",
            "unhealthy",
        ])
        .collect();
    apply_fields.sort();
    assert_eq!(keys(&applied), apply_fields, "{applied}");
    assert_eq!(
        keys(&applied["applied"][0]),
        ["detail", "ok", "revisions", "step"]
    );
}

#[test]
fn hand_made_later_objects_are_fixed_by_stamping_where_the_schema_is_then_upgrading() {
    let env = TestEnv::new();
    let Some(project) = notes_app(&env) else {
        return;
    };
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade(EMAIL).assert_success();
    exec(&db, "INSERT INTO user (id, name) VALUES (1, 'Ann')");
    // A fix script added the email column by hand; the row still says the
    // revision before it, so `alembic upgrade head` dies on a duplicate
    // column.
    project.stamp(PROFILES).assert_success();
    assert_ne!(project.upgrade("head").status, 0);

    let (_, planned) = plan(&env, path);
    assert_eq!(planned["class"], "misstamped", "{planned}");
    assert_eq!(planned["anchor"], serde_json::json!([EMAIL]));
    assert_eq!(step_names(&planned), ["stamp", "upgrade"]);

    env.run(&["fix", path, "--apply"]).assert_success();
    assert_eq!(version_rows(&db), Some(vec![TAGS.to_owned()]));
    assert!(tables(&db).contains(&"tag".to_owned()));
    assert_eq!(count(&db, "user"), 1, "rows kept");
    status_is_clean(&env, path);
}

#[test]
fn a_dropped_column_is_fixed_by_repair_and_rows_are_kept() {
    let env = TestEnv::new();
    let Some(project) = notes_app(&env) else {
        return;
    };
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade("head").assert_success();
    exec(
        &db,
        "INSERT INTO user (id, name) VALUES (1, 'Ann'), (2, 'Bob')",
    );
    exec(&db, "INSERT INTO tag VALUES (1, 'x')");
    exec(&db, "ALTER TABLE tag DROP COLUMN name");

    let (code, planned) = plan(&env, path);
    assert_eq!(code, 1);
    assert_eq!(planned["class"], "missing-objects", "{planned}");
    assert_eq!(step_names(&planned), ["repair"]);

    env.run(&["fix", path, "--apply"]).assert_success();
    assert_eq!(count(&db, "user"), 2);
    assert_eq!(count(&db, "tag"), 1);
    status_is_clean(&env, path);
}

#[test]
fn an_unknown_row_with_a_hand_made_table_is_adopted_accepted_or_dropped_never_silently() {
    let env = TestEnv::new();
    let Some(project) = notes_app(&env) else {
        return;
    };
    let db = project.db_path();
    let path = db.to_str().unwrap();
    unknown_row_with_feature_x(&project);

    let (code, planned) = plan(&env, path);
    assert_eq!(code, 1);
    assert_eq!(planned["class"], "extra-objects", "{planned}");
    assert_eq!(planned["anchor"], serde_json::json!([TAGS]));
    // A hand-made table is a feature: adopting it into the history is
    // recommended, so other copies of the database get it too.
    assert_eq!(step_names(&planned), ["stamp", "adopt"], "{planned}");
    let options: Vec<&str> = planned["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(options, ["adopt", "accept", "drop"]);
    assert_eq!(planned["options"][2]["steps"][0]["rows"], 2, "{planned}");
    let shown = env.run(&["fix", path]);
    shown.expect(1);
    assert!(
        shown
            .stdout
            .contains("migsnap adopt data/app.db -m \"adopt feature_x\""),
        "{shown:?}"
    );

    // Dropping loses rows: refused without the flag, nothing changed.
    let hash = file_hash(&db);
    let refused = env.run(&["fix", path, "--apply", "--choose", "drop"]);
    assert_eq!(refused.status, 4, "{refused:?}");
    assert!(refused.stderr.contains("2 row(s)"), "{refused:?}");
    assert_eq!(file_hash(&db), hash);

    // The recommended way writes a revision that makes the table, and
    // records it: the rows stay, and real Alembic rebuilds the schema.
    let before: Vec<_> = std::fs::read_dir(project.versions_dir()).unwrap().collect();
    let out = env.run(&["--format", "json", "fix", path, "--apply"]);
    let report = out.json();
    assert_eq!(out.status, 0, "{report}");
    assert_eq!(report["fixed"], true, "{report}");
    let after = std::fs::read_dir(project.versions_dir()).unwrap().count();
    assert_eq!(after, before.len() + 1, "one revision file was written");
    let rows = version_rows(&db).unwrap();
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0], TAGS, "stamped at the adopted revision");
    assert_eq!(count(&db, "feature_x"), 2);
    status_is_clean(&env, path);
    let fresh = env.join("fresh.db");
    let url = format!("sqlite:///{}", fresh.display());
    project
        .run_with(&["upgrade", "head"], &[("DATABASE_URL", &url)])
        .assert_success();
    env.run(&["diff", path, fresh.to_str().unwrap()]).expect(0);
    project
        .run_with(&["downgrade", "-1"], &[("DATABASE_URL", &url)])
        .assert_success();
    assert!(!tables(&fresh).contains(&"feature_x".to_owned()));
}

/// Upgrades the project's database, then adds a hand-made table with two
/// rows and puts an unknown id in `alembic_version`.
fn unknown_row_with_feature_x(project: &AlembicProject) {
    project.upgrade("head").assert_success();
    exec(
        &project.db_path(),
        "CREATE TABLE feature_x (id INTEGER PRIMARY KEY, v TEXT);
         CREATE INDEX ix_feature_x_v ON feature_x (v);
         INSERT INTO feature_x VALUES (1, 'a'), (2, 'b');
         UPDATE alembic_version SET version_num = 'deadbeef0000';",
    );
}

// Accepting keeps the table as a local variant; another copy of the same
// shape is then exactly that variant, and stamping it verifies against it.
#[test]
fn hand_made_tables_accepted_as_a_variant_make_the_next_copy_a_plain_stamp() {
    let env = TestEnv::new();
    let Some(project) = notes_app(&env) else {
        return;
    };
    let db = project.db_path();
    let path = db.to_str().unwrap();
    unknown_row_with_feature_x(&project);
    let copy = env.join("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    let copy = copy.to_str().unwrap();

    env.run(&["fix", path, "--apply", "--choose", "accept"])
        .assert_success();
    assert_eq!(version_rows(&db), Some(vec![TAGS.to_owned()]));
    assert_eq!(count(&db, "feature_x"), 2);
    status_is_clean(&env, path);

    let (code, planned) = plan(&env, copy);
    assert_eq!(code, 1);
    assert_eq!(planned["class"], "misstamped", "{planned}");
    assert_eq!(step_names(&planned), ["stamp"], "{planned}");
    env.run(&["fix", copy, "--apply"]).assert_success();
    assert_eq!(
        version_rows(std::path::Path::new(copy)),
        Some(vec![TAGS.to_owned()])
    );
    status_is_clean(&env, copy);
}

#[test]
fn multiple_heads_are_explained_and_never_applied() {
    let env = TestEnv::new();
    let Some(mut project) = notes_app(&env) else {
        return;
    };
    for id in ["e5e5e5e5e5e5", "f6f6f6f6f6f6"] {
        project.revision(Revision::new(id, "a feature branch").down(TAGS));
    }
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade(TAGS).assert_success();

    let (code, planned) = plan(&env, path);
    assert_eq!(code, 1);
    assert_eq!(planned["class"], "multiple-heads", "{planned}");
    assert!(planned["steps"].as_array().unwrap().is_empty());
    assert!(
        planned["reason"]
            .as_str()
            .unwrap()
            .contains("alembic merge"),
        "{planned}"
    );
    let hash = file_hash(&db);
    let refused = env.run(&["fix", path, "--apply"]);
    assert_eq!(refused.status, 4, "{refused:?}");
    assert_eq!(file_hash(&db), hash);
}

#[test]
fn a_failing_upgrade_leaves_the_database_unchanged_and_says_so() {
    let env = TestEnv::new();
    let Some(mut project) = notes_app(&env) else {
        return;
    };
    // A later revision whose data step fails on real rows.
    project.revision(
        Revision::new("g7g7g7g7g7g7", "unique names")
            .down(TAGS)
            .upgrade(r#"op.create_index("user_name_uq", "user", ["name"], unique=True)"#)
            .downgrade(r#"op.drop_index("user_name_uq", table_name="user")"#),
    );
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade(USERS).assert_success();
    exec(&db, "INSERT INTO user VALUES (1, 'Ann'), (2, 'Ann')");
    project.stamp("g7g7g7g7g7g7").assert_success();
    let hash = file_hash(&db);

    let out = env.run(&["--format", "json", "fix", path, "--apply"]);
    assert_eq!(out.status, 1, "{out:?}");
    let report = out.json();
    assert_eq!(report["fixed"], false, "{report}");
    assert_eq!(report["replaced"], false, "{report}");
    let applied = report["applied"].as_array().unwrap();
    assert_eq!(applied.last().unwrap()["step"], "upgrade", "{report}");
    assert_eq!(applied.last().unwrap()["ok"], false);
    // The steps ran on a copy: the file is byte for byte as it was.
    assert_eq!(file_hash(&db), hash, "{report}");
    assert_eq!(version_rows(&db), Some(vec!["g7g7g7g7g7g7".to_owned()]));
}

#[test]
fn a_data_only_revision_inside_the_match_makes_the_fix_unsure_and_names_it() {
    let env = TestEnv::new();
    let Some(mut project) = notes_app(&env) else {
        return;
    };
    // A revision that only moves rows, then one that changes the schema.
    project.revision(
        Revision::new("h8h8h8h8h8h8", "capitalise tag names")
            .down(TAGS)
            .upgrade(r#"op.execute("UPDATE tag SET name = upper(name)")"#),
    );
    project.revision(
        Revision::new("i9i9i9i9i9i9", "tag colour")
            .down("h8h8h8h8h8h8")
            .upgrade(r#"op.add_column("tag", sa.Column("colour", sa.String(), nullable=True))"#),
    );
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade(TAGS).assert_success();
    exec(&db, "INSERT INTO tag VALUES (1, 'x')");
    project.stamp("i9i9i9i9i9i9").assert_success();

    let (code, planned) = plan(&env, path);
    assert_eq!(code, 1);
    assert_eq!(planned["class"], "unsure", "{planned}");
    let reason = planned["reason"].as_str().unwrap();
    assert!(
        reason.contains("h8h8h8h8h8h8") && reason.contains(TAGS),
        "{reason}"
    );
    assert!(planned["steps"].as_array().unwrap().is_empty());
    let refused = env.run(&["fix", path, "--apply"]);
    assert_eq!(refused.status, 4, "{refused:?}");
}

#[test]
fn part_of_a_later_revision_made_by_hand_is_completed_by_repair_then_stamped() {
    let env = TestEnv::new();
    let Some(project) = notes_app(&env) else {
        return;
    };
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade(PROFILES).assert_success();
    exec(&db, "INSERT INTO user VALUES (1, 'Ann')");
    // A fix script made the last revision's table by hand, but not the
    // column of the revision before it; the row still says PROFILES, so
    // an upgrade would add the column and then die on "table tag already
    // exists". No revision's schema is this one.
    exec(
        &db,
        "CREATE TABLE tag (id INTEGER NOT NULL, name VARCHAR NOT NULL, PRIMARY KEY (id));
         INSERT INTO tag VALUES (1, 'x');",
    );

    let (_, planned) = plan(&env, path);
    assert_eq!(planned["class"], "missing-objects", "{planned}");
    assert_eq!(planned["anchor"], serde_json::json!([TAGS]), "{planned}");
    assert_eq!(step_names(&planned), ["repair", "stamp"], "{planned}");
    env.run(&["fix", path, "--apply"]).assert_success();
    assert_eq!(version_rows(&db), Some(vec![TAGS.to_owned()]));
    assert_eq!(count(&db, "tag"), 1);
    assert_eq!(count(&db, "user"), 1, "rows kept");
    status_is_clean(&env, path);
}
