//! [`BlockDeque`]: a list's elements, kept in blocks of at most [`BLOCK`] elements whose
//! small elements are packed into one byte buffer: the shape of Redis's quicklist (a
//! list of small listpacks).
//!
//! Why blocks: a list is a value on the event loop's thread, and one `VecDeque` grows by
//! reallocating all of itself. Pushing onto a list of ten million elements then
//! allocates and copies hundreds of megabytes in one call, and every client of the loop
//! waits for it. Here a push touches one block, and a drained queue frees its blocks as
//! they empty.
//!
//! Why packed: an element of up to [`SMALL`] bytes costs its bytes plus an 8-byte
//! [`Meta`], where a `Str` per element cost 40 bytes whatever its length (Redis's
//! listpack spends about 2 bytes beside the element). A block keeps its small elements
//! back to back, in order, in the middle of its buffer with room at both ends, so a push
//! at either end copies only the new element; when an end runs out of room the block
//! re-centres (or doubles) its buffer, which stays under 2 × 128 × 64 bytes. A longer
//! element is a shared `Bytes` of its own, as Redis gives a large element a node of its
//! own, so no block holds megabytes to move.
//!
//! Invariants: no block is empty (the first is, only in an empty deque); every block but
//! the first and the last holds exactly [`BLOCK`] elements, so an index splits into a
//! block and an offset with one subtraction and a shift, and the length follows from the
//! ends' lengths and the number of blocks. In a block, the small elements' bytes are
//! `bytes[start..end]`, back to back in element order.

use bytes::Bytes;
use std::collections::VecDeque;
use std::ops::Range;

/// Elements per block: a power of two.
pub(crate) const BLOCK: usize = 128;

/// The longest element packed into a block's buffer; longer ones are shared `Bytes`.
pub(crate) const SMALL: usize = 64;

/// Where an element's bytes are: `bytes[at..at + len]` of its block, or, when `len` is
/// [`BIG`], the block's big slot `at`.
#[derive(Debug, Clone, Copy)]
struct Meta {
    at: u32,
    len: u32,
}

const BIG: u32 = u32::MAX;

/// An element to store: borrowed bytes (copied in), or bytes already owned (a big one is
/// kept without a copy).
#[derive(Debug, Clone)]
pub(crate) enum Element<'a> {
    Borrowed(&'a [u8]),
    Owned(Bytes),
}

impl Element<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Element::Borrowed(b) => b,
            Element::Owned(b) => b,
        }
    }
}

/// Elements longer than [`SMALL`], in slots that keep their numbers while others come
/// and go.
#[derive(Debug, Clone, Default)]
struct Slab {
    slots: Vec<Option<Bytes>>,
    free: Vec<u32>,
}

/// Up to [`BLOCK`] elements; see the module documentation.
#[derive(Debug, Clone, Default)]
struct Block {
    /// The small elements' bytes, in `bytes[start..end]`.
    bytes: Vec<u8>,
    start: u32,
    end: u32,
    /// Per element, in order.
    meta: VecDeque<Meta>,
    /// The big elements, when there are any.
    big: Option<Box<Slab>>,
}

impl Block {
    fn len(&self) -> usize {
        self.meta.len()
    }

    fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    fn get(&self, o: usize) -> &[u8] {
        let m = self.meta[o];
        if m.len == BIG {
            let slab = self.big.as_ref().expect("a big element has a slab");
            slab.slots[m.at as usize].as_deref().expect("a live slot")
        } else {
            &self.bytes[m.at as usize..(m.at + m.len) as usize]
        }
    }

