//! A list of block ids kept in a file rather than in memory.
//!
//! A listing is 32 bytes a block: 32 MiB for a 4 GiB database, 320 MiB
//! for 40 GiB. A workflow that goes through a listing in order (a
//! snapshot's parent, a restore's plan) or builds one out of order (the
//! hashing workers of a first snapshot finish batches in any order) keeps
//! it here instead, in an unnamed temporary file in the store's directory,
//! so its memory does not grow with the database. The file never has a
//! name, so it is gone when the handle is dropped, and after a crash too.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::id::ObjectId;
use crate::odb::{Error, Result};

/// Bytes of one id in the file: the id itself, nothing else.
const ID_BYTES: usize = 32;

/// Block ids by index, in an unnamed file in a directory that its errors
/// name.
pub struct BlockFile {
    file: File,
    dir: PathBuf,
    count: usize,
}

impl BlockFile {
    /// An empty list in a new unnamed file in `dir`.
    pub fn create(dir: &Path) -> Result<BlockFile> {
        let file = tempfile::tempfile_in(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(BlockFile::written(file, dir, 0))
    }

    /// A list of `count` ids already written to `file` in order.
    pub(crate) fn written(file: File, dir: &Path, count: usize) -> BlockFile {
        BlockFile {
            file,
            dir: dir.to_path_buf(),
            count,
        }
    }

    /// How many blocks it lists.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it lists no block.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Drops the blocks from `count` on, or lists zero ids up to it, which
    /// the caller must then overwrite.
    pub fn set_len(&mut self, count: usize) -> Result<()> {
        self.file
            .set_len((count * ID_BYTES) as u64)
            .map_err(|e| self.io(e))?;
        self.count = count;
        Ok(())
    }

    /// Writes `blocks`, given by index and in any order, with one write for
    /// each run of consecutive indexes; the list grows to hold the last.
    pub fn write(&mut self, blocks: impl IntoIterator<Item = (usize, ObjectId)>) -> Result<()> {
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0;
        for (index, id) in blocks {
            if run.is_empty() || index != run_start + run.len() / ID_BYTES {
                self.write_run(run_start, &run)?;
                run.clear();
                run_start = index;
            }
            run.extend_from_slice(id.as_bytes());
        }
        self.write_run(run_start, &run)
    }

    fn write_run(&mut self, first: usize, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(bytes, (first * ID_BYTES) as u64)
            .map_err(|e| self.io(e))?;
        self.count = self.count.max(first + bytes.len() / ID_BYTES);
        Ok(())
    }

    /// The ids of the blocks in `range`, as far as the list goes.
    pub fn read(&self, range: Range<usize>) -> Result<Vec<ObjectId>> {
        let (start, end) = (range.start.min(self.count), range.end.min(self.count));
        let mut bytes = vec![0u8; (end.max(start) - start) * ID_BYTES];
        self.file
            .read_exact_at(&mut bytes, (start * ID_BYTES) as u64)
            .map_err(|e| self.io(e))?;
        Ok(bytes
            .chunks_exact(ID_BYTES)
            .map(|id| ObjectId::from_bytes(id.try_into().expect("chunks of 32")))
            .collect())
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.dir.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> ObjectId {
        ObjectId::hash(&n.to_le_bytes())
    }

    #[test]
    fn blocks_written_in_any_order_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = BlockFile::create(dir.path()).unwrap();
        assert!(file.is_empty());
        // Batches as workers finish them: out of order, each a run.
        file.write((8..12).map(|i| (i, id(i)))).unwrap();
        file.write((0..4).map(|i| (i, id(i)))).unwrap();
        // Not one run: two writes, the gap filled later.
        file.write([(4, id(4)), (6, id(6))]).unwrap();
        file.write([(5, id(5)), (7, id(7))]).unwrap();
        assert_eq!(file.len(), 12);
        assert_eq!(
            file.read(0..usize::MAX).unwrap(),
            (0..12).map(id).collect::<Vec<_>>()
        );
        assert_eq!(file.read(10..20).unwrap(), vec![id(10), id(11)]);
        assert!(file.read(20..30).unwrap().is_empty());
    }

    #[test]
    fn set_len_shrinks_and_grows_with_zero_ids() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = BlockFile::create(dir.path()).unwrap();
        file.write((0..6).map(|i| (i, id(i)))).unwrap();
        file.set_len(3).unwrap();
        assert_eq!(
            file.read(0..10).unwrap(),
            (0..3).map(id).collect::<Vec<_>>()
        );
        file.set_len(5).unwrap();
        let zero = ObjectId::from_bytes([0; 32]);
        assert_eq!(
            file.read(0..10).unwrap(),
            vec![id(0), id(1), id(2), zero, zero]
        );
    }
}
