//! Findings: facts about a schema worth a person's attention, each with a
//! stable code that scripts can match on.
//!
//! The schema capture reports migration artefacts here rather than hiding
//! them: a leftover `_alembic_tmp_*` table, or a table rebuild (create the
//! new table, copy, drop the old one, rename) that stopped halfway.
//!
//! Those are guesses from names alone. A table the reference schema of the
//! stamped revisions has is part of the schema, never an artefact (a
//! migration may keep `config_old` on purpose): whoever has the reference
//! drops those findings with [`forget_artefacts`]. Without it the guess
//! stands, so its hint never says to drop anything before checking.

pub use crate::finding::{Finding, Severity};

use super::model::{Schema, fold};

/// The stable finding codes.
pub mod codes {
    /// A `_alembic_tmp_<table>` table: the copy Alembic's batch mode builds
    /// on SQLite, left behind by a migration that failed midway.
    pub const ALEMBIC_TMP: &str = "artefact.alembic-tmp";
    /// A table next to its rebuild copy (`new_x`, `x_new`, `_x_old`, …).
    pub const HALF_REBUILT: &str = "artefact.half-rebuilt";
    /// A `CREATE` statement the parser could not read; the parts only the
    /// parser supplies are missing from the model.
    pub const UNPARSED: &str = "capture.unparsed";
    /// A virtual table whose module this build of SQLite lacks: its columns
    /// are unknown.
    pub const UNKNOWN_MODULE: &str = "capture.unknown-module";

    /// Every code the capture can emit.
    pub const ALL: &[&str] = &[ALEMBIC_TMP, HALF_REBUILT, UNPARSED, UNKNOWN_MODULE];
    /// The codes that are guesses from table names alone.
    pub const ARTEFACTS: &[&str] = &[ALEMBIC_TMP, HALF_REBUILT];
}

/// Drops from `findings` the artefact findings about tables `in_reference`
/// says the reference has: those tables are part of the schema.
pub fn forget_artefacts(findings: &mut Vec<Finding>, in_reference: impl Fn(&str) -> bool) {
    findings.retain(|f| !(codes::ARTEFACTS.contains(&f.code) && in_reference(&f.object)));
}

/// The prefix Alembic's batch mode gives its copy of a table
/// (`alembic/operations/batch.py`, `_alembic_tmp_%s`).
const ALEMBIC_TMP_PREFIX: &str = "_alembic_tmp_";

/// The original a rebuild-copy name would belong to, for the naming habits of
/// common tools: SQLite's documented procedure and Prisma (`new_x`), Django
/// (`new__x`), sqlite-utils and hand-written scripts (`x_new`, `x_old`,
/// `_x_old`).
fn rebuild_original(key: &str) -> impl Iterator<Item = &str> {
    [
        key.strip_prefix("new__"),
        key.strip_prefix("new_"),
        key.strip_suffix("_new"),
        key.strip_prefix('_').and_then(|k| k.strip_suffix("_old")),
        key.strip_suffix("_old"),
    ]
    .into_iter()
    .flatten()
    .filter(|original| !original.is_empty())
}

impl Schema {
    /// Migration artefacts in this schema, in table-name order.
    pub fn artefacts(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (key, table) in &self.tables {
            if let Some(original) = key.strip_prefix(ALEMBIC_TMP_PREFIX) {
                let original_name = table
                    .name
                    .get(ALEMBIC_TMP_PREFIX.len()..)
                    .unwrap_or(original);
                findings.push(match self.tables.get(original) {
                    Some(_) => Finding::new(codes::ALEMBIC_TMP, Severity::Warning, table.name.clone(), format!(
                            "table '{}' is a leftover copy from an Alembic batch migration of '{original_name}'",
                            table.name
                        )).hint(format!(
                            "a batch migration of '{original_name}' may have stopped midway: check \
                             with `migsnap status` that the schema matches the revision in \
                             alembic_version and that '{}' holds nothing you need; only then drop \
                             it, after a snapshot",
                            table.name
                        )),
                    None => Finding::new(codes::ALEMBIC_TMP, Severity::Error, table.name.clone(), format!(
                            "table '{}' holds the data of '{original_name}', which is missing: an \
                             Alembic batch migration dropped it but never renamed the copy",
                            table.name
                        )).hint(format!(
                            "rename '{}' to '{original_name}' once its rows look right, or restore a \
                             snapshot from before the migration",
                            table.name
                        )),
                });
                continue;
            }
            let Some(original) = rebuild_original(key).find(|o| self.tables.contains_key(*o))
            else {
                continue;
            };
            let original_name = &self.tables[&fold(original)].name;
            findings.push(Finding::new(codes::HALF_REBUILT, Severity::Warning, table.name.clone(), format!(
                    "tables '{original_name}' and '{}' both exist: a table rebuild may have stopped midway",
                    table.name
                )).hint(format!(
                    "if a migration keeps '{}' on purpose, it is schema, not an artefact (`migsnap \
                     status` checks against the migrations' reference); otherwise compare the \
                     columns and rows of both before changing either, and take a snapshot first",
                    table.name
                )));
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::model::{Column, Table};

    fn schema(tables: &[&str]) -> Schema {
        let mut schema = Schema::default();
        for name in tables {
            schema.insert_table(Table::new(*name, vec![Column::new("a", "")]));
        }
        schema
    }

    #[test]
    fn flags_alembic_leftovers_by_whether_the_original_survives() {
        let findings = schema(&["users", "_alembic_tmp_users", "_alembic_tmp_Orders"]).artefacts();
        let summary: Vec<_> = findings
            .iter()
            .map(|f| (f.code, f.severity, f.object.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (codes::ALEMBIC_TMP, Severity::Error, "_alembic_tmp_Orders"),
                (codes::ALEMBIC_TMP, Severity::Warning, "_alembic_tmp_users"),
            ]
        );
        assert!(findings[0].message.contains("'Orders', which is missing"));
    }

    #[test]
    fn flags_half_rebuilt_tables_only_next_to_their_original() {
        let findings = schema(&[
            "Users",
            "new_users",
            "posts",
            "posts_new",
            "tags",
            "_tags_old",
            "orders_old",
            "new__items",
            "items",
            "new_",
            "_old",
        ])
        .artefacts();
        let summary: Vec<_> = findings
            .iter()
            .map(|f| (f.code, f.object.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (codes::HALF_REBUILT, "_tags_old"),
                (codes::HALF_REBUILT, "new__items"),
                (codes::HALF_REBUILT, "new_users"),
                (codes::HALF_REBUILT, "posts_new"),
            ]
        );
        assert!(findings[2].message.contains("'Users' and 'new_users'"));
        assert!(schema(&["orders", "orders_history"]).artefacts().is_empty());
        assert!(findings.iter().all(|f| {
            let hint = f.hint.as_deref().unwrap_or_default();
            !hint.contains("drop the other") && hint.contains("before")
        }));
    }

    #[test]
    fn tables_the_reference_has_are_not_artefacts() {
        let mut findings =
            schema(&["config", "config_old", "users", "_alembic_tmp_users"]).artefacts();
        assert_eq!(findings.len(), 2);
        forget_artefacts(&mut findings, |table| table == "config_old");
        let left: Vec<_> = findings.iter().map(|f| f.object.as_str()).collect();
        assert_eq!(left, ["_alembic_tmp_users"]);
    }
}
