//! Comparing the rows of two SQLite files, table by table.
//!
//! Rows are matched by key: the primary key, or the rowid of a rowid table
//! that declares none (WITHOUT ROWID tables always have a primary key). Both
//! sides are read in one read transaction each, ordered by that key with
//! `COLLATE BINARY`, and merge-joined; a row's values are hashed (BLAKE3, with
//! a type tag per value, so NULL, `''`, `0` and `0.0` all differ) to tell a
//! changed row from an equal one. Without [`Options::rows`] nothing is kept
//! per row, so memory does not grow with the table (SQLite's sorter spills
//! to temporary files when the key has no index).
//!
//! Virtual tables are skipped: their rows live in their shadow tables,
//! which are ordinary tables and compared as such. SQLite's own tables
//! (`sqlite_sequence`, `sqlite_stat*`) are skipped too.
//!
//! Values are compared on the columns both sides have (by ASCII-folded
//! name, in the first side's order); the columns only one side has are
//! reported. Keys compare as SQLite orders them: NULL, then numbers
//! (integer and real by value), then text by bytes, then blobs by bytes.
//!
//! A snapshot is compared by first materialising it to a file
//! ([`crate::snapshots::restore::checkout`]); this module only takes paths.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::schema::{fold, quote_ident};

/// What to compare and return.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Also return the differing rows themselves.
    pub rows: bool,
    /// With `rows`, at most this many rows per table.
    pub limit: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            rows: false,
            limit: 100,
        }
    }
}

/// The differences between two files' rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DataDiff {
    /// Every table of either side, in folded-name order.
    pub tables: Vec<TableDiff>,
}

impl DataDiff {
    /// Whether any table differs.
    pub fn has_changes(&self) -> bool {
        self.tables.iter().any(TableDiff::has_changes)
    }
}

/// Which sides hold a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Both.
    Both,
    /// Only the first (`a`): all its rows count as removed.
    OnlyA,
    /// Only the second (`b`): all its rows count as added.
    OnlyB,
}

/// How rows of a table are matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "columns")]
pub enum Key {
    /// By primary key columns, in key order.
    PrimaryKey(Vec<String>),
    /// By rowid (a rowid table without a declared primary key).
    Rowid,
    /// Not compared row by row: the sides' keys differ (or a rowid table
    /// has columns named `rowid`, `_rowid_` and `oid`). Only row counts are
    /// given.
    None,
}

/// The comparison of one table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableDiff {
    /// Name as the first side that has it writes it.
    pub name: String,
    /// Which sides hold it.
    pub presence: Presence,
    /// How rows were matched.
    pub key: Key,
    /// Rows in `a` (0 when absent).
    pub rows_a: u64,
    /// Rows in `b` (0 when absent).
    pub rows_b: u64,
    /// Rows only in `b`.
    pub added: u64,
    /// Rows only in `a`.
    pub removed: u64,
    /// Rows in both whose compared values differ.
    pub changed: u64,
    /// Compared columns only `a` has.
    pub columns_only_a: Vec<String>,
    /// Compared columns only `b` has.
    pub columns_only_b: Vec<String>,
    /// With [`Options::rows`]: the differing rows, at most `limit`.
    pub rows: Vec<RowChange>,
    /// Whether `rows` stopped at the limit.
    pub truncated: bool,
}

impl TableDiff {
    /// Whether the table differs at all.
    pub fn has_changes(&self) -> bool {
        self.presence != Presence::Both
            || self.added + self.removed + self.changed > 0
            || self.rows_a != self.rows_b
            || !self.columns_only_a.is_empty()
            || !self.columns_only_b.is_empty()
    }
}

/// One differing row. Values are those of the compared columns; the key is
/// the key columns' values (or the rowid).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum RowChange {
    /// Only in `b`.
    Added {
        /// Its key.
        key: Vec<Value>,
        /// Its values.
        values: Vec<Value>,
    },
    /// Only in `a`.
    Removed {
        /// Its key.
        key: Vec<Value>,
        /// Its values.
        values: Vec<Value>,
    },
    /// In both, with different values.
    Changed {
        /// Its key.
        key: Vec<Value>,
        /// The values in `a`.
        old: Vec<Value>,
        /// The values in `b`.
        new: Vec<Value>,
    },
}

