//! Hashing many objects of one length side by side, in the SIMD lanes.
//!
//! Why: BLAKE3 is fast on long inputs because it compresses up to 16 of
//! their 1 KiB chunks at once, one per vector lane. An encoded 4 KiB page
//! (two header bytes and the page) has only four whole chunks, so hashed on
//! its own it fills a quarter of the lanes at best: 2.5 GB/s here, against
//! 4.7 GB/s for sixteen pages hashed side by side, whose chunks at the same
//! position share a chunk counter and so share one `hash_many` call. Every
//! page a snapshot records, a checkout writes or a fetch imports is hashed,
//! so this is a quarter of a restore's CPU.
//!
//! The tree is built here from BLAKE3's own kernels, and only for the one
//! shape pages have: `k` whole chunks, `k` a power of two up to
//! [`MAX_CHUNKS`], then a last chunk of one block or less. Such an input's
//! root is the parent of the perfect tree over the `k` chunks and of the
//! last chunk (BLAKE3's left subtree is the largest power of two of chunks
//! that leaves at least one byte to the right). Anything else is hashed
//! one by one with [`blake3::hash`], and a test holds both ways to it.
//!
//! The kernels come from `blake3::platform`, which the crate marks
//! undocumented and unstable. The workspace pins BLAKE3 to one exact
//! version for that reason; a newer one is taken only when these tests
//! pass against it.

use blake3::platform::Platform;
use blake3::{BLOCK_LEN, CHUNK_LEN, IncrementCounter, OUT_LEN};

use crate::ObjectId;

/// Inputs hashed side by side: the widest lane count BLAKE3 has (AVX-512).
const GROUP: usize = 16;
/// The most whole chunks an input hashed in lanes has. Longer inputs fill
/// the lanes on their own: 64 KiB pages hash faster one by one.
const MAX_CHUNKS: usize = 8;

/// BLAKE3's initial chaining value, and its domain flags, from the
/// specification (they are constants of the hash function, not of a crate).
const IV: [u32; 8] = [
    0x6A09_E667,
    0xBB67_AE85,
    0x3C6E_F372,
    0xA54F_F53A,
    0x510E_527F,
    0x9B05_688C,
    0x1F83_D9AB,
    0x5BE0_CD19,
];
const CHUNK_START: u8 = 1;
const CHUNK_END: u8 = 1 << 1;
const PARENT: u8 = 1 << 2;
const ROOT: u8 = 1 << 3;

/// Appends the id of each of `objects` (encoded objects), in order, to `out`:
/// [`ObjectId::hash`] of each, with runs of equal length hashed side by side.
pub(crate) fn hash_each(objects: &[&[u8]], out: &mut Vec<ObjectId>) {
    let platform = Platform::detect();
    out.reserve(objects.len());
    let mut rest = objects;
    while let Some(first) = rest.first() {
        let run = rest
            .iter()
            .take(GROUP)
            .take_while(|object| object.len() == first.len())
            .count();
        let (group, after) = rest.split_at(run);
        match shape(first.len()) {
            Some((chunks, tail)) if run > 1 => hash_group(platform, group, chunks, tail, out),
            _ => out.extend(group.iter().map(|object| ObjectId::hash(object))),
        }
        rest = after;
    }
}

/// The whole chunks and the bytes after them of an input `len` bytes long,
/// when it has the shape hashed in lanes.
fn shape(len: usize) -> Option<(usize, usize)> {
    let (chunks, tail) = (len / CHUNK_LEN, len % CHUNK_LEN);
    (chunks.is_power_of_two() && chunks <= MAX_CHUNKS && (1..=BLOCK_LEN).contains(&tail))
        .then_some((chunks, tail))
}

