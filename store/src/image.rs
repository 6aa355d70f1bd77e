//! Reading and planning block listings of [`Image`]s.
//!
//! A writer lists a new image as a delta against its parent image when that is
//! cheaper, and rebases to a full listing when the chain would be too deep or
//! would, added up, cost more than a full listing. So a reader walks at most
//! [`MAX_DELTA_DEPTH`] deltas, and the listing bytes of a chain stay below
//! twice those of one full listing.

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
                let base_image = read_image(view, &base)?;
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

/// Chooses how to list a new image of `block_count` blocks of `block_size`
/// bytes that holds `parent`'s blocks except at `changes` (strictly
/// increasing indexes, every index past the parent's end among them): a
/// delta against `parent` when that is cheaper and the chain stays within
/// bounds, otherwise in full.
///
/// Takes the parent by value because a full listing is the parent's own
/// list, patched in place: a writer then never holds a second full list
/// (32 bytes per block, 32 MiB at 4 GiB), only the parent's and the
/// changes, whichever way the listing goes.
pub fn plan_listing(
    mut parent: ResolvedImage,
    block_size: u32,
    block_count: u32,
    changes: Vec<BlockChange>,
) -> Listing {
    let (depth, chain_changes) = match parent.image.listing {
        Listing::Full(_) => (1, changes.len() as u64),
        Listing::Delta {
            depth,
            chain_changes,
            ..
        } => (depth + 1, chain_changes + changes.len() as u64),
    };
    if parent.image.block_size == block_size
        && depth <= MAX_DELTA_DEPTH
        && chain_changes < u64::from(block_count)
    {
        return Listing::Delta {
            base: parent.id,
            depth,
            chain_changes,
            changes,
        };
    }
    apply_changes(&mut parent.blocks, block_count, &changes)
        .unwrap_or_else(|reason| panic!("BUG: the changes of a new listing: {reason}"));
    Listing::Full(parent.blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odb::{ObjectStore, Store};

    fn block(n: u8) -> ObjectId {
        ObjectId::from_bytes([n; 32])
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
                plan_listing(parent.clone(), 4096, count, changes)
            }
        };
        let image = Image {
            block_size: 4096,
            block_count: blocks.len() as u32,
            digest: [0; 32],
            listing,
        };
        let id = store.write(&Object::Image(image)).unwrap();
        resolve(store.view(), &id).unwrap()
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
