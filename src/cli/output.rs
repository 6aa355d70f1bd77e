//! Everything the CLI writes: results on stdout (text or JSON), notes and
//! errors on stderr, progress bars on a terminal only, colour only on a
//! terminal and only without `NO_COLOR` (<https://no-color.org>).

use std::io::{IsTerminal, Write};

use anstyle::AnsiColor;
use indicatif::{ProgressBar, ProgressStyle};
use migsnap_store::Progress;

use super::Format;
use super::error::{CliError, ErrorKind};

/// The CLI's writer.
pub struct Output {
    format: Format,
    color: bool,
    quiet: bool,
}

/// What a piece of text is, for colouring.
#[derive(Clone, Copy)]
pub enum Paint {
    /// An object id.
    Id,
    /// A ref decoration.
    Ref,
    /// Something added or good.
    Good,
    /// Something removed, bad or a warning.
    Bad,
    /// A lane of a drawn graph, by number: lanes take turns through six
    /// colours, as in `git log --graph`.
    Lane(usize),
}

/// The colours of graph lanes, in git's order.
const LANE_COLOURS: [AnsiColor; 6] = [
    AnsiColor::Red,
    AnsiColor::Green,
    AnsiColor::Yellow,
    AnsiColor::Blue,
    AnsiColor::Magenta,
    AnsiColor::Cyan,
];

impl Output {
    /// An output in `format`; `quiet` keeps text output to errors and
    /// verdicts.
    pub fn new(format: Format, quiet: bool) -> Output {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Output {
            format,
            color: !no_color && std::io::stdout().is_terminal(),
            quiet,
        }
    }

    /// Whether `-q` asked for errors and verdicts only.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// The format results go out in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether results go out as JSON.
    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Wraps `text` in colour when colour is on.
    pub fn paint(&self, paint: Paint, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let colour = match paint {
            Paint::Id => AnsiColor::Yellow,
            Paint::Ref => AnsiColor::Cyan,
            Paint::Good => AnsiColor::Green,
            Paint::Bad => AnsiColor::Red,
            Paint::Lane(lane) => LANE_COLOURS[lane % LANE_COLOURS.len()],
        };
        let style = colour.on_default();
        format!("{style}{text}{style:#}")
    }

    /// Writes one line of text output (none under `-q`).
    pub fn line(&self, text: &str) -> Result<(), CliError> {
        if self.quiet {
            return Ok(());
        }
        self.verdict(text)
    }

    /// Writes a line that `-q` keeps: a verdict, or a finding that fails it.
    pub fn verdict(&self, text: &str) -> Result<(), CliError> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}").map_err(CliError::from_stdout)
    }

    /// Writes the JSON result document (a report, or a `Value`); `-q` does
    /// not shorten it, because a script that asks for JSON wants all of it.
    /// Keys come out sorted, whatever the type's field order.
    pub fn json(&self, value: &impl serde::Serialize) -> Result<(), CliError> {
        let value = serde_json::to_value(value).expect("holds: reports are plain data");
        let text =
            serde_json::to_string_pretty(&value).expect("holds because Values always serialise");
        self.verdict(&text)
    }

    /// A remark on stderr that is not the result (none in JSON or under
    /// `-q`).
    pub fn note(&self, text: &str) {
        if !self.is_json() && !self.quiet {
            eprintln!("{text}");
        }
    }

    /// A line on stderr that `-q` keeps: a finding that fails the verdict
    /// of a command whose stdout is its result.
    pub fn problem(&self, text: &str) {
        eprintln!("{text}");
    }

    /// A step of long work on stderr, only on a terminal: logs and cron mail
    /// get the command's summary instead of one line per step.
    pub fn step(&self, text: &str) {
        if !self.is_json() && !self.quiet && std::io::stderr().is_terminal() {
            eprintln!("{text}");
        }
    }

    /// A warning on stderr.
    pub fn warn(&self, text: &str) {
        eprintln!("warning: {text}");
    }

    /// Prints an error and returns the exit code for it.
    pub fn error(&self, error: &CliError) -> u8 {
        if error.kind == ErrorKind::BrokenPipe {
            return super::exit::OK;
        }
        if self.is_json() {
            // Fields in alphabetical order: the document's byte form is
            // part of the interface, and it predates the typed struct.
            let value = serde_json::to_string(&ErrorDocument {
                error: ErrorBody::new(error),
            })
            .expect("holds: plain data");
            eprintln!("{value}");
        } else {
            eprintln!("error: {}", error.message);
            for cause in &error.causes {
                eprintln!("caused by: {cause}");
            }
            for hint in &error.hints {
                eprintln!("hint: {hint}");
            }
        }
        error.kind.exit_code()
    }

    /// A progress sink: a bar on a terminal in text mode, nothing otherwise.
    pub fn progress(&self) -> Box<dyn Progress> {
        if self.is_json() || self.quiet || !std::io::stderr().is_terminal() {
            Box::new(migsnap_store::progress::Silent)
        } else {
            Box::new(Bar::default())
        }
    }
}

