//! The packs a fetch wants, with their indexes kept in a file rather than
//! in memory: an index entry costs 48 bytes an object in memory (50 MiB
//! for a 4 GiB database), and a fetch needs each index only twice, to
//! decide that it wants the pack and to verify the pack when it arrives.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use migsnap_store::{Kind, ObjectId};

use crate::fetch::FetchError;
use crate::layout::Index;

/// One wanted pack: its name, where its index is in the file, and whether
/// it holds any blob (page or schema).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WantedPack {
    /// The pack's name.
    pub(crate) name: ObjectId,
    at: u64,
    len: usize,
    /// Whether the pack holds a blob; one that holds none has only
    /// histories (snapshots and listings).
    pub(crate) blobs: bool,
}

/// The indexes of wanted packs, appended to an unnamed temporary file in
/// the store directory (removed by the OS when it is closed, also after a
/// crash), each read back and checked again when its pack is verified.
pub(crate) struct IndexFile {
    file: File,
    /// The directory it is in, for errors.
    dir: PathBuf,
    end: u64,
}

impl IndexFile {
    /// A new, empty file in `dir`.
    pub(crate) fn create(dir: &Path) -> Result<IndexFile, FetchError> {
        let file = tempfile::tempfile_in(dir).map_err(|source| FetchError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(IndexFile {
            file,
            dir: dir.to_path_buf(),
            end: 0,
        })
    }

    /// Keeps `index`, the index of pack `name`, and returns where it is.
    pub(crate) fn add(&mut self, name: ObjectId, index: &Index) -> Result<WantedPack, FetchError> {
        let bytes = index.encode();
        self.file
            .write_all(&bytes)
            .map_err(|source| self.failed(source))?;
        let wanted = WantedPack {
            name,
            at: self.end,
            len: bytes.len(),
            blobs: index.entries.iter().any(|e| e.kind == Kind::Blob),
        };
        self.end += bytes.len() as u64;
        Ok(wanted)
    }

    /// The index of `pack`, read back and decoded (its checksum checked
    /// again: bytes that do not read back as written are an I/O error).
    pub(crate) fn index(&self, pack: &WantedPack) -> Result<Index, FetchError> {
        let mut bytes = vec![0; pack.len];
        self.file
            .read_exact_at(&mut bytes, pack.at)
            .map_err(|source| self.failed(source))?;
        Index::decode(&pack.name, &bytes).map_err(|e| self.failed(std::io::Error::other(e)))
    }

    fn failed(&self, source: std::io::Error) -> FetchError {
        FetchError::Io {
            path: self.dir.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::IndexEntry;

    fn index(kinds: &[Kind]) -> Index {
        let entries: Vec<IndexEntry> = kinds
            .iter()
            .enumerate()
            .map(|(i, &kind)| IndexEntry {
                id: ObjectId::hash(&[i as u8]),
                kind,
                offset: i as u64 * 10,
                len: 10,
            })
            .collect();
        Index {
            pack_len: 100,
            raw_len: entries.len() as u64 * 10,
            entries,
        }
    }

    #[test]
    fn indexes_read_back_as_they_were_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = IndexFile::create(dir.path()).unwrap();
        let kept = [
            (ObjectId::hash(b"a"), index(&[Kind::Snapshot, Kind::Image])),
            (
                ObjectId::hash(b"b"),
                index(&[Kind::Blob, Kind::Blob, Kind::Blob]),
            ),
        ];
        let wanted: Vec<WantedPack> = kept
            .iter()
            .map(|(name, index)| file.add(*name, index).unwrap())
            .collect();
        assert_eq!(
            wanted.iter().map(|w| w.blobs).collect::<Vec<_>>(),
            [false, true]
        );
        for ((name, index), wanted) in kept.iter().zip(&wanted).rev() {
            assert_eq!(wanted.name, *name);
            assert_eq!(file.index(wanted).unwrap().encode(), index.encode());
        }

        // Bytes that changed on disk, or a file cut short, are an error
        // naming the directory, never another index.
        let second = wanted[1];
        let mut byte = [0u8];
        file.file.read_exact_at(&mut byte, second.at + 40).unwrap();
        file.file
            .write_all_at(&[byte[0] ^ 1], second.at + 40)
            .unwrap();
        let err = file.index(&second).unwrap_err();
        assert!(
            matches!(&err, FetchError::Io { path, .. } if path == dir.path()),
            "{err}"
        );
        assert_eq!(file.index(&wanted[0]).unwrap().encode(), kept[0].1.encode());
        file.file.set_len(second.at + 10).unwrap();
        assert!(file.index(&second).is_err());
    }
}
