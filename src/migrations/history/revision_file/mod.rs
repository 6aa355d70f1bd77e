//! Static parse of one Alembic revision file: its module-level `revision`,
//! `down_revision`, `branch_labels` and `depends_on`, its docstring header,
//! whether `upgrade()`/`downgrade()` do anything, and the data steps of
//! `upgrade()`. No Python is run.
//!
//! A small Python tokenizer (strings with every prefix and quote form,
//! comments, backslash continuations, brackets, indentation) turns the source
//! into logical lines; only statements at module level (indentation 0, not
//! inside a compound statement) count, exactly the assignments Alembic sees
//! as module attributes after import, the last one winning. Values must be
//! literals Alembic accepts: `None`, a string, or a tuple/list of strings.
//!
//! Invariant: [`parse`] never panics, whatever the input.
//!
//! The tokenizer is the `tokens` submodule; this module reads the
//! statements it delimits, and `steps` finds the data steps among them.

use std::collections::BTreeMap;

use tokens::{Bracket, StrKind, Token, TokenKind, Tokenizer};

use super::data_steps::DataStep;

mod steps;
mod tokens;

/// The four module attributes Alembic reads from a revision file
/// (`Script._from_path` in `alembic/script/base.py`).
const REVISION: &str = "revision";
const DOWN_REVISION: &str = "down_revision";
const BRANCH_LABELS: &str = "branch_labels";
const DEPENDS_ON: &str = "depends_on";

/// What `down_revision` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownRevision {
    /// No module-level `down_revision` assignment.
    Missing,
    /// `down_revision = None`: a base revision.
    Base,
    /// One parent, as a plain string.
    One(String),
    /// A tuple or list, as written (a merge when it has two or more). Alembic
    /// treats an empty one as base and a one-element one as that parent; see
    /// [`DownRevision::parents`].
    Many(Vec<String>),
}

impl DownRevision {
    /// The parent ids as Alembic uses them: none for a base (or a missing
    /// `down_revision`), else every id named.
    pub fn parents(&self) -> Vec<&str> {
        match self {
            DownRevision::Missing | DownRevision::Base => Vec::new(),
            DownRevision::One(parent) => vec![parent.as_str()],
            DownRevision::Many(parents) => parents.iter().map(String::as_str).collect(),
        }
    }
}

/// What a function body is, for lint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// No module-level function of that name.
    Missing,
    /// Only `pass`, `...`, docstrings and comments: it does nothing.
    Empty,
    /// Its first real statement is `raise` (typically a downgrade that
    /// refuses to run).
    Raises,
    /// Anything else.
    Code,
}

/// What one revision file declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionFile {
    /// `revision = "abc"` (also `revision: str = "abc"`).
    pub revision: Option<String>,
    /// `down_revision`, in any of its literal forms.
    pub down_revision: DownRevision,
    /// `branch_labels`: `None` is empty, a string is one label.
    pub branch_labels: Vec<String>,
    /// `depends_on`: `None` is empty, a string is one dependency.
    pub depends_on: Vec<String>,
    /// The docstring line `Revision ID: abc`, trimmed; `None` when absent or
    /// empty.
    pub header_revision: Option<String>,
    /// The docstring line `Revises: a, b`, split on commas; `Some(vec![])`
    /// when the line is there but empty (a base).
    pub header_revises: Option<Vec<String>>,
    /// The first line of the module docstring, trimmed; `None` when there is
    /// no docstring or that line is empty.
    pub message: Option<String>,
    /// What `upgrade()` does.
    pub upgrade: Body,
    /// What `downgrade()` does.
    pub downgrade: Body,
    /// Where `upgrade()` moves rows rather than only changing the schema.
    pub data_steps: Vec<DataStep>,
    /// The 1-based line of each of the four assignments found (the last one
    /// when repeated), keyed by variable name.
    pub line_of: BTreeMap<&'static str, usize>,
}

