//! Object-level difference between two schemas: what was added, removed or
//! changed, with the old and new value of every changed field.
//!
//! Invariants:
//! - Objects are matched by folded name (SQLite's comparison), and compared
//!   on the model's normalised fields, never on their exact `sql` text: a
//!   diff is empty exactly when the two schemas mean the same, which is when
//!   their semantic hashes agree.
//! - Constraint indexes (made by PRIMARY KEY and UNIQUE) are compared
//!   without their names, which SQLite derives from constraint order; their
//!   differences show as a change of the table's `constraint_indexes`.
//! - Changes come out in a stable order: tables (each followed by its
//!   columns and constraints), then indexes, views and triggers, by name.

use std::collections::HashMap;

use serde::Serialize;

use super::model::{
    Column, Index, IndexOrigin, NameMap, Schema, Table, Trigger, View, fold, same_name,
};

/// The differences between two schemas.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SchemaDiff {
    /// The changes, in stable order.
    pub changes: Vec<Change>,
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Only in the new schema.
    Added,
    /// Only in the old schema.
    Removed,
    /// In both, different.
    Changed,
}

/// The kind of object a change is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A table.
    Table,
    /// A column of a table.
    Column,
    /// An index made by `CREATE INDEX`.
    Index,
    /// A foreign key of a table.
    ForeignKey,
    /// A CHECK constraint of a table.
    Check,
    /// A UNIQUE constraint of a table.
    Unique,
    /// The primary key of a table.
    PrimaryKey,
    /// A storage option of a table (`without_rowid`, `strict`,
    /// `autoincrement`).
    TableOption,
    /// A view.
    View,
    /// A trigger.
    Trigger,
}

impl ChangeKind {
    /// The snake_case word, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Table => "table",
            ChangeKind::Column => "column",
            ChangeKind::Index => "index",
            ChangeKind::ForeignKey => "foreign_key",
            ChangeKind::Check => "check",
            ChangeKind::Unique => "unique",
            ChangeKind::PrimaryKey => "primary_key",
            ChangeKind::TableOption => "table_option",
            ChangeKind::View => "view",
            ChangeKind::Trigger => "trigger",
        }
    }
}

/// One object added, removed or changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What happened.
    pub op: Op,
    /// What kind of object.
    pub kind: ChangeKind,
    /// The table it belongs to, for parts of a table (columns,
    /// constraints, options) and for indexes and triggers.
    pub table: Option<String>,
    /// Its name as written in the new schema (the old one when removed); an
    /// unnamed constraint is named by its columns or expression.
    pub name: String,
    /// The fields that differ; for an added or removed object, every field
    /// that is set, with the missing side `null`.
    pub fields: Vec<FieldChange>,
}

/// One field's old and new value, as displayable text (`None`: not set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The field, as named in the model.
    pub field: String,
    /// The old value.
    pub before: Option<String>,
    /// The new value.
    pub after: Option<String>,
}

impl SchemaDiff {
    /// Whether the schemas mean the same.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The differences that turn `old` into `new`.
pub fn diff(old: &Schema, new: &Schema) -> SchemaDiff {
    let mut changes = Vec::new();
    let constraints = (constraint_index_map(old), constraint_index_map(new));
    for (key, before, after) in pair(&old.tables, &new.tables) {
        diff_table(&constraints, key, before, after, &mut changes);
    }
    let created = |schema: &Schema| -> NameMap<Index> {
        schema
            .indexes
            .iter()
            .filter(|(_, index)| index.origin == IndexOrigin::Created)
            .map(|(key, index)| (key.clone(), index.clone()))
            .collect()
    };
    let (old_indexes, new_indexes) = (created(old), created(new));
    for (_, before, after) in pair(&old_indexes, &new_indexes) {
        push_object(
            &mut changes,
            ChangeKind::Index,
            before,
            after,
            |i| i.name.clone(),
            |i| Some(i.table.clone()),
            index_fields,
        );
    }
    for (_, before, after) in pair(&old.views, &new.views) {
        push_object(
            &mut changes,
            ChangeKind::View,
            before,
            after,
            |v| v.name.clone(),
            |_| None,
            view_fields,
        );
    }
    for (_, before, after) in pair(&old.triggers, &new.triggers) {
        push_object(
            &mut changes,
            ChangeKind::Trigger,
            before,
            after,
            |t| t.name.clone(),
            |t| Some(t.table.clone()),
            trigger_fields,
        );
    }
    SchemaDiff { changes }
}

/// The entries of two maps side by side, by key.
fn pair<'a, T>(
    old: &'a NameMap<T>,
    new: &'a NameMap<T>,
) -> Vec<(&'a str, Option<&'a T>, Option<&'a T>)> {
    let mut keys: Vec<&str> = old.keys().chain(new.keys()).map(String::as_str).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|key| (key, old.get(key), new.get(key)))
        .collect()
}

