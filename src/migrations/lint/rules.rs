//! The lint rules: pure judgements of one revision's effect (the schema
//! before and after it), of its file, and of the graph's heads.
//!
//! An *effect* compares the reference of a revision's prerequisites with its
//! own reference, so it shows what the revision really does to a database,
//! whatever Python it takes to do it. A new table appears in a diff as one
//! added table, so rules about new columns and constraints read the new
//! table from the model, and rules about existing tables read the diff.

use std::collections::{BTreeMap, BTreeSet};

use super::codes;
use crate::config::lint::LintConfig;
use crate::finding::{Finding, Severity};
use crate::migrations::history::graph::{Graph, Revision};
use crate::migrations::history::revision_file::Body;
use crate::migrations::history::revision_id::RevisionId;
use crate::schema::Schema;
use crate::schema::diff::{self, Change, ChangeKind, FieldChange, Op, SchemaDiff};
use crate::schema::field::{Field, text_of};
use crate::schema::model::{Table, fold};

/// What one revision does to the schema.
pub struct Effect<'a> {
    /// The revision.
    pub revision: &'a Revision,
    /// The reference of its prerequisites (empty for a base).
    pub before: &'a Schema,
    /// Its own reference.
    pub after: &'a Schema,
    /// From `before` to `after`.
    pub diff: SchemaDiff,
}

