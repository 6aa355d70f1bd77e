//! migsnap: Git-style, content-addressed snapshots of SQLite databases.
//!
//! The engine lives here; `cli` only parses, calls and renders. The object
//! store underneath is the `migsnap_store` crate, which knows nothing about
//! SQL.

// `deny`, not `forbid`: one module, `snapshots::raw_pages`, reads pages
// through SQLite's own file handles (see its documentation).
#![deny(unsafe_code)]

pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod duration;
pub mod finding;
#[cfg(test)]
mod fixtures;
pub mod migrations;
pub mod policy;
pub mod remotes;
pub mod repo;
pub mod schema;
pub mod snapshots;
pub mod timestamp;
pub mod trust;
