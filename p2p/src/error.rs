use libp2p::{Multiaddr, TransportError};

/// Errors of the networking layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The swarm could not be built (transport or behaviour setup).
    #[error("cannot build the libp2p swarm: {0}")]
    Build(String),
    /// The content store (IPFS repo) could not be opened, e.g. another
    /// process holds its lock or the directory is not writable.
    #[error("cannot open the content store at {path}: {reason}")]
    Repo {
        /// The repo directory (or "memory").
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// Listening on an address failed, typically because the port is in use.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address we tried.
        addr: Multiaddr,
        /// Why it failed.
        reason: String,
    },
    /// A multiaddr did not end in `/p2p/<peer id>` where one was required.
    #[error("bootstrap address {0} has no /p2p/<peer id> suffix")]
    MissingPeerId(Multiaddr),
    /// Dialing a peer failed immediately.
    #[error("cannot dial {addr}: {reason}")]
    Dial {
        /// The address dialed.
        addr: Multiaddr,
        /// Why it failed.
        reason: String,
    },
    /// Subscribing to a topic failed.
    #[error("cannot subscribe to {topic}: {reason}")]
    Subscribe {
        /// The topic.
        topic: String,
        /// Why it failed.
        reason: String,
    },
    /// Publishing failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The network task has stopped; the handle is no longer usable.
    #[error("the network task has stopped")]
    Stopped,
}

/// Why a message could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The payload is larger than the limit configured for its topic.
    #[error("message of {size} bytes exceeds the {limit}-byte limit of topic {topic}")]
    TooLarge {
        /// Topic.
        topic: String,
        /// Payload size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// The node is not subscribed to this topic and cannot publish on it.
    #[error("topic {0} is not registered on this node (subscribe first)")]
    UnknownTopic(String),
    /// The same payload was already published on this topic.
    #[error("an identical message was already published on {0}")]
    Duplicate(String),
    /// Too many messages are waiting for peers to subscribe.
    #[error("publish queue is full ({0} messages wait for subscribers)")]
    QueueFull(usize),
    /// Any other gossipsub failure.
    #[error("gossipsub refused the message: {0}")]
    Gossipsub(String),
}

pub(crate) fn listen_error<T: std::fmt::Debug>(addr: &Multiaddr, err: TransportError<T>) -> Error {
    let reason = match err {
        TransportError::MultiaddrNotSupported(a) => format!("address {a} is not supported"),
        TransportError::Other(e) => format!("{e:?}"),
    };
    Error::Listen {
        addr: addr.clone(),
        reason,
    }
}

/// Errors of the content layer (IPFS blocks, pins, fetches).
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// No peer delivered the object within the allowed time.
    #[error(
        "{cid} not found: no provider delivered a block matching its CID within {waited_ms} ms"
    )]
    NotFound {
        /// The CID asked for (root or the first missing block).
        cid: String,
        /// How long we waited, in milliseconds.
        waited_ms: u64,
    },
    /// A block's bytes do not hash to its CID, or the DAG is not valid UnixFS.
    #[error("{cid} is invalid: {reason}")]
    Invalid {
        /// The offending CID.
        cid: String,
        /// What was expected and what was found.
        reason: String,
    },
    /// The object exceeds the configured size limit.
    #[error("{cid} is larger than the {limit}-byte object limit (at least {found} bytes)")]
    TooLarge {
        /// The CID.
        cid: String,
        /// The limit in bytes.
        limit: u64,
        /// Bytes seen so far.
        found: u64,
    },
    /// The text is not a CID.
    #[error("expected a CID (e.g. bafy...), found {text:?}: {reason}")]
    BadCid {
        /// The text given.
        text: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The CID is not pinned on this node.
    #[error("{0} is not pinned")]
    NotPinned(String),
    /// The block store or pin store failed.
    #[error("content store: {0}")]
    Store(String),
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Stopped,
}
