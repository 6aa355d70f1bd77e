//! Naming snapshots the way git names commits.
//!
//! Grammar: `BASE SUFFIX*`, where
//! - `BASE` is `HEAD` (or `@`), a database name (its latest snapshot), a tag,
//!   a full ref name (`heads/webui`, `tags/v1`), a remote-tracking ref
//!   without its `remotes/` (`origin/heads/webui`, or `origin/webui` for a
//!   head), or a hex prefix of at least 4 digits of a snapshot id;
//! - `SUFFIX` is `~N` (N first parents back, `~` = `~1`), `^N` (the N-th
//!   parent, `^` = `^1`) or `@{N}` (the value the ref had N moves ago, from the
//!   reflog; only directly after a ref, or alone for HEAD).
//!
//! Names are tried in that order, so a tag that looks like hex wins over a
//! prefix, as in git.

use migsnap_store::id::Prefix;
use migsnap_store::{Kind, ObjectId, PrefixResolution, RefName, View};

use crate::repo::{Repo, RepoError, Tracked};

/// Why a revision does not name a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum RevError {
    /// Syntax error.
    #[error("malformed revision '{spec}': {reason}")]
    Malformed {
        /// The revision as given.
        spec: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Nothing is called that.
    #[error("unknown revision '{spec}'")]
    Unknown {
        /// The revision as given.
        spec: String,
    },
    /// A prefix names several snapshots.
    #[error("revision '{spec}' is ambiguous: {} snapshots start with it", candidates.len())]
    Ambiguous {
        /// The revision as given.
        spec: String,
        /// The snapshots it could mean.
        candidates: Vec<ObjectId>,
    },
    /// `~N` or `^N` walks past the first snapshot.
    #[error("revision '{spec}' goes back further than the history of {from:.12}")]
    NoSuchAncestor {
        /// The revision as given.
        spec: String,
        /// Where the walk started.
        from: ObjectId,
    },
    /// `@{N}` goes back further than the reflog.
    #[error("revision '{spec}': the reflog of {name} has only {len} entries")]
    NoSuchReflogEntry {
        /// The revision as given.
        spec: String,
        /// The ref.
        name: RefName,
        /// How many entries there are.
        len: usize,
    },
    /// The database that `HEAD` refers to could not be chosen.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
}

/// A revision, parsed: where to start and how to walk from there. Parsing
/// needs no store, so a malformed revision is refused before any name is
/// looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevSpec {
    /// The name to start from: `HEAD` or `@`, a database, a tag, a ref or a
    /// hex prefix. Empty only before `@{N}` alone, which means `HEAD`.
    pub base: String,
    /// `@{N}`: the value the base's ref had N moves ago.
    pub reflog: Option<usize>,
    /// The `~N` and `^N` suffixes, in order.
    pub steps: Vec<RevStep>,
}

/// One suffix of a revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevStep {
    /// `~N`: N first parents back (`~` is `~1`).
    Ancestor(usize),
    /// `^N`: the N-th parent (`^` is `^1`; `^0` is the snapshot itself).
    Parent(usize),
}

impl RevSpec {
    /// Parses `spec` by the grammar in the module documentation.
    pub fn parse(spec: &str) -> Result<RevSpec, RevError> {
        let malformed = |reason| RevError::Malformed {
            spec: spec.to_owned(),
            reason,
        };
        let base_end = spec.find(['~', '^']).unwrap_or(spec.len());
        let (base, suffixes) = spec.split_at(base_end);
        let (base, reflog) = match base.find("@{") {
            Some(at) => {
                let number = base[at + 2..]
                    .strip_suffix('}')
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| malformed("expected @{N} with a number N"))?;
                (&base[..at], Some(number))
            }
            None => (base, None),
        };
        if base.is_empty() && reflog.is_none() {
            return Err(malformed("empty revision"));
        }
        let mut steps = Vec::new();
        let mut rest = suffixes;
        while let Some(op) = rest.chars().next() {
            rest = &rest[op.len_utf8()..];
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let count = match &rest[..digits] {
                "" => 1,
                n => n
                    .parse::<usize>()
                    .map_err(|_| malformed("number too large"))?,
            };
            rest = &rest[digits..];
            steps.push(match op {
                '~' => RevStep::Ancestor(count),
                '^' => RevStep::Parent(count),
                _ => return Err(malformed("expected ~N or ^N after the name")),
            });
        }
        Ok(RevSpec {
            base: base.to_owned(),
            reflog,
            steps,
        })
    }
}

/// Resolves `spec` to a snapshot id. `HEAD` means the head of `db`, or of
/// the only tracked database when `db` is `None`.
pub fn resolve(repo: &Repo, spec: &str, db: Option<&Tracked>) -> Result<ObjectId, RevError> {
    let parsed = RevSpec::parse(spec)?;
    let view = repo.store.view();
    let base = parsed.base.as_str();
    let mut id = match parsed.reflog {
        Some(n) => {
            let name = base_ref(repo, view, if base.is_empty() { "HEAD" } else { base }, db)?
                .ok_or_else(|| RevError::Unknown {
                    spec: spec.to_owned(),
                })?;
            nth_reflog(view, spec, &name, n)?
        }
        None => resolve_base(repo, view, spec, base, db)?,
    };
    for step in parsed.steps {
        id = match step {
            RevStep::Ancestor(count) => {
                let mut current = id;
                for _ in 0..count {
                    current = nth_parent(view, spec, current, id, 1)?;
                }
                current
            }
            RevStep::Parent(0) => id,
            RevStep::Parent(n) => nth_parent(view, spec, id, id, n)?,
        };
    }
    view.read_snapshot(&id)?;
    Ok(id)
}

