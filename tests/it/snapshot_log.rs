//! `snapshot`, `log` and `show`.

use insta::assert_snapshot;

use crate::common::{Journal, TestEnv, exec, exit};

fn is_short_hash(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[test]
fn unchanged_database_records_nothing_unless_allowed() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 30);
    let first = env.run(&["snapshot", "app.db"]);
    let short = first.assert_success().trim_end().to_owned();
    assert!(is_short_hash(&short), "{short:?}");
    let before = env.store_state();

    let out = env.run(&["snapshot"]);
    assert_eq!(
        out.assert_success(),
        format!("nothing changed since {short} (app); use --allow-empty to record anyway\n")
    );
    assert_eq!(
        env.store_state(),
        before,
        "an unchanged snapshot wrote to the store"
    );
    let json = env.run(&["--format", "json", "snapshot"]).ok_json();
    assert_eq!(json["recorded"], false);
    assert!(json["head"].as_str().unwrap().starts_with(&short));
    assert_eq!(env.log(None).len(), 1);

    let second = env.snapshot(&["--allow-empty", "-m", "checkpoint"]);
    assert!(!second.starts_with(&short));
    let log = env.log(None);
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["id"], second.as_str());
    assert_eq!(log[0]["message"], "checkpoint");
    assert_eq!(log[0]["parents"][0].as_str().unwrap()[..12], short);
    // Same pages: no page is stored again.
    assert!(log[0]["added_bytes"].as_u64().unwrap() < 4096, "{}", log[0]);
    assert_eq!(log[0]["schema_changed"], false);
}

#[test]
fn log_reports_alembic_schema_changes_and_sizes() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 40);
    exec(
        &db,
        "CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL PRIMARY KEY);
         INSERT INTO alembic_version VALUES ('f00d0002'), ('c0ffee01');",
    );
    let s1 = env.snapshot(&["app.db", "-m", "initial"]);
    exec(
        &db,
        "INSERT INTO items(name, payload) SELECT name || '-copy', payload FROM items;",
    );
    let s2 = env.snapshot(&["-m", "more rows"]);
    exec(
        &db,
        "CREATE INDEX items_by_name ON items(name);
         DELETE FROM alembic_version WHERE version_num = 'c0ffee01';
         UPDATE alembic_version SET version_num = 'beef0003';",
    );
    let s3 = env.snapshot(&["-m", "migrate\n\nbody line"]);

    let size = std::fs::metadata(&db).unwrap().len();
    let log = env.log(None);
    let ids: Vec<&str> = log.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [&s3, &s2, &s1]);
    for entry in &log {
        let page_size = entry["page_size"].as_u64().unwrap();
        let page_count = entry["page_count"].as_u64().unwrap();
        assert_eq!(
            entry["logical_size"].as_u64().unwrap(),
            page_size * page_count
        );
        assert!(entry["added_bytes"].as_u64().unwrap() > 0, "{entry}");
        assert_eq!(entry["database"], "app");
        assert_eq!(entry["schema_only"], false);
        assert_eq!(entry["data_forgotten"], false);
    }
    // The newest snapshot's logical size is the file's size.
    assert_eq!(log[0]["logical_size"].as_u64().unwrap(), size);
    assert_eq!(log[0]["page_size"], 4096);
    assert_eq!(
        log[2]["alembic_versions"],
        serde_json::json!(["c0ffee01", "f00d0002"])
    );
    assert_eq!(log[1]["alembic_versions"], log[2]["alembic_versions"]);
    assert_eq!(log[0]["alembic_versions"], serde_json::json!(["beef0003"]));
    let changed: Vec<bool> = log
        .iter()
        .map(|e| e["schema_changed"].as_bool().unwrap())
        .collect();
    assert_eq!(changed, [true, false, true]);
    assert_eq!(log[0]["refs"], serde_json::json!(["heads/app"]));
    assert_eq!(log[1]["refs"], serde_json::json!([]));
    assert_eq!(log[0]["parents"], serde_json::json!([s2]));
    assert_eq!(log[2]["parents"], serde_json::json!([]));
    assert_eq!(log[0]["message"], "migrate\n\nbody line");

    // -n limits, newest first.
    let json = env.run(&["--format", "json", "log", "-n", "1"]).ok_json();
    let one = json["snapshots"].as_array().unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["id"], s3.as_str());
    let text = env.run(&["log", "-n", "2"]);
    assert_eq!(
        text.assert_success().matches("\nsnapshot ").count() + 1,
        2,
        "{}",
        text.stdout
    );

    let oneline = env.run(&["log", "--oneline"]);
    assert_snapshot!(env.redact(oneline.assert_success()), @r"
    [SHORT] [TIME] alembic:beef0003 [schema changed] migrate (HEAD -> app)
    [SHORT] [TIME] alembic:c0ffee01,f00d0002 more rows
    [SHORT] [TIME] alembic:c0ffee01,f00d0002 [schema changed] initial
    ");
    let lines: Vec<&str> = oneline.stdout.lines().collect();
    assert!(lines[0].starts_with(&s3[..12]));
    assert!(lines[2].starts_with(&s1[..12]));

    // The long form: full ids, Alembic line, size line and the message.
    let long = env.run(&["log", "-n", "1"]);
    let long = long.assert_success();
    assert!(
        long.starts_with(&format!("snapshot {s3} (HEAD -> app)\n")),
        "{long}"
    );
    assert!(long.contains("\nAlembic: beef0003\n"), "{long}");
    assert!(long.contains("\nSize:    "), "{long}");
    assert!(long.contains(" pages of 4096 B); added "), "{long}");
    assert!(long.contains("Notes:   schema changed\n"), "{long}");
    assert!(
        long.contains("\n    migrate\n    \n    body line\n"),
        "{long}"
    );
}

