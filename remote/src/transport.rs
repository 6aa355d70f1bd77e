//! Reading and writing keys on a remote, over Apache Arrow's `object_store`
//! (S3 and the local file system), from sync code.
//!
//! Invariants:
//! - every call is bounded: connect and request timeouts and a small retry
//!   budget ([`CONNECT_TIMEOUT`], [`REQUEST_TIMEOUT`], [`RETRIES`]), so an
//!   unreachable endpoint fails in seconds;
//! - a ref is written only by [`Transport::put_ref`], conditionally: created
//!   only where absent, replaced only while it still has the version read.
//!   On S3 that is `If-None-Match: *` and `If-Match: <etag>`. The local file
//!   system has no `If-Match` (`object_store` refuses `PutMode::Update`
//!   there), so a file remote replaces a ref the way git does: it creates
//!   `<ref>.lock` exclusively, compares the ref's content with the content
//!   read, writes the new value into the lock file, syncs it and renames it
//!   over the ref.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, RetryConfig, UpdateVersion,
};

use crate::location::{Location, Settings};
use crate::profile;

/// How long to wait for a TCP (and TLS) connection to the endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, upload or download included (a pack is
/// at most a few MiB).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a failed request is retried (transient errors only).
pub const RETRIES: usize = 2;
/// How long a file remote's ref update waits for another push's lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long retries of one request may go on in all.
const RETRY_WINDOW: Duration = Duration::from_secs(20);

/// Why a remote operation failed, sorted by what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The endpoint did not answer: connection refused, no route, a timeout.
    #[error("remote {remote} is unreachable: {reason}")]
    Unreachable {
        /// The remote.
        remote: String,
        /// What failed, in a few words (the innermost error).
        reason: String,
    },
    /// The server refused the credentials or denied access.
    #[error("remote {remote} refused the credentials: {reason}")]
    Denied {
        /// The remote.
        remote: String,
        /// What the server said (its S3 error code and message).
        reason: String,
    },
    /// The bucket (or directory) does not exist.
    #[error("remote {remote} does not exist: {reason}")]
    Missing {
        /// The remote.
        remote: String,
        /// What the server or the file system said.
        reason: String,
    },
    /// A file remote's ref is locked by another writer, or a lock was left
    /// behind by one that died.
    #[error("ref file {path} is locked by another push")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The conditional write of a ref failed: it changed since it was read.
    #[error("ref {key} changed on remote {remote} since it was read")]
    Changed {
        /// The remote.
        remote: String,
        /// The ref's key.
        key: String,
    },
    /// Anything else the store or the file system reported.
    #[error("remote {remote}: {operation} {key} failed")]
    Failed {
        /// The remote.
        remote: String,
        /// What was being done.
        operation: &'static str,
        /// The key.
        key: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl TransportError {
    /// Whether the remote refused a write because this client may only
    /// read it: the server denied it (S3 `AccessDenied`, or credentials it
    /// refuses), or the directory of a file remote is not writable (a
    /// read-only mount, or permissions).
    pub fn is_read_only(&self) -> bool {
        match self {
            TransportError::Denied { .. } => true,
            TransportError::Failed { source, .. } => {
                let mut current: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
                while let Some(error) = current {
                    if let Some(io) = error.downcast_ref::<std::io::Error>()
                        && matches!(
                            io.kind(),
                            std::io::ErrorKind::PermissionDenied
                                | std::io::ErrorKind::ReadOnlyFilesystem
                        )
                    {
                        return true;
                    }
                    current = error.source();
                }
                false
            }
            _ => false,
        }
    }
}

/// The version of a ref as read: what a conditional replace must still find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    e_tag: Option<String>,
    version: Option<String>,
    content: Vec<u8>,
}

/// A key's bytes with its version.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// What a conditional write of the same key must still find.
    pub version: Version,
}

/// A key in a listing, relative to the remote's prefix, with its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The key, such as `packs/<hash>.idx`.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written (seconds since the Unix epoch, by the
    /// server's clock).
    pub modified: i64,
}

