//! The consensus engine: feeds gossip, plugin executions, content and timers
//! into the pure PoC state machine ([`hal9_consensus::Driver`]) and carries
//! out the effects it returns.
//!
//! One tokio task owns the driver. Executions run on blocking threads and
//! report back through a channel; votes leave in one signed batch per tick.
//! A member persists its vote before the batch that carries it leaves, so a
//! restart can never make it vote twice differently.

pub mod bounds;
pub mod cid;
pub mod content;
pub mod failure;
pub mod onchain;
pub mod records;
pub mod spec;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use hal9_consensus::{
    Certificate, Cid, Driver, Effect, Input, Outcome, ResultHash, Round, Salt, TaskId, TaskParams,
    Timer, ValidatorSet, VerifiedBatch, VoteBatch, VoteItem, keccak256,
};
use hal9_p2p::{
    Keypair, NetworkHandle, PeerId, Validation,
    wire::{Envelope, Kind},
};
use hal9_plugins::{ExecRequest, ModuleDigest, PluginEngine};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use self::{
    cid::RawCid,
    content::ContentSource,
    failure::{Failure, FailureKind},
    records::{TaskRecord, TaskStatus, VerdictRecord, VoteRecord},
    spec::{SpecError, SpecExt, TaskMessage},
};
use crate::{
    clock::{Clock, now_ms},
    store::Store,
};

mod config;
mod effects;
mod event_loop;
mod execution;
mod faults;
mod gossip;
mod handle;

pub use self::{
    config::{EngineConfig, EngineError},
    gossip::*,
    handle::*,
};
use self::{execution::*, faults::Fault};

/// Members gossip their certificate this long after their verdict, so the
/// votes have had a chance to arrive everywhere first.
const CERT_DELAY_MS: u64 = 500;
/// Most votes in one batch.
const MAX_BATCH: usize = hal9_consensus::wire::MAX_BATCH_ITEMS;

/// The engine task.
pub struct Engine {
    cfg: EngineConfig,
    keypair: Keypair,
    driver: Driver,
    validators: ValidatorSet,
    plugins: PluginEngine,
    content: Arc<dyn ContentSource>,
    net: NetworkHandle,
    store: Arc<Store>,
    tasks: HashMap<TaskId, TaskRecord>,
    inputs: HashMap<TaskId, Arc<[u8]>>,
    timers: BTreeMap<(u64, u64), (TaskId, Timer)>,
    timer_seq: u64,
    outbox: Vec<VoteItem>,
    certs_out: Vec<(u64, Vec<u8>)>,
    seq: u64,
    salt_secret: [u8; 32],
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Receiver<Inbound>,
    exec_tx: mpsc::Sender<ExecDone>,
    exec_rx: mpsc::Receiver<ExecDone>,
    exec_slots: Arc<tokio::sync::Semaphore>,
    /// Executions spawned and not reported back yet (running or queued).
    exec_inflight: usize,
    program_digests: ProgramDigests,
    /// Finished tasks still in memory, by when they were first seen finished.
    ended: HashMap<TaskId, u64>,
    ended_order: std::collections::BTreeSet<(u64, TaskId)>,
    metrics: bounds::EngineMetrics,
    finished: broadcast::Sender<TaskId>,
    fault: Fault,
    /// Where the engine's time comes from (the system clock unless a test injects one).
    clock: Arc<dyn Clock>,
    chain: Option<onchain::ChainCtx>,
    chain_params: Option<(u16, u16)>,
}

