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
//! - Every difference is one change, counted once: a table's column list is
//!   a change of the table only when the columns both sides have are in
//!   another order; added and removed columns are their own changes.
//! - Each change says what it means ([`Meaning`]): a difference of
//!   definition, or one of form only (the same columns in another order, the
//!   same constraint or index under another name), which SQLite and an ORM
//!   that names its columns read alike.

use std::collections::HashMap;

use serde::Serialize;

use super::field::{ConstraintIndex, Field, References, Value, index_key};
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

/// What a change means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Meaning {
    /// The definition differs: something is added, removed or defined
    /// otherwise.
    #[default]
    Definition,
    /// Same columns, different order (a table whose only field that differs
    /// is `columns`).
    Order,
    /// Same constraint or index, different name.
    Name,
}

impl Meaning {
    /// Whether the change is one of form only: order or name.
    pub fn is_form(self) -> bool {
        self != Meaning::Definition
    }
}

/// One object added, removed or changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What happened.
    pub op: Op,
    /// What kind of object.
    pub kind: ChangeKind,
    /// What the change means: a difference of definition, or of order or
    /// name only.
    pub meaning: Meaning,
    /// For a table whose shared columns are in another order: the fewest
    /// columns that moved (the others keep their relative order), in the
    /// new schema's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<String>,
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

/// One field's old and new value (`None`: not set); both serialize as
/// their text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The field.
    pub field: Field,
    /// The old value.
    pub before: Option<Value>,
    /// The new value.
    pub after: Option<Value>,
}

/// How many changes of each sort a diff holds: differences of definition
/// by what happened, differences of form by their meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Objects only in the new schema.
    pub added: usize,
    /// Objects only in the old schema.
    pub removed: usize,
    /// Objects in both, defined differently.
    pub changed: usize,
    /// Tables with the same columns in another order.
    pub reordered: usize,
    /// Constraints and indexes under another name.
    pub renamed: usize,
}

impl Tally {
    /// The differences of definition.
    pub fn definition(&self) -> usize {
        self.added + self.removed + self.changed
    }
}

impl SchemaDiff {
    /// Whether the schemas are the same, in meaning and in form.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether the schemas differ, and only in form (order, names).
    pub fn is_form_only(&self) -> bool {
        !self.is_empty() && self.changes.iter().all(|c| c.meaning.is_form())
    }

