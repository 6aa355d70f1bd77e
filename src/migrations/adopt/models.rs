//! Adopt from the models (`adopt --from-models --tables …`): a new
//! revision on the head that creates what the SQLAlchemy models declare for
//! the named tables and no migration creates yet: whole tables, columns,
//! their indexes, UNIQUE constraints and foreign keys.
//!
//! Invariants:
//! - Only the named tables, so one feature's revision does not drag in
//!   another feature's changes (the "autogenerate touched other features"
//!   symptom).
//! - It only adds. Columns the models declare otherwise, or no longer
//!   declare, are left as they are and listed (`not_changed`): changing or
//!   dropping them is a decision about data.
//! - A `NOT NULL` column without a default added to an existing table is
//!   refused: rows that exist have no value for it, and which value they get
//!   is a person's decision (a `server_default` or a backfill).
//! - The file is kept only when replaying it with real Alembic makes
//!   exactly the planned schema; otherwise it is removed again.

use std::path::PathBuf;

use migsnap_store::ObjectId;
use serde::Serialize;

use crate::migrations::history::graph::Graph;
use crate::migrations::history::project::Project;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::replay::{Chain, ModelsSource, ReplayEvent, Replayer};
use crate::repo::Repo;
use crate::schema::Schema;
use crate::schema::alembic;
use crate::schema::diff::{self, SchemaDiff};
use crate::schema::model::{Table, same_name};

use super::revision::Draft;
use super::{AdoptError, destination};

/// What to adopt from the models.
#[derive(Clone, Debug)]
pub struct ModelsAdoptRequest<'a> {
    /// The tables whose model declarations to adopt (one feature's).
    pub tables: &'a [String],
    /// The revision's message (its docstring and file name).
    pub message: &'a str,
    /// Render the revision without writing it.
    pub dry_run: bool,
}

/// What `adopt --from-models` did. Serialized, it is its JSON.
#[derive(Clone, Debug, Serialize)]
pub struct ModelsAdoptReport {
    /// The new revision's id.
    pub revision: RevisionId,
    /// Its parent: the head it was written onto.
    pub down_revision: RevisionId,
    /// The revision file (written unless a dry run).
    pub path: PathBuf,
    /// Whether the file was made from the project's `script.py.mako`.
    pub project_template: bool,
    /// The tables named.
    pub tables: Vec<String>,
    /// What the revision creates, against the head's reference.
    pub adopted: SchemaDiff,
    /// Columns of the named tables that the models declare otherwise or
    /// not at all, left as the migrations make them (`table.column`).
    pub not_changed: Vec<String>,
    /// The file's text.
    pub source: String,
    /// Whether the file is on disk now.
    pub written: bool,
    /// The new revision's reference, built by replaying the file to verify
    /// it; `None` for a dry run.
    pub reference: Option<ObjectId>,
}

