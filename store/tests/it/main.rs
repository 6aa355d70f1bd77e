//! Integration tests of the store crate's public API on real store files.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use migsnap_store::bulk::Proof;
use migsnap_store::fsck::{self, Fault, FsckOptions};
use migsnap_store::gc::{self, GcOptions};
use migsnap_store::progress::Silent;
use migsnap_store::{
    Added, Change, Error, Expected, Image, Kind, Listing, Object, ObjectId, ObjectStore, Prefix,
    PrefixResolution, RefEdit, RefName, Snapshot, Store,
};
use rusqlite::Connection;

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(&dir.path().join(".migsnap")).unwrap();
    (dir, store)
}

/// fsck with every object read back and re-hashed.
fn fsck_read_all(store: &Store) -> fsck::FsckReport {
    fsck::check(
        store,
        FsckOptions {
            read_data: fsck::ReadData::All,
        },
        &mut Silent,
    )
    .unwrap()
}

fn store_conn(dir: &tempfile::TempDir) -> Connection {
    Connection::open(dir.path().join(".migsnap/store.db")).unwrap()
}

fn object_rows(dir: &tempfile::TempDir) -> i64 {
    store_conn(dir)
        .query_row("SELECT count(*) FROM objects", [], |r| r.get(0))
        .unwrap()
}

/// Incompressible bytes for `(label, n)`.
fn noise(label: &str, n: u64, len: usize) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(label.as_bytes());
    h.update(&n.to_le_bytes());
    let mut out = vec![0; len];
    h.finalize_xof().fill(&mut out);
    out
}

fn name(text: &str) -> RefName {
    RefName::new(text).unwrap()
}

fn update(ref_name: &str, expected: Expected, new: ObjectId) -> RefEdit {
    RefEdit {
        name: name(ref_name),
        change: Change::Update { expected, new },
    }
}

/// Writes a snapshot with pages `pages` (ids of blobs already written or
/// written here) on top of `parents`, in one transaction, pointing `ref_name`
/// at it when given. Returns its id.
fn snapshot(
    store: &mut Store,
    pages: &[Vec<u8>],
    parents: Vec<ObjectId>,
    ref_name: Option<&str>,
    message: &str,
) -> ObjectId {
    let mut tx = store.transaction().unwrap();
    let blocks: Vec<ObjectId> = pages
        .iter()
        .map(|p| tx.write(&Object::Blob(p.clone())).unwrap())
        .collect();
    let image = tx
        .write(&Object::Image(Image {
            block_size: 4096,
            block_count: blocks.len() as u32,
            digest: [0; 32],
            listing: Listing::Full(blocks),
        }))
        .unwrap();
    let schema = tx
        .write(&Object::Blob(b"CREATE TABLE t(x);".to_vec()))
        .unwrap();
    let id = tx
        .write(&Object::Snapshot(Snapshot {
            parents,
            schema,
            image: Some(image),
            database: "db".into(),
            time: 1_700_000_000,
            message: message.into(),
            host: "host".into(),
            tool: "test".into(),
            added: Added::default(),
            headers: vec![("k".into(), "v".into())],
        }))
        .unwrap();
    let edits: Vec<RefEdit> = ref_name
        .map(|r| {
            let current = tx.view().find_ref(&name(r)).unwrap();
            update(
                r,
                current.map_or(Expected::MustNotExist, Expected::MustEqual),
                id,
            )
        })
        .into_iter()
        .collect();
    tx.commit(&edits, message).unwrap();
    id
}

