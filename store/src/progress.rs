//! Progress reporting for long operations, without printing: the caller
//! decides how (or whether) to show it.

/// Receives progress of a long operation.
pub trait Progress {
    /// Announces what is being done and how many units it will take.
    fn start(&mut self, what: &str, total: u64);
    /// Reports `units` more done.
    fn advance(&mut self, units: u64);
    /// The current step is over.
    fn finish(&mut self);
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _what: &str, _total: u64) {}
    fn advance(&mut self, _units: u64) {}
    fn finish(&mut self) {}
}
