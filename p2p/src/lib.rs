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
//! See `docs/adr/0001-one-swarm.md` for how IPFS will share the same swarm.

#![warn(missing_docs)]

mod behaviour;
mod config;
mod error;
mod handle;
mod metrics;
mod service;
pub mod wire;

pub use config::{DEFAULT_MAX_MESSAGE_SIZE, NetworkConfig};
pub use error::{Error, PublishError};
pub use handle::{NetworkHandle, PeerInfo, Published};
pub use libp2p::{Multiaddr, PeerId, identity::Keypair};

/// The `/p2p/<peer id>` multiaddr component for `peer`.
pub fn multiaddr_p2p(peer: PeerId) -> libp2p::multiaddr::Protocol<'static> {
    libp2p::multiaddr::Protocol::P2p(peer)
}
pub use service::{Network, NetworkEvent, Validation, Validator};
