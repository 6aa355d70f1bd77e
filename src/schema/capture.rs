//! Building the model from a live SQLite connection.
//!
//! The parsed `sqlite_schema.sql` supplies the columns, the keys of
//! `CREATE INDEX` indexes, foreign keys, constraint names, CHECKs,
//! generated expressions, collations, AUTOINCREMENT, deferrability, index
//! `WHERE` and expression terms, and view and trigger text. The PRAGMAs
//! supply what only SQLite knows: `table_list` (WITHOUT ROWID, STRICT,
//! shadow tables), `index_list` and `index_xinfo` for the indexes SQLite
//! made for constraints, and `table_xinfo`, `index_xinfo` and
//! `foreign_key_list` for whatever the parser could not read. Where the
//! parse answers, it answers exactly as the PRAGMA would: the unit tests
//! compare the two on a corpus and on generated tables. Asking SQLite for
//! every table and index prepared one PRAGMA statement each, which was half
//! of a capture.
//!
//! The remaining PRAGMAs are read as table-valued functions joined to the
//! table list, one statement per PRAGMA for the whole schema.
//!
//! The capture never starts a transaction of its own: the caller holds the
//! read transaction, so the schema describes the same instant as the pages
//! and metadata read beside it.
//!
//! Not schema (kept in [`Schema::excluded`] with their text): migration
//! tools' bookkeeping tables (`alembic_version`, peewee's `migratehistory`),
//! whose rows are metadata; SQLite's `sqlite_*` tables; virtual tables'
//! shadow tables; and the indexes and triggers of all of these.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use super::finding::{Finding, Severity, codes};
use super::lex;
use super::model::{
    Action, Column, Conflict, Excluded, ExclusionReason, Generated, Index, IndexOrigin, IndexPart,
    IndexTarget, ObjectKind, PrimaryKey, Schema, Storage, Table, TableOptions, Trigger, Unique,
    View, VirtualTable, fold, same_name,
};
use super::parse::{self, ParsedTable, Statement, normalise_type};

/// A captured schema and what the capture noticed.
#[derive(Clone, Debug, Default)]
pub struct Captured {
    /// The schema.
    pub schema: Schema,
    /// Artefacts and objects the capture could only read in part.
    pub findings: Vec<Finding>,
}

/// Tables whose rows are a migration tool's bookkeeping.
const METADATA_TABLES: &[&str] = &["alembic_version", "migratehistory"];

/// One row of `sqlite_schema`.
struct Row {
    kind: String,
    name: String,
    table: String,
    sql: Option<String>,
}

/// One row of `pragma_table_xinfo`.
struct ColumnRow {
    name: String,
    declared_type: String,
    not_null: bool,
    default: Option<String>,
    pk: u32,
    hidden: i64,
}

/// One row of `pragma_index_list`.
struct IndexListRow {
    name: String,
    unique: bool,
    origin: String,
}

/// One key row of `pragma_index_xinfo`.
struct IndexColumnRow {
    cid: i64,
    name: Option<String>,
    descending: bool,
    collation: Option<String>,
}

/// One row of `pragma_foreign_key_list`.
struct ForeignKeyRow {
    id: i64,
    target: String,
    from: String,
    to: Option<String>,
    on_update: String,
    on_delete: String,
}

/// Reads the schema of the `main` database of `conn`, inside the caller's
/// transaction.
pub fn capture(conn: &Connection) -> rusqlite::Result<Captured> {
    let rows = read_rows(conn)?;
    // Parsing needs only the texts, so it runs on another thread while
    // SQLite answers the PRAGMAs, which take most of a capture's time.
    let (statements, pragmas) = std::thread::scope(|scope| {
        let parser = scope.spawn(|| {
            rows.iter()
                .map(|row| row.sql.as_deref().map(|sql| parse::parse(&row.name, sql)))
                .collect::<Vec<_>>()
        });
        let pragmas = read_pragmas(conn);
        let statements = parser
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (statements, pragmas)
    });
    let mut facts = Facts::gather(conn, &rows, &statements, pragmas?)?;

    let mut findings = Vec::new();
    let mut schema = Schema::default();
    let excluded_tables = excluded_tables(&rows, &facts.listed);
    for (row, parsed) in rows.iter().zip(statements) {
        let Some(kind) = object_kind(&row.kind) else {
            continue;
        };
        let reason = match kind {
            ObjectKind::View => None,
            ObjectKind::Table => excluded_tables.get(&fold(&row.name)),
            ObjectKind::Index | ObjectKind::Trigger => excluded_tables.get(&fold(&row.table)),
        };
        if let Some(reason) = reason {
            schema.excluded.push(Excluded {
                kind,
                name: row.name.clone(),
                table: row.table.clone(),
                sql: row.sql.clone(),
                reason: *reason,
            });
            continue;
        }
        let parsed = parsed_or_finding(row, parsed, &mut findings);
        match kind {
            ObjectKind::Table => {
                let table = capture_table(conn, row, parsed, &mut facts, &mut findings);
                schema.insert_table(table);
            }
            ObjectKind::Index => schema.insert_index(capture_index(row, parsed, &facts)),
            ObjectKind::View => schema.insert_view(capture_view(row, parsed)),
            ObjectKind::Trigger => schema.insert_trigger(capture_trigger(row, parsed)),
        }
    }
    insert_implicit_primary_keys(conn, &facts.index_list, &mut schema)?;
    resolve_references(&mut schema);
    unquote_columns(&mut schema);
    super::canon::canonicalise(&mut schema);
    findings.extend(schema.artefacts());
    Ok(Captured { schema, findings })
}

/// Everything known about the objects before they are built: the PRAGMAs'
/// answers merged with what the parse derived in their place.
struct Facts {
    /// `table_list`: type, WITHOUT ROWID and STRICT by folded table.
    listed: HashMap<String, (String, bool, bool)>,
    index_list: HashMap<(String, String), IndexListRow>,
    /// Key columns by folded index, constraint and `CREATE INDEX` alike.
    index_columns: HashMap<String, Vec<IndexColumnRow>>,
    /// Columns by folded table; a built table takes its own out.
    columns: HashMap<String, Vec<ColumnRow>>,
    /// Foreign keys by folded table; a built table takes its own out.
    foreign_keys: HashMap<String, Vec<ForeignKeyRow>>,
    /// Folded names of UNIQUE-constraint indexes by folded table, in order.
    unique_indexes: HashMap<String, Vec<String>>,
}

impl Facts {
    fn gather(
        conn: &Connection,
        rows: &[Row],
        statements: &[Option<Result<Statement, parse::ParseError>>],
        pragmas: Pragmas,
    ) -> rusqlite::Result<Facts> {
        let Pragmas {
            listed,
            index_list,
            mut index_columns,
        } = pragmas;
        let FromParse {
            columns,
            index_columns: created_index_columns,
            foreign_keys,
        } = from_parse(conn, rows, statements)?;
        index_columns.extend(created_index_columns);
        let mut unique_indexes: HashMap<String, Vec<String>> = HashMap::new();
        for ((table, index), info) in &index_list {
            if info.origin == "u" {
                unique_indexes
                    .entry(table.clone())
                    .or_default()
                    .push(index.clone());
            }
        }
        for names in unique_indexes.values_mut() {
            names.sort();
        }
        Ok(Facts {
            listed,
            index_list,
            index_columns,
            columns,
            foreign_keys,
            unique_indexes,
        })
    }
}

