//! The Alembic fixture (`common::alembic`) with real Alembic, and what
//! `migsnap snapshot` records of the databases it migrates.
//!
//! These need `MIGSNAP_TEST_PYTHON` (set by `scripts/test.sh`); each `alembic`
//! run starts Python, so each test runs only a few.

use std::ffi::OsString;

use crate::common::alembic::{
    AlembicProject, HeaderStyle, Interpreter, Revision, chat_app, columns, interpreter_from, slug,
    table_entry, tables, version_rows,
};
use crate::common::{TestEnv, exec};

fn names(cols: &[crate::common::alembic::Column]) -> Vec<&str> {
    cols.iter().map(|c| c.name.as_str()).collect()
}

fn sorted(revs: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = revs.iter().map(|r| (*r).to_owned()).collect();
    v.sort();
    v
}

/// `alembic_versions` of the newest snapshot, as `log --format json` says.
#[track_caller]
fn logged_versions(env: &TestEnv) -> serde_json::Value {
    env.log(None)[0]["alembic_versions"].clone()
}

#[test]
fn missing_python_fails_with_instructions_unless_skipped() {
    let python = std::env::current_exe().unwrap();
    assert_eq!(
        interpreter_from(Some(python.clone().into()), None),
        Interpreter::Use(python.clone())
    );
    for unset in [None, Some(OsString::new())] {
        let Interpreter::Missing(message) = interpreter_from(unset.clone(), None) else {
            panic!("{unset:?} must fail");
        };
        assert!(
            message.contains("MIGSNAP_TEST_PYTHON is not set"),
            "{message}"
        );
        assert!(message.contains("bash scripts/test.sh"), "{message}");
        assert!(message.contains("MIGSNAP_SKIP_ALEMBIC=1"), "{message}");
        // Only an explicit 1 skips.
        assert!(matches!(
            interpreter_from(unset.clone(), Some("0".into())),
            Interpreter::Missing(_)
        ));
        assert_eq!(interpreter_from(unset, Some("1".into())), Interpreter::Skip);
    }
    let Interpreter::Missing(message) =
        interpreter_from(Some("/nonexistent/bin/python".into()), None)
    else {
        panic!("a missing interpreter must fail");
    };
    assert!(
        message.contains("/nonexistent/bin/python does not exist"),
        "{message}"
    );
    assert_eq!(
        interpreter_from(Some(python.into()), Some("1".into())),
        Interpreter::Skip
    );
}

#[test]
fn revision_files_use_alembics_header_forms() {
    let typed = Revision::new("aaaaaaaaaaa1", "Add folder_id to chat!")
        .merge(&["bbbbbbbbbbb2", "ccccccccccc3"])
        .branch_label("folders")
        .depends_on("ddddddddddd4")
        .upgrade("\n    op.drop_table(\"x\")\n    if True:\n        pass\n");
    assert_eq!(typed.file_name(), "aaaaaaaaaaa1_add_folder_id_to_chat.py");
    let text = typed.render();
    for line in [
        "\"\"\"Add folder_id to chat!\n\nRevision ID: aaaaaaaaaaa1\nRevises: bbbbbbbbbbb2, ccccccccccc3\nCreate Date: ",
        "\nrevision: str = 'aaaaaaaaaaa1'\n",
        "\ndown_revision: Union[str, Sequence[str], None] = ('bbbbbbbbbbb2', 'ccccccccccc3')\n",
        "\nbranch_labels: Union[str, Sequence[str], None] = ('folders',)\n",
        "\ndepends_on: Union[str, Sequence[str], None] = 'ddddddddddd4'\n",
        "\ndef upgrade() -> None:\n    \"\"\"Upgrade schema.\"\"\"\n    op.drop_table(\"x\")\n    if True:\n        pass\n\n\ndef downgrade() -> None:\n    \"\"\"Downgrade schema.\"\"\"\n    pass\n",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }

    let legacy = Revision::new("aaaaaaaaaaa1", "m")
        .down("bbbbbbbbbbb2")
        .style(HeaderStyle::TypedLegacy)
        .render();
    assert!(legacy.contains("\nRevises: bbbbbbbbbbb2\n"), "{legacy}");
    assert!(
        legacy.contains("\ndown_revision: Union[str, None] = 'bbbbbbbbbbb2'\n"),
        "{legacy}"
    );
    assert!(
        legacy.contains("\ndef upgrade() -> None:\n    pass\n"),
        "{legacy}"
    );

    let untyped = Revision::new("aaaaaaaaaaa1", "m")
        .style(HeaderStyle::Untyped)
        .header_revises("zzz")
        .render();
    assert!(untyped.contains("\nRevises: zzz\n"), "{untyped}");
    for line in [
        "\nrevision = \"aaaaaaaaaaa1\"\n",
        "\ndown_revision = None\n",
        "\nbranch_labels = None\n",
        "\ndef upgrade():\n    pass\n",
    ] {
        assert!(untyped.contains(line), "{line:?} not in:\n{untyped}");
    }

    assert_eq!(
        slug("init user and chat tables"),
        "init_user_and_chat_tables"
    );
    assert_eq!(
        slug("add first_name, last_name columns to the user table please"),
        "add_first_name_last_name_columns_to_the_"
    );
}