impl Engine {
    /// Builds the engine; returns it, its handle and the sender for inbound gossip.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: EngineConfig,
        keypair: Keypair,
        validators: ValidatorSet,
        plugins: PluginEngine,
        content: Arc<dyn ContentSource>,
        net: NetworkHandle,
        store: Arc<Store>,
        metrics: hal9_consensus::Metrics,
    ) -> Result<(Self, EngineHandle, mpsc::Sender<Inbound>), crate::store::StoreError> {
        let local = keypair.public().to_peer_id();
        let ccfg = hal9_consensus::Config {
            commit_timeout_ms: cfg.commit_timeout_ms,
            reveal_timeout_ms: cfg.reveal_timeout_ms,
            // The driver's task state follows the engine's cap, with room
            // for decided tasks it still settles after the engine let them go.
            max_tasks: 2 * cfg.max_tasks_in_memory.max(bounds::MIN_TASKS),
            ..Default::default()
        };
        let mut driver = Driver::new(local, ccfg, validators.clone()).with_metrics(metrics);
        let mut book = driver.reputation().clone();
        for (peer, bps) in store.reputation()? {
            if let Ok(p) = peer.parse::<PeerId>() {
                book.set(p, bps);
            }
        }
        driver = driver.with_reputation(book);
        let secret_src = keypair.to_protobuf_encoding().unwrap_or_default();
        let salt_secret = keccak256(&[b"hal9/salt/1", &secret_src]);
        let (cmd_tx, cmd_rx) = mpsc::channel(1024);
        let (in_tx, in_rx) = mpsc::channel(4096);
        let (exec_tx, exec_rx) = mpsc::channel(1024);
        let (finished, _) = broadcast::channel(1024);
        let metrics = bounds::EngineMetrics::default();
        let handle = EngineHandle {
            tx: cmd_tx,
            finished: finished.clone(),
            content: content.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
        };
        let engine = Self {
            exec_slots: Arc::new(tokio::sync::Semaphore::new(
                cfg.max_concurrent_executions.max(1),
            )),
            exec_inflight: 0,
            program_digests: ProgramDigests::default(),
            ended: HashMap::new(),
            ended_order: Default::default(),
            metrics,
            cfg,
            keypair,
            driver,
            validators,
            plugins,
            content,
            net,
            store,
            tasks: HashMap::new(),
            inputs: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            outbox: Vec::new(),
            certs_out: Vec::new(),
            // Strictly increasing across restarts without persisting a counter.
            seq: now_ms().saturating_mul(1000),
            salt_secret,
            commands: cmd_rx,
            inbound: in_rx,
            exec_tx,
            exec_rx,
            finished,
            fault: Fault::from_env(),
            clock: crate::clock::system(),
            chain: None,
            chain_params: None,
        };
        Ok((engine, handle, in_tx))
    }

    /// Chain mode: committees come from `postTask` events, verdicts are
    /// attested with the operator key and settled through `outbox`.
    /// Runs the engine on `clock` instead of the system clock (tests drive
    /// its timeouts, expiries and evictions by moving the clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now, on the engine's clock.
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn with_chain(
        mut self,
        link: Arc<crate::chain::ChainLink>,
        outbox: crate::chain::Outbox,
    ) -> Self {
        self.chain = Some(onchain::ChainCtx::new(link, outbox));
        self
    }

    /// The validators of the engine's gossip topics, handing accepted
    /// messages to `inbound` (the sender [`Engine::new`] returned). Signers
    /// must belong to the validator set in standalone mode.
    pub fn gossip_validators(&self, inbound: &mpsc::Sender<Inbound>) -> GossipValidators {
        let members = match self.chain.as_ref() {
            Some(c) => Membership::Registry {
                set: c.link.members.clone(),
                chain_id: c.link.deployment.chain_id,
                market: c.link.deployment.market,
            },
            None => Membership::Genesis(Arc::new(self.validators.clone())),
        };
        GossipValidators::new(members, inbound.clone())
    }

    /// Makes this node report wrong results (byzantine tests only).
    #[cfg(feature = "fault-injection")]
    pub fn with_wrong_results(mut self) -> Self {
        warn!(target: "hal9::engine", "FAULT INJECTION: this node reports wrong results");
        self.fault = Fault::WrongResult;
        self
    }
}

/// Whether the task's spec names its input by CID (nothing inline).
/// Whether a task message names its input by CID.
fn input_by_cid_spec(msg: &TaskMessage) -> bool {
    !msg.spec.inputCid.is_empty()
}

fn input_by_cid(rec: &TaskRecord) -> bool {
    hex::decode(&rec.spec)
        .ok()
        .and_then(|b| spec::TaskSpec::decode(&b).ok())
        .is_some_and(|s| !s.inputCid.is_empty())
}

/// The parameters of a standalone task: its replication and capability.
fn standalone_params(rec: &TaskRecord) -> Result<TaskParams, String> {
    let spec = hex::decode(&rec.spec)
        .map_err(|e| e.to_string())
        .and_then(|b| spec::TaskSpec::decode(&b).map_err(|e| e.to_string()))
        .map_err(|e| format!("stored spec of task {} does not decode: {e}", rec.id))?;
    let capability = spec.standalone_capability().map_err(|e| e.to_string())?;
    Ok(TaskParams::drawn(rec.replicas as usize, capability))
}

/// The deterministic failure a verdict's result stands for, if it is one.
fn verdict_failure(rec: &TaskRecord, result: &[u8; 32]) -> Option<Failure> {
    let spec = spec::TaskSpec::decode(&hex::decode(&rec.spec).ok()?).ok()?;
    Failure::identify(result, spec.fuelLimit)
}

/// Why a task ended without a quorum, for `task status`: this node's own
/// reason when it abstained (a program it could not fetch...), else what
/// the committee's votes showed.
fn failure_cause(rec: &TaskRecord, nondeterministic: bool) -> String {
    let own = rec.error.as_deref().filter(|e| !e.is_empty());
    match (own, nondeterministic) {
        (Some(e), _) => format!("no quorum; this node could not execute: {e}"),
        (None, true) => "no quorum: members revealed different results (nondeterministic program or faulty members)".into(),
        (None, false) => "no quorum: too few members committed and revealed a result in time (program or input unavailable to them, or members offline)".into(),
    }
}

fn round_name(r: Round) -> &'static str {
    match r {
        Round::Primary => "primary",
        Round::Escalation => "escalation",
    }
}

fn outcome_name(o: Outcome) -> String {
    format!("{o:?}").to_lowercase()
}
