//! `migsnap completions SHELL`: the shell completion script, generated from
//! the same clap definitions that parse the command line, so it never lists
//! a command or flag the binary does not have.

use clap::CommandFactory;
use clap_complete::Shell;
use serde::Serialize;

use super::{Cli, CliError, Ctx, Status};

/// Print the completion script for SHELL on stdout. Install it where the
/// shell looks, e.g. for bash:
/// `migsnap completions bash > ~/.local/share/bash-completion/completions/migsnap`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// The JSON document: the script as a string, for tools that install it.
#[derive(Serialize)]
struct CompletionsReport {
    shell: String,
    script: String,
}

/// Runs `migsnap completions`.
pub fn run(args: CompletionsArgs, ctx: &mut Ctx) -> Result<Status, CliError> {
    let script = script(args.shell);
    if ctx.out.is_json() {
        ctx.out.json(&CompletionsReport {
            shell: args.shell.to_string(),
            script,
        })?;
    } else {
        // The script is the result, so `-q` keeps it; `verdict` adds the
        // final newline back.
        ctx.out.verdict(script.trim_end_matches('\n'))?;
    }
    Ok(Status::Ok)
}

/// The completion script for `shell`, for the binary named `migsnap`.
fn script(shell: Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "migsnap", &mut buf);
    String::from_utf8(buf).expect("holds: clap writes the script from UTF-8 strings")
}