/// Why a revision file could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevisionFileError {
    /// A string literal runs to the end of its line (or of the file).
    #[error("line {line}: unterminated string")]
    UnterminatedString {
        /// The line where the string starts.
        line: usize,
    },
    /// A triple-quoted string runs to the end of the file.
    #[error("line {line}: unterminated triple-quoted string")]
    UnterminatedTripleString {
        /// The line where the string starts.
        line: usize,
    },
    /// A bracket is never closed.
    #[error("line {line}: '{bracket}' is never closed")]
    UnclosedBracket {
        /// The line of the opening bracket.
        line: usize,
        /// The bracket.
        bracket: char,
    },
    /// Brackets or f-string fields nest deeper than Python allows.
    #[error("line {line}: brackets nest more than 200 deep")]
    TooDeep {
        /// The line of the bracket past the limit.
        line: usize,
    },
    /// One of the four variables is set to something Alembic does not accept
    /// or that cannot be known without running Python.
    #[error("line {line}: {name} is not {expected}")]
    BadValue {
        /// The line of the assignment.
        line: usize,
        /// The variable.
        name: &'static str,
        /// What is accepted.
        expected: &'static str,
    },
}

/// Parses the source of one revision file.
pub fn parse(source: &str) -> Result<RevisionFile, RevisionFileError> {
    let lines = Tokenizer::new(source).logical_lines()?;
    let mut file = RevisionFile {
        revision: None,
        down_revision: DownRevision::Missing,
        branch_labels: Vec::new(),
        depends_on: Vec::new(),
        header_revision: None,
        header_revises: None,
        message: None,
        upgrade: Body::Missing,
        downgrade: Body::Missing,
        data_steps: Vec::new(),
        line_of: BTreeMap::new(),
    };

    if let Some(first) = lines.first()
        && first.indent == 0
        && let Some(statement) = split_statements(&first.tokens).first()
        && let Some(doc) = docstring(statement)
    {
        read_header(&doc, &mut file);
    }

    // The body of every module-level function, for the helpers that
    // `upgrade()` calls.
    let mut functions: BTreeMap<&str, Vec<&[Token]>> = BTreeMap::new();
    let mut index = 0;
    while let Some(line) = lines.get(index) {
        index += 1;
        if line.indent > 0 {
            // Inside a compound statement at module level (or stray
            // indentation): not a module attribute.
            continue;
        }
        if let Some((name, inline)) = def_header(&line.tokens) {
            let mut statements = split_statements(inline);
            while let Some(body_line) = lines.get(index).filter(|next| next.indent > 0) {
                statements.extend(split_statements(&body_line.tokens));
                index += 1;
            }
            match name {
                "upgrade" => file.upgrade = classify(&statements),
                "downgrade" => file.downgrade = classify(&statements),
                _ => {}
            }
            functions.insert(name, statements);
            continue;
        }
        if is_compound(&line.tokens) {
            continue;
        }
        for statement in split_statements(&line.tokens) {
            assign(statement, &mut file)?;
        }
    }
    file.data_steps = steps::detect(&functions);
    Ok(file)
}

/// The module docstring: a first statement made only of (implicitly
/// concatenated) plain string literals; an f-string is never a docstring.
fn docstring(tokens: &[Token]) -> Option<String> {
    let plain = tokens.iter().all(
        |token| matches!(&token.kind, TokenKind::Str(literal) if literal.kind == StrKind::Text),
    );
    match literal_text(tokens)? {
        Literal::Text(text) if plain => Some(text),
        _ => None,
    }
}

