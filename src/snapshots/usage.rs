//! Storage accounting: where the store's space goes. The store's file size,
//! object count and stored (compressed) bytes; for each snapshot of the
//! databases asked about, newest first, its logical size and what it added
//! when recorded; and the dedup ratio of the whole store.

use std::collections::HashSet;

use migsnap_store::image::read_image;
use migsnap_store::{ObjectId, View};
use serde::Serialize;

use crate::repo::{Repo, Tracked};
use crate::snapshots::log::{LogEntry, LogError, first_parent_log, first_parents};

/// Where the store's space goes. Serialized, it is the JSON of
/// `migsnap du --format json`.
#[derive(Clone, Debug, Serialize)]
pub struct UsageReport {
    /// The size of the store file.
    pub store_file_bytes: u64,
    /// How many objects the store holds.
    pub objects: u64,
    /// The bytes its packs take (compressed).
    pub stored_bytes: u64,
    /// The snapshots of the databases asked about, newest first.
    pub snapshots: Vec<SnapshotUsage>,
    /// The logical size of every snapshot in the store that still holds its
    /// data, each counted once.
    pub logical_total: u64,
    /// `logical_total` / `stored_bytes` (so it counts compression too);
    /// `None` for an empty store.
    pub dedup_ratio: Option<f64>,
}

/// One snapshot's share.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotUsage {
    /// The snapshot.
    pub id: ObjectId,
    /// The database it is of.
    pub database: String,
    /// When it was taken (seconds since the epoch; RFC 3339 in JSON).
    #[serde(serialize_with = "crate::timestamp::serialize_rfc3339")]
    pub time: i64,
    /// Page size × page count; `None` without data.
    pub logical_size: Option<u64>,
    /// The bytes it added to the store when recorded.
    pub added_bytes: u64,
    /// The objects it added.
    pub added_objects: u64,
    /// Whether retention gave up its data.
    pub data_forgotten: bool,
    /// Whether it was taken without data (`snapshot --schema-only`).
    #[serde(skip)]
    pub schema_only: bool,
}

/// Accounts for the store, listing the snapshots of `databases`.
pub fn usage(repo: &Repo, databases: &[Tracked]) -> Result<UsageReport, LogError> {
    let view = repo.store.view();
    let store_file_bytes = view.file_size()?;
    // Objects are stored in compressed packs; see View::storage.
    let storage = view.storage()?;
    let mut listed: Vec<LogEntry> = Vec::new();
    let mut seen = HashSet::new();
    for db in databases {
        if let Some(head) = view.find_ref(&db.head_ref())? {
            // Up to a snapshot already listed from another database.
            let fresh = first_parent_log(view, head, None)?
                .into_iter()
                .take_while(|e| seen.insert(e.id));
            listed.extend(fresh);
        }
    }
    // Stable: snapshots of the same second stay in history order.
    listed.sort_by_key(|e| std::cmp::Reverse(e.snapshot.time));

    // The ratio is about the whole store, whose bytes every database shares,
    // so it counts every line of history, listed or not.
    let roots = view.refs("heads/")?.into_iter().chain(view.refs("tags/")?);
    let logical_total = held_total(view, roots.map(|(_, id)| id))?;
    let stored_bytes = storage.pack_bytes;
    Ok(UsageReport {
        store_file_bytes,
        objects: storage.objects,
        stored_bytes,
        snapshots: listed.into_iter().map(SnapshotUsage::of).collect(),
        logical_total,
        dedup_ratio: (stored_bytes > 0).then(|| logical_total as f64 / stored_bytes as f64),
    })
}

impl SnapshotUsage {
    /// The share of the snapshot `entry` lists.
    pub fn of(entry: LogEntry) -> SnapshotUsage {
        SnapshotUsage {
            id: entry.id,
            logical_size: entry.image.as_ref().map(|i| i.len()),
            schema_only: entry.snapshot.image.is_none(),
            time: entry.snapshot.time,
            added_bytes: entry.snapshot.added.bytes,
            added_objects: entry.snapshot.added.objects,
            data_forgotten: entry.forgotten,
            database: entry.snapshot.database,
        }
    }
}

/// The logical size of every snapshot on the first-parent lines from `roots`
/// whose data the store still holds, each counted once. Walks snapshot
/// objects only, and stops where a line joins one already walked, because a
/// tag usually points into a head's history.
fn held_total(view: View<'_>, roots: impl Iterator<Item = ObjectId>) -> Result<u64, LogError> {
    let forgotten: HashSet<ObjectId> = view.forgotten()?.into_iter().map(|(id, _)| id).collect();
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for root in roots {
        for step in first_parents(view, Some(root)).until_seen(&mut seen) {
            let (id, snapshot) = step?;
            if let (Some(image), false) = (snapshot.image, forgotten.contains(&id)) {
                total += read_image(view, &image)?.len();
            }
        }
    }
    Ok(total)
}
