//! Walking a database's snapshot history, newest first along first parents,
//! with what each snapshot changed; and following one schema object through
//! that history (`log --changed`), from snapshot objects and schema blobs
//! alone.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;

use migsnap_store::image::read_image;
use migsnap_store::{Image, ObjectId, Snapshot, View};

use crate::repo::Tracked;
use crate::schema::diff::{SchemaDiff, diff};
use crate::schema::{self, Column, Index, Schema, SchemaError, SchemaHash, Table, Trigger, fold};
use crate::snapshots::snapshot::Recorded;

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

fn ref_names(view: View<'_>) -> Result<HashMap<ObjectId, Vec<String>>, migsnap_store::Error> {
    let mut refs: HashMap<ObjectId, Vec<String>> = HashMap::new();
    for (name, id) in view.refs("")? {
        refs.entry(id).or_default().push(name.to_string());
    }
    Ok(refs)
}

fn forgotten_set(view: View<'_>) -> Result<HashSet<ObjectId>, migsnap_store::Error> {
    Ok(view.forgotten()?.into_iter().map(|(id, _)| id).collect())
}

fn entry(
    view: View<'_>,
    id: ObjectId,
    snapshot: Snapshot,
    schema_changed: bool,
    refs: &mut HashMap<ObjectId, Vec<String>>,
    forgotten: &HashSet<ObjectId>,
) -> Result<LogEntry, migsnap_store::Error> {
    let image = match snapshot.image {
        Some(image_id) if !forgotten.contains(&id) => Some(read_image(view, &image_id)?),
        Some(image_id) => read_image(view, &image_id).ok(),
        None => None,
    };
    Ok(LogEntry {
        id,
        recorded: Recorded::from_snapshot(&snapshot),
        schema_changed,
        forgotten: forgotten.contains(&id),
        refs: refs.remove(&id).unwrap_or_default(),
        image,
        snapshot,
    })
}

/// The snapshots from a start back along first parents, newest first, each
/// with its id: the one walk over a database's history. Reads snapshot
/// objects only. Stops after the first error.
pub struct FirstParents<'v, 's> {
    view: View<'v>,
    next: Option<ObjectId>,
    /// Read ahead by [`FirstParents::peek`], returned next.
    peeked: Option<(ObjectId, Snapshot)>,
    /// Snapshots walked already (by this walk or an earlier one); the walk
    /// stops at the first of them, because the rest of the line was walked
    /// too (or the history is a damaged cycle).
    seen: Option<&'s mut HashSet<ObjectId>>,
}

/// Walks from `start` (none: an empty walk, as for a database without
/// snapshots) back along first parents.
pub fn first_parents(view: View<'_>, start: Option<ObjectId>) -> FirstParents<'_, 'static> {
    FirstParents {
        view,
        next: start,
        peeked: None,
        seen: None,
    }
}

impl<'v> FirstParents<'v, 'static> {
    /// The same walk, stopping at a snapshot already in `seen` and adding
    /// every snapshot it returns to it: several lines (heads, tags) that
    /// join are walked once.
    pub fn until_seen<'s>(self, seen: &'s mut HashSet<ObjectId>) -> FirstParents<'v, 's> {
        FirstParents {
            view: self.view,
            next: self.next,
            peeked: self.peeked,
            seen: Some(seen),
        }
    }
}

impl FirstParents<'_, '_> {
    /// The snapshot the walk returns next: the first parent of the one it
    /// returned last; `None` at a root. Read once, whether peeked or not.
    pub fn peek(&mut self) -> Result<Option<&(ObjectId, Snapshot)>, migsnap_store::Error> {
        if self.peeked.is_none() {
            match self.read_next() {
                None => return Ok(None),
                Some(Err(e)) => return Err(e),
                Some(Ok(pair)) => self.peeked = Some(pair),
            }
        }
        Ok(self.peeked.as_ref())
    }

    fn read_next(&mut self) -> Option<Result<(ObjectId, Snapshot), migsnap_store::Error>> {
        let id = self.next.take()?;
        if let Some(seen) = self.seen.as_deref_mut()
            && !seen.insert(id)
        {
            return None;
        }
        Some(self.view.read_snapshot(&id).map(|snapshot| {
            self.next = snapshot.parents.first().copied();
            (id, snapshot)
        }))
    }
}

