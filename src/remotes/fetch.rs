//! `migsnap fetch` and `migsnap clone`: bring a remote's snapshots into a
//! store, with its refs as remote-tracking refs (and, for a clone, as the
//! new store's own refs).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use migsnap_remote::{BlobSink, FetchReport, Location, RemoteRef, Staging, Tap};
use migsnap_store::{Change, Expected, ObjectId, Progress, RefEdit, RefName, View, transfer};
use serde::Serialize;

use super::{
    CheckoutFailure, DEFAULT_REMOTE, KeySource, RemoteError, TRACKING_PREFIX, choose, connect,
    install_key, tracking_ref,
};
use crate::config::remote::RemoteConfig;
use crate::repo::{Repo, STORE_DIR};
use crate::snapshots::restore::{self, Rebuild};
use crate::snapshots::revspec;

/// What a fetch did, and from which remote.
#[derive(Clone, Debug, Serialize)]
pub struct Fetched {
    /// The remote's name.
    pub remote: String,
    /// Its URL.
    pub url: String,
    /// Packs, bytes, objects and refs.
    #[serde(flatten)]
    pub report: FetchReport,
    /// How each remote-tracking ref moved, in the order of `refs`.
    pub updates: Vec<Update>,
}

/// How a remote-tracking ref moved in a fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Movement {
    /// The store had not seen the remote's ref before.
    New,
    /// The remote's ref had not moved.
    Unchanged,
    /// It moved on from what the store had seen: the usual case.
    FastForward,
    /// It moved back to an older snapshot of the history the store had
    /// seen: a `push --force` of an older snapshot, or someone who can
    /// write the bucket (on an encrypted remote, its owner) putting an old
    /// ref back. Worth a look before trusting the remote's value.
    RolledBack,
    /// It moved to a history without what the store had seen: a `push
    /// --force` of another history.
    Forced,
}

/// One remote-tracking ref's move.
#[derive(Clone, Debug, Serialize)]
pub struct Update {
    /// The remote-tracking ref (`remotes/origin/heads/webui`).
    #[serde(rename = "ref")]
    pub name: RefName,
    /// What it was before the fetch.
    pub old: Option<ObjectId>,
    /// What it is now.
    pub new: ObjectId,
    /// How it moved.
    pub movement: Movement,
}

/// How a ref moved from `old` to `new`, by the parent links in `view`.
fn movement(view: View<'_>, old: Option<ObjectId>, new: ObjectId) -> Result<Movement, RemoteError> {
    Ok(match old {
        None => Movement::New,
        Some(old) if old == new => Movement::Unchanged,
        Some(old) if transfer::is_ancestor(view, &old, &new)? => Movement::FastForward,
        Some(old) if transfer::is_ancestor(view, &new, &old)? => Movement::RolledBack,
        Some(_) => Movement::Forced,
    })
}

/// The remote-tracking ref edit for one remote ref: set to the remote's
/// value, whatever it was (like git's `+refs/heads/*:refs/remotes/origin/*`).
fn track(remote: &str, found: &RemoteRef) -> RefEdit {
    RefEdit {
        name: tracking_ref(remote, &found.name),
        change: Change::Update {
            expected: Expected::Any,
            new: found.target,
        },
    }
}

/// Fetches every ref of remote `remote` (default: see [`choose`]) and the
/// snapshots they need, and sets the remote-tracking refs.
pub fn fetch(
    repo: &mut Repo,
    remote: Option<&str>,
    progress: &mut dyn Progress,
) -> Result<Fetched, RemoteError> {
    let (name, settings) = choose(repo, remote)?;
    let remote = connect(&settings, repo.store.dir())?;
    let before: HashMap<RefName, ObjectId> = repo
        .store
        .view()
        .refs(&format!("{TRACKING_PREFIX}{name}/"))?
        .into_iter()
        .collect();
    let report = migsnap_remote::fetch(
        &mut repo.store,
        &remote,
        Staging::Resumable,
        |found| vec![track(&name, found)],
        &format!("fetch {name}"),
        None,
        progress,
    )?;
    let view = repo.store.view();
    let updates = report
        .refs
        .iter()
        .map(|found| {
            let tracking = tracking_ref(&name, &found.name);
            let old = before.get(&tracking).copied();
            Ok(Update {
                movement: movement(view, old, found.target)?,
                name: tracking,
                old,
                new: found.target,
            })
        })
        .collect::<Result<_, RemoteError>>()?;
    Ok(Fetched {
        remote: name,
        url: settings.url,
        report,
        updates,
    })
}

