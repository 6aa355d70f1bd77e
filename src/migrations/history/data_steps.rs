//! Data steps: the places where a migration moves rows (a backfill, a
//! copy, a cleanup) rather than only changing the schema, found statically.
//!
//! A schema-only fix (`migsnap repair`) reproduces what a revision does to
//! the schema but never what it does to the rows, so a caller that would
//! skip revisions needs to know which of them have such steps. Python
//! revision files are read in [`super::revision_file`] (`upgrade()` and
//! the module-level helpers it calls); SQL text, from a SQL-folder
//! migration or a Python string literal, is read here.
//!
//! SQL is classified by each statement's leading words: `INSERT INTO`,
//! `INSERT OR`, `REPLACE INTO`, `DELETE FROM` and `UPDATE name ... SET`
//! (also after a `WITH` clause) move data; the statements of a
//! `CREATE TRIGGER ... BEGIN ... END` body belong to the trigger, so they
//! do not.

use serde::Serialize;

use super::graph::{Graph, Revision};
use super::revision_id::RevisionId;

/// What kind of data step a migration takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataStepKind {
    /// `op.execute(...)` whose SQL moves rows, or whose SQL cannot be read
    /// statically (a variable, `table.update()`, an f-string with no
    /// readable statement): unknown, so counted.
    Execute,
    /// `op.bulk_insert(table, rows)`.
    BulkInsert,
    /// A connection or ORM session used for more than inspecting the schema:
    /// `op.get_bind()`, `conn.execute(...)`, `Session(...)`, `session.*`.
    Connection,
    /// SQL that moves rows: a string literal in Python, or a statement of a
    /// SQL-folder migration.
    Sql,
}

impl DataStepKind {
    /// A short description for messages.
    pub fn describe(self) -> &'static str {
        match self {
            DataStepKind::Execute => "op.execute",
            DataStepKind::BulkInsert => "op.bulk_insert",
            DataStepKind::Connection => "connection use",
            DataStepKind::Sql => "INSERT/UPDATE/DELETE SQL",
        }
    }
}

/// One data step of a migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct DataStep {
    /// What it is.
    pub kind: DataStepKind,
    /// The 1-based line of the file where it starts.
    pub line: usize,
}

/// The revisions with data steps that upgrading from `from` to `to`
/// applies (what `to` needs and `from` does not, dependencies included),
/// prerequisites first: what a schema-only change from `from`'s schema to
/// `to`'s leaves undone.
pub fn between<'g>(graph: &'g Graph, from: &[RevisionId], to: &[RevisionId]) -> Vec<&'g Revision> {
    let done = graph.closure(from.iter().map(RevisionId::as_str));
    let wanted = graph.closure(to.iter().map(RevisionId::as_str));
    graph
        .topological()
        .iter()
        .filter(|id| wanted.contains(*id) && !done.contains(*id))
        .filter_map(|id| graph.get(id))
        .filter(|revision| !revision.data_steps.is_empty())
        .collect()
}

