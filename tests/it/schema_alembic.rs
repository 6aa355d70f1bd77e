//! `migsnap diff --format alembic` run by real Alembic: for random schema
//! pairs (A, B), the generated `upgrade()` turns a database with schema A
//! into one with B's semantic hash, and `downgrade()` takes it back to A's.
//! Each case starts one Python process, so there are few cases.

use std::path::Path;

use migsnap::schema::alembic::operations;
use migsnap::schema::diff::diff;
use migsnap::schema::{Schema, capture, quote_ident as q};
use proptest::prelude::*;
use rusqlite::Connection;

use crate::common::TestEnv;
use crate::common::alembic::python_or_skip;

// ---------------------------------------------------------------- generator

const TABLES: [&str; 4] = ["t0", "T1", "x\"; DROP TABLE users; --", "t 3"];

/// Column definitions by name: most have one definition, so that a column
/// both sides have is usually the same (added and dropped columns), and a
/// second one, so that it sometimes changes. The last two cannot be written
/// with SQLAlchemy types and default (no type; a default SQLAlchemy would
/// parenthesise), which takes the exact-SQL path.
const COLUMNS: [(&str, [&str; 2]); 8] = [
    ("c0", ["INTEGER NOT NULL DEFAULT 0", "INTEGER"]),
    ("c1", ["VARCHAR(40)", "TEXT"]),
    ("C2", ["NUMERIC(10, 2) DEFAULT 'x'", "NUMERIC(10, 2)"]),
    ("c3", ["BOOLEAN NOT NULL DEFAULT 0", "BOOLEAN"]),
    ("odd \"col\"", ["JSON", "JSON NOT NULL DEFAULT '{}'"]),
    ("c5", ["DATETIME DEFAULT CURRENT_TIMESTAMP", "DATETIME"]),
    ("c6", ["REAL DEFAULT (1 + 1)", "REAL DEFAULT -1"]),
    ("c7", ["BIGINT", ""]),
];

#[derive(Clone, Debug)]
struct GenTable {
    name: usize,
    /// (column, definition variant)
    columns: Vec<(usize, usize)>,
    /// (position in `columns`, named)
    unique: Option<(usize, bool)>,
    /// (position in `columns`, target table, named)
    fk: Option<(usize, usize, bool)>,
    /// (position in `columns`, unique, partial)
    index: Option<(usize, bool, bool)>,
}

fn gen_table() -> impl Strategy<Value = GenTable> {
    (
        0..TABLES.len(),
        prop::collection::vec(
            (
                0..COLUMNS.len(),
                prop::sample::select(vec![0usize, 0, 0, 1]),
            ),
            1..5,
        ),
        prop::option::of((0usize..5, any::<bool>())),
        prop::option::of((0usize..5, 0..TABLES.len(), any::<bool>())),
        prop::option::of((0usize..5, any::<bool>(), any::<bool>())),
    )
        .prop_map(|(name, columns, unique, fk, index)| {
            let mut seen = Vec::new();
            let columns: Vec<(usize, usize)> = columns
                .into_iter()
                .filter(|(c, _)| {
                    let fresh = !seen.contains(c);
                    seen.push(*c);
                    fresh
                })
                .collect();
            let n = columns.len();
            GenTable {
                name,
                columns,
                unique: unique.map(|(c, named)| (c % n, named)),
                fk: fk.map(|(c, t, named)| (c % n, t, named)),
                index: index.map(|(c, u, p)| (c % n, u, p)),
            }
        })
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

/// The SQL of a generated schema: each table has an `id INTEGER` primary
/// key, which foreign keys point at.
fn schema_sql(tables: &[GenTable]) -> String {
    let mut sql = String::new();
    for t in tables {
        let tname = TABLES[t.name];
        let col = |i: usize| q(COLUMNS[t.columns[i].0].0);
        let cname = |i: usize| COLUMNS[t.columns[i].0].0.replace(['"', ' '], "");
        let mut items = vec![format!("{} INTEGER NOT NULL", q("id"))];
        for &(c, variant) in &t.columns {
            let (name, definitions) = COLUMNS[c];
            items.push(
                format!("{} {}", q(name), definitions[variant])
                    .trim()
                    .to_owned(),
            );
        }
        items.push(format!(
            "CONSTRAINT {} PRIMARY KEY (id)",
            q(&format!("pk_{tname}"))
        ));
        if let Some((c, named)) = t.unique {
            let name = if named {
                format!("CONSTRAINT {} ", q(&format!("uq_{tname}_{}", cname(c))))
            } else {
                String::new()
            };
            items.push(format!("{name}UNIQUE ({})", col(c)));
        }
        if let Some((c, target, named)) = t.fk {
            let name = if named {
                format!("CONSTRAINT {} ", q(&format!("fk_{tname}_{}", cname(c))))
            } else {
                String::new()
            };
            items.push(format!(
                "{name}FOREIGN KEY ({}) REFERENCES {} (id) ON DELETE CASCADE",
                col(c),
                q(TABLES[target])
            ));
        }
        sql.push_str(&format!(
            "CREATE TABLE {} ({});\n",
            q(tname),
            items.join(", ")
        ));
        if let Some((c, unique, partial)) = t.index {
            sql.push_str(&format!(
                "CREATE {}INDEX {} ON {} ({}){};\n",
                if unique { "UNIQUE " } else { "" },
                q(&format!("ix_{tname}_{}", cname(c))),
                q(tname),
                col(c),
                if partial {
                    format!(" WHERE {} IS NOT NULL", col(c))
                } else {
                    String::new()
                }
            ));
        }
    }
    sql
}

// ---------------------------------------------------------------- the check

fn schema_of(conn: &Connection) -> Schema {
    let tx = conn.unchecked_transaction().unwrap();
    capture(&tx).unwrap().schema
}

fn schema_of_file(path: &Path) -> Schema {
    schema_of(&Connection::open(path).unwrap())
}

/// Runs `upgrade()` on `db`, copies the result to `upgraded`, then runs
/// `downgrade()`: one Python process, Alembic's real operations.
const DRIVER: &str = r#"
import shutil, sys
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

module, db, upgraded = sys.argv[1:4]
namespace = {}
exec(compile(open(module, encoding="utf-8").read(), module, "exec"), namespace)
engine = sa.create_engine("sqlite:///" + db)
for step in ("upgrade", "downgrade"):
    with engine.begin() as connection:
        with Operations.context(MigrationContext.configure(connection)):
            namespace[step]()
    if step == "upgrade":
        engine.dispose()
        shutil.copy(db, upgraded)
engine.dispose()
"#;

fn check_pair(python: &Path, a_sql: &str, b_sql: &str) -> Result<(), TestCaseError> {
    let env = TestEnv::new();
    let db = env.join("a.db");
    Connection::open(&db).unwrap().execute_batch(a_sql).unwrap();
    let a = schema_of_file(&db);
    let target = Connection::open_in_memory().unwrap();
    target.execute_batch(b_sql).unwrap();
    let b = schema_of(&target);
    let module = operations(&a, &b).to_module();
    let (script, revision, upgraded) = (
        env.join("driver.py"),
        env.join("revision.py"),
        env.join("up.db"),
    );
    std::fs::write(&script, DRIVER).unwrap();
    std::fs::write(&revision, &module).unwrap();
    let out = std::process::Command::new(python)
        .arg(&script)
        .args([&revision, &db, &upgraded])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let context = format!("--- A\n{a_sql}--- B\n{b_sql}--- revision\n{module}");
    prop_assert!(
        out.status.success(),
        "{}\n{context}",
        String::from_utf8_lossy(&out.stderr)
    );
    let up = schema_of_file(&upgraded);
    prop_assert!(
        up.semantic_hash() == b.semantic_hash(),
        "upgrade: {:#?}\n{context}",
        diff(&up, &b)
    );
    let down = schema_of_file(&db);
    prop_assert!(
        down.semantic_hash() == a.semantic_hash(),
        "downgrade: {:#?}\n{context}",
        diff(&down, &a)
    );
    Ok(())
}

proptest! {
    // One Python process per case, about a second each.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn alembic_operations_turn_any_schema_into_any_other_and_back(
        a in gen_schema(),
        b in gen_schema(),
    ) {
        let Some(python) = python_or_skip() else {
            return Ok(());
        };
        check_pair(&python, &schema_sql(&a), &schema_sql(&b))?;
    }
}

