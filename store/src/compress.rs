//! zstd compression of packs, optionally with a trained dictionary.
//!
//! Objects are hashed *before* compression, so neither the level nor the
//! dictionary is part of any id. Small records such as 4 KiB database pages
//! compress poorly on their own; packing 16 of them into one frame and
//! priming zstd with a dictionary trained on the database's own pages brings
//! the store close to compressing the whole file at once.

use std::collections::HashMap;
use std::io;

use zstd::zstd_safe::{DCtx, DParameter, InBuffer, OutBuffer, ResetDirective};

use crate::id::ObjectId;

/// How the `data` column of a pack row is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Compression {
    /// The concatenated encoded objects as they are.
    None = 0,
    /// One zstd frame of them (with the row's dictionary, if any).
    Zstd = 1,
}

impl Compression {
    /// The compression for a stored tag, if it is one.
    pub fn from_tag(tag: i64) -> Option<Compression> {
        match tag {
            0 => Some(Compression::None),
            1 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// The zstd level a snapshot writes new packs with: the fastest positive
/// level, so the user waits for reading and hashing rather than for the
/// compressor. Such packs are *loose*: `gc` recompresses them at
/// [`PACKED_LEVEL`] (see `crate::repack`).
pub const SNAPSHOT_LEVEL: i32 = 1;

/// The zstd level of the compact form that `gc` packs loose packs into. A
/// pack written below it is loose.
pub const PACKED_LEVEL: i32 = 9;

/// Size of a trained dictionary in bytes.
pub const DICTIONARY_SIZE: usize = 64 * 1024;

/// A zstd dictionary, named by the BLAKE3 hash of its bytes: a pack names the
/// dictionary it was compressed with by that hash, so it can never be paired
/// with another one (a row number could be reused after a rollback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dictionary {
    /// BLAKE3 of `bytes`.
    pub id: ObjectId,
    /// The zstd dictionary bytes.
    pub bytes: Vec<u8>,
}

impl Dictionary {
    /// Names `bytes` by their hash.
    pub fn new(bytes: Vec<u8>) -> Dictionary {
        Dictionary {
            id: ObjectId::hash(&bytes),
            bytes,
        }
    }
}

/// Trains a zstd dictionary from sample records (e.g. database pages).
pub fn train_dictionary(samples: &[Vec<u8>]) -> io::Result<Vec<u8>> {
    zstd::dict::from_samples(samples, DICTIONARY_SIZE)
}

/// A reusable zstd context, optionally primed with a dictionary: creating one
/// per pack would cost more than compressing it.
pub struct Compressor {
    inner: zstd::bulk::Compressor<'static>,
    level: i32,
    dictionary: Option<ObjectId>,
}

/// Above this many bytes an object, or a pack, is large (in practice a
/// full page listing): sampled before it is compressed, written and read
/// through SQLite's blob handle, and not kept in the one-pack cache. Each
/// of those avoids holding a second copy of it.
pub const LARGE_BYTES: usize = 1 << 20;

/// The prefix sampled: it must shrink by at least 1/32.
const SAMPLE_BYTES: usize = 128 << 10;

impl Compressor {
    /// A compressor at `level` (zstd's scale, 1 to 22) with `dictionary`.
    pub fn new(level: i32, dictionary: Option<&Dictionary>) -> io::Result<Compressor> {
        let inner = match dictionary {
            Some(dict) => zstd::bulk::Compressor::with_dictionary(level, &dict.bytes)?,
            None => zstd::bulk::Compressor::new(level)?,
        };
        Ok(Compressor {
            inner,
            level,
            dictionary: dictionary.map(|d| d.id),
        })
    }

    /// The zstd level it compresses at, which each pack row records.
    pub fn level(&self) -> i32 {
        self.level
    }

    /// Compresses `raw`, or returns it unchanged when that is smaller. Also
    /// returns the dictionary used, if any.
    pub fn compress(&mut self, raw: Vec<u8>) -> (Compression, Option<ObjectId>, Vec<u8>) {
        match self.shrink(&raw) {
            Some(packed) => (Compression::Zstd, self.dictionary, packed),
            None => (Compression::None, None, raw),
        }
    }

    /// `raw` compressed, when that is smaller; `None` means it is kept as it
    /// is. It is only borrowed, so a caller holding one large object need
    /// not copy it into a buffer of its own first. Above [`LARGE_BYTES`]
    /// bytes, a prefix that does not shrink keeps the whole raw without
    /// trying: a full page listing (block ids, which are hashes: 32 MiB at
    /// 4 GiB) never compresses, and trying costs a second buffer of its size.
    pub fn shrink(&mut self, raw: &[u8]) -> Option<Vec<u8>> {
        if raw.len() > LARGE_BYTES {
            let sample = &raw[..SAMPLE_BYTES];
            match self.inner.compress(sample) {
                Ok(packed) if packed.len() < sample.len() * 31 / 32 => {}
                _ => return None,
            }
        }
        self.inner
            .compress(raw)
            .ok()
            .filter(|packed| packed.len() < raw.len())
    }
}

/// Compressed bytes handed to zstd at a time when only a prefix of a frame
/// is wanted: a block of a compact pack (128 KiB of pages) is about 30 KiB.
const FEED_BYTES: usize = 4 << 10;

/// Whether `data` is exactly one zstd frame, as everything this project
/// compresses is. zstd decodes frames laid end to end (and skips
/// skippable ones) as one, but a partial read decodes the first frame only
/// ([`Decompressors::decompress_prefix`]): data that is not one frame is
/// refused wherever it is read whole or verified, so that a pack that
/// verifies reads in part as it reads whole.
pub fn is_one_frame(data: &[u8]) -> bool {
    zstd::zstd_safe::find_frame_compressed_size(data) == Ok(data.len())
}

/// Why data that [`is_one_frame`] refuses is refused.
pub const NOT_ONE_FRAME: &str = "the data is not exactly one zstd frame";

/// Decompression contexts by dictionary, kept for the life of a connection.
#[derive(Default)]
pub struct Decompressors {
    contexts: HashMap<Option<ObjectId>, DCtx<'static>>,
}

impl Decompressors {
    /// Whether a context for `dictionary` is ready.
    pub fn has(&self, dictionary: Option<ObjectId>) -> bool {
        self.contexts.contains_key(&dictionary)
    }

    /// Prepares a context for `dictionary` (its bytes, or `None` for plain zstd).
    pub fn add(&mut self, dictionary: Option<&Dictionary>) -> io::Result<()> {
        let mut context =
            DCtx::try_create().ok_or_else(|| io::Error::other("zstd: no memory for a context"))?;
        if let Some(dict) = dictionary {
            // Sticky: every frame this context decodes uses it.
            context.load_dictionary(&dict.bytes).map_err(zstd_error)?;
        }
        self.contexts.insert(dictionary.map(|d| d.id), context);
        Ok(())
    }

    /// Undoes [`Compressor::compress`]; `raw_len` bounds the output so a
    /// hostile frame cannot allocate more than the row claims.
    pub fn decompress(
        &mut self,
        compression: Compression,
        dictionary: Option<ObjectId>,
        data: Vec<u8>,
        raw_len: usize,
    ) -> io::Result<Vec<u8>> {
        match compression {
            Compression::None => Ok(data),
            Compression::Zstd => {
                if !is_one_frame(&data) {
                    return Err(io::Error::other(NOT_ONE_FRAME));
                }
                let mut out = Vec::with_capacity(raw_len);
                self.context(dictionary)?
                    .decompress(&mut out, &data)
                    .map_err(zstd_error)?;
                Ok(out)
            }
        }
    }

    /// The first `need` bytes of the zstd frame `data` (made with
    /// `dictionary`, `frame_len` bytes in all), decoded no further than the
    /// block that holds the last of them: a reader that wants two pages of
    /// a pack of 64 stops after the block with the second. Fewer bytes come
    /// back only when the frame ends first. Nothing past the prefix is
    /// checked (not even the frame's end), so what is cut from it must be
    /// checked by its hash.
    pub fn decompress_prefix(
        &mut self,
        dictionary: Option<ObjectId>,
        data: &[u8],
        need: usize,
        frame_len: usize,
    ) -> io::Result<Vec<u8>> {
        let context = self.context(dictionary)?;
        // A frame left half-read by an earlier prefix (or an error) would
        // otherwise be continued; the dictionary survives the reset.
        context
            .reset(ResetDirective::SessionOnly)
            .map_err(zstd_error)?;
        // With a stable output buffer as long as the frame, zstd decodes
        // each block straight into it; into a shorter one it decodes into
        // its own window and copies out. The compressed bytes go in a few
        // KiB at a time, so decoding stops soon after the block that ends
        // the prefix.
        // It stays set on the context: the one-shot `decompress` ignores
        // it, and every streaming decode goes through here.
        context
            .set_parameter(DParameter::StableOutBuffer(true))
            .map_err(zstd_error)?;
        let mut out = Vec::with_capacity(frame_len.max(need));
        let mut input = InBuffer::around(&data[..0]);
        while out.len() < need {
            let before = (input.pos, out.len());
            input.src = &data[..data.len().min(input.pos + FEED_BYTES)];
            let mut output = OutBuffer::around_pos(&mut out, before.1);
            let finished = context
                .decompress_stream(&mut output, &mut input)
                .map_err(zstd_error)?
                == 0;
            if finished || before == (input.pos, out.len()) {
                break;
            }
        }
        Ok(out)
    }

    fn context(&mut self, dictionary: Option<ObjectId>) -> io::Result<&mut DCtx<'static>> {
        self.contexts.get_mut(&dictionary).ok_or_else(|| {
            io::Error::other(format!(
                "no decompression context for dictionary {dictionary:?}"
            ))
        })
    }
}

/// A zstd error code as an I/O error carrying zstd's own name for it.
fn zstd_error(code: usize) -> io::Error {
    io::Error::other(zstd::zstd_safe::get_error_name(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 600 KiB that compress about as database pages do (a few times),
    /// so a frame of them spans several blocks of compressed bytes.
    fn pages() -> Vec<u8> {
        let words: [&[u8]; 8] = [
            b"chat ",
            b"message ",
            b"user ",
            b"the ",
            b"model ",
            b"42 ",
            b"{\"role\": ",
            b"assistant ",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut out = Vec::with_capacity(600 * 1024);
        while out.len() < 600 * 1024 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(words[(state % 8) as usize]);
            out.push((state >> 32) as u8);
        }
        out.truncate(600 * 1024);
        out
    }

    #[test]
    fn a_prefix_is_the_start_of_the_whole_and_leaves_the_context_usable() {
        let raw = pages();
        let dictionary = Dictionary::new(
            train_dictionary(&raw.chunks(4096).map(<[u8]>::to_vec).collect::<Vec<_>>()).unwrap(),
        );
        for dict in [None, Some(&dictionary)] {
            let mut compressor = Compressor::new(PACKED_LEVEL, dict).unwrap();
            let (compression, used, packed) = compressor.compress(raw.clone());
            assert_eq!(compression, Compression::Zstd);
            let mut decompressors = Decompressors::default();
            decompressors.add(dict).unwrap();
            for need in [1, 4096, 131_072, 131_073, 300_000, raw.len()] {
                let prefix = decompressors
                    .decompress_prefix(used, &packed, need, raw.len())
                    .unwrap();
                assert!(prefix.len() >= need, "{need}: {} bytes", prefix.len());
                if need <= 131_072 {
                    assert!(prefix.len() < raw.len(), "{need}: decoded to the end");
                }
                assert_eq!(prefix[..], raw[..prefix.len()], "{need}");
            }
            // Past the end: the whole frame, and no more.
            let all = decompressors
                .decompress_prefix(used, &packed, raw.len() + 1, raw.len())
                .unwrap();
            assert_eq!(all, raw);
            // A frame left half-read does not disturb the next one.
            decompressors
                .decompress_prefix(used, &packed, 10, raw.len())
                .unwrap();
            let whole = decompressors
                .decompress(compression, used, packed.clone(), raw.len())
                .unwrap();
            assert_eq!(whole, raw);
            assert_eq!(
                decompressors
                    .decompress_prefix(used, &packed, 5000, raw.len())
                    .unwrap()[..5000],
                raw[..5000]
            );
        }
    }

    /// `pages()`, one frame of them at the snapshot level without a
    /// dictionary, and a decompressor for it.
    fn one_plain_frame() -> (Vec<u8>, Vec<u8>, Decompressors) {
        let raw = pages();
        let mut compressor = Compressor::new(SNAPSHOT_LEVEL, None).unwrap();
        let (_, _, packed) = compressor.compress(raw.clone());
        let mut decompressors = Decompressors::default();
        decompressors.add(None).unwrap();
        (raw, packed, decompressors)
    }

    #[test]
    fn a_truncated_frame_gives_a_short_prefix_and_garbage_an_error() {
        let (raw, packed, mut decompressors) = one_plain_frame();
        let short = decompressors
            .decompress_prefix(None, &packed[..packed.len() / 2], raw.len(), raw.len())
            .unwrap();
        assert!(short.len() < raw.len());
        assert_eq!(short[..], raw[..short.len()]);
        assert!(
            decompressors
                .decompress_prefix(None, &[0xde; 64], 100, 100)
                .is_err()
        );
        // A frame longer than its row claims fails once decoding reaches
        // past the claim; it does not write past the buffer.
        let claim = raw.len() / 2 + 1;
        assert!(
            decompressors
                .decompress_prefix(None, &packed, claim, claim)
                .is_err()
        );
    }

    /// Whole data is one frame, or it is refused: frames laid end to end,
    /// or one followed by a skippable frame, would read whole but not in
    /// part.
    #[test]
    fn only_one_frame_decompresses() {
        let (raw, packed, mut decompressors) = one_plain_frame();
        let mut whole = |data: Vec<u8>, raw_len: usize| {
            decompressors.decompress(Compression::Zstd, None, data, raw_len)
        };
        assert_eq!(whole(packed.clone(), raw.len()).unwrap(), raw);
        let twice = [packed.clone(), packed.clone()].concat();
        assert!(whole(twice, 2 * raw.len()).is_err());
        // A skippable frame: magic 0x184D2A50, a length, that many bytes.
        let mut skippable = packed.clone();
        skippable.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        skippable.extend_from_slice(&4u32.to_le_bytes());
        skippable.extend_from_slice(b"junk");
        assert!(whole(skippable, raw.len()).is_err());
        assert!(whole(packed[..packed.len() - 1].to_vec(), raw.len()).is_err());
    }
}