/// An open connection to one remote.
pub struct Transport {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
    prefix: String,
    /// The directory of a file remote, where refs are replaced under a lock.
    root: Option<PathBuf>,
    name: String,
}

impl Transport {
    /// Opens the remote at `location`. Nothing is sent yet, so an
    /// unreachable or missing remote shows on the first call.
    pub fn open(location: &Location, settings: &Settings) -> Result<Transport, TransportError> {
        let name = location.describe();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| TransportError::Failed {
                remote: name.clone(),
                operation: "start the I/O runtime for",
                key: String::new(),
                source: Box::new(source),
            })?;
        let (store, prefix, root): (Arc<dyn ObjectStore>, String, Option<PathBuf>) = match location
        {
            Location::S3 { bucket, prefix } => {
                (Arc::new(s3(bucket, settings, &name)?), prefix.clone(), None)
            }
            Location::File { root } => {
                if !root.is_dir() {
                    return Err(TransportError::Missing {
                        remote: name,
                        reason: "no such directory".into(),
                    });
                }
                let local = LocalFileSystem::new_with_prefix(root)
                    .map_err(|source| TransportError::Missing {
                        remote: name.clone(),
                        reason: summary(&source),
                    })?
                    .with_fsync(true);
                (Arc::new(local), String::new(), Some(root.clone()))
            }
        };
        Ok(Transport {
            store,
            runtime,
            prefix,
            root,
            name,
        })
    }

    /// The remote's URL, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn key(&self, key: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(key)
        } else {
            Key::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Every key under `prefix` (such as `packs/`), in no particular order.
    /// A missing bucket is [`TransportError::Missing`]: an empty one lists
    /// nothing.
    pub fn list(&self, prefix: &str) -> Result<Vec<Listed>, TransportError> {
        let full = self.key(prefix.trim_end_matches('/'));
        let skip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let listed: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(Some(&full)).try_collect())
            .map_err(|e| self.classify(e, "list", prefix, true))?;
        Ok(listed
            .into_iter()
            .map(|meta| Listed {
                key: meta.location.as_ref()[skip..].to_owned(),
                size: meta.size,
                modified: meta.last_modified.timestamp(),
            })
            .collect())
    }

    /// The bytes at `key` with their version, or `None` when absent.
    pub fn get(&self, key: &str) -> Result<Option<Fetched>, TransportError> {
        self.fetch(key, |bytes, e_tag, version| Fetched {
            version: Version {
                e_tag,
                version,
                content: bytes.clone(),
            },
            bytes,
        })
    }

    /// The bytes at `key`, which names immutable bytes (a pack), or `None`
    /// when absent: without a version, whose copy of the bytes only a
    /// conditional write needs.
    pub fn get_immutable(&self, key: &str) -> Result<Option<Vec<u8>>, TransportError> {
        self.fetch(key, |bytes, _, _| bytes)
    }

    /// The bytes at `key`, its ETag and its version, made into a `T` by
    /// `keep`; `None` when absent.
    fn fetch<T>(
        &self,
        key: &str,
        keep: impl FnOnce(Vec<u8>, Option<String>, Option<String>) -> T,
    ) -> Result<Option<T>, TransportError> {
        let location = self.key(key);
        let fetched = self.runtime.block_on(async {
            let result = self
                .store
                .get_opts(&location, GetOptions::default())
                .await?;
            let e_tag = result.meta.e_tag.clone();
            let version = result.meta.version.clone();
            let bytes = result.bytes().await?;
            Ok::<_, object_store::Error>((bytes, e_tag, version))
        });
        match fetched {
            // Into a vector without a copy: the response's buffer is ours.
            Ok((bytes, e_tag, version)) => Ok(Some(keep(bytes.into(), e_tag, version))),
            Err(object_store::Error::NotFound { source, .. })
                if !mentions_code(source.as_ref(), "NoSuchBucket") =>
            {
                Ok(None)
            }
            Err(e) => Err(self.classify(e, "get", key, false)),
        }
    }

    /// Writes immutable, content-addressed bytes at `key`. Writing a key
    /// again writes the same bytes, so an interrupted upload is simply
    /// repeated; a reader never sees half of it (an S3 PUT and the file
    /// system's rename are atomic).
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), TransportError> {
        let location = self.key(key);
        self.runtime
            .block_on(self.store.put(&location, PutPayload::from(bytes)))
            .map(drop)
            .map_err(|e| self.classify(e, "put", key, false))
    }

    /// Deletes `key`; deleting a key that is not there succeeds.
    pub fn delete(&self, key: &str) -> Result<(), TransportError> {
        let location = self.key(key);
        match self.runtime.block_on(self.store.delete(&location)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.classify(e, "delete", key, false)),
        }
    }

    /// Writes a ref conditionally: `expected` is `None` to create it only if
    /// it does not exist, or the version read to replace it only if it is
    /// unchanged. A failed condition is [`TransportError::Changed`].
    pub fn put_ref(
        &self,
        key: &str,
        bytes: Vec<u8>,
        expected: Option<&Version>,
    ) -> Result<(), TransportError> {
        if let (Some(root), Some(expected)) = (&self.root, expected) {
            return self.replace_file(root.join(key), bytes, expected, key);
        }
        let mode = match expected {
            None => PutMode::Create,
            Some(version) => PutMode::Update(UpdateVersion {
                e_tag: version.e_tag.clone(),
                version: version.version.clone(),
            }),
        };
        let location = self.key(key);
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        self.runtime
            .block_on(
                self.store
                    .put_opts(&location, PutPayload::from(bytes), options),
            )
            .map(drop)
            .map_err(|e| match e {
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. } => TransportError::Changed {
                    remote: self.name.clone(),
                    key: key.to_owned(),
                },
                // A ref deleted since it was read fails If-Match with 404.
                object_store::Error::NotFound { ref source, .. }
                    if expected.is_some() && !mentions_code(source.as_ref(), "NoSuchBucket") =>
                {
                    TransportError::Changed {
                        remote: self.name.clone(),
                        key: key.to_owned(),
                    }
                }
                other => self.classify(other, "put", key, false),
            })
    }

    /// Replaces the ref file at `path` if its content is still `expected`:
    /// lock, compare, write the lock file, sync, rename (see the module
    /// documentation).
    fn replace_file(
        &self,
        path: PathBuf,
        bytes: Vec<u8>,
        expected: &Version,
        key: &str,
    ) -> Result<(), TransportError> {
        let failed = |operation, source: std::io::Error| TransportError::Failed {
            remote: self.name.clone(),
            operation,
            key: key.to_owned(),
            source: Box::new(source),
        };
        let mut lock_name = path.clone().into_os_string();
        lock_name.push(".lock");
        let lock = PathBuf::from(lock_name);
        // Another push holds the lock only for a read, a write and a
        // rename: wait for it a little. A lock still there after
        // LOCK_WAIT was left by a push that died.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let mut file = loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(file) => break file,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if std::time::Instant::now() > deadline {
                        return Err(TransportError::Locked { path: lock });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(failed("lock", e)),
            }
        };
        let replaced = (|| {
            let current = match std::fs::read(&path) {
                Ok(current) => current,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Err(TransportError::Changed {
                        remote: self.name.clone(),
                        key: key.to_owned(),
                    }));
                }
                Err(e) => return Err(failed("read", e)),
            };
            if current != expected.content {
                return Ok(Err(TransportError::Changed {
                    remote: self.name.clone(),
                    key: key.to_owned(),
                }));
            }
            file.write_all(&bytes).map_err(|e| failed("write", e))?;
            file.sync_all().map_err(|e| failed("sync", e))?;
            std::fs::rename(&lock, &path).map_err(|e| failed("rename", e))?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)
                    .and_then(|dir| dir.sync_all())
                    .map_err(|e| failed("sync the directory of", e))?;
            }
            Ok(Ok(()))
        })();
        // After a successful rename the lock file is the ref: nothing to remove.
        if !matches!(replaced, Ok(Ok(()))) {
            let _ = std::fs::remove_file(&lock);
        }
        replaced?
    }

    /// Sorts an `object_store` error by cause. `listing` says the call was
    /// a list, where "not found" can only mean the bucket.
    fn classify(
        &self,
        error: object_store::Error,
        operation: &'static str,
        key: &str,
        listing: bool,
    ) -> TransportError {
        let remote = self.name.clone();
        if is_unreachable(&error) {
            return TransportError::Unreachable {
                remote,
                reason: summary(&error),
            };
        }
        let denied = [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
        ]
        .iter()
        .any(|code| mentions_code(&error, code));
        if denied
            || matches!(
                error,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
            )
        {
            return TransportError::Denied {
                remote,
                reason: summary(&error),
            };
        }
        if mentions_code(&error, "NoSuchBucket")
            || (listing && matches!(error, object_store::Error::NotFound { .. }))
        {
            return TransportError::Missing {
                remote,
                reason: summary(&error),
            };
        }
        TransportError::Failed {
            remote,
            operation,
            key: key.to_owned(),
            source: Box::new(error),
        }
    }
}