    /// Element `o` to store elsewhere: a small one borrowed, a big one shared.
    fn element(&self, o: usize) -> Element<'_> {
        let m = self.meta[o];
        if m.len == BIG {
            let slab = self.big.as_ref().expect("a big element has a slab");
            Element::Owned(slab.slots[m.at as usize].clone().expect("a live slot"))
        } else {
            Element::Borrowed(self.get(o))
        }
    }

    fn push(&mut self, x: Element<'_>, back: bool) {
        let len = x.as_slice().len();
        let m = if len > SMALL {
            let bytes = match x {
                Element::Owned(b) => b,
                Element::Borrowed(b) => Bytes::copy_from_slice(b),
            };
            Meta {
                at: self.put_big(bytes),
                len: BIG,
            }
        } else if back {
            if self.bytes.len() - (self.end as usize) < len {
                self.make_room(0, len);
            }
            let at = self.end as usize;
            self.bytes[at..at + len].copy_from_slice(x.as_slice());
            self.end += len as u32;
            Meta {
                at: at as u32,
                len: len as u32,
            }
        } else {
            if (self.start as usize) < len {
                self.make_room(len, 0);
            }
            let at = self.start as usize - len;
            self.bytes[at..at + len].copy_from_slice(x.as_slice());
            self.start = at as u32;
            Meta {
                at: at as u32,
                len: len as u32,
            }
        };
        if back {
            self.meta.push_back(m);
        } else {
            self.meta.push_front(m);
        }
    }

    /// Moves the packed bytes so that `front` bytes fit before them and `back` after,
    /// in the same buffer when it is at least twice what is needed, else in one twice
    /// that size. Most of the spare room goes to the end that asked: a block pushed at
    /// one end keeps being pushed there.
    fn make_room(&mut self, front: usize, back: usize) {
        let live = (self.end - self.start) as usize;
        let need = live + front + back;
        let cap = if self.bytes.len() >= 2 * need && self.bytes.len() >= 16 {
            self.bytes.len()
        } else {
            (2 * need).max(16)
        };
        let spare = cap - need;
        let new_start = front
            + match (front > 0, back > 0) {
                (true, false) => spare * 3 / 4,
                (false, true) => spare / 4,
                _ => spare / 2,
            };
        self.move_packed(cap, new_start);
    }

    /// Moves the packed bytes to `new_start` of a buffer of `cap` bytes: this one when it
    /// is that size, else a new one.
    fn move_packed(&mut self, cap: usize, new_start: usize) {
        let (start, end) = (self.start as usize, self.end as usize);
        if cap == self.bytes.len() {
            self.bytes.copy_within(start..end, new_start);
        } else {
            let mut bytes = vec![0; cap];
            bytes[new_start..new_start + end - start].copy_from_slice(&self.bytes[start..end]);
            self.bytes = bytes;
        }
        self.rebase(new_start);
    }

    /// Points the small elements' positions at `new_start`, where their bytes have just
    /// been moved to.
    fn rebase(&mut self, new_start: usize) {
        let live = self.end - self.start;
        let (old, new) = (self.start, new_start as u32);
        for m in self.meta.iter_mut().filter(|m| m.len != BIG) {
            m.at = m.at - old + new;
        }
        self.start = new;
        self.end = new + live;
    }

    /// Shrinks the buffer to the packed bytes: for a block that is full and will stay
    /// so, no longer at an end.
    fn fit(&mut self) {
        let live = (self.end - self.start) as usize;
        if self.bytes.len() > live {
            self.move_packed(live, 0);
        }
    }

    fn put_big(&mut self, bytes: Bytes) -> u32 {
        let slab = self.big.get_or_insert_with(Default::default);
        match slab.free.pop() {
            Some(i) => {
                slab.slots[i as usize] = Some(bytes);
                i
            }
            None => {
                slab.slots.push(Some(bytes));
                u32::try_from(slab.slots.len() - 1).expect("at most BLOCK slots")
            }
        }
    }

    fn take_big(&mut self, i: u32) -> Bytes {
        let slab = self.big.as_mut().expect("a big element has a slab");
        let bytes = slab.slots[i as usize].take().expect("a live slot");
        slab.free.push(i);
        if slab.free.len() == slab.slots.len() {
            self.big = None;
        }
        bytes
    }

    /// Removes the element at an end; returns it when `keep` (else it is only dropped).
    fn pop(&mut self, back: bool, keep: bool) -> Option<Bytes> {
        let m = if back {
            self.meta.pop_back()?
        } else {
            self.meta.pop_front()?
        };
        if m.len == BIG {
            return Some(self.take_big(m.at));
        }
        let range = m.at as usize..(m.at + m.len) as usize;
        let bytes = if keep {
            Bytes::copy_from_slice(&self.bytes[range])
        } else {
            Bytes::new()
        };
        if back {
            self.end = m.at;
        } else {
            self.start = m.at + m.len;
        }
        Some(bytes)
    }

    /// A block of `items`, in order, its buffer exactly their packed bytes: a block
    /// rebuilt in the middle of a list (LSET, LINSERT, LREM) keeps no room to grow.
    fn of<'a>(items: impl IntoIterator<Item = Element<'a>>) -> Self {
        let items: Vec<Element<'a>> = items.into_iter().collect();
        let packed = items
            .iter()
            .map(|x| x.as_slice().len())
            .filter(|&len| len <= SMALL)
            .sum();
        let mut block = Self {
            bytes: vec![0; packed],
            ..Self::default()
        };
        for x in items {
            block.push(x, true);
        }
        block
    }

    /// Pushes `x` at the front of a block that stays in the middle of the list (an
    /// insert's carry): the packed bytes move within the buffer when it has the room,
    /// else into one just large enough, never one twice the size.
    fn push_front_exact(&mut self, x: Element<'_>) {
        let len = x.as_slice().len();
        if len <= SMALL && (self.start as usize) < len {
            let need = (self.end - self.start) as usize + len;
            self.move_packed(self.bytes.len().max(need), len);
        }
        self.push(x, false);
    }

    /// Pushes `x` at the back of a block that stays in the middle of the list (a
    /// removal's carry), like [`Block::push_front_exact`]: never into a buffer twice the
    /// size.
    fn push_back_exact(&mut self, x: Element<'_>) {
        let len = x.as_slice().len();
        if len <= SMALL && self.bytes.len() - (self.end as usize) < len {
            let need = (self.end - self.start) as usize + len;
            self.move_packed(self.bytes.len().max(need), 0);
        }
        self.push(x, true);
    }

    /// Removes the element at `o` (below `len`), by rebuilding the block.
    fn remove(&mut self, o: usize) {
        *self = Self::of((0..self.len()).filter(|&k| k != o).map(|k| self.element(k)));
    }

    fn set(&mut self, o: usize, x: &[u8]) {
        let m = self.meta[o];
        if m.len != BIG && m.len as usize == x.len() {
            self.bytes[m.at as usize..(m.at + m.len) as usize].copy_from_slice(x);
        } else if m.len == BIG && x.len() > SMALL {
            let slab = self.big.as_mut().expect("a big element has a slab");
            slab.slots[m.at as usize] = Some(Bytes::copy_from_slice(x));
        } else {
            *self = Self::of((0..self.len()).map(|k| match k == o {
                true => Element::Borrowed(x),
                false => self.element(k),
            }));
        }
    }

    /// Inserts `x` at `o` (at most `len`), by rebuilding the block.
    fn insert(&mut self, o: usize, x: Element<'_>) {
        let mut items: Vec<Element<'_>> = (0..self.len()).map(|k| self.element(k)).collect();
        items.insert(o, x);
        *self = Self::of(items);
    }

    /// Keeps the elements `keep` accepts; whether any was removed.
    fn retain(&mut self, keep: &mut impl FnMut(&[u8]) -> bool) -> bool {
        let kept: Vec<usize> = (0..self.len()).filter(|&k| keep(self.get(k))).collect();
        if kept.len() == self.len() {
            return false;
        }
        *self = Self::of(kept.into_iter().map(|k| self.element(k)));
        true
    }

    fn truncate(&mut self, n: usize) {
        while self.len() > n {
            self.pop(true, false);
        }
    }

    fn remove_front(&mut self, n: usize) {
        for _ in 0..n.min(self.len()) {
            self.pop(false, false);
        }
    }

    /// Gives back a buffer or element index that has shrunk to a quarter of its size.
    fn release_spare(&mut self) {
        let live = (self.end - self.start) as usize;
        if self.bytes.len() > 64 && live < self.bytes.len() / 4 {
            let cap = (2 * live).max(16);
            self.move_packed(cap, (cap - live) / 2);
        }
        if self.meta.capacity() > 16 && self.meta.len() < self.meta.capacity() / 4 {
            self.meta.shrink_to(self.meta.len() * 2);
        }
    }

    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.bytes.len() + self.meta.capacity() * std::mem::size_of::<Meta>()
    }
}