#[test]
fn schema_only_snapshot_records_no_pages() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 30);
    let full = env.snapshot(&["app.db"]);
    exec(&env.join("app.db"), "CREATE TABLE extra(x INTEGER);");
    let out = env.run(&["--format", "json", "snapshot", "--schema-only"]);
    let json = out.ok_json();
    assert_eq!(json["schema_only"], true);
    let id = json["id"].as_str().unwrap().to_owned();
    // Only the new schema is stored: no pages, no image.
    assert_eq!(json["added_objects"], 1);

    let log = env.log(None);
    assert_eq!(log[0]["id"], id.as_str());
    assert_eq!(log[0]["schema_only"], true);
    assert_eq!(log[0]["schema_changed"], true);
    assert!(log[0]["logical_size"].is_null());
    assert!(log[0]["page_count"].is_null());
    assert_eq!(log[1]["id"], full.as_str());

    let oneline = env.run(&["log", "--oneline", "-n", "1"]);
    assert!(
        oneline
            .assert_success()
            .contains("[schema changed, schema-only]"),
        "{}",
        oneline.stdout
    );
    let show = env.run(&["show", &id]);
    assert!(
        show.assert_success()
            .contains("\nData:     none (schema-only snapshot)\n")
    );
    assert!(show.stdout.contains("CREATE TABLE extra(x INTEGER);"));

    // There is nothing to check out or restore.
    env.run(&["checkout", &id, "-o", "out.db"])
        .expect_error(exit::INPUT, &[&id[..12], "schema-only"]);
    assert!(!env.join("out.db").exists());
    env.run(&["restore", &id])
        .expect_error(exit::INPUT, &[&id[..12], "schema-only"]);
    // A second schema-only snapshot of the same schema changes nothing.
    let again = env.run(&["snapshot", "--schema-only"]);
    assert!(
        again.assert_success().starts_with("nothing changed since "),
        "{}",
        again.stdout
    );
}

