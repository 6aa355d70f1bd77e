//! Alembic's configuration, read statically the way the `alembic` command
//! reads it: an ini file parsed with Python `configparser` rules, and/or the
//! `[tool.alembic]` table of a `pyproject.toml` (Alembic >= 1.16).
//!
//! Mirrors `alembic/config.py` (`Config.file_config`, `get_alembic_option`,
//! `get_version_locations_list`, `_get_file_separator_char`,
//! `CommandLine._inis_from_config`) and `alembic/script/base.py`
//! (`ScriptDirectory.from_config`) as of Alembic 1.20, and Python 3.11's
//! `configparser.ConfigParser` with its defaults (`strict=True`, `=`/`:`
//! delimiters, `#`/`;` full-line comments only, blank lines kept inside
//! values, `BasicInterpolation`). No Python is run.
//!
//! Invariants: every path in an [`AlembicConfig`] is absolute and lexically
//! normalised; reading never panics, whatever the bytes; every error names
//! the file, and the line where one is known.
//!
//! The ini reader itself, configparser to the letter, is the `configparser`
//! submodule; this module adds what Alembic makes of the options.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

use configparser::{Ini, py_strip};

mod configparser;

/// The option names Alembic reads, as configparser stores them (lower case).
const SCRIPT_LOCATION: &str = "script_location";
const VERSION_LOCATIONS: &str = "version_locations";
const RECURSIVE_VERSION_LOCATIONS: &str = "recursive_version_locations";
const SQLALCHEMY_URL: &str = "sqlalchemy.url";
const PATH_SEPARATOR: &str = "path_separator";
const VERSION_PATH_SEPARATOR: &str = "version_path_separator";

/// Where the settings came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// An ini file (`alembic.ini`, or whatever `-c`/ALEMBIC_CONFIG named) that
    /// has the section read.
    Ini(PathBuf),
    /// A `pyproject.toml` whose `[tool.alembic]` table was read, with no ini
    /// section in play.
    Pyproject(PathBuf),
}

impl ConfigSource {
    /// The file read.
    pub fn path(&self) -> &Path {
        match self {
            ConfigSource::Ini(path) | ConfigSource::Pyproject(path) => path,
        }
    }
}

/// Alembic's settings for one project, with paths resolved to absolute paths.
///
/// Relative paths are resolved against the directory of the file that set
/// them. Alembic itself resolves them against the directory it runs in, which
/// in practice is the ini's directory (`alembic.ini` is found there by
/// default); resolving against the file makes the answer independent of
/// where migsnap runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlembicConfig {
    /// The ini (or pyproject.toml) read.
    pub source: ConfigSource,
    /// When `source` is an ini: the pyproject.toml whose `[tool.alembic]`
    /// supplied the settings the ini section lacks, as Alembic >= 1.16 does
    /// (ini options win, option by option). `None` otherwise.
    pub pyproject_fallback: Option<PathBuf>,
    /// The ini section read: "alembic" or the `-n NAME`. Still the ini
    /// section name when `source` is a pyproject (Alembic ignores `-n` there).
    pub section: String,
    /// The migration environment directory (absolute).
    pub script_location: PathBuf,
    /// Directories holding revision files (absolute); by default
    /// `script_location/versions`.
    pub version_locations: Vec<PathBuf>,
    /// Whether revision files are also looked for in subdirectories.
    pub recursive_version_locations: bool,
    /// `sqlalchemy.url` after `%(...)s` interpolation; `None` when unset or
    /// empty. Only an ini sets it: Alembic never reads it from pyproject.toml.
    pub sqlalchemy_url: Option<String>,
    /// Every option of the section, interpolated, as `Config.get_section`
    /// returns them: ini options include `[DEFAULT]`'s and `here`. Options
    /// from `[tool.alembic]` that the ini lacks are added when they are
    /// strings, integers or booleans (lists and tables are left out).
    pub options: BTreeMap<String, String>,
}