/// An SQLite value. JSON: `null`, a number, a string, or `{"blob": "hex"}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// Text (lossily decoded if not UTF-8).
    Text(String),
    /// A blob.
    Blob(Vec<u8>),
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Integer(n) => s.serialize_i64(*n),
            Value::Real(x) => s.serialize_f64(*x),
            Value::Text(text) => s.serialize_str(text),
            Value::Blob(bytes) => {
                use serde::ser::SerializeMap;
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("blob", &hex)?;
                map.end()
            }
        }
    }
}

impl From<ValueRef<'_>> for Value {
    fn from(value: ValueRef<'_>) -> Value {
        match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::Integer(n),
            ValueRef::Real(x) => Value::Real(x),
            ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
            ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
        }
    }
}

/// Why two files could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DataDiffError {
    /// A file does not open as a database.
    #[error("cannot open {} as an SQLite database", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Reading a table failed.
    #[error("cannot read table '{table}' of {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The table ("" for the table list).
        table: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

/// One side of the comparison: an open file in a read transaction.
struct Side<'p> {
    path: &'p Path,
    conn: Connection,
}

/// What one side knows of a table.
struct TableInfo {
    name: String,
    /// Columns as written, in order (hidden and generated ones included, as
    /// `table_xinfo` lists them; virtual-table hidden columns left out).
    columns: Vec<String>,
    /// Primary key columns in key order; empty for none.
    primary_key: Vec<String>,
}

impl<'p> Side<'p> {
    fn open(path: &'p Path) -> Result<Side<'p>, DataDiffError> {
        let open = |source| DataDiffError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open)?;
        // One read transaction, so a writer cannot move rows under the merge;
        // reading the schema also checks that the file is a database.
        conn.execute_batch("BEGIN; SELECT count(*) FROM sqlite_schema;")
            .map_err(open)?;
        Ok(Side { path, conn })
    }

    fn read_error(&self, table: &str) -> impl Fn(rusqlite::Error) -> DataDiffError + use<'_, 'p> {
        let table = table.to_owned();
        move |source| DataDiffError::Read {
            path: self.path.to_path_buf(),
            table: table.clone(),
            source,
        }
    }

    /// User tables by folded name, in folded-name order.
    fn tables(&self) -> Result<Vec<(String, TableInfo)>, DataDiffError> {
        let fail = self.read_error("");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, coalesce(sql, '') FROM sqlite_schema
                 WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            )
            .map_err(&fail)?;
        let names = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(&fail)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&fail)?;
        let mut out = Vec::new();
        for (name, sql) in names {
            let is_virtual = sql
                .split_whitespace()
                .nth(1)
                .is_some_and(|word| word.eq_ignore_ascii_case("VIRTUAL"));
            // A virtual table's rows live in its shadow tables, which are
            // ordinary tables compared like any other; reading it may also
            // need a module this build lacks.
            if is_virtual {
                continue;
            }
            let info = self.table_info(name)?;
            out.push((fold(&info.name), info));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn table_info(&self, name: String) -> Result<TableInfo, DataDiffError> {
        let fail = self.read_error(&name);
        let mut stmt = self
            .conn
            .prepare("SELECT name, pk, hidden FROM pragma_table_xinfo(?1)")
            .map_err(&fail)?;
        let rows = stmt
            .query_map([&name], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .map_err(&fail)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&fail)?;
        let mut primary_key: Vec<(i64, String)> = rows
            .iter()
            .filter(|(_, pk, _)| *pk > 0)
            .map(|(name, pk, _)| (*pk, name.clone()))
            .collect();
        primary_key.sort();
        Ok(TableInfo {
            columns: rows
                .into_iter()
                // hidden 1: a virtual table's hidden column; 2 and 3 are
                // generated columns, which are data like any other.
                .filter(|(_, _, hidden)| *hidden != 1)
                .map(|(name, _, _)| name)
                .collect(),
            primary_key: primary_key.into_iter().map(|(_, name)| name).collect(),
            name,
        })
    }

    fn count(&self, table: &str) -> Result<u64, DataDiffError> {
        let n: i64 = self
            .conn
            .query_row(
                &format!("SELECT count(*) FROM {}", quote_ident(table)),
                [],
                |row| row.get(0),
            )
            .map_err(self.read_error(table))?;
        Ok(n.max(0) as u64)
    }
}

/// The name by which to select a rowid table's rowid: the first of SQLite's
/// three spellings that no column shadows.
fn rowid_alias(columns: &[String]) -> Option<&'static str> {
    ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|alias| !columns.iter().any(|c| c.eq_ignore_ascii_case(alias)))
}

