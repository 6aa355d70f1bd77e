//! The one rule for what migsnap may execute or let execute: a file or
//! directory owned by the current user or root, or one covered by a safe
//! directory.
//!
//! A replay runs the project's code: an interpreter (`.venv/bin/python`),
//! Alembic's `env.py` and the revision files, or an `upgrade` command named
//! by a configuration file. Run as root in a directory someone else owns,
//! that would run their code as root, which is why git added
//! `safe.directory` (CVE-2022-24765). Safe directories come from
//! [`SAFE_DIRECTORIES_ENV`] and from `safe_directories = [...]` in the
//! user's `~/.config/migsnap/config.toml` (or under `$XDG_CONFIG_HOME`); an
//! entry covers that directory and everything under it, and `*` covers all.

use std::path::{Path, PathBuf};

/// Environment variable listing safe directories (`:`-separated, as `PATH`;
/// `*` trusts every directory).
pub const SAFE_DIRECTORIES_ENV: &str = "MIGSNAP_SAFE_DIRECTORIES";

/// A path migsnap would execute or let execute belongs to someone else.
#[derive(Debug, thiserror::Error)]
#[error("{path} is owned by {owner}, not by you or root; refusing to run {what}")]
pub struct Untrusted {
    /// The file or directory.
    pub path: PathBuf,
    /// Its owner: `uid N (name)`.
    pub owner: String,
    /// What would have run from it (`the project's env.py`, ...).
    pub what: String,
}

impl Untrusted {
    /// The directory to list as safe to trust it: its directory, for a file.
    pub fn directory(&self) -> &Path {
        if self.path.is_dir() {
            &self.path
        } else {
            self.path.parent().unwrap_or(&self.path)
        }
    }
}

/// Checks that `path` (not followed if it is a symbolic link, so a link
/// placed by someone else counts as theirs) may be trusted; `what` says
/// what would run from it. A path that does not exist has nothing to run.
pub fn check(path: &Path, what: &str) -> Result<(), Untrusted> {
    match foreign_owner(path) {
        None => Ok(()),
        Some(owner) => Err(Untrusted {
            path: path.to_path_buf(),
            owner: describe_uid(owner),
            what: what.to_owned(),
        }),
    }
}

/// The owner of `path` when it is neither the current user nor root and no
/// safe directory covers `path`; `None` when `path` is trusted or absent.
pub fn foreign_owner(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::symlink_metadata(path).ok()?.uid();
    if owner == 0 || Some(owner) == current_uid() || listed_as_safe(path) {
        return None;
    }
    Some(owner)
}

/// Whether `path` or a directory above it is a safe directory (compared
/// lexically and after resolving symbolic links), or the list holds `*`.
fn listed_as_safe(path: &Path) -> bool {
    let path = crate::repo::absolute(path);
    let real = std::fs::canonicalize(&path).ok();
    safe_directories().iter().any(|entry| {
        if entry.as_os_str() == "*" {
            return true;
        }
        let entry = crate::repo::absolute(entry);
        path.starts_with(&entry)
            || std::fs::canonicalize(&entry)
                .ok()
                .zip(real.as_ref())
                .is_some_and(|(entry, real)| real.starts_with(entry))
    })
}

/// The safe directories: [`SAFE_DIRECTORIES_ENV`], then the user's
/// configuration file when it belongs to the user (or root) and parses.
fn safe_directories() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os(SAFE_DIRECTORIES_ENV)
        .map(|list| std::env::split_paths(&list).collect())
        .unwrap_or_default();
    if let Some(config) = user_config() {
        dirs.extend(read_user_config(&config));
    }
    dirs
}

/// `~/.config/migsnap/config.toml`, or under `$XDG_CONFIG_HOME`.
pub fn user_config() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("migsnap").join("config.toml"))
}

#[derive(serde::Deserialize)]
struct UserConfig {
    #[serde(default)]
    safe_directories: Vec<PathBuf>,
}

fn read_user_config(path: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    // Someone else's file could list anything as safe.
    let owned = std::fs::metadata(path)
        .is_ok_and(|meta| meta.uid() == 0 || Some(meta.uid()) == current_uid());
    if !owned {
        return Vec::new();
    }
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| toml::from_str::<UserConfig>(&text).ok())
        .map(|config| config.safe_directories)
        .unwrap_or_default()
}

/// The effective uid of this process: the owner of `/proc/self` on Linux,
/// else the owner of a file it creates. `None` when neither works, which
/// trusts only root's files.
fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata("/proc/self") {
        return Some(meta.uid());
    }
    let probe = tempfile::NamedTempFile::new().ok()?;
    probe.as_file().metadata().ok().map(|m| m.uid())
}

/// `uid N (name)`, with the name from `/etc/passwd` when it has one.
pub fn describe_uid(uid: u32) -> String {
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id = fields.nth(1)?.parse::<u32>().ok()?;
                (id == uid).then(|| name.to_owned())
            })
        });
    match name {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}
