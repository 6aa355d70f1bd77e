//! The SQLite tokenizer the schema parser stands on, and the *normalised
//! text* of a token run: the form in which the model keeps expressions,
//! view selects and trigger bodies.
//!
//! Tokens follow SQLite's own tokenizer (<https://sqlite.org/lang_keywords.html>,
//! `tokenize.c`): identifiers bare, in `"double quotes"`, `[brackets]` or
//! `` `backticks` ``; string literals `'...'` with `''` escapes; numbers;
//! blobs `x'..'`; variables; operators. Comments and whitespace are skipped.
//!
//! Normalised text is a function of the tokens alone, so it is insensitive to
//! whitespace, comments, keyword case and identifier quoting style, and
//! normalising it again gives the same text.
//!
//! Invariants: tokenizing never panics, whatever the input; every span starts
//! and ends on a `char` boundary (tokens end only at ASCII bytes or the end of
//! input, because SQLite treats every byte ≥ 0x80 as an identifier byte).

use std::ops::Range;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word: keyword or identifier.
    Word,
    /// An identifier in `"…"`, `[…]` or `` `…` ``.
    Quoted,
    /// A string literal `'…'`.
    String,
    /// A blob literal `x'…'`.
    Blob,
    /// A numeric literal.
    Number,
    /// A bound parameter (`?1`, `:name`, `@name`, `$name`).
    Variable,
    /// An operator or punctuation.
    Punct,
}

/// One token: its kind and where it is in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Its bytes in the source.
    pub span: Range<usize>,
}

/// Why a text does not tokenize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexError {
    /// A string, quoted identifier, blob or comment is not closed.
    Unterminated {
        /// What was left open.
        what: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// A character SQLite does not accept outside literals.
    Unexpected {
        /// The character.
        found: char,
        /// Where it is.
        offset: usize,
    },
}

impl Token {
    /// The token's source text.
    pub fn text<'s>(&self, src: &'s str) -> &'s str {
        src.get(self.span.clone()).unwrap_or_default()
    }

    /// Whether this is the bare word `word` (ASCII case-insensitive).
    pub fn is_word(&self, src: &str, word: &str) -> bool {
        self.kind == TokenKind::Word && self.text(src).eq_ignore_ascii_case(word)
    }

    /// Whether this is the punctuation `punct`.
    pub fn is_punct(&self, src: &str, punct: &str) -> bool {
        self.kind == TokenKind::Punct && self.text(src) == punct
    }

    /// Whether the token can name something: a bare word, a quoted identifier
    /// or a string (SQLite accepts `'name'` where a name is expected).
    pub fn is_name(&self) -> bool {
        matches!(
            self.kind,
            TokenKind::Word | TokenKind::Quoted | TokenKind::String
        )
    }

    /// The name the token stands for: a word as written, a quoted identifier
    /// or string without its quotes and with doubled quotes undone.
    pub fn name(&self, src: &str) -> String {
        let text = self.text(src);
        match self.kind {
            TokenKind::Quoted | TokenKind::String => unquote(text),
            _ => text.to_owned(),
        }
    }
}

/// Removes the quotes around `text` (the first and last characters) and
/// undoes doubled closing quotes. `[…]` has no escape.
fn unquote(text: &str) -> String {
    let Some(open) = text.chars().next() else {
        return String::new();
    };
    let inner = text
        .get(1..text.len().saturating_sub(1))
        .unwrap_or_default();
    match open {
        '"' => inner.replace("\"\"", "\""),
        '`' => inner.replace("``", "`"),
        '\'' => inner.replace("''", "'"),
        _ => inner.to_owned(),
    }
}

fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80
}

fn is_ident_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80
}

