//! `migsnap init`: create a store.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::track::DatabaseEntry;
use super::{CliError, Ctx, Status};
use crate::repo::{Repo, STORE_DIR};

/// Create an empty store (`.migsnap/` in the current directory, or --store DIR).
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Track this database right away, under its file stem.
    #[arg(long, value_name = "PATH")]
    track: Option<PathBuf>,
}

/// `init --format json`: the store, and the database tracked with it.
#[derive(Serialize)]
struct InitDocument<'a> {
    store: &'a Path,
    tracked: Option<DatabaseEntry<'a>>,
}

pub fn run(args: InitArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let dir = ctx.store.clone().unwrap_or_else(|| ctx.cwd.join(STORE_DIR));
    let mut repo = Repo::init(&dir)?;
    let tracked = match args.track {
        Some(path) => {
            crate::snapshots::sqlite::check_file(&path)?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Some(repo.track(&name, &path)?)
        }
        None => None,
    };
    if ctx.out.is_json() {
        ctx.out.json(&InitDocument {
            store: &dir,
            tracked: tracked.as_ref().map(DatabaseEntry::from),
        })?;
    } else {
        ctx.out.line(&format!(
            "Initialized empty migsnap store in {}",
            dir.display()
        ))?;
        if let Some(t) = tracked {
            ctx.out
                .line(&format!("Tracking {} as '{}'", t.path.display(), t.name))?;
        }
    }
    Ok(Status::Ok)
}