/// Which tables are not schema, and why, by folded name.
fn excluded_tables(
    rows: &[Row],
    listed: &HashMap<String, (String, bool, bool)>,
) -> HashMap<String, ExclusionReason> {
    let mut excluded = HashMap::new();
    for row in rows.iter().filter(|r| r.kind == "table") {
        let key = fold(&row.name);
        let list_type = listed.get(&key).map(|(t, _, _)| t.as_str());
        if let Some(reason) = exclusion(&key, list_type) {
            excluded.insert(key, reason);
        }
    }
    excluded
}

/// The parsed statement of `row`, or `None` with a finding when the parser
/// could not read it.
fn parsed_or_finding(
    row: &Row,
    parsed: Option<Result<Statement, parse::ParseError>>,
    findings: &mut Vec<Finding>,
) -> Option<Statement> {
    match parsed {
        Some(Err(error)) => {
            findings.push(
                Finding::new(
                    codes::UNPARSED,
                    Severity::Warning,
                    row.name.clone(),
                    error.to_string(),
                )
                .hint(
                    "constraint names, CHECKs and expressions of this object are not \
                     compared; please report the statement to migsnap",
                ),
            );
            None
        }
        Some(Ok(statement)) => Some(statement),
        None => None,
    }
}

/// The normalised text of an object the parser could not read, which stands
/// in for what only the parser could tell.
fn unparsed_text(row: &Row) -> Option<String> {
    row.sql
        .as_deref()
        .map(|sql| lex::normalise_text(sql).unwrap_or_else(|| sql.to_owned()))
}

/// Builds the table of a `table` row, taking its columns and foreign keys
/// out of `facts`.
fn capture_table(
    conn: &Connection,
    row: &Row,
    parsed: Option<Statement>,
    facts: &mut Facts,
    findings: &mut Vec<Finding>,
) -> Table {
    let key = fold(&row.name);
    let (table_type, without_rowid, strict) = facts
        .listed
        .get(&key)
        .cloned()
        .unwrap_or_else(|| ("table".into(), false, false));
    let mut table = match parsed {
        Some(Statement::VirtualTable(vt)) => virtual_table(conn, row, vt, findings),
        parsed => {
            let parsed = match parsed {
                Some(Statement::Table(table)) => Some(table),
                _ => None,
            };
            let mut table = build_table(
                row,
                parsed.as_ref(),
                facts.columns.remove(&key).unwrap_or_default(),
                facts.foreign_keys.remove(&key).unwrap_or_default(),
                facts
                    .unique_indexes
                    .get(&key)
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
                &facts.index_columns,
            );
            if parsed.is_none() {
                table.unparsed = unparsed_text(row);
            }
            table
        }
    };
    table.options.without_rowid = without_rowid;
    table.options.strict = strict;
    if table_type == "virtual" && table.virtual_table.is_none() {
        table.unparsed = table.unparsed.or_else(|| unparsed_text(row));
    }
    table
}

/// Builds the index of an `index` row.
fn capture_index(row: &Row, parsed: Option<Statement>, facts: &Facts) -> Index {
    let parsed = match parsed {
        Some(Statement::Index(index)) => Some(index),
        _ => None,
    };
    let info = facts.index_list.get(&(fold(&row.table), fold(&row.name)));
    let parts = facts
        .index_columns
        .get(&fold(&row.name))
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, column)| IndexPart {
            target: match (column.cid, &column.name) {
                (-2, _) => IndexTarget::Expression(
                    parsed
                        .as_ref()
                        .and_then(|p| p.terms.get(i))
                        .map_or_else(String::new, |t| t.expression.clone()),
                ),
                (_, Some(name)) => IndexTarget::Column(name.clone()),
                (_, None) => IndexTarget::Column("rowid".into()),
            },
            collation: column.collation.as_deref().map(str::to_ascii_uppercase),
            descending: column.descending,
        })
        .collect();
    let origin = match info.map(|i| i.origin.as_str()) {
        Some("pk") => IndexOrigin::PrimaryKey,
        Some("u") => IndexOrigin::UniqueConstraint,
        Some(_) => IndexOrigin::Created,
        None if row.sql.is_some() => IndexOrigin::Created,
        None => IndexOrigin::UniqueConstraint,
    };
    let unparsed = match (&parsed, &row.sql) {
        (None, Some(_)) => unparsed_text(row),
        _ => None,
    };
    Index {
        name: row.name.clone(),
        table: row.table.clone(),
        unique: match (info, &row.sql) {
            (Some(info), _) => info.unique,
            // SQLite writes this prefix itself, whatever the user typed.
            (None, Some(sql)) => sql
                .get(..20)
                .is_some_and(|p| p.eq_ignore_ascii_case("CREATE UNIQUE INDEX ")),
            (None, None) => true,
        },
        parts,
        predicate: parsed.and_then(|p| p.predicate),
        origin,
        unparsed,
        sql: row.sql.clone(),
    }
}

/// Builds the view of a `view` row.
fn capture_view(row: &Row, parsed: Option<Statement>) -> View {
    let sql = row.sql.clone().unwrap_or_default();
    match parsed {
        Some(Statement::View(view)) => View {
            name: row.name.clone(),
            columns: view.columns,
            select: view.select,
            unparsed: None,
            sql,
        },
        _ => View {
            name: row.name.clone(),
            columns: Vec::new(),
            select: String::new(),
            unparsed: unparsed_text(row),
            sql,
        },
    }
}

/// Builds the trigger of a `trigger` row.
fn capture_trigger(row: &Row, parsed: Option<Statement>) -> Trigger {
    let sql = row.sql.clone().unwrap_or_default();
    match parsed {
        Some(Statement::Trigger(trigger)) => Trigger {
            name: row.name.clone(),
            table: row.table.clone(),
            timing: trigger.timing,
            event: trigger.event,
            when: trigger.when,
            body: trigger.body,
            unparsed: None,
            sql,
        },
        _ => Trigger {
            name: row.name.clone(),
            table: row.table.clone(),
            timing: super::model::Timing::Before,
            event: super::model::Event::Insert,
            when: None,
            body: String::new(),
            unparsed: unparsed_text(row),
            sql,
        },
    }
}

/// A WITHOUT ROWID table's primary key index is the table itself, so it
/// has no row in sqlite_schema; the PRAGMAs still describe it.
fn insert_implicit_primary_keys(
    conn: &Connection,
    index_list: &HashMap<(String, String), IndexListRow>,
    schema: &mut Schema,
) -> rusqlite::Result<()> {
    let mut implicit: Vec<(&(String, String), &IndexListRow)> = index_list
        .iter()
        .filter(|((table, index), info)| {
            info.origin == "pk"
                && schema.tables.contains_key(table)
                && !schema.indexes.contains_key(index)
        })
        .collect();
    implicit.sort_by(|a, b| a.0.cmp(b.0));
    for ((table, _), info) in implicit {
        let parts = read_one_index_columns(conn, &info.name)?
            .into_iter()
            .map(|column| IndexPart {
                target: IndexTarget::Column(column.name.unwrap_or_default()),
                collation: column.collation.as_deref().map(str::to_ascii_uppercase),
                descending: column.descending,
            })
            .collect();
        schema.insert_index(Index {
            name: info.name.clone(),
            table: schema.tables[table].name.clone(),
            unique: info.unique,
            parts,
            predicate: None,
            origin: IndexOrigin::PrimaryKey,
            unparsed: None,
            sql: None,
        });
    }
    Ok(())
}

