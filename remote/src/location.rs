//! Where a remote is: a URL (`s3://bucket/prefix` or `file:///path`) and
//! the connection settings that go with it.

use std::path::PathBuf;

/// A parsed remote URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An S3 bucket (or an S3-compatible server's), with a key prefix that
    /// may be empty. Keys are `<prefix>/packs/…` and `<prefix>/refs/…`.
    S3 {
        /// The bucket name.
        bucket: String,
        /// The key prefix, without leading or trailing `/`.
        prefix: String,
    },
    /// A directory on a mounted file system (a NAS, a USB disk).
    File {
        /// The absolute path of the directory.
        root: PathBuf,
    },
}

/// Connection settings beside the URL. Credentials are never kept here:
/// they come from the environment and AWS's profile files when the remote
/// is opened (see `crate::transport`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The endpoint of an S3-compatible server (`http://127.0.0.1:9000`);
    /// `None` for AWS itself (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// The region (otherwise `AWS_REGION`, the profile's, or `us-east-1`).
    pub region: Option<String>,
}

/// Why a URL names no remote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid remote URL '{url}': {reason}")]
pub struct UrlError {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Location {
    /// Parses `s3://bucket[/prefix]` or `file:///absolute/path`.
    pub fn parse(url: &str) -> Result<Location, UrlError> {
        let invalid = |reason| UrlError {
            url: url.to_owned(),
            reason,
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("the bucket name is missing (s3://BUCKET/PREFIX)"));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|part| part == "." || part == "..") || prefix.contains("//") {
                return Err(invalid("the prefix has an empty, '.' or '..' component"));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(invalid(
                    "a file URL needs an absolute path (file:///path/to/dir)",
                ));
            }
            let root = url::Url::parse(url)
                .ok()
                .and_then(|parsed| parsed.to_file_path().ok())
                .ok_or_else(|| invalid("the path is not a valid file URL"))?;
            return Ok(Location::File { root });
        }
        Err(invalid("expected s3://BUCKET/PREFIX or file:///PATH"))
    }

    /// A short name for messages: the URL without credentials or settings.
    pub fn describe(&self) -> String {
        match self {
            Location::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Location::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
            Location::File { root } => format!("file://{}", root.display()),
        }
    }

    /// The last component of the URL's path (or the bucket), which `clone`
    /// names a new directory after, as git names one after the repository.
    pub fn basename(&self) -> Option<String> {
        match self {
            Location::S3 { bucket, prefix } => Some(
                prefix
                    .rsplit('/')
                    .find(|part| !part.is_empty())
                    .unwrap_or(bucket)
                    .to_owned(),
            ),
            Location::File { root } => root
                .file_name()
                .map(|name| name.to_string_lossy().into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_and_file_urls() {
        assert_eq!(
            Location::parse("s3://backups/team/webui/").unwrap(),
            Location::S3 {
                bucket: "backups".into(),
                prefix: "team/webui".into()
            }
        );
        assert_eq!(
            Location::parse("s3://backups").unwrap(),
            Location::S3 {
                bucket: "backups".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse("file:///mnt/nas/migsnap").unwrap(),
            Location::File {
                root: "/mnt/nas/migsnap".into()
            }
        );
        assert_eq!(
            Location::parse("s3://b/x/y").unwrap().basename().as_deref(),
            Some("y")
        );
    }

    #[test]
    fn refuses_other_urls() {
        for url in [
            "s3:///prefix",
            "file://relative/dir",
            "https://example.com/x",
            "s3://b/../x",
            "/plain/path",
        ] {
            assert!(Location::parse(url).is_err(), "{url}");
        }
    }
}
