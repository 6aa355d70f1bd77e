//! What a migration workflow works on: the repository, the migration project
//! with its graph and reference chain ([`Workspace`]), the database file it
//! is about (found from a tracked database, a path, or the URL that
//! `DATABASE_URL` or Alembic's `sqlalchemy.url` names). The revisions it
//! targets are a [`Targets`](crate::migrations::history::targets::Targets).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::migrations::history::graph::Graph;
use crate::migrations::history::project::{HistoryError, MigrationKind, Project};
use crate::migrations::replay::{Chain, Replayer};
use crate::repo::{Repo, Tracked, absolute};

/// A migration project opened for a workflow.
pub struct Workspace {
    /// The repository (store and configuration).
    pub repo: Repo,
    /// The project.
    pub project: Project,
    /// Its revision graph.
    pub graph: Graph,
    /// Where its references live.
    pub chain: Chain,
    /// The tracked database the workflow is about, if it is a tracked one.
    pub tracked: Option<Tracked>,
}

impl Workspace {
    /// Opens the migration project of `db_arg` (a tracked name or a path;
    /// `None`: the only tracked database, if any) from `cwd`; `config` and
    /// `section` override the ini file and section, as `alembic -c` and
    /// `-n` do.
    pub fn open(
        repo: Repo,
        cwd: &Path,
        db_arg: Option<&str>,
        config: Option<&Path>,
        section: Option<&str>,
    ) -> Result<Workspace, HistoryError> {
        // A path that is not tracked is fine here: it is the database, and
        // the project's own settings apply.
        let tracked = repo.select(db_arg).ok();
        let mut settings = repo.migrations_for(tracked.as_ref());
        if let Some(config) = config {
            settings.config = Some(absolute(&cwd.join(config)));
        }
        if let Some(section) = section {
            settings.section = Some(section.to_owned());
        }
        let project = Project::discover(repo.root(), cwd, &settings)?;
        let graph = project.load_graph()?;
        Ok(Workspace {
            chain: chain_for(&repo, tracked.as_ref(), &project),
            repo,
            project,
            graph,
            tracked,
        })
    }

    /// What a workflow works with, borrowed together: the repository to
    /// record in, a replayer for the project's reference chain, and the
    /// graph.
    pub fn parts(&mut self) -> (&mut Repo, Replayer<'_>, &Graph) {
        let replayer = Replayer::new(&self.project, &self.graph, self.chain.clone());
        (&mut self.repo, replayer, &self.graph)
    }

    /// A replayer for the project's reference chain, for workflows that
    /// only read the repository.
    pub fn replayer(&self) -> Replayer<'_> {
        Replayer::new(&self.project, &self.graph, self.chain.clone())
    }

    /// The project in brief, for reports.
    pub fn summary(&self) -> ProjectSummary {
        ProjectSummary {
            kind: self.project.kind,
            root: self.project.root.clone(),
            version_locations: self.project.version_dirs(),
            revisions: self.graph.len(),
        }
    }

    /// The database file the workflow is about: see [`find_database`].
    pub fn database(&self, db_arg: Option<&str>) -> Result<PathBuf, DatabaseError> {
        find_database(self.tracked.as_ref(), db_arg, &self.project)
    }
}

/// A migration project in brief: what `status` and `report` say about it.
#[derive(Clone, Debug, Serialize)]
pub struct ProjectSummary {
    /// Alembic or a SQL folder.
    pub kind: MigrationKind,
    /// Where its commands run.
    pub root: PathBuf,
    /// Where its revision files are.
    pub version_locations: Vec<PathBuf>,
    /// How many revisions it has.
    pub revisions: usize,
}

/// Where the references of `project`, opened for `tracked`, live: the
/// chain of `tracked`'s name when it has migration settings of its own,
/// else the default one; within it, a namespace of `project`'s own unless
/// it is the project those settings find at the repository root (see
/// [`Chain::of_project`]).
pub fn chain_for(repo: &Repo, tracked: Option<&Tracked>, project: &Project) -> Chain {
    let name = match tracked {
        Some(t) if t.migrations.is_some() => t.name.as_str(),
        _ => "default",
    };
    let identity = project.identity(repo.root());
    if home_identity(repo, tracked).as_deref() == Some(identity.as_str()) {
        Chain::new(name)
    } else {
        Chain::of_project(name, &identity)
    }
}

