//! Python source text: string literals and `op.execute`.

/// `op.execute(...)` of one SQL statement. `text()`, which `op.execute`
/// wraps a string in, reads `:name` as a bound parameter; `sa.DDL` does
/// not, but formats `%`, so there it is doubled.
pub(super) fn execute(sql: &str) -> String {
    if sql.contains(':') {
        format!("op.execute(sa.DDL({}))", py_str(&sql.replace('%', "%%")))
    } else {
        format!("op.execute({})", py_str(sql))
    }
}

/// Python string literals, comma-separated.
pub(super) fn py_args(items: &[String]) -> String {
    items
        .iter()
        .map(|item| py_str(item))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Python string literal holding `text` exactly: double-quoted, with
/// backslashes, quotes and control characters escaped.
pub fn py_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            // Line and paragraph separators end a line for some readers.
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