/// What a clone made.
#[derive(Clone, Debug, Serialize)]
pub struct Cloned {
    /// The new project directory.
    pub dir: PathBuf,
    /// Its store.
    pub store: PathBuf,
    /// Where it came from, registered as `origin`.
    pub url: String,
    /// What was fetched.
    #[serde(flatten)]
    pub report: FetchReport,
    /// The database written as well (`clone --checkout`).
    pub checkout: Option<ClonedCheckout>,
}

/// A database a clone writes while it downloads: `clone --checkout REV -o
/// FILE`, the disaster-recovery path in one command.
#[derive(Clone, Debug)]
pub struct CloneCheckout {
    /// The snapshot: a ref of the remote (`heads/webui`), or any revision
    /// `checkout` takes in the new store (its pages are then all read
    /// after the download).
    pub rev: String,
    /// The file to create, relative to the clone's working directory; it
    /// must not exist.
    pub out: PathBuf,
}

/// The database a clone wrote.
#[derive(Clone, Debug, Serialize)]
pub struct ClonedCheckout {
    /// The snapshot written.
    pub snapshot: ObjectId,
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Pages written as they downloaded (`pages_reused`), and read from
    /// the store afterwards (`pages_fetched`).
    pub rebuild: Rebuild,
    /// What the user should know (a snapshot flagged as failing its
    /// integrity check).
    pub warnings: Vec<String>,
    /// Always true: a checkout that fails verification is an error.
    pub verified: bool,
}

/// Writes a clone's pages into its checkout's file as they are verified
/// (see [`Tap`]). Only a ref of the remote (`heads/webui`, or `webui` for
/// it) is known this early; any other revision gets nothing here. Nothing
/// it writes is trusted: the checkout reads from the store every page not
/// marked written, and checks the whole-image digest over the file, so a
/// page missed, or written wrong, costs time and never correctness.
struct PageTap<'a> {
    file: &'a std::fs::File,
    /// The file's path, for `quick_check`.
    path: &'a Path,
    rev: &'a str,
    placement: OnceLock<Placement>,
    /// The file's checks, started once every page is in
    /// ([`Tap::downloaded`]), beside the fetch's history check and commit.
    early: std::sync::Mutex<Option<std::thread::JoinHandle<Early>>>,
}

/// What the early checks of a clone's checkout found: `None` when the
/// file's digest is not the image's (the checkout then checks it all again
/// from the store), else the file synced and `quick_check`ed, or why that
/// failed.
type Early = Option<Result<restore::FileChecked, restore::RestoreError>>;

/// Where each page of the checkout's image goes, and which were written.
struct Placement {
    marks: Marks,
    page_size: usize,
    /// The image's whole-file digest.
    digest: [u8; 32],
    /// The first 8 bytes of each page's block id, sorted, and beside each
    /// the page's index: 12 bytes a page. Two ids that share their first 8
    /// bytes would put a page at the other's index; the checkout's digest
    /// check finds that and reads every page again, so the prefix is
    /// enough.
    keys: Vec<u64>,
    pages: Vec<u32>,
    /// Where the keys of each value of their top `bits` bits begin in
    /// `keys`: ids are uniform, so a bucket holds one or two keys and a
    /// lookup touches one or two cache lines. A binary search, through the listing
    /// or these keys, missed the cache at each of its 18 steps: a tenth of
    /// the clone's CPU.
    buckets: Vec<u32>,
    bits: u32,
}

impl Placement {
    /// Places pages by the `(key, page)` pairs, sorted.
    fn new(marks: Marks, page_size: usize, digest: [u8; 32], placed: &[(u64, u32)]) -> Placement {
        // One or two keys a bucket (4 to 8 bytes a page), at most 2^24
        // buckets.
        let bits = (usize::BITS - placed.len().leading_zeros())
            .saturating_sub(1)
            .clamp(1, 24);
        let mut buckets = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0;
        for bucket in 0..=(1u64 << bits) {
            while at < placed.len() && top(placed[at].0, bits) < bucket {
                at += 1;
            }
            buckets.push(u32::try_from(at).expect("holds because pages are counted in a u32"));
        }
        Placement {
            marks,
            page_size,
            digest,
            keys: placed.iter().map(|(key, _)| *key).collect(),
            pages: placed.iter().map(|(_, page)| *page).collect(),
            buckets,
            bits,
        }
    }

