//! A set of object ids as one sorted vector: 32 bytes an id, where a hash
//! set costs more than twice that (more while it grows), and a 4 GiB image
//! lists a million pages. gc marks live objects in one; a transfer works
//! out what a history needs in one; a remote's check and gc hold every id
//! its indexes list in one.

use crate::id::ObjectId;
use crate::image::Blocks;
use crate::odb::{Result, View};

/// Ids of an image looked up at a time, sorted ([`IdSet::add_image`]):
/// 8 MiB, so that over a million ids the next one looked up is a few ids
/// on, not a page of the set away.
const LOOKUP_IDS: usize = 1 << 18;

/// The most image objects a delta chain holds.
const MAX_CHAIN: usize = crate::image::MAX_DELTA_DEPTH as usize + 1;

/// Object ids, each once, in order.
#[derive(Debug, Default)]
pub struct IdSet {
    sorted: Vec<ObjectId>,
}

impl IdSet {
    /// Adds `ids`, keeping their vector when they outnumber the set: only
    /// the ids of the smaller side not in the other are copied, which for
    /// the next image of a history is few.
    pub fn add(&mut self, mut ids: Vec<ObjectId>) {
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
        let ids: Vec<ObjectId> = self
            .rank_sorted(&ids)
            .filter_map(|(id, rank)| rank.is_none().then_some(id))
            .collect();
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
        // fails to match it. The run of ids not yet settled (below) is
        // held there too.
        let count = blocks.image().block_count as usize;
        let room = count
            .saturating_sub(self.sorted.len())
            .max(count.min(LOOKUP_IDS));
        let mut fresh = Vec::new();
        let _ = fresh.try_reserve_exact(room.saturating_add(MAX_CHAIN));
        // Ids go into `fresh` as they come, and every LOOKUP_IDS of them the
        // run not yet settled is sorted, looked up in one pass over the set,
        // and cut down to the ids the set lacks. Looked up one by one in
        // page order, a second 4 GiB image's million ids cost a miss of the
        // TLB each (0.7 s of a clone's history check); so did a pass per
        // chunk of the listing, whose ids land a page of the set apart.
        let mut settled = 0;
        let settle = |fresh: &mut Vec<ObjectId>, settled: &mut usize| -> Result<()> {
            fresh[*settled..].sort_unstable();
            let absent: Vec<bool> = self
                .rank_sorted(&fresh[*settled..])
                .map(|(_, rank)| rank.is_none())
                .collect();
            let mut kept = *settled;
            for (at, absent) in (*settled..).zip(absent) {
                let id = fresh[at];
                if absent && (!forgotten || view.contains(&id)?) {
                    fresh[kept] = id;
                    kept += 1;
                }
            }
            fresh.truncate(kept);
            *settled = kept;
            Ok(())
        };
        let mut keep = |ids: &[ObjectId]| -> Result<()> {
            for chunk in ids.chunks(LOOKUP_IDS) {
                if fresh.len() - settled + chunk.len() > LOOKUP_IDS {
                    settle(&mut fresh, &mut settled)?;
                }
                fresh.extend_from_slice(chunk);
            }
            Ok(())
        };
        let (_, chain) = blocks.stream(view, &mut keep)?;
        keep(&chain)?;
        settle(&mut fresh, &mut settled)?;
        self.add(fresh);
        Ok(())
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.rank(id).is_some()
    }