impl Iterator for FirstParents<'_, '_> {
    type Item = Result<(ObjectId, Snapshot), migsnap_store::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.peeked.take() {
            Some(pair) => Some(Ok(pair)),
            None => self.read_next(),
        }
    }
}

/// Reads up to `limit` snapshots from `start` back along first parents.
pub fn first_parent_log(
    view: View<'_>,
    start: ObjectId,
    limit: Option<usize>,
) -> Result<Vec<LogEntry>, migsnap_store::Error> {
    let mut refs = ref_names(view)?;
    let forgotten = forgotten_set(view)?;
    let mut out = Vec::new();
    let mut line = first_parents(view, Some(start));
    while limit.is_none_or(|n| out.len() < n) {
        let Some(step) = line.next() else { break };
        let (id, snapshot) = step?;
        let schema_changed = line
            .peek()?
            .is_none_or(|(_, parent)| schema_differs(parent, &snapshot));
        out.push(entry(
            view,
            id,
            snapshot,
            schema_changed,
            &mut refs,
            &forgotten,
        )?);
    }
    Ok(out)
}

/// Every snapshot `start` descends from, along all its parents, in the
/// order `log --graph` draws them, at most `limit` of them: each after all
/// its children, the first parent of the one just taken next when it is
/// ready, else the newest ready one (by time, then id). A database's own
/// history is one line, so this is [`first_parent_log`]'s order there;
/// reference chains mirror the revision graph's forks and merges.
///
/// Reads every snapshot object reachable from `start` (an order in which
/// children come first needs them all), and images only for the entries
/// returned. Time and memory grow with the number of snapshots, never with
/// its square.
pub fn graph_log(
    view: View<'_>,
    start: ObjectId,
    limit: Option<usize>,
) -> Result<Vec<LogEntry>, migsnap_store::Error> {
    // Each snapshot object read once, with how many children it has.
    let mut snapshots: HashMap<ObjectId, Snapshot> = HashMap::new();
    let mut children: HashMap<ObjectId, usize> = HashMap::new();
    let mut unread = vec![start];
    while let Some(id) = unread.pop() {
        if snapshots.contains_key(&id) {
            continue;
        }
        let snapshot = view.read_snapshot(&id)?;
        for parent in distinct_parents(&snapshot) {
            *children.entry(parent).or_default() += 1;
            unread.push(parent);
        }
        snapshots.insert(id, snapshot);
    }
    let mut order = Vec::new();
    let mut ready: BTreeSet<(i64, ObjectId)> = BTreeSet::new();
    let mut next = Some(start);
    while let Some(id) = next.take().or_else(|| ready.pop_last().map(|(_, id)| id)) {
        if limit.is_some_and(|n| order.len() >= n) {
            break;
        }
        order.push(id);
        for (k, parent) in distinct_parents(&snapshots[&id]).into_iter().enumerate() {
            let waiting = children
                .get_mut(&parent)
                .expect("holds: every parent was counted");
            *waiting -= 1;
            match (*waiting, k) {
                (0, 0) => next = Some(parent),
                (0, _) => {
                    ready.insert((snapshots[&parent].time, parent));
                }
                _ => {}
            }
        }
    }
    let mut refs = ref_names(view)?;
    let forgotten = forgotten_set(view)?;
    order
        .into_iter()
        .map(|id| {
            // A parent comes after all its children, so it is still there.
            // Each id comes once: a snapshot's id hashes its parents' ids,
            // so no snapshot descends from itself.
            let snapshot = snapshots
                .remove(&id)
                .expect("holds: history has no cycle, so each id comes once");
            let schema_changed = snapshot
                .parents
                .first()
                .and_then(|parent| snapshots.get(parent))
                .is_none_or(|parent| schema_differs(parent, &snapshot));
            entry(view, id, snapshot, schema_changed, &mut refs, &forgotten)
        })
        .collect()
}

/// A snapshot's parents, first parent first, each once.
fn distinct_parents(snapshot: &Snapshot) -> Vec<ObjectId> {
    let mut parents: Vec<ObjectId> = Vec::with_capacity(snapshot.parents.len());
    for parent in &snapshot.parents {
        if !parents.contains(parent) {
            parents.push(*parent);
        }
    }
    parents
}

/// A schema object that `log --changed` follows, by name as the user wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectSpec {
    /// `table:NAME`.
    Table(String),
    /// `column:TABLE.COLUMN`.
    Column {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// `index:NAME`.
    Index(String),
    /// `trigger:NAME`.
    Trigger(String),
    /// `view:NAME`.
    View(String),
}