impl<'a> Effect<'a> {
    /// The effect of `revision`, from `before` to `after`.
    pub fn new(revision: &'a Revision, before: &'a Schema, after: &'a Schema) -> Effect<'a> {
        Effect {
            revision,
            before,
            after,
            diff: diff::diff(before, after),
        }
    }

    /// Every rule that judges an effect.
    pub fn findings(&self, owners: &Owners, config: &LintConfig) -> Vec<Finding> {
        let mut out = self.alters_existing_tables();
        out.extend(self.destructive());
        out.extend(self.cross_feature_foreign_keys(owners, config));
        out.extend(self.inconsistent_id_types(config));
        out.extend(self.unnamed_constraints());
        out
    }

    /// A finding about this revision and its file.
    fn finding(
        &self,
        code: &'static str,
        severity: Severity,
        object: impl Into<String>,
        message: String,
        hint: &str,
    ) -> Finding {
        about(self.revision, code, severity, object, message).hint(hint)
    }

    /// The tables the revision creates, with their new definitions.
    fn created_tables(&self) -> impl Iterator<Item = &'a Table> + '_ {
        self.after
            .tables
            .iter()
            .filter(|(key, _)| !self.before.tables.contains_key(*key))
            .map(|(_, table)| table)
    }

    /// `lint.alters-existing-table`: one finding per table that existed
    /// before and whose columns, constraints or options change.
    fn alters_existing_tables(&self) -> Vec<Finding> {
        let mut by_table: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for change in &self.diff.changes {
            let table = match (change.kind, change.op, &change.table) {
                (ChangeKind::Table, Op::Changed, _) => &change.name,
                (
                    ChangeKind::Column
                    | ChangeKind::ForeignKey
                    | ChangeKind::Check
                    | ChangeKind::Unique
                    | ChangeKind::PrimaryKey
                    | ChangeKind::TableOption,
                    _,
                    Some(table),
                ) => table,
                _ => continue,
            };
            if !self.before.tables.contains_key(&fold(table)) {
                continue;
            }
            let entry = by_table
                .entry(fold(table))
                .or_insert_with(|| (table.clone(), Vec::new()));
            // The table-level change repeats what its parts say (the column
            // list); it is described only when nothing more precise is.
            if change.kind != ChangeKind::Table {
                entry.1.push(describe(change));
            }
        }
        by_table
            .into_values()
            .map(|(table, parts)| {
                let what = if parts.is_empty() {
                    "changes its definition".to_owned()
                } else {
                    parts.join(", ")
                };
                self.finding(
                    codes::ALTERS_EXISTING_TABLE,
                    Severity::Error,
                    &table,
                    format!("alters existing table {table}: {what}"),
                    "a feature creates its own tables; put the new data in a table of its own that references this one",
                )
            })
            .collect()
    }

    /// `lint.destructive`: dropped tables and columns, narrowed columns.
    fn destructive(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        for change in &self.diff.changes {
            let object = match &change.table {
                Some(table) => format!("{table}.{}", change.name),
                None => change.name.clone(),
            };
            let message = match (change.kind, change.op) {
                (ChangeKind::Table, Op::Removed) => format!("drops table {object}"),
                (ChangeKind::Column, Op::Removed) => format!("drops column {object}"),
                (ChangeKind::Column, Op::Changed) => match narrowing(&change.fields) {
                    Some(how) => format!("narrows column {object}: {how}"),
                    None => continue,
                },
                _ => continue,
            };
            out.push(self.finding(
                codes::DESTRUCTIVE,
                Severity::Error,
                object,
                message,
                "data can be lost; deprecate first and drop in a later release, or widen instead",
            ));
        }
        out
    }

    /// `lint.cross-feature-fk`: a new foreign key into a table another
    /// feature owns.
    fn cross_feature_foreign_keys(&self, owners: &Owners, config: &LintConfig) -> Vec<Finding> {
        let mut out = Vec::new();
        for (key, table) in &self.after.tables {
            let old = self
                .before
                .tables
                .get(key)
                .map(|t| t.foreign_keys.as_slice());
            for fk in fresh(old, &table.foreign_keys) {
                let Some((holder, target)) =
                    owners.cross_feature(&table.name, &fk.target_table, config)
                else {
                    continue;
                };
                out.push(self.finding(
                    codes::CROSS_FEATURE_FK,
                    Severity::Error,
                    format!("{}({})", table.name, fk.columns.join(", ")),
                    format!(
                        "foreign key {}({}) -> {} crosses features: {} belongs to {holder}, {} to {target}",
                        table.name,
                        fk.columns.join(", "),
                        fk.target_table,
                        table.name,
                        fk.target_table
                    ),
                    "features stay independent; keep the reference without a foreign key, or configure the tables as one feature in [migrations.lint.features]",
                ));
            }
        }
        out
    }

    /// `lint.inconsistent-id-type`: a new table whose single-column primary
    /// key means something else in SQLite than the project's ids: another
    /// type affinity, or another declared length where the project's ids all
    /// declare one. `VARCHAR` and `TEXT` ids agree (both have TEXT affinity).
    fn inconsistent_id_types(&self, config: &LintConfig) -> Vec<Finding> {
        let convention = match &config.id_type {
            Some(configured) => Some(IdConvention::configured(configured)),
            None => IdConvention::common(self.before),
        };
        let Some(convention) = convention else {
            return Vec::new();
        };
        self.created_tables()
            .filter_map(|table| {
                let (column, declared) = id_column(table)?;
                let difference = convention.difference(declared)?;
                Some(self.finding(
                    codes::INCONSISTENT_ID_TYPE,
                    Severity::Warning,
                    format!("{}.{column}", table.name),
                    format!(
                        "new table {} has primary key {column} {}: {difference}",
                        table.name,
                        if declared.is_empty() { "(no type)" } else { declared },
                    ),
                    "use the same id type as the other tables, so foreign keys and joins compare alike",
                ))
            })
            .collect()
    }

    /// `lint.unnamed-constraint`: a new UNIQUE, CHECK or foreign key without
    /// `CONSTRAINT name`.
    fn unnamed_constraints(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        for (key, table) in &self.after.tables {
            let old = self.before.tables.get(key);
            let mut unnamed: Vec<String> = Vec::new();
            unnamed.extend(
                fresh(old.map(|t| t.uniques.as_slice()), &table.uniques)
                    .filter(|u| u.name.is_none())
                    .map(|u| format!("UNIQUE ({})", u.columns.join(", "))),
            );
            unnamed.extend(
                fresh(old.map(|t| t.checks.as_slice()), &table.checks)
                    .filter(|c| c.name.is_none())
                    .map(|c| format!("CHECK ({})", c.expression)),
            );
            unnamed.extend(
                fresh(old.map(|t| t.foreign_keys.as_slice()), &table.foreign_keys)
                    .filter(|fk| fk.name.is_none())
                    .map(|fk| {
                        format!(
                            "FOREIGN KEY ({}) REFERENCES {}",
                            fk.columns.join(", "),
                            fk.target_table
                        )
                    }),
            );
            for constraint in unnamed {
                out.push(self.finding(
                    codes::UNNAMED_CONSTRAINT,
                    Severity::Warning,
                    &table.name,
                    format!("unnamed constraint on {}: {constraint}", table.name),
                    "name it (name=\"uq_…\" / \"ck_…\" / \"fk_…\", or a naming_convention on the MetaData); batch mode on SQLite cannot drop or alter an unnamed constraint",
                ));
            }
        }
        out
    }
}

/// A finding about `revision`, naming its file.
fn about(
    revision: &Revision,
    code: &'static str,
    severity: Severity,
    object: impl Into<String>,
    message: String,
) -> Finding {
    Finding::new(code, severity, object, message)
        .revision(&revision.id)
        .file(&revision.path)
}

/// `lint.irreversible-downgrade`: `downgrade()` is missing, does nothing or
/// raises. Static: it reads the parsed file, not a replay.
pub fn irreversible_downgrade(revision: &Revision, downgrade: Body) -> Option<Finding> {
    let what = match downgrade {
        Body::Missing => "has no downgrade()",
        Body::Empty => "has an empty downgrade()",
        Body::Raises => "has a downgrade() that raises",
        Body::Code => return None,
    };
    Some(
        about(
            revision,
            codes::IRREVERSIBLE_DOWNGRADE,
            Severity::Warning,
            &revision.id,
            what.to_owned(),
        )
        .hint("write the downgrade that undoes upgrade(), so a bad release can be rolled back"),
    )
}

/// `lint.parent-not-head` and `lint.multiple-heads`: new revisions that
/// branch off below a head of `base` or leave an extra head, and a graph
/// with several heads.
pub fn heads(graph: &Graph, base: &Graph, new: &BTreeSet<RevisionId>) -> Vec<Finding> {
    let mut out = Vec::new();
    let base_heads = base.heads();
    let mut branched: BTreeSet<&str> = BTreeSet::new();
    for id in graph.topological().iter().filter(|id| new.contains(*id)) {
        let revision = graph.get(id).expect("holds: ids come from the graph");
        let Some(parent) = revision
            .parents
            .iter()
            .find(|p| base.get(p).is_some() && !base_heads.contains(p))
        else {
            continue;
        };
        branched.insert(&revision.id);
        out.push(
            about(
                revision,
                codes::PARENT_NOT_HEAD,
                Severity::Warning,
                &revision.id,
                format!(
                    "down_revision {parent} is not a head of the base (heads: {})",
                    base_heads.join(", ")
                ),
            )
            .hint("point down_revision at the current head, so the history stays one line"),
        );
    }
    let heads = graph.heads();
    // Against an empty base (every revision new) there is no head to add
    // to: `lint.multiple-heads` says it all.
    if !base.is_empty() && heads.len() > base_heads.len().max(1) {
        // A new head ends a line of new revisions. The first line to
        // continue a head of the base is the history going on; any other
        // line (a second one on the same head, or a new base) adds a head,
        // unless it was already reported for branching below a head.
        let mut continued: BTreeSet<&str> = BTreeSet::new();
        for head in heads.iter().filter(|h| new.contains(*h)) {
            let mut first = graph.get(head).expect("holds: heads are revisions");
            while let Some(parent) = first.parents.first().filter(|p| new.contains(*p)) {
                first = graph.get(parent).expect("holds: parents in `new` exist");
            }
            let continues = first
                .parents
                .first()
                .filter(|p| base_heads.contains(p))
                .is_some_and(|p| continued.insert(p.as_str()));
            if continues || branched.contains(first.id.as_str()) {
                continue;
            }
            let revision = graph.get(head).expect("holds: heads are revisions");
            out.push(
                about(
                    revision,
                    codes::PARENT_NOT_HEAD,
                    Severity::Warning,
                    head,
                    format!(
                        "adds a head: the history has {} heads, the base had {}",
                        heads.len(),
                        base_heads.len()
                    ),
                )
                .hint(format!(
                    "point down_revision at the current head ({}); lint.multiple-heads names the fork point",
                    base_heads.join(", ")
                )),
            );
        }
    }
    out
}

/// Who created each table: the first revision, in topological order, whose
/// reference has it.
#[derive(Debug, Default)]
pub struct Owners {
    creator: BTreeMap<String, String>,
}

impl Owners {
    /// Records the tables of `revision`'s reference; earlier calls win.
    pub fn record(&mut self, revision: &str, schema: &Schema) {
        for key in schema.tables.keys() {
            self.creator
                .entry(key.clone())
                .or_insert_with(|| revision.to_owned());
        }
    }

