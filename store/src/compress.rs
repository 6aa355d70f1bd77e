//! zstd compression of stored objects.
//!
//! Objects are hashed *before* compression, so the compression level can change
//! without changing any id. An object that zstd cannot shrink is stored as is.

use std::io;

/// How the `data` column of an object row is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Compression {
    /// The encoded object bytes as they are.
    None = 0,
    /// A zstd frame holding the encoded object bytes.
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

/// The zstd level used unless a store is opened with another one.
pub const DEFAULT_LEVEL: i32 = 3;

/// A reusable zstd context: creating one per object would cost more than
/// compressing a 4 KiB page.
pub struct Compressor {
    inner: zstd::bulk::Compressor<'static>,
}

impl Compressor {
    /// A compressor at `level` (zstd's scale, 1 to 22).
    pub fn new(level: i32) -> io::Result<Compressor> {
        Ok(Compressor {
            inner: zstd::bulk::Compressor::new(level)?,
        })
    }

    /// Compresses `raw`, or returns it unchanged when that is smaller.
    pub fn compress(&mut self, raw: Vec<u8>) -> (Compression, Vec<u8>) {
        match self.inner.compress(&raw) {
            Ok(packed) if packed.len() < raw.len() => (Compression::Zstd, packed),
            _ => (Compression::None, raw),
        }
    }
}

/// Undoes [`Compressor::compress`]; `raw_len` bounds the output so a hostile
/// frame cannot allocate more than the row claims.
pub fn decompress(compression: Compression, data: Vec<u8>, raw_len: usize) -> io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(data),
        Compression::Zstd => zstd::bulk::decompress(&data, raw_len),
    }
}
