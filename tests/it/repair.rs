//! `repair`, `stamp --verify` and `guard` on real Alembic projects: each
//! drift case repaired with its data kept, a repair that would skip a
//! backfill and says so, a stamp that refuses, and a guarded command that
//! fails.

use crate::common::alembic::{AlembicProject, Revision, chat_app, columns, tables, version_rows};
use crate::common::{TestEnv, dump, exec, file_hash};

fn setup(env: &TestEnv, project: &AlembicProject) {
    project.configure_store(env, "");
}

fn clean(env: &TestEnv, db: &str) -> serde_json::Value {
    let out = env.run(&["--format", "json", "status", db]);
    let json = out.json();
    assert_eq!(out.status, 0, "not clean: {json}");
    json
}

fn rows(db: &std::path::Path, sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

const USERS: &str = "INSERT INTO user VALUES ('u1', 'Ann', 'ann@example.com', 'admin', 1), \
                     ('u2', 'Bob', 'bob@example.com', 'user', 2)";

#[test]
fn repair_brings_back_a_dropped_column_and_keeps_the_data() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    setup(&env, &project);
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade("head").assert_success();
    exec(&db, USERS);
    exec(
        &db,
        "INSERT INTO chat (id, user_id, title, content, created_at, updated_at, archived)
         VALUES ('c1', 'u1', 'hello', 'body', 1, 2, 1)",
    );
    exec(&db, "ALTER TABLE chat DROP COLUMN archived");
    let before_users = rows(&db, "SELECT * FROM user ORDER BY id");
    let before_chat = rows(&db, "SELECT id, user_id, title, content FROM chat");

    // The dry run changes nothing and shows the SQL with its reasons.
    let hash = file_hash(&db);
    let dry = env.run(&["repair", path]);
    assert_eq!(dry.status, 1, "{dry:?}");
    // `archived` sits before `folder_id`, so ADD COLUMN (which appends)
    // cannot put it back: the table is rebuilt, copying every row.
    assert!(
        dry.stdout.contains("-- rebuild chat: copy the rows"),
        "{dry:?}"
    );
    assert!(
        dry.stdout
            .contains("\"archived\" BOOLEAN NOT NULL DEFAULT 0"),
        "{dry:?}"
    );
    assert_eq!(file_hash(&db), hash);

    let applied = env
        .run(&["--format", "json", "repair", path, "--apply"])
        .ok_json();
    assert_eq!(applied["applied"], true);
    let safety = applied["safety_snapshot"].as_str().unwrap();
    clean(&env, path);
    assert_eq!(rows(&db, "SELECT * FROM user ORDER BY id"), before_users);
    assert_eq!(
        rows(&db, "SELECT id, user_id, title, content FROM chat"),
        before_chat
    );
    // The safety snapshot is the database as it was, and restores.
    let restored = env.join("before.db");
    env.run(&["checkout", safety, "-o", restored.to_str().unwrap()])
        .assert_success();
    assert!(
        !columns(&restored, "chat")
            .iter()
            .any(|c| c.name == "archived")
    );
}