/// Compares the rows of the databases at `a` and `b`.
pub fn compare(a: &Path, b: &Path, options: Options) -> Result<DataDiff, DataDiffError> {
    let side_a = Side::open(a)?;
    let side_b = Side::open(b)?;
    let mut tables_a = side_a.tables()?.into_iter().peekable();
    let mut tables_b = side_b.tables()?.into_iter().peekable();
    let mut out = DataDiff::default();
    loop {
        let order = match (tables_a.peek(), tables_b.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
        };
        let diff = match order {
            Ordering::Less => {
                let (_, info) = tables_a.next().expect("holds because peeked");
                one_sided(&side_a, info, Presence::OnlyA, options)?
            }
            Ordering::Greater => {
                let (_, info) = tables_b.next().expect("holds because peeked");
                one_sided(&side_b, info, Presence::OnlyB, options)?
            }
            Ordering::Equal => {
                let (_, info_a) = tables_a.next().expect("holds because peeked");
                let (_, info_b) = tables_b.next().expect("holds because peeked");
                both(&side_a, &side_b, info_a, info_b, options)?
            }
        };
        out.tables.push(diff);
    }
    Ok(out)
}

fn empty_diff(name: String, presence: Presence, key: Key) -> TableDiff {
    TableDiff {
        name,
        presence,
        key,
        rows_a: 0,
        rows_b: 0,
        added: 0,
        removed: 0,
        changed: 0,
        columns_only_a: Vec::new(),
        columns_only_b: Vec::new(),
        rows: Vec::new(),
        truncated: false,
    }
}

fn key_of(info: &TableInfo) -> Key {
    if info.primary_key.is_empty() {
        Key::Rowid
    } else {
        Key::PrimaryKey(info.primary_key.clone())
    }
}

/// A table only one side has: every row is added or removed.
fn one_sided(
    side: &Side<'_>,
    info: TableInfo,
    presence: Presence,
    options: Options,
) -> Result<TableDiff, DataDiffError> {
    let key = key_of(&info);
    let mut diff = empty_diff(info.name.clone(), presence, key.clone());
    let count = side.count(&info.name)?;
    if presence == Presence::OnlyA {
        diff.rows_a = count;
        diff.removed = count;
    } else {
        diff.rows_b = count;
        diff.added = count;
    }
    if options.rows && key != Key::None {
        let columns: Vec<&str> = info.columns.iter().map(String::as_str).collect();
        let Some(scan) = Scan::new(&info, &columns) else {
            return Ok(diff);
        };
        scan.for_each(side, &info.name, |row| {
            if diff.rows.len() >= options.limit {
                diff.truncated = true;
                return false;
            }
            diff.rows.push(match presence {
                Presence::OnlyA => RowChange::Removed {
                    key: row.key(),
                    values: row.values(),
                },
                _ => RowChange::Added {
                    key: row.key(),
                    values: row.values(),
                },
            });
            true
        })?;
    }
    Ok(diff)
}

/// A table both sides have.
fn both(
    side_a: &Side<'_>,
    side_b: &Side<'_>,
    info_a: TableInfo,
    info_b: TableInfo,
    options: Options,
) -> Result<TableDiff, DataDiffError> {
    let key_a = key_of(&info_a);
    let same_key = match (&key_a, key_of(&info_b)) {
        (Key::PrimaryKey(a), Key::PrimaryKey(b)) => {
            a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.eq_ignore_ascii_case(y))
        }
        (Key::Rowid, Key::Rowid) => true,
        _ => false,
    };
    let key = if same_key { key_a } else { Key::None };
    let mut diff = empty_diff(info_a.name.clone(), Presence::Both, key.clone());
    let has =
        |info: &TableInfo, name: &str| info.columns.iter().any(|c| c.eq_ignore_ascii_case(name));
    let common: Vec<&str> = info_a
        .columns
        .iter()
        .filter(|c| has(&info_b, c))
        .map(String::as_str)
        .collect();
    diff.columns_only_a = info_a
        .columns
        .iter()
        .filter(|c| !has(&info_b, c))
        .cloned()
        .collect();
    diff.columns_only_b = info_b
        .columns
        .iter()
        .filter(|c| !has(&info_a, c))
        .cloned()
        .collect();
    let scans = if key == Key::None {
        None
    } else {
        Scan::new(&info_a, &common).zip(Scan::new(&info_b, &common))
    };
    let Some((scan_a, scan_b)) = scans else {
        diff.key = Key::None;
        diff.rows_a = side_a.count(&info_a.name)?;
        diff.rows_b = side_b.count(&info_b.name)?;
        return Ok(diff);
    };
    merge(
        side_a,
        side_b,
        &info_a.name,
        scan_a,
        scan_b,
        &mut diff,
        options,
    )?;
    Ok(diff)
}

