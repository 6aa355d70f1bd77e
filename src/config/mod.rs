//! Configuration types: what `migsnap.toml` can say, as plain data.
//!
//! The bottom layer: every other module may read these types, and this
//! module imports none of them, so a setting for one area (lint, verdicts)
//! never makes the history or the store depend on that area's code. Loading
//! and validating the file is [`crate::repo`]'s job; what the settings mean
//! is each area's.

pub mod check;
pub mod findings;
pub mod lint;
pub mod migrations;
pub mod remote;
pub mod replay;
