//! A ketama-compatible consistent hash ring.
//!
//! Point layout (libketama, twemproxy `nc_ketama.c`, and uhashring's `hash_fn="ketama"`):
//!
//! * node `i` with weight `w_i` out of a total `W` over `n` nodes gets
//!   `floor(vnodes * n * w_i / W)` groups, `vnodes` = 40 by default, so 160 points per node
//!   at equal weight;
//! * group `g` (from 0) hashes the string `"{name}-{g}"` with MD5 and takes the four
//!   little-endian `u32`s of the digest as four points;
//! * a key hashes to the first four digest bytes of MD5(key), little-endian, and belongs to
//!   the first point at or after its hash, wrapping to the first point.
//!
//! The name is used as given: libketama names servers `"host:port"`, twemproxy uses the
//! configured server name (`"host:port"` unless aliased), so pass the same strings.
//!
//! Where the clients differ, this ring picks as follows (see `test-data/gen_ketama.py`):
//! * group count: exact integer arithmetic, as uhashring; libketama and twemproxy compute it
//!   in `f32`, which can round a few weight ratios down by one group;
//! * a key hash equal to a point: the point itself (libketama, twemproxy); uhashring takes
//!   the next point;
//! * two nodes on the same point: the later-added node owns it (uhashring); twemproxy
//!   leaves it to `qsort`.
//!
//! Invariant: `points` is sorted and free of duplicates, and `owners[i]` is the index in
//! `nodes` of the node that owns `points[i]`. Both are rebuilt on every change, because
//! in ketama every node's group count depends on `n` and `W`.

use crate::hash::{hash_key, ketama_hash, ketama_points};
use crate::node::NodeSet;
use crate::{Error, Node, Placement};
use std::fmt::Write as _;

/// How a [`KetamaRing`] (and a [`crate::BoundedLoadRing`]) hashes keys onto the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyHash {
    /// MD5, as libketama and twemproxy: the same key lands on the same server as in those
    /// clients. Costs one MD5 block per key.
    #[default]
    Md5,
    /// The upper 32 bits of XXH3-64 ([`hash_key`]): several times cheaper, but keys land
    /// on different servers than in other ketama clients. Points are still placed with MD5.
    Xxh3,
}

/// Configuration of a [`KetamaRing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KetamaConfig {
    /// MD5 digests per node at average weight; each digest gives four points. Ketama uses
    /// 40 (160 points per server).
    pub vnodes: u32,
    /// How keys are hashed.
    pub key_hash: KeyHash,
}

impl Default for KetamaConfig {
    fn default() -> Self {
        Self {
            vnodes: 40,
            key_hash: KeyHash::Md5,
        }
    }
}

/// A consistent hash ring with the libketama MD5 point layout; see the module docs.
#[derive(Debug, Clone)]
pub struct KetamaRing {
    config: KetamaConfig,
    nodes: NodeSet,
    /// Sorted, distinct points. Kept apart from `owners` so the binary search touches
    /// 4 bytes per probe.
    points: Vec<u32>,
    owners: Vec<u32>,
}

impl Default for KetamaRing {
    fn default() -> Self {
        Self::new()
    }
}

impl KetamaRing {
    /// An empty ring with ketama's defaults: 160 points per node, MD5 key hash.
    pub fn new() -> Self {
        Self {
            config: KetamaConfig::default(),
            nodes: NodeSet::default(),
            points: Vec::new(),
            owners: Vec::new(),
        }
    }

    /// An empty ring with `config`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `config.vnodes` is 0.
    pub fn with_config(config: KetamaConfig) -> Result<Self, Error> {
        if config.vnodes == 0 {
            return Err(Error::InvalidConfig("vnodes must be at least 1"));
        }
        Ok(Self {
            config,
            ..Self::new()
        })
    }

    /// A ring over `nodes`, added in order.
    ///
    /// # Errors
    ///
    /// As [`Placement::add_node`], for the first node that fails.
    pub fn from_nodes(
        config: KetamaConfig,
        nodes: impl IntoIterator<Item = Node>,
    ) -> Result<Self, Error> {
        let mut ring = Self::with_config(config)?;
        for node in nodes {
            ring.nodes.insert(node)?;
        }
        ring.rebuild();
        Ok(ring)
    }

    /// The configuration.
    pub fn config(&self) -> KetamaConfig {
        self.config
    }

    /// The number of distinct points on the continuum.
    pub fn point_count(&self) -> usize {
        self.points.len()
    }

