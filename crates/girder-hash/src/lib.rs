//! Placement of keys on nodes.
//!
//! One trait, [`Placement`], maps a key to a node ([`Placement::node_for`]) or to several
//! distinct nodes for replicas ([`Placement::nodes_for`]), over a set of weighted
//! [`Node`]s that can be added and removed. Five implementations:
//!
//! | type | algorithm | lookup | pick it when |
//! | --- | --- | --- | --- |
//! | [`KetamaRing`] | ring with virtual nodes, libketama/twemproxy MD5 layout | O(log points) | you share a key space with memcached/twemproxy clients, or want the classic ring |
//! | [`JumpHash`] | jump consistent hash (Lamping & Veach 2014) | O(log n) | nodes are numbered shards, mostly added at the end; no memory per node |
//! | [`Rendezvous`] | weighted highest-random-weight hashing | O(n) | few nodes, exact weights, minimal movement on any change |
//! | [`Maglev`] | Maglev lookup table (Eisenbud et al. 2016) | O(1) | many lookups per change and near-perfect balance |
//! | [`BoundedLoadRing`] | consistent hashing with bounded loads (Mirrokni et al. 2018) | O(log points) + walk | sessions or connections where no node may exceed `c` × the mean |
//!
//! Keys are bytes. [`KetamaRing`] hashes them with MD5 by default (that is what makes it
//! agree with other ketama clients); every other algorithm uses [`hash_key`] (XXH3-64),
//! which is far cheaper. The crate knows nothing of any particular server: nodes are names
//! with weights.
//!
//! # Example
//!
//! ```
//! use girder_hash::{KetamaRing, Node, Placement};
//!
//! let mut ring = KetamaRing::new();
//! for name in ["10.0.1.1:11211", "10.0.1.2:11211", "10.0.1.3:11211", "10.0.1.4:11211"] {
//!     ring.add_node(Node::new(name))?;
//! }
//! // The same server libketama, twemproxy and uhashring pick for this server list.
//! assert_eq!(ring.node_for(b"key:0").map(|n| n.name()), Some("10.0.1.1:11211"));
//!
//! // Three distinct nodes for replicas, the primary first.
//! let replicas = ring.nodes_for(b"key:0", 3);
//! assert_eq!(replicas.len(), 3);
//! assert_eq!(replicas[0].name(), "10.0.1.1:11211");
//!
//! // Removing a node only moves the keys that were on it.
//! ring.remove_node("10.0.1.4:11211")?;
//! assert_eq!(ring.node_for(b"key:0").map(|n| n.name()), Some("10.0.1.1:11211"));
//! # Ok::<(), girder_hash::Error>(())
//! ```
//!
//! # Invariants every implementation keeps
//!
//! * Determinism: the answer depends only on the key and the node set (names, weights and,
//!   for the ring's point collisions only, insertion order), never on the process or time.
//! * [`Placement::nodes_for`] returns distinct nodes, the first being
//!   [`Placement::node_for`].
//! * Node names are unique and weights are at least 1.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bounded;
mod hash;
mod jump;
mod ketama;
mod maglev;
mod node;
mod rendezvous;

pub use bounded::{BoundedLoadConfig, BoundedLoadRing};
pub use hash::{hash_key, ketama_hash};
pub use jump::{jump_consistent_hash, JumpHash};
pub use ketama::{KetamaConfig, KetamaRing, KeyHash};
pub use maglev::{Maglev, MaglevConfig};
pub use node::Node;
pub use rendezvous::Rendezvous;

/// Errors from changing a node set or building a placement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A node with this name is already placed.
    #[error("node {0:?} is already present")]
    DuplicateNode(String),
    /// No node with this name is placed.
    #[error("node {0:?} is not present")]
    UnknownNode(String),
    /// Weights must be at least 1: a node that should take no keys is removed instead.
    #[error("node {0:?} has weight 0; weights must be at least 1")]
    ZeroWeight(String),
    /// A configuration value is out of range; the message names the field.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// [`Maglev`] cannot give every node a slot: there are more nodes than table entries.
    #[error("a Maglev table of {table_size} entries holds at most {table_size} nodes")]
    TableFull {
        /// The configured table size.
        table_size: u32,
    },
    /// [`BoundedLoadRing::release`] was called for a node that carries no load.
    #[error("node {0:?} has no load to release")]
    NoLoad(String),
}

/// Maps keys to nodes; see the [crate docs](crate) for the implementations.
///
/// The trait is object safe, so a service can pick the algorithm at run time with
/// `Box<dyn Placement>`.
pub trait Placement {
    /// Adds a node.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateNode`] if the name is taken, [`Error::ZeroWeight`] for weight 0,
    /// and [`Error::TableFull`] for a [`Maglev`] table with no room for another node.
    fn add_node(&mut self, node: Node) -> Result<(), Error>;

    /// Removes the node with this name and returns it.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownNode`] if no node has this name.
    fn remove_node(&mut self, name: &str) -> Result<Node, Error>;

    /// The nodes, in the order they were added.
    fn nodes(&self) -> &[Node];

    /// The node for `key`, or `None` when there are no nodes.
    fn node_for(&self, key: &[u8]) -> Option<&Node>;

    /// Up to `count` distinct nodes for `key`, the first being [`Placement::node_for`].
    ///
    /// Returns `min(count, len())` nodes.
    fn nodes_for(&self, key: &[u8], count: usize) -> Vec<&Node>;

    /// The number of nodes.
    fn len(&self) -> usize {
        self.nodes().len()
    }

    /// Whether there are no nodes.
    fn is_empty(&self) -> bool {
        self.nodes().is_empty()
    }
}
