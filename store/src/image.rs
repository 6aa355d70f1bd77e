//! Reading and planning block listings of [`Image`]s.
//!
//! A writer lists a new image as a delta against its parent image when that is
//! cheaper, and rebases to a full listing when the chain would be too deep or
//! would, added up, cost more than a full listing. So a reader walks at most
//! [`MAX_DELTA_DEPTH`] deltas, and the listing bytes of a chain stay below
//! twice those of one full listing.

use std::io::Write;
use std::ops::Range;
use std::path::Path;

use crate::block_file::BlockFile;
use crate::id::ObjectId;
use crate::object::{BlockChange, Image, Listing, Object};
use crate::odb::{Error, Result, View};

/// The longest chain of deltas a writer builds.
pub const MAX_DELTA_DEPTH: u32 = 64;

/// Reads an image object (not its blocks).
pub fn read_image(view: View<'_>, id: &ObjectId) -> Result<Image> {
    match view.try_read(id)?.ok_or(Error::NotFound { id: *id })? {
        Object::Image(image) => Ok(image),
        other => Err(Error::WrongKind {
            id: *id,
            expected: "image",
            actual: other.kind().name(),
        }),
    }
}

/// An image with its listing resolved to one blob id per block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The image's id.
    pub id: ObjectId,
    /// The image object itself.
    pub image: Image,
    /// One blob id per block, in order.
    pub blocks: Vec<ObjectId>,
    /// The image objects read to resolve it, newest first (itself first).
    pub chain: Vec<ObjectId>,
}

/// Resolves the listing of image `id`, following its delta chain.
pub fn resolve(view: View<'_>, id: &ObjectId) -> Result<ResolvedImage> {
    let mut chain = vec![*id];
    let mut deltas: Vec<Image> = Vec::new();
    let mut current = read_image(view, id)?;
    // The full listing is moved out, never copied: it is 32 bytes a page
    // (32 MiB at 4 GiB), and restore and snapshot hold it for their whole
    // run. The image keeps an empty full listing, which still says what
    // kind it was.
    let mut blocks = loop {
        match current.listing {
            Listing::Full(ref mut blocks) => break std::mem::take(blocks),
            Listing::Delta { base, .. } => {
                if chain.len() as u32 > MAX_DELTA_DEPTH + 1 {
                    return Err(Error::Unreadable {
                        id: *id,
                        reason: format!("delta chain longer than {MAX_DELTA_DEPTH}"),
                    });
                }
                chain.push(base);
                // A large full listing is read into room for the largest
                // image of the chain: growing it later, for a delta that
                // adds blocks, would copy it and hold it twice.
                let room = deltas
                    .iter()
                    .chain([&current])
                    .map(|image| image.block_count as usize)
                    .max()
                    .unwrap_or(0);
                let base_image = match read_large_full_listing(view, &base, room)? {
                    Some(image) => image,
                    None => read_image(view, &base)?,
                };
                deltas.push(std::mem::replace(&mut current, base_image));
            }
        }
    };
    let full_len = current.block_count as usize;
    if blocks.len() != full_len {
        return Err(Error::Unreadable {
            id: *chain.last().expect("holds because chain starts with id"),
            reason: format!("lists {} blocks but claims {full_len}", blocks.len()),
        });
    }
    // The top is the last full image read, or the first delta.
    let top = match deltas.first() {
        Some(delta) => delta.clone(),
        None => current,
    };
    for delta in deltas.iter().rev() {
        let Listing::Delta { ref changes, .. } = delta.listing else {
            unreachable!("BUG: only deltas are pushed");
        };
        apply_changes(&mut blocks, delta.block_count, changes)
            .map_err(|reason| Error::Unreadable { id: *id, reason })?;
    }
    Ok(ResolvedImage {
        id: *id,
        image: top,
        blocks,
        chain,
    })
}

