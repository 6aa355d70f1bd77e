//! Reading one state of a store.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use super::error::sql_error;
use super::packs::{PackCache, RawPack, check_id, extract};
use super::rows::{BrokenRef, ObjectRow, describe_value, dictionary_ref, ref_row, reflog_row};
use super::{Error, ObjectInfo, Result, Storage};
use crate::codec::{self, DecodeError};
use crate::compress::Dictionary;
use crate::id::{ObjectId, Prefix, PrefixResolution};
use crate::object::{Image, Kind, Object};
use crate::refs::{RefName, ReflogEntry};

/// Whether an object is present and readable: see [`View::contains`].
pub(super) const CONTAINS: &str = "SELECT 1 FROM objects JOIN packs ON packs.seq = objects.pack
     WHERE objects.id = ?1 AND (packs.dictionary IS NULL
         OR packs.dictionary IN (SELECT id FROM dictionaries))";

/// Read access to one state of a store: the committed state for
/// [`Store::view`](crate::Store::view), or a transaction's state including its own writes.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub(super) conn: &'a Connection,
    pub(super) path: &'a Path,
    pub(super) cache: &'a RefCell<PackCache>,
}

impl<'a> View<'a> {
    /// The store's directory, where readers spill listings
    /// ([`crate::image::spill`]).
    pub fn dir(&self) -> &'a Path {
        self.path
            .parent()
            .expect("holds because the store file is in the store directory")
    }
}