/// Splits `src` into tokens, skipping whitespace and comments.
pub fn tokenize(src: &str) -> Result<Vec<Token>, LexError> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let start = at;
        let next = bytes.get(at + 1).copied();
        let kind = match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                at += 1;
                continue;
            }
            b'-' if next == Some(b'-') => {
                while bytes.get(at).is_some_and(|&b| b != b'\n') {
                    at += 1;
                }
                continue;
            }
            b'/' if next == Some(b'*') => {
                // SQLite accepts a comment left open at the end of input; a
                // schema statement never has one, so refuse it.
                match src.get(at + 2..).and_then(|rest| rest.find("*/")) {
                    Some(end) => at += 2 + end + 2,
                    None => {
                        return Err(LexError::Unterminated {
                            what: "comment",
                            offset: start,
                        });
                    }
                }
                continue;
            }
            b'\'' => {
                at = close_quote(bytes, at, b'\'', "string")?;
                TokenKind::String
            }
            b'"' => {
                at = close_quote(bytes, at, b'"', "quoted identifier")?;
                TokenKind::Quoted
            }
            b'`' => {
                at = close_quote(bytes, at, b'`', "quoted identifier")?;
                TokenKind::Quoted
            }
            b'[' => {
                match bytes[at..].iter().position(|&b| b == b']') {
                    Some(end) => at += end + 1,
                    None => {
                        return Err(LexError::Unterminated {
                            what: "bracketed identifier",
                            offset: start,
                        });
                    }
                }
                TokenKind::Quoted
            }
            b'x' | b'X' if next == Some(b'\'') => {
                at = close_quote(bytes, at + 1, b'\'', "blob")?;
                TokenKind::Blob
            }
            b'0'..=b'9' => {
                at = number_end(bytes, at);
                TokenKind::Number
            }
            b'.' if next.is_some_and(|b| b.is_ascii_digit()) => {
                at = number_end(bytes, at);
                TokenKind::Number
            }
            b'?' => {
                at += 1;
                while bytes.get(at).is_some_and(u8::is_ascii_digit) {
                    at += 1;
                }
                TokenKind::Variable
            }
            b':' | b'@' | b'$' | b'#' if next.is_some_and(is_ident_byte) => {
                at += 1;
                while bytes.get(at).copied().is_some_and(is_ident_byte) {
                    at += 1;
                }
                TokenKind::Variable
            }
            b if is_ident_start(b) => {
                while bytes.get(at).copied().is_some_and(is_ident_byte) {
                    at += 1;
                }
                TokenKind::Word
            }
            _ => {
                at += punct_len(bytes, at).ok_or_else(|| LexError::Unexpected {
                    found: src.get(at..).and_then(|s| s.chars().next()).unwrap_or('?'),
                    offset: start,
                })?;
                TokenKind::Punct
            }
        };
        tokens.push(Token {
            kind,
            span: start..at,
        });
    }
    Ok(tokens)
}

/// The end of a literal opened by `quote` at `at`, where a doubled quote is
/// an escaped one.
fn close_quote(bytes: &[u8], at: usize, quote: u8, what: &'static str) -> Result<usize, LexError> {
    let mut i = at + 1;
    loop {
        match bytes.get(i) {
            None => return Err(LexError::Unterminated { what, offset: at }),
            Some(&b) if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Ok(i + 1);
                }
            }
            Some(_) => i += 1,
        }
    }
}

/// The end of a number starting at `at`: hex, or decimal with optional
/// fraction and exponent; `_` separates digits (SQLite 3.46).
fn number_end(bytes: &[u8], at: usize) -> usize {
    let mut i = at;
    let is = |i: usize, f: fn(&u8) -> bool| bytes.get(i).is_some_and(f);
    if bytes.get(i) == Some(&b'0') && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        while is(i, |b| b.is_ascii_hexdigit() || *b == b'_') {
            i += 1;
        }
        return i;
    }
    while is(i, |b| b.is_ascii_digit() || *b == b'_') {
        i += 1;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        while is(i, |b| b.is_ascii_digit() || *b == b'_') {
            i += 1;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(i + 1), Some(b'+' | b'-')));
        if is(i + 1 + sign, u8::is_ascii_digit) {
            i += 1 + sign;
            while is(i, |b| b.is_ascii_digit() || *b == b'_') {
                i += 1;
            }
        }
    }
    i
}