    /// The owners of `holder` and `target` when a foreign key from one to
    /// the other crosses features, else `None`.
    ///
    /// Configured features decide when they own both tables. Otherwise the
    /// key crosses features when the tables were created by different
    /// revisions and do not share their first name word (`chat_message`
    /// and `chat` do; `note` and `user` do not): a feature that grows over
    /// several revisions keeps its prefix.
    fn cross_feature(
        &self,
        holder: &str,
        target: &str,
        config: &LintConfig,
    ) -> Option<(String, String)> {
        if let (Some(from), Some(to)) = (config.feature_of(holder), config.feature_of(target)) {
            return (from != to).then(|| (format!("feature {from}"), format!("feature {to}")));
        }
        let created = |table: &str| self.creator.get(&fold(table));
        let (from, to) = (created(holder)?, created(target)?);
        let word = |table: &str| fold(table.split('_').next().unwrap_or(table));
        (from != to && word(holder) != word(target))
            .then(|| (format!("revision {from}"), format!("revision {to}")))
    }
}

/// The items of `new` that `old` (the same table before) does not have.
fn fresh<'a, T: PartialEq>(old: Option<&'a [T]>, new: &'a [T]) -> impl Iterator<Item = &'a T> {
    new.iter()
        .filter(move |item| !old.is_some_and(|old| old.contains(item)))
}

/// A change in a few words: `added column bio`.
fn describe(change: &Change) -> String {
    let op = match change.op {
        Op::Added => "added",
        Op::Removed => "dropped",
        Op::Changed => "changed",
    };
    format!(
        "{op} {} {}",
        change.kind.name().replace('_', " "),
        change.name
    )
}

/// How a column change narrows what it can hold, if it does. The list is
/// deliberately short: NOT NULL added; a smaller integer type (TINYINT <
/// SMALLINT < MEDIUMINT < INT, INTEGER < BIGINT); unbounded text (TEXT,
/// CLOB, VARCHAR without length) to a bounded one, or a bounded one to a
/// smaller length; a REAL, FLOAT, DOUBLE, NUMERIC or DECIMAL to an integer.
fn narrowing(fields: &[FieldChange]) -> Option<String> {
    let field = |name: Field| fields.iter().find(|f| f.field == name);
    if let Some(change) = field(Field::NotNull)
        && change.before.is_none()
        && change.after.is_some()
    {
        return Some("becomes NOT NULL".to_owned());
    }
    let change = field(Field::DeclaredType)?;
    let (before, after) = (text_of(&change.before), text_of(&change.after));
    let narrower = match (
        (integer_rank(before), integer_rank(after)),
        (text_limit(before), text_limit(after)),
    ) {
        ((Some(old), Some(new)), _) => new < old,
        (_, (Some(old), Some(new))) => match (old, new) {
            (None, Some(_)) => true,
            (Some(old), Some(new)) => new < old,
            _ => false,
        },
        ((None, Some(_)), _) => matches!(
            base_type(before).as_str(),
            "REAL" | "FLOAT" | "DOUBLE" | "DOUBLE PRECISION" | "NUMERIC" | "DECIMAL"
        ),
        _ => false,
    };
    narrower.then(|| format!("{before} -> {after}"))
}

/// The size order of an integer type; `None` for other types.
fn integer_rank(declared: &str) -> Option<u8> {
    Some(match base_type(declared).as_str() {
        "TINYINT" => 1,
        "SMALLINT" => 2,
        "MEDIUMINT" => 3,
        "INT" | "INTEGER" => 4,
        "BIGINT" => 5,
        _ => return None,
    })
}

/// For a text type, its length limit (`None` inside: unbounded); `None` for
/// other types.
fn text_limit(declared: &str) -> Option<Option<u64>> {
    let base = base_type(declared);
    if !matches!(
        base.as_str(),
        "TEXT" | "CLOB" | "VARCHAR" | "CHAR" | "NVARCHAR" | "NCHAR" | "CHARACTER" | "STRING"
    ) {
        return None;
    }
    let length = declared
        .split_once('(')
        .and_then(|(_, rest)| rest.trim_end_matches(')').trim().parse().ok());
    Some(length)
}

/// A declared type without its length: `VARCHAR(36)` -> `VARCHAR`.
fn base_type(declared: &str) -> String {
    declared
        .split('(')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase()
}

/// A table's single primary-key column and its declared type.
fn id_column(table: &Table) -> Option<(&str, &str)> {
    let mut keys = table.columns.iter().filter(|c| c.primary_key.is_some());
    let column = keys.next()?;
    keys.next()
        .is_none()
        .then_some((column.name.as_str(), column.declared_type.as_str()))
}

/// SQLite's type affinity of a declared column type, by the five rules of
/// <https://www.sqlite.org/datatype3.html> section 3.1, applied in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Affinity {
    Integer,
    Text,
    Blob,
    Real,
    Numeric,
}

