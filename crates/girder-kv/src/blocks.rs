//! [`BlockDeque`]: a double-ended queue kept in blocks of at most [`BLOCK`] elements, the
//! shape of Redis's quicklist (a list of small listpacks) and of C++'s `std::deque`.
//!
//! Why not one `VecDeque`: a list is a value on the event loop's thread, and a `VecDeque`
//! grows by reallocating all of itself. Pushing onto a list of ten million elements then
//! allocates and copies hundreds of megabytes in one call, and every client of the loop
//! waits for it; under redis-benchmark the same doubling showed as seven times Redis's
//! page faults on LPUSH/RPUSH to one list. Here a push allocates at most one block, a
//! list never holds more than one partly used block at each end, and a drained queue
//! frees its blocks as they empty.
//!
//! Invariants: no block is empty (the first is, only in an empty deque); every block but
//! the first and the last holds exactly [`BLOCK`] elements, so an index splits into a
//! block and an offset with one subtraction and a shift, and the length follows from the
//! ends' lengths and the number of blocks.

use std::collections::{vec_deque, VecDeque};
use std::ops::{Index, IndexMut, Range};

/// Elements per block: a power of two. With Girder's 40-byte list elements a block is
/// 5 KiB, near the 8 KiB of Redis's default `list-max-listpack-size`.
pub(crate) const BLOCK: usize = 128;

/// A double-ended queue of blocks; see the module documentation.
#[derive(Clone)]
pub(crate) struct BlockDeque<T> {
    /// Block 0, held inline: a list of up to [`BLOCK`] elements (most lists) is this one
    /// `VecDeque` and allocates nothing else. Empty only when the deque is.
    head: VecDeque<T>,
    /// Blocks 1 and on, boxed so that a one-block list is no larger than a `VecDeque`
    /// (40 bytes with the pointer). The length is not stored: every block but the first
    /// and the last is full, so it follows from the two ends' lengths and the count.
    #[expect(
        clippy::box_collection,
        reason = "8 bytes where the VecDeque itself would be 32 in every short list"
    )]
    rest: Option<Box<VecDeque<VecDeque<T>>>>,
}

impl<T> Default for BlockDeque<T> {
    fn default() -> Self {
        Self {
            head: VecDeque::new(),
            rest: None,
        }
    }
}

impl<T> BlockDeque<T> {
    pub(crate) fn len(&self) -> usize {
        self.head.len()
            + self.rest.as_ref().map_or(0, |rest| match rest.back() {
                Some(last) => (rest.len() - 1) * BLOCK + last.len(),
                None => 0,
            })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_empty()
    }