#[test]
fn repair_and_stamp_recover_stamped_ahead_and_hand_made_tables() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    setup(&env, &project);
    let db = project.db_path();
    let path = db.to_str().unwrap();

    // Stamped ahead: the schema is ADD_ARCHIVED's, the stamp says head.
    project.upgrade(chat_app::ADD_ARCHIVED).assert_success();
    exec(&db, USERS);
    project.stamp("head").assert_success();
    // A verified stamp of the head refuses, and changes nothing.
    let hash = file_hash(&db);
    let refused = env.run(&[
        "--format", "json", "stamp", "--verify", "head", "--db", path,
    ]);
    assert_eq!(refused.status, 1, "{refused:?}");
    let json = refused.json();
    assert_eq!(json["stamped"], false);
    assert!(!json["drift"]["changes"].as_array().unwrap().is_empty());
    assert_eq!(file_hash(&db), hash);
    // Repairing towards the head would need the batch rename, which
    // migsnap does not infer: the plan keeps chat.chat (an extra column for
    // the head) and adds an empty chat.content. A dry run shows it.
    let planned = env.run(&["--format", "json", "repair", path]).json();
    assert!(
        planned["plan"]["steps"].as_array().unwrap().len() > 3,
        "{planned}"
    );
    assert_eq!(planned["destructive"], false);
    assert!(
        planned["kept"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "column" && c["name"] == "chat"),
        "{planned}"
    );
    // With --allow-destructive the plan drops chat.chat: it says so.
    let destructive = env
        .run(&["--format", "json", "repair", path, "--allow-destructive"])
        .json();
    assert_eq!(destructive["destructive"], true, "{destructive}");
    assert_eq!(file_hash(&db), hash);
    // Refusals come in two classes (docs/cli.md, "Exit codes"): a stamp
    // refused because the schema is not the revision named is a verdict
    // about the database (exit 1, above); one refused for safety, here a
    // read-only file that --force would override, exits 4 like a refused
    // destructive repair, and also writes nothing.
    crate::common::chmod(&db, 0o444);
    let safety = env.run(&["stamp", "--verify", chat_app::ADD_ARCHIVED, "--db", path]);
    crate::common::chmod(&db, 0o644);
    assert_eq!(safety.status, crate::common::exit::REFUSED, "{safety:?}");
    assert!(
        safety.stderr.contains("is read-only") && safety.stderr.contains("hint: pass --force"),
        "{safety:?}"
    );
    assert_eq!(file_hash(&db), hash);
    // The recovery: stamp what the schema really is, then upgrade.
    env.run(&["stamp", "--verify", chat_app::ADD_ARCHIVED, "--db", path])
        .assert_success();
    assert_eq!(version_rows(&db).unwrap(), [chat_app::ADD_ARCHIVED]);
    project.upgrade("heads").assert_success();
    clean(&env, path);
    assert_eq!(
        rows(&db, "SELECT id FROM user ORDER BY id"),
        ["Text(\"u1\")", "Text(\"u2\")"]
    );

    // Tables created by hand: `folder` exists, the stamp says RENAME_BATCH.
    let db = project.root().join("data/hand.db");
    let path = db.to_str().unwrap();
    let url = format!("sqlite:///{}", db.display());
    project
        .run_with(
            &["upgrade", chat_app::RENAME_BATCH],
            &[("DATABASE_URL", &url)],
        )
        .assert_success();
    exec(&db, USERS);
    exec(
        &db,
        "CREATE TABLE folder (id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, parent_id VARCHAR,
           name TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (id),
           FOREIGN KEY(user_id) REFERENCES user (id));
         CREATE INDEX folder_user_id_idx ON folder (user_id);
         INSERT INTO folder VALUES ('f1', 'u1', NULL, 'work', 1);",
    );
    // Repair keeps the hand-made table (no --allow-destructive): nothing to do.
    let planned = env.run(&["--format", "json", "repair", path]).json();
    assert_eq!(planned["plan"]["steps"], serde_json::json!([]), "{planned}");
    assert_eq!(planned["kept"]["changes"][0]["name"], "folder");
    // The table is exactly FOLDERS': stamping it is verified, and the
    // upgrade that died with "already exists" now runs.
    let stamped = env
        .run(&[
            "--format",
            "json",
            "stamp",
            "--verify",
            chat_app::FOLDERS,
            "--db",
            path,
        ])
        .ok_json();
    assert_eq!(stamped["stamped"], true);
    assert!(stamped["safety_snapshot"].is_string());
    project
        .run_with(&["upgrade", "heads"], &[("DATABASE_URL", &url)])
        .assert_success();
    clean(&env, path);
    assert_eq!(rows(&db, "SELECT name FROM folder"), ["Text(\"work\")"]);
}

