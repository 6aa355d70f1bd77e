//! Alembic operations (Python source) that turn one schema into another:
//! the `upgrade()` and `downgrade()` bodies of a revision.
//!
//! Invariants:
//! - Running the upgrade on a database with the old schema gives one whose
//!   semantic hash is the new schema's, and the downgrade (the operations
//!   from the new schema to the old) takes it back. Differences of form
//!   only (column order, constraint names) are not rendered: Alembic sees
//!   neither.
//! - An object is written with the operations Alembic users write
//!   (`op.create_table` with SQLAlchemy types, `op.create_index`,
//!   `batch_alter_table`) only where SQLAlchemy renders exactly what the
//!   model holds (`VARCHAR(32)` is `sa.String(length=32)`, `REAL` is
//!   `sa.REAL()` because `sa.Float()` renders `FLOAT`). Anything else (an
//!   unknown or missing type, a collation, a generated column, a default
//!   SQLAlchemy would wrap in parentheses) is written as the exact SQLite
//!   statements of [`super::plan`], run by `op.execute`, after a comment
//!   that says why.
//! - Columns are added and dropped on an existing table in place
//!   (`recreate="never"`) when SQLite's `ALTER TABLE` can; a constraint
//!   change recreates the table from `copy_from`, the table as the model
//!   holds it, never from Alembic's reflection, which drops unnamed CHECK
//!   constraints and cannot copy a column without a type.
//! - Every name and SQL text is a Python string literal written by
//!   [`py_str`]; SQL passed to `op.execute` goes through `sa.DDL` when
//!   SQLAlchemy's `text()` would read a `:name` in it as a parameter.

mod batch;
mod python;
mod sqlalchemy;

use std::collections::BTreeSet;

use super::diff::{ChangeKind, Meaning, diff};
use super::model::{Schema, fold};
use super::plan::{plan, statement};
use super::quote_ident;
use batch::alter_table;
use python::execute;
use sqlalchemy::{create_index, create_table};

pub use python::py_str;
pub use sqlalchemy::sa_type;

/// The bodies of a revision's two functions, one Python statement (which
/// may span lines) per item, unindented.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Operations {
    /// What `upgrade()` runs: old schema to new.
    pub upgrade: Vec<String>,
    /// What `downgrade()` runs: new schema back to old.
    pub downgrade: Vec<String>,
}

impl Operations {
    /// Whether there is nothing to do either way.
    pub fn is_empty(&self) -> bool {
        self.upgrade.is_empty() && self.downgrade.is_empty()
    }

    /// The `upgrade()` body, indented by `indent` on every line but the
    /// first (the way Alembic's `${upgrades}` template variable is
    /// written); `pass` when empty.
    pub fn upgrade_body(&self, indent: &str) -> String {
        body(&self.upgrade, indent)
    }

    /// The `downgrade()` body, indented as [`Operations::upgrade_body`].
    pub fn downgrade_body(&self, indent: &str) -> String {
        body(&self.downgrade, indent)
    }

    /// The two functions, with the imports they use: a revision module
    /// without its header and identifiers.
    pub fn to_module(&self) -> String {
        format!(
            "from alembic import op\nimport sqlalchemy as sa\n\n\n\
             def upgrade() -> None:\n    {}\n\n\n\
             def downgrade() -> None:\n    {}\n",
            self.upgrade_body("    "),
            self.downgrade_body("    ")
        )
    }
}

