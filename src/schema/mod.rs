//! The schema of a database: a dialect-neutral model, captured from SQLite,
//! with a canonical form, two hashes, rendering, and its blob format.
//!
//! - [`model`]: the types (tables, columns, indexes, views, triggers, and
//!   what is kept out of the schema);
//! - [`lex`] and [`parse`]: the SQLite tokenizer and `CREATE` parser;
//! - [`capture()`]: the model from a connection, inside the caller's read
//!   transaction;
//! - [`canon`]: canonical order, [`Schema::semantic_hash`] and
//!   [`Schema::exact_hash`];
//! - [`sql`]: [`Schema::to_sql`], [`Schema::exact_sql`] and [`quote_ident`];
//! - [`diff`]: what differs between two schemas, each field's old and new
//!   value as a [`field::Value`] (rendered only at the edge), and
//!   [`plan`], the SQL that turns one into the other, and [`alembic`], the
//!   same as the operations of an Alembic revision;
//! - [`finding`]: migration artefacts and partial captures, as findings.
//!
//! The schema travels as a blob in the store: one format byte, then the
//! bincode encoding (through the store's codec, the one place that defines
//! our bytes). Format 2 holds the model; format 1, the raw `sqlite_schema`
//! rows of earlier versions, is still read, by replaying its SQL into an
//! in-memory database and capturing that (see `docs/format.md`).

pub mod alembic;
pub mod canon;
pub mod capture;
pub mod diff;
pub mod field;
pub mod finding;
pub mod lex;
pub mod model;
pub mod parse;
pub mod plan;
pub mod sql;

use migsnap_store::codec::{self, DecodeError};

pub use canon::{ParseSchemaHashError, SchemaHash, canonicalise};
pub use capture::{Captured, capture};
pub use finding::{Finding, Severity};
pub use lex::quote_ident;
pub use model::*;
pub use parse::ParseError;

/// Format byte that opens the schema blobs this version writes.
pub const SCHEMA_FORMAT: u8 = 2;

/// The format of the first release: `sqlite_schema` rows as they were.
const SCHEMA_FORMAT_ROWS: u8 = 1;

/// Why a blob is not a schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The blob is empty or has an unknown format byte.
    #[error("schema blob has unsupported format {0:?}")]
    Format(Option<u8>),
    /// The body does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Two objects of one kind share a name.
    #[error("schema blob names {kind} '{name}' twice")]
    Duplicate {
        /// The kind of object.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A format-1 schema could not be rebuilt to read it.
    #[error("cannot upgrade format-1 schema: {object} does not replay")]
    Upgrade {
        /// The object whose SQL failed.
        object: String,
        /// SQLite's error (boxed: it is rare, and large beside the others).
        #[source]
        source: Box<rusqlite::Error>,
    },
}

/// The body of a format-2 blob: the model's maps as lists in key order.
#[derive(bincode::Encode, bincode::Decode)]
struct Body {
    tables: Vec<Table>,
    indexes: Vec<Index>,
    views: Vec<View>,
    triggers: Vec<Trigger>,
    excluded: Vec<Excluded>,
}

/// A format-1 body. (Encode only so that decoding can insist on the
/// canonical form, as for every object.)
#[derive(bincode::Encode, bincode::Decode)]
struct RowsBody {
    entries: Vec<Row>,
}

/// A format-1 entry: one row of `sqlite_schema`.
#[derive(bincode::Encode, bincode::Decode)]
struct Row {
    kind: String,
    name: String,
    #[allow(dead_code)] // part of the format; the replay takes it from the SQL
    table: String,
    sql: Option<String>,
}

fn keyed<T>(
    kind: &'static str,
    items: Vec<T>,
    name: impl Fn(&T) -> &str,
) -> Result<NameMap<T>, SchemaError> {
    let mut map = NameMap::new();
    for item in items {
        let key = fold(name(&item));
        if map.contains_key(&key) {
            return Err(SchemaError::Duplicate {
                kind,
                name: name(&item).to_owned(),
            });
        }
        map.insert(key, item);
    }
    Ok(map)
}

impl Schema {
    /// The bytes of the schema blob.
    pub fn to_blob(&self) -> Vec<u8> {
        let body = Body {
            tables: self.tables.values().cloned().collect(),
            indexes: self.indexes.values().cloned().collect(),
            views: self.views.values().cloned().collect(),
            triggers: self.triggers.values().cloned().collect(),
            excluded: self.excluded.clone(),
        };
        let mut out = vec![SCHEMA_FORMAT];
        out.extend(codec::encode(&body));
        out
    }