#[test]
fn tags_given_when_snapshotting() {
    let env = TestEnv::with_store();
    env.make_db("app.db", Journal::Delete, 10);
    let id = env.snapshot(&["app.db", "--tag", "v1", "--tag", "release-1.0"]);
    assert_eq!(
        env.refs(),
        [
            ("heads/app".to_owned(), id.clone()),
            ("tags/release-1.0".to_owned(), id.clone()),
            ("tags/v1".to_owned(), id.clone()),
        ]
    );
    let log = env.log(None);
    assert_eq!(
        log[0]["refs"],
        serde_json::json!(["heads/app", "tags/release-1.0", "tags/v1"])
    );
    let oneline = env.run(&["log", "--oneline"]);
    assert!(
        oneline
            .assert_success()
            .contains("(HEAD -> app, tag: release-1.0, tag: v1)"),
        "{}",
        oneline.stdout
    );
    assert_eq!(env.resolve("v1"), id);

    // A taken or invalid tag fails the whole snapshot.
    let before = env.store_state();
    env.run(&["snapshot", "--allow-empty", "--tag", "v1"])
        .expect_error(exit::INPUT, &["tag 'v1' already exists"]);
    env.run(&["snapshot", "--allow-empty", "--tag", "bad name"])
        .expect_error(exit::INPUT, &["bad name"]);
    env.run(&["snapshot", "--allow-empty", "--tag", "ok", "--tag", "v1"])
        .expect_error(exit::INPUT, &["v1"]);
    assert_eq!(
        env.store_state(),
        before,
        "a failed tagged snapshot changed the store"
    );
}

#[test]
fn show_prints_metadata_and_schema_sql() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 10);
    exec(
        &db,
        "CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL PRIMARY KEY);
         INSERT INTO alembic_version VALUES ('ab12cd34');
         CREATE INDEX items_by_name ON items(name);
         CREATE VIEW item_names AS SELECT name FROM items;
         PRAGMA user_version = 7;
         PRAGMA application_id = 42;",
    );
    let id = env.snapshot(&["app.db", "-m", "first\nsecond line", "--tag", "v1"]);
    let out = env.run(&["show", "v1"]);
    let text = env.redact(out.assert_success());
    let text = regex::Regex::new(r"(?m)^(Host: +)\S+  \(migsnap [^)]*\)$")
        .unwrap()
        .replace(&text, "${1}[HOST]  ([TOOL])");
    let text = regex::Regex::new(r"(?m)^Added: .*$")
        .unwrap()
        .replace(&text, "Added:    [ADDED]");
    assert_snapshot!(text, @r"
    snapshot [ID]
    Refs:     heads/app, tags/v1
    Database: app ([TMP]/app.db)
    Date:     [TIME]
    Host:     [HOST]  ([TOOL])
    Alembic:  ab12cd34
    Meta:     user_version=7 application_id=42 journal_mode=delete
    Data:     20.0 KiB (5 pages of 4096 B)
    Added:    [ADDED]

        first
        second line

    CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL PRIMARY KEY);
    CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, payload BLOB);
    CREATE INDEX items_by_name ON items(name);
    CREATE VIEW item_names AS SELECT name FROM items;
    ");
    assert!(out.stdout.starts_with(&format!("snapshot {id}\n")));

    let json = env.run(&["--format", "json", "show", &id[..10]]).ok_json();
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["user_version"], 7);
    assert_eq!(json["application_id"], 42);
    assert_eq!(json["journal_mode"], "delete");
    assert_eq!(json["path"], db.display().to_string());
    assert_eq!(json["alembic_versions"], serde_json::json!(["ab12cd34"]));
    let sql = json["schema_sql"].as_str().unwrap();
    assert!(sql.contains("CREATE TABLE items("), "{sql}");
    assert!(sql.contains("CREATE INDEX items_by_name"), "{sql}");
    // `show` with no revision shows HEAD.
    assert!(
        env.run(&["show"])
            .assert_success()
            .starts_with(&format!("snapshot {id}\n"))
    );
}

