//! Projects whose first tables are made outside Alembic (issue 17 §2): the
//! application's `metadata.create_all` makes `user` and `config`, then the
//! base revision alters `user`, then later revisions build on both. A plain
//! replay fails at the base revision; migsnap says why without blaming the
//! file, and each kind of `[replay] bootstrap` (a SQL file, a Python
//! callable, a snapshot's tables, a database file's tables, or the tables
//! recorded by `replay --bootstrap-from`) makes `status` and `locate` right.

use std::path::Path;
use std::process::Command;

use crate::common::alembic::{AlembicProject, Revision};
use crate::common::{TestEnv, exec, exit};

/// Alters `user`, which Alembic never created.
const BASE: &str = "c0ffee000001";
/// Creates `note`, referencing `user`.
const NOTES: &str = "c0ffee000002";
/// Indexes `config.data`.
const INDEX: &str = "c0ffee000003";

/// The application's models and the function that makes their tables.
const MODELS_PY: &str = r#"import sqlalchemy as sa

metadata = sa.MetaData()

user = sa.Table(
    "user",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)

config = sa.Table(
    "config",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("data", sa.Text),
)


def create_all(url):
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
"#;

/// The project, and its database made the application's way: `create_all`,
/// then `alembic upgrade head`.
fn bootstrapped_app(env: &TestEnv, extra_config: &str) -> Option<AlembicProject> {
    let mut p = AlembicProject::new(env)?;
    std::fs::create_dir_all(p.root().join("app")).unwrap();
    std::fs::write(p.root().join("app/__init__.py"), "").unwrap();
    std::fs::write(p.root().join("app/models.py"), MODELS_PY).unwrap();
    p.revision(
        Revision::new(BASE, "user email")
            .upgrade(r#"op.add_column("user", sa.Column("email", sa.String(), nullable=True))"#)
            .downgrade(
                r#"
                with op.batch_alter_table("user") as batch_op:
                    batch_op.drop_column("email")
                "#,
            ),
    );
    p.revision(
        Revision::new(NOTES, "notes")
            .down(BASE)
            .upgrade(
                r#"
                op.create_table(
                    "note",
                    sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("user_id", sa.Integer(), nullable=False),
                    sa.Column("body", sa.Text(), nullable=True),
                    sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
                    sa.PrimaryKeyConstraint("id"),
                )
                "#,
            )
            .downgrade(r#"op.drop_table("note")"#),
    );
    p.revision(
        Revision::new(INDEX, "config data index")
            .down(NOTES)
            .upgrade(r#"op.create_index("ix_config_data", "config", ["data"])"#)
            .downgrade(r#"op.drop_index("ix_config_data", table_name="config")"#),
    );
    p.configure_store(env, extra_config);
    create_all(&p, &p.db_path());
    p.upgrade("head").assert_success();
    Some(p)
}

/// Runs the application's `create_all` on the SQLite file `db`, with the
/// project's Python.
fn create_all(project: &AlembicProject, db: &Path) {
    let out = Command::new(project.python())
        .current_dir(project.root())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args([
            "-c",
            &format!(
                "import app.models; app.models.create_all('sqlite:///{}')",
                db.display()
            ),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The exact `CREATE` statements of a database, as a SQL script.
fn schema_sql(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid")
        .unwrap();
    stmt.query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|sql| format!("{};\n", sql.unwrap()))
        .collect()
}

fn json_of(env: &TestEnv, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    (out.status, out.json())
}

/// `status` is clean at the heads, and `locate` puts a database that
/// stopped at `NOTES` there: the references are right.
fn status_and_locate_are_right(env: &TestEnv, project: &AlembicProject) {
    let db = project.db_path();
    let (code, status) = json_of(env, &["status", db.to_str().unwrap()]);
    assert_eq!(code, exit::OK, "{status}");
    assert_eq!(status["class"], "at-heads");
    assert_eq!(status["schema_matches"], true);

    let halfway = env.join("data/halfway.db");
    create_all(project, &halfway);
    let url = format!("sqlite:///{}", halfway.display());
    project
        .run_with(&["upgrade", NOTES], &[("DATABASE_URL", &url)])
        .assert_success();
    let (code, located) = json_of(env, &["locate", halfway.to_str().unwrap()]);
    assert_eq!(code, exit::OK, "{located}");
    assert_eq!(
        located["exact"][0]["targets"],
        serde_json::json!([NOTES]),
        "{located}"
    );
}

#[test]
fn without_a_bootstrap_the_base_revision_is_not_blamed_for_tables_made_outside_alembic() {
    let env = TestEnv::new();
    let Some(project) = bootstrapped_app(&env, "") else {
        return;
    };
    let db = project.db_path();
    let path = db.to_str().unwrap();
    let sentence = format!(
        "the base revision {BASE} expects tables that are created outside Alembic (user); configure a bootstrap"
    );

    let (code, status) = json_of(&env, &["status", path]);
    assert_eq!(code, exit::PROBLEMS, "{status}");
    let finding = status["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "replay.needs-bootstrap")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(finding["message"], sentence.as_str());
    assert_eq!(finding["revision"], BASE);
    assert!(
        finding.get("file").is_none(),
        "the file is not to blame: {finding}"
    );
    assert_eq!(
        status["replay_failure"]["expects"],
        serde_json::json!(["user"])
    );
    assert_eq!(
        status["replay_failure"]["outside_alembic"],
        db.canonicalize().unwrap().to_str().unwrap()
    );

    let out = env.run(&["replay"]);
    out.expect(exit::PROBLEMS);
    assert!(out.stdout.contains(&sentence), "{out:?}");
    assert!(out.stdout.contains("[replay] bootstrap"), "{out:?}");
    assert!(!out.stdout.contains("_user_email.py"), "{out:?}");
    assert!(!out.stdout.contains("fix "), "{out:?}");

    // A database that lacks the table too: then the revision is to blame.
    let empty = env.join("data/empty.db");
    exec(
        &empty,
        &format!(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
             INSERT INTO alembic_version VALUES ('{BASE}')"
        ),
    );
    let (code, status) = json_of(&env, &["status", empty.to_str().unwrap()]);
    assert_eq!(code, exit::PROBLEMS, "{status}");
    let codes: Vec<&str> = status["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"replay.failed"), "{status}");
    assert!(!codes.contains(&"replay.needs-bootstrap"), "{status}");
    assert!(status["replay_failure"]["outside_alembic"].is_null());
}

#[test]
fn a_sql_file_bootstrap_is_part_of_the_reference_key() {
    let env = TestEnv::new();
    let Some(project) =
        bootstrapped_app(&env, "[replay]\nbootstrap = { sql = \"bootstrap.sql\" }\n")
    else {
        return;
    };
    // The statements the application's create_all runs, as SQLite kept them.
    let made = env.join("data/made.db");
    create_all(&project, &made);
    std::fs::write(env.join("bootstrap.sql"), schema_sql(&made)).unwrap();

    let (code, replay) = json_of(&env, &["replay"]);
    assert_eq!(code, exit::OK, "{replay}");
    assert_eq!(replay["bootstrap"]["source"], "SQL file bootstrap.sql");
    assert_eq!(replay["bootstrap"]["recorded"], false);
    status_and_locate_are_right(&env, &project);
    // The round trip starts its base revision from the bootstrap too.
    let (code, tested) = json_of(&env, &["test"]);
    assert_eq!(code, exit::OK, "{tested}");

    // Unchanged, nothing replays; an edited bootstrap replays the chain.
    let (_, replay) = json_of(&env, &["replay"]);
    assert_eq!(replay["ran_migrations"], false, "{replay}");
    let text = std::fs::read_to_string(env.join("bootstrap.sql")).unwrap();
    std::fs::write(
        env.join("bootstrap.sql"),
        format!("-- made by create_all\n{text}"),
    )
    .unwrap();
    let (code, replay) = json_of(&env, &["replay"]);
    assert_eq!(code, exit::OK, "{replay}");
    assert_eq!(replay["ran_migrations"], true, "{replay}");
    assert!(
        replay["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["cached"] == false),
        "{replay}"
    );

    // A bootstrap that fails says which, and where.
    std::fs::write(env.join("bootstrap.sql"), "CREATE TABLE user (;").unwrap();
    let out = env.run(&["replay"]);
    out.expect_error(
        exit::INPUT,
        &["the bootstrap (SQL file bootstrap.sql) failed"],
    );
}

#[test]
fn a_python_callable_bootstrap_runs_in_the_replays_interpreter() {
    let env = TestEnv::new();
    let Some(project) = bootstrapped_app(
        &env,
        "[replay]\nbootstrap = { python = \"app.models:create_all\" }\n",
    ) else {
        return;
    };
    let (code, replay) = json_of(&env, &["replay"]);
    assert_eq!(code, exit::OK, "{replay}");
    assert_eq!(
        replay["bootstrap"]["source"],
        "Python callable app.models:create_all"
    );
    status_and_locate_are_right(&env, &project);
    // The module is part of the key: a changed model replays the chain.
    let models = env.join("app/models.py");
    let text = std::fs::read_to_string(&models).unwrap();
    std::fs::write(&models, format!("{text}\n# touched\n")).unwrap();
    let (_, replay) = json_of(&env, &["replay"]);
    assert_eq!(replay["ran_migrations"], true, "{replay}");
}

#[test]
fn a_snapshot_bootstrap_takes_the_tables_as_they_were_before_alembic() {
    let env = TestEnv::new();
    let Some(project) = bootstrapped_app(
        &env,
        "[replay]\nbootstrap = { snapshot = \"before-alembic\", tables = [\"user\", \"config\"] }\n",
    ) else {
        return;
    };
    // The state create_all left, kept as a tagged snapshot of a copy.
    let before = env.join("data/before.db");
    create_all(&project, &before);
    env.run(&["track", "before", before.to_str().unwrap()])
        .assert_success();
    env.run(&["snapshot", "before", "--tag", "before-alembic"])
        .assert_success();

    let (code, replay) = json_of(&env, &["replay", project.db_path().to_str().unwrap()]);
    assert_eq!(code, exit::OK, "{replay}");
    let source = replay["bootstrap"]["source"].as_str().unwrap();
    assert!(
        source.starts_with("tables user, config of snapshot before-alembic ("),
        "{replay}"
    );
    status_and_locate_are_right(&env, &project);
}

// The issue's own example: the tables taken from the application's
// database, which has them as the revisions left them; the revisions are
// undone on a schema-only copy first.
#[test]
fn bootstrap_from_the_applications_database_records_its_tables_as_before_the_base_revision() {
    let env = TestEnv::new();
    let Some(project) = bootstrapped_app(&env, "") else {
        return;
    };
    let db = project.db_path();
    let before = std::fs::read(&db).unwrap();
    let out = env.run(&[
        "replay",
        "--bootstrap-from",
        db.to_str().unwrap(),
        "--tables",
        "user,config",
    ]);
    out.expect(exit::OK);
    assert!(
        out.stdout.contains(&format!(
            "bootstrap recorded: tables user, config of data/app.db as they were before the base revision (a copy of its schema downgraded from {INDEX} to base) under ref replay/default/bootstrap"
        )),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database is only read"
    );
    // `user` as create_all made it: without the base revision's column.
    let (_, recorded) = json_of(&env, &["show", "replay/default/bootstrap"]);
    let tables = recorded["schema"]["tables"].as_array().unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["config", "user"], "{recorded}");
    let user: Vec<&str> = tables[1]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(user, ["id", "name"], "{recorded}");
    // Later commands use it with no flag and no configuration.
    status_and_locate_are_right(&env, &project);
    let (_, replay) = json_of(&env, &["replay"]);
    assert_eq!(replay["ran_migrations"], false, "{replay}");
    assert_eq!(replay["bootstrap"]["recorded"], true);
    assert_eq!(
        replay["bootstrap"]["source"],
        "tables user, config of data/app.db"
    );

    // A snapshot of it names the same tables: recorded again from the
    // snapshot, the bootstrap is the same, and nothing replays.
    env.run(&["track", "app", db.to_str().unwrap()])
        .assert_success();
    env.run(&["snapshot", "app", "--tag", "migrated"])
        .assert_success();
    let (code, replay) = json_of(
        &env,
        &[
            "replay",
            "--bootstrap-from",
            "migrated",
            "--tables",
            "user,config",
        ],
    );
    assert_eq!(code, exit::OK, "{replay}");
    assert_eq!(
        replay["bootstrap_recorded"]["undone"],
        serde_json::json!([INDEX])
    );
    assert!(
        replay["bootstrap"]["source"]
            .as_str()
            .unwrap()
            .starts_with("tables user, config of snapshot migrated ("),
        "{replay}"
    );
    assert_eq!(replay["ran_migrations"], false, "{replay}");
}

#[test]
fn a_database_files_tables_as_a_configured_bootstrap() {
    let env = TestEnv::new();
    let Some(project) = bootstrapped_app(&env, "") else {
        return;
    };
    // What create_all made, and a table the bootstrap leaves out.
    let pre = env.join("data/pre.db");
    create_all(&project, &pre);
    exec(&pre, "CREATE TABLE unrelated (a)");
    project.configure_store(
        &env,
        "[replay]\nbootstrap = { database = \"data/pre.db\", tables = [\"user\", \"config\"] }\n",
    );
    let (code, replay) = json_of(&env, &["replay"]);
    assert_eq!(code, exit::OK, "{replay}");
    assert_eq!(
        replay["bootstrap"]["source"],
        "tables user, config of data/pre.db"
    );
    assert_eq!(replay["bootstrap"]["recorded"], false);
    status_and_locate_are_right(&env, &project);

    // A configured bootstrap wins, so recording another is refused.
    let out = env.run(&["replay", "--bootstrap-from", pre.to_str().unwrap()]);
    out.expect_error(exit::INPUT, &["migsnap.toml configures a bootstrap"]);
    env.run(&["replay", "--tables", "user"]).expect(exit::USAGE);

    // The application's database as a configured source would be read on
    // every command, after the revisions changed its tables: refused.
    project.configure_store(
        &env,
        "[replay]\nbootstrap = { database = \"data/app.db\", tables = [\"user\"] }\n",
    );
    env.run(&["replay"]).expect_error(
        exit::INPUT,
        &[&format!(
            "data/app.db records {INDEX}, so its tables are what the revisions made of them"
        )],
    );
}
