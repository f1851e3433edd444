//! The task that owns the swarm.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm, gossipsub, identify,
    identity::Keypair,
    kad, mdns,
    metrics::{Metrics as Libp2pMetrics, Recorder},
    multiaddr::Protocol,
    noise, ping,
    swarm::{SwarmEvent, dial_opts::DialOpts},
    tcp, yamux,
};
use prometheus_client::registry::Registry;
use rust_ipfs::p2p::bitswap;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, trace, warn};

use crate::{
    Error, NetworkConfig, PublishError,
    behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL, topic_score_params},
    content::{Cid, Content},
    error::listen_error,
    handle::{Command, NetworkHandle, PeerInfo, Published},
    metrics::{ContentMetrics, Metrics, TopicLabel, TopicOutcome},
};

const COMMAND_BUFFER: usize = 1024;
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(5);
/// Providers of one CID dialed per lookup.
const MAX_PROVIDER_DIALS: usize = 8;
/// Distinct CIDs waited for at once (each by any number of local callers).
const MAX_WANTED: usize = 65_536;

/// The application's verdict on one gossip message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// Deliver it and forward it.
    Accept,
    /// Drop it, do not forward it, and lower the sender's score.
    Reject(String),
    /// Drop it and do not forward it, without penalty (e.g. a newer protocol version).
    Ignore(String),
}

/// Validates the payload of a gossip message before it is delivered or forwarded.
///
/// Runs on the network task: keep it cheap (decode, size and signature checks).
pub trait Validator: Send + Sync + 'static {
    /// Judges `data`, received from `source`.
    fn validate(&self, source: &PeerId, data: &[u8]) -> Validation;
}

impl<F> Validator for F
where
    F: Fn(&PeerId, &[u8]) -> Validation + Send + Sync + 'static,
{
    fn validate(&self, source: &PeerId, data: &[u8]) -> Validation {
        self(source, data)
    }
}

/// What the network reports to the application.
#[derive(Debug, Clone)]
pub enum NetworkEvent {
    /// A validated gossip message.
    Message {
        /// Hex message id.
        id: String,
        /// The peer that forwarded it to us.
        source: PeerId,
        /// The peer that signed it.
        author: Option<PeerId>,
        /// Topic name.
        topic: String,
        /// Payload.
        data: Bytes,
    },
    /// First connection to a peer established.
    PeerConnected(PeerId),
    /// Identify told us the peer's listen addresses.
    PeerIdentified {
        /// The peer.
        peer: PeerId,
        /// Addresses it listens on.
        listen_addrs: Vec<Multiaddr>,
    },
    /// Last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// A new listen address is active.
    Listening(Multiaddr),
}

struct TopicState {
    name: String,
    limit: usize,
    validator: Arc<dyn Validator>,
}

/// The network task. Build it with [`Network::new`], spawn [`Network::run`].
pub struct Network {
    swarm: Swarm<Behaviour>,
    cfg: NetworkConfig,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    topics: HashMap<gossipsub::TopicHash, TopicState>,
    pending: VecDeque<(gossipsub::TopicHash, Vec<u8>)>,
    listen_addrs: Vec<Multiaddr>,
    agents: HashMap<PeerId, String>,
    peer_listen_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    rtts: HashMap<PeerId, Duration>,
    dialing: HashSet<PeerId>,
    metrics: Metrics,
    libp2p_metrics: Libp2pMetrics,
    content: Content,
    content_metrics: ContentMetrics,
    /// Local callers waiting for a block, by CID.
    waiters: HashMap<Cid, Vec<oneshot::Sender<bool>>>,
    /// DHT provider lookups in flight.
    provider_queries: HashMap<kad::QueryId, Cid>,
    looking_up: HashSet<Cid>,
    /// Roots this node provides (re-announced once the routing table fills).
    provided: HashSet<Cid>,
    reprovide: bool,
}

