//! Writing `alembic_version`: the verified stamp. The rows are written only
//! after the live schema was found to match the reference of the revisions
//! they name (the caller checks), on a copy of the database that then
//! replaces it (see [`crate::restore::rewrite`]).

use std::path::Path;

use rusqlite::Connection;

/// The table Alembic creates on first use (`alembic/runtime/migration.py`,
/// `version_num VARCHAR(32)` with a named primary key).
const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS alembic_version (\
     version_num VARCHAR(32) NOT NULL, \
     CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))";

/// Replaces the rows of `alembic_version` in the database at `path` with
/// `revisions`, in one transaction, and reads them back.
pub fn write_versions(path: &Path, revisions: &[String]) -> rusqlite::Result<Vec<String>> {
    let mut conn = Connection::open(path)?;
    let tx = conn.transaction()?;
    tx.execute_batch(CREATE_VERSION_TABLE)?;
    tx.execute("DELETE FROM alembic_version", [])?;
    for revision in revisions {
        tx.execute(
            "INSERT INTO alembic_version (version_num) VALUES (?1)",
            [revision],
        )?;
    }
    let written: Vec<String> = tx
        .prepare("SELECT version_num FROM alembic_version ORDER BY version_num")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    tx.commit()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_rows_as_a_set_and_creates_the_table_as_alembic_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let written = write_versions(&path, &["b2".into(), "a1".into()]).unwrap();
        assert_eq!(written, ["a1", "b2"]);
        let written = write_versions(&path, &["c3".into()]).unwrap();
        assert_eq!(written, ["c3"]);
        let conn = Connection::open(&path).unwrap();
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'alembic_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains("alembic_version_pkc"), "{sql}");
    }
}
