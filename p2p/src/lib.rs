//! hal9 networking.
//!
//! One tokio task owns the libp2p [`Swarm`](libp2p::Swarm). Everyone else talks
//! to it through a cloneable, bounded [`NetworkHandle`] (commands with a
//! one-shot reply) and receives [`NetworkEvent`]s on a bounded stream.
//!
//! The swarm runs TCP and QUIC (noise + yamux on TCP), gossipsub with signed
//! messages, strict validation, content-hash message ids, per-topic size
//! limits and an application validation step; Kademlia with bootstrap peers;
//! identify; ping; mDNS for local networks; connection limits; peer scoring.
//! The same swarm carries IPFS block exchange (bitswap, with rust-ipfs's
//! block store and pins) and DHT provider records: see [`content`] and
//! `docs/adr/0001-one-swarm.md`, `docs/adr/0040-content-layer.md`.

#![warn(missing_docs)]

mod behaviour;
pub mod bench;
mod config;
pub mod content;
mod error;
mod handle;
mod metrics;
mod service;
pub mod wire;

pub use config::{ContentConfig, DEFAULT_MAX_MESSAGE_SIZE, NetworkConfig};
pub use content::{Cid, Content, ContentStats, GcReport, Retention};
pub use error::{ContentError, Error, PublishError};
pub use handle::{NetworkHandle, PeerInfo, Published};
pub use libp2p::{Multiaddr, PeerId, identity::Keypair};

/// The `/p2p/<peer id>` multiaddr component for `peer`.
pub fn multiaddr_p2p(peer: PeerId) -> libp2p::multiaddr::Protocol<'static> {
    libp2p::multiaddr::Protocol::P2p(peer)
}
pub use service::{Network, NetworkEvent, Validation, Validator};
