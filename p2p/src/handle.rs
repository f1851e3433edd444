//! The cloneable handle through which the rest of the node drives the swarm.

use std::{sync::Arc, time::Duration};

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Error, Validator,
    content::{Cid, Content},
};

/// Outcome of a successful publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Published {
    /// Sent to peers; the hex message id.
    Sent(String),
    /// No peer has subscribed to the topic yet; sent once one does.
    Queued,
}

/// What the node knows about a connected peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

pub(crate) enum Command {
    Subscribe {
        topic: String,
        limit: usize,
        validator: Arc<dyn Validator>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Publish {
        topic: String,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<Published, Error>>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    PeerScore {
        peer: PeerId,
        reply: oneshot::Sender<Option<f64>>,
    },
    TopicPeers {
        topic: String,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    /// Ask peers for blocks; each waiter hears `true` once its block is
    /// stored (verified) and `false` when the want expires.
    Want {
        root: Cid,
        timeout: Duration,
        waiters: Vec<(Cid, oneshot::Sender<bool>)>,
    },
    /// Drop wants nobody waits for any more.
    Unwant {
        cids: Vec<Cid>,
    },
    /// New local blocks: serve peers that want them, provide the root on the DHT.
    Provide {
        root: Cid,
        blocks: Vec<Cid>,
    },
    /// Stop providing a root.
    Unprovide {
        root: Cid,
    },
    /// Whether this node provides a root.
    IsProvided {
        root: Cid,
        reply: oneshot::Sender<bool>,
    },
}

/// A cloneable handle to the network task. Every method waits for the
/// network task's answer; commands queue in a bounded channel.
#[derive(Clone)]
pub struct NetworkHandle {
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) local_peer_id: PeerId,
    pub(crate) content: Content,
}

impl std::fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("local_peer_id", &self.local_peer_id)
            .finish()
    }
}

impl NetworkHandle {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// The content layer (IPFS blocks, pins) sharing this network's swarm.
    pub fn content(&self) -> Content {
        self.content.clone()
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Subscribes to `topic`. Payloads larger than `limit` bytes (capped by
    /// the configured maximum message size) are rejected; the rest pass
    /// through `validator` before they are delivered or forwarded.
    pub async fn subscribe(
        &self,
        topic: impl Into<String>,
        limit: usize,
        validator: impl Validator,
    ) -> Result<(), Error> {
        let topic = topic.into();
        let validator: Arc<dyn Validator> = Arc::new(validator);
        self.call(|reply| Command::Subscribe {
            topic,
            limit,
            validator,
            reply,
        })
        .await?
    }

    /// Publishes `data` on a subscribed topic.
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        data: Vec<u8>,
    ) -> Result<Published, Error> {
        let topic = topic.into();
        self.call(|reply| Command::Publish { topic, data, reply })
            .await?
    }

    /// Dials an address (which may end in `/p2p/<peer id>`).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), Error> {
        self.call(|reply| Command::Dial { addr, reply }).await?
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.call(|reply| Command::Peers { reply }).await
    }

    /// Gossipsub score of a peer.
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, Error> {
        self.call(|reply| Command::PeerScore { peer, reply }).await
    }

    /// Peers known to be subscribed to `topic`.
    pub async fn topic_peers(&self, topic: impl Into<String>) -> Result<Vec<PeerId>, Error> {
        let topic = topic.into();
        self.call(|reply| Command::TopicPeers { topic, reply })
            .await
    }

    /// Addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, Error> {
        self.call(|reply| Command::ListenAddrs { reply }).await
    }

    /// Stops the network task, closing all connections.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.call(|reply| Command::Shutdown { reply }).await
    }
}
