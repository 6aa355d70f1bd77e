//! Walking a database's snapshot history, newest first along first parents,
//! with what each snapshot changed.

use std::collections::{HashMap, HashSet};

use migsnap_store::image::read_image;
use migsnap_store::{Image, ObjectId, Snapshot, View};

use crate::snapshot::Recorded;

/// One snapshot as `log` shows it.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// Its id.
    pub id: ObjectId,
    /// The snapshot object.
    pub snapshot: Snapshot,
    /// What it recorded about the database.
    pub recorded: Recorded,
    /// Its image object (geometry and digest), if it has data.
    pub image: Option<Image>,
    /// Whether the schema differs from the first parent's (true for a root).
    pub schema_changed: bool,
    /// Whether retention gave up its data.
    pub forgotten: bool,
    /// Refs that point at it (`heads/webui`, `tags/v1`).
    pub refs: Vec<String>,
}

/// Reads up to `limit` snapshots from `start` back along first parents.
pub fn first_parent_log(
    view: View<'_>,
    start: ObjectId,
    limit: Option<usize>,
) -> Result<Vec<LogEntry>, migsnap_store::Error> {
    let mut refs: HashMap<ObjectId, Vec<String>> = HashMap::new();
    for (name, id) in view.refs("")? {
        refs.entry(id).or_default().push(name.to_string());
    }
    let forgotten: HashSet<ObjectId> = view.forgotten()?.into_iter().map(|(id, _)| id).collect();
    let mut out = Vec::new();
    let mut next = Some(start);
    let mut current = None;
    while let Some(id) = next {
        if limit.is_some_and(|n| out.len() >= n) {
            break;
        }
        let snapshot = match current.take() {
            Some(snapshot) => snapshot,
            None => view.read_snapshot(&id)?,
        };
        let parent = snapshot
            .parents
            .first()
            .map(|p| view.read_snapshot(p))
            .transpose()?;
        let image = match snapshot.image {
            Some(image_id) if !forgotten.contains(&id) => Some(read_image(view, &image_id)?),
            Some(image_id) => read_image(view, &image_id).ok(),
            None => None,
        };
        next = snapshot.parents.first().copied();
        out.push(LogEntry {
            id,
            recorded: Recorded::from_snapshot(&snapshot),
            schema_changed: parent.as_ref().is_none_or(|p| p.schema != snapshot.schema),
            forgotten: forgotten.contains(&id),
            refs: refs.remove(&id).unwrap_or_default(),
            image,
            snapshot,
        });
        current = parent;
    }
    Ok(out)
}