/// Image `id`, when its full listing is stored large
/// ([`View::large_full_listing`]), read into a list with room for `room`
/// blocks; `None` for any other object.
fn read_large_full_listing(view: View<'_>, id: &ObjectId, room: usize) -> Result<Option<Image>> {
    if view.large_full_listing(id)?.is_none() {
        return Ok(None);
    }
    // Room for what the checked images above it claim; the count in its
    // own header is not checked yet.
    let mut blocks = Vec::with_capacity(room);
    let image = view.stream_full_listing(id, &mut |ids| {
        blocks.extend_from_slice(ids);
        Ok(())
    })?;
    Ok(image.map(|image| Image {
        listing: Listing::Full(blocks),
        ..image
    }))
}

/// Brings `blocks` to `block_count` blocks: truncates, then replaces the
/// block at each change's index, where an index equal to the current length
/// appends. The changes must be in strictly increasing order and leave no
/// block unlisted; the error says which rule they broke.
fn apply_changes(
    blocks: &mut Vec<ObjectId>,
    block_count: u32,
    changes: &[BlockChange],
) -> std::result::Result<(), String> {
    let count = block_count as usize;
    blocks.truncate(count);
    // Exactly: pushing past the capacity would double it, and a full
    // list is 32 MiB at 4 GiB.
    blocks.reserve_exact(count - blocks.len());
    for change in changes {
        let index = change.index as usize;
        if index < blocks.len() {
            blocks[index] = change.block;
        } else if index == blocks.len() && index < count {
            blocks.push(change.block);
        } else {
            return Err(format!("delta changes block {index} out of order"));
        }
    }
    if blocks.len() != count {
        return Err(format!(
            "delta leaves {} blocks but claims {count}",
            blocks.len()
        ));
    }
    Ok(())
}

/// An image a new listing may be planned against ([`plan_listing`]): in
/// memory ([`ResolvedImage`]) or in a file ([`SpilledImage`]).
pub trait Parent {
    /// Its id.
    fn id(&self) -> ObjectId;
    /// The image object (its listing's kind is what matters).
    fn image(&self) -> &Image;
    /// Its blocks in a file in `dir`, for a new listing made in full from
    /// them.
    fn into_block_file(self, dir: &Path) -> Result<BlockFile>;
}

impl Parent for ResolvedImage {
    fn id(&self) -> ObjectId {
        self.id
    }

    fn image(&self) -> &Image {
        &self.image
    }

    fn into_block_file(self, dir: &Path) -> Result<BlockFile> {
        let mut file = BlockFile::create(dir)?;
        file.write(self.blocks.into_iter().enumerate())?;
        Ok(file)
    }
}

/// A new image's listing, as [`plan_listing`] chose it.
pub enum NewListing {
    /// A delta against the parent, which is small.
    Delta(Listing),
    /// Every block, in a file: written with
    /// [`Transaction::write_full_image`](crate::Transaction::write_full_image).
    Full(BlockFile),
}

/// Chooses how to list a new image of `block_count` blocks of `block_size`
/// bytes that holds `parent`'s blocks except at `changes` (strictly
/// increasing indexes, every index past the parent's end among them): a
/// delta against `parent` when that is cheaper and the chain stays within
/// bounds, otherwise in full, in a file in `dir`.
///
/// Takes the parent by value because a full listing is the parent's own
/// list, patched in place: a writer never holds a full list (32 bytes per
/// block, 32 MiB at 4 GiB), only the changes, whichever way the listing
/// goes. A parent spilled to a file is patched in that file.
pub fn plan_listing(
    parent: impl Parent,
    block_size: u32,
    block_count: u32,
    changes: Vec<BlockChange>,
    dir: &Path,
) -> Result<NewListing> {
    let (depth, chain_changes) = match parent.image().listing {
        Listing::Full(_) => (1, changes.len() as u64),
        Listing::Delta {
            depth,
            chain_changes,
            ..
        } => (depth + 1, chain_changes + changes.len() as u64),
    };
    if parent.image().block_size == block_size
        && depth <= MAX_DELTA_DEPTH
        && chain_changes < u64::from(block_count)
    {
        return Ok(NewListing::Delta(Listing::Delta {
            base: parent.id(),
            depth,
            chain_changes,
            changes,
        }));
    }
    let mut blocks = parent.into_block_file(dir)?;
    let kept = blocks.len().min(block_count as usize);
    let appended = changes
        .iter()
        .map(|c| c.index as usize)
        .filter(|&i| i >= kept);
    if !appended.eq(kept..block_count as usize) {
        panic!("BUG: the changes of a new listing do not list blocks {kept}.. in order");
    }
    blocks.set_len(block_count as usize)?;
    blocks.write(changes.iter().map(|c| (c.index as usize, c.block)))?;
    Ok(NewListing::Full(blocks))
}

