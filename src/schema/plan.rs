//! SQLite DDL that turns one schema into another, as a list of steps.
//!
//! Invariants:
//! - Every name is written through [`quote_ident`] (names are untrusted:
//!   they come from the user's databases), and every statement is rendered
//!   from the model by [`Schema::to_sql`], never spliced from raw text.
//! - `ALTER TABLE … ADD COLUMN` / `DROP COLUMN` are used only where SQLite
//!   allows them (<https://sqlite.org/lang_altertable.html>); anything else
//!   is SQLite's documented table rebuild
//!   (<https://sqlite.org/lang_altertable.html#otheralter>), which copies
//!   every column the new schema keeps, by rowid where there is one.
//! - Renames are not inferred: a column missing from the new schema is
//!   dropped and a new one added. Steps that lose data are `destructive`.
//! - The whole plan runs in one transaction, with foreign-key enforcement
//!   switched off outside it (SQLite ignores `PRAGMA foreign_keys` inside a
//!   transaction) and `PRAGMA foreign_key_check` before the commit.

use std::collections::BTreeSet;

use serde::Serialize;

use super::diff::{ChangeKind, SchemaDiff, constraint_indexes, diff};
use super::field::Field;
use super::lex;
use super::model::{
    Column, Index, IndexOrigin, IndexTarget, Schema, Storage, Table, fold, same_name,
};
use super::quote_ident;

/// One statement of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// One SQL statement, without the final `;`.
    pub sql: String,
    /// Why it is there.
    pub reason: String,
    /// Whether it can lose data.
    pub destructive: bool,
}

/// The statements that turn one schema into another, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The steps; empty when the schemas mean the same.
    pub steps: Vec<Step>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// How many statements change the schema: the steps without the
    /// framing every plan has (`PRAGMA`, `BEGIN`, `COMMIT`), so a report
    /// counts what was done, not how it was wrapped.
    pub fn statement_count(&self) -> usize {
        self.statements().count()
    }

    /// The steps that change the schema, without the framing every plan
    /// has (`PRAGMA`, `BEGIN`, `COMMIT`): what a caller that runs inside a
    /// transaction of its own (an Alembic revision) executes.
    pub fn statements(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|step| {
            let first = step.sql.split_whitespace().next().unwrap_or_default();
            !["PRAGMA", "BEGIN", "COMMIT"]
                .iter()
                .any(|framing| first.eq_ignore_ascii_case(framing))
        })
    }

    /// The plan as a SQL script: each step after a `-- reason` comment,
    /// destructive ones after a `-- DESTRUCTIVE:` marker.
    pub fn to_script(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            for line in step.reason.lines() {
                if step.destructive {
                    out.push_str("-- DESTRUCTIVE: ");
                } else {
                    out.push_str("-- ");
                }
                out.push_str(line);
                out.push('\n');
            }
            out.push_str(&step.sql);
            out.push_str(";\n");
        }
        out
    }
}

struct Builder {
    steps: Vec<Step>,
}

impl Builder {
    fn push(&mut self, sql: String, reason: impl Into<String>, destructive: bool) {
        self.steps.push(Step {
            sql,
            reason: reason.into(),
            destructive,
        });
    }
}

/// The plan that turns `old` into `new`.
pub fn plan(old: &Schema, new: &Schema) -> Plan {
    let changes = diff(old, new);
    plan_from_diff(old, new, &changes)
}

