//! The data steps of a revision file's `upgrade()`, and of the
//! module-level helpers it calls, read from their tokens: comments are not
//! tokens, and a bare string statement (a docstring) is never run, so
//! neither counts.
//!
//! `op.execute` (and a connection's `execute`) is judged by its SQL when
//! that is a literal (directly, or in `sa.text(...)`): DDL is not a data
//! step, anything else is, including SQL that cannot be read statically.
//! `op.get_bind()` counts unless the connection only serves to inspect the
//! schema or run DDL (`sa.inspect(op.get_bind())`, or `conn =
//! op.get_bind()` used only in `inspect(conn)`, `conn.dialect`,
//! transactions and DDL), which hand-written migrations do to create
//! tables only if missing.

use std::collections::{BTreeMap, BTreeSet};

use super::tokens::{Token, TokenKind};
use super::{matching_close, split_top_level};
use crate::migrations::history::data_steps::{
    DataStep, DataStepKind, executed_sql_moves_data, literal_moves_data,
};

/// The data steps of `upgrade()` and of the module-level helpers it calls
/// (directly or through other helpers), in line order, each (kind, line)
/// once. `functions` holds the body of each module-level function.
pub(super) fn detect(functions: &BTreeMap<&str, Vec<&[Token]>>) -> Vec<DataStep> {
    let mut steps = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut pending = vec!["upgrade"];
    while let Some(name) = pending.pop() {
        let Some(statements) = functions.get(name).filter(|_| seen.insert(name)) else {
            continue;
        };
        let inspecting = inspection_binds(statements);
        for statement in statements {
            if !is_bare_string(statement) {
                scan(statement, &inspecting, &mut steps);
                pending.extend(called(statement, functions));
            }
        }
    }
    steps.sort_by_key(|step| (step.line, step.kind));
    steps.dedup();
    steps
}

/// The module-level functions a statement calls by name (`helper(...)`,
/// not a method `x.helper(...)`).
fn called<'f>(statement: &[Token], functions: &BTreeMap<&'f str, Vec<&[Token]>>) -> Vec<&'f str> {
    statement
        .windows(2)
        .enumerate()
        .filter(|(index, pair)| {
            pair[1].is_op("(") && !(*index > 0 && statement[index - 1].is_op("."))
        })
        .filter_map(|(_, pair)| match &pair[0].kind {
            TokenKind::Name(name) => functions.get_key_value(name.as_str()).map(|(key, _)| *key),
            _ => None,
        })
        .collect()
}

/// Whether a statement is only string literals: a docstring, or a string
/// expression that does nothing.
fn is_bare_string(statement: &[Token]) -> bool {
    statement
        .iter()
        .all(|token| matches!(token.kind, TokenKind::Str(_)))
}