/// Writes a revision on the single head of `graph` that creates what the
/// models declare for `request.tables` and no migration creates, verified
/// by replaying it. `on_event` hears of each replay step.
pub fn adopt_models(
    repo: &mut Repo,
    project: &Project,
    graph: &Graph,
    chain: &Chain,
    request: &ModelsAdoptRequest<'_>,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<ModelsAdoptReport, AdoptError> {
    let (head, versions) = destination(project, graph)?;
    let replayer = Replayer::new(project, graph, chain.clone());
    let (Some(source), Some(outcome)) = (replayer.models_source(), replayer.models(repo)?) else {
        return Err(AdoptError::NoModels);
    };
    if let Some(failure) = outcome.failure {
        return Err(AdoptError::ModelsNotLoaded {
            source_name: match source {
                ModelsSource::EnvPy => "target_metadata in env.py".to_owned(),
                ModelsSource::Attribute(attribute) => attribute,
            },
            error: failure.error,
        });
    }
    let models = replayer
        .cached_models(repo)?
        .expect("holds: the models reference was just built")
        .schema(repo)?;
    let targets = [head.clone()];
    let (built, replayed) = replayer.reference(repo, &targets, on_event)?;
    let Some(reference) = built else {
        return Err(AdoptError::Reference {
            head,
            failure: Box::new(
                replayed
                    .failure
                    .expect("holds: no reference means a failed step"),
            ),
        });
    };
    let reference = reference.schema(repo)?;
    let planned = plan(&reference, &models, request.tables)?;
    let adopted = diff::diff(&reference, &planned.target);
    if adopted.changes.iter().all(|c| c.meaning.is_form()) {
        return Err(AdoptError::NothingFromModels {
            tables: request.tables.to_vec(),
            head,
        });
    }
    let operations = alembic::operations(&reference, &planned.target);
    let draft = Draft::render(
        project,
        graph,
        &head,
        &versions,
        request.message,
        &operations,
        request.tables.join("\0").as_bytes(),
    )?;
    let mut report = ModelsAdoptReport {
        revision: draft.revision.clone(),
        down_revision: head,
        path: draft.path.clone(),
        project_template: draft.project_template,
        tables: request.tables.to_vec(),
        adopted,
        not_changed: planned.not_changed,
        source: draft.source.clone(),
        written: false,
        reference: None,
    };
    if request.dry_run {
        return Ok(report);
    }
    draft.write()?;
    report.written = true;
    report.reference = Some(verify(
        repo,
        project,
        chain,
        &draft,
        &planned.target,
        on_event,
    )?);
    Ok(report)
}