fn body(statements: &[String], indent: &str) -> String {
    if statements.is_empty() {
        return "pass".to_owned();
    }
    let text = statements.join("\n");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 || line.is_empty() {
                line.to_owned()
            } else {
                format!("{indent}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The operations that turn `old` into `new`, and back.
pub fn operations(old: &Schema, new: &Schema) -> Operations {
    Operations {
        upgrade: one_way(old, new),
        downgrade: one_way(new, old),
    }
}

/// The folded names of what differs in definition, by kind.
#[derive(Default)]
struct Touched {
    tables: BTreeSet<String>,
    indexes: BTreeSet<String>,
    views: BTreeSet<String>,
    triggers: BTreeSet<String>,
}

impl Touched {
    fn of(old: &Schema, new: &Schema) -> Touched {
        let mut touched = Touched::default();
        for change in diff(old, new).changes {
            if change.meaning != Meaning::Definition {
                continue;
            }
            let set = match change.kind {
                ChangeKind::Index => &mut touched.indexes,
                ChangeKind::View => &mut touched.views,
                ChangeKind::Trigger => &mut touched.triggers,
                _ => {
                    let table = change.table.as_deref().unwrap_or(&change.name);
                    touched.tables.insert(fold(table));
                    continue;
                }
            };
            set.insert(fold(&change.name));
        }
        touched
    }
}

/// The statements from `old` to `new`: triggers and views that go or
/// change are dropped first, then indexes, then the tables change, then
/// the new indexes, views and triggers are made.
fn one_way(old: &Schema, new: &Schema) -> Vec<String> {
    let touched = Touched::of(old, new);
    let mut out = Vec::new();
    for key in &touched.triggers {
        if let Some(trigger) = old.triggers.get(key) {
            out.push(execute(&format!(
                "DROP TRIGGER {}",
                quote_ident(&trigger.name)
            )));
        }
    }
    for key in &touched.views {
        if let Some(view) = old.views.get(key) {
            out.push(execute(&format!("DROP VIEW {}", quote_ident(&view.name))));
        }
    }
    // Tables written as exact SQL bring their indexes with them.
    let mut exact: BTreeSet<String> = BTreeSet::new();
    let mut tables = Vec::new();
    for key in &touched.tables {
        let step = table_step(old, new, key, &touched.indexes);
        if step.exact {
            exact.insert(key.clone());
        }
        tables.extend(step.statements);
    }
    for key in &touched.indexes {
        if let Some(index) = old.indexes.get(key)
            && !exact.contains(&fold(&index.table))
        {
            out.push(format!(
                "op.drop_index({}, table_name={})",
                py_str(&index.name),
                py_str(&index.table)
            ));
        }
    }
    out.extend(tables);
    for key in &touched.indexes {
        if let Some(index) = new.indexes.get(key)
            && !exact.contains(&fold(&index.table))
        {
            out.push(create_index(index));
        }
    }
    for key in &touched.views {
        if let Some(view) = new.views.get(key) {
            let mut mini = Schema::default();
            mini.insert_view(view.clone());
            out.push(execute(&statement(&mini)));
        }
    }
    for key in &touched.triggers {
        if let Some(trigger) = new.triggers.get(key) {
            let mut mini = Schema::default();
            mini.insert_trigger(trigger.clone());
            out.push(execute(&statement(&mini)));
        }
    }
    out
}

/// What one table's change is written as.
struct TableStep {
    statements: Vec<String>,
    /// Written as exact SQL, with its indexes.
    exact: bool,
}

fn table_step(old: &Schema, new: &Schema, key: &str, indexes: &BTreeSet<String>) -> TableStep {
    let written = |statements: Vec<String>| TableStep {
        statements,
        exact: false,
    };
    let attempt = match (old.tables.get(key), new.tables.get(key)) {
        (None, Some(b)) => create_table(b).map(|s| written(vec![s])),
        (Some(a), None) => Ok(written(vec![format!("op.drop_table({})", py_str(&a.name))])),
        (Some(a), Some(b)) => alter_table(old, a, b, indexes).map(written),
        (None, None) => Ok(written(Vec::new())),
    };
    attempt.unwrap_or_else(|reason| TableStep {
        statements: exact_table(old, new, key, &reason),
        exact: true,
    })
}

/// The table's change as SQLite statements ([`plan`] between the table
/// and its indexes alone), after a comment with `reason`.
fn exact_table(old: &Schema, new: &Schema, key: &str, reason: &str) -> Vec<String> {
    let mini = |schema: &Schema| {
        let mut mini = Schema::default();
        if let Some(table) = schema.tables.get(key) {
            mini.insert_table(table.clone());
            for index in schema.indexes_on(&table.name) {
                mini.insert_index(index.clone());
            }
        }
        mini
    };
    let steps = plan(&mini(old), &mini(new));
    let mut out = vec![format!("# migsnap: {reason}; as SQLite statements")];
    out.extend(steps.statements().map(|step| execute(&step.sql)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::capture;

    fn schema(sql: &str) -> Schema {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        capture(&tx).unwrap().schema
    }

    #[test]
    fn python_strings_escape_what_python_reads_specially() {
        assert_eq!(py_str(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(py_str("x\ny\u{1}"), r#""x\ny\x01""#);
        assert_eq!(py_str("é"), "\"é\"");
    }

    #[test]
    fn types_map_to_sqlalchemy_types_that_render_them_exactly() {
        let cases = [
            ("INTEGER", Some("sa.Integer()")),
            ("VARCHAR(32)", Some("sa.String(length=32)")),
            ("VARCHAR", Some("sa.String()")),
            ("NUMERIC(10, 2)", Some("sa.Numeric(precision=10, scale=2)")),
            ("REAL", Some("sa.REAL()")),
            ("BLOB", Some("sa.LargeBinary()")),
            ("", None),
            ("MYTYPE", None),
            ("VARCHAR(a)", None),
        ];
        for (declared, expected) in cases {
            assert_eq!(sa_type(declared).as_deref(), expected, "{declared}");
        }
    }

    #[test]
    fn new_tables_are_create_table_and_drop_table() {
        let old = schema("CREATE TABLE p(id INTEGER PRIMARY KEY)");
        let new = schema(
            "CREATE TABLE p(id INTEGER PRIMARY KEY);
             CREATE TABLE c(id INTEGER NOT NULL, p_id INTEGER REFERENCES p(id) ON DELETE CASCADE,
                            name VARCHAR(40) NOT NULL DEFAULT 'it''s', CONSTRAINT pk_c PRIMARY KEY (id),
                            UNIQUE (name));
             CREATE INDEX ix_c_p ON c(p_id);",
        );
        let ops = operations(&old, &new);
        let up = ops.upgrade.join("\n");
        assert!(up.starts_with("op.create_table(\n    \"c\",\n"), "{up}");
        for needle in [
            "sa.Column(\"name\", sa.String(length=40), nullable=False, server_default=\"it's\")",
            "sa.PrimaryKeyConstraint(\"id\", name=\"pk_c\")",
            "sa.UniqueConstraint(\"name\")",
            "sa.ForeignKeyConstraint([\"p_id\"], [\"p.id\"], ondelete=\"CASCADE\")",
            "op.create_index(\"ix_c_p\", \"c\", [\"p_id\"], unique=False)",
        ] {
            assert!(up.contains(needle), "{needle}\n{up}");
        }
        assert_eq!(
            ops.downgrade,
            [
                "op.drop_index(\"ix_c_p\", table_name=\"c\")",
                "op.drop_table(\"c\")"
            ]
        );
        assert!(operations(&new, &new).is_empty());
    }

    #[test]
    fn columns_change_in_place_and_constraints_through_copy_from() {
        let old = schema("CREATE TABLE t(a INTEGER, b TEXT)");
        let new = schema("CREATE TABLE t(a INTEGER, c INTEGER DEFAULT 0)");
        let up = operations(&old, &new).upgrade.join("\n");
        assert_eq!(
            up,
            "with op.batch_alter_table(\"t\", recreate=\"never\") as batch_op:\n    \
             batch_op.drop_column(\"b\")\n    \
             batch_op.add_column(sa.Column(\"c\", sa.Integer(), nullable=True, server_default=sa.text(\"0\")))"
        );
        let unique = schema("CREATE TABLE t(a INTEGER, b TEXT, CONSTRAINT uq_b UNIQUE (b))");
        let ops = operations(&old, &unique);
        assert!(
            ops.upgrade[0].contains("copy_from=sa.Table(")
                && ops.upgrade[0].contains("batch_op.create_unique_constraint(\"uq_b\", [\"b\"])"),
            "{ops:?}"
        );
        assert!(
            ops.downgrade[0].contains("batch_op.drop_constraint(\"uq_b\", type_=\"unique\")"),
            "{ops:?}"
        );
    }

    #[test]
    fn what_sqlalchemy_would_write_otherwise_is_exact_sql() {
        let old = schema("CREATE TABLE p(id INTEGER PRIMARY KEY)");
        let new = schema(
            "CREATE TABLE p(id INTEGER PRIMARY KEY);
             CREATE TABLE odd(a, b REAL DEFAULT -1);
             CREATE INDEX ix_p ON p(id DESC);
             CREATE VIEW v AS SELECT ':x' AS c;",
        );
        let up = operations(&old, &new).upgrade.join("\n");
        assert!(
            up.contains("# migsnap: odd.a has no type; as SQLite statements"),
            "{up}"
        );
        assert!(up.contains("op.execute(\"CREATE TABLE \\\"odd\\\""), "{up}");
        assert!(up.contains("# migsnap: index ix_p has terms"), "{up}");
        // text() would read :x as a parameter.
        assert!(up.contains("op.execute(sa.DDL(\"CREATE VIEW"), "{up}");
    }
}
