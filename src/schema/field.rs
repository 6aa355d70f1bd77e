//! The fields a schema diff compares, and their values.
//!
//! A [`Field`] names one field of the model (a column's `declared_type`, a
//! table's `columns`); a [`Value`] is what the field holds, kept as the
//! model's values: a column list is a list of names, an index key a list of
//! [`IndexPart`]s. Readers of a diff compare and take apart these values;
//! they never parse text back.
//!
//! Invariants:
//! - Text is made only at the edge: [`Value`]'s `Display` and its
//!   `Serialize` (which writes the same string) are the one rendering, the
//!   one the JSON output and the text report show.
//! - Two values are equal exactly when the model's fields they come from
//!   mean the same for the diff: index parts hold no collation when it is
//!   the default (`BINARY`), which the rendering leaves out too.

use std::fmt;

use serde::{Serialize, Serializer};

use super::model::{
    Action, Conflict, Event, Generated, IndexOrigin, IndexPart, IndexTarget, Storage, Timing,
    VirtualTable,
};

/// A field of the model, as the diff names it (the JSON `field`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// The object's name.
    Name,
    /// A column's declared type.
    DeclaredType,
    /// A column's `NOT NULL`.
    NotNull,
    /// What a column's `NOT NULL` does on a violation.
    NotNullOnConflict,
    /// A column's default.
    Default,
    /// A column's position in the primary key.
    PrimaryKey,
    /// A generated column's expression and storage.
    Generated,
    /// A hidden column of a virtual table.
    Hidden,
    /// A column's collation.
    Collation,
    /// The table an index or trigger belongs to.
    Table,
    /// An index's uniqueness.
    Unique,
    /// An index's key.
    Parts,
    /// A partial index's `WHERE`.
    Predicate,
    /// Who made an index.
    Origin,
    /// Text the parser could not read.
    Unparsed,
    /// The columns of a table, view or constraint, in order.
    Columns,
    /// A view's `SELECT`.
    Select,
    /// When a trigger fires.
    Timing,
    /// What a trigger fires on.
    Event,
    /// A trigger's `WHEN`.
    When,
    /// A trigger's statements.
    Body,
    /// A virtual table's module and arguments.
    VirtualTable,
    /// A table's constraint indexes, without their names.
    ConstraintIndexes,
    /// A table option's setting.
    Value,
    /// A constraint's conflict resolution.
    OnConflict,
    /// A CHECK constraint's condition.
    Expression,
    /// What a foreign key references.
    References,
    /// A foreign key's `ON DELETE`.
    OnDelete,
    /// A foreign key's `ON UPDATE`.
    OnUpdate,
    /// A foreign key's `DEFERRABLE`.
    Deferrable,
    /// A foreign key's `INITIALLY DEFERRED`.
    InitiallyDeferred,
}