/// [`plan`], given the diff already computed.
pub fn plan_from_diff(old: &Schema, new: &Schema, changes: &SchemaDiff) -> Plan {
    if changes.is_empty() {
        return Plan::default();
    }
    let changed = Changed::of(changes);
    let mut b = Builder { steps: Vec::new() };
    b.push(
        "PRAGMA foreign_keys=OFF".into(),
        "outside the transaction: SQLite ignores this PRAGMA inside one",
        false,
    );
    b.push(
        "BEGIN".into(),
        "one transaction for the whole change",
        false,
    );
    let dependents = Dependents::of(old, &changed);
    b.drop_dependents(old, new, &changed, &dependents);
    b.drop_changed_indexes(old, new, &changed.indexes);
    let rebuilt = b.change_tables(old, new, &changed.tables);
    b.create_indexes(old, new, &changed.indexes, &rebuilt);
    b.create_views(old, new, &changed.views, &dependents.views);
    b.create_triggers(old, new, &changed.triggers, &dependents.triggers);
    b.push(
        "PRAGMA foreign_key_check".into(),
        "lists rows whose foreign keys the change broke (expect none)",
        false,
    );
    b.push("COMMIT".into(), "", false);
    b.push(
        "PRAGMA foreign_keys=ON".into(),
        "restore foreign-key enforcement (leave out if it was off before)",
        false,
    );
    Plan { steps: b.steps }
}

/// The folded names of the objects a diff changes, by kind.
struct Changed {
    /// Tables that are added, removed or altered.
    tables: BTreeSet<String>,
    indexes: BTreeSet<String>,
    views: BTreeSet<String>,
    triggers: BTreeSet<String>,
}

impl Changed {
    fn of(changes: &SchemaDiff) -> Changed {
        // A renamed index is one change under its new name; its old name is
        // in its `name` field, and the old index must go too.
        let changed = |kind: ChangeKind| -> BTreeSet<String> {
            changes
                .changes
                .iter()
                .filter(|c| c.kind == kind)
                .flat_map(|c| {
                    let old_name = c
                        .fields
                        .iter()
                        .find(|f| f.field == Field::Name)
                        .and_then(|f| f.before.as_ref()?.as_text());
                    std::iter::once(c.name.as_str()).chain(old_name)
                })
                .map(fold)
                .collect()
        };
        Changed {
            tables: changes
                .changes
                .iter()
                .filter(|c| {
                    !matches!(
                        c.kind,
                        ChangeKind::Index | ChangeKind::View | ChangeKind::Trigger
                    )
                })
                .map(|c| fold(c.table.as_deref().unwrap_or(&c.name)))
                .collect(),
            indexes: changed(ChangeKind::Index),
            views: changed(ChangeKind::View),
            triggers: changed(ChangeKind::Trigger),
        }
    }
}

/// Views and triggers of the old schema that change, go, or depend on a
/// touched table (or on a view that goes): they are dropped first and made
/// again at the end, because SQLite checks them when a table is altered or
/// renamed.
struct Dependents {
    views: BTreeSet<String>,
    triggers: BTreeSet<String>,
}

impl Dependents {
    fn of(old: &Schema, changed: &Changed) -> Dependents {
        // Tables that lose their old shape: dropped, altered or rebuilt.
        let touched: BTreeSet<String> = changed
            .tables
            .iter()
            .filter(|key| old.tables.contains_key(*key))
            .cloned()
            .collect();
        let mut views: BTreeSet<String> = BTreeSet::new();
        loop {
            let before = views.len();
            for (key, view) in &old.views {
                if views.contains(key) {
                    continue;
                }
                let text = format!("{} {}", view.select, view.unparsed.as_deref().unwrap_or(""));
                if changed.views.contains(key)
                    || touched.iter().chain(&views).any(|t| mentions(&text, t))
                {
                    views.insert(key.clone());
                }
            }
            if views.len() == before {
                break;
            }
        }
        let mut triggers = BTreeSet::new();
        for (key, trigger) in &old.triggers {
            let text = format!(
                "{} {} {}",
                trigger.when.as_deref().unwrap_or(""),
                trigger.body,
                trigger.unparsed.as_deref().unwrap_or("")
            );
            if changed.triggers.contains(key)
                || touched.contains(&fold(&trigger.table))
                || views.contains(&fold(&trigger.table))
                || touched.iter().chain(&views).any(|t| mentions(&text, t))
            {
                triggers.insert(key.clone());
            }
        }
        Dependents { views, triggers }
    }
}

