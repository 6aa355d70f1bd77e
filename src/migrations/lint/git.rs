//! What lint asks git, with the `git` command line (no libgit2: every
//! machine that has the repository has `git`): the revision graph as it was
//! at a commit (`lint --base GITREF`), the files staged in the index
//! (`lint --staged`), and whether `HEAD` has a file (`lint --since head`).
//!
//! With `--base`, a revision is new when its id is not in that graph. That is the set of
//! revision files added since the commit (`git diff --diff-filter=A`), plus
//! files not yet committed or staged, which a diff would miss; and a renamed
//! file keeps its id, so it is not new.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::LintError;
use crate::migrations::history::graph::{self, Graph, Revision};
use crate::migrations::history::revision_file;
use crate::migrations::history::revision_id::RevisionId;

/// Reads the revision files under `dirs` as they were at `gitref` and
/// builds their graph. `recursive` follows Alembic's
/// `recursive_version_locations`: without it only files directly in a
/// directory count.
pub fn graph_at(
    root: &Path,
    gitref: &str,
    dirs: &[PathBuf],
    recursive: bool,
) -> Result<Graph, LintError> {
    let toplevel = toplevel(root)?;
    if git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{gitref}^{{commit}}"),
        ],
    )
    .is_err()
    {
        return Err(LintError::BadRef {
            gitref: gitref.to_owned(),
            root: toplevel,
        });
    }
    // git names files relative to the top level, with symlinks resolved.
    let relative: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|dir| {
            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
            dir.strip_prefix(&toplevel).ok().map(Path::to_path_buf)
        })
        .collect();
    let mut args = vec!["ls-tree", "-r", "--name-only", "--full-name", gitref, "--"];
    let shown: Vec<String> = relative
        .iter()
        .map(|d| {
            let text = d.to_string_lossy().into_owned();
            if text.is_empty() {
                ".".to_owned()
            } else {
                text
            }
        })
        .collect();
    args.extend(shown.iter().map(String::as_str));
    let listing = git(&toplevel, &args)?;

    let mut revisions = Vec::new();
    for name in listing.lines() {
        let path = Path::new(name);
        let in_dir = relative.iter().any(|dir| {
            path.strip_prefix(dir)
                .is_ok_and(|rest| recursive || rest.components().count() == 1)
        });
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default();
        // The same files Alembic would load (see `Project::load_graph`).
        if !in_dir
            || !file_name.ends_with(".py")
            || file_name.starts_with("__init__")
            || file_name.starts_with(".#")
        {
            continue;
        }
        let bytes = git_bytes(&toplevel, &["show", &format!("{gitref}:{name}")])?;
        if let Some(revision) = revision_of(&bytes, toplevel.join(name)) {
            revisions.push(revision);
        }
    }
    Ok(Graph::build(revisions, Vec::new()))
}

/// The files staged in git's index as added or modified, under the
/// repository that holds `root`: what `lint --staged` reviews, for a
/// pre-commit hook. Paths are absolute and canonical.
pub fn staged(root: &Path) -> Result<BTreeSet<PathBuf>, LintError> {
    let toplevel = toplevel(root)?;
    let listing = git(
        &toplevel,
        &["diff", "--cached", "--name-only", "--diff-filter=AM", "-z"],
    )?;
    Ok(listing
        .split('\0')
        .filter(|name| !name.is_empty())
        .map(|name| {
            let path = toplevel.join(name);
            std::fs::canonicalize(&path).unwrap_or(path)
        })
        .collect())
}

/// Whether git's `HEAD` commit has the file at `path` (any version of
/// it). `false` as well when git or a repository is missing: the caller
/// only learns that the file is not known to be committed.
pub fn committed(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    let spec = format!("HEAD:./{}", name.to_string_lossy());
    git_bytes(dir, &["cat-file", "-e", &spec]).is_ok()
}

/// The top level of the git work tree holding `root`.
fn toplevel(root: &Path) -> Result<PathBuf, LintError> {
    match git(root, &["rev-parse", "--show-toplevel"]) {
        Ok(text) => Ok(PathBuf::from(text.trim_end())),
        Err(LintError::Git { stderr, .. }) => Err(LintError::NotARepository {
            root: root.to_path_buf(),
            stderr,
        }),
        Err(other) => Err(other),
    }
}

/// The revision a file declared at the base. A file that does not parse is
/// left out: the base only tells which revisions existed and which were
/// heads, and the current graph reports unreadable files itself.
fn revision_of(bytes: &[u8], path: PathBuf) -> Option<Revision> {
    let file = revision_file::parse(&String::from_utf8_lossy(bytes)).ok()?;
    let id = file.revision.clone().or(file.header_revision.clone())?;
    Some(Revision {
        id: id.into(),
        parents: file
            .down_revision
            .parents()
            .into_iter()
            .map(RevisionId::from)
            .collect(),
        depends_on: file.depends_on,
        branch_labels: file.branch_labels,
        path,
        file_hash: graph::file_hash(bytes),
        message: file.message,
        data_steps: file.data_steps,
    })
}

/// Runs `git -C dir ARGS` and returns its stdout as text.
fn git(dir: &Path, args: &[&str]) -> Result<String, LintError> {
    git_bytes(dir, args).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Runs `git -C dir ARGS` and returns its stdout.
fn git_bytes(dir: &Path, args: &[&str]) -> Result<Vec<u8>, LintError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(LintError::GitMissing)?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(LintError::Git {
            command: format!("git {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}
