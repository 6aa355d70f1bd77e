//! The dialect-neutral schema model: tables, indexes, views and triggers,
//! with everything that decides how a database behaves.
//!
//! Invariants:
//! - Objects are keyed by [`fold`]ed name (SQLite compares names ASCII
//!   case-insensitively), so maps iterate in one canonical order; each object
//!   keeps its name as written.
//! - Values are canonical for their dialect when captured (see
//!   [`canonicalise`](super::canonicalise)): types uppercase, expressions as
//!   normalised token text, collations uppercase, defaults spelled out only
//!   when they differ from the default behaviour. Two databases that behave
//!   alike therefore get equal models, apart from the exact `sql` texts.
//! - `sql` holds the exact `CREATE` text as the database stored it: the input
//!   of the exact-text hash and of `show`, never of the semantic hash.
//!
//! Nothing here is SQLite-only in shape: PostgreSQL maps onto the same types
//! (its options would join [`TableOptions`]).

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

/// Objects of one kind by folded name.
pub type NameMap<T> = BTreeMap<String, T>;

/// The key under which a name is stored and compared: ASCII lowercase, as
/// SQLite compares identifiers (`sqlite3StrICmp` folds ASCII only).
pub fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Whether two names denote the same object.
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Serialises a map as the list of its values, in key order: JSON readers
/// get objects with their names as written, not folded keys.
fn as_list<T: Serialize, S: Serializer>(map: &NameMap<T>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(map.values())
}

/// A database schema.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Schema {
    /// Tables by folded name.
    #[serde(serialize_with = "as_list")]
    pub tables: NameMap<Table>,
    /// Indexes by folded name, including those SQLite made for PRIMARY KEY
    /// and UNIQUE constraints.
    #[serde(serialize_with = "as_list")]
    pub indexes: NameMap<Index>,
    /// Views by folded name.
    #[serde(serialize_with = "as_list")]
    pub views: NameMap<View>,
    /// Triggers by folded name.
    #[serde(serialize_with = "as_list")]
    pub triggers: NameMap<Trigger>,
    /// Objects the database holds that are not schema (metadata tables such
    /// as `alembic_version`, SQLite's internal and shadow tables), kept with
    /// their exact text and ordered by kind and folded name. Never hashed.
    pub excluded: Vec<Excluded>,
}

/// A table.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct Table {
    /// Name as written.
    pub name: String,
    /// Columns in declaration order (the order `SELECT *` returns).
    pub columns: Vec<Column>,
    /// The primary key, if declared.
    pub primary_key: Option<PrimaryKey>,
    /// UNIQUE constraints, in canonical order.
    pub uniques: Vec<Unique>,
    /// CHECK constraints, in canonical order.
    pub checks: Vec<Check>,
    /// Foreign keys, in canonical order.
    pub foreign_keys: Vec<ForeignKey>,
    /// Storage options.
    pub options: TableOptions,
    /// Set for a virtual table (`CREATE VIRTUAL TABLE … USING module(…)`).
    pub virtual_table: Option<VirtualTable>,
    /// The normalised `CREATE` text when the parser could not read it: the
    /// facts only the parser supplies (constraint names, CHECKs, …) are then
    /// missing, and this text stands in for them in the semantic hash.
    pub unparsed: Option<String>,
    /// The exact `CREATE TABLE` text.
    pub sql: Option<String>,
}

/// Storage options of a table.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize,
)]
pub struct TableOptions {
    /// `WITHOUT ROWID`.
    pub without_rowid: bool,
    /// `STRICT` typing.
    pub strict: bool,
    /// `AUTOINCREMENT` on the integer primary key: rowids are never reused.
    pub autoincrement: bool,
}

/// A virtual table's module and arguments.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct VirtualTable {
    /// The module (`fts5`, `rtree`, …).
    pub module: String,
    /// The arguments, each as written: their syntax belongs to the module.
    pub arguments: Vec<String>,
}

/// A column.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct Column {
    /// Name as written.
    pub name: String,
    /// Declared type, normalised (`VARCHAR(32)`); empty when none.
    pub declared_type: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// What `NOT NULL` does on a violation, when not the default (ABORT).
    pub not_null_on_conflict: Option<Conflict>,
    /// Default value as normalised expression text.
    pub default: Option<String>,
    /// 1-based position in the primary key.
    pub primary_key: Option<u32>,
    /// Set for a generated column.
    pub generated: Option<Generated>,
    /// A hidden column of a virtual table.
    pub hidden: bool,
    /// Collation, uppercase; `None` for the default (BINARY).
    pub collation: Option<String>,
}