/// A list's elements; see the module documentation.
#[derive(Clone, Default)]
pub(crate) struct BlockDeque {
    /// Block 0, held inline: a list of up to [`BLOCK`] elements (most lists) is this one
    /// block. Empty only when the deque is.
    head: Block,
    /// Blocks 1 and on, boxed so that a one-block list pays a pointer for them. The
    /// length is not stored: every block but the first and the last is full, so it
    /// follows from the two ends' lengths and the count.
    #[expect(
        clippy::box_collection,
        reason = "8 bytes where the VecDeque itself would be 32 in every short list"
    )]
    rest: Option<Box<VecDeque<Block>>>,
}

impl BlockDeque {
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

    /// Blocks 1 and on.
    fn rest_iter(&self) -> impl Iterator<Item = &Block> {
        self.rest.iter().flat_map(|rest| rest.iter())
    }

    /// Blocks after the head.
    fn rest_count(&self) -> usize {
        self.rest.as_ref().map_or(0, |rest| rest.len())
    }

    /// Blocks 1 and on, for adding one.
    fn rest_mut(&mut self) -> &mut VecDeque<Block> {
        self.rest.get_or_insert_with(Default::default)
    }

    fn block(&self, k: usize) -> &Block {
        match (k, &self.rest) {
            (0, _) => &self.head,
            (_, Some(rest)) => &rest[k - 1],
            (_, None) => panic!("block {k} of a one-block deque"),
        }
    }