impl Field {
    /// The snake_case word, as in JSON and the text report.
    pub fn name(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::DeclaredType => "declared_type",
            Field::NotNull => "not_null",
            Field::NotNullOnConflict => "not_null_on_conflict",
            Field::Default => "default",
            Field::PrimaryKey => "primary_key",
            Field::Generated => "generated",
            Field::Hidden => "hidden",
            Field::Collation => "collation",
            Field::Table => "table",
            Field::Unique => "unique",
            Field::Parts => "parts",
            Field::Predicate => "predicate",
            Field::Origin => "origin",
            Field::Unparsed => "unparsed",
            Field::Columns => "columns",
            Field::Select => "select",
            Field::Timing => "timing",
            Field::Event => "event",
            Field::When => "when",
            Field::Body => "body",
            Field::VirtualTable => "virtual_table",
            Field::ConstraintIndexes => "constraint_indexes",
            Field::Value => "value",
            Field::OnConflict => "on_conflict",
            Field::Expression => "expression",
            Field::References => "references",
            Field::OnDelete => "on_delete",
            Field::OnUpdate => "on_update",
            Field::Deferrable => "deferrable",
            Field::InitiallyDeferred => "initially_deferred",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The value of a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A name, a type, an expression or SQL text, as the model holds it.
    Text(String),
    /// A yes/no setting.
    Flag(bool),
    /// A number (a column's 1-based position in the primary key).
    Integer(u32),
    /// Column names, in order; each item is one name, whatever it contains.
    Names(Vec<String>),
    /// A conflict resolution.
    Conflict(Conflict),
    /// A referential action.
    Action(Action),
    /// How a generated column is computed.
    Generated(Generated),
    /// An index key; collations hold no default `BINARY`.
    Parts(Vec<IndexPart>),
    /// Who made an index.
    Origin(IndexOrigin),
    /// When a trigger fires.
    Timing(Timing),
    /// What a trigger fires on.
    Event(Event),
    /// What a foreign key references.
    References(References),
    /// A virtual table's module and arguments.
    VirtualTable(VirtualTable),
    /// A table's constraint indexes, in the order they are shown.
    ConstraintIndexes(Vec<ConstraintIndex>),
}

/// The target of a foreign key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct References {
    /// The referenced table.
    pub table: String,
    /// The referenced columns; empty means the target's primary key.
    pub columns: Vec<String>,
}

/// An index SQLite made for a PRIMARY KEY or UNIQUE constraint, without
/// its name (SQLite derives that from constraint order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConstraintIndex {
    /// Whether entries must be unique.
    pub unique: bool,
    /// The constraint that made it.
    pub origin: IndexOrigin,
    /// The key; collations hold no default `BINARY`.
    pub parts: Vec<IndexPart>,
}

impl Value {
    /// The text of a [`Value::Text`]; `None` for any other value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The names of a [`Value::Names`]; `None` for any other value.
    pub fn as_names(&self) -> Option<&[String]> {
        match self {
            Value::Names(names) => Some(names),
            _ => None,
        }
    }
}

/// The names of a column-list field's value; none when it is not set.
pub fn names_of(value: &Option<Value>) -> &[String] {
    value.as_ref().and_then(Value::as_names).unwrap_or_default()
}

/// The text of a text field's value; empty when it is not set.
pub fn text_of(value: &Option<Value>) -> &str {
    value.as_ref().and_then(Value::as_text).unwrap_or_default()
}

/// An index key as a value: the default collation is left out, so keys that
/// differ only in spelling it out are equal, as their rendering is.
pub fn index_key(parts: &[IndexPart]) -> Vec<IndexPart> {
    parts
        .iter()
        .map(|part| IndexPart {
            collation: part.collation.clone().filter(|c| c != "BINARY"),
            ..part.clone()
        })
        .collect()
}

/// Writes `items` with `separator` between them.
fn join<T>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    separator: &str,
    each: impl Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        each(f, item)?;
    }
    Ok(())
}

fn names(f: &mut fmt::Formatter<'_>, names: &[String]) -> fmt::Result {
    join(f, names, ", ", |f, name| f.write_str(name))
}

fn parts(f: &mut fmt::Formatter<'_>, parts: &[IndexPart]) -> fmt::Result {
    join(f, parts, ", ", |f, part| {
        match &part.target {
            IndexTarget::Column(text) | IndexTarget::Expression(text) => f.write_str(text)?,
        }
        if let Some(collation) = &part.collation {
            write!(f, " COLLATE {collation}")?;
        }
        if part.descending {
            f.write_str(" DESC")?;
        }
        Ok(())
    })
}

/// The word the diff has always shown for an index's origin.
fn origin(origin: IndexOrigin) -> &'static str {
    match origin {
        IndexOrigin::Created => "created",
        IndexOrigin::UniqueConstraint => "uniqueconstraint",
        IndexOrigin::PrimaryKey => "primarykey",
    }
}

