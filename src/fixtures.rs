//! Fixtures for engine tests: a real store and a SQL-folder project, whose
//! migrations replay in-process, so the workflows run without Python.

use std::path::PathBuf;

use rusqlite::Connection;

use crate::migrations::history::graph::Graph;
use crate::migrations::history::project::Project;
use crate::repo::Repo;

/// The first migration's schema.
pub const INIT: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);";

/// A store and a project of two migrations in a temporary directory:
/// `0001` creates `t`, `0002` adds `t.x`. `app.db` has `0001`'s schema and
/// is not tracked.
pub struct SqlProject {
    /// The directory; removed on drop.
    pub dir: tempfile::TempDir,
    /// The store at `.migsnap`.
    pub repo: Repo,
    /// The project.
    pub project: Project,
    /// Its history.
    pub graph: Graph,
    /// `app.db`.
    pub db: PathBuf,
}

impl SqlProject {
    /// Writes the project and the database, and opens them.
    pub fn new() -> SqlProject {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sql")).unwrap();
        std::fs::write(root.join("sql/0001_init.sql"), INIT).unwrap();
        std::fs::write(
            root.join("sql/0002_more.sql"),
            "ALTER TABLE t ADD COLUMN x INTEGER;",
        )
        .unwrap();
        std::fs::write(
            root.join("migsnap.toml"),
            "[migrations]\nkind = \"sql\"\ndir = \"sql\"\n",
        )
        .unwrap();
        let db = root.join("app.db");
        Connection::open(&db).unwrap().execute_batch(INIT).unwrap();
        let repo = Repo::init(&root.join(".migsnap")).unwrap();
        let project = Project::discover(root, root, &repo.migrations_for(None)).unwrap();
        let graph = project.load_graph().unwrap();
        SqlProject {
            dir,
            repo,
            project,
            graph,
            db,
        }
    }
}
