//! `migsnap diff --format sql` applied for real: the result has the target's
//! semantic hash, and rows survive in every column the target keeps. Pairs
//! come from proptest and from a real Alembic project.

use std::path::{Path, PathBuf};

use migsnap::schema::diff::diff;
use migsnap::schema::plan::plan;
use migsnap::schema::{Schema, capture, quote_ident as q};
use proptest::prelude::*;
use rusqlite::Connection;

use crate::common::alembic::{AlembicProject, chat_app};
use crate::common::{TestEnv, exit};

fn schema_of(conn: &Connection) -> Schema {
    let tx = conn.unchecked_transaction().unwrap();
    capture(&tx).unwrap().schema
}

// ---------------------------------------------------------------- generator

const TABLES: [&str; 4] = ["t0", "T1", "x\"; DROP TABLE users; --", "t 3"];
const COLUMNS: [&str; 6] = ["c0", "c1", "C2", "c3", "odd \"col\"", "c5"];
const TYPES: [&str; 6] = ["INTEGER", "TEXT", "REAL", "BLOB", "NUMERIC", ""];
const DEFAULTS: [Option<&str>; 5] = [None, None, Some("0"), Some("'x'"), Some("(1 + 1)")];

const COLLATIONS: [Option<&str>; 4] = [None, None, Some("NOCASE"), Some("RTRIM")];

#[derive(Clone, Debug)]
struct GenColumn {
    name: usize,
    ty: usize,
    not_null: bool,
    default: usize,
    collation: usize,
    /// 0: plain; 1: VIRTUAL, 2: STORED generated from the first column.
    generated: usize,
}

#[derive(Clone, Debug)]
struct GenTable {
    name: usize,
    columns: Vec<GenColumn>,
    /// Column positions (into the deduplicated list) of the primary key.
    pk: Vec<usize>,
    without_rowid: bool,
    unique: Option<usize>,
    check: Option<usize>,
    /// (column, index into the other tables) of a foreign key.
    fk: Option<(usize, usize)>,
    /// (column, unique, partial, expression)
    indexes: Vec<(usize, bool, bool, bool)>,
    view: bool,
    trigger: bool,
}

fn gen_column() -> impl Strategy<Value = GenColumn> {
    (
        0..COLUMNS.len(),
        0..TYPES.len(),
        any::<bool>(),
        0..DEFAULTS.len(),
        0..COLLATIONS.len(),
        prop::sample::select(vec![0usize, 0, 0, 0, 1, 2]),
    )
        .prop_map(
            |(name, ty, not_null, default, collation, generated)| GenColumn {
                name,
                ty,
                not_null,
                default,
                collation,
                generated,
            },
        )
}

