//! Plain SQL migration folders, applied by migsnap itself.
//!
//! Two layouts are read, as the common tools write them:
//! `0001_name.sql` (with an optional `0001_name.down.sql`), and
//! `0001_name/up.sql` with `0001_name/down.sql`. The number orders the
//! migrations and is the revision id; the history is the line of them in
//! numeric order. A database records how far it is with
//! `PRAGMA user_version`, set to the number of the last migration applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::data_steps;
use super::graph::{self, Revision};
use crate::finding::{Finding, Severity};

/// One migration of a folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlMigration {
    /// Its number.
    pub number: u64,
    /// The number as written, which is the revision id.
    pub id: String,
    /// The name after the number.
    pub name: String,
    /// The file to apply.
    pub up: PathBuf,
    /// The file that undoes it, if any.
    pub down: Option<PathBuf>,
}

/// The migrations of `dir`, in order, with findings for files that look
/// like migrations but cannot be ordered.
pub fn scan(dir: &Path) -> std::io::Result<(Vec<SqlMigration>, Vec<Finding>)> {
    let mut by_number: BTreeMap<u64, Vec<SqlMigration>> = BTreeMap::new();
    let mut downs: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut findings = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let (stem, up, down) = if entry.file_type()?.is_dir() {
            let up = path.join("up.sql");
            if !up.is_file() {
                continue;
            }
            let down = path.join("down.sql");
            (name.clone(), up, down.is_file().then_some(down))
        } else if let Some(stem) = name.strip_suffix(".down.sql") {
            if let Some((number, _, _)) = split(stem) {
                downs.insert(number, path);
            }
            continue;
        } else if let Some(stem) = name.strip_suffix(".up.sql").or(name.strip_suffix(".sql")) {
            (stem.to_owned(), path, None)
        } else {
            continue;
        };
        let Some((number, id, rest)) = split(&stem) else {
            findings.push(
                Finding::new(
                    graph::codes::UNREADABLE,
                    Severity::Warning,
                    &name,
                    format!(
                        "{}: no leading number, so it has no place in the order",
                        up.display()
                    ),
                )
                .file(&up)
                .hint("name migrations 0001_name.sql, 0002_name.sql, …"),
            );
            continue;
        };
        by_number.entry(number).or_default().push(SqlMigration {
            number,
            id: id.to_owned(),
            name: rest.to_owned(),
            up,
            down,
        });
    }
    let mut migrations = Vec::new();
    for (number, mut same) in by_number {
        let mut first = same.remove(0);
        for duplicate in same {
            findings.push(
                Finding::new(
                    graph::codes::DUPLICATE_ID,
                    Severity::Error,
                    &duplicate.id,
                    format!(
                        "{} and {} both have number {number}",
                        first.up.display(),
                        duplicate.up.display()
                    ),
                )
                .revision(&duplicate.id)
                .file(&duplicate.up)
                .hint("renumber one of them"),
            );
        }
        if first.down.is_none() {
            first.down = downs.remove(&number);
        }
        migrations.push(first);
    }
    Ok((migrations, findings))
}

/// The revisions of `dir`, each the child of the one before.
pub fn read(dir: &Path) -> std::io::Result<(Vec<Revision>, Vec<Finding>)> {
    let (migrations, findings) = scan(dir)?;
    let mut revisions: Vec<Revision> = Vec::with_capacity(migrations.len());
    for migration in migrations {
        let bytes = std::fs::read(&migration.up)?;
        revisions.push(Revision {
            parents: revisions.last().map(|r| r.id.clone()).into_iter().collect(),
            id: migration.id.into(),
            depends_on: Vec::new(),
            branch_labels: Vec::new(),
            path: migration.up,
            file_hash: graph::file_hash(&bytes),
            message: Some(migration.name.replace('_', " ")),
            data_steps: data_steps::scan_sql(&String::from_utf8_lossy(&bytes)),
        });
    }
    Ok((revisions, findings))
}

/// Splits `0012_add_users` into (12, "0012", "add_users").
fn split(stem: &str) -> Option<(u64, &str, &str)> {
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (id, rest) = stem.split_at(digits);
    let number = id.parse().ok()?;
    Some((number, id, rest.trim_start_matches(['_', '-', '.'])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_layouts_in_numeric_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0002_posts.sql"), "CREATE TABLE posts(id);").unwrap();
        std::fs::write(dir.path().join("0002_posts.down.sql"), "DROP TABLE posts;").unwrap();
        std::fs::write(dir.path().join("10_tags.sql"), "CREATE TABLE tags(id);").unwrap();
        std::fs::create_dir(dir.path().join("0001_users")).unwrap();
        std::fs::write(
            dir.path().join("0001_users/up.sql"),
            "CREATE TABLE users(id);",
        )
        .unwrap();
        std::fs::write(dir.path().join("0001_users/down.sql"), "DROP TABLE users;").unwrap();
        std::fs::write(dir.path().join("README.md"), "notes").unwrap();
        std::fs::write(dir.path().join("seed.sql"), "INSERT INTO users VALUES (1);").unwrap();

        let (revisions, findings) = read(dir.path()).unwrap();
        let ids: Vec<_> = revisions.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["0001", "0002", "10"]);
        assert_eq!(revisions[2].parents, ["0002"]);
        assert!(revisions[0].parents.is_empty());
        assert!(revisions.iter().all(|r| r.data_steps.is_empty()));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].code, graph::codes::UNREADABLE);

        let (migrations, _) = scan(dir.path()).unwrap();
        assert!(
            migrations[1]
                .down
                .as_ref()
                .unwrap()
                .ends_with("0002_posts.down.sql")
        );
        assert!(
            migrations[0]
                .down
                .as_ref()
                .unwrap()
                .ends_with("0001_users/down.sql")
        );
    }

    #[test]
    fn a_migration_that_moves_rows_has_data_steps() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001_a.sql"), "CREATE TABLE a(id);").unwrap();
        std::fs::write(
            dir.path().join("0002_b.sql"),
            "CREATE TABLE b(id);\n-- copy the rows\nINSERT INTO b SELECT id FROM a;",
        )
        .unwrap();
        let (revisions, _) = read(dir.path()).unwrap();
        assert!(revisions[0].data_steps.is_empty());
        let lines: Vec<usize> = revisions[1].data_steps.iter().map(|s| s.line).collect();
        assert_eq!(lines, [3]);
    }

    #[test]
    fn reports_duplicate_numbers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001_a.sql"), "").unwrap();
        std::fs::write(dir.path().join("0001_b.sql"), "").unwrap();
        let (revisions, findings) = read(dir.path()).unwrap();
        assert_eq!(revisions.len(), 1);
        assert_eq!(findings[0].code, graph::codes::DUPLICATE_ID);
    }
}
