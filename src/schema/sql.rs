//! Rendering a schema as SQL.
//!
//! - [`Schema::to_sql`] builds a script from the model that recreates the
//!   schema on an empty SQLite database: tables in foreign-key order, then
//!   indexes, views and triggers. Every name goes through [`quote_ident`],
//!   because names come from the user's database and are untrusted.
//!   Expressions are the model's normalised token text, which the tokenizer
//!   produced from SQL that SQLite itself accepted.
//! - [`Schema::exact_sql`] lists the exact stored `CREATE` texts, metadata
//!   tables included: what `show` prints.

use std::collections::{BTreeMap, BTreeSet};

use super::lex::{self, TokenKind};
use super::model::{
    Column, Conflict, Event, ExclusionReason, ForeignKey, Index, IndexOrigin, IndexPart,
    IndexTarget, ObjectKind, PrimaryKey, Schema, Storage, Table, Timing, Trigger, View,
    VirtualTable, fold, same_name,
};

pub use super::lex::quote_ident;

impl Schema {
    /// A SQL script that recreates this schema on an empty database. Objects
    /// the parser could not read are written as stored (normalised, so no
    /// comment can swallow the `;` that ends them).
    pub fn to_sql(&self) -> String {
        let mut out = String::new();
        for table in self.tables_in_dependency_order() {
            match (&table.unparsed, &table.sql) {
                (Some(_), Some(sql)) => out.push_str(&statement_as_is(sql)),
                _ => self.render_table(table, &mut out),
            }
            out.push_str(";\n");
        }
        for index in self.indexes.values() {
            if index.origin != IndexOrigin::Created {
                continue;
            }
            match (&index.unparsed, &index.sql) {
                (Some(_), Some(sql)) => out.push_str(&statement_as_is(sql)),
                _ => self.render_index(index, &mut out),
            }
            out.push_str(";\n");
        }
        for view in self.views.values() {
            match view.unparsed {
                Some(_) => out.push_str(&statement_as_is(&view.sql)),
                None => render_view(view, &mut out),
            }
            out.push_str(";\n");
        }
        for trigger in self.triggers.values() {
            match trigger.unparsed {
                Some(_) => out.push_str(&statement_as_is(&trigger.sql)),
                None => render_trigger(trigger, &mut out),
            }
            out.push_str(";\n");
        }
        out
    }