#[test]
fn repair_with_allow_destructive_drops_extras_and_rebuilds_keeping_rows() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    setup(&env, &project);
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade("head").assert_success();
    exec(&db, USERS);
    // Two kinds of drift: an extra table and a lost index.
    exec(
        &db,
        "CREATE TABLE scratch (x);
         DROP INDEX chat_user_id_idx;",
    );
    let kept = env.run(&["--format", "json", "repair", path]).json();
    assert_eq!(kept["kept"]["changes"][0]["name"], "scratch");
    let applied = env
        .run(&["repair", path, "--apply", "--allow-destructive"])
        .assert_success()
        .to_owned();
    // DROP TABLE and CREATE INDEX: statements, not the PRAGMA/BEGIN/COMMIT
    // around them.
    assert!(
        applied.contains(": 2 statements applied and verified"),
        "{applied}"
    );
    clean(&env, path);
    assert_eq!(rows(&db, "SELECT id, email FROM user ORDER BY id").len(), 2);
    // `clean` already says there is no drift; name both objects anyway.
    assert!(!tables(&db).contains(&"scratch".to_owned()));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let index: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'chat_user_id_idx'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1);
}

#[test]
fn guard_reports_a_failed_command_and_can_restore() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    setup(&env, &project);
    let db = project.db_path();
    project.upgrade("head").assert_success();
    exec(&db, USERS);
    env.snapshot(&[db.to_str().unwrap()]);
    let before = dump(&db);
    let python = project.python().to_str().unwrap().to_owned();
    let breaks = format!(
        "import sqlite3, sys; c = sqlite3.connect('{}'); c.execute('DROP TABLE tag'); c.commit(); sys.exit(2)",
        db.display()
    );

    let out = env.run(&["guard", "app", "--", &python, "-c", &breaks]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.stdout.contains("FAILED with exit code 2"), "{out:?}");
    assert!(out.stdout.contains("- table tag"), "{out:?}");
    assert!(out.stdout.contains("missing table tag"), "{out:?}");
    assert!(out.stdout.contains("to undo: migsnap restore"), "{out:?}");
    assert!(!tables(&db).contains(&"tag".to_owned()));

    // Put it back by hand, then let guard do it.
    let undo = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("to undo: migsnap restore "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    env.run(&["restore", &undo, "app"]).assert_success();
    assert_eq!(dump(&db), before);
    assert!(tables(&db).contains(&"tag".to_owned()));
    let json = env
        .run(&[
            "--format",
            "json",
            "guard",
            "app",
            "--restore-on-failure",
            "--",
            &python,
            "-c",
            &breaks,
        ])
        .expect(1)
        .json();
    assert_eq!(json["exit_code"], 2);
    assert_eq!(json["restored"], true);
    assert_eq!(dump(&db), before);
    assert!(tables(&db).contains(&"tag".to_owned()));

    // A command that works and leaves no drift passes.
    let ok = env.run(&["guard", "app", "--", &python, "-c", "pass"]);
    assert_eq!(ok.status, 0, "{ok:?}");
    assert!(ok.stdout.contains("succeeded"), "{ok:?}");
}

