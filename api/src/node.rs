//! Node-level types: status, peers, notes, and the `api.json` file.

use serde::{Deserialize, Serialize};

use crate::ContentStats;

/// Body of `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// This node's peer id.
    pub peer_id: String,
    /// hal9 version.
    pub version: String,
    /// Listen addresses (with /p2p suffix).
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub connected_peers: usize,
    /// Peers remembered in the store.
    pub known_peers: usize,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Store schema version.
    pub store_schema: u32,
    /// Content store: pins and size.
    #[serde(default)]
    pub content: Option<ContentStats>,
}

/// One connected peer, as `GET /v1/peers` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Peer id.
    pub peer_id: String,
    /// Remote addresses of established connections.
    pub addresses: Vec<String>,
    /// Gossipsub peer score, if scoring knows the peer.
    pub score: Option<f64>,
    /// Agent version reported by identify.
    pub agent: Option<String>,
    /// Last ping round-trip in milliseconds.
    pub rtt_ms: Option<u64>,
    /// Gossip topics the peer has told us it subscribes to.
    pub topics: Vec<String>,
}

/// A note received over gossip (`GET /v1/notes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedNote {
    /// Gossip message id (hex).
    pub id: String,
    /// Signing peer.
    pub author: Option<String>,
    /// Forwarding peer.
    pub source: String,
    /// Text.
    pub text: String,
    /// Milliseconds since the Unix epoch at reception.
    pub received_at_ms: u64,
}

/// Body of `POST /v1/notes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishNote {
    /// Text to gossip.
    pub text: String,
}

/// Answer of `POST /v1/notes`: `{"sent": "<hex id>"}` or `"queued"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Published {
    /// Sent to peers; the hex message id.
    Sent(String),
    /// No peer has subscribed to the topic yet; sent once one does.
    Queued,
}

/// Written to `api.json` in the node's home while the node runs: where its
/// endpoints listen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiInfo {
    /// Base URL of the control API.
    pub url: String,
    /// Base URL of the metrics endpoint.
    pub metrics_url: String,
    /// Peer id of the node.
    pub peer_id: String,
    /// Process id.
    pub pid: u32,
}
