//! Maglev lookup tables (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
//! Load Balancer", NSDI 2016, section 3.4), with weights.
//!
//! Each node derives a permutation of the `M` table entries from its name
//! (`offset = h1(name) mod M`, `skip = h2(name) mod (M - 1) + 1`, entry `j` of the
//! permutation is `(offset + j * skip) mod M`; `M` prime makes every permutation complete).
//! Nodes then take turns claiming their next unclaimed preferred entry until the table is
//! full. A lookup is one table read.
//!
//! Weights: in round `r` (from 1) a node of weight `w` claims an entry only while it holds
//! fewer than `r * w / w_max` entries, so entry counts follow the weights. At equal weights
//! this is the paper's round robin and counts differ by at most one.
//!
//! Nodes take turns in name order, not insertion order, so the table depends only on the
//! set of nodes. Disruption is near-minimal but not minimal: a change also reshuffles a
//! small fraction of entries between unchanged nodes (the paper's figure 11; measured in
//! the tests and the README).
//!
//! Invariant: `table.len() == M` and every entry holds a valid index into `nodes`, or the
//! table is empty when there are no nodes. Rebuilt on every change, O(M log M).

use crate::hash::{fast_range, hash_key, name_seed};
use crate::node::NodeSet;
use crate::{Error, Node, Placement};

/// Configuration of a [`Maglev`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaglevConfig {
    /// Number of table entries; must be prime. The paper uses 65,537 and recommends at
    /// least 100 entries per node for balance.
    pub table_size: u32,
}

impl Default for MaglevConfig {
    fn default() -> Self {
        Self { table_size: 65_537 }
    }
}

/// A Maglev lookup table; see the module docs.
#[derive(Debug, Clone)]
pub struct Maglev {
    config: MaglevConfig,
    nodes: NodeSet,
    table: Vec<u32>,
}

impl Default for Maglev {
    fn default() -> Self {
        Self::new()
    }
}

const EMPTY: u32 = u32::MAX;

impl Maglev {
    /// An empty table of 65,537 entries.
    pub fn new() -> Self {
        Self {
            config: MaglevConfig::default(),
            nodes: NodeSet::default(),
            table: Vec::new(),
        }
    }

    /// An empty table with `config`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the table size is not a prime of at least 3.
    pub fn with_config(config: MaglevConfig) -> Result<Self, Error> {
        if config.table_size < 3 || !is_prime(config.table_size) {
            return Err(Error::InvalidConfig("table_size must be a prime >= 3"));
        }
        Ok(Self {
            config,
            ..Self::new()
        })
    }

    /// A table over `nodes`, built once.
    ///
    /// # Errors
    ///
    /// As [`Maglev::with_config`] and [`Placement::add_node`].
    pub fn from_nodes(
        config: MaglevConfig,
        nodes: impl IntoIterator<Item = Node>,
    ) -> Result<Self, Error> {
        let mut maglev = Self::with_config(config)?;
        for node in nodes {
            maglev.nodes.insert(node)?;
        }
        if maglev.nodes.len() > config.table_size as usize {
            return Err(Error::TableFull {
                table_size: config.table_size,
            });
        }
        maglev.rebuild();
        Ok(maglev)
    }

    /// The configuration.
    pub fn config(&self) -> MaglevConfig {
        self.config
    }

    /// How many table entries each node holds, in node order.
    pub fn entry_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.nodes.len()];
        for &e in &self.table {
            counts[e as usize] += 1;
        }
        counts
    }

    /// The index into [`Placement::nodes`] of the node for a key already hashed with
    /// [`hash_key`], or `None` when there are no nodes.
    #[inline]
    pub fn node_index_for_hash(&self, hash: u64) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        Some(self.table[self.entry(hash)] as usize)
    }

    #[inline]
    fn entry(&self, hash: u64) -> usize {
        fast_range(hash, self.table.len() as u64) as usize
    }

    fn rebuild(&mut self) {
        let n = self.nodes.len();
        if n == 0 {
            self.table.clear();
            return;
        }
        let m = u64::from(self.config.table_size);
        let nodes = self.nodes.as_slice();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| nodes[a].name().cmp(nodes[b].name()));
        // Per node: current permutation position, skip, entries held.
        let mut position: Vec<u64> = nodes.iter().map(|x| name_seed(x.name(), 1) % m).collect();
        let skip: Vec<u64> = nodes
            .iter()
            .map(|x| name_seed(x.name(), 2) % (m - 1) + 1)
            .collect();
        let mut held = vec![0_u64; n];
        let max_weight = nodes
            .iter()
            .map(|x| u64::from(x.weight()))
            .max()
            .unwrap_or(1);

        let mut table = vec![EMPTY; m as usize];
        let mut filled = 0_u64;
        let mut round = 0_u64;
        'fill: loop {
            round += 1;
            for &i in &order {
                // Weighted turn: hold at most round * w / w_max entries.
                if held[i] * max_weight >= round * u64::from(nodes[i].weight()) {
                    continue;
                }
                while table[position[i] as usize] != EMPTY {
                    position[i] = (position[i] + skip[i]) % m;
                }
                table[position[i] as usize] = i as u32;
                position[i] = (position[i] + skip[i]) % m;
                held[i] += 1;
                filled += 1;
                if filled == m {
                    break 'fill;
                }
            }
        }
        self.table = table;
    }
}

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let n = u64::from(n);
    (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

impl Placement for Maglev {
    fn add_node(&mut self, node: Node) -> Result<(), Error> {
        if self.nodes.len() >= self.config.table_size as usize {
            return Err(Error::TableFull {
                table_size: self.config.table_size,
            });
        }
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
        self.node_index_for_hash(hash_key(key))
            .map(|i| self.nodes.get(i))
    }

    /// The key's entry, then the following entries in table order, skipping repeats.
    /// Entries are spread pseudo-randomly, so the replicas are too.
    fn nodes_for(&self, key: &[u8], count: usize) -> Vec<&Node> {
        let count = count.min(self.nodes.len());
        let mut found: Vec<usize> = Vec::with_capacity(count);
        if !self.table.is_empty() {
            let start = self.entry(hash_key(key));
            let walk = self.table[start..].iter().chain(&self.table[..start]);
            for &node in walk {
                if found.len() == count {
                    break;
                }
                if !found.contains(&(node as usize)) {
                    found.push(node as usize);
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
    fn table_size_must_be_prime() {
        for bad in [0, 1, 2, 4, 65_536] {
            assert!(Maglev::with_config(MaglevConfig { table_size: bad }).is_err());
        }
        assert!(Maglev::with_config(MaglevConfig { table_size: 251 }).is_ok());
    }

    #[test]
    fn too_many_nodes_for_the_table() {
        let mut maglev = Maglev::with_config(MaglevConfig { table_size: 3 }).unwrap();
        for i in 0..3 {
            maglev.add_node(Node::new(format!("n{i}"))).unwrap();
        }
        assert_eq!(
            maglev.add_node(Node::new("n3")),
            Err(Error::TableFull { table_size: 3 })
        );
    }

    #[test]
    fn table_does_not_depend_on_insertion_order() {
        let names = ["a", "b", "c", "d"];
        let config = MaglevConfig { table_size: 1_009 };
        let forward = Maglev::from_nodes(config, names.map(Node::new)).unwrap();
        let backward =
            Maglev::from_nodes(config, names.iter().rev().map(|&n| Node::new(n))).unwrap();
        for k in 0..500_u64 {
            let key = k.to_le_bytes();
            assert_eq!(forward.node_for(&key), backward.node_for(&key));
        }
    }
}
