//! `datadiff::compare`: row-level differences between two SQLite files.

use std::path::{Path, PathBuf};

use migsnap::snapshots::datadiff::{
    self, DataDiff, Key, Options, Presence, RowChange, TableDiff, Value,
};
use rusqlite::Connection;

use crate::common::TestEnv;

fn db(env: &TestEnv, name: &str, sql: &str) -> PathBuf {
    let path = env.join(name);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(sql).unwrap();
    path
}

fn table<'d>(diff: &'d DataDiff, name: &str) -> &'d TableDiff {
    diff.tables
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("no table {name} in {diff:#?}"))
}

/// (rows_a, rows_b, added, removed, changed)
fn counts(t: &TableDiff) -> (u64, u64, u64, u64, u64) {
    (t.rows_a, t.rows_b, t.added, t.removed, t.changed)
}

fn compare(a: &Path, b: &Path) -> DataDiff {
    datadiff::compare(a, b, Options::default()).unwrap()
}

fn with_rows(a: &Path, b: &Path, limit: usize) -> DataDiff {
    datadiff::compare(a, b, Options { rows: true, limit }).unwrap()
}

#[test]
fn counts_added_removed_and_changed_rows_by_primary_key() {
    let env = TestEnv::new();
    let a = db(
        &env,
        "a.db",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
         INSERT INTO t SELECT i, 'v' || i FROM n;",
    );
    let b = env.join("b.db");
    std::fs::copy(&a, &b).unwrap();
    Connection::open(&b)
        .unwrap()
        .execute_batch(
            "DELETE FROM t WHERE id <= 10;
             UPDATE t SET v = 'x' WHERE id BETWEEN 500 AND 519;
             INSERT INTO t VALUES (2000, 'new'), (2001, 'new'), (-1, 'neg');",
        )
        .unwrap();
    let diff = compare(&a, &b);
    let t = table(&diff, "t");
    assert_eq!(t.presence, Presence::Both);
    assert_eq!(t.key, Key::PrimaryKey(vec!["id".into()]));
    assert_eq!(counts(t), (1000, 993, 3, 10, 20));
    assert!(t.rows.is_empty() && diff.has_changes());
    // The same file has no differences.
    let same = compare(&a, &a);
    assert!(!same.has_changes());
    assert_eq!(counts(table(&same, "t")), (1000, 1000, 0, 0, 0));
}

#[test]
fn null_empty_string_zero_and_real_zero_all_differ() {
    let env = TestEnv::new();
    let a = db(
        &env,
        "a.db",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v);
         INSERT INTO t VALUES (1, NULL), (2, ''), (3, 0), (4, 0.0), (5, NULL), (6, x'');",
    );
    let b = db(
        &env,
        "b.db",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v);
         INSERT INTO t VALUES (1, ''), (2, 0), (3, 0.0), (4, NULL), (5, NULL), (6, '');",
    );
    let diff = with_rows(&a, &b, 100);
    let t = table(&diff, "t");
    assert_eq!(counts(t), (6, 6, 0, 0, 5));
    assert_eq!(
        t.rows[0],
        RowChange::Changed {
            key: vec![Value::Integer(1)],
            old: vec![Value::Integer(1), Value::Null],
            new: vec![Value::Integer(1), Value::Text(String::new())],
        }
    );
    let json = serde_json::to_value(&t.rows).unwrap();
    assert_eq!(json[0]["change"], "changed");
    assert_eq!(json[0]["old"], serde_json::json!([1, null]));
    assert_eq!(json[4]["old"], serde_json::json!([6, {"blob": ""}]));
}

#[test]
fn blobs_and_text_keys() {
    let env = TestEnv::new();
    let a = db(
        &env,
        "a.db",
        "CREATE TABLE files(path TEXT PRIMARY KEY COLLATE NOCASE, body BLOB);
         INSERT INTO files VALUES ('B', x'00ff'), ('a', x'01'), ('c', x'02'), ('Z', zeroblob(5000));",
    );
    let b = db(
        &env,
        "b.db",
        "CREATE TABLE files(path TEXT PRIMARY KEY COLLATE NOCASE, body BLOB);
         INSERT INTO files VALUES ('B', x'00fe'), ('a', x'01'), ('d', x'03'), ('Z', zeroblob(5000));",
    );
    let diff = with_rows(&a, &b, 100);
    let t = table(&diff, "files");
    assert_eq!(counts(t), (4, 4, 1, 1, 1));
    assert!(t.rows.iter().any(|r| matches!(r,
        RowChange::Changed { key, old, .. }
            if key == &[Value::Text("B".into())] && old[1] == Value::Blob(vec![0, 0xff]))));
    assert!(t.rows.iter().any(|r| matches!(r,
        RowChange::Removed { key, .. } if key == &[Value::Text("c".into())])));
    assert!(t.rows.iter().any(|r| matches!(r,
        RowChange::Added { key, .. } if key == &[Value::Text("d".into())])));
}

