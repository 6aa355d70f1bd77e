//! The name Alembic gives a new revision file (`ScriptDirectory._rev_path`):
//! the project's `file_template` filled in with the revision id, the
//! message's slug cut at `truncate_slug_length`, and the creation time.
//! migsnap writes revision files (`adopt`) under the same name `alembic
//! revision` would, so a project's naming convention holds.

use crate::migrations::history::alembic_config::AlembicConfig;
use crate::migrations::history::revision_id::RevisionId;

/// Alembic's default `file_template`.
const DEFAULT_TEMPLATE: &str = "%(rev)s_%(slug)s";
/// Alembic's default `truncate_slug_length`.
const DEFAULT_TRUNCATE: usize = 40;

/// Why a project's file naming cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileNameError {
    /// `truncate_slug_length` is not a whole number.
    #[error("truncate_slug_length = {value:?} is not a whole number")]
    TruncateLength {
        /// The configured text.
        value: String,
    },
    /// `file_template` has a `%` form Alembic would reject.
    #[error("file_template = {template:?}: {reason}")]
    Template {
        /// The configured template.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// How a project names new revision files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileNaming {
    template: String,
    truncate_slug_length: usize,
}

impl Default for FileNaming {
    fn default() -> Self {
        FileNaming {
            template: DEFAULT_TEMPLATE.to_owned(),
            truncate_slug_length: DEFAULT_TRUNCATE,
        }
    }
}

impl FileNaming {
    /// The naming of a project with `config` (Alembic's defaults without
    /// one, or for options it does not set).
    pub fn of(config: Option<&AlembicConfig>) -> Result<FileNaming, FileNameError> {
        let option = |name: &str| config.and_then(|c| c.options.get(name));
        let truncate_slug_length = match option("truncate_slug_length") {
            Some(value) => value
                .trim()
                .parse()
                .map_err(|_| FileNameError::TruncateLength {
                    value: value.clone(),
                })?,
            None => DEFAULT_TRUNCATE,
        };
        let template = option("file_template")
            .filter(|t| !t.is_empty())
            .cloned()
            .unwrap_or_else(|| DEFAULT_TEMPLATE.to_owned());
        Ok(FileNaming {
            template,
            truncate_slug_length,
        })
    }

    /// The file name (with `.py`) of revision `revision` with `message`,
    /// created at `created`; may contain `/` when the template makes
    /// subdirectories.
    pub fn file_name(
        &self,
        revision: &RevisionId,
        message: &str,
        created: &jiff::Zoned,
    ) -> Result<String, FileNameError> {
        let slug = self.slug(message);
        let value = |key: &str| -> Option<Value> {
            Some(match key {
                "rev" => Value::Text(revision.to_string()),
                "slug" => Value::Text(slug.clone()),
                "epoch" => Value::Number(created.timestamp().as_second()),
                "year" => Value::Number(created.year().into()),
                "month" => Value::Number(created.month().into()),
                "day" => Value::Number(created.day().into()),
                "hour" => Value::Number(created.hour().into()),
                "minute" => Value::Number(created.minute().into()),
                "second" => Value::Number(created.second().into()),
                _ => return None,
            })
        };
        let name =
            percent_format(&self.template, value).map_err(|reason| FileNameError::Template {
                template: self.template.clone(),
                reason,
            })?;
        Ok(format!("{name}.py"))
    }

    /// The message's words (`\w+`) joined by `_`, lowercased; longer than
    /// `truncate_slug_length`, it is cut there, back to the last `_`, and
    /// ends in `_`.
    fn slug(&self, message: &str) -> String {
        let words: Vec<String> = message
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let slug = words.join("_");
        if slug.chars().count() <= self.truncate_slug_length {
            return slug;
        }
        let cut: String = slug.chars().take(self.truncate_slug_length).collect();
        match cut.rsplit_once('_') {
            Some((head, _)) => format!("{head}_"),
            None => format!("{cut}_"),
        }
    }
}

/// A value a template key stands for.
enum Value {
    Text(String),
    Number(i64),
}

