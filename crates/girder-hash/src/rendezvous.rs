//! Weighted rendezvous (highest-random-weight) hashing.
//!
//! Every node scores every key; the key goes to the highest score. The score of node `i`
//! with weight `w_i` is `-w_i / ln(h)`, `h` uniform in (0, 1) from hashing the key with the
//! node (the logarithmic method, Schindelhauer & Schomaker 2005; "Weighted distributed hash
//! tables"), which gives node `i` exactly a `w_i / W` share. A node's scores do not depend
//! on the other nodes, so adding a node only takes keys to it and removing one only moves
//! its own keys: minimal disruption, at O(n) per lookup.
//!
//! When all weights are equal the score is a monotonic function of `h`, so the lookup
//! compares the raw hashes and skips the logarithm. Both paths rank by the same 52 bits of
//! `h`; they can only disagree where `ln` rounds two different draws near the top to the
//! same value, which the unit test below does not meet in 2,000 keys.

use crate::hash::{hash_key, mix64, name_seed};
use crate::node::NodeSet;
use crate::{Error, Node, Placement};

/// Weighted rendezvous hashing; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Rendezvous {
    nodes: NodeSet,
    /// Per-node seed, derived from the name so scores survive reordering.
    seeds: Vec<u64>,
    /// Whether every node has the same weight (the fast path applies).
    uniform: bool,
}

/// Salt for node seeds, so a node's seed differs from [`hash_key`] of its name.
const SEED_SALT: u64 = 0x6869_6768_6573_7421;

impl Rendezvous {
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

    /// The index into [`Placement::nodes`] of the node for a key already hashed with
    /// [`hash_key`], or `None` when there are no nodes.
    #[inline]
    pub fn node_index_for_hash(&self, hash: u64) -> Option<usize> {
        if self.uniform {
            // Ties (probability 2^-52 per pair) go to the earlier node, as in `score`.
            let mut best: Option<(u64, usize)> = None;
            for (i, &seed) in self.seeds.iter().enumerate() {
                let h = draw(hash, seed);
                if best.is_none_or(|(b, _)| h > b) {
                    best = Some((h, i));
                }
            }
            best.map(|(_, i)| i)
        } else {
            let mut best: Option<(f64, usize)> = None;
            for i in 0..self.seeds.len() {
                let s = self.score(hash, i);
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, i));
                }
            }
            best.map(|(_, i)| i)
        }
    }

    /// The weighted score of node `i` for a key hash.
    #[inline]
    fn score(&self, hash: u64, i: usize) -> f64 {
        let h = draw(hash, self.seeds[i]);
        // h < 2^52, so h + 0.5 is exact and (h + 0.5) / 2^52 lies strictly inside (0, 1):
        // ln is finite and negative.
        let u = (h as f64 + 0.5) * (1.0 / (1_u64 << 52) as f64);
        -f64::from(self.nodes.get(i).weight()) / u.ln()
    }

    fn refresh_uniform(&mut self) {
        let first = self.nodes.as_slice().first().map(Node::weight);
        self.uniform = self
            .nodes
            .as_slice()
            .iter()
            .all(|n| Some(n.weight()) == first);
    }
}

/// The uniform draw for (key, node): 52 bits, so the weighted score's `h + 0.5` is exact.
#[inline]
fn draw(hash: u64, seed: u64) -> u64 {
    mix64(hash ^ seed) >> 12
}

impl Placement for Rendezvous {
    fn add_node(&mut self, node: Node) -> Result<(), Error> {
        let seed = name_seed(node.name(), SEED_SALT);
        self.nodes.insert(node)?;
        self.seeds.push(seed);
        self.refresh_uniform();
        Ok(())
    }

    fn remove_node(&mut self, name: &str) -> Result<Node, Error> {
        let (index, node) = self.nodes.remove(name)?;
        self.seeds.remove(index);
        self.refresh_uniform();
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
        let hash = hash_key(key);
        let mut scored: Vec<(f64, usize)> = (0..self.seeds.len())
            .map(|i| (self.score(hash, i), i))
            .collect();
        // Highest score first; equal scores keep node order, matching `node_for`.
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(count)
            .map(|(_, i)| self.nodes.get(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_and_weighted_paths_agree_at_equal_weights() {
        let set = Rendezvous::from_nodes((0..7).map(|i| Node::new(format!("n{i}")))).unwrap();
        assert!(set.uniform);
        for k in 0..2000_u64 {
            let fast = set.node_index_for_hash(k);
            let slow =
                (0..7).max_by(|&a, &b| set.score(k, a).total_cmp(&set.score(k, b)).then(b.cmp(&a)));
            assert_eq!(fast, slow);
        }
    }

    #[test]
    fn weights_set_the_share() {
        let set = Rendezvous::from_nodes([Node::weighted("a", 1), Node::weighted("b", 3)]).unwrap();
        let on_b = (0..40_000_u64)
            .filter(|k| set.node_for(&k.to_le_bytes()).unwrap().name() == "b")
            .count();
        let share = on_b as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.01, "share of b = {share}");
    }
}
