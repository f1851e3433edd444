use std::{path::PathBuf, time::Duration};

use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

/// Default upper bound for one gossip message payload: 1 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 20;

/// Configuration of the networking layer. Every field has a default.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Addresses to listen on (TCP and/or QUIC multiaddrs).
    pub listen: Vec<Multiaddr>,
    /// Peers to contact at start-up, each ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS. Only for LANs.
    pub mdns: bool,
    /// Largest gossip payload accepted or sent, in bytes (per-topic limits may be lower).
    pub max_message_size: usize,
    /// Maximum number of established connections in total.
    pub max_connections: u32,
    /// Maximum number of established connections to one peer.
    pub max_connections_per_peer: u32,
    /// Keep dialing peers found through the DHT until this many are connected.
    pub target_peers: usize,
    /// Close connections idle for this many seconds.
    pub idle_timeout_secs: u64,
    /// Gossipsub heartbeat interval in milliseconds.
    pub heartbeat_ms: u64,
    /// Capacity of the event stream towards the application.
    pub event_buffer: usize,
    /// Messages kept while no peer has subscribed to their topic yet.
    pub publish_queue: usize,
    /// The content layer (embedded IPFS block store, bitswap, pins, GC).
    pub content: ContentConfig,
}

/// Configuration of the content layer. Every field has a default.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ContentConfig {
    /// Directory of the persistent block and pin store. `None` keeps
    /// everything in memory (tests, benchmarks).
    pub dir: Option<PathBuf>,
    /// Disk quota in bytes: above it, garbage collection removes unpinned blocks.
    pub quota_bytes: u64,
    /// Seconds between garbage-collection passes (expired pins, quota).
    pub gc_interval_secs: u64,
    /// Largest object `get` will assemble, in bytes.
    pub max_object_bytes: u64,
    /// How long results of this node's own tasks stay pinned, in seconds.
    pub result_retention_secs: u64,
    /// Concurrent DHT provider lookups.
    pub max_provider_lookups: usize,
}

impl Default for ContentConfig {
    fn default() -> Self {
        Self {
            dir: None,
            quota_bytes: 10 << 30,
            gc_interval_secs: 300,
            max_object_bytes: 256 << 20,
            result_retention_secs: 7 * 24 * 3600,
            max_provider_lookups: 16,
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/4690".parse().expect("static multiaddr"),
                "/ip4/0.0.0.0/udp/4690/quic-v1"
                    .parse()
                    .expect("static multiaddr"),
            ],
            bootstrap: Vec::new(),
            mdns: false,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_connections: 256,
            max_connections_per_peer: 2,
            target_peers: 25,
            idle_timeout_secs: 120,
            heartbeat_ms: 700,
            event_buffer: 4096,
            publish_queue: 1024,
            content: ContentConfig::default(),
        }
    }
}

impl NetworkConfig {
    /// A config listening on an OS-chosen TCP port of 127.0.0.1, for tests.
    pub fn local_tcp() -> Self {
        Self {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("static multiaddr")],
            ..Self::default()
        }
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// Size of one gossipsub RPC frame: the payload limit plus room for the
    /// signature, key, topic and protobuf framing.
    pub(crate) fn frame_limit(&self) -> usize {
        self.max_message_size.saturating_add(16 * 1024)
    }
}
