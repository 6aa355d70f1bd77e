//! Snapshots of databases: reading SQLite files safely, recording their
//! schema and pages as snapshots, naming (`revspec`, `tag`), listing
//! (`log`), listing and repairing refs (`refs`), comparing data (`datadiff`), restoring and forgetting them.

pub mod datadiff;
pub mod log;
mod page_batches;
pub mod page_sums;
pub mod pages;
#[allow(unsafe_code)]
mod raw_pages;
pub mod refs;
pub mod restore;
pub mod retention;
pub mod revspec;
pub mod snapshot;
pub mod sqlite;
pub mod tag;
pub mod usage;
