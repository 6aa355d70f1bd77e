//! One atomic change to a store.

use std::cell::RefCell;
use std::path::PathBuf;

use rusqlite::params;

use super::error::sql_error;
use super::packs::PackCache;
use super::{BrokenRef, Error, ObjectStore, PackBatch, Result, View, now};
use crate::block_file::BlockFile;
use crate::codec;
use crate::compress::{Compression, Compressor, Dictionary, LARGE_BYTES};
use crate::id::ObjectId;
use crate::object::{Added, Image, Kind, Listing, Object};
use crate::pack::{PackMember, PreparedPack};

/// Ids streamed at a time from a [`BlockFile`] into a large listing's pack.
const STREAM_IDS: usize = 8192;
use crate::refs::{Change, Expected, RefEdit, RefName};

/// One atomic change to a store: objects, ref edits and reflog entries.
///
/// Dropping it without [`Transaction::commit`] rolls everything back.
pub struct Transaction<'s> {
    pub(super) tx: rusqlite::Transaction<'s>,
    pub(super) path: PathBuf,
    pub(super) cache: &'s RefCell<PackCache>,
    pub(super) level: i32,
    pub(super) dictionary: Option<Dictionary>,
    pub(super) added: Added,
    /// Set when an object or dictionary write failed: the transaction may
    /// only be dropped (rolled back) then.
    pub(super) failed: bool,
}

impl<'s> Transaction<'s> {
    /// [`ObjectStore::write`] for an object the caller is done with: it is
    /// dropped once encoded, so a large one (a full page listing: 32 MiB at
    /// 4 GiB) is not held twice while its pack is built and inserted.
    pub fn write_owned(&mut self, object: Object) -> Result<ObjectId> {
        let kind = object.kind();
        let encoded = codec::encode_object(&object);
        drop(object);
        self.write_encoded(kind, encoded)
    }

    /// Packs one encoded object on its own (without the page dictionary)
    /// and inserts it.
    fn write_encoded(&mut self, kind: crate::object::Kind, encoded: Vec<u8>) -> Result<ObjectId> {
        let pack = PreparedPack::from_encoded(
            vec![(kind, encoded)],
            &mut self.compressor_at(self.level, false),
        );
        self.write_pack(&pack)?;
        Ok(pack.members[0].id)
    }

    /// A compressor at the store's level and with its dictionary, for
    /// preparing packs on other threads before [`PackBatch::write_pack`].
    pub fn compressor(&self) -> Compressor {
        self.compressor_at(self.level, true)
    }

    /// A compressor at `level`, with the store's dictionary for pages or
    /// without it for other objects: the dictionary is trained on pages, and
    /// snapshots, listings and schemas packed without it stay readable (and
    /// history with them) if the dictionary is ever damaged.
    pub(crate) fn compressor_at(&self, level: i32, pages: bool) -> Compressor {
        let dictionary = self.dictionary.as_ref().filter(|_| pages);
        Compressor::new(level, dictionary)
            .expect("holds because the level is in zstd's range and the dictionary loaded before")
    }

    /// Whether the store has a compression dictionary.
    pub fn has_dictionary(&self) -> bool {
        self.dictionary.is_some()
    }