/// The phases of a plan, in the order [`plan_from_diff`] runs them.
impl Builder {
    /// Drops the views and triggers that go or are made again.
    fn drop_dependents(
        &mut self,
        old: &Schema,
        new: &Schema,
        changed: &Changed,
        dependents: &Dependents,
    ) {
        for key in &dependents.triggers {
            let trigger = &old.triggers[key];
            self.push(
                format!("DROP TRIGGER {}", quote_ident(&trigger.name)),
                if changed.triggers.contains(key) && !new.triggers.contains_key(key) {
                    format!("trigger {} is removed", trigger.name)
                } else {
                    format!("trigger {} is made again below", trigger.name)
                },
                false,
            );
        }
        for key in &dependents.views {
            let view = &old.views[key];
            self.push(
                format!("DROP VIEW {}", quote_ident(&view.name)),
                if new.views.contains_key(key) {
                    format!("view {} is made again below", view.name)
                } else {
                    format!("view {} is removed", view.name)
                },
                false,
            );
        }
    }

    /// Drops the indexes that change or go, on tables that stay.
    fn drop_changed_indexes(&mut self, old: &Schema, new: &Schema, changed: &BTreeSet<String>) {
        for key in changed {
            let Some(index) = old.indexes.get(key) else {
                continue;
            };
            if index.origin != IndexOrigin::Created {
                continue;
            }
            self.push(
                format!("DROP INDEX {}", quote_ident(&index.name)),
                if new.indexes.contains_key(key) {
                    format!("index {} changes; made again below", index.name)
                } else {
                    format!("index {} is removed", index.name)
                },
                false,
            );
        }
    }

    /// Adds, drops, alters or rebuilds the changed tables; returns the
    /// folded names of the rebuilt ones.
    fn change_tables(
        &mut self,
        old: &Schema,
        new: &Schema,
        changed: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut rebuilt: BTreeSet<String> = BTreeSet::new();
        for key in changed {
            match (old.tables.get(key), new.tables.get(key)) {
                (Some(a), None) => self.push(
                    format!("DROP TABLE {}", quote_ident(&a.name)),
                    format!("table {} is removed, with its rows", a.name),
                    true,
                ),
                (None, Some(t)) => self.push(
                    render_table_as(new, t, &t.name, t.unparsed.is_some()),
                    format!("table {} is added", t.name),
                    false,
                ),
                (Some(a), Some(t)) => {
                    if let Some(steps) = alter_steps(old, new, a, t) {
                        self.steps.extend(steps);
                    } else {
                        rebuild(old, new, a, t, self);
                        rebuilt.insert(key.clone());
                    }
                }
                (None, None) => {}
            }
        }
        rebuilt
    }

    /// Creates the indexes that are new, changed, or went with a rebuilt
    /// table.
    fn create_indexes(
        &mut self,
        old: &Schema,
        new: &Schema,
        changed: &BTreeSet<String>,
        rebuilt: &BTreeSet<String>,
    ) {
        for (key, index) in &new.indexes {
            if index.origin != IndexOrigin::Created {
                continue;
            }
            let again = rebuilt.contains(&fold(&index.table)) && !changed.contains(key);
            if changed.contains(key) || again {
                self.push(
                    render_index(index),
                    if again {
                        format!(
                            "index {} again, after the rebuild of {}",
                            index.name, index.table
                        )
                    } else if old.indexes.contains_key(key) {
                        format!("index {} as it is now", index.name)
                    } else {
                        format!("index {} is added", index.name)
                    },
                    false,
                );
            }
        }
    }