impl fmt::Display for ConstraintIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unique {
            f.write_str("unique ")?;
        }
        write!(f, "{} (", origin(self.origin))?;
        parts(f, &self.parts)?;
        f.write_str(")")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(text) => f.write_str(text),
            Value::Flag(flag) => write!(f, "{flag}"),
            Value::Integer(n) => write!(f, "{n}"),
            Value::Names(list) => names(f, list),
            Value::Conflict(conflict) => f.write_str(conflict.sql()),
            Value::Action(action) => f.write_str(action.sql()),
            Value::Generated(g) => {
                let storage = match g.storage {
                    Storage::Virtual => "VIRTUAL",
                    Storage::Stored => "STORED",
                };
                write!(f, "({}) {storage}", g.expression)
            }
            Value::Parts(list) => parts(f, list),
            Value::Origin(o) => f.write_str(origin(*o)),
            Value::Timing(timing) => f.write_str(match timing {
                Timing::Before => "BEFORE",
                Timing::After => "AFTER",
                Timing::InsteadOf => "INSTEAD OF",
            }),
            Value::Event(Event::Insert) => f.write_str("INSERT"),
            Value::Event(Event::Delete) => f.write_str("DELETE"),
            Value::Event(Event::Update { columns }) if columns.is_empty() => f.write_str("UPDATE"),
            Value::Event(Event::Update { columns }) => {
                f.write_str("UPDATE OF ")?;
                names(f, columns)
            }
            Value::References(References { table, columns }) if columns.is_empty() => {
                f.write_str(table)
            }
            Value::References(References { table, columns }) => {
                write!(f, "{table}(")?;
                names(f, columns)?;
                f.write_str(")")
            }
            Value::VirtualTable(vt) => {
                write!(f, "{}(", vt.module)?;
                names(f, &vt.arguments)?;
                f.write_str(")")
            }
            Value::ConstraintIndexes(list) => join(f, list, "; ", |f, c| write!(f, "{c}")),
        }
    }
}

/// Written as its text: the JSON output shows the same string as the text
/// report.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(column: &str, collation: Option<&str>, descending: bool) -> IndexPart {
        IndexPart {
            target: IndexTarget::Column(column.into()),
            collation: collation.map(Into::into),
            descending,
        }
    }

    #[test]
    fn values_render_as_the_diff_always_showed_them() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            (Value::Names(names(&["a, b", "c"])), "a, b, c"),
            (Value::Flag(true), "true"),
            (
                Value::Parts(index_key(&[
                    part("a", Some("BINARY"), false),
                    part("b", Some("NOCASE"), true),
                ])),
                "a, b COLLATE NOCASE DESC",
            ),
            (
                Value::ConstraintIndexes(vec![
                    ConstraintIndex {
                        unique: true,
                        origin: IndexOrigin::PrimaryKey,
                        parts: vec![part("a", None, false)],
                    },
                    ConstraintIndex {
                        unique: false,
                        origin: IndexOrigin::UniqueConstraint,
                        parts: vec![part("b", None, false), part("c", None, false)],
                    },
                ]),
                "unique primarykey (a); uniqueconstraint (b, c)",
            ),
            (
                Value::Event(Event::Update {
                    columns: names(&["x", "y"]),
                }),
                "UPDATE OF x, y",
            ),
            (
                Value::References(References {
                    table: "p".into(),
                    columns: names(&["id"]),
                }),
                "p(id)",
            ),
        ];
        for (value, text) in cases {
            assert_eq!(value.to_string(), text);
            assert_eq!(serde_json::to_value(&value).unwrap(), text);
        }
        assert_eq!(
            serde_json::to_value(Field::ConstraintIndexes).unwrap(),
            "constraint_indexes"
        );
    }

    #[test]
    fn a_name_holding_a_comma_is_one_item() {
        // Rendered alike, yet different lists: the diff compares items.
        let one = Value::Names(vec!["a, b".into(), "c".into()]);
        let two = Value::Names(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(one.to_string(), two.to_string());
        assert_ne!(one, two);
        assert_eq!(one.as_names().map(<[String]>::len), Some(2));
    }
}
