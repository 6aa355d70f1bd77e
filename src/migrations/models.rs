//! The application's models against its migrations: do the migrations
//! create what the SQLAlchemy models declare?
//!
//! The models reference (see [`crate::migrations::replay::ModelsReference`])
//! is compared with the reference of the history's heads, not with a live
//! database: the question is whether the migrations keep up with the
//! models. A column the models declare that no migration creates makes the
//! application fail with "no such column"; a column the migrations create
//! that the models no longer declare lingers in every database. Tables and
//! columns only, and differences of form (column order) do not count.

use migsnap_store::ObjectId;
use serde::Serialize;

use std::collections::BTreeSet;

use crate::finding::{Finding, Severity};
use crate::migrations::history::graph::{Graph, Revision};
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::replay::runner::StepFailure;
use crate::migrations::replay::{ReplayError, ReplayEvent, Replayer};
use crate::repo::Repo;
use crate::schema::Schema;
use crate::schema::diff::{self, ChangeKind, Op, SchemaDiff};
use crate::schema::model::{Column, fold};

/// The stable finding codes of the models comparison.
pub mod codes {
    /// The models declare a table or column no migration creates (error:
    /// the application fails with "no such column").
    pub const MISSING_IN_MIGRATIONS: &str = "models.missing-in-migrations";
    /// The migrations create a table or column the models do not declare
    /// (warning: stale, or not yet removed by a migration).
    pub const MISSING_IN_MODELS: &str = "models.missing-in-models";
    /// A column both declare, with another nullability or type (warning
    /// when nullability or SQLite's type affinity differs: inserts the
    /// models allow fail, or values are stored otherwise; info when only
    /// the type's spelling differs).
    pub const COLUMN_DIFFERS: &str = "models.column-differs";
    /// The models could not be compared: loading them failed, or the
    /// reference of the heads could not be built.
    pub const NOT_COMPARED: &str = "models.not-compared";

    /// Every code of the models comparison.
    pub const ALL: &[&str] = &[
        MISSING_IN_MIGRATIONS,
        MISSING_IN_MODELS,
        COLUMN_DIFFERS,
        NOT_COMPARED,
    ];
}

/// A table, or a column of one, that one side has and the other lacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelField {
    /// The table, as written.
    pub table: String,
    /// The column, as written; `None` for a whole table.
    pub column: Option<String>,
    /// The column's declared type, as the side that has it declares it.
    #[serde(rename = "type")]
    pub declared_type: Option<String>,
}

impl ModelField {
    /// `table.column TYPE`, or `table` for a whole table.
    pub fn describe(&self) -> String {
        match (&self.column, &self.declared_type) {
            (Some(column), Some(t)) if !t.is_empty() => format!("{}.{column} {t}", self.table),
            (Some(column), _) => format!("{}.{column}", self.table),
            (None, _) => format!("{} (table)", self.table),
        }
    }
}

/// A column as one side declares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColumnShape {
    /// The declared type.
    #[serde(rename = "type")]
    pub declared_type: String,
    /// Whether it is `NOT NULL`.
    pub not_null: bool,
}

impl ColumnShape {
    fn of(column: &Column) -> ColumnShape {
        ColumnShape {
            declared_type: column.declared_type.clone(),
            not_null: column.not_null,
        }
    }

    /// `VARCHAR(50) NOT NULL`, or the type alone when nullable.
    pub fn describe(&self) -> String {
        let null = if self.not_null { " NOT NULL" } else { "" };
        format!("{}{null}", self.declared_type)
    }
}

/// A column both sides declare, with another type or nullability.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColumnDifference {
    /// The table, as the models write it.
    pub table: String,
    /// The column, as the models write it.
    pub column: String,
    /// As the migrations create it.
    pub migrations: ColumnShape,
    /// As the models declare it.
    pub models: ColumnShape,
}