    /// Elements the blocks can hold without allocating (what a drained list keeps).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.head.capacity() + self.rest_iter().map(VecDeque::capacity).sum::<usize>()
    }

    /// Blocks 1 and on.
    fn rest_iter(&self) -> impl DoubleEndedIterator<Item = &VecDeque<T>> {
        self.rest.iter().flat_map(|rest| rest.iter())
    }

    /// Blocks after the head.
    fn rest_count(&self) -> usize {
        self.rest.as_ref().map_or(0, |rest| rest.len())
    }

    /// Blocks 1 and on, for adding one.
    fn rest_mut(&mut self) -> &mut VecDeque<VecDeque<T>> {
        self.rest.get_or_insert_with(Default::default)
    }

    fn block(&self, k: usize) -> &VecDeque<T> {
        match (k, &self.rest) {
            (0, _) => &self.head,
            (_, Some(rest)) => &rest[k - 1],
            (_, None) => panic!("block {k} of a one-block deque"),
        }
    }

    fn block_mut(&mut self, k: usize) -> &mut VecDeque<T> {
        match (k, &mut self.rest) {
            (0, _) => &mut self.head,
            (_, Some(rest)) => &mut rest[k - 1],
            (_, None) => panic!("block {k} of a one-block deque"),
        }
    }

    /// The last block (the head when it is the only one).
    fn last_mut(&mut self) -> &mut VecDeque<T> {
        match self.rest.as_deref_mut().and_then(VecDeque::back_mut) {
            Some(last) => last,
            None => &mut self.head,
        }
    }

    /// The block and the offset in it of element `i` (`i < len`).
    fn locate(&self, i: usize) -> (usize, usize) {
        let first = self.head.len();
        if i < first {
            (0, i)
        } else {
            let j = i - first;
            (1 + j / BLOCK, j % BLOCK)
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        (i < self.len()).then(|| {
            let (b, o) = self.locate(i);
            &self.block(b)[o]
        })
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i >= self.len() {
            return None;
        }
        let (b, o) = self.locate(i);
        Some(&mut self.block_mut(b)[o])
    }

    pub(crate) fn push_back(&mut self, x: T) {
        let last = self.last_mut();
        if last.len() < BLOCK {
            push_capped(last, x, true);
        } else {
            self.rest_mut().push_back(full_size_block(x));
        }
    }

    pub(crate) fn push_front(&mut self, x: T) {
        if self.head.len() < BLOCK {
            push_capped(&mut self.head, x, false);
        } else {
            let old = std::mem::replace(&mut self.head, full_size_block(x));
            self.rest_mut().push_front(old);
        }
    }

    pub(crate) fn pop_back(&mut self) -> Option<T> {
        if let Some(rest) = self.rest.as_deref_mut() {
            if let Some(last) = rest.back_mut() {
                let x = last.pop_back();
                if last.is_empty() {
                    rest.pop_back();
                }
                return x;
            }
        }
        self.head.pop_back()
    }

    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let x = self.head.pop_front()?;
        if self.head.is_empty() {
            if let Some(next) = self.rest.as_deref_mut().and_then(VecDeque::pop_front) {
                self.head = next;
            }
        }
        Some(x)
    }

    /// Inserts `x` so that it becomes element `at` (`at <= len`); the elements after it
    /// shift by one, each later block passing its last element on to the next.
    ///
    /// # Panics
    /// When `at > len`.
    pub(crate) fn insert(&mut self, at: usize, x: T) {
        let len = self.len();
        assert!(at <= len, "insert at {at} past the end ({len})");
        if at == len {
            return self.push_back(x);
        }
        if at == 0 {
            return self.push_front(x);
        }
        let (mut b, offset) = self.locate(at);
        let mut carry = x;
        let mut offset = Some(offset);
        loop {
            let block = self.block_mut(b);
            let full = block.len() == BLOCK;
            let spill = if full { block.pop_back() } else { None };
            // A full block gave up its last element first, so `o` (below the old
            // length) is at most the new one.
            match offset.take() {
                Some(o) => block.insert(o, carry),
                None => block.push_front(carry),
            }
            match spill {
                None => break,
                Some(s) if b == self.rest_count() => {
                    self.rest_mut().push_back(full_size_block(s));
                    break;
                }
                Some(s) => {
                    carry = s;
                    b += 1;
                }
            }
        }
    }

    /// Keeps the first `n` elements.
    pub(crate) fn truncate(&mut self, n: usize) {
        let mut len = self.len();
        while len > n {
            let excess = len - n;
            let more_than_one = self.rest_count() > 0;
            let last = self.last_mut();
            if last.len() <= excess && more_than_one {
                len -= last.len();
                self.rest_mut().pop_back();
            } else {
                let keep = last.len().saturating_sub(excess);
                last.truncate(keep);
                len = n;
            }
        }
    }

    /// Removes the first `n` elements (all of them when `n >= len`).
    pub(crate) fn remove_front(&mut self, n: usize) {
        let mut left = n.min(self.len());
        while left > 0 {
            if self.head.len() <= left {
                left -= self.head.len();
                self.head = self
                    .rest
                    .as_deref_mut()
                    .and_then(VecDeque::pop_front)
                    .unwrap_or_default();
            } else {
                self.head.drain(..left);
                left = 0;
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Keeps the elements `keep` accepts, in order; `keep` sees every element once, head
    /// first. Blocks are refilled afterwards only when something was removed.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let before = self.len();
        self.head.retain(&mut keep);
        for block in self.rest.iter_mut().flat_map(|rest| rest.iter_mut()) {
            block.retain(&mut keep);
        }
        let after = self.head.len() + self.rest_iter().map(VecDeque::len).sum::<usize>();
        if after != before {
            let old = std::mem::take(self);
            self.extend(old);
        }
    }

    /// Gives back the memory of an end block that has shrunk to a quarter of what it
    /// can hold, and of the block index; a drained list keeps at most twice what it
    /// holds.
    pub(crate) fn release_spare(&mut self) {
        if let Some(rest) = self.rest.as_deref_mut() {
            if rest.is_empty() {
                self.rest = None;
            } else if rest.capacity() > 16 && rest.len() < rest.capacity() / 4 {
                rest.shrink_to(rest.len() * 2);
            }
        }
        let last = self.rest.as_deref_mut().and_then(VecDeque::back_mut);
        for block in [Some(&mut self.head), last].into_iter().flatten() {
            if block.capacity() > 16 && block.len() < block.capacity() / 4 {
                block.shrink_to(block.len() * 2);
            }
        }
    }

    /// The elements at the positions in `range`, head first.
    ///
    /// # Panics
    /// When the range is reversed or runs past the end.
    pub(crate) fn range(&self, range: Range<usize>) -> Iter<'_, T> {
        let total = self.len();
        assert!(
            range.start <= range.end && range.end <= total,
            "range {range:?} outside 0..{total}"
        );
        let len = range.len();
        if len == 0 {
            return Iter {
                front: Default::default(),
                middle: Default::default(),
                back: Default::default(),
                len,
            };
        }
        let (first, from) = self.locate(range.start);
        let (last, to) = self.locate(range.end - 1);
        match &self.rest {
            Some(rest) if first != last => Iter {
                front: self.block(first).range(from..),
                // Blocks `first + 1 .. last`, which `rest` holds one place lower.
                middle: rest.range(first..last - 1),
                back: self.block(last).range(..=to),
                len,
            },
            _ => Iter {
                front: self.block(first).range(from..=to),
                middle: Default::default(),
                back: Default::default(),
                len,
            },
        }
    }

    pub(crate) fn iter(&self) -> Iter<'_, T> {
        self.range(0..self.len())
    }
}

