//! A small parser for the `CREATE` statements SQLite keeps in
//! `sqlite_schema.sql`.
//!
//! It supplies what the PRAGMAs cannot tell: constraint names, CHECK
//! expressions, generated-column expressions, collations, `AUTOINCREMENT`,
//! conflict clauses, foreign-key deferrability, index `WHERE` clauses and
//! expression terms, view selects and trigger bodies. Anything the PRAGMAs do
//! tell is taken from them by the capture, so the parser only has to find
//! its way through the rest (declared types, for instance, are skipped).
//!
//! Grammar: <https://sqlite.org/lang_createtable.html>, `lang_createindex`,
//! `lang_createview`, `lang_createtrigger`, `lang_createvtab`.
//!
//! Invariant: parsing never panics, whatever the input; a text it cannot read
//! is a [`ParseError`] naming the object.

use std::ops::Range;

use super::lex::{self, LexError, Token, TokenKind};
use super::model::{Action, Check, Conflict, Event, ForeignKey, Generated, Storage, Timing};

/// Why a `CREATE` statement could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse the CREATE statement of '{object}' at byte {offset}: {problem}")]
pub struct ParseError {
    /// The object whose statement it is.
    pub object: String,
    /// Byte offset of the problem in the statement.
    pub offset: usize,
    /// What is wrong there.
    pub problem: Problem,
}

/// What is wrong in a statement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A literal or comment is not closed.
    #[error("unterminated {0}")]
    Unterminated(&'static str),
    /// A character SQLite does not accept.
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    /// A token other than the grammar allows.
    #[error("expected {expected}, found {found:?}")]
    Expected {
        /// What the grammar allows here.
        expected: &'static str,
        /// The token found.
        found: String,
    },
    /// The statement ends too early.
    #[error("expected {expected}, found the end of the statement")]
    End {
        /// What the grammar allows here.
        expected: &'static str,
    },
    /// A `)` without its `(`, or the reverse.
    #[error("unbalanced parentheses")]
    Unbalanced,
}

/// A parsed `CREATE` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Statement {
    /// `CREATE TABLE`.
    Table(ParsedTable),
    /// `CREATE VIRTUAL TABLE`.
    VirtualTable(ParsedVirtualTable),
    /// `CREATE INDEX`.
    Index(ParsedIndex),
    /// `CREATE VIEW`.
    View(ParsedView),
    /// `CREATE TRIGGER`.
    Trigger(ParsedTrigger),
}

/// What the parser reads from `CREATE TABLE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedTable {
    /// The table name.
    pub name: String,
    /// The column definitions, in order.
    pub columns: Vec<ParsedColumn>,
    /// The primary key, from a column or a table constraint.
    pub primary_key: Option<ParsedKey>,
    /// UNIQUE constraints, column and table ones, in order of appearance.
    pub uniques: Vec<ParsedKey>,
    /// CHECK constraints, in order of appearance.
    pub checks: Vec<Check>,
    /// Foreign keys, in order of appearance, with actions and deferrability
    /// as written.
    pub foreign_keys: Vec<ForeignKey>,
    /// `AUTOINCREMENT` on the primary key.
    pub autoincrement: bool,
    /// `WITHOUT ROWID`.
    pub without_rowid: bool,
    /// `STRICT`.
    pub strict: bool,
    /// `CREATE TABLE … AS SELECT`: no definitions to read.
    pub as_select: bool,
}

/// What the parser reads from a column definition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedColumn {
    /// The name.
    pub name: String,
    /// The declared type, normalised.
    pub declared_type: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// The `ON CONFLICT` of `NOT NULL`.
    pub not_null_on_conflict: Option<Conflict>,
    /// The default, normalised, outer parentheses removed.
    pub default: Option<String>,
    /// The last `COLLATE`, as written.
    pub collation: Option<String>,
    /// `GENERATED ALWAYS AS (…)`.
    pub generated: Option<Generated>,
}

/// A PRIMARY KEY or UNIQUE constraint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedKey {
    /// `CONSTRAINT name`.
    pub name: Option<String>,
    /// The columns (a term that is not a plain column appears normalised).
    pub columns: Vec<String>,
    /// `ON CONFLICT`.
    pub on_conflict: Option<Conflict>,
}

/// What the parser reads from `CREATE VIRTUAL TABLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedVirtualTable {
    /// The table name.
    pub name: String,
    /// The module.
    pub module: String,
    /// The arguments, each exactly as written.
    pub arguments: Vec<String>,
}

/// What the parser reads from `CREATE INDEX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedIndex {
    /// The index name.
    pub name: String,
    /// The table.
    pub table: String,
    /// `UNIQUE`.
    pub unique: bool,
    /// The key terms, in order.
    pub terms: Vec<ParsedTerm>,
    /// The `WHERE` condition, normalised.
    pub predicate: Option<String>,
}

/// One term of an index key or PRIMARY KEY / UNIQUE column list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedTerm {
    /// The term without `ASC`/`DESC`, normalised; it keeps a `COLLATE`.
    pub expression: String,
    /// The column, when the term is one (possibly with `COLLATE`, in
    /// parentheses).
    pub column: Option<String>,
    /// A trailing `COLLATE`, as written.
    pub collation: Option<String>,
    /// `DESC`.
    pub descending: bool,
}