impl ColumnDifference {
    /// `table.column: VARCHAR(50) NOT NULL in the migrations, VARCHAR(50) in the models`.
    pub fn describe(&self) -> String {
        format!(
            "{}.{}: {} in the migrations, {} in the models",
            self.table,
            self.column,
            self.migrations.describe(),
            self.models.describe()
        )
    }

    /// Whether the difference changes what the database accepts or how it
    /// stores values, not only how the type is spelt.
    pub fn matters(&self) -> bool {
        self.migrations.not_null != self.models.not_null
            || affinity(&self.migrations.declared_type) != affinity(&self.models.declared_type)
    }
}

/// SQLite's type affinity of a declared type (the rules of "Datatypes In
/// SQLite", 3.1): what decides how a value is stored, whatever the
/// spelling. The models and the migrations are both built on SQLite.
fn affinity(declared: &str) -> &'static str {
    let upper = declared.to_ascii_uppercase();
    if upper.contains("INT") {
        "INTEGER"
    } else if ["CHAR", "CLOB", "TEXT"].iter().any(|t| upper.contains(t)) {
        "TEXT"
    } else if upper.contains("BLOB") || upper.trim().is_empty() {
        "BLOB"
    } else if ["REAL", "FLOA", "DOUB"].iter().any(|t| upper.contains(t)) {
        "REAL"
    } else {
        "NUMERIC"
    }
}

/// How the models compare with the migrations' heads.
#[derive(Clone, Debug, Serialize)]
pub struct ModelsComparison {
    /// The models reference (`None` when the models could not be loaded).
    pub reference: Option<ObjectId>,
    /// The heads whose reference the models were compared with.
    pub heads: Vec<RevisionId>,
    /// That reference (`None` when there is no revision, or it could not
    /// be built).
    pub heads_reference: Option<ObjectId>,
    /// In the models, not in the migrations.
    pub missing_in_migrations: Vec<ModelField>,
    /// In the migrations, not in the models.
    pub missing_in_models: Vec<ModelField>,
    /// In both, declared otherwise.
    pub differing: Vec<ColumnDifference>,
    /// Why nothing was compared, if nothing was.
    pub failure: Option<StepFailure>,
}

impl ModelsComparison {
    /// The findings of the comparison.
    pub fn findings(&self) -> Vec<Finding> {
        let heads = self.heads.join(" + ");
        if let Some(failure) = &self.failure {
            return vec![
                Finding::new(
                    codes::NOT_COMPARED,
                    Severity::Error,
                    "models",
                    format!("the models could not be compared with the migrations: {}", failure.error),
                )
                .hint("`migsnap replay` loads the models with the project's Python and shows the whole error"),
            ];
        }
        let missing = self.missing_in_migrations.iter().map(|field| {
            Finding::new(
                codes::MISSING_IN_MIGRATIONS,
                Severity::Error,
                field.object(),
                format!(
                    "{} is in the models, but no migration up to {heads} creates it",
                    field.describe()
                ),
            )
            .hint(format!(
                "`migsnap fix` plans it: a revision written from the models (`migsnap adopt --from-models --tables {}`), then the upgrade",
                field.table
            ))
        });
        let stale = self.missing_in_models.iter().map(|field| {
            Finding::new(
                codes::MISSING_IN_MODELS,
                Severity::Warning,
                field.object(),
                format!(
                    "{} is created by the migrations up to {heads}, but the models do not declare it",
                    field.describe()
                ),
            )
            .hint("drop it in a new revision, or declare it in the models again")
        });
        let differing = self.differing.iter().map(|difference| {
            let severity = if difference.matters() {
                Severity::Warning
            } else {
                Severity::Info
            };
            Finding::new(
                codes::COLUMN_DIFFERS,
                severity,
                format!("{}.{}", difference.table, difference.column),
                difference.describe(),
            )
            .hint("alter it in a new revision (`alembic revision --autogenerate` with compare_type), or change the model")
        });
        missing.chain(stale).chain(differing).collect()
    }
}