/// What the PRAGMAs say that the parsed SQL cannot.
struct Pragmas {
    listed: HashMap<String, (String, bool, bool)>,
    index_list: HashMap<(String, String), IndexListRow>,
    /// Key columns of the indexes SQLite made for constraints.
    index_columns: HashMap<String, Vec<IndexColumnRow>>,
}

fn read_pragmas(conn: &Connection) -> rusqlite::Result<Pragmas> {
    Ok(Pragmas {
        listed: read_table_list(conn)?,
        index_list: read_index_list(conn)?,
        index_columns: read_constraint_index_columns(conn)?,
    })
}

/// What `table_xinfo`, `index_xinfo` and `foreign_key_list` would say,
/// derived from the parsed statements where they can answer for SQLite.
struct FromParse {
    /// Columns by folded table.
    columns: HashMap<String, Vec<ColumnRow>>,
    /// Key columns of `CREATE INDEX` indexes by folded index.
    index_columns: HashMap<String, Vec<IndexColumnRow>>,
    /// Foreign keys by folded table.
    foreign_keys: HashMap<String, Vec<ForeignKeyRow>>,
}

/// Preparing those PRAGMAs once per table and per index was most of a
/// capture's time, and the parse already knows the answers. What it cannot
/// tell (a table it could not read, `CREATE TABLE … AS SELECT`, a key term
/// that is not a plain column, an index on such a table) is still asked of
/// SQLite. The unit tests hold every derivation to the PRAGMAs' answers.
fn from_parse(
    conn: &Connection,
    rows: &[Row],
    statements: &[Option<Result<Statement, parse::ParseError>>],
) -> rusqlite::Result<FromParse> {
    let mut tables: HashMap<String, &ParsedTable> = HashMap::new();
    let mut out = FromParse {
        columns: HashMap::new(),
        index_columns: HashMap::new(),
        foreign_keys: HashMap::new(),
    };
    for (row, statement) in rows.iter().zip(statements) {
        if row.kind != "table" {
            continue;
        }
        let key = fold(&row.name);
        match statement {
            Some(Ok(Statement::Table(table))) => {
                match derived_columns(table) {
                    Some(derived) => {
                        out.columns.insert(key.clone(), derived);
                        tables.insert(key.clone(), table);
                    }
                    None => {
                        out.columns
                            .insert(key.clone(), read_one_table_columns(conn, &row.name)?);
                    }
                }
                let foreign_keys = match derived_foreign_keys(table) {
                    Some(derived) => derived,
                    None => read_one_table_foreign_keys(conn, &row.name)?,
                };
                out.foreign_keys.insert(key, foreign_keys);
            }
            // Virtual tables are read by `virtual_table`.
            Some(Ok(Statement::VirtualTable(_))) => {}
            _ if row
                .sql
                .as_deref()
                .is_some_and(|sql| sql.starts_with("CREATE VIRTUAL TABLE ")) => {}
            _ => {
                out.columns
                    .insert(key.clone(), read_one_table_columns(conn, &row.name)?);
                out.foreign_keys
                    .insert(key, read_one_table_foreign_keys(conn, &row.name)?);
            }
        }
    }
    for (row, statement) in rows.iter().zip(statements) {
        if row.kind != "index" || row.sql.is_none() {
            continue;
        }
        let derived = match statement {
            Some(Ok(Statement::Index(index))) => tables
                .get(&fold(&row.table))
                .map(|table| derived_index_columns(index, table)),
            _ => None,
        };
        let key_columns = match derived {
            Some(derived) => derived,
            None => read_one_index_columns(conn, &row.name)?,
        };
        out.index_columns.insert(fold(&row.name), key_columns);
    }
    Ok(out)
}

/// A parsed table's foreign keys as `foreign_key_list` gives them (the
/// table's spelling of its own columns; targets as written); `None` when a
/// referencing column is not one of the table's.
fn derived_foreign_keys(table: &ParsedTable) -> Option<Vec<ForeignKeyRow>> {
    let mut rows = Vec::new();
    for (id, key) in table.foreign_keys.iter().enumerate() {
        for (i, column) in key.columns.iter().enumerate() {
            let own = table.columns.iter().find(|c| same_name(&c.name, column))?;
            rows.push(ForeignKeyRow {
                id: id as i64,
                target: key.target_table.clone(),
                from: own.name.clone(),
                to: key.target_columns.get(i).cloned(),
                on_update: key.on_update.sql().to_owned(),
                on_delete: key.on_delete.sql().to_owned(),
            });
        }
    }
    Some(rows)
}

/// A parsed table's columns as `table_xinfo` gives them; `None` when the
/// parse cannot answer for SQLite.
fn derived_columns(table: &ParsedTable) -> Option<Vec<ColumnRow>> {
    if table.as_select || table.columns.is_empty() {
        return None;
    }
    let pk_terms = table
        .primary_key
        .as_ref()
        .map(|k| k.columns.as_slice())
        .unwrap_or_default();
    let position = |name: &str| pk_terms.iter().position(|term| same_name(term, name));
    // A key term that is not one of the columns (an expression, a COLLATE
    // spelled inside the list) is left to SQLite.
    if pk_terms
        .iter()
        .any(|term| !table.columns.iter().any(|c| same_name(&c.name, term)))
    {
        return None;
    }
    Some(
        table
            .columns
            .iter()
            .map(|c| {
                let pk = position(&c.name).map_or(0, |p| p as u32 + 1);
                ColumnRow {
                    name: c.name.clone(),
                    declared_type: c.declared_type.clone(),
                    // SQLite makes every primary key column of a WITHOUT
                    // ROWID table NOT NULL, and says so.
                    not_null: c.not_null || (table.without_rowid && pk > 0),
                    default: c.default.clone(),
                    pk,
                    hidden: match c.generated.as_ref().map(|g| g.storage) {
                        None => 0,
                        Some(Storage::Virtual) => 2,
                        Some(Storage::Stored) => 3,
                    },
                }
            })
            .collect(),
    )
}

/// A parsed index's key columns as `index_xinfo` gives them: the table's
/// spelling of each column, and the effective collation (the term's own,
/// else the column's, else BINARY).
fn derived_index_columns(index: &parse::ParsedIndex, table: &ParsedTable) -> Vec<IndexColumnRow> {
    index
        .terms
        .iter()
        .map(|term| {
            let column = term.column.as_deref().and_then(|name| {
                table
                    .columns
                    .iter()
                    .enumerate()
                    .find(|(_, c)| same_name(&c.name, name))
            });
            // SQLite cannot index the rowid, and reads a quoted name that is
            // no column as a string: anything but a column is an expression.
            let (cid, name, column_collation) = match column {
                Some((cid, c)) => (cid as i64, Some(c.name.clone()), c.collation.clone()),
                None => (-2, None, None),
            };
            IndexColumnRow {
                cid,
                name,
                descending: term.descending,
                collation: Some(
                    term.collation
                        .clone()
                        .or(column_collation)
                        .unwrap_or_else(|| "BINARY".to_owned()),
                ),
            }
        })
        .collect()
}

/// One table's columns, from SQLite.
fn read_one_table_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<ColumnRow>> {
    let mut stmt = conn.prepare(
        "SELECT name, type, \"notnull\", dflt_value, pk, hidden
         FROM pragma_table_xinfo(?1, 'main') ORDER BY cid",
    )?;
    stmt.query_map([table], |r| column_row(r, 0))?.collect()
}