/// The length of the operator at `at`, if it is one.
fn punct_len(bytes: &[u8], at: usize) -> Option<usize> {
    let byte = *bytes.get(at)?;
    let next = bytes.get(at + 1).copied();
    Some(match (byte, next) {
        (b'-', Some(b'>')) => {
            if bytes.get(at + 2) == Some(&b'>') {
                3
            } else {
                2
            }
        }
        (b'|', Some(b'|'))
        | (b'<', Some(b'<' | b'=' | b'>'))
        | (b'>', Some(b'>' | b'='))
        | (b'=', Some(b'='))
        | (b'!', Some(b'=')) => 2,
        (
            b'(' | b')' | b',' | b';' | b'.' | b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|'
            | b'~' | b'<' | b'>' | b'=',
            _,
        ) => 1,
        _ => return None,
    })
}

/// SQLite's keywords (<https://sqlite.org/lang_keywords.html>), plus `TRUE`
/// and `FALSE`, uppercase and sorted for binary search.
const KEYWORDS: &[&str] = &[
    "ABORT",
    "ACTION",
    "ADD",
    "AFTER",
    "ALL",
    "ALTER",
    "ALWAYS",
    "ANALYZE",
    "AND",
    "AS",
    "ASC",
    "ATTACH",
    "AUTOINCREMENT",
    "BEFORE",
    "BEGIN",
    "BETWEEN",
    "BY",
    "CASCADE",
    "CASE",
    "CAST",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "COMMIT",
    "CONFLICT",
    "CONSTRAINT",
    "CREATE",
    "CROSS",
    "CURRENT",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "DATABASE",
    "DEFAULT",
    "DEFERRABLE",
    "DEFERRED",
    "DELETE",
    "DESC",
    "DETACH",
    "DISTINCT",
    "DO",
    "DROP",
    "EACH",
    "ELSE",
    "END",
    "ESCAPE",
    "EXCEPT",
    "EXCLUDE",
    "EXCLUSIVE",
    "EXISTS",
    "EXPLAIN",
    "FAIL",
    "FALSE",
    "FILTER",
    "FIRST",
    "FOLLOWING",
    "FOR",
    "FOREIGN",
    "FROM",
    "FULL",
    "GENERATED",
    "GLOB",
    "GROUP",
    "GROUPS",
    "HAVING",
    "IF",
    "IGNORE",
    "IMMEDIATE",
    "IN",
    "INDEX",
    "INDEXED",
    "INITIALLY",
    "INNER",
    "INSERT",
    "INSTEAD",
    "INTERSECT",
    "INTO",
    "IS",
    "ISNULL",
    "JOIN",
    "KEY",
    "LAST",
    "LEFT",
    "LIKE",
    "LIMIT",
    "MATCH",
    "MATERIALIZED",
    "NATURAL",
    "NO",
    "NOT",
    "NOTHING",
    "NOTNULL",
    "NULL",
    "NULLS",
    "OF",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OTHERS",
    "OUTER",
    "OVER",
    "PARTITION",
    "PLAN",
    "PRAGMA",
    "PRECEDING",
    "PRIMARY",
    "QUERY",
    "RAISE",
    "RANGE",
    "RECURSIVE",
    "REFERENCES",
    "REGEXP",
    "REINDEX",
    "RELEASE",
    "RENAME",
    "REPLACE",
    "RESTRICT",
    "RETURNING",
    "RIGHT",
    "ROLLBACK",
    "ROW",
    "ROWS",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "TABLE",
    "TEMP",
    "TEMPORARY",
    "THEN",
    "TIES",
    "TO",
    "TRANSACTION",
    "TRIGGER",
    "TRUE",
    "UNBOUNDED",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USING",
    "VACUUM",
    "VALUES",
    "VIEW",
    "VIRTUAL",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "WITHOUT",
];

/// Whether `word` is a SQLite keyword (ASCII case-insensitive).
pub fn is_keyword(word: &str) -> bool {
    // Compared byte by byte, uppercased on the fly: this runs for every
    // word of every statement, so it must not allocate.
    KEYWORDS
        .binary_search_by(|keyword| {
            keyword
                .bytes()
                .cmp(word.bytes().map(|b| b.to_ascii_uppercase()))
        })
        .is_ok()
}

/// Whether `name` can be written bare: it tokenizes as one word and is not a
/// keyword.
pub fn is_bare_identifier(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.first().copied().is_some_and(is_ident_start)
        && bytes.iter().copied().all(is_ident_byte)
        && !is_keyword(name)
}