/// Fills the message and the `Revision ID:`/`Revises:` lines that
/// `alembic revision` writes into the docstring.
fn read_header(doc: &str, file: &mut RevisionFile) {
    file.message = doc
        .trim()
        .lines()
        .next()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string);
    for line in doc.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Revision ID:") {
            if file.header_revision.is_none() {
                file.header_revision = Some(rest.trim().to_string()).filter(|id| !id.is_empty());
            }
        } else if let Some(rest) = line.strip_prefix("Revises:")
            && file.header_revises.is_none()
        {
            file.header_revises = Some(
                rest.split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
}

/// `def NAME(...) [-> ann]:` (or `async def`) at the start of a logical line:
/// the name and the tokens of a body written on the same line.
fn def_header(tokens: &[Token]) -> Option<(&str, &[Token])> {
    let start = usize::from(tokens.first()?.is_name("async"));
    if !tokens.get(start)?.is_name("def") {
        return None;
    }
    let TokenKind::Name(name) = &tokens.get(start + 1)?.kind else {
        return None;
    };
    if !tokens.get(start + 2)?.is_op("(") {
        return None;
    }
    let close = matching_close(tokens, start + 2).unwrap_or(tokens.len());
    let mut depth = 0usize;
    for (offset, token) in tokens.iter().enumerate().skip(close + 1) {
        match token.bracket() {
            Some(Bracket::Open) => depth += 1,
            Some(Bracket::Close) => depth = depth.saturating_sub(1),
            None if depth == 0 && token.is_op(":") => return Some((name, &tokens[offset + 1..])),
            None => {}
        }
    }
    Some((name, &[]))
}

/// Whether a logical line opens a compound statement whose body (even one on
/// the same line, as in `if x: y = 1`) is not at module level.
fn is_compound(tokens: &[Token]) -> bool {
    const KEYWORDS: [&str; 12] = [
        "if", "elif", "else", "for", "while", "def", "class", "with", "try", "except", "finally",
        "async",
    ];
    match tokens.first() {
        Some(token) => token.is_op("@") || KEYWORDS.iter().any(|keyword| token.is_name(keyword)),
        None => false,
    }
}

/// Splits a logical line into simple statements on top-level `;`.
fn split_statements(tokens: &[Token]) -> Vec<&[Token]> {
    split_top_level(tokens, ";")
        .into_iter()
        .filter(|statement| !statement.is_empty())
        .collect()
}

/// Splits on operator `separator` outside brackets.
fn split_top_level<'t>(tokens: &'t [Token], separator: &str) -> Vec<&'t [Token]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, token) in tokens.iter().enumerate() {
        match token.bracket() {
            Some(Bracket::Open) => depth += 1,
            Some(Bracket::Close) => depth = depth.saturating_sub(1),
            None if depth == 0 && token.is_op(separator) => {
                parts.push(&tokens[start..index]);
                start = index + 1;
            }
            None => {}
        }
    }
    parts.push(&tokens[start..]);
    parts
}

/// The index of the bracket closing the one at `open`, if any.
fn matching_close(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (index, token) in tokens.iter().enumerate().skip(open) {
        match token.bracket() {
            Some(Bracket::Open) => depth += 1,
            Some(Bracket::Close) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(index);
                }
            }
            None => {}
        }
    }
    None
}

/// What a function body does: its first statement that is not `pass`, `...`
/// or a bare string decides.
fn classify(statements: &[&[Token]]) -> Body {
    let trivial = |statement: &&[Token]| match statement {
        [token] if token.is_name("pass") || token.is_op("...") => true,
        tokens => tokens
            .iter()
            .all(|token| matches!(token.kind, TokenKind::Str(_))),
    };
    match statements.iter().find(|statement| !trivial(statement)) {
        None => Body::Empty,
        Some(statement)
            if statement
                .first()
                .is_some_and(|token| token.is_name("raise")) =>
        {
            Body::Raises
        }
        Some(_) => Body::Code,
    }
}