    /// The pages whose block id starts with `key`.
    fn pages_of(&self, key: u64) -> &[u32] {
        let bucket = top(key, self.bits) as usize;
        let (from, to) = (
            self.buckets[bucket] as usize,
            self.buckets[bucket + 1] as usize,
        );
        let keys = &self.keys[from..to];
        let first = keys.iter().position(|k| *k >= key).unwrap_or(keys.len());
        let count = keys[first..].iter().take_while(|k| **k == key).count();
        &self.pages[from + first..from + first + count]
    }
}

/// The top `bits` bits of `key`.
fn top(key: u64, bits: u32) -> u64 {
    key >> (64 - bits)
}

/// Bytes a verifying thread gathers before it writes them: consecutive
/// pages go out in one `pwrite`, not one each (from four threads into one
/// file, one a page made them queue on the file's lock).
const RUN_BYTES: usize = 1 << 20;

impl Tap for PageTap<'_> {
    fn start(&self, view: View<'_>, refs: &[RemoteRef]) {
        // The first of these that the remote has, as `revspec` tries them
        // in the new store; a revision that resolves otherwise gets no
        // pages here (its checkout reads them all from the store).
        let names = [
            format!("tags/{}", self.rev),
            format!("heads/{}", self.rev),
            self.rev.to_owned(),
        ];
        let Some(snapshot) = names
            .iter()
            .find_map(|name| refs.iter().find(|r| r.name.as_str() == name))
            .map(|r| r.target)
        else {
            return;
        };
        let Ok(Some(image)) = view.read_snapshot(&snapshot).map(|s| s.image) else {
            return;
        };
        let Ok(resolved) = migsnap_store::image::resolve(view, &image) else {
            return;
        };
        if crate::snapshots::pages::preallocate(self.file, resolved.image.len()).is_err() {
            // No room: the checkout says so, with the path, when it writes.
            return;
        }
        let mut placed: Vec<(u64, u32)> = (0u32..)
            .zip(&resolved.blocks)
            .map(|(page, id)| (prefix(id), page))
            .collect();
        drop(resolved.blocks);
        placed.sort_unstable();
        let marks = Marks {
            snapshot,
            written: (0..placed.len().div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        };
        let placement = Placement::new(
            marks,
            resolved.image.block_size as usize,
            resolved.image.digest,
            &placed,
        );
        let _ = self.placement.set(placement);
    }

    fn sink(&self) -> Box<dyn BlobSink + '_> {
        Box::new(Run {
            tap: self,
            first: 0,
            bytes: Vec::new(),
        })
    }

    /// With every page written, the file's checks (its digest read back,
    /// fsync and `quick_check`: about 0.8 s at 1 GiB) need nothing from the
    /// store, so they start now, beside the history check and the commit.
    fn downloaded(&self) {
        let Some(placement) = self.placement.get() else {
            return;
        };
        let pages = placement.keys.len();
        if !(0..pages).all(|page| placement.marks.is_written(page)) {
            return;
        }
        let Ok(file) = self.file.try_clone() else {
            return;
        };
        let (path, size, digest) = (
            self.path.to_path_buf(),
            placement.page_size,
            placement.digest,
        );
        // The digest is read back beside fsync and `quick_check`, the
        // longest of the three: their results count only if it matches.
        let checks = std::thread::spawn(move || {
            std::thread::scope(|scope| {
                let read = scope.spawn(|| crate::snapshots::pages::file_digest(&file, pages, size));
                let checked = restore::check_file(&file, &path);
                let read = read.join().expect("BUG: digest reader panicked");
                (read.ok() == Some(digest)).then_some(checked)
            })
        });
        if let Ok(mut early) = self.early.lock() {
            *early = Some(checks);
        }
    }
}

/// The first 8 bytes of an id, the key pages are found by.
fn prefix(id: &ObjectId) -> u64 {
    let bytes: [u8; 8] = id.as_bytes()[..8]
        .try_into()
        .expect("holds because ids are 32 bytes");
    u64::from_be_bytes(bytes)
}

/// One verifying thread's run of consecutive pages, not yet written.
struct Run<'t> {
    tap: &'t PageTap<'t>,
    first: u32,
    bytes: Vec<u8>,
}

