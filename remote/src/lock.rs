//! Locks on a remote, as restic's lock files: a remote gc holds
//! `locks/exclusive`, created only if absent (a conditional create); each
//! push holds its own `locks/push-<random>` while it uploads and moves refs,
//! and each fetch a `locks/fetch-<random>` while it downloads.
//!
//! Invariants:
//! - both sides write their lock first and look for the other's after, so
//!   of a gc and a push that start together at least one sees the other and
//!   stops: a gc never deletes while a push it could harm runs;
//! - a lock records who holds it and since when; one not refreshed for
//!   [`STALE_AFTER`] belongs to a client that died and is ignored (a stale
//!   exclusive lock is replaced conditionally, on the version read); a push
//!   refreshes its lock every [`REFRESH_EVERY`];
//! - a lock's bytes go through the [`Connection`], so on an encrypted
//!   remote they are sealed like everything else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::connection::{Connection, ConnectionError};
use crate::crypt::CryptError;
use crate::transport::{TransportError, Version};

/// Where locks live.
pub const LOCKS: &str = "locks/";
/// The key of a remote gc's lock.
pub const EXCLUSIVE: &str = "locks/exclusive";
/// How old a lock must be to count as left by a client that died.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often a push rewrites its lock with a new time.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// Who holds a lock, and since when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// What holds it: `gc`, `push` or `fetch`.
    pub what: String,
    /// The host name of its machine.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// When it was taken or last refreshed (seconds since the Unix epoch,
    /// by the holder's clock).
    pub time: i64,
}

impl Holder {
    /// This process, now.
    fn me(what: &str) -> Holder {
        Holder {
            what: what.to_owned(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            time: now(),
        }
    }

    /// When the lock was taken or last refreshed, for messages (RFC 3339,
    /// UTC).
    pub fn since(&self) -> String {
        jiff::Timestamp::from_second(self.time)
            .map_or_else(|_| self.time.to_string(), |t| t.to_string())
    }

    /// Whether the lock has not been refreshed for [`STALE_AFTER`].
    pub fn is_stale(&self) -> bool {
        now() - self.time > STALE_AFTER.as_secs() as i64
    }

    fn encode(&self) -> Vec<u8> {
        format!(
            "migsnap lock 1\n{}\n{}\n{}\n{}\n",
            self.what, self.host, self.pid, self.time
        )
        .into_bytes()
    }

    /// A lock's holder; a lock that does not read counts as held by an
    /// unknown client at time 0 (stale).
    fn decode(bytes: &[u8]) -> Holder {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.lines();
        let parsed = (|| {
            (lines.next()? == "migsnap lock 1").then_some(())?;
            Some(Holder {
                what: lines.next()?.to_owned(),
                host: lines.next()?.to_owned(),
                pid: lines.next()?.parse().ok()?,
                time: lines.next()?.parse().ok()?,
            })
        })();
        parsed.unwrap_or(Holder {
            what: "unknown".into(),
            host: "unknown".into(),
            pid: 0,
            time: 0,
        })
    }
}

/// The time now, in seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another client holds a lock that is not stale.
    #[error("remote {remote} is locked by {} on {} (pid {}) since {}", holder.what, holder.host, holder.pid, holder.since())]
    Held {
        /// The remote.
        remote: String,
        /// The lock's key.
        key: String,
        /// Who holds it.
        holder: Holder,
    },
    /// This process's lock is gone or another's: someone broke it
    /// (`--break-lock`) or took it as stale.
    #[error(
        "the lock {key} on remote {remote} is no longer this process's (broken by another client?)"
    )]
    Lost {
        /// The remote.
        remote: String,
        /// The lock's key.
        key: String,
    },
    /// The remote could not be read or written.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A lock did not open with the remote's key.
    #[error(transparent)]
    Crypt(#[from] CryptError),
}

impl From<ConnectionError> for LockError {
    fn from(error: ConnectionError) -> LockError {
        match error {
            ConnectionError::Transport(e) => LockError::Transport(e),
            ConnectionError::Crypt(e) => LockError::Crypt(e),
        }
    }
}

/// A lock this process holds. Release it with [`Lock::release`]; a lock
/// dropped unreleased (a failed command) is released on a best-effort
/// basis, and one left by a killed process goes stale.
pub struct Lock<'a> {
    remote: &'a Connection,
    key: String,
    holder: Holder,
    written: std::time::Instant,
    released: bool,
}

impl Lock<'_> {
    /// Rewrites the lock with the current time if it is older than
    /// [`REFRESH_EVERY`], so a long push or gc is not taken for dead;
    /// first checks that it is still this process's ([`Lock::confirm`]).
    pub fn refresh(&mut self) -> Result<(), LockError> {
        if self.written.elapsed() < REFRESH_EVERY {
            return Ok(());
        }
        self.rewrite()
    }

    /// Confirms the lock and writes it again with the current time.
    fn rewrite(&mut self) -> Result<(), LockError> {
        self.confirm()?;
        self.holder.time = now();
        self.remote.put(&self.key, self.holder.encode())?;
        self.written = std::time::Instant::now();
        Ok(())
    }

    /// Checks that the lock is still there and still this process's: a
    /// gc confirms it before it deletes anything.
    pub fn confirm(&self) -> Result<(), LockError> {
        match read(self.remote, &self.key)? {
            Some((holder, _)) if holder == self.holder => Ok(()),
            _ => Err(LockError::Lost {
                remote: self.remote.name().to_owned(),
                key: self.key.clone(),
            }),
        }
    }

    /// Deletes the lock.
    pub fn release(mut self) -> Result<(), LockError> {
        self.released = true;
        self.remote.transport.delete(&self.key)?;
        Ok(())
    }
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.remote.transport.delete(&self.key);
        }
    }
}

