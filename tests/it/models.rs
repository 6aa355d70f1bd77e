//! The models reference: real SQLAlchemy models (a declarative base) and
//! real Alembic, compared by `status` with the migrations' heads.
//!
//! These need `MIGSNAP_TEST_PYTHON` (set by `scripts/test.sh`) with
//! SQLAlchemy 2.

use crate::common::TestEnv;
use crate::common::alembic::{AlembicProject, ENV_PY, Revision};

/// The codes of a JSON report's findings.
fn codes(json: &serde_json::Value) -> Vec<&str> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect()
}

/// `models.py` at the project root: a declarative base whose `user` table
/// has `id`, `name` and the `extra` columns (Python source lines).
fn models_py(extra: &str) -> String {
    format!(
        r#"from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "user"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
{extra}
"#
    )
}

/// A project whose one revision creates `user` (`id`, `name` and the
/// `extra` columns, `sa.Column(...)` text), whose models declare `user` with
/// `models_extra`, and whose env.py sets `target_metadata = Base.metadata`
/// when `env_metadata`; the database is upgraded to head and tracked as
/// `app`. `None` when the Alembic tests are skipped.
fn project(
    env: &TestEnv,
    extra: &str,
    models_extra: &str,
    env_metadata: bool,
) -> Option<AlembicProject> {
    let mut app = AlembicProject::new(env)?;
    std::fs::write(app.root().join("models.py"), models_py(models_extra)).unwrap();
    if env_metadata {
        let env_py = ENV_PY.replace(
            "target_metadata = None",
            "from models import Base\n\ntarget_metadata = Base.metadata",
        );
        std::fs::write(app.migrations_dir().join("env.py"), env_py).unwrap();
    }
    app.revision(
        Revision::new("aaaaaaaaaaa1", "create user")
            .upgrade(&format!(
                r#"
                op.create_table(
                    "user",
                    sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("name", sa.String(50), nullable=False),
                    {extra}
                )
                "#
            ))
            .downgrade(r#"op.drop_table("user")"#),
    );
    app.upgrade("head").assert_success();
    app.configure_store(env, "");
    env.run(&["track", "app", AlembicProject::DB])
        .assert_success();
    Some(app)
}

#[test]
fn a_column_the_models_declare_and_no_migration_creates_is_an_error() {
    let env = TestEnv::new();
    let Some(_app) = project(
        &env,
        "",
        "    nickname: Mapped[str] = mapped_column(String(30), nullable=True)",
        true,
    ) else {
        return;
    };
    let out = env.run(&["status", "app"]);
    out.expect(1);
    assert!(
        out.stdout.contains(
            "models:     DIFFER from the reference for aaaaaaaaaaa1:\n    in the models, not in the migrations:\n        user.nickname VARCHAR(30)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("schema:     matches the reference"),
        "{}",
        out.stdout
    );

    let json = env.run(&["--format", "json", "status", "app"]).json();
    let models = &json["models"];
    let mut keys: Vec<&str> = models
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "differing",
            "failure",
            "heads",
            "heads_reference",
            "missing_in_migrations",
            "missing_in_models",
            "reference"
        ]
    );
    assert_eq!(
        models["missing_in_migrations"],
        serde_json::json!([{"table": "user", "column": "nickname", "type": "VARCHAR(30)"}]),
        "{json}"
    );
    assert_eq!(models["missing_in_models"], serde_json::json!([]));
    assert_eq!(models["heads"], serde_json::json!(["aaaaaaaaaaa1"]));
    assert_eq!(codes(&json), ["models.missing-in-migrations"], "{json}");
    assert_eq!(json["findings"][0]["object"], "user.nickname");
}