/// Whether the tracked database `db` belongs to `project`: its settings
/// find `project` at the repository root, or find none there (then it
/// cannot be told, and it counts, as it did before projects were told
/// apart). A database whose settings find another project does not:
/// two projects may reuse revision ids.
pub fn belongs(repo: &Repo, db: &Tracked, project: &Project) -> bool {
    home_identity(repo, Some(db)).is_none_or(|home| home == project.identity(repo.root()))
}

/// The identity of the project `tracked`'s migration settings (or the
/// repository's) find from the repository root, if they find one.
fn home_identity(repo: &Repo, tracked: Option<&Tracked>) -> Option<String> {
    let root = repo.root();
    Project::discover(root, root, &repo.migrations_for(tracked))
        .ok()
        .map(|home| home.identity(root))
}
use crate::snapshots::sqlite::{SqliteError, check_file};

/// Why no database file was found.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The file named is not a readable SQLite database.
    #[error(transparent)]
    File(#[from] SqliteError),
    /// None is tracked, none was named, and no URL names an existing SQLite
    /// file.
    #[error("which database? none is tracked and none was named{}", tried(.urls))]
    NotFound {
        /// The URL settings that were tried (`DATABASE_URL`,
        /// `sqlalchemy.url`).
        urls: Vec<&'static str>,
    },
}

fn tried(urls: &[&str]) -> String {
    match urls {
        [] => String::new(),
        [one] => format!(" ({one} names no existing SQLite file)"),
        _ => " (DATABASE_URL and sqlalchemy.url name no existing SQLite file)".to_owned(),
    }
}

/// The database file a command is about: `tracked`'s file, else `named` (a
/// path), else the one `DATABASE_URL` or the Alembic configuration's
/// `sqlalchemy.url` names when it is a SQLite file that exists (relative
/// paths against the project root).
pub fn find_database(
    tracked: Option<&Tracked>,
    named: Option<&str>,
    project: &Project,
) -> Result<PathBuf, DatabaseError> {
    if let Some(tracked) = tracked {
        return Ok(tracked.path.clone());
    }
    if let Some(arg) = named {
        let path = Path::new(arg);
        check_file(path)?;
        return Ok(absolute(path));
    }
    let mut urls: Vec<(&'static str, String)> = Vec::new();
    if let Ok(url) = std::env::var("DATABASE_URL") {
        urls.push(("DATABASE_URL", url));
    }
    if let Some(url) = project
        .alembic
        .as_ref()
        .and_then(|a| a.sqlalchemy_url.clone())
    {
        urls.push(("sqlalchemy.url", url));
    }
    for (_, url) in &urls {
        if let Some(path) = sqlite_path(url, &project.root)
            && path.is_file()
        {
            check_file(&path)?;
            return Ok(path);
        }
    }
    Err(DatabaseError::NotFound {
        urls: urls.into_iter().map(|(name, _)| name).collect(),
    })
}

/// The file of a `sqlite:///…` URL (relative paths against `root`).
fn sqlite_path(url: &str, root: &Path) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite:///")
        .or_else(|| url.strip_prefix("sqlite+pysqlite:///"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() || rest == ":memory:" {
        return None;
    }
    Some(root.join(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_files_against_the_root() {
        let root = Path::new("/p");
        assert_eq!(
            sqlite_path("sqlite:///app.db?mode=ro", root),
            Some(PathBuf::from("/p/app.db"))
        );
        assert_eq!(
            sqlite_path("sqlite+pysqlite:////abs/x.db", root),
            Some(PathBuf::from("/abs/x.db"))
        );
        assert_eq!(sqlite_path("sqlite:///:memory:", root), None);
        assert_eq!(sqlite_path("postgresql://h/db", root), None);
    }
}
