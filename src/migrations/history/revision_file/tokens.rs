//! A Python tokenizer that knows just enough of Python's lexical rules to
//! find logical lines, their indentation and their string literals: strings
//! with every prefix and quote form (f-string replacement fields included),
//! comments, backslash continuations, brackets and indentation.
//!
//! Invariant: tokenizing never panics and never recurses without bound;
//! nesting past Python's limit is an error.

use super::RevisionFileError;

/// A string literal's kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum StrKind {
    Text,
    Bytes,
    /// An f-string (or t-string); with placeholders its value is unknown.
    Format {
        placeholders: bool,
    },
}

/// A string literal, escapes decoded (raw strings kept as written).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct StrLit {
    pub(super) value: String,
    pub(super) kind: StrKind,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum TokenKind {
    Name(String),
    Str(StrLit),
    Number,
    Op(String),
}

/// One token and the line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    pub(super) line: usize,
}

pub(super) enum Bracket {
    Open,
    Close,
}

impl Token {
    pub(super) fn is_name(&self, name: &str) -> bool {
        matches!(&self.kind, TokenKind::Name(found) if found == name)
    }

    pub(super) fn is_op(&self, op: &str) -> bool {
        matches!(&self.kind, TokenKind::Op(found) if found == op)
    }

    pub(super) fn bracket(&self) -> Option<Bracket> {
        match &self.kind {
            TokenKind::Op(op) => match op.as_str() {
                "(" | "[" | "{" => Some(Bracket::Open),
                ")" | "]" | "}" => Some(Bracket::Close),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The tokens of one logical line (physical lines joined by brackets or
/// backslashes), with the indentation of its first line.
#[derive(Debug)]
pub(super) struct LogicalLine {
    /// Columns, tabs to the next multiple of 8 as Python counts them.
    pub(super) indent: usize,
    pub(super) tokens: Vec<Token>,
}

/// How deep brackets (and f-string fields) may nest: Python's tokenizer
/// stops at 200 (`MAXLEVEL`), and the bound keeps the recursive value parser
/// from exhausting the stack.
const MAX_NESTING: usize = 200;

/// Operators longer than one character, longest first.
const OPERATORS: [&str; 23] = [
    "**=", "//=", ">>=", "<<=", "...", "->", "**", "//", "<<", ">>", "==", "!=", "<=", ">=", ":=",
    "+=", "-=", "*=", "/=", "%=", "@=", "&=", "|=",
];

/// A Python tokenizer that knows just enough to find logical lines, their
/// indentation and their string literals.
pub(super) struct Tokenizer {
    chars: Vec<char>,
    position: usize,
    line: usize,
    /// How many f-string replacement fields enclose the cursor.
    nesting: usize,
}

impl Tokenizer {
    pub(super) fn new(source: &str) -> Tokenizer {
        // Python accepts (and drops) a UTF-8 byte-order mark.
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        Tokenizer {
            chars: source.chars().collect(),
            position: 0,
            line: 1,
            nesting: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.position + offset).copied()
    }

    /// Consumes a line end (`\n`, `\r\n` or `\r`) if one is next.
    fn eat_newline(&mut self) -> bool {
        match self.peek() {
            Some('\n') => self.position += 1,
            Some('\r') => {
                self.position += if self.peek_at(1) == Some('\n') { 2 } else { 1 };
            }
            _ => return false,
        }
        self.line += 1;
        true
    }

    pub(super) fn logical_lines(mut self) -> Result<Vec<LogicalLine>, RevisionFileError> {
        let mut lines = Vec::new();
        let mut tokens: Vec<Token> = Vec::new();
        let mut open: Vec<(char, usize)> = Vec::new();
        let mut indent = 0;
        let mut at_line_start = true;
        loop {
            if at_line_start {
                indent = self.indentation();
                match self.peek() {
                    None => break,
                    // A blank or comment-only line is no logical line.
                    Some('#') => {
                        self.skip_comment();
                        self.eat_newline();
                        continue;
                    }
                    Some('\n' | '\r') => {
                        self.eat_newline();
                        continue;
                    }
                    Some(_) => at_line_start = false,
                }
            }
            let Some(c) = self.peek() else { break };
            match c {
                ' ' | '\t' | '\x0c' => self.position += 1,
                '#' => self.skip_comment(),
                '\n' | '\r' => {
                    self.eat_newline();
                    if open.is_empty() {
                        if !tokens.is_empty() {
                            lines.push(LogicalLine {
                                indent,
                                tokens: std::mem::take(&mut tokens),
                            });
                        }
                        at_line_start = true;
                    }
                }
                '\\' if matches!(self.peek_at(1), Some('\n' | '\r')) => {
                    self.position += 1;
                    self.eat_newline();
                }
                '\'' | '"' => {
                    let line = self.line;
                    let literal = self.string("")?;
                    tokens.push(Token {
                        kind: TokenKind::Str(literal),
                        line,
                    });
                }
                c if c.is_alphabetic() || c == '_' => {
                    let line = self.line;
                    let start = self.position;
                    while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        self.position += 1;
                    }
                    let word: String = self.chars[start..self.position].iter().collect();
                    let kind = if matches!(self.peek(), Some('\'' | '"')) && is_string_prefix(&word)
                    {
                        TokenKind::Str(self.string(&word)?)
                    } else {
                        TokenKind::Name(word)
                    };
                    tokens.push(Token { kind, line });
                }
                c if c.is_ascii_digit()
                    || (c == '.' && self.peek_at(1).is_some_and(|next| next.is_ascii_digit())) =>
                {
                    let line = self.line;
                    self.number();
                    tokens.push(Token {
                        kind: TokenKind::Number,
                        line,
                    });
                }
                _ => {
                    let line = self.line;
                    let op = self.operator();
                    match op.as_str() {
                        "(" | "[" | "{" => {
                            open.push((c, line));
                            if open.len() > MAX_NESTING {
                                return Err(RevisionFileError::TooDeep { line });
                            }
                        }
                        ")" | "]" | "}" => {
                            open.pop();
                        }
                        _ => {}
                    }
                    tokens.push(Token {
                        kind: TokenKind::Op(op),
                        line,
                    });
                }
            }
        }
        if let Some(&(bracket, line)) = open.first() {
            return Err(RevisionFileError::UnclosedBracket { line, bracket });
        }
        if !tokens.is_empty() {
            lines.push(LogicalLine { indent, tokens });
        }
        Ok(lines)
    }

    /// Consumes leading whitespace, returning its width as Python counts it.
    fn indentation(&mut self) -> usize {
        let mut column = 0;
        while let Some(c) = self.peek() {
            match c {
                ' ' => column += 1,
                '\t' => column = (column / 8 + 1) * 8,
                '\x0c' => column = 0,
                // A backslash continuation before any token: the indentation
                // goes on on the next line (as Python 3.11 counts it).
                '\\' if matches!(self.peek_at(1), Some('\n' | '\r')) => {
                    self.position += 1;
                    self.eat_newline();
                    continue;
                }
                _ => break,
            }
            self.position += 1;
        }
        column
    }

    /// Skips to the end of the line, leaving the line end.
    fn skip_comment(&mut self) {
        while self.peek().is_some_and(|c| c != '\n' && c != '\r') {
            self.position += 1;
        }
    }

    /// Consumes a numeric literal (its value is never needed).
    fn number(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                self.position += 1;
                // An exponent's sign: 1e-5, 2E+3 (not hex like 0xe).
                if matches!(c, 'e' | 'E') && matches!(self.peek(), Some('+' | '-')) {
                    let start = self.chars.get(self.position.saturating_sub(2)).copied();
                    if start.is_some_and(|before| {
                        before.is_ascii_digit() || before == '.' || before == '_'
                    }) {
                        self.position += 1;
                    }
                }
            } else {
                break;
            }
        }
    }

    fn operator(&mut self) -> String {
        for op in OPERATORS {
            if op
                .chars()
                .enumerate()
                .all(|(offset, c)| self.peek_at(offset) == Some(c))
            {
                self.position += op.chars().count();
                return op.to_string();
            }
        }
        let c = self.peek().map(String::from).unwrap_or_default();
        self.position += 1;
        c
    }

    /// Consumes a string literal whose prefix (possibly empty) was already
    /// consumed; the next character is its quote.
    fn string(&mut self, prefix: &str) -> Result<StrLit, RevisionFileError> {
        let prefix = prefix.to_ascii_lowercase();
        let raw = prefix.contains('r');
        let bytes = prefix.contains('b');
        let format = prefix.contains('f') || prefix.contains('t');
        let start_line = self.line;
        let Some(quote) = self.peek() else {
            return Err(RevisionFileError::UnterminatedString { line: start_line });
        };
        let triple = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
        self.position += if triple { 3 } else { 1 };
        let unterminated = || {
            if triple {
                RevisionFileError::UnterminatedTripleString { line: start_line }
            } else {
                RevisionFileError::UnterminatedString { line: start_line }
            }
        };
        let mut value = String::new();
        let mut placeholders = false;
        loop {
            let Some(c) = self.peek() else {
                return Err(unterminated());
            };
            match c {
                c if c == quote
                    && (!triple
                        || (self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote))) =>
                {
                    self.position += if triple { 3 } else { 1 };
                    break;
                }
                '\n' | '\r' => {
                    if !triple {
                        return Err(unterminated());
                    }
                    self.eat_newline();
                    // Python reads source with universal newlines.
                    value.push('\n');
                }
                '\\' => {
                    self.position += 1;
                    let Some(next) = self.peek() else {
                        return Err(unterminated());
                    };
                    if raw {
                        // A backslash still keeps the next quote (or line end)
                        // from ending a raw string; both stay in the value.
                        value.push('\\');
                        if !self.eat_newline() {
                            value.push(next);
                            self.position += 1;
                        } else {
                            value.push('\n');
                        }
                    } else {
                        self.escape(next, bytes, &mut value);
                    }
                }
                '{' if format => {
                    self.position += 1;
                    if self.peek() == Some('{') {
                        self.position += 1;
                        value.push('{');
                    } else {
                        placeholders = true;
                        self.replacement_field(quote, triple)?;
                    }
                }
                '}' if format => {
                    self.position += 1;
                    if self.peek() == Some('}') {
                        self.position += 1;
                    }
                    value.push('}');
                }
                c => {
                    self.position += 1;
                    value.push(c);
                }
            }
        }
        let kind = if bytes {
            StrKind::Bytes
        } else if format {
            StrKind::Format { placeholders }
        } else {
            StrKind::Text
        };
        Ok(StrLit { value, kind })
    }

    /// Skips an f-string replacement field after its `{`, through the
    /// matching `}`: an expression, then an optional `!conversion` and
    /// `:format spec`. Strings nested in the expression are skipped whole,
    /// so their quotes and braces (legal since Python 3.12, PEP 701) do not
    /// end the field; a format spec is literal text with nested fields.
    fn replacement_field(&mut self, quote: char, triple: bool) -> Result<(), RevisionFileError> {
        let start_line = self.line;
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(RevisionFileError::TooDeep { line: start_line });
        }
        let unterminated = || RevisionFileError::UnterminatedString { line: start_line };
        let mut depth = 0usize;
        // The expression.
        loop {
            let Some(c) = self.peek() else {
                return Err(unterminated());
            };
            match c {
                '\'' | '"' => {
                    self.string("")?;
                }
                '\n' | '\r' => {
                    if !triple {
                        return Err(unterminated());
                    }
                    self.eat_newline();
                }
                '(' | '[' | '{' => {
                    depth += 1;
                    self.position += 1;
                }
                ')' | ']' => {
                    depth = depth.saturating_sub(1);
                    self.position += 1;
                }
                '}' if depth > 0 => {
                    depth -= 1;
                    self.position += 1;
                }
                '}' => {
                    self.position += 1;
                    self.nesting -= 1;
                    return Ok(());
                }
                ':' if depth == 0 => {
                    self.position += 1;
                    break;
                }
                _ => self.position += 1,
            }
        }
        // The format spec: literal text, `{...}` nested fields, `}` ends it.
        loop {
            let Some(c) = self.peek() else {
                return Err(unterminated());
            };
            match c {
                '{' => {
                    self.position += 1;
                    self.replacement_field(quote, triple)?;
                }
                // An escape (or a backslash-newline) in the spec's text.
                '\\' => {
                    self.position += 1;
                    if !self.eat_newline() {
                        self.position += 1;
                    }
                }
                '}' => {
                    self.position += 1;
                    self.nesting -= 1;
                    return Ok(());
                }
                // The enclosing string's closing quote inside a spec ends the
                // string with the field open: a syntax error in Python too.
                c if c == quote
                    && (!triple
                        || (self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote))) =>
                {
                    return Err(unterminated());
                }
                '\n' | '\r' => {
                    if !triple {
                        return Err(unterminated());
                    }
                    self.eat_newline();
                }
                _ => self.position += 1,
            }
        }
    }

    /// Decodes the escape whose backslash was consumed; `next` is the
    /// character after it (not yet consumed). Unknown or malformed escapes
    /// are kept as written, as Python keeps unknown ones.
    fn escape(&mut self, next: char, bytes: bool, value: &mut String) {
        if self.eat_newline() {
            // A backslash-newline inside a string joins the lines.
            return;
        }
        self.position += 1;
        let simple = match next {
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            _ => None,
        };
        if let Some(c) = simple {
            value.push(c);
            return;
        }
        let digits = |this: &mut Tokenizer, count: usize, radix: u32| -> Option<char> {
            let text: String = (0..count)
                .map_while(|offset| this.peek_at(offset))
                .collect();
            if text.chars().count() != count || !text.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            let decoded = u32::from_str_radix(&text, radix)
                .ok()
                .and_then(char::from_u32)?;
            this.position += count;
            Some(decoded)
        };
        let decoded = match next {
            '0'..='7' => {
                let mut number = next.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek().and_then(|c| c.to_digit(8)) {
                        Some(digit) => {
                            number = number * 8 + digit;
                            self.position += 1;
                        }
                        None => break,
                    }
                }
                char::from_u32(number)
            }
            'x' => digits(self, 2, 16),
            'u' if !bytes => digits(self, 4, 16),
            'U' if !bytes => digits(self, 8, 16),
            'N' if !bytes && self.peek() == Some('{') => {
                // Unicode names need Python's table; keep `\N{...}` as is.
                value.push_str("\\N");
                while let Some(c) = self.peek() {
                    if c == '\n' || c == '\r' {
                        break;
                    }
                    self.position += 1;
                    value.push(c);
                    if c == '}' {
                        break;
                    }
                }
                return;
            }
            _ => None,
        };
        match decoded {
            Some(c) => value.push(c),
            None => {
                value.push('\\');
                value.push(next);
            }
        }
    }
}