/// Records a module-level assignment to one of the four variables:
/// `name = value`, `name: annotation = value`, or a chain `a = b = value`.
fn assign(statement: &[Token], file: &mut RevisionFile) -> Result<(), RevisionFileError> {
    let parts = split_top_level(statement, "=");
    let Some((value, targets)) = parts.split_last() else {
        return Ok(());
    };
    for (position, target) in targets.iter().enumerate() {
        let name_token = match target {
            [token] => token,
            // `name: annotation = value`; only the first target may be annotated.
            [token, colon, ..] if position == 0 && colon.is_op(":") => token,
            _ => continue,
        };
        let TokenKind::Name(name) = &name_token.kind else {
            continue;
        };
        let line = name_token.line;
        let Some(name) = [REVISION, DOWN_REVISION, BRANCH_LABELS, DEPENDS_ON]
            .into_iter()
            .find(|known| known == name)
        else {
            continue;
        };
        let bad = |expected| RevisionFileError::BadValue {
            line,
            name,
            expected,
        };
        let parsed = parse_value(value);
        match name {
            REVISION => match parsed {
                Value::Str(id) => file.revision = Some(id),
                _ => return Err(bad("a string")),
            },
            DOWN_REVISION => {
                file.down_revision = match parsed {
                    Value::None => DownRevision::Base,
                    Value::Str(id) => DownRevision::One(id),
                    Value::Seq(items) => {
                        DownRevision::Many(strings(items).ok_or_else(|| bad(SEQUENCE))?)
                    }
                    Value::Other => return Err(bad(SEQUENCE)),
                }
            }
            _ => {
                let ids = match parsed {
                    Value::None => Vec::new(),
                    Value::Str(id) => vec![id],
                    Value::Seq(items) => strings(items).ok_or_else(|| bad(SEQUENCE))?,
                    Value::Other => return Err(bad(SEQUENCE)),
                };
                if name == BRANCH_LABELS {
                    file.branch_labels = ids;
                } else {
                    file.depends_on = ids;
                }
            }
        }
        file.line_of.insert(name, line);
    }
    Ok(())
}

/// What `down_revision`, `branch_labels` and `depends_on` accept.
const SEQUENCE: &str = "a string, None, or a tuple of strings";

/// The items of a sequence when they are all strings.
fn strings(items: Vec<Value>) -> Option<Vec<String>> {
    items
        .into_iter()
        .map(|item| match item {
            Value::Str(text) => Some(text),
            _ => None,
        })
        .collect()
}

/// A literal value as far as these variables need.
#[derive(Debug, PartialEq)]
enum Value {
    None,
    Str(String),
    /// A tuple or list.
    Seq(Vec<Value>),
    /// Anything else: a name, a call, bytes, an f-string with placeholders…
    Other,
}

/// An expression, possibly an unparenthesised tuple (`"a", "b"`).
fn parse_value(tokens: &[Token]) -> Value {
    let parts = split_top_level(tokens, ",");
    if parts.len() == 1 {
        return parse_atom(tokens);
    }
    sequence(parts)
}

/// Comma-separated items; one trailing comma is allowed.
fn sequence(mut parts: Vec<&[Token]>) -> Value {
    if parts.last().is_some_and(|last| last.is_empty()) {
        parts.pop();
    }
    if parts.iter().any(|part| part.is_empty()) {
        return Value::Other;
    }
    Value::Seq(parts.into_iter().map(parse_atom).collect())
}

/// `None`, strings, `( … )` or `[ … ]`.
fn parse_atom(tokens: &[Token]) -> Value {
    match tokens {
        [] => Value::Other,
        [token] if token.is_name("None") => Value::None,
        [first, .., last]
            if matches!(first.bracket(), Some(Bracket::Open))
                && matching_close(tokens, 0) == Some(tokens.len() - 1) =>
        {
            let inner = &tokens[1..tokens.len() - 1];
            let parts = split_top_level(inner, ",");
            if first.is_op("(") && last.is_op(")") {
                if inner.is_empty() {
                    Value::Seq(Vec::new())
                } else if parts.len() == 1 {
                    // `("a")` is just "a".
                    parse_atom(inner)
                } else {
                    sequence(parts)
                }
            } else if first.is_op("[") && last.is_op("]") {
                if inner.is_empty() {
                    Value::Seq(Vec::new())
                } else {
                    sequence(parts)
                }
            } else {
                Value::Other
            }
        }
        _ => match literal_text(tokens) {
            Some(Literal::Text(text)) => Value::Str(text),
            _ => Value::Other,
        },
    }
}

