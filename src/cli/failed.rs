//! A workflow's failure as the CLI receives it. An engine call that runs a
//! CLI callback (tracking the database it is about to write) can fail with
//! the engine's error or with the callback's; this keeps both typed until
//! the CLI turns them into one [`CliError`].

use super::CliError;

/// The engine's error `E`, or the CLI's own from a callback the engine ran.
pub enum Failed<E> {
    /// The engine's.
    Engine(E),
    /// The callback's, ready to show.
    Cli(CliError),
}

impl<E> From<E> for Failed<E> {
    fn from(error: E) -> Failed<E> {
        Failed::Engine(error)
    }
}

impl<E> Failed<E> {
    /// The error to show: the callback's as it is, the engine's through
    /// `engine` (which has the context some messages need).
    pub fn into_cli(self, engine: impl FnOnce(E) -> CliError) -> CliError {
        match self {
            Failed::Engine(e) => engine(e),
            Failed::Cli(e) => e,
        }
    }
}
