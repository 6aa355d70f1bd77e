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

use std::collections::BTreeSet;

use super::diff::{ChangeKind, Meaning, diff};
use super::model::{
    Action, Column, ForeignKey, Index, IndexOrigin, IndexTarget, Schema, Table, Unique, fold,
};
use super::plan::{can_add, can_drop, plan, render_index, statement};
use super::quote_ident;

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

/// `op.create_table(...)`, or why the table cannot be one.
fn create_table(table: &Table) -> Result<String, String> {
    let mut out = format!("op.create_table(\n    {},\n", py_str(&table.name));
    for item in table_items(table)? {
        out.push_str(&format!("    {item},\n"));
    }
    out.push(')');
    Ok(out)
}

/// The columns and constraints of `sa.Table` / `op.create_table`.
fn table_items(table: &Table) -> Result<Vec<String>, String> {
    if table.virtual_table.is_some() {
        return Err(format!("{} is a virtual table", table.name));
    }
    if table.unparsed.is_some() {
        return Err(format!("{} is not fully parsed", table.name));
    }
    let options = &table.options;
    if options.without_rowid || options.strict || options.autoincrement {
        return Err(format!(
            "{} has table options (WITHOUT ROWID, STRICT or AUTOINCREMENT)",
            table.name
        ));
    }
    let mut items = Vec::new();
    for column in &table.columns {
        items.push(sa_column(&table.name, column)?);
    }
    if let Some(pk) = &table.primary_key {
        if pk.on_conflict.is_some() {
            return Err(format!("{}'s primary key has ON CONFLICT", table.name));
        }
        items.push(format!(
            "sa.PrimaryKeyConstraint({}{})",
            py_args(&pk.columns),
            named(pk.name.as_deref())
        ));
    }
    for unique in &table.uniques {
        items.push(sa_unique(&table.name, unique)?);
    }
    for check in &table.checks {
        if check.expression.contains(':') {
            return Err(format!("a CHECK of {} holds ':'", table.name));
        }
        items.push(format!(
            "sa.CheckConstraint({}{})",
            py_str(&check.expression),
            named(check.name.as_deref())
        ));
    }
    for fk in &table.foreign_keys {
        items.push(sa_foreign_key(&table.name, fk)?);
    }
    Ok(items)
}

fn named(name: Option<&str>) -> String {
    name.map(|n| format!(", name={}", py_str(n)))
        .unwrap_or_default()
}

fn sa_unique(table: &str, unique: &Unique) -> Result<String, String> {
    if unique.on_conflict.is_some() {
        return Err(format!("a UNIQUE of {table} has ON CONFLICT"));
    }
    Ok(format!(
        "sa.UniqueConstraint({}{})",
        py_args(&unique.columns),
        named(unique.name.as_deref())
    ))
}

/// The keyword arguments of a foreign key after its columns.
fn fk_options(fk: &ForeignKey) -> String {
    let mut out = String::new();
    if let Some(name) = &fk.name {
        out.push_str(&format!(", name={}", py_str(name)));
    }
    for (word, action) in [("ondelete", fk.on_delete), ("onupdate", fk.on_update)] {
        if action != Action::NoAction {
            out.push_str(&format!(", {word}={}", py_str(action.sql())));
        }
    }
    if fk.deferrable {
        out.push_str(", deferrable=True");
    }
    if fk.initially_deferred {
        out.push_str(", initially=\"DEFERRED\"");
    }
    out
}

/// Why SQLAlchemy cannot write `fk` as the model holds it, if it cannot.
fn fk_unwritable(table: &str, fk: &ForeignKey) -> Option<String> {
    // SQLAlchemy splits "table.column" at dots, and spells out the target
    // columns, which an implicit target key leaves out.
    if fk.target_columns.is_empty() {
        Some(format!("a foreign key of {table} names no target columns"))
    } else if fk.target_columns.len() != fk.columns.len() {
        Some(format!("a foreign key of {table} has uneven columns"))
    } else if fk.target_table.contains('.') || fk.target_columns.iter().any(|c| c.contains('.')) {
        Some(format!(
            "a foreign key of {table} names a target with a dot"
        ))
    } else {
        None
    }
}

fn sa_foreign_key(table: &str, fk: &ForeignKey) -> Result<String, String> {
    if let Some(reason) = fk_unwritable(table, fk) {
        return Err(reason);
    }
    let targets: Vec<String> = fk
        .target_columns
        .iter()
        .map(|c| format!("{}.{c}", fk.target_table))
        .collect();
    Ok(format!(
        "sa.ForeignKeyConstraint([{}], [{}]{})",
        py_args(&fk.columns),
        py_args(&targets),
        fk_options(fk)
    ))
}