#[test]
fn composite_keys_and_without_rowid() {
    let env = TestEnv::new();
    let schema = "CREATE TABLE m(a TEXT, b INTEGER, v, PRIMARY KEY (b, a)) WITHOUT ROWID;";
    let a = db(
        &env,
        "a.db",
        &format!("{schema} INSERT INTO m VALUES ('x', 1, 1), ('y', 1, 2), ('x', 2, 3);"),
    );
    let b = db(
        &env,
        "b.db",
        &format!("{schema} INSERT INTO m VALUES ('x', 1, 1), ('y', 1, 20), ('y', 2, 4);"),
    );
    let diff = with_rows(&a, &b, 100);
    let t = table(&diff, "m");
    assert_eq!(t.key, Key::PrimaryKey(vec!["b".into(), "a".into()]));
    assert_eq!(counts(t), (3, 3, 1, 1, 1));
    assert_eq!(
        t.rows,
        [
            RowChange::Changed {
                key: vec![Value::Integer(1), Value::Text("y".into())],
                old: vec![
                    Value::Text("y".into()),
                    Value::Integer(1),
                    Value::Integer(2)
                ],
                new: vec![
                    Value::Text("y".into()),
                    Value::Integer(1),
                    Value::Integer(20)
                ],
            },
            RowChange::Removed {
                key: vec![Value::Integer(2), Value::Text("x".into())],
                values: vec![
                    Value::Text("x".into()),
                    Value::Integer(2),
                    Value::Integer(3)
                ],
            },
            RowChange::Added {
                key: vec![Value::Integer(2), Value::Text("y".into())],
                values: vec![
                    Value::Text("y".into()),
                    Value::Integer(2),
                    Value::Integer(4)
                ],
            },
        ]
    );
}

#[test]
fn rowid_tables_without_a_primary_key_match_by_rowid() {
    let env = TestEnv::new();
    let a = db(
        &env,
        "a.db",
        "CREATE TABLE log(msg TEXT); INSERT INTO log(rowid, msg) VALUES (1, 'a'), (2, 'b'), (3, 'c');
         CREATE TABLE odd(rowid TEXT, v); INSERT INTO odd VALUES ('r', 1);",
    );
    let b = db(
        &env,
        "b.db",
        "CREATE TABLE log(msg TEXT); INSERT INTO log(rowid, msg) VALUES (1, 'a'), (3, 'C'), (4, 'd');
         CREATE TABLE odd(rowid TEXT, v); INSERT INTO odd VALUES ('r', 2);",
    );
    let diff = compare(&a, &b);
    let log = table(&diff, "log");
    assert_eq!(log.key, Key::Rowid);
    assert_eq!(counts(log), (3, 3, 1, 1, 1));
    // A column named rowid shadows it; _rowid_ still reaches the real one.
    let odd = table(&diff, "odd");
    assert_eq!(counts(odd), (1, 1, 0, 0, 1));
}

#[test]
fn tables_on_one_side_count_all_their_rows() {
    let env = TestEnv::new();
    let a = db(
        &env,
        "a.db",
        "CREATE TABLE gone(id INTEGER PRIMARY KEY); INSERT INTO gone VALUES (1), (2);
         CREATE TABLE kept(id INTEGER PRIMARY KEY);",
    );
    let b = db(
        &env,
        "b.db",
        "CREATE TABLE kept(id INTEGER PRIMARY KEY);
         CREATE TABLE fresh(id INTEGER PRIMARY KEY, v); INSERT INTO fresh VALUES (1, 'x'), (2, 'y'), (3, 'z');",
    );
    let diff = with_rows(&a, &b, 2);
    let names: Vec<(&str, Presence)> = diff
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.presence))
        .collect();
    assert_eq!(
        names,
        [
            ("fresh", Presence::OnlyB),
            ("gone", Presence::OnlyA),
            ("kept", Presence::Both)
        ]
    );
    assert_eq!(counts(table(&diff, "gone")), (2, 0, 0, 2, 0));
    let fresh = table(&diff, "fresh");
    assert_eq!(counts(fresh), (0, 3, 3, 0, 0));
    assert_eq!(fresh.rows.len(), 2);
    assert!(fresh.truncated);
    assert!(!table(&diff, "kept").has_changes());
}