/// Takes a push's shared lock: writes `locks/push-<random>`, then refuses
/// (removing it again) while a gc holds a lock that is not stale.
pub fn shared(remote: &Connection) -> Result<Lock<'_>, LockError> {
    let holder = Holder::me("push");
    let key = shared_key(&holder);
    remote.put(&key, holder.encode())?;
    held_beside_gc(remote, key, holder)
}

/// Takes a fetch's shared lock (`locks/fetch-<random>`) as [`shared`]
/// does, so that a gc does not delete packs it is downloading. A remote
/// this client may only read (the server denies the write, or a file
/// remote's directory is read-only) gets none:
/// `None`, and the fetch goes on as before locks existed, at the risk that
/// a gc running meanwhile makes it fail (and nothing is imported).
pub fn reading(remote: &Connection) -> Result<Option<Lock<'_>>, LockError> {
    let holder = Holder::me("fetch");
    let key = shared_key(&holder);
    match remote.put(&key, holder.encode()) {
        Ok(_) => held_beside_gc(remote, key, holder).map(Some),
        Err(error) if error.is_read_only() => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// A random key for a shared lock held by `holder`.
fn shared_key(holder: &Holder) -> String {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("holds because the OS has a random source");
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{LOCKS}{}-{suffix}", holder.what)
}

/// The shared lock just written at `key`, unless a gc holds a lock that
/// is not stale: then it is removed again and the gc's lock is the error.
fn held_beside_gc(remote: &Connection, key: String, holder: Holder) -> Result<Lock<'_>, LockError> {
    let lock = Lock {
        remote,
        key,
        holder,
        written: std::time::Instant::now(),
        released: false,
    };
    if let Some((holder, _)) = read(remote, EXCLUSIVE)?
        && !holder.is_stale()
    {
        lock.release()?;
        return Err(LockError::Held {
            remote: remote.name().to_owned(),
            key: EXCLUSIVE.to_owned(),
            holder,
        });
    }
    Ok(lock)
}

/// Takes a gc's exclusive lock: creates `locks/exclusive` only if absent
/// (or replaces a stale one, only if unchanged since read), then refuses
/// (removing it again) while any push holds a lock that is not stale.
/// With `break_locks`, every other lock is deleted first, fresh or not:
/// for when the user knows that no other client runs.
pub fn exclusive(remote: &Connection, break_locks: bool) -> Result<Lock<'_>, LockError> {
    if break_locks {
        for listed in remote.transport.list(LOCKS)? {
            remote.transport.delete(&listed.key)?;
        }
    }
    let holder = Holder::me("gc");
    let expected: Option<Version> = match read(remote, EXCLUSIVE)? {
        Some((held, _)) if !held.is_stale() => {
            return Err(LockError::Held {
                remote: remote.name().to_owned(),
                key: EXCLUSIVE.to_owned(),
                holder: held,
            });
        }
        Some((_, version)) => Some(version),
        None => None,
    };
    remote
        .put_ref(EXCLUSIVE, holder.encode(), expected.as_ref())
        .map_err(|error| match error {
            // Another gc took it between the read and the write.
            TransportError::Changed { .. } => LockError::Held {
                remote: remote.name().to_owned(),
                key: EXCLUSIVE.to_owned(),
                holder: read(remote, EXCLUSIVE)
                    .ok()
                    .flatten()
                    .map_or_else(|| Holder::decode(b""), |(held, _)| held),
            },
            other => other.into(),
        })?;
    let lock = Lock {
        remote,
        key: EXCLUSIVE.to_owned(),
        holder,
        written: std::time::Instant::now(),
        released: false,
    };
    for listed in remote.transport.list(LOCKS)? {
        // A file remote's `<key>.lock` is a conditional write in flight.
        if listed.key == EXCLUSIVE || listed.key.ends_with(".lock") {
            continue;
        }
        match read(remote, &listed.key)? {
            Some((held, _)) if !held.is_stale() => {
                lock.release()?;
                return Err(LockError::Held {
                    remote: remote.name().to_owned(),
                    key: listed.key,
                    holder: held,
                });
            }
            // A push or fetch that died: its lock is garbage.
            Some(_) => remote.transport.delete(&listed.key)?,
            None => {}
        }
    }
    Ok(lock)
}

/// The lock at `key` and its version, or `None`.
fn read(remote: &Connection, key: &str) -> Result<Option<(Holder, Version)>, LockError> {
    Ok(remote
        .get(key)?
        .map(|(bytes, version)| (Holder::decode(&bytes), version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_confirmed_refreshed_and_lost_when_broken() {
        let dir = tempfile::tempdir().unwrap();
        let location = crate::Location::File {
            root: dir.path().to_path_buf(),
        };
        let transport = crate::Transport::open(&location, &crate::Settings::default()).unwrap();
        let remote = Connection::open(transport, None).unwrap();
        let mut held = exclusive(&remote, false).unwrap();
        held.confirm().unwrap();
        held.rewrite().unwrap();
        held.confirm().unwrap();
        assert!(matches!(shared(&remote), Err(LockError::Held { .. })));
        remote.transport.delete(EXCLUSIVE).unwrap();
        assert!(matches!(held.confirm(), Err(LockError::Lost { .. })));
        assert!(matches!(held.rewrite(), Err(LockError::Lost { .. })));
    }

    #[test]
    fn holders_round_trip_and_junk_is_stale() {
        let me = Holder::me("push");
        assert_eq!(Holder::decode(&me.encode()), me);
        assert!(!me.is_stale());
        assert!(Holder::decode(b"junk").is_stale());
    }
}