    fn block_mut(&mut self, k: usize) -> &mut Block {
        match (k, &mut self.rest) {
            (0, _) => &mut self.head,
            (_, Some(rest)) => &mut rest[k - 1],
            (_, None) => panic!("block {k} of a one-block deque"),
        }
    }

    /// The last block (the head when it is the only one).
    fn last_mut(&mut self) -> &mut Block {
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

    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        (i < self.len()).then(|| self.at(i))
    }

    /// Element `i`, known to be below the length.
    fn at(&self, i: usize) -> &[u8] {
        let (b, o) = self.locate(i);
        self.block(b).get(o)
    }

    /// Replaces element `i`; `false` when there is none.
    pub(crate) fn set(&mut self, i: usize, x: &[u8]) -> bool {
        if i >= self.len() {
            return false;
        }
        let (b, o) = self.locate(i);
        self.block_mut(b).set(o, x);
        true
    }

    pub(crate) fn push_back(&mut self, x: Element<'_>) {
        let last = self.last_mut();
        if last.len() < BLOCK {
            last.push(x, true);
        } else {
            // The full block is now in the middle: it gives back its room to grow.
            last.fit();
            self.rest_mut().push_back(Block::of([x]));
        }
    }

    pub(crate) fn push_front(&mut self, x: Element<'_>) {
        if self.head.len() < BLOCK {
            self.head.push(x, false);
        } else {
            let mut old = std::mem::replace(&mut self.head, Block::of([x]));
            old.fit();
            self.rest_mut().push_front(old);
        }
    }

    pub(crate) fn pop_back(&mut self) -> Option<Bytes> {
        if let Some(rest) = self.rest.as_deref_mut() {
            if let Some(last) = rest.back_mut() {
                let x = last.pop(true, true);
                if last.is_empty() {
                    rest.pop_back();
                }
                return x;
            }
        }
        self.head.pop(true, true)
    }

    pub(crate) fn pop_front(&mut self) -> Option<Bytes> {
        let x = self.head.pop(false, true)?;
        self.after_head_shrank();
        Some(x)
    }

    /// An emptied head is replaced by the next block, if any.
    fn after_head_shrank(&mut self) {
        if self.head.is_empty() {
            self.head = self
                .rest
                .as_deref_mut()
                .and_then(VecDeque::pop_front)
                .unwrap_or_default();
        }
    }