    /// The continuum as sorted `(point, node)` pairs, as libketama's `ketama_print_continuum`.
    pub fn points(&self) -> impl Iterator<Item = (u32, &Node)> + '_ {
        self.points
            .iter()
            .zip(&self.owners)
            .map(|(&p, &o)| (p, self.nodes.get(o as usize)))
    }

    /// The hash of `key` on this ring, per [`KetamaConfig::key_hash`].
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u32 {
        match self.config.key_hash {
            KeyHash::Md5 => ketama_hash(key),
            KeyHash::Xxh3 => (hash_key(key) >> 32) as u32,
        }
    }

    /// The index into [`Placement::nodes`] of the node owning ring position `hash`, or
    /// `None` on an empty ring. For callers that hash keys themselves.
    #[inline]
    pub fn node_index_for_hash(&self, hash: u32) -> Option<usize> {
        self.point_index(hash).map(|i| self.owners[i] as usize)
    }

    /// The index of the first point at or after `hash`, wrapping to 0.
    #[inline]
    pub(crate) fn point_index(&self, hash: u32) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let i = self.points.partition_point(|&p| p < hash);
        Some(if i == self.points.len() { 0 } else { i })
    }

    /// Node indices in clockwise order from `start`, once per point (with repeats).
    pub(crate) fn walk(&self, start: usize) -> impl Iterator<Item = usize> + '_ {
        self.owners[start..]
            .iter()
            .chain(&self.owners[..start])
            .map(|&o| o as usize)
    }

    pub(crate) fn node_set(&self) -> &NodeSet {
        &self.nodes
    }

    fn rebuild(&mut self) {
        let n = self.nodes.len() as u64;
        let total = self.nodes.total_weight();
        let vnodes = u64::from(self.config.vnodes);
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let mut name = String::new();
        for (index, node) in self.nodes.as_slice().iter().enumerate() {
            let groups = vnodes * n * u64::from(node.weight()) / total;
            for group in 0..groups {
                name.clear();
                // Writing into a String cannot fail.
                let _ = write!(name, "{}-{group}", node.name());
                for point in ketama_points(name.as_bytes()) {
                    pairs.push((point, index as u32));
                }
            }
        }
        // Sort by point, then by node index, and keep the last (latest-added) owner of each
        // point, so a collision is settled the way uhashring settles it.
        pairs.sort_unstable();
        pairs.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                *earlier = *later;
                true
            } else {
                false
            }
        });
        self.points = pairs.iter().map(|p| p.0).collect();
        self.owners = pairs.iter().map(|p| p.1).collect();
    }
}

impl Placement for KetamaRing {
    fn add_node(&mut self, node: Node) -> Result<(), Error> {
        self.nodes.insert(node)?;
        self.rebuild();
        Ok(())
    }

    fn remove_node(&mut self, name: &str) -> Result<Node, Error> {
        let (_, node) = self.nodes.remove(name)?;
        self.rebuild();
        Ok(node)
    }

    fn nodes(&self) -> &[Node] {
        self.nodes.as_slice()
    }

    #[inline]
    fn node_for(&self, key: &[u8]) -> Option<&Node> {
        self.node_index_for_hash(self.hash(key))
            .map(|i| self.nodes.get(i))
    }

    fn nodes_for(&self, key: &[u8], count: usize) -> Vec<&Node> {
        let count = count.min(self.nodes.len());
        let mut found: Vec<usize> = Vec::with_capacity(count);
        if let Some(start) = self.point_index(self.hash(key)) {
            for owner in self.walk(start) {
                if found.len() == count {
                    break;
                }
                if !found.contains(&owner) {
                    found.push(owner);
                }
            }
        }
        found.into_iter().map(|i| self.nodes.get(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_ring_places_nothing() {
        let ring = KetamaRing::new();
        assert!(ring.node_for(b"k").is_none());
        assert!(ring.nodes_for(b"k", 3).is_empty());
    }

    #[test]
    fn equal_weights_give_160_points_each() {
        let ring = KetamaRing::from_nodes(
            KetamaConfig::default(),
            (0..3).map(|i| Node::new(format!("n{i}"))),
        )
        .unwrap();
        assert_eq!(ring.point_count(), 480);
    }

    #[test]
    fn a_key_on_a_point_belongs_to_that_point() {
        let ring = KetamaRing::from_nodes(
            KetamaConfig::default(),
            ["a:1", "b:1", "c:1"].map(Node::new),
        )
        .unwrap();
        for (point, node) in ring.points().take(20) {
            assert_eq!(
                ring.node_index_for_hash(point),
                ring.node_set().position(node.name())
            );
        }
        // And the key whose hash is the group's first point lands on its own node.
        let own = ring.node_for(b"b:1-0").unwrap().name().to_owned();
        assert_eq!(own, "b:1");
    }

    #[test]
    fn hashes_past_the_last_point_wrap_to_the_first() {
        let ring =
            KetamaRing::from_nodes(KetamaConfig::default(), ["a", "b"].map(Node::new)).unwrap();
        let (_, first) = ring.points().next().unwrap();
        let first = ring.node_set().position(first.name());
        assert_eq!(ring.node_index_for_hash(u32::MAX), first);
    }

    #[test]
    fn zero_vnodes_is_rejected() {
        let config = KetamaConfig {
            vnodes: 0,
            ..KetamaConfig::default()
        };
        assert!(matches!(
            KetamaRing::with_config(config),
            Err(Error::InvalidConfig(_))
        ));
    }
}