impl BlobSink for Run<'_> {
    fn blob(&mut self, id: &ObjectId, content: &[u8]) {
        let Some(placement) = self.tap.placement.get() else {
            return;
        };
        if content.len() != placement.page_size {
            return;
        }
        for &page in placement.pages_of(prefix(id)) {
            let next = self.first as usize + self.bytes.len() / placement.page_size;
            if self.bytes.is_empty() || page as usize != next || self.bytes.len() >= RUN_BYTES {
                self.flush();
                self.first = page;
            }
            self.bytes.extend_from_slice(content);
        }
    }
}

impl Run<'_> {
    /// Writes the run and marks its pages; a run that fails to write is
    /// left unmarked, and the checkout reads those pages from the store.
    fn flush(&mut self) {
        use std::os::unix::fs::FileExt;
        let Some(placement) = self.tap.placement.get() else {
            return;
        };
        if self.bytes.is_empty() {
            return;
        }
        let offset = u64::from(self.first) * placement.page_size as u64;
        if self.tap.file.write_all_at(&self.bytes, offset).is_ok() {
            let count = self.bytes.len() / placement.page_size;
            for page in self.first as usize..self.first as usize + count {
                placement.marks.mark(page);
            }
        }
        self.bytes.clear();
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Which pages of a snapshot's image a clone wrote: what outlives the
/// download of a [`Placement`] (a bit a page, not its 16 to 20 bytes).
struct Marks {
    /// The snapshot the pages were written for.
    snapshot: ObjectId,
    /// One bit a page, set once the page is written.
    written: Vec<AtomicU64>,
}

impl Marks {
    fn mark(&self, index: usize) {
        self.written[index / 64].fetch_or(1 << (index % 64), Ordering::Relaxed);
    }

    fn is_written(&self, index: usize) -> bool {
        self.written[index / 64].load(Ordering::Relaxed) & (1 << (index % 64)) != 0
    }
}

/// Creates a store in `dir/.migsnap` (default: a directory named after the
/// URL's last component, in `cwd`) from the remote `settings` describe:
/// the remote becomes `origin`, and every remote ref becomes both a local
/// ref and a remote-tracking one. An encrypted remote needs `key_file`
/// (relative to `cwd`), which is copied into the new store. On failure,
/// what the clone created is removed again.
pub fn clone(
    mut settings: RemoteConfig,
    key_file: Option<&Path>,
    dir: Option<&Path>,
    cwd: &Path,
    checkout: Option<&CloneCheckout>,
    progress: &mut dyn Progress,
) -> Result<Cloned, RemoteError> {
    let location = Location::parse(&settings.url)?;
    let dir = match dir {
        Some(dir) => cwd.join(dir),
        None => cwd.join(location.basename().unwrap_or_else(|| "migsnap".into())),
    };
    let store_dir = dir.join(STORE_DIR);
    if store_dir.exists() {
        return Err(RemoteError::CloneTarget { path: dir });
    }
    // Connecting first: a remote that cannot be opened (or a key that does
    // not fit it) leaves nothing behind.
    let key_file = key_file.map(|path| cwd.join(path));
    settings.key_file = key_file.clone();
    let remote = connect(&settings, cwd)?;
    let created_dir = !dir.exists();
    std::fs::create_dir_all(&dir).map_err(|source| RemoteError::Io {
        path: dir.clone(),
        source,
    })?;
    // The checkout's file is made before anything is downloaded (an output
    // that exists already is refused then), and after the directory, which
    // may be where it goes.
    let checkout = checkout
        .map(|checkout| {
            let out = cwd.join(&checkout.out);
            restore::Prepared::beside(&out)
                .map(|prepared| (checkout.rev.as_str(), out, prepared))
                .map_err(|e| RemoteError::CheckoutTarget(Box::new(e)))
        })
        .transpose()
        .inspect_err(|_| {
            if created_dir {
                let _ = std::fs::remove_dir(&dir);
            }
        })?;
    let tap = checkout.as_ref().map(|(rev, _, prepared)| PageTap {
        file: prepared.file(),
        path: prepared.path(),
        rev,
        placement: OnceLock::new(),
        early: std::sync::Mutex::default(),
    });
    let cloned = (|| {
        let mut repo = Repo::init(&store_dir)?;
        let key = key_file.map_or(KeySource::Plain, KeySource::File);
        settings.key_file = install_key(&store_dir, DEFAULT_REMOTE, &key)?;
        repo.add_remote(DEFAULT_REMOTE, settings.clone())?;
        let report = migsnap_remote::fetch(
            &mut repo.store,
            &remote,
            Staging::Direct,
            |found| {
                vec![
                    track(DEFAULT_REMOTE, found),
                    RefEdit {
                        name: found.name.clone(),
                        change: Change::Update {
                            expected: Expected::MustNotExist,
                            new: found.target,
                        },
                    },
                ]
            },
            &format!("clone {}", settings.url),
            tap.as_ref().map(|tap| tap as &dyn Tap),
            progress,
        )?;
        Ok::<_, RemoteError>((repo, report))
    })();
    let (marks, early) = match tap {
        Some(tap) => (
            tap.placement.into_inner().map(|p| p.marks),
            tap.early.into_inner().ok().flatten(),
        ),
        None => (None, None),
    };
    match cloned {
        Ok((repo, report)) => {
            let checkout = checkout
                .map(|(rev, out, prepared)| {
                    let checked_out = check_out(&repo, rev, &out, prepared, marks, early, progress);
                    checked_out.map_err(|source| RemoteError::Checkout {
                        dir: crate::repo::absolute(&dir),
                        source: Box::new(source),
                    })
                })
                .transpose()?;
            Ok(Cloned {
                dir: crate::repo::absolute(&dir),
                store: crate::repo::absolute(&store_dir),
                url: settings.url,
                report,
                checkout,
            })
        }
        Err(error) => {
            // Only what this clone made: the store always, the directory
            // only if it did not exist before.
            let _ = std::fs::remove_dir_all(&store_dir);
            if created_dir {
                let _ = std::fs::remove_dir(&dir);
            }
            Err(error)
        }
    }
}

/// Finishes a clone's checkout: resolves `rev` in the new store and writes
/// the file from what the download put in `prepared`.
fn check_out(
    repo: &Repo,
    rev: &str,
    out: &Path,
    prepared: restore::Prepared,
    marks: Option<Marks>,
    early: Option<std::thread::JoinHandle<Early>>,
    progress: &mut dyn Progress,
) -> Result<ClonedCheckout, CheckoutFailure> {
    let snapshot = revspec::resolve(repo, rev, None)?;
    // The pages written during the download, and the checks of the file
    // they made, vouch for themselves only for the snapshot they were
    // placed for. Checks that could not run or did not pass are run again
    // by the checkout, which then says why.
    let early = early.and_then(|checks| checks.join().ok()).flatten();
    let marks = marks.filter(|marks| marks.snapshot == snapshot);
    let is_written = |index: usize| marks.as_ref().is_some_and(|m| m.is_written(index));
    let prefilled = match (&marks, early) {
        (Some(_), Some(Ok(checked))) => restore::Prefilled::Checked(checked),
        (Some(_), _) => restore::Prefilled::Written(&is_written),
        (None, _) => restore::Prefilled::Unknown,
    };
    let written = restore::checkout_prepared(repo, snapshot, out, prepared, prefilled, progress)?;
    Ok(ClonedCheckout {
        snapshot,
        path: crate::repo::absolute(&written.path),
        bytes: written.bytes,
        rebuild: written.rebuild,
        warnings: written.warnings.iter().map(ToString::to_string).collect(),
        verified: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key finds exactly its pages, duplicates included, whatever the
    /// number of pages (and so of buckets).
    #[test]
    fn pages_are_found_by_their_key() {
        for count in [0u32, 1, 2, 3, 100, 5000] {
            // Ids 0, 1, 2, ... with every seventh page a copy of page 0,
            // like the zero pages of a database.
            let ids: Vec<ObjectId> = (0..count)
                .map(|page| {
                    let n = if page % 7 == 3 { 0 } else { page };
                    ObjectId::hash(&n.to_le_bytes())
                })
                .collect();
            let mut placed: Vec<(u64, u32)> = (0u32..)
                .zip(&ids)
                .map(|(page, id)| (prefix(id), page))
                .collect();
            placed.sort_unstable();
            let marks = Marks {
                snapshot: ObjectId::hash(b"snapshot"),
                written: Vec::new(),
            };
            let placement = Placement::new(marks, 4096, [0; 32], &placed);
            for id in &ids {
                let expected: Vec<u32> = (0u32..)
                    .zip(&ids)
                    .filter(|(_, other)| *other == id)
                    .map(|(page, _)| page)
                    .collect();
                assert_eq!(placement.pages_of(prefix(id)), expected, "{count} pages");
            }
            assert!(
                placement
                    .pages_of(prefix(&ObjectId::hash(b"absent")))
                    .is_empty()
            );
            assert!(placement.pages_of(u64::MAX).is_empty());
            assert!(placement.pages_of(0).is_empty());
        }
    }
}