fn gen_table() -> impl Strategy<Value = GenTable> {
    (
        0..TABLES.len(),
        prop::collection::vec(gen_column(), 1..5),
        prop::collection::vec(0usize..5, 0..3),
        any::<bool>(),
        prop::option::of(0usize..5),
        prop::option::of(0usize..5),
        prop::option::of((0usize..5, 0usize..4)),
        prop::collection::vec(
            (0usize..5, any::<bool>(), any::<bool>(), any::<bool>()),
            0..3,
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(name, columns, pk, without_rowid, unique, check, fk, indexes, view, trigger)| {
                let mut seen = Vec::new();
                let columns: Vec<GenColumn> = columns
                    .into_iter()
                    .filter(|c| {
                        let fresh = !seen.contains(&c.name);
                        seen.push(c.name);
                        fresh
                    })
                    .collect();
                let n = columns.len();
                let mut columns = columns;
                let mut pk: Vec<usize> = pk.into_iter().map(|p| p % n).collect();
                pk.dedup();
                // Generated: never the first column (they read it), never
                // in the key, never with a default.
                for (i, c) in columns.iter_mut().enumerate() {
                    if i == 0 || pk.contains(&i) {
                        c.generated = 0;
                    }
                    if c.generated != 0 {
                        // NOT NULL would fail when the column it reads
                        // is new and so NULL in existing rows.
                        c.default = 0;
                        c.not_null = false;
                    }
                }
                GenTable {
                    name,
                    without_rowid: without_rowid && !pk.is_empty(),
                    pk,
                    unique: unique.map(|u| u % n),
                    check: check.map(|c| c % n),
                    fk: fk.map(|(c, t)| (c % n, t)),
                    indexes: indexes
                        .into_iter()
                        .map(|(c, u, p, e)| (c % n, u, p, e))
                        .collect(),
                    columns,
                    view,
                    trigger,
                }
            },
        )
}

fn gen_schema() -> impl Strategy<Value = Vec<GenTable>> {
    prop::collection::vec(gen_table(), 1..4).prop_map(|tables| {
        let mut seen = Vec::new();
        tables
            .into_iter()
            .filter(|t| {
                let fresh = !seen.contains(&t.name);
                seen.push(t.name);
                fresh
            })
            .collect()
    })
}

/// The SQL for a generated schema. Foreign keys only point at tables with
/// a one-column primary key, so that `foreign_key_check` has a parent key.
fn schema_sql(tables: &[GenTable]) -> String {
    let mut sql = String::new();
    for t in tables {
        let tname = TABLES[t.name];
        let col = |i: usize| q(COLUMNS[t.columns[i].name]);
        let mut items: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                let mut item = q(COLUMNS[c.name]);
                if !TYPES[c.ty].is_empty() {
                    item.push(' ');
                    item.push_str(TYPES[c.ty]);
                }
                if c.not_null {
                    item.push_str(" NOT NULL");
                }
                if let Some(default) = DEFAULTS[c.default] {
                    item.push_str(" DEFAULT ");
                    item.push_str(default);
                }
                if let Some(collation) = COLLATIONS[c.collation] {
                    item.push_str(" COLLATE ");
                    item.push_str(collation);
                }
                match c.generated {
                    1 => item.push_str(&format!(" AS ({} * 2) VIRTUAL", col(0))),
                    2 => item.push_str(&format!(" AS ({} * 2) STORED", col(0))),
                    _ => {}
                }
                item
            })
            .collect();
        if !t.pk.is_empty() {
            let cols: Vec<String> = t.pk.iter().map(|&i| col(i)).collect();
            items.push(format!("PRIMARY KEY ({})", cols.join(", ")));
        }
        if let Some(u) = t.unique {
            items.push(format!("UNIQUE ({})", col(u)));
        }
        if let Some(c) = t.check {
            items.push(format!("CHECK ({0} IS NULL OR length({0}) >= 0)", col(c)));
        }
        if let Some((c, target)) = t.fk
            && let Some(parent) = tables.get(target).filter(|p| p.pk.len() == 1)
        {
            items.push(format!(
                "FOREIGN KEY ({}) REFERENCES {} ON DELETE CASCADE",
                col(c),
                q(TABLES[parent.name])
            ));
        }
        sql.push_str(&format!(
            "CREATE TABLE {} ({}){};\n",
            q(tname),
            items.join(", "),
            if t.without_rowid {
                " WITHOUT ROWID"
            } else {
                ""
            }
        ));
        for (k, &(c, unique, partial, expression)) in t.indexes.iter().enumerate() {
            let target = if expression {
                format!("({} + 1)", col(c))
            } else {
                col(c)
            };
            sql.push_str(&format!(
                "CREATE {}INDEX {} ON {} ({target}){};\n",
                if unique { "UNIQUE " } else { "" },
                q(&format!("i_{tname}_{k}")),
                q(tname),
                if partial {
                    format!(" WHERE {} IS NOT NULL", col(c))
                } else {
                    String::new()
                }
            ));
        }
        if t.view {
            sql.push_str(&format!(
                "CREATE VIEW {} AS SELECT {} FROM {};\n",
                q(&format!("v_{tname}")),
                col(0),
                q(tname)
            ));
        }
        if t.trigger {
            sql.push_str(&format!(
                "CREATE TRIGGER {} AFTER INSERT ON {} BEGIN SELECT 1; END;\n",
                q(&format!("tr_{tname}")),
                q(tname)
            ));
        }
    }
    sql
}

