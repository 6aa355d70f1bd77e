//! Findings for differences of form only (column order, constraint and
//! index names), which `status`, `locate` and `test` all report as info.

use crate::finding::{Finding, Severity};
use crate::schema::diff::{Change, Meaning, SchemaDiff};
use crate::schema::field::{Field, Value};

use super::codes;

/// One `drift.order` or `drift.name` finding (info) per change of form in
/// `drift`, a diff from the expected schema (`expected` says what it is, as
/// "revision abc") to the one found. Differences of definition are left to
/// the caller, which knows what they mean for its verdict.
pub fn form_findings(drift: &SchemaDiff, expected: &str) -> Vec<Finding> {
    drift
        .changes
        .iter()
        .filter_map(|change| match change.meaning {
            Meaning::Definition => None,
            Meaning::Order => Some(order_finding(change, expected)),
            Meaning::Name => Some(name_finding(change, expected)),
        })
        .collect()
}

fn order_finding(change: &Change, expected: &str) -> Finding {
    let moved = match change.moved.as_slice() {
        [] => String::new(),
        [one] => format!(" ({one} moved)"),
        many => format!(" ({} moved)", many.join(", ")),
    };
    Finding::new(
        codes::ORDER,
        Severity::Info,
        &change.name,
        format!("same columns as {expected}, different order{moved}"),
    )
    .hint(
        "SQLite and SQLAlchemy name columns, so only `SELECT *` or an INSERT without column \
         names sees the order; `migsnap repair` rebuilds the table in the reference's order \
         if it matters",
    )
}

fn name_finding(change: &Change, expected: &str) -> Finding {
    let kind = change.kind.name().replace('_', " ");
    let (before, after) = change
        .fields
        .iter()
        .find(|f| f.field == Field::Name)
        .map(|f| (f.before.clone(), f.after.clone()))
        .unwrap_or_default();
    let shown = |name: Option<Value>| name.map_or("unnamed".to_owned(), |n| format!("'{n}'"));
    let object = match &change.table {
        Some(table) if *table != change.name => format!("{table}.{}", change.name),
        _ => change.name.clone(),
    };
    Finding::new(
        codes::NAME,
        Severity::Info,
        &object,
        format!(
            "same {kind}, different name ({} in {expected}, {} here)",
            shown(before),
            shown(after)
        ),
    )
    .hint(
        "names matter only to a migration that drops or alters the constraint by name; \
         `migsnap repair` gives it the reference's name if one will",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::drift::schema_of;
    use crate::schema::diff;

    #[test]
    fn differences_of_form_are_info_findings_in_words() {
        let reference = schema_of(
            "CREATE TABLE user(id, name, scim, email); CREATE INDEX ix_user_email ON user(email);",
        );
        let live = schema_of(
            "CREATE TABLE user(id, name, email, scim); CREATE INDEX user_email_idx ON user(email);",
        );
        let findings = form_findings(&diff::diff(&reference, &live), "revision r1");
        let summary: Vec<_> = findings
            .iter()
            .map(|f| (f.code, f.severity, f.object.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    codes::ORDER,
                    Severity::Info,
                    "user",
                    "same columns as revision r1, different order (scim moved)"
                ),
                (
                    codes::NAME,
                    Severity::Info,
                    "user.user_email_idx",
                    "same index, different name ('ix_user_email' in revision r1, 'user_email_idx' here)"
                ),
            ]
        );
    }
}
