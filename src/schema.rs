//! The recorded schema of a database: the entries of `sqlite_schema`, in a
//! canonical order, with their exact SQL text.
//!
//! The schema travels as a blob in the store: one format byte, then the
//! bincode encoding (through the store's codec, the one place that defines
//! our bytes).

use migsnap_store::codec::{self, DecodeError};

/// Format byte that opens an encoded schema blob.
pub const SCHEMA_FORMAT: u8 = 1;

/// One row of `sqlite_schema`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, bincode::Encode, bincode::Decode, serde::Serialize,
)]
pub struct SchemaEntry {
    /// `table`, `index`, `view` or `trigger`.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The table it belongs to (itself for a table).
    pub table: String,
    /// The exact `CREATE` text; `None` for automatic indexes.
    pub sql: Option<String>,
}

/// A database schema.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode, serde::Serialize,
)]
pub struct Schema {
    entries: Vec<SchemaEntry>,
}

/// Why a blob is not a schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The blob is empty or has an unknown format byte.
    #[error("schema blob has unsupported format {0:?}")]
    Format(Option<u8>),
    /// The body does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl Schema {
    /// A schema from `sqlite_schema` rows in any order.
    pub fn from_entries(mut entries: Vec<SchemaEntry>) -> Schema {
        entries.sort();
        Schema { entries }
    }

    /// The entries, ordered by kind and name.
    pub fn entries(&self) -> &[SchemaEntry] {
        &self.entries
    }

    /// Whether a table of that name exists.
    pub fn has_table(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.kind == "table" && entry.name == name)
    }

    /// Names of the tables, in order.
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|entry| entry.kind == "table")
            .map(|entry| entry.name.as_str())
    }

    /// The schema as a SQL script: tables first, then indexes, views and
    /// triggers, so that it can be run on an empty database.
    pub fn to_sql(&self) -> String {
        let mut out = String::new();
        for kind in ["table", "index", "view", "trigger"] {
            for entry in self.entries.iter().filter(|e| e.kind == kind) {
                if let Some(sql) = &entry.sql {
                    out.push_str(sql);
                    out.push_str(";\n");
                }
            }
        }
        out
    }

    /// The bytes of the schema blob.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut out = vec![SCHEMA_FORMAT];
        out.extend(codec::encode(self));
        out
    }

    /// Reads a schema blob.
    pub fn from_blob(bytes: &[u8]) -> Result<Schema, SchemaError> {
        match bytes.split_first() {
            Some((&SCHEMA_FORMAT, body)) => Ok(codec::decode("schema", body)?),
            other => Err(SchemaError::Format(other.map(|(b, _)| *b))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, name: &str, sql: &str) -> SchemaEntry {
        SchemaEntry {
            kind: kind.into(),
            name: name.into(),
            table: name.into(),
            sql: Some(sql.into()),
        }
    }

    #[test]
    fn blob_round_trips_and_is_order_independent() {
        let a = entry("table", "a", "CREATE TABLE a(x)");
        let i = entry("index", "ia", "CREATE INDEX ia ON a(x)");
        let one = Schema::from_entries(vec![a.clone(), i.clone()]);
        let two = Schema::from_entries(vec![i, a]);
        assert_eq!(one.to_blob(), two.to_blob());
        assert_eq!(Schema::from_blob(&one.to_blob()).unwrap(), one);
        assert_eq!(
            one.to_sql(),
            "CREATE TABLE a(x);\nCREATE INDEX ia ON a(x);\n"
        );
        assert!(matches!(
            Schema::from_blob(&[9]),
            Err(SchemaError::Format(Some(9)))
        ));
    }
}