/// Upgrade to head creates the tables and stamps the head; migsnap records the
/// revision; downgrade to base (back through the merge) empties it again.
#[test]
fn chat_app_upgrades_to_head_and_back_to_base() {
    let env = TestEnv::with_store();
    let Some(app) = AlembicProject::chat_app(&env) else {
        return;
    };
    assert_eq!(app.revision_ids(), chat_app::ALL);

    let up = app.upgrade("head");
    up.assert_success();
    let applied: Vec<&str> = up
        .stderr
        .lines()
        .filter(|l| l.contains("Running upgrade "))
        .collect();
    assert_eq!(applied.len(), chat_app::ALL.len(), "{}", up.stderr);
    assert!(applied[0].contains(&format!(" -> {}, ", chat_app::BASE)));
    assert!(applied[6].contains(&format!(" -> {}, ", chat_app::HEAD)));

    let db = app.db_path();
    let mut expected: Vec<&str> = chat_app::HEAD_TABLES.to_vec();
    expected.push("alembic_version");
    expected.sort();
    assert_eq!(tables(&db), expected);
    assert_eq!(version_rows(&db), Some(vec![chat_app::HEAD.to_owned()]));
    assert_eq!(
        names(&columns(&db, "chat")),
        [
            "id",
            "user_id",
            "title",
            "content",
            "created_at",
            "updated_at",
            "archived",
            "folder_id"
        ]
    );
    assert_eq!(
        names(&columns(&db, "tag")),
        ["id", "name", "user_id", "meta"]
    );
    let tag_pk: Vec<i64> = columns(&db, "tag").iter().map(|c| c.pk).collect();
    assert_eq!(tag_pk, [1, 0, 2, 0]);
    assert_eq!(app.current_revisions(), [chat_app::HEAD]);

    let id = env.snapshot(&[AlembicProject::DB, "-m", "at head"]);
    let log = env.log(None);
    assert_eq!(log[0]["id"], id.as_str());
    assert_eq!(log[0]["database"], "app");
    assert_eq!(
        log[0]["alembic_versions"],
        serde_json::json!([chat_app::HEAD])
    );

    let down = app.downgrade("base");
    down.assert_success();
    let reverted = down
        .stderr
        .lines()
        .filter(|l| l.contains("Running downgrade "))
        .count();
    assert_eq!(reverted, chat_app::ALL.len(), "{}", down.stderr);
    assert_eq!(tables(&db), ["alembic_version"]);
    assert_eq!(version_rows(&db), Some(vec![]));
    env.snapshot(&["-m", "at base"]);
    assert_eq!(logged_versions(&env), serde_json::json!([]));
}

/// Both branches applied before the merge: two rows in `alembic_version`,
/// both recorded; the merge collapses them to one.
#[test]
fn two_heads_before_the_merge_are_two_rows() {
    let env = TestEnv::with_store();
    let Some(app) = AlembicProject::chat_app(&env) else {
        return;
    };
    let db = app.db_path();

    app.upgrade(chat_app::FOLDERS).assert_success();
    assert_eq!(version_rows(&db), Some(vec![chat_app::FOLDERS.to_owned()]));
    env.snapshot(&[AlembicProject::DB, "-m", "folders"]);
    assert_eq!(
        logged_versions(&env),
        serde_json::json!([chat_app::FOLDERS])
    );

    app.upgrade(chat_app::TAGS).assert_success();
    let both = sorted(&[chat_app::FOLDERS, chat_app::TAGS]);
    assert_eq!(version_rows(&db), Some(both.clone()));
    assert!(tables(&db).contains(&"folder".to_owned()));
    assert!(tables(&db).contains(&"tag".to_owned()));
    env.snapshot(&["-m", "two heads"]);
    assert_eq!(logged_versions(&env), serde_json::json!(both));
    let oneline = env.run(&["log", "--oneline", "-n", "1"]);
    assert!(
        oneline
            .assert_success()
            .contains(&format!(" alembic:{} ", both.join(","))),
        "{}",
        oneline.stdout
    );

    app.upgrade(chat_app::MERGE).assert_success();
    assert_eq!(version_rows(&db), Some(vec![chat_app::MERGE.to_owned()]));
    env.snapshot(&["-m", "merged"]);
    assert_eq!(logged_versions(&env), serde_json::json!([chat_app::MERGE]));
    assert_eq!(env.log(None).len(), 3);
}

