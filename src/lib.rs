//! migsnap: Git-style, content-addressed snapshots of SQLite databases.
//!
//! The engine lives here; `cli` only parses, calls and renders. The object
//! store underneath is the `migsnap_store` crate, which knows nothing about
//! SQL.

#![forbid(unsafe_code)]

pub mod bisect;
pub mod cli;
pub mod config;
pub mod datadiff;
pub mod drift;
pub mod duration;
pub mod finding;
#[cfg(test)]
mod fixtures;
pub mod guard;
pub mod history;
pub mod image;
pub mod lint;
pub mod log;
pub mod policy;
pub mod repair;
pub mod replay;
pub mod repo;
pub mod restore;
pub mod retention;
pub mod revision;
pub mod roundtrip;
pub mod schema;
pub mod side;
pub mod snapshot;
pub mod sqlite;
pub mod stamp;
pub mod tag;
pub mod trust;
pub mod usage;
pub mod workspace;
