//! The ini reader Alembic uses: Python 3.11's `configparser.ConfigParser`
//! with its defaults (`strict=True`, `=`/`:` delimiters, `#`/`;` full-line
//! comments only, blank lines kept inside values, `BasicInterpolation`),
//! reproduced exactly. It knows nothing of Alembic's options.
//!
//! Invariant: parsing and interpolation never panic, whatever the text;
//! every error names the file, and the line where one is known.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::{ConfigError, Location, here_of, read_text};

/// configparser's `MAX_INTERPOLATION_DEPTH`: deeper `%(...)s` chains are an
/// error (this is how it catches reference loops).
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// The section configparser merges into every other one.
const DEFAULT_SECTION: &str = "DEFAULT";

/// Python's `str.isspace`: Unicode whitespace plus the ASCII separators
/// U+001C..U+001F, which Rust does not count.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
pub(super) fn py_strip(text: &str) -> &str {
    text.trim_matches(py_space)
}

/// Splits text into lines like Python's universal-newline reading: `\r\n`,
/// `\r` and `\n` end a line, and a final line end does not start a new line.
fn py_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// One option of an ini file, before interpolation.
#[derive(Clone, Debug)]
struct IniValue {
    /// The raw value, continuation lines joined with `\n`.
    raw: String,
    /// Where it was set; `None` for `here`, which Alembic passes in.
    line: Option<usize>,
}

/// One section's options, keyed by lower-cased name.
type IniSection = BTreeMap<String, IniValue>;

/// An ini file parsed with configparser's rules, values not yet interpolated.
#[derive(Debug)]
pub(super) struct Ini {
    pub(super) path: PathBuf,
    /// `[DEFAULT]`, including `here`.
    defaults: IniSection,
    sections: BTreeMap<String, IniSection>,
}

/// Which section the parser is filling.
#[derive(Clone, PartialEq, Eq)]
enum Target {
    Defaults,
    Section(String),
}

impl Ini {
    /// Reads and parses the ini at `path`, with `here` set to its directory.
    pub(super) fn read(path: &Path) -> Result<Ini, ConfigError> {
        let text = read_text(path)?;
        Ini::parse(path, &text, &here_of(path))
    }

    /// Parses ini text as `RawConfigParser._read` does with ConfigParser's
    /// defaults; `here` is the value of the `here` default.
    pub(super) fn parse(path: &Path, text: &str, here: &str) -> Result<Ini, ConfigError> {
        let at = |line: usize| Location {
            path: path.to_path_buf(),
            line: Some(line),
        };
        // Values as lists of lines until the end, as configparser keeps them.
        let mut pending: BTreeMap<(String, String), (Vec<String>, usize)> = BTreeMap::new();
        let mut section_names: HashSet<String> = HashSet::new();
        let mut added_options: HashSet<(String, String)> = HashSet::new();
        let mut target: Option<Target> = None;
        let mut option: Option<String> = None;
        let mut indent_level = 0usize;
        let mut first_bad_line: Option<usize> = None;
        let key_of = |target: &Target| match target {
            Target::Defaults => DEFAULT_SECTION.to_string(),
            Target::Section(name) => name.clone(),
        };

        for (index, line) in py_lines(text).into_iter().enumerate() {
            let lineno = index + 1;
            let stripped = py_strip(line);
            // Only whole-line comments: configparser's default has no inline
            // comment prefixes, so `a = b # c` keeps "b # c".
            let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
            let value = if is_comment { "" } else { stripped };
            if value.is_empty() {
                // A blank line (not a comment) is part of the current value.
                if !is_comment
                    && let (Some(target), Some(name)) = (&target, &option)
                    && let Some((lines, _)) = pending.get_mut(&(key_of(target), name.clone()))
                {
                    lines.push(String::new());
                }
                continue;
            }
            let indent = line.chars().position(|c| !py_space(c)).unwrap_or(0);
            if let (Some(target), Some(name)) = (&target, &option)
                && !name.is_empty()
                && indent > indent_level
            {
                if let Some((lines, _)) = pending.get_mut(&(key_of(target), name.clone())) {
                    lines.push(value.to_string());
                }
                continue;
            }
            indent_level = indent;
            if let Some(header) = section_header(value) {
                if header == DEFAULT_SECTION {
                    target = Some(Target::Defaults);
                } else {
                    if !section_names.insert(header.to_string()) {
                        return Err(ConfigError::DuplicateSection {
                            at: at(lineno),
                            section: header.to_string(),
                        });
                    }
                    target = Some(Target::Section(header.to_string()));
                }
                option = None;
            } else if let Some(current) = &target {
                match value.find(['=', ':']) {
                    Some(position) => {
                        let name = py_strip(&value[..position]).to_lowercase();
                        if name.is_empty() {
                            first_bad_line.get_or_insert(lineno);
                        }
                        let section = key_of(current);
                        if !added_options.insert((section.clone(), name.clone())) {
                            return Err(ConfigError::DuplicateOption {
                                at: at(lineno),
                                section,
                                option: name,
                            });
                        }
                        let text = py_strip(&value[position + 1..]).to_string();
                        pending.insert((section, name.clone()), (vec![text], lineno));
                        option = Some(name);
                    }
                    // configparser notes the error and goes on (the previous
                    // option stays current); it raises at the end.
                    None => {
                        first_bad_line.get_or_insert(lineno);
                    }
                }
            } else {
                return Err(ConfigError::MissingSectionHeader {
                    at: at(lineno),
                    bom: lineno == 1 && line.starts_with('\u{feff}'),
                });
            }
        }
        if let Some(line) = first_bad_line {
            return Err(ConfigError::BadLine { at: at(line) });
        }

        Ok(Ini::assemble(path, here, section_names, pending))
    }