    /// Creates the changed and dropped views, each after the views it reads.
    fn create_views(
        &mut self,
        old: &Schema,
        new: &Schema,
        changed: &BTreeSet<String>,
        gone: &BTreeSet<String>,
    ) {
        let mut pending: Vec<&String> = new
            .views
            .keys()
            .filter(|key| changed.contains(*key) || gone.contains(*key))
            .collect();
        while !pending.is_empty() {
            let waiting = |key: &String| {
                let view = &new.views[key];
                pending
                    .iter()
                    .any(|other| *other != key && mentions(&view.select, other))
            };
            let next = pending.iter().position(|key| !waiting(key)).unwrap_or(0);
            let key = pending.remove(next);
            let view = &new.views[key];
            let mut mini = Schema::default();
            mini.insert_view(view.clone());
            self.push(
                statement(&mini),
                if old.views.contains_key(key) {
                    format!("view {} as it is now", view.name)
                } else {
                    format!("view {} is added", view.name)
                },
                false,
            );
        }
    }

    /// Creates the changed and dropped triggers.
    fn create_triggers(
        &mut self,
        old: &Schema,
        new: &Schema,
        changed: &BTreeSet<String>,
        gone: &BTreeSet<String>,
    ) {
        for (key, trigger) in &new.triggers {
            if !(changed.contains(key) || gone.contains(key)) {
                continue;
            }
            let mut mini = Schema::default();
            mini.insert_trigger(trigger.clone());
            self.push(
                statement(&mini),
                if old.triggers.contains_key(key) {
                    format!("trigger {} as it is now", trigger.name)
                } else {
                    format!("trigger {} is added", trigger.name)
                },
                false,
            );
        }
    }
}

/// The single statement `mini.to_sql()` renders, without its `;`.
pub(super) fn statement(mini: &Schema) -> String {
    let sql = mini.to_sql();
    sql.strip_suffix(";\n").unwrap_or(&sql).to_owned()
}

pub(super) fn render_index(index: &Index) -> String {
    // Rendered without its table: terms then spell out their collation,
    // which captures the same.
    let mut mini = Schema::default();
    mini.insert_index(index.clone());
    statement(&mini)
}

/// `CREATE TABLE` for `table` of `schema`, under `name`, with its
/// constraint indexes' details (collation, order).
fn render_table_as(schema: &Schema, table: &Table, name: &str, keep_sql: bool) -> String {
    let mut mini = Schema::default();
    for index in schema.indexes_on(&table.name) {
        if index.origin != IndexOrigin::Created {
            let mut index = index.clone();
            index.table = name.to_owned();
            mini.insert_index(index);
        }
    }
    let mut copy = table.clone();
    copy.name = name.to_owned();
    if !keep_sql {
        copy.sql = None;
    }
    mini.insert_table(copy);
    statement(&mini)
}

/// The column definition `ALTER TABLE … ADD COLUMN` takes.
fn column_definition(column: &Column) -> String {
    let mut mini = Schema::default();
    mini.insert_table(Table::new("t", vec![column.clone()]));
    let sql = statement(&mini);
    sql.strip_prefix(&format!("CREATE TABLE {} (\n  ", quote_ident("t")))
        .and_then(|s| s.strip_suffix("\n)"))
        .expect("holds because a one-column table renders as one item")
        .to_owned()
}

/// Whether `text` (normalised SQL) names `name` (folded) anywhere. Text
/// that does not tokenize counts as naming everything.
fn mentions(text: &str, name: &str) -> bool {
    match lex::tokenize(text) {
        Ok(tokens) => tokens
            .iter()
            .any(|t| t.is_name() && same_name(&t.name(text), name)),
        Err(_) => true,
    }
}

/// Whether a default is one `ADD COLUMN` accepts: a literal, not
/// `CURRENT_*` and not an expression in parentheses.
fn constant_default(default: &str) -> bool {
    let d = default.trim();
    let upper = d.to_ascii_uppercase();
    if matches!(upper.as_str(), "NULL" | "TRUE" | "FALSE") {
        return true;
    }
    let quoted = |open: &str| {
        d.len() > open.len()
            && upper.starts_with(open)
            && d.ends_with('\'')
            && lex::tokenize(d).is_ok_and(|t| t.len() == 1)
    };
    if quoted("'") || quoted("X'") {
        return true;
    }
    let number = d.strip_prefix(['-', '+']).unwrap_or(d).trim_start();
    !number.is_empty()
        && number.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && number
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '+' || c == '-')
}

