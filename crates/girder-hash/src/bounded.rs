//! Consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam, SODA 2018).
//!
//! Keys are placed on a ring as in [`KetamaRing`], but each node has a capacity: with `m`
//! keys placed after this one, node `i` of weight `w_i` holds at most
//! `ceil(c * m * w_i / W)` keys, `c` being the load factor. A key walks the ring clockwise
//! from its hash to the first node under capacity. Because the capacities add up to at
//! least `c * m > m`, some node always has room, and no node ever exceeds `c` × its fair
//! share (up to the rounding of `ceil`).
//!
//! Unlike the other placements the answer depends on the current loads, so this type
//! keeps them: [`BoundedLoadRing::assign`] places a key and counts it,
//! [`BoundedLoadRing::release`] uncounts it. [`Placement::node_for`] answers where a key
//! would go now, without counting it. The caller remembers where each key went; when a node
//! is removed its load is dropped and its keys must be assigned again.
//!
//! Invariant: `loads[i]` is the load of `ring.nodes()[i]`, `total` their sum, and
//! `total_weight` the sum of the node weights.

use crate::ketama::{KetamaConfig, KetamaRing, KeyHash};
use crate::{Error, Node, Placement};

/// Configuration of a [`BoundedLoadRing`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundedLoadConfig {
    /// `c`: no node holds more than `c` × its share of the load. At least 1; the paper's
    /// experiments use 1.25, the default.
    pub load_factor: f64,
    /// The underlying ring. Defaults to 160 points per node and the fast XXH3 key hash,
    /// since compatibility with other ketama clients is moot once loads divert keys.
    pub ring: KetamaConfig,
}

impl Default for BoundedLoadConfig {
    fn default() -> Self {
        Self {
            load_factor: 1.25,
            ring: KetamaConfig {
                vnodes: 40,
                key_hash: KeyHash::Xxh3,
            },
        }
    }
}

/// Consistent hashing with bounded loads; see the module docs.
#[derive(Debug, Clone)]
pub struct BoundedLoadRing {
    ring: KetamaRing,
    load_factor: f64,
    loads: Vec<u64>,
    total: u64,
    /// Sum of the node weights, cached: `capacity` runs once per point walked.
    total_weight: u64,
}

impl BoundedLoadRing {
    /// An empty ring.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the load factor is below 1 or not finite, or the ring
    /// configuration is invalid.
    pub fn new(config: BoundedLoadConfig) -> Result<Self, Error> {
        if !(config.load_factor >= 1.0 && config.load_factor.is_finite()) {
            return Err(Error::InvalidConfig("load_factor must be finite and >= 1"));
        }
        Ok(Self {
            ring: KetamaRing::with_config(config.ring)?,
            load_factor: config.load_factor,
            loads: Vec::new(),
            total: 0,
            total_weight: 0,
        })
    }

    /// A ring over `nodes`, added in order.
    ///
    /// # Errors
    ///
    /// As [`BoundedLoadRing::new`] and [`Placement::add_node`].
    pub fn from_nodes(
        config: BoundedLoadConfig,
        nodes: impl IntoIterator<Item = Node>,
    ) -> Result<Self, Error> {
        let mut this = Self::new(config)?;
        let nodes: Vec<Node> = nodes.into_iter().collect();
        this.loads = vec![0; nodes.len()];
        this.ring = KetamaRing::from_nodes(config.ring, nodes)?;
        this.total_weight = this.ring.node_set().total_weight();
        Ok(this)
    }

    /// Places `key` on the first node under capacity clockwise from its hash and counts
    /// it there. `None` when there are no nodes.
    pub fn assign(&mut self, key: &[u8]) -> Option<&Node> {
        let index = self.index_for(key)?;
        self.loads[index] += 1;
        self.total += 1;
        Some(&self.ring.nodes()[index])
    }

    /// Uncounts one key from the node named `name`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownNode`] for an unknown name, [`Error::NoLoad`] if its load is 0.
    pub fn release(&mut self, name: &str) -> Result<(), Error> {
        let index = self
            .ring
            .node_set()
            .position(name)
            .ok_or_else(|| Error::UnknownNode(name.to_owned()))?;
        if self.loads[index] == 0 {
            return Err(Error::NoLoad(name.to_owned()));
        }
        self.loads[index] -= 1;
        self.total -= 1;
        Ok(())
    }