/// The forms an [`ObjectSpec`] may take, for messages.
pub const SPEC_FORMS: &str = "table:NAME, column:TABLE.COLUMN, index:NAME, trigger:NAME, view:NAME";

/// Why a `--changed` argument names no object.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Not one of the allowed forms.
    #[error("'{spec}' is not an object spec; use one of {SPEC_FORMS}")]
    Invalid {
        /// The text given.
        spec: String,
    },
}

impl FromStr for ObjectSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<ObjectSpec, SpecError> {
        let invalid = || SpecError::Invalid {
            spec: spec.to_owned(),
        };
        let (kind, name) = spec.split_once(':').ok_or_else(invalid)?;
        if name.is_empty() {
            return Err(invalid());
        }
        let name = name.to_owned();
        Ok(match kind.to_ascii_lowercase().as_str() {
            "table" => ObjectSpec::Table(name),
            "index" => ObjectSpec::Index(name),
            "trigger" => ObjectSpec::Trigger(name),
            "view" => ObjectSpec::View(name),
            "column" => {
                // Table names may hold dots; column names rarely do, so the
                // last dot separates them.
                let (table, column) = name.rsplit_once('.').ok_or_else(invalid)?;
                if table.is_empty() || column.is_empty() {
                    return Err(invalid());
                }
                ObjectSpec::Column {
                    table: table.to_owned(),
                    column: column.to_owned(),
                }
            }
            _ => return Err(invalid()),
        })
    }
}

impl fmt::Display for ObjectSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectSpec::Table(name) => write!(f, "table:{name}"),
            ObjectSpec::Column { table, column } => write!(f, "column:{table}.{column}"),
            ObjectSpec::Index(name) => write!(f, "index:{name}"),
            ObjectSpec::Trigger(name) => write!(f, "trigger:{name}"),
            ObjectSpec::View(name) => write!(f, "view:{name}"),
        }
    }
}

/// The object as one schema defines it, with its exact `CREATE` text left
/// out: formatting is not a change.
#[derive(Debug, PartialEq)]
enum Definition {
    Table(Table),
    Column(Column),
    Index(Index),
    Trigger(Trigger),
    View(schema::View),
}

impl ObjectSpec {
    /// The object's definition in `schema`, if it has one.
    fn find(&self, schema: &Schema) -> Option<Definition> {
        Some(match self {
            ObjectSpec::Table(name) => Definition::Table(Table {
                sql: None,
                ..schema.tables.get(&fold(name))?.clone()
            }),
            ObjectSpec::Column { table, column } => {
                Definition::Column(schema.tables.get(&fold(table))?.column(column)?.clone())
            }
            ObjectSpec::Index(name) => Definition::Index(Index {
                sql: None,
                ..schema.indexes.get(&fold(name))?.clone()
            }),
            ObjectSpec::Trigger(name) => Definition::Trigger(Trigger {
                sql: String::new(),
                ..schema.triggers.get(&fold(name))?.clone()
            }),
            ObjectSpec::View(name) => Definition::View(schema::View {
                sql: String::new(),
                ..schema.views.get(&fold(name))?.clone()
            }),
        })
    }

    /// What happened to the object between `parent` (none for a root) and
    /// `schema`; `None` when nothing did.
    pub fn change(&self, parent: Option<&Schema>, schema: &Schema) -> Option<ObjectChange> {
        let before = parent.and_then(|p| self.find(p));
        let after = self.find(schema);
        match (before, after) {
            (None, Some(_)) => Some(ObjectChange::Appeared),
            (Some(_), None) => Some(ObjectChange::Disappeared),
            (Some(before), Some(after)) if before != after => Some(ObjectChange::Changed),
            _ => None,
        }
    }
}

/// What happened to a followed object in one snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectChange {
    /// Absent from the first parent (or there is none), present here.
    Appeared,
    /// Present in both, defined differently.
    Changed,
    /// Present in the first parent, absent here.
    Disappeared,
}

impl ObjectChange {
    /// The lowercase verb, as `log` prints it and JSON spells it.
    pub fn verb(self) -> &'static str {
        match self {
            ObjectChange::Appeared => "appeared",
            ObjectChange::Changed => "changed",
            ObjectChange::Disappeared => "disappeared",
        }
    }
}