/// A file, and the 1-based line in it where one is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// The line, 1-based.
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// Why an Alembic configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The file is not UTF-8 (Alembic reads it with the locale encoding,
    /// UTF-8 in practice).
    #[error("{at}: not valid UTF-8; save the file as UTF-8")]
    NotUtf8 {
        /// The file and the line of the first bad byte.
        at: Location,
    },
    /// Text before the first `[section]` header (configparser's
    /// `MissingSectionHeaderError`).
    #[error("{at}: text before the first [section] header{}", if *bom {
        " (the file starts with a UTF-8 byte-order mark, which configparser rejects; save it without one)"
    } else { "" })]
    MissingSectionHeader {
        /// The file and line.
        at: Location,
        /// Whether the file starts with a byte-order mark, the usual cause.
        bom: bool,
    },
    /// A section header appears twice (configparser's strict mode).
    #[error("{at}: section [{section}] appears twice; merge the two")]
    DuplicateSection {
        /// The file and the line of the second header.
        at: Location,
        /// The section.
        section: String,
    },
    /// An option appears twice in a section (configparser's strict mode).
    #[error("{at}: option {option} appears twice in [{section}]; keep one")]
    DuplicateOption {
        /// The file and the line of the second occurrence.
        at: Location,
        /// The section.
        section: String,
        /// The option, lower-cased.
        option: String,
    },
    /// A line that is neither a section header, an option nor a comment, or
    /// an option with an empty name (configparser's `ParsingError`).
    #[error("{at}: line is not a [section] header, a `key = value` option or a comment")]
    BadLine {
        /// The file and the first such line.
        at: Location,
    },
    /// The ini has no such section.
    #[error("{}: no [{section}] section", path.display())]
    NoSection {
        /// The ini.
        path: PathBuf,
        /// The section looked for.
        section: String,
    },
    /// Neither the section nor `[tool.alembic]` sets `script_location`.
    #[error("{}: {table} has no script_location", path.display())]
    NoScriptLocation {
        /// The file read.
        path: PathBuf,
        /// `[alembic]` (or `[NAME]`) or `[tool.alembic]`.
        table: String,
    },
    /// `%(name)s` names an option that is not set.
    #[error("{at}: {option} refers to %({reference})s, which [{section}] and [DEFAULT] do not set")]
    InterpolationMissing {
        /// The file and the line of the option.
        at: Location,
        /// The section read.
        section: String,
        /// The option being read.
        option: String,
        /// The name referred to.
        reference: String,
    },
    /// A `%` that is not `%%` or `%(name)s`.
    #[error(
        "{at}: {option} has a '%' not followed by '%' or '(name)s'; write %% for a literal percent sign"
    )]
    InterpolationSyntax {
        /// The file and the line of the option.
        at: Location,
        /// The option being read.
        option: String,
    },
    /// `%(name)s` references nest deeper than configparser allows.
    #[error(
        "{at}: {option} nests %(name)s references more than 10 deep; is there a reference loop?"
    )]
    InterpolationDepth {
        /// The file and the line of the option.
        at: Location,
        /// The option being read.
        option: String,
    },
    /// `path_separator` or `version_path_separator` has a value Alembic
    /// rejects.
    #[error(
        "{at}: {option} = {value:?} is not a separator Alembic knows; use space, newline, os, : or ;"
    )]
    BadSeparator {
        /// The file and the line of the option.
        at: Location,
        /// `path_separator` or `version_path_separator`.
        option: String,
        /// The value found.
        value: String,
    },
    /// A `package:path` location whose package directory cannot be found
    /// without running Python.
    #[error("{at}: cannot find package {package:?} of {value:?} under {} or its src/; give a directory instead", base.display())]
    PackageNotFound {
        /// The file (and line) that set the location.
        at: Location,
        /// The location as written.
        value: String,
        /// The package part.
        package: String,
        /// The directory searched.
        base: PathBuf,
    },
    /// The pyproject.toml is not valid TOML.
    #[error("{at}: not valid TOML")]
    Toml {
        /// The file and the line of the error.
        at: Location,
        /// What the TOML parser said (boxed: it is large).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A pyproject.toml key has the wrong type.
    #[error("{}: [{table}] {key} must be {expected}", path.display())]
    TomlType {
        /// The pyproject.toml.
        path: PathBuf,
        /// The table holding the key (`tool` or `tool.alembic`).
        table: String,
        /// The key.
        key: String,
        /// What Alembic accepts.
        expected: &'static str,
    },
    /// A `[tool.alembic]` string uses `%` other than `%%` and `%(here)s`.
    #[error("{}: [tool.alembic] {key} has a '%' other than %(here)s or %%; write %% for a literal percent sign", path.display())]
    TomlInterpolation {
        /// The pyproject.toml.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// No configuration where the `alembic` command would look.
    #[error("no Alembic configuration in {}: no alembic.ini and no [tool.alembic] in pyproject.toml; name one with `-c`, ALEMBIC_CONFIG, or migsnap.toml", dir.display())]
    NotFound {
        /// The directory searched.
        dir: PathBuf,
    },
}

/// Reads section `section` of the ini file at `path`, ignoring any
/// pyproject.toml.
pub fn load_ini(path: &Path, section: &str) -> Result<AlembicConfig, ConfigError> {
    parse_ini(path, &read_text(path)?, section)
}

/// [`load_ini`] on ini text already read, as if it came from `path` (which
/// is not read; it gives `%(here)s` and the file named in errors). For
/// callers that hold the text, such as the fuzzer.
pub fn parse_ini(path: &Path, text: &str, section: &str) -> Result<AlembicConfig, ConfigError> {
    let ini = Ini::parse(path, text, &here_of(path))?;
    if !ini.has_section(section) {
        return Err(ConfigError::NoSection {
            path: path.to_path_buf(),
            section: section.to_string(),
        });
    }
    build(Some((&ini, section)), None, section)
}

/// Reads `[tool.alembic]` of a pyproject.toml; `Ok(None)` when it has no
/// such table.
pub fn load_pyproject(path: &Path) -> Result<Option<AlembicConfig>, ConfigError> {
    match ToolAlembic::read(path)? {
        Some(tool) => build(None, Some(&tool), "alembic").map(Some),
        None => Ok(None),
    }
}

/// Finds the configuration the way the `alembic` command would from directory
/// `dir`: `explicit` (`-c`) first, else the ALEMBIC_CONFIG value passed in
/// `env_config`, else `dir/alembic.ini`; the section defaults to "alembic".
///
/// As in `CommandLine._inis_from_config`, a `-c` or ALEMBIC_CONFIG whose file
/// name is `pyproject.toml` names the pyproject instead of the ini, and
/// `dir/pyproject.toml` is the pyproject otherwise. Both files are read when
/// present: the ini section wins option by option and `[tool.alembic]` fills
/// the gaps. Relative `explicit`/`env_config` paths are relative to `dir`.
///
/// Unlike Alembic, which silently skips a named file that does not exist, a
/// file named by `explicit` or `env_config` must exist.
pub fn find(
    dir: &Path,
    explicit: Option<&Path>,
    env_config: Option<&Path>,
    section: Option<&str>,
) -> Result<AlembicConfig, ConfigError> {
    let section = section.unwrap_or("alembic");
    let is_pyproject = |path: &Path| {
        path.file_name()
            .is_some_and(|name| name == "pyproject.toml")
    };
    let in_dir = |path: &Path| dir.join(path);

    // (path, named explicitly) for each of the two files.
    let (mut ini_path, mut toml_path) = (
        (in_dir(Path::new("alembic.ini")), false),
        (in_dir(Path::new("pyproject.toml")), false),
    );
    if let Some(env) = env_config {
        if is_pyproject(env) {
            toml_path = (in_dir(env), true);
        } else {
            ini_path = (in_dir(env), true);
        }
    }
    if let Some(named) = explicit {
        if is_pyproject(named) {
            toml_path = (in_dir(named), true);
        } else {
            ini_path = (in_dir(named), true);
        }
    }

    let ini = read_if_present(&ini_path.0, ini_path.1, Ini::read)?;
    let tool = read_if_present(&toml_path.0, toml_path.1, ToolAlembic::read)?.flatten();

    match (&ini, &tool) {
        (Some(ini), _) if ini.has_section(section) => {
            build(Some((ini, section)), tool.as_ref(), section)
        }
        (_, Some(tool)) => build(None, Some(tool), section),
        (Some(ini), None) => Err(ConfigError::NoSection {
            path: ini.path.clone(),
            section: section.to_string(),
        }),
        (None, None) => Err(ConfigError::NotFound {
            dir: dir.to_path_buf(),
        }),
    }
}

/// Reads `path` with `read` when it is a file; a missing file is `None`
/// unless it was `named`, in which case it is an error naming it.
fn read_if_present<T>(
    path: &Path,
    named: bool,
    read: impl FnOnce(&Path) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    if path.is_file() || named {
        // A named file that is missing (or a directory) goes through `read`
        // too, so the error is the OS's, naming the path.
        read(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Assembles the settings from an ini section and/or `[tool.alembic]`, with
/// Alembic's precedence: an option set in the ini section (or its
/// `[DEFAULT]`) wins, else `[tool.alembic]`'s, else the default.
fn build(
    ini: Option<(&Ini, &str)>,
    tool: Option<&ToolAlembic>,
    section: &str,
) -> Result<AlembicConfig, ConfigError> {
    let ini_option = |name: &str| -> Result<Option<(String, Location)>, ConfigError> {
        match ini {
            Some((ini, section)) => ini.get(section, name),
            None => Ok(None),
        }
    };

    // script_location: `get_alembic_option`, ini first.
    let script_location = match ini_option(SCRIPT_LOCATION)? {
        Some((value, at)) if !value.is_empty() => resolve_location(&value, &at)?,
        _ => match tool
            .map(|tool| Ok::<_, ConfigError>((tool, tool.string(SCRIPT_LOCATION)?)))
            .transpose()?
        {
            Some((tool, Some(value))) if !value.is_empty() => {
                resolve_location(&value, &tool.location())?
            }
            _ => {
                let (path, table) = match (ini, tool) {
                    (Some((ini, section)), _) => (ini.path.clone(), format!("[{section}]")),
                    (None, Some(tool)) => (tool.path.clone(), "[tool.alembic]".to_string()),
                    (None, None) => {
                        unreachable!("BUG: build needs an ini section or [tool.alembic]")
                    }
                };
                return Err(ConfigError::NoScriptLocation { path, table });
            }
        },
    };

    // version_locations: `get_version_locations_list`. A non-empty ini value
    // is split with the separator rules; otherwise the TOML list is used.
    let mut version_locations = Vec::new();
    match ini_option(VERSION_LOCATIONS)? {
        Some((value, at)) if !value.is_empty() => {
            let separator = match ini {
                Some((ini, section)) => separator(ini, section)?,
                None => None,
            };
            for entry in split_locations(&value, separator) {
                version_locations.push(resolve_location(&entry, &at)?);
            }
        }
        _ => {
            if let Some(tool) = tool
                && let Some(entries) = tool.string_list(VERSION_LOCATIONS)?
            {
                for entry in entries {
                    version_locations.push(resolve_location(&entry, &tool.location())?);
                }
            }
        }
    }
    // `ScriptDirectory._version_locations`: an empty list means the default.
    if version_locations.is_empty() {
        version_locations.push(script_location.join("versions"));
    }

    // recursive_version_locations: `get_alembic_boolean_option`. In the ini
    // only the exact text "true" is true (not configparser's yes/on/1); in
    // TOML it must be a boolean.
    let recursive_version_locations = match ini_option(RECURSIVE_VERSION_LOCATIONS)? {
        Some((value, _)) => value == "true",
        None => match tool {
            Some(tool) => tool.boolean(RECURSIVE_VERSION_LOCATIONS)?.unwrap_or(false),
            None => false,
        },
    };

    // sqlalchemy.url: `get_main_option`, which never reads pyproject.toml.
    let sqlalchemy_url = ini_option(SQLALCHEMY_URL)?
        .map(|(value, _)| value)
        .filter(|value| !value.is_empty());

    let mut options = BTreeMap::new();
    if let Some(tool) = tool {
        options.extend(tool.scalars());
    }
    if let Some((ini, section)) = ini {
        options.extend(ini.items(section)?);
    }

    let (source, pyproject_fallback) = match (ini, tool) {
        (Some((ini, _)), tool) => (
            ConfigSource::Ini(ini.path.clone()),
            tool.map(|tool| tool.path.clone()),
        ),
        (None, Some(tool)) => (ConfigSource::Pyproject(tool.path.clone()), None),
        (None, None) => unreachable!("BUG: build needs an ini section or [tool.alembic]"),
    };

    Ok(AlembicConfig {
        source,
        pyproject_fallback,
        section: section.to_string(),
        script_location,
        version_locations,
        recursive_version_locations,
        sqlalchemy_url,
        options,
    })
}

/// The separator `version_locations` is split on (`_get_file_separator_char`):
/// `path_separator`, else the deprecated `version_path_separator`; `None`
/// when neither is set (legacy splitting).
fn separator(ini: &Ini, section: &str) -> Result<Option<char>, ConfigError> {
    for name in [PATH_SEPARATOR, VERSION_PATH_SEPARATOR] {
        if let Some((value, at)) = ini.get(section, name)? {
            let separator = match value.as_str() {
                "space" => ' ',
                "newline" => '\n',
                // `os.pathsep`.
                "os" => {
                    if cfg!(windows) {
                        ';'
                    } else {
                        ':'
                    }
                }
                ":" => ':',
                ";" => ';',
                _ => {
                    return Err(ConfigError::BadSeparator {
                        at,
                        option: name.to_string(),
                        value,
                    });
                }
            };
            return Ok(Some(separator));
        }
    }
    Ok(None)
}

/// Splits a `version_locations` value as `get_version_locations_list` does.
///
/// With a separator: split on it and strip each piece. Without one: the
/// legacy split on the regex `, *| +` (so a newline does not split).
/// Empty pieces are dropped; Alembic keeps some of them and turns them into
/// its current directory, which no project means.
fn split_locations(value: &str, separator: Option<char>) -> Vec<String> {
    let pieces: Vec<String> = match separator {
        Some(separator) => value
            .split(separator)
            .map(|piece| py_strip(piece).to_string())
            .collect(),
        None => {
            let mut pieces = Vec::new();
            let mut current = String::new();
            let mut chars = value.chars().peekable();
            while let Some(c) = chars.next() {
                if c == ',' || c == ' ' {
                    while chars.peek() == Some(&' ') {
                        chars.next();
                    }
                    pieces.push(std::mem::take(&mut current));
                } else {
                    current.push(c);
                }
            }
            pieces.push(current);
            pieces
        }
    };
    pieces
        .into_iter()
        .filter(|piece| !piece.is_empty())
        .collect()
}

/// Turns a location as written into an absolute, normalised path.
///
/// `package:path` (a relative value with a colon, as in
/// `util.coerce_resource_to_filename`) names a directory inside an importable
/// package. Without Python the package is looked for as a directory (dots
/// become path separators) under the configuration file's directory, then
/// under its `src/`. Anything else is a path, relative to that directory.
fn resolve_location(value: &str, at: &Location) -> Result<PathBuf, ConfigError> {
    let base = absolute(at.path.parent().unwrap_or(Path::new("")));
    let written = Path::new(value);
    if !written.is_absolute() && value.contains(':') {
        let mut tokens = value.split(':');
        let package = tokens.next().unwrap_or("");
        let package_dir: PathBuf = package.split('.').collect();
        let found = if package.is_empty() || package.split('.').any(str::is_empty) {
            None
        } else {
            [base.clone(), base.join("src")]
                .into_iter()
                .map(|root| root.join(&package_dir))
                .find(|candidate| candidate.is_dir())
        };
        let Some(mut path) = found else {
            return Err(ConfigError::PackageNotFound {
                at: at.clone(),
                value: value.to_string(),
                package: package.to_string(),
                base,
            });
        };
        for token in tokens {
            path.push(token);
        }
        Ok(normalize(&path))
    } else {
        Ok(normalize(&base.join(written)))
    }
}

/// `path` made absolute against the current directory without touching the
/// file system beyond that (like Python's `Path.absolute()`).
fn absolute(path: &Path) -> PathBuf {
    if path.as_os_str().is_empty() {
        return std::env::current_dir().unwrap_or_default();
    }
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Removes `.` and folds `..` lexically, like `os.path.abspath`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(component);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The directory a configuration file is in, as the `here` value Alembic
/// passes to configparser and TOML interpolation: absolute, `/`-separated.
fn here_of(path: &Path) -> String {
    let dir = absolute(path)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let text = dir.to_string_lossy().into_owned();
    if cfg!(windows) {
        text.replace('\\', "/")
    } else {
        text
    }
}

/// Reads a file as UTF-8, naming the line of the first bad byte.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        ConfigError::NotUtf8 {
            at: Location {
                path: path.to_path_buf(),
                line: Some(line_at(valid, valid.len())),
            },
        }
    })
}

/// The 1-based line of byte `offset` in `bytes`, counting `\n`, `\r\n` and a
/// lone `\r` as line ends like Python's universal newlines.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    let upto = &bytes[..offset.min(bytes.len())];
    let mut line = 1;
    let mut iter = upto.iter().peekable();
    while let Some(&byte) = iter.next() {
        match byte {
            b'\n' => line += 1,
            b'\r' if iter.peek() != Some(&&b'\n') => line += 1,
            _ => {}
        }
    }
    line
}

