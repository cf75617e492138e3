//! A topic's settings (`meta.json`) and its consumer groups' committed offsets
//! (`offsets.json`), both small JSON documents replaced atomically: written to a
//! temporary file, fsynced, renamed over the old one, and the directory fsynced. A
//! reader therefore sees the old document or the new one, never a mix, after any crash.

use super::TopicError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 1024;
/// Longest topic or group name.
pub const MAX_NAME_LEN: usize = 200;
/// Default deduplication window: two minutes, as NATS JetStream's.
pub const DEFAULT_DEDUP_WINDOW_MS: u64 = 120_000;

/// When a topic's records reach the disk, and so when a produce is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicFsync {
    /// fsynced before the answer (group-committed across producers).
    #[default]
    Always,
    /// fsynced at most every second; answered once written to the OS.
    Interval,
    /// Written to the OS before the answer; the OS decides when it reaches the disk.
    Never,
}

/// A topic's settings, as created and as stored in `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSpec {
    /// `[A-Za-z0-9._-]{1,200}`, not `.` or `..`.
    pub name: String,
    /// 1..=1024. Fixed for the topic's life: the key → partition mapping depends on it.
    pub partitions: u32,
    /// Delete a partition's sealed segments whose newest message is older than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
    /// Delete a partition's oldest sealed segments while it holds more than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_bytes: Option<u64>,
    /// When produced messages are durable.
    #[serde(default)]
    pub fsync: TopicFsync,
    /// Queue-mode deliveries before a message is dead-lettered (see `topics::dlq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    /// How long a message id is remembered for deduplicated produce; 0 disables it.
    #[serde(default = "default_dedup_window")]
    pub dedup_window_ms: u64,
}

fn default_dedup_window() -> u64 {
    DEFAULT_DEDUP_WINDOW_MS
}

impl TopicSpec {
    /// A spec with `partitions` partitions and every other setting at its default.
    pub fn new(name: impl Into<String>, partitions: u32) -> Self {
        Self {
            name: name.into(),
            partitions,
            retention_ms: None,
            retention_bytes: None,
            fsync: TopicFsync::default(),
            max_deliveries: None,
            dedup_window_ms: DEFAULT_DEDUP_WINDOW_MS,
        }
    }

    /// Checks the name and the ranges.
    ///
    /// # Errors
    /// [`TopicError::InvalidName`] or [`TopicError::InvalidSpec`] naming the field.
    pub fn validate(&self) -> Result<(), TopicError> {
        validate_name(&self.name)?;
        if !(1..=MAX_PARTITIONS).contains(&self.partitions) {
            return Err(TopicError::InvalidSpec {
                field: "partitions",
                reason: format!(
                    "must be between 1 and {MAX_PARTITIONS} (got {})",
                    self.partitions
                ),
            });
        }
        if self.max_deliveries == Some(0) {
            return Err(TopicError::InvalidSpec {
                field: "max_deliveries",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// `[A-Za-z0-9._-]{1,200}`, and not `.` or `..` (they name directories).
///
/// # Errors
/// [`TopicError::InvalidName`].
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(TopicError::InvalidName(
            name.chars().take(MAX_NAME_LEN).collect(),
        ))
    }
}

/// Committed offsets: group → partition → the next offset the group will read.
pub(crate) type Offsets = BTreeMap<String, BTreeMap<u32, u64>>;

#[derive(Serialize, Deserialize)]
struct OffsetsDoc {
    version: u32,
    groups: Offsets,
}

pub(crate) const META_FILE: &str = "meta.json";
pub(crate) const OFFSETS_FILE: &str = "offsets.json";

pub(crate) fn read_meta(dir: &Path) -> Result<TopicSpec, TopicError> {
    let path = dir.join(META_FILE);
    let bytes = fs::read(&path).map_err(|e| TopicError::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| TopicError::Damaged {
        path,
        reason: e.to_string(),
    })
}

pub(crate) fn write_meta(dir: &Path, spec: &TopicSpec) -> Result<(), TopicError> {
    let bytes = serde_json::to_vec_pretty(spec).map_err(|e| TopicError::Damaged {
        path: dir.join(META_FILE),
        reason: e.to_string(),
    })?;
    replace_file(dir, META_FILE, &bytes)
}

pub(crate) fn read_offsets(dir: &Path) -> Result<Offsets, TopicError> {
    let path = dir.join(OFFSETS_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<OffsetsDoc>(&bytes)
            .map(|d| d.groups)
            .map_err(|e| TopicError::Damaged {
                path,
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Offsets::new()),
        Err(e) => Err(TopicError::io(&path, e)),
    }
}

pub(crate) fn write_offsets(dir: &Path, groups: &Offsets) -> Result<(), TopicError> {
    let doc = OffsetsDoc {
        version: 1,
        groups: groups.clone(),
    };
    let bytes = serde_json::to_vec(&doc).map_err(|e| TopicError::Damaged {
        path: dir.join(OFFSETS_FILE),
        reason: e.to_string(),
    })?;
    replace_file(dir, OFFSETS_FILE, &bytes)
}

/// Writes `name.tmp`, fsyncs it, renames it to `name`, fsyncs the directory.
fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), TopicError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut file = File::create(&tmp).map_err(|e| TopicError::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| TopicError::io(&tmp, e))?;
    file.sync_all().map_err(|e| TopicError::io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| TopicError::io(&path, e))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), TopicError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TopicError::io(dir, e))
}