    /// The exact `CREATE` texts the database stored, each followed by `;`:
    /// tables (metadata tables such as `alembic_version` included), then
    /// indexes, views and triggers, each kind in name order. SQLite's
    /// internal and shadow tables are left out.
    pub fn exact_sql(&self) -> String {
        let mut texts: BTreeMap<(ObjectKind, String), &str> = BTreeMap::new();
        fn add<'s>(
            texts: &mut BTreeMap<(ObjectKind, String), &'s str>,
            kind: ObjectKind,
            name: &str,
            sql: Option<&'s str>,
        ) {
            if let Some(sql) = sql {
                texts.insert((kind, fold(name)), sql);
            }
        }
        for table in self.tables.values() {
            add(
                &mut texts,
                ObjectKind::Table,
                &table.name,
                table.sql.as_deref(),
            );
        }
        for index in self.indexes.values() {
            add(
                &mut texts,
                ObjectKind::Index,
                &index.name,
                index.sql.as_deref(),
            );
        }
        for view in self.views.values() {
            add(&mut texts, ObjectKind::View, &view.name, Some(&view.sql));
        }
        for trigger in self.triggers.values() {
            add(
                &mut texts,
                ObjectKind::Trigger,
                &trigger.name,
                Some(&trigger.sql),
            );
        }
        for excluded in &self.excluded {
            if excluded.reason == ExclusionReason::Metadata {
                add(
                    &mut texts,
                    excluded.kind,
                    &excluded.name,
                    excluded.sql.as_deref(),
                );
            }
        }
        let mut out = String::new();
        for sql in texts.values() {
            out.push_str(sql);
            out.push_str(";\n");
        }
        out
    }

    /// Tables with every table a foreign key points to before the tables
    /// pointing to it, ties (and cycles, which SQLite accepts) in name order.
    fn tables_in_dependency_order(&self) -> Vec<&Table> {
        let mut waiting_on: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for (key, table) in &self.tables {
            let targets = table
                .foreign_keys
                .iter()
                .map(|fk| fold(&fk.target_table))
                .filter(|target| target != key && self.tables.contains_key(target))
                .collect();
            waiting_on.insert(key, targets);
        }
        let mut order = Vec::with_capacity(self.tables.len());
        while !waiting_on.is_empty() {
            let ready: Vec<&str> = waiting_on
                .iter()
                .filter(|(_, targets)| targets.is_empty())
                .map(|(key, _)| *key)
                .collect();
            // A cycle: take the first waiting table by name.
            let ready = if ready.is_empty() {
                waiting_on.keys().take(1).copied().collect()
            } else {
                ready
            };
            for key in ready {
                waiting_on.remove(key);
                for targets in waiting_on.values_mut() {
                    targets.remove(key);
                }
                order.push(&self.tables[key]);
            }
        }
        order
    }

    fn constraint_index(
        &self,
        table: &Table,
        origin: IndexOrigin,
        columns: &[String],
    ) -> Option<&Index> {
        self.indexes.values().find(|index| {
            same_name(&index.table, &table.name)
                && index.origin == origin
                && index.parts.len() == columns.len()
                && index.parts.iter().zip(columns).all(|(part, column)| {
                    matches!(&part.target, IndexTarget::Column(c) if same_name(c, column))
                })
        })
    }

    fn render_table(&self, table: &Table, out: &mut String) {
        if let Some(vt) = &table.virtual_table {
            render_virtual_table(&table.name, vt, out);
            return;
        }
        let mut items = Vec::new();
        let pk_index = table
            .primary_key
            .as_ref()
            .and_then(|pk| self.constraint_index(table, IndexOrigin::PrimaryKey, &pk.columns));
        // A one-column key goes on its column: that is the only place
        // AUTOINCREMENT and SQLite's `INTEGER PRIMARY KEY DESC` quirk exist.
        let column_pk = table.primary_key.as_ref().filter(|pk| {
            pk.columns.len() == 1
                && pk_index.is_none_or(|index| {
                    let column = table.column(&pk.columns[0]);
                    index.parts[0].collation.as_deref().unwrap_or("BINARY")
                        == column_collation(column)
                })
        });
        for column in &table.columns {
            let pk = column_pk.filter(|pk| same_name(&pk.columns[0], &column.name));
            items.push(render_column(table, column, pk, pk_index));
        }
        if let Some(pk) = table.primary_key.as_ref().filter(|_| column_pk.is_none()) {
            let mut item = String::new();
            push_constraint_name(&mut item, pk.name.as_deref());
            item.push_str(" PRIMARY KEY ");
            item.push_str(&self.key_list(table, &pk.columns, pk_index));
            push_conflict(&mut item, pk.on_conflict);
            items.push(item.trim_start().to_owned());
        }
        for unique in &table.uniques {
            let index =
                self.constraint_index(table, IndexOrigin::UniqueConstraint, &unique.columns);
            let mut item = String::new();
            push_constraint_name(&mut item, unique.name.as_deref());
            item.push_str(" UNIQUE ");
            item.push_str(&self.key_list(table, &unique.columns, index));
            push_conflict(&mut item, unique.on_conflict);
            items.push(item.trim_start().to_owned());
        }
        for check in &table.checks {
            let mut item = String::new();
            push_constraint_name(&mut item, check.name.as_deref());
            item.push_str(" CHECK (");
            item.push_str(&guarded(&check.expression, false));
            item.push(')');
            items.push(item.trim_start().to_owned());
        }
        items.extend(table.foreign_keys.iter().map(render_foreign_key));
        out.push_str("CREATE TABLE ");
        out.push_str(&quote_ident(&table.name));
        out.push_str(" (\n  ");
        out.push_str(&items.join(",\n  "));
        out.push_str("\n)");
        let mut options = Vec::new();
        if table.options.without_rowid {
            options.push("WITHOUT ROWID");
        }
        if table.options.strict {
            options.push("STRICT");
        }
        if !options.is_empty() {
            out.push(' ');
            out.push_str(&options.join(", "));
        }
    }

    /// `("a" COLLATE "X" DESC, …)` for a key, details from its index.
    fn key_list(&self, table: &Table, columns: &[String], index: Option<&Index>) -> String {
        let parts: Vec<String> = match index {
            Some(index) => index
                .parts
                .iter()
                .map(|part| render_part(table, part))
                .collect(),
            None => columns.iter().map(|c| quote_ident(c)).collect(),
        };
        format!("({})", parts.join(", "))
    }

    fn render_index(&self, index: &Index, out: &mut String) {
        out.push_str(if index.unique {
            "CREATE UNIQUE INDEX "
        } else {
            "CREATE INDEX "
        });
        out.push_str(&quote_ident(&index.name));
        out.push_str(" ON ");
        out.push_str(&quote_ident(&index.table));
        out.push_str(" (");
        let table = self.table(&index.table);
        let parts: Vec<String> = index
            .parts
            .iter()
            .map(|part| match table {
                Some(table) => render_part(table, part),
                None => render_part(&Table::new("", Vec::new()), part),
            })
            .collect();
        out.push_str(&parts.join(", "));
        out.push(')');
        if let Some(predicate) = &index.predicate {
            out.push_str(" WHERE ");
            out.push_str(&guarded(predicate, false));
        }
    }
}

