//! Content-layer types: objects, programs, pins, garbage collection.

use serde::{Deserialize, Serialize};

/// Answer to `POST /v1/content` and `POST /v1/programs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Added {
    /// CIDv1 of the object.
    pub cid: String,
    /// Object size in bytes.
    pub bytes: u64,
    /// Whether the node pinned it.
    pub pinned: bool,
    /// SHA-256 of the bytes (hex): the plugin cache key for programs.
    pub sha256: String,
}

/// One pin (`GET /v1/content`, `POST|DELETE /v1/content/{cid}/pin`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinEntry {
    /// Pinned root.
    pub cid: String,
    /// Unix seconds when the pin lapses, if it does.
    pub expires_at: Option<u64>,
}

/// Figures of a node's content store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentStats {
    /// Pinned roots (recursive and direct pins).
    pub pins: u64,
    /// Bytes of all blocks in the store.
    pub repo_bytes: u64,
    /// Blocks in the store.
    pub blocks: u64,
    /// The configured quota in bytes.
    pub quota_bytes: u64,
}

/// Body of `GET /v1/content`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentListing {
    /// Store figures.
    pub stats: ContentStats,
    /// Pins.
    pub pins: Vec<PinEntry>,
}

/// What one garbage-collection pass did (`POST /v1/content/gc`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Pins whose retention period had passed and that were removed.
    pub expired_pins: u64,
    /// Unpinned blocks removed.
    pub removed_blocks: u64,
    /// Store size after the pass, in bytes.
    pub repo_bytes: u64,
}

/// Query of `POST /v1/content`: `?pin=true|false` (default true).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddQuery {
    /// Whether to pin the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<bool>,
}

/// Query of `GET /v1/content/{cid}` and `POST /v1/content/{cid}/pin`:
/// how long the node may look for the object on the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchQuery {
    /// Milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}