/// What the parser reads from `CREATE VIEW`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedView {
    /// The view name.
    pub name: String,
    /// `CREATE VIEW v(a, b)` column names.
    pub columns: Vec<String>,
    /// The select, normalised.
    pub select: String,
}

/// What the parser reads from `CREATE TRIGGER`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedTrigger {
    /// The trigger name.
    pub name: String,
    /// The table or view.
    pub table: String,
    /// When it fires.
    pub timing: Timing,
    /// What fires it.
    pub event: Event,
    /// `WHEN`, normalised.
    pub when: Option<String>,
    /// The statements between `BEGIN` and `END`, normalised.
    pub body: String,
}

/// Parses one `CREATE` statement of `object`.
pub fn parse(object: &str, sql: &str) -> Result<Statement, ParseError> {
    let tokens = lex::tokenize(sql).map_err(|e| {
        let (offset, problem) = match e {
            LexError::Unterminated { what, offset } => (offset, Problem::Unterminated(what)),
            LexError::Unexpected { found, offset } => (offset, Problem::UnexpectedChar(found)),
        };
        ParseError {
            object: object.to_owned(),
            offset,
            problem,
        }
    })?;
    let mut parser = Parser {
        src: sql,
        tokens: &tokens,
        pos: 0,
        object,
    };
    let statement = parser.statement()?;
    parser.eat_punct(";");
    if parser.pos < tokens.len() {
        return Err(parser.expected("the end of the statement"));
    }
    Ok(statement)
}

/// Words that end a column's type and start a column constraint.
const COLUMN_CONSTRAINTS: &[&str] = &[
    "CONSTRAINT",
    "PRIMARY",
    "NOT",
    "NULL",
    "UNIQUE",
    "CHECK",
    "DEFAULT",
    "COLLATE",
    "REFERENCES",
    "GENERATED",
    "AS",
    "DEFERRABLE",
];

/// Words that start a table constraint.
const TABLE_CONSTRAINTS: &[&str] = &["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"];

struct Parser<'a> {
    src: &'a str,
    tokens: &'a [Token],
    pos: usize,
    object: &'a str,
}

