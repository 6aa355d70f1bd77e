//! Which tables a revision file's `op.*` calls name, read statically (no
//! Python): enough to tell whether two branches of a forked history touch
//! the same tables. Raw SQL (`op.execute`) cannot be read this way, so a
//! file that runs some is marked opaque rather than guessed at.

use std::collections::BTreeSet;

/// What the `op.*` calls of one or more files name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Table names, ASCII lower-cased as SQLite compares them.
    pub tables: BTreeSet<String>,
    /// Some call (`op.execute`) runs SQL whose tables are not read.
    pub opaque: bool,
}

impl Touched {
    /// Adds what the Python source `text` names (comments left out, so a
    /// commented-out call does not count).
    pub fn scan(&mut self, text: &str) {
        let code: String = text
            .lines()
            .map(without_comment)
            .collect::<Vec<_>>()
            .join("\n");
        let mut rest = code.as_str();
        while let Some(at) = rest.find("op.") {
            // `batch_op.x` acts on the table its `batch_alter_table` names.
            let preceded = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
            rest = &rest[at + 3..];
            let name_end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (name, after) = rest.split_at(name_end);
            if preceded || !after.trim_start().starts_with('(') {
                continue;
            }
            let args = arguments(after.trim_start());
            if name == "execute" {
                self.opaque = true;
            }
            // The positions that hold table names, per Alembic's signatures.
            let positions: &[usize] = match name {
                "create_table"
                | "drop_table"
                | "add_column"
                | "drop_column"
                | "alter_column"
                | "batch_alter_table"
                | "create_table_comment"
                | "drop_table_comment" => &[0],
                "rename_table" => &[0, 1],
                "create_foreign_key" => &[1, 2],
                "create_index"
                | "drop_index"
                | "create_unique_constraint"
                | "create_check_constraint"
                | "create_primary_key"
                | "drop_constraint" => &[1],
                _ => &[],
            };
            for (index, arg) in args.iter().enumerate() {
                let value = match arg.split_once('=') {
                    Some((key, value)) if is_identifier(key.trim()) => {
                        (key.trim() == "table_name").then_some(value)
                    }
                    _ => positions.contains(&index).then_some(arg.as_str()),
                };
                if let Some(table) = value.and_then(literal) {
                    self.tables.insert(table.to_ascii_lowercase());
                }
            }
        }
    }
}

/// A line without its `#` comment (a `#` inside a string is kept).
fn without_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (at, c) in line.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return &line[..at],
            None => {}
        }
    }
    line
}

/// The top-level arguments of a call whose text starts at its `(`, each
/// trimmed; a string may hold commas and brackets.
fn arguments(call: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut current = String::new();
    let mut escaped = false;
    for c in call.chars() {
        if let Some(q) = quote {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                current.push(c);
            }
            '(' | '[' | '{' => {
                depth += 1;
                if depth > 1 {
                    current.push(c);
                }
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
                current.push(c);
            }
            ',' if depth == 1 => args.push(std::mem::take(&mut current).trim().to_owned()),
            _ => current.push(c),
        }
    }
    let last = current.trim();
    if !last.is_empty() {
        args.push(last.to_owned());
    }
    args
}

/// The value of a plain string literal (`"user"` or `'user'`).
fn literal(text: &str) -> Option<&str> {
    let text = text.trim();
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = text.strip_prefix(quote)?.strip_suffix(quote)?;
    (!inner.contains(quote)).then_some(inner)
}

/// Whether `text` is a Python identifier (a keyword argument's name).
fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_table_names_from_op_calls() {
        let mut touched = Touched::default();
        touched.scan(
            r#"
def upgrade():
    op.create_table("note", sa.Column("id", sa.String(), primary_key=True))
    with op.batch_alter_table('User') as batch_op:
        batch_op.add_column(sa.Column("bio", sa.Text()))
    op.create_index("ix_tag_name", "tag", ["name"])
    op.create_foreign_key("fk_a_b", "a", "b", ["b_id"], ["id"])
    op.drop_index("ix_old", table_name="old")
    op.rename_table("x, y", "z")
"#,
        );
        let tables: Vec<&str> = touched.tables.iter().map(String::as_str).collect();
        assert_eq!(
            tables,
            ["a", "b", "note", "old", "tag", "user", "x, y", "z"]
        );
        assert!(!touched.opaque);
        touched.scan("# op.drop_table('ghost')\nop.drop_table('t#1')  # op.drop_table('other')");
        assert!(touched.tables.contains("t#1"));
        assert!(!touched.tables.contains("ghost") && !touched.tables.contains("other"));
        touched.scan("op.execute(\"UPDATE chat SET x = 1\")");
        assert!(touched.opaque);
    }
}