/// What adjacent string literals concatenate to.
enum Literal {
    /// A `str` whose value is known.
    Text(String),
    /// Bytes, an f-string with placeholders, or a str/bytes mix.
    Other,
}

/// The concatenation of `tokens` when they are all string literals.
fn literal_text(tokens: &[Token]) -> Option<Literal> {
    if tokens.is_empty() {
        return None;
    }
    let mut text = String::new();
    let mut known = true;
    let mut saw_bytes = false;
    let mut saw_text = false;
    for token in tokens {
        let TokenKind::Str(literal) = &token.kind else {
            return None;
        };
        match literal.kind {
            StrKind::Bytes => saw_bytes = true,
            StrKind::Text => saw_text = true,
            StrKind::Format { placeholders } => {
                saw_text = true;
                known &= !placeholders;
            }
        }
        text.push_str(&literal.value);
    }
    Some(if known && saw_text && !saw_bytes {
        Literal::Text(text)
    } else {
        Literal::Other
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `alembic revision -m "add archived"` writes with Alembic 1.16+.
    const TYPED: &str = r#""""add archived

Revision ID: 1a2b3c4d5e6f
Revises: 0f9e8d7c6b5a
Create Date: 2025-06-01 12:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '1a2b3c4d5e6f'
down_revision: Union[str, Sequence[str], None] = '0f9e8d7c6b5a'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # ### commands auto generated by Alembic - please adjust! ###
    op.add_column('chat', sa.Column('archived', sa.Boolean(), nullable=True))
    # ### end Alembic commands ###


def downgrade() -> None:
    """Downgrade schema."""
    # ### commands auto generated by Alembic - please adjust! ###
    pass
    # ### end Alembic commands ###
"#;

    /// The older, untyped template (Alembic < 1.13), a first revision.
    const UNTYPED: &str = "\"\"\"init\n\nRevision ID: ae1027a6acf\nRevises: \nCreate Date: 2014-01-01\n\n\"\"\"\nfrom alembic import op\nimport sqlalchemy as sa\n\n\n# revision identifiers, used by Alembic.\nrevision = 'ae1027a6acf'\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n";

    fn parsed(source: &str) -> RevisionFile {
        parse(source).unwrap_or_else(|error| panic!("parses: {error}"))
    }

    #[test]
    fn typed_template_of_alembic_1_16() {
        let file = parsed(TYPED);
        assert_eq!(file.revision.as_deref(), Some("1a2b3c4d5e6f"));
        assert_eq!(file.down_revision, DownRevision::One("0f9e8d7c6b5a".into()));
        assert!(file.branch_labels.is_empty() && file.depends_on.is_empty());
        assert_eq!(file.header_revision.as_deref(), Some("1a2b3c4d5e6f"));
        assert_eq!(file.header_revises, Some(vec!["0f9e8d7c6b5a".to_string()]));
        assert_eq!(file.message.as_deref(), Some("add archived"));
        assert_eq!(file.upgrade, Body::Code);
        assert_eq!(file.downgrade, Body::Empty);
        let lines: Vec<(&str, usize)> = file
            .line_of
            .iter()
            .map(|(name, line)| (*name, *line))
            .collect();
        assert_eq!(
            lines,
            [
                ("branch_labels", 17),
                ("depends_on", 18),
                ("down_revision", 16),
                ("revision", 15)
            ]
        );
    }

    #[test]
    fn untyped_template_first_revision() {
        let file = parsed(UNTYPED);
        assert_eq!(file.revision.as_deref(), Some("ae1027a6acf"));
        assert_eq!(file.down_revision, DownRevision::Base);
        assert_eq!(file.header_revises, Some(vec![]));
        assert_eq!(file.message.as_deref(), Some("init"));
        assert_eq!((file.upgrade, file.downgrade), (Body::Empty, Body::Empty));
    }

    #[test]
    fn merge_revisions_in_every_sequence_form() {
        for value in [
            "('a', 'b')",
            "['a', 'b']",
            "('a', 'b',)",
            "'a', 'b'",
            "(\n    'a',\n    'b',\n)",
            "(('a', 'b'))",
        ] {
            let file = parsed(&format!("revision = 'm'\ndown_revision = {value}\n"));
            assert_eq!(
                file.down_revision,
                DownRevision::Many(vec!["a".into(), "b".into()]),
                "{value}"
            );
            assert_eq!(file.down_revision.parents(), ["a", "b"]);
        }
        let file = parsed("down_revision: Union[str, Sequence[str], None] = ('a', 'b')\n");
        assert_eq!(file.down_revision.parents(), ["a", "b"]);
        assert_eq!(
            parsed("down_revision = ()\n").down_revision,
            DownRevision::Many(vec![])
        );
        assert_eq!(
            parsed("down_revision = ('a')\n").down_revision,
            DownRevision::One("a".into())
        );
        assert_eq!(
            parsed("down_revision = ('a',)\n").down_revision,
            DownRevision::Many(vec!["a".into()])
        );
    }

    #[test]
    fn typed_forms_of_every_era() {
        let file = parsed(
            "revision: str = \"r\"\ndown_revision: Union[str, None] = \"a\"\nbranch_labels: str | Sequence[str] | None = (\"x\",)\ndepends_on: Optional[Union[str, Sequence[str]]] = [\"d1\", \"d2\"]\n",
        );
        assert_eq!(file.revision.as_deref(), Some("r"));
        assert_eq!(file.down_revision, DownRevision::One("a".into()));
        assert_eq!(file.branch_labels, ["x"]);
        assert_eq!(file.depends_on, ["d1", "d2"]);
        assert_eq!(parsed("branch_labels = 'solo'\n").branch_labels, ["solo"]);
    }

    #[test]
    fn open_webui_style_file() {
        // Open WebUI writes migrations by hand with the typed header and
        // helper imports.
        let source = r#""""Add feedback table

Revision ID: af906e964978
Revises: c29facfe716b
Create Date: 2024-10-20 17:02:35.241684

"""

from alembic import op
import sqlalchemy as sa

# Revision identifiers, used by Alembic.
revision = "af906e964978"
down_revision = "c29facfe716b"
branch_labels = None
depends_on = None


def upgrade():
    # ### Create feedback table ###
    op.create_table(
        "feedback",
        sa.Column("id", sa.Text(), primary_key=True),  # Unique identifier for each feedback (TEXT type)
        sa.Column("user_id", sa.Text(), nullable=True),
    )


def downgrade():
    # ### Drop feedback table ###
    op.drop_table("feedback")
"#;
        let file = parsed(source);
        assert_eq!(file.revision.as_deref(), Some("af906e964978"));
        assert_eq!(file.down_revision, DownRevision::One("c29facfe716b".into()));
        assert_eq!(file.message.as_deref(), Some("Add feedback table"));
        assert_eq!((file.upgrade, file.downgrade), (Body::Code, Body::Code));
    }

    #[test]
    fn merge_file_with_typed_header() {
        // What `alembic merge heads` writes (typed template, older
        // `Union[str, None]` annotation), with an empty-valued header line.
        let source = "\"\"\"merge heads\n\nRevision ID: 14f6763df9ca\nRevises: 3af16a1c9fb6, e1b2c3d4\nCreate Date: 2025-08-26 13:14:30.337954\n\n\"\"\"\nfrom typing import Sequence, Union\n\n# revision identifiers, used by Alembic.\nrevision: str = '14f6763df9ca'\ndown_revision: Union[str, None] = ('3af16a1c9fb6', 'e1b2c3d4')\nbranch_labels: Union[str, Sequence[str], None] = None\ndepends_on: Union[str, Sequence[str], None] = None\n\n\ndef upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n";
        let file = parsed(source);
        assert_eq!(
            file.down_revision,
            DownRevision::Many(vec!["3af16a1c9fb6".into(), "e1b2c3d4".into()])
        );
        assert_eq!(
            file.header_revises,
            Some(vec!["3af16a1c9fb6".to_string(), "e1b2c3d4".to_string()])
        );
        assert_eq!((file.upgrade, file.downgrade), (Body::Empty, Body::Empty));
        let first = parsed(
            "\"\"\"init\n\nRevision ID: 7e5b5dc7342b\nRevises:\n\"\"\"\nrevision = '7e5b5dc7342b'\n",
        );
        assert_eq!(first.header_revises, Some(vec![]));
        assert_eq!(first.header_revision.as_deref(), Some("7e5b5dc7342b"));
    }

    #[test]
    fn docstring_is_only_a_plain_first_statement() {
        assert_eq!(
            parsed("\"\"\"doc\"\"\"; import os\n").message.as_deref(),
            Some("doc")
        );
        assert_eq!(parsed("f\"\"\"doc\"\"\"\n").message, None);
        assert_eq!(parsed("import os\n\"\"\"doc\"\"\"\n").message, None);
    }

    #[test]
    fn only_module_level_assignments_count() {
        let source = "\"\"\"msg\n\nrevision = 'fake'\n\"\"\"\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    revision = 'typing'\nrevision = 'real'  # revision = 'comment'\nx = '# not a comment'; down_revision = 'p'\nif True: depends_on = 'nested'\nclass Meta:\n    branch_labels = ('nested',)\ndef f():\n    down_revision = 'inner'\n";
        let file = parsed(source);
        assert_eq!(file.revision.as_deref(), Some("real"));
        assert_eq!(file.line_of.get("revision"), Some(&8));
        assert_eq!(file.down_revision, DownRevision::One("p".into()));
        assert!(file.depends_on.is_empty() && file.branch_labels.is_empty());
        assert_eq!(file.message.as_deref(), Some("msg"));
    }

    #[test]
    fn values_that_cannot_be_known_are_errors() {
        let cases = [
            ("revision = 5\n", "line 1: revision is not a string"),
            (
                "x = 1\ndown_revision = compute()\n",
                "line 2: down_revision is not a string, None, or a tuple of strings",
            ),
            (
                "down_revision = ('a', None)\n",
                "line 1: down_revision is not a string, None, or a tuple of strings",
            ),
            (
                "depends_on = f'{x}'\n",
                "line 1: depends_on is not a string, None, or a tuple of strings",
            ),
            (
                "branch_labels = b'x'\n",
                "line 1: branch_labels is not a string, None, or a tuple of strings",
            ),
            ("revision = 'a' + 'b'\n", "line 1: revision is not a string"),
            ("revision = None\n", "line 1: revision is not a string"),
        ];
        for (source, message) in cases {
            assert_eq!(
                parse(source).expect_err(source).to_string(),
                message,
                "{source}"
            );
        }
    }

    #[test]
    fn function_bodies_are_classified() {
        let body = |source: &str| parsed(source).upgrade;
        assert_eq!(body("def upgrade(): pass\n"), Body::Empty);
        assert_eq!(body("def upgrade() -> None: ...\n"), Body::Empty);
        assert_eq!(
            body(
                "def upgrade(\n    x: int = 1,\n) -> None:\n    \"\"\"Doc.\"\"\"\n\n    # note\n    pass\n"
            ),
            Body::Empty
        );
        assert_eq!(
            body("def upgrade():\n    raise NotImplementedError()\n"),
            Body::Raises
        );
        assert_eq!(
            body("def upgrade():\n    '''Doc.'''\n    raise RuntimeError('no')\n    pass\n"),
            Body::Raises
        );
        assert_eq!(
            body("def upgrade():\n    if x:\n        raise E\n"),
            Body::Code
        );
        assert_eq!(body("async def upgrade(): await op.x()\n"), Body::Code);
        assert_eq!(body("def downgrade(): pass\n"), Body::Missing);
        assert_eq!(
            body("if x:\n    def upgrade():\n        op.x()\n"),
            Body::Missing
        );
        assert_eq!(
            body("@decorated\ndef upgrade():\n    op.x()\nrevision = 'r'\n"),
            Body::Code
        );
    }

    #[test]
    fn crlf_bom_and_tabs() {
        let source = "\u{feff}\"\"\"crlf\r\n\r\nRevision ID: r1\r\nRevises: a, b\r\n\"\"\"\r\nrevision = 'r1'\r\ndown_revision = ('a',\r\n\t'b')\r\nif x:\r\n\trevision = 'tab'\r\ndef upgrade():\r\n\tpass\r\n";
        let file = parsed(source);
        assert_eq!(file.revision.as_deref(), Some("r1"));
        assert_eq!(file.line_of.get("revision"), Some(&6));
        assert_eq!(file.down_revision.parents(), ["a", "b"]);
        assert_eq!(
            file.header_revises,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(file.message.as_deref(), Some("crlf"));
        assert_eq!(file.upgrade, Body::Empty);
    }

    #[test]
    fn missing_variables_fall_back_to_nothing() {
        let file = parsed("import os\n");
        assert_eq!(file.revision, None);
        assert_eq!(file.down_revision, DownRevision::Missing);
        assert_eq!(file.message, None);
        assert!(file.line_of.is_empty());
        assert_eq!(parsed("").upgrade, Body::Missing);
    }

    #[test]
    fn later_assignments_win() {
        let file = parsed("revision = 'a'\nrevision = 'b'\n");
        assert_eq!(file.revision.as_deref(), Some("b"));
        assert_eq!(file.line_of.get("revision"), Some(&2));
        let file = parsed("revision = down_revision = 'x'\n");
        assert_eq!(file.revision.as_deref(), Some("x"));
        assert_eq!(file.down_revision, DownRevision::One("x".into()));
    }

    /// Applies `edits` (position, kind, character) to `text`.
    fn mutate(text: &str, edits: &[(usize, u8, char)]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for &(position, kind, c) in edits {
            let position = position % (chars.len() + 1);
            match kind % 3 {
                0 => chars.insert(position, c),
                1 if position < chars.len() => {
                    chars.remove(position);
                }
                _ if position < chars.len() => chars[position] = c,
                _ => {}
            }
        }
        chars.into_iter().collect()
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(source in "\\PC*") {
            let _ = parse(&source);
        }

        #[test]
        fn python_like_text_never_panics(source in "([a-z_ ]|[\"'()\\[\\]{}\\\\#=:;,.\\n\\r\\t]|rb|f\"|\"\"\")*") {
            let _ = parse(&source);
        }

        #[test]
        fn mutated_revision_files_never_panic(
            edits in proptest::collection::vec(
                (0usize..4096, 0u8..3, proptest::prop_oneof![
                    proptest::char::any(),
                    proptest::sample::select(vec!['"', '\'', '\\', '(', ')', '[', ']', '{', '}', '#', '\n', '\r', '\t', ' ', ':', '=', ',', 'f', 'r', 'b']),
                ]),
                1..12,
            ),
            typed in proptest::bool::ANY,
        ) {
            let text = mutate(if typed { TYPED } else { UNTYPED }, &edits);
            let _ = parse(&text);
        }
    }
}