/// The `[tool.alembic]` table of a pyproject.toml.
#[derive(Debug)]
struct ToolAlembic {
    path: PathBuf,
    /// `here` for `%(here)s`: the pyproject's directory.
    here: String,
    table: toml::Table,
}

impl ToolAlembic {
    /// Reads the pyproject at `path`; `None` when it has no `[tool.alembic]`.
    fn read(path: &Path) -> Result<Option<ToolAlembic>, ConfigError> {
        let text = read_text(path)?;
        ToolAlembic::parse(path, &text, here_of(path))
    }

    fn parse(path: &Path, text: &str, here: String) -> Result<Option<ToolAlembic>, ConfigError> {
        let mut document: toml::Table =
            toml::from_str(text).map_err(|source| ConfigError::Toml {
                at: Location {
                    path: path.to_path_buf(),
                    line: source
                        .span()
                        .map(|span| line_at(text.as_bytes(), span.start)),
                },
                source: Box::new(source),
            })?;
        let not_table = |table: &str, key: &str| ConfigError::TomlType {
            path: path.to_path_buf(),
            table: table.to_string(),
            key: key.to_string(),
            expected: "a table",
        };
        let Some(tool) = document.remove("tool") else {
            return Ok(None);
        };
        let toml::Value::Table(mut tool) = tool else {
            return Err(not_table("", "tool"));
        };
        match tool.remove("alembic") {
            None => Ok(None),
            Some(toml::Value::Table(table)) => Ok(Some(ToolAlembic {
                path: path.to_path_buf(),
                here,
                table,
            })),
            // Alembic: "Incorrect TOML format".
            Some(_) => Err(not_table("tool", "alembic")),
        }
    }

