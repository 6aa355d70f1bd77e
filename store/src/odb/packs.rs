//! Pack rows as stored, and the per-connection cache of the last unpacked one.

use std::rc::Rc;

use super::{Error, Result};
use crate::codec;
use crate::compress::{Compression, Decompressors};
use crate::id::ObjectId;

/// The last decompressed pack and the zstd contexts of one connection: a
/// restore reads pages in pack order, so one cached pack serves 16 reads.
#[derive(Default)]
pub(super) struct PackCache {
    pub(super) last: Option<(i64, Rc<Vec<u8>>)>,
    /// `PRAGMA data_version` when `last` was checked: it changes when
    /// another connection commits.
    pub(super) version: Option<i64>,
    pub(super) decompressors: Decompressors,
}

/// A pack row as stored: compressed bytes plus what is needed to unpack them.
pub(crate) struct RawPack {
    pub(crate) seq: i64,
    pub(super) raw_len: i64,
    pub(super) compression: i64,
    pub(crate) dictionary: Option<ObjectId>,
    pub(super) data: Vec<u8>,
}

impl RawPack {
    /// The length it states it unpacks to (a damaged row's claim is
    /// checked when it is unpacked).
    pub(crate) fn unpacked_len(&self) -> usize {
        usize::try_from(self.raw_len).unwrap_or(usize::MAX)
    }

    pub(super) fn unreadable(&self, reason: String) -> Error {
        Error::Unreadable {
            id: ObjectId::from_bytes([0; 32]),
            reason: format!("pack {}: {reason}", self.seq),
        }
    }

    /// Decompresses the pack; `decompressors` must hold a context for its
    /// dictionary. The declared length bounds the output.
    pub(crate) fn unpack(self, decompressors: &mut Decompressors) -> Result<Vec<u8>> {
        let (compression, raw_len) = self.prepare(decompressors)?;
        let seq = self.seq;
        let bytes = decompressors
            .decompress(compression, self.dictionary, self.data, raw_len)
            .map_err(|e| undecompressable(seq, &e))?;
        if bytes.len() != raw_len {
            return Err(Error::Unreadable {
                id: ObjectId::from_bytes([0; 32]),
                reason: format!("pack {seq} holds {} bytes, not {raw_len}", bytes.len()),
            });
        }
        Ok(bytes)
    }

    /// Whether a reader that needs only the first `need` bytes can stop
    /// decoding early ([`RawPack::unpack_prefix`]): the pack is compressed
    /// and holds more than that.
    pub(crate) fn decodes_in_part(&self, need: usize) -> bool {
        Compression::from_tag(self.compression) == Some(Compression::Zstd)
            && usize::try_from(self.raw_len).is_ok_and(|len| need < len)
    }

    /// The pack's first `need` bytes, decoded no further, for a pack that
    /// [decodes in part](RawPack::decodes_in_part): what is cut from them
    /// must be checked by its hash, as [`extract`] does. Fewer come back
    /// only from a frame that ends early.
    pub(crate) fn unpack_prefix(
        &self,
        decompressors: &mut Decompressors,
        need: usize,
    ) -> Result<Vec<u8>> {
        let (_, raw_len) = self.prepare(decompressors)?;
        decompressors
            .decompress_prefix(self.dictionary, &self.data, need, raw_len)
            .map_err(|e| undecompressable(self.seq, &e))
    }

    /// The pack's compression and declared length, once both are known to
    /// be possible and a context for plain zstd is ready.
    fn prepare(&self, decompressors: &mut Decompressors) -> Result<(Compression, usize)> {
        let compression = Compression::from_tag(self.compression)
            .ok_or_else(|| self.unreadable(format!("unknown compression {}", self.compression)))?;
        let raw_len = usize::try_from(self.raw_len)
            .ok()
            .filter(|len| *len <= codec::DECODE_LIMIT)
            .ok_or_else(|| self.unreadable(format!("impossible length {}", self.raw_len)))?;
        // Contexts for dictionaries are the caller's to add; the plain one is
        // made here on first use.
        if compression == Compression::Zstd && self.dictionary.is_none() && !decompressors.has(None)
        {
            decompressors
                .add(None)
                .map_err(|e| self.unreadable(format!("zstd context: {e}")))?;
        }
        Ok((compression, raw_len))
    }
}

fn undecompressable(seq: i64, error: &std::io::Error) -> Error {
    Error::Unreadable {
        id: ObjectId::from_bytes([0; 32]),
        reason: format!("pack {seq} does not decompress: {error}"),
    }
}

/// Cuts object `id` out of an unpacked pack and checks its hash.
pub(crate) fn extract(
    pack_bytes: &[u8],
    id: &ObjectId,
    pack: i64,
    offset: i64,
    len: i64,
) -> Result<Vec<u8>> {
    member_bytes(pack_bytes, id, pack, offset, len)
        .and_then(|bytes| hashed_to(bytes, id))
        .map(<[u8]>::to_vec)
}

/// The bytes at `offset`, `len` of an unpacked pack, where object `id` is
/// recorded to lie, not yet hashed (see [`hashed_to`]).
pub(crate) fn member_bytes<'a>(
    pack_bytes: &'a [u8],
    id: &ObjectId,
    pack: i64,
    offset: i64,
    len: i64,
) -> Result<&'a [u8]> {
    usize::try_from(offset)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(start, len)| pack_bytes.get(start..start.checked_add(len)?))
        .ok_or_else(|| Error::Unreadable {
            id: *id,
            reason: format!("its place {offset}+{len} is outside pack {pack}"),
        })
}

/// `encoded`, when it hashes to `id`; else [`Error::Corrupt`].
pub(crate) fn hashed_to<'a>(encoded: &'a [u8], id: &ObjectId) -> Result<&'a [u8]> {
    let actual = ObjectId::hash(encoded);
    if actual != *id {
        return Err(Error::Corrupt { id: *id, actual });
    }
    Ok(encoded)
}

/// `encoded`, owned, when it hashes to `id`.
pub(crate) fn check_id(encoded: Vec<u8>, id: &ObjectId) -> Result<Vec<u8>> {
    hashed_to(&encoded, id)?;
    Ok(encoded)
}