/// `CREATE VIRTUAL TABLE name USING module(arguments)`.
fn render_virtual_table(name: &str, vt: &VirtualTable, out: &mut String) {
    out.push_str("CREATE VIRTUAL TABLE ");
    out.push_str(&quote_ident(name));
    out.push_str(" USING ");
    out.push_str(&quote_ident(&vt.module));
    if !vt.arguments.is_empty() {
        out.push('(');
        let arguments: Vec<String> = vt.arguments.iter().map(|a| verbatim_guarded(a)).collect();
        out.push_str(&arguments.join(", "));
        out.push(')');
    }
}

/// One column definition of `table`; `pk` is the table's primary key when
/// it goes on this column, `pk_index` the index SQLite made for that key.
fn render_column(
    table: &Table,
    column: &Column,
    pk: Option<&PrimaryKey>,
    pk_index: Option<&Index>,
) -> String {
    let mut item = quote_ident(&column.name);
    if !column.declared_type.is_empty() {
        item.push(' ');
        item.push_str(&render_type(&column.declared_type));
    }
    if let Some(pk) = pk {
        push_constraint_name(&mut item, pk.name.as_deref());
        item.push_str(" PRIMARY KEY");
        if pk_index.is_some_and(|index| index.parts[0].descending) {
            item.push_str(" DESC");
        }
        push_conflict(&mut item, pk.on_conflict);
        if table.options.autoincrement {
            item.push_str(" AUTOINCREMENT");
        }
    }
    if column.not_null {
        item.push_str(" NOT NULL");
        push_conflict(&mut item, column.not_null_on_conflict);
    }
    if let Some(default) = &column.default {
        item.push_str(" DEFAULT ");
        item.push_str(&render_default(default));
    }
    if let Some(collation) = &column.collation {
        item.push_str(" COLLATE ");
        item.push_str(&quote_ident(collation));
    }
    if let Some(generated) = &column.generated {
        item.push_str(" GENERATED ALWAYS AS (");
        item.push_str(&guarded(&generated.expression, false));
        item.push_str(match generated.storage {
            Storage::Virtual => ") VIRTUAL",
            Storage::Stored => ") STORED",
        });
    }
    item
}

/// One `FOREIGN KEY` table constraint.
fn render_foreign_key(fk: &ForeignKey) -> String {
    let mut item = String::new();
    push_constraint_name(&mut item, fk.name.as_deref());
    item.push_str(" FOREIGN KEY (");
    item.push_str(&quote_list(&fk.columns));
    item.push_str(") REFERENCES ");
    item.push_str(&quote_ident(&fk.target_table));
    if !fk.target_columns.is_empty() {
        item.push_str(" (");
        item.push_str(&quote_list(&fk.target_columns));
        item.push(')');
    }
    for (event, action) in [("DELETE", fk.on_delete), ("UPDATE", fk.on_update)] {
        if action != super::model::Action::NoAction {
            item.push_str(" ON ");
            item.push_str(event);
            item.push(' ');
            item.push_str(action.sql());
        }
    }
    if fk.deferrable {
        item.push_str(if fk.initially_deferred {
            " DEFERRABLE INITIALLY DEFERRED"
        } else {
            " DEFERRABLE INITIALLY IMMEDIATE"
        });
    }
    item.trim_start().to_owned()
}