/// The ref a base name stands for, if it names one.
fn base_ref(
    repo: &Repo,
    view: View<'_>,
    base: &str,
    db: Option<&Tracked>,
) -> Result<Option<RefName>, RevError> {
    if base == "HEAD" || base == "@" {
        let tracked = match db {
            Some(db) => db.clone(),
            None => repo.select(None)?,
        };
        return Ok(Some(tracked.head_ref()));
    }
    // A database's head by its name, tracked or not: a store made by
    // `clone` tracks nothing, and `checkout webui` should work there too.
    // Candidates that are no valid ref name are skipped below.
    let mut candidates = vec![format!("tags/{base}"), format!("heads/{base}")];
    candidates.push(base.to_owned());
    // Remote-tracking refs, as git names them: `origin/heads/webui` for
    // `remotes/origin/heads/webui`, and `origin/webui` for its head.
    candidates.push(format!("remotes/{base}"));
    if let Some((remote, name)) = base.split_once('/').filter(|(_, n)| !n.contains('/')) {
        candidates.push(format!("remotes/{remote}/heads/{name}"));
    }
    for candidate in candidates {
        let Ok(name) = RefName::new(candidate) else {
            continue;
        };
        if view.find_ref(&name)?.is_some() {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

fn resolve_base(
    repo: &Repo,
    view: View<'_>,
    spec: &str,
    base: &str,
    db: Option<&Tracked>,
) -> Result<ObjectId, RevError> {
    if let Some(name) = base_ref(repo, view, base, db)? {
        return view.find_ref(&name)?.ok_or_else(|| RevError::Unknown {
            spec: spec.to_owned(),
        });
    }
    let Ok(prefix) = base.parse::<Prefix>() else {
        return Err(RevError::Unknown {
            spec: spec.to_owned(),
        });
    };
    match view.resolve_prefix(&prefix, Kind::Snapshot)? {
        PrefixResolution::One(id) => Ok(id),
        PrefixResolution::None => Err(RevError::Unknown {
            spec: spec.to_owned(),
        }),
        PrefixResolution::Ambiguous(candidates) => Err(RevError::Ambiguous {
            spec: spec.to_owned(),
            candidates,
        }),
    }
}

fn nth_parent(
    view: View<'_>,
    spec: &str,
    id: ObjectId,
    from: ObjectId,
    n: usize,
) -> Result<ObjectId, RevError> {
    view.read_snapshot(&id)?
        .parents
        .get(n - 1)
        .copied()
        .ok_or_else(|| RevError::NoSuchAncestor {
            spec: spec.to_owned(),
            from,
        })
}

fn nth_reflog(view: View<'_>, spec: &str, name: &RefName, n: usize) -> Result<ObjectId, RevError> {
    let log = view.reflog(Some(name))?;
    log.iter()
        .rev()
        .filter_map(|entry| entry.new)
        .nth(n)
        .ok_or_else(|| RevError::NoSuchReflogEntry {
            spec: spec.to_owned(),
            name: name.clone(),
            len: log.len(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(spec: &str) -> (String, Option<usize>, Vec<RevStep>) {
        let parsed = RevSpec::parse(spec).unwrap();
        (parsed.base, parsed.reflog, parsed.steps)
    }

    fn malformed(spec: &str) -> &'static str {
        match RevSpec::parse(spec) {
            Err(RevError::Malformed { reason, spec: s }) => {
                assert_eq!(s, spec);
                reason
            }
            other => panic!("{spec}: expected malformed, got {other:?}"),
        }
    }

    #[test]
    fn names_alone_are_a_base_without_steps() {
        for name in [
            "HEAD",
            "@",
            "app",
            "tags/v1",
            "heads/webui",
            "abcd1234",
            "a..b",
        ] {
            assert_eq!(parsed(name), (name.to_owned(), None, vec![]));
        }
    }

    #[test]
    fn suffixes_are_steps_in_order_with_default_counts() {
        use RevStep::{Ancestor, Parent};
        assert_eq!(parsed("HEAD~"), ("HEAD".into(), None, vec![Ancestor(1)]));
        assert_eq!(
            parsed("HEAD~3^2"),
            ("HEAD".into(), None, vec![Ancestor(3), Parent(2)])
        );
        assert_eq!(
            parsed("v1^^0~10"),
            ("v1".into(), None, vec![Parent(1), Parent(0), Ancestor(10)])
        );
    }

    #[test]
    fn reflog_follows_a_ref_or_stands_alone_for_head() {
        assert_eq!(parsed("app@{2}"), ("app".into(), Some(2), vec![]));
        assert_eq!(
            parsed("@{1}~2"),
            (String::new(), Some(1), vec![RevStep::Ancestor(2)])
        );
    }

    #[test]
    fn malformed_revisions_say_why() {
        assert_eq!(malformed(""), "empty revision");
        assert_eq!(malformed("~1"), "empty revision");
        assert_eq!(malformed("^"), "empty revision");
        assert_eq!(malformed("@{x}"), "expected @{N} with a number N");
        assert_eq!(malformed("app@{1"), "expected @{N} with a number N");
        assert_eq!(malformed("app@{1}x"), "expected @{N} with a number N");
        assert_eq!(malformed("HEAD~99999999999999999999"), "number too large");
        assert_eq!(malformed("HEAD~1x"), "expected ~N or ^N after the name");
        assert_eq!(malformed("HEAD^2é"), "expected ~N or ^N after the name");
    }
}