/// `ADD COLUMN` / `DROP COLUMN` steps when they alone turn `a` into `b`
/// and SQLite allows each (<https://sqlite.org/lang_altertable.html>).
fn alter_steps(old: &Schema, new: &Schema, a: &Table, b: &Table) -> Option<Vec<Step>> {
    if a.virtual_table.is_some()
        || b.virtual_table.is_some()
        || a.unparsed.is_some()
        || b.unparsed.is_some()
        || a.name != b.name
        || a.primary_key != b.primary_key
        || a.uniques != b.uniques
        || a.checks != b.checks
        || a.foreign_keys != b.foreign_keys
        || a.options != b.options
        || constraint_indexes(old, &a.name) != constraint_indexes(new, &b.name)
    {
        return None;
    }
    let kept_a = a.columns_shared_with(b);
    let kept_b = b.columns_shared_with(a);
    let dropped = a.columns_not_in(b);
    let added = b.columns_not_in(a);
    // Kept columns unchanged and in order; new ones at the end.
    if kept_a != kept_b
        || b.columns
            .iter()
            .take(kept_b.len())
            .ne(kept_b.iter().copied())
    {
        return None;
    }
    if !added.iter().all(|column| can_add(column))
        || !dropped.iter().all(|column| can_drop(old, a, column))
    {
        return None;
    }
    let table = quote_ident(&a.name);
    let mut steps = Vec::new();
    // Adds first: SQLite refuses to drop a table's last column.
    for column in added {
        steps.push(Step {
            sql: format!(
                "ALTER TABLE {table} ADD COLUMN {}",
                column_definition(column)
            ),
            reason: format!("column {}.{} is added", b.name, column.name),
            destructive: false,
        });
    }
    for column in dropped {
        steps.push(Step {
            sql: format!(
                "ALTER TABLE {table} DROP COLUMN {}",
                quote_ident(&column.name)
            ),
            reason: format!(
                "column {}.{} is removed, with its values",
                a.name, column.name
            ),
            destructive: true,
        });
    }
    Some(steps)
}

/// Whether `ALTER TABLE … ADD COLUMN` can add `column`
/// (<https://sqlite.org/lang_altertable.html#altertabaddcol>).
pub(super) fn can_add(column: &Column) -> bool {
    column.primary_key.is_none()
        && !column.hidden
        && !(column.not_null && column.default.is_none())
        && column.default.as_deref().is_none_or(constant_default)
        && column
            .generated
            .as_ref()
            .is_none_or(|g| g.storage == Storage::Virtual)
}

/// Whether `ALTER TABLE … DROP COLUMN` can drop `column` of `a`: nothing
/// in the old schema may use it
/// (<https://sqlite.org/lang_altertable.html#altertabdropcol>).
pub(super) fn can_drop(old: &Schema, a: &Table, column: &Column) -> bool {
    let name = &column.name;
    let in_index = old.indexes_on(&a.name).any(|index| {
        index.parts.iter().any(|part| match &part.target {
            IndexTarget::Column(c) => same_name(c, name),
            IndexTarget::Expression(e) => mentions(e, name),
        }) || index
            .predicate
            .as_deref()
            .is_some_and(|p| mentions(p, name))
            || index.unparsed.is_some()
    });
    let in_generated = a.columns.iter().any(|c| {
        c.generated
            .as_ref()
            .is_some_and(|g| mentions(&g.expression, name))
    });
    let referenced = old.tables.values().any(|t| {
        t.foreign_keys.iter().any(|fk| {
            same_name(&fk.target_table, &a.name)
                && fk.target_columns.iter().any(|c| same_name(c, name))
        })
    });
    !(column.primary_key.is_some()
        || column.generated.is_some()
        || in_index
        || in_generated
        || referenced
        || a.checks.iter().any(|c| mentions(&c.expression, name))
        || a.foreign_keys
            .iter()
            .any(|fk| fk.columns.iter().any(|c| same_name(c, name))))
}