/// Replays the written revision and checks that its reference is the
/// planned schema; removes the file when it is not (or when the replay
/// fails), so nothing is left behind.
fn verify(
    repo: &mut Repo,
    project: &Project,
    chain: &Chain,
    draft: &Draft,
    target: &Schema,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<ObjectId, AdoptError> {
    let checked = (|| {
        let graph = project.load_graph()?;
        let replayer = Replayer::new(project, &graph, chain.clone());
        let targets = [draft.revision.clone()];
        let (built, replayed) = replayer.reference(repo, &targets, on_event)?;
        let Some(reference) = built else {
            return Err(AdoptError::Reference {
                head: draft.revision.clone(),
                failure: Box::new(
                    replayed
                        .failure
                        .expect("holds: no reference means a failed step"),
                ),
            });
        };
        let drift = diff::diff(target, &reference.schema(repo)?);
        let unexpected: Vec<_> = drift
            .changes
            .into_iter()
            .filter(|c| !c.meaning.is_form())
            .collect();
        if !unexpected.is_empty() {
            return Err(AdoptError::ModelsNotReached {
                revision: draft.revision.clone(),
                path: draft.path.clone(),
                drift: SchemaDiff {
                    changes: unexpected,
                },
            });
        }
        Ok(reference.id)
    })();
    if checked.is_err() {
        draft.remove();
    }
    checked
}

/// The schema the new revision makes, and what it leaves alone.
struct Planned {
    target: Schema,
    not_changed: Vec<String>,
}

/// The head's `reference` with what `models` declare for `tables` added:
/// missing tables whole, missing columns, and the indexes, UNIQUE
/// constraints and foreign keys the reference lacks.
fn plan(reference: &Schema, models: &Schema, tables: &[String]) -> Result<Planned, AdoptError> {
    let mut target = reference.clone();
    let mut not_changed = Vec::new();
    for name in tables {
        let Some(declared) = models.table(name) else {
            return Err(AdoptError::NotInModels {
                table: name.clone(),
            });
        };
        let merged = match reference.table(name) {
            None => declared.clone(),
            Some(existing) => {
                not_changed.extend(unchanged_columns(existing, declared));
                extended(existing, declared)?
            }
        };
        target.insert_table(merged);
        for index in models.indexes_on(&declared.name) {
            if !reference
                .indexes
                .values()
                .any(|i| same_name(&i.name, &index.name))
            {
                target.insert_index(index.clone());
            }
        }
    }
    Ok(Planned {
        target,
        not_changed,
    })
}

/// `existing` with the columns, UNIQUE constraints and foreign keys of
/// `declared` that it lacks; refused for a `NOT NULL` column without a
/// default, which rows that exist cannot get.
fn extended(existing: &Table, declared: &Table) -> Result<Table, AdoptError> {
    let mut table = existing.clone();
    for column in declared.columns_not_in(existing) {
        if column.not_null && column.default.is_none() && column.generated.is_none() {
            return Err(AdoptError::NotNullWithoutDefault {
                table: existing.name.clone(),
                column: column.name.clone(),
            });
        }
        table.columns.push(column.clone());
    }
    for unique in &declared.uniques {
        if !table.uniques.contains(unique) {
            table.uniques.push(unique.clone());
        }
    }
    for key in &declared.foreign_keys {
        if !table.foreign_keys.contains(key) {
            table.foreign_keys.push(key.clone());
        }
    }
    Ok(table)
}

/// The columns of `existing` that `declared` lacks or declares otherwise,
/// as `table.column`.
fn unchanged_columns(existing: &Table, declared: &Table) -> Vec<String> {
    existing
        .columns
        .iter()
        .filter(|column| match declared.column(&column.name) {
            None => true,
            Some(other) => {
                other.declared_type != column.declared_type || other.not_null != column.not_null
            }
        })
        .map(|column| format!("{}.{}", existing.name, column.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::drift::schema_of;

    #[test]
    fn only_the_named_tables_gain_only_what_they_lack() {
        let reference = schema_of(
            "CREATE TABLE user (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, legacy TEXT);
             CREATE TABLE chat (id INTEGER PRIMARY KEY);",
        );
        let models = schema_of(
            "CREATE TABLE user (id INTEGER PRIMARY KEY, name VARCHAR(80) NOT NULL, nickname VARCHAR(30));
             CREATE INDEX ix_user_nickname ON user (nickname);
             CREATE TABLE chat (id INTEGER PRIMARY KEY, title TEXT);
             CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
        );
        let planned = plan(&reference, &models, &["user".to_owned(), "note".to_owned()]).unwrap();
        let mut changes: Vec<String> = diff::diff(&reference, &planned.target)
            .changes
            .iter()
            .filter(|c| !c.meaning.is_form())
            .map(|c| format!("{:?} {} {}", c.op, c.kind.name(), c.name))
            .collect();
        changes.sort();
        assert_eq!(
            changes,
            [
                "Added column nickname",
                "Added index ix_user_nickname",
                "Added table note"
            ]
        );
        assert_eq!(planned.not_changed, ["user.name", "user.legacy"]);
        // chat was not named: its model's title is not adopted.
        assert!(
            planned
                .target
                .table("chat")
                .unwrap()
                .column("title")
                .is_none()
        );
    }

    #[test]
    fn a_not_null_column_without_default_and_an_unknown_table_are_refused() {
        let reference = schema_of("CREATE TABLE user (id INTEGER PRIMARY KEY);");
        let models = schema_of("CREATE TABLE user (id INTEGER PRIMARY KEY, age INTEGER NOT NULL);");
        assert!(matches!(
            plan(&reference, &models, &["user".to_owned()]),
            Err(AdoptError::NotNullWithoutDefault { ref column, .. }) if column == "age"
        ));
        assert!(matches!(
            plan(&reference, &models, &["nope".to_owned()]),
            Err(AdoptError::NotInModels { .. })
        ));
        let defaulted = schema_of(
            "CREATE TABLE user (id INTEGER PRIMARY KEY, age INTEGER NOT NULL DEFAULT 0);",
        );
        assert!(plan(&reference, &defaulted, &["user".to_owned()]).is_ok());
    }
}