impl Network {
    /// Builds the swarm, starts listening and dials the bootstrap peers.
    ///
    /// Fails with [`Error::Listen`] if an address cannot be bound (for
    /// example a port in use).
    /// Opens the content store in `cfg.content.dir` (in memory when unset);
    /// fails with [`Error::Repo`] if it cannot be opened or is locked by
    /// another process.
    pub async fn new(
        keypair: Keypair,
        cfg: NetworkConfig,
        registry: &mut Registry,
    ) -> Result<(Self, NetworkHandle, mpsc::Receiver<NetworkEvent>), Error> {
        let local_peer_id = keypair.public().to_peer_id();
        let libp2p_metrics = Libp2pMetrics::new(registry);
        let metrics = Metrics::register(registry);
        let content_metrics = ContentMetrics::register(registry);
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_BUFFER);
        let content = Content::open(&cfg.content, cmd_tx.clone(), content_metrics.clone()).await?;
        let repo = content.repo.clone();
        let mut behaviour_err = None;
        let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| Error::Build(format!("tcp transport: {e}")))?
            .with_quic()
            .with_bandwidth_metrics(registry)
            .with_behaviour(|key| match Behaviour::new(key, &cfg, &repo) {
                Ok(b) => Ok(b),
                Err(e) => {
                    let msg = e.to_string();
                    behaviour_err = Some(e);
                    Err(msg.into())
                }
            });
        let swarm = match (swarm, behaviour_err) {
            (_, Some(e)) => return Err(e),
            (Err(e), None) => return Err(Error::Build(e.to_string())),
            (Ok(b), None) => b,
        };
        let idle = cfg.idle_timeout();
        let mut swarm = swarm
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build();

        for addr in &cfg.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| listen_error(addr, e))?;
        }

        let (ev_tx, ev_rx) = mpsc::channel(cfg.event_buffer.max(1));
        let mut net = Self {
            swarm,
            cfg,
            commands: cmd_rx,
            events: ev_tx,
            topics: HashMap::new(),
            pending: VecDeque::new(),
            listen_addrs: Vec::new(),
            agents: HashMap::new(),
            peer_listen_addrs: HashMap::new(),
            rtts: HashMap::new(),
            dialing: HashSet::new(),
            metrics,
            libp2p_metrics,
            content: content.clone(),
            content_metrics,
            waiters: HashMap::new(),
            provider_queries: HashMap::new(),
            looking_up: HashSet::new(),
            provided: HashSet::new(),
            reprovide: false,
        };
        for addr in net.cfg.bootstrap.clone() {
            net.add_bootstrap(addr)?;
        }
        let handle = NetworkHandle {
            tx: cmd_tx,
            local_peer_id,
            content,
        };
        Ok((net, handle, ev_rx))
    }

    fn add_bootstrap(&mut self, addr: Multiaddr) -> Result<(), Error> {
        let Some(Protocol::P2p(peer)) = addr.iter().last() else {
            return Err(Error::MissingPeerId(addr));
        };
        if peer == *self.swarm.local_peer_id() {
            return Ok(());
        }
        self.swarm
            .behaviour_mut()
            .kad
            .add_address(&peer, addr.clone());
        if let Err(e) = self.swarm.dial(addr.clone()) {
            warn!(target: "hal9::p2p", %addr, error = %e, "bootstrap dial failed");
        }
        Ok(())
    }

    /// Runs until shutdown is requested or every handle is dropped.
    pub async fn run(mut self) {
        let mut discovery = tokio::time::interval(DISCOVERY_INTERVAL);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let gc = tokio::spawn(self.content.clone().gc_loop());
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown { reply }) => {
                        info!(target: "hal9::p2p", "network shutting down");
                        let _ = reply.send(());
                        break;
                    }
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                _ = discovery.tick() => self.discover(),
            }
        }
        gc.abort();
        for (_, waiters) in self.waiters.drain() {
            for w in waiters {
                let _ = w.send(false);
            }
        }
    }

    fn connected(&self) -> usize {
        self.swarm.connected_peers().count()
    }

    /// Periodic discovery: refresh the DHT and dial known peers while below target.
    fn discover(&mut self) {
        let connected = self.connected();
        if connected < self.cfg.target_peers {
            if connected > 0 {
                let _ = self.swarm.behaviour_mut().kad.bootstrap();
            }
            let mut candidates = Vec::new();
            for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
                for entry in bucket.iter() {
                    candidates.push((
                        *entry.node.key.preimage(),
                        entry.node.value.iter().cloned().collect::<Vec<_>>(),
                    ));
                }
            }
            for (peer, addrs) in candidates {
                self.maybe_dial(peer, addrs);
            }
        }
        self.flush_pending();
        self.waiters.retain(|_, ws| {
            ws.retain(|w| !w.is_closed());
            !ws.is_empty()
        });
        if self.reprovide && self.swarm.behaviour_mut().kad.kbuckets().next().is_some() {
            self.reprovide = false;
            for root in self.provided.clone() {
                self.start_providing(root);
            }
        }
    }

    fn start_providing(&mut self, root: Cid) {
        let key = kad::RecordKey::new(&root.hash().to_bytes());
        match self.swarm.behaviour_mut().kad.start_providing(key) {
            Ok(_) => {
                self.provided.insert(root);
                if self.swarm.behaviour_mut().kad.kbuckets().next().is_none() {
                    self.reprovide = true;
                }
            }
            Err(e) => warn!(target: "hal9::content", %root, error = ?e, "cannot provide"),
        }
    }

    fn lookup_providers(&mut self, cid: Cid) {
        if self.looking_up.contains(&cid)
            || self.looking_up.len() >= self.cfg.content.max_provider_lookups.max(1)
        {
            return;
        }
        let key = kad::RecordKey::new(&cid.hash().to_bytes());
        let id = self.swarm.behaviour_mut().kad.get_providers(key);
        self.provider_queries.insert(id, cid);
        self.looking_up.insert(cid);
        self.content_metrics.provider_lookups.inc();
        debug!(target: "hal9::content", %cid, "looking up providers");
    }

    fn on_content_command(&mut self, cmd: Command) {
        match cmd {
            Command::Want {
                root,
                timeout,
                waiters,
            } => {
                let mut cids = Vec::with_capacity(waiters.len());
                for (cid, tx) in waiters {
                    if !self.waiters.contains_key(&cid) && self.waiters.len() >= MAX_WANTED {
                        let _ = tx.send(false);
                        continue;
                    }
                    self.waiters.entry(cid).or_default().push(tx);
                    cids.push(cid);
                }
                if cids.is_empty() {
                    return;
                }
                self.swarm
                    .behaviour_mut()
                    .bitswap
                    .gets(cids, &[], Some(timeout));
                self.lookup_providers(root);
            }
            Command::Unwant { cids } => {
                for cid in cids {
                    let idle = match self.waiters.get_mut(&cid) {
                        Some(ws) => {
                            ws.retain(|w| !w.is_closed());
                            ws.is_empty()
                        }
                        None => true,
                    };
                    if idle {
                        self.waiters.remove(&cid);
                        self.swarm.behaviour_mut().bitswap.cancel(cid);
                    }
                }
            }
            Command::Provide { root, blocks } => {
                self.swarm.behaviour_mut().bitswap.notify_new_blocks(blocks);
                self.start_providing(root);
            }
            Command::IsProvided { root, reply } => {
                let _ = reply.send(self.provided.contains(&root));
            }
            Command::Unprovide { root } => {
                let key = kad::RecordKey::new(&root.hash().to_bytes());
                self.swarm.behaviour_mut().kad.stop_providing(&key);
                self.provided.remove(&root);
            }
            _ => {}
        }
    }

    fn on_bitswap(&mut self, ev: bitswap::Event) {
        match ev {
            bitswap::Event::BlockRetrieved { cid } => {
                trace!(target: "hal9::content", %cid, "block retrieved");
                for w in self.waiters.remove(&cid).unwrap_or_default() {
                    let _ = w.send(true);
                }
            }
            bitswap::Event::CancelBlock { cid } => {
                for w in self.waiters.remove(&cid).unwrap_or_default() {
                    let _ = w.send(false);
                }
            }
            bitswap::Event::NeedBlock { cid } => {
                if self.waiters.contains_key(&cid) {
                    self.lookup_providers(cid);
                }
            }
        }
    }

    fn on_providers(&mut self, id: kad::QueryId, result: kad::GetProvidersResult, last: bool) {
        let Some(cid) = self.provider_queries.get(&id).copied() else {
            return;
        };
        if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = result {
            let local = *self.swarm.local_peer_id();
            let found: Vec<PeerId> = providers
                .into_iter()
                .filter(|p| *p != local)
                .take(MAX_PROVIDER_DIALS)
                .collect();
            debug!(target: "hal9::content", %cid, providers = found.len(), "providers found");
            for peer in &found {
                if !self.swarm.is_connected(peer) {
                    let _ = self.swarm.dial(DialOpts::peer_id(*peer).build());
                }
            }
            if self.waiters.contains_key(&cid) {
                self.swarm
                    .behaviour_mut()
                    .bitswap
                    .gets(vec![cid], &found, None);
            }
        }
        if last {
            self.provider_queries.remove(&id);
            self.looking_up.remove(&cid);
        }
    }

    fn maybe_dial(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if peer == *self.swarm.local_peer_id()
            || self.swarm.is_connected(&peer)
            || self.dialing.contains(&peer)
            || self.connected() + self.dialing.len() >= self.cfg.target_peers
        {
            return;
        }
        let opts = DialOpts::peer_id(peer).addresses(addrs).build();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.dialing.insert(peer);
            }
            Err(e) => debug!(target: "hal9::p2p", %peer, error = %e, "dial failed"),
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Subscribe {
                topic,
                limit,
                validator,
                reply,
            } => {
                let t = gossipsub::IdentTopic::new(&topic);
                let gs = &mut self.swarm.behaviour_mut().gossipsub;
                let res = gs
                    .subscribe(&t)
                    .map(|_| ())
                    .map_err(|e| Error::Subscribe {
                        topic: topic.clone(),
                        reason: e.to_string(),
                    })
                    .and_then(|()| {
                        gs.set_topic_params(t.clone(), topic_score_params())
                            .map_err(|e| Error::Subscribe {
                                topic: topic.clone(),
                                reason: e.to_string(),
                            })
                    });
                if res.is_ok() {
                    let limit = limit.min(self.cfg.max_message_size);
                    debug!(target: "hal9::p2p", %topic, limit, "subscribed");
                    self.topics.insert(
                        t.hash(),
                        TopicState {
                            name: topic,
                            limit,
                            validator,
                        },
                    );
                }
                let _ = reply.send(res);
            }
            Command::Publish { topic, data, reply } => {
                let _ = reply.send(self.publish(topic, data));
            }
            Command::Dial { addr, reply } => {
                let res = self.swarm.dial(addr.clone()).map_err(|e| Error::Dial {
                    addr,
                    reason: e.to_string(),
                });
                let _ = reply.send(res);
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peer_infos());
            }
            Command::PeerScore { peer, reply } => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::TopicPeers { topic, reply } => {
                let hash = gossipsub::IdentTopic::new(topic).hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .map(|(p, _)| *p)
                    .collect();
                let _ = reply.send(peers);
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::Shutdown { reply } => {
                let _ = reply.send(());
            }
            other => self.on_content_command(other),
        }
    }

    fn publish(&mut self, topic: String, data: Vec<u8>) -> Result<Published, Error> {
        let t = gossipsub::IdentTopic::new(&topic);
        let hash = t.hash();
        let Some(state) = self.topics.get(&hash) else {
            return Err(PublishError::UnknownTopic(topic).into());
        };
        if data.len() > state.limit {
            return Err(PublishError::TooLarge {
                topic,
                size: data.len(),
                limit: state.limit,
            }
            .into());
        }
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(t, data.clone())
        {
            Ok(id) => {
                self.metrics
                    .messages_published
                    .get_or_create(&TopicLabel { topic })
                    .inc();
                Ok(Published::Sent(hex_id(&id)))
            }
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                if self.pending.len() >= self.cfg.publish_queue {
                    return Err(PublishError::QueueFull(self.pending.len()).into());
                }
                self.pending.push_back((hash, data));
                self.metrics.publish_queue.set(self.pending.len() as i64);
                Ok(Published::Queued)
            }
            Err(gossipsub::PublishError::Duplicate) => Err(PublishError::Duplicate(topic).into()),
            Err(e) => Err(PublishError::Gossipsub(e.to_string()).into()),
        }
    }

    /// Retries queued messages whose topic has gained a subscriber.
    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut keep = VecDeque::new();
        while let Some((hash, data)) = self.pending.pop_front() {
            let gs = &mut self.swarm.behaviour_mut().gossipsub;
            match gs.publish(hash.clone(), data.clone()) {
                Ok(_) => {
                    if let Some(s) = self.topics.get(&hash) {
                        self.metrics
                            .messages_published
                            .get_or_create(&TopicLabel {
                                topic: s.name.clone(),
                            })
                            .inc();
                    }
                }
                Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                    keep.push_back((hash, data))
                }
                Err(e) => warn!(target: "hal9::p2p", error = %e, "dropping queued message"),
            }
        }
        self.pending = keep;
        self.metrics.publish_queue.set(self.pending.len() as i64);
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let mut topics: HashMap<PeerId, Vec<String>> = HashMap::new();
        for (peer, ts) in self.swarm.behaviour().gossipsub.all_peers() {
            topics.insert(*peer, ts.iter().map(|t| self.topic_name(t)).collect());
        }
        let mut out: Vec<PeerInfo> = self
            .swarm
            .connected_peers()
            .map(|&peer| PeerInfo {
                topics: topics.remove(&peer).unwrap_or_default(),
                peer_id: peer.to_string(),
                addresses: self
                    .peer_listen_addrs
                    .get(&peer)
                    .map(|v| v.iter().map(|a| a.to_string()).collect())
                    .unwrap_or_default(),
                score: self.swarm.behaviour().gossipsub.peer_score(&peer),
                agent: self.agents.get(&peer).cloned(),
                rtt_ms: self.rtts.get(&peer).map(|d| d.as_millis() as u64),
            })
            .collect();
        out.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        out
    }

    fn topic_name(&self, hash: &gossipsub::TopicHash) -> String {
        self.topics
            .get(hash)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| hash.to_string())
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.libp2p_metrics.record(&event);
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address
                    .clone()
                    .with(Protocol::P2p(*self.swarm.local_peer_id()));
                info!(target: "hal9::p2p", address = %full, "listening");
                self.listen_addrs.push(address.clone());
                let _ = self.events.try_send(NetworkEvent::Listening(address));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                self.dialing.remove(&peer_id);
                if num_established.get() == 1 {
                    debug!(target: "hal9::p2p", peer = %peer_id, addr = %endpoint.get_remote_address(), "peer connected");
                    self.metrics.connected_peers.set(self.connected() as i64);
                    let _ = self.events.try_send(NetworkEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                debug!(target: "hal9::p2p", peer = %peer_id, "peer disconnected");
                self.agents.remove(&peer_id);
                self.peer_listen_addrs.remove(&peer_id);
                self.rtts.remove(&peer_id);
                self.metrics.connected_peers.set(self.connected() as i64);
                let _ = self
                    .events
                    .try_send(NetworkEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                if let Some(p) = peer_id {
                    self.dialing.remove(&p);
                }
                debug!(target: "hal9::p2p", peer = ?peer_id, %error, "outgoing connection failed");
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour_event(ev),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(ev) => {
                self.libp2p_metrics.record(&ev);
                self.on_gossip(ev);
            }
            BehaviourEvent::Kad(ev) => {
                self.libp2p_metrics.record(&ev);
                match ev {
                    kad::Event::RoutingUpdated {
                        peer, addresses, ..
                    } => {
                        trace!(target: "hal9::p2p", %peer, "routing table updated");
                        self.maybe_dial(peer, addresses.into_vec());
                    }
                    kad::Event::OutboundQueryProgressed {
                        id,
                        result: kad::QueryResult::GetProviders(result),
                        step,
                        ..
                    } => self.on_providers(id, result, step.last),
                    _ => {}
                }
            }
            BehaviourEvent::Bitswap(ev) => self.on_bitswap(ev),
            BehaviourEvent::Identify(ev) => {
                self.libp2p_metrics.record(&ev);
                if let identify::Event::Received { peer_id, info, .. } = ev {
                    if info.protocols.contains(&KAD_PROTOCOL) {
                        for addr in &info.listen_addrs {
                            self.swarm
                                .behaviour_mut()
                                .kad
                                .add_address(&peer_id, addr.clone());
                        }
                    }
                    let mut addrs = info.listen_addrs;
                    addrs.truncate(16);
                    let _ = self.events.try_send(NetworkEvent::PeerIdentified {
                        peer: peer_id,
                        listen_addrs: addrs.clone(),
                    });
                    self.peer_listen_addrs.insert(peer_id, addrs);
                    self.agents.insert(peer_id, info.agent_version);
                }
            }
            BehaviourEvent::Ping(ev) => {
                self.libp2p_metrics.record(&ev);
                if let ping::Event {
                    peer,
                    result: Ok(rtt),
                    ..
                } = ev
                {
                    self.rtts.insert(peer, rtt);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                for (peer, addr) in list {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                    self.maybe_dial(peer, vec![addr]);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Expired(_)) => {}
            BehaviourEvent::Limits(never) => match never {},
        }
    }

    fn on_gossip(&mut self, ev: gossipsub::Event) {
        match ev {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let (outcome, acceptance) = match self.topics.get(&message.topic) {
                    None => ("unknown_topic", Validation::Ignore("not subscribed".into())),
                    Some(state) if message.data.len() > state.limit => (
                        "too_large",
                        Validation::Reject(format!(
                            "{} bytes exceed the topic limit of {}",
                            message.data.len(),
                            state.limit
                        )),
                    ),
                    Some(state) => {
                        let v = state.validator.validate(&propagation_source, &message.data);
                        let outcome = match &v {
                            Validation::Accept => "accepted",
                            Validation::Reject(_) => "rejected",
                            Validation::Ignore(_) => "ignored",
                        };
                        (outcome, v)
                    }
                };
                let topic_name = self.topic_name(&message.topic);
                let id = hex_id(&message_id);
                let acceptance = match acceptance {
                    Validation::Accept => {
                        let ev = NetworkEvent::Message {
                            id: id.clone(),
                            source: propagation_source,
                            author: message.source,
                            topic: topic_name.clone(),
                            data: Bytes::from(message.data),
                        };
                        match self.events.try_send(ev) {
                            Ok(()) => gossipsub::MessageAcceptance::Accept,
                            Err(_) => {
                                self.metrics.events_dropped.inc();
                                warn!(target: "hal9::p2p", %id, "application is behind; message dropped");
                                gossipsub::MessageAcceptance::Ignore
                            }
                        }
                    }
                    Validation::Reject(reason) => {
                        warn!(target: "hal9::p2p", %id, source = %propagation_source, topic = %topic_name, %reason, "rejected gossip message");
                        gossipsub::MessageAcceptance::Reject
                    }
                    Validation::Ignore(reason) => {
                        debug!(target: "hal9::p2p", %id, source = %propagation_source, %reason, "ignored gossip message");
                        gossipsub::MessageAcceptance::Ignore
                    }
                };
                self.metrics
                    .messages_received
                    .get_or_create(&TopicOutcome {
                        topic: topic_name,
                        outcome,
                    })
                    .inc();
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            gossipsub::Event::Subscribed { .. } => self.flush_pending(),
            _ => {}
        }
    }
}

fn hex_id(id: &gossipsub::MessageId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}