/// Hashes `group` (at most [`GROUP`] inputs, each of `chunks` whole chunks
/// and `tail` more bytes) into `out`.
fn hash_group(
    platform: Platform,
    group: &[&[u8]],
    chunks: usize,
    tail: usize,
    out: &mut Vec<ObjectId>,
) {
    let n = group.len();
    // Chaining values by chunk position, then by input: level by level,
    // the parents of positions 2m and 2m + 1 go to position m.
    let mut cvs = [[[0u8; OUT_LEN]; GROUP]; MAX_CHUNKS];
    let mut inputs = [chunk(group[0], 0); GROUP];
    for (j, level) in cvs.iter_mut().enumerate().take(chunks) {
        for (slot, input) in inputs.iter_mut().zip(group) {
            *slot = chunk(input, j);
        }
        platform.hash_many(
            &inputs[..n],
            &IV,
            j as u64,
            IncrementCounter::No,
            0,
            CHUNK_START,
            CHUNK_END,
            level[..n].as_flattened_mut(),
        );
    }
    let mut pairs = [[0u8; 2 * OUT_LEN]; GROUP];
    let mut width = chunks;
    while width > 1 {
        for m in 0..width / 2 {
            for (i, pair) in pairs.iter_mut().enumerate().take(n) {
                pair[..OUT_LEN].copy_from_slice(&cvs[2 * m][i]);
                pair[OUT_LEN..].copy_from_slice(&cvs[2 * m + 1][i]);
            }
            parents(
                platform,
                &pairs[..n],
                PARENT,
                cvs[m][..n].as_flattened_mut(),
            );
        }
        width /= 2;
    }
    // The root: the parent of the chunks' tree and of the last chunk.
    for (i, (pair, input)) in pairs.iter_mut().zip(group).enumerate() {
        let mut block = [0u8; BLOCK_LEN];
        block[..tail].copy_from_slice(&input[chunks * CHUNK_LEN..]);
        let mut cv = IV;
        platform.compress_in_place(
            &mut cv,
            &block,
            tail as u8,
            chunks as u64,
            CHUNK_START | CHUNK_END,
        );
        pair[..OUT_LEN].copy_from_slice(&cvs[0][i]);
        for (bytes, word) in pair[OUT_LEN..].chunks_exact_mut(4).zip(cv) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
    }
    let mut roots = [[0u8; OUT_LEN]; GROUP];
    parents(
        platform,
        &pairs[..n],
        PARENT | ROOT,
        roots[..n].as_flattened_mut(),
    );
    out.extend(roots[..n].iter().map(|root| ObjectId::from_bytes(*root)));
}

/// Whole chunk `j` of `input`.
fn chunk(input: &[u8], j: usize) -> &[u8; CHUNK_LEN] {
    input[j * CHUNK_LEN..][..CHUNK_LEN]
        .try_into()
        .expect("a whole chunk")
}

/// The chaining value (or, with [`ROOT`] in `flags`, the hash) of each
/// parent node whose children's values are `pairs`, into `out`.
fn parents(platform: Platform, pairs: &[[u8; 2 * OUT_LEN]], flags: u8, out: &mut [u8]) {
    let mut inputs = [&pairs[0]; GROUP];
    for (slot, pair) in inputs.iter_mut().zip(pairs) {
        *slot = pair;
    }
    platform.hash_many(
        &inputs[..pairs.len()],
        &IV,
        0,
        IncrementCounter::No,
        flags,
        0,
        0,
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every position and from input to input.
    fn input(len: usize, seed: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(31) ^ seed.wrapping_mul(97) ^ (i >> 8)) as u8)
            .collect()
    }

    fn one_by_one(objects: &[&[u8]]) -> Vec<ObjectId> {
        objects
            .iter()
            .map(|object| ObjectId::hash(object))
            .collect()
    }

    /// Every shape hashed in lanes, in every group size up to past one
    /// group, gives BLAKE3's own hash of each input.
    #[test]
    fn lanes_hash_as_blake3_does() {
        for chunks in [1, 2, 4, 8] {
            for tail in [1, 2, 33, BLOCK_LEN] {
                let len = chunks * CHUNK_LEN + tail;
                assert_eq!(shape(len), Some((chunks, tail)));
                for count in [1, 2, 7, GROUP, GROUP + 1, 3 * GROUP + 5] {
                    let inputs: Vec<Vec<u8>> = (0..count).map(|seed| input(len, seed)).collect();
                    let objects: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
                    let mut ids = Vec::new();
                    hash_each(&objects, &mut ids);
                    assert_eq!(ids, one_by_one(&objects), "{count} inputs of {len} bytes");
                }
            }
        }
    }

    /// Other lengths, and runs of mixed lengths, are hashed one by one, in
    /// order with the rest.
    #[test]
    fn other_shapes_and_mixed_runs_hash_as_blake3_does() {
        for len in [
            0,
            1,
            514,
            1024,
            2048,
            3 * 1024 + 2,
            1024 + 65,
            16 * 1024 + 2,
        ] {
            assert_eq!(shape(len), None, "{len} bytes");
        }
        let lens = [4098, 4098, 4098, 514, 4098, 4098, 0, 2050, 2050, 8194, 4098];
        let inputs: Vec<Vec<u8>> = lens.iter().enumerate().map(|(s, &l)| input(l, s)).collect();
        let objects: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let mut ids = vec![ObjectId::hash(b"already there")];
        hash_each(&objects, &mut ids);
        assert_eq!(ids[0], ObjectId::hash(b"already there"));
        assert_eq!(ids[1..], one_by_one(&objects));
    }
}