impl ModelField {
    /// `table.column`, or `table`: the finding's object.
    fn object(&self) -> String {
        match &self.column {
            Some(column) => format!("{}.{column}", self.table),
            None => self.table.clone(),
        }
    }
}

/// Compares the project's models with the reference of its heads, building
/// either when it is not current. `None` when the project has no models.
pub fn compare(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<Option<ModelsComparison>, ReplayError> {
    let Some(outcome) = replayer.models(repo)? else {
        return Ok(None);
    };
    let heads = graph.heads();
    let mut comparison = ModelsComparison {
        reference: outcome.reference,
        heads: heads.clone(),
        heads_reference: None,
        missing_in_migrations: Vec::new(),
        missing_in_models: Vec::new(),
        differing: Vec::new(),
        failure: outcome.failure,
    };
    let Some(models) = replayer.cached_models(repo)? else {
        return Ok(Some(comparison));
    };
    let migrations = if heads.is_empty() {
        Schema::default()
    } else {
        let (reference, report) = replayer.reference(repo, &heads, on_event)?;
        match reference {
            Some(reference) => {
                comparison.heads_reference = Some(reference.id);
                reference.schema(repo)?
            }
            None => {
                comparison.failure = report.failure.map(|f| StepFailure {
                    error: format!(
                        "the reference for the heads could not be built: migration {} failed: {}",
                        f.revision, f.failure.error
                    ),
                    ..f.failure
                });
                return Ok(Some(comparison));
            }
        }
    };
    let models = models.schema(repo)?;
    let found = differences(&migrations, &models);
    comparison.missing_in_migrations = found.in_models;
    comparison.missing_in_models = found.in_migrations;
    comparison.differing = found.differing;
    Ok(Some(comparison))
}

/// `lint.beyond-models`: the tables a head revision's `effect` (from
/// `before`, its prerequisites' reference) touches although the models do
/// not differ from `before` there, such as another feature's tables that
/// autogenerate pulled in. Heads only, because the models describe the
/// newest state: an earlier revision may touch a table a later one undoes.
pub fn beyond_models(
    revision: &Revision,
    before: &Schema,
    effect: &SchemaDiff,
    models: &Schema,
) -> Option<Finding> {
    let involved = tables_of(&diff::diff(before, models));
    let beyond: Vec<String> = tables_of(effect)
        .into_iter()
        .filter(|table| !involved.contains(table))
        .collect();
    if beyond.is_empty() {
        return None;
    }
    Some(
        Finding::new(
            crate::migrations::lint::codes::BEYOND_MODELS,
            Severity::Warning,
            beyond.join(", "),
            format!(
                "{} changes {}, where the models need no change",
                revision.id,
                beyond.join(", ")
            ),
        )
        .revision(revision.id.as_str())
        .file(&revision.path)
        .hint("move those changes into the revision of the feature they belong to, or drop them from this one"),
    )
}

/// The tables (folded names) a diff changes by definition.
fn tables_of(changes: &SchemaDiff) -> BTreeSet<String> {
    changes
        .changes
        .iter()
        .filter(|c| !c.meaning.is_form() && !matches!(c.kind, ChangeKind::View))
        .map(|c| fold(c.table.as_deref().unwrap_or(&c.name)))
        .collect()
}

/// What the models and the migrations do not share.
struct Differences {
    /// Tables and columns only the models have.
    in_models: Vec<ModelField>,
    /// Tables and columns only the migrations have.
    in_migrations: Vec<ModelField>,
    /// Columns both have, declared otherwise.
    differing: Vec<ColumnDifference>,
}

/// The tables and columns `models` has and `migrations` lacks, the other
/// way round, and the columns both declare with another type or
/// nullability.
fn differences(migrations: &Schema, models: &Schema) -> Differences {
    let mut found = Differences {
        in_models: Vec::new(),
        in_migrations: Vec::new(),
        differing: Vec::new(),
    };
    let column = |schema: &Schema, table: &str, name: &str| -> Option<Column> {
        schema.table(table).and_then(|t| t.column(name)).cloned()
    };
    for change in diff::diff(migrations, models).changes {
        if change.meaning.is_form()
            || !matches!(change.kind, ChangeKind::Table | ChangeKind::Column)
        {
            continue;
        }
        let table = change.table.clone().unwrap_or_default();
        let (side, schema) = match change.op {
            Op::Added => (&mut found.in_models, models),
            Op::Removed => (&mut found.in_migrations, migrations),
            Op::Changed if change.kind == ChangeKind::Column => {
                let (Some(before), Some(after)) = (
                    column(migrations, &table, &change.name),
                    column(models, &table, &change.name),
                ) else {
                    continue;
                };
                let (before, after) = (ColumnShape::of(&before), ColumnShape::of(&after));
                if before != after {
                    found.differing.push(ColumnDifference {
                        table,
                        column: change.name,
                        migrations: before,
                        models: after,
                    });
                }
                continue;
            }
            Op::Changed => continue,
        };
        side.push(match change.kind {
            ChangeKind::Table => ModelField {
                table: change.name,
                column: None,
                declared_type: None,
            },
            _ => {
                let declared_type = column(schema, &table, &change.name).map(|c| c.declared_type);
                ModelField {
                    table,
                    column: Some(change.name),
                    declared_type,
                }
            }
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::drift::schema_of;

    #[test]
    fn columns_and_tables_on_one_side_only_are_named_with_their_types() {
        let migrations = schema_of(
            "CREATE TABLE user (id INTEGER PRIMARY KEY, legacy TEXT, name VARCHAR(50));
             CREATE TABLE old_feature (id INTEGER PRIMARY KEY);",
        );
        // Another column order is form, not a finding.
        let models = schema_of(
            "CREATE TABLE user (id INTEGER PRIMARY KEY, name VARCHAR(50), nickname VARCHAR(30));
             CREATE TABLE note (id INTEGER PRIMARY KEY);",
        );
        let found = differences(&migrations, &models);
        let (missing, stale) = (found.in_models, found.in_migrations);
        let names =
            |fields: &[ModelField]| fields.iter().map(ModelField::describe).collect::<Vec<_>>();
        assert_eq!(
            names(&missing),
            ["note (table)", "user.nickname VARCHAR(30)"]
        );
        assert_eq!(names(&stale), ["old_feature (table)", "user.legacy TEXT"]);
        let equal = schema_of("CREATE TABLE user (name VARCHAR(50), id INTEGER PRIMARY KEY);");
        let found = differences(
            &schema_of("CREATE TABLE user (id INTEGER PRIMARY KEY, name VARCHAR(50));"),
            &equal,
        );
        assert!(found.in_models.is_empty() && found.in_migrations.is_empty());
        assert!(found.differing.is_empty());
    }

    #[test]
    fn columns_declared_otherwise_are_named_and_weighed() {
        let migrations = schema_of(
            "CREATE TABLE user (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL,
                                 bio VARCHAR(200), score TEXT, ok BOOLEAN);",
        );
        let models = schema_of(
            "CREATE TABLE user (id INTEGER PRIMARY KEY, name VARCHAR(50),
                                 bio VARCHAR(500), score FLOAT, ok BOOLEAN);",
        );
        let found = differences(&migrations, &models);
        let shown: Vec<(String, bool)> = found
            .differing
            .iter()
            .map(|d| (d.describe(), d.matters()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "user.name: VARCHAR(50) NOT NULL in the migrations, VARCHAR(50) in the models"
                        .to_owned(),
                    true
                ),
                (
                    "user.bio: VARCHAR(200) in the migrations, VARCHAR(500) in the models"
                        .to_owned(),
                    false
                ),
                (
                    "user.score: TEXT in the migrations, FLOAT in the models".to_owned(),
                    true
                ),
            ]
        );
    }
}