/// A value for a new `NOT NULL` column without a default, so that existing
/// rows can be copied: zero or empty, of the column's type affinity
/// (<https://sqlite.org/datatype3.html#determination_of_column_affinity>).
fn filler(column: &Column) -> &'static str {
    let t = column.declared_type.to_ascii_uppercase();
    if t.contains("INT") {
        "0"
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        "''"
    } else if t.contains("BLOB") || t.is_empty() || t == "ANY" {
        "X''"
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        "0.0"
    } else {
        "0"
    }
}

/// A default as an expression to copy with, when it is one self-contained
/// expression (a tampered model could hold anything).
fn default_expression(column: &Column) -> Option<String> {
    let default = column.default.as_deref()?;
    let tokens = lex::tokenize(default).ok()?;
    let mut depth = 0i64;
    for token in &tokens {
        if token.is_punct(default, ";") {
            return None;
        }
        if token.is_punct(default, "(") {
            depth += 1;
        }
        if token.is_punct(default, ")") {
            depth -= 1;
            if depth < 0 {
                return None;
            }
        }
    }
    (depth == 0 && !tokens.is_empty()).then(|| format!("({})", lex::normalise(default, &tokens)))
}

/// SQLite's table rebuild: a new table, the kept columns copied over, the
/// old table dropped and the new one renamed.
fn rebuild(old: &Schema, new: &Schema, a: &Table, b: &Table, out: &mut Builder) {
    let dropped: Vec<&str> = a
        .columns_not_in(b)
        .into_iter()
        .map(|c| c.name.as_str())
        .collect();
    if b.unparsed.is_some() || a.virtual_table.is_some() || b.virtual_table.is_some() {
        // Its exact text is all there is to make it with, and it names
        // the table itself: no copy under another name.
        out.push(
            format!("DROP TABLE {}", quote_ident(&a.name)),
            format!(
                "table {} cannot be rebuilt in place; made again empty",
                a.name
            ),
            true,
        );
        out.push(
            render_table_as(new, b, &b.name, b.unparsed.is_some()),
            format!("table {} as it is now", b.name),
            false,
        );
        return;
    }
    let mut temp = format!("new_{}", b.name);
    let mut n = 2;
    while old.tables.contains_key(&fold(&temp)) || new.tables.contains_key(&fold(&temp)) {
        temp = format!("new_{}_{n}", b.name);
        n += 1;
    }
    out.push(
        render_table_as(new, b, &temp, false),
        format!("rebuild {}: the new shape under a temporary name", b.name),
        false,
    );
    let mut targets = Vec::new();
    let mut values = Vec::new();
    for column in &b.columns {
        if column.generated.is_some() || column.hidden {
            continue;
        }
        match a.column(&column.name) {
            Some(before) => {
                targets.push(quote_ident(&column.name));
                let value = quote_ident(&before.name);
                values.push(if column.not_null && !before.not_null {
                    let fill =
                        default_expression(column).unwrap_or_else(|| filler(column).to_owned());
                    format!("coalesce({value}, {fill})")
                } else {
                    value
                });
            }
            None if column.not_null && column.default.is_none() => {
                targets.push(quote_ident(&column.name));
                values.push(filler(column).to_owned());
            }
            None => {}
        }
    }
    let reserved = |t: &Table| {
        t.columns.iter().any(|c| {
            ["rowid", "oid", "_rowid_"]
                .iter()
                .any(|r| same_name(r, &c.name))
        })
    };
    let alias_copied = b.primary_key.as_ref().is_some_and(|pk| {
        pk.columns.len() == 1
            && b.column(&pk.columns[0]).is_some_and(|c| {
                c.declared_type.eq_ignore_ascii_case("INTEGER") && a.column(&c.name).is_some()
            })
    });
    if !a.options.without_rowid
        && !b.options.without_rowid
        && !reserved(a)
        && !reserved(b)
        && !alias_copied
    {
        // Rows keep their rowids, which other rows may point to.
        targets.insert(0, "rowid".to_owned());
        values.insert(0, "rowid".to_owned());
    }
    if !targets.is_empty() {
        out.push(
            format!(
                "INSERT INTO {} ({}) SELECT {} FROM {}",
                quote_ident(&temp),
                targets.join(", "),
                values.join(", "),
                quote_ident(&a.name)
            ),
            format!("rebuild {}: copy the rows", b.name),
            false,
        );
    }
    out.push(
        format!("DROP TABLE {}", quote_ident(&a.name)),
        if dropped.is_empty() {
            format!("rebuild {}: drop the old table", b.name)
        } else {
            format!(
                "rebuild {}: drop the old table, and the values of {}",
                b.name,
                dropped.join(", ")
            )
        },
        !dropped.is_empty(),
    );
    out.push(
        format!(
            "ALTER TABLE {} RENAME TO {}",
            quote_ident(&temp),
            quote_ident(&b.name)
        ),
        format!("rebuild {}: the new table takes the name", b.name),
        false,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::capture;
    use rusqlite::Connection;

    fn build(sql: &str) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        conn
    }

    fn schema_of(conn: &Connection) -> Schema {
        let tx = conn.unchecked_transaction().unwrap();
        capture(&tx).unwrap().schema
    }

    /// Applies plan(A → B) to A and checks the result means B.
    fn check(a_sql: &str, b_sql: &str) -> (Connection, Plan) {
        let conn = build(a_sql);
        let a = schema_of(&conn);
        let b = schema_of(&build(b_sql));
        let plan = plan(&a, &b);
        conn.execute_batch(&plan.to_script())
            .unwrap_or_else(|e| panic!("{e}\n{}", plan.to_script()));
        let after = schema_of(&conn);
        let left = diff(&after, &b);
        assert!(left.is_empty(), "{left:#?}\n{}", plan.to_script());
        assert_eq!(after.semantic_hash(), b.semantic_hash());
        (conn, plan)
    }

    #[test]
    fn same_schemas_need_no_steps() {
        let a = schema_of(&build("CREATE TABLE t(a)"));
        assert!(plan(&a, &a).is_empty());
        assert_eq!(plan(&a, &a).to_script(), "");
    }

    #[test]
    fn adds_and_drops_columns_with_alter_where_allowed() {
        let (conn, plan) = check(
            "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c TEXT); INSERT INTO t VALUES (1, 'x', 'y');",
            "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, d INTEGER NOT NULL DEFAULT 3);",
        );
        let script = plan.to_script();
        assert!(
            script.contains(r#"ALTER TABLE "t" DROP COLUMN "c""#),
            "{script}"
        );
        assert!(
            script.contains("-- DESTRUCTIVE: column t.c is removed"),
            "{script}"
        );
        assert!(
            script.contains(r#"ALTER TABLE "t" ADD COLUMN "d" INTEGER NOT NULL DEFAULT 3"#),
            "{script}"
        );
        assert!(!script.contains("new_t"), "{script}");
        // Two ALTERs, counted without the PRAGMA/BEGIN/COMMIT framing.
        assert_eq!(plan.statement_count(), 2, "{script}");
        let row: (i64, String, i64) = conn
            .query_row("SELECT a, b, d FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(row, (1, "x".into(), 3));
    }

    // Regression: SQLite refuses to drop a table's only column, so the
    // plan adds the new columns before it drops the old ones.
    #[test]
    fn replacing_the_only_column_adds_before_it_drops() {
        let (_, plan) = check("CREATE TABLE t(a INTEGER)", "CREATE TABLE t(b INTEGER)");
        let script = plan.to_script();
        assert!(
            script.find("ADD COLUMN").unwrap() < script.find("DROP COLUMN").unwrap(),
            "{script}"
        );
    }

    #[test]
    fn rebuilds_when_alter_cannot_and_keeps_rows() {
        let (conn, plan) = check(
            "CREATE TABLE p(id INTEGER PRIMARY KEY);
             CREATE TABLE t(a INTEGER, b TEXT, c BLOB);
             CREATE INDEX tb ON t(b);
             CREATE VIEW v AS SELECT a, b FROM t;
             CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;
             INSERT INTO p VALUES (1);
             INSERT INTO t VALUES (1, 'one', x'01'), (NULL, 'two', NULL);",
            "CREATE TABLE p(id INTEGER PRIMARY KEY);
             CREATE TABLE t(a INTEGER NOT NULL REFERENCES p(id), b TEXT COLLATE NOCASE, n TEXT NOT NULL, CHECK (length(b) > 0));
             CREATE INDEX tb ON t(b);
             CREATE VIEW v AS SELECT a, b FROM t;
             CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;",
        );
        let script = plan.to_script();
        assert!(script.starts_with("-- outside the transaction"), "{script}");
        assert!(script.contains(r#"CREATE TABLE "new_t""#), "{script}");
        assert!(
            script.contains("-- DESTRUCTIVE: rebuild t: drop the old table, and the values of c"),
            "{script}"
        );
        let rows: Vec<(i64, i64, String, String)> = conn
            .prepare("SELECT rowid, a, b, n FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, 1, "one".into(), "".into()),
                (2, 0, "two".into(), "".into())
            ]
        );
    }

    #[test]
    fn tables_indexes_views_triggers_come_and_go() {
        check(
            "CREATE TABLE gone(a); CREATE TABLE t(a, b); CREATE INDEX i ON t(a);
             CREATE VIEW v AS SELECT a FROM t; CREATE VIEW w AS SELECT * FROM v;
             CREATE TRIGGER tr AFTER DELETE ON t BEGIN DELETE FROM gone; END;",
            "CREATE TABLE t(a, b, PRIMARY KEY (b, a)) WITHOUT ROWID; CREATE TABLE fresh(x UNIQUE);
             CREATE UNIQUE INDEX i ON t(a DESC) WHERE a > 0; CREATE INDEX j ON fresh(lower(x));
             CREATE VIEW v AS SELECT b FROM t; CREATE VIEW w AS SELECT * FROM v;
             CREATE TRIGGER tr2 AFTER DELETE ON t BEGIN DELETE FROM fresh; END;",
        );
    }

    #[test]
    fn hostile_names_round_trip_harmlessly() {
        let evil = r#"x"; DROP TABLE users; --"#;
        let q = quote_ident(evil);
        let (conn, plan) = check(
            "CREATE TABLE users(id INTEGER PRIMARY KEY); INSERT INTO users VALUES (7);",
            &format!(
                "CREATE TABLE users(id INTEGER PRIMARY KEY);
                 CREATE TABLE {q}({q} TEXT NOT NULL DEFAULT 'a'';b', \"y]z\" INT UNIQUE);
                 CREATE INDEX {} ON {q}({q}) WHERE {q} <> ';';
                 CREATE VIEW {} AS SELECT {q} FROM {q};",
                quote_ident(&format!("{evil}_i")),
                quote_ident(&format!("{evil}_v")),
            ),
        );
        let users: i64 = conn
            .query_row("SELECT id FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(users, 7);
        // And back: drop it all again, including a rebuild of the evil table.
        let a = schema_of(&conn);
        let b = schema_of(&build(&format!(
            "CREATE TABLE users(id INTEGER PRIMARY KEY); CREATE TABLE {q}({q} TEXT PRIMARY KEY);"
        )));
        conn.execute_batch(&plan_from_diff(&a, &b, &diff(&a, &b)).to_script())
            .unwrap();
        assert!(diff(&schema_of(&conn), &b).is_empty());
        assert!(
            plan.steps
                .iter()
                .all(|s| !s.sql.contains(r#"DROP TABLE "users""#))
        );
    }
}