/// An ordered scan of a table: the key values first, then the compared
/// values.
struct Scan {
    sql: String,
    key_len: usize,
}

/// One row of a scan, borrowed from the statement.
struct ScanRow<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    key_len: usize,
    width: usize,
}

impl ScanRow<'_, '_> {
    fn get(&self, index: usize) -> ValueRef<'_> {
        self.row
            .get_ref(index)
            .expect("BUG: scan column index out of range")
    }

    fn key(&self) -> Vec<Value> {
        (0..self.key_len).map(|i| self.get(i).into()).collect()
    }

    fn values(&self) -> Vec<Value> {
        (self.key_len..self.width)
            .map(|i| self.get(i).into())
            .collect()
    }

    /// The BLAKE3 hash of the compared values, each with a type tag.
    fn hash(&self) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new();
        for i in self.key_len..self.width {
            match self.get(i) {
                ValueRef::Null => {
                    hasher.update(&[0]);
                }
                ValueRef::Integer(n) => {
                    hasher.update(&[1]);
                    hasher.update(&n.to_le_bytes());
                }
                ValueRef::Real(x) => {
                    hasher.update(&[2]);
                    hasher.update(&x.to_bits().to_le_bytes());
                }
                ValueRef::Text(text) => {
                    hasher.update(&[3]);
                    hasher.update(&(text.len() as u64).to_le_bytes());
                    hasher.update(text);
                }
                ValueRef::Blob(bytes) => {
                    hasher.update(&[4]);
                    hasher.update(&(bytes.len() as u64).to_le_bytes());
                    hasher.update(bytes);
                }
            }
        }
        hasher.finalize()
    }
}

impl Scan {
    /// `None` when a rowid table has no usable rowid name.
    fn new(info: &TableInfo, columns: &[&str]) -> Option<Scan> {
        let key: Vec<String> = if info.primary_key.is_empty() {
            match rowid_alias(&info.columns) {
                Some(alias) => vec![alias.to_owned()],
                None => return None,
            }
        } else {
            info.primary_key.iter().map(|c| quote_ident(c)).collect()
        };
        let order: Vec<String> = key.iter().map(|k| format!("{k} COLLATE BINARY")).collect();
        let mut select: Vec<String> = key.clone();
        select.extend(columns.iter().map(|c| quote_ident(c)));
        Some(Scan {
            sql: format!(
                "SELECT {} FROM {} ORDER BY {}",
                select.join(", "),
                quote_ident(&info.name),
                order.join(", ")
            ),
            key_len: key.len(),
        })
    }

    /// Calls `each` for every row in key order until it returns false.
    fn for_each(
        &self,
        side: &Side<'_>,
        table: &str,
        mut each: impl FnMut(&ScanRow<'_, '_>) -> bool,
    ) -> Result<(), DataDiffError> {
        let fail = side.read_error(table);
        let mut stmt = side.conn.prepare(&self.sql).map_err(&fail)?;
        let width = stmt.column_count();
        let mut rows = stmt.query([]).map_err(&fail)?;
        while let Some(row) = rows.next().map_err(&fail)? {
            let row = ScanRow {
                row,
                key_len: self.key_len,
                width,
            };
            if !each(&row) {
                break;
            }
        }
        Ok(())
    }
}