#[test]
fn columns_only_one_side_has_are_reported_and_not_compared() {
    let env = TestEnv::new();
    let a = db(
        &env,
        "a.db",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v, old); INSERT INTO t VALUES (1, 'a', 'o');",
    );
    let b = db(
        &env,
        "b.db",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, V, new); INSERT INTO t VALUES (1, 'a', 'n');",
    );
    let t = compare(&a, &b).tables.remove(0);
    assert_eq!(counts(&t), (1, 1, 0, 0, 0));
    assert_eq!(t.columns_only_a, ["old"]);
    assert_eq!(t.columns_only_b, ["new"]);
    assert!(t.has_changes());
}

#[test]
fn different_keys_give_counts_only() {
    let env = TestEnv::new();
    let a = db(
        &env,
        "a.db",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES (1, 'a');",
    );
    let b = db(
        &env,
        "b.db",
        "CREATE TABLE t(id INTEGER, v PRIMARY KEY); INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    );
    let t = compare(&a, &b).tables.remove(0);
    assert_eq!(t.key, Key::None);
    assert_eq!(counts(&t), (1, 2, 0, 0, 0));
}

#[test]
fn a_file_that_is_not_a_database_is_an_open_error() {
    let env = TestEnv::new();
    let a = db(&env, "a.db", "CREATE TABLE t(x);");
    let junk = env.join("junk.db");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    let err = datadiff::compare(&a, &junk, Options::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("cannot open") && err.to_string().contains("junk.db"),
        "{err}"
    );
}

#[test]
fn snapshots_compare_after_checkout_to_temp_files() {
    // The way `diff --data A B` is meant to use it: materialise, then compare.
    let env = TestEnv::with_store();
    let app = db(
        &env,
        "app.db",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    );
    let first = env.snapshot(&["app.db"]);
    Connection::open(&app)
        .unwrap()
        .execute_batch("UPDATE t SET v = 'B' WHERE id = 2; DELETE FROM t WHERE id = 3;")
        .unwrap();
    let second = env.snapshot(&[]);
    let (a, b) = (env.join("a.db"), env.join("b.db"));
    env.run(&["checkout", &first, "-o", a.to_str().unwrap()])
        .assert_success();
    env.run(&["checkout", &second, "-o", b.to_str().unwrap()])
        .assert_success();
    let diff = compare(&a, &b);
    assert_eq!(counts(table(&diff, "t")), (3, 2, 0, 1, 1));
    // And a snapshot against the live file.
    assert!(!compare(&b, &app).has_changes());
}

#[test]
fn virtual_tables_are_compared_through_their_shadow_tables() {
    let env = TestEnv::new();
    let a = db(
        &env,
        "a.db",
        "CREATE VIRTUAL TABLE docs USING fts5(body); INSERT INTO docs VALUES ('hello');",
    );
    let b = db(
        &env,
        "b.db",
        "CREATE VIRTUAL TABLE docs USING fts5(body); INSERT INTO docs VALUES ('hello'), ('bye');",
    );
    let diff = compare(&a, &b);
    assert!(diff.tables.iter().all(|t| t.name != "docs"), "{diff:#?}");
    assert_eq!(counts(table(&diff, "docs_content")), (1, 2, 1, 0, 0));
}

#[test]
fn diff_data_compares_a_snapshot_with_the_live_database() {
    let env = TestEnv::with_store();
    let live = db(
        &env,
        "app.db",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t(v) VALUES ('a'), ('b'), ('c');",
    );
    env.snapshot(&["app.db"]);
    env.run(&["diff", "--data"]).expect(crate::common::exit::OK);

    let conn = Connection::open(&live).unwrap();
    conn.execute_batch(
        "UPDATE t SET v = 'B' WHERE id = 2; DELETE FROM t WHERE id = 1;
         INSERT INTO t(id, v) VALUES (9, 'z');",
    )
    .unwrap();
    drop(conn);
    let out = env.run(&[
        "--format", "json", "diff", "--data", "--rows", "HEAD", "live",
    ]);
    out.expect(crate::common::exit::PROBLEMS);
    let json = out.json();
    let t = &json["tables"][0];
    assert_eq!(t["name"], "t");
    assert_eq!(
        (
            t["added"].as_u64(),
            t["removed"].as_u64(),
            t["changed"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    let kinds: Vec<&str> = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["change"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["removed", "changed", "added"]);
    // Text names the table and the counts; --rows needs --data.
    let text = env.run(&["diff", "--data"]);
    assert!(
        text.stdout
            .contains("t: 3 → 3 rows, 1 added, 1 removed, 1 changed"),
        "{}",
        text.stdout
    );
    env.run(&["diff", "--rows"])
        .expect(crate::common::exit::USAGE);
}