/// A stored statement the parser could not read, safe to follow with `;`:
/// normalised, which drops comments (a trailing `--` comment would swallow
/// the `;`), or, if it does not even tokenize (SQLite accepts a block
/// comment left open at the end), with that comment closed.
fn statement_as_is(sql: &str) -> String {
    match lex::tokenize(sql) {
        Ok(tokens) => lex::normalise(sql, &tokens),
        Err(lex::LexError::Unterminated {
            what: "comment", ..
        }) => format!("{sql} */"),
        Err(_) => sql.to_owned(),
    }
}

/// The collation a column sorts by when nothing else is said.
fn column_collation(column: Option<&Column>) -> &str {
    column
        .and_then(|c| c.collation.as_deref())
        .unwrap_or("BINARY")
}

/// One index term; a column's `COLLATE` only when it differs from the
/// column's own (an expression carries its `COLLATE` in its text).
fn render_part(table: &Table, part: &IndexPart) -> String {
    let mut out = match &part.target {
        IndexTarget::Column(name) => {
            let mut out = quote_ident(name);
            if let Some(collation) = &part.collation
                && !collation.eq_ignore_ascii_case(column_collation(table.column(name)))
            {
                out.push_str(" COLLATE ");
                out.push_str(&quote_ident(collation));
            }
            out
        }
        IndexTarget::Expression(expression) => guarded(expression, false),
    };
    if part.descending {
        out.push_str(" DESC");
    }
    out
}

fn push_constraint_name(out: &mut String, name: Option<&str>) {
    if let Some(name) = name {
        out.push_str(" CONSTRAINT ");
        out.push_str(&quote_ident(name));
    }
}

fn push_conflict(out: &mut String, conflict: Option<Conflict>) {
    if let Some(conflict) = conflict {
        out.push_str(" ON CONFLICT ");
        out.push_str(conflict.sql());
    }
}

