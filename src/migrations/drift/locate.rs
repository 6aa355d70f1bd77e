//! `locate`: which references a live database's schema matches, and which
//! differences are defects rather than extra objects or form.

use migsnap_store::ObjectId;
use serde::Serialize;

use crate::finding::{Finding, Severity};
use crate::migrations::history::graph::Graph;
use crate::migrations::history::revision_id::RevisionId;
use crate::migrations::replay::{ReplayError, ReplayEvent, ReplayFailure, Replayer};
use crate::repo::Repo;
use crate::schema::diff::{self, Change, ChangeKind, FieldChange, Op, SchemaDiff};
use crate::schema::field::{Field, names_of};
use crate::schema::model::{fold, same_name};
use crate::schema::{Schema, SchemaHash};
use crate::snapshots::snapshot::Recorded;

use super::accept::accepted;
use super::codes;

/// One candidate of `locate`.
#[derive(Clone, Debug, Serialize)]
pub struct LocateMatch {
    /// The revisions it is the reference for.
    pub targets: Vec<RevisionId>,
    /// The reference (or accepted variant) snapshot.
    pub snapshot: ObjectId,
    /// Whether `snapshot` is an accepted variant rather than the reference.
    pub accepted: bool,
    /// The difference from it to the database: empty for an exact match,
    /// only changes of form (order, names) for a match in form only.
    pub drift: SchemaDiff,
}

/// What `locate` found.
#[derive(Clone, Debug, Serialize)]
pub struct Located {
    /// The stamped revisions, as read.
    pub stamped: Option<Vec<RevisionId>>,
    /// References the schema matches, in history order: exactly, or when
    /// none does, in everything but form (column order, constraint names).
    pub exact: Vec<LocateMatch>,
    /// With no exact match: the reference with the smallest difference.
    pub nearest: Option<LocateMatch>,
    /// Why some references could not be built.
    pub replay_failure: Option<ReplayFailure>,
}

impl Located {
    /// Whether an exact match is the stamped revision set.
    pub fn stamped_matches(&self) -> bool {
        let Some(stamped) = &self.stamped else {
            return false;
        };
        let mut stamped = stamped.clone();
        stamped.sort();
        self.exact.iter().any(|c| {
            let mut targets = c.targets.clone();
            targets.sort();
            targets == stamped
        })
    }

    /// The verdict's input: a finding when the schema is not what the stamp
    /// says, naming what it does match and the verified fix.
    pub fn findings(&self, what: &str) -> Vec<Finding> {
        if self.stamped_matches() {
            return Vec::new();
        }
        let stamped = match &self.stamped {
            None => "no alembic_version table".to_owned(),
            Some(rows) if rows.is_empty() => "an empty alembic_version".to_owned(),
            Some(rows) => format!("alembic_version {}", rows.join(" + ")),
        };
        let finding = match (self.exact.first(), &self.nearest) {
            (Some(exact), _) => {
                let real = exact.targets.join(" ");
                Finding::new(
                    codes::STAMP_MISMATCH,
                    Severity::Error,
                    what,
                    format!(
                        "the schema is revision {}, but the database has {stamped}",
                        exact.targets.join(" + ")
                    ),
                )
                .hint(format!(
                    "`migsnap fix` records it and upgrades, so data migrations run (by hand: `migsnap stamp --verify {real}`, then the upgrade)"
                ))
            }
            (None, Some(nearest)) => Finding::new(
                codes::STAMP_MISMATCH,
                Severity::Error,
                what,
                format!(
                    "the schema matches no revision; nearest is {} ({} difference{}), and the database has {stamped}",
                    nearest.targets.join(" + "),
                    nearest.drift.changes.len(),
                    if nearest.drift.changes.len() == 1 { "" } else { "s" }
                ),
            )
            .hint(format!(
                "`migsnap fix` plans the way to {}: what to repair, and what to do with what is extra",
                nearest.targets.join(" + ")
            )),
            (None, None) => Finding::new(
                codes::STAMP_MISMATCH,
                Severity::Error,
                what,
                format!("no reference to compare with, and the database has {stamped}"),
            ),
        };
        vec![finding]
    }
}

