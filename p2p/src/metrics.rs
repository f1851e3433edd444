//! Metrics of the networking layer (libp2p's own metrics are registered beside these).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TopicOutcome {
    pub(crate) topic: String,
    pub(crate) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TopicLabel {
    pub(crate) topic: String,
}

#[derive(Clone, Default)]
pub(crate) struct Metrics {
    pub(crate) messages_received: Family<TopicOutcome, Counter>,
    pub(crate) messages_published: Family<TopicLabel, Counter>,
    pub(crate) connected_peers: Gauge,
    pub(crate) events_dropped: Counter,
    pub(crate) publish_queue: Gauge,
}

impl Metrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("hal9_p2p");
        r.register(
            "messages_received",
            "Gossip messages received, by topic and validation outcome",
            m.messages_received.clone(),
        );
        r.register(
            "messages_published",
            "Gossip messages published by this node, by topic",
            m.messages_published.clone(),
        );
        r.register(
            "connected_peers",
            "Peers with at least one established connection",
            m.connected_peers.clone(),
        );
        r.register(
            "events_dropped",
            "Accepted messages dropped because the application fell behind",
            m.events_dropped.clone(),
        );
        r.register(
            "publish_queue_length",
            "Messages waiting for a first subscriber of their topic",
            m.publish_queue.clone(),
        );
        m
    }
}

/// Outcome label of a content fetch.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FetchOutcome {
    pub(crate) outcome: &'static str,
}

impl FetchOutcome {
    pub(crate) fn ok() -> Self {
        Self { outcome: "ok" }
    }
    pub(crate) fn new(outcome: &'static str) -> Self {
        Self { outcome }
    }
}

/// Metrics of the content layer.
#[derive(Clone)]
pub(crate) struct ContentMetrics {
    pub(crate) pins: Gauge,
    pub(crate) repo_bytes: Gauge,
    pub(crate) added_bytes: Counter,
    pub(crate) fetched_bytes: Counter,
    pub(crate) fetches: Family<FetchOutcome, Counter>,
    pub(crate) fetch_seconds: Histogram,
    pub(crate) gc_removed_blocks: Counter,
    pub(crate) provider_lookups: Counter,
}

impl ContentMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self {
            pins: Gauge::default(),
            repo_bytes: Gauge::default(),
            added_bytes: Counter::default(),
            fetched_bytes: Counter::default(),
            fetches: Family::default(),
            fetch_seconds: Histogram::new(exponential_buckets(0.001, 4.0, 10)),
            gc_removed_blocks: Counter::default(),
            provider_lookups: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("hal9_content");
        r.register("pins", "Pinned roots in the content store", m.pins.clone());
        r.register_with_unit(
            "repo",
            "Size of all blocks in the content store",
            Unit::Bytes,
            m.repo_bytes.clone(),
        );
        r.register_with_unit(
            "added",
            "Bytes of objects added on this node",
            Unit::Bytes,
            m.added_bytes.clone(),
        );
        r.register_with_unit(
            "fetched",
            "Bytes of objects returned by successful fetches",
            Unit::Bytes,
            m.fetched_bytes.clone(),
        );
        r.register("fetches", "Object fetches by outcome", m.fetches.clone());
        r.register_with_unit(
            "fetch_duration",
            "Time to fetch and verify an object",
            Unit::Seconds,
            m.fetch_seconds.clone(),
        );
        r.register(
            "gc_removed_blocks",
            "Unpinned blocks removed by garbage collection",
            m.gc_removed_blocks.clone(),
        );
        r.register(
            "provider_lookups",
            "DHT provider lookups started for wanted blocks",
            m.provider_lookups.clone(),
        );
        m
    }
}
