//! Tables, columns, types, defaults, constraints and indexes written with
//! SQLAlchemy, where it renders on SQLite exactly what the model holds;
//! each writer says why when it cannot.

use super::python::{execute, py_args, py_str};
use crate::schema::model::{
    Action, Column, ForeignKey, Index, IndexOrigin, IndexTarget, Table, Unique,
};
use crate::schema::plan::render_index;

/// `op.create_table(...)`, or why the table cannot be one.
pub(super) fn create_table(table: &Table) -> Result<String, String> {
    let mut out = format!("op.create_table(\n    {},\n", py_str(&table.name));
    for item in table_items(table)? {
        out.push_str(&format!("    {item},\n"));
    }
    out.push(')');
    Ok(out)
}

/// The columns and constraints of `sa.Table` / `op.create_table`.
pub(super) fn table_items(table: &Table) -> Result<Vec<String>, String> {
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

pub(super) fn sa_unique(table: &str, unique: &Unique) -> Result<String, String> {
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
pub(super) fn fk_options(fk: &ForeignKey) -> String {
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
pub(super) fn fk_unwritable(table: &str, fk: &ForeignKey) -> Option<String> {
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
pub(super) fn sa_column(table: &str, column: &Column) -> Result<String, String> {
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
pub(super) fn create_index(index: &Index) -> String {
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
pub(super) fn sa_index_columns(index: &Index) -> Option<Vec<String>> {
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