type Fields = Vec<(&'static str, Option<String>)>;

/// Field-by-field changes between two field lists of one shape.
fn field_changes(before: Option<Fields>, after: Option<Fields>) -> Vec<FieldChange> {
    let before = before.unwrap_or_default();
    let after = after.unwrap_or_default();
    let mut names: Vec<&'static str> = before.iter().chain(&after).map(|(n, _)| *n).collect();
    let mut seen = Vec::new();
    names.retain(|n| {
        let fresh = !seen.contains(n);
        seen.push(*n);
        fresh
    });
    let get = |fields: &Fields, name: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.clone())
    };
    names
        .into_iter()
        .filter_map(|name| {
            let (b, a) = (get(&before, name), get(&after, name));
            (b != a).then(|| FieldChange {
                field: name.to_owned(),
                before: b,
                after: a,
            })
        })
        .collect()
}

fn push_object<T>(
    changes: &mut Vec<Change>,
    kind: ChangeKind,
    before: Option<&T>,
    after: Option<&T>,
    name: impl Fn(&T) -> String,
    table: impl Fn(&T) -> Option<String>,
    fields: impl Fn(&T) -> Fields,
) {
    let op = match (before, after) {
        (None, Some(_)) => Op::Added,
        (Some(_), None) => Op::Removed,
        (Some(_), Some(_)) => Op::Changed,
        (None, None) => return,
    };
    let fields = field_changes(before.map(&fields), after.map(&fields));
    if op == Op::Changed && fields.is_empty() {
        return;
    }
    let named = after.or(before).expect("holds because one side is set");
    changes.push(Change {
        op,
        kind,
        table: table(named),
        name: name(named),
        fields,
    });
}

fn flag(value: bool) -> Option<String> {
    value.then(|| "true".to_owned())
}

fn list(names: &[String]) -> String {
    names.join(", ")
}

fn column_fields(column: &Column) -> Fields {
    vec![
        ("name", Some(column.name.clone())),
        (
            "declared_type",
            Some(column.declared_type.clone()).filter(|t| !t.is_empty()),
        ),
        ("not_null", flag(column.not_null)),
        (
            "not_null_on_conflict",
            column.not_null_on_conflict.map(|c| c.sql().to_owned()),
        ),
        ("default", column.default.clone()),
        ("primary_key", column.primary_key.map(|p| p.to_string())),
        (
            "generated",
            column.generated.as_ref().map(|g| {
                let storage = match g.storage {
                    super::model::Storage::Virtual => "VIRTUAL",
                    super::model::Storage::Stored => "STORED",
                };
                format!("({}) {storage}", g.expression)
            }),
        ),
        ("hidden", flag(column.hidden)),
        ("collation", column.collation.clone()),
    ]
}

fn index_fields(index: &Index) -> Fields {
    vec![
        ("name", Some(index.name.clone())),
        ("table", Some(index.table.clone())),
        ("unique", flag(index.unique)),
        ("parts", Some(parts_text(index))),
        ("predicate", index.predicate.clone()),
        ("origin", Some(format!("{:?}", index.origin).to_lowercase())),
        ("unparsed", index.unparsed.clone()),
    ]
}