/// How a generated column is computed.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct Generated {
    /// The expression, normalised.
    pub expression: String,
    /// Computed on read or stored.
    pub storage: Storage,
}

/// Whether a generated column is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// Computed when read.
    Virtual,
    /// Computed when written and stored.
    Stored,
}

/// The conflict resolution of a constraint (`ON CONFLICT …`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, bincode::Encode, bincode::Decode, Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Conflict {
    /// `ROLLBACK`.
    Rollback,
    /// `ABORT` (the default; canonical models leave it out).
    Abort,
    /// `FAIL`.
    Fail,
    /// `IGNORE`.
    Ignore,
    /// `REPLACE`.
    Replace,
}

/// A primary key.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct PrimaryKey {
    /// `CONSTRAINT name`, if given.
    pub name: Option<String>,
    /// The key's columns, in key order.
    pub columns: Vec<String>,
    /// Conflict resolution, when not the default.
    pub on_conflict: Option<Conflict>,
}

/// A UNIQUE constraint.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct Unique {
    /// `CONSTRAINT name`, if given.
    pub name: Option<String>,
    /// The constrained columns, in order.
    pub columns: Vec<String>,
    /// Conflict resolution, when not the default.
    pub on_conflict: Option<Conflict>,
}

/// A CHECK constraint.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct Check {
    /// `CONSTRAINT name`, if given.
    pub name: Option<String>,
    /// The condition, normalised.
    pub expression: String,
}

/// A foreign key.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct ForeignKey {
    /// `CONSTRAINT name`, if given.
    pub name: Option<String>,
    /// The referencing columns of this table.
    pub columns: Vec<String>,
    /// The referenced table.
    pub target_table: String,
    /// The referenced columns; empty means the target's primary key.
    pub target_columns: Vec<String>,
    /// `ON DELETE`.
    pub on_delete: Action,
    /// `ON UPDATE`.
    pub on_update: Action,
    /// `DEFERRABLE`.
    pub deferrable: bool,
    /// `INITIALLY DEFERRED`: checked at commit rather than per statement.
    pub initially_deferred: bool,
}

/// A referential action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `NO ACTION` (the default).
    NoAction,
    /// `RESTRICT`.
    Restrict,
    /// `SET NULL`.
    SetNull,
    /// `SET DEFAULT`.
    SetDefault,
    /// `CASCADE`.
    Cascade,
}

impl Action {
    /// The SQL words.
    pub fn sql(self) -> &'static str {
        match self {
            Action::NoAction => "NO ACTION",
            Action::Restrict => "RESTRICT",
            Action::SetNull => "SET NULL",
            Action::SetDefault => "SET DEFAULT",
            Action::Cascade => "CASCADE",
        }
    }

    /// Reads the SQL words (any case, any spacing).
    pub fn from_sql(words: &str) -> Option<Action> {
        let words: Vec<String> = words
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect();
        Some(match words.join(" ").as_str() {
            "NO ACTION" => Action::NoAction,
            "RESTRICT" => Action::Restrict,
            "SET NULL" => Action::SetNull,
            "SET DEFAULT" => Action::SetDefault,
            "CASCADE" => Action::Cascade,
            _ => return None,
        })
    }
}

impl Conflict {
    /// The SQL word.
    pub fn sql(self) -> &'static str {
        match self {
            Conflict::Rollback => "ROLLBACK",
            Conflict::Abort => "ABORT",
            Conflict::Fail => "FAIL",
            Conflict::Ignore => "IGNORE",
            Conflict::Replace => "REPLACE",
        }
    }
}

/// An index.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct Index {
    /// Name as written (SQLite names constraint indexes
    /// `sqlite_autoindex_<table>_<n>`).
    pub name: String,
    /// The indexed table.
    pub table: String,
    /// Whether entries must be unique.
    pub unique: bool,
    /// The key, in order.
    pub parts: Vec<IndexPart>,
    /// The `WHERE` of a partial index, normalised.
    pub predicate: Option<String>,
    /// Who made it.
    pub origin: IndexOrigin,
    /// See [`Table::unparsed`].
    pub unparsed: Option<String>,
    /// The exact `CREATE INDEX` text; `None` for constraint indexes.
    pub sql: Option<String>,
}