    /// Reads a schema blob, of this format or the first one.
    pub fn from_blob(bytes: &[u8]) -> Result<Schema, SchemaError> {
        match bytes.split_first() {
            Some((&SCHEMA_FORMAT, body)) => {
                let body: Body = codec::decode("schema", body)?;
                Ok(Schema {
                    tables: keyed("table", body.tables, |t| &t.name)?,
                    indexes: keyed("index", body.indexes, |i| &i.name)?,
                    views: keyed("view", body.views, |v| &v.name)?,
                    triggers: keyed("trigger", body.triggers, |t| &t.name)?,
                    excluded: body.excluded,
                })
            }
            Some((&SCHEMA_FORMAT_ROWS, body)) => {
                let body: RowsBody = codec::decode("schema", body)?;
                upgrade_rows(body.entries)
            }
            other => Err(SchemaError::Format(other.map(|(b, _)| *b))),
        }
    }
}

/// Rebuilds a format-1 schema: replays its `CREATE` statements into an empty
/// in-memory database, then captures that. SQLite stores a replayed
/// statement's text unchanged, so exact texts survive; what the PRAGMAs
/// report is recomputed, as at capture.
fn upgrade_rows(mut rows: Vec<Row>) -> Result<Schema, SchemaError> {
    let fail = |object: &str| {
        let object = object.to_owned();
        move |source| SchemaError::Upgrade {
            object,
            source: Box::new(source),
        }
    };
    let conn = rusqlite::Connection::open_in_memory().map_err(fail("the database"))?;
    let rank = |kind: &str| match kind {
        "table" => 0,
        "index" => 1,
        "view" => 2,
        _ => 3,
    };
    rows.sort_by_key(|row| rank(&row.kind));
    for row in &rows {
        let Some(sql) = &row.sql else {
            continue; // constraint indexes come back with their tables
        };
        // Internal tables come back by themselves (sqlite_sequence with
        // AUTOINCREMENT) or not at all (sqlite_stat*); shadow tables come
        // back with their virtual table.
        let exists = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = ?1 COLLATE NOCASE",
                [&row.name],
                |r| r.get::<_, i64>(0),
            )
            .map_err(fail(&row.name))?;
        if fold(&row.name).starts_with("sqlite_") || exists > 0 {
            continue;
        }
        // One CREATE statement per row, never CREATE … AS SELECT: SQLite
        // stores neither anything else nor that, so anything else is a
        // damaged blob and is not run. (`prepare` refuses a second statement.)
        let create = lex::tokenize(sql)
            .is_ok_and(|tokens| tokens.first().is_some_and(|t| t.is_word(sql, "CREATE")));
        let as_select = matches!(
            parse::parse(&row.name, sql),
            Ok(parse::Statement::Table(ref table)) if table.as_select
        );
        let statement = if create && !as_select {
            conn.prepare(sql)
        } else {
            Err(rusqlite::Error::InvalidQuery)
        };
        statement
            .and_then(|mut stmt| stmt.raw_execute())
            .map_err(fail(&row.name))?;
    }
    let tx = conn.unchecked_transaction().map_err(fail("the database"))?;
    let captured = capture(&tx).map_err(fail("the schema"))?;
    Ok(captured.schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn tiny() -> Schema {
        let mut schema = Schema::default();
        let mut table = Table::new("t", vec![Column::new("a", "INTEGER")]);
        table.sql = Some("CREATE TABLE t(a INTEGER)".into());
        schema.insert_table(table);
        schema
    }

    #[test]
    fn tiny_schema_golden_bytes() {
        let bytes = tiny().to_blob();
        let expected = [
            "02",               // schema format 2
            "01",               // one table
            "0174",             // name "t"
            "01",               // one column
            "0161",             // name "a"
            "07494e5445474552", // declared_type "INTEGER"
            "00",               // not_null false
            "00",               // not_null_on_conflict None
            "00",               // default None
            "00",               // primary_key None
            "00",               // generated None
            "00",               // hidden false
            "00",               // collation None
            "00",               // primary_key None
            "00",               // no uniques
            "00",               // no checks
            "00",               // no foreign keys
            "000000",           // options: without_rowid, strict, autoincrement
            "00",               // virtual_table None
            "00",               // unparsed None
            "01",               // sql Some
            "19",               // 25 bytes
            &hex(b"CREATE TABLE t(a INTEGER)"),
            "00", // no indexes
            "00", // no views
            "00", // no triggers
            "00", // nothing excluded
        ]
        .concat();
        assert_eq!(hex(&bytes), expected);
        assert_eq!(Schema::from_blob(&bytes).unwrap(), tiny());
    }

    #[test]
    fn blob_round_trips_a_captured_schema() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE a(x INTEGER PRIMARY KEY, y TEXT UNIQUE CHECK (y != ''));
             CREATE INDEX ay ON a(lower(y)) WHERE x > 0;
             CREATE VIEW v AS SELECT x FROM a;
             CREATE TRIGGER tr AFTER DELETE ON a BEGIN SELECT 1; END;
             CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL PRIMARY KEY);",
        )
        .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        let schema = capture(&tx).unwrap().schema;
        let back = Schema::from_blob(&schema.to_blob()).unwrap();
        assert_eq!(back, schema);
        assert_eq!(back.to_blob(), schema.to_blob());
    }

    #[test]
    fn rejects_unknown_formats_and_damaged_bodies() {
        assert!(matches!(
            Schema::from_blob(&[9]),
            Err(SchemaError::Format(Some(9)))
        ));
        assert!(matches!(
            Schema::from_blob(&[]),
            Err(SchemaError::Format(None))
        ));
        let mut bytes = tiny().to_blob();
        bytes.push(0);
        assert!(matches!(
            Schema::from_blob(&bytes),
            Err(SchemaError::Decode(_))
        ));
        // Every truncation fails cleanly.
        let bytes = tiny().to_blob();
        for end in 0..bytes.len() {
            assert!(Schema::from_blob(&bytes[..end]).is_err());
        }
        // A table named twice (different case).
        let mut body = Body {
            tables: vec![tiny().tables["t"].clone(), tiny().tables["t"].clone()],
            indexes: vec![],
            views: vec![],
            triggers: vec![],
            excluded: vec![],
        };
        body.tables[1].name = "T".into();
        let mut bytes = vec![SCHEMA_FORMAT];
        bytes.extend(codec::encode(&body));
        assert!(matches!(
            Schema::from_blob(&bytes),
            Err(SchemaError::Duplicate { kind: "table", .. })
        ));
    }

    /// The format-1 encoding, as the previous version wrote it.
    #[derive(bincode::Encode)]
    struct OldEntry {
        kind: String,
        name: String,
        table: String,
        sql: Option<String>,
    }

    fn old_blob(entries: &[(&str, &str, &str, Option<&str>)]) -> Vec<u8> {
        let entries: Vec<OldEntry> = entries
            .iter()
            .map(|(kind, name, table, sql)| OldEntry {
                kind: (*kind).into(),
                name: (*name).into(),
                table: (*table).into(),
                sql: sql.map(Into::into),
            })
            .collect();
        let mut out = vec![1];
        out.extend(codec::encode(&entries));
        out
    }

    #[test]
    fn reads_format_1_blobs() {
        // Sorted by (kind, name) as format 1 kept them: indexes before tables.
        let bytes = old_blob(&[
            (
                "index",
                "items_by_name",
                "items",
                Some("CREATE INDEX items_by_name ON items(name)"),
            ),
            (
                "index",
                "sqlite_autoindex_alembic_version_1",
                "alembic_version",
                None,
            ),
            (
                "table",
                "alembic_version",
                "alembic_version",
                Some("CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"),
            ),
            (
                "table",
                "items",
                "items",
                Some(
                    "CREATE TABLE items(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)",
                ),
            ),
            (
                "table",
                "sqlite_sequence",
                "sqlite_sequence",
                Some("CREATE TABLE sqlite_sequence(name,seq)"),
            ),
            (
                "trigger",
                "t",
                "items",
                Some("CREATE TRIGGER t AFTER INSERT ON items BEGIN SELECT 1; END"),
            ),
            (
                "view",
                "names",
                "names",
                Some("CREATE VIEW names AS SELECT name FROM items"),
            ),
        ]);
        let schema = Schema::from_blob(&bytes).unwrap();
        assert_eq!(
            schema.table("items").unwrap().sql.as_deref(),
            Some("CREATE TABLE items(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)")
        );
        assert!(schema.table("items").unwrap().options.autoincrement);
        assert!(schema.indexes.contains_key("items_by_name"));
        assert!(schema.views.contains_key("names") && schema.triggers.contains_key("t"));
        assert!(schema.has_table("alembic_version") && schema.table("alembic_version").is_none());
        assert!(
            schema
                .exact_sql()
                .starts_with("CREATE TABLE alembic_version(")
        );
    }

    #[test]
    fn damaged_format_1_blobs_fail_without_running_them() {
        for sql in [
            "CREATE TABLE x(a); DROP TABLE y",
            "ATTACH 'file.db' AS other",
            "CREATE TABLE x AS SELECT 1",
            "CREATE TABLE x(a",
        ] {
            let bytes = old_blob(&[("table", "x", "x", Some(sql))]);
            assert!(
                matches!(Schema::from_blob(&bytes), Err(SchemaError::Upgrade { .. })),
                "{sql}"
            );
        }
    }
}
