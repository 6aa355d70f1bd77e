//! `migsnap track`: start tracking a database under a name, or list them.

use std::path::PathBuf;

use super::{CliError, Ctx, Status};

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

pub fn run(args: TrackArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let mut repo = ctx.open_repo()?;
    if let (Some(name), Some(path)) = (&args.name, &args.path) {
        crate::snapshots::sqlite::check_file(path)?;
        repo.track(name, path)?;
    }
    let all: Vec<_> = repo.databases().cloned().collect();
    if ctx.out.is_json() {
        let list: Vec<_> = all
            .iter()
            .map(|t| serde_json::json!({"name": t.name, "path": t.path}))
            .collect();
        ctx.out.json(&serde_json::json!({ "databases": list }))?;
    } else {
        for t in &all {
            ctx.out.line(&format!("{}\t{}", t.name, t.path.display()))?;
        }
    }
    Ok(Status::Ok)
}