/// One term of an index key.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, bincode::Encode, bincode::Decode, Serialize,
)]
pub struct IndexPart {
    /// A column or an expression.
    pub target: IndexTarget,
    /// The collation the index sorts by, uppercase.
    pub collation: Option<String>,
    /// `DESC`.
    pub descending: bool,
}

/// What an index term indexes.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, bincode::Encode, bincode::Decode, Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum IndexTarget {
    /// A column, by name.
    Column(String),
    /// An expression, normalised; for SQLite it includes any `COLLATE` of its
    /// own (`lower(a) COLLATE NOCASE`).
    Expression(String),
}

/// Who made an index.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, bincode::Encode, bincode::Decode, Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum IndexOrigin {
    /// `CREATE INDEX`.
    Created,
    /// A UNIQUE constraint.
    UniqueConstraint,
    /// A PRIMARY KEY constraint.
    PrimaryKey,
}

/// A view.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct View {
    /// Name as written.
    pub name: String,
    /// Column names given in `CREATE VIEW v(a, b)`; empty when none.
    pub columns: Vec<String>,
    /// The `SELECT`, normalised.
    pub select: String,
    /// See [`Table::unparsed`].
    pub unparsed: Option<String>,
    /// The exact `CREATE VIEW` text.
    pub sql: String,
}

/// A trigger.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct Trigger {
    /// Name as written.
    pub name: String,
    /// The table (or view) it fires on.
    pub table: String,
    /// When it fires.
    pub timing: Timing,
    /// What it fires on.
    pub event: Event,
    /// The `WHEN` condition, normalised.
    pub when: Option<String>,
    /// The statements between `BEGIN` and `END`, normalised.
    pub body: String,
    /// See [`Table::unparsed`].
    pub unparsed: Option<String>,
    /// The exact `CREATE TRIGGER` text.
    pub sql: String,
}

/// When a trigger fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// `BEFORE` (SQLite's default).
    Before,
    /// `AFTER`.
    After,
    /// `INSTEAD OF` (views).
    InsteadOf,
}

/// What a trigger fires on.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// `INSERT`.
    Insert,
    /// `DELETE`.
    Delete,
    /// `UPDATE`, or `UPDATE OF columns` when `columns` is not empty.
    Update {
        /// The columns whose update fires it.
        columns: Vec<String>,
    },
}

/// An object kept out of the schema.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
pub struct Excluded {
    /// What it is.
    pub kind: ObjectKind,
    /// Its name.
    pub name: String,
    /// The table it belongs to (itself for a table).
    pub table: String,
    /// The exact `CREATE` text, if any.
    pub sql: Option<String>,
    /// Why it is not schema.
    pub reason: ExclusionReason,
}

/// The kinds of schema object.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, bincode::Encode, bincode::Decode, Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A table.
    Table,
    /// An index.
    Index,
    /// A view.
    View,
    /// A trigger.
    Trigger,
}

impl ObjectKind {
    /// The lowercase word (`sqlite_schema.type`).
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::Index => "index",
            ObjectKind::View => "view",
            ObjectKind::Trigger => "trigger",
        }
    }
}

/// Why an object is not part of the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionReason {
    /// A migration tool's bookkeeping (`alembic_version`, `migratehistory`):
    /// its rows are metadata, recorded beside the schema.
    Metadata,
    /// SQLite's own (`sqlite_sequence`, `sqlite_stat1`…).
    Internal,
    /// A virtual table's storage, made and owned by its module.
    Shadow,
}

impl Schema {
    /// The table called `name` (any case).
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(&fold(name))
    }

    /// Whether the database has a table called `name` (any case), counting
    /// tables kept out of the schema such as `alembic_version`.
    pub fn has_table(&self, name: &str) -> bool {
        self.table(name).is_some()
            || self
                .excluded
                .iter()
                .any(|e| e.kind == ObjectKind::Table && same_name(&e.name, name))
    }

    /// Adds or replaces a table under its folded name.
    pub fn insert_table(&mut self, table: Table) {
        self.tables.insert(fold(&table.name), table);
    }

    /// Adds or replaces an index under its folded name.
    pub fn insert_index(&mut self, index: Index) {
        self.indexes.insert(fold(&index.name), index);
    }

    /// Adds or replaces a view under its folded name.
    pub fn insert_view(&mut self, view: View) {
        self.views.insert(fold(&view.name), view);
    }

    /// Adds or replaces a trigger under its folded name.
    pub fn insert_trigger(&mut self, trigger: Trigger) {
        self.triggers.insert(fold(&trigger.name), trigger);
    }

    /// The indexes on `table` (any case), in name order.
    pub fn indexes_on<'s>(&'s self, table: &'s str) -> impl Iterator<Item = &'s Index> + 's {
        self.indexes
            .values()
            .filter(move |index| same_name(&index.table, table))
    }
}

