//! `history`, `replay`, `status`, `locate` and `accept` against real Alembic
//! projects run by real Alembic, including the drift cases people hit:
//! stamped ahead, tables created by hand, a dropped column, an unknown
//! revision, two heads.

use std::path::Path;

use crate::common::alembic::{AlembicProject, Revision, chat_app};
use crate::common::{TestEnv, exec};

/// A store beside `project`, told which Python has its Alembic.
fn setup(env: &TestEnv, project: &AlembicProject, extra: &str) {
    project.configure_store(env, extra);
}

fn status(env: &TestEnv, db: &Path) -> (i32, serde_json::Value) {
    let out = env.run(&["--format", "json", "status", db.to_str().unwrap()]);
    assert!(out.status == 0 || out.status == 1, "{out:?}");
    (out.status, out.json())
}

fn locate(env: &TestEnv, db: &Path, code: i32) -> serde_json::Value {
    env.run(&["--format", "json", "locate", db.to_str().unwrap()])
        .expect(code)
        .json()
}

/// The (op, kind, table, name) of every drift change.
fn drift(status: &serde_json::Value) -> Vec<(String, String, String)> {
    status["comparison"]["drift"]["changes"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|c| {
            let name = match c["table"].as_str() {
                Some(t) if c["kind"] == "column" => format!("{t}.{}", c["name"].as_str().unwrap()),
                _ => c["name"].as_str().unwrap().to_owned(),
            };
            (
                c["op"].as_str().unwrap().to_owned(),
                c["kind"].as_str().unwrap().to_owned(),
                name,
            )
        })
        .collect()
}

fn change(op: &str, kind: &str, name: &str) -> (String, String, String) {
    (op.to_owned(), kind.to_owned(), name.to_owned())
}

fn exact(located: &serde_json::Value) -> Vec<Vec<String>> {
    located["exact"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::from_value(c["targets"].clone()).unwrap())
        .collect()
}