/// Why a history walk over schemas failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] migsnap_store::Error),
    /// A snapshot's schema blob does not decode.
    #[error("cannot read schema {schema:.12} of snapshot {snapshot:.12}")]
    Schema {
        /// The snapshot.
        snapshot: ObjectId,
        /// Its schema blob.
        schema: ObjectId,
        /// Why.
        #[source]
        source: SchemaError,
    },
}

/// Decoded schemas by blob id. Most consecutive snapshots share a schema
/// blob, so a walk decodes each distinct schema once.
#[derive(Default)]
pub struct SchemaCache {
    schemas: HashMap<ObjectId, Rc<Schema>>,
}

impl SchemaCache {
    /// The schema of `snapshot` (whose schema blob is `schema`).
    pub fn get(
        &mut self,
        view: View<'_>,
        snapshot: ObjectId,
        schema: ObjectId,
    ) -> Result<Rc<Schema>, LogError> {
        if let Some(found) = self.schemas.get(&schema) {
            return Ok(Rc::clone(found));
        }
        let decoded = Rc::new(decode(view, snapshot, schema)?);
        self.schemas.insert(schema, Rc::clone(&decoded));
        Ok(decoded)
    }
}

/// The schema `snapshot` recorded: its schema blob, decoded. `id` (the
/// snapshot's id) names it in the error. A walk over many snapshots uses a
/// [`SchemaCache`] instead.
pub fn snapshot_schema(
    view: View<'_>,
    id: ObjectId,
    snapshot: &Snapshot,
) -> Result<Schema, LogError> {
    decode(view, id, snapshot.schema)
}

fn decode(view: View<'_>, snapshot: ObjectId, schema: ObjectId) -> Result<Schema, LogError> {
    let bytes = view.read_blob(&schema)?;
    Schema::from_blob(&bytes).map_err(|source| LogError::Schema {
        snapshot,
        schema,
        source,
    })
}

/// Walks from `start` back along first parents and keeps the snapshots where
/// `spec`'s object appeared, changed or disappeared compared with the first
/// parent, newest first, at most `limit` of them.
///
/// Reads snapshot objects and schema blobs only, never an image or a page;
/// the image objects (geometry, for display) are read for the kept entries.
pub fn changed_log(
    view: View<'_>,
    start: ObjectId,
    spec: &ObjectSpec,
    limit: Option<usize>,
) -> Result<Vec<(LogEntry, ObjectChange)>, LogError> {
    let mut cache = SchemaCache::default();
    let mut found = Vec::new();
    let mut line = first_parents(view, Some(start));
    while limit.is_none_or(|n| found.len() < n) {
        let Some(step) = line.next() else { break };
        let (id, snapshot) = step?;
        let change = match line.peek()? {
            // Same blob, same object.
            Some((_, parent)) if parent.schema == snapshot.schema => None,
            Some((parent_id, parent)) => {
                let parent_schema = cache.get(view, *parent_id, parent.schema)?;
                let schema = cache.get(view, id, snapshot.schema)?;
                spec.change(Some(&parent_schema), &schema)
            }
            None => spec.change(None, &*cache.get(view, id, snapshot.schema)?),
        };
        if let Some(change) = change {
            found.push((id, snapshot, change));
        }
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let mut refs = ref_names(view)?;
    let forgotten = forgotten_set(view)?;
    found
        .into_iter()
        .map(|(id, snapshot, change)| {
            let schema_changed = match snapshot.parents.first() {
                Some(parent) => schema_differs(&view.read_snapshot(parent)?, &snapshot),
                None => true,
            };
            let entry = entry(view, id, snapshot, schema_changed, &mut refs, &forgotten)?;
            Ok((entry, change))
        })
        .collect()
}

/// The schema change `entry` made: the diff from its first parent's schema
/// (an empty schema for a root) to its own. Same blob, empty diff, without
/// decoding anything.
pub fn patch(
    view: View<'_>,
    cache: &mut SchemaCache,
    entry: &LogEntry,
) -> Result<SchemaDiff, LogError> {
    let parent = match entry.snapshot.parents.first() {
        Some(parent_id) => {
            let parent = view.read_snapshot(parent_id)?;
            if parent.schema == entry.snapshot.schema {
                return Ok(SchemaDiff::default());
            }
            cache.get(view, *parent_id, parent.schema)?
        }
        None => Rc::new(Schema::default()),
    };
    let schema = cache.get(view, entry.id, entry.snapshot.schema)?;
    Ok(diff(&parent, &schema))
}

/// What changed in a database's schema since its last snapshot.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SinceSnapshot {
    /// The last snapshot: the head of the database's history.
    pub snapshot: ObjectId,
    /// From that snapshot's schema to the live one (`added`: new in the
    /// database); empty when both mean the same.
    pub changes: SchemaDiff,
}