impl Table {
    /// A plain table with these columns and nothing else.
    pub fn new(name: impl Into<String>, columns: Vec<Column>) -> Table {
        Table {
            name: name.into(),
            columns,
            primary_key: None,
            uniques: Vec::new(),
            checks: Vec::new(),
            foreign_keys: Vec::new(),
            options: TableOptions::default(),
            virtual_table: None,
            unparsed: None,
            sql: None,
        }
    }

    /// The column called `name` (any case).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| same_name(&c.name, name))
    }

    /// This table's columns that `other` has too (by name, any case), in
    /// this table's order.
    pub fn columns_shared_with(&self, other: &Table) -> Vec<&Column> {
        self.columns
            .iter()
            .filter(|c| other.column(&c.name).is_some())
            .collect()
    }

    /// This table's columns that `other` lacks, in this table's order.
    pub fn columns_not_in(&self, other: &Table) -> Vec<&Column> {
        self.columns
            .iter()
            .filter(|c| other.column(&c.name).is_none())
            .collect()
    }
}

impl Column {
    /// A nullable column of `declared_type` with no constraints.
    pub fn new(name: impl Into<String>, declared_type: impl Into<String>) -> Column {
        Column {
            name: name.into(),
            declared_type: declared_type.into(),
            not_null: false,
            not_null_on_conflict: None,
            default: None,
            primary_key: None,
            generated: None,
            hidden: false,
            collation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_keyed_case_insensitively_and_kept_as_written() {
        let mut schema = Schema::default();
        schema.insert_table(Table::new("Users", vec![Column::new("Id", "INTEGER")]));
        assert!(schema.table("USERS").is_some());
        assert_eq!(schema.tables.keys().collect::<Vec<_>>(), ["users"]);
        let users = schema.table("users").unwrap();
        assert_eq!(users.name, "Users");
        assert_eq!(users.column("id").unwrap().name, "Id");
        assert!(schema.has_table("users") && !schema.has_table("alembic_version"));
        schema.excluded.push(Excluded {
            kind: ObjectKind::Table,
            name: "alembic_version".into(),
            table: "alembic_version".into(),
            sql: None,
            reason: ExclusionReason::Metadata,
        });
        assert!(schema.has_table("Alembic_Version"));
        // Only ASCII folds, like SQLite.
        assert_ne!(fold("É"), fold("é"));
    }

    #[test]
    fn json_lists_objects_with_stable_field_names() {
        let mut schema = Schema::default();
        let mut table = Table::new("t", vec![Column::new("a", "TEXT")]);
        table.foreign_keys.push(ForeignKey {
            name: None,
            columns: vec!["a".into()],
            target_table: "u".into(),
            target_columns: vec![],
            on_delete: Action::SetNull,
            on_update: Action::NoAction,
            deferrable: false,
            initially_deferred: false,
        });
        schema.insert_table(table);
        let json = serde_json::to_value(&schema).unwrap();
        assert_eq!(json["tables"][0]["name"], "t");
        assert_eq!(json["tables"][0]["columns"][0]["declared_type"], "TEXT");
        assert_eq!(
            json["tables"][0]["foreign_keys"][0]["on_delete"],
            "set_null"
        );
        assert_eq!(json["indexes"], serde_json::json!([]));
    }

    #[test]
    fn actions_read_their_sql_words() {
        for action in [
            Action::NoAction,
            Action::Restrict,
            Action::SetNull,
            Action::SetDefault,
            Action::Cascade,
        ] {
            assert_eq!(Action::from_sql(action.sql()), Some(action));
        }
        assert_eq!(Action::from_sql("set  null"), Some(Action::SetNull));
        assert_eq!(Action::from_sql("explode"), None);
    }
}