fn object_kind(kind: &str) -> Option<ObjectKind> {
    Some(match kind {
        "table" => ObjectKind::Table,
        "index" => ObjectKind::Index,
        "view" => ObjectKind::View,
        "trigger" => ObjectKind::Trigger,
        _ => return None,
    })
}

/// Why a table (by folded name) is not schema, if it is not.
fn exclusion(key: &str, list_type: Option<&str>) -> Option<ExclusionReason> {
    if key.starts_with("sqlite_") {
        Some(ExclusionReason::Internal)
    } else if METADATA_TABLES.contains(&key) {
        Some(ExclusionReason::Metadata)
    } else if list_type == Some("shadow") {
        Some(ExclusionReason::Shadow)
    } else {
        None
    }
}

fn read_rows(conn: &Connection) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare("SELECT type, name, tbl_name, sql FROM main.sqlite_schema")?;
    stmt.query_map([], |row| {
        Ok(Row {
            kind: row.get(0)?,
            name: row.get(1)?,
            table: row.get(2)?,
            sql: row.get(3)?,
        })
    })?
    .collect()
}

/// `pragma_table_list` by folded name: type, WITHOUT ROWID, STRICT.
fn read_table_list(conn: &Connection) -> rusqlite::Result<HashMap<String, (String, bool, bool)>> {
    let mut stmt =
        conn.prepare("SELECT name, type, wr, strict FROM pragma_table_list WHERE schema = 'main'")?;
    stmt.query_map([], |row| {
        Ok((
            fold(&row.get::<_, String>(0)?),
            (row.get(1)?, row.get(2)?, row.get(3)?),
        ))
    })?
    .collect()
}

/// The PRAGMAs below are joined to the ordinary tables of `sqlite_schema`
/// (not to `pragma_table_list`, which costs as much again per use). Virtual
/// tables are left out because their module may be missing, which would
/// fail the whole statement; they are read one by one instead. SQLite writes
/// the `CREATE VIRTUAL TABLE` prefix itself, so the test is exact.
const PLAIN_TABLES: &str = "SELECT name FROM main.sqlite_schema \
     WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL TABLE %'";

/// Runs `stmt` and groups its rows by the folded name in column 0, each
/// group ordered by the integer in column 1 (a `cid` or `seqno`);
/// `read` reads the rest of a row from column 2 on. One joined query per
/// PRAGMA instead of one PRAGMA call per object is most of the capture's
/// speed.
fn grouped<T>(
    stmt: &mut rusqlite::Statement<'_>,
    read: impl Fn(&rusqlite::Row<'_>, usize) -> rusqlite::Result<T>,
) -> rusqlite::Result<HashMap<String, Vec<T>>> {
    let mut out: HashMap<String, Vec<(i64, T)>> = HashMap::new();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        out.entry(fold(row.get_ref(0)?.as_str()?))
            .or_default()
            .push((row.get(1)?, read(row, 2)?));
    }
    Ok(out
        .into_iter()
        .map(|(name, mut items)| {
            items.sort_by_key(|(order, _)| *order);
            (name, items.into_iter().map(|(_, item)| item).collect())
        })
        .collect())
}

fn column_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ColumnRow> {
    Ok(ColumnRow {
        name: row.get(first)?,
        declared_type: row.get::<_, Option<String>>(first + 1)?.unwrap_or_default(),
        not_null: row.get(first + 2)?,
        default: row.get(first + 3)?,
        pk: row.get(first + 4)?,
        hidden: row.get(first + 5)?,
    })
}

/// `pragma_index_list` by (folded table, folded index), for the tables
/// that have constraint indexes.
fn read_index_list(conn: &Connection) -> rusqlite::Result<HashMap<(String, String), IndexListRow>> {
    // Only tables with a constraint index ask: that is all this PRAGMA tells
    // that sqlite_schema does not (a created index's row has its SQL, which
    // says UNIQUE or not). A WITHOUT ROWID table's primary key index has no
    // row at all, so those tables ask too.
    let mut stmt = conn.prepare(&format!(
        "SELECT t.name, i.name, i.\"unique\", i.origin
         FROM ({PLAIN_TABLES} AND (sql LIKE '%WITHOUT%ROWID%' OR name IN
               (SELECT tbl_name FROM main.sqlite_schema WHERE type = 'index' AND sql IS NULL))) AS t
         JOIN pragma_index_list(t.name, 'main') AS i"
    ))?;
    stmt.query_map([], |row| {
        Ok((
            (
                fold(&row.get::<_, String>(0)?),
                fold(&row.get::<_, String>(1)?),
            ),
            IndexListRow {
                name: row.get(1)?,
                unique: row.get(2)?,
                origin: row.get(3)?,
            },
        ))
    })?
    .collect()
}

/// Key columns of the indexes SQLite made for PRIMARY KEY and UNIQUE
/// constraints (their `sqlite_schema` row has no SQL), by folded index
/// name, in key order.
fn read_constraint_index_columns(
    conn: &Connection,
) -> rusqlite::Result<HashMap<String, Vec<IndexColumnRow>>> {
    let mut stmt = conn.prepare(
        "SELECT s.name, x.seqno, x.cid, x.name, x.\"desc\", x.coll
         FROM main.sqlite_schema AS s JOIN pragma_index_xinfo(s.name, 'main') AS x
         WHERE s.type = 'index' AND s.sql IS NULL AND x.key",
    )?;
    grouped(&mut stmt, index_column_row)
}

/// Key columns of one index, in key order.
fn read_one_index_columns(conn: &Connection, index: &str) -> rusqlite::Result<Vec<IndexColumnRow>> {
    let mut stmt = conn.prepare(
        "SELECT cid, name, \"desc\", coll FROM pragma_index_xinfo(?1, 'main')
         WHERE key ORDER BY seqno",
    )?;
    stmt.query_map([index], |row| index_column_row(row, 0))?
        .collect()
}

fn index_column_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<IndexColumnRow> {
    Ok(IndexColumnRow {
        cid: row.get(first)?,
        name: row.get(first + 1)?,
        descending: row.get(first + 2)?,
        collation: row.get(first + 3)?,
    })
}

/// One table's `foreign_key_list` rows, by id then seq.
fn read_one_table_foreign_keys(
    conn: &Connection,
    table: &str,
) -> rusqlite::Result<Vec<ForeignKeyRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete
         FROM pragma_foreign_key_list(?1, 'main') ORDER BY id, seq",
    )?;
    stmt.query_map([table], |row| {
        Ok(ForeignKeyRow {
            id: row.get(0)?,
            target: row.get(1)?,
            from: row.get(2)?,
            to: row.get(3)?,
            on_update: row.get(4)?,
            on_delete: row.get(5)?,
        })
    })?
    .collect()
}

/// `ABORT` is what SQLite does anyway.
fn conflict(conflict: Option<Conflict>) -> Option<Conflict> {
    conflict.filter(|c| *c != Conflict::Abort)
}

/// A default as `PRAGMA table_xinfo` gives it (the text as written, without
/// the parentheses of `DEFAULT (…)`), normalised.
fn normalise_default(text: &str) -> String {
    match lex::tokenize(text) {
        Ok(tokens) => lex::normalise(text, lex::strip_outer_parens(text, &tokens)),
        Err(_) => text.to_owned(),
    }
}

fn columns_equal(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_name(x, y))
}