/// A terminal progress bar.
#[derive(Default)]
struct Bar {
    bar: Option<ProgressBar>,
}

impl Progress for Bar {
    fn start(&mut self, what: &str, total: u64) {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg:>16} [{bar:30}] {percent:>3}% {eta}")
                .expect("holds because the template is fixed")
                .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        self.bar = Some(bar);
    }

    fn advance(&mut self, units: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(units);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Formats a byte count for people (binary units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A schema diff as lines: `+`, `-` or `~`, the kind and the name, and under
/// a change each field as `old → new`; every line starts with `indent`.
/// Changes of form say so in words instead of listing fields: "same
/// columns, different order" with the moved columns, "same constraint,
/// different name". Shared by `diff` and `log -p` so both read the same.
pub fn diff_lines(
    out: &Output,
    diff: &crate::schema::diff::SchemaDiff,
    indent: &str,
) -> Vec<String> {
    change_lines(out, diff, indent, ["+", "-", "~"])
}

/// Drift from a reference as lines: `extra`, `missing` or `differs` (the
/// database against the reference), then as [`diff_lines`].
pub fn drift_lines(
    out: &Output,
    diff: &crate::schema::diff::SchemaDiff,
    indent: &str,
) -> Vec<String> {
    change_lines(out, diff, indent, ["extra", "missing", "differs"])
}

/// `(a, b moved)`, or nothing when no column moved.
fn moved_text(moved: &[String]) -> String {
    if moved.is_empty() {
        String::new()
    } else {
        format!(" ({} moved)", moved.join(", "))
    }
}

/// [`diff_lines`] with the words for added, removed and changed.
fn change_lines(
    out: &Output,
    diff: &crate::schema::diff::SchemaDiff,
    indent: &str,
    [added, removed, changed]: [&str; 3],
) -> Vec<String> {
    use crate::schema::diff::Op;
    let mut lines = Vec::new();
    for change in &diff.changes {
        let (sigil, paint) = match change.op {
            Op::Added => (added, Some(Paint::Good)),
            Op::Removed => (removed, Some(Paint::Bad)),
            Op::Changed => (changed, None),
        };
        let (what, fields) = describe_change(change);
        let head = format!("{indent}{sigil} {what}");
        lines.push(match paint {
            Some(paint) => out.paint(paint, &head),
            None => head,
        });
        lines.extend(fields.iter().map(|field| format!("{indent}    {field}")));
    }
    lines
}

/// One change in words, as [`diff_lines`] shows it after its sigil: the
/// kind and name, with what a change of form means ("same columns,
/// different order"); then, for a changed definition, each field as `field:
/// old → new`.
pub fn describe_change(change: &crate::schema::diff::Change) -> (String, Vec<String>) {
    use crate::schema::diff::{Meaning, Op};
    use crate::schema::field::{Field, Value};
    let shown = |value: &Option<Value>| value.as_ref().map_or("(none)".into(), Value::to_string);
    let kind = change.kind.name().replace('_', " ");
    let name = match (&change.table, change.kind.name()) {
        (Some(table), "column") => format!("{table}.{}", change.name),
        (Some(table), _) if *table != change.name => format!("{} on {table}", change.name),
        _ => change.name.clone(),
    };
    let what = match change.meaning {
        Meaning::Definition => String::new(),
        Meaning::Order => format!(
            ": same columns, different order{}",
            moved_text(&change.moved)
        ),
        Meaning::Name => {
            let names = change
                .fields
                .iter()
                .find(|f| f.field == Field::Name)
                .map(|f| format!(": {} → {}", shown(&f.before), shown(&f.after)))
                .unwrap_or_default();
            format!(": same {kind}, different name{names}")
        }
    };
    let mut fields = Vec::new();
    if change.op == Op::Changed && change.meaning == Meaning::Definition {
        for field in &change.fields {
            fields.push(if field.field == Field::Columns {
                format!("columns: different order{}", moved_text(&change.moved))
            } else {
                format!(
                    "{}: {} → {}",
                    field.field,
                    shown(&field.before),
                    shown(&field.after)
                )
            });
        }
    }
    (format!("{kind} {name}{what}"), fields)
}

/// An error in `--format json`, on stderr.
#[derive(serde::Serialize)]
struct ErrorDocument<'a> {
    error: ErrorBody<'a>,
}

/// The fields of [`ErrorDocument`]; also how `check` shows a failed step.
#[derive(serde::Serialize)]
pub(super) struct ErrorBody<'a> {
    causes: &'a [String],
    details: &'a [String],
    exit_code: u8,
    hints: &'a [String],
    kind: &'a str,
    message: &'a str,
}

impl<'a> ErrorBody<'a> {
    /// The JSON form of `error`.
    pub(super) fn new(error: &'a CliError) -> ErrorBody<'a> {
        ErrorBody {
            causes: &error.causes,
            details: &error.details,
            exit_code: error.kind.exit_code(),
            hints: &error.hints,
            kind: error.kind.name(),
            message: &error.message,
        }
    }
}

/// `s` unless `n` is 1, for a plural noun in text output.
pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