impl Affinity {
    /// The affinity SQLite gives a column declared `declared`.
    fn of(declared: &str) -> Affinity {
        let upper = declared.to_ascii_uppercase();
        let has = |words: &[&str]| words.iter().any(|w| upper.contains(w));
        if has(&["INT"]) {
            Affinity::Integer
        } else if has(&["CHAR", "CLOB", "TEXT"]) {
            Affinity::Text
        } else if has(&["BLOB"]) || upper.trim().is_empty() {
            Affinity::Blob
        } else if has(&["REAL", "FLOA", "DOUB"]) {
            Affinity::Real
        } else {
            Affinity::Numeric
        }
    }

    /// Its name as SQLite's documentation writes it.
    fn name(self) -> &'static str {
        match self {
            Affinity::Integer => "INTEGER",
            Affinity::Text => "TEXT",
            Affinity::Blob => "BLOB",
            Affinity::Real => "REAL",
            Affinity::Numeric => "NUMERIC",
        }
    }
}

/// The declared length of a text type (`VARCHAR(36)`: 36); `None` for an
/// unbounded one and for other affinities, whose numbers (`INT(11)`,
/// `NUMERIC(10, 2)`) SQLite ignores and other databases read differently.
fn declared_length(declared: &str) -> Option<u64> {
    if Affinity::of(declared) != Affinity::Text {
        return None;
    }
    declared
        .split_once('(')
        .and_then(|(_, rest)| rest.trim_end().trim_end_matches(')').trim().parse().ok())
}