/// `steps` in words, by kind in order of first appearance:
/// `op.execute at line 12; connection use at lines 20, 25`.
pub fn summary(steps: &[DataStep]) -> String {
    let mut kinds: Vec<(DataStepKind, Vec<String>)> = Vec::new();
    for step in steps {
        let line = step.line.to_string();
        match kinds.iter_mut().find(|(kind, _)| *kind == step.kind) {
            Some((_, lines)) => lines.push(line),
            None => kinds.push((step.kind, vec![line])),
        }
    }
    kinds
        .into_iter()
        .map(|(kind, lines)| {
            let plural = if lines.len() == 1 { "" } else { "s" };
            format!("{} at line{plural} {}", kind.describe(), lines.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The data steps of a SQL-folder migration: each statement of `sql` that
/// moves rows, as a [`DataStepKind::Sql`] step at its first line.
pub fn scan_sql(sql: &str) -> Vec<DataStep> {
    statements(sql)
        .into_iter()
        .filter(|statement| statement.effect == Effect::Data)
        .map(|statement| DataStep {
            kind: DataStepKind::Sql,
            line: statement.line,
        })
        .collect()
}

/// Whether a string literal is SQL that moves rows: some statement in it
/// does. Text that is not SQL (a message, a column name) is not.
pub(crate) fn literal_moves_data(text: &str) -> bool {
    statements(text)
        .iter()
        .any(|statement| statement.effect == Effect::Data)
}

/// Whether the SQL given to `op.execute` may move rows: unless every
/// statement is known to be something else (DDL, a pragma, a query), it
/// is counted, as its effect is unknown.
pub(crate) fn executed_sql_moves_data(text: &str) -> bool {
    let statements = statements(text);
    statements.is_empty()
        || statements
            .iter()
            .any(|statement| statement.effect != Effect::Schema)
}

/// What one SQL statement does, as far as rows go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    /// It inserts, updates or deletes rows.
    Data,
    /// It leads with a keyword that changes no row (DDL, a pragma, a query,
    /// a transaction statement).
    Schema,
    /// It leads with something else: not readable as SQL.
    Unknown,
}

/// Keywords that lead statements which change no row.
const SCHEMA_LEADS: [&str; 17] = [
    "CREATE",
    "DROP",
    "ALTER",
    "PRAGMA",
    "SELECT",
    "VACUUM",
    "ANALYZE",
    "REINDEX",
    "BEGIN",
    "COMMIT",
    "END",
    "ROLLBACK",
    "SAVEPOINT",
    "RELEASE",
    "ATTACH",
    "DETACH",
    "EXPLAIN",
];

/// A statement: the line of its first word and what it does.
struct Statement {
    line: usize,
    effect: Effect,
}

/// One lexical unit of SQL, as far as classification needs.
#[derive(Debug, PartialEq)]
enum Word {
    /// A bare word, upper-cased: a keyword or an unquoted name.
    Bare(String),
    /// A quoted name (`"x"`, `` `x` ``, `[x]`).
    Quoted,
    /// Anything else: a string literal, a number, punctuation.
    Other,
}

/// Splits `sql` into statements and classifies each. Comments and string
/// literals never end a statement or count as keywords.
fn statements(sql: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut words: Vec<Word> = Vec::new();
    let mut first_line = 0;
    let mut line = 1;
    let mut chars = sql.chars().peekable();
    let mut finish = |words: &mut Vec<Word>, first_line: usize| {
        if !words.is_empty() {
            out.push(Statement {
                line: first_line,
                effect: classify(words),
            });
            words.clear();
        }
    };
    while let Some(c) = chars.next() {
        let start_line = line;
        let word = match c {
            '\n' => {
                line += 1;
                continue;
            }
            c if c.is_whitespace() => continue,
            '-' if chars.peek() == Some(&'-') => {
                while chars.next_if(|c| *c != '\n').is_some() {}
                continue;
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    line += usize::from(c == '\n');
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                continue;
            }
            ';' if !in_trigger_body(&words) => {
                finish(&mut words, first_line);
                continue;
            }
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                // A doubled quote inside is an escaped quote: the scan just
                // closes and reopens, which classifies the same.
                for c in chars.by_ref() {
                    line += usize::from(c == '\n');
                    if c == close {
                        break;
                    }
                }
                if c == '\'' { Word::Other } else { Word::Quoted }
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut text = String::from(c);
                while let Some(c) = chars.next_if(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                {
                    text.push(c);
                }
                Word::Bare(text.to_ascii_uppercase())
            }
            _ => Word::Other,
        };
        if words.is_empty() {
            first_line = start_line;
        }
        words.push(word);
    }
    finish(&mut words, first_line);
    out
}

/// Whether `words` (a statement so far) is a `CREATE TRIGGER` whose body is
/// open: its `;` separate the body's statements, not the trigger's.
fn in_trigger_body(words: &[Word]) -> bool {
    let bare = |index: usize| match words.get(index) {
        Some(Word::Bare(word)) => word.as_str(),
        _ => "",
    };
    if bare(0) != "CREATE" {
        return false;
    }
    let trigger = (1..=2).any(|index| bare(index) == "TRIGGER");
    let begun = words.iter().any(|w| *w == Word::Bare("BEGIN".into()));
    trigger && begun && words.last() != Some(&Word::Bare("END".into()))
}

/// What a statement's words say it does.
fn classify(words: &[Word]) -> Effect {
    let Some(Word::Bare(lead)) = words.first() else {
        return Effect::Unknown;
    };
    if lead == "WITH" {
        // A common table expression leads the statement that follows it.
        return if (1..words.len()).any(|at| moves_data(&words[at..])) {
            Effect::Data
        } else {
            Effect::Unknown
        };
    }
    if moves_data(words) {
        Effect::Data
    } else if SCHEMA_LEADS.contains(&lead.as_str()) {
        Effect::Schema
    } else {
        Effect::Unknown
    }
}

/// Whether `words` starts an `INSERT`, `REPLACE`, `UPDATE` or `DELETE`,
/// read strictly enough that English (`"Update the docs"`) is not.
fn moves_data(words: &[Word]) -> bool {
    let bare = |index: usize| match words.get(index) {
        Some(Word::Bare(word)) => Some(word.as_str()),
        _ => None,
    };
    let name = |index: usize| matches!(words.get(index), Some(Word::Bare(_) | Word::Quoted));
    match bare(0) {
        Some("INSERT") => matches!(bare(1), Some("INTO" | "OR")),
        Some("REPLACE") => bare(1) == Some("INTO"),
        Some("DELETE") => bare(1) == Some("FROM"),
        Some("UPDATE") => {
            (bare(1) == Some("OR") || name(1))
                && words.iter().skip(2).any(|w| *w == Word::Bare("SET".into()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revisions_between_two_positions_that_move_rows() {
        let step = |line| DataStep {
            kind: DataStepKind::Sql,
            line,
        };
        let mut revisions: Vec<Revision> = [("a", &[][..]), ("b", &["a"]), ("c", &["b"])]
            .iter()
            .map(|(id, parents)| Revision::bare(id, parents))
            .collect();
        revisions[0].data_steps = vec![step(1)];
        revisions[1].data_steps = vec![step(2)];
        let graph = Graph::build(revisions, Vec::new());
        let ids = |from: &[&str], to: &[&str]| -> Vec<String> {
            let owned = |ids: &[&str]| {
                ids.iter()
                    .map(|id| RevisionId::from(*id))
                    .collect::<Vec<_>>()
            };
            between(&graph, &owned(from), &owned(to))
                .iter()
                .map(|revision| revision.id.to_string())
                .collect()
        };
        assert_eq!(ids(&["a"], &["c"]), ["b"]);
        assert_eq!(ids(&[], &["c"]), ["a", "b"]);
        assert_eq!(ids(&["b"], &["c"]), Vec::<String>::new());
        assert_eq!(ids(&["c"], &["a"]), Vec::<String>::new());
    }

    #[test]
    fn a_summary_groups_lines_by_kind() {
        let steps = [
            DataStep {
                kind: DataStepKind::Connection,
                line: 20,
            },
            DataStep {
                kind: DataStepKind::Execute,
                line: 22,
            },
            DataStep {
                kind: DataStepKind::Connection,
                line: 25,
            },
        ];
        assert_eq!(
            summary(&steps),
            "connection use at lines 20, 25; op.execute at line 22"
        );
    }

    fn lines(sql: &str) -> Vec<usize> {
        scan_sql(sql).into_iter().map(|step| step.line).collect()
    }

    #[test]
    fn data_statements_are_found_with_their_lines() {
        let sql = "-- backfill; UPDATE in a comment\nCREATE TABLE b (id INTEGER, a_id INTEGER);\n\
                   INSERT INTO b (a_id) SELECT id FROM a;\n/* DELETE FROM b; */\n\
                   UPDATE \"b\" SET a_id = 0\n  WHERE a_id IS NULL;\ndelete from b where 0;\n\
                   INSERT OR IGNORE INTO b VALUES (1, 'x; UPDATE y SET z = 1');\n\
                   REPLACE INTO b VALUES (2, 2);\nWITH old AS (SELECT 1) DELETE FROM b;\n";
        assert_eq!(lines(sql), [3, 5, 7, 8, 9, 10]);
    }

    #[test]
    fn ddl_triggers_and_prose_are_not_data() {
        assert_eq!(
            lines(
                "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE b SET n = n + 1;\n  DELETE FROM c WHERE id = new.id;\nEND;\nCREATE INDEX ix ON a (id);\nDROP TABLE old;\nPRAGMA foreign_keys = ON;"
            ),
            Vec::<usize>::new()
        );
        for prose in [
            "Update the docs",
            "insert a row",
            "DELETE",
            "UPDATE",
            "updated_at",
        ] {
            assert!(!literal_moves_data(prose), "{prose}");
        }
        assert!(literal_moves_data("update chat set archived = 0"));
    }

    #[test]
    fn executed_sql_counts_unless_known_to_change_no_row() {
        assert!(!executed_sql_moves_data(
            "CREATE INDEX ix_chat_user ON chat (user_id)"
        ));
        assert!(!executed_sql_moves_data(
            "DROP TABLE x; ALTER TABLE y RENAME TO z"
        ));
        assert!(!executed_sql_moves_data("PRAGMA foreign_keys=OFF"));
        assert!(executed_sql_moves_data("UPDATE chat SET x = 1"));
        assert!(executed_sql_moves_data(
            "CREATE TABLE t (x); INSERT INTO t VALUES (1)"
        ));
        // Nothing readable (an f-string's placeholders only) is unknown.
        assert!(executed_sql_moves_data(""));
        assert!(executed_sql_moves_data("  SET x = 1"));
    }
}