    /// The parsed ini from its section names and the lines of each value,
    /// by (section, option); `here` is the value of the `here` default.
    fn assemble(
        path: &Path,
        here: &str,
        section_names: HashSet<String>,
        pending: BTreeMap<(String, String), (Vec<String>, usize)>,
    ) -> Ini {
        let mut defaults = IniSection::new();
        defaults.insert(
            "here".to_string(),
            IniValue {
                raw: here.to_string(),
                line: None,
            },
        );
        let mut sections: BTreeMap<String, IniSection> = section_names
            .into_iter()
            .map(|name| (name, IniSection::new()))
            .collect();
        for ((section, name), (lines, line)) in pending {
            let raw = lines.join("\n").trim_end_matches(py_space).to_string();
            let value = IniValue {
                raw,
                line: Some(line),
            };
            if section == DEFAULT_SECTION {
                defaults.insert(name, value);
            } else if let Some(options) = sections.get_mut(&section) {
                options.insert(name, value);
            }
        }
        Ini {
            path: path.to_path_buf(),
            defaults,
            sections,
        }
    }

    pub(super) fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    /// The raw option `name` of `section`, falling back to `[DEFAULT]`.
    fn raw(&self, section: &str, name: &str) -> Option<&IniValue> {
        self.sections
            .get(section)
            .and_then(|options| options.get(name))
            .or_else(|| self.defaults.get(name))
    }

    fn location(&self, value: &IniValue) -> Location {
        Location {
            path: self.path.clone(),
            line: value.line,
        }
    }

    /// Option `name` of `section`, interpolated, with where it was set;
    /// `None` when neither the section nor `[DEFAULT]` sets it.
    pub(super) fn get(
        &self,
        section: &str,
        name: &str,
    ) -> Result<Option<(String, Location)>, ConfigError> {
        if !self.has_section(section) {
            return Ok(None);
        }
        let Some(value) = self.raw(section, name) else {
            return Ok(None);
        };
        let at = self.location(value);
        let mut out = String::new();
        self.interpolate(section, name, &value.raw, &at, &mut out, 1)?;
        Ok(Some((out, at)))
    }

