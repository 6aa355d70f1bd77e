//! `migsnap track`: start tracking a database under a name, or list them.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CliError, Ctx, Status};
use crate::repo::Tracked;

/// Track a database under NAME, or list tracked databases when called with no
/// arguments.
#[derive(Debug, clap::Args)]
pub struct TrackArgs {
    /// The name used in revisions (`NAME~2`) and refs.
    #[arg(requires = "path")]
    name: Option<String>,
    /// Path of the SQLite file.
    path: Option<PathBuf>,
}

/// One tracked database in JSON (`track`, `init --track`).
#[derive(Serialize)]
pub(super) struct DatabaseEntry<'a> {
    name: &'a str,
    path: &'a Path,
}

impl<'a> From<&'a Tracked> for DatabaseEntry<'a> {
    fn from(tracked: &'a Tracked) -> Self {
        Self {
            name: &tracked.name,
            path: &tracked.path,
        }
    }
}

/// `track --format json`: every tracked database.
#[derive(Serialize)]
struct TrackDocument<'a> {
    databases: Vec<DatabaseEntry<'a>>,
}

pub fn run(args: TrackArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    if let (Some(name), Some(path)) = (&args.name, &args.path) {
        crate::snapshots::sqlite::check_file(path)?;
        repo.track(name, path)?;
    }
    let all: Vec<_> = repo.databases().cloned().collect();
    if ctx.out.is_json() {
        ctx.out.json(&TrackDocument {
            databases: all.iter().map(DatabaseEntry::from).collect(),
        })?;
    } else {
        for t in &all {
            ctx.out.line(&format!("{}\t{}", t.name, t.path.display()))?;
        }
    }
    Ok(Status::Ok)
}