fn codes(status: &serde_json::Value) -> Vec<String> {
    status["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn history_reads_the_graph_statically() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    setup(&env, &project, "");
    let json = env.run(&["--format", "json", "history"]).ok_json();
    assert_eq!(json["heads"], serde_json::json!([chat_app::HEAD]));
    assert_eq!(json["bases"], serde_json::json!([chat_app::BASE]));
    assert_eq!(
        json["branch_points"],
        serde_json::json!([chat_app::RENAME_BATCH])
    );
    assert_eq!(json["merge_points"], serde_json::json!([chat_app::MERGE]));
    let order: Vec<&str> = json["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["revision"].as_str().unwrap())
        .collect();
    assert_eq!(order, chat_app::ALL);
    let folder_id = &json["revisions"][6];
    assert_eq!(
        folder_id["depends_on"],
        serde_json::json!([chat_app::FOLDERS])
    );
    assert_eq!(json["findings"], serde_json::json!([]));
    let text = env.run(&["history"]).assert_success().to_owned();
    assert!(text.contains("(head)"), "{text}");
    assert!(text.contains("label: folders"), "{text}");
}

#[test]
fn the_project_is_found_as_alembic_finds_it() {
    let env = TestEnv::new();
    // Open WebUI keeps alembic.ini next to its package, not at the root.
    let Some(mut project) = AlembicProject::new_in(&env, "backend/open_webui") else {
        return;
    };
    project.revision(Revision::new("aaaa00000001", "one"));
    env.run(&["init"]).assert_success();
    env.run(&["history"])
        .expect_error(3, &["no migrations found in", "migsnap.toml"]);
    let ini = "backend/open_webui/alembic.ini";
    let json = env
        .run(&["--format", "json", "history", "-c", ini])
        .ok_json();
    assert_eq!(json["heads"], serde_json::json!(["aaaa00000001"]));
    let json = env
        .run_in(
            env.path(),
            &["--format", "json", "history"],
            &[("ALEMBIC_CONFIG", ini)],
        )
        .ok_json();
    assert_eq!(json["heads"], serde_json::json!(["aaaa00000001"]));
    env.run(&["history", "-c", ini, "-n", "other"])
        .expect_error(3, &["alembic.ini", "no [other] section"]);
    // From inside the project, as `alembic` is run.
    let json = env
        .run_in(project.root(), &["--format", "json", "history"], &[])
        .ok_json();
    assert_eq!(json["heads"], serde_json::json!(["aaaa00000001"]));
    // No database anywhere: the error says how to name one.
    env.run(&["status", "-c", ini]).expect_error(
        3,
        &[
            "which database?",
            "sqlalchemy.url names no existing SQLite file",
        ],
    );
}

#[test]
fn replay_builds_caches_and_refreshes_the_reference_chain() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    setup(&env, &project, "");
    let first = env.run(&["--format", "json", "replay"]).ok_json();
    let steps = first["steps"].as_array().unwrap();
    assert_eq!(steps.len(), chat_app::ALL.len());
    assert!(steps.iter().all(|s| s["cached"] == false));
    assert_eq!(first["ran_migrations"], true);
    // The reference chain mirrors the graph: the merge's reference has the
    // references of both parents as its parents.
    let merge = env.resolve(&format!("replay/default/revs/{}", chat_app::MERGE));
    let log = env.run(&["--format", "json", "show", &merge]).ok_json();
    assert_eq!(log["parents"].as_array().unwrap().len(), 2, "{log}");

    // Nothing changed: no Python at all.
    let again = env.run(&["--format", "json", "replay"]).ok_json();
    assert_eq!(again["ran_migrations"], false);
    assert!(
        again["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["cached"] == true)
    );

    // Editing one revision file replays that revision and those after it.
    let tags_file = std::fs::read_dir(project.versions_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(chat_app::TAGS))
        .unwrap();
    let mut text = std::fs::read_to_string(&tags_file).unwrap();
    text.push_str("\n# reviewed\n");
    std::fs::write(&tags_file, text).unwrap();
    let third = env.run(&["--format", "json", "replay"]).ok_json();
    let replayed: Vec<&str> = third["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["cached"] == false)
        .map(|s| s["targets"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        replayed,
        [chat_app::TAGS, chat_app::MERGE, chat_app::FOLDER_ID]
    );

    // The reference for the head is what `alembic upgrade head` builds, and
    // status finds the database named by sqlalchemy.url on its own.
    project.upgrade("head").assert_success();
    let out = env.run(&["--format", "json", "status"]);
    assert_eq!(out.status, 0, "{out:?}");
    let json = out.json();
    assert_eq!(json["class"], "at-heads");
    assert_eq!(json["clean"], true);
    assert_eq!(
        json["comparison"]["drift"]["changes"],
        serde_json::json!([])
    );
    assert_eq!(
        exact(&locate(&env, &project.db_path(), 0)),
        [[chat_app::HEAD]]
    );
}

#[test]
fn status_and_locate_explain_stamped_ahead_and_hand_made_tables() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    setup(&env, &project, "");
    let db = project.db_path();

    // Stamped ahead: the schema is ADD_ARCHIVED's, the stamp says head.
    project.upgrade(chat_app::BASE).assert_success();
    env.snapshot(&[db.to_str().unwrap(), "--schema-only"]);
    project.upgrade(chat_app::ADD_ARCHIVED).assert_success();
    let last_good = env.snapshot(&[db.to_str().unwrap(), "--schema-only"]);
    project.stamp("head").assert_success();
    let stamped = env.snapshot(&[db.to_str().unwrap(), "--schema-only"]);
    exec(&db, "CREATE TABLE notes (id INTEGER PRIMARY KEY)");
    env.snapshot(&[db.to_str().unwrap(), "--schema-only"]);
    exec(&db, "DROP TABLE notes");
    let (first_bad, good, matches) = bisect_drift(&env, "app");
    assert_eq!((first_bad, good), (stamped, last_good));
    assert_eq!(matches, [[chat_app::ADD_ARCHIVED]]);
    // Along the revision chain: the first revision whose reference the
    // database lacks is the batch rename.
    let revisions = env
        .run(&[
            "--format",
            "json",
            "bisect",
            "drift",
            "--revisions",
            db.to_str().unwrap(),
        ])
        .expect(1)
        .json();
    assert_eq!(
        revisions["first_bad"],
        chat_app::RENAME_BATCH,
        "{revisions}"
    );
    assert_eq!(revisions["last_good"], chat_app::ADD_ARCHIVED);
    let (code, json) = status(&env, &db);
    assert_eq!(code, 1);
    assert_eq!(json["class"], "at-heads");
    let found = drift(&json);
    for expected in [
        change("removed", "table", "folder"),
        change("removed", "table", "tag"),
        change("removed", "column", "chat.folder_id"),
        change("removed", "index", "chat_folder_id_idx"),
    ] {
        assert!(found.contains(&expected), "{expected:?} not in {found:?}");
    }
    assert!(codes(&json).contains(&"drift.schema".to_owned()));
    let located = locate(&env, &db, 1);
    assert_eq!(exact(&located), [[chat_app::ADD_ARCHIVED]]);
    assert_eq!(located["stamped"], serde_json::json!([chat_app::HEAD]));
    let text = env.run(&["locate", db.to_str().unwrap()]);
    assert!(
        text.stdout.contains(&format!(
            "looks like {}, stamped {}",
            chat_app::ADD_ARCHIVED,
            chat_app::HEAD
        )),
        "{text:?}"
    );

    // Tables created by hand: a fix script made `folder` exactly as the
    // FOLDERS migration would, so `alembic upgrade heads` dies.
    let db = project.root().join("data/hand.db");
    project
        .run_with(
            &["upgrade", chat_app::RENAME_BATCH],
            &[("DATABASE_URL", &format!("sqlite:///{}", db.display()))],
        )
        .assert_success();
    let last_good = env.snapshot(&[db.to_str().unwrap(), "--schema-only"]);
    let reference = env.join("reference.db");
    env.run(&[
        "checkout",
        &format!("replay/default/revs/{}", chat_app::FOLDERS),
        "-o",
        reference.to_str().unwrap(),
    ])
    .assert_success();
    let conn = rusqlite::Connection::open(&reference).unwrap();
    let ddl: Vec<String> = conn
        .prepare("SELECT sql FROM sqlite_schema WHERE tbl_name = 'folder' AND sql IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    exec(&db, &ddl.join(";\n"));
    let hand_made = env.snapshot(&[db.to_str().unwrap(), "--schema-only"]);
    let failed = project.run_with(
        &["upgrade", "heads"],
        &[("DATABASE_URL", &format!("sqlite:///{}", db.display()))],
    );
    assert_ne!(failed.status, 0);
    assert!(failed.stderr.contains("already exists"), "{failed:?}");
    let (code, json) = status(&env, &db);
    assert_eq!(code, 1);
    assert_eq!(json["class"], "behind");
    assert_eq!(
        json["position"]["pending"],
        serde_json::json!([
            chat_app::FOLDERS,
            chat_app::TAGS,
            chat_app::MERGE,
            chat_app::FOLDER_ID
        ])
    );
    assert_eq!(
        drift(&json),
        [
            change("added", "table", "folder"),
            change("added", "index", "folder_user_id_idx")
        ]
    );
    assert_eq!(exact(&locate(&env, &db, 1)), [[chat_app::FOLDERS]]);
    let (first_bad, good, matches) = bisect_drift(&env, "hand");
    assert_eq!((first_bad, good), (hand_made, last_good));
    assert_eq!(matches, [[chat_app::FOLDERS]]);
}

/// `bisect drift DB`: (first bad, last good, what the first bad matches).
fn bisect_drift(env: &TestEnv, db: &str) -> (String, String, Vec<Vec<String>>) {
    let json = env
        .run(&["--format", "json", "bisect", "drift", db])
        .expect(1)
        .json();
    assert_eq!(json["outcome"], "found", "{json}");
    (
        json["first_bad"].as_str().unwrap().to_owned(),
        json["last_good"].as_str().unwrap().to_owned(),
        serde_json::from_value(json["explained"]["matches"].clone()).unwrap(),
    )
}

#[test]
fn status_reports_dropped_columns_unknown_and_inconsistent_rows() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    setup(&env, &project, "");
    let db = project.db_path();
    project.upgrade("head").assert_success();
    env.snapshot(&[db.to_str().unwrap()]);
    exec(
        &db,
        "INSERT INTO user VALUES ('u1', 'Ann', 'ann@example.com', 'admin', 0)",
    );
    let last_good = env.snapshot(&[db.to_str().unwrap()]);

    exec(&db, "ALTER TABLE chat DROP COLUMN archived");
    let dropped = env.snapshot(&[db.to_str().unwrap()]);
    exec(
        &db,
        "INSERT INTO user VALUES ('u2', 'Bob', 'bob@example.com', 'user', 0)",
    );
    env.snapshot(&[db.to_str().unwrap()]);
    let json = env
        .run(&["--format", "json", "bisect", "drift", "app"])
        .expect(1)
        .json();
    assert_eq!(json["first_bad"], dropped.as_str(), "{json}");
    assert_eq!(json["last_good"], last_good.as_str());
    assert!(
        json["explained"]["drift"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["op"] == "removed" && c["name"] == "archived"),
        "{json}"
    );
    let (code, json) = status(&env, &db);
    assert_eq!(code, 1);
    assert_eq!(json["class"], "at-heads");
    assert!(
        drift(&json).contains(&change("removed", "column", "chat.archived")),
        "{:?}",
        drift(&json)
    );
    let located = locate(&env, &db, 1);
    assert_eq!(exact(&located), Vec::<Vec<String>>::new());
    assert_eq!(
        located["nearest"]["targets"],
        serde_json::json!([chat_app::HEAD])
    );

    exec(
        &db,
        "ALTER TABLE chat ADD COLUMN archived BOOLEAN DEFAULT (0) NOT NULL",
    );
    exec(
        &db,
        "UPDATE alembic_version SET version_num = 'deadbeef0000'",
    );
    env.snapshot(&[db.to_str().unwrap()]);
    let (code, json) = status(&env, &db);
    assert_eq!(code, 1);
    assert_eq!(json["class"], "unknown-revision");
    assert_eq!(
        json["position"]["unknown"],
        serde_json::json!(["deadbeef0000"])
    );
    assert!(codes(&json).contains(&"status.unknown-revision".to_owned()));
    // Bisect finds the first bad snapshot again: the drop came first.
    let json = env
        .run(&["--format", "json", "bisect", "drift", "app"])
        .expect(1)
        .json();
    assert_eq!(json["first_bad"], dropped.as_str(), "{json}");

    exec(
        &db,
        &format!(
            "UPDATE alembic_version SET version_num = '{}';
             INSERT INTO alembic_version VALUES ('{}')",
            chat_app::HEAD,
            chat_app::BASE
        ),
    );
    let (_, json) = status(&env, &db);
    assert_eq!(json["class"], "inconsistent");
    assert_eq!(json["position"]["ancestor"], chat_app::BASE);

    exec(&db, "DROP TABLE alembic_version");
    let (code, json) = status(&env, &db);
    assert_eq!(code, 1);
    assert_eq!(json["class"], "unversioned");
}

/// BASE ── A ─┬─ LEFT (label "left")
///            ├─ B2 ── C2
///            └─ X3 (depends_on "left")
fn two_heads(env: &TestEnv) -> Option<AlembicProject> {
    let mut p = AlembicProject::new(env)?;
    let table = |name: &str| {
        format!("op.create_table(\"{name}\", sa.Column(\"id\", sa.Integer(), primary_key=True))")
    };
    p.revision(Revision::new("base00000001", "base").upgrade(&table("base_t")));
    p.revision(
        Revision::new("a00000000002", "a")
            .down("base00000001")
            .upgrade(&table("a_t")),
    );
    p.revision(
        Revision::new("left00000003", "left")
            .down("a00000000002")
            .branch_label("left")
            .upgrade(&table("left_t")),
    );
    p.revision(
        Revision::new("b200000000004", "b2")
            .down("a00000000002")
            .upgrade(&table("b2_t")),
    );
    p.revision(
        Revision::new("c200000000005", "c2")
            .down("b200000000004")
            .upgrade(&table("c2_t")),
    );
    p.revision(
        Revision::new("x300000000006", "x3")
            .down("a00000000002")
            .depends_on("left")
            .upgrade(&table("x3_t")),
    );
    Some(p)
}

#[test]
fn two_heads_give_a_multi_row_version_table_with_its_own_reference() {
    let env = TestEnv::new();
    let Some(project) = two_heads(&env) else {
        return;
    };
    setup(&env, &project, "");
    let db = project.db_path();
    project.upgrade("heads").assert_success();
    let rows = crate::common::alembic::version_rows(&db).unwrap();
    assert!(rows.len() >= 2, "{rows:?}");
    assert!(rows.contains(&"c200000000005".to_owned()), "{rows:?}");

    let (code, json) = status(&env, &db);
    assert_eq!(json["class"], "at-heads");
    assert_eq!(json["position"], serde_json::json!({"class": "at-heads"}));
    assert_eq!(json["comparison"]["targets"], serde_json::json!(rows));
    assert_eq!(drift(&json), []);
    // Two heads are a finding of their own.
    assert_eq!(code, 1);
    assert_eq!(codes(&json), ["history.multiple-heads"]);
    let located = exact(&locate(&env, &db, 0));
    assert!(located.contains(&rows), "{located:?}");
    let last_good = env.snapshot(&[db.to_str().unwrap(), "--schema-only"]);
    exec(&db, "DROP TABLE c2_t");
    let dropped = env.snapshot(&[db.to_str().unwrap(), "--schema-only"]);
    let (first_bad, good, matches) = bisect_drift(&env, "app");
    assert_eq!((first_bad, good), (dropped, last_good));
    assert!(matches.is_empty(), "{matches:?}");

    // Upgraded along one branch only.
    std::fs::remove_file(&db).unwrap();
    project.upgrade("left00000003").assert_success();
    let (_, json) = status(&env, &db);
    assert_eq!(json["class"], "on-some-branches");
    assert_eq!(
        json["position"]["untracked_heads"],
        serde_json::json!(["c200000000005", "x300000000006"])
    );
    assert_eq!(
        json["position"]["pending"],
        serde_json::json!(["b200000000004", "c200000000005", "x300000000006"])
    );
    assert_eq!(drift(&json), []);
}

#[test]
fn replay_names_the_failing_revision_and_keeps_the_chain_before_it() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    project
        .revision(Revision::new("aaaa00000001", "one").upgrade(
            "op.create_table(\"one\", sa.Column(\"id\", sa.Integer(), primary_key=True))",
        ));
    let bad = project.revision(
        Revision::new("bbbb00000002", "two")
            .down("aaaa00000001")
            .upgrade("raise RuntimeError(\"boom: cannot migrate\")"),
    );
    setup(&env, &project, "");
    let out = env.run(&["--format", "json", "replay"]);
    assert_eq!(out.status, 1, "{out:?}");
    let json = out.json();
    assert_eq!(json["failure"]["revision"], "bbbb00000002");
    assert_eq!(
        std::fs::canonicalize(json["failure"]["file"].as_str().unwrap()).unwrap(),
        std::fs::canonicalize(&bad).unwrap()
    );
    assert!(
        json["failure"]["error"]
            .as_str()
            .unwrap()
            .contains("RuntimeError: boom: cannot migrate"),
        "{json}"
    );
    assert_eq!(json["steps"].as_array().unwrap().len(), 1);
    env.resolve("replay/default/revs/aaaa00000001");
    let text = env.run(&["replay"]);
    assert_eq!(text.status, 1);
    assert!(
        text.stdout.contains("migration bbbb00000002 failed"),
        "{text:?}"
    );
}

#[test]
fn replay_stops_a_hanging_migration_at_the_timeout() {
    let env = TestEnv::new();
    let Some(mut project) = AlembicProject::new(&env) else {
        return;
    };
    project
        .revision(Revision::new("aaaa00000001", "hangs").upgrade("import time\ntime.sleep(120)"));
    setup(&env, &project, "timeout = \"2s\"\n");
    let started = std::time::Instant::now();
    let out = env.run(&["--format", "json", "replay"]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let error = out.json()["failure"]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("did not finish within 2s"), "{error}");
}

#[test]
fn accepted_variants_are_not_drift() {
    let env = TestEnv::new();
    let Some(project) = AlembicProject::chat_app(&env) else {
        return;
    };
    setup(&env, &project, "");
    let db = project.db_path();
    project.upgrade("head").assert_success();
    // A legacy install created an extra index the migrations never made.
    exec(&db, "CREATE INDEX chat_title_idx ON chat(title)");
    let (code, _) = status(&env, &db);
    assert_eq!(code, 1);
    let accepted = env
        .run(&["--format", "json", "accept", db.to_str().unwrap(), "--yes"])
        .ok_json();
    assert_eq!(accepted["targets"], serde_json::json!([chat_app::HEAD]));
    let (code, json) = status(&env, &db);
    assert_eq!(code, 0, "{json}");
    assert!(json["comparison"]["variant"].is_string());
    let located = locate(&env, &db, 0);
    assert_eq!(exact(&located), [[chat_app::HEAD]]);
    // Accepting the same shape again is refused: nothing to accept.
    exec(&db, "DROP INDEX chat_title_idx");
    env.run(&["accept", db.to_str().unwrap(), "--yes"])
        .expect_error(3, &["already matches the reference"]);
}

#[test]
fn sql_folders_and_command_templates_replay_without_alembic() {
    let env = TestEnv::with_store();
    std::fs::create_dir(env.join("sql")).unwrap();
    std::fs::write(
        env.join("sql/0001_users.sql"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    )
    .unwrap();
    std::fs::write(
        env.join("sql/0002_posts.sql"),
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id));",
    )
    .unwrap();
    std::fs::write(
        env.join("migsnap.toml"),
        "[migrations]\nkind = \"sql\"\ndir = \"sql\"\n",
    )
    .unwrap();
    let replayed = env.run(&["--format", "json", "replay"]).ok_json();
    assert_eq!(replayed["steps"].as_array().unwrap().len(), 2);

    let db = env.join("app.db");
    exec(
        &db,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL); PRAGMA user_version = 1;",
    );
    let (_, json) = status(&env, &db);
    assert_eq!(json["class"], "behind");
    assert_eq!(json["rows"], serde_json::json!(["0001"]));
    assert_eq!(json["position"]["pending"], serde_json::json!(["0002"]));
    assert_eq!(drift(&json), []);

    // The same folder through a command template: a script applies one file
    // per step, as another migration tool would.
    let python = crate::common::sqlite_python();
    std::fs::write(
        env.join("apply.py"),
        "import glob, sqlite3, sys\n\
         db, rev = sys.argv[1], sys.argv[2]\n\
         c = sqlite3.connect(db)\n\
         [path] = glob.glob(f'sql/{rev}_*.sql')\n\
         c.executescript(open(path).read())\n\
         c.execute(f'PRAGMA user_version = {int(rev)}')\n\
         c.commit()\n",
    )
    .unwrap();
    std::fs::write(
        env.join("migsnap.toml"),
        format!(
            "[migrations]\nkind = \"sql\"\ndir = \"sql\"\nupgrade = \"{python} apply.py {{db}} {{rev}}\"\n"
        ),
    )
    .unwrap();
    let templated = env.run(&["--format", "json", "replay"]).ok_json();
    // A different runner is a different key: everything is replayed again.
    assert!(
        templated["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["cached"] == false)
    );
    let (_, json) = status(&env, &db);
    assert_eq!(drift(&json), []);
}