/// Removes parentheses that enclose the whole run, as often as they do:
/// `((a + 1))` is `a + 1`.
pub fn strip_outer_parens<'t>(src: &str, mut tokens: &'t [Token]) -> &'t [Token] {
    while let [first, inner @ .., last] = tokens {
        if !(first.is_punct(src, "(") && last.is_punct(src, ")")) {
            break;
        }
        // The opening parenthesis must close at the very end, not earlier as
        // in `(a) + (b)`.
        let mut depth = 0i32;
        let closes_early = inner.iter().any(|t| {
            if t.is_punct(src, "(") {
                depth += 1;
            } else if t.is_punct(src, ")") {
                depth -= 1;
            }
            depth < 0
        });
        if closes_early || depth != 0 {
            break;
        }
        tokens = inner;
    }
    tokens
}

fn is_unary_context(src: &str, previous: Option<&Token>) -> bool {
    match previous {
        None => true,
        Some(t) => match t.kind {
            TokenKind::Punct => !t.is_punct(src, ")"),
            TokenKind::Word => is_keyword(t.text(src)),
            _ => false,
        },
    }
}

/// The normalised text of a token run.
///
/// - Keywords and collation names are uppercase; a word followed by `(` (a function, or a table
///   in `INSERT INTO t(…)`) is lowercase, since SQLite compares those names
///   case-insensitively; other identifiers keep their case.
/// - Identifiers in `[…]` or `` `…` `` are bare when they can be, else in
///   `"…"`; a `"…"` name stays quoted (see [`normalise_with`]).
/// - Blobs are `X'HEX'` uppercase, numbers lowercase, `==` is `=` and `<>` is `!=`.
/// - One space between tokens, none inside `(…)` edges, before `,` or `;`,
///   around `.`, before a call's `(` or after a unary sign.
pub fn normalise(src: &str, tokens: &[Token]) -> String {
    normalise_with(src, tokens, &|_| false)
}

/// [`normalise`], also writing bare a `"double-quoted"` name for which
/// `resolves` holds. Only the caller knows: SQLite reads a double-quoted name
/// that matches no column as a string literal
/// (<https://sqlite.org/quirks.html#dblquote>), so `"x"` stays quoted unless
/// it names a column in scope. `[x]` and `` `x` `` are always identifiers.
pub fn normalise_with(src: &str, tokens: &[Token], resolves: &dyn Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(tokens.iter().map(|t| t.span.len() + 1).sum());
    let mut previous: Option<&Token> = None;
    let mut unary_sign = false;
    for (index, token) in tokens.iter().enumerate() {
        let text = token.text(src);
        let next = tokens.get(index + 1);
        let calls = next.is_some_and(|n| n.is_punct(src, "("));
        if let Some(prev) = previous {
            let name = |t: &Token| matches!(t.kind, TokenKind::Word | TokenKind::Quoted);
            let glue = prev.is_punct(src, "(")
                || (prev.is_punct(src, ".") && (name(token) || token.is_punct(src, "*")))
                || unary_sign
                || token.is_punct(src, ")")
                || token.is_punct(src, ",")
                || token.is_punct(src, ";")
                || (token.is_punct(src, ".") && name(prev))
                || (token.is_punct(src, "(")
                    && matches!(prev.kind, TokenKind::Word | TokenKind::Quoted)
                    && !(prev.kind == TokenKind::Word && is_keyword(prev.text(src))));
            if !glue {
                out.push(' ');
            }
        }
        unary_sign = (token.is_punct(src, "-") || token.is_punct(src, "+"))
            && is_unary_context(src, previous)
            && next.is_some_and(|n| {
                matches!(
                    n.kind,
                    TokenKind::Number | TokenKind::Word | TokenKind::Quoted
                ) || n.is_punct(src, "(")
            });
        let collation = previous.is_some_and(|p| p.is_word(src, "COLLATE"));
        match token.kind {
            // Collation names are case-insensitive.
            TokenKind::Word | TokenKind::Quoted if collation => {
                let name = token.name(src).to_ascii_uppercase();
                if is_bare_identifier(&name) {
                    out.push_str(&name);
                } else {
                    out.push_str(&quote_ident(&name));
                }
            }
            TokenKind::Word if is_keyword(text) => {
                out.extend(text.chars().map(|c| c.to_ascii_uppercase()))
            }
            TokenKind::Word if calls => out.extend(text.chars().map(|c| c.to_ascii_lowercase())),
            TokenKind::Word | TokenKind::String | TokenKind::Variable => out.push_str(text),
            TokenKind::Quoted => {
                let name = token.name(src);
                let identifier = calls || !text.starts_with('"') || resolves(&name);
                if !is_bare_identifier(&name) || !identifier {
                    out.push_str(&quote_ident(&name));
                } else if calls {
                    out.extend(name.chars().map(|c| c.to_ascii_lowercase()));
                } else {
                    out.push_str(&name);
                }
            }
            TokenKind::Blob => {
                out.push_str("X'");
                out.push_str(
                    &text
                        .get(2..text.len().saturating_sub(1))
                        .unwrap_or_default()
                        .to_ascii_uppercase(),
                );
                out.push('\'');
            }
            TokenKind::Number => out.push_str(&text.to_ascii_lowercase()),
            TokenKind::Punct => out.push_str(match text {
                "==" => "=",
                "<>" => "!=",
                other => other,
            }),
        }
        previous = Some(token);
    }
    out
}