/// An S3 client for `bucket` with bounded waits. Credentials, region and
/// endpoint come from the `AWS_*` environment, then the profile files
/// (`crate::profile`), then `settings`, which win.
fn s3(bucket: &str, settings: &Settings, name: &str) -> Result<impl ObjectStore, TransportError> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let env = |key: &str| std::env::var_os(key).is_some();
    let profile = profile::load();
    if !env("AWS_ACCESS_KEY_ID")
        && let (Some(key), Some(secret)) = (&profile.access_key_id, &profile.secret_access_key)
    {
        builder = builder
            .with_access_key_id(key)
            .with_secret_access_key(secret);
        if let Some(token) = &profile.session_token {
            builder = builder.with_token(token);
        }
    }
    let region = settings.region.clone().or_else(|| {
        (!env("AWS_REGION") && !env("AWS_DEFAULT_REGION"))
            .then(|| profile.region.clone())
            .flatten()
    });
    if let Some(region) = region {
        builder = builder.with_region(region);
    }
    let endpoint = settings.endpoint.clone().or_else(|| {
        (!env("AWS_ENDPOINT_URL") && !env("AWS_ENDPOINT"))
            .then(|| profile.endpoint_url.clone())
            .flatten()
    });
    let mut client = ClientOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT);
    if let Some(endpoint) = endpoint {
        // Plain http only to this machine (an S3-compatible server on
        // loopback); anything that leaves it must use TLS.
        client = client.with_allow_http(is_loopback(&endpoint));
        builder = builder.with_endpoint(endpoint);
    }
    builder
        .with_client_options(client)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: RETRIES,
            retry_timeout: RETRY_WINDOW,
        })
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .build()
        .map_err(|source| TransportError::Failed {
            remote: name.to_owned(),
            operation: "configure",
            key: String::new(),
            source: Box::new(source),
        })
}