/// Adds the data steps of one statement.
fn scan(tokens: &[Token], inspecting: &BTreeSet<&str>, steps: &mut Vec<DataStep>) {
    let mut index = 0;
    while let Some(token) = tokens.get(index) {
        let mut push = |kind| {
            steps.push(DataStep {
                kind,
                line: token.line,
            })
        };
        match &token.kind {
            TokenKind::Str(_) => {
                let run = tokens[index..]
                    .iter()
                    .take_while(|t| matches!(t.kind, TokenKind::Str(_)))
                    .count();
                if literal_moves_data(&text_of(&tokens[index..index + run])) {
                    push(DataStepKind::Sql);
                }
                index += run;
                continue;
            }
            TokenKind::Name(name) => {
                let next = tokens.get(index + 1);
                let called = next.is_some_and(|t| t.is_op("("));
                let attribute = next.is_some_and(|t| t.is_op("."));
                if (called && (name == "Session" || name == "sessionmaker"))
                    || (attribute && name == "session")
                {
                    push(DataStepKind::Connection);
                }
            }
            TokenKind::Op(op) if op == "." => {
                if let Some(method) = method_call(tokens, index) {
                    let on_op = index >= 1
                        && tokens[index - 1].is_name("op")
                        && !(index >= 2 && tokens[index - 2].is_op("."));
                    let close = matching_close(tokens, index + 2).unwrap_or(tokens.len());
                    match (on_op, method) {
                        (_, "execute" | "exec_driver_sql" | "executemany") => {
                            if execute_moves_data(&tokens[index + 3..close.max(index + 3)]) {
                                push(if on_op {
                                    DataStepKind::Execute
                                } else {
                                    DataStepKind::Connection
                                });
                            }
                            // Its SQL is judged here, not again as a literal.
                            index = close + 1;
                            continue;
                        }
                        (true, "bulk_insert") => push(DataStepKind::BulkInsert),
                        (_, "get_bind") if !inspects_only(tokens, index, close, inspecting) => {
                            push(DataStepKind::Connection)
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        index += 1;
    }
}

/// The method name when `tokens[dot]` is the `.` of `receiver.method(`.
fn method_call(tokens: &[Token], dot: usize) -> Option<&str> {
    let TokenKind::Name(method) = &tokens.get(dot + 1)?.kind else {
        return None;
    };
    tokens.get(dot + 2)?.is_op("(").then_some(method.as_str())
}

/// Whether the arguments of an `op.execute(...)` may move rows: the SQL
/// (positional or `sqltext=`, optionally wrapped in `sa.text(...)`) is
/// judged when it is a literal; anything else is unknown, so counted.
fn execute_moves_data(arguments: &[Token]) -> bool {
    let first = split_top_level(arguments, ",")
        .into_iter()
        .next()
        .unwrap_or_default();
    let sql = match first {
        [keyword, equals, rest @ ..] if keyword.is_name("sqltext") && equals.is_op("=") => rest,
        other => other,
    };
    let sql = match sql {
        [module, dot, text, open, inner @ .., close]
            if (module.is_name("sa") || module.is_name("sqlalchemy"))
                && dot.is_op(".")
                && text.is_name("text")
                && open.is_op("(")
                && close.is_op(")") =>
        {
            inner
        }
        [text, open, inner @ .., close]
            if text.is_name("text") && open.is_op("(") && close.is_op(")") =>
        {
            inner
        }
        other => other,
    };
    if sql.is_empty() || !is_bare_string(sql) {
        return true;
    }
    executed_sql_moves_data(&text_of(sql))
}

/// The text of adjacent string literals, placeholders of f-strings left
/// out (their literal parts still say what the SQL is).
fn text_of(literals: &[Token]) -> String {
    literals
        .iter()
        .filter_map(|token| match &token.kind {
            TokenKind::Str(literal) => Some(literal.value.as_str()),
            _ => None,
        })
        .collect()
}

/// Whether the `get_bind()` call whose `.` is at `dot` (and whose `)` is
/// at `close`) only serves inspection: passed straight to `inspect(...)`,
/// followed by `.dialect`, or assigned to a name in `inspecting`.
fn inspects_only(tokens: &[Token], dot: usize, close: usize, inspecting: &BTreeSet<&str>) -> bool {
    let receiver = dot.saturating_sub(1);
    if is_inspect_argument(tokens, receiver, close) {
        return true;
    }
    if tokens.get(close + 1).is_some_and(|t| t.is_op("."))
        && tokens.get(close + 2).is_some_and(|t| t.is_name("dialect"))
    {
        return true;
    }
    match tokens {
        [target, equals, ..] if receiver == 2 && equals.is_op("=") && close + 1 == tokens.len() => {
            matches!(&target.kind, TokenKind::Name(name) if inspecting.contains(name.as_str()))
        }
        _ => false,
    }
}

/// Whether `tokens[start..=end]` is the whole argument of an
/// `inspect(...)` (or `Inspector.from_engine(...)`) call.
fn is_inspect_argument(tokens: &[Token], start: usize, end: usize) -> bool {
    start >= 2
        && tokens[start - 1].is_op("(")
        && (tokens[start - 2].is_name("inspect") || tokens[start - 2].is_name("from_engine"))
        && tokens.get(end + 1).is_some_and(|t| t.is_op(")"))
}

/// The names bound by `NAME = op.get_bind()` (or `context.get_bind()`)
/// whose every other use is harmless (see [`harmless_use`]): such a
/// connection reads the schema or runs DDL, never rows.
fn inspection_binds<'t>(statements: &[&'t [Token]]) -> BTreeSet<&'t str> {
    let mut binds: BTreeSet<&str> = statements
        .iter()
        .filter_map(|statement| match statement {
            [target, equals, _, dot, method, open, close]
                if equals.is_op("=")
                    && dot.is_op(".")
                    && method.is_name("get_bind")
                    && open.is_op("(")
                    && close.is_op(")") =>
            {
                match &target.kind {
                    TokenKind::Name(name) => Some(name.as_str()),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect();
    for statement in statements {
        for (index, token) in statement.iter().enumerate() {
            let TokenKind::Name(name) = &token.kind else {
                continue;
            };
            if !binds.contains(name.as_str())
                || (index > 0 && statement[index - 1].is_op("."))
                || (index == 0 && statement.get(1).is_some_and(|t| t.is_op("=")))
            {
                continue;
            }
            if !harmless_use(statement, index) {
                binds.remove(name.as_str());
            }
        }
    }
    binds
}

/// Whether the use of a connection's name at `statement[index]` leaves
/// rows alone: `inspect(NAME)`, `NAME.dialect`, a transaction
/// (`NAME.begin()`, `NAME.begin_nested()`), or `NAME.execute(...)` of SQL
/// known to change no row.
fn harmless_use(statement: &[Token], index: usize) -> bool {
    if is_inspect_argument(statement, index, index) {
        return true;
    }
    if !statement.get(index + 1).is_some_and(|t| t.is_op(".")) {
        return false;
    }
    let Some(TokenKind::Name(attribute)) = statement.get(index + 2).map(|t| &t.kind) else {
        return false;
    };
    match attribute.as_str() {
        "dialect" => true,
        "begin" | "begin_nested" => method_call(statement, index + 1).is_some(),
        "execute" | "exec_driver_sql" if method_call(statement, index + 1).is_some() => {
            let close = matching_close(statement, index + 3).unwrap_or(statement.len());
            !execute_moves_data(&statement[index + 4..close.max(index + 4)])
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::migrations::history::data_steps::{DataStep, DataStepKind};
    use crate::migrations::history::revision_file::parse;

    use DataStepKind::{BulkInsert, Connection, Execute, Sql};

    /// The (kind, line) of each data step of `source`'s `upgrade()`.
    fn steps(source: &str) -> Vec<(DataStepKind, usize)> {
        parse(source)
            .unwrap_or_else(|error| panic!("parses: {error}"))
            .data_steps
            .into_iter()
            .map(|DataStep { kind, line }| (kind, line))
            .collect()
    }

    #[test]
    fn an_open_webui_style_backfill_is_found_line_by_line() {
        // The shape of Open WebUI's group_member migration: create a table,
        // read the old column through the connection, insert rows.
        let source = r#""""Add group_member table

Revision ID: 37f288994c47
Revises: a5c220713937
"""
import json

from alembic import op
import sqlalchemy as sa

revision = "37f288994c47"
down_revision = "a5c220713937"


def upgrade() -> None:
    op.create_table(
        "group_member",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("group_id", sa.Text(), nullable=False),
    )
    conn = op.get_bind()
    group_table = sa.table("group", sa.column("id", sa.Text()), sa.column("user_ids", sa.JSON()))
    results = conn.execute(
        sa.select(group_table.c.id, group_table.c.user_ids)
    ).fetchall()
    member_table = sa.table("group_member", sa.column("id"), sa.column("group_id"))
    rows = [{"id": str(i), "group_id": gid} for i, (gid, _) in enumerate(results)]
    if rows:
        op.bulk_insert(member_table, rows)


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(sa.text("DELETE FROM group_member"))
    op.drop_table("group_member")
"#;
        assert_eq!(
            steps(source),
            [(Connection, 21), (Connection, 23), (BulkInsert, 29)]
        );
    }

    #[test]
    fn op_execute_is_judged_by_its_sql_when_it_is_a_literal() {
        let source = r#"
def upgrade():
    op.execute("CREATE INDEX IF NOT EXISTS ix_chat_user ON chat (user_id)")
    op.execute(sa.text('DROP TABLE IF EXISTS old_chat'))
    op.execute(
        "INSERT INTO b (a_id, name) "
        "SELECT id, name FROM a"
    )
    op.execute(sqltext="UPDATE chat SET archived = 0 WHERE archived IS NULL")
    op.execute(chat.update().values(archived=False))
    op.execute(f"UPDATE {table} SET x = 1")
    op.execute(f"{statement}")
    op.execute(statement)
    op.execute("PRAGMA foreign_keys=ON")
"#;
        assert_eq!(
            steps(source),
            [
                (Execute, 5),
                (Execute, 9),
                (Execute, 10),
                (Execute, 11),
                (Execute, 12),
                (Execute, 13)
            ]
        );
    }

    #[test]
    fn comments_docstrings_and_downgrade_do_not_count() {
        let source = r#""""Backfill: UPDATE chat SET x = 1 (the module docstring)."""

def upgrade():
    """Upgrade schema.

    Earlier versions ran UPDATE chat SET archived = 0 here; DELETE FROM tmp too.
    """
    # op.execute("UPDATE chat SET archived = 0")
    # conn = op.get_bind(); conn.execute(...)
    op.add_column("chat", sa.Column("archived", sa.Boolean()))  # op.bulk_insert(t, rows)
    "INSERT INTO nowhere VALUES (1)"
    op.create_index("ix_update", "chat", ["updated_at"])
    op.alter_column("chat", "title", comment="Update the title")


def downgrade():
    op.execute("DELETE FROM chat")
    op.bulk_insert(t, [{"id": 1}])
"#;
        assert_eq!(steps(source), []);
    }

    #[test]
    fn a_connection_that_only_inspects_the_schema_is_not_a_data_step() {
        // Open WebUI's "create the table only if missing" idiom.
        let inspect_only = r#"
def upgrade():
    conn = op.get_bind()
    inspector = sa.inspect(conn)
    if "folder" not in set(inspector.get_table_names()):
        op.create_table("folder", sa.Column("id", sa.Text()))
    if op.get_bind().dialect.name == "sqlite":
        pass
    columns = sa.inspect(op.get_bind()).get_columns("chat")
    if conn.dialect.name != "sqlite":
        op.create_index("ix", "chat", ["id"])
"#;
        assert_eq!(steps(inspect_only), []);
        // The same connection, then also used to run SQL.
        let used = r#"
def upgrade():
    conn = op.get_bind()
    inspector = sa.inspect(conn)
    conn.execute(sa.text("UPDATE folder SET items = '[]' WHERE items IS NULL"))
"#;
        assert_eq!(steps(used), [(Connection, 3), (Connection, 5)]);
        // DDL through the connection, in a transaction: still schema only.
        let ddl = r#"
def upgrade():
    conn = op.get_bind()
    with conn.begin_nested():
        conn.execute(sa.text(f"DROP TABLE IF EXISTS _alembic_tmp_{name}"))
        conn.execute(sa.text("CREATE INDEX ix ON chat (id)"))
"#;
        assert_eq!(steps(ddl), []);
    }

    #[test]
    fn helpers_that_upgrade_calls_count_and_others_do_not() {
        // Open WebUI's chat_message migration flushes batches in a helper.
        let source = r#"
def _flush_batch(conn, table, batch):
    conn.execute(table.insert(), batch)


def _index_exists(inspector, name, table):
    return name in {i["name"] for i in inspector.get_indexes(table)}


def _unused():
    op.execute("DELETE FROM chat")


def upgrade() -> None:
    conn = op.get_bind()
    if not _index_exists(sa.inspect(conn), "ix", "chat"):
        op.create_index("ix", "chat", ["id"])
    _flush_batch(conn, table, [])


def downgrade() -> None:
    _unused()
"#;
        assert_eq!(steps(source), [(Connection, 3), (Connection, 15)]);
    }

    #[test]
    fn sessions_and_sql_literals_anywhere_in_upgrade_count() {
        let source = r#"
async def upgrade() -> None:
    session = Session(bind=op.get_bind())
    for user in session.query(User):
        user.role = "admin"
    session.commit()
    backfill = """
        UPDATE chat
        SET archived = 0
    """
    helper(backfill)
    op.add_column("chat", sa.Column("x", sa.Enum("INSERT", "UPDATE", "DELETE")))
"#;
        assert_eq!(
            steps(source),
            [(Connection, 3), (Connection, 4), (Connection, 6), (Sql, 7)]
        );
    }
}