    /// The changes counted by sort; every renderer counts with this.
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        for change in &self.changes {
            let slot = match (change.meaning, change.op) {
                (Meaning::Order, _) => &mut tally.reordered,
                (Meaning::Name, _) => &mut tally.renamed,
                (Meaning::Definition, Op::Added) => &mut tally.added,
                (Meaning::Definition, Op::Removed) => &mut tally.removed,
                (Meaning::Definition, Op::Changed) => &mut tally.changed,
            };
            *slot += 1;
        }
        tally
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
    // An index only in one schema that is, but for its name, an index only
    // in the other was renamed: one change of name, not a removal and an
    // addition.
    let unnamed = |index: &Index| index_fields(index).split_off(1);
    let mut renamed: HashMap<&str, &Index> = HashMap::new();
    for (key, index) in &old_indexes {
        if new_indexes.contains_key(key) {
            continue;
        }
        let partner = new_indexes.iter().find(|(new_key, candidate)| {
            !old_indexes.contains_key(*new_key)
                && !renamed
                    .values()
                    .any(|taken| std::ptr::eq(*taken, *candidate))
                && unnamed(candidate) == unnamed(index)
        });
        if let Some((_, candidate)) = partner {
            renamed.insert(key, candidate);
        }
    }
    for (key, before, after) in pair(&old_indexes, &new_indexes) {
        if after.is_some_and(|a| renamed.values().any(|taken| std::ptr::eq(*taken, a))) {
            continue;
        }
        let after = after.or_else(|| renamed.get(key).copied());
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

type Fields = Vec<(Field, Option<Value>)>;

/// Field-by-field changes between two field lists of one shape.
fn field_changes(before: Option<Fields>, after: Option<Fields>) -> Vec<FieldChange> {
    let before = before.unwrap_or_default();
    let after = after.unwrap_or_default();
    let mut names: Vec<Field> = before.iter().chain(&after).map(|(n, _)| *n).collect();
    let mut seen = Vec::new();
    names.retain(|n| {
        let fresh = !seen.contains(n);
        seen.push(*n);
        fresh
    });
    let get = |fields: &Fields, name: Field| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.clone())
    };
    names
        .into_iter()
        .filter_map(|name| {
            let (b, a) = (get(&before, name), get(&after, name));
            (b != a).then_some(FieldChange {
                field: name,
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
        meaning: meaning_of(op, kind, &fields),
        moved: Vec::new(),
        table: table(named),
        name: name(named),
        fields,
    });
}

/// The meaning of a change of a constraint or an index, or of a column
/// other than its order: a change of name only is [`Meaning::Name`]. A
/// table or column under another name is another object to SQL, so a
/// change of their name (its case) stays one of definition.
fn meaning_of(op: Op, kind: ChangeKind, fields: &[FieldChange]) -> Meaning {
    let constraint = matches!(
        kind,
        ChangeKind::Index
            | ChangeKind::ForeignKey
            | ChangeKind::Check
            | ChangeKind::Unique
            | ChangeKind::PrimaryKey
    );
    if op == Op::Changed && constraint && fields.iter().all(|f| f.field == Field::Name) {
        Meaning::Name
    } else {
        Meaning::Definition
    }
}

/// The fewest columns of `after` that moved against `before`: the columns
/// both tables have, in `after`'s order, that are not in a longest common
/// subsequence of the two orders. Empty when the shared columns keep their
/// order (columns only added or removed have not moved).
fn moved_columns(before: &Table, after: &Table) -> Vec<String> {
    let a: Vec<String> = before
        .columns_shared_with(after)
        .into_iter()
        .map(|c| fold(&c.name))
        .collect();
    let b = after.columns_shared_with(before);
    if a.iter().zip(&b).all(|(x, y)| same_name(x, &y.name)) {
        return Vec::new();
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if same_name(&a[i], &b[j].name) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut kept = vec![false; b.len()];
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if same_name(&a[i], &b[j].name) {
            kept[j] = true;
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    b.iter()
        .zip(kept)
        .filter(|(_, kept)| !kept)
        .map(|(c, _)| c.name.clone())
        .collect()
}

/// A setting shown only when on.
fn flag(value: bool) -> Option<Value> {
    value.then_some(Value::Flag(true))
}

fn text(value: &str) -> Option<Value> {
    Some(Value::Text(value.to_owned()))
}

fn optional_text(value: &Option<String>) -> Option<Value> {
    value.clone().map(Value::Text)
}

fn names(names: &[String]) -> Option<Value> {
    Some(Value::Names(names.to_vec()))
}

/// The name a list of columns is matched and shown by, when a constraint
/// has none of its own.
fn list(names: &[String]) -> String {
    names.join(", ")
}

fn column_fields(column: &Column) -> Fields {
    vec![
        (Field::Name, text(&column.name)),
        (
            Field::DeclaredType,
            text(&column.declared_type).filter(|_| !column.declared_type.is_empty()),
        ),
        (Field::NotNull, flag(column.not_null)),
        (
            Field::NotNullOnConflict,
            column.not_null_on_conflict.map(Value::Conflict),
        ),
        (Field::Default, optional_text(&column.default)),
        (Field::PrimaryKey, column.primary_key.map(Value::Integer)),
        (
            Field::Generated,
            column.generated.clone().map(Value::Generated),
        ),
        (Field::Hidden, flag(column.hidden)),
        (Field::Collation, optional_text(&column.collation)),
    ]
}

fn index_fields(index: &Index) -> Fields {
    vec![
        (Field::Name, text(&index.name)),
        (Field::Table, text(&index.table)),
        (Field::Unique, flag(index.unique)),
        (Field::Parts, Some(Value::Parts(index_key(&index.parts)))),
        (Field::Predicate, optional_text(&index.predicate)),
        (Field::Origin, Some(Value::Origin(index.origin))),
        (Field::Unparsed, optional_text(&index.unparsed)),
    ]
}

fn view_fields(view: &View) -> Fields {
    vec![
        (Field::Name, text(&view.name)),
        (
            Field::Columns,
            names(&view.columns).filter(|_| !view.columns.is_empty()),
        ),
        (Field::Select, text(&view.select)),
        (Field::Unparsed, optional_text(&view.unparsed)),
    ]
}

fn trigger_fields(trigger: &Trigger) -> Fields {
    vec![
        (Field::Name, text(&trigger.name)),
        (Field::Table, text(&trigger.table)),
        (Field::Timing, Some(Value::Timing(trigger.timing))),
        (Field::Event, Some(Value::Event(trigger.event.clone()))),
        (Field::When, optional_text(&trigger.when)),
        (Field::Body, text(&trigger.body)),
        (Field::Unparsed, optional_text(&trigger.unparsed)),
    ]
}

/// A table's constraint indexes, without names, in a stable order.
pub(crate) fn constraint_indexes(schema: &Schema, table: &str) -> Vec<ConstraintIndex> {
    let mut out: Vec<ConstraintIndex> = schema
        .indexes_on(table)
        .filter(|index| index.origin != IndexOrigin::Created)
        .map(constraint_index)
        .collect();
    in_shown_order(&mut out);
    out
}

/// Constraint indexes by folded table name.
type ConstraintMap = HashMap<String, Vec<ConstraintIndex>>;

/// [`constraint_indexes`] of every table at once, by folded table name:
/// asking per table would scan every index once for each table.
fn constraint_index_map(schema: &Schema) -> ConstraintMap {
    let mut map = ConstraintMap::new();
    for index in schema.indexes.values() {
        if index.origin != IndexOrigin::Created {
            map.entry(fold(&index.table))
                .or_default()
                .push(constraint_index(index));
        }
    }
    for list in map.values_mut() {
        in_shown_order(list);
    }
    map
}

fn constraint_index(index: &Index) -> ConstraintIndex {
    ConstraintIndex {
        unique: index.unique,
        origin: index.origin,
        parts: index_key(&index.parts),
    }
}

/// Sorts constraint indexes by their text: the order the diff has always
/// shown them in, so two tables' lists compare item by item.
fn in_shown_order(list: &mut [ConstraintIndex]) {
    list.sort_by_cached_key(ToString::to_string);
}

fn diff_table(
    (old, new): &(ConstraintMap, ConstraintMap),
    key: &str,
    before: Option<&Table>,
    after: Option<&Table>,
    changes: &mut Vec<Change>,
) {
    match (before, after) {
        (None, Some(table)) | (Some(table), None) => {
            let added = before.is_none();
            let schema = if added { new } else { old };
            let fields = table_fields(schema, table);
            changes.push(Change {
                op: if added { Op::Added } else { Op::Removed },
                kind: ChangeKind::Table,
                meaning: Meaning::Definition,
                moved: Vec::new(),
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
            diff_table_itself((old, new), a, b, changes);
            let table = Some(b.name.clone());
            diff_columns(&table, a, b, changes);
            diff_table_options(&table, a, b, changes);
            diff_primary_key(&table, a, b, changes);
            // Uniques, checks and foreign keys: matched whole; a changed
            // unnamed constraint is one removed and one added.
            constraint_changes(ChangeKind::Unique, &table, uniques(a), uniques(b), changes);
            constraint_changes(ChangeKind::Check, &table, checks(a), checks(b), changes);
            let (x, y) = (foreign_keys(a), foreign_keys(b));
            constraint_changes(ChangeKind::ForeignKey, &table, x, y, changes);
        }
        (None, None) => unreachable!("BUG: table key {key} on neither side"),
    }
}

/// The fields of a table itself; `constraints` are its side's constraint
/// indexes.
fn table_fields(constraints: &ConstraintMap, table: &Table) -> Fields {
    let columns: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    let mut fields: Fields = vec![
        (Field::Name, text(&table.name)),
        (Field::Columns, Some(Value::Names(columns))),
    ];
    if let Some(vt) = &table.virtual_table {
        fields.push((Field::VirtualTable, Some(Value::VirtualTable(vt.clone()))));
    }
    fields.push((Field::Unparsed, optional_text(&table.unparsed)));
    let constraints = constraints
        .get(&fold(&table.name))
        .filter(|list| !list.is_empty())
        .map(|list| Value::ConstraintIndexes(list.clone()));
    fields.push((Field::ConstraintIndexes, constraints));
    fields
}

/// The table itself: name case, virtual table, unparsed text, constraint
/// index details, and the order of the columns both have. Added and
/// removed columns are changes of their own, so the column list shows only
/// when that order differs.
fn diff_table_itself(
    (old, new): (&ConstraintMap, &ConstraintMap),
    a: &Table,
    b: &Table,
    changes: &mut Vec<Change>,
) {
    let moved = moved_columns(a, b);
    let mut fields = field_changes(Some(table_fields(old, a)), Some(table_fields(new, b)));
    fields.retain(|f| f.field != Field::Columns || !moved.is_empty());
    if fields.is_empty() {
        return;
    }
    let meaning = if fields.iter().all(|f| f.field == Field::Columns) {
        Meaning::Order
    } else {
        Meaning::Definition
    };
    changes.push(Change {
        op: Op::Changed,
        kind: ChangeKind::Table,
        meaning,
        moved,
        table: None,
        name: b.name.clone(),
        fields,
    });
}

/// The columns of a table both sides have, in `a`'s order then `b`'s new
/// ones.
fn diff_columns(table: &Option<String>, a: &Table, b: &Table, changes: &mut Vec<Change>) {
    let mut names: Vec<String> = a.columns.iter().map(|c| fold(&c.name)).collect();
    for column in &b.columns {
        if !names.contains(&fold(&column.name)) {
            names.push(fold(&column.name));
        }
    }
    for name in names {
        let (x, y) = (a.column(&name), b.column(&name));
        push_object(
            changes,
            ChangeKind::Column,
            x,
            y,
            |c| c.name.clone(),
            |_| table.clone(),
            column_fields,
        );
    }
}

/// WITHOUT ROWID, STRICT and AUTOINCREMENT, each a change of its own.
fn diff_table_options(table: &Option<String>, a: &Table, b: &Table, changes: &mut Vec<Change>) {
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
                meaning: Meaning::Definition,
                moved: Vec::new(),
                table: table.clone(),
                name: name.to_owned(),
                fields: vec![FieldChange {
                    field: Field::Value,
                    before: Some(Value::Flag(x)),
                    after: Some(Value::Flag(y)),
                }],
            });
        }
    }
}

fn primary_key_fields(pk: &super::model::PrimaryKey) -> Fields {
    vec![
        (Field::Name, optional_text(&pk.name)),
        (Field::Columns, names(&pk.columns)),
        (Field::OnConflict, pk.on_conflict.map(Value::Conflict)),
    ]
}

/// The primary key, the same when its fields are and its columns name the
/// same columns.
fn diff_primary_key(table: &Option<String>, a: &Table, b: &Table, changes: &mut Vec<Change>) {
    let (x, y) = (a.primary_key.as_ref(), b.primary_key.as_ref());
    let same = match (x, y) {
        (Some(x), Some(y)) => {
            primary_key_fields(x) == primary_key_fields(y) && names_eq(&x.columns, &y.columns)
        }
        (None, None) => true,
        _ => false,
    };
    if same {
        return;
    }
    let name = y
        .or(x)
        .map(|pk| pk.name.clone().unwrap_or_else(|| list(&pk.columns)))
        .unwrap_or_default();
    push_object(
        changes,
        ChangeKind::PrimaryKey,
        x,
        y,
        |_| name.clone(),
        |_| table.clone(),
        primary_key_fields,
    );
}

/// A table's UNIQUE constraints as (match name, fields).
fn uniques(t: &Table) -> Vec<(String, Fields)> {
    t.uniques
        .iter()
        .map(|u| {
            (
                u.name.clone().unwrap_or_else(|| list(&u.columns)),
                vec![
                    (Field::Name, optional_text(&u.name)),
                    (Field::Columns, names(&u.columns)),
                    (Field::OnConflict, u.on_conflict.map(Value::Conflict)),
                ],
            )
        })
        .collect()
}

/// A table's CHECK constraints as (match name, fields).
fn checks(t: &Table) -> Vec<(String, Fields)> {
    t.checks
        .iter()
        .map(|c| {
            (
                c.name.clone().unwrap_or_else(|| c.expression.clone()),
                vec![
                    (Field::Name, optional_text(&c.name)),
                    (Field::Expression, text(&c.expression)),
                ],
            )
        })
        .collect()
}

/// A table's foreign keys as (match name, fields).
fn foreign_keys(t: &Table) -> Vec<(String, Fields)> {
    t.foreign_keys
        .iter()
        .map(|fk| {
            let target = Value::References(References {
                table: fk.target_table.clone(),
                columns: fk.target_columns.clone(),
            });
            (
                fk.name
                    .clone()
                    .unwrap_or_else(|| format!("({}) -> {target}", list(&fk.columns))),
                vec![
                    (Field::Name, optional_text(&fk.name)),
                    (Field::Columns, names(&fk.columns)),
                    (Field::References, Some(target)),
                    (Field::OnDelete, Some(Value::Action(fk.on_delete))),
                    (Field::OnUpdate, Some(Value::Action(fk.on_update))),
                    (Field::Deferrable, flag(fk.deferrable)),
                    (Field::InitiallyDeferred, flag(fk.initially_deferred)),
                ],
            )
        })
        .collect()
}

fn names_eq(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_name(x, y))
}

/// Constraints matched whole, then by everything but their name (a change
/// of name only), then by name when named (a named one that changed is
/// `Changed`); anything else unmatched is `Removed` or `Added`. The name is
/// the first field.
fn constraint_changes(
    kind: ChangeKind,
    table: &Option<String>,
    old: Vec<(String, Fields)>,
    new: Vec<(String, Fields)>,
    changes: &mut Vec<Change>,
) {
    let named = |fields: &Fields| fields[0].1.is_some();
    let mut unmatched_new: Vec<bool> = vec![true; new.len()];
    let mut unmatched_old: Vec<bool> = vec![true; old.len()];
    let find = |unmatched_new: &mut Vec<bool>, pred: &dyn Fn(&String, &Fields) -> bool| {
        let i = new
            .iter()
            .enumerate()
            .position(|(i, (n, f))| unmatched_new[i] && pred(n, f))?;
        unmatched_new[i] = false;
        Some(i)
    };
    let mut matched: Vec<Option<usize>> = vec![None; old.len()];
    // Whole matches first, so a rename never takes another's exact partner.
    for (o, (_, fields)) in old.iter().enumerate() {
        if find(&mut unmatched_new, &|_, f| f == fields).is_some() {
            unmatched_old[o] = false;
        }
    }
    for (o, (_, fields)) in old.iter().enumerate() {
        if unmatched_old[o] {
            matched[o] = find(&mut unmatched_new, &|_, f| f[1..] == fields[1..]);
        }
    }
    for (o, (name, fields)) in old.iter().enumerate() {
        if unmatched_old[o] && matched[o].is_none() && named(fields) {
            matched[o] = find(&mut unmatched_new, &|n, f| named(f) && same_name(n, name));
        }
    }
    for (o, (name, fields)) in old.iter().enumerate() {
        if !unmatched_old[o] {
            continue;
        }
        let change = match matched[o] {
            Some(i) => {
                let fields = field_changes(Some(fields.clone()), Some(new[i].1.clone()));
                Change {
                    op: Op::Changed,
                    kind,
                    meaning: meaning_of(Op::Changed, kind, &fields),
                    moved: Vec::new(),
                    table: table.clone(),
                    name: new[i].0.clone(),
                    fields,
                }
            }
            None => Change {
                op: Op::Removed,
                kind,
                meaning: Meaning::Definition,
                moved: Vec::new(),
                table: table.clone(),
                name: name.clone(),
                fields: field_changes(Some(fields.clone()), None),
            },
        };
        changes.push(change);
    }
    for (i, (name, fields)) in new.into_iter().enumerate() {
        if unmatched_new[i] {
            changes.push(Change {
                op: Op::Added,
                kind,
                meaning: Meaning::Definition,
                moved: Vec::new(),
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

    fn shown(value: &Option<Value>) -> String {
        value.as_ref().map_or("-".into(), ToString::to_string)
    }

    fn summary(d: &SchemaDiff) -> Vec<String> {
        d.changes
            .iter()
            .map(|c| {
                let fields: Vec<String> = c
                    .fields
                    .iter()
                    .map(|f| format!("{}:{}->{}", f.field, shown(&f.before), shown(&f.after)))
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
                "Changed column t.a [not_null:-->true]",
                "Removed column t.b [name:b->- declared_type:TEXT->-]",
                "Changed column t.c [default:1->2 collation:-->NOCASE]",
                "Added column t.d [name:-->d declared_type:-->BLOB]",
            ]
        );
    }

    #[test]
    fn column_order_alone_is_one_change_of_order_naming_the_moved_columns() {
        let reference =
            schema("CREATE TABLE user(id TEXT, name TEXT, scim JSON, email TEXT, role TEXT)");
        let hand_fixed =
            schema("CREATE TABLE user(id TEXT, name TEXT, email TEXT, role TEXT, scim JSON)");
        let d = diff(&reference, &hand_fixed);
        assert_eq!(
            summary(&d),
            [
                "Changed table user [columns:id, name, scim, email, role->id, name, email, role, scim]"
            ]
        );
        assert_eq!(d.changes[0].meaning, Meaning::Order);
        assert_eq!(d.changes[0].moved, ["scim"]);
        assert!(d.is_form_only());
        assert_eq!(
            d.tally(),
            Tally {
                reordered: 1,
                ..Tally::default()
            }
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["changes"][0]["meaning"], "order");
        assert_eq!(json["changes"][0]["moved"][0], "scim");
    }

    #[test]
    fn a_missing_column_is_one_difference() {
        let reference = schema("CREATE TABLE t(a INTEGER, b TEXT, c REAL)");
        let live = schema("CREATE TABLE t(a INTEGER, c REAL)");
        let d = diff(&reference, &live);
        assert_eq!(
            summary(&d),
            ["Removed column t.b [name:b->- declared_type:TEXT->-]"]
        );
        assert_eq!(
            d.tally(),
            Tally {
                removed: 1,
                ..Tally::default()
            }
        );
        // Moved and missing at once: the order is its own change of form.
        let moved = diff(&reference, &schema("CREATE TABLE t(c REAL, a INTEGER, x)"));
        let t = moved.tally();
        assert_eq!(
            (t.removed, t.added, t.reordered, t.definition()),
            (1, 1, 1, 2)
        );
        assert!(!moved.is_form_only());
    }

    #[test]
    fn constraint_and_index_names_alone_are_changes_of_name() {
        let reference = schema(
            "CREATE TABLE p(id INTEGER, CONSTRAINT pk_p PRIMARY KEY (id));
             CREATE TABLE t(a INTEGER, b INTEGER,
                CONSTRAINT fk_t_b_p FOREIGN KEY (b) REFERENCES p(id),
                CONSTRAINT uq_t_a UNIQUE (a), CONSTRAINT ck_t_a CHECK (a > 0));
             CREATE INDEX ix_t_b ON t(b);",
        );
        let live = schema(
            "CREATE TABLE p(id INTEGER, PRIMARY KEY (id));
             CREATE TABLE t(a INTEGER, b INTEGER, FOREIGN KEY (b) REFERENCES p(id),
                CONSTRAINT t_a_key UNIQUE (a), CHECK (a > 0));
             CREATE INDEX t_b_idx ON t(b);",
        );
        let d = diff(&reference, &live);
        assert!(d.is_form_only(), "{:#?}", summary(&d));
        assert_eq!(
            d.tally(),
            Tally {
                renamed: 5,
                ..Tally::default()
            }
        );
        assert!(
            summary(&d).contains(&"Changed index t.t_b_idx [name:ix_t_b->t_b_idx]".to_owned()),
            "{:#?}",
            summary(&d)
        );
        // The SQL plan still drops the old index and makes the new one.
        let script = crate::schema::plan::plan(&reference, &live).to_script();
        assert!(script.contains("DROP INDEX \"ix_t_b\""), "{script}");
        assert!(script.contains("CREATE INDEX \"t_b_idx\""), "{script}");
        // A renamed constraint that also changed is a difference of definition.
        let other = schema(
            "CREATE TABLE p(id INTEGER, CONSTRAINT pk_p PRIMARY KEY (id));
             CREATE TABLE t(a INTEGER, b INTEGER,
                CONSTRAINT fk_t_b_p FOREIGN KEY (b) REFERENCES p(id),
                CONSTRAINT uq_t_a UNIQUE (a), CONSTRAINT ck_t_a CHECK (a > 1));
             CREATE INDEX ix_t_b ON t(b);",
        );
        assert_eq!(diff(&reference, &other).tally().definition(), 1);
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
    fn a_column_named_with_a_comma_is_one_column() {
        // Rendered, both keys read `a, b`; as column lists they differ.
        let one = schema("CREATE TABLE t(\"a, b\", a, b, UNIQUE(\"a, b\"))");
        let two = schema("CREATE TABLE t(\"a, b\", a, b, UNIQUE(a, b))");
        let d = diff(&one, &two);
        assert_eq!(
            summary(&d),
            [
                "Changed table t [constraint_indexes:unique uniqueconstraint (a, b)->unique uniqueconstraint (a, b)]",
                "Removed unique t.a, b [columns:a, b->-]",
                "Added unique t.a, b [columns:-->a, b]",
            ]
        );
        let columns = |c: &Change| c.fields[0].before.clone().or(c.fields[0].after.clone());
        assert_eq!(
            columns(&d.changes[1]),
            Some(Value::Names(vec!["a, b".into()]))
        );
        assert_eq!(
            columns(&d.changes[2]),
            Some(Value::Names(vec!["a".into(), "b".into()]))
        );
        // A table whose columns are "a, b", c against a, b, c: one column
        // removed, two added, none taken for another.
        let d = diff(
            &schema("CREATE TABLE t(\"a, b\", c)"),
            &schema("CREATE TABLE t(a, b, c)"),
        );
        assert_eq!(
            summary(&d),
            [
                "Removed column t.a, b [name:a, b->-]",
                "Added column t.a [name:-->a]",
                "Added column t.b [name:-->b]",
            ]
        );
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
            (
                "CREATE TABLE t(\"a, b\", a, b, UNIQUE(\"a, b\"))",
                "CREATE TABLE t(\"a, b\", a, b, UNIQUE(a, b))",
            ),
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