    /// Inserts `x` so that it becomes element `at` (`at <= len`). The shorter side of
    /// `at` shifts by one place, each full block on the way passing one element on to its
    /// neighbour: O(min(at, len - at)), so LINSERT near either end is cheap on any length.
    ///
    /// # Panics
    /// When `at > len`.
    pub(crate) fn insert(&mut self, at: usize, x: &[u8]) {
        let len = self.len();
        assert!(at <= len, "insert at {at} past the end ({len})");
        if at == len {
            return self.push_back(Element::Borrowed(x));
        }
        if at == 0 {
            return self.push_front(Element::Borrowed(x));
        }
        if at < len / 2 {
            return self.insert_shifting_front(at, x);
        }
        let (mut b, offset) = self.locate(at);
        let mut carry = Element::Borrowed(x);
        let mut offset = Some(offset);
        loop {
            let block = self.block_mut(b);
            let spill = if block.len() == BLOCK {
                block.pop(true, true).map(Element::Owned)
            } else {
                None
            };
            // A full block gave up its last element first, so `o` (below the old
            // length) is at most the new one.
            match offset.take() {
                Some(o) => block.insert(o, carry),
                None => block.push_front_exact(carry),
            }
            match spill {
                None => break,
                Some(s) if b == self.rest_count() => {
                    self.rest_mut().push_back(Block::of([s]));
                    break;
                }
                Some(s) => {
                    carry = s;
                    b += 1;
                }
            }
        }
    }

    /// Removes element `i`. The shorter side of it shifts by one place, each block on
    /// the way passing one element on to its neighbour so the middle blocks stay full:
    /// O(min(i, len - i)), so a removal near either end is cheap on any length (LREM
    /// with a count, which Redis also ends at its count-th match).
    ///
    /// # Panics
    /// When `i >= len`.
    pub(crate) fn remove(&mut self, i: usize) {
        let len = self.len();
        assert!(i < len, "remove at {i} past the end ({len})");
        let (b, o) = self.locate(i);
        self.block_mut(b).remove(o);
        if i < len / 2 {
            // The elements before `i` move one place towards the tail.
            for j in (0..b).rev() {
                self.pass_last_on(j);
            }
            self.after_head_shrank();
        } else {
            // The elements after `i` move one place towards the head.
            let last = self.rest_count();
            for j in b + 1..=last {
                self.pass_first_back(j);
            }
            if last > 0 && self.block(last).is_empty() {
                self.rest_mut().pop_back();
            } else if last == 0 {
                self.after_head_shrank();
            }
        }
    }

    /// Moves block `j`'s first element to the back of block `j - 1` (a carry towards
    /// the head; the receiving block gets no room to spare).
    fn pass_first_back(&mut self, j: usize) {
        let x = self
            .block_mut(j)
            .pop(false, true)
            .expect("no block is empty");
        self.block_mut(j - 1).push_back_exact(Element::Owned(x));
    }

    /// Moves block `j`'s last element to the front of block `j + 1` (a carry towards
    /// the tail).
    fn pass_last_on(&mut self, j: usize) {
        let x = self
            .block_mut(j)
            .pop(true, true)
            .expect("no block is empty");
        self.block_mut(j + 1).push_front_exact(Element::Owned(x));
    }

    /// [`BlockDeque::insert`] in the front half: the elements before `at` move one place
    /// towards the head, each block passing its first element to the back of the one
    /// before; the head takes one more, and a head that overflows becomes a full block
    /// behind a new head of one element.
    fn insert_shifting_front(&mut self, at: usize, x: &[u8]) {
        let (b, o) = self.locate(at);
        if b == 0 {
            self.head.insert(o, Element::Borrowed(x));
        } else {
            for j in 1..b {
                self.pass_first_back(j);
            }
            if o == 0 {
                self.block_mut(b - 1).push_back_exact(Element::Borrowed(x));
            } else {
                self.pass_first_back(b);
                self.block_mut(b).insert(o - 1, Element::Borrowed(x));
            }
        }
        if self.head.len() > BLOCK {
            let first = self.head.pop(false, true).expect("a full head");
            let mut old = std::mem::replace(&mut self.head, Block::of([Element::Owned(first)]));
            old.fit();
            self.rest_mut().push_front(old);
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
            let k = left.min(self.head.len());
            self.head.remove_front(k);
            left -= k;
            self.after_head_shrank();
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Keeps the elements `keep` accepts, in order; `keep` sees every element once, head
    /// first. Blocks are refilled afterwards only when something was removed.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let mut removed = self.head.retain(&mut keep);
        for block in self.rest.iter_mut().flat_map(|rest| rest.iter_mut()) {
            removed |= block.retain(&mut keep);
        }
        if removed {
            let old = std::mem::take(self);
            for block in std::iter::once(&old.head).chain(old.rest_iter()) {
                for k in 0..block.len() {
                    self.push_back(block.element(k));
                }
            }
        }
    }

    /// Gives back the memory of an end block that has shrunk to a quarter of what it
    /// can hold, and of the block index; a drained list keeps at most about twice what
    /// it holds.
    pub(crate) fn release_spare(&mut self) {
        if let Some(rest) = self.rest.as_deref_mut() {
            if rest.is_empty() {
                self.rest = None;
            } else if rest.capacity() > 16 && rest.len() < rest.capacity() / 4 {
                rest.shrink_to(rest.len() * 2);
            }
        }
        self.head.release_spare();
        if let Some(last) = self.rest.as_deref_mut().and_then(VecDeque::back_mut) {
            last.release_spare();
        }
    }

    /// The elements at the positions in `range`, head first.
    ///
    /// # Panics
    /// When the range is reversed or runs past the end.
    pub(crate) fn range(&self, range: Range<usize>) -> Iter<'_> {
        let total = self.len();
        assert!(
            range.start <= range.end && range.end <= total,
            "range {range:?} outside 0..{total}"
        );
        Iter {
            deque: self,
            front: range.start,
            back: range.end,
            cursor: None,
        }
    }