/// `sa.Column(...)`, or why the column cannot be one.
fn sa_column(table: &str, column: &Column) -> Result<String, String> {
    let what = format!("{table}.{}", column.name);
    if column.generated.is_some() || column.hidden {
        return Err(format!("{what} is generated or hidden"));
    }
    if column.collation.is_some() || column.not_null_on_conflict.is_some() {
        return Err(format!("{what} has a collation or ON CONFLICT"));
    }
    let ty = sa_type(&column.declared_type).ok_or_else(|| {
        if column.declared_type.is_empty() {
            format!("{what} has no type")
        } else {
            format!(
                "{what}'s type {} has no SQLAlchemy type that renders it",
                column.declared_type
            )
        }
    })?;
    let mut out = format!(
        "sa.Column({}, {ty}, nullable={}",
        py_str(&column.name),
        if column.not_null { "False" } else { "True" }
    );
    if let Some(default) = &column.default {
        let rendered = server_default(default)
            .ok_or_else(|| format!("{what}'s default {default} would not come back the same"))?;
        out.push_str(&format!(", server_default={rendered}"));
    }
    out.push(')');
    Ok(out)
}

/// The SQLAlchemy type that renders exactly `declared` (normalised: upper
/// case, `NAME(a, b)`) on SQLite, if there is one.
pub fn sa_type(declared: &str) -> Option<String> {
    let (name, args) = match declared.split_once('(') {
        Some((name, rest)) => (name, Some(rest.strip_suffix(')')?)),
        None => (declared, None),
    };
    let numbers: Vec<&str> = match args {
        Some(args) => args.split(", ").collect(),
        None => Vec::new(),
    };
    if !numbers
        .iter()
        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let plain = |ty: &str| numbers.is_empty().then(|| format!("sa.{ty}()"));
    let sized = |ty: &str, bare: &str| match numbers.as_slice() {
        [] => Some(format!("sa.{bare}()")),
        [n] => Some(format!("sa.{ty}(length={n})")),
        _ => None,
    };
    let exact = |ty: &str| match numbers.as_slice() {
        [] => Some(format!("sa.{ty}()")),
        [p] => Some(format!("sa.{ty}(precision={p})")),
        [p, s] => Some(format!("sa.{ty}(precision={p}, scale={s})")),
        _ => None,
    };
    match name {
        "INTEGER" => plain("Integer"),
        "BIGINT" => plain("BigInteger"),
        "SMALLINT" => plain("SmallInteger"),
        "TEXT" => plain("Text"),
        "BOOLEAN" => plain("Boolean"),
        "JSON" => plain("JSON"),
        "DATETIME" => plain("DateTime"),
        "DATE" => plain("Date"),
        "TIME" => plain("Time"),
        "TIMESTAMP" => plain("TIMESTAMP"),
        "FLOAT" => plain("Float"),
        "REAL" => plain("REAL"),
        "DOUBLE" => plain("Double"),
        "BLOB" => plain("LargeBinary"),
        "CLOB" => plain("CLOB"),
        "VARCHAR" => sized("String", "String"),
        "CHAR" => sized("CHAR", "CHAR"),
        "NVARCHAR" => sized("NVARCHAR", "NVARCHAR"),
        "NUMERIC" => exact("Numeric"),
        "DECIMAL" => exact("DECIMAL"),
        _ => None,
    }
}

/// The `server_default=` of a column default, when SQLAlchemy writes it
/// back as the model holds it: a string literal as a Python string, a
/// bare word or number or a parenthesised expression as `sa.text`.
/// SQLAlchemy's SQLite dialect wraps any other expression in parentheses
/// (`-1` would come back as `(-1)`).
fn server_default(default: &str) -> Option<String> {
    if let Some(inner) = default
        .strip_prefix('\'')
        .and_then(|d| d.strip_suffix('\''))
        && !inner.replace("''", "").contains('\'')
    {
        return Some(py_str(&inner.replace("''", "'")));
    }
    let word = default
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let parenthesised = default.starts_with('(') && default.ends_with(')');
    ((word && !default.is_empty()) || parenthesised)
        .then_some(default)
        .filter(|d| !d.contains(':'))
        .map(|d| format!("sa.text({})", py_str(d)))
}

/// `op.create_index(...)`, or the exact statement when SQLAlchemy would not
/// write the same index (expressions, collations, descending terms).
fn create_index(index: &Index) -> String {
    match sa_index_columns(index) {
        Some(columns) => {
            let mut out = format!(
                "op.create_index({}, {}, [{}], unique={}",
                py_str(&index.name),
                py_str(&index.table),
                py_args(&columns),
                if index.unique { "True" } else { "False" }
            );
            if let Some(predicate) = &index.predicate {
                out.push_str(&format!(", sqlite_where=sa.text({})", py_str(predicate)));
            }
            out.push(')');
            out
        }
        None => format!(
            "# migsnap: index {} has terms SQLAlchemy would write otherwise\n{}",
            index.name,
            execute(&render_index(index))
        ),
    }
}