fn build_table(
    row: &Row,
    parsed: Option<&ParsedTable>,
    column_rows: Vec<ColumnRow>,
    fk_rows: Vec<ForeignKeyRow>,
    unique_indexes: &[String],
    index_columns: &HashMap<String, Vec<IndexColumnRow>>,
) -> Table {
    let parsed_column =
        |name: &str| parsed.and_then(|p| p.columns.iter().find(|c| same_name(&c.name, name)));
    let mut pk_columns: Vec<(u32, String)> = Vec::new();
    let columns = column_rows
        .into_iter()
        .map(|c| {
            let declared = parsed_column(&c.name);
            if c.pk > 0 {
                pk_columns.push((c.pk, c.name.clone()));
            }
            let generated = match c.hidden {
                2 | 3 => Some(Generated {
                    expression: declared
                        .and_then(|d| d.generated.as_ref())
                        .map(|g| g.expression.clone())
                        .unwrap_or_default(),
                    storage: if c.hidden == 3 {
                        Storage::Stored
                    } else {
                        Storage::Virtual
                    },
                }),
                _ => None,
            };
            Column {
                declared_type: normalise_type(&c.declared_type),
                not_null: c.not_null,
                not_null_on_conflict: conflict(declared.and_then(|d| d.not_null_on_conflict))
                    .filter(|_| c.not_null),
                default: c.default.as_deref().map(normalise_default),
                primary_key: (c.pk > 0).then_some(c.pk),
                generated,
                hidden: c.hidden == 1,
                collation: declared
                    .and_then(|d| d.collation.as_deref())
                    .map(str::to_ascii_uppercase)
                    .filter(|c| c != "BINARY"),
                name: c.name,
            }
        })
        .collect();
    pk_columns.sort();
    let primary_key = (!pk_columns.is_empty()).then(|| {
        let declared = parsed.and_then(|p| p.primary_key.as_ref());
        PrimaryKey {
            name: declared.and_then(|d| d.name.clone()),
            columns: pk_columns.into_iter().map(|(_, name)| name).collect(),
            on_conflict: conflict(declared.and_then(|d| d.on_conflict)),
        }
    });

    let uniques = table_uniques(parsed, unique_indexes, index_columns);
    let foreign_keys = table_foreign_keys(parsed, fk_rows);

    Table {
        name: row.name.clone(),
        columns,
        primary_key,
        uniques,
        checks: parsed.map(|p| p.checks.clone()).unwrap_or_default(),
        foreign_keys,
        options: TableOptions {
            autoincrement: parsed.is_some_and(|p| p.autoincrement),
            ..TableOptions::default()
        },
        virtual_table: None,
        unparsed: None,
        sql: row.sql.clone(),
    }
}

/// UNIQUE constraints are the indexes SQLite made for them; a constraint
/// that repeats another's columns got no index of its own.
fn table_uniques(
    parsed: Option<&ParsedTable>,
    unique_indexes: &[String],
    index_columns: &HashMap<String, Vec<IndexColumnRow>>,
) -> Vec<Unique> {
    unique_indexes
        .iter()
        .map(|index| {
            let columns: Vec<String> = index_columns
                .get(index)
                .map(|cols| cols.iter().filter_map(|c| c.name.clone()).collect())
                .unwrap_or_default();
            let declared = parsed.and_then(|p| {
                let mut matching = p
                    .uniques
                    .iter()
                    .filter(|u| columns_equal(&u.columns, &columns));
                let first = matching.clone().next();
                matching.find(|u| u.name.is_some()).or(first)
            });
            Unique {
                name: declared.and_then(|d| d.name.clone()),
                columns,
                on_conflict: conflict(declared.and_then(|d| d.on_conflict)),
            }
        })
        .collect()
}

/// The foreign keys of `foreign_key_list` rows (one row per column), with
/// what only the parse knows (names, deferrability).
fn table_foreign_keys(
    parsed: Option<&ParsedTable>,
    fk_rows: Vec<ForeignKeyRow>,
) -> Vec<super::model::ForeignKey> {
    let mut foreign_keys = Vec::new();
    let mut fk_rows = fk_rows.into_iter().peekable();
    while let Some(first) = fk_rows.next() {
        let mut columns = vec![first.from.clone()];
        let mut targets = vec![first.to.clone()];
        while let Some(next) = fk_rows.next_if(|r| r.id == first.id) {
            columns.push(next.from);
            targets.push(next.to);
        }
        let target_columns: Vec<String> = targets.into_iter().flatten().collect();
        let declared = parsed.and_then(|p| {
            p.foreign_keys.iter().find(|fk| {
                columns_equal(&fk.columns, &columns)
                    && same_name(&fk.target_table, &first.target)
                    && columns_equal(&fk.target_columns, &target_columns)
            })
        });
        // SQLite defers a foreign key only for DEFERRABLE INITIALLY DEFERRED;
        // every other clause means immediate, the same as none.
        let deferred = declared.is_some_and(|d| d.deferrable && d.initially_deferred);
        foreign_keys.push(super::model::ForeignKey {
            name: declared.and_then(|d| d.name.clone()),
            columns,
            target_table: first.target,
            target_columns,
            on_delete: Action::from_sql(&first.on_delete).unwrap_or(Action::NoAction),
            on_update: Action::from_sql(&first.on_update).unwrap_or(Action::NoAction),
            deferrable: deferred,
            initially_deferred: deferred,
        });
    }
    foreign_keys
}