    /// Fails unless the SQLite transaction is still open. SQLite rolls a
    /// transaction back by itself on some errors (a full disk, an I/O
    /// error); a statement run after that would commit on its own, so every
    /// write checks first.
    fn still_open(&self) -> Result<()> {
        if self.failed {
            return Err(Error::AfterFailedWrite {
                path: self.path.clone(),
            });
        }
        if self.tx.is_autocommit() {
            return Err(Error::OutsideTransaction {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Stores a zstd dictionary; compressors made from now on use it.
    pub fn add_dictionary(&mut self, bytes: Vec<u8>) -> Result<()> {
        // Validate before storing: a dictionary zstd cannot load would make
        // every pack compressed with it unreadable.
        let candidate = Dictionary::new(bytes);
        Compressor::new(self.level, Some(&candidate)).map_err(|e| Error::Unreadable {
            id: candidate.id,
            reason: format!("zstd rejects the dictionary: {e}"),
        })?;
        self.still_open()?;
        let added = self
            .tx
            .execute(
                "INSERT INTO dictionaries(data, id) SELECT ?1, ?2
                 WHERE NOT EXISTS (SELECT 1 FROM dictionaries WHERE id = ?2)",
                params![&candidate.bytes, candidate.id.as_bytes()],
            )
            .map_err(|e| sql_error(&self.path, e));
        self.failed |= added.is_err();
        let added = added?;
        if added > 0 {
            self.added.bytes += candidate.bytes.len() as u64;
        }
        self.dictionary = Some(candidate);
        Ok(())
    }

    /// Inserts the objects of a prepared pack that the store lacks. A pack
    /// whose objects all exist is not stored at all. After a failure every
    /// later write of the transaction is refused.
    fn write_pack(&mut self, pack: &PreparedPack) -> Result<()> {
        let written = self.insert_pack(pack);
        self.failed |= written.is_err();
        written.map(drop)
    }

    /// [`Transaction::write_pack`], returning how many objects were new.
    pub(super) fn insert_pack(&mut self, pack: &PreparedPack) -> Result<usize> {
        self.still_open()?;
        let sql = |e| sql_error(&self.path, e);
        // The pack's number is chosen first, as SQLite would choose it
        // (one past the largest), so that each member costs one index
        // descent: an insert that is ignored when the id is there. Looking
        // first and inserting after walked the index twice per page, a
        // tenth of a first snapshot's CPU. This transaction is the only
        // writer, so no one else can take the number meanwhile.
        let seq: i64 = self
            .tx
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM packs")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(sql)?;
        let mut new = 0;
        for (i, member) in pack.members.iter().enumerate() {
            if pack.members[..i].iter().any(|m| m.id == member.id) {
                continue;
            }
            new += usize::from(self.index_member(member, seq)?);
        }
        if new == 0 {
            return Ok(0);
        }
        self.insert_pack_row(pack, Some(seq))?;
        self.added.objects += new as u64;
        self.added.bytes += pack.data.len() as u64;
        Ok(new)
    }

    /// Starts writing many packs, their index rows held back and inserted
    /// in id order ([`PackBatch`]): how a snapshot stores its pages and a
    /// fetch its packs.
    pub fn pack_batch(&mut self) -> PackBatch<'_, 's> {
        PackBatch::new(self)
    }

    /// Points the index at `member` in pack `seq`, and returns whether it
    /// is new there. An id already indexed stays where it is, unless its
    /// pack is gone (or needs a dictionary the store lacks): then it counts
    /// as absent, and this write heals it.
    pub(super) fn index_member(&mut self, member: &PackMember, seq: i64) -> Result<bool> {
        self.still_open()?;
        let sql = |e| sql_error(&self.path, e);
        let row = params![
            member.id.as_bytes(),
            member.kind as u8,
            seq,
            member.offset,
            member.len
        ];
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO objects(id, kind, pack, offset, raw_len)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut stmt| stmt.execute(row))
            .map_err(sql)?
            == 1;
        if inserted || self.view().contains(&member.id)? {
            return Ok(inserted);
        }
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO objects(id, kind, pack, offset, raw_len)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut stmt| stmt.execute(row))
            .map_err(sql)?;
        Ok(true)
    }

    /// Writes `image` (whatever its listing holds) listing `blocks` in
    /// full, and returns its id: the same object, and id, as
    /// [`Transaction::write_owned`] of it with those blocks in its listing.
    /// A large listing (a database over 128 MiB) is streamed from the file
    /// into a raw pack of its own through SQLite's blob handle and hashed on
    /// the way, so it is never in memory whole; it is then read back the
    /// same way ([`View::large_full_listing`]). After a failure every later
    /// write of the transaction is refused.
    pub fn write_full_image(&mut self, image: &Image, blocks: &BlockFile) -> Result<ObjectId> {
        let written = self.insert_full_image(image, blocks);
        self.failed |= written.is_err();
        written
    }

    fn insert_full_image(&mut self, image: &Image, blocks: &BlockFile) -> Result<ObjectId> {
        self.still_open()?;
        let header = codec::encode_full_listing_header(image, blocks.len() as u64);
        let len = header.len() + blocks.len() * 32;
        if len <= LARGE_BYTES {
            let listing = Listing::Full(blocks.read(0..blocks.len())?);
            return self.write_owned(Object::Image(Image { listing, ..*image }));
        }
        let sql = |e| sql_error(&self.path, e);
        self.tx
            .prepare_cached(
                "INSERT INTO packs(raw_len, compression, dictionary, data, level)
                 VALUES (?1, ?2, NULL, zeroblob(?1), ?3)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![len as i64, Compression::None as u8, self.level])
            })
            .map_err(sql)?;
        let seq = self.tx.last_insert_rowid();
        let mut hasher = blake3::Hasher::new();
        {
            let mut blob = self
                .tx
                .blob_open(rusqlite::MAIN_DB, "packs", "data", seq, false)
                .map_err(sql)?;
            hasher.update(&header);
            blob.write_at(&header, 0).map_err(sql)?;
            let mut offset = header.len();
            for start in (0..blocks.len()).step_by(STREAM_IDS) {
                let bytes: Vec<u8> = blocks
                    .read(start..start + STREAM_IDS)?
                    .iter()
                    .flat_map(|id| *id.as_bytes())
                    .collect();
                hasher.update(&bytes);
                blob.write_at(&bytes, offset).map_err(sql)?;
                offset += bytes.len();
            }
        }
        let member = PackMember {
            id: ObjectId::from_bytes(*hasher.finalize().as_bytes()),
            kind: Kind::Image,
            offset: 0,
            len: u32::try_from(len).expect("holds because objects are under 4 GiB"),
        };
        if self.index_member(&member, seq)? {
            self.added.objects += 1;
            self.added.bytes += len as u64;
        } else {
            // The store had this image: its pack goes again.
            self.delete_packs(&[seq])?;
        }
        Ok(member.id)
    }