/// Tokenizes and normalises `text`; `None` when it does not tokenize.
pub fn normalise_text(text: &str) -> Option<String> {
    tokenize(text).ok().map(|tokens| normalise(text, &tokens))
}

/// `name` as a double-quoted SQL identifier, with `"` doubled: safe to splice
/// into SQL whatever the name holds.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(TokenKind, &str)> {
        tokenize(src)
            .unwrap()
            .iter()
            .map(|t| (t.kind, t.text(src)))
            .collect()
    }

    fn norm(src: &str) -> String {
        normalise_text(src).unwrap()
    }

    #[test]
    fn keywords_are_sorted_uppercase() {
        assert!(KEYWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(is_keyword("select") && is_keyword("Current_Timestamp"));
        assert!(!is_keyword("users") && !is_keyword("STRICT"));
    }

    #[test]
    fn tokenizes_every_literal_form() {
        use TokenKind::*;
        assert_eq!(
            kinds(
                "a \"b\"\"c\" [d e] `f` 'it''s' x'0aFF' 1.5e-3 0x1F .5 ?1 :v -- gone\n /* gone */ ->> <> !="
            ),
            vec![
                (Word, "a"),
                (Quoted, "\"b\"\"c\""),
                (Quoted, "[d e]"),
                (Quoted, "`f`"),
                (String, "'it''s'"),
                (Blob, "x'0aFF'"),
                (Number, "1.5e-3"),
                (Number, "0x1F"),
                (Number, ".5"),
                (Variable, "?1"),
                (Variable, ":v"),
                (Punct, "->>"),
                (Punct, "<>"),
                (Punct, "!="),
            ]
        );
        let src = "\"b\"\"c\" 'it''s' [x]";
        let names: Vec<_> = tokenize(src).unwrap().iter().map(|t| t.name(src)).collect();
        assert_eq!(names, ["b\"c", "it's", "x"]);
    }

    #[test]
    fn reports_unterminated_and_stray_input() {
        for (src, what) in [
            ("'abc", "string"),
            ("\"abc", "quoted identifier"),
            ("[abc", "bracketed identifier"),
            ("x'ab", "blob"),
            ("a /* b", "comment"),
        ] {
            assert!(
                matches!(tokenize(src), Err(LexError::Unterminated { what: w, .. }) if w == what),
                "{src}"
            );
        }
        assert_eq!(
            tokenize("a ! b"),
            Err(LexError::Unexpected {
                found: '!',
                offset: 2
            })
        );
        assert!(matches!(
            tokenize("a \u{0} b"),
            Err(LexError::Unexpected { .. })
        ));
    }

    #[test]
    fn non_ascii_is_part_of_identifiers() {
        let src = "café→x + ü";
        let tokens = tokenize(src).unwrap();
        assert_eq!(tokens[0].text(src), "café→x");
        assert_eq!(tokens[2].text(src), "ü");
    }

    #[test]
    fn normalises_spacing_case_and_quoting() {
        assert_eq!(
            norm("lower( [name] )   <>  'A'  and `x` ==-1"),
            "lower(name) != 'A' AND x = -1"
        );
        // A double-quoted name may be a string literal: only the caller can
        // tell, by knowing the columns in scope.
        assert_eq!(norm("\"a\" = \"b\""), "\"a\" = \"b\"");
        let src = "\"a\" = \"b\" AND \"f\"(1)";
        let tokens = tokenize(src).unwrap();
        assert_eq!(
            normalise_with(src, &tokens, &|n| n == "a"),
            "a = \"b\" AND f(1)"
        );
        assert_eq!(norm("LOWER(name)"), norm("lower ( name )"));
        assert_eq!(norm("\"order\" IN (1,2)"), "\"order\" IN (1, 2)");
        assert_eq!(norm("t . [a b]"), "t.\"a b\"");
        assert_eq!(norm("x'ab' + 1E5"), "X'AB' + 1e5");
        assert_eq!(norm("a - -1"), "a - -1");
        assert_eq!(norm("b COLLATE \"nocase\""), "b COLLATE NOCASE");
        assert_eq!(norm("SELECT 1 ; "), "SELECT 1;");
        // A unary minus never glues onto another minus (that would be a comment).
        assert_eq!(norm("- - 1"), "- -1");
        assert_eq!(norm(&norm("- - 1")), "- -1");
    }

    #[test]
    fn normalising_is_idempotent() {
        for src in [
            "CASE WHEN a>0 THEN 'x' ELSE \"y z\" END || b",
            "coalesce(a,-b) -> '$.x' ->> 1",
            "[select] * ~3 % (2) / `k`",
            "datetime('now', '-1 day') NOT NULL",
        ] {
            let once = norm(src);
            assert_eq!(norm(&once), once, "{src}");
        }
    }

    #[test]
    fn dots_glue_only_between_names() {
        assert_eq!(norm("t . * , [s] . \"t\" . c"), "t.*, s.\"t\".c");
        // `1.a` would read back as the number `1.` and the word `a`.
        assert_eq!(norm("1 . a"), "1 .a");
        assert_eq!(norm(&norm("1 . a")), "1 .a");
    }

    proptest::proptest! {
        #[test]
        fn tokenizing_never_panics(text in "\\PC{0,120}") {
            let _ = tokenize(&text);
        }

        #[test]
        fn normalising_is_idempotent_on_any_token_soup(
            parts in proptest::collection::vec(
                "[-+*/%<>=!|&~.,;()?:@$]|[a-zA-Z_][a-zA-Z0-9_]{0,3}|[0-9]{1,3}(\\.[0-9]{0,2})?([eE][-+]?[0-9])?|\\.[0-9]|'[^']{0,3}'|\"[^\"]{0,3}\"|\\[[^\\]]{0,3}\\]|[xX]'[0-9a-f]{0,4}'|--[^\n]{0,3}\n|/\\*[^*]{0,3}\\*/| |\n",
                0..24,
            )
        ) {
            let text: String = parts.concat();
            if let Some(once) = normalise_text(&text) {
                let twice = normalise_text(&once);
                proptest::prop_assert_eq!(twice.as_deref(), Some(once.as_str()), "from {:?}", text);
            }
        }
    }

    #[test]
    fn strips_only_enclosing_parentheses() {
        let strip = |src: &str| {
            let tokens = tokenize(src).unwrap();
            normalise(src, strip_outer_parens(src, &tokens))
        };
        assert_eq!(strip("((a + 1))"), "a + 1");
        assert_eq!(strip("(a) + (b)"), "(a) + (b)");
        assert_eq!(strip("()"), "");
    }

    #[test]
    fn quotes_identifiers_safely() {
        assert_eq!(
            quote_ident("x\"; DROP TABLE users; --"),
            "\"x\"\"; DROP TABLE users; --\""
        );
        assert!(is_bare_identifier("users_2"));
        assert!(!is_bare_identifier("2x") && !is_bare_identifier("order"));
        assert!(is_bare_identifier("x") && !is_bare_identifier(""));
    }
}