/// A virtual table; its columns come from its module, which may be missing
/// from this build of SQLite.
fn virtual_table(
    conn: &Connection,
    row: &Row,
    parsed: parse::ParsedVirtualTable,
    findings: &mut Vec<Finding>,
) -> Table {
    let columns = conn
        .prepare(
            "SELECT name, type, \"notnull\", dflt_value, pk, hidden
             FROM pragma_table_xinfo(?1, 'main') ORDER BY cid",
        )
        .and_then(|mut stmt| {
            stmt.query_map([&row.name], |r| column_row(r, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        });
    let columns = match columns {
        Ok(columns) => columns
            .into_iter()
            .map(|c| Column {
                hidden: c.hidden == 1,
                ..Column::new(c.name, normalise_type(&c.declared_type))
            })
            .collect(),
        Err(error) => {
            findings.push(Finding::new(
                codes::UNKNOWN_MODULE,
                Severity::Info,
                row.name.clone(),
                format!(
                    "the columns of virtual table '{}' (module '{}') are unknown: {error}",
                    row.name, parsed.module
                ),
            ));
            Vec::new()
        }
    };
    Table {
        virtual_table: Some(VirtualTable {
            module: parsed.module,
            arguments: parsed.arguments,
        }),
        sql: row.sql.clone(),
        ..Table::new(row.name.clone(), columns)
    }
}

/// Writes bare the `"double-quoted"` names that SQLite reads as columns in
/// a table's CHECKs and generated columns and in its indexes' expressions and
/// `WHERE`s, so `CHECK ("qty" > 0)` and `CHECK (qty > 0)` are one
/// constraint. A quoted name that matches no column of the table is a string
/// literal to SQLite (<https://sqlite.org/quirks.html#dblquote>) and stays
/// quoted. Views and triggers keep theirs: their scope is a whole query.
fn unquote_columns(schema: &mut Schema) {
    fn unquote(text: &mut String, columns: &HashSet<String>) {
        if !text.contains('"') {
            return;
        }
        if let Ok(tokens) = lex::tokenize(text) {
            *text = lex::normalise_with(text, &tokens, &|name| columns.contains(&fold(name)));
        }
    }
    let mut scopes: HashMap<String, HashSet<String>> = HashMap::new();
    for (key, table) in &mut schema.tables {
        let columns: HashSet<String> = table.columns.iter().map(|c| fold(&c.name)).collect();
        for check in &mut table.checks {
            unquote(&mut check.expression, &columns);
        }
        for generated in table
            .columns
            .iter_mut()
            .filter_map(|c| c.generated.as_mut())
        {
            unquote(&mut generated.expression, &columns);
        }
        scopes.insert(key.clone(), columns);
    }
    for index in schema.indexes.values_mut() {
        let Some(columns) = scopes.get(&fold(&index.table)) else {
            continue;
        };
        for part in &mut index.parts {
            if let IndexTarget::Expression(expression) = &mut part.target {
                unquote(expression, columns);
            }
        }
        if let Some(predicate) = &mut index.predicate {
            unquote(predicate, columns);
        }
    }
}

/// Spells references to tables and columns the way their definitions do,
/// since SQLite matches them case-insensitively (`REFERENCES USERS(ID)`
/// points at `users(id)`).
fn resolve_references(schema: &mut Schema) {
    // The spelling of `names` in `table`, or `None` when it already agrees
    // (the common case, which then costs no allocation).
    fn respelled(table: &Table, names: &[String]) -> Option<Vec<String>> {
        fn spelled<'a>(table: &'a Table, name: &'a String) -> &'a String {
            table.column(name).map_or(name, |c| &c.name)
        }
        let spelled = |name| spelled(table, name);
        names
            .iter()
            .any(|name| spelled(name) != name)
            .then(|| names.iter().map(|name| spelled(name).clone()).collect())
    }
    let mut foreign_keys = Vec::new();
    for (key, table) in &schema.tables {
        for (position, fk) in table.foreign_keys.iter().enumerate() {
            if let Some(target) = schema.table(&fk.target_table) {
                let columns = respelled(target, &fk.target_columns);
                if target.name != fk.target_table || columns.is_some() {
                    foreign_keys.push((key.clone(), position, target.name.clone(), columns));
                }
            }
        }
    }
    for (key, position, name, columns) in foreign_keys {
        if let Some(fk) = schema
            .tables
            .get_mut(&key)
            .and_then(|t| t.foreign_keys.get_mut(position))
        {
            fk.target_table = name;
            if let Some(columns) = columns {
                fk.target_columns = columns;
            }
        }
    }
    let tables = &schema.tables;
    for trigger in schema.triggers.values_mut() {
        if let Some(table) = tables.get(&fold(&trigger.table)) {
            trigger.table.clone_from(&table.name);
            if let super::model::Event::Update { columns } = &mut trigger.event
                && let Some(spelled) = respelled(table, columns)
            {
                *columns = spelled;
            }
        }
    }
    for index in schema.indexes.values_mut() {
        if let Some(table) = tables.get(&fold(&index.table))
            && table.name != index.table
        {
            index.table.clone_from(&table.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture_sql(sql: &str) -> Captured {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        capture(&tx).unwrap()
    }

    /// Holds the columns and index keys derived from the parse to what
    /// `table_xinfo` and `index_xinfo` say about the same statements.
    #[track_caller]
    fn assert_parse_agrees_with_pragmas(sql: &str) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        let rows = read_rows(&conn).unwrap();
        let statements: Vec<_> = rows
            .iter()
            .map(|row| row.sql.as_deref().map(|sql| parse::parse(&row.name, sql)))
            .collect();
        let mut tables = HashMap::new();
        for (row, statement) in rows.iter().zip(&statements) {
            let Some(Ok(Statement::Table(table))) = statement else {
                continue;
            };
            let Some(derived) = derived_columns(table) else {
                continue;
            };
            tables.insert(fold(&row.name), table.clone());
            // Foreign keys: the same set of (id-grouped) rows, in any order.
            type Key = (String, String, Option<String>, String, String);
            let keys = |rows: Vec<ForeignKeyRow>| {
                let mut grouped: Vec<Vec<Key>> = Vec::new();
                let mut last = None;
                for r in rows {
                    if last != Some(r.id) {
                        grouped.push(Vec::new());
                        last = Some(r.id);
                    }
                    grouped.last_mut().unwrap().push((
                        r.target,
                        r.from,
                        r.to,
                        r.on_update,
                        r.on_delete,
                    ));
                }
                grouped.sort();
                grouped
            };
            if let Some(derived) = derived_foreign_keys(table) {
                let asked = read_one_table_foreign_keys(&conn, &row.name).unwrap();
                assert_eq!(keys(derived), keys(asked), "foreign keys of {sql}");
            }
            let asked = read_one_table_columns(&conn, &row.name).unwrap();
            assert_eq!(derived.len(), asked.len(), "{sql}");
            for (d, a) in derived.iter().zip(&asked) {
                let context = format!("column {} of {sql}", a.name);
                assert_eq!(d.name, a.name, "{context}");
                assert_eq!(
                    normalise_type(&d.declared_type),
                    normalise_type(&a.declared_type),
                    "{context}"
                );
                assert_eq!(d.not_null, a.not_null, "not null: {context}");
                assert_eq!(
                    d.default.as_deref().map(normalise_default),
                    a.default.as_deref().map(normalise_default),
                    "default: {context}"
                );
                assert_eq!(d.pk, a.pk, "pk: {context}");
                assert_eq!(d.hidden, a.hidden, "hidden: {context}");
            }
        }
        for (row, statement) in rows.iter().zip(&statements) {
            let Some(Ok(Statement::Index(index))) = statement else {
                continue;
            };
            let Some(table) = tables.get(&fold(&row.table)) else {
                continue;
            };
            let derived = derived_index_columns(index, table);
            let asked = read_one_index_columns(&conn, &row.name).unwrap();
            assert_eq!(derived.len(), asked.len(), "{sql}");
            for (d, a) in derived.iter().zip(&asked) {
                let context = format!("index {} of {sql}", row.name);
                assert_eq!(d.cid, a.cid, "cid: {context}");
                assert_eq!(d.name, a.name, "name: {context}");
                assert_eq!(d.descending, a.descending, "desc: {context}");
                assert_eq!(
                    d.collation.as_deref().map(str::to_ascii_uppercase),
                    a.collation.as_deref().map(str::to_ascii_uppercase),
                    "collation: {context}"
                );
            }
        }
    }

    #[test]
    fn columns_and_index_keys_from_the_parse_match_the_pragmas() {
        for sql in [
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE,
               created_at INTEGER DEFAULT (strftime('%s','now')), score REAL CHECK (score >= 0),
               body JSON, flag INTEGER NOT NULL DEFAULT 0);
             CREATE INDEX t_name ON t(name);
             CREATE INDEX t_created ON t(created_at DESC) WHERE flag = 1;",
            "CREATE TABLE \"Odd Name\" (\"a b\" VARCHAR ( 20 ) COLLATE nocase, [c] numeric(10, 2) DEFAULT -1.5,
               `d` unsigned big int DEFAULT 'x''y', e DEFAULT (1 + 2) NOT NULL, f, PRIMARY KEY (f, \"a b\"));
             CREATE UNIQUE INDEX odd_idx ON \"Odd Name\"(\"A B\" COLLATE binary DESC, lower(c), e COLLATE rtrim);",
            "CREATE TABLE w (k TEXT NOT NULL, v BLOB, PRIMARY KEY (k DESC)) WITHOUT ROWID;
             CREATE TABLE s (a INTEGER, b TEXT, c ANY) STRICT;
             CREATE INDEX s_ab ON s(a, (b));",
            "CREATE TABLE g (a INT, b INT GENERATED ALWAYS AS (a * 2) VIRTUAL,
               c TEXT AS (upper(cast(a AS TEXT))) STORED, d INT AS (a + 1));
             CREATE INDEX g_b ON g(b);",
            "CREATE TABLE p (x, y, CONSTRAINT pk PRIMARY KEY (y, x) ON CONFLICT REPLACE, UNIQUE (x));
             CREATE TABLE q (id INTEGER PRIMARY KEY AUTOINCREMENT, p_x REFERENCES p(x), t TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
             CREATE INDEX q_expr ON q(id + 1, t COLLATE nocase);",
            "CREATE TABLE n (\"select\" TEXT, \"from\" INT DEFAULT (- 3), \"quote\"\"d\" int);
             CREATE INDEX n_sel ON n(\"select\", \"quote\"\"d\");",
            "CREATE TABLE parent (a INT, b INT, PRIMARY KEY (a, b));
             CREATE TABLE child (id INTEGER PRIMARY KEY, pa INT REFERENCES parent ON DELETE CASCADE,
               Pb INT, x INT CONSTRAINT fx REFERENCES \"Parent\"(A) ON UPDATE SET NULL DEFERRABLE INITIALLY DEFERRED,
               FOREIGN KEY (PA, pb) REFERENCES parent (a, b) ON DELETE RESTRICT ON UPDATE NO ACTION,
               FOREIGN KEY (x) REFERENCES missing_table (y) ON DELETE SET DEFAULT);",
        ] {
            assert_parse_agrees_with_pragmas(sql);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        #[test]
        fn random_columns_from_the_parse_match_the_pragmas(
            columns in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "", "INTEGER", "int", "TEXT", "varchar(255)", "VARCHAR ( 20 )", "numeric(10, 2)",
                        "unsigned big int", "double precision", "BLOB", "REAL", "BOOLEAN", "datetime",
                    ]),
                    proptest::sample::select(vec![
                        "", " NOT NULL", " NULL", " DEFAULT 0", " DEFAULT -1", " DEFAULT 'a b'",
                        " DEFAULT (1 + 2)", " DEFAULT CURRENT_TIMESTAMP", " DEFAULT (lower('X'))",
                        " COLLATE NOCASE", " NOT NULL DEFAULT ''", " UNIQUE", " CHECK (1)",
                        " COLLATE rtrim NOT NULL", " DEFAULT x'00'", " DEFAULT +5", " DEFAULT 1.5e3",
                    ]),
                ),
                1..8,
            ),
            pk_len in 0usize..3,
            without_rowid in proptest::bool::ANY,
            index_terms in proptest::collection::vec(
                (0usize..8, proptest::sample::select(vec!["", " DESC", " COLLATE NOCASE", " COLLATE binary ASC"])),
                1..4,
            ),
        ) {
            let names: Vec<String> = (0..columns.len()).map(|i| format!("c{i}")).collect();
            let mut defs: Vec<String> = columns
                .iter()
                .zip(&names)
                .map(|((ty, constraint), name)| format!("{name} {ty}{constraint}"))
                .collect();
            let pk_len = pk_len.min(names.len());
            let without_rowid = without_rowid && pk_len > 0;
            if pk_len > 0 {
                defs.push(format!("PRIMARY KEY ({})", names[..pk_len].join(", ")));
            }
            let terms: Vec<String> = index_terms
                .iter()
                .map(|(i, suffix)| format!("{}{suffix}", names[i % names.len()]))
                .collect();
            let sql = format!(
                "CREATE TABLE r ({}){}; CREATE INDEX r_i ON r({});",
                defs.join(", "),
                if without_rowid { " WITHOUT ROWID" } else { "" },
                terms.join(", ")
            );
            let conn = Connection::open_in_memory().unwrap();
            // Some combinations are not SQL (a duplicate index term is);
            // only those SQLite accepts are compared.
            if conn.execute_batch(&sql).is_ok() {
                assert_parse_agrees_with_pragmas(&sql);
            }
        }
    }

    #[test]
    fn reads_tables_from_pragmas_and_parser() {
        let schema = capture_sql(
            "CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, email varchar(255) NOT NULL COLLATE nocase,
                                CONSTRAINT email_uq UNIQUE (email));
             CREATE TABLE posts(id INTEGER, author INT CONSTRAINT fk_author REFERENCES USERS(ID) ON DELETE CASCADE,
                                body TEXT DEFAULT ('') CHECK (length(body) < 10000),
                                words INT AS (length(body)) STORED,
                                PRIMARY KEY (id, author)) WITHOUT ROWID, STRICT;",
        )
        .schema;
        let users = schema.table("users").unwrap();
        assert!(users.options.autoincrement);
        assert_eq!(users.columns[1].declared_type, "VARCHAR(255)");
        assert_eq!(users.columns[1].collation.as_deref(), Some("NOCASE"));
        assert!(users.columns[1].not_null);
        assert_eq!(users.uniques[0].name.as_deref(), Some("email_uq"));
        assert_eq!(users.uniques[0].columns, ["email"]);
        assert_eq!(users.primary_key.as_ref().unwrap().columns, ["id"]);

        let posts = schema.table("posts").unwrap();
        assert!(posts.options.without_rowid && posts.options.strict);
        assert_eq!(
            posts.primary_key.as_ref().unwrap().columns,
            ["id", "author"]
        );
        assert_eq!(posts.columns[1].primary_key, Some(2));
        assert_eq!(posts.columns[2].default.as_deref(), Some("''"));
        assert_eq!(posts.checks[0].expression, "length(body) < 10000");
        assert_eq!(
            posts.columns[3].generated,
            Some(Generated {
                expression: "length(body)".into(),
                storage: Storage::Stored
            })
        );
        let fk = &posts.foreign_keys[0];
        assert_eq!(fk.name.as_deref(), Some("fk_author"));
        // Spelled as the target defines them.
        assert_eq!(
            (fk.target_table.as_str(), fk.target_columns.as_slice()),
            ("users", &["id".to_owned()][..])
        );
        assert_eq!(fk.on_delete, Action::Cascade);

        let origins: Vec<_> = schema
            .indexes
            .values()
            .map(|i| (i.name.as_str(), i.origin))
            .collect();
        // The WITHOUT ROWID key has no sqlite_schema row but is described.
        assert_eq!(
            origins,
            [
                ("sqlite_autoindex_posts_1", IndexOrigin::PrimaryKey),
                ("sqlite_autoindex_users_1", IndexOrigin::UniqueConstraint),
            ]
        );
        assert_eq!(schema.indexes["sqlite_autoindex_posts_1"].parts.len(), 2);
    }

    #[test]
    fn reads_indexes_views_and_triggers() {
        let schema = capture_sql(
            "CREATE TABLE t(a TEXT COLLATE NOCASE, b INT);
             CREATE UNIQUE INDEX i ON t(lower(a) COLLATE rtrim DESC, b, a COLLATE binary) WHERE b > 0;
             CREATE VIEW v(x) AS SELECT a FROM t;
             CREATE TRIGGER tr BEFORE UPDATE OF B ON T BEGIN SELECT 1; END;",
        )
        .schema;
        let index = &schema.indexes["i"];
        assert!(index.unique);
        assert_eq!(index.origin, IndexOrigin::Created);
        assert_eq!(index.predicate.as_deref(), Some("b > 0"));
        assert_eq!(
            index.parts,
            [
                IndexPart {
                    target: IndexTarget::Expression("lower(a) COLLATE RTRIM".into()),
                    collation: Some("RTRIM".into()),
                    descending: true
                },
                IndexPart {
                    target: IndexTarget::Column("b".into()),
                    collation: Some("BINARY".into()),
                    descending: false
                },
                IndexPart {
                    target: IndexTarget::Column("a".into()),
                    collation: Some("BINARY".into()),
                    descending: false
                },
            ]
        );
        assert_eq!(schema.views["v"].columns, ["x"]);
        assert_eq!(schema.views["v"].select, "SELECT a FROM t");
        let trigger = &schema.triggers["tr"];
        assert_eq!(trigger.table, "t");
        assert_eq!(
            trigger.event,
            super::super::model::Event::Update {
                columns: vec!["b".into()]
            }
        );
        assert_eq!(trigger.body, "SELECT 1;");
    }

    #[test]
    fn keeps_metadata_internal_and_shadow_tables_out() {
        let captured = capture_sql(
            "CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
             CREATE TABLE migratehistory(id INTEGER PRIMARY KEY, name TEXT);
             CREATE TRIGGER mh AFTER INSERT ON migratehistory BEGIN SELECT 1; END;
             CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT);
             INSERT INTO t(body) VALUES ('x');
             CREATE INDEX t_body ON t(body);
             ANALYZE;
             CREATE VIRTUAL TABLE docs USING fts5(body);",
        );
        let schema = &captured.schema;
        assert_eq!(schema.tables.keys().collect::<Vec<_>>(), ["docs", "t"]);
        assert_eq!(schema.indexes.keys().collect::<Vec<_>>(), ["t_body"]);
        assert!(schema.triggers.is_empty());
        let excluded: Vec<_> = schema
            .excluded
            .iter()
            .map(|e| (e.kind, e.name.as_str(), e.reason))
            .collect();
        use ExclusionReason::*;
        assert_eq!(
            excluded,
            [
                (ObjectKind::Table, "alembic_version", Metadata),
                (ObjectKind::Table, "docs_config", Shadow),
                (ObjectKind::Table, "docs_content", Shadow),
                (ObjectKind::Table, "docs_data", Shadow),
                (ObjectKind::Table, "docs_docsize", Shadow),
                (ObjectKind::Table, "docs_idx", Shadow),
                (ObjectKind::Table, "migratehistory", Metadata),
                (ObjectKind::Table, "sqlite_sequence", Internal),
                (ObjectKind::Table, "sqlite_stat1", Internal),
                (ObjectKind::Table, "sqlite_stat4", Internal),
                (
                    ObjectKind::Index,
                    "sqlite_autoindex_alembic_version_1",
                    Metadata
                ),
                (ObjectKind::Trigger, "mh", Metadata),
            ]
        );
        let docs = schema.table("docs").unwrap();
        assert_eq!(docs.virtual_table.as_ref().unwrap().module, "fts5");
        assert_eq!(docs.columns[0].name, "body");
        assert!(captured.findings.is_empty(), "{:?}", captured.findings);
        assert!(schema.has_table("alembic_version"));
    }

    #[test]
    fn reports_artefacts_and_unreadable_statements() {
        let captured = capture_sql(
            "CREATE TABLE users(id INTEGER PRIMARY KEY);
             CREATE TABLE _alembic_tmp_users(id INTEGER PRIMARY KEY, email TEXT);",
        );
        assert_eq!(captured.findings.len(), 1);
        assert_eq!(captured.findings[0].code, codes::ALEMBIC_TMP);
        // The artefact is still schema: it is reported, not hidden.
        assert!(captured.schema.table("_alembic_tmp_users").is_some());
    }

    #[test]
    fn survives_broken_views_and_missing_modules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t(a);
             CREATE VIEW v AS SELECT * FROM gone;
             PRAGMA writable_schema = ON;
             INSERT INTO sqlite_schema(type, name, tbl_name, rootpage, sql)
             VALUES ('table', 'x', 'x', 0, 'CREATE VIRTUAL TABLE x USING nosuch(a, b)');",
        )
        .unwrap();
        drop(conn);
        let conn = Connection::open(&path).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        let captured = capture(&tx).unwrap();
        let x = captured.schema.table("x").unwrap();
        assert_eq!(x.virtual_table.as_ref().unwrap().module, "nosuch");
        assert!(x.columns.is_empty());
        assert_eq!(captured.schema.views["v"].select, "SELECT * FROM gone");
        let codes: Vec<_> = captured.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, [codes::UNKNOWN_MODULE]);
    }

    #[test]
    fn keeps_going_when_a_statement_does_not_parse() {
        // SQLite accepts a block comment left open at the end of its input;
        // the tokenizer does not. Only a hand-edited schema has one.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t(a INTEGER NOT NULL, b TEXT DEFAULT 'x' CHECK (b != ''));
             PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = sql || ' /* open' WHERE name = 't';",
        )
        .unwrap();
        drop(conn);
        let conn = Connection::open(&path).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        let captured = capture(&tx).unwrap();
        let t = captured.schema.table("t").unwrap();
        // What the PRAGMAs tell is there; the CHECK stands in the text.
        assert!(t.columns[0].not_null);
        assert_eq!(t.columns[1].default.as_deref(), Some("'x'"));
        assert!(t.checks.is_empty());
        assert!(t.unparsed.as_deref().unwrap().contains("CHECK"));
        assert_eq!(captured.findings[0].code, codes::UNPARSED);
        assert!(captured.findings[0].message.contains("'t'"));
        // It renders as its exact text, comment closed, and recreates.
        let script = captured.schema.to_sql();
        assert!(script.ends_with("/* open */;\n"), "{script}");
        let fresh = Connection::open_in_memory().unwrap();
        fresh.execute_batch(&script).unwrap();
        assert_eq!(
            capture(&fresh)
                .unwrap()
                .schema
                .table("t")
                .unwrap()
                .columns
                .len(),
            2
        );
    }

    #[test]
    fn double_quoted_names_are_columns_only_when_sqlite_reads_them_so() {
        let quoted = capture_sql(
            "CREATE TABLE t(\"qty\" INT CHECK (\"qty\" > 0), status TEXT CHECK (status != \"gone\"),
                            twice INT AS (\"qty\" * 2));
             CREATE INDEX i ON t(\"qty\" + 1) WHERE \"status\" IS NOT NULL;",
        )
        .schema;
        let plain = capture_sql(
            "CREATE TABLE t(qty INT CHECK (qty > 0), status TEXT CHECK (status != \"gone\"),
                            twice INT AS (qty * 2));
             CREATE INDEX i ON t(qty + 1) WHERE status IS NOT NULL;",
        )
        .schema;
        assert_eq!(quoted.semantic_hash(), plain.semantic_hash());
        let checks: Vec<_> = quoted.tables["t"]
            .checks
            .iter()
            .map(|c| c.expression.as_str())
            .collect();
        // "gone" matches no column: SQLite reads it as the string 'gone'.
        assert_eq!(checks, ["qty > 0", "status != \"gone\""]);
        assert_eq!(
            quoted.indexes["i"].predicate.as_deref(),
            Some("status IS NOT NULL")
        );
        // And it still means that when recreated.
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&quoted.to_sql()).unwrap();
        conn.execute("INSERT INTO t(qty, status) VALUES (1, 'here')", [])
            .unwrap();
        assert!(
            conn.execute("INSERT INTO t(qty, status) VALUES (1, 'gone')", [])
                .is_err()
        );
    }
}