    /// Where `id` is in the set's order, if it is there.
    ///
    /// Ids are BLAKE3 hashes, spread evenly, so an id's place is close to
    /// its [`ObjectId::head`]'s share of the whole range times the count:
    /// the search starts there and doubles its step until it brackets the
    /// id, then bisects that bracket. Over a million ids that touches a few
    /// neighbouring cache lines where a bisection of the whole set touched
    /// twenty scattered ones (a remote gc at 4 GiB: 2.9 s bisecting, 2.3 s
    /// from the guess; [`IdSet::rank_sorted`] is for many ids at once). Any
    /// order of ids is still found, only more slowly.
    pub fn rank(&self, id: &ObjectId) -> Option<usize> {
        let sorted = &self.sorted;
        let len = sorted.len();
        if len == 0 {
            return None;
        }
        let guess = ((u128::from(id.head()) * len as u128) >> 64) as usize;
        let (start, end) = match sorted[guess].cmp(id) {
            std::cmp::Ordering::Equal => return Some(guess),
            // After the guess: gallop right while the ids are still smaller.
            std::cmp::Ordering::Less => {
                let mut step = 1;
                while guess + step < len && sorted[guess + step] < *id {
                    step *= 2;
                }
                (guess + step / 2 + 1, (guess + step + 1).min(len))
            }
            // Before it: gallop left while the ids are still larger.
            std::cmp::Ordering::Greater => {
                let mut step = 1;
                while step <= guess && sorted[guess - step] > *id {
                    step *= 2;
                }
                (guess.saturating_sub(step), guess - step / 2)
            }
        };
        sorted[start..end]
            .binary_search(id)
            .ok()
            .map(|at| start + at)
    }

    /// The place of each of `ids`, which must be in order, as
    /// [`IdSet::rank`] gives it: one pass over both, for a whole listing at
    /// once. A million lookups scattered over a set that large cost a miss
    /// of the TLB each (a remote gc at 4 GiB spent 1.7 s in them); the pass
    /// reads the set front to back, galloping over the stretches between
    /// ids, so a short list is as quick as its lookups one by one.
    pub fn rank_sorted<'a>(
        &'a self,
        ids: &'a [ObjectId],
    ) -> impl Iterator<Item = (ObjectId, Option<usize>)> + 'a {
        debug_assert!(ids.is_sorted(), "BUG: rank_sorted needs ids in order");
        let mut at = 0;
        ids.iter().map(move |id| {
            let rest = &self.sorted[at..];
            let mut step = 1;
            while step <= rest.len() && rest[step - 1] < *id {
                step *= 2;
            }
            // Everything before `step / 2` is smaller; `step - 1`, if there,
            // is not.
            let first = step / 2;
            at += first + rest[first..step.min(rest.len())].partition_point(|x| x < id);
            (*id, (self.sorted.get(at) == Some(id)).then_some(at))
        })
    }

    /// The id at `rank` in the set's order.
    pub(crate) fn get(&self, rank: usize) -> Option<&ObjectId> {
        self.sorted.get(rank)
    }

    /// Every id, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, ObjectId> {
        self.sorted.iter()
    }

    /// How many ids it holds.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether it holds no id.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
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

        /// `rank` finds every id at its place in the order and finds no
        /// absent one, whether ids spread evenly, as BLAKE3's do, or bunch
        /// up where the first guess is far off (shared first bytes, so the
        /// rest decides).
        #[test]
        fn rank_is_the_place_in_the_order(
            keys in prop::collection::vec((any::<u64>(), any::<u64>()), 0..300),
            probes in prop::collection::vec((any::<u64>(), any::<u64>()), 0..40),
            bunched in any::<bool>(),
        ) {
            let make = |(head, rest): (u64, u64)| {
                let mut bytes = [0u8; 32];
                let head = if bunched { head % 3 } else { head };
                bytes[..8].copy_from_slice(&head.to_be_bytes());
                bytes[8..16].copy_from_slice(&rest.to_be_bytes());
                ObjectId::from_bytes(bytes)
            };
            let mut set = IdSet::default();
            set.add(keys.iter().copied().map(make).collect());
            let want: Vec<ObjectId> = keys.iter().copied().map(make).collect::<BTreeSet<_>>().into_iter().collect();
            for (at, id) in want.iter().enumerate() {
                prop_assert_eq!(set.rank(id), Some(at));
            }
            let mut probes: Vec<ObjectId> = probes.into_iter().map(make).chain(want.iter().copied()).collect();
            probes.sort_unstable();
            for (probe, rank) in set.rank_sorted(&probes) {
                prop_assert_eq!(set.rank(&probe), want.binary_search(&probe).ok());
                prop_assert_eq!(rank, want.binary_search(&probe).ok());
            }
        }
    }
}
