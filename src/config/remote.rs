//! `[remotes.NAME]` of `.migsnap/config.toml`: where a remote is, written by
//! `migsnap remote add`.

use serde::{Deserialize, Serialize};

/// One remote's settings. Credentials are never stored here: they come from
/// the environment and the AWS profile files when the remote is used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// `s3://bucket/prefix` or `file:///path`.
    pub url: String,
    /// The endpoint of an S3-compatible server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The S3 region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The key file of an encrypted remote, relative to the store
    /// directory (`keys/NAME.key`) unless absolute. Never uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<std::path::PathBuf>,
}