/// Finds which revision(s) `schema` really matches, among every
/// revision's reference, the heads together, and accepted variants.
pub fn locate(
    repo: &mut Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    schema: &Schema,
    semantic: SchemaHash,
    stamped: Option<Vec<RevisionId>>,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
) -> Result<Located, ReplayError> {
    let report = replayer.replay_all(repo, on_event)?;
    let mut candidates: Vec<Vec<RevisionId>> =
        graph.topological().into_iter().map(|id| vec![id]).collect();
    let heads = graph.heads();
    if heads.len() > 1 {
        candidates.push(heads);
    }
    // A multi-row stamp has a reference of its own (heads that depend on
    // each other leave fewer rows than heads).
    if let Some(rows) = stamped.as_ref().filter(|r| r.len() > 1)
        && !candidates.contains(rows)
        && rows.iter().all(|r| graph.get(r).is_some())
    {
        replayer.reference(repo, rows, on_event)?;
        candidates.push(rows.clone());
    }
    let (exact, nearest) = matches(repo, replayer, candidates, schema, semantic)?;
    Ok(Located {
        stamped,
        nearest,
        exact,
        replay_failure: report.failure,
    })
}

/// The revisions up to `targets` (their closure, in history order) whose
/// reference `schema` matches, exactly or in form only, as in
/// [`locate`], from the references already built: what a repair towards
/// `targets`, which builds each of them, can ask without replaying.
pub fn locate_up_to(
    repo: &Repo,
    replayer: &Replayer<'_>,
    graph: &Graph,
    targets: &[RevisionId],
    schema: &Schema,
    semantic: SchemaHash,
) -> Result<Vec<LocateMatch>, ReplayError> {
    let closure = graph.closure(targets.iter().map(RevisionId::as_str));
    let candidates = graph
        .topological()
        .into_iter()
        .filter(|id| closure.contains(id))
        .map(|id| vec![id])
        .collect();
    Ok(matches(repo, replayer, candidates, schema, semantic)?.0)
}

/// Compares `schema` with the built references of `candidates` (and
/// their accepted variants): the exact matches, in the candidates' order,
/// and when there is none the nearest reference.
fn matches(
    repo: &Repo,
    replayer: &Replayer<'_>,
    candidates: Vec<Vec<RevisionId>>,
    schema: &Schema,
    semantic: SchemaHash,
) -> Result<(Vec<LocateMatch>, Option<LocateMatch>), ReplayError> {
    let mut exact = Vec::new();
    let mut nearest: Option<LocateMatch> = None;
    for targets in candidates {
        let Some(reference) = replayer.cached(repo, &targets)? else {
            continue;
        };
        let mut shapes = vec![(
            reference.id,
            Recorded::from_snapshot(&reference.snapshot).schema_semantic,
            false,
        )];
        shapes.extend(
            accepted(repo, replayer, &targets)?
                .into_iter()
                .map(|(id, s)| (id, Some(s), true)),
        );
        for (id, shape, accepted) in shapes {
            if shape == Some(semantic) {
                exact.push(LocateMatch {
                    targets: targets.clone(),
                    snapshot: id,
                    accepted,
                    drift: SchemaDiff::default(),
                });
            }
        }
        if exact.iter().any(|c| c.drift.is_empty()) {
            continue;
        }
        let drift = diff::diff(&reference.schema(repo)?, schema);
        if drift.is_form_only() {
            exact.push(LocateMatch {
                targets,
                snapshot: reference.id,
                accepted: false,
                drift,
            });
            continue;
        }
        // Later revisions win ties: an empty migration leaves the same schema
        // as its parent, and the latest is the likelier stamp.
        if nearest
            .as_ref()
            .is_none_or(|n| drift.changes.len() <= n.drift.changes.len())
        {
            nearest = Some(LocateMatch {
                targets,
                snapshot: reference.id,
                accepted: false,
                drift,
            });
        }
    }
    // A match in form only counts when nothing matches exactly.
    if exact.iter().any(|c| c.drift.is_empty()) {
        exact.retain(|c| c.drift.is_empty());
    }
    let nearest = if exact.is_empty() { nearest } else { None };
    Ok((exact, nearest))
}

