//! A set of object ids as one sorted vector: 32 bytes an id, where a hash
//! set costs more than twice that (more while it grows), and a 4 GiB image
//! lists a million pages. gc marks live objects in one; a transfer works
//! out what a history needs in one.

use crate::id::ObjectId;
use crate::image::Blocks;
use crate::odb::{Result, View};

/// The most image objects a delta chain holds.
const MAX_CHAIN: usize = crate::image::MAX_DELTA_DEPTH as usize + 1;

/// Object ids, each once, in order.
#[derive(Debug, Default)]
pub(crate) struct IdSet {
    sorted: Vec<ObjectId>,
}

impl IdSet {
    /// Adds `ids`, reusing their vector: only those not in the set yet are
    /// copied, which for the next image of a history is few.
    pub(crate) fn add(&mut self, mut ids: Vec<ObjectId>) {
        ids.sort_unstable();
        ids.dedup();
        // The smaller side is merged into the larger, which is grown once:
        // a first image's million ids join a set of a few snapshot ids
        // without a second copy of them.
        if ids.len() > self.sorted.len() {
            std::mem::swap(&mut self.sorted, &mut ids);
        }
        if ids.is_empty() {
            return;
        }
        ids.retain(|id| self.sorted.binary_search(id).is_err());
        // Merged from the back into the grown vector: linear, and no
        // second copy of the ids already in.
        let (mut old, mut new) = (self.sorted.len(), ids.len());
        self.sorted.reserve_exact(new);
        self.sorted.extend_from_slice(&ids);
        while new > 0 {
            let slot = old + new - 1;
            if old > 0 && self.sorted[old - 1] > ids[new - 1] {
                self.sorted[slot] = self.sorted[old - 1];
                old -= 1;
            } else {
                self.sorted[slot] = ids[new - 1];
                new -= 1;
            }
        }
    }

    /// Adds what image `image_id` needs: every block it lists and the
    /// image objects of its delta chain. The listing is read a chunk at a
    /// time and only the ids new to the set are kept beside it, so adding
    /// the next image of a history holds the set and little more (it held
    /// the image's whole listing too: 32 MiB at 4 GiB). Of a `forgotten`
    /// image, whose data retention gave up, only what `view` still holds is
    /// added. Nothing is added when the image cannot be read whole.
    pub(crate) fn add_image(
        &mut self,
        view: View<'_>,
        image_id: &ObjectId,
        forgotten: bool,
    ) -> Result<()> {
        let blocks = Blocks::open(view, image_id)?;
        // Room for every block that may be new, reserved once: grown a push
        // at a time, a first image's ids took up to twice their size.
        // Room that stays unused is never touched, and costs no memory. The
        // count is the image's claim, not yet checked against its listing:
        // room that cannot be had is not reserved, and the listing then
        // fails to match it.
        let room = (blocks.image().block_count as usize).saturating_sub(self.sorted.len());
        let mut fresh = Vec::new();
        let _ = fresh.try_reserve_exact(room.saturating_add(MAX_CHAIN));
        let mut keep = |ids: &[ObjectId]| -> Result<()> {
            for id in ids {
                if !self.contains(id) && (!forgotten || view.contains(id)?) {
                    fresh.push(*id);
                }
            }
            Ok(())
        };
        let (_, chain) = blocks.stream(view, &mut keep)?;
        keep(&chain)?;
        self.add(fresh);
        Ok(())
    }

    /// Whether `id` is in the set.
    pub(crate) fn contains(&self, id: &ObjectId) -> bool {
        self.rank(id).is_some()
    }

    /// Where `id` is in the set's order, if it is there.
    pub(crate) fn rank(&self, id: &ObjectId) -> Option<usize> {
        self.sorted.binary_search(id).ok()
    }

    /// The id at `rank` in the set's order.
    pub(crate) fn get(&self, rank: usize) -> Option<&ObjectId> {
        self.sorted.get(rank)
    }

    /// Every id, in order.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, ObjectId> {
        self.sorted.iter()
    }

    /// How many ids it holds.
    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::IdSet;
    use crate::id::ObjectId;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes([n; 32])
    }

    proptest! {
        /// Adding batches one after another gives the sorted union, with
        /// every id once, as a set would.
        #[test]
        fn an_id_set_is_the_union_of_its_batches(batches in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6)) {
            let mut set = IdSet::default();
            let mut want = BTreeSet::new();
            for batch in &batches {
                set.add(batch.iter().map(|&n| id(n)).collect());
                want.extend(batch.iter().map(|&n| id(n)));
            }
            prop_assert_eq!(set.iter().copied().collect::<Vec<_>>(), want.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(set.len(), want.len());
            for n in 0..=255u8 {
                prop_assert_eq!(set.contains(&id(n)), want.contains(&id(n)));
            }
        }
    }
}