type Result<T, E = ParseError> = std::result::Result<T, E>;

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    fn peek_at(&self, ahead: usize) -> Option<&'a Token> {
        self.tokens.get(self.pos + ahead)
    }

    fn error(&self, problem: Problem) -> ParseError {
        ParseError {
            object: self.object.to_owned(),
            offset: self.peek().map_or(self.src.len(), |t| t.span.start),
            problem,
        }
    }

    fn expected(&self, expected: &'static str) -> ParseError {
        self.error(match self.peek() {
            Some(token) => Problem::Expected {
                expected,
                found: token.text(self.src).to_owned(),
            },
            None => Problem::End { expected },
        })
    }

    fn at_word(&self, word: &str) -> bool {
        self.peek().is_some_and(|t| t.is_word(self.src, word))
    }

    fn at_any_word(&self, words: &[&str]) -> bool {
        words.iter().any(|w| self.at_word(w))
    }

    fn at_punct(&self, punct: &str) -> bool {
        self.peek().is_some_and(|t| t.is_punct(self.src, punct))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.at_word(word);
        self.pos += usize::from(found);
        found
    }

    fn eat_punct(&mut self, punct: &str) -> bool {
        let found = self.at_punct(punct);
        self.pos += usize::from(found);
        found
    }

    fn expect_word(&mut self, word: &'static str) -> Result<()> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.expected(word))
        }
    }

    fn expect_punct(&mut self, punct: &'static str) -> Result<()> {
        if self.eat_punct(punct) {
            Ok(())
        } else {
            Err(self.expected(punct))
        }
    }

    /// A name: a word, a quoted identifier or a string.
    fn name(&mut self) -> Result<String> {
        match self.peek() {
            Some(token) if token.is_name() => {
                self.pos += 1;
                Ok(token.name(self.src))
            }
            _ => Err(self.expected("a name")),
        }
    }

    /// `[schema.]name`: the name without its schema.
    fn qualified_name(&mut self) -> Result<String> {
        let name = self.name()?;
        if self.eat_punct(".") {
            return self.name();
        }
        Ok(name)
    }

    /// `IF NOT EXISTS`, if present.
    fn if_not_exists(&mut self) -> Result<()> {
        if self.eat_word("IF") {
            self.expect_word("NOT")?;
            self.expect_word("EXISTS")?;
        }
        Ok(())
    }

    /// Token positions from here up to (not including) the first token at
    /// parenthesis depth 0 that `stop` accepts, or the end.
    fn run_until(&mut self, stop: impl Fn(&Self) -> bool) -> Result<Range<usize>> {
        let start = self.pos;
        let mut depth = 0usize;
        while self.peek().is_some() {
            if depth == 0 && stop(self) {
                break;
            }
            if self.at_punct("(") {
                depth += 1;
            } else if self.at_punct(")") {
                if depth == 0 {
                    return Err(self.error(Problem::Unbalanced));
                }
                depth -= 1;
            }
            self.pos += 1;
        }
        if depth != 0 {
            return Err(self.error(Problem::Unbalanced));
        }
        Ok(start..self.pos)
    }

    /// `( … )`: the positions inside the parentheses, which are consumed.
    fn group(&mut self) -> Result<Range<usize>> {
        self.expect_punct("(")?;
        let inner = self.run_until(|p| p.at_punct(")"))?;
        self.expect_punct(")")?;
        Ok(inner)
    }

    fn slice(&self, range: Range<usize>) -> &'a [Token] {
        self.tokens.get(range).unwrap_or_default()
    }

    /// The normalised text of a run, outer parentheses removed.
    fn expression(&self, range: Range<usize>) -> String {
        lex::normalise(
            self.src,
            lex::strip_outer_parens(self.src, self.slice(range)),
        )
    }

    /// The exact source text of a run.
    fn verbatim(&self, range: Range<usize>) -> &'a str {
        let tokens = self.slice(range);
        match (tokens.first(), tokens.last()) {
            (Some(first), Some(last)) => self
                .src
                .get(first.span.start..last.span.end)
                .unwrap_or_default(),
            _ => "",
        }
    }

    /// `( name, … )`.
    fn name_list(&mut self) -> Result<Vec<String>> {
        self.expect_punct("(")?;
        let mut names = vec![self.name()?];
        while self.eat_punct(",") {
            names.push(self.name()?);
        }
        self.expect_punct(")")?;
        Ok(names)
    }

    fn statement(&mut self) -> Result<Statement> {
        self.expect_word("CREATE")?;
        let _ = self.eat_word("TEMP") || self.eat_word("TEMPORARY");
        if self.eat_word("TABLE") {
            return self.table().map(Statement::Table);
        }
        if self.eat_word("VIRTUAL") {
            self.expect_word("TABLE")?;
            return self.virtual_table().map(Statement::VirtualTable);
        }
        let unique = self.eat_word("UNIQUE");
        if self.eat_word("INDEX") {
            return self.index(unique).map(Statement::Index);
        }
        if unique {
            return Err(self.expected("INDEX"));
        }
        if self.eat_word("VIEW") {
            return self.view().map(Statement::View);
        }
        if self.eat_word("TRIGGER") {
            return self.trigger().map(Statement::Trigger);
        }
        Err(self.expected("TABLE, INDEX, VIEW or TRIGGER"))
    }

    fn table(&mut self) -> Result<ParsedTable> {
        self.if_not_exists()?;
        let mut table = ParsedTable {
            name: self.qualified_name()?,
            ..ParsedTable::default()
        };
        if self.eat_word("AS") {
            self.run_until(|_| false)?;
            table.as_select = true;
            return Ok(table);
        }
        self.expect_punct("(")?;
        loop {
            if self.at_any_word(TABLE_CONSTRAINTS) {
                break;
            }
            self.column(&mut table)?;
            if !self.eat_punct(",") {
                break;
            }
        }
        // Table constraints; SQLite lets them go without commas between.
        while self.peek().is_some() && !self.at_punct(")") {
            self.table_constraint(&mut table)?;
            self.eat_punct(",");
        }
        self.expect_punct(")")?;
        loop {
            if self.eat_word("WITHOUT") {
                if !self.eat_word("ROWID") {
                    return Err(self.expected("ROWID"));
                }
                table.without_rowid = true;
            } else if self.eat_word("STRICT") {
                table.strict = true;
            } else {
                break;
            }
            if !self.eat_punct(",") {
                break;
            }
        }
        Ok(table)
    }

    fn conflict(&mut self) -> Result<Option<Conflict>> {
        if !self.at_word("ON")
            || !self
                .peek_at(1)
                .is_some_and(|t| t.is_word(self.src, "CONFLICT"))
        {
            return Ok(None);
        }
        self.pos += 2;
        let conflict = [
            ("ROLLBACK", Conflict::Rollback),
            ("ABORT", Conflict::Abort),
            ("FAIL", Conflict::Fail),
            ("IGNORE", Conflict::Ignore),
            ("REPLACE", Conflict::Replace),
        ]
        .into_iter()
        .find(|(word, _)| self.at_word(word))
        .map(|(_, conflict)| conflict)
        .ok_or_else(|| self.expected("ROLLBACK, ABORT, FAIL, IGNORE or REPLACE"))?;
        self.pos += 1;
        Ok(Some(conflict))
    }

    fn column(&mut self, table: &mut ParsedTable) -> Result<()> {
        let mut column = ParsedColumn {
            name: self.name()?,
            ..ParsedColumn::default()
        };
        let type_run = self.run_until(|p| {
            p.at_any_word(COLUMN_CONSTRAINTS) || p.at_punct(",") || p.at_punct(")")
        })?;
        column.declared_type = declared_type(self.src, self.slice(type_run));
        let mut name = None;
        loop {
            if self.eat_word("CONSTRAINT") {
                name = Some(self.name()?);
                continue;
            }
            if self.eat_word("PRIMARY") {
                self.expect_word("KEY")?;
                let _ = self.eat_word("ASC") || self.eat_word("DESC");
                let on_conflict = self.conflict()?;
                table.autoincrement |= self.eat_word("AUTOINCREMENT");
                table.primary_key = Some(ParsedKey {
                    name: name.take(),
                    columns: vec![column.name.clone()],
                    on_conflict,
                });
            } else if self.at_word("NOT")
                && self.peek_at(1).is_some_and(|t| t.is_word(self.src, "NULL"))
            {
                self.pos += 2;
                column.not_null = true;
                column.not_null_on_conflict = self.conflict()?;
            } else if self.eat_word("NULL") {
                self.conflict()?;
            } else if self.eat_word("UNIQUE") {
                let on_conflict = self.conflict()?;
                table.uniques.push(ParsedKey {
                    name: name.take(),
                    columns: vec![column.name.clone()],
                    on_conflict,
                });
            } else if self.eat_word("CHECK") {
                let inner = self.group()?;
                table.checks.push(Check {
                    name: name.take(),
                    expression: self.expression(inner),
                });
            } else if self.eat_word("DEFAULT") {
                column.default = Some(self.default_value()?);
            } else if self.eat_word("COLLATE") {
                column.collation = Some(self.name()?);
            } else if self.eat_word("REFERENCES") {
                let mut key = self.references(name.take(), vec![column.name.clone()])?;
                if let Some((deferrable, deferred)) = self.deferrable()? {
                    key.deferrable = deferrable;
                    key.initially_deferred = deferred;
                }
                table.foreign_keys.push(key);
            } else if self.at_word("GENERATED") || self.at_word("AS") {
                if self.eat_word("GENERATED") {
                    self.expect_word("ALWAYS")?;
                }
                self.expect_word("AS")?;
                let inner = self.group()?;
                let storage = if self.eat_word("STORED") {
                    Storage::Stored
                } else {
                    self.eat_word("VIRTUAL");
                    Storage::Virtual
                };
                column.generated = Some(Generated {
                    expression: self.expression(inner),
                    storage,
                });
            } else if let Some((deferrable, deferred)) = self.deferrable()? {
                // A deferrable clause standing alone applies to the foreign
                // key just before it (SQLite's `ccons ::= defer_subclause`).
                if let Some(key) = table.foreign_keys.last_mut() {
                    key.deferrable = deferrable;
                    key.initially_deferred = deferred;
                }
            } else {
                break;
            }
            name = None;
        }
        table.columns.push(column);
        Ok(())
    }

    /// The value after `DEFAULT`: `( expr )`, a signed number, a literal or
    /// a name.
    fn default_value(&mut self) -> Result<String> {
        if self.at_punct("(") {
            let inner = self.group()?;
            return Ok(self.expression(inner));
        }
        let start = self.pos;
        if self.at_punct("+") || self.at_punct("-") {
            self.pos += 1;
        }
        match self.peek() {
            Some(t) if t.kind != TokenKind::Punct => self.pos += 1,
            _ => return Err(self.expected("a default value")),
        }
        Ok(self.expression(start..self.pos))
    }

    /// `[NOT] DEFERRABLE [INITIALLY DEFERRED|IMMEDIATE]`, if present: whether
    /// it says deferrable, and whether initially deferred.
    fn deferrable(&mut self) -> Result<Option<(bool, bool)>> {
        let not = self.at_word("NOT")
            && self
                .peek_at(1)
                .is_some_and(|t| t.is_word(self.src, "DEFERRABLE"));
        if not {
            self.pos += 1;
        }
        if !self.eat_word("DEFERRABLE") {
            return Ok(None);
        }
        let mut deferred = false;
        if self.eat_word("INITIALLY") {
            if self.eat_word("DEFERRED") {
                deferred = true;
            } else if !self.eat_word("IMMEDIATE") {
                return Err(self.expected("DEFERRED or IMMEDIATE"));
            }
        }
        Ok(Some((!not, deferred)))
    }

    /// After `REFERENCES`: the target and its actions.
    fn references(&mut self, name: Option<String>, columns: Vec<String>) -> Result<ForeignKey> {
        let mut key = ForeignKey {
            name,
            columns,
            target_table: self.name()?,
            target_columns: Vec::new(),
            on_delete: Action::NoAction,
            on_update: Action::NoAction,
            deferrable: false,
            initially_deferred: false,
        };
        if self.at_punct("(") {
            key.target_columns = self.name_list()?;
        }
        loop {
            if self.eat_word("MATCH") {
                self.name()?;
            } else if self.at_word("ON")
                && !self
                    .peek_at(1)
                    .is_some_and(|t| t.is_word(self.src, "CONFLICT"))
            {
                self.pos += 1;
                let slot = if self.eat_word("DELETE") {
                    Some(&mut key.on_delete)
                } else if self.eat_word("UPDATE") {
                    Some(&mut key.on_update)
                } else if self.eat_word("INSERT") {
                    None // accepted and ignored by SQLite
                } else {
                    return Err(self.expected("DELETE or UPDATE"));
                };
                let action = self.action()?;
                if let Some(slot) = slot {
                    *slot = action;
                }
            } else {
                break;
            }
        }
        Ok(key)
    }

    fn action(&mut self) -> Result<Action> {
        let action = if self.eat_word("SET") {
            if self.eat_word("NULL") {
                Action::SetNull
            } else if self.eat_word("DEFAULT") {
                Action::SetDefault
            } else {
                return Err(self.expected("NULL or DEFAULT"));
            }
        } else if self.eat_word("CASCADE") {
            Action::Cascade
        } else if self.eat_word("RESTRICT") {
            Action::Restrict
        } else if self.eat_word("NO") {
            self.expect_word("ACTION")?;
            Action::NoAction
        } else {
            return Err(self.expected("a referential action"));
        };
        Ok(action)
    }

    fn table_constraint(&mut self, table: &mut ParsedTable) -> Result<()> {
        let name = if self.eat_word("CONSTRAINT") {
            Some(self.name()?)
        } else {
            None
        };
        if self.eat_word("PRIMARY") {
            self.expect_word("KEY")?;
            let (terms, autoincrement) = self.terms(true)?;
            table.autoincrement |= autoincrement;
            table.primary_key = Some(ParsedKey {
                name,
                columns: term_columns(terms),
                on_conflict: self.conflict()?,
            });
        } else if self.eat_word("UNIQUE") {
            let (terms, _) = self.terms(false)?;
            table.uniques.push(ParsedKey {
                name,
                columns: term_columns(terms),
                on_conflict: self.conflict()?,
            });
        } else if self.eat_word("CHECK") {
            let inner = self.group()?;
            table.checks.push(Check {
                name,
                expression: self.expression(inner),
            });
            self.conflict()?;
        } else if self.eat_word("FOREIGN") {
            self.expect_word("KEY")?;
            let columns = self.name_list()?;
            self.expect_word("REFERENCES")?;
            let mut key = self.references(name, columns)?;
            if let Some((deferrable, deferred)) = self.deferrable()? {
                key.deferrable = deferrable;
                key.initially_deferred = deferred;
            }
            table.foreign_keys.push(key);
        } else {
            return Err(self.expected("a table constraint"));
        }
        Ok(())
    }

    /// `( term, … )` of an index or key; `autoincrement` allows SQLite's
    /// `PRIMARY KEY (id AUTOINCREMENT)`.
    fn terms(&mut self, autoincrement: bool) -> Result<(Vec<ParsedTerm>, bool)> {
        self.expect_punct("(")?;
        let mut terms = Vec::new();
        let mut saw_autoincrement = false;
        loop {
            let run = self.run_until(|p| {
                p.at_punct(",") || p.at_punct(")") || (autoincrement && p.at_word("AUTOINCREMENT"))
            })?;
            if run.is_empty() {
                return Err(self.expected("an indexed column"));
            }
            terms.push(self.term(run));
            if autoincrement && self.eat_word("AUTOINCREMENT") {
                saw_autoincrement = true;
            }
            if !self.eat_punct(",") {
                break;
            }
        }
        self.expect_punct(")")?;
        Ok((terms, saw_autoincrement))
    }

    /// One key term: `expr [COLLATE name] [ASC|DESC]`.
    fn term(&self, run: Range<usize>) -> ParsedTerm {
        let mut tokens = self.slice(run);
        let mut descending = false;
        if let [rest @ .., last] = tokens
            && (last.is_word(self.src, "DESC") || last.is_word(self.src, "ASC"))
        {
            descending = last.is_word(self.src, "DESC");
            tokens = rest;
        }
        let expression = lex::normalise(self.src, lex::strip_outer_parens(self.src, tokens));
        let mut collation = None;
        let mut bare = tokens;
        if let [rest @ .., collate, name] = tokens
            && collate.is_word(self.src, "COLLATE")
            && name.is_name()
        {
            collation = Some(name.name(self.src));
            bare = rest;
        }
        let column = match lex::strip_outer_parens(self.src, bare) {
            [one]
                if matches!(
                    one.kind,
                    TokenKind::Word | TokenKind::Quoted | TokenKind::String
                ) =>
            {
                Some(one.name(self.src))
            }
            _ => None,
        };
        ParsedTerm {
            expression,
            column,
            collation,
            descending,
        }
    }

    fn virtual_table(&mut self) -> Result<ParsedVirtualTable> {
        self.if_not_exists()?;
        let name = self.qualified_name()?;
        self.expect_word("USING")?;
        let module = self.name()?;
        let mut arguments = Vec::new();
        if self.eat_punct("(") {
            loop {
                let run = self.run_until(|p| p.at_punct(",") || p.at_punct(")"))?;
                arguments.push(self.verbatim(run).to_owned());
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct(")")?;
            if arguments == [""] {
                arguments.clear();
            }
        }
        Ok(ParsedVirtualTable {
            name,
            module,
            arguments,
        })
    }

    fn index(&mut self, unique: bool) -> Result<ParsedIndex> {
        self.if_not_exists()?;
        let name = self.qualified_name()?;
        self.expect_word("ON")?;
        let table = self.name()?;
        let (terms, _) = self.terms(false)?;
        let predicate = if self.eat_word("WHERE") {
            let run = self.run_until(|p| p.at_punct(";"))?;
            if run.is_empty() {
                return Err(self.expected("a WHERE condition"));
            }
            Some(self.expression(run))
        } else {
            None
        };
        Ok(ParsedIndex {
            name,
            table,
            unique,
            terms,
            predicate,
        })
    }

    fn view(&mut self) -> Result<ParsedView> {
        self.if_not_exists()?;
        let name = self.qualified_name()?;
        let columns = if self.at_punct("(") {
            self.name_list()?
        } else {
            Vec::new()
        };
        self.expect_word("AS")?;
        let run = self.run_until(|p| p.at_punct(";"))?;
        if run.is_empty() {
            return Err(self.expected("a SELECT"));
        }
        Ok(ParsedView {
            name,
            columns,
            select: lex::normalise(self.src, self.slice(run)),
        })
    }

    fn trigger(&mut self) -> Result<ParsedTrigger> {
        self.if_not_exists()?;
        let name = self.qualified_name()?;
        let timing = if self.eat_word("BEFORE") {
            Timing::Before
        } else if self.eat_word("AFTER") {
            Timing::After
        } else if self.eat_word("INSTEAD") {
            self.expect_word("OF")?;
            Timing::InsteadOf
        } else {
            Timing::Before
        };
        let event = if self.eat_word("INSERT") {
            Event::Insert
        } else if self.eat_word("DELETE") {
            Event::Delete
        } else if self.eat_word("UPDATE") {
            let mut columns = Vec::new();
            if self.eat_word("OF") {
                columns.push(self.name()?);
                while self.eat_punct(",") {
                    columns.push(self.name()?);
                }
            }
            Event::Update { columns }
        } else {
            return Err(self.expected("INSERT, DELETE or UPDATE"));
        };
        self.expect_word("ON")?;
        let table = self.qualified_name()?;
        if self.eat_word("FOR") {
            self.expect_word("EACH")?;
            self.expect_word("ROW")?;
        }
        let when = if self.eat_word("WHEN") {
            let run = self.run_until(|p| p.at_word("BEGIN"))?;
            if run.is_empty() {
                return Err(self.expected("a WHEN condition"));
            }
            Some(self.expression(run))
        } else {
            None
        };
        self.expect_word("BEGIN")?;
        // The body runs to the last END; CASE … END may sit inside it.
        let start = self.pos;
        let mut end = self.tokens.len();
        if self
            .tokens
            .last()
            .is_some_and(|t| t.is_punct(self.src, ";"))
        {
            end -= 1;
        }
        match self.tokens.get(..end).and_then(<[Token]>::last) {
            Some(last) if end > start && last.is_word(self.src, "END") => {}
            _ => {
                self.pos = end;
                return Err(self.expected("END"));
            }
        }
        self.pos = start;
        let body = self.run_until(|p| p.pos + 1 == end)?;
        self.pos = end;
        Ok(ParsedTrigger {
            name,
            table,
            timing,
            event,
            when,
            body: lex::normalise(self.src, self.slice(body)),
        })
    }
}