fn parts_text(index: &Index) -> String {
    index
        .parts
        .iter()
        .map(|part| {
            let mut text = match &part.target {
                super::model::IndexTarget::Column(c) => c.clone(),
                super::model::IndexTarget::Expression(e) => e.clone(),
            };
            if let Some(collation) = part.collation.as_ref().filter(|c| *c != "BINARY") {
                text.push_str(" COLLATE ");
                text.push_str(collation);
            }
            if part.descending {
                text.push_str(" DESC");
            }
            text
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn view_fields(view: &View) -> Fields {
    vec![
        ("name", Some(view.name.clone())),
        (
            "columns",
            Some(list(&view.columns)).filter(|c| !c.is_empty()),
        ),
        ("select", Some(view.select.clone())),
        ("unparsed", view.unparsed.clone()),
    ]
}

fn trigger_fields(trigger: &Trigger) -> Fields {
    let event = match &trigger.event {
        super::model::Event::Insert => "INSERT".to_owned(),
        super::model::Event::Delete => "DELETE".to_owned(),
        super::model::Event::Update { columns } if columns.is_empty() => "UPDATE".to_owned(),
        super::model::Event::Update { columns } => format!("UPDATE OF {}", list(columns)),
    };
    let timing = match trigger.timing {
        super::model::Timing::Before => "BEFORE",
        super::model::Timing::After => "AFTER",
        super::model::Timing::InsteadOf => "INSTEAD OF",
    };
    vec![
        ("name", Some(trigger.name.clone())),
        ("table", Some(trigger.table.clone())),
        ("timing", Some(timing.to_owned())),
        ("event", Some(event)),
        ("when", trigger.when.clone()),
        ("body", Some(trigger.body.clone())),
        ("unparsed", trigger.unparsed.clone()),
    ]
}

/// A table's constraint indexes, without names, in a stable order.
pub(crate) fn constraint_indexes(schema: &Schema, table: &str) -> Vec<String> {
    let mut out: Vec<String> = schema
        .indexes_on(table)
        .filter(|index| index.origin != IndexOrigin::Created)
        .map(constraint_text)
        .collect();
    out.sort();
    out
}

/// Constraint-index texts by folded table name.
type ConstraintMap = HashMap<String, Vec<String>>;

/// [`constraint_indexes`] of every table at once, by folded table name:
/// asking per table would scan every index once for each table.
fn constraint_index_map(schema: &Schema) -> ConstraintMap {
    let mut map = ConstraintMap::new();
    for index in schema.indexes.values() {
        if index.origin != IndexOrigin::Created {
            map.entry(fold(&index.table))
                .or_default()
                .push(constraint_text(index));
        }
    }
    for list in map.values_mut() {
        list.sort();
    }
    map
}

fn constraint_text(index: &Index) -> String {
    format!(
        "{}{} ({})",
        if index.unique { "unique " } else { "" },
        format!("{:?}", index.origin).to_lowercase(),
        parts_text(index)
    )
}

fn diff_table(
    (old, new): &(ConstraintMap, ConstraintMap),
    key: &str,
    before: Option<&Table>,
    after: Option<&Table>,
    changes: &mut Vec<Change>,
) {
    let table_fields = |constraints: &ConstraintMap, table: &Table| -> Fields {
        let mut fields: Fields = vec![("name", Some(table.name.clone()))];
        fields.push((
            "columns",
            Some(
                table
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ));
        if let Some(vt) = &table.virtual_table {
            fields.push((
                "virtual_table",
                Some(format!("{}({})", vt.module, vt.arguments.join(", "))),
            ));
        }
        fields.push(("unparsed", table.unparsed.clone()));
        let constraints = constraints
            .get(&fold(&table.name))
            .map(Vec::as_slice)
            .unwrap_or_default();
        fields.push((
            "constraint_indexes",
            Some(constraints.join("; ")).filter(|c| !c.is_empty()),
        ));
        fields
    };
    match (before, after) {
        (None, Some(table)) | (Some(table), None) => {
            let added = before.is_none();
            let schema = if added { new } else { old };
            let fields = table_fields(schema, table);
            changes.push(Change {
                op: if added { Op::Added } else { Op::Removed },
                kind: ChangeKind::Table,
                table: None,
                name: table.name.clone(),
                fields: if added {
                    field_changes(None, Some(fields))
                } else {
                    field_changes(Some(fields), None)
                },
            });
        }
        (Some(a), Some(b)) => {
            // The table itself: name case, virtual table, unparsed text,
            // constraint index details. Column order shows as `columns`.
            let fields = field_changes(Some(table_fields(old, a)), Some(table_fields(new, b)));
            if !fields.is_empty() {
                changes.push(Change {
                    op: Op::Changed,
                    kind: ChangeKind::Table,
                    table: None,
                    name: b.name.clone(),
                    fields,
                });
            }
            let table = Some(b.name.clone());
            // Columns.
            let mut names: Vec<String> = a.columns.iter().map(|c| fold(&c.name)).collect();
            for column in &b.columns {
                if !names.contains(&fold(&column.name)) {
                    names.push(fold(&column.name));
                }
            }
            for name in names {
                let (x, y) = (a.column(&name), b.column(&name));
                let mut part = Vec::new();
                push_object(
                    &mut part,
                    ChangeKind::Column,
                    x,
                    y,
                    |c| c.name.clone(),
                    |_| table.clone(),
                    column_fields,
                );
                changes.extend(part);
            }
            // Table options.
            for (name, x, y) in [
                (
                    "without_rowid",
                    a.options.without_rowid,
                    b.options.without_rowid,
                ),
                ("strict", a.options.strict, b.options.strict),
                (
                    "autoincrement",
                    a.options.autoincrement,
                    b.options.autoincrement,
                ),
            ] {
                if x != y {
                    changes.push(Change {
                        op: if y { Op::Added } else { Op::Removed },
                        kind: ChangeKind::TableOption,
                        table: table.clone(),
                        name: name.to_owned(),
                        fields: vec![FieldChange {
                            field: "value".into(),
                            before: Some(x.to_string()),
                            after: Some(y.to_string()),
                        }],
                    });
                }
            }
            // Primary key.
            let pk_fields = |pk: &super::model::PrimaryKey| -> Fields {
                vec![
                    ("name", pk.name.clone()),
                    ("columns", Some(list(&pk.columns))),
                    ("on_conflict", pk.on_conflict.map(|c| c.sql().to_owned())),
                ]
            };
            let (x, y) = (a.primary_key.as_ref(), b.primary_key.as_ref());
            let pk_same = match (x, y) {
                (Some(x), Some(y)) => {
                    pk_fields(x) == pk_fields(y) && names_eq(&x.columns, &y.columns)
                }
                (None, None) => true,
                _ => false,
            };
            if !pk_same {
                let name = y
                    .or(x)
                    .map(|pk| pk.name.clone().unwrap_or_else(|| list(&pk.columns)))
                    .unwrap_or_default();
                let mut part = Vec::new();
                push_object(
                    &mut part,
                    ChangeKind::PrimaryKey,
                    x,
                    y,
                    |_| name.clone(),
                    |_| table.clone(),
                    pk_fields,
                );
                changes.extend(part);
            }
            // Uniques, checks and foreign keys: matched whole; a changed
            // unnamed constraint is one removed and one added.
            let uniques = |t: &Table| -> Vec<(String, Fields)> {
                t.uniques
                    .iter()
                    .map(|u| {
                        (
                            u.name.clone().unwrap_or_else(|| list(&u.columns)),
                            vec![
                                ("name", u.name.clone()),
                                ("columns", Some(list(&u.columns))),
                                ("on_conflict", u.on_conflict.map(|c| c.sql().to_owned())),
                            ],
                        )
                    })
                    .collect()
            };
            constraint_changes(ChangeKind::Unique, &table, uniques(a), uniques(b), changes);
            let checks = |t: &Table| -> Vec<(String, Fields)> {
                t.checks
                    .iter()
                    .map(|c| {
                        (
                            c.name.clone().unwrap_or_else(|| c.expression.clone()),
                            vec![
                                ("name", c.name.clone()),
                                ("expression", Some(c.expression.clone())),
                            ],
                        )
                    })
                    .collect()
            };
            constraint_changes(ChangeKind::Check, &table, checks(a), checks(b), changes);
            let fks = |t: &Table| -> Vec<(String, Fields)> {
                t.foreign_keys
                    .iter()
                    .map(|fk| {
                        let target = if fk.target_columns.is_empty() {
                            fk.target_table.clone()
                        } else {
                            format!("{}({})", fk.target_table, list(&fk.target_columns))
                        };
                        (
                            fk.name
                                .clone()
                                .unwrap_or_else(|| format!("({}) -> {target}", list(&fk.columns))),
                            vec![
                                ("name", fk.name.clone()),
                                ("columns", Some(list(&fk.columns))),
                                ("references", Some(target)),
                                ("on_delete", Some(fk.on_delete.sql().to_owned())),
                                ("on_update", Some(fk.on_update.sql().to_owned())),
                                ("deferrable", flag(fk.deferrable)),
                                ("initially_deferred", flag(fk.initially_deferred)),
                            ],
                        )
                    })
                    .collect()
            };
            constraint_changes(ChangeKind::ForeignKey, &table, fks(a), fks(b), changes);
        }
        (None, None) => unreachable!("BUG: table key {key} on neither side"),
    }
}

fn names_eq(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_name(x, y))
}

/// Constraints matched by name when named, else by their whole content:
/// a named one that changed is `Changed`; anything else unmatched is
/// `Removed` or `Added`.
fn constraint_changes(
    kind: ChangeKind,
    table: &Option<String>,
    old: Vec<(String, Fields)>,
    new: Vec<(String, Fields)>,
    changes: &mut Vec<Change>,
) {
    let named = |fields: &Fields| fields[0].1.is_some();
    let mut unmatched_new: Vec<bool> = vec![true; new.len()];
    for (name, fields) in &old {
        let exact = new
            .iter()
            .enumerate()
            .position(|(i, (_, f))| unmatched_new[i] && f == fields);
        if let Some(i) = exact {
            unmatched_new[i] = false;
            continue;
        }
        let by_name = named(fields)
            .then(|| {
                new.iter()
                    .enumerate()
                    .position(|(i, (n, f))| unmatched_new[i] && named(f) && same_name(n, name))
            })
            .flatten();
        match by_name {
            Some(i) => {
                unmatched_new[i] = false;
                changes.push(Change {
                    op: Op::Changed,
                    kind,
                    table: table.clone(),
                    name: new[i].0.clone(),
                    fields: field_changes(Some(fields.clone()), Some(new[i].1.clone())),
                });
            }
            None => changes.push(Change {
                op: Op::Removed,
                kind,
                table: table.clone(),
                name: name.clone(),
                fields: field_changes(Some(fields.clone()), None),
            }),
        }
    }
    for (i, (name, fields)) in new.into_iter().enumerate() {
        if unmatched_new[i] {
            changes.push(Change {
                op: Op::Added,
                kind,
                table: table.clone(),
                name,
                fields: field_changes(None, Some(fields)),
            });
        }
    }
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

    fn summary(d: &SchemaDiff) -> Vec<String> {
        d.changes
            .iter()
            .map(|c| {
                let fields: Vec<String> = c
                    .fields
                    .iter()
                    .map(|f| {
                        format!(
                            "{}:{}->{}",
                            f.field,
                            f.before.as_deref().unwrap_or("-"),
                            f.after.as_deref().unwrap_or("-")
                        )
                    })
                    .collect();
                format!(
                    "{:?} {} {}{} [{}]",
                    c.op,
                    c.kind.name(),
                    c.table
                        .as_deref()
                        .map(|t| format!("{t}."))
                        .unwrap_or_default(),
                    c.name,
                    fields.join(" ")
                )
            })
            .collect()
    }

    #[test]
    fn same_schema_written_two_ways_has_no_diff() {
        let a = schema(
            "CREATE TABLE t(a INTEGER PRIMARY KEY, b text NOT NULL DEFAULT 'x'); CREATE INDEX i ON t(b) WHERE a > 0;",
        );
        let b = schema(
            "create   table \"t\" ( a integer primary key , b TEXT not null default 'x' ) ; create index i on t ( b ) where a>0",
        );
        assert!(diff(&a, &b).is_empty(), "{:?}", summary(&diff(&a, &b)));
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn columns_added_removed_and_changed() {
        let a = schema("CREATE TABLE t(a INTEGER, b TEXT, c REAL DEFAULT 1)");
        let b =
            schema("CREATE TABLE t(a INTEGER NOT NULL, c REAL DEFAULT 2 COLLATE NOCASE, d BLOB)");
        assert_eq!(
            summary(&diff(&a, &b)),
            [
                "Changed table t [columns:a, b, c->a, c, d]",
                "Changed column t.a [not_null:-->true]",
                "Removed column t.b [name:b->- declared_type:TEXT->-]",
                "Changed column t.c [default:1->2 collation:-->NOCASE]",
                "Added column t.d [name:-->d declared_type:-->BLOB]",
            ]
        );
    }

    #[test]
    fn constraints_options_and_keys() {
        let a = schema(
            "CREATE TABLE p(id INTEGER PRIMARY KEY);
             CREATE TABLE t(a INTEGER, b INTEGER REFERENCES p(id), CHECK (a > 0), UNIQUE(a));",
        );
        let b = schema(
            "CREATE TABLE p(id INTEGER PRIMARY KEY);
             CREATE TABLE t(a INTEGER, b INTEGER REFERENCES p(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, CHECK (a > 1), PRIMARY KEY (a, b)) WITHOUT ROWID;",
        );
        let got = summary(&diff(&a, &b));
        for expected in [
            "Added table_option t.without_rowid [value:false->true]",
            "Added primary_key t.a, b [columns:-->a, b]",
            "Removed unique t.a [columns:a->-]",
            "Removed check t.a > 0 [expression:a > 0->-]",
            "Added check t.a > 1 [expression:-->a > 1]",
            "Added foreign_key t.(b) -> p(id) [columns:-->b references:-->p(id) on_delete:-->CASCADE on_update:-->NO ACTION deferrable:-->true initially_deferred:-->true]",
        ] {
            assert!(
                got.iter().any(|g| g == expected),
                "missing {expected} in {got:#?}"
            );
        }
    }

    #[test]
    fn indexes_views_triggers() {
        let a = schema(
            "CREATE TABLE t(a, b); CREATE INDEX i ON t(a); CREATE INDEX gone ON t(b);
             CREATE VIEW v AS SELECT a FROM t; CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;",
        );
        let b = schema(
            "CREATE TABLE t(a, b); CREATE UNIQUE INDEX i ON t(a DESC) WHERE b IS NOT NULL;
             CREATE VIEW v AS SELECT b FROM t; CREATE TRIGGER tr BEFORE DELETE ON t BEGIN SELECT 2; END;
             CREATE VIEW w AS SELECT 1;",
        );
        assert_eq!(
            summary(&diff(&a, &b)),
            [
                "Removed index t.gone [name:gone->- table:t->- parts:b->- origin:created->-]",
                "Changed index t.i [unique:-->true parts:a->a DESC predicate:-->b IS NOT NULL]",
                "Changed view v [select:SELECT a FROM t->SELECT b FROM t]",
                "Added view w [name:-->w select:-->SELECT 1]",
                "Changed trigger t.tr [timing:AFTER->BEFORE event:INSERT->DELETE body:SELECT 1;->SELECT 2;]",
            ]
        );
    }

    #[test]
    fn tables_added_and_removed_and_json_names() {
        let a = schema("CREATE TABLE old(a)");
        let b = schema("CREATE TABLE new(a UNIQUE)");
        let d = diff(&a, &b);
        assert_eq!(d.changes.len(), 2);
        assert_eq!(d.changes[0].op, Op::Added);
        assert_eq!(d.changes[1].op, Op::Removed);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["changes"][0]["op"], "added");
        assert_eq!(json["changes"][0]["kind"], "table");
        assert_eq!(json["changes"][0]["name"], "new");
        assert_eq!(json["changes"][0]["table"], serde_json::Value::Null);
        assert_eq!(json["changes"][0]["fields"][0]["field"], "name");
        assert_eq!(
            json["changes"][0]["fields"][0]["before"],
            serde_json::Value::Null
        );
        assert_eq!(json["changes"][0]["fields"][0]["after"], "new");
    }

    #[test]
    fn empty_diff_iff_same_semantic_hash() {
        let pairs = [
            ("CREATE TABLE t(a INTEGER)", "CREATE TABLE t(a INT)"),
            ("CREATE TABLE t(a, UNIQUE(a))", "CREATE TABLE t(a UNIQUE)"),
            (
                "CREATE TABLE t(a PRIMARY KEY)",
                "CREATE TABLE t(a PRIMARY KEY DESC)",
            ),
            ("CREATE TABLE t(a)", "CREATE TABLE \"t\"(\"a\")"),
        ];
        for (x, y) in pairs {
            let (a, b) = (schema(x), schema(y));
            assert_eq!(
                diff(&a, &b).is_empty(),
                a.semantic_hash() == b.semantic_hash(),
                "{x} vs {y}: {:?}",
                summary(&diff(&a, &b))
            );
        }
    }
}
