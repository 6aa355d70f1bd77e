//! The JSON of the commands is the serialization of the engine's
//! typed reports: these tests pin each document's field set, so a renamed
//! or dropped field fails here before it reaches a script. A SQL-folder
//! project keeps them free of Python.

use std::collections::BTreeSet;

use crate::common::{TestEnv, exec, write_sql_project};

/// A store, a SQL folder of two migrations, and `app.db` at the first.
fn sql_project() -> TestEnv {
    let env = TestEnv::with_store();
    write_sql_project(&env);
    exec(
        &env.join("app.db"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO t VALUES (1, 'a');
         PRAGMA user_version = 1;",
    );
    env
}

/// The keys of a JSON object.
#[track_caller]
fn keys(json: &serde_json::Value) -> BTreeSet<&str> {
    json.as_object()
        .unwrap_or_else(|| panic!("not an object: {json}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// The set of `names`.
fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

#[test]
fn stamp_json_has_the_documented_fields_in_each_outcome() {
    let env = sql_project();
    let refused = env.run(&["--format", "json", "stamp", "app.db", "0002"]);
    refused.expect(1);
    let json = refused.json();
    assert_eq!(
        keys(&json),
        set(&[
            "database",
            "targets",
            "stamped",
            "reference",
            "unknown",
            "drift"
        ])
    );
    assert_eq!(json["stamped"], false);
    assert!(json["drift"]["changes"].is_array(), "{json}");

    // Nothing recorded yet, so the stamp has something to write.
    exec(&env.join("app.db"), "PRAGMA user_version = 0;");
    let stamped = env.run(&["--format", "json", "stamp", "app.db", "0001"]);
    let json = stamped.ok_json();
    assert_eq!(
        keys(&json),
        set(&[
            "database",
            "targets",
            "stamped",
            "reference",
            "unknown",
            "variant",
            "safety_snapshot"
        ])
    );
    assert_eq!(json["stamped"], true);
    assert_eq!(json["targets"], serde_json::json!(["0001"]));
    assert!(json["variant"].is_null(), "{json}");

    let again = env.run(&["--format", "json", "stamp", "app.db", "0001"]);
    let json = again.ok_json();
    assert_eq!(
        keys(&json),
        set(&[
            "database",
            "targets",
            "stamped",
            "reference",
            "unknown",
            "unchanged"
        ])
    );
    assert_eq!(json["unchanged"], true);
    assert_eq!(json["stamped"], false);
}

#[test]
fn repair_json_has_the_documented_fields_planned_and_applied() {
    let env = sql_project();
    // Stamped at 0002 without its column: the plan adds it.
    exec(&env.join("app.db"), "PRAGMA user_version = 2;");
    let fields = set(&[
        "database",
        "targets",
        "inferred",
        "reference",
        "plan",
        "kept",
        "destructive",
        "findings",
        "applied",
        "safety_snapshot",
        "after_snapshot",
    ]);
    let planned = env.run(&["--format", "json", "repair", "app.db"]);
    planned.expect(1);
    let json = planned.json();
    assert_eq!(keys(&json), fields);
    assert_eq!(keys(&json["plan"]), set(&["steps"]));
    assert_eq!(
        keys(&json["plan"]["steps"][0]),
        set(&["sql", "reason", "destructive"])
    );
    assert_eq!(keys(&json["kept"]), set(&["changes"]));
    assert_eq!(json["applied"], false);
    assert_eq!(json["findings"], serde_json::json!([]), "{json}");
    assert!(json["safety_snapshot"].is_null(), "{json}");

    let applied = env.run(&["--format", "json", "repair", "app.db", "--apply"]);
    let json = applied.ok_json();
    assert_eq!(keys(&json), fields);
    assert_eq!(json["applied"], true);
    assert!(json["safety_snapshot"].is_string(), "{json}");
    assert!(json["after_snapshot"].is_string(), "{json}");
}

#[test]
fn status_json_has_the_documented_fields_and_the_changes_since_the_last_snapshot() {
    let env = sql_project();
    env.run(&["track", "app", "app.db"]).assert_success();
    let fields = set(&[
        "database",
        "rows",
        "position",
        "class",
        "schema_matches",
        "heads",
        "comparison",
        "replay_failure",
        "models",
        "findings",
        "ignored",
        "fail_on",
        "strict",
        "clean",
        "project",
        "since_snapshot",
    ]);
    // Before the first snapshot there is nothing to compare with.
    let json = env.run(&["--format", "json", "status", "app"]).ok_json();
    assert_eq!(keys(&json), fields);
    assert!(json["since_snapshot"].is_null(), "{json}");
    // A SQL folder has no models.
    assert!(json["models"].is_null(), "{json}");
    assert_eq!(
        keys(&json["project"]),
        set(&["kind", "root", "version_locations", "revisions"])
    );
    assert_eq!(
        keys(&json["comparison"]),
        set(&["targets", "reference", "variant", "drift", "inferred"])
    );

    env.run(&["snapshot", "app"]).assert_success();
    exec(&env.join("app.db"), "CREATE TABLE extra (a);");
    let out = env.run(&["--format", "json", "status", "app"]);
    out.expect(1);
    let json = out.json();
    assert_eq!(keys(&json), fields);
    assert_eq!(keys(&json["since_snapshot"]), set(&["snapshot", "changes"]));
    let changes = json["since_snapshot"]["changes"]["changes"]
        .as_array()
        .unwrap();
    assert_eq!(changes.len(), 1, "{json}");
    assert_eq!(changes[0]["name"], "extra");
    assert_eq!(changes[0]["op"], "added");
}

#[test]
fn du_json_has_the_documented_fields() {
    let env = sql_project();
    env.run(&["track", "app", "app.db"]).assert_success();
    env.run(&["snapshot", "app"]).assert_success();
    env.run(&["snapshot", "app", "--schema-only", "--allow-empty"])
        .assert_success();
    let json = env.run(&["--format", "json", "du"]).ok_json();
    assert_eq!(
        keys(&json),
        set(&[
            "store_file_bytes",
            "objects",
            "stored_bytes",
            "snapshots",
            "logical_total",
            "dedup_ratio"
        ])
    );
    let snapshots = json["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 2, "{json}");
    for snapshot in snapshots {
        assert_eq!(
            keys(snapshot),
            set(&[
                "id",
                "database",
                "time",
                "logical_size",
                "added_bytes",
                "added_objects",
                "data_forgotten"
            ])
        );
        assert!(snapshot["time"].as_str().unwrap().ends_with('Z'), "{json}");
    }
    // Newest first: the schema-only snapshot has no logical size.
    assert!(snapshots[0]["logical_size"].is_null(), "{json}");
    assert!(snapshots[1]["logical_size"].is_u64(), "{json}");
}

/// The fields of a log entry in `log`, `bisect` and `show`.
const ENTRY: &[&str] = &[
    "id",
    "parents",
    "database",
    "time",
    "message",
    "refs",
    "alembic_versions",
    "peewee_migrations",
    "schema_changed",
    "schema_only",
    "data_forgotten",
    "logical_size",
    "page_size",
    "page_count",
    "added_bytes",
    "added_objects",
    "integrity",
    "safety",
];

/// The fields the shared verdict adds to a judging command's document.
const VERDICT: &[&str] = &["findings", "ignored", "fail_on", "strict", "clean"];

/// `names` and the verdict's fields.
fn with_verdict<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().chain(VERDICT).copied().collect()
}

/// [`sql_project`] with `app.db` tracked as `app`, snapshotted, then given
/// the column of 0002 and snapshotted again.
fn two_snapshots() -> TestEnv {
    let env = sql_project();
    env.run(&["track", "app", "app.db"]).assert_success();
    env.run(&["snapshot", "app", "-m", "first"])
        .assert_success();
    exec(
        &env.join("app.db"),
        "ALTER TABLE t ADD COLUMN x INTEGER; PRAGMA user_version = 2;",
    );
    env.run(&["snapshot", "app", "-m", "second"])
        .assert_success();
    env
}

#[test]
fn log_json_has_the_documented_fields() {
    let env = two_snapshots();
    let json = env.run(&["--format", "json", "log", "app"]).ok_json();
    assert_eq!(keys(&json), set(&["database", "snapshots"]));
    assert_eq!(keys(&json["snapshots"][0]), set(ENTRY));

    let json = env
        .run(&[
            "--format",
            "json",
            "log",
            "app",
            "--patch",
            "--changed",
            "column:t.x",
        ])
        .ok_json();
    assert_eq!(keys(&json), set(&["database", "snapshots", "changed"]));
    let mut fields = set(ENTRY);
    fields.extend(["change", "patch"]);
    assert_eq!(keys(&json["snapshots"][0]), fields);
}

#[test]
fn accept_json_has_the_documented_fields_in_each_mode() {
    let env = sql_project();
    exec(&env.join("app.db"), "CREATE INDEX t_name ON t(name);");
    let refused = env.run(&["--format", "json", "accept", "app.db"]);
    refused.expect(4);
    let fields = set(&["targets", "reference", "diff", "accepted"]);
    assert_eq!(keys(&refused.json()), fields);

    let json = env
        .run(&["--format", "json", "accept", "app.db", "--yes"])
        .ok_json();
    let mut accepted = fields.clone();
    accepted.extend(["snapshot", "ref"]);
    assert_eq!(keys(&json), accepted);
    let id = json["snapshot"].as_str().unwrap().to_owned();

    let json = env.run(&["--format", "json", "accept", "--list"]).ok_json();
    assert_eq!(keys(&json), set(&["variants"]));
    let json = env
        .run(&["--format", "json", "accept", "--remove", &id[..8]])
        .ok_json();
    assert_eq!(keys(&json), set(&["removed"]));
}

#[test]
fn forget_json_has_the_documented_fields() {
    let env = two_snapshots();
    let json = env
        .run(&[
            "--format",
            "json",
            "forget",
            "--keep-last",
            "1",
            "--dry-run",
        ])
        .ok_json();
    assert_eq!(keys(&json), set(&["dry_run", "kept", "forgotten"]));
    assert_eq!(
        keys(&json["kept"][0]),
        set(&["id", "time", "database", "reasons"])
    );
    assert_eq!(
        keys(&json["forgotten"][0]),
        set(&["id", "time", "database"])
    );
}

#[test]
fn diff_json_has_the_documented_fields_for_schema_and_data() {
    let env = two_snapshots();
    let out = env.run(&["--format", "json", "diff", "HEAD~1", "HEAD"]);
    out.expect(1);
    assert_eq!(keys(&out.json()), set(&["a", "b", "changes"]));
    let out = env.run(&["--format", "json", "diff", "--data", "HEAD~1", "HEAD"]);
    assert_eq!(keys(&out.json()), set(&["a", "b", "tables"]));
}

#[test]
fn gc_json_has_the_documented_fields() {
    let env = two_snapshots();
    let json = env.run(&["--format", "json", "gc", "--dry-run"]).ok_json();
    assert_eq!(
        keys(&json),
        set(&[
            "dry_run",
            "deleted_objects",
            "freed_bytes",
            "kept_objects",
            "expired_reflog_entries",
            "store_size_before",
            "store_size_after",
            "packed"
        ])
    );
    assert_eq!(
        keys(&json["packed"]),
        set(&[
            "loose_packs",
            "packed_packs",
            "objects",
            "bytes_before",
            "bytes_after",
            "trained_dictionary"
        ])
    );
}

#[test]
fn bisect_json_has_the_documented_fields_in_each_step() {
    let env = two_snapshots();
    let json = env.run(&["--format", "json", "bisect", "start"]).ok_json();
    assert_eq!(keys(&json), set(&["database", "marked", "next"]));
    assert_eq!(keys(&json["next"]), set(&["state"]));
    assert_eq!(json["next"]["state"], "need-good");
    env.run(&["bisect", "reset"]).assert_success();

    let json = env
        .run(&["--format", "json", "bisect", "start", "--from-root"])
        .ok_json();
    assert_eq!(json["next"]["state"], "test", "{json}");
    assert_eq!(
        keys(&json["next"]),
        set(&["state", "candidate", "remaining", "steps", "path"])
    );
    assert_eq!(keys(&json["next"]["candidate"]), set(ENTRY));

    let json = env
        .run(&["--format", "json", "bisect", "run", "--", "true"])
        .ok_json();
    assert_eq!(keys(&json), set(&["database", "steps", "next"]));
    assert_eq!(
        keys(&json["steps"][0]),
        set(&["id", "verdict", "exit_code"])
    );
    assert_eq!(json["next"]["state"], "found", "{json}");
    assert_eq!(
        keys(&json["next"]),
        set(&["state", "first_bad", "last_good", "patch"])
    );

    let json = env.run(&["--format", "json", "bisect", "log"]).ok_json();
    assert_eq!(
        keys(&json),
        set(&["database", "start", "from_root", "marks"])
    );
    assert_eq!(keys(&json["marks"][0]), set(&["verdict", "id", "message"]));

    let json = env
        .run(&["--format", "json", "bisect", "good", "HEAD~1"])
        .ok_json();
    assert_eq!(keys(&json["marked"][0]), set(&["id", "verdict"]));

    let json = env.run(&["--format", "json", "bisect", "reset"]).ok_json();
    assert_eq!(keys(&json), set(&["database", "reset"]));
}

#[test]
fn report_json_has_the_documented_fields_and_the_verdict() {
    let env = two_snapshots();
    exec(&env.join("app.db"), "CREATE TABLE extra (a);");
    let out = env.run(&["--format", "json", "report", "app", "-o", "app.html"]);
    out.expect(1);
    let json = out.json();
    assert_eq!(
        keys(&json),
        with_verdict(&[
            "database",
            "name",
            "generated",
            "project",
            "timeline",
            "status",
            "models",
            "located",
            "repair",
            "since_snapshot",
            "snapshots",
            "output",
        ])
    );
    assert_eq!(json["name"], "app");
    assert_eq!(json["output"], env.join("app.html").to_str().unwrap());
    assert!(env.join("app.html").is_file());
    assert_eq!(
        keys(&json["timeline"][0]),
        set(&[
            "revision",
            "parents",
            "children",
            "branch_labels",
            "depends_on",
            "message",
            "file",
            "head",
            "stamped",
            "applied",
            "schema",
        ])
    );
    assert_eq!(
        keys(&json["status"]),
        set(&[
            "database",
            "rows",
            "position",
            "heads",
            "comparison",
            "replay_failure",
            "findings",
        ])
    );
    assert_eq!(
        keys(&json["located"]),
        set(&["stamped", "exact", "nearest", "replay_failure"])
    );
    assert_eq!(json["repair"]["applied"], false);
    assert_eq!(
        keys(&json["snapshots"][0]),
        set(&[
            "id",
            "database",
            "time",
            "logical_size",
            "added_bytes",
            "added_objects",
            "data_forgotten",
            "message",
            "refs",
            "alembic_versions",
            "schema_changed",
        ])
    );
    assert_eq!(json["snapshots"][0]["message"], "second");
    assert_eq!(keys(&json["since_snapshot"]), set(&["snapshot", "changes"]));
}

#[test]
fn locate_json_has_the_documented_fields_and_the_verdict() {
    let env = sql_project();
    let json = env.run(&["--format", "json", "locate", "app.db"]).ok_json();
    assert_eq!(
        keys(&json),
        with_verdict(&[
            "stamped",
            "exact",
            "nearest",
            "replay_failure",
            "database",
            "stamped_matches"
        ])
    );
}

#[test]
fn lint_json_has_the_documented_fields_and_the_verdict() {
    let env = sql_project();
    // 0002 alters the table 0001 made: one error.
    let out = env.run(&["--format", "json", "lint"]);
    out.expect(1);
    let json = out.json();
    assert_eq!(
        keys(&json),
        with_verdict(&["revisions_checked", "since", "counts"])
    );
    assert_eq!(keys(&json["counts"]), set(&["error", "warning", "info"]));
    assert_eq!(json["counts"]["error"], 1, "{json}");
}

#[test]
fn test_json_has_the_documented_fields_and_the_verdict() {
    let env = sql_project();
    std::fs::write(env.join("sql/0001_init.down.sql"), "DROP TABLE t;").unwrap();
    std::fs::write(
        env.join("sql/0002_more.down.sql"),
        "ALTER TABLE t DROP COLUMN x;",
    )
    .unwrap();
    let json = env.run(&["--format", "json", "test"]).ok_json();
    assert_eq!(keys(&json), with_verdict(&["revisions", "failures"]));

    // --data: the migration app.db (at 0001) has pending, on a copy of it.
    let json = env
        .run(&["--format", "json", "test", "--data", "app.db"])
        .ok_json();
    assert_eq!(
        keys(&json),
        with_verdict(&["source", "stamped", "revisions", "untested", "failures"])
    );
    assert_eq!(
        keys(&json["revisions"][0]),
        set(&[
            "revision",
            "file",
            "ok",
            "step",
            "difference",
            "error",
            "form",
            "rows",
            "data",
            "left"
        ])
    );
    assert_eq!(
        keys(&json["revisions"][0]["rows"][0]),
        set(&["table", "before", "upgraded", "downgraded", "reupgraded"])
    );
    assert_eq!(json["revisions"][0]["rows"][0]["reupgraded"], 1, "{json}");
}

#[test]
fn guard_json_has_the_documented_fields_and_the_verdict() {
    let env = sql_project();
    let json = env
        .run(&["--format", "json", "guard", "app.db", "--", "true"])
        .ok_json();
    assert_eq!(
        keys(&json),
        with_verdict(&[
            "database",
            "command",
            "exit_code",
            "signal",
            "before",
            "after",
            "changed",
            "alembic_version",
            "schema_changes",
            "drift",
            "status",
            "failed",
            "restored",
            "failed_state_snapshot"
        ])
    );
}

#[test]
fn init_and_track_json_have_the_documented_fields() {
    let env = TestEnv::new();
    exec(
        &env.join("app.db"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY);",
    );
    let json = env
        .run(&["--format", "json", "init", "--track", "app.db"])
        .ok_json();
    assert_eq!(keys(&json), set(&["store", "tracked"]));
    assert_eq!(keys(&json["tracked"]), set(&["name", "path"]));

    let json = env.run(&["--format", "json", "track"]).ok_json();
    assert_eq!(keys(&json), set(&["databases"]));
    assert_eq!(keys(&json["databases"][0]), set(&["name", "path"]));

    let bare = TestEnv::new();
    let json = bare.run(&["--format", "json", "init"]).ok_json();
    assert_eq!(keys(&json), set(&["store", "tracked"]));
    assert!(json["tracked"].is_null(), "{json}");
}

#[test]
fn snapshot_json_has_the_documented_fields_recorded_and_unchanged() {
    let env = sql_project();
    env.run(&["track", "app", "app.db"]).assert_success();
    let json = env.run(&["--format", "json", "snapshot", "app"]).ok_json();
    assert_eq!(
        keys(&json),
        set(&[
            "recorded",
            "id",
            "database",
            "schema_only",
            "added_objects",
            "added_bytes",
            "alembic_versions",
            "findings",
            "ignored",
            "fail_on",
            "clean"
        ])
    );
    assert_eq!(json["recorded"], true);

    let json = env.run(&["--format", "json", "snapshot", "app"]).ok_json();
    assert_eq!(
        keys(&json),
        set(&[
            "recorded", "database", "head", "findings", "ignored", "fail_on", "clean"
        ])
    );
    assert_eq!(json["recorded"], false);
}

#[test]
fn checkout_and_restore_json_have_the_documented_fields() {
    let env = sql_project();
    env.run(&["track", "app", "app.db"]).assert_success();
    env.run(&["snapshot", "app"]).assert_success();
    let json = env
        .run(&["--format", "json", "checkout", "app", "-o", "copy.db"])
        .ok_json();
    assert_eq!(
        keys(&json),
        set(&["snapshot", "path", "bytes", "warnings", "verified"])
    );

    exec(&env.join("app.db"), "INSERT INTO t VALUES (2, 'b');");
    let json = env.run(&["--format", "json", "restore", "app"]).ok_json();
    assert_eq!(
        keys(&json),
        set(&[
            "snapshot",
            "database",
            "path",
            "bytes",
            "safety_snapshot",
            "method",
            "rebuild",
            "warnings",
            "verified"
        ])
    );
    assert!(json["safety_snapshot"].is_string(), "{json}");
    assert_eq!(
        keys(&json["rebuild"]["delta"]),
        set(&["pages_fetched", "pages_reused"])
    );
}

#[test]
fn tag_tags_and_refs_json_have_the_documented_fields() {
    let env = sql_project();
    env.run(&["track", "app", "app.db"]).assert_success();
    env.run(&["snapshot", "app"]).assert_success();
    let json = env.run(&["--format", "json", "tag", "v1"]).ok_json();
    assert_eq!(keys(&json), set(&["tag", "target"]));

    let json = env.run(&["--format", "json", "tags"]).ok_json();
    assert_eq!(keys(&json), set(&["tags"]));
    assert_eq!(keys(&json["tags"][0]), set(&["name", "target"]));

    let json = env.run(&["--format", "json", "refs"]).ok_json();
    assert_eq!(keys(&json), set(&["refs", "damaged"]));
    assert_eq!(keys(&json["refs"][0]), set(&["name", "target"]));
    let json = env
        .run(&["--format", "json", "refs", "--delete-broken"])
        .ok_json();
    assert_eq!(keys(&json), set(&["deleted"]));

    let json = env.run(&["--format", "json", "tag", "-d", "v1"]).ok_json();
    assert_eq!(keys(&json), set(&["deleted", "target"]));
    assert!(json["target"].is_string(), "{json}");
}

#[test]
fn fsck_json_has_the_documented_fields() {
    let env = sql_project();
    env.run(&["track", "app", "app.db"]).assert_success();
    env.run(&["snapshot", "app"]).assert_success();
    let json = env.run(&["--format", "json", "fsck"]).ok_json();
    assert_eq!(
        keys(&json),
        set(&[
            "clean",
            "snapshots",
            "objects",
            "read_data",
            "read_data_subset",
            "objects_read",
            "problems",
            "damaged_rows"
        ])
    );
}

#[test]
fn completions_and_man_json_have_the_documented_fields() {
    let env = TestEnv::new();
    let json = env
        .run(&["--format", "json", "completions", "zsh"])
        .ok_json();
    assert_eq!(keys(&json), set(&["shell", "script"]));
    let json = env.run(&["--format", "json", "man"]).ok_json();
    assert_eq!(keys(&json), set(&["dir", "files", "roff"]));
    let json = env
        .run(&["--format", "json", "man", "--out", "pages"])
        .ok_json();
    assert_eq!(keys(&json), set(&["dir", "files", "roff"]));
}