/// Three rows per table, every value a distinct integer (stored with the
/// column's affinity), so that no key or UNIQUE constraint of either side
/// can collide.
fn insert_rows(conn: &Connection, schema: &Schema) {
    // Parent rows need not exist: these rows only have to survive.
    conn.execute_batch("PRAGMA foreign_keys=OFF").unwrap();
    for table in schema.tables.values() {
        let columns: Vec<_> = table
            .columns
            .iter()
            .filter(|c| c.generated.is_none())
            .collect();
        for row in 1..=3i64 {
            let names: Vec<String> = columns.iter().map(|c| q(&c.name)).collect();
            let values: Vec<String> = (0..columns.len())
                .map(|i| (row * 10 + i as i64).to_string())
                .collect();
            conn.execute(
                &format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    q(&table.name),
                    names.join(", "),
                    values.join(", ")
                ),
                [],
            )
            .unwrap();
        }
    }
}

/// Each table's values in `columns`, as integers, sorted.
fn values(conn: &Connection, table: &str, columns: &[String]) -> Vec<Vec<Option<i64>>> {
    let list: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST({} AS INTEGER)", q(c)))
        .collect();
    let mut stmt = conn
        .prepare(&format!("SELECT {} FROM {}", list.join(", "), q(table)))
        .unwrap();
    let mut rows: Vec<Vec<Option<i64>>> = stmt
        .query_map([], |r| {
            (0..columns.len())
                .map(|i| r.get(i))
                .collect::<Result<_, _>>()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

/// Applies the plan A → B to an empty A, then to A with rows.
fn check_pair(a_sql: &str, b_sql: &str) -> Result<(), TestCaseError> {
    check_pair_with(a_sql, b_sql, false)?;
    check_pair_with(a_sql, b_sql, true)
}

fn check_pair_with(a_sql: &str, b_sql: &str, rows: bool) -> Result<(), TestCaseError> {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(a_sql).unwrap();
    let a = schema_of(&conn);
    if rows {
        insert_rows(&conn, &a);
    }
    let target = Connection::open_in_memory().unwrap();
    target.execute_batch(b_sql).unwrap();
    let b = schema_of(&target);
    let kept: Vec<(String, Vec<String>)> = b
        .tables
        .values()
        .filter_map(|tb| {
            let ta = a.table(&tb.name)?;
            let cols = tb
                .columns
                .iter()
                .filter(|c| c.generated.is_none() && ta.column(&c.name).is_some())
                .map(|c| c.name.clone())
                .collect::<Vec<_>>();
            (!cols.is_empty()).then(|| (tb.name.clone(), cols))
        })
        .collect();
    let before: Vec<_> = kept
        .iter()
        .map(|(t, cols)| values(&conn, t, cols))
        .collect();
    let script = plan(&a, &b).to_script();
    let applied = conn.execute_batch(&script);
    // A column new in B, NOT NULL or with a default, under a new UNIQUE
    // constraint cannot take existing rows: every row gets the same value.
    // Any other failure is a bug (the rows' own values are all distinct).
    if rows
        && applied
            .as_ref()
            .is_err_and(|e| e.to_string().contains("UNIQUE constraint failed"))
    {
        return Ok(());
    }
    applied.map_err(|e| {
        TestCaseError::fail(format!(
            "{e}\n--- A\n{a_sql}--- B\n{b_sql}--- plan\n{script}"
        ))
    })?;
    let after = schema_of(&conn);
    let left = diff(&after, &b);
    prop_assert!(
        left.is_empty(),
        "{left:#?}\n--- A\n{a_sql}--- B\n{b_sql}--- plan\n{script}"
    );
    prop_assert_eq!(after.semantic_hash(), b.semantic_hash());
    for ((table, cols), before) in kept.iter().zip(before) {
        prop_assert_eq!(
            values(&conn, table, cols),
            before,
            "rows of {} changed\n--- plan\n{}",
            table,
            script
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn diff_sql_turns_any_schema_into_any_other_keeping_rows(a in gen_schema(), b in gen_schema()) {
        check_pair(&schema_sql(&a), &schema_sql(&b))?;
    }
}

#[test]
fn diff_sql_handles_the_hostile_table_name() {
    let evil = q("x\"; DROP TABLE users; --");
    check_pair(
        &format!("CREATE TABLE users(id INTEGER PRIMARY KEY); CREATE TABLE {evil}(a INTEGER, b TEXT);"),
        &format!("CREATE TABLE users(id INTEGER PRIMARY KEY); CREATE TABLE {evil}(a INTEGER PRIMARY KEY, c TEXT NOT NULL);"),
    )
    .unwrap();
}

// ---------------------------------------------------------------- the CLI

fn db(env: &TestEnv, name: &str, sql: &str) -> PathBuf {
    let path = env.join(name);
    Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn diff_of_two_files_in_every_format() {
    let env = TestEnv::new();
    let a = db(
        &env,
        "a.db",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b INT); CREATE INDEX ia ON t(a);",
    );
    let b = db(
        &env,
        "b.db",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT NOT NULL DEFAULT '', c REAL); CREATE VIEW v AS SELECT a FROM t;",
    );
    let text = env.run(&["diff", s(&a), s(&b)]);
    text.expect(exit::PROBLEMS);
    insta::assert_snapshot!(text.stdout, @r"
    ~ column t.a
        not_null: (none) → true
        default: (none) → ''
    - column t.b
    + column t.c
    - index ia on t
    + view v
    ");
    let stat = env.run(&["diff", "--stat", s(&a), s(&b)]);
    stat.expect(exit::PROBLEMS);
    insta::assert_snapshot!(stat.stdout, @r"
     table t  |   3 +-~
     index ia |   1 -
     view v   |   1 +
     3 objects: 2 added, 2 removed, 1 changed
    ");
    let names = env.run(&["diff", "--name-only", s(&a), s(&b)]);
    assert_eq!(
        names.stdout,
        "column:t.a\ncolumn:t.b\ncolumn:t.c\nindex:ia\nview:v\n"
    );
    let json = env.run(&["diff", "--format", "json", s(&a), s(&b)]);
    json.expect(exit::PROBLEMS);
    let json = json.json();
    assert_eq!(json["changes"][0]["op"], "changed");
    assert_eq!(json["changes"][0]["kind"], "column");
    assert_eq!(json["changes"][0]["table"], "t");
    assert_eq!(json["changes"][0]["name"], "a");
    assert_eq!(json["changes"][0]["fields"][0]["field"], "not_null");
    assert_eq!(
        json["changes"][0]["fields"][0]["before"],
        serde_json::Value::Null
    );
    assert_eq!(json["changes"][0]["fields"][0]["after"], "true");

    let sql = env.run(&["diff", "--format", "sql", s(&a), s(&b)]);
    sql.expect(exit::PROBLEMS);
    assert!(
        sql.stdout.contains("-- DESTRUCTIVE: rebuild t"),
        "{}",
        sql.stdout
    );
    let copy = env.join("copy.db");
    std::fs::copy(&a, &copy).unwrap();
    Connection::open(&copy)
        .unwrap()
        .execute_batch(&sql.stdout)
        .unwrap();
    let same = env.run(&["diff", s(&copy), s(&b)]);
    same.expect(exit::OK);
    assert_eq!(same.stdout, "");
    assert_eq!(
        env.run(&["diff", "--format", "sql", s(&copy), s(&b)])
            .assert_success(),
        ""
    );
    env.run(&["diff", "nope.db", s(&b)])
        .expect_error(exit::INPUT, &["'nope.db' is not a file"]);
}

#[test]
fn diff_format_sql_is_refused_elsewhere() {
    let env = TestEnv::with_store();
    env.run(&["--format", "sql", "log"])
        .expect_error(exit::USAGE, &["--format sql is only for `migsnap diff`"]);
}

#[test]
fn diff_compares_head_with_live_by_default() {
    let env = TestEnv::with_store();
    let live = db(&env, "app.db", "CREATE TABLE t(a)");
    env.run(&["track", "app", s(&live)]).assert_success();
    env.snapshot(&["app"]);
    env.run(&["diff"]).expect(exit::OK);
    env.run(&["diff", "HEAD", "app"]).expect(exit::OK);
    crate::common::exec(&live, "ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x'");
    let out = env.run(&["diff"]);
    out.expect(exit::PROBLEMS);
    assert!(out.stdout.contains("+ column t.b"), "{}", out.stdout);
    env.run(&["diff", "HEAD", "live"]).expect(exit::PROBLEMS);
    env.run(&["diff", "live", "live"]).expect(exit::OK);
    env.run(&["diff", "no-such-rev"]).expect(exit::INPUT);
    // With two databases, `live` is the live file of the snapshot's own.
    let other = db(&env, "other.db", "CREATE TABLE o(a)");
    env.run(&["track", "other", s(&other)]).assert_success();
    let out = env.run(&["diff", "app~0"]);
    out.expect(exit::PROBLEMS);
    assert!(out.stdout.contains("+ column t.b"), "{}", out.stdout);
    env.run(&["diff", "app~0", "other"]).expect(exit::PROBLEMS);
}

// ---------------------------------------------------------------- Alembic

/// Each revision's parent(s) in the chat app's history.
const EDGES: [(&str, &str); 7] = [
    (chat_app::BASE, chat_app::ADD_ARCHIVED),
    (chat_app::ADD_ARCHIVED, chat_app::RENAME_BATCH),
    (chat_app::RENAME_BATCH, chat_app::FOLDERS),
    (chat_app::RENAME_BATCH, chat_app::TAGS),
    (chat_app::FOLDERS, chat_app::MERGE),
    (chat_app::TAGS, chat_app::MERGE),
    (chat_app::MERGE, chat_app::FOLDER_ID),
];

#[test]
fn diff_sql_replays_every_alembic_step() {
    let env = TestEnv::new();
    let Some(app) = AlembicProject::chat_app(&env) else {
        return;
    };
    let at = |rev: &str| -> PathBuf {
        let path = env.join(format!("at_{rev}.db"));
        if !path.exists() {
            let url = format!("sqlite:///{}", path.display());
            app.run_with(&["upgrade", rev], &[("DATABASE_URL", &url)])
                .assert_success();
        }
        path
    };
    for (from, to) in EDGES {
        let (a, b) = (at(from), at(to));
        let sql = env.run(&["diff", "--format", "sql", s(&a), s(&b)]);
        sql.expect(exit::PROBLEMS);
        let copy = env.join(format!("copy_{from}_{to}.db"));
        std::fs::copy(&a, &copy).unwrap();
        let conn = Connection::open(&copy).unwrap();
        let schema = schema_of(&conn);
        insert_rows(&conn, &schema);
        conn.execute_batch(&sql.stdout)
            .unwrap_or_else(|e| panic!("{from} -> {to}: {e}\n{}", sql.stdout));
        // Every table B keeps still has its rows.
        let after = schema_of(&conn);
        for table in after.tables.values() {
            if schema.table(&table.name).is_some() {
                let n: i64 = conn
                    .query_row(
                        &format!("SELECT count(*) FROM {}", q(&table.name)),
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(n, 3, "{from} -> {to}: rows of {}", table.name);
            }
        }
        drop(conn);
        env.run(&["diff", s(&copy), s(&b)]).expect(exit::OK);
    }
}

#[test]
fn diff_sql_from_the_cli_quotes_hostile_names() {
    let env = TestEnv::new();
    let evil = q("x\"; DROP TABLE users; --");
    let a = db(
        &env,
        "a.db",
        &format!(
            "CREATE TABLE users(id INTEGER PRIMARY KEY); INSERT INTO users VALUES (1);
             CREATE TABLE {evil}({evil} TEXT); INSERT INTO {evil} VALUES ('kept');"
        ),
    );
    let b = db(
        &env,
        "b.db",
        &format!(
            "CREATE TABLE users(id INTEGER PRIMARY KEY);
             CREATE TABLE {evil}({evil} TEXT NOT NULL, n INTEGER UNIQUE);
             CREATE INDEX {} ON {evil}({evil});",
            q("i\"; DELETE FROM users; --")
        ),
    );
    let sql = env.run(&["diff", "--format", "sql", s(&a), s(&b)]);
    sql.expect(exit::PROBLEMS);
    Connection::open(&a)
        .unwrap()
        .execute_batch(&sql.stdout)
        .unwrap();
    env.run(&["diff", s(&a), s(&b)]).expect(exit::OK);
    let conn = Connection::open(&a).unwrap();
    let users: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    let kept: String = conn
        .query_row(&format!("SELECT {evil} FROM {evil}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!((users, kept.as_str()), (1, "kept"));
}