/// A new block holding `x`, allocated whole: it is made when a list outgrows a block,
/// and will fill. (A list's first block grows as a `VecDeque` does: small lists stay
/// small.)
fn full_size_block<T>(x: T) -> VecDeque<T> {
    let mut block = VecDeque::with_capacity(BLOCK);
    block.push_back(x);
    block
}

/// Pushes onto a block with room, growing it by doubling but never past [`BLOCK`].
fn push_capped<T>(block: &mut VecDeque<T>, x: T, back: bool) {
    if block.len() == block.capacity() {
        let len = block.len();
        block.reserve_exact(len.max(4).min(BLOCK - len));
    }
    if back {
        block.push_back(x);
    } else {
        block.push_front(x);
    }
}

impl<T> Extend<T> for BlockDeque<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for x in items {
            self.push_back(x);
        }
    }
}

impl<T> FromIterator<T> for BlockDeque<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut deque = Self::default();
        deque.extend(items);
        deque
    }
}

impl<T> IntoIterator for BlockDeque<T> {
    type Item = T;
    type IntoIter = std::iter::Flatten<
        std::iter::Chain<std::iter::Once<VecDeque<T>>, vec_deque::IntoIter<VecDeque<T>>>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        let rest = self.rest.map(|rest| *rest).unwrap_or_default();
        std::iter::once(self.head).chain(rest).flatten()
    }
}

impl<T> Index<usize> for BlockDeque<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        match self.get(i) {
            Some(x) => x,
            None => panic!("index {i} out of range for a deque of {}", self.len()),
        }
    }
}