/// An image with its listing resolved into a file beside the store, one
/// 32-byte id per block: for a reader that goes through the blocks in
/// order and must not hold them all (a snapshot's parent, 32 MiB at
/// 4 GiB). The file is removed when this is dropped. One made
/// [`From`] a [`ResolvedImage`] holds its blocks in memory instead: what a
/// writer falls back on when no file can be made (a full disk).
pub struct SpilledImage {
    /// The image's id.
    pub id: ObjectId,
    /// The image object, its listing's blocks or changes left out.
    pub image: Image,
    /// The image objects read to resolve it, newest first (itself first).
    pub chain: Vec<ObjectId>,
    blocks: Held,
}

/// Where a [`SpilledImage`]'s block ids are.
enum Held {
    File(BlockFile),
    Memory(Vec<ObjectId>),
}

/// Ids a [`SpilledImage`] hands out at a time to a reader that goes
/// through it in order (2 MiB of ids).
pub const WINDOW: usize = 1 << 16;

/// Image `id` spilled to a file in `dir` ([`spill`]), or held in memory
/// when no file can be made there (a full disk): what a reader that goes
/// through the blocks in order takes.
pub fn spill_or_hold(view: View<'_>, id: &ObjectId, dir: &Path) -> Result<SpilledImage> {
    spill(view, id, dir).or_else(|_| resolve(view, id).map(SpilledImage::from))
}

impl SpilledImage {
    /// The ids of the blocks from `first`, [`WINDOW`] of them, as far as
    /// the image has blocks; for each window in turn.
    pub fn windows(&self) -> impl Iterator<Item = (usize, Result<Vec<ObjectId>>)> + '_ {
        (0..self.image.block_count as usize)
            .step_by(WINDOW)
            .map(|first| (first, self.blocks(first..first + WINDOW)))
    }

    /// The ids of the blocks in `range`, as far as the image has blocks.
    pub fn blocks(&self, range: Range<usize>) -> Result<Vec<ObjectId>> {
        match &self.blocks {
            Held::File(file) => file.read(range),
            Held::Memory(blocks) => {
                let (start, end) = (range.start.min(blocks.len()), range.end.min(blocks.len()));
                Ok(blocks[start..end].to_vec())
            }
        }
    }
}

impl From<ResolvedImage> for SpilledImage {
    fn from(resolved: ResolvedImage) -> SpilledImage {
        SpilledImage {
            id: resolved.id,
            image: resolved.image,
            chain: resolved.chain,
            blocks: Held::Memory(resolved.blocks),
        }
    }
}

impl Parent for SpilledImage {
    fn id(&self) -> ObjectId {
        self.id
    }

    fn image(&self) -> &Image {
        &self.image
    }

    fn into_block_file(self, dir: &Path) -> Result<BlockFile> {
        match self.blocks {
            Held::File(file) => Ok(file),
            Held::Memory(blocks) => {
                let mut file = BlockFile::create(dir)?;
                file.write(blocks.into_iter().enumerate())?;
                Ok(file)
            }
        }
    }
}

/// Resolves the listing of image `id` into a file in `dir`, as [`resolve`]
/// would into memory, holding only its delta chain's changes
/// ([`Blocks`]).
pub fn spill(view: View<'_>, id: &ObjectId, dir: &Path) -> Result<SpilledImage> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut writer =
        std::io::BufWriter::with_capacity(1 << 16, tempfile::tempfile_in(dir).map_err(io)?);
    let (image, chain) = Blocks::open(view, id)?.stream(view, &mut |ids| {
        ids.iter()
            .try_for_each(|block| writer.write_all(block.as_bytes()))
            .map_err(io)
    })?;
    let file = writer.into_inner().map_err(|e| io(e.into_error()))?;
    Ok(SpilledImage {
        id: *id,
        blocks: Held::File(BlockFile::written(file, dir, image.block_count as usize)),
        image,
        chain,
    })
}