/// The merge-join of two ordered scans.
fn merge(
    side_a: &Side<'_>,
    side_b: &Side<'_>,
    table: &str,
    scan_a: Scan,
    scan_b: Scan,
    diff: &mut TableDiff,
    options: Options,
) -> Result<(), DataDiffError> {
    let fail_a = side_a.read_error(table);
    let fail_b = side_b.read_error(table);
    let mut stmt_a = side_a.conn.prepare(&scan_a.sql).map_err(&fail_a)?;
    let mut stmt_b = side_b.conn.prepare(&scan_b.sql).map_err(&fail_b)?;
    let width = stmt_a.column_count();
    let key_len = scan_a.key_len;
    let mut rows_a = stmt_a.query([]).map_err(&fail_a)?;
    let mut rows_b = stmt_b.query([]).map_err(&fail_b)?;
    let mut row_a = rows_a.next().map_err(&fail_a)?;
    let mut row_b = rows_b.next().map_err(&fail_b)?;
    let keep = |diff: &mut TableDiff, change: &dyn Fn() -> RowChange| {
        if !options.rows {
            return;
        }
        if diff.rows.len() >= options.limit {
            diff.truncated = true;
        } else {
            diff.rows.push(change());
        }
    };
    loop {
        let order = match (row_a, row_b) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => (0..key_len)
                .map(|i| {
                    compare_values(
                        a.get_ref(i).expect("BUG: key index out of range"),
                        b.get_ref(i).expect("BUG: key index out of range"),
                    )
                })
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal),
        };
        let wrap = |row| ScanRow {
            row,
            key_len,
            width,
        };
        match order {
            Ordering::Less => {
                let a = wrap(row_a.expect("holds because ordered"));
                diff.rows_a += 1;
                diff.removed += 1;
                keep(diff, &|| RowChange::Removed {
                    key: a.key(),
                    values: a.values(),
                });
                row_a = rows_a.next().map_err(&fail_a)?;
            }
            Ordering::Greater => {
                let b = wrap(row_b.expect("holds because ordered"));
                diff.rows_b += 1;
                diff.added += 1;
                keep(diff, &|| RowChange::Added {
                    key: b.key(),
                    values: b.values(),
                });
                row_b = rows_b.next().map_err(&fail_b)?;
            }
            Ordering::Equal => {
                let a = wrap(row_a.expect("holds because ordered"));
                let b = wrap(row_b.expect("holds because ordered"));
                diff.rows_a += 1;
                diff.rows_b += 1;
                if a.hash() != b.hash() {
                    diff.changed += 1;
                    keep(diff, &|| RowChange::Changed {
                        key: a.key(),
                        old: a.values(),
                        new: b.values(),
                    });
                }
                row_a = rows_a.next().map_err(&fail_a)?;
                row_b = rows_b.next().map_err(&fail_b)?;
            }
        }
    }
    Ok(())
}

/// SQLite's order of values under BINARY collation: NULL, numbers by value,
/// text by bytes, blobs by bytes.
fn compare_values(a: ValueRef<'_>, b: ValueRef<'_>) -> Ordering {
    fn rank(value: &ValueRef<'_>) -> u8 {
        match value {
            ValueRef::Null => 0,
            ValueRef::Integer(_) | ValueRef::Real(_) => 1,
            ValueRef::Text(_) => 2,
            ValueRef::Blob(_) => 3,
        }
    }
    match (a, b) {
        (ValueRef::Integer(x), ValueRef::Integer(y)) => x.cmp(&y),
        (ValueRef::Integer(x), ValueRef::Real(y)) => compare_int_real(x, y),
        (ValueRef::Real(x), ValueRef::Integer(y)) => compare_int_real(y, x).reverse(),
        (ValueRef::Real(x), ValueRef::Real(y)) => x.total_cmp(&y),
        (ValueRef::Text(x), ValueRef::Text(y)) => x.cmp(y),
        (ValueRef::Blob(x), ValueRef::Blob(y)) => x.cmp(y),
        (a, b) => rank(&a).cmp(&rank(&b)),
    }
}

/// Compares an integer with a float exactly (no rounding of large
/// integers), as SQLite does.
fn compare_int_real(int: i64, real: f64) -> Ordering {
    if real.is_nan() {
        return Ordering::Greater; // SQLite stores NaN as NULL; never reached
    }
    // i64 range is [-2^63, 2^63); floats outside it compare by sign.
    if real >= 9_223_372_036_854_775_808.0 {
        return Ordering::Less;
    }
    if real < -9_223_372_036_854_775_808.0 {
        return Ordering::Greater;
    }
    let floor = real.floor();
    match int.cmp(&(floor as i64)) {
        Ordering::Equal if real > floor => Ordering::Less,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_order_like_sqlite() {
        use ValueRef::*;
        let ordered = [
            Null,
            Integer(-5),
            Real(-4.5),
            Integer(1),
            Real(1.5),
            Integer(2),
            Text(b"A"),
            Text(b"a"),
            Blob(b""),
            Blob(b"\x00"),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(compare_values(*a, *b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
        assert_eq!(compare_values(Integer(3), Real(3.0)), Ordering::Equal);
        assert_eq!(
            compare_int_real(i64::MAX, 9_223_372_036_854_775_808.0),
            Ordering::Less
        );
    }

    #[test]
    fn rowid_alias_avoids_shadowing_columns() {
        assert_eq!(rowid_alias(&["a".into()]), Some("rowid"));
        assert_eq!(rowid_alias(&["RowId".into()]), Some("_rowid_"));
        assert_eq!(
            rowid_alias(&["rowid".into(), "_rowid_".into(), "oid".into()]),
            None
        );
    }
}