/// What the project's ids are: an affinity, and a length when every id of
/// that affinity declares the same one.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IdConvention {
    affinity: Affinity,
    length: Option<u64>,
    /// Where it comes from, for the message: `configured`, or the types
    /// as spelt and how many tables use them.
    why: String,
}

impl IdConvention {
    /// The configured `id_type`.
    fn configured(declared: &str) -> IdConvention {
        IdConvention {
            affinity: Affinity::of(declared),
            length: declared_length(declared),
            why: format!("configured id_type {declared}"),
        }
    }

    /// The most common id affinity among the tables of `schema`; `None`
    /// when no table has a single-column key or two affinities tie.
    fn common(schema: &Schema) -> Option<IdConvention> {
        let mut by_affinity: BTreeMap<Affinity, Vec<&str>> = BTreeMap::new();
        let mut total = 0;
        for table in schema.tables.values() {
            if let Some((_, declared)) = id_column(table) {
                by_affinity
                    .entry(Affinity::of(declared))
                    .or_default()
                    .push(declared);
                total += 1;
            }
        }
        let best = by_affinity.values().map(Vec::len).max()?;
        let mut winners = by_affinity.into_iter().filter(|(_, ids)| ids.len() == best);
        let (affinity, declared) = winners.next()?;
        if winners.next().is_some() {
            return None;
        }
        let lengths: BTreeSet<Option<u64>> = declared.iter().map(|d| declared_length(d)).collect();
        let spellings: BTreeSet<String> = declared
            .iter()
            .map(|d| {
                if d.is_empty() {
                    "(no type)".to_owned()
                } else {
                    d.to_ascii_uppercase()
                }
            })
            .collect();
        Some(IdConvention {
            affinity,
            length: match lengths.into_iter().collect::<Vec<_>>().as_slice() {
                [Some(length)] => Some(*length),
                _ => None,
            },
            why: format!(
                "{best} of {total} existing tables: {}",
                spellings.into_iter().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// How an id declared `declared` differs in meaning, if it does: only
    /// affinity and length are named, never the spelling.
    fn difference(&self, declared: &str) -> Option<String> {
        let affinity = Affinity::of(declared);
        if affinity != self.affinity {
            return Some(format!(
                "{} affinity, but the project's ids have {} affinity ({})",
                affinity.name(),
                self.affinity.name(),
                self.why
            ));
        }
        let expected = self.length?;
        match declared_length(declared) {
            Some(length) if length == expected => None,
            Some(length) => Some(format!(
                "at most {length} characters, but the project's ids declare {expected} ({})",
                self.why
            )),
            None => Some(format!(
                "no length, but the project's ids declare {expected} characters ({})",
                self.why
            )),
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::schema::capture;
    use crate::schema::field::Value;

    /// The schema an in-memory database gets from `sql`.
    fn parse_sql_schema(sql: &str) -> Schema {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        capture(&tx).unwrap().schema
    }

    fn revision(id: &str, parents: &[&str]) -> Revision {
        Revision::bare(id, parents)
    }

    fn codes_of(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.code).collect()
    }

    fn type_change(before: &str, after: &str) -> Option<String> {
        narrowing(&[FieldChange {
            field: Field::DeclaredType,
            before: Some(Value::Text(before.into())),
            after: Some(Value::Text(after.into())),
        }])
    }

    #[test]
    fn narrowing_is_a_short_documented_list() {
        assert!(type_change("TEXT", "VARCHAR(20)").is_some());
        assert!(type_change("VARCHAR(50)", "VARCHAR(20)").is_some());
        assert!(type_change("INTEGER", "SMALLINT").is_some());
        assert!(type_change("NUMERIC(10, 2)", "INTEGER").is_some());
        assert!(type_change("VARCHAR(20)", "TEXT").is_none());
        assert!(type_change("VARCHAR(20)", "VARCHAR(50)").is_none());
        assert!(type_change("SMALLINT", "BIGINT").is_none());
        assert!(type_change("INTEGER", "TEXT").is_none());
        let not_null = narrowing(&[FieldChange {
            field: Field::NotNull,
            before: None,
            after: Some(Value::Flag(true)),
        }]);
        assert_eq!(not_null.as_deref(), Some("becomes NOT NULL"));
    }

    #[test]
    fn ids_follow_the_most_common_affinity_unless_tied() {
        let schema = parse_sql_schema(
            "CREATE TABLE a (id VARCHAR(36) PRIMARY KEY);
             CREATE TABLE b (id TEXT PRIMARY KEY);
             CREATE TABLE c (id INTEGER PRIMARY KEY);
             CREATE TABLE d (x INT, y INT, PRIMARY KEY (x, y));",
        );
        let convention = IdConvention::common(&schema).unwrap();
        assert_eq!(convention.affinity, Affinity::Text);
        assert_eq!(convention.length, None, "36 and unbounded disagree");
        assert_eq!(convention.why, "2 of 3 existing tables: TEXT, VARCHAR(36)");
        // VARCHAR, TEXT and CLOB mean the same in SQLite; INT and BIGINT too.
        for same in [
            "VARCHAR",
            "TEXT",
            "CLOB",
            "NVARCHAR(50)",
            "character varying",
        ] {
            assert_eq!(convention.difference(same), None, "{same}");
        }
        let integer = convention.difference("BIGINT").unwrap();
        assert!(
            integer.starts_with("INTEGER affinity, but the project's ids have TEXT affinity"),
            "{integer}"
        );
        let tied = parse_sql_schema(
            "CREATE TABLE a (id TEXT PRIMARY KEY); CREATE TABLE b (id INTEGER PRIMARY KEY);",
        );
        assert_eq!(IdConvention::common(&tied), None);
    }

    #[test]
    fn affinity_follows_sqlites_five_rules_in_order() {
        let cases = [
            ("INTEGER", Affinity::Integer),
            ("TINYINT", Affinity::Integer),
            ("VARCHAR(36)", Affinity::Text),
            ("CLOB", Affinity::Text),
            ("BLOB", Affinity::Blob),
            ("", Affinity::Blob),
            ("DOUBLE PRECISION", Affinity::Real),
            ("FLOAT", Affinity::Real),
            ("DECIMAL(10, 5)", Affinity::Numeric),
            ("DATETIME", Affinity::Numeric),
            // Rule order: "INT" wins over "CHAR", "POINT" holds "INT".
            ("CHARINT", Affinity::Integer),
            ("FLOATING POINT", Affinity::Integer),
        ];
        for (declared, affinity) in cases {
            assert_eq!(Affinity::of(declared), affinity, "{declared}");
        }
        // A length counts where every id declares the same one.
        let sized = IdConvention::configured("VARCHAR(36)");
        assert_eq!(sized.difference("VARCHAR(36)"), None);
        assert!(
            sized
                .difference("VARCHAR(12)")
                .unwrap()
                .starts_with("at most 12 characters")
        );
        assert!(sized.difference("TEXT").unwrap().starts_with("no length"));
        assert_eq!(
            IdConvention::configured("TEXT").difference("VARCHAR(12)"),
            None
        );
    }

    #[test]
    fn effect_rules_judge_new_tables_and_changes_to_old_ones() {
        let before = parse_sql_schema(
            "CREATE TABLE user (id VARCHAR(36) PRIMARY KEY, name TEXT, bio TEXT);
             CREATE TABLE chat (id VARCHAR(36) PRIMARY KEY);",
        );
        let after = parse_sql_schema(
            "CREATE TABLE user (id VARCHAR(36) PRIMARY KEY, name VARCHAR(20), email TEXT);
             CREATE TABLE note (id INTEGER PRIMARY KEY, user_id VARCHAR(36),
                 FOREIGN KEY (user_id) REFERENCES user (id));
             CREATE TABLE chat_tag (id VARCHAR(36) PRIMARY KEY, chat_id VARCHAR(36),
                 CONSTRAINT fk_chat_tag_chat FOREIGN KEY (chat_id) REFERENCES chat (id));",
        );
        let base = revision("base", &[]);
        let new = revision("new", &["base"]);
        let mut owners = Owners::default();
        owners.record("base", &before);
        owners.record("new", &after);
        let effect = Effect::new(&new, &before, &after);
        let findings = effect.findings(&owners, &LintConfig::default());
        assert_eq!(
            codes_of(&findings),
            [
                codes::ALTERS_EXISTING_TABLE,
                codes::DESTRUCTIVE,
                codes::DESTRUCTIVE,
                codes::DESTRUCTIVE,
                codes::CROSS_FEATURE_FK,
                codes::INCONSISTENT_ID_TYPE,
                codes::UNNAMED_CONSTRAINT,
            ],
            "{findings:#?}"
        );
        let objects: Vec<&str> = findings.iter().map(|f| f.object.as_str()).collect();
        assert_eq!(
            objects,
            [
                "user",
                "chat",
                "user.name",
                "user.bio",
                "note(user_id)",
                "note.id",
                "note"
            ]
        );
        assert!(
            findings
                .iter()
                .all(|f| f.revision.as_deref() == Some("new"))
        );

        // The same tables as configured features: user and note are one.
        let config: LintConfig =
            toml::from_str("features = { accounts = [\"user\", \"note\"] }").unwrap();
        let effect = Effect::new(&new, &before, &after);
        assert!(!codes_of(&effect.findings(&owners, &config)).contains(&codes::CROSS_FEATURE_FK));
        // A base revision creating everything alters nothing.
        let empty = Schema::default();
        let effect = Effect::new(&base, &empty, &before);
        assert_eq!(
            codes_of(&effect.findings(&owners, &config)),
            [] as [&str; 0]
        );
    }

    #[test]
    fn heads_rule_reports_branching_below_a_head_once() {
        let old = vec![revision("a", &[]), revision("b", &["a"])];
        let base = Graph::build(old.clone(), Vec::new());
        let mut all = old;
        all.push(revision("c", &["a"]));
        all.push(revision("d", &["c"]));
        all.push(revision("e", &["b"]));
        let graph = Graph::build(all.clone(), Vec::new());
        let new: BTreeSet<RevisionId> = ["c", "d", "e"].map(RevisionId::from).into();
        let findings = heads(&graph, &base, &new);
        assert_eq!(codes_of(&findings), [codes::PARENT_NOT_HEAD]);
        assert_eq!(findings[0].revision.as_deref(), Some("c"));

        // A second base revision adds a head without branching below one.
        all.truncate(2);
        all.push(revision("z", &[]));
        let graph = Graph::build(all, Vec::new());
        let new: BTreeSet<RevisionId> = ["z".into()].into();
        let findings = heads(&graph, &base, &new);
        assert_eq!(findings.len(), 1);
        assert!(findings[0].message.contains("adds a head"), "{findings:?}");
    }
}