/// The listing of an image, its delta chain read and its blocks not yet:
/// [`Blocks::stream`] hands them out a chunk at a time, so a reader that
/// goes through them once never holds them all (32 MiB at 4 GiB). A full
/// listing stored large ([`View::large_full_listing`]) is read a chunk at
/// a time, and its hash checked at the end; anything else (a listing of
/// a database under 128 MiB) is read whole first.
pub struct Blocks {
    id: ObjectId,
    /// The top of the chain, without its blocks or changes.
    image: Image,
    /// The image objects of the chain, newest first (itself first).
    chain: Vec<ObjectId>,
    /// The deltas above the full listing, newest first.
    deltas: Vec<Image>,
    /// The full listing, and the image it is.
    base: Base,
    base_id: ObjectId,
}

impl Blocks {
    /// Reads image `id` and its delta chain down to its full listing
    /// (only that listing's header, when it is stored large).
    pub fn open(view: View<'_>, id: &ObjectId) -> Result<Blocks> {
        let mut chain = vec![*id];
        let mut deltas: Vec<Image> = Vec::new();
        let mut member = *id;
        let base = loop {
            if let Some((header, _)) = view.large_full_listing(&member)? {
                break Base::Large(header);
            }
            let image = read_image(view, &member)?;
            if let Listing::Delta { base, .. } = image.listing {
                if chain.len() as u32 > MAX_DELTA_DEPTH + 1 {
                    return Err(Error::Unreadable {
                        id: *id,
                        reason: format!("delta chain longer than {MAX_DELTA_DEPTH}"),
                    });
                }
                chain.push(base);
                deltas.push(image);
                member = base;
            } else {
                break Base::Small(image);
            }
        };
        let image = match deltas.first() {
            Some(delta) => Image {
                listing: match &delta.listing {
                    Listing::Delta {
                        base,
                        depth,
                        chain_changes,
                        ..
                    } => Listing::Delta {
                        base: *base,
                        depth: *depth,
                        chain_changes: *chain_changes,
                        changes: Vec::new(),
                    },
                    Listing::Full(_) => unreachable!("BUG: only deltas are above the base"),
                },
                ..delta.clone_header()
            },
            None => match &base {
                Base::Small(image) | Base::Large(image) => image.clone_header(),
            },
        };
        Ok(Blocks {
            id: *id,
            image,
            chain,
            deltas,
            base,
            base_id: member,
        })
    }

    /// The image, its listing's blocks or changes left out: what it says
    /// of itself (its block count, size and digest).
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// Hands the id of every block to `each`, in order, a chunk at a time.
    /// A listing whose bytes do not hash to its id fails at the end, after
    /// `each` has seen its ids. Returns the image (as [`Blocks::image`])
    /// and the image objects of its chain, newest first.
    pub fn stream(
        self,
        view: View<'_>,
        each: &mut dyn FnMut(&[ObjectId]) -> Result<()>,
    ) -> Result<(Image, Vec<ObjectId>)> {
        match self.base {
            Base::Small(mut image) => {
                let Listing::Full(blocks) =
                    std::mem::replace(&mut image.listing, Listing::Full(Vec::new()))
                else {
                    unreachable!("BUG: the walk stops at a full listing");
                };
                let mut merged = Merged::new(self.id, &image, self.deltas)?;
                merged.take(&blocks, each)?;
                merged.finish(each)?;
            }
            Base::Large(header) => {
                let mut merged = Merged::new(self.id, &header, self.deltas)?;
                view.stream_full_listing(&self.base_id, &mut |ids| merged.take(ids, each))?
                    .ok_or_else(|| Error::Unreadable {
                        id: self.id,
                        reason: "its full listing changed while it was read".to_owned(),
                    })?;
                merged.finish(each)?;
            }
        }
        Ok((self.image, self.chain))
    }
}

