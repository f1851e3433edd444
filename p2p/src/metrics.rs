//! Metrics of the networking layer (libp2p's own metrics are registered beside these).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
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