fn quote_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| quote_ident(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a token run is safe to splice where one expression (or, with
/// `semicolons`, a trigger's statements) goes: parentheses balanced, and no
/// `;` to end the statement early.
fn splices(src: &str, tokens: &[lex::Token], semicolons: bool) -> bool {
    let mut depth = 0i64;
    for token in tokens {
        if token.is_punct(src, "(") {
            depth += 1;
        } else if token.is_punct(src, ")") {
            depth -= 1;
        } else if token.is_punct(src, ";") && !semicolons {
            return false;
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0 && !tokens.is_empty()
}

/// Expression text from the model, made safe to splice: normalised again
/// (which drops any comment), or, when it is not a well-formed run of
/// tokens, which only a tampered model can hold, a string literal.
fn guarded(text: &str, semicolons: bool) -> String {
    match lex::tokenize(text) {
        Ok(tokens) if splices(text, &tokens, semicolons) => lex::normalise(text, &tokens),
        _ => quote_literal(text),
    }
}

/// A virtual-table argument exactly as written (its syntax is the
/// module's), under the same conditions as [`guarded`], and with no comment
/// at either end.
fn verbatim_guarded(text: &str) -> String {
    match lex::tokenize(text) {
        Ok(tokens)
            if splices(text, &tokens, false)
                && tokens.first().is_some_and(|t| t.span.start == 0)
                && tokens.last().is_some_and(|t| t.span.end == text.len()) =>
        {
            text.to_owned()
        }
        _ => quote_literal(text),
    }
}

/// `text` as a SQL string literal.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A declared type as SQL: as is when it is words with an optional
/// `(n[, m])`, which is all SQLite's grammar allows; anything else is quoted
/// whole rather than trusted.
fn render_type(declared_type: &str) -> String {
    match lex::tokenize(declared_type) {
        Ok(tokens)
            if splices(declared_type, &tokens, false)
                && tokens.iter().all(|t| match t.kind {
                    TokenKind::Word | TokenKind::Number => true,
                    TokenKind::Punct => {
                        matches!(t.text(declared_type), "(" | ")" | "," | "+" | "-")
                    }
                    _ => false,
                }) =>
        {
            super::parse::declared_type(declared_type, &tokens)
        }
        _ => quote_ident(declared_type),
    }
}

/// A default as SQL: a lone literal, name or signed number bare, anything
/// else in parentheses (SQLite's `DEFAULT (expr)`).
fn render_default(default: &str) -> String {
    let text = guarded(default, false);
    let bare = lex::tokenize(&text).is_ok_and(|tokens| match tokens.as_slice() {
        [one] => one.kind != TokenKind::Punct,
        [sign, number] => {
            (sign.is_punct(&text, "-") || sign.is_punct(&text, "+"))
                && number.kind == TokenKind::Number
        }
        _ => false,
    });
    if bare { text } else { format!("({text})") }
}

fn render_view(view: &View, out: &mut String) {
    out.push_str("CREATE VIEW ");
    out.push_str(&quote_ident(&view.name));
    if !view.columns.is_empty() {
        out.push_str(" (");
        out.push_str(&quote_list(&view.columns));
        out.push(')');
    }
    out.push_str(" AS ");
    out.push_str(&guarded(&view.select, false));
}

fn render_trigger(trigger: &Trigger, out: &mut String) {
    out.push_str("CREATE TRIGGER ");
    out.push_str(&quote_ident(&trigger.name));
    out.push_str(match trigger.timing {
        Timing::Before => " BEFORE ",
        Timing::After => " AFTER ",
        Timing::InsteadOf => " INSTEAD OF ",
    });
    match &trigger.event {
        Event::Insert => out.push_str("INSERT"),
        Event::Delete => out.push_str("DELETE"),
        Event::Update { columns } if columns.is_empty() => out.push_str("UPDATE"),
        Event::Update { columns } => {
            out.push_str("UPDATE OF ");
            out.push_str(&quote_list(columns));
        }
    }
    out.push_str(" ON ");
    out.push_str(&quote_ident(&trigger.table));
    out.push_str(" FOR EACH ROW");
    if let Some(when) = &trigger.when {
        out.push_str(" WHEN ");
        out.push_str(&guarded(when, false));
    }
    out.push_str(" BEGIN ");
    out.push_str(&guarded(&trigger.body, true));
    out.push_str(" END");
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::schema::capture;

    fn capture_of(conn: &Connection) -> Schema {
        let tx = conn.unchecked_transaction().unwrap();
        capture::capture(&tx).unwrap().schema
    }

    fn schema_of(sql: &str) -> Schema {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        capture_of(&conn)
    }

    /// Runs `to_sql` on an empty database and captures the result.
    fn recreate(schema: &Schema) -> Schema {
        let conn = Connection::open_in_memory().unwrap();
        let script = schema.to_sql();
        conn.execute_batch(&script)
            .unwrap_or_else(|e| panic!("{e}\n{script}"));
        capture_of(&conn)
    }

    const RICH: &str = r#"
        CREATE TABLE "Users"(id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL ON CONFLICT IGNORE COLLATE NOCASE,
            "display name" VARCHAR(64) DEFAULT 'anon', created TEXT DEFAULT CURRENT_TIMESTAMP,
            karma INT DEFAULT -1 CHECK (karma >= -1), ratio REAL DEFAULT (1.0 / 3),
            CONSTRAINT email_unique UNIQUE (email) ON CONFLICT REPLACE);
        CREATE TABLE posts(
            id INTEGER PRIMARY KEY DESC, author INTEGER NOT NULL REFERENCES users ON DELETE CASCADE,
            slug TEXT, body TEXT, words INT GENERATED ALWAYS AS (length(body) - length(replace(body, ' ', '')) + 1) VIRTUAL,
            upper_slug TEXT AS (upper(slug)) STORED,
            CONSTRAINT fk_slug FOREIGN KEY (slug) REFERENCES slugs(name) ON UPDATE SET NULL DEFERRABLE INITIALLY DEFERRED,
            CONSTRAINT ok CHECK (slug IS NULL OR length(slug) > 0));
        CREATE TABLE slugs(name TEXT, taken INT, PRIMARY KEY (name COLLATE NOCASE DESC)) WITHOUT ROWID;
        CREATE TABLE pairs(a TEXT, b INT, c ANY, PRIMARY KEY (a COLLATE NOCASE DESC, b), UNIQUE (b DESC, a)) STRICT;
        CREATE TABLE "x""; DROP TABLE users; --"("y""; --" INTEGER, "[z]" TEXT UNIQUE);
        CREATE INDEX posts_by_author ON posts(author, id DESC) WHERE body IS NOT NULL;
        CREATE UNIQUE INDEX users_lower_email ON users(lower(email) COLLATE NOCASE, "display name" COLLATE RTRIM);
        CREATE INDEX "i""; DROP TABLE users; --" ON "x""; DROP TABLE users; --"("y""; --");
        CREATE VIEW recent(id, title) AS SELECT id, slug FROM posts ORDER BY id DESC LIMIT 10;
        CREATE TRIGGER users_touch AFTER UPDATE OF email ON users WHEN new.email != old.email
            BEGIN UPDATE posts SET slug = NULL WHERE author = new.id; SELECT CASE WHEN new.karma < 0 THEN RAISE(ABORT, 'no') END; END;
        CREATE TRIGGER recent_insert INSTEAD OF INSERT ON recent BEGIN INSERT INTO posts(author, slug) VALUES (1, new.title); END;
        CREATE VIRTUAL TABLE docs USING fts5(title, body, tokenize = 'porter unicode61');
    "#;

    #[test]
    fn to_sql_recreates_a_rich_schema() {
        let original = schema_of(RICH);
        let recreated = recreate(&original);
        assert_eq!(
            original.semantic_hash(),
            recreated.semantic_hash(),
            "{}\n---\n{:#?}\n---\n{:#?}",
            original.to_sql(),
            original,
            recreated
        );
        // Rendering is stable: a second round gives the same script.
        assert_eq!(recreated.to_sql(), original.to_sql());
    }

    #[test]
    fn hostile_names_round_trip_harmlessly() {
        let evil = "x\"; DROP TABLE users; --";
        let mut schema = schema_of(&format!(
            "CREATE TABLE users(id INTEGER PRIMARY KEY);
             CREATE TABLE {q}({c} TEXT);
             CREATE INDEX {qi} ON {q}({c});",
            q = quote_ident(evil),
            c = quote_ident("a'); DELETE FROM users; --"),
            qi = quote_ident("i]`\"")
        ));
        assert!(schema.table(evil).is_some());
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&schema.to_sql()).unwrap();
        let recreated = capture_of(&conn);
        assert_eq!(recreated.semantic_hash(), schema.semantic_hash());
        assert!(recreated.table("users").is_some());
        assert!(recreated.table(evil).is_some());
        // Also when the name only reaches us through the model.
        let table = schema.tables.remove(&fold(evil)).unwrap();
        let mut renamed = table.clone();
        renamed.name = "t\"; DROP TABLE users; --".into();
        renamed.sql = None;
        schema.insert_table(renamed);
        schema.indexes.clear();
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&schema.to_sql()).unwrap();
        assert!(capture_of(&conn).table("users").is_some());
    }

    #[test]
    fn tables_come_after_what_they_reference() {
        let schema = schema_of(
            "CREATE TABLE a(x REFERENCES c(y)); CREATE TABLE b(z); CREATE TABLE c(y PRIMARY KEY REFERENCES b(z));
             CREATE TABLE self(id PRIMARY KEY, parent REFERENCES self(id));",
        );
        let order: Vec<_> = schema
            .tables_in_dependency_order()
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(order, ["b", "self", "c", "a"]);
    }

    #[test]
    fn exact_sql_lists_stored_texts_with_metadata_tables() {
        let schema = schema_of(
            "CREATE TABLE items(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
             CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL PRIMARY KEY);
             create index items_by_name on items(name);",
        );
        assert_eq!(
            schema.exact_sql(),
            "CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL PRIMARY KEY);\n\
             CREATE TABLE items(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);\n\
             CREATE INDEX items_by_name on items(name);\n"
        );
        assert!(!schema.to_sql().contains("alembic_version"));
        assert!(!schema.to_sql().contains("sqlite_sequence"));
    }

    #[test]
    fn defaults_and_types_render_safely() {
        assert_eq!(render_default("-1"), "-1");
        assert_eq!(render_default("'a'"), "'a'");
        assert_eq!(render_default("CURRENT_TIMESTAMP"), "CURRENT_TIMESTAMP");
        assert_eq!(render_default("1 + 2"), "(1 + 2)");
        assert_eq!(render_type("DECIMAL(10, 2)"), "DECIMAL(10, 2)");
        assert_eq!(
            render_type("INT); DROP TABLE x; --"),
            "\"INT); DROP TABLE x; --\""
        );
        assert_eq!(render_type("INT -- x"), "INT");
        assert_eq!(
            guarded("1); DROP TABLE users; --", false),
            "'1); DROP TABLE users; --'"
        );
        assert_eq!(guarded("a > 0 /* c */", false), "a > 0");
        assert_eq!(
            verbatim_guarded("tokenize = 'porter'"),
            "tokenize = 'porter'"
        );
        assert_eq!(verbatim_guarded("a -- x"), "'a -- x'");
    }
}