#[test]
fn a_column_the_migrations_create_and_the_models_dropped_is_stale() {
    let env = TestEnv::new();
    let Some(_app) = project(
        &env,
        r#"sa.Column("legacy", sa.Text(), nullable=True),"#,
        "",
        true,
    ) else {
        return;
    };
    // A warning: the application still works.
    let out = env.run(&["status", "app"]);
    out.expect(0);
    assert!(
        out.stdout
            .contains("    in the migrations, not in the models:\n        user.legacy TEXT\n"),
        "{}",
        out.stdout
    );
    let json = env.run(&["--format", "json", "status", "app"]).json();
    assert_eq!(
        json["models"]["missing_in_models"],
        serde_json::json!([{"table": "user", "column": "legacy", "type": "TEXT"}]),
        "{json}"
    );
    assert_eq!(
        json["findings"][0]["code"], "models.missing-in-models",
        "{json}"
    );
    assert_eq!(json["findings"][0]["severity"], "warning");
}

#[test]
fn models_equal_to_the_migrations_give_no_finding_and_are_cached_by_their_files() {
    let env = TestEnv::new();
    let Some(app) = project(&env, "", "", true) else {
        return;
    };
    let out = env.run(&["status", "app"]);
    out.expect(0);
    assert!(
        out.stdout
            .contains("models:     match the reference for aaaaaaaaaaa1\n"),
        "{}",
        out.stdout
    );
    let json = env.run(&["--format", "json", "status", "app"]).json();
    assert_eq!(json["findings"], serde_json::json!([]), "{json}");

    // Recorded once, then reused until a model file changes.
    let replay = env.run(&["replay", "app"]);
    assert!(
        replay
            .assert_success()
            .contains("the models' schema (cached, from 2 files) under ref replay/default/models"),
        "{}",
        replay.stdout
    );
    std::fs::write(
        app.root().join("models.py"),
        models_py("    email: Mapped[str] = mapped_column(String(80))"),
    )
    .unwrap();
    let replay = env.run(&["replay", "app"]);
    assert!(
        replay
            .assert_success()
            .contains("the models' schema (recorded,"),
        "{}",
        replay.stdout
    );
    let json = env.run(&["--format", "json", "status", "app"]).json();
    assert_eq!(
        json["models"]["missing_in_migrations"][0]["column"], "email",
        "{json}"
    );
}

#[test]
fn migsnap_toml_names_the_models_when_env_py_does_not() {
    let env = TestEnv::new();
    let Some(app) = project(
        &env,
        "",
        "    nickname: Mapped[str] = mapped_column(String(30), nullable=True)",
        false,
    ) else {
        return;
    };
    app.configure_store(&env, "models = \"models:Base\"\n");
    let json = env.run(&["--format", "json", "status", "app"]).json();
    assert_eq!(
        json["models"]["missing_in_migrations"][0]["column"], "nickname",
        "{json}"
    );
}

#[test]
fn without_target_metadata_there_is_no_models_section() {
    let env = TestEnv::new();
    let Some(_app) = project(&env, "", "", false) else {
        return;
    };
    let out = env.run(&["status", "app"]);
    out.expect(0);
    assert!(!out.stdout.contains("models:"), "{}", out.stdout);
    let json = env.run(&["--format", "json", "status", "app"]).json();
    assert!(json["models"].is_null(), "{json}");
    let replay = env.run(&["replay", "app"]);
    assert!(
        !replay.assert_success().contains("models"),
        "{}",
        replay.stdout
    );
}

#[test]
fn models_that_fail_to_load_are_a_finding_not_a_crash() {
    let env = TestEnv::new();
    let Some(app) = project(&env, "", "", true) else {
        return;
    };
    // The migrations' references are built while the models still load
    // (env.py imports them, so a replay would fail on them too).
    env.run(&["replay", "app"]).assert_success();
    std::fs::write(
        app.root().join("models.py"),
        "raise RuntimeError('broken models')\n",
    )
    .unwrap();
    let out = env.run(&["status", "app"]);
    out.expect(1);
    assert!(
        out.stdout
            .contains("models:     not compared: RuntimeError: broken models"),
        "{}",
        out.stdout
    );
    let json = env.run(&["--format", "json", "status", "app"]).json();
    assert_eq!(codes(&json), ["models.not-compared"], "{json}");
    env.run(&["replay", "app"]).expect(1);
}