/// Column names of key terms; a term that is not a plain column keeps its
/// expression text, so it matches no column.
fn term_columns(terms: Vec<ParsedTerm>) -> Vec<String> {
    terms
        .into_iter()
        .map(|term| term.column.unwrap_or(term.expression))
        .collect()
}

/// A declared type, normalised: uppercase (type names are
/// case-insensitive) outside quotes, spacing canonical (`VARCHAR(32)`).
pub fn declared_type(src: &str, tokens: &[Token]) -> String {
    let mut quoted = false;
    // A quoted word in a type is a name, never a string.
    lex::normalise_with(src, tokens, &|_| true)
        .chars()
        .map(|c| {
            if c == '"' || c == '\'' {
                quoted = !quoted;
            }
            if quoted { c } else { c.to_ascii_uppercase() }
        })
        .collect()
}

/// Normalises a declared type as `PRAGMA table_xinfo` reports it.
pub fn normalise_type(text: &str) -> String {
    // Most types are one plain word (`INTEGER`, `text`): no need to tokenize.
    if text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return text.to_ascii_uppercase();
    }
    match lex::tokenize(text) {
        Ok(tokens) => declared_type(text, &tokens),
        Err(_) => text.trim().to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(sql: &str) -> ParsedTable {
        match parse("t", sql) {
            Ok(Statement::Table(table)) => table,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn reads_column_and_table_constraints() {
        let t = table(
            "CREATE TABLE IF NOT EXISTS main.\"Orders\" (
                id INTEGER CONSTRAINT pk PRIMARY KEY ASC ON CONFLICT REPLACE AUTOINCREMENT,
                code varchar ( 32 ) NOT NULL ON CONFLICT IGNORE UNIQUE COLLATE nocase,
                qty INT DEFAULT -1 CHECK (qty > (0)),
                price DECIMAL(10, 2) DEFAULT (1 + 2),
                total AS (qty * price) STORED,
                note GENERATED ALWAYS AS (upper(code)),
                user_id REFERENCES users ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED,
                CONSTRAINT qty_ok CHECK ((qty < 1000))
                CONSTRAINT fk2 FOREIGN KEY (code, qty) REFERENCES \"Items\"([code], `qty`)
                    ON UPDATE CASCADE MATCH FULL NOT DEFERRABLE INITIALLY DEFERRED,
                UNIQUE (price COLLATE binary DESC, qty) ON CONFLICT FAIL
            ) WITHOUT ROWID, STRICT",
        );
        assert_eq!(t.name, "Orders");
        assert!(t.autoincrement && t.without_rowid && t.strict && !t.as_select);
        let names: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["id", "code", "qty", "price", "total", "note", "user_id"]
        );
        assert_eq!(t.columns[1].declared_type, "VARCHAR(32)");
        assert_eq!(t.columns[3].declared_type, "DECIMAL(10, 2)");
        assert!(t.columns[1].not_null);
        assert_eq!(t.columns[1].not_null_on_conflict, Some(Conflict::Ignore));
        assert_eq!(t.columns[1].collation.as_deref(), Some("nocase"));
        assert_eq!(t.columns[2].default.as_deref(), Some("-1"));
        assert_eq!(t.columns[3].default.as_deref(), Some("1 + 2"));
        assert_eq!(
            t.columns[4].generated,
            Some(Generated {
                expression: "qty * price".into(),
                storage: Storage::Stored
            })
        );
        assert_eq!(
            t.columns[5].generated.as_ref().unwrap().storage,
            Storage::Virtual
        );
        assert_eq!(
            t.primary_key,
            Some(ParsedKey {
                name: Some("pk".into()),
                columns: vec!["id".into()],
                on_conflict: Some(Conflict::Replace)
            })
        );
        assert_eq!(t.uniques.len(), 2);
        assert_eq!(t.uniques[0].columns, ["code"]);
        assert_eq!(t.uniques[1].columns, ["price", "qty"]);
        assert_eq!(t.uniques[1].on_conflict, Some(Conflict::Fail));
        assert_eq!(
            t.checks,
            [
                Check {
                    name: None,
                    expression: "qty > (0)".into()
                },
                Check {
                    name: Some("qty_ok".into()),
                    expression: "qty < 1000".into()
                }
            ]
        );
        let fk = &t.foreign_keys;
        assert_eq!(fk.len(), 2);
        assert_eq!(fk[0].columns, ["user_id"]);
        assert_eq!(fk[0].target_table, "users");
        assert!(fk[0].target_columns.is_empty());
        assert_eq!(fk[0].on_delete, Action::SetNull);
        assert!(fk[0].deferrable && fk[0].initially_deferred);
        assert_eq!(fk[1].name.as_deref(), Some("fk2"));
        assert_eq!(fk[1].target_table, "Items");
        assert_eq!(fk[1].target_columns, ["code", "qty"]);
        assert_eq!(fk[1].on_update, Action::Cascade);
        assert!(!fk[1].deferrable && fk[1].initially_deferred);
    }

    #[test]
    fn reads_sqlite_oddities() {
        // Table-constraint AUTOINCREMENT, quoted string names, no type,
        // NULL constraint, a type that is several words.
        let t = table(
            "CREATE TABLE 't'(\"a\" PRIMARY KEY, 'b' NULL, [c] unsigned big int, PRIMARY KEY (a AUTOINCREMENT))",
        );
        assert!(t.autoincrement);
        assert_eq!(t.columns[1].name, "b");
        assert_eq!(t.columns[2].declared_type, "UNSIGNED BIG INT");
        assert_eq!(normalise_type("varchar ( 32 )"), "VARCHAR(32)");
        assert_eq!(normalise_type("int"), "INT");
        assert_eq!(normalise_type("my \"odd\" type"), "MY ODD TYPE");
        assert_eq!(normalise_type(""), "");
        assert!(table("CREATE TABLE x AS SELECT 1").as_select);
        // What ALTER TABLE ADD COLUMN splices in, comments included.
        let t =
            table("CREATE TABLE u(id integer primary key, \"y\"   integer   /* hi */ default 0)");
        assert_eq!(t.columns[1].name, "y");
        assert_eq!(t.columns[1].declared_type, "INTEGER");
        assert_eq!(t.columns[1].default.as_deref(), Some("0"));
    }

    #[test]
    fn reads_indexes() {
        let Ok(Statement::Index(index)) = parse(
            "i",
            "CREATE UNIQUE INDEX IF NOT EXISTS i ON t(lower(a) collate nocase desc, a + b COLLATE nocase, (c), \"d\" COLLATE RTRIM ASC) WHERE a > 1 AND b IS NOT NULL",
        ) else {
            panic!()
        };
        assert!(index.unique);
        assert_eq!(index.table, "t");
        let terms: Vec<_> = index
            .terms
            .iter()
            .map(|t| (t.expression.as_str(), t.column.as_deref(), t.descending))
            .collect();
        assert_eq!(
            terms,
            [
                ("lower(a) COLLATE NOCASE", None, true),
                ("a + b COLLATE NOCASE", None, false),
                ("c", Some("c"), false),
                // Context-free: whether "d" names a column is for the capture to say.
                ("\"d\" COLLATE RTRIM", Some("d"), false),
            ]
        );
        assert_eq!(index.predicate.as_deref(), Some("a > 1 AND b IS NOT NULL"));
    }

    #[test]
    fn reads_views_triggers_and_virtual_tables() {
        let Ok(Statement::View(view)) = parse(
            "v",
            "create view v(x, \"y\") as select a as x, b from t -- trailing",
        ) else {
            panic!()
        };
        assert_eq!(view.columns, ["x", "y"]);
        assert_eq!(view.select, "SELECT a AS x, b FROM t");

        let Ok(Statement::Trigger(trigger)) = parse(
            "tr",
            "CREATE TRIGGER tr INSTEAD OF UPDATE OF a, b ON v FOR EACH ROW WHEN new.a > 0 BEGIN
               UPDATE t SET a = CASE WHEN new.a > 9 THEN 9 ELSE new.a END WHERE id = old.id;
               SELECT RAISE(ABORT, 'no');
             END",
        ) else {
            panic!()
        };
        assert_eq!(trigger.timing, Timing::InsteadOf);
        assert_eq!(
            trigger.event,
            Event::Update {
                columns: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(trigger.when.as_deref(), Some("new.a > 0"));
        assert_eq!(
            trigger.body,
            "UPDATE t SET a = CASE WHEN new.a > 9 THEN 9 ELSE new.a END WHERE id = old.id; SELECT RAISE (ABORT, 'no');"
        );
        let Ok(Statement::Trigger(trigger)) =
            parse("t2", "CREATE TRIGGER t2 DELETE ON t BEGIN SELECT 1; END;")
        else {
            panic!()
        };
        assert_eq!(trigger.timing, Timing::Before);
        assert_eq!(trigger.event, Event::Delete);

        let Ok(Statement::VirtualTable(vt)) = parse(
            "f",
            "CREATE VIRTUAL TABLE \"f\" USING fts5(a, b, tokenize = 'porter unicode61')",
        ) else {
            panic!()
        };
        assert_eq!(vt.module, "fts5");
        assert_eq!(vt.arguments, ["a", "b", "tokenize = 'porter unicode61'"]);
    }

    #[test]
    fn errors_name_the_object_and_the_place() {
        let err = parse("orders", "CREATE TABLE orders(a, CHECK (a > 0)").unwrap_err();
        assert_eq!(err.object, "orders");
        assert_eq!(err.problem, Problem::End { expected: ")" });
        assert_eq!(
            err.to_string(),
            "cannot parse the CREATE statement of 'orders' at byte 36: expected ), found the end of the statement"
        );
        let err = parse("x", "CREATE TABLE x(a) junk").unwrap_err();
        assert!(matches!(err.problem, Problem::Expected { ref found, .. } if found == "junk"));
        assert_eq!(err.offset, 18);
        assert!(matches!(
            parse("x", "CREATE TABLE x(a TEXT DEFAULT 'open")
                .unwrap_err()
                .problem,
            Problem::Unterminated("string")
        ));
        assert!(matches!(
            parse("x", "CREATE TABLE x(a CHECK (a > 0)))")
                .unwrap_err()
                .problem,
            Problem::Expected { .. } | Problem::Unbalanced
        ));
        assert!(parse("x", "DROP TABLE x").is_err());
        assert!(parse("x", "CREATE TRIGGER x DELETE ON t BEGIN SELECT 1;").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_keyword_soup(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "CREATE ", "TABLE ", "VIRTUAL ", "USING ", "INDEX ", "UNIQUE ", "VIEW ", "TRIGGER ",
                    "ON ", "BEGIN ", "END ", "AS ", "SELECT ", "WHERE ", "PRIMARY ", "KEY ", "CHECK ",
                    "REFERENCES ", "FOREIGN ", "CONSTRAINT ", "GENERATED ", "ALWAYS ", "STORED ",
                    "COLLATE ", "DESC ", "NOT ", "NULL ", "DEFAULT ", "DEFERRABLE ", "INITIALLY ",
                    "DEFERRED ", "WITHOUT ", "ROWID ", "STRICT ", "AUTOINCREMENT ", "CONFLICT ",
                    "UPDATE ", "OF ", "DELETE ", "SET ", "CASCADE ", "INSTEAD ", "WHEN ", "IF ",
                    "EXISTS ", "(", ")", ",", ";", ".", "-", "a ", "\"b\" ", "[c] ", "'d' ", "1 ",
                    "x'00' ", "é ", "'", "\"", "[", "/*", "*/", "--", "\n",
                ]),
                0..40,
            )
        ) {
            let _ = parse("x", &parts.concat());
        }
    }

    #[test]
    fn never_panics_on_prefixes_or_garbage() {
        let samples = [
            "CREATE TABLE \"x\"(a INTEGER PRIMARY KEY AUTOINCREMENT, b TEXT NOT NULL DEFAULT 'é' CHECK (length(b) > 0) REFERENCES u(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, UNIQUE (b COLLATE nocase DESC)) WITHOUT ROWID, STRICT",
            "CREATE UNIQUE INDEX i ON t(lower(a) COLLATE nocase DESC) WHERE a > 1",
            "CREATE TRIGGER tr AFTER UPDATE OF a ON t WHEN new.a BEGIN SELECT 1; END",
            "CREATE VIEW v(a) AS SELECT 1",
            "CREATE VIRTUAL TABLE f USING fts5(a, tokenize = 'porter')",
        ];
        for sql in samples {
            for end in 0..=sql.len() {
                if let Some(prefix) = sql.get(..end) {
                    let _ = parse("x", prefix);
                }
            }
        }
        for garbage in [
            "(((",
            ")))",
            "CREATE",
            "CREATE TABLE",
            "CREATE TABLE t(",
            "CREATE INDEX i ON t()",
            "\u{0}",
            "[",
            "CREATE VIEW v AS",
            "CREATE TRIGGER t DELETE ON x BEGIN END",
        ] {
            let _ = parse("x", garbage);
        }
    }
}
