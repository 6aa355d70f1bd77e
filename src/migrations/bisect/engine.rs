//! The bisection state machine, generic over the item: marks in, the next
//! item to test (or the answer) out. It knows nothing of stores or
//! processes.
//!
//! Invariants of the search (as git's): the line is oldest first with
//! distinct items; a good item implies every older one is good and a bad item
//! every newer one bad, so the first bad item is the oldest one that is bad.
//! A later mark of the same item replaces an earlier one.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use super::BisectError;

/// A verdict on one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The item does not show the problem.
    Good,
    /// The item shows the problem.
    Bad,
    /// The item cannot be judged (it does not build, has no data...).
    Skip,
}

impl Verdict {
    /// The lowercase word used in refs, output and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Bad => "bad",
            Verdict::Skip => "skip",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Verdict> {
        [Verdict::Good, Verdict::Bad, Verdict::Skip]
            .into_iter()
            .find(|verdict| verdict.name() == name)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What a bisection needs next, or what it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next<T> {
    /// Test this item next. `remaining` untested candidates lie between the
    /// last good and the first bad item (this one included), and about
    /// `steps` more verdicts (this one included) will settle the search.
    Test {
        /// The item to test.
        item: T,
        /// Untested, unskipped candidates left, this one included.
        remaining: usize,
        /// Good or bad verdicts still needed at worst, this one included.
        steps: u32,
    },
    /// Done: the first bad item, and the good one just before it (`None` when
    /// the oldest item is bad).
    Found {
        /// The oldest bad item.
        first_bad: T,
        /// The item just before it, known good.
        last_good: Option<T>,
    },
    /// Only skipped items remain between the last good and the first bad
    /// item: the first bad item is one of `candidates` (oldest first; the
    /// last is the known bad one).
    OnlySkipped {
        /// Where the first bad item may be.
        candidates: Vec<T>,
    },
    /// No item is marked bad yet.
    NeedBad,
    /// No item is marked good yet (and the line has no open start).
    NeedGood,
    /// A good item is newer than a bad one, which the search cannot explain.
    Inconsistent {
        /// The newest good item.
        good: T,
        /// The oldest bad item, older than `good`.
        bad: T,
    },
}

/// The candidates of a bisection, oldest first, and what is known about them.
#[derive(Clone, Debug)]
pub struct Bisection<T> {
    line: Vec<T>,
    positions: HashMap<T, usize>,
    verdicts: Vec<Option<Verdict>>,
    open_start: bool,
}

impl<T: Clone + Eq + Hash + fmt::Display> Bisection<T> {
    /// A bisection of `line` (oldest first, distinct items) that needs one
    /// item marked good and one marked bad before it proposes a test.
    pub fn new(line: Vec<T>) -> Self {
        let positions = line
            .iter()
            .enumerate()
            .map(|(position, item)| (item.clone(), position))
            .collect();
        Bisection {
            verdicts: vec![None; line.len()],
            line,
            positions,
            open_start: false,
        }
    }

    /// A bisection of `line` where the state before its oldest item counts
    /// as good, so only a bad mark is needed, and the search may conclude
    /// that the oldest item is already bad (`Found { last_good: None }`).
    pub fn with_open_start(line: Vec<T>) -> Self {
        Bisection {
            open_start: true,
            ..Bisection::new(line)
        }
    }

    /// Where `item` is on the line (0 = oldest), if it is there.
    pub fn position(&self, item: &T) -> Option<usize> {
        self.positions.get(item).copied()
    }

    /// Records `verdict` for `item`, replacing any earlier verdict on it.
    pub fn mark(&mut self, item: &T, verdict: Verdict) -> Result<(), BisectError> {
        let position = self.position(item).ok_or_else(|| BisectError::NotOnLine {
            item: item.to_string(),
        })?;
        self.verdicts[position] = Some(verdict);
        Ok(())
    }

    /// What to do next.
    ///
    /// The next item to test is the median of the *untested* candidates
    /// strictly between the last good and the first bad item. Without skips
    /// that is the midpoint of the interval. Skipped items drop out of the
    /// count, so when the midpoint is skipped the choice moves to the nearest
    /// untested item on the side that keeps both halves even; this keeps the
    /// number of good/bad verdicts at most ceil(log2(untested + 1)) however
    /// the skips fall (git instead picks by distance from the midpoint, with
    /// a random bias away from skip clusters).
    pub fn next(&self) -> Next<T> {
        let Some(first_bad) = self.verdicts.iter().position(|v| *v == Some(Verdict::Bad)) else {
            return Next::NeedBad;
        };
        let last_good = self
            .verdicts
            .iter()
            .rposition(|v| *v == Some(Verdict::Good));
        match last_good {
            None if !self.open_start => return Next::NeedGood,
            Some(good) if good > first_bad => {
                return Next::Inconsistent {
                    good: self.line[good].clone(),
                    bad: self.line[first_bad].clone(),
                };
            }
            _ => {}
        }
        let between = last_good.map_or(0, |good| good + 1)..first_bad;
        let untested: Vec<usize> = between
            .clone()
            .filter(|&position| self.verdicts[position].is_none())
            .collect();
        if let Some(&median) = untested.get(untested.len() / 2) {
            return Next::Test {
                item: self.line[median].clone(),
                remaining: untested.len(),
                steps: usize::BITS - untested.len().leading_zeros(),
            };
        }
        if between.is_empty() {
            Next::Found {
                first_bad: self.line[first_bad].clone(),
                last_good: last_good.map(|good| self.line[good].clone()),
            }
        } else {
            Next::OnlySkipped {
                candidates: self.line[between.start..=first_bad].to_vec(),
            }
        }
    }
}

/// Runs a whole bisection with `test` as the judge: tests what
/// [`Bisection::next`] proposes until it returns anything but
/// [`Next::Test`], and returns that. Each item is tested at most once, and
/// `test` is called at most ceil(log2(n)) times plus once per skip, for a
/// line of n items whose newest is marked bad.
pub fn search<T, E>(
    mut bisection: Bisection<T>,
    mut test: impl FnMut(&T) -> Result<Verdict, E>,
) -> Result<Next<T>, E>
where
    T: Clone + Eq + Hash + fmt::Display,
{
    loop {
        match bisection.next() {
            Next::Test { item, .. } => {
                let verdict = test(&item)?;
                bisection
                    .mark(&item, verdict)
                    .expect("holds because next() proposes items of the line");
            }
            done => return Ok(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn line(n: u32) -> Vec<u32> {
        (0..n).collect()
    }

    #[test]
    fn needs_bad_then_good() {
        let mut bisection = Bisection::new(line(10));
        assert_eq!(bisection.next(), Next::NeedBad);
        bisection.mark(&9, Verdict::Bad).unwrap();
        assert_eq!(bisection.next(), Next::NeedGood);
        bisection.mark(&0, Verdict::Good).unwrap();
        assert_eq!(
            bisection.next(),
            Next::Test {
                item: 5,
                remaining: 8,
                steps: 4
            }
        );
    }

    #[test]
    fn open_start_needs_only_bad_and_can_find_the_oldest() {
        let mut bisection = Bisection::with_open_start(line(3));
        bisection.mark(&2, Verdict::Bad).unwrap();
        bisection.mark(&1, Verdict::Bad).unwrap();
        bisection.mark(&0, Verdict::Bad).unwrap();
        assert_eq!(
            bisection.next(),
            Next::Found {
                first_bad: 0,
                last_good: None
            }
        );
    }

    #[test]
    fn a_later_mark_replaces_an_earlier_one() {
        let mut bisection = Bisection::new(line(4));
        bisection.mark(&0, Verdict::Good).unwrap();
        bisection.mark(&3, Verdict::Good).unwrap();
        bisection.mark(&2, Verdict::Bad).unwrap();
        assert_eq!(bisection.next(), Next::Inconsistent { good: 3, bad: 2 });
        bisection.mark(&3, Verdict::Bad).unwrap();
        assert_eq!(
            bisection.next(),
            Next::Test {
                item: 1,
                remaining: 1,
                steps: 1
            }
        );
    }

    #[test]
    fn only_skipped_lists_the_skipped_and_the_bad() {
        let mut bisection = Bisection::new(line(6));
        bisection.mark(&1, Verdict::Good).unwrap();
        bisection.mark(&4, Verdict::Bad).unwrap();
        bisection.mark(&2, Verdict::Skip).unwrap();
        bisection.mark(&3, Verdict::Skip).unwrap();
        assert_eq!(
            bisection.next(),
            Next::OnlySkipped {
                candidates: vec![2, 3, 4]
            }
        );
    }

    #[test]
    fn a_skipped_midpoint_moves_to_the_median_of_the_untested() {
        let mut bisection = Bisection::new(line(9));
        bisection.mark(&0, Verdict::Good).unwrap();
        bisection.mark(&8, Verdict::Bad).unwrap();
        // Untested 1..=7: the median is 4.
        assert!(matches!(bisection.next(), Next::Test { item: 4, .. }));
        bisection.mark(&4, Verdict::Skip).unwrap();
        // Untested 1,2,3,5,6,7: index 3 of them is 5, a neighbour of 4.
        assert!(matches!(
            bisection.next(),
            Next::Test {
                item: 5,
                remaining: 6,
                ..
            }
        ));
    }

    #[test]
    fn unknown_items_are_an_error() {
        let mut bisection = Bisection::new(line(3));
        let error = bisection.mark(&7, Verdict::Good).unwrap_err();
        assert!(matches!(error, BisectError::NotOnLine { ref item } if item == "7"));
    }

    fn ceil_log2(n: usize) -> usize {
        (usize::BITS - n.saturating_sub(1).leading_zeros()) as usize
    }

    proptest! {
        #[test]
        fn search_finds_the_first_bad(
            (n, first_bad, skips) in (1usize..300).prop_flat_map(|n| {
                (Just(n), 0..n, proptest::collection::vec(proptest::bool::weighted(0.2), n))
            })
        ) {
            let line: Vec<usize> = (0..n).collect();
            let mut bisection = Bisection::with_open_start(line);
            bisection.mark(&(n - 1), Verdict::Bad).unwrap();
            let mut tested = HashSet::new();
            let (mut judged, mut skipped) = (0usize, 0usize);
            let found = search(bisection, |&item| {
                assert!(tested.insert(item), "tested {item} twice");
                if skips[item] {
                    skipped += 1;
                    return Ok::<_, ()>(Verdict::Skip);
                }
                judged += 1;
                Ok(if item >= first_bad { Verdict::Bad } else { Verdict::Good })
            })
            .unwrap();
            match found {
                Next::Found { first_bad: found, last_good } => {
                    prop_assert_eq!(found, first_bad);
                    prop_assert_eq!(last_good, first_bad.checked_sub(1));
                }
                Next::OnlySkipped { candidates } => {
                    prop_assert!(candidates.contains(&first_bad), "{candidates:?} lacks {first_bad}");
                    let (bad, skipped_ones) = candidates.split_last().unwrap();
                    prop_assert!(*bad >= first_bad);
                    prop_assert!(skipped_ones.iter().all(|&item| skips[item]));
                }
                other => prop_assert!(false, "unexpected {other:?}"),
            }
            prop_assert!(judged <= ceil_log2(n), "{judged} verdicts for {n} items");
            prop_assert!(judged + skipped <= ceil_log2(n) + 1 + skipped);
        }
    }
}