    /// Every option of `section` (its own and `[DEFAULT]`'s), interpolated,
    /// as `ConfigParser.items(section)`.
    pub(super) fn items(&self, section: &str) -> Result<BTreeMap<String, String>, ConfigError> {
        // configparser's order (defaults, then the section's own options,
        // each as written), so the first failing option is the one Python
        // would report.
        fn in_file_order(options: &IniSection) -> Vec<&String> {
            let mut names: Vec<(&String, &IniValue)> = options.iter().collect();
            names.sort_by_key(|(_, value)| value.line);
            names.into_iter().map(|(name, _)| name).collect()
        }
        let mut names = in_file_order(&self.defaults);
        if let Some(options) = self.sections.get(section) {
            names.extend(
                in_file_order(options)
                    .into_iter()
                    .filter(|name| !self.defaults.contains_key(*name)),
            );
        }
        let mut items = BTreeMap::new();
        for name in names {
            if let Some((value, _)) = self.get(section, name)? {
                items.insert(name.clone(), value);
            }
        }
        Ok(items)
    }

    /// `BasicInterpolation._interpolate_some`: `%%` is `%`, `%(name)s` is
    /// option `name` (lower-cased) of the section or `[DEFAULT]`, itself
    /// interpolated; anything else after `%` is an error.
    fn interpolate(
        &self,
        section: &str,
        option: &str,
        text: &str,
        at: &Location,
        out: &mut String,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(ConfigError::InterpolationDepth {
                at: at.clone(),
                option: option.to_string(),
            });
        }
        let syntax = || ConfigError::InterpolationSyntax {
            at: at.clone(),
            option: option.to_string(),
        };
        let mut rest = text;
        while let Some(position) = rest.find('%') {
            out.push_str(&rest[..position]);
            rest = &rest[position..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("%(") {
                // `%\(([^)]+)\)s`
                let close = after.find(')').ok_or_else(syntax)?;
                if close == 0 || !after[close + 1..].starts_with('s') {
                    return Err(syntax());
                }
                let reference = after[..close].to_lowercase();
                rest = &after[close + 2..];
                let Some(value) = self.raw(section, &reference) else {
                    return Err(ConfigError::InterpolationMissing {
                        at: at.clone(),
                        section: section.to_string(),
                        option: option.to_string(),
                        reference,
                    });
                };
                if value.raw.contains('%') {
                    self.interpolate(section, option, &value.raw, at, out, depth + 1)?;
                } else {
                    out.push_str(&value.raw);
                }
            } else {
                return Err(syntax());
            }
        }
        out.push_str(rest);
        Ok(())
    }
}