/// Flips one bit in the middle of object `id`'s stored bytes and nothing
/// else: its pack is rewritten uncompressed with the bit flipped inside that
/// one object's range.
fn flip_a_byte(store_db: &Path, id: &ObjectId) {
    let conn = Connection::open(store_db).unwrap();
    let (pack, offset, len): (i64, i64, i64) = conn
        .query_row(
            "SELECT pack, offset, raw_len FROM objects WHERE id = ?1",
            [id.as_bytes().as_slice()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let (raw_len, compression, dictionary, data): (i64, i64, Option<i64>, Vec<u8>) = conn
        .query_row(
            "SELECT raw_len, compression, dictionary, data FROM packs WHERE seq = ?1",
            [pack],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    let mut raw = if compression == 0 {
        data
    } else {
        assert_eq!(dictionary, None, "test stores have no dictionary");
        zstd::bulk::decompress(&data, raw_len as usize).unwrap()
    };
    raw[(offset + len / 2) as usize] ^= 0x01;
    let n = conn
        .execute(
            "UPDATE packs SET data = ?1, compression = 0, dictionary = NULL WHERE seq = ?2",
            rusqlite::params![raw, pack],
        )
        .unwrap();
    assert_eq!(n, 1);
}

fn delete_row(store_db: &Path, id: &ObjectId) {
    let conn = Connection::open(store_db).unwrap();
    let n = conn
        .execute(
            "DELETE FROM objects WHERE id = ?1",
            [id.as_bytes().as_slice()],
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn objects_of_every_kind_round_trip() {
    let (dir, mut store) = new_store();
    let objects = [
        Object::Blob(Vec::new()),
        Object::Blob(b"hello".to_vec()),
        Object::Blob(noise("page", 1, 4096)),
        Object::Blob(vec![0; 65536]),
        Object::Image(Image {
            block_size: 4096,
            block_count: 2,
            digest: [7; 32],
            listing: Listing::Full(vec![ObjectId::hash(b"a"), ObjectId::hash(b"b")]),
        }),
        Object::Snapshot(Snapshot {
            parents: vec![ObjectId::hash(b"p")],
            schema: ObjectId::hash(b"s"),
            image: None,
            database: "webui".into(),
            time: -5,
            message: "ünïcode\nmessage".into(),
            host: "h".into(),
            tool: "t".into(),
            added: Added {
                objects: 3,
                bytes: 9,
            },
            headers: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        }),
    ];
    let ids: Vec<ObjectId> = objects.iter().map(|o| store.write(o).unwrap()).collect();
    for (object, id) in objects.iter().zip(&ids) {
        // The id is the hash of the canonical encoding.
        assert_eq!(
            *id,
            ObjectId::hash(&migsnap_store::codec::encode_object(object))
        );
        assert!(store.contains(id).unwrap());
        assert_eq!(&store.read(id).unwrap(), object);
        assert_eq!(
            store.view().info(id).unwrap().map(|i| i.kind),
            Some(object.kind())
        );
    }
    let Object::Blob(page) = &objects[2] else {
        unreachable!()
    };
    assert_eq!(ids[2], migsnap_store::codec::blob_id(page));
    assert_eq!(store.view().read_blob(&ids[1]).unwrap(), b"hello");
    assert!(matches!(
        store.view().read_blob(&ids[4]),
        Err(Error::WrongKind { .. })
    ));

    // Absent objects.
    let absent = ObjectId::hash(b"never written");
    assert!(!store.contains(&absent).unwrap());
    assert_eq!(store.try_read(&absent).unwrap(), None);
    assert!(matches!(store.read(&absent), Err(Error::NotFound { id }) if id == absent));

    // Everything survives closing and reopening.
    drop(store);
    let store = Store::open(&dir.path().join(".migsnap")).unwrap();
    for (object, id) in objects.iter().zip(&ids) {
        assert_eq!(&store.read(id).unwrap(), object);
    }
    let read_only = Store::open_read_only(&dir.path().join(".migsnap")).unwrap();
    assert_eq!(read_only.read(&ids[1]).unwrap(), objects[1]);
}

#[test]
fn writes_are_idempotent() {
    let (dir, mut store) = new_store();
    let blob = Object::Blob(noise("x", 0, 4096));
    let id = store.write(&blob).unwrap();
    let rows = object_rows(&dir);
    assert_eq!(rows, 1);
    assert_eq!(store.write(&blob).unwrap(), id);
    assert_eq!(object_rows(&dir), rows);

    // Within a transaction, a known object adds nothing.
    let mut tx = store.transaction().unwrap();
    assert_eq!(tx.write(&blob).unwrap(), id);
    assert_eq!(tx.added(), Added::default());
    let other = tx.write(&Object::Blob(noise("y", 0, 4096))).unwrap();
    assert_eq!(tx.added().objects, 1);
    assert!(tx.added().bytes > 0);
    // ... and writing the new one again in the same transaction adds nothing.
    tx.write(&Object::Blob(noise("y", 0, 4096))).unwrap();
    assert_eq!(tx.added().objects, 1);
    tx.commit(&[], "").unwrap();
    assert_eq!(object_rows(&dir), 2);
    assert_eq!(
        store.read(&other).unwrap(),
        Object::Blob(noise("y", 0, 4096))
    );
}

#[test]
fn flipped_stored_bytes_are_reported_as_corrupt_not_returned() {
    let (dir, mut store) = new_store();
    let damaged = store.write(&Object::Blob(noise("a", 0, 4096))).unwrap();
    let healthy = store.write(&Object::Blob(noise("b", 0, 4096))).unwrap();
    drop(store);
    flip_a_byte(&dir.path().join(".migsnap/store.db"), &damaged);

    let store = Store::open(&dir.path().join(".migsnap")).unwrap();
    match store.read(&damaged) {
        Err(Error::Corrupt { id, actual }) => {
            assert_eq!(id, damaged);
            assert_ne!(actual, damaged);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(
        store.try_read(&damaged),
        Err(Error::Corrupt { .. })
    ));
    // Presence is not verification; the neighbour is unharmed.
    assert!(store.contains(&damaged).unwrap());
    assert_eq!(
        store.read(&healthy).unwrap(),
        Object::Blob(noise("b", 0, 4096))
    );
}

/// A bulk read hashes each blob unless the caller proves them itself: a
/// flipped blob is refused, naming it, with `Proof::EachBlob`, and handed
/// over as stored with `Proof::ByCaller`, its neighbours intact either way.
#[test]
fn a_bulk_read_hashes_each_blob_unless_the_caller_proves_them() {
    let (dir, mut store) = new_store();
    let pages: Vec<Vec<u8>> = (0..3).map(|n| noise("p", n, 4096)).collect();
    let ids: Vec<ObjectId> = pages
        .iter()
        .map(|p| store.write(&Object::Blob(p.clone())).unwrap())
        .collect();
    drop(store);
    flip_a_byte(&dir.path().join(".migsnap/store.db"), &ids[1]);
    let store = Store::open(&dir.path().join(".migsnap")).unwrap();

    let mut got = Vec::new();
    let err =
        migsnap_store::bulk::read_blobs::<Error>(store.view(), &ids, 1, Proof::EachBlob, |bytes| {
            got.push(bytes);
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::Corrupt { id, .. } if id == ids[1]),
        "{err}"
    );
    assert_eq!(got, pages[..1], "only the page before the flipped one");

    let mut got = Vec::new();
    migsnap_store::bulk::read_blobs::<Error>(store.view(), &ids, 2, Proof::ByCaller, |bytes| {
        got.push(bytes);
        Ok(())
    })
    .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!((&got[0], &got[2]), (&pages[0], &pages[2]));
    let flipped: Vec<usize> = (0..4096).filter(|&i| got[1][i] != pages[1][i]).collect();
    assert_eq!(flipped.len(), 1, "the stored bytes, one bit off, unhashed");
}

#[test]
fn a_failed_compare_and_swap_commits_nothing() {
    let (dir, mut store) = new_store();
    let first = store.write(&Object::Blob(b"one".to_vec())).unwrap();
    let tx = store.transaction().unwrap();
    tx.commit(
        &[update("heads/a", Expected::MustNotExist, first)],
        "create",
    )
    .unwrap();
    let rows = object_rows(&dir);
    let reflog = store.view().reflog(None).unwrap();

    // Expected value wrong: the object written in the same transaction, the
    // first (valid) edit and the reflog all roll back.
    let mut tx = store.transaction().unwrap();
    let orphan = tx.write(&Object::Blob(noise("orphan", 0, 4096))).unwrap();
    let err = tx
        .commit(
            &[
                update("tags/ok", Expected::MustNotExist, orphan),
                update("heads/a", Expected::MustEqual(orphan), orphan),
            ],
            "should fail",
        )
        .unwrap_err();
    match err {
        Error::RefMismatch {
            name: n,
            expected,
            actual,
        } => {
            assert_eq!(n.as_str(), "heads/a");
            assert_eq!(expected, orphan.to_string());
            assert_eq!(actual, first.to_string());
        }
        other => panic!("expected RefMismatch, got {other:?}"),
    }
    assert!(
        !store.contains(&orphan).unwrap(),
        "object of a failed commit is stored"
    );
    assert_eq!(object_rows(&dir), rows);
    assert_eq!(store.view().find_ref(&name("tags/ok")).unwrap(), None);
    assert_eq!(
        store.view().find_ref(&name("heads/a")).unwrap(),
        Some(first)
    );
    assert_eq!(store.view().reflog(None).unwrap(), reflog);

    // MustNotExist on an existing ref fails the same way.
    let tx = store.transaction().unwrap();
    assert!(matches!(
        tx.commit(&[update("heads/a", Expected::MustNotExist, orphan)], "x"),
        Err(Error::RefMismatch { actual, .. }) if actual == first.to_string()
    ));
    // A dropped transaction rolls back too.
    {
        let mut tx = store.transaction().unwrap();
        tx.write(&Object::Blob(b"dropped".to_vec())).unwrap();
    }
    assert!(
        !store
            .contains(&migsnap_store::codec::blob_id(b"dropped"))
            .unwrap()
    );
    assert_eq!(object_rows(&dir), rows);
}

#[test]
fn commits_append_reflog_entries() {
    let (_dir, mut store) = new_store();
    let a = store.write(&Object::Blob(b"a".to_vec())).unwrap();
    let b = store.write(&Object::Blob(b"b".to_vec())).unwrap();
    let before = migsnap_store::odb::now();
    let tx = store.transaction().unwrap();
    tx.commit(
        &[
            update("heads/x", Expected::MustNotExist, a),
            update("tags/t", Expected::Any, a),
        ],
        "first",
    )
    .unwrap();
    let tx = store.transaction().unwrap();
    tx.commit(&[update("heads/x", Expected::MustEqual(a), b)], "second")
        .unwrap();
    let tx = store.transaction().unwrap();
    tx.commit(
        &[RefEdit {
            name: name("tags/t"),
            change: Change::Delete {
                expected: Expected::MustEqual(a),
            },
        }],
        "delete tag",
    )
    .unwrap();

    let x = store.view().reflog(Some(&name("heads/x"))).unwrap();
    let summary: Vec<_> = x
        .iter()
        .map(|e| (e.old, e.new, e.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        [(None, Some(a), "first"), (Some(a), Some(b), "second")]
    );
    assert!(
        x.iter()
            .all(|e| e.time >= before && e.time <= migsnap_store::odb::now())
    );
    let all = store.view().reflog(None).unwrap();
    let order: Vec<_> = all
        .iter()
        .map(|e| (e.name.as_str().to_owned(), e.message.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("heads/x".to_owned(), "first"),
            ("tags/t".to_owned(), "first"),
            ("heads/x".to_owned(), "second"),
            ("tags/t".to_owned(), "delete tag"),
        ]
    );
    assert_eq!(all[3].old, Some(a));
    assert_eq!(all[3].new, None);
    assert_eq!(store.view().find_ref(&name("tags/t")).unwrap(), None);
    assert_eq!(store.view().refs("").unwrap(), [(name("heads/x"), b)]);
    assert_eq!(store.view().refs("tags/").unwrap(), []);
}

#[test]
fn prefixes_resolve_to_none_one_or_all_candidates() {
    let (_dir, mut store) = new_store();
    // Blobs until two ids share four hex digits (~300 by the birthday bound).
    let mut seen: HashMap<String, Vec<u8>> = HashMap::new();
    let (a, b) = (0u64..)
        .find_map(|n| {
            let bytes = noise("prefix", n, 16);
            let key = migsnap_store::codec::blob_id(&bytes).to_string()[..4].to_owned();
            seen.insert(key, bytes.clone()).map(|other| (other, bytes))
        })
        .unwrap();
    let id_a = store.write(&Object::Blob(a)).unwrap();
    let id_b = store.write(&Object::Blob(b)).unwrap();
    let (lo, hi) = if id_a < id_b {
        (id_a, id_b)
    } else {
        (id_b, id_a)
    };
    let (lo_hex, hi_hex) = (lo.to_string(), hi.to_string());
    let shared = lo_hex
        .bytes()
        .zip(hi_hex.bytes())
        .take_while(|(x, y)| x == y)
        .count();
    assert!(shared >= 4);
    let view = store.view();
    let prefix = |text: &str| text.parse::<Prefix>().unwrap();

    assert_eq!(
        view.resolve_prefix(&prefix(&lo_hex[..shared]), Kind::Blob)
            .unwrap(),
        PrefixResolution::Ambiguous(vec![lo, hi])
    );
    assert_eq!(
        view.resolve_prefix(&prefix(&lo_hex[..shared + 1]), Kind::Blob)
            .unwrap(),
        PrefixResolution::One(lo)
    );
    assert_eq!(
        view.resolve_prefix(&prefix(&hi_hex.to_uppercase()), Kind::Blob)
            .unwrap(),
        PrefixResolution::One(hi)
    );
    // Resolution is by kind: no snapshot has these prefixes.
    assert_eq!(
        view.resolve_prefix(&prefix(&lo_hex[..shared]), Kind::Snapshot)
            .unwrap(),
        PrefixResolution::None
    );
    // A prefix just past both.
    let mut next = hi.as_bytes().to_owned();
    next[31] = next[31].wrapping_add(1);
    let beyond = ObjectId::from_bytes(next).to_string();
    assert_eq!(
        view.resolve_prefix(&prefix(&beyond), Kind::Blob).unwrap(),
        PrefixResolution::None
    );
    // Too short or not hex.
    assert!("abc".parse::<Prefix>().is_err());
    assert!("wxyz".parse::<Prefix>().is_err());
}

#[test]
fn gc_deletes_exactly_the_unreachable_objects() {
    let (dir, mut store) = new_store();
    let shared = noise("shared", 0, 4096);
    let kept_page = noise("kept", 0, 4096);
    let lost_page = noise("lost", 0, 4096);
    let s1 = snapshot(
        &mut store,
        &[shared.clone(), kept_page.clone()],
        vec![],
        Some("heads/a"),
        "s1",
    );
    let s2 = snapshot(
        &mut store,
        &[shared.clone(), kept_page.clone(), noise("kept", 1, 4096)],
        vec![s1],
        Some("heads/a"),
        "s2",
    );
    // A snapshot nothing points at, sharing one page with the kept history.
    let lost = snapshot(
        &mut store,
        &[shared.clone(), lost_page.clone()],
        vec![],
        None,
        "lost",
    );
    let lost_page_id = migsnap_store::codec::blob_id(&lost_page);
    let rows = object_rows(&dir);

    let dry = gc::collect(
        &mut store,
        GcOptions {
            grace_secs: 0,
            dry_run: true,
        },
        &mut Silent,
    )
    .unwrap();
    assert_eq!(object_rows(&dir), rows, "dry run deleted objects");
    let report = gc::collect(
        &mut store,
        GcOptions {
            grace_secs: 0,
            dry_run: false,
        },
        &mut Silent,
    )
    .unwrap();
    assert_eq!(report.deleted_objects, dry.deleted_objects);
    // The lost snapshot, its image and its own page; not the shared page
    // nor the shared schema.
    assert_eq!(report.deleted_objects, 3, "{report:?}");
    assert_eq!(object_rows(&dir), rows - 3);
    assert!(!store.contains(&lost).unwrap());
    assert!(!store.contains(&lost_page_id).unwrap());
    for id in [
        s1,
        s2,
        migsnap_store::codec::blob_id(&shared),
        migsnap_store::codec::blob_id(&kept_page),
    ] {
        store.read(&id).unwrap();
    }
    assert!(fsck_read_all(&store).is_clean());
    // Collecting again finds nothing.
    let again = gc::collect(
        &mut store,
        GcOptions {
            grace_secs: 0,
            dry_run: false,
        },
        &mut Silent,
    )
    .unwrap();
    assert_eq!(again.deleted_objects, 0);
    assert_eq!(again.freed_bytes, 0);
}

#[test]
fn gc_keeps_what_young_reflog_entries_point_at() {
    let (_dir, mut store) = new_store();
    let page = noise("p", 0, 4096);
    let s1 = snapshot(
        &mut store,
        std::slice::from_ref(&page),
        vec![],
        Some("tags/old"),
        "s1",
    );
    let tx = store.transaction().unwrap();
    tx.commit(
        &[RefEdit {
            name: name("tags/old"),
            change: Change::Delete {
                expected: Expected::MustEqual(s1),
            },
        }],
        "delete",
    )
    .unwrap();
    let report = gc::collect(
        &mut store,
        GcOptions {
            grace_secs: 3600,
            dry_run: false,
        },
        &mut Silent,
    )
    .unwrap();
    assert_eq!(report.deleted_objects, 0);
    assert_eq!(report.expired_reflog, 0);
    store.read(&s1).unwrap();
}

#[test]
fn fsck_names_missing_and_corrupt_objects_and_what_they_affect() {
    let (dir, mut store) = new_store();
    let store_db = dir.path().join(".migsnap/store.db");
    let shared = noise("shared", 0, 4096);
    let only_s2 = noise("only-s2", 0, 4096);
    let s1 = snapshot(
        &mut store,
        std::slice::from_ref(&shared),
        vec![],
        None,
        "s1",
    );
    let s2 = snapshot(
        &mut store,
        &[shared.clone(), only_s2.clone()],
        vec![s1],
        Some("heads/db"),
        "s2",
    );
    let clean = fsck_read_all(&store);
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!(clean.snapshots, 2);
    drop(store);

    let shared_id = migsnap_store::codec::blob_id(&shared);
    let only_id = migsnap_store::codec::blob_id(&only_s2);
    delete_row(&store_db, &shared_id);
    flip_a_byte(&store_db, &only_id);
    let store = Store::open(&dir.path().join(".migsnap")).unwrap();

    // Without reading data, only the missing page shows.
    let quick = fsck::check(&store, FsckOptions::default(), &mut Silent).unwrap();
    assert_eq!(quick.problems.len(), 1, "{quick:?}");
    assert_eq!(quick.problems[0].id, shared_id);
    assert_eq!(quick.problems[0].fault, Fault::Missing);
    assert_eq!(quick.problems[0].snapshots, BTreeSet::from([s1, s2]));

    let full = fsck_read_all(&store);
    assert!(!full.is_clean());
    assert_eq!(full.problems.len(), 2, "{full:?}");
    let missing = full.problems.iter().find(|p| p.id == shared_id).unwrap();
    assert_eq!(missing.fault, Fault::Missing);
    assert_eq!(missing.snapshots, BTreeSet::from([s1, s2]));
    let corrupt = full.problems.iter().find(|p| p.id == only_id).unwrap();
    assert!(matches!(corrupt.fault, Fault::Corrupt(_)), "{corrupt:?}");
    assert_eq!(corrupt.snapshots, BTreeSet::from([s2]));

    // A ref whose snapshot is missing is reported with the ref.
    drop(store);
    delete_row(&store_db, &s2);
    let store = Store::open(&dir.path().join(".migsnap")).unwrap();
    let report = fsck::check(&store, FsckOptions::default(), &mut Silent).unwrap();
    let head = report.problems.iter().find(|p| p.id == s2).unwrap();
    assert_eq!(head.fault, Fault::Missing);
    assert_eq!(head.refs, BTreeSet::from([name("heads/db")]));
}

/// A page of text that zstd compresses, and that a dictionary helps with.
fn text_page(n: u64) -> Vec<u8> {
    let mut page = Vec::with_capacity(4096);
    let mut i = 0;
    while page.len() < 4096 {
        page.extend_from_slice(
            format!("row {n}-{i} lorem ipsum dolor {} sit amet; ", i * 7 % 13).as_bytes(),
        );
        i += 1;
    }
    page.truncate(4096);
    page
}

/// Issue 10, item 1: dictionaries are named by hash (format 2). A format 1
/// store is upgraded in place on the first writable open; a pack naming a
/// dictionary row that does not exist is never paired with another one, and
/// plain fsck (no data read) reports it, as it reports a pack whose
/// dictionary went missing. Objects in such a pack count as absent, so the
/// next write of the same page heals the store.
#[test]
fn dictionaries_are_named_by_hash_and_format_1_stores_are_upgraded() {
    let (dir, mut store) = new_store();
    let samples: Vec<Vec<u8>> = (0..400).map(text_page).collect();
    let mut tx = store.transaction().unwrap();
    tx.add_dictionary(migsnap_store::compress::train_dictionary(&samples).unwrap())
        .unwrap();
    tx.commit(&[], "").unwrap();
    let pages: Vec<Vec<u8>> = (1000..1040).map(text_page).collect();
    loose_snapshot(&mut store, &pages, "heads/db");
    drop(store);
    let conn = store_conn(&dir);
    let with_dictionary: i64 = conn
        .query_row(
            "SELECT count(*) FROM packs WHERE typeof(dictionary) = 'blob'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(with_dictionary > 0, "no pack used the dictionary");
    // Turn it back into a format 1 store, with one extra pack that names a
    // dictionary row that is gone.
    conn.execute_batch(
        "UPDATE packs SET dictionary = (SELECT seq FROM dictionaries d WHERE d.id = packs.dictionary)
             WHERE dictionary IS NOT NULL;
         DROP INDEX dictionaries_by_id;
         ALTER TABLE dictionaries DROP COLUMN id;
         ALTER TABLE packs DROP COLUMN level;
         INSERT INTO packs(raw_len, compression, dictionary, data) VALUES (10, 1, 99, x'00');
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let store_dir = dir.path().join(".migsnap");
    assert!(matches!(
        Store::open_read_only(&store_dir),
        Err(Error::OldFormat { found: 1, .. })
    ));

    let store = Store::open(&store_dir).unwrap();
    for page in &pages {
        let id = migsnap_store::codec::blob_id(page);
        assert_eq!(&store.view().read_blob(&id).unwrap(), page);
    }
    let report = fsck_read_all(&store);
    assert!(report.problems.is_empty(), "{report:?}");
    assert_eq!(report.damaged_rows.len(), 1, "{report:?}");
    assert!(
        report.damaged_rows[0].ends_with("names dictionary row 99, which the store lacks"),
        "{report:?}"
    );
    drop(store);
    let conn = store_conn(&dir);
    let format: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(format, migsnap_store::odb::STORE_FORMAT);
    let legacy: i64 = conn
        .query_row(
            "SELECT count(*) FROM packs WHERE typeof(dictionary) = 'integer'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        legacy, 1,
        "only the pack whose dictionary is gone keeps its row number"
    );

    // The dictionary gone: plain fsck names the packs and the pages.
    conn.execute_batch(
        "DELETE FROM dictionaries; DELETE FROM packs WHERE seq = (SELECT max(seq) FROM packs);",
    )
    .unwrap();
    drop(conn);
    let mut store = Store::open(&store_dir).unwrap();
    let report = fsck::check(&store, FsckOptions::default(), &mut Silent).unwrap();
    assert!(
        report
            .damaged_rows
            .iter()
            .any(|row| row.contains("which the store lacks")),
        "{report:?}"
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(&p.fault, Fault::Corrupt(reason) if reason.contains("dictionary"))),
        "{report:?}"
    );
    // Writing the pages again (as the next snapshot does) heals the store.
    let first = migsnap_store::codec::blob_id(&pages[0]);
    assert!(!store.contains(&first).unwrap());
    snapshot(&mut store, &pages, vec![], Some("heads/db"), "s2");
    assert!(store.contains(&first).unwrap());
    assert_eq!(store.view().read_blob(&first).unwrap(), pages[0]);
}

/// A page as a database with repeated records holds it: 3 KiB drawn from a
/// few shared blocks (which every frame of a pack has to encode once, unless
/// a dictionary knows them) and 1 KiB of its own.
fn record_page(n: u64) -> Vec<u8> {
    let mut page = noise("shared", n % 8, 2048);
    page.extend(noise("shared", 8 + n % 5, 1024));
    page.extend(noise("own", n, 1024));
    page
}

/// Writes `pages` as a snapshot does (loose packs of 32 at the store's
/// snapshot level) and records a snapshot of them under `ref_name`.
fn loose_snapshot(store: &mut Store, pages: &[Vec<u8>], ref_name: &str) -> ObjectId {
    write_page_packs(store, pages);
    snapshot(store, pages, vec![], Some(ref_name), "loose")
}

/// Writes `pages` in order, in packs of 32 at the store's snapshot level,
/// and commits them.
fn write_page_packs(store: &mut Store, pages: &[Vec<u8>]) {
    let mut tx = store.transaction().unwrap();
    let mut compressor = tx.compressor();
    let mut batch = tx.pack_batch();
    for chunk in pages.chunks(migsnap_store::pack::PACK_OBJECTS) {
        let pack = migsnap_store::PreparedPack::blobs(
            chunk
                .iter()
                .map(|page| migsnap_store::HashedBlob::new(page)),
            &mut compressor,
        );
        batch.write_pack(&pack).unwrap();
    }
    batch.finish().unwrap();
    tx.commit(&[], "pages").unwrap();
}

/// `(level, count)` of the store's packs.
fn pack_levels(dir: &tempfile::TempDir) -> Vec<(i64, i64)> {
    store_conn(dir)
        .prepare("SELECT level, count(*) FROM packs GROUP BY level ORDER BY level")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn gc_now(store: &mut Store, dry_run: bool) -> gc::GcReport {
    let options = GcOptions {
        grace_secs: 0,
        dry_run,
    };
    gc::collect(store, options, &mut Silent).unwrap()
}

/// Issue 14: snapshots write loose packs (the fast level, no dictionary);
/// gc packs them into compact ones. Every object keeps its id and bytes,
/// fsck stays clean, the packs take less room, and a second gc packs nothing.
#[test]
fn gc_packs_loose_packs_keeping_every_id_and_byte() {
    let (dir, mut store) = new_store();
    // Enough pages (over 1 MiB of loose packs) to train a dictionary on,
    // sharing enough that it pays for itself.
    let pages: Vec<Vec<u8>> = (0..2100).map(record_page).collect();
    let s1 = loose_snapshot(&mut store, &pages, "heads/db");
    let later: Vec<Vec<u8>> = (2100..2160).map(record_page).collect();
    let s2 = loose_snapshot(&mut store, &later, "heads/other");
    assert!(
        store.view().dictionary().unwrap().is_none(),
        "a snapshot trained a dictionary"
    );
    let loose_level = i64::from(migsnap_store::compress::SNAPSHOT_LEVEL);
    assert!(
        pack_levels(&dir)
            .iter()
            .all(|(level, _)| *level == loose_level)
    );
    let mut ids = Vec::new();
    store
        .view()
        .for_each_object(|id, _| ids.push(id.unwrap()))
        .unwrap();
    let before = store.view().storage().unwrap();

    let dry = gc_now(&mut store, true);
    assert_eq!(store.view().storage().unwrap(), before, "a dry run packed");
    let report = gc_now(&mut store, false);
    assert_eq!(
        report.packed, dry.packed,
        "the dry run reported other figures"
    );
    let packed = report.packed;
    assert_eq!(packed.objects, ids.len() as u64, "{packed:?}");
    assert_eq!(packed.loose_packs, before.packs, "{packed:?}");
    assert!(packed.trained_dictionary, "{packed:?}");
    assert!(packed.bytes_after < packed.bytes_before, "{packed:?}");

    let after = store.view().storage().unwrap();
    assert_eq!(after.objects, before.objects);
    assert_eq!(after.raw_bytes, before.raw_bytes);
    assert!(after.packs < before.packs, "{before:?} -> {after:?}");
    assert!(
        after.pack_bytes < before.pack_bytes,
        "{before:?} -> {after:?}"
    );
    let packed_level = i64::from(migsnap_store::compress::PACKED_LEVEL);
    assert_eq!(pack_levels(&dir), vec![(packed_level, after.packs as i64)]);
    // Only pages need the dictionary: history stays readable without it.
    let (with_pages, with_others): (i64, i64) = store_conn(&dir)
        .query_row(
            "SELECT total(o.kind = 1), total(o.kind != 1) FROM objects o
             JOIN packs p ON p.seq = o.pack WHERE p.dictionary IS NOT NULL",
            [],
            |r| Ok((r.get::<_, f64>(0)? as i64, r.get::<_, f64>(1)? as i64)),
        )
        .unwrap();
    assert!(
        with_pages > 0 && with_others == 0,
        "{with_pages} pages, {with_others} others"
    );
    for id in &ids {
        assert!(store.contains(id).unwrap(), "{id} lost its place");
        store.read(id).unwrap();
    }
    for page in pages.iter().chain(&later) {
        let id = migsnap_store::codec::blob_id(page);
        assert_eq!(&store.view().read_blob(&id).unwrap(), page);
    }
    assert_eq!(store.view().find_ref(&name("heads/db")).unwrap(), Some(s1));
    assert_eq!(
        store.view().find_ref(&name("heads/other")).unwrap(),
        Some(s2)
    );
    let report = fsck_read_all(&store);
    assert!(report.is_clean(), "{report:?}");

    // Idempotent: nothing is loose any more.
    let again = gc_now(&mut store, false);
    assert_eq!(again.packed, migsnap_store::repack::PackReport::default());
    assert_eq!(store.view().storage().unwrap(), after);

    // A later snapshot is loose again and is packed with the dictionary
    // trained before: no second one.
    let third: Vec<Vec<u8>> = (2160..2200).map(record_page).collect();
    loose_snapshot(&mut store, &third, "heads/db");
    let report = gc_now(&mut store, false).packed;
    assert!(
        report.objects >= third.len() as u64 && !report.trained_dictionary,
        "{report:?}"
    );
    let dictionaries: i64 = store_conn(&dir)
        .query_row("SELECT count(*) FROM dictionaries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dictionaries, 1);
    let report = fsck_read_all(&store);
    assert!(report.is_clean(), "{report:?}");
}

/// Packing copies the indexed objects only: an unreachable object's pack is
/// gone before packing, and a loose pack whose object rows point elsewhere
/// (its pages existed already) is left for gc's orphan rule, not read.
#[test]
fn packing_moves_only_indexed_objects_and_gc_drops_garbage_first() {
    let (_dir, mut store) = new_store();
    let pages: Vec<Vec<u8>> = (0..40).map(text_page).collect();
    loose_snapshot(&mut store, &pages, "heads/db");
    // The same pages again, unreferenced (a snapshot whose ref is gone):
    // only its image, schema and snapshot are new objects.
    let lost = snapshot(&mut store, &pages, vec![], None, "lost");
    let report = gc_now(&mut store, false);
    assert!(report.deleted_objects >= 1, "{report:?}");
    assert!(!store.contains(&lost).unwrap());
    for page in &pages {
        let id = migsnap_store::codec::blob_id(page);
        assert_eq!(&store.view().read_blob(&id).unwrap(), page);
    }
    let live = store.view().storage().unwrap().objects;
    assert_eq!(report.packed.objects, live, "{report:?}");
}

/// Format 3 records each pack's level. A format 2 store is upgraded in
/// place: its packs were all written at level 3, below the compact level, so
/// the next gc packs them too. A level that is no zstd level is a damaged row
/// for fsck.
#[test]
fn format_2_stores_get_pack_levels_and_fsck_checks_them() {
    let (dir, mut store) = new_store();
    let pages: Vec<Vec<u8>> = (0..40).map(text_page).collect();
    loose_snapshot(&mut store, &pages, "heads/db");
    drop(store);
    store_conn(&dir)
        .execute_batch("ALTER TABLE packs DROP COLUMN level; PRAGMA user_version = 2;")
        .unwrap();
    let store_dir = dir.path().join(".migsnap");
    assert!(matches!(
        Store::open_read_only(&store_dir),
        Err(Error::OldFormat { found: 2, .. })
    ));
    let mut store = Store::open(&store_dir).unwrap();
    let packs = store.view().storage().unwrap().packs as i64;
    assert_eq!(pack_levels(&dir), vec![(3, packs)]);
    let report = fsck_read_all(&store);
    assert!(report.is_clean(), "{report:?}");
    let objects = store.view().storage().unwrap().objects;
    assert_eq!(gc_now(&mut store, false).packed.objects, objects);
    let packed_level = i64::from(migsnap_store::compress::PACKED_LEVEL);
    let packs = store.view().storage().unwrap().packs as i64;
    assert_eq!(pack_levels(&dir), vec![(packed_level, packs)]);

    store_conn(&dir)
        .execute(
            "UPDATE packs SET level = 'fast' WHERE seq = (SELECT min(seq) FROM packs)",
            [],
        )
        .unwrap();
    let report = fsck::check(&store, FsckOptions::default(), &mut Silent).unwrap();
    assert_eq!(report.damaged_rows.len(), 1, "{report:?}");
    assert!(
        report.damaged_rows[0].contains("which is no zstd level"),
        "{report:?}"
    );
}

/// A gc with a long grace after one with a short grace: the forgotten image
/// the first collected is given up, not missing, so the second runs (found
/// by the crash harness, which mixes `gc --grace 0s` and plain `gc`).
#[test]
fn gc_after_a_shorter_grace_gc_accepts_collected_forgotten_images() {
    let (_dir, mut store) = new_store();
    let old = snapshot(
        &mut store,
        &[noise("old", 0, 4096)],
        vec![],
        Some("heads/db"),
        "old",
    );
    let new = snapshot(
        &mut store,
        &[noise("new", 0, 4096)],
        vec![old],
        Some("heads/db"),
        "new",
    );
    let mut tx = store.transaction().unwrap();
    tx.forget_image(&old, migsnap_store::odb::now()).unwrap();
    tx.commit(&[], "forget").unwrap();
    let first = gc_now(&mut store, false);
    assert!(first.deleted_objects > 0, "{first:?}");
    let options = GcOptions {
        grace_secs: 14 * 86400,
        dry_run: false,
    };
    let second = gc::collect(&mut store, options, &mut Silent).unwrap();
    assert_eq!(second.deleted_objects, 0, "{second:?}");
    assert!(store.contains(&new).unwrap() && store.contains(&old).unwrap());
}

/// A dictionary is kept only when it saves more than its own 64 KiB: pages
/// of random bytes, however many, get none.
#[test]
fn packing_trains_no_dictionary_that_would_not_pay_for_itself() {
    let (dir, mut store) = new_store();
    let pages: Vec<Vec<u8>> = (0..600).map(|n| noise("random", n, 4096)).collect();
    loose_snapshot(&mut store, &pages, "heads/db");
    let report = gc_now(&mut store, false).packed;
    assert!(report.bytes_before > 2 << 20, "{report:?}");
    assert_eq!(report.objects, store.view().storage().unwrap().objects);
    assert!(!report.trained_dictionary, "{report:?}");
    let dictionaries: i64 = store_conn(&dir)
        .query_row("SELECT count(*) FROM dictionaries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dictionaries, 0);
}

/// Pages written as a base (packs of 32, in order) and then as an increment
/// whose changed pages share packs of their own: the way a snapshot after a
/// small change lays them out.
fn base_and_increment(
    store: &mut Store,
    pages: usize,
    every: usize,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let base: Vec<Vec<u8>> = (0..pages).map(|n| noise("base", n as u64, 4096)).collect();
    let changed: Vec<Vec<u8>> = (0..pages)
        .step_by(every)
        .map(|n| noise("changed", n as u64, 4096))
        .collect();
    for pages in [&base, &changed] {
        write_page_packs(store, pages);
    }
    (base, changed)
}

/// A page list in which every `every`-th base page is replaced by its
/// changed version: each base pack's run is cut, and each increment pack is
/// wanted again every `every` pages.
fn interleaved(base: &[Vec<u8>], changed: &[Vec<u8>], every: usize) -> Vec<Vec<u8>> {
    base.iter()
        .enumerate()
        .map(|(n, page)| match n % every {
            0 => changed[n / every].clone(),
            _ => page.clone(),
        })
        .collect()
}

#[test]
fn bulk_reads_of_interleaved_packs_come_back_whole_and_in_order() {
    let (_dir, mut store) = new_store();
    let every = 7;
    let (base, changed) = base_and_increment(&mut store, 2000, every);
    let wanted = interleaved(&base, &changed, every);
    // Twice over, so packs come back long after the workers dropped them.
    let pages: Vec<&Vec<u8>> = wanted.iter().chain(wanted.iter()).collect();
    let ids: Vec<ObjectId> = pages
        .iter()
        .map(|p| migsnap_store::codec::blob_id(p))
        .collect();
    for threads in [1, 2, 3] {
        let got = read_each(&store, &ids, threads);
        assert_eq!(got.len(), pages.len(), "{threads} threads");
        assert!(
            got.iter().zip(&pages).all(|(a, b)| a == *b),
            "{threads} threads: a page came back wrong or out of order"
        );
    }
}

/// Every blob of `ids`, in order, each hashed by a bulk read on `threads`.
fn read_each(store: &Store, ids: &[ObjectId], threads: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    migsnap_store::bulk::read_blobs::<Error>(
        store.view(),
        ids,
        threads,
        Proof::EachBlob,
        |bytes| {
            got.push(bytes);
            Ok(())
        },
    )
    .unwrap();
    got
}

#[test]
fn a_bulk_read_that_meets_a_broken_pack_again_reports_it_once() {
    let (dir, mut store) = new_store();
    let every = 5;
    let (base, changed) = base_and_increment(&mut store, 300, every);
    let wanted = interleaved(&base, &changed, every);
    let ids: Vec<ObjectId> = wanted
        .iter()
        .map(|p| migsnap_store::codec::blob_id(p))
        .collect();
    // The first increment pack, wanted every 5 pages, no longer decompresses.
    let first_changed = migsnap_store::codec::blob_id(&changed[0]);
    let conn = store_conn(&dir);
    let seq: i64 = conn
        .query_row(
            "SELECT pack FROM objects WHERE id = ?1",
            [first_changed.as_bytes().as_slice()],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE packs SET data = substr(data, 1, length(data) / 2) WHERE seq = ?1",
        [seq],
    )
    .unwrap();
    drop(conn);
    for threads in [1, 2] {
        let mut delivered = 0;
        let err = migsnap_store::bulk::read_blobs::<Error>(
            store.view(),
            &ids,
            threads,
            Proof::EachBlob,
            |_| {
                delivered += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(delivered, 0, "pages before the broken one: none");
        assert!(
            matches!(&err, Error::Unreadable { id, .. } | Error::Corrupt { id, .. } if *id == first_changed),
            "{threads} threads: {err}"
        );
    }
}

/// A bulk read decodes a pack only as far as the objects it wants from it
/// soon; wanting a later object of a pack it holds in part (after more
/// than its lookahead of other objects) decodes it again, further.
#[test]
fn bulk_reads_decode_packs_in_part_and_further_when_asked() {
    let (dir, mut store) = new_store();
    let pages: Vec<Vec<u8>> = (0..1500).map(record_page).collect();
    loose_snapshot(&mut store, &pages, "heads/pages");
    gc_now(&mut store, false);
    let by_id: std::collections::HashMap<ObjectId, &Vec<u8>> = pages
        .iter()
        .map(|p| (migsnap_store::codec::blob_id(p), p))
        .collect();
    // The pack with the most objects, and its first and last by offset:
    // a compressed pack of several zstd blocks.
    let conn = store_conn(&dir);
    let in_order = |sql: &str| -> Vec<ObjectId> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(|id| ObjectId::from_bytes(id.unwrap().try_into().unwrap()))
            .filter(|id| by_id.contains_key(id))
            .collect()
    };
    let big = "(SELECT o.pack FROM objects o JOIN packs p ON p.seq = o.pack
               WHERE p.compression = 1 AND p.raw_len > 200000
               GROUP BY o.pack ORDER BY count(*) DESC LIMIT 1)";
    let members = in_order(&format!(
        "SELECT id FROM objects WHERE pack = {big} ORDER BY offset"
    ));
    assert!(
        members.len() >= 40,
        "{} objects in the biggest pack",
        members.len()
    );
    let others = in_order(&format!(
        "SELECT id FROM objects WHERE pack != {big} ORDER BY pack, offset"
    ));
    assert!(others.len() > 600);
    let (first, middle, last) = (
        members[0],
        members[members.len() / 2],
        members[members.len() - 1],
    );
    let mut ids = vec![first, middle];
    ids.extend(&others[..600]);
    ids.extend([last, first, middle]);
    for threads in [1, 2] {
        let got = read_each(&store, &ids, threads);
        assert_eq!(got.len(), ids.len());
        for (n, (id, bytes)) in ids.iter().zip(&got).enumerate() {
            assert_eq!(
                bytes, by_id[id],
                "{threads} threads: object {n} came back wrong"
            );
        }
    }
}

/// The compression and length of the pack holding `id`.
fn pack_of(dir: &tempfile::TempDir, id: &ObjectId) -> (i64, i64) {
    store_conn(dir)
        .query_row(
            "SELECT p.compression, length(p.data) FROM objects o JOIN packs p ON p.seq = o.pack
             WHERE o.id = ?1",
            [id.as_bytes().as_slice()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn objects_over_a_mebibyte_are_written_and_read_through_the_blob_handle() {
    let (dir, mut store) = new_store();
    // A full listing of 40,000 pages: 1.25 MiB of ids, which never
    // compress, so the sampled prefix keeps it raw.
    let blocks: Vec<ObjectId> = (0..40_000u64)
        .map(|n| ObjectId::hash(&n.to_le_bytes()))
        .collect();
    let image = Object::Image(Image {
        block_size: 4096,
        block_count: 40_000,
        digest: [7; 32],
        listing: Listing::Full(blocks),
    });
    let image_id = store.write(&image).unwrap();
    // A listing of one page repeated, which compresses, so it is read
    // through the decompressor as it is decoded.
    let repeated = Object::Image(Image {
        block_size: 4096,
        block_count: 40_000,
        digest: [8; 32],
        listing: Listing::Full(vec![ObjectId::hash(b"zero page"); 40_000]),
    });
    let repeated_id = store.write(&repeated).unwrap();
    // 2 MiB of text, which compresses.
    let text = b"migsnap ".repeat(1 << 18);
    let text_id = store.write(&Object::Blob(text.clone())).unwrap();
    drop(store);

    let (compression, len) = pack_of(&dir, &image_id);
    assert_eq!(compression, 0, "a listing is stored raw");
    assert!(len > 1 << 20, "{len}");
    let (compression, len) = pack_of(&dir, &text_id);
    assert_eq!(compression, 1, "text is compressed");
    assert!(len < 1 << 16, "{len}");

    let store = Store::open(&dir.path().join(".migsnap")).unwrap();
    assert!(store.read(&image_id).unwrap() == image);
    assert!(store.read(&text_id).unwrap() == Object::Blob(text));
    assert_eq!(
        pack_of(&dir, &repeated_id).0,
        1,
        "a repeated listing is compressed"
    );
    assert!(store.read(&repeated_id).unwrap() == repeated);
    // Twice: a large pack is not kept in the one-pack cache, and reads again.
    assert!(store.read(&image_id).unwrap() == image);

    // A flipped bit inside the large pack is found.
    drop(store);
    flip_a_byte(&dir.path().join(".migsnap/store.db"), &image_id);
    let store = Store::open(&dir.path().join(".migsnap")).unwrap();
    assert!(
        matches!(store.read(&image_id), Err(Error::Corrupt { .. })),
        "a flipped byte reads back"
    );
}

#[test]
fn read_data_subsets_read_each_pack_once_and_find_damage_only_in_their_own() {
    use migsnap_store::fsck::{ReadData, Subset};
    let (dir, mut store) = new_store();
    let ids: Vec<ObjectId> = (0..12)
        .map(|n| {
            store
                .write(&Object::Blob(noise("subset", n, 4096)))
                .unwrap()
        })
        .collect();
    let damaged = ids[5];
    drop(store);
    flip_a_byte(&dir.path().join(".migsnap/store.db"), &damaged);
    let store = Store::open(&dir.path().join(".migsnap")).unwrap();
    let check = |read_data| fsck::check(&store, FsckOptions { read_data }, &mut Silent).unwrap();

    let all = check(ReadData::All);
    assert_eq!(all.read_back, 12);
    assert!(all.problems.iter().any(|p| p.id == damaged));
    assert_eq!(check(ReadData::None).read_back, 0);
    // Each subset reads its share, together every object once, and only
    // the subset holding the damaged pack reports it.
    let (mut read, mut found) = (0, 0);
    for n in 1..=3 {
        let report = check(ReadData::Subset(Subset::new(n, 3).unwrap()));
        assert!(
            report.read_back < 12,
            "subset {n}/3 read {}",
            report.read_back
        );
        read += report.read_back;
        if report.problems.iter().any(|p| p.id == damaged) {
            found += 1;
        } else {
            assert!(report.is_clean(), "subset {n}/3: {report:?}");
        }
    }
    assert_eq!((read, found), (12, 1));
}

/// A full page listing over a mebibyte is stored uncompressed, alone in its
/// pack and without the dictionary: packing could not make it smaller, so
/// it leaves that pack where it is instead of copying it (at 4 GiB the copy
/// was gc's peak memory), and packs the pages around it as before.
#[test]
fn packing_leaves_a_large_uncompressed_listing_in_its_pack() {
    let (dir, mut store) = new_store();
    let pages: Vec<Vec<u8>> = (0..300).map(record_page).collect();
    loose_snapshot(&mut store, &pages, "heads/db");
    let listing = Object::Image(Image {
        block_size: 4096,
        block_count: 40_000,
        digest: [7; 32],
        listing: Listing::Full(
            (0..40_000u64)
                .map(|n| ObjectId::hash(&n.to_le_bytes()))
                .collect(),
        ),
    });
    let listing_id = store.write(&listing).unwrap();
    let seq_of = |id: &ObjectId| -> i64 {
        store_conn(&dir)
            .query_row(
                "SELECT pack FROM objects WHERE id = ?1",
                [id.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .unwrap()
    };
    let page = migsnap_store::codec::blob_id(&pages[0]);
    let (listing_pack, page_pack) = (seq_of(&listing_id), seq_of(&page));
    assert_eq!(pack_of(&dir, &listing_id).0, 0, "the listing is stored raw");

    let pack = |store: &mut Store| {
        let mut tx = store.transaction().unwrap();
        let report = migsnap_store::repack::pack_loose(&mut tx, &mut Silent).unwrap();
        tx.commit(&[], "pack").unwrap();
        report
    };
    let report = pack(&mut store);
    assert!(report.objects >= pages.len() as u64, "{report:?}");
    assert_ne!(seq_of(&page), page_pack, "the pages were not packed");
    assert_eq!(seq_of(&listing_id), listing_pack, "the listing was copied");
    assert_eq!(store.view().read_blob(&page).unwrap(), pages[0]);
    assert!(store.read(&listing_id).unwrap() == listing);
    // Nothing is left to pack: the listing is not loose.
    assert_eq!(
        pack(&mut store),
        migsnap_store::repack::PackReport::default()
    );
}

#[test]
fn a_full_image_written_from_a_block_file_is_the_object_write_would_make() {
    use migsnap_store::block_file::BlockFile;
    let (dir, mut store) = new_store();
    let header = |count: u32| Image {
        block_size: 4096,
        block_count: count,
        digest: [9; 32],
        listing: Listing::Full(Vec::new()),
    };
    let packs = |dir: &tempfile::TempDir| -> i64 {
        store_conn(dir)
            .query_row("SELECT count(*) FROM packs", [], |r| r.get(0))
            .unwrap()
    };
    // 40,000 ids (1.25 MiB: streamed) and 100 (small: written whole).
    for count in [40_000u32, 100] {
        let blocks: Vec<ObjectId> = (0..count)
            .map(|n| ObjectId::hash(&n.to_le_bytes()))
            .collect();
        let mut file = BlockFile::create(dir.path()).unwrap();
        // Out of order, as the hashing workers finish their batches.
        let half = count as usize / 2;
        file.write(blocks.iter().copied().enumerate().skip(half))
            .unwrap();
        file.write(blocks.iter().copied().enumerate().take(half))
            .unwrap();
        let object = Object::Image(Image {
            listing: Listing::Full(blocks.clone()),
            ..header(count)
        });

        let mut tx = store.transaction().unwrap();
        let id = tx.write_full_image(&header(count), &file).unwrap();
        assert_eq!(tx.added().objects, 1);
        tx.commit(&[], "full image").unwrap();
        assert_eq!(
            id,
            ObjectId::hash(&migsnap_store::codec::encode_object(&object))
        );
        assert!(store.read(&id).unwrap() == object, "{count} ids read back");
        if count > 32_768 {
            assert!(store.view().large_full_listing(&id).unwrap().is_some());
            let spilled = migsnap_store::image::spill(store.view(), &id, dir.path()).unwrap();
            assert_eq!(spilled.blocks(0..usize::MAX).unwrap(), blocks);
        }

        // Again: the store has it, so nothing is added and no pack stays.
        let before = packs(&dir);
        let mut tx = store.transaction().unwrap();
        assert_eq!(tx.write_full_image(&header(count), &file).unwrap(), id);
        assert_eq!(tx.added().objects, 0);
        tx.commit(&[], "again").unwrap();
        assert_eq!(packs(&dir), before);
    }
    assert!(fsck_read_all(&store).is_clean());
}
