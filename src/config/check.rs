//! `[check]` settings from `migsnap.toml`: what `migsnap check` keeps and
//! checks when its flags do not say.

use serde::{Deserialize, Serialize};

/// The `[check]` table.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Keep the N newest snapshots of each database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N ISO weeks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
    /// How long forgotten data stays before `gc` frees it (`14days`); the
    /// repository checks that it parses when it loads the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc_grace: Option<String>,
    /// Check the store after each run, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsck: Option<FsckLevel>,
    /// Push every head and tag to this remote at the end of each run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<String>,
}

/// How much of the store a check reads back.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FsckLevel {
    /// No store check.
    Off,
    /// The structure: every object reachable and present.
    Structure,
    /// Every object read back and re-hashed.
    ReadData,
    /// The objects of a quarter of the packs read back and re-hashed, a
    /// different quarter each week, so four weekly runs read everything.
    Sampled,
}