/// The plain column names of an index SQLAlchemy writes as the model holds
/// it; `None` for any other index.
fn sa_index_columns(index: &Index) -> Option<Vec<String>> {
    if index.origin != IndexOrigin::Created
        || index.unparsed.is_some()
        || index.predicate.as_deref().is_some_and(|p| p.contains(':'))
    {
        return None;
    }
    index
        .parts
        .iter()
        .map(|part| match &part.target {
            IndexTarget::Column(name)
                if !part.descending && part.collation.as_deref().is_none_or(|c| c == "BINARY") =>
            {
                Some(name.clone())
            }
            _ => None,
        })
        .collect()
}

/// The batch operations that turn table `a` of `old` into `b`, or why
/// they cannot. `dropped_indexes` are the indexes dropped before (so not
/// copied by a recreate).
fn alter_table(
    old: &Schema,
    a: &Table,
    b: &Table,
    dropped_indexes: &BTreeSet<String>,
) -> Result<Vec<String>, String> {
    let same = |x: &Table, y: &Table| {
        x.name == y.name
            && x.primary_key == y.primary_key
            && x.checks == y.checks
            && x.options == y.options
            && x.virtual_table == y.virtual_table
            && x.unparsed == y.unparsed
    };
    let dropped: Vec<&Column> = a
        .columns
        .iter()
        .filter(|c| b.column(&c.name).is_none())
        .collect();
    let added: Vec<&Column> = b
        .columns
        .iter()
        .filter(|c| a.column(&c.name).is_none())
        .collect();
    // Kept columns unchanged and in order, new ones at the end: what
    // add_column and drop_column make.
    let mut expected: Vec<&Column> = a
        .columns
        .iter()
        .filter(|c| b.column(&c.name).is_some())
        .collect();
    expected.extend(&added);
    if !same(a, b) || expected != b.columns.iter().collect::<Vec<_>>() {
        return Err(format!(
            "{} changes beyond added and dropped columns and constraints",
            b.name
        ));
    }
    let constraints = constraint_ops(a, b)?;
    let mut ops = constraints.drops.clone();
    for column in &dropped {
        ops.push(format!("batch_op.drop_column({})", py_str(&column.name)));
    }
    for column in &added {
        ops.push(format!(
            "batch_op.add_column({})",
            sa_column(&b.name, column)?
        ));
    }
    ops.extend(constraints.creates.iter().cloned());
    let in_place = constraints.is_empty()
        && added.iter().all(|c| can_add(c))
        && droppable(old, a, &dropped, dropped_indexes);
    let how = if in_place {
        // SQLite's ALTER TABLE does these in place; Alembic's "auto" mode
        // would copy the table for a dropped column or an expression default.
        "recreate=\"never\"".to_owned()
    } else if constraints.unnamed.is_empty() {
        format!("copy_from={}", copy_from(old, a, dropped_indexes)?)
    } else {
        format!(
            "copy_from={}, table_args=({},), recreate=\"always\"",
            copy_from(old, a, dropped_indexes)?,
            constraints.unnamed.join(", ")
        )
    };
    let mut out = format!(
        "with op.batch_alter_table({}, {how}) as batch_op:",
        py_str(&a.name)
    );
    for op in ops {
        out.push_str("\n    ");
        out.push_str(&op);
    }
    Ok(vec![out])
}

/// Whether SQLite's `ALTER TABLE … DROP COLUMN` can drop `columns` of `a`
/// once `dropped_indexes` (dropped before the table changes) are gone.
fn droppable(
    old: &Schema,
    a: &Table,
    columns: &[&Column],
    dropped_indexes: &BTreeSet<String>,
) -> bool {
    if columns.is_empty() {
        return true;
    }
    let mut remaining = old.clone();
    remaining
        .indexes
        .retain(|key, _| !dropped_indexes.contains(key));
    columns.iter().all(|c| can_drop(&remaining, a, c))
}