/// Whether `word` is a string prefix Python accepts (any case): r, u, b,
/// f, t and the two-letter raw combinations.
fn is_string_prefix(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "r" | "u" | "b" | "f" | "t" | "br" | "rb" | "fr" | "rf" | "tr" | "rt"
    )
}

#[cfg(test)]
mod tests {
    use crate::migrations::history::revision_file::{
        DownRevision, RevisionFile, RevisionFileError, parse,
    };

    fn parsed(source: &str) -> RevisionFile {
        parse(source).unwrap_or_else(|error| panic!("parses: {error}"))
    }

    #[test]
    fn string_forms_and_concatenation() {
        let file = parsed(
            "revision = r'ab' 'c' \\\n    \"d\"\ndown_revision = u'''x'''\nbranch_labels = R\"\"\"a\\\"b\"\"\"\ndepends_on = f'lit{{x}}'\n",
        );
        assert_eq!(file.revision.as_deref(), Some("abcd"));
        assert_eq!(file.line_of.get("down_revision"), Some(&3));
        assert_eq!(file.down_revision, DownRevision::One("x".into()));
        assert_eq!(file.branch_labels, ["a\\\"b"]);
        assert_eq!(file.depends_on, ["lit{x}"]);
        assert_eq!(
            parsed("revision = '\\x41\\u00e9\\n\\101'\n")
                .revision
                .as_deref(),
            Some("Aé\nA")
        );
    }

