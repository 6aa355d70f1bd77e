//! `migsnap man [--out DIR]`: manual pages in roff, generated from the same
//! clap definitions that parse the command line, so the pages never
//! disagree with `--help`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_mangen::Man;
use serde::Serialize;

use super::{Cli, CliError, Ctx, Status};

/// Print the manual page of migsnap (roff) on stdout, or with --out write
/// it and one page per subcommand (migsnap-snapshot.1 and so on) into DIR, which
/// is created if missing. View one with `man -l migsnap.1`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write `migsnap.1` and every subcommand's page into this directory
    /// (e.g. ~/.local/share/man/man1) and list the files written.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// A page that could not be written: the file or directory named, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}", path.display())]
pub struct WriteError {
    /// The page, or the directory that could not be created.
    pub path: PathBuf,
    /// What the system said.
    #[source]
    pub source: std::io::Error,
}

/// The JSON document: the directory and the pages written into it, or, with
/// no `--out`, the one page printed (`dir` null, the page in `roff`).
#[derive(Serialize)]
struct ManReport {
    dir: Option<PathBuf>,
    files: Vec<String>,
    roff: Option<String>,
}

/// One rendered page: its file name (`migsnap-snapshot.1`) and its roff.
struct Page {
    file: String,
    roff: String,
}

/// Runs `migsnap man`.
pub fn run(args: ManArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let root = root();
    let Some(dir) = args.out else {
        let page = render(&root);
        if ctx.out.is_json() {
            ctx.out.json(&ManReport {
                dir: None,
                files: vec![page.file],
                roff: Some(page.roff),
            })?;
        } else {
            // The page is the result, so `-q` keeps it.
            ctx.out.verdict(page.roff.trim_end_matches('\n'))?;
        }
        return Ok(Status::Ok);
    };
    let mut pages = Vec::new();
    collect(&root, &mut pages);
    let files = write_all(&dir, &pages)?;
    if ctx.out.is_json() {
        ctx.out.json(&ManReport {
            dir: Some(dir),
            files,
            roff: None,
        })?;
    } else {
        for file in &files {
            ctx.out.line(&dir.join(file).display().to_string())?;
        }
    }
    Ok(Status::Ok)
}

/// The whole command tree, built so that every subcommand knows its full
/// name (`migsnap-snapshot`, which names its page), without the `help`
/// subcommand, which has no page of its own.
fn root() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The page of `cmd`.
fn render(cmd: &clap::Command) -> Page {
    let man = Man::new(cmd.clone());
    let mut roff = Vec::new();
    man.render(&mut roff)
        .expect("holds: rendering into memory cannot fail");
    Page {
        file: man.get_filename(),
        roff: String::from_utf8(roff).expect("holds: roff is rendered from UTF-8 strings"),
    }
}

/// The pages of `cmd` and of every visible subcommand under it, parents
/// first.
fn collect(cmd: &clap::Command, pages: &mut Vec<Page>) {
    pages.push(render(cmd));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, pages);
    }
}

/// Writes `pages` into `dir` (created if missing) and returns their names.
fn write_all(dir: &Path, pages: &[Page]) -> Result<Vec<String>, WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError {
        path: dir.to_owned(),
        source,
    })?;
    pages
        .iter()
        .map(|page| {
            let path = dir.join(&page.file);
            std::fs::write(&path, &page.roff).map_err(|source| WriteError { path, source })?;
            Ok(page.file.clone())
        })
        .collect()
}