    fn location(&self) -> Location {
        Location {
            path: self.path.clone(),
            line: None,
        }
    }

    fn wrong_type(&self, key: &str, expected: &'static str) -> ConfigError {
        ConfigError::TomlType {
            path: self.path.clone(),
            table: "tool.alembic".to_string(),
            key: key.to_string(),
            expected,
        }
    }

    /// String `key`, interpolated; `None` when absent.
    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => self.interpolate(key, text).map(Some),
            Some(_) => Err(self.wrong_type(key, "a string")),
        }
    }

    /// List-of-strings `key`, each interpolated; `None` when absent.
    fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(text) => self.interpolate(key, text),
                    _ => Err(self.wrong_type(key, "a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.wrong_type(key, "a list of strings")),
        }
    }

    /// Boolean `key`; `None` when absent. Alembic accepts only a TOML boolean.
    fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(value)) => Ok(Some(*value)),
            Some(_) => Err(self.wrong_type(key, "a boolean")),
        }
    }

    /// Scalar options as text, strings interpolated. A string whose
    /// interpolation fails is left out: Alembic only interpolates an option
    /// when something asks for it.
    fn scalars(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in &self.table {
            let text = match value {
                toml::Value::String(text) => match self.interpolate(key, text) {
                    Ok(text) => text,
                    Err(_) => continue,
                },
                toml::Value::Integer(number) => number.to_string(),
                toml::Value::Boolean(flag) => flag.to_string(),
                _ => continue,
            };
            out.insert(key.clone(), text);
        }
        out
    }

    /// Python's `value % {"here": here}` for the forms that make sense:
    /// `%(here)s` and `%%`. Other `%` forms raise in Python or format
    /// nonsense; they are errors here.
    fn interpolate(&self, key: &str, text: &str) -> Result<String, ConfigError> {
        let error = || ConfigError::TomlInterpolation {
            path: self.path.clone(),
            key: key.to_string(),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(position) = rest.find('%') {
            out.push_str(&rest[..position]);
            rest = &rest[position..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("%(here)s") {
                out.push_str(&self.here);
                rest = after;
            } else {
                return Err(error());
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` (relative path, contents) under a new temporary
    /// directory.
    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    /// What `alembic init` writes in Alembic 1.16+ (abridged).
    const GENERATED_INI: &str = "\
# A generic, single database configuration.

[alembic]
# path to migration scripts.
# this is typically a path given in POSIX (e.g. forward slashes)
# format, relative to the token %(here)s which refers to the location of this
# ini file
script_location = %(here)s/alembic

# template used to generate migration file names; The default value is %%(rev)s_%%(slug)s
# file_template = %%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s

prepend_sys_path = .

# version_locations = %(here)s/bar:%(here)s/bat:%(here)s/alembic/versions

path_separator = os

sqlalchemy.url = driver://user:pass@localhost/dbname

[post_write_hooks]

[loggers]
keys = root,sqlalchemy,alembic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
";

    #[test]
    fn generated_ini_reads_like_alembic() {
        let dir = project(&[("alembic.ini", GENERATED_INI)]);
        let config = find(dir.path(), None, None, None).expect("reads");
        let root = absolute(dir.path());
        assert_eq!(
            config.source,
            ConfigSource::Ini(dir.path().join("alembic.ini"))
        );
        assert_eq!(config.section, "alembic");
        assert_eq!(config.script_location, root.join("alembic"));
        assert_eq!(
            config.version_locations,
            vec![root.join("alembic/versions")]
        );
        assert!(!config.recursive_version_locations);
        assert_eq!(
            config.sqlalchemy_url.as_deref(),
            Some("driver://user:pass@localhost/dbname")
        );
        assert_eq!(
            config.options.get("prepend_sys_path").map(String::as_str),
            Some(".")
        );
        assert_eq!(
            config.options.get("here").map(PathBuf::from),
            Some(root.clone())
        );
        // The logging sections' `%(levelname)` never gets interpolated.
        assert!(!config.options.contains_key("format"));
        assert_eq!(config.pyproject_fallback, None);
    }

    #[test]
    fn version_locations_follow_the_separator_rules() {
        assert_eq!(split_locations("a b,c, d", None), ["a", "b", "c", "d"]);
        // Legacy splitting does not split on newlines.
        assert_eq!(split_locations("a\nb", None), ["a\nb"]);
        assert_eq!(split_locations("a : b:", Some(':')), ["a", "b"]);
        assert_eq!(split_locations("\na\n b\n", Some('\n')), ["a", "b"]);

        let dir = project(&[(
            "alembic.ini",
            "[alembic]\nscript_location = mig\npath_separator = newline\nversion_locations =\n  %(here)s/one\n  two\n",
        )]);
        let config = load_ini(&dir.path().join("alembic.ini"), "alembic").expect("reads");
        let root = absolute(dir.path());
        assert_eq!(
            config.version_locations,
            vec![root.join("one"), root.join("two")]
        );

        // path_separator wins over the deprecated version_path_separator.
        let dir = project(&[(
            "alembic.ini",
            "[alembic]\nscript_location = mig\nversion_path_separator = ;\npath_separator = space\nversion_locations = a;b c\n",
        )]);
        let config = load_ini(&dir.path().join("alembic.ini"), "alembic").expect("reads");
        assert_eq!(
            config.version_locations,
            vec![root_of(&dir).join("a;b"), root_of(&dir).join("c")]
        );

        let dir = project(&[(
            "alembic.ini",
            "[alembic]\nscript_location = mig\nversion_path_separator = tab\nversion_locations = a\n",
        )]);
        let error = load_ini(&dir.path().join("alembic.ini"), "alembic")
            .expect_err("bad separator")
            .to_string();
        assert!(error.ends_with(":3: version_path_separator = \"tab\" is not a separator Alembic knows; use space, newline, os, : or ;"), "{error}");
    }

    fn root_of(dir: &tempfile::TempDir) -> PathBuf {
        absolute(dir.path())
    }

    #[test]
    fn recursive_version_locations_is_true_only_for_the_word_true() {
        for (value, expected) in [
            ("true", true),
            ("True", false),
            ("yes", false),
            ("false", false),
        ] {
            let dir = project(&[(
                "alembic.ini",
                &format!("[alembic]\nscript_location = m\nrecursive_version_locations = {value}\n"),
            )]);
            let config = load_ini(&dir.path().join("alembic.ini"), "alembic").expect("reads");
            assert_eq!(config.recursive_version_locations, expected, "{value}");
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_ini_directory() {
        let dir = project(&[(
            "sub/alembic.ini",
            "[alembic]\nscript_location = ./migrations/../db\nsqlalchemy.url =\n",
        )]);
        let config = load_ini(&dir.path().join("sub/alembic.ini"), "alembic").expect("reads");
        assert_eq!(config.script_location, root_of(&dir).join("sub/db"));
        assert_eq!(config.sqlalchemy_url, None);
    }

    #[test]
    fn package_locations_are_found_in_the_project_or_src() {
        let dir = project(&[
            (
                "alembic.ini",
                "[alembic]\nscript_location = my.app:migrations\n",
            ),
            ("src/my/app/__init__.py", ""),
        ]);
        let config = load_ini(&dir.path().join("alembic.ini"), "alembic").expect("reads");
        assert_eq!(
            config.script_location,
            root_of(&dir).join("src/my/app/migrations")
        );

        let dir = project(&[(
            "alembic.ini",
            "[alembic]\nscript_location = myapp:migrations\n",
        )]);
        let error = load_ini(&dir.path().join("alembic.ini"), "alembic")
            .expect_err("missing package")
            .to_string();
        assert!(
            error.contains(":2: cannot find package \"myapp\" of \"myapp:migrations\""),
            "{error}"
        );
    }

    #[test]
    fn missing_section_or_script_location_is_named() {
        let dir = project(&[("alembic.ini", "[other]\na = 1\n")]);
        let path = dir.path().join("alembic.ini");
        assert_eq!(
            load_ini(&path, "alembic")
                .expect_err("no section")
                .to_string(),
            format!("{}: no [alembic] section", path.display())
        );
        let dir = project(&[("alembic.ini", "[custom]\na = 1\n")]);
        let path = dir.path().join("alembic.ini");
        assert_eq!(
            find(dir.path(), None, None, Some("custom"))
                .expect_err("no script_location")
                .to_string(),
            format!("{}: [custom] has no script_location", path.display())
        );
    }

    #[test]
    fn pyproject_alone_is_read_with_here() {
        let dir = project(&[(
            "pyproject.toml",
            "[project]\nname = \"x\"\n[tool.alembic]\nscript_location = \"%(here)s/alembic\"\nversion_locations = [\"%(here)s/v1\", \"v2\"]\nrecursive_version_locations = true\nfile_template = \"%%(rev)s\"\n",
        )]);
        let config = find(dir.path(), None, None, None).expect("reads");
        let root = root_of(&dir);
        assert_eq!(
            config.source,
            ConfigSource::Pyproject(dir.path().join("pyproject.toml"))
        );
        assert_eq!(config.script_location, root.join("alembic"));
        assert_eq!(
            config.version_locations,
            vec![root.join("v1"), root.join("v2")]
        );
        assert!(config.recursive_version_locations);
        assert_eq!(config.sqlalchemy_url, None);
        assert_eq!(
            config.options.get("file_template").map(String::as_str),
            Some("%(rev)s")
        );

        let dir = project(&[("pyproject.toml", "[project]\nname = \"x\"\n")]);
        assert!(
            load_pyproject(&dir.path().join("pyproject.toml"))
                .expect("reads")
                .is_none()
        );
        assert!(matches!(
            find(dir.path(), None, None, None),
            Err(ConfigError::NotFound { .. })
        ));
    }

    #[test]
    fn ini_wins_option_by_option_over_pyproject() {
        let dir = project(&[
            (
                "alembic.ini",
                "[alembic]\nsqlalchemy.url = sqlite:///%(here)s/app.db\n",
            ),
            (
                "pyproject.toml",
                "[tool.alembic]\nscript_location = \"migrations\"\nrecursive_version_locations = true\n",
            ),
        ]);
        let config = find(dir.path(), None, None, None).expect("reads");
        let root = root_of(&dir);
        assert_eq!(
            config.source,
            ConfigSource::Ini(dir.path().join("alembic.ini"))
        );
        assert_eq!(
            config.pyproject_fallback,
            Some(dir.path().join("pyproject.toml"))
        );
        assert_eq!(config.script_location, root.join("migrations"));
        assert!(config.recursive_version_locations);
        assert_eq!(
            config.sqlalchemy_url,
            Some(format!("sqlite:///{}/app.db", root.display()))
        );
    }

    #[test]
    fn an_ini_without_the_section_defers_to_pyproject() {
        let dir = project(&[
            ("alembic.ini", "[loggers]\nkeys = root\n"),
            (
                "pyproject.toml",
                "[tool.alembic]\nscript_location = \"m\"\n",
            ),
        ]);
        let config = find(dir.path(), None, None, None).expect("reads");
        assert_eq!(
            config.source,
            ConfigSource::Pyproject(dir.path().join("pyproject.toml"))
        );
        assert_eq!(config.script_location, root_of(&dir).join("m"));
        assert_eq!(config.options.get("here"), None);
    }

    #[test]
    fn pyproject_type_errors_are_named() {
        let dir = project(&[(
            "pyproject.toml",
            "[tool.alembic]\nscript_location = \"m\"\nrecursive_version_locations = \"true\"\n",
        )]);
        let path = dir.path().join("pyproject.toml");
        assert_eq!(
            load_pyproject(&path).expect_err("not a bool").to_string(),
            format!(
                "{}: [tool.alembic] recursive_version_locations must be a boolean",
                path.display()
            )
        );
        let dir = project(&[("pyproject.toml", "[tool]\nalembic = 3\n")]);
        assert!(load_pyproject(&dir.path().join("pyproject.toml")).is_err());
        let dir = project(&[(
            "pyproject.toml",
            "[tool.alembic]\nscript_location = \"%(root)s/m\"\n",
        )]);
        assert!(matches!(
            load_pyproject(&dir.path().join("pyproject.toml")),
            Err(ConfigError::TomlInterpolation { .. })
        ));
        let dir = project(&[("pyproject.toml", "[tool.alembic]\n\nscript_location = \n")]);
        let error = load_pyproject(&dir.path().join("pyproject.toml"))
            .expect_err("bad toml")
            .to_string();
        assert!(
            error.ends_with("pyproject.toml:3: not valid TOML"),
            "{error}"
        );
    }

    #[test]
    fn explicit_and_environment_names_are_honoured() {
        let dir = project(&[
            ("alembic.ini", "[alembic]\nscript_location = default\n"),
            (
                "conf/other.ini",
                "[alembic]\nscript_location = from_env\n[second]\nscript_location = from_name\n",
            ),
            (
                "conf/pyproject.toml",
                "[tool.alembic]\nscript_location = \"from_toml\"\n",
            ),
        ]);
        let root = root_of(&dir);
        let env = Path::new("conf/other.ini");
        let config = find(dir.path(), None, Some(env), None).expect("env");
        assert_eq!(config.script_location, root.join("conf/from_env"));
        let config =
            find(dir.path(), Some(Path::new("alembic.ini")), Some(env), None).expect("explicit");
        assert_eq!(config.script_location, root.join("default"));
        let config = find(dir.path(), None, Some(env), Some("second")).expect("named section");
        assert_eq!(config.script_location, root.join("conf/from_name"));
        // -c pyproject.toml names the pyproject; the ini is still the default.
        let config = find(
            dir.path(),
            Some(Path::new("conf/pyproject.toml")),
            None,
            None,
        )
        .expect("toml");
        assert_eq!(config.script_location, root.join("default"));
        assert_eq!(
            config.pyproject_fallback,
            Some(dir.path().join("conf/pyproject.toml"))
        );
        // A named file that does not exist is an error naming it.
        let error = find(dir.path(), Some(Path::new("nope.ini")), None, None).expect_err("missing");
        assert!(
            matches!(&error, ConfigError::Io { path, .. } if path.ends_with("nope.ini")),
            "{error}"
        );
    }

    #[test]
    fn not_found_says_how_to_name_a_configuration() {
        let dir = project(&[]);
        let message = find(dir.path(), None, None, None)
            .expect_err("nothing")
            .to_string();
        assert!(
            message.contains("`-c`, ALEMBIC_CONFIG, or migsnap.toml"),
            "{message}"
        );
    }

    #[test]
    fn bad_utf8_names_the_line() {
        let dir = project(&[]);
        let path = dir.path().join("alembic.ini");
        std::fs::write(&path, b"[alembic]\r\nscript_location = \xff\n").expect("write");
        let error = load_ini(&path, "alembic").expect_err("not utf-8");
        assert_eq!(
            error.to_string(),
            format!(
                "{}:2: not valid UTF-8; save the file as UTF-8",
                path.display()
            )
        );
    }

    proptest::proptest! {

        #[test]
        fn toml_parsing_never_panics(text in "(\\PC|[\\[\\]=\"%()\\n])*") {
            if let Ok(Some(tool)) = ToolAlembic::parse(Path::new("/p/pyproject.toml"), &text, "/p".to_string()) {
                let _ = build(None, Some(&tool), "alembic");
            }
        }
    }
}