#[test]
fn alembic_operations_add_named_constraints_to_an_existing_table() {
    let Some(python) = python_or_skip() else {
        return;
    };
    check_pair(
        &python,
        "CREATE TABLE p (id INTEGER NOT NULL, CONSTRAINT pk_p PRIMARY KEY (id));
         CREATE TABLE t (id INTEGER NOT NULL, a VARCHAR(40), b INTEGER, CHECK (b > 0));",
        "CREATE TABLE p (id INTEGER NOT NULL, CONSTRAINT pk_p PRIMARY KEY (id));
         CREATE TABLE t (id INTEGER NOT NULL, a VARCHAR(40), b INTEGER, CHECK (b > 0),
             CONSTRAINT uq_t_a UNIQUE (a),
             CONSTRAINT fk_t_b FOREIGN KEY (b) REFERENCES p (id) ON DELETE CASCADE);",
    )
    .unwrap();
}

// ---------------------------------------------------------------- the CLI

#[test]
fn diff_format_alembic_prints_both_functions_and_is_only_for_diff() {
    let env = TestEnv::new();
    let (a, b) = (env.join("a.db"), env.join("b.db"));
    Connection::open(&a)
        .unwrap()
        .execute_batch("CREATE TABLE t (id INTEGER NOT NULL, CONSTRAINT pk_t PRIMARY KEY (id));")
        .unwrap();
    Connection::open(&b)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t (id INTEGER NOT NULL, note TEXT, CONSTRAINT pk_t PRIMARY KEY (id));
             CREATE INDEX ix_t_note ON t (note);",
        )
        .unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let out = env.run(&["--format", "alembic", "diff", a, b]);
    assert_eq!(out.status, 1, "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "# migsnap diff: {a} -> {b}\n\
             from alembic import op\n\
             import sqlalchemy as sa\n\
             \n\
             \n\
             def upgrade() -> None:\n    \
                 with op.batch_alter_table(\"t\", recreate=\"never\") as batch_op:\n        \
                     batch_op.add_column(sa.Column(\"note\", sa.Text(), nullable=True))\n    \
                 op.create_index(\"ix_t_note\", \"t\", [\"note\"], unique=False)\n\
             \n\
             \n\
             def downgrade() -> None:\n    \
                 op.drop_index(\"ix_t_note\", table_name=\"t\")\n    \
                 with op.batch_alter_table(\"t\", recreate=\"never\") as batch_op:\n        \
                     batch_op.drop_column(\"note\")\n"
        )
    );
    let same = env.run(&["--format", "alembic", "diff", a, a]);
    assert_eq!((same.status, same.stdout.as_str()), (0, ""), "{same:?}");
    env.run(&["--format", "alembic", "status"])
        .expect_error(2, &["--format alembic is only for `migsnap diff`"]);
}
