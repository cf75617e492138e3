//! Jump consistent hash (Lamping & Veach 2014, arXiv:1406.2294) and a node set over it.
//!
//! [`jump_consistent_hash`] is the paper's function: buckets `0..n`, and going from `n`
//! to `n + 1` buckets moves exactly the keys that land in bucket `n`. It has no notion of
//! removing a bucket other than the last, nor of weights, so [`JumpHash`] adds both:
//!
//! * a node of weight `w` owns `w` buckets ("slots");
//! * removing a node leaves its slots empty (tombstones). A key whose bucket is empty
//!   re-jumps with the next hash of a fixed per-key sequence until it lands on a live slot,
//!   so only the removed node's keys move, and they spread evenly over the rest;
//! * adding a node fills empty slots first, then appends slots. Either way a key only
//!   moves if its sequence now reaches one of the new slots first, i.e. onto the new node.
//!
//! Invariant: `slots.len()` never shrinks (dropping a trailing empty slot would change
//! where the keys re-jumping from it land). Lookups cost one jump per empty slot met, about
//! `slots / live slots` jumps on average, so a set that keeps churning is best rebuilt
//! from scratch at a quiet moment.

use crate::hash::{hash_key, mix64};
use crate::node::NodeSet;
use crate::{Error, Node, Placement};

/// The bucket in `0..buckets` for `key`: the C++ function printed in the paper.
///
/// # Panics
///
/// Panics if `buckets` is 0.
#[inline]
pub fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    assert!(
        buckets > 0,
        "jump_consistent_hash needs at least one bucket"
    );
    let buckets = i64::from(buckets);
    let (mut b, mut j) = (-1_i64, 0_i64);
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // Same arithmetic as the paper: (b + 1) * (2^31 / ((key >> 33) + 1)) in doubles.
        j = ((b + 1) as f64 * ((1_i64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// Weighted jump consistent hash over named nodes; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct JumpHash {
    nodes: NodeSet,
    /// Bucket → index into `nodes`, `None` for the slot of a removed node.
    slots: Vec<Option<u32>>,
    live_slots: usize,
}

/// After this many jumps onto empty slots a lookup gives up on the random sequence and
/// scans for the next live slot, so a lookup is bounded even in a pathological set.
const MAX_REJUMPS: usize = 1024;

impl JumpHash {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set over `nodes`, added in order.
    ///
    /// # Errors
    ///
    /// As [`Placement::add_node`], for the first node that fails.
    pub fn from_nodes(nodes: impl IntoIterator<Item = Node>) -> Result<Self, Error> {
        let mut set = Self::new();
        for node in nodes {
            set.add_node(node)?;
        }
        Ok(set)
    }

    /// The number of buckets, including the empty slots of removed nodes.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The index into [`Placement::nodes`] of the node for a key already hashed with
    /// [`hash_key`], or `None` when there are no nodes.
    #[inline]
    pub fn node_index_for_hash(&self, hash: u64) -> Option<usize> {
        self.probe(hash).next()
    }

    /// The live node indices a key's sequence of jumps visits, with repeats.
    fn probe(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let slot_count = self.slots.len() as u32;
        let live = self.live_slots > 0;
        let mut state = hash;
        let mut attempts = 0_usize;
        let mut scan: Option<usize> = None;
        std::iter::from_fn(move || {
            if !live {
                return None;
            }
            loop {
                if let Some(s) = scan.as_mut() {
                    // Fallback: walk the slots in order from the last jump's bucket.
                    *s = (*s + 1) % self.slots.len();
                    if let Some(node) = self.slots[*s] {
                        return Some(node as usize);
                    }
                    continue;
                }
                let bucket = jump_consistent_hash(state, slot_count) as usize;
                attempts += 1;
                // The next key of the sequence; mix64 is a bijection, so the sequence
                // does not fall into a short cycle.
                state = mix64(state ^ 0x9E37_79B9_7F4A_7C15);
                if attempts > MAX_REJUMPS {
                    scan = Some(bucket);
                }
                if let Some(node) = self.slots[bucket] {
                    return Some(node as usize);
                }
            }
        })
    }
}

impl Placement for JumpHash {
    fn add_node(&mut self, node: Node) -> Result<(), Error> {
        let weight = node.weight() as usize;
        let index = self.nodes.insert(node)? as u32;
        let mut needed = weight;
        for slot in self.slots.iter_mut().filter(|s| s.is_none()) {
            if needed == 0 {
                break;
            }
            *slot = Some(index);
            needed -= 1;
        }
        self.slots.extend(std::iter::repeat_n(Some(index), needed));
        self.live_slots += weight;
        Ok(())
    }

    fn remove_node(&mut self, name: &str) -> Result<Node, Error> {
        let (index, node) = self.nodes.remove(name)?;
        let index = index as u32;
        for slot in &mut self.slots {
            match *slot {
                Some(i) if i == index => *slot = None,
                Some(i) if i > index => *slot = Some(i - 1),
                _ => {}
            }
        }
        self.live_slots -= node.weight() as usize;
        Ok(node)
    }

    fn nodes(&self) -> &[Node] {
        self.nodes.as_slice()
    }

    #[inline]
    fn node_for(&self, key: &[u8]) -> Option<&Node> {
        self.node_index_for_hash(hash_key(key))
            .map(|i| self.nodes.get(i))
    }

    fn nodes_for(&self, key: &[u8], count: usize) -> Vec<&Node> {
        let count = count.min(self.nodes.len());
        let mut found: Vec<usize> = Vec::with_capacity(count);
        // Each new distinct node needs fewer than `slots` draws on average; the scan
        // fallback inside `probe` guarantees progress, so bound the draws generously.
        let budget = (count + 1) * (self.slots.len() + MAX_REJUMPS) * 4;
        for node in self.probe(hash_key(key)).take(budget) {
            if found.len() == count {
                break;
            }
            if !found.contains(&node) {
                found.push(node);
            }
        }
        // Unreachable in practice; keeps the "min(count, len)" contract unconditional.
        for i in 0..self.nodes.len() {
            if found.len() == count {
                break;
            }
            if !found.contains(&i) {
                found.push(i);
            }
        }
        found.into_iter().map(|i| self.nodes.get(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "at least one bucket")]
    fn zero_buckets_panics() {
        jump_consistent_hash(1, 0);
    }

    #[test]
    fn weight_takes_that_many_slots_and_reuses_empty_ones() {
        let mut set = JumpHash::from_nodes([Node::weighted("a", 2), Node::new("b")]).unwrap();
        assert_eq!(set.slot_count(), 3);
        set.remove_node("a").unwrap();
        assert_eq!(set.slot_count(), 3);
        set.add_node(Node::weighted("c", 3)).unwrap();
        assert_eq!(set.slot_count(), 4);
        assert_eq!(set.node_for(b"x").map(|n| n.weight() > 0), Some(true));
    }

    #[test]
    fn empty_set_places_nothing() {
        let mut set = JumpHash::from_nodes([Node::new("a")]).unwrap();
        set.remove_node("a").unwrap();
        assert!(set.node_for(b"k").is_none());
        assert!(set.nodes_for(b"k", 2).is_empty());
    }
}