    /// Inserts the row of `pack`, numbered `seq` or by SQLite, and returns
    /// its number.
    pub(super) fn insert_pack_row(&mut self, pack: &PreparedPack, seq: Option<i64>) -> Result<i64> {
        self.still_open()?;
        let sql = |e| sql_error(&self.path, e);
        // SQLite copies a bound blob before the statement runs. A large
        // pack (a full page listing: 32 MiB at 4 GiB) is inserted as zeros
        // and written in place instead, through the pager, so it is not
        // held twice.
        let large = pack.data.len() > crate::compress::LARGE_BYTES;
        let len = i64::try_from(pack.data.len()).expect("holds because packs are under 4 GiB");
        // SQLite builds a row's record in memory, and writes a zeroblob out
        // in full there unless no later column holds bytes; the integers 0
        // and 1 are held in the record's header alone. So a large pack
        // stored uncompressed (a full listing that came from a remote)
        // records the snapshot's level, as a snapshot's own does: its level
        // only tells packing what is loose, and such a pack never is
        // (`docs/format.md`). At any other level it cost two copies of
        // itself (64 MiB in a 4 GiB clone).
        let level = if large && pack.compression == Compression::None {
            crate::compress::SNAPSHOT_LEVEL
        } else {
            pack.level
        };
        let (insert, data): (&str, &dyn rusqlite::ToSql) = if large {
            (
                "INSERT INTO packs(raw_len, compression, dictionary, data, level, seq)
                 VALUES (?1, ?2, ?3, zeroblob(?4), ?5, ?6)",
                &len,
            )
        } else {
            (
                "INSERT INTO packs(raw_len, compression, dictionary, data, level, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &pack.data,
            )
        };
        self.tx
            .prepare_cached(insert)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    pack.raw_len as i64,
                    pack.compression as u8,
                    pack.dictionary.as_ref().map(ObjectId::as_bytes),
                    data,
                    level,
                    seq
                ])
            })
            .map_err(sql)?;
        let seq = self.tx.last_insert_rowid();
        if large {
            self.tx
                .blob_open(rusqlite::MAIN_DB, "packs", "data", seq, false)
                .and_then(|mut blob| blob.write_at(&pack.data, 0))
                .map_err(sql)?;
        }
        Ok(seq)
    }

    /// Stores `pack` and points the index rows of all its members, which
    /// must exist already, at it: the objects move, their ids stay. Used by
    /// packing, which then deletes the packs they came from. After a failure
    /// every later write of the transaction is refused.
    pub(crate) fn move_into_pack(&mut self, pack: &PreparedPack) -> Result<()> {
        let moved = self.repoint(pack);
        self.failed |= moved.is_err();
        moved
    }

    fn repoint(&mut self, pack: &PreparedPack) -> Result<()> {
        let seq = self.insert_pack_row(pack, None)?;
        let mut update = self
            .tx
            .prepare_cached("UPDATE objects SET pack = ?1, offset = ?2 WHERE id = ?3")
            .map_err(|e| sql_error(&self.path, e))?;
        for member in &pack.members {
            if self.tx.is_autocommit() {
                return Err(Error::OutsideTransaction {
                    path: self.path.clone(),
                });
            }
            let changed = update
                .execute(params![seq, member.offset, member.id.as_bytes()])
                .map_err(|e| sql_error(&self.path, e))?;
            if changed != 1 {
                return Err(Error::NotFound { id: member.id });
            }
        }
        Ok(())
    }

    /// Deletes pack rows by `seq`. The caller must have moved every object
    /// they held ([`Transaction::move_into_pack`]) in this transaction.
    pub(crate) fn delete_packs(&mut self, seqs: &[i64]) -> Result<()> {
        self.still_open()?;
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM packs WHERE seq = ?1")
            .map_err(|e| sql_error(&self.path, e))?;
        for seq in seqs {
            stmt.execute([seq]).map_err(|e| sql_error(&self.path, e))?;
        }
        // A later pack may get a deleted pack's number; the cached bytes of
        // the others stay good (packing reads on from the cached one).
        let mut cache = self.cache.borrow_mut();
        if cache
            .last
            .as_ref()
            .is_some_and(|(seq, _)| seqs.contains(seq))
        {
            cache.last = None;
        }
        Ok(())
    }

    /// What this transaction has added so far.
    pub fn added(&self) -> Added {
        self.added
    }

    /// Read access that sees this transaction's own writes.
    pub fn view(&self) -> View<'_> {
        View {
            conn: &self.tx,
            path: &self.path,
            cache: self.cache,
        }
    }

    /// Marks a snapshot's image as given up by retention at `time`. Its image
    /// becomes collectable by gc after the grace period; the snapshot object,
    /// its schema and its place in history stay.
    pub fn forget_image(&mut self, snapshot: &ObjectId, time: i64) -> Result<()> {
        self.still_open()?;
        self.tx
            .execute(
                "INSERT OR IGNORE INTO forgotten(snapshot, time) VALUES (?1, ?2)",
                params![snapshot.as_bytes(), time],
            )
            .map_err(|e| sql_error(&self.path, e))?;
        Ok(())
    }

    /// Deletes the given objects' index rows; their bytes go with
    /// [`Transaction::delete_orphan_packs`].
    ///
    /// The caller must have proven the objects unreachable inside this
    /// transaction: because the transaction holds the write lock, no snapshot
    /// can start to use them before the deletion commits.
    pub fn delete_objects(&mut self, ids: &[ObjectId]) -> Result<()> {
        self.still_open()?;
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM objects WHERE id = ?1")
            .map_err(|e| sql_error(&self.path, e))?;
        for id in ids {
            stmt.execute([id.as_bytes()])
                .map_err(|e| sql_error(&self.path, e))?;
        }
        Ok(())
    }

    /// Deletes every pack that no object uses any more and returns the
    /// stored bytes freed. A pack with some live objects stays whole.
    pub fn delete_orphan_packs(&mut self) -> Result<u64> {
        let sql = |e| sql_error(&self.path, e);
        let orphans = "FROM packs WHERE seq NOT IN (SELECT pack FROM objects)";
        self.still_open()?;
        let freed: i64 = self
            .tx
            .query_row(
                &format!("SELECT coalesce(sum(length(data)), 0) {orphans}"),
                [],
                |row| row.get(0),
            )
            .map_err(sql)?;
        self.tx
            .execute(&format!("DELETE {orphans}"), [])
            .map_err(sql)?;
        *self.cache.borrow_mut() = PackCache::default();
        Ok(freed.max(0) as u64)
    }

    /// Drops the forgotten marks of snapshots that no longer exist.
    pub fn drop_forgotten_marks(&mut self, snapshots: &[ObjectId]) -> Result<()> {
        self.still_open()?;
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM forgotten WHERE snapshot = ?1")
            .map_err(|e| sql_error(&self.path, e))?;
        for id in snapshots {
            stmt.execute([id.as_bytes()])
                .map_err(|e| sql_error(&self.path, e))?;
        }
        Ok(())
    }

    /// Deletes every ref and reflog row that cannot be read, and returns
    /// them. The object graph is untouched: what only a broken ref kept
    /// reachable stays until gc finds it unreachable.
    pub fn delete_broken_refs(&mut self) -> Result<Vec<BrokenRef>> {
        self.delete_broken(|_| true)
    }

    /// Deletes the ref row called `name` if it cannot be read (its id is
    /// damaged), with its unreadable reflog rows; says whether there was one.
    pub fn delete_broken_ref(&mut self, name: &RefName) -> Result<bool> {
        let deleted = self.delete_broken(|broken| broken.name == name.as_str())?;
        Ok(deleted.iter().any(|broken| broken.seq.is_none()))
    }

    fn delete_broken(&mut self, which: impl Fn(&BrokenRef) -> bool) -> Result<Vec<BrokenRef>> {
        let broken: Vec<BrokenRef> = self
            .view()
            .broken_refs()?
            .into_iter()
            .filter(which)
            .collect();
        for row in &broken {
            self.still_open()?;
            let sql = match row.seq {
                None => "DELETE FROM refs WHERE name = ?1",
                Some(_) => "DELETE FROM reflog WHERE seq = ?1",
            };
            self.tx
                .execute(sql, [&row.key])
                .map_err(|e| sql_error(&self.path, e))?;
        }
        Ok(broken)
    }

    /// Removes reflog entries made at or before `cutoff` (seconds since the
    /// epoch).
    pub fn expire_reflog(&mut self, cutoff: i64) -> Result<usize> {
        self.still_open()?;
        self.tx
            .execute("DELETE FROM reflog WHERE time <= ?1", [cutoff])
            .map_err(|e| sql_error(&self.path, e))
    }

    /// Applies `edits` with compare-and-swap checks, appends one reflog entry
    /// per edit with `message`, and commits everything written so far. If any
    /// expectation fails, nothing at all is committed.
    pub fn commit(self, edits: &[RefEdit], message: &str) -> Result<()> {
        let time = now();
        for edit in edits {
            self.still_open()?;
            let actual = self.view().find_ref(&edit.name)?;
            let expected = match edit.change {
                Change::Update { expected, .. } | Change::Delete { expected } => expected,
            };
            let ok = match expected {
                Expected::Any => true,
                Expected::MustNotExist => actual.is_none(),
                Expected::MustEqual(id) => actual == Some(id),
            };
            if !ok {
                return Err(Error::RefMismatch {
                    name: edit.name.clone(),
                    expected: match expected {
                        Expected::Any => "anything".into(),
                        Expected::MustNotExist => "absent".into(),
                        Expected::MustEqual(id) => id.to_string(),
                    },
                    actual: actual.map_or_else(|| "absent".into(), |id| id.to_string()),
                });
            }
            let new = match edit.change {
                Change::Update { new, .. } => {
                    self.tx
                        .execute(
                            "INSERT INTO refs(name, id) VALUES (?1, ?2)
                             ON CONFLICT(name) DO UPDATE SET id = excluded.id",
                            params![edit.name.as_str(), new.as_bytes()],
                        )
                        .map_err(|e| sql_error(&self.path, e))?;
                    Some(new)
                }
                Change::Delete { .. } => {
                    self.tx
                        .execute("DELETE FROM refs WHERE name = ?1", [edit.name.as_str()])
                        .map_err(|e| sql_error(&self.path, e))?;
                    None
                }
            };
            self.tx
                .execute(
                    "INSERT INTO reflog(name, old, new, time, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        edit.name.as_str(),
                        actual.as_ref().map(|id| id.as_bytes().to_vec()),
                        new.as_ref().map(|id| id.as_bytes().to_vec()),
                        time,
                        message
                    ],
                )
                .map_err(|e| sql_error(&self.path, e))?;
        }
        // Committing a transaction SQLite already rolled back would report
        // success for writes that did not happen.
        self.still_open()?;
        self.tx.commit().map_err(|e| sql_error(&self.path, e))
    }
}

impl ObjectStore for Transaction<'_> {
    fn contains(&self, id: &ObjectId) -> Result<bool> {
        self.view().contains(id)
    }

    fn try_read(&self, id: &ObjectId) -> Result<Option<Object>> {
        self.view().try_read(id)
    }

    fn write(&mut self, object: &Object) -> Result<ObjectId> {
        self.write_encoded(object.kind(), codec::encode_object(object))
    }
}