/// Whether `change` (from a reference to a database) is a defect: the
/// database lacks or contradicts something of the reference. Extra objects
/// are not, nor are differences of form (column order, constraint names),
/// nor is a table whose only difference is extra columns.
pub(super) fn is_defect(change: &Change) -> bool {
    if change.meaning.is_form() {
        return false;
    }
    match change.op {
        Op::Added => false,
        Op::Removed => true,
        Op::Changed => change.fields.iter().any(|f| defect_field(change, f)),
    }
}

/// Whether one changed field of `change` is a defect: a table's `columns`
/// only when the database drops or reorders the reference's columns (an
/// extra column shows as its own change), any other field always.
fn defect_field(change: &Change, field: &FieldChange) -> bool {
    !(change.kind == ChangeKind::Table
        && field.field == Field::Columns
        && extends(names_of(&field.before), names_of(&field.after)))
}

/// Whether `change` (against some revision's reference) shows the same
/// defect as `tip` (against the tip's reference): the same object, lacking
/// in both, or contradicted in the same field with the same reference
/// value. The reference value matters: a column whose type a later
/// revision changed is a different defect against the earlier type. A
/// table's column list is the exception, as it grows with every column
/// added: the defect is that the database lacks or reorders the list.
pub(super) fn same_defect(tip: &Change, change: &Change) -> bool {
    if tip.op != change.op || !same_object(tip, change) || !is_defect(change) {
        return false;
    }
    tip.op != Op::Changed
        || tip.fields.iter().filter(|f| defect_field(tip, f)).any(|f| {
            change.fields.iter().any(|g| {
                g.field == f.field
                    && defect_field(change, g)
                    && (g.field == Field::Columns || g.before == f.before)
            })
        })
}

/// Whether two changes are about the same object (same kind, table and
/// name, as SQLite compares names).
pub(super) fn same_object(a: &Change, b: &Change) -> bool {
    a.kind == b.kind
        && a.table.as_deref().map(fold) == b.table.as_deref().map(fold)
        && same_name(&a.name, &b.name)
}

/// Whether the name list `after` keeps every name of `before`, in order.
/// Names are compared whole: a name holding `, ` is one name.
pub fn extends(before: &[String], after: &[String]) -> bool {
    let mut rest = after.iter();
    before.iter().all(|name| rest.any(|a| a == name))
}