/// What changed in `db`'s schema since its last snapshot, given the live
/// `schema` and its `semantic` hash; `None` before its first
/// snapshot. The same meaning by recorded hash needs no decoding.
pub fn since_last_snapshot(
    view: View<'_>,
    db: &Tracked,
    schema: &Schema,
    semantic: SchemaHash,
) -> Result<Option<SinceSnapshot>, LogError> {
    let Some(head) = view.find_ref(&db.head_ref())? else {
        return Ok(None);
    };
    let snapshot = view.read_snapshot(&head)?;
    let same = Recorded::from_snapshot(&snapshot).schema_semantic == Some(semantic);
    let changes = if same {
        SchemaDiff::default()
    } else {
        diff(
            &*SchemaCache::default().get(view, head, snapshot.schema)?,
            schema,
        )
    };
    Ok(Some(SinceSnapshot {
        snapshot: head,
        changes,
    }))
}

/// Whether `child`'s schema means something else than `parent`'s: by the
/// recorded semantic hashes when both have one (so reformatted SQL is no
/// change), else by schema blob.
fn schema_differs(parent: &Snapshot, child: &Snapshot) -> bool {
    let semantic = |s: &Snapshot| Recorded::from_snapshot(s).schema_semantic;
    match (semantic(parent), semantic(child)) {
        (Some(a), Some(b)) => a != b,
        _ => parent.schema != child.schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::SqlProject;
    use crate::repo::Repo;
    use crate::schema::{Column, Table};

    /// Nothing before the first snapshot; after it, no change until the
    /// database gains a table, which is then the one change.
    #[test]
    fn since_last_snapshot_diffs_the_live_schema_against_the_head() {
        let SqlProject {
            dir: _dir,
            mut repo,
            db,
            ..
        } = SqlProject::new();
        let tracked = repo.track("app", &db).unwrap();
        let wait = std::time::Duration::from_secs(5);
        let since = |repo: &Repo| {
            let live = crate::migrations::drift::LiveDatabase::capture(&db, wait).unwrap();
            since_last_snapshot(repo.store.view(), &tracked, &live.schema, live.semantic).unwrap()
        };
        assert!(since(&repo).is_none());
        let options = crate::snapshots::snapshot::SnapshotOptions {
            busy_timeout: wait,
            ..Default::default()
        };
        crate::snapshots::snapshot::take(
            &mut repo,
            &tracked,
            &options,
            &mut migsnap_store::progress::Silent,
        )
        .unwrap();
        let unchanged = since(&repo).unwrap();
        assert!(unchanged.changes.is_empty(), "{unchanged:?}");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE extra (a)")
            .unwrap();
        let changed = since(&repo).unwrap();
        assert_eq!(changed.snapshot, unchanged.snapshot);
        let names: Vec<&str> = changed
            .changes
            .changes
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["extra"]);
    }

    #[test]
    fn specs_parse_and_print_back() {
        for text in [
            "table:users",
            "column:users.email",
            "column:my.schema.col",
            "index:ix",
            "trigger:tr",
            "view:v",
        ] {
            assert_eq!(text.parse::<ObjectSpec>().unwrap().to_string(), text);
        }
        assert_eq!(
            "column:a.b.c".parse::<ObjectSpec>().unwrap(),
            ObjectSpec::Column {
                table: "a.b".into(),
                column: "c".into()
            }
        );
        for bad in [
            "",
            "table",
            "table:",
            "column:t",
            "column:t.",
            "column:.c",
            "seq:x",
        ] {
            assert!(bad.parse::<ObjectSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn changes_compare_definitions_not_text() {
        let mut before = Schema::default();
        let mut table = Table::new("t", vec![Column::new("a", "INTEGER")]);
        table.sql = Some("CREATE TABLE t(a INTEGER)".into());
        before.insert_table(table.clone());
        let mut reformatted = Schema::default();
        table.sql = Some("create table t (a integer)".into());
        reformatted.insert_table(table.clone());
        let mut widened = Schema::default();
        table.columns.push(Column::new("b", "TEXT"));
        widened.insert_table(table);

        let t: ObjectSpec = "table:T".parse().unwrap();
        let a: ObjectSpec = "column:t.A".parse().unwrap();
        let b: ObjectSpec = "column:t.b".parse().unwrap();
        assert_eq!(t.change(None, &before), Some(ObjectChange::Appeared));
        assert_eq!(t.change(Some(&before), &reformatted), None);
        assert_eq!(
            t.change(Some(&before), &widened),
            Some(ObjectChange::Changed)
        );
        assert_eq!(a.change(Some(&before), &widened), None);
        assert_eq!(
            b.change(Some(&before), &widened),
            Some(ObjectChange::Appeared)
        );
        assert_eq!(
            b.change(Some(&widened), &Schema::default()),
            Some(ObjectChange::Disappeared)
        );
        assert_eq!(b.change(None, &Schema::default()), None);
    }

    use migsnap_store::{Added, Object, ObjectStore, Store};

    /// A schema-only snapshot of `app` with only parents, schema and time.
    fn bare_snapshot(parents: Vec<ObjectId>, schema: ObjectId, time: i64) -> Snapshot {
        Snapshot {
            parents,
            schema,
            image: None,
            database: "app".into(),
            time,
            message: String::new(),
            host: String::new(),
            tool: String::new(),
            added: Added::default(),
            headers: Vec::new(),
        }
    }

    /// Children before parents; the first parent of the one just taken
    /// next, so a line is drawn whole; else the newest ready one.
    #[test]
    fn graph_log_takes_children_first_and_follows_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join(".migsnap")).unwrap();
        let schema = store.write(&Object::Blob(b"schema".to_vec())).unwrap();
        let mut write = |parents, time| {
            store
                .write(&Object::Snapshot(bare_snapshot(parents, schema, time)))
                .unwrap()
        };
        let root = write(Vec::new(), 1);
        let left1 = write(vec![root], 2);
        let old = write(Vec::new(), 3);
        let right1 = write(vec![root], 4);
        let left2 = write(vec![left1], 5);
        // A repeated parent is one edge.
        let merge = write(vec![left2, old, right1, old], 6);
        let view = store.view();
        let ids = |limit| -> Vec<ObjectId> {
            graph_log(view, merge, limit)
                .unwrap()
                .into_iter()
                .map(|entry| entry.id)
                .collect()
        };
        assert_eq!(ids(None), [merge, left2, left1, right1, root, old]);
        assert_eq!(ids(Some(2)), [merge, left2]);
        assert!(ids(Some(0)).is_empty());
        let entries = graph_log(view, left2, None).unwrap();
        let changed: Vec<bool> = entries.iter().map(|e| e.schema_changed).collect();
        // Only the root differs from an (absent) parent.
        assert_eq!(changed, [false, false, true]);
    }

    #[test]
    fn first_parents_walk_peek_and_stop_where_lines_join() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join(".migsnap")).unwrap();
        let schema = store.write(&Object::Blob(b"schema".to_vec())).unwrap();
        let mut write = |parents, time| {
            store
                .write(&Object::Snapshot(bare_snapshot(parents, schema, time)))
                .unwrap()
        };
        let root = write(Vec::new(), 1);
        let middle = write(vec![root], 2);
        let side = write(Vec::new(), 3);
        // A merge's second parent is not on the first-parent line.
        let tip = write(vec![middle, side], 4);
        let view = store.view();
        let ids = |walk: FirstParents<'_, '_>| -> Vec<ObjectId> {
            walk.map(|step| step.unwrap().0).collect()
        };

        assert_eq!(ids(first_parents(view, Some(tip))), [tip, middle, root]);
        assert!(ids(first_parents(view, None)).is_empty());

        let mut walk = first_parents(view, Some(tip));
        assert_eq!(walk.next().unwrap().unwrap().0, tip);
        assert_eq!(walk.peek().unwrap().unwrap().0, middle);
        assert_eq!(ids(walk), [middle, root]);

        let mut seen = HashSet::new();
        assert_eq!(
            ids(first_parents(view, Some(middle)).until_seen(&mut seen)),
            [middle, root]
        );
        assert_eq!(
            ids(first_parents(view, Some(tip)).until_seen(&mut seen)),
            [tip]
        );
    }
}