/// The `batch_alter_table` revision rebuilds `chat` on SQLite (new root page,
/// the rename and the nullability change visible, rows kept, no leftover
/// `_alembic_tmp_chat`), and its downgrade rebuilds it back.
#[test]
fn batch_alter_table_rebuilds_the_table() {
    let env = TestEnv::new();
    let Some(app) = AlembicProject::chat_app(&env) else {
        return;
    };
    let db = app.db_path();
    app.upgrade(chat_app::ADD_ARCHIVED).assert_success();
    exec(
        &db,
        r#"INSERT INTO "user" VALUES ('u1', 'Ada', 'ada@example.org', 'admin', 1700000000);
           INSERT INTO chat(id, user_id, title, chat, created_at, updated_at)
               VALUES ('c1', 'u1', 'first', '{"messages": []}', 1, 2),
                      ('c2', 'u1', 'second', '{"messages": [1]}', 3, 4);"#,
    );
    let before = columns(&db, "chat");
    assert_eq!(
        names(&before),
        [
            "id",
            "user_id",
            "title",
            "chat",
            "created_at",
            "updated_at",
            "archived"
        ]
    );
    assert!(before[2].not_null);
    let (sql_before, root_before) = table_entry(&db, "chat");
    let rows = |col: &str| -> String {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(
            &format!("SELECT group_concat(id || '=' || \"{col}\" || '/' || archived, ';') FROM (SELECT * FROM chat ORDER BY id)"),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let data = r#"c1={"messages": []}/0;c2={"messages": [1]}/0"#;
    assert_eq!(rows("chat"), data);

    app.upgrade(chat_app::RENAME_BATCH).assert_success();
    let after = columns(&db, "chat");
    assert_eq!(
        names(&after),
        [
            "id",
            "user_id",
            "title",
            "content",
            "created_at",
            "updated_at",
            "archived"
        ]
    );
    assert!(!after[2].not_null, "title must now be nullable");
    assert!(after[3].not_null);
    let (sql_after, root_after) = table_entry(&db, "chat");
    assert_ne!(
        root_after, root_before,
        "chat was not rebuilt:\n{sql_after}"
    );
    assert_ne!(sql_after, sql_before);
    assert_eq!(rows("content"), data);
    let all = tables(&db);
    assert!(
        !all.iter().any(|t| t.starts_with("_alembic_tmp")),
        "{all:?}"
    );
    // The rebuild kept the index.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let index_table: String = conn
        .query_row(
            "SELECT tbl_name FROM sqlite_schema WHERE type = 'index' AND name = 'chat_user_id_idx'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index_table, "chat");
    drop(conn);

    app.downgrade("-1").assert_success();
    assert_eq!(
        version_rows(&db),
        Some(vec![chat_app::ADD_ARCHIVED.to_owned()])
    );
    let back = columns(&db, "chat");
    assert_eq!(names(&back), names(&before));
    assert!(back[2].not_null);
    assert_eq!(rows("chat"), data);
}

/// `env.py` takes `DATABASE_URL` over the ini's URL (as Open WebUI's does);
/// `stamp` writes only `alembic_version`; a project can live in a subdirectory.
#[test]
fn database_url_wins_and_stamp_writes_only_the_version() {
    let env = TestEnv::new();
    let Some(mut app) = AlembicProject::new_in(&env, "backend/open_webui") else {
        return;
    };
    app.revision(
        Revision::new("0a1b2c3d4e5f", "create note")
            .upgrade(
                r#"
                op.create_table("note", sa.Column("id", sa.Integer(), primary_key=True))
                "#,
            )
            .downgrade(r#"op.drop_table("note")"#),
    );
    let elsewhere = env.join("elsewhere.db");
    let url = format!("sqlite:///{}", elsewhere.display());
    app.run_with(&["upgrade", "head"], &[("DATABASE_URL", url.as_str())])
        .assert_success();
    assert_eq!(tables(&elsewhere), ["alembic_version", "note"]);
    assert_eq!(
        version_rows(&elsewhere),
        Some(vec!["0a1b2c3d4e5f".to_owned()])
    );
    assert!(!app.db_path().exists(), "the ini's database was used");

    app.stamp("head").assert_success();
    assert_eq!(app.db_path(), env.join("backend/open_webui/data/app.db"));
    assert_eq!(tables(&app.db_path()), ["alembic_version"]);
    assert_eq!(app.version_rows(), Some(vec!["0a1b2c3d4e5f".to_owned()]));
}