    #[test]
    fn tokenizer_errors_name_the_line() {
        assert_eq!(
            parse("x = 1\nrevision = 'abc\n")
                .expect_err("open")
                .to_string(),
            "line 2: unterminated string"
        );
        assert_eq!(
            parse("\n\"\"\"doc\nrevision = 'a'\n")
                .expect_err("open")
                .to_string(),
            "line 2: unterminated triple-quoted string"
        );
        assert_eq!(
            parse("x = (\n1,\n").expect_err("open").to_string(),
            "line 1: '(' is never closed"
        );
    }

    #[test]
    fn fstrings_with_nested_quotes_do_not_confuse_the_tokenizer() {
        let file = parsed("msg = f\"{d[\"k\"]} and {'}'}\"\nrevision = 'r'\n");
        assert_eq!(file.revision.as_deref(), Some("r"));
        // A format spec is literal text: its quote and bracket are not code.
        let file = parsed("s = f\"{x!r:(>{10}'}\"\nrevision = 'r'\n");
        assert_eq!(file.revision.as_deref(), Some("r"));
        assert_eq!(
            parsed("s = f'{a!=b}'\nrevision = 'r'\n")
                .revision
                .as_deref(),
            Some("r")
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let brackets = format!(
            "revision = {}'a'{}\n",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert_eq!(
            parse(&brackets),
            Err(RevisionFileError::TooDeep { line: 1 })
        );
        let fields = format!("s = f'{}'\n", "{x:".repeat(100_000));
        assert_eq!(parse(&fields), Err(RevisionFileError::TooDeep { line: 1 }));
        let nested = "revision = ".to_string() + &"(".repeat(150) + "'a'" + &")".repeat(150) + "\n";
        assert_eq!(parsed(&nested).revision.as_deref(), Some("a"));
    }
}