    pub(crate) fn iter(&self) -> Iter<'_> {
        self.range(0..self.len())
    }

    /// Bytes the blocks' buffers and element indexes hold, and the block index (what a
    /// drained list keeps).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        let index = self
            .rest
            .as_ref()
            .map_or(0, |rest| rest.capacity() * std::mem::size_of::<Block>());
        self.head.heap_bytes() + self.rest_iter().map(Block::heap_bytes).sum::<usize>() + index
    }
}

impl<'a> Extend<Element<'a>> for BlockDeque {
    fn extend<I: IntoIterator<Item = Element<'a>>>(&mut self, items: I) {
        for x in items {
            self.push_back(x);
        }
    }
}

impl<'a> FromIterator<Element<'a>> for BlockDeque {
    fn from_iter<I: IntoIterator<Item = Element<'a>>>(items: I) -> Self {
        let mut deque = Self::default();
        deque.extend(items);
        deque
    }
}

/// Equal when the elements are, whatever the blocks' boundaries.
impl PartialEq for BlockDeque {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for BlockDeque {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(bytes::Bytes::copy_from_slice))
            .finish()
    }
}

/// Iterator over a [`BlockDeque`]'s elements (or a range of them), from both ends.
pub(crate) struct Iter<'a> {
    deque: &'a BlockDeque,
    /// The next position from the front, and one past the next from the back.
    front: usize,
    back: usize,
    /// The block of `front` and its offset there, once known: going forward, the next
    /// element is the block's next until the block ends.
    cursor: Option<(&'a Block, usize)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.front == self.back {
            return None;
        }
        let (block, offset) = match self.cursor {
            Some((block, offset)) if offset < block.len() => (block, offset),
            _ => {
                let (b, offset) = self.deque.locate(self.front);
                (self.deque.block(b), offset)
            }
        };
        self.front += 1;
        self.cursor = Some((block, offset + 1));
        Some(block.get(offset))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        Some(self.deque.at(self.back))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    impl BlockDeque {
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
            for (i, block) in blocks.iter().enumerate() {
                assert!(i == 0 || !block.is_empty(), "block {i} is empty");
                assert!(block.len() <= BLOCK, "block {i} holds {}", block.len());
                if i > 0 && i + 1 < blocks.len() {
                    assert_eq!(block.len(), BLOCK, "middle block {i} not full");
                }
                // Small elements back to back, in order, in bytes[start..end].
                let mut at = block.start;
                for m in block.meta.iter().filter(|m| m.len != BIG) {
                    assert_eq!(m.at, at, "block {i}: packed bytes out of order");
                    at += m.len;
                }
                assert_eq!(at, block.end, "block {i}: packed bytes end");
                assert!(block.end as usize <= block.bytes.len());
                let bigs = block.meta.iter().filter(|m| m.len == BIG).count();
                let live = block
                    .big
                    .as_ref()
                    .map_or(0, |s| s.slots.len() - s.free.len());
                assert_eq!(bigs, live, "block {i}: big slots");
            }
        }
    }

    /// An element of `len` bytes, all `x`: lengths on both sides of [`SMALL`].
    fn element(x: u8, len: usize) -> Vec<u8> {
        vec![x; len]
    }

    #[derive(Debug, Clone)]
    enum Op {
        PushBack(u8, usize, usize),
        PushFront(u8, usize, usize),
        PopBack(usize),
        PopFront(usize),
        Insert(usize, u8, usize),
        Set(usize, u8, usize),
        Truncate(usize),
        RemoveFront(usize),
        RetainNot(u8),
        Remove(usize, usize),
        Range(usize, usize),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Counts up to a few blocks, so pushes and pops cross block boundaries; lengths
        // of 0 to 80 bytes, packed and big.
        let len = prop_oneof![0usize..4, 60usize..70, 0usize..81];
        prop_oneof![
            (0u8..8, len.clone(), 1usize..400).prop_map(|(x, l, n)| Op::PushBack(x, l, n)),
            (0u8..8, len.clone(), 1usize..400).prop_map(|(x, l, n)| Op::PushFront(x, l, n)),
            (1usize..300).prop_map(Op::PopBack),
            (1usize..300).prop_map(Op::PopFront),
            (any::<usize>(), 0u8..8, len.clone()).prop_map(|(i, x, l)| Op::Insert(i, x, l)),
            (any::<usize>(), 0u8..8, len).prop_map(|(i, x, l)| Op::Set(i, x, l)),
            any::<usize>().prop_map(Op::Truncate),
            (0usize..600).prop_map(Op::RemoveFront),
            (0u8..8).prop_map(Op::RetainNot),
            (any::<usize>(), 1usize..6).prop_map(|(i, n)| Op::Remove(i, n)),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Range(a, b)),
            Just(Op::Clear),
        ]
    }

    proptest! {
        /// Every operation agrees with a `VecDeque` of byte strings, and the invariants
        /// hold after each.
        #[test]
        fn matches_vecdeque(ops in prop::collection::vec(op(), 1..60)) {
            let mut deque = BlockDeque::default();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::PushBack(x, len, n) => for k in 0..n {
                        let v = element(x.wrapping_add(k as u8) % 8, (len + k) % 81);
                        deque.push_back(Element::Borrowed(&v));
                        model.push_back(v);
                    },
                    Op::PushFront(x, len, n) => for k in 0..n {
                        let v = element(x.wrapping_add(k as u8) % 8, (len + k) % 81);
                        // Owned and borrowed both.
                        deque.push_front(Element::Owned(Bytes::from(v.clone())));
                        model.push_front(v);
                    },
                    Op::PopBack(n) => for _ in 0..n {
                        prop_assert_eq!(deque.pop_back().map(|b| b.to_vec()), model.pop_back());
                    },
                    Op::PopFront(n) => for _ in 0..n {
                        prop_assert_eq!(deque.pop_front().map(|b| b.to_vec()), model.pop_front());
                    },
                    Op::Insert(i, x, len) => {
                        let at = i % (model.len() + 1);
                        let v = element(x, len);
                        deque.insert(at, &v);
                        model.insert(at, v);
                    }
                    Op::Set(i, x, len) => {
                        let v = element(x, len);
                        if !model.is_empty() {
                            let at = i % model.len();
                            prop_assert!(deque.set(at, &v));
                            model[at] = v.clone();
                        }
                        prop_assert!(!deque.set(model.len(), &v));
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
                        deque.retain(|v| { seen.push(v.to_vec()); v.first() != Some(&x) });
                        prop_assert!(seen.iter().eq(model.iter()), "retain visits in order");
                        model.retain(|v| v.first() != Some(&x));
                    }
                    Op::Remove(i, n) => for k in 0..n {
                        if model.is_empty() {
                            break;
                        }
                        // Both halves: near the head, near the tail, anywhere.
                        let at = match k % 3 {
                            0 => i % model.len(),
                            1 => (i % 3).min(model.len() - 1),
                            _ => model.len() - 1 - (i % 3).min(model.len() - 1),
                        };
                        deque.remove(at);
                        model.remove(at);
                        deque.check();
                    },
                    Op::Range(a, b) => {
                        let (a, b) = (a % (model.len() + 1), b % (model.len() + 1));
                        let (a, b) = (a.min(b), a.max(b));
                        prop_assert!(deque.range(a..b).eq(model.range(a..b).map(Vec::as_slice)));
                        prop_assert_eq!(deque.range(a..b).len(), b - a);
                        prop_assert!(deque.range(a..b).rev().eq(model.range(a..b).rev().map(Vec::as_slice)));
                    }
                    Op::Clear => {
                        deque.clear();
                        model.clear();
                    }
                }
                deque.release_spare();
                deque.check();
                prop_assert_eq!(deque.len(), model.len());
                prop_assert!(deque.iter().eq(model.iter().map(Vec::as_slice)));
                // Both ends at once: the iterator must stop where they meet.
                let mut it = deque.iter();
                let mut taken = 0;
                let mut left = true;
                while let Some(x) = if left { it.next() } else { it.next_back() } {
                    let want = if left { &model[taken / 2] } else { &model[model.len() - 1 - taken / 2] };
                    prop_assert_eq!(x, want.as_slice());
                    taken += 1;
                    left = !left;
                    prop_assert_eq!(it.len(), model.len() - taken);
                }
                prop_assert_eq!(taken, model.len());
            }
        }
    }

    #[test]
    fn small_elements_cost_their_bytes_and_a_meta() {
        let mut deque = BlockDeque::default();
        for i in 0..1_000_000u32 {
            deque.push_back(Element::Borrowed(&i.to_le_bytes()[..3]));
        }
        deque.check();
        // 3 bytes and an 8-byte Meta each, with at most the buffers' slack.
        let per_element = deque.heap_bytes() as f64 / 1e6;
        assert!(per_element < 16.0, "{per_element} bytes per element");
        for _ in 0..999_000 {
            deque.pop_front();
        }
        deque.release_spare();
        assert!(
            deque.heap_bytes() < 64 * 1024,
            "{} kept",
            deque.heap_bytes()
        );
    }

    #[test]
    fn an_insert_or_set_leaves_the_middle_blocks_tight() {
        let mut deque = BlockDeque::default();
        for i in 0..2_000u32 {
            deque.push_back(Element::Borrowed(&[i as u8; 64]));
        }
        // LINSERT near the head carries an element through every later block; LSET of
        // another length rebuilds a block.
        deque.insert(1, &[7; 64]);
        deque.insert(3, &[8; 2]);
        assert!(deque.set(500, &[1; 3]));
        // LREM with a count: removals near each end shift that side by one.
        deque.remove(2);
        deque.remove(deque.len() - 3);
        deque.remove(700);
        deque.remove(1_300);
        deque.check();
        for block in deque.rest_iter().take(deque.rest_count() - 1) {
            let live = (block.end - block.start) as usize;
            assert!(
                block.bytes.len() <= live + SMALL,
                "{} bytes held for {live}",
                block.bytes.len()
            );
        }
    }

    #[test]
    fn a_removal_near_an_end_touches_only_that_side() {
        // 4,000 blocks; a removal a few elements from either end moves one element per
        // block it passes, here none but the end block's.
        let mut deque = BlockDeque::default();
        for i in 0..(4_000 * BLOCK) as u32 {
            deque.push_back(Element::Borrowed(&i.to_le_bytes()));
        }
        let buffers = |deque: &BlockDeque| -> Vec<*const u8> {
            let middle = deque.rest_iter().skip(1).take(3_000);
            middle.map(|b| b.bytes.as_ptr()).collect()
        };
        let before = buffers(&deque);
        deque.remove(5);
        deque.remove(deque.len() - 5);
        assert_eq!(before, buffers(&deque), "middle blocks were rebuilt");
        deque.check();
        assert_eq!(deque.get(5), Some(&6u32.to_le_bytes()[..]));
        assert_eq!(deque.len(), 4_000 * BLOCK - 2);
    }

    #[test]
    fn a_queue_at_one_end_moves_no_bytes_but_its_own() {
        // LPUSH + RPOP through a one-block list: the buffer stays small.
        let mut deque = BlockDeque::default();
        for i in 0..100_000u32 {
            deque.push_front(Element::Borrowed(&i.to_le_bytes()));
            if deque.len() > 50 {
                assert_eq!(
                    deque.pop_back().as_deref(),
                    Some(&(i - 50).to_le_bytes()[..])
                );
            }
        }
        deque.check();
        assert!(deque.heap_bytes() < 4096, "{}", deque.heap_bytes());
    }
}
