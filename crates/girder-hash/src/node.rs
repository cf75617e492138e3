//! Nodes and the ordered, name-unique set every placement keeps.

use crate::Error;

/// A node that keys are placed on: a unique name and a weight (at least 1).
///
/// A node's share of keys is proportional to its weight. What the name means is up to the
/// caller; for ketama compatibility use the `host:port` string the other clients use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    name: String,
    weight: u32,
}

impl Node {
    /// A node of weight 1.
    pub fn new(name: impl Into<String>) -> Self {
        Self::weighted(name, 1)
    }

    /// A node with `weight`; weight 0 is rejected when the node is added.
    pub fn weighted(name: impl Into<String>, weight: u32) -> Self {
        Self {
            name: name.into(),
            weight,
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }
}

/// Nodes in insertion order with unique names.
///
/// Placements index their tables by position in this list; removal shifts later nodes
/// down by one, so each placement rebuilds or renumbers its table after a removal.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeSet {
    nodes: Vec<Node>,
}

impl NodeSet {
    pub(crate) fn as_slice(&self) -> &[Node] {
        &self.nodes
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn get(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Appends `node` and returns its index.
    pub(crate) fn insert(&mut self, node: Node) -> Result<usize, Error> {
        if node.weight == 0 {
            return Err(Error::ZeroWeight(node.name));
        }
        if self.position(&node.name).is_some() {
            return Err(Error::DuplicateNode(node.name));
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    /// Removes the node named `name`, returning its former index and the node.
    pub(crate) fn remove(&mut self, name: &str) -> Result<(usize, Node), Error> {
        let index = self
            .position(name)
            .ok_or_else(|| Error::UnknownNode(name.to_owned()))?;
        Ok((index, self.nodes.remove(index)))
    }

    pub(crate) fn total_weight(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.weight)).sum()
    }
}