#[test]
fn schema_only_snapshots_skip_changes_of_text_that_keep_the_meaning() {
    let env = TestEnv::with_store();
    let db = env.join("app.db");
    crate::common::exec(&db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);");
    env.snapshot(&["app.db", "--schema-only"]);
    let text = |db: &std::path::Path| -> String {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("SELECT sql FROM sqlite_schema WHERE name = 't'", [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    let before = text(&db);

    // Renaming away and back makes SQLite rewrite the stored CREATE text
    // (and bump the schema cookie) without changing what it means.
    crate::common::exec(
        &db,
        "ALTER TABLE t RENAME TO t2; ALTER TABLE t2 RENAME TO t;",
    );
    assert_ne!(text(&db), before, "the test needs the exact text to change");
    let out = env.run(&["snapshot", "--schema-only"]);
    assert!(
        out.assert_success().contains("nothing changed"),
        "{}",
        out.stdout
    );
    assert_eq!(env.log_ids(None).len(), 1);

    // A real change is recorded; an untouched file is recognised by its
    // schema cookie and recorded as unchanged.
    crate::common::exec(&db, "ALTER TABLE t ADD COLUMN w INTEGER;");
    env.snapshot(&["--schema-only"]);
    assert_eq!(env.log_ids(None).len(), 2);
    let out = env.run(&["snapshot", "--schema-only"]);
    assert!(
        out.assert_success().contains("nothing changed"),
        "{}",
        out.stdout
    );
    let log = env.log(None);
    assert_eq!(log[0]["schema_changed"], true);
}

#[test]
fn migration_artefacts_are_reported_by_snapshot_and_show() {
    let env = TestEnv::with_store();
    let db = env.join("app.db");
    // What a batch migration that died midway leaves behind on SQLite.
    crate::common::exec(
        &db,
        "CREATE TABLE chat (id INTEGER PRIMARY KEY, title TEXT);
         CREATE TABLE _alembic_tmp_chat (id INTEGER PRIMARY KEY, title TEXT NOT NULL);",
    );
    let out = env.run(&["--format", "json", "snapshot", "app.db"]);
    let json = out.json();
    let findings = json["findings"].as_array().expect("findings listed");
    assert_eq!(findings.len(), 1, "{json}");
    assert_eq!(findings[0]["code"], "artefact.alembic-tmp");
    assert_eq!(findings[0]["object"], "_alembic_tmp_chat");

    crate::common::exec(&db, "INSERT INTO chat(title) VALUES ('x');");
    let out = env.run(&["snapshot"]);
    assert!(
        out.stderr
            .contains("warning: [artefact.alembic-tmp] _alembic_tmp_chat"),
        "{}",
        out.stderr
    );
    let show = env.run(&["show"]);
    assert!(
        show.assert_success()
            .contains("Finding:  [artefact.alembic-tmp] _alembic_tmp_chat"),
        "{}",
        show.stdout
    );
    // A clean schema has none.
    crate::common::exec(&db, "DROP TABLE _alembic_tmp_chat;");
    let json = env.run(&["--format", "json", "snapshot"]).json();
    assert_eq!(json["findings"], serde_json::json!([]));
}

#[test]
fn peewee_migratehistory_is_metadata_not_schema() {
    let env = TestEnv::with_store();
    let db = env.join("app.db");
    // Open WebUI's databases carry peewee-migrate's table from before Alembic.
    crate::common::exec(
        &db,
        "CREATE TABLE chat (id INTEGER PRIMARY KEY);
         CREATE TABLE migratehistory (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL,
                                      migrated_at DATETIME NOT NULL);
         INSERT INTO migratehistory (name, migrated_at) VALUES
             ('001_initial_schema', '2024-01-01'), ('002_add_local_sharing', '2024-01-02');",
    );
    env.snapshot(&["app.db"]);
    let log = env.log(None);
    assert_eq!(
        log[0]["peewee_migrations"],
        serde_json::json!(["001_initial_schema", "002_add_local_sharing"])
    );
    let show = env.run(&["--format", "json", "show"]).json();
    let tables: Vec<&str> = show["schema"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tables, ["chat"], "migratehistory is not schema");
    assert!(
        env.run(&["show"])
            .assert_success()
            .contains("Peewee:   2 migration(s) in migratehistory, last 002_add_local_sharing")
    );

    // A new migration row is a metadata change: a schema-only snapshot records it.
    crate::common::exec(
        &db,
        "INSERT INTO migratehistory (name, migrated_at) VALUES ('003_x', '2024-01-03');",
    );
    env.snapshot(&["--schema-only"]);
    assert_eq!(env.log(None)[0]["peewee_migrations"][2], "003_x");
}

/// Runs a writer that is SIGKILLed inside a big write transaction on `db`,
/// after it has journaled old pages and spilled new ones into the file
/// (a tiny cache forces the spill), and checks that it left a hot journal
/// and a changed main file. Returns the journal's path.
fn crash_mid_transaction(db: &std::path::Path) -> std::path::PathBuf {
    let before_crash = crate::common::file_hash(db);
    let python = crate::common::sqlite_python();
    let killed = std::process::Command::new(&python)
        .arg("-c")
        .arg(
            "import os, sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('PRAGMA cache_size = 1')\n\
             c.execute('BEGIN IMMEDIATE')\n\
             c.execute('UPDATE items SET payload = zeroblob(length(payload)), name = \\'crashed\\'')\n\
             c.execute('DELETE FROM items WHERE id % 2 = 0')\n\
             os.kill(os.getpid(), 9)\n",
        )
        .arg(db)
        .status()
        .unwrap_or_else(|e| panic!("this test needs {python}: {e}"));
    assert!(!killed.success(), "the writer was meant to die");
    let mut journal = db.as_os_str().to_owned();
    journal.push("-journal");
    let journal = std::path::PathBuf::from(journal);
    assert!(
        std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0),
        "the killed writer left no hot journal"
    );
    assert_ne!(
        crate::common::file_hash(db),
        before_crash,
        "the killed writer spilled no page into the database file"
    );
    journal
}

/// Issue 10 item 13: an application killed inside a write transaction
/// leaves a hot journal, and pages of its unfinished change already in the
/// main file. A backup taken right after the crash must succeed and hold the
/// last committed state: SQLite's own rollback of the journal, as any
/// connection that may write the file does before reading it.
#[test]
fn a_snapshot_right_after_a_crash_rolls_the_hot_journal_back() {
    let env = TestEnv::with_store();
    let db = env.make_db("app.db", Journal::Delete, 400);
    let committed = crate::common::dump_digest(&db);
    let journal = crash_mid_transaction(&db);

    let id = env.snapshot(&["app.db"]);
    env.run(&["checkout", &id, "-o", "backup.db"])
        .assert_success();
    assert_eq!(
        crate::common::dump_digest(&env.join("backup.db")),
        committed,
        "the snapshot is not the last committed state"
    );
    assert!(!journal.exists(), "the hot journal is still there");
    assert_eq!(crate::common::dump_digest(&db), committed);
}

/// When the hot journal cannot be rolled back (the database's directory is
/// read-only), the snapshot is refused naming the journal and the safe way
/// out, and the journal is left alone.
#[test]
fn a_hot_journal_that_cannot_be_rolled_back_is_named() {
    let Some(mut fx) = crate::faults::FaultEnv::new("read-only hot journal") else {
        return;
    };
    let data = fx.env.join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("app.db");
    crate::common::create_db(&db, Journal::Delete, 400, 200);
    let committed = crate::common::dump_digest(&db);
    fx.env
        .run(&["track", "app", "data/app.db"])
        .assert_success();
    let journal = crash_mid_transaction(&db);
    let before = fx.env.store_state();
    fx.read_only(&data);
    let out = fx.env.run(&["snapshot", "app"]);
    out.expect_error(
        exit::REFUSED,
        &[
            "hot journal",
            &journal.display().to_string(),
            "crashed mid-transaction",
        ],
    );
    assert!(
        out.stderr
            .contains("hint: run migsnap again as a user who may write")
            && out.stderr.contains("never delete the journal"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("-shm"),
        "the hint is about WAL files: {}",
        out.stderr
    );
    fx.unmount_last();
    assert!(journal.exists(), "the hot journal was removed");
    assert_eq!(fx.env.store_state(), before);
    fx.env.run(&["snapshot", "app"]).assert_success();
    assert_eq!(crate::common::dump_digest(&db), committed);
}