/// The full listing at the bottom of a delta chain: read whole, or (stored
/// large) only its header so far.
enum Base {
    Small(Image),
    Large(Image),
}

impl Image {
    /// The image without its listing's contents (an empty full listing).
    fn clone_header(&self) -> Image {
        Image {
            block_size: self.block_size,
            block_count: self.block_count,
            digest: self.digest,
            listing: Listing::Full(Vec::new()),
        }
    }
}

/// A full listing and the delta chain above it, merged block by block as
/// the full listing's ids come in: the result of [`apply_changes`] delta
/// by delta, without a list in memory. Level 0 is the full listing, level
/// `j` the `j`-th delta above it.
struct Merged {
    /// The image being resolved, which errors name.
    id: ObjectId,
    /// Each delta's changes, oldest first, and how far each was read.
    changes: Vec<Vec<BlockChange>>,
    cursors: Vec<usize>,
    /// The smallest index any cursor is at: below it, no block changed.
    next_change: u32,
    /// For a block last set at level `j`, the levels from `j` up to the
    /// one below the top kept it only below their block counts.
    survives_below: Vec<u32>,
    /// Blocks of the result, the next one to write, and the full
    /// listing's blocks seen and claimed.
    count: u32,
    next: u32,
    base_seen: u32,
    base_count: u32,
}

impl Merged {
    /// Image `id`: `deltas` newest first, above the full image `base`.
    fn new(id: ObjectId, base: &Image, deltas: Vec<Image>) -> Result<Merged> {
        let mut counts = vec![base.block_count];
        let mut changes = Vec::new();
        for delta in deltas.into_iter().rev() {
            let Listing::Delta {
                changes: listed, ..
            } = delta.listing
            else {
                unreachable!("BUG: only deltas are above the base");
            };
            if listed.windows(2).any(|pair| pair[1].index <= pair[0].index)
                || listed
                    .last()
                    .is_some_and(|last| last.index >= delta.block_count)
            {
                return Err(Error::Unreadable {
                    id,
                    reason: "delta changes blocks out of order".to_owned(),
                });
            }
            counts.push(delta.block_count);
            changes.push(listed);
        }
        let top = counts.len() - 1;
        let mut survives_below = vec![u32::MAX; counts.len()];
        for level in (0..top).rev() {
            survives_below[level] = counts[level].min(survives_below[level + 1]);
        }
        let mut merged = Merged {
            id,
            cursors: vec![0; changes.len()],
            changes,
            next_change: 0,
            survives_below,
            count: counts[top],
            next: 0,
            base_seen: 0,
            base_count: base.block_count,
        };
        merged.next_change = merged.smallest_change();
        Ok(merged)
    }

    fn smallest_change(&self) -> u32 {
        self.changes
            .iter()
            .zip(&self.cursors)
            .filter_map(|(changes, &at)| changes.get(at).map(|change| change.index))
            .min()
            .unwrap_or(u32::MAX)
    }

    /// Takes the next ids of the full listing, and writes every block of
    /// the result they settle.
    fn take(
        &mut self,
        base: &[ObjectId],
        write: &mut dyn FnMut(&[ObjectId]) -> Result<()>,
    ) -> Result<()> {
        let first = self.base_seen;
        self.base_seen += u32::try_from(base.len()).expect("BUG: a listing over u32 blocks");
        let mut out = Vec::with_capacity(base.len());
        while self.next < self.count.min(self.base_seen) {
            let block = self.block(Some(base[(self.next - first) as usize]))?;
            out.push(block);
        }
        write(&out)
    }

    /// Writes the blocks past the end of the full listing, once all of it
    /// was taken.
    fn finish(&mut self, write: &mut dyn FnMut(&[ObjectId]) -> Result<()>) -> Result<()> {
        if self.base_seen != self.base_count {
            return Err(self.unlisted(format!(
                "lists {} blocks but claims {}",
                self.base_seen, self.base_count
            )));
        }
        let mut out = Vec::new();
        while self.next < self.count {
            out.push(self.block(None)?);
        }
        write(&out)
    }