impl View<'_> {
    fn sql(&self, source: rusqlite::Error) -> Error {
        sql_error(self.path, source)
    }

    /// Runs `reads` inside one read transaction (a savepoint, so it nests in
    /// a write transaction too): every read sees the same state of the store,
    /// and SQLite takes its file lock once instead of once per statement,
    /// which is most of the cost of reading many small rows.
    pub fn consistent<T, E: From<Error>>(
        &self,
        reads: impl FnOnce(View<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.conn
            .execute_batch("SAVEPOINT migsnap_read")
            .map_err(|e| self.sql(e))?;
        let result = reads(*self);
        // Releasing a read-only savepoint cannot lose anything; a failure here
        // only matters if the reads themselves succeeded.
        let released = self
            .conn
            .execute_batch("RELEASE migsnap_read")
            .map_err(|e| self.sql(e));
        let value = result?;
        released?;
        Ok(value)
    }

    /// See [`ObjectStore::contains`](crate::ObjectStore::contains). An object whose pack is gone, or whose
    /// pack needs a dictionary the store lacks, does not count as present, so
    /// writing it again heals the store.
    pub fn contains(&self, id: &ObjectId) -> Result<bool> {
        self.conn
            .prepare_cached(CONTAINS)
            .and_then(|mut stmt| stmt.exists([id.as_bytes()]))
            .map_err(|e| self.sql(e))
    }

    /// See [`ObjectStore::try_read`](crate::ObjectStore::try_read). Its index row and its pack are read
    /// in one read transaction: gc moves live objects into other packs and
    /// deletes the old ones, and a commit between the two reads would
    /// leave the row's pack gone.
    pub fn try_read(&self, id: &ObjectId) -> Result<Option<Object>> {
        self.consistent(|view| {
            let Some((pack, offset, len)) = view.locate(id)? else {
                return Ok(None);
            };
            if let Some(object) = view.try_read_streamed(id, pack, offset, len)? {
                return Ok(Some(object));
            }
            let bytes = view.encoded_at(id, pack, offset, len)?;
            codec::decode_object(&bytes)
                .map(Some)
                .map_err(|e: DecodeError| Error::Unreadable {
                    id: *id,
                    reason: e.to_string(),
                })
        })
    }

    /// Reads object `id`, at `offset` and `len` in pack `pack`, when it is
    /// large (over [`LARGE_BYTES`](crate::compress::LARGE_BYTES)) and alone
    /// in its pack without a dictionary, as a full page listing is, by
    /// decoding it straight from SQLite's blob handle: its bytes and its
    /// decoded form are never held together (64 MiB at 4 GiB). `None` for
    /// any other object, and for one that does not decode to itself, which
    /// [`View::encoded_at`] then reads whole to say what is wrong.
    fn try_read_streamed(
        &self,
        id: &ObjectId,
        pack: i64,
        offset: i64,
        len: i64,
    ) -> Result<Option<Object>> {
        let Some(compression) = self.large_and_alone(pack, offset, len)? else {
            return Ok(None);
        };
        let blob = self
            .conn
            .blob_open(rusqlite::MAIN_DB, "packs", "data", pack, true)
            .map_err(|e| self.sql(e))?;
        let limit = u64::try_from(len).unwrap_or(0);
        Ok(match compression {
            crate::compress::Compression::None => {
                codec::decode_object_from(&mut buffered(std::io::Read::take(blob, limit)), id)
            }
            crate::compress::Compression::Zstd => zstd::stream::read::Decoder::new(blob)
                .ok()
                .and_then(|decoder| {
                    let mut reader = buffered(std::io::Read::take(decoder, limit));
                    codec::decode_object_from(&mut reader, id)
                }),
        })
    }

    /// The image and id count of object `id` when it is a full listing
    /// stored large (over [`LARGE_BYTES`](crate::compress::LARGE_BYTES)),
    /// raw and alone in its pack, as every full listing of a database over
    /// 128 MiB is: what [`View::stream_full_listing`] reads a chunk at a
    /// time. Reads only its header, unchecked; `None` for any other object.
    pub fn large_full_listing(&self, id: &ObjectId) -> Result<Option<(Image, u64)>> {
        self.consistent(|view| {
            let Some(blob) = view.large_raw_blob(id)? else {
                return Ok(None);
            };
            Ok(codec::read_full_listing_header(&mut buffered(blob)))
        })
    }

    /// Reads the full listing of image `id`, stored as
    /// [`View::large_full_listing`] finds it, a chunk of ids at a time,
    /// handing each chunk to `each` in order: the ids are never held
    /// together (32 MiB at 4 GiB). Every byte read is hashed; a listing
    /// whose bytes do not hash to `id` fails at the end
    /// ([`Error::Corrupt`]), after `each` has seen its ids. Returns the
    /// image with an empty listing, or `None` when the object is not
    /// stored that way.
    pub fn stream_full_listing(
        &self,
        id: &ObjectId,
        each: &mut dyn FnMut(&[ObjectId]) -> Result<()>,
    ) -> Result<Option<Image>> {
        const CHUNK_IDS: u64 = 8192;
        self.consistent(|view| {
            let Some(blob) = view.large_raw_blob(id)? else {
                return Ok(None);
            };
            let mut hashing = Hashing {
                inner: blob,
                hasher: blake3::Hasher::new(),
            };
            let unreadable = |reason: &str| Error::Unreadable {
                id: *id,
                reason: reason.to_owned(),
            };
            let mut reader = buffered(&mut hashing);
            let Some((image, count)) = codec::read_full_listing_header(&mut reader) else {
                return Ok(None);
            };
            if count != u64::from(image.block_count) {
                return Err(unreadable(&format!(
                    "lists {count} blocks but claims {}",
                    image.block_count
                )));
            }
            let mut bytes = vec![0u8; CHUNK_IDS as usize * 32];
            let mut left = count;
            while left > 0 {
                let chunk = &mut bytes[..(left.min(CHUNK_IDS) * 32) as usize];
                std::io::Read::read_exact(&mut reader, chunk)
                    .map_err(|_| unreadable("its listing ends early"))?;
                let ids: Vec<ObjectId> = chunk
                    .chunks_exact(32)
                    .map(|id| ObjectId::from_bytes(id.try_into().expect("chunks of 32")))
                    .collect();
                each(&ids)?;
                left -= ids.len() as u64;
            }
            if std::io::Read::read(&mut reader, &mut [0u8; 1]).ok() != Some(0) {
                return Err(unreadable("bytes follow its listing"));
            }
            drop(reader);
            let actual = ObjectId::from_bytes(*hashing.hasher.finalize().as_bytes());
            if actual != *id {
                return Err(Error::Corrupt { id: *id, actual });
            }
            Ok(Some(image))
        })
    }

    /// How pack `pack` is compressed, when the object at `offset` and `len`
    /// in it is large (over [`LARGE_BYTES`](crate::compress::LARGE_BYTES))
    /// and the whole pack, without a dictionary: readable straight through
    /// SQLite's blob handle. `None` otherwise.
    fn large_and_alone(
        &self,
        pack: i64,
        offset: i64,
        len: i64,
    ) -> Result<Option<crate::compress::Compression>> {
        let large = i64::try_from(crate::compress::LARGE_BYTES).unwrap_or(i64::MAX);
        if offset != 0 || len <= large {
            return Ok(None);
        }
        let row = self
            .conn
            .prepare_cached(
                "SELECT compression FROM packs
                 WHERE seq = ?1 AND raw_len = ?2 AND dictionary IS NULL",
            )
            .and_then(|mut stmt| {
                stmt.query_row([pack, len], |row| row.get::<_, i64>(0))
                    .optional()
            })
            .map_err(|e| self.sql(e))?;
        Ok(row.and_then(crate::compress::Compression::from_tag))
    }

    /// The bytes of object `id` through SQLite's blob handle when it is
    /// large, raw and alone in its pack; `None` otherwise.
    fn large_raw_blob(&self, id: &ObjectId) -> Result<Option<impl std::io::Read + '_>> {
        let Some((pack, offset, len)) = self.locate(id)? else {
            return Err(Error::NotFound { id: *id });
        };
        if self.large_and_alone(pack, offset, len)? != Some(crate::compress::Compression::None) {
            return Ok(None);
        }
        let blob = self
            .conn
            .blob_open(rusqlite::MAIN_DB, "packs", "data", pack, true)
            .map_err(|e| self.sql(e))?;
        Ok(Some(std::io::Read::take(
            blob,
            u64::try_from(len).unwrap_or(0),
        )))
    }

    /// The encoded bytes of object `id`, checked to hash to it; absence is
    /// [`Error::NotFound`]. Its index row and its pack are read in one read
    /// transaction, as in [`View::try_read`].
    pub(crate) fn encoded(&self, id: &ObjectId) -> Result<Vec<u8>> {
        self.consistent(|view| {
            let (pack, offset, len) = view.locate(id)?.ok_or(Error::NotFound { id: *id })?;
            view.encoded_at(id, pack, offset, len)
        })
    }

    /// Reads the encoded bytes of object `id`, at `offset` and `len` in
    /// pack `pack`, and checks they hash to `id`. An object alone in its
    /// pack (a full image listing) is handed over in the pack's own buffer.
    pub(crate) fn encoded_at(
        &self,
        id: &ObjectId,
        pack: i64,
        offset: i64,
        len: i64,
    ) -> Result<Vec<u8>> {
        let bytes = self.pack_bytes(pack).map_err(|e| match e {
            Error::Unreadable { reason, .. } => Error::Unreadable { id: *id, reason },
            other => other,
        })?;
        // The pack's only object, not shared with the cache: checked in
        // place rather than copied out.
        match Rc::try_unwrap(bytes) {
            Ok(owned) if offset == 0 && usize::try_from(len).ok() == Some(owned.len()) => {
                check_id(owned, id)
            }
            Ok(owned) => extract(&owned, id, pack, offset, len),
            Err(shared) => extract(&shared, id, pack, offset, len),
        }
    }

    /// The decompressed bytes of pack `seq`, from the one-pack cache when the
    /// previous read used the same pack.
    pub(crate) fn pack_bytes(&self, seq: i64) -> Result<Rc<Vec<u8>>> {
        let mut cache = self.cache.borrow_mut();
        // Another process's commit may have deleted the cached pack and
        // given its number to a new one (gc deletes packs, SQLite reuses
        // the highest row number): cached bytes are only trusted while no
        // other connection has committed since.
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(|e| self.sql(e))?;
        if cache.version != Some(version) {
            cache.last = None;
            cache.version = Some(version);
        }
        if let Some((_, bytes)) = cache.last.as_ref().filter(|(cached, _)| *cached == seq) {
            return Ok(Rc::clone(bytes));
        }
        let raw = self.fetch_pack(seq)?;
        if let Some(dictionary) = raw
            .dictionary
            .filter(|d| !cache.decompressors.has(Some(*d)))
        {
            let dict = self
                .load_dictionary(&dictionary)?
                .ok_or_else(|| raw.unreadable(format!("needs missing dictionary {dictionary}")))?;
            cache.decompressors.add(Some(&dict)).map_err(|e| {
                raw.unreadable(format!("dictionary {dictionary} does not load: {e}"))
            })?;
        }
        let bytes = Rc::new(raw.unpack(&mut cache.decompressors)?);
        // A large pack is one large object, read once: keeping it would
        // hold its size in memory until the next read of another pack.
        if bytes.len() <= crate::compress::LARGE_BYTES {
            cache.last = Some((seq, Rc::clone(&bytes)));
        }
        Ok(bytes)
    }

    /// Reads pack row `seq` as stored, without decompressing it.
    pub(crate) fn fetch_pack(&self, seq: i64) -> Result<RawPack> {
        let missing = || Error::Unreadable {
            id: ObjectId::from_bytes([0; 32]),
            reason: format!("its pack {seq} is missing"),
        };
        // A large pack (a full page listing: 32 MiB at 4 GiB) is read
        // through SQLite's blob handle, straight into one buffer: as a
        // column value SQLite would assemble it in a buffer of its own
        // first, and it would be held twice.
        let large = i64::try_from(crate::compress::LARGE_BYTES).unwrap_or(i64::MAX);
        let (raw_len, compression, dictionary, data) = self
            .conn
            .prepare_cached(
                "SELECT raw_len, compression, dictionary,
                        CASE WHEN length(data) > ?2 THEN NULL ELSE data END
                 FROM packs WHERE seq = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([seq, large], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, rusqlite::types::Value>(2)?,
                        row.get::<_, Option<Vec<u8>>>(3)?,
                    ))
                })
                .optional()
            })
            .map_err(|e| self.sql(e))?
            .ok_or_else(missing)?;
        let data = match data {
            Some(data) => data,
            None => {
                let mut blob = self
                    .conn
                    .blob_open(rusqlite::MAIN_DB, "packs", "data", seq, true)
                    .map_err(|e| self.sql(e))?;
                let mut data = Vec::with_capacity(blob.len());
                std::io::Read::read_to_end(&mut blob, &mut data).map_err(|source| Error::Io {
                    path: self.path.to_path_buf(),
                    source,
                })?;
                data
            }
        };
        let dictionary = dictionary_ref(&dictionary).map_err(|reason| Error::Unreadable {
            id: ObjectId::from_bytes([0; 32]),
            reason: format!("pack {seq} {reason}"),
        })?;
        Ok(RawPack {
            seq,
            raw_len,
            compression,
            dictionary,
            data,
        })
    }

    /// Where object `id` lives: its pack, offset and length.
    pub(crate) fn locate(&self, id: &ObjectId) -> Result<Option<(i64, i64, i64)>> {
        self.conn
            .prepare_cached("SELECT pack, offset, raw_len FROM objects WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([id.as_bytes()], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .optional()
            })
            .map_err(|e| self.sql(e))
    }

    /// Every compression dictionary, for decompressing on other threads.
    /// Each is named by the hash of the bytes read, not by the stored `id`,
    /// so a damaged row can never stand in for the dictionary a pack needs.
    pub(crate) fn dictionaries(&self) -> Result<Vec<Dictionary>> {
        let mut stmt = self
            .conn
            .prepare("SELECT data FROM dictionaries ORDER BY seq")
            .map_err(|e| self.sql(e))?;
        stmt.query_map([], |row| Ok(Dictionary::new(row.get(0)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))
    }

    /// The dictionary whose bytes hash to `id`, if the store has it.
    fn load_dictionary(&self, id: &ObjectId) -> Result<Option<Dictionary>> {
        let rows: Vec<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT data FROM dictionaries WHERE id = ?1")
            .and_then(|mut stmt| stmt.query_map([id.as_bytes()], |row| row.get(0))?.collect())
            .map_err(|e| self.sql(e))?;
        Ok(rows
            .into_iter()
            .map(Dictionary::new)
            .find(|dict| dict.id == *id))
    }

    /// The newest compression dictionary, if the store has one.
    pub fn dictionary(&self) -> Result<Option<Dictionary>> {
        self.conn
            .query_row(
                "SELECT data FROM dictionaries ORDER BY seq DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
            .map(|bytes| bytes.map(Dictionary::new))
    }

    /// Packs and dictionaries that cannot be used as stored, without reading
    /// any pack data: a dictionary row whose bytes do not hash to its `id`,
    /// a pack that names a dictionary the store lacks, and a pack whose
    /// recorded level is no zstd level (packing could not tell whether it is
    /// loose).
    pub fn pack_row_problems(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut rows = self
            .conn
            .prepare("SELECT seq, id, data FROM dictionaries ORDER BY seq")
            .map_err(|e| self.sql(e))?;
        let mut rows = rows.query([]).map_err(|e| self.sql(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let seq: i64 = row.get(0).map_err(|e| self.sql(e))?;
            let id: rusqlite::types::Value = row.get(1).map_err(|e| self.sql(e))?;
            let data: Vec<u8> = row.get(2).map_err(|e| self.sql(e))?;
            let actual = ObjectId::hash(&data);
            if dictionary_ref(&id) != Ok(Some(actual)) {
                problems.push(format!(
                    "dictionary row {seq} is damaged: its bytes hash to {actual}, not to its id"
                ));
            }
        }
        let mut packs = self
            .conn
            .prepare(
                "SELECT seq, dictionary FROM packs WHERE dictionary IS NOT NULL
                 AND dictionary NOT IN (SELECT id FROM dictionaries WHERE id IS NOT NULL)
                 ORDER BY seq",
            )
            .map_err(|e| self.sql(e))?;
        let mut rows = packs.query([]).map_err(|e| self.sql(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let seq: i64 = row.get(0).map_err(|e| self.sql(e))?;
            let dictionary: rusqlite::types::Value = row.get(1).map_err(|e| self.sql(e))?;
            problems.push(match dictionary_ref(&dictionary) {
                Ok(Some(id)) => format!("pack {seq} needs dictionary {id}, which the store lacks"),
                Ok(None) => continue,
                Err(reason) => format!("pack {seq} {reason}"),
            });
        }
        let mut levels = self
            .conn
            .prepare(
                "SELECT seq, level FROM packs
                 WHERE typeof(level) != 'integer' OR level NOT BETWEEN ?1 AND ?2 ORDER BY seq",
            )
            .map_err(|e| self.sql(e))?;
        let (lowest, highest) = (
            zstd::zstd_safe::min_c_level(),
            zstd::zstd_safe::max_c_level(),
        );
        let mut rows = levels.query([lowest, highest]).map_err(|e| self.sql(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let seq: i64 = row.get(0).map_err(|e| self.sql(e))?;
            let level: rusqlite::types::Value = row.get(1).map_err(|e| self.sql(e))?;
            problems.push(format!(
                "pack {seq} records level {}, which is no zstd level",
                describe_value(&level)
            ));
        }
        Ok(problems)
    }

    /// Whether any pack is loose ([`loose`]: below `level`), for packing.
    pub(crate) fn has_loose_packs(&self, level: i32) -> Result<bool> {
        self.conn
            .query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM packs p WHERE {})", loose()),
                [level],
                |row| row.get(0),
            )
            .map_err(|e| self.sql(e))
    }

    /// Every loose pack ([`loose`]: below `level`) that holds objects, in
    /// order, with how many objects it holds.
    pub(crate) fn loose_pack_counts(&self, level: i32) -> Result<Vec<(i64, u64)>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT o.pack, count(*) FROM objects o JOIN packs p ON p.seq = o.pack
                     WHERE {} GROUP BY o.pack ORDER BY o.pack",
                loose()
            ))
            .map_err(|e| self.sql(e))?;
        stmt.query_map([level], |row| {
            Ok((row.get(0)?, row.get::<_, i64>(1)?.max(0) as u64))
        })
        .and_then(Iterator::collect)
        .map_err(|e| self.sql(e))
    }

    /// The index rows of the objects in the loose packs ([`loose`]: below
    /// `level`) numbered `packs`, ordered by pack and offset.
    pub(crate) fn loose_objects(
        &self,
        level: i32,
        packs: std::ops::RangeInclusive<i64>,
    ) -> Result<Vec<ObjectRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT o.pack, o.id, o.kind, o.offset, o.raw_len
                 FROM objects o JOIN packs p ON p.seq = o.pack
                 WHERE {} AND o.pack BETWEEN ?2 AND ?3 ORDER BY o.pack, o.offset",
                loose()
            ))
            .map_err(|e| self.sql(e))?;
        let mut rows = stmt
            .query(params![level, packs.start(), packs.end()])
            .map_err(|e| self.sql(e))?;
        let mut loose = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let pack: i64 = row.get(0).map_err(|e| self.sql(e))?;
            let id: Value = row.get(1).map_err(|e| self.sql(e))?;
            let kind: Value = row.get(2).map_err(|e| self.sql(e))?;
            let offset: i64 = row.get(3).map_err(|e| self.sql(e))?;
            let len: i64 = row.get(4).map_err(|e| self.sql(e))?;
            let object = match (id, kind) {
                (Value::Blob(id), Value::Integer(kind)) => ObjectId::try_from_slice(&id)
                    .zip(u8::try_from(kind).ok().and_then(Kind::from_byte)),
                _ => None,
            };
            loose.push(ObjectRow {
                pack,
                object,
                offset,
                len,
            });
        }
        Ok(loose)
    }

    /// Reads a snapshot; absence is [`Error::NotFound`] and any other kind
    /// is [`Error::WrongKind`].
    pub fn read_snapshot(&self, id: &ObjectId) -> Result<crate::object::Snapshot> {
        match self.try_read(id)? {
            Some(Object::Snapshot(snapshot)) => Ok(snapshot),
            Some(other) => Err(Error::WrongKind {
                id: *id,
                expected: "snapshot",
                actual: other.kind().name(),
            }),
            None => Err(Error::NotFound { id: *id }),
        }
    }

    /// Reads a blob's bytes; any other kind is [`Error::WrongKind`].
    pub fn read_blob(&self, id: &ObjectId) -> Result<Vec<u8>> {
        match self.try_read(id)? {
            Some(Object::Blob(bytes)) => Ok(bytes),
            Some(other) => Err(Error::WrongKind {
                id: *id,
                expected: "blob",
                actual: other.kind().name(),
            }),
            None => Err(Error::NotFound { id: *id }),
        }
    }

    /// Size figures of an object without reading its data.
    pub fn info(&self, id: &ObjectId) -> Result<Option<ObjectInfo>> {
        self.conn
            .prepare_cached("SELECT kind, raw_len, pack FROM objects WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([id.as_bytes()], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .optional()
            })
            .map_err(|e| self.sql(e))?
            .map(|(kind, raw_len, pack)| {
                let kind = u8::try_from(kind)
                    .ok()
                    .and_then(Kind::from_byte)
                    .ok_or_else(|| Error::Unreadable {
                        id: *id,
                        reason: format!("unknown kind {kind}"),
                    })?;
                Ok(ObjectInfo {
                    kind,
                    raw_len: raw_len.max(0) as u64,
                    pack,
                })
            })
            .transpose()
    }

    /// The target of a ref, if it exists.
    pub fn find_ref(&self, name: &RefName) -> Result<Option<ObjectId>> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT id FROM refs WHERE name = ?1")
            .and_then(|mut stmt| stmt.query_row([name.as_str()], |row| row.get(0)).optional())
            .map_err(|e| self.sql(e))?;
        bytes
            .map(|b| ObjectId::try_from_slice(&b).ok_or_else(|| self.bad_ref(name.as_str())))
            .transpose()
    }

    fn bad_ref(&self, name: &str) -> Error {
        Error::BadRef {
            path: self.path.to_path_buf(),
            name: name.to_owned(),
        }
    }

    /// Resolves a hex prefix to the objects of `kind` that start with it.
    /// Naming is by kind because a short prefix of a snapshot id would
    /// otherwise collide with one of the many page blobs.
    pub fn resolve_prefix(&self, prefix: &Prefix, kind: Kind) -> Result<PrefixResolution> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id FROM objects WHERE id BETWEEN ?1 AND ?2 AND kind = ?3
                 ORDER BY id LIMIT 10",
            )
            .map_err(|e| self.sql(e))?;
        let ids = stmt
            .query_map(
                params![
                    prefix.lower_bound().as_bytes(),
                    prefix.upper_bound().as_bytes(),
                    kind as u8
                ],
                |row| row.get::<_, Vec<u8>>(0),
            )
            .map_err(|e| self.sql(e))?
            .filter_map(|row| row.ok().and_then(|b| ObjectId::try_from_slice(&b)))
            .collect::<Vec<_>>();
        Ok(match ids.as_slice() {
            [] => PrefixResolution::None,
            [one] => PrefixResolution::One(*one),
            _ => PrefixResolution::Ambiguous(ids),
        })
    }

    /// All refs whose name starts with `prefix`, sorted by name. A row that
    /// cannot be read is left out, so one damaged ref does not stop every
    /// command: [`View::broken_refs`] lists such rows, and gc refuses to run
    /// while there is one.
    pub fn refs(&self, prefix: &str) -> Result<Vec<(RefName, ObjectId)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, id FROM refs WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([prefix], |row| Ok(ref_row(row.get(0)?, row.get(1)?)))
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(good) = row.map_err(|e| self.sql(e))? {
                out.push(good);
            }
        }
        Ok(out)
    }

    /// The reflog of one ref, or of every ref when `name` is `None`, oldest
    /// first. Like [`View::refs`], it leaves out rows that cannot be read.
    pub fn reflog(&self, name: Option<&RefName>) -> Result<Vec<ReflogEntry>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, old, new, time, message FROM reflog
                 WHERE ?1 IS NULL OR name = ?1 ORDER BY seq",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([name.map(RefName::as_str)], |row| {
                Ok(reflog_row(
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(entry) = row.map_err(|e| self.sql(e))? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Ref and reflog rows that cannot be read (a name that breaks the
    /// [`RefName`] rules, an id that is not 32 bytes, a value of the wrong
    /// type), in table order.
    pub fn broken_refs(&self) -> Result<Vec<BrokenRef>> {
        let mut out = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT name, id FROM refs ORDER BY name")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |row| {
                let name: Value = row.get(0)?;
                Ok((name.clone(), ref_row(name, row.get(1)?)))
            })
            .map_err(|e| self.sql(e))?;
        for row in rows {
            if let (key, Err(reason)) = row.map_err(|e| self.sql(e))? {
                out.push(BrokenRef {
                    name: describe_value(&key),
                    seq: None,
                    reason,
                    key,
                });
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT seq, name, old, new, time, message FROM reflog ORDER BY seq")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |row| {
                let name: Value = row.get(1)?;
                Ok((
                    row.get::<_, i64>(0)?,
                    name.clone(),
                    reflog_row(name, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?),
                ))
            })
            .map_err(|e| self.sql(e))?;
        for row in rows {
            if let (seq, name, Err(reason)) = row.map_err(|e| self.sql(e))? {
                out.push(BrokenRef {
                    name: describe_value(&name),
                    seq: Some(seq),
                    reason,
                    key: Value::Integer(seq),
                });
            }
        }
        Ok(out)
    }

    /// Whether retention gave up the image of `snapshot`.
    pub fn is_forgotten(&self, snapshot: &ObjectId) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM forgotten WHERE snapshot = ?1")
            .and_then(|mut stmt| stmt.exists([snapshot.as_bytes()]))
            .map_err(|e| self.sql(e))
    }

    /// Snapshots whose image retention gave up, with the time it did.
    pub fn forgotten(&self) -> Result<Vec<(ObjectId, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT snapshot, time FROM forgotten ORDER BY snapshot")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, time) = row.map_err(|e| self.sql(e))?;
            let id = ObjectId::try_from_slice(&id).ok_or_else(|| self.bad_ref("forgotten"))?;
            out.push((id, time));
        }
        Ok(out)
    }

    /// Calls `each` with the id and size figures of every object, in pack
    /// order (so reading them one by one hits the pack cache), without
    /// decoding any. Rows whose id or kind is unreadable are passed with
    /// `None` so fsck can report them.
    pub fn for_each_object(
        &self,
        mut each: impl FnMut(Option<ObjectId>, Option<ObjectInfo>),
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, kind, raw_len, pack FROM objects ORDER BY pack, offset")
            .map_err(|e| self.sql(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.sql(e))?;
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let id: Vec<u8> = row.get(0).map_err(|e| self.sql(e))?;
            let kind: i64 = row.get(1).map_err(|e| self.sql(e))?;
            let raw_len: i64 = row.get(2).map_err(|e| self.sql(e))?;
            let pack: i64 = row.get(3).map_err(|e| self.sql(e))?;
            let info = u8::try_from(kind)
                .ok()
                .and_then(Kind::from_byte)
                .map(|kind| ObjectInfo {
                    kind,
                    raw_len: raw_len.max(0) as u64,
                    pack,
                });
            each(ObjectId::try_from_slice(&id), info);
        }
        Ok(())
    }

    /// Object and pack totals. An object length no writer could store (as
    /// a hand-edited row may hold) is [`Error::Damaged`]: summing it could
    /// overflow.
    pub fn storage(&self) -> Result<Storage> {
        let (objects, raw_bytes, lowest, highest, packs, pack_bytes) = self
            .conn
            .query_row(
                "SELECT count(*), total(raw_len), min(raw_len), max(raw_len),
                        (SELECT count(*) FROM packs), (SELECT total(length(data)) FROM packs)
                 FROM objects",
                [],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, f64>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, Option<i64>>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, f64>(5)?,
                    ))
                },
            )
            .map_err(|e| self.sql(e))?;
        let limit = codec::DECODE_LIMIT as i64;
        if let Some(bad) = [lowest, highest]
            .into_iter()
            .flatten()
            .find(|len| !(0..=limit).contains(len))
        {
            return Err(Error::Damaged {
                path: self.path.to_path_buf(),
                reason: format!("an object's raw_len is {bad}, which no object can have"),
            });
        }
        Ok(Storage {
            objects: objects.max(0) as u64,
            raw_bytes: raw_bytes as u64,
            packs: packs.max(0) as u64,
            pack_bytes: pack_bytes as u64,
        })
    }

    /// Stored bytes of the packs numbered `seqs`.
    pub(crate) fn packs_size(&self, seqs: &[i64]) -> Result<u64> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT coalesce(length(data), 0) FROM packs WHERE seq = ?1")
            .map_err(|e| self.sql(e))?;
        let mut total = 0u64;
        for seq in seqs {
            let len: Option<i64> = stmt
                .query_row([seq], |row| row.get(0))
                .optional()
                .map_err(|e| self.sql(e))?;
            total += len.unwrap_or(0).max(0) as u64;
        }
        Ok(total)
    }

    /// Size of the store file in bytes.
    pub fn file_size(&self) -> Result<u64> {
        let size: i64 = self
            .conn
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.sql(e))?;
        Ok(size.max(0) as u64)
    }
}

/// `reader` behind a buffer: bincode reads a few bytes at a time.
/// A reader that hashes what it reads.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
        Ok(read)
    }
}

fn buffered<R: std::io::Read>(reader: R) -> std::io::BufReader<R> {
    std::io::BufReader::with_capacity(codec::STREAM_BUFFER, reader)
}

/// The condition on a `packs` row `p` that makes it loose, for packing:
/// written below level `?1`, unless it is stored uncompressed and over
/// [`LARGE_BYTES`](crate::compress::LARGE_BYTES). That is a full page
/// listing (hashes, which never compress; a pack of pages is a few hundred
/// KiB), alone in its pack and never with the dictionary, so packing could
/// not make it smaller. It would only copy it, and SQLite expands the
/// copy's placeholder into a second buffer (67 MiB for a 4 GiB image's
/// listing, the peak of `gc` at that size).
fn loose() -> String {
    format!(
        "p.level < ?1 AND NOT (p.compression = {} AND p.raw_len > {})",
        crate::compress::Compression::None as u8,
        crate::compress::LARGE_BYTES
    )
}