/// configparser's `SECTCRE` (`\[(?P<header>.+)\]`, matched at the start):
/// the text between the leading `[` and the last `]`, non-empty.
fn section_header(value: &str) -> Option<&str> {
    let inner = value.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    (close > 0).then(|| &inner[..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Ini, ConfigError> {
        Ini::parse(Path::new("/p/alembic.ini"), text, "/p")
    }

    fn get(ini: &Ini, name: &str) -> Option<String> {
        ini.get("alembic", name)
            .expect("interpolates")
            .map(|(value, _)| value)
    }
    #[test]
    fn continuation_lines_comments_and_blank_lines_follow_configparser() {
        let ini = parse(
            "[alembic]\nKey = first\n  second\n\n  # a comment inside\n  third\n\nnext: x # not a comment\n; real comment\n",
        )
        .expect("parses");
        // Blank lines stay inside a value, comment lines do not.
        assert_eq!(get(&ini, "key").as_deref(), Some("first\nsecond\n\nthird"));
        assert_eq!(get(&ini, "next").as_deref(), Some("x # not a comment"));
    }

    #[test]
    fn an_indented_option_after_a_blank_line_continues_the_value() {
        // configparser quirk: indentation, not blank lines, ends a value.
        let ini = parse("[alembic]\na = 1\n\n  b = 2\n").expect("parses");
        assert_eq!(get(&ini, "a").as_deref(), Some("1\n\nb = 2"));
        assert_eq!(get(&ini, "b"), None);
    }

    #[test]
    fn first_delimiter_splits_key_and_value() {
        let ini = parse("[alembic]\nurl: sqlite:///x=y\nother = a:b\n").expect("parses");
        assert_eq!(get(&ini, "url").as_deref(), Some("sqlite:///x=y"));
        assert_eq!(get(&ini, "other").as_deref(), Some("a:b"));
    }

    #[test]
    fn interpolation_reads_section_then_default() {
        let ini = parse(
            "[DEFAULT]\nbase = /srv\n[alembic]\nname = app\ndb = %(BASE)s/%(name)s.db\npct = 100%%\nh = %(here)s\n",
        )
        .expect("parses");
        assert_eq!(get(&ini, "db").as_deref(), Some("/srv/app.db"));
        assert_eq!(get(&ini, "pct").as_deref(), Some("100%"));
        assert_eq!(get(&ini, "h").as_deref(), Some("/p"));
        assert_eq!(get(&ini, "base").as_deref(), Some("/srv"));
    }

    #[test]
    fn interpolation_errors_name_file_line_and_option() {
        let ini =
            parse("[alembic]\na = %(missing)s\nb = 5%\nc = %(c)s\nd = %(x)d\n").expect("parses");
        let message = |name: &str| ini.get("alembic", name).expect_err("fails").to_string();
        assert_eq!(
            message("a"),
            "/p/alembic.ini:2: a refers to %(missing)s, which [alembic] and [DEFAULT] do not set"
        );
        assert!(
            message("b").starts_with("/p/alembic.ini:3: b has a '%'"),
            "{}",
            message("b")
        );
        assert!(
            message("c").starts_with("/p/alembic.ini:4: c nests"),
            "{}",
            message("c")
        );
        assert!(
            message("d").starts_with("/p/alembic.ini:5: d has a '%'"),
            "{}",
            message("d")
        );
    }

    #[test]
    fn strict_mode_rejects_duplicates() {
        let error = parse("[alembic]\na = 1\nA = 2\n").expect_err("duplicate");
        assert_eq!(
            error.to_string(),
            "/p/alembic.ini:3: option a appears twice in [alembic]; keep one"
        );
        let error = parse("[alembic]\n[x]\n[alembic]\n").expect_err("duplicate");
        assert_eq!(
            error.to_string(),
            "/p/alembic.ini:3: section [alembic] appears twice; merge the two"
        );
        // Two [DEFAULT] headers are fine; a key repeated across them is not.
        assert!(parse("[DEFAULT]\na=1\n[DEFAULT]\nb=2\n").is_ok());
        assert!(parse("[DEFAULT]\na=1\n[DEFAULT]\na=2\n").is_err());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(
            parse("[alembic]\nscript_location = x\njunk\n")
                .expect_err("bad")
                .to_string(),
            "/p/alembic.ini:3: line is not a [section] header, a `key = value` option or a comment"
        );
        assert!(matches!(
            parse("[alembic]\n= value\n"),
            Err(ConfigError::BadLine { at }) if at.line == Some(2)
        ));
        assert_eq!(
            parse("# hi\nkey = 1\n").expect_err("no header").to_string(),
            "/p/alembic.ini:2: text before the first [section] header"
        );
        let bom = parse("\u{feff}[alembic]\n").expect_err("bom").to_string();
        assert!(bom.contains("byte-order mark"), "{bom}");
    }

    #[test]
    fn section_headers_match_like_sectcre() {
        assert_eq!(section_header("[alembic]"), Some("alembic"));
        assert_eq!(section_header("[a] trailing"), Some("a"));
        assert_eq!(section_header("[a]b]"), Some("a]b"));
        assert_eq!(section_header("[]"), None);
        assert_eq!(section_header("[open"), None);
    }

    #[test]
    fn crlf_and_lone_cr_end_lines() {
        let ini = parse("[alembic]\r\na = 1\rb = 2\r\n").expect("parses");
        assert_eq!(get(&ini, "a").as_deref(), Some("1"));
        assert_eq!(get(&ini, "b").as_deref(), Some("2"));
    }

    proptest::proptest! {
        #[test]
        fn ini_parsing_never_panics(text in "(\\PC|[\\[\\]=:%()#; \\t\\r\\n])*") {
            if let Ok(ini) = parse(&text) {
                let sections: Vec<String> = ini.sections.keys().cloned().collect();
                for section in sections {
                    let _ = ini.items(&section);
                }
            }
        }
    }
}