    /// The next block of the result: its newest change, or the full
    /// listing's `base`, if every level since kept it.
    fn block(&mut self, base: Option<ObjectId>) -> Result<ObjectId> {
        let index = self.next;
        self.next += 1;
        let mut newest = base.map(|block| (block, 0));
        if index == self.next_change {
            for (level, (changes, at)) in self.changes.iter().zip(&mut self.cursors).enumerate() {
                if changes.get(*at).is_some_and(|change| change.index == index) {
                    newest = Some((changes[*at].block, level + 1));
                    *at += 1;
                }
            }
            self.next_change = self.smallest_change();
        }
        match newest {
            Some((block, level)) if index < self.survives_below[level] => Ok(block),
            _ => Err(self.unlisted(format!("delta leaves block {index} unlisted"))),
        }
    }

    fn unlisted(&self, reason: String) -> Error {
        Error::Unreadable {
            id: self.id,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idset::IdSet;
    use crate::odb::{ObjectStore, Store};

    fn block(n: u8) -> ObjectId {
        ObjectId::from_bytes([n; 32])
    }

    /// An image longer than a set looks up at a time: its ids are settled
    /// in two sorted runs, and a set that holds some of them takes the rest.
    #[test]
    fn a_set_takes_an_image_longer_than_one_lookup_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join("s")).unwrap();
        let blocks: Vec<ObjectId> = (0u32..300_000)
            .map(|n| crate::codec::blob_id(&n.to_le_bytes()))
            .collect();
        let image = write_image(&mut store, None, &blocks);
        let mut set = IdSet::default();
        set.add(blocks.iter().step_by(2).copied().collect());
        set.add_image(store.view(), &image.id, false).unwrap();
        let mut all = blocks.clone();
        all.push(image.id);
        all.sort_unstable();
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), all);
    }

    fn write_image(
        store: &mut Store,
        parent: Option<&ResolvedImage>,
        blocks: &[ObjectId],
    ) -> ResolvedImage {
        let count = blocks.len() as u32;
        let listing = match parent {
            None => Listing::Full(blocks.to_vec()),
            Some(parent) => {
                let changes = blocks
                    .iter()
                    .enumerate()
                    .filter(|(index, block)| parent.blocks.get(*index) != Some(block))
                    .map(|(index, block)| BlockChange {
                        index: index as u32,
                        block: *block,
                    })
                    .collect();
                let dir = tempfile::tempdir().unwrap();
                match plan_listing(parent.clone(), 4096, count, changes, dir.path()).unwrap() {
                    NewListing::Delta(listing) => listing,
                    NewListing::Full(blocks) => {
                        Listing::Full(blocks.read(0..blocks.len()).unwrap())
                    }
                }
            }
        };
        let image = Image {
            block_size: 4096,
            block_count: blocks.len() as u32,
            digest: [0; 32],
            listing,
        };
        let id = store.write(&Object::Image(image)).unwrap();
        let resolved = resolve(store.view(), &id).unwrap();
        assert_eq!(
            spilled(store, &id).unwrap(),
            resolved.blocks,
            "spilled {id}"
        );
        // What an id set takes of it, a chunk at a time: blocks and chain.
        let mut set = IdSet::default();
        set.add_image(store.view(), &id, false).unwrap();
        let mut needs: Vec<_> = resolved
            .blocks
            .iter()
            .chain(&resolved.chain)
            .copied()
            .collect();
        needs.sort_unstable();
        needs.dedup();
        assert_eq!(
            set.iter().copied().collect::<Vec<_>>(),
            needs,
            "needs of {id}"
        );
        resolved
    }

    /// Every block of image `id`, through a spilled listing.
    fn spilled(store: &Store, id: &ObjectId) -> Result<Vec<ObjectId>> {
        let dir = tempfile::tempdir().unwrap();
        let spilled = spill(store.view(), id, dir.path())?;
        let count = spilled.image.block_count as usize;
        assert_eq!(spilled.chain, resolve(store.view(), id)?.chain);
        // Read in odd pieces, past the end too.
        let mut blocks = Vec::new();
        for start in (0..count + 7).step_by(7) {
            blocks.extend(spilled.blocks(start..start + 7).unwrap());
        }
        let all = |file: BlockFile| file.read(0..file.len()).unwrap();
        assert_eq!(blocks, all(spilled.into_block_file(dir.path())?));
        // Held in memory, it reads the same.
        let held = SpilledImage::from(resolve(store.view(), id)?);
        assert_eq!(held.blocks(3..count + 9).unwrap(), blocks[3.min(count)..]);
        assert_eq!(all(held.into_block_file(dir.path())?), blocks);
        Ok(blocks)
    }

    /// Distinct block ids, as many as a large listing needs.
    fn blocks(from: u32, count: u32) -> Vec<ObjectId> {
        (from..from + count)
            .map(|n| ObjectId::hash(&n.to_le_bytes()))
            .collect()
    }

    /// A chain that cuts blocks and later claims them back without listing
    /// them does not resolve, spilled or not: the full listing's old blocks
    /// past the cut must not come back.
    #[test]
    fn a_block_cut_and_never_listed_again_fails_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join(".migsnap")).unwrap();
        let base = write_image(&mut store, None, &blocks(0, 10));
        let write = |store: &mut Store, base: ObjectId, count: u32, changes: Vec<BlockChange>| {
            let image = Image {
                block_size: 4096,
                block_count: count,
                digest: [0; 32],
                listing: Listing::Delta {
                    base,
                    depth: 1,
                    chain_changes: changes.len() as u64,
                    changes,
                },
            };
            store.write(&Object::Image(image)).unwrap()
        };
        let cut = write(&mut store, base.id, 5, Vec::new());
        let change = |index| BlockChange {
            index,
            block: block(index as u8),
        };
        let regrown = write(&mut store, cut, 8, vec![change(5), change(6)]);
        assert!(resolve(store.view(), &regrown).is_err());
        let err = spilled(&store, &regrown).unwrap_err();
        assert!(err.to_string().contains("block 7 unlisted"), "{err}");
        let whole = write(&mut store, cut, 8, vec![change(5), change(6), change(7)]);
        assert_eq!(
            spilled(&store, &whole).unwrap(),
            resolve(store.view(), &whole).unwrap().blocks
        );
    }

    /// A full listing over a mebibyte (40,000 blocks) is read a chunk at a
    /// time, through every kind of delta above it, and spills to exactly
    /// what `resolve` gives; a flipped byte in it fails the spill.
    #[test]
    fn a_large_full_listing_spills_as_it_resolves_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join(".migsnap")).unwrap();
        let mut current = blocks(0, 40_000);
        let base = write_image(&mut store, None, &current);
        assert!(
            store.view().large_full_listing(&base.id).unwrap().is_some(),
            "stored large and raw"
        );
        let mut parent = base.clone();
        // Shrunk, then grown again: the base's blocks past the cut must not
        // come back.
        let steps = [
            (1u32, "change"),
            (2, "grow"),
            (3, "shrink"),
            (4, "change"),
            (5, "grow"),
        ];
        for (step, edit) in steps {
            match edit {
                "change" => {
                    for index in (step as usize..current.len()).step_by(997) {
                        current[index] = ObjectId::hash(&[step as u8; 3]);
                    }
                }
                "grow" => current.extend(blocks(100_000 * step, 3_000)),
                _ => current.truncate(30_000),
            }
            parent = write_image(&mut store, Some(&parent), &current);
            assert!(matches!(parent.image.listing, Listing::Delta { .. }));
        }

        // A flipped byte among the base's ids.
        let (pack, _, _) = store.view().locate(&base.id).unwrap().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join(".migsnap/store.db")).unwrap();
        let mut blob = conn
            .blob_open(rusqlite::MAIN_DB, "packs", "data", pack, false)
            .unwrap();
        let mut byte = [0u8; 1];
        blob.read_at_exact(&mut byte, 500_000).unwrap();
        blob.write_at(&[byte[0] ^ 1], 500_000).unwrap();
        drop(blob);
        for id in [base.id, parent.id] {
            let err = spilled(&store, &id).unwrap_err();
            assert!(
                matches!(err, Error::Corrupt { id, .. } if id == base.id),
                "{err}"
            );
            // An id set, which sees the ids before the hash fails, takes
            // none of them.
            let mut set = IdSet::default();
            set.add(vec![block(1)]);
            let err = set.add_image(store.view(), &id, false).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{err}");
            assert_eq!(set.iter().copied().collect::<Vec<_>>(), [block(1)]);
            // `resolve` reads a large base below a delta the same way.
            let err = resolve(store.view(), &id).unwrap_err();
            assert!(
                matches!(err, Error::Corrupt { .. } | Error::Unreadable { .. }),
                "{err}"
            );
        }
    }

    /// Images added one after another to an id set give the union of what
    /// each needs; of a forgotten image only the blocks still held count,
    /// and an image that cannot be read adds nothing.
    #[test]
    fn an_id_set_takes_what_images_need() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join(".migsnap")).unwrap();
        let held: Vec<ObjectId> = (0..4u8)
            .map(|n| store.write(&Object::Blob(vec![n; 64])).unwrap())
            .collect();
        let mut first = held.clone();
        first.extend(blocks(0, 6));
        let r1 = write_image(&mut store, None, &first);
        let mut second = first.clone();
        second[1] = block(77);
        second.push(block(78));
        let r2 = write_image(&mut store, Some(&r1), &second);
        assert_eq!(r2.chain, vec![r2.id, r1.id]);

        let mut set = IdSet::default();
        set.add_image(store.view(), &r1.id, false).unwrap();
        set.add_image(store.view(), &r2.id, false).unwrap();
        let mut union: Vec<_> = first.iter().chain(&second).copied().collect();
        union.extend([r1.id, r2.id]);
        union.sort_unstable();
        union.dedup();
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), union);

        let mut forgotten = IdSet::default();
        forgotten.add_image(store.view(), &r2.id, true).unwrap();
        let mut present: Vec<_> = [held[0], held[2], held[3], r1.id, r2.id].into();
        present.sort_unstable();
        assert_eq!(forgotten.iter().copied().collect::<Vec<_>>(), present);

        let missing = block(99);
        let mut none = IdSet::default();
        let err = none.add_image(store.view(), &missing, false).unwrap_err();
        assert!(
            matches!(err, Error::NotFound { id } if id == missing),
            "{err}"
        );
        assert_eq!(none.len(), 0);
    }

    #[test]
    fn deltas_resolve_to_the_same_blocks_through_growth_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join(".migsnap")).unwrap();
        let v1: Vec<_> = (0..100).map(block).collect();
        let r1 = write_image(&mut store, None, &v1);
        assert!(matches!(r1.image.listing, Listing::Full(_)));

        let mut v2 = v1.clone();
        v2[3] = block(200);
        v2.push(block(201));
        let r2 = write_image(&mut store, Some(&r1), &v2);
        assert!(matches!(
            r2.image.listing,
            Listing::Delta {
                depth: 1,
                chain_changes: 2,
                ..
            }
        ));
        assert_eq!(r2.blocks, v2);

        let v3 = v2[..50].to_vec();
        let r3 = write_image(&mut store, Some(&r2), &v3);
        assert!(matches!(r3.image.listing, Listing::Delta { depth: 2, .. }));
        assert_eq!(r3.blocks, v3);
        assert_eq!(r3.chain.len(), 3);
    }

    #[test]
    fn chain_rebases_when_deltas_add_up_to_a_full_listing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::init(&dir.path().join(".migsnap")).unwrap();
        let mut blocks: Vec<_> = (0..10).map(block).collect();
        let mut current = write_image(&mut store, None, &blocks);
        let mut kinds = Vec::new();
        for step in 0..12u8 {
            blocks[usize::from(step % 10)] = block(100 + step);
            current = write_image(&mut store, Some(&current), &blocks);
            kinds.push(matches!(current.image.listing, Listing::Full(_)));
            assert_eq!(current.blocks, blocks);
        }
        // Nine single-block deltas fit under ten blocks; the tenth rebases.
        assert_eq!(kinds.iter().position(|full| *full), Some(9));
    }
}