/// The candidate of `located` a schema is best compared with: the latest
/// exact match (an empty migration leaves its parent's schema, and the
/// latest is the likelier), else the nearest.
pub(super) fn closest(located: &Located) -> Option<&LocateMatch> {
    located.exact.last().or(located.nearest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::drift::schema_of;
    use crate::schema::diff::Meaning;
    use crate::schema::field::Value;

    #[test]
    fn a_list_extends_another_when_it_keeps_its_names_in_order() {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(extends(&list(&["a", "b"]), &list(&["a", "x", "b", "y"])));
        assert!(extends(&[], &list(&["a"])));
        assert!(extends(&[], &[]));
        assert!(extends(&list(&["a", "b"]), &list(&["a", "b"])));
        assert!(!extends(&list(&["a", "b"]), &list(&["b", "a"])));
        assert!(!extends(&list(&["a", "b"]), &list(&["a"])));
        assert!(!extends(&list(&["a"]), &[]));
    }

    #[test]
    fn a_name_holding_a_comma_is_one_name() {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        // "a, b" is one column: neither list keeps the other's names, though
        // both render as "a, b, c".
        assert!(!extends(&list(&["a, b", "c"]), &list(&["a", "b", "c"])));
        assert!(!extends(&list(&["a", "b", "c"]), &list(&["a, b", "c"])));
        assert!(extends(&list(&["a, b"]), &list(&["a, b", "c"])));
        assert!(!extends(&list(&["a"]), &list(&["a, b", "c"])));
    }

    #[test]
    fn extra_objects_and_differences_of_form_are_not_defects() {
        let reference = schema_of("CREATE TABLE t(a, b, c); CREATE INDEX ix_t_a ON t(a);");
        for (live, lacks) in [
            (
                "CREATE TABLE t(a, b, c, d); CREATE INDEX ix_t_a ON t(a);",
                false,
            ),
            (
                "CREATE TABLE t(a, x, b, c); CREATE INDEX ix_t_a ON t(a); CREATE TABLE u(a);",
                false,
            ),
            (
                "CREATE TABLE t(c, a, b); CREATE INDEX t_a_idx ON t(a);",
                false,
            ),
            ("CREATE TABLE t(a, c); CREATE INDEX ix_t_a ON t(a);", true),
            (
                "CREATE TABLE t(a, b, c NOT NULL); CREATE INDEX ix_t_a ON t(a);",
                true,
            ),
            ("CREATE TABLE t(a, b, c);", true),
        ] {
            let drift = diff::diff(&reference, &schema_of(live));
            assert_eq!(
                drift.changes.iter().any(is_defect),
                lacks,
                "{live}: {drift:#?}"
            );
        }
    }

    /// A column list, or text for any other field; "" is not set.
    fn value(field: Field, text: &str) -> Option<Value> {
        Some(match field {
            Field::Columns => Value::Names(text.split(' ').map(str::to_owned).collect()),
            _ => Value::Text(text.to_owned()),
        })
        .filter(|_| !text.is_empty())
    }

    /// A change of `fields`, each (field, before, after); column lists are
    /// written as space-separated names.
    fn change(op: Op, kind: ChangeKind, name: &str, fields: &[(Field, &str, &str)]) -> Change {
        Change {
            op,
            kind,
            table: (kind != ChangeKind::Table).then(|| "t".to_owned()),
            name: name.to_owned(),
            fields: fields
                .iter()
                .map(|&(field, before, after)| FieldChange {
                    field,
                    before: value(field, before),
                    after: value(field, after),
                })
                .collect(),
            meaning: Meaning::Definition,
            moved: Vec::new(),
        }
    }

    #[test]
    fn extra_objects_and_extra_columns_are_not_defects() {
        assert!(!is_defect(&change(Op::Added, ChangeKind::Table, "x", &[])));
        assert!(!is_defect(&change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[(Field::Columns, "id a", "id a b")]
        )));
        assert!(is_defect(&change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[(Field::Columns, "id a b", "id b")]
        )));
        assert!(is_defect(&change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[(Field::Columns, "id a b", "id b a")]
        )));
        assert!(is_defect(&change(
            Op::Removed,
            ChangeKind::Column,
            "a",
            &[]
        )));
    }

    #[test]
    fn a_contradicted_field_is_the_same_defect_only_against_the_same_reference_value() {
        let tip = change(
            Op::Changed,
            ChangeKind::Column,
            "name",
            &[(Field::DeclaredType, "TEXT", "INTEGER")],
        );
        let same = change(
            Op::Changed,
            ChangeKind::Column,
            "NAME",
            &[(Field::DeclaredType, "TEXT", "INTEGER")],
        );
        // Before a later revision changed the type to TEXT, the database
        // contradicted another value: not the defect the tip shows.
        let earlier = change(
            Op::Changed,
            ChangeKind::Column,
            "name",
            &[(Field::DeclaredType, "VARCHAR", "INTEGER")],
        );
        assert!(same_defect(&tip, &same));
        assert!(!same_defect(&tip, &earlier));
        assert!(!same_defect(
            &tip,
            &change(Op::Added, ChangeKind::Column, "name", &[])
        ));
    }

    #[test]
    fn a_shorter_column_list_is_the_same_defect_whatever_the_list_grew_to() {
        let tip = change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[(Field::Columns, "id a b c", "id b c")],
        );
        let at_a = change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[(Field::Columns, "id a", "id b c")],
        );
        let before_a = change(
            Op::Changed,
            ChangeKind::Table,
            "t",
            &[(Field::Columns, "id", "id b c")],
        );
        assert!(same_defect(&tip, &at_a));
        assert!(!same_defect(&tip, &before_a));
    }
}
