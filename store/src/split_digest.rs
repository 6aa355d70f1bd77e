//! The BLAKE3 digest of a long input hashed in pieces, on many threads.
//!
//! Why: an image's digest is the BLAKE3 hash of the whole database file,
//! and hashed in order on the thread that reads the file, it was a third
//! of that thread's work, which kept a snapshot's other threads waiting. BLAKE3
//! is a tree, so equal aligned pieces of the input are subtrees whose
//! chaining values can be computed anywhere ([`Piece::of`], on the threads
//! that hash the pages anyway) and merged in order afterwards
//! ([`SplitDigest`], 32 bytes a piece, merged as they arrive).
//!
//! The tree is BLAKE3's own, through its public `hazmat` interface: every
//! piece but the last is the same power of two of 1 KiB chunks long, and
//! starts where the one before it ends, so each is a whole subtree of the
//! input's tree, and so is the last, shorter one. The pieces' values merge
//! as the chunks' values do inside [`blake3::Hasher`]: lazily, so that the
//! root is merged only once the last piece is known.

use std::collections::BTreeMap;

use blake3::CHUNK_LEN;
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

/// The BLAKE3 value of one piece of the input.
#[derive(Clone, Copy, Debug)]
pub struct Piece {
    /// The piece's chaining value as a subtree of the whole.
    value: ChainingValue,
    /// The first piece's hash as if it were the whole input: the digest
    /// when no second piece follows.
    alone: Option<[u8; 32]>,
}

impl Piece {
    /// Hashes `bytes`, piece `index` of an input cut into pieces of
    /// `piece_len` bytes, a power of two of chunks. Only the last piece may
    /// be shorter, and none is empty.
    pub fn of(index: u64, piece_len: usize, bytes: &[u8]) -> Piece {
        assert!(
            piece_len >= CHUNK_LEN && piece_len.is_power_of_two(),
            "BUG: a piece of {piece_len} bytes is not a power of two of chunks"
        );
        assert!(
            !bytes.is_empty() && bytes.len() <= piece_len,
            "BUG: a piece of {} bytes, not 1..={piece_len}",
            bytes.len()
        );
        let value = blake3::Hasher::new()
            .set_input_offset(index * piece_len as u64)
            .update(bytes)
            .finalize_non_root();
        // Hashing the first piece twice costs one piece per image; knowing
        // whether it is the only one would cost the reader a look ahead.
        let alone = (index == 0).then(|| *blake3::hash(bytes).as_bytes());
        Piece { value, alone }
    }
}

/// Pieces' values merged, in order, into the digest of the whole input.
#[derive(Debug, Default)]
pub struct SplitDigest {
    /// Pieces come from several threads; these arrived before their turn.
    early: BTreeMap<u64, Piece>,
    /// Pieces merged so far.
    merged: u64,
    /// Subtrees not yet merged, largest first, as in `blake3::Hasher`.
    stack: Vec<ChainingValue>,
    /// The first piece's hash as a whole input.
    alone: Option<[u8; 32]>,
}

impl SplitDigest {
    /// A digest with no piece yet: of the empty input.
    pub fn new() -> SplitDigest {
        SplitDigest::default()
    }

    /// Adds piece `index`, in any order; each index once.
    pub fn add(&mut self, index: u64, piece: Piece) {
        self.early.insert(index, piece);
        while let Some(piece) = self.early.remove(&self.merged) {
            // A full subtree of 2^k pieces is merged when the next piece
            // comes: only then is it known not to be the root.
            while self.stack.len() > self.merged.count_ones() as usize {
                self.merge_top(false);
            }
            if self.merged == 0 {
                self.alone = piece.alone;
            }
            self.stack.push(piece.value);
            self.merged += 1;
        }
    }

    /// The digest of the whole input, once every piece up to the last was
    /// added. Fails with the first missing piece's index when one never
    /// came while a later one did.
    pub fn finish(mut self) -> Result<[u8; 32], u64> {
        if !self.early.is_empty() {
            return Err(self.merged);
        }
        if self.merged <= 1 {
            return Ok(self.alone.unwrap_or_else(|| *blake3::hash(&[]).as_bytes()));
        }
        while self.stack.len() > 2 {
            self.merge_top(false);
        }
        Ok(self.merge_top(true).expect("two subtrees"))
    }

    /// Merges the two subtrees on top of the stack: into the root when
    /// `root`, which is then returned, else back onto the stack.
    fn merge_top(&mut self, root: bool) -> Option<[u8; 32]> {
        let right = self.stack.pop().expect("BUG: a right subtree");
        let left = self.stack.pop().expect("BUG: a left subtree");
        if root {
            return Some(*merge_subtrees_root(&left, &right, Mode::Hash).as_bytes());
        }
        self.stack
            .push(merge_subtrees_non_root(&left, &right, Mode::Hash));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest of `input` cut into `piece_len` pieces added in `order`.
    fn split(input: &[u8], piece_len: usize, order: &[usize]) -> [u8; 32] {
        let pieces: Vec<&[u8]> = input.chunks(piece_len).collect();
        let mut digest = SplitDigest::new();
        for &index in order {
            digest.add(
                index as u64,
                Piece::of(index as u64, piece_len, pieces[index]),
            );
        }
        digest.finish().unwrap()
    }

    /// Every length around the piece boundaries, every piece size, in
    /// order and reversed, gives the hash of the whole input.
    #[test]
    fn pieces_merge_into_the_hash_of_the_whole() {
        let input: Vec<u8> = (0..40 * CHUNK_LEN).map(|i| (i * 13 % 251) as u8).collect();
        for piece_len in [CHUNK_LEN, 2 * CHUNK_LEN, 4 * CHUNK_LEN, 8 * CHUNK_LEN] {
            for len in (0..=40 * CHUNK_LEN).step_by(CHUNK_LEN / 2).chain([
                1,
                1023,
                1025,
                9 * CHUNK_LEN - 1,
            ]) {
                let input = &input[..len];
                let count = len.div_ceil(piece_len);
                let forward: Vec<usize> = (0..count).collect();
                let backward: Vec<usize> = (0..count).rev().collect();
                let expected = *blake3::hash(input).as_bytes();
                assert_eq!(
                    split(input, piece_len, &forward),
                    expected,
                    "{len} in {piece_len}"
                );
                assert_eq!(
                    split(input, piece_len, &backward),
                    expected,
                    "{len} in {piece_len}, backward"
                );
            }
        }
    }

    /// A piece that never came is named, not merged past.
    #[test]
    fn a_missing_piece_is_named() {
        let input = vec![7u8; 5 * CHUNK_LEN];
        let mut digest = SplitDigest::new();
        for index in [0u64, 1, 3, 4] {
            let bytes = &input[index as usize * CHUNK_LEN..][..CHUNK_LEN];
            digest.add(index, Piece::of(index, CHUNK_LEN, bytes));
        }
        assert_eq!(digest.finish(), Err(2));
    }
}