impl<T> IndexMut<usize> for BlockDeque<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        let len = self.len();
        match self.get_mut(i) {
            Some(x) => x,
            None => panic!("index {i} out of range for a deque of {len}"),
        }
    }
}

/// Equal when the elements are, whatever the blocks' boundaries.
impl<T: PartialEq> PartialEq for BlockDeque<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for BlockDeque<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over a [`BlockDeque`]'s elements (or a range of them), from both ends.
pub(crate) struct Iter<'a, T> {
    /// What is left of the first block in range.
    front: vec_deque::Iter<'a, T>,
    /// The whole blocks between.
    middle: vec_deque::Iter<'a, VecDeque<T>>,
    /// What is left of the last block in range.
    back: vec_deque::Iter<'a, T>,
    len: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(x) = self.front.next() {
                self.len -= 1;
                return Some(x);
            }
            match self.middle.next() {
                Some(block) => self.front = block.iter(),
                None => break,
            }
        }
        let x = self.back.next();
        self.len -= usize::from(x.is_some());
        x
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl<T> DoubleEndedIterator for Iter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(x) = self.back.next_back() {
                self.len -= 1;
                return Some(x);
            }
            match self.middle.next_back() {
                Some(block) => self.back = block.iter(),
                None => break,
            }
        }
        let x = self.front.next_back();
        self.len -= usize::from(x.is_some());
        x
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    impl<T> BlockDeque<T> {
        /// Checks the invariants of the module documentation.
        fn check(&self) {
            let blocks: Vec<_> = std::iter::once(&self.head)
                .chain(self.rest_iter())
                .collect();
            let len = blocks.iter().map(|b| b.len()).sum::<usize>();
            assert_eq!(self.len(), len);
            assert_eq!(
                self.head.is_empty(),
                len == 0,
                "head empty iff the deque is"
            );
            for (i, block) in blocks.iter().enumerate().skip(1) {
                assert!(!block.is_empty(), "block {i} is empty");
            }
            for (i, block) in blocks.iter().enumerate() {
                assert!(block.len() <= BLOCK, "block {i} holds {}", block.len());
                assert!(block.capacity() <= 2 * BLOCK, "block {i} over-allocated");
                if i > 0 && i + 1 < blocks.len() {
                    assert_eq!(block.len(), BLOCK, "middle block {i} not full");
                }
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        PushBack(u16, usize),
        PushFront(u16, usize),
        PopBack(usize),
        PopFront(usize),
        Insert(usize, u16),
        Set(usize, u16),
        Truncate(usize),
        RemoveFront(usize),
        RetainNot(u16),
        Range(usize, usize),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Counts up to a few blocks, so pushes and pops cross block boundaries.
        prop_oneof![
            (any::<u16>(), 1usize..400).prop_map(|(x, n)| Op::PushBack(x, n)),
            (any::<u16>(), 1usize..400).prop_map(|(x, n)| Op::PushFront(x, n)),
            (1usize..300).prop_map(Op::PopBack),
            (1usize..300).prop_map(Op::PopFront),
            (any::<usize>(), any::<u16>()).prop_map(|(i, x)| Op::Insert(i, x)),
            (any::<usize>(), any::<u16>()).prop_map(|(i, x)| Op::Set(i, x)),
            any::<usize>().prop_map(Op::Truncate),
            (0usize..600).prop_map(Op::RemoveFront),
            (0u16..8).prop_map(Op::RetainNot),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Range(a, b)),
            Just(Op::Clear),
        ]
    }

    proptest! {
        /// Every operation agrees with `VecDeque`, and the invariants hold after each.
        #[test]
        fn matches_vecdeque(ops in prop::collection::vec(op(), 1..80)) {
            let mut deque = BlockDeque::default();
            let mut model = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushBack(x, n) => for k in 0..n {
                        let v = x.wrapping_add(k as u16) % 8;
                        deque.push_back(v);
                        model.push_back(v);
                    },
                    Op::PushFront(x, n) => for k in 0..n {
                        let v = x.wrapping_add(k as u16) % 8;
                        deque.push_front(v);
                        model.push_front(v);
                    },
                    Op::PopBack(n) => for _ in 0..n {
                        prop_assert_eq!(deque.pop_back(), model.pop_back());
                    },
                    Op::PopFront(n) => for _ in 0..n {
                        prop_assert_eq!(deque.pop_front(), model.pop_front());
                    },
                    Op::Insert(i, x) => {
                        let at = i % (model.len() + 1);
                        deque.insert(at, x);
                        model.insert(at, x);
                    }
                    Op::Set(i, x) => {
                        if !model.is_empty() {
                            let at = i % model.len();
                            deque[at] = x;
                            model[at] = x;
                        }
                        prop_assert_eq!(deque.get(model.len()), None);
                    }
                    Op::Truncate(n) => {
                        let n = n % (model.len() + 2);
                        deque.truncate(n);
                        model.truncate(n);
                    }
                    Op::RemoveFront(n) => {
                        deque.remove_front(n);
                        model.drain(..n.min(model.len()));
                    }
                    Op::RetainNot(x) => {
                        let mut seen = Vec::new();
                        deque.retain(|v| { seen.push(*v); *v != x });
                        prop_assert!(seen.iter().eq(model.iter()), "retain visits in order");
                        model.retain(|v| *v != x);
                    }
                    Op::Range(a, b) => {
                        let (a, b) = (a % (model.len() + 1), b % (model.len() + 1));
                        let (a, b) = (a.min(b), a.max(b));
                        let got: Vec<_> = deque.range(a..b).copied().collect();
                        let want: Vec<_> = model.range(a..b).copied().collect();
                        prop_assert_eq!(&got, &want);
                        prop_assert_eq!(deque.range(a..b).len(), b - a);
                        let back: Vec<_> = deque.range(a..b).rev().copied().collect();
                        let want_back: Vec<_> = model.range(a..b).rev().copied().collect();
                        prop_assert_eq!(back, want_back);
                    }
                    Op::Clear => {
                        deque.clear();
                        model.clear();
                    }
                }
                deque.release_spare();
                deque.check();
                prop_assert_eq!(deque.len(), model.len());
                prop_assert!(deque.iter().eq(model.iter()));
                // Both ends at once: the iterator must stop where they meet.
                let mut it = deque.iter();
                let mut mixed = Vec::new();
                let mut left = true;
                while let Some(x) = if left { it.next() } else { it.next_back() } {
                    mixed.push(*x);
                    left = !left;
                    prop_assert_eq!(it.len(), model.len() - mixed.len());
                }
                prop_assert_eq!(mixed.len(), model.len());
                for (i, x) in model.iter().enumerate() {
                    prop_assert_eq!(&deque[i], x);
                }
            }
        }
    }

    #[test]
    fn a_long_list_holds_about_what_it_stores() {
        let mut deque = BlockDeque::default();
        for i in 0..1_000_000u32 {
            deque.push_back(i);
        }
        deque.check();
        // A VecDeque of a million would hold 1,048,576; here at most one block's slack.
        assert!(deque.capacity() < 1_000_000 + BLOCK);
        for _ in 0..999_000 {
            deque.pop_front();
        }
        deque.release_spare();
        assert!(
            deque.capacity() <= 1_000 + 2 * BLOCK,
            "{}",
            deque.capacity()
        );
    }

    #[test]
    fn a_one_block_deque_is_a_vecdeque_and_a_pointer() {
        let size = std::mem::size_of::<BlockDeque<u64>>();
        assert_eq!(size, std::mem::size_of::<VecDeque<u64>>() + 8);
    }

    #[test]
    fn a_small_list_stays_small() {
        let mut deque = BlockDeque::default();
        for i in 0..3u64 {
            deque.push_front(i);
        }
        assert!(deque.capacity() <= 4, "{}", deque.capacity());
    }
}
