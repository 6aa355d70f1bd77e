//! `log --changed SPEC`: the snapshots where one schema object appeared,
//! changed or disappeared.

use insta::assert_snapshot;

use crate::common::{TestEnv, exec, exit};

/// Builds the history: t created; c added; an empty snapshot; an unrelated
/// table; t dropped. Returns the ids, oldest first.
fn history(env: &TestEnv) -> Vec<String> {
    let db = env.join("app.db");
    exec(&db, "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT);");
    let created = env.snapshot(&["app.db", "-m", "create t"]);
    exec(
        &db,
        "ALTER TABLE t ADD COLUMN c INTEGER NOT NULL DEFAULT 0;",
    );
    let added = env.snapshot(&["-m", "add c"]);
    let empty = env.snapshot(&["--allow-empty", "-m", "nothing"]);
    exec(&db, "CREATE TABLE other(x);");
    let other = env.snapshot(&["-m", "other"]);
    exec(&db, "DROP TABLE t;");
    let dropped = env.snapshot(&["-m", "drop t"]);
    vec![created, added, empty, other, dropped]
}

fn changes(env: &TestEnv, spec: &str) -> Vec<(String, String)> {
    let json = env
        .run(&["--format", "json", "log", "--changed", spec])
        .expect(exit::OK)
        .json();
    assert_eq!(json["changed"], spec);
    json["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn column_changes_list_exactly_the_snapshots_that_touched_it() {
    let env = TestEnv::with_store();
    let ids = history(&env);
    let (added, dropped) = (&ids[1], &ids[4]);
    assert_eq!(
        changes(&env, "column:t.c"),
        [
            (dropped.clone(), "disappeared".to_owned()),
            (added.clone(), "appeared".to_owned()),
        ]
    );
    // Names fold like SQLite's.
    assert_eq!(changes(&env, "column:T.C").len(), 2);

    let oneline = env.run(&["log", "--oneline", "--changed", "column:t.c"]);
    let lines: Vec<&str> = oneline.assert_success().lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with(&dropped[..12]), "{lines:?}");
    assert!(lines[0].ends_with("disappeared: column:t.c"), "{lines:?}");
    assert!(lines[1].starts_with(&added[..12]), "{lines:?}");
    assert!(lines[1].ends_with("appeared: column:t.c"), "{lines:?}");

    let long = env.run(&["log", "--changed", "column:t.c"]);
    assert!(
        long.assert_success()
            .contains("Change:  column:t.c appeared"),
        "{}",
        long.stdout
    );
}

#[test]
fn table_changes_count_its_columns_but_not_other_tables() {
    let env = TestEnv::with_store();
    let ids = history(&env);
    let verbs: Vec<(String, String)> = changes(&env, "table:t");
    assert_eq!(
        verbs,
        [
            (ids[4].clone(), "disappeared".to_owned()),
            (ids[1].clone(), "changed".to_owned()),
            (ids[0].clone(), "appeared".to_owned()),
        ]
    );
    assert_eq!(
        changes(&env, "table:other"),
        [(ids[3].clone(), "appeared".to_owned())]
    );
    assert!(changes(&env, "index:nope").is_empty());
    let text = env.run(&["log", "--changed", "view:nope"]);
    assert_eq!(text.assert_success(), "");
    assert!(text.stderr.contains("changed view:nope"), "{}", text.stderr);
}

#[test]
fn reformatting_an_object_is_not_a_change() {
    let env = TestEnv::with_store();
    let db = env.join("app.db");
    exec(&db, "CREATE TABLE t(a INTEGER); CREATE INDEX ta ON t(a);");
    let first = env.snapshot(&["app.db"]);
    // Same index, written differently: only its `sql` text differs.
    exec(&db, "DROP INDEX ta; create   index \"ta\" on t (a);");
    env.snapshot(&["--allow-empty"]);
    assert_eq!(changes(&env, "index:ta"), [(first, "appeared".to_owned())]);
}

#[test]
fn bad_spec_is_an_input_error_listing_the_forms() {
    let env = TestEnv::with_store();
    history(&env);
    for spec in ["t", "column:t", "tabel:t", "table:", "column:.c"] {
        env.run(&["log", "--changed", spec]).expect_error(
            exit::INPUT,
            &[
                spec,
                "table:NAME",
                "column:TABLE.COLUMN",
                "index:NAME",
                "trigger:NAME",
                "view:NAME",
            ],
        );
    }
}

#[test]
fn patch_shows_each_snapshots_schema_diff_from_its_parent() {
    let env = TestEnv::with_store();
    let ids = history(&env);
    let out = env.run(&["log", "--oneline", "-p", "-n", "4"]);
    let text = out.assert_success();
    let block = |id: &str| -> String {
        let start = text.find(&id[..12]).expect("entry listed");
        let rest = &text[start..];
        let end = rest[1..].find("\n\n").map_or(rest.len(), |e| e + 1);
        rest[..end].to_owned()
    };
    assert!(block(&ids[4]).contains("    - table t"), "{text}");
    assert!(block(&ids[3]).contains("    + table other"), "{text}");
    // The empty snapshot has no patch: the next entry follows at once.
    let lines: Vec<&str> = text.lines().collect();
    let empty = lines
        .iter()
        .position(|l| l.starts_with(&ids[2][..12]))
        .unwrap();
    assert!(lines[empty + 1].starts_with(&ids[1][..12]), "{text}");
    let added = block(&ids[1]);
    assert!(added.contains("    + column t.c"), "{text}");
    // One added column is one change: no change of the table beside it.
    assert!(!added.contains("    ~ table t"), "{text}");

    let json = env
        .run(&["--format", "json", "log", "-p"])
        .expect(exit::OK)
        .json();
    let snapshots = json["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 5);
    assert_eq!(snapshots[2]["patch"], serde_json::json!([]));
    let root = snapshots[4]["patch"].as_array().unwrap();
    assert_eq!(root[0]["op"], "added");
    assert_eq!(root[0]["kind"], "table");
    assert_eq!(root[0]["name"], "t");
    // Without -p there is no patch field.
    assert!(env.log(None)[0].get("patch").is_none());
}

#[test]
fn oneline_and_patch_output_is_pinned() {
    let env = TestEnv::with_store();
    history(&env);
    let out = env.run(&["log", "--oneline", "-p", "--changed", "column:t.c"]);
    assert_snapshot!(env.redact(out.assert_success()), @r"
    [SHORT] [TIME] [schema changed] drop t (HEAD -> app) disappeared: column:t.c
        - table t

    [SHORT] [TIME] [schema changed] add c appeared: column:t.c
        + column t.c

    ");
    let bad = env.run(&["log", "--changed", "col:t.c"]);
    assert_eq!(bad.status, exit::INPUT);
    assert_snapshot!(bad.stderr, @"error: 'col:t.c' is not an object spec; use one of table:NAME, column:TABLE.COLUMN, index:NAME, trigger:NAME, view:NAME");
}