/// Python's `template % mapping` for the forms a file template uses:
/// `%%` and `%(key)[flags][width][.precision](s|d|i)`, flags `0` and `-`.
fn percent_format(template: &str, value: impl Fn(&str) -> Option<Value>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('%') {
            out.push('%');
            rest = after;
            continue;
        }
        let Some(after) = rest.strip_prefix('(') else {
            return Err("a % without a (key)".to_owned());
        };
        let close = after.find(')').ok_or("an unclosed %(")?;
        let key = &after[..close];
        let spec_len = after[close + 1..]
            .find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(|| format!("%({key}) has no conversion"))?;
        let spec = &after[close + 1..close + 1 + spec_len];
        let conversion = after[close + 1 + spec_len..].chars().next().unwrap_or('s');
        rest = &after[close + 2 + spec_len..];
        let value = value(key).ok_or_else(|| format!("unknown key %({key})"))?;
        let (left, zero) = (spec.contains('-'), spec.starts_with('0'));
        let digits = spec.trim_start_matches(['-', '0']);
        let (width, precision) = match digits.split_once('.') {
            Some((w, p)) => (w, Some(p)),
            None => (digits, None),
        };
        let width: usize = if width.is_empty() {
            0
        } else {
            width
                .parse()
                .map_err(|_| format!("bad width in %({key})"))?
        };
        let text = match (conversion, value) {
            ('s', Value::Text(text)) => match precision {
                Some(p) => text
                    .chars()
                    .take(p.parse().map_err(|_| "bad precision")?)
                    .collect(),
                None => text,
            },
            ('s', Value::Number(n)) => n.to_string(),
            ('d' | 'i', Value::Number(n)) => {
                // For integers the precision is a minimum digit count.
                let digits: usize = precision
                    .map_or(Ok(0), str::parse)
                    .map_err(|_| "bad precision")?;
                let sign = if n < 0 { "-" } else { "" };
                format!("{sign}{:0digits$}", n.unsigned_abs())
            }
            ('d' | 'i', Value::Text(_)) => return Err(format!("%({key}) is text, not a number")),
            (other, _) => return Err(format!("conversion %{other} is not supported")),
        };
        let pad = width.saturating_sub(text.chars().count());
        match (left, zero && matches!(conversion, 'd' | 'i')) {
            (true, _) => out.push_str(&format!("{text}{}", " ".repeat(pad))),
            (false, true) => out.push_str(&format!("{}{text}", "0".repeat(pad))),
            (false, false) => out.push_str(&format!("{}{text}", " ".repeat(pad))),
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> jiff::Zoned {
        "2026-03-04T05:06:07+00:00[UTC]".parse().unwrap()
    }

    fn naming(template: &str, truncate: usize) -> FileNaming {
        FileNaming {
            template: template.to_owned(),
            truncate_slug_length: truncate,
        }
    }

    #[test]
    fn the_default_is_rev_then_slug() {
        let name = FileNaming::default()
            .file_name(
                &RevisionId::from("abc123"),
                "Add a  table; now!",
                &created(),
            )
            .unwrap();
        assert_eq!(name, "abc123_add_a_table_now.py");
    }

    #[test]
    fn slugs_are_cut_as_alembic_cuts_them() {
        let long = "one two three four five six seven eight nine";
        assert_eq!(
            FileNaming::default().slug(long),
            "one_two_three_four_five_six_seven_eight_"
        );
        assert_eq!(naming(DEFAULT_TEMPLATE, 10).slug(long), "one_two_");
        assert_eq!(naming(DEFAULT_TEMPLATE, 3).slug("abcdef"), "abc_");
    }

    // The date template Alembic's own documentation shows.
    #[test]
    fn dated_templates_format_like_python() {
        let template = "%(year)d_%(month).2d_%(day).2d_%(hour).2d%(minute).2d-%(rev)s_%(slug)s";
        let name = naming(template, 40)
            .file_name(&RevisionId::from("ff00"), "adopt notes", &created())
            .unwrap();
        assert_eq!(name, "2026_03_04_0506-ff00_adopt_notes.py");
        let epoch = naming("%(epoch)s_%(second)02d_%(rev)-6s|", 40)
            .file_name(&RevisionId::from("ab"), "", &created())
            .unwrap();
        assert_eq!(epoch, "1772600767_07_ab    |.py");
        assert_eq!(
            naming("100%%_%(rev)s", 40)
                .file_name(&RevisionId::from("ab"), "", &created())
                .unwrap(),
            "100%_ab.py"
        );
    }

    #[test]
    fn unknown_keys_and_conversions_are_errors() {
        for template in ["%(nope)s", "%(rev)x", "%(slug)d", "%rev", "%(rev"] {
            let error = naming(template, 40)
                .file_name(&RevisionId::from("ab"), "m", &created())
                .unwrap_err();
            assert!(
                matches!(error, FileNameError::Template { .. }),
                "{template}"
            );
        }
    }
}