    /// The load of the node named `name`, if it exists.
    pub fn load(&self, name: &str) -> Option<u64> {
        self.ring.node_set().position(name).map(|i| self.loads[i])
    }

    /// The loads in node order.
    pub fn loads(&self) -> &[u64] {
        &self.loads
    }

    /// The number of keys currently assigned.
    pub fn total_load(&self) -> u64 {
        self.total
    }

    /// The load factor `c`.
    pub fn load_factor(&self) -> f64 {
        self.load_factor
    }

    /// Clears all loads, keeping the nodes.
    pub fn reset_loads(&mut self) {
        self.loads.iter_mut().for_each(|l| *l = 0);
        self.total = 0;
    }

    /// The most keys node `index` may hold once one more key is placed.
    fn capacity(&self, index: usize) -> u64 {
        let weight = u64::from(self.ring.nodes()[index].weight());
        let bound =
            self.load_factor * ((self.total + 1) * weight) as f64 / self.total_weight as f64;
        // Shave off rounding error so that an exact integer bound is not rounded up.
        (bound - 1e-9).ceil() as u64
    }

    fn index_for(&self, key: &[u8]) -> Option<usize> {
        let start = self.ring.point_index(self.ring.hash(key))?;
        let mut walk = self.ring.walk(start);
        walk.find(|&i| self.loads[i] < self.capacity(i))
    }
}

impl Placement for BoundedLoadRing {
    fn add_node(&mut self, node: Node) -> Result<(), Error> {
        let weight = u64::from(node.weight());
        self.ring.add_node(node)?;
        self.loads.push(0);
        self.total_weight += weight;
        Ok(())
    }

    /// Removes the node and drops its load; its keys must be assigned again.
    fn remove_node(&mut self, name: &str) -> Result<Node, Error> {
        let index = self
            .ring
            .node_set()
            .position(name)
            .ok_or_else(|| Error::UnknownNode(name.to_owned()))?;
        let node = self.ring.remove_node(name)?;
        self.total -= self.loads.remove(index);
        self.total_weight -= u64::from(node.weight());
        Ok(node)
    }

    fn nodes(&self) -> &[Node] {
        self.ring.nodes()
    }

    /// Where [`BoundedLoadRing::assign`] would place `key` now; counts nothing.
    fn node_for(&self, key: &[u8]) -> Option<&Node> {
        self.index_for(key).map(|i| &self.ring.nodes()[i])
    }

    /// Distinct nodes clockwise from the key's hash, those under capacity first.
    fn nodes_for(&self, key: &[u8], count: usize) -> Vec<&Node> {
        let count = count.min(self.len());
        let Some(start) = self.ring.point_index(self.ring.hash(key)) else {
            return Vec::new();
        };
        let mut open: Vec<usize> = Vec::with_capacity(count);
        let mut full: Vec<usize> = Vec::new();
        for i in self.ring.walk(start) {
            if open.len() == count {
                break;
            }
            if open.contains(&i) || full.contains(&i) {
                continue;
            }
            if self.loads[i] < self.capacity(i) {
                open.push(i);
            } else {
                full.push(i);
            }
        }
        open.extend(full.into_iter().take(count - open.len()));
        open.into_iter().map(|i| &self.ring.nodes()[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_factor_below_one_is_rejected() {
        let config = BoundedLoadConfig {
            load_factor: 0.9,
            ..BoundedLoadConfig::default()
        };
        assert!(matches!(
            BoundedLoadRing::new(config),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[test]
    fn release_needs_load() {
        let mut ring =
            BoundedLoadRing::from_nodes(BoundedLoadConfig::default(), [Node::new("a")]).unwrap();
        assert_eq!(ring.release("a"), Err(Error::NoLoad("a".into())));
        assert_eq!(ring.release("b"), Err(Error::UnknownNode("b".into())));
        assert_eq!(ring.assign(b"k").map(Node::name), Some("a"));
        assert_eq!(ring.load("a"), Some(1));
        ring.release("a").unwrap();
        assert_eq!(ring.total_load(), 0);
    }
}
