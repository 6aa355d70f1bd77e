//! What the round trip on real data compares besides the schema: each
//! table's row count and a hash of its rows.
//!
//! The hash depends on neither the order of the columns nor the order of
//! the rows: a batch migration rebuilds a table with its columns in another
//! order and may number the rowids of a table without an `INTEGER PRIMARY
//! KEY` anew, and neither changes the data. Each row is hashed with its
//! values taken in column-name order; the table's hash is the hash of the
//! sorted row hashes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::schema::Schema;

/// One table's rows, counted and hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableContent {
    /// How many rows it holds.
    pub rows: u64,
    /// The hash of its rows, independent of row and column order.
    pub hash: blake3::Hash,
}

/// A table's rows could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the rows of table '{table}' in {path}")]
pub struct ContentError {
    /// The database.
    pub path: PathBuf,
    /// The table.
    pub table: String,
    /// What SQLite said.
    #[source]
    pub source: rusqlite::Error,
}

/// The content of each ordinary table of `schema` in the database at
/// `path`, by table name as written. Virtual tables are left out: their
/// rows live in shadow tables or outside the file.
pub fn read(path: &Path, schema: &Schema) -> Result<BTreeMap<String, TableContent>, ContentError> {
    let failed = |table: &str| {
        let path = path.to_path_buf();
        let table = table.to_owned();
        move |source| ContentError {
            path,
            table,
            source,
        }
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed(""))?;
    let mut out = BTreeMap::new();
    for table in schema.tables.values() {
        if table.virtual_table.is_some() {
            continue;
        }
        let mut names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        let columns = if names.is_empty() {
            "*".to_owned()
        } else {
            names
                .iter()
                .map(|n| quoted(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!("SELECT {columns} FROM {}", quoted(&table.name));
        let content = hash_rows(&conn, &sql).map_err(failed(&table.name))?;
        out.insert(table.name.clone(), content);
    }
    Ok(out)
}

/// Counts and hashes the rows `sql` selects.
fn hash_rows(conn: &Connection, sql: &str) -> rusqlite::Result<TableContent> {
    let mut stmt = conn.prepare(sql)?;
    let width = stmt.column_count();
    let mut rows = stmt.query([])?;
    let mut digests: Vec<[u8; 32]> = Vec::new();
    while let Some(row) = rows.next()? {
        let mut hasher = blake3::Hasher::new();
        for index in 0..width {
            // A tag per storage class, and a length before variable-size
            // values, so no two different rows feed the same bytes.
            match row.get_ref(index)? {
                ValueRef::Null => hasher.update(&[0]),
                ValueRef::Integer(i) => hasher.update(&[1]).update(&i.to_le_bytes()),
                ValueRef::Real(f) => hasher.update(&[2]).update(&f.to_bits().to_le_bytes()),
                ValueRef::Text(t) => hasher
                    .update(&[3])
                    .update(&(t.len() as u64).to_le_bytes())
                    .update(t),
                ValueRef::Blob(b) => hasher
                    .update(&[4])
                    .update(&(b.len() as u64).to_le_bytes())
                    .update(b),
            };
        }
        digests.push(*hasher.finalize().as_bytes());
    }
    digests.sort_unstable();
    let mut table = blake3::Hasher::new();
    for digest in &digests {
        table.update(digest);
    }
    Ok(TableContent {
        rows: digests.len() as u64,
        hash: table.finalize(),
    })
}

/// `name` as a SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(sql: &str) -> BTreeMap<String, TableContent> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        let schema = crate::migrations::drift::LiveDatabase::capture(
            &path,
            std::time::Duration::from_secs(1),
        )
        .unwrap()
        .schema;
        read(&path, &schema).unwrap()
    }

    /// A batch rebuild moves columns and renumbers rowids; the data is the
    /// same.
    #[test]
    fn column_and_row_order_do_not_count() {
        let a = content(
            "CREATE TABLE t (a TEXT, \"b c\" INTEGER); INSERT INTO t VALUES ('x', 1), ('y', NULL);",
        );
        let b = content(
            "CREATE TABLE t (\"b c\" INTEGER, a TEXT); INSERT INTO t VALUES (NULL, 'y'), (1, 'x');",
        );
        assert_eq!(a, b);
        assert_eq!(a["t"].rows, 2);
    }

    #[test]
    fn a_changed_value_or_a_lost_row_counts() {
        let base = content("CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('x'), ('x');");
        let changed = content("CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('x'), ('X');");
        let lost = content("CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('x');");
        let typed = content("CREATE TABLE t (a); INSERT INTO t VALUES ('x'), (X'78');");
        assert_ne!(base["t"].hash, changed["t"].hash);
        assert_ne!(base["t"].hash, typed["t"].hash);
        assert_eq!(lost["t"].rows, 1);
    }
}