/// Stamped ahead over a backfill: the schema is revision 1's, the stamp
/// says 3, and revision 2 creates `b` and fills it from `a`. A repair
/// would create `b` empty, so it warns, naming revision 2 and the fix; the
/// fix it names (a verified stamp at 1, then the upgrade) fills `b`.
#[test]
fn repair_warns_that_it_skips_a_backfill_and_its_hint_runs_it() {
    const CREATE_A: &str = "a1a1a1a1a1a1";
    const BACKFILL_B: &str = "b2b2b2b2b2b2";
    const ADD_NOTE: &str = "c3c3c3c3c3c3";
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    project.revision(Revision::new(CREATE_A, "create a").upgrade(
        r#"
        op.create_table(
            "a",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("name", sa.String(), nullable=False),
        )
        "#,
    ));
    project.revision(
        Revision::new(BACKFILL_B, "add b from a")
            .down(CREATE_A)
            .upgrade(
                r#"
                op.create_table(
                    "b",
                    sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("a_id", sa.Integer(), nullable=False),
                    sa.Column("name", sa.String(), nullable=False),
                )
                conn = op.get_bind()
                # Only when there is something to copy (UPDATE in a comment is no step).
                if conn.execute(sa.text("SELECT count(*) FROM a")).scalar():
                    op.execute("INSERT INTO b (a_id, name) SELECT id, name FROM a")
                "#,
            ),
    );
    project.revision(
        Revision::new(ADD_NOTE, "add b.note")
            .down(BACKFILL_B)
            .upgrade(r#"op.add_column("b", sa.Column("note", sa.Text(), nullable=True))"#),
    );
    setup(&env, &project);
    let db = project.db_path();
    let path = db.to_str().unwrap();
    project.upgrade(CREATE_A).assert_success();
    exec(
        &db,
        "INSERT INTO a (id, name) VALUES (1, 'one'), (2, 'two')",
    );
    // Stamped ahead by hand, as a fix script would.
    exec(
        &db,
        &format!("UPDATE alembic_version SET version_num = '{ADD_NOTE}'"),
    );

    let hash = file_hash(&db);
    let dry = env.run(&["repair", path]);
    assert_eq!(dry.status, 1, "a dry run with a plan: {dry:?}");
    assert!(dry.stdout.contains("CREATE TABLE \"b\""), "{dry:?}");
    let warning = dry
        .stdout
        .lines()
        .find(|line| line.starts_with("warning: [repair.skips-data-steps]"))
        .unwrap_or_else(|| panic!("no warning: {dry:?}"));
    assert!(
        warning.contains(&format!(
            "{BACKFILL_B}: the schema is revision {CREATE_A}; repairing towards {ADD_NOTE} skips revision {BACKFILL_B} (add b from a), whose upgrade moves rows (op.execute at line "
        )),
        "{warning}"
    );
    assert!(
        warning.contains(&format!(
            "(hint: `migsnap stamp --verify {CREATE_A}`, then `alembic upgrade heads`, runs them"
        )),
        "{warning}"
    );
    assert_eq!(
        dry.stdout.matches("repair.skips-data-steps").count(),
        1,
        "only revision 2 moves rows: {dry:?}"
    );

    let json = env
        .run(&["--format", "json", "repair", path])
        .expect(1)
        .json();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json}");
    assert_eq!(findings[0]["code"], "repair.skips-data-steps");
    assert_eq!(findings[0]["severity"], "warning");
    assert_eq!(findings[0]["revision"], BACKFILL_B);
    assert!(
        findings[0]["file"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{BACKFILL_B}_add_b_from_a.py")),
        "{json}"
    );
    assert_eq!(file_hash(&db), hash, "a dry run changes nothing");

    // The warning answers to [findings] ignore, like every finding.
    let toml = env.join("migsnap.toml");
    let configured = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!(
            "{configured}\n[[findings.ignore]]\ncode = \"repair.skips-data-steps\"\nreason = \"rows copied by hand\"\n"
        ),
    )
    .unwrap();
    let json = env
        .run(&["--format", "json", "repair", path])
        .expect(1)
        .json();
    assert_eq!(json["findings"], serde_json::json!([]), "{json}");
    std::fs::write(&toml, configured).unwrap();

    // The fix the hint names runs the backfill.
    env.run(&["stamp", "--verify", CREATE_A, "--db", path])
        .assert_success();
    project.upgrade("heads").assert_success();
    assert_eq!(
        rows(&db, "SELECT a_id, name FROM b ORDER BY a_id"),
        ["Integer(1)|Text(\"one\")", "Integer(2)|Text(\"two\")"]
    );
    // At the head, there is nothing to repair and nothing to warn about.
    let json = env.run(&["--format", "json", "repair", path]).ok_json();
    assert_eq!(json["findings"], serde_json::json!([]), "{json}");
}