#[test]
fn lint_flags_a_head_revision_that_changes_tables_the_models_do_not_need() {
    let env = TestEnv::new();
    let Some(mut app) = project(&env, "", "", true) else {
        return;
    };
    let note = r#"

class Note(Base):
    __tablename__ = "note"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
"#;
    std::fs::write(app.root().join("models.py"), models_py("") + note).unwrap();
    let create_note = r#"
        op.create_table("note", sa.Column("id", sa.Integer(), primary_key=True))
        "#;
    app.revision(
        Revision::new("bbbbbbbbbbb2", "create note")
            .down("aaaaaaaaaaa1")
            .upgrade(&format!(
                "{create_note}
        with op.batch_alter_table(\"user\") as batch:
            batch.add_column(sa.Column(\"legacy\", sa.Text(), nullable=True))
        "
            ))
            .downgrade(r#"op.drop_table("note")"#),
    );
    let lint = |env: &TestEnv| {
        // Adding to `user` is also `lint.alters-existing-table` (an error).
        env.run(&["--format", "json", "lint", "--since", "aaaaaaaaaaa1"])
            .json()
    };
    let json = lint(&env);
    let beyond: Vec<&serde_json::Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "lint.beyond-models")
        .collect();
    assert_eq!(beyond.len(), 1, "{json}");
    assert_eq!(beyond[0]["object"], "user");
    assert_eq!(beyond[0]["revision"], "bbbbbbbbbbb2");

    // Only the model change: nothing beyond it.
    app.revision(
        Revision::new("bbbbbbbbbbb2", "create note")
            .down("aaaaaaaaaaa1")
            .upgrade(create_note)
            .downgrade(r#"op.drop_table("note")"#),
    );
    let json = lint(&env);
    assert!(!codes(&json).contains(&"lint.beyond-models"), "{json}");
}

// Both declare the column, the models otherwise: another affinity is a
// warning (values are stored otherwise), another spelling alone is info.
#[test]
fn a_column_declared_otherwise_is_named_with_both_shapes() {
    let env = TestEnv::new();
    let Some(_app) = project(
        &env,
        r#"sa.Column("score", sa.Text(), nullable=True), sa.Column("bio", sa.String(200), nullable=True),"#,
        "    score: Mapped[float] = mapped_column(Float, nullable=True)\n    bio: Mapped[str] = mapped_column(String(500), nullable=True)",
        true,
    ) else {
        return;
    };
    let out = env.run(&["status", "app"]);
    out.expect(0);
    assert!(
        out.stdout.contains(
            "    declared otherwise:\n        user.score: TEXT in the migrations, FLOAT in the models\n        user.bio: VARCHAR(200) in the migrations, VARCHAR(500) in the models\n"
        ),
        "{}",
        out.stdout
    );
    let json = env.run(&["--format", "json", "status", "app"]).json();
    assert_eq!(
        json["models"]["differing"][0],
        serde_json::json!({
            "table": "user", "column": "score",
            "migrations": {"type": "TEXT", "not_null": false},
            "models": {"type": "FLOAT", "not_null": false},
        }),
        "{json}"
    );
    let severities: Vec<(&str, &str)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["object"].as_str().unwrap(),
                f["severity"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        severities,
        [("user.score", "warning"), ("user.bio", "info")],
        "{json}"
    );
}

// adopt --from-models writes one feature's revision: only the named
// tables, verified by real Alembic, and the database reaches the models by
// upgrading.
#[test]
fn adopt_from_models_writes_the_named_tables_revision_and_the_upgrade_reaches_the_models() {
    let env = TestEnv::new();
    let Some(app) = project(
        &env,
        "",
        "    nickname: Mapped[str] = mapped_column(String(30), nullable=True)


class Note(Base):
    __tablename__ = \"note\"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[str] = mapped_column(String(200))",
        true,
    ) else {
        return;
    };
    env.run(&["status", "app"]).expect(1);
    env.run(&["adopt", "--from-models", "--tables", "nope", "-m", "x"])
        .expect_error(3, &["the models declare no table nope"]);

    let out = env.run(&[
        "--format",
        "json",
        "adopt",
        "--from-models",
        "--tables",
        "user",
        "-m",
        "user nickname",
    ]);
    let report = out.json();
    assert_eq!(out.status, 0, "{report}");
    assert_eq!(report["written"], true);
    let source = report["source"].as_str().unwrap();
    assert!(source.contains("batch_op.add_column"), "{source}");
    assert!(source.contains("nickname"), "{source}");
    assert!(!source.contains("note"), "only the named table: {source}");
    assert!(std::path::Path::new(report["path"].as_str().unwrap()).exists());

    // The second feature: nothing left for user, the note table whole.
    let out = env.run(&[
        "adopt",
        "--from-models",
        "--tables",
        "note,user",
        "-m",
        "notes",
    ]);
    out.expect(0);
    assert!(out.stdout.contains("table note"), "{}", out.stdout);
    env.run(&["adopt", "--from-models", "--tables", "note", "-m", "again"])
        .expect_error(3, &["nothing to adopt"]);

    // The database is behind the two new revisions; the upgrade reaches
    // the models.
    app.upgrade("head").assert_success();
    let out = env.run(&["status", "app"]);
    out.expect(0);
    assert!(
        out.stdout.contains("models:     match the reference"),
        "{}",
        out.stdout
    );
}

// fix: a database that is what its history makes, with models ahead of the
// history, is fixed by a revision written from the models, then the upgrade.
#[test]
fn fix_writes_the_models_revision_then_upgrades() {
    let env = TestEnv::new();
    let Some(app) = project(
        &env,
        "",
        "    nickname: Mapped[str] = mapped_column(String(30), nullable=True)",
        true,
    ) else {
        return;
    };
    let out = env.run(&["--format", "json", "fix", "app"]);
    let plan = out.json();
    assert_eq!(out.status, 1, "{plan}");
    assert_eq!(plan["class"], "models-ahead", "{plan}");
    assert_eq!(plan["steps"][0]["step"], "adopt-models", "{plan}");
    assert_eq!(plan["steps"][0]["tables"], serde_json::json!(["user"]));
    assert_eq!(plan["steps"][1]["step"], "upgrade", "{plan}");
    assert_eq!(
        plan["commands"][0],
        "migsnap adopt --from-models --tables user -m \"from the models: user\""
    );

    let out = env.run(&["--format", "json", "fix", "app", "--apply"]);
    let report = out.json();
    assert_eq!(out.status, 0, "{report}");
    assert_eq!(report["fixed"], true, "{report}");
    let rows = app.version_rows().unwrap();
    assert_ne!(rows, ["aaaaaaaaaaa1"], "upgraded to the new revision");
    let db = app.db_path();
    assert!(
        crate::common::alembic::columns(&db, "user")
            .iter()
            .any(|c| c.name == "nickname"),
        "the upgrade added the column"
    );
    let out = env.run(&["status", "app"]);
    out.expect(0);
    assert!(out.stdout.contains("models:     match"), "{}", out.stdout);
}

// Models that cannot be loaded are named in the refusal, and nothing is
// written.
#[test]
fn adopt_from_models_names_models_that_do_not_load() {
    let env = TestEnv::new();
    let Some(app) = project(&env, "", "", false) else {
        return;
    };
    app.configure_store(&env, "models = \"no_such_module:Base\"\n");
    let before = std::fs::read_dir(app.versions_dir()).unwrap().count();
    env.run(&["adopt", "--from-models", "--tables", "user", "-m", "x"])
        .expect_error(3, &["the models (no_such_module:Base) could not be loaded"]);
    assert_eq!(
        std::fs::read_dir(app.versions_dir()).unwrap().count(),
        before
    );
}