/// Whether `endpoint` (a URL) names this machine.
fn is_loopback(endpoint: &str) -> bool {
    url::Url::parse(endpoint)
        .ok()
        .and_then(|url| {
            Some(match url.host()? {
                url::Host::Domain(domain) => domain == "localhost",
                url::Host::Ipv4(ip) => ip.is_loopback(),
                url::Host::Ipv6(ip) => ip.is_loopback(),
            })
        })
        .unwrap_or(false)
}

/// Whether the error, or any error behind it, is a failure to connect or a
/// timeout.
fn is_unreachable(error: &(dyn std::error::Error + 'static)) -> bool {
    use object_store::client::HttpErrorKind;
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(http) = error.downcast_ref::<object_store::client::HttpError>()
            && matches!(
                http.kind(),
                HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Interrupted
            )
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// A few words for an error: the S3 error code and message when the server
/// sent one (`NoSuchBucket: The specified bucket does not exist`), else the
/// innermost error (`Connection refused (os error 111)`). The full chain
/// repeats request URLs and XML bodies; the one line is what a user acts on.
fn summary(error: &(dyn std::error::Error + 'static)) -> String {
    let text = error.to_string();
    let between = |open: &str, close: &str| {
        let start = text.find(open)? + open.len();
        let end = start + text[start..].find(close)?;
        Some(text[start..end].to_owned())
    };
    if let Some(code) = between("<Code>", "</Code>") {
        return match between("<Message>", "</Message>") {
            Some(message) => format!("{code}: {message}"),
            None => code,
        };
    }
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// Whether the S3 error code `code` (`<Code>NoSuchBucket</Code>` in the
/// response body) appears anywhere in the error's chain. S3 reports why a
/// request failed only there; the status (403, 404) alone cannot tell a
/// wrong key from a missing bucket.
fn mentions_code(error: &(dyn std::error::Error + 'static), code: &str) -> bool {
    let needle = format!("<Code>{code}</Code>");
    let mut current = Some(error);
    while let Some(error) = current {
        if error.to_string().contains(&needle) {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_may_use_http() {
        assert!(is_loopback("http://127.0.0.1:9000"));
        assert!(is_loopback("http://localhost:9000"));
        assert!(is_loopback("http://[::1]:9000"));
        assert!(!is_loopback("http://10.0.0.5:9000"));
        assert!(!is_loopback("not a url"));
    }

    #[test]
    fn file_refs_are_created_once_and_replaced_only_while_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::File {
            root: dir.path().to_path_buf(),
        };
        let remote = Transport::open(&location, &Settings::default()).unwrap();
        assert!(remote.get("refs/heads/a").unwrap().is_none());
        remote
            .put_ref("refs/heads/a", b"one".to_vec(), None)
            .unwrap();
        assert!(matches!(
            remote.put_ref("refs/heads/a", b"two".to_vec(), None),
            Err(TransportError::Changed { .. })
        ));
        let read = remote.get("refs/heads/a").unwrap().unwrap();
        remote
            .put_ref("refs/heads/a", b"two".to_vec(), Some(&read.version))
            .unwrap();
        assert!(matches!(
            remote.put_ref("refs/heads/a", b"three".to_vec(), Some(&read.version)),
            Err(TransportError::Changed { .. })
        ));
        assert_eq!(remote.get("refs/heads/a").unwrap().unwrap().bytes, b"two");
        let keys: Vec<String> = remote
            .list("refs/")
            .unwrap()
            .into_iter()
            .map(|l| l.key)
            .collect();
        assert_eq!(keys, ["refs/heads/a"]);
    }

    /// A file remote on a read-only mount fails a write with an I/O error
    /// deep in the store's error: that is read-only, as S3's denial is.
    #[test]
    fn a_read_only_directory_is_read_only() {
        let failed = |kind| TransportError::Failed {
            remote: "file:///mnt/nas".into(),
            operation: "put",
            key: "locks/fetch-0".into(),
            source: Box::new(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(std::io::Error::from(kind)),
            }),
        };
        assert!(failed(std::io::ErrorKind::ReadOnlyFilesystem).is_read_only());
        assert!(failed(std::io::ErrorKind::PermissionDenied).is_read_only());
        assert!(!failed(std::io::ErrorKind::StorageFull).is_read_only());
        let denied = TransportError::Denied {
            remote: "s3://b".into(),
            reason: "AccessDenied".into(),
        };
        assert!(denied.is_read_only());
    }

    #[test]
    fn a_missing_directory_is_a_missing_remote() {
        let location = Location::File {
            root: "/nonexistent/migsnap-remote".into(),
        };
        assert!(matches!(
            Transport::open(&location, &Settings::default()),
            Err(TransportError::Missing { .. })
        ));
    }
}
