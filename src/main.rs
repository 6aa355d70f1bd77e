//! The `migsnap` binary: everything happens in `migsnap::cli`.

fn main() -> std::process::ExitCode {
    migsnap::cli::main()
}