/// The batch operations that drop the UNIQUE constraints and foreign keys
/// `a` has and `b` lacks, and create those `b` adds; or why they cannot be
/// written (a constraint without a name cannot be dropped by name).
fn constraint_ops(a: &Table, b: &Table) -> Result<ConstraintOps, String> {
    let lost_uniques: Vec<&Unique> = a
        .uniques
        .iter()
        .filter(|u| !b.uniques.contains(u))
        .collect();
    let new_uniques: Vec<&Unique> = b
        .uniques
        .iter()
        .filter(|u| !a.uniques.contains(u))
        .collect();
    let lost_fks: Vec<&ForeignKey> = a
        .foreign_keys
        .iter()
        .filter(|fk| !b.foreign_keys.contains(fk))
        .collect();
    let new_fks: Vec<&ForeignKey> = b
        .foreign_keys
        .iter()
        .filter(|fk| !a.foreign_keys.contains(fk))
        .collect();
    let mut ops = Vec::new();
    for unique in &lost_uniques {
        let name = unique
            .name
            .as_ref()
            .ok_or_else(|| format!("an unnamed UNIQUE of {} cannot be dropped by name", a.name))?;
        ops.push(format!(
            "batch_op.drop_constraint({}, type_=\"unique\")",
            py_str(name)
        ));
    }
    for fk in &lost_fks {
        let name = fk.name.as_ref().ok_or_else(|| {
            format!(
                "an unnamed foreign key of {} cannot be dropped by name",
                a.name
            )
        })?;
        ops.push(format!(
            "batch_op.drop_constraint({}, type_=\"foreignkey\")",
            py_str(name)
        ));
    }
    let drops = std::mem::take(&mut ops);
    // Batch mode creates only named constraints; an unnamed UNIQUE goes
    // into the recreated table as it is (`table_args`).
    let mut unnamed = Vec::new();
    for unique in &new_uniques {
        let constraint = sa_unique(&b.name, unique)?;
        match &unique.name {
            Some(name) => ops.push(format!(
                "batch_op.create_unique_constraint({}, [{}])",
                py_str(name),
                py_args(&unique.columns)
            )),
            None => unnamed.push(constraint),
        }
    }
    for fk in &new_fks {
        if let Some(reason) = fk_unwritable(&b.name, fk) {
            return Err(reason);
        }
        // An unnamed one could go into `table_args`, but there its target
        // table is unknown to SQLAlchemy.
        let name = fk.name.as_ref().ok_or_else(|| {
            format!(
                "an unnamed foreign key of {} cannot be created in batch mode",
                b.name
            )
        })?;
        let options = fk_options(&ForeignKey {
            name: None,
            ..(*fk).clone()
        });
        ops.push(format!(
            "batch_op.create_foreign_key({}, {}, [{}], [{}]{options})",
            py_str(name),
            py_str(&fk.target_table),
            py_args(&fk.columns),
            py_args(&fk.target_columns)
        ));
    }
    Ok(ConstraintOps {
        drops,
        creates: ops,
        unnamed,
    })
}

/// The batch operations of [`constraint_ops`].
struct ConstraintOps {
    /// `drop_constraint` calls, run before the column changes.
    drops: Vec<String>,
    /// `create_*` calls, run after them.
    creates: Vec<String>,
    /// Unnamed constraints the recreated table gets as they are.
    unnamed: Vec<String>,
}

impl ConstraintOps {
    fn is_empty(&self) -> bool {
        self.drops.is_empty() && self.creates.is_empty() && self.unnamed.is_empty()
    }
}

/// `sa.Table(...)` of table `a` as the model holds it, with the indexes
/// that stay: what a batch recreate copies instead of reflecting.
fn copy_from(
    old: &Schema,
    a: &Table,
    dropped_indexes: &BTreeSet<String>,
) -> Result<String, String> {
    let mut out = format!("sa.Table(\n    {},\n    sa.MetaData(),\n", py_str(&a.name));
    for item in table_items(a)? {
        out.push_str(&format!("    {item},\n"));
    }
    for index in old.indexes_on(&a.name) {
        if index.origin != IndexOrigin::Created || dropped_indexes.contains(&fold(&index.name)) {
            continue;
        }
        let columns = sa_index_columns(index)
            .ok_or_else(|| format!("index {} of {} cannot be copied", index.name, a.name))?;
        let mut item = format!(
            "    sa.Index({}, {}, unique={}",
            py_str(&index.name),
            py_args(&columns),
            if index.unique { "True" } else { "False" }
        );
        if let Some(predicate) = &index.predicate {
            item.push_str(&format!(", sqlite_where=sa.text({})", py_str(predicate)));
        }
        out.push_str(&item);
        out.push_str("),\n");
    }
    out.push(')');
    Ok(out.replace('\n', "\n    "))
}

/// `op.execute(...)` of one SQL statement. `text()`, which `op.execute`
/// wraps a string in, reads `:name` as a bound parameter; `sa.DDL` does
/// not, but formats `%`, so there it is doubled.
fn execute(sql: &str) -> String {
    if sql.contains(':') {
        format!("op.execute(sa.DDL({}))", py_str(&sql.replace('%', "%%")))
    } else {
        format!("op.execute({})", py_str(sql))
    }
}

/// Python string literals, comma-separated.
fn py_args(items: &[String]) -> String {
    items
        .iter()
        .map(|item| py_str(item))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Python string literal holding `text` exactly: double-quoted, with
/// backslashes, quotes and control characters escaped.
pub fn py_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            // Line and paragraph separators end a line for some readers.
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
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
