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
    spec::{SpecError, TaskMessage},
};
use crate::{
    clock::{Clock, now_ms},
    store::Store,
};

/// Gossip topic of task announcements.
pub const TASKS_TOPIC: &str = "hal9/tasks/1";
/// Gossip topic of vote batches.
pub const VOTES_TOPIC: &str = "hal9/votes/1";
/// Gossip topic of verdict certificates, for nodes that missed votes.
pub const CERTS_TOPIC: &str = "hal9/certs/1";
/// Largest certificate message.
pub const MAX_CERT_MESSAGE: usize = 256 * 1024 + 16;
/// Members gossip their certificate this long after their verdict, so the
/// votes have had a chance to arrive everywhere first.
const CERT_DELAY_MS: u64 = 500;
/// Most votes in one batch.
const MAX_BATCH: usize = hal9_consensus::wire::MAX_BATCH_ITEMS;

/// Engine settings (the `[consensus]` section of the config).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Genesis file of the standalone validator set (relative to the home).
    pub genesis: String,
    /// Members reveal after q commits or after this long, ms.
    pub commit_timeout_ms: u64,
    /// Reveal window after the commit timeout, ms.
    pub reveal_timeout_ms: u64,
    /// Votes are signed and gossiped in one batch per tick of this length, ms.
    pub batch_interval_ms: u64,
    /// How long a member waits for a program to arrive from the network, ms.
    pub fetch_timeout_ms: u64,
    /// Executions run at once.
    pub max_concurrent_executions: usize,
    /// Executions waiting for a slot beyond the running ones; when full, a
    /// member refuses the execution and stays silent for the task.
    pub max_queued_executions: usize,
    /// Most task records held in memory (the consensus driver's task state
    /// follows the same cap). When full, the oldest finished task leaves
    /// memory at once; when every held task is unfinished, new gossiped or
    /// submitted tasks are refused.
    pub max_tasks_in_memory: usize,
    /// A finished task (and its input) leaves memory this long after it
    /// ended, ms; in chain mode not before nothing is owed for it in the
    /// settlement outbox. The API then serves it from the store.
    pub evict_after_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            genesis: "genesis.json".into(),
            commit_timeout_ms: 10_000,
            reveal_timeout_ms: 10_000,
            batch_interval_ms: 20,
            fetch_timeout_ms: 30_000,
            max_concurrent_executions: 2,
            max_queued_executions: 64,
            max_tasks_in_memory: 10_000,
            evict_after_ms: 30_000,
        }
    }
}

/// Errors the engine reports to clients.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The task spec or input was refused.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Unknown task.
    #[error("unknown task {0}")]
    UnknownTask(String),
    /// The network refused to carry the task.
    #[error("cannot gossip the task: {0}")]
    Network(String),
    /// The certificate does not check out.
    #[error("certificate rejected: {0}")]
    Certificate(String),
    /// The task has no verdict yet.
    #[error("task {0} has no verdict yet")]
    NoVerdict(String),
    /// The output could not be fetched.
    #[error("cannot fetch the output {cid}: {reason}")]
    Output {
        /// CID.
        cid: String,
        /// Why.
        reason: String,
    },
    /// The engine holds as many unfinished tasks as it may.
    #[error(
        "the node is full: {held} unfinished tasks held, the configured maximum is {max}; retry later"
    )]
    Full {
        /// Tasks held.
        held: usize,
        /// `consensus.max_tasks_in_memory`.
        max: usize,
    },
    /// The engine has stopped.
    #[error("the consensus engine has stopped")]
    Stopped,
}

enum Command {
    Submit {
        msg: TaskMessage,
        reply: oneshot::Sender<Result<TaskId, EngineError>>,
    },
    Get {
        id: TaskId,
        reply: oneshot::Sender<Option<TaskRecord>>,
    },
    List {
        reply: oneshot::Sender<Vec<TaskRecord>>,
    },
    Bounds {
        reply: oneshot::Sender<bounds::BoundsReport>,
    },
    Verify {
        id: TaskId,
        reply: oneshot::Sender<Result<VerifyReport, EngineError>>,
    },
    Reputation {
        reply: oneshot::Sender<Vec<(String, u32)>>,
    },
    Settlement {
        task: alloy::primitives::B256,
        round: u8,
        reply: oneshot::Sender<Option<crate::chain::SettlementPayload>>,
    },
    NoteTx {
        task: alloy::primitives::B256,
        action: String,
        tx: String,
    },
    OwnCommitment {
        task: alloy::primitives::B256,
        round: u8,
        reply: oneshot::Sender<Option<alloy::primitives::B256>>,
    },
    Equivocation {
        task: alloy::primitives::B256,
        reply: oneshot::Sender<Option<EquivocationProof>>,
    },
}

/// A member and two different results it signed for one task.
pub type EquivocationProof = (
    alloy::primitives::Address,
    hal9_market::Dissent,
    hal9_market::Dissent,
);

/// What `task verify` reports (a control API type).
pub use hal9_api::VerifyReport;

/// A cloneable handle to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
    finished: broadcast::Sender<TaskId>,
    content: Arc<dyn ContentSource>,
    store: Arc<Store>,
    metrics: bounds::EngineMetrics,
}

impl EngineHandle {
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Whether the engine has stopped.
    pub fn is_stopped(&self) -> bool {
        self.tx.is_closed()
    }

    /// The commitment this node stores on chain for `task` in `round`
    /// (chain mode; `None` until its vote is persisted).
    pub async fn own_commitment(
        &self,
        task: alloy::primitives::B256,
        round: u8,
    ) -> Option<alloy::primitives::B256> {
        self.call(|reply| Command::OwnCommitment { task, round, reply })
            .await
            .ok()
            .flatten()
    }

    /// An equivocation proof held for `task` (chain mode).
    pub async fn equivocation(&self, task: alloy::primitives::B256) -> Option<EquivocationProof> {
        self.call(|reply| Command::Equivocation { task, reply })
            .await
            .ok()
            .flatten()
    }

    /// The reveals to settle a verdict on chain (chain mode).
    pub async fn settlement(
        &self,
        task: alloy::primitives::B256,
        round: u8,
    ) -> Option<crate::chain::SettlementPayload> {
        self.call(|reply| Command::Settlement { task, round, reply })
            .await
            .ok()
            .flatten()
    }

    /// Records a settlement transaction this node landed.
    pub async fn note_tx(&self, task: alloy::primitives::B256, action: &str, tx: String) {
        let _ = self
            .tx
            .send(Command::NoteTx {
                task,
                action: action.to_string(),
                tx,
            })
            .await;
    }

    /// Gossips a task and starts tracking it.
    pub async fn submit(&self, msg: TaskMessage) -> Result<TaskId, EngineError> {
        self.call(|reply| Command::Submit { msg, reply }).await?
    }

    /// A task record: from memory, or for a task that left memory, from the store.
    pub async fn get(&self, id: TaskId) -> Result<Option<TaskRecord>, EngineError> {
        match self.call(|reply| Command::Get { id, reply }).await? {
            Some(rec) => Ok(Some(rec)),
            None => Ok(bounds::load(&self.store, &id, &self.metrics).await),
        }
    }

    /// Sizes of the engine's bounded state.
    pub async fn bounds(&self) -> Result<bounds::BoundsReport, EngineError> {
        self.call(|reply| Command::Bounds { reply }).await
    }

    /// Waits until the task has ended or `timeout` passed; returns the record.
    pub async fn wait(
        &self,
        id: TaskId,
        timeout: Duration,
    ) -> Result<Option<TaskRecord>, EngineError> {
        let mut rx = self.finished.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let rec = self.get(id).await?;
            if rec.as_ref().is_some_and(|r| r.is_final()) {
                return Ok(rec);
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => return self.get(id).await,
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(EngineError::Stopped),
            }
        }
    }

    /// All tasks: those in memory and those only in the store.
    pub async fn list(&self) -> Result<Vec<TaskRecord>, EngineError> {
        let mut all = self.call(|reply| Command::List { reply }).await?;
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.tasks::<TaskRecord>())
            .await
            .map_err(|_| EngineError::Stopped)?
            .unwrap_or_else(|e| {
                warn!(target: "hal9::engine", error = %e, "cannot list the stored tasks");
                Vec::new()
            });
        let held: std::collections::HashSet<String> = all.iter().map(|r| r.id.clone()).collect();
        all.extend(stored.into_iter().filter(|r| !held.contains(&r.id)));
        all.sort_by_key(|r| r.seen_at_ms);
        Ok(all)
    }

    /// Checks a task's certificate independently.
    pub async fn verify(&self, id: TaskId) -> Result<VerifyReport, EngineError> {
        self.call(|reply| Command::Verify { id, reply }).await?
    }

    /// Reputation of every member this node has seen, in basis points.
    pub async fn reputation(&self) -> Result<Vec<(String, u32)>, EngineError> {
        self.call(|reply| Command::Reputation { reply }).await
    }

    /// The verified output of a task (from this node's own execution or the content layer).
    pub async fn output(&self, id: TaskId) -> Result<Bytes, EngineError> {
        let rec = self
            .get(id)
            .await?
            .ok_or_else(|| EngineError::UnknownTask(hex::encode(id.0)))?;
        let verdict = rec
            .verdict
            .clone()
            .ok_or_else(|| EngineError::NoVerdict(rec.id.clone()))?;
        if let Some(f) = hex::decode(&verdict.result)
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .and_then(|r| verdict_failure(&rec, &r))
        {
            return Err(EngineError::Output {
                cid: verdict.output_cid,
                reason: format!("the task has no output: {}", f.describe()),
            });
        }
        if let Some(own) = rec.own_output.as_deref().and_then(|h| hex::decode(h).ok())
            && hex::encode(keccak256(&[&own])) == verdict.result
        {
            return Ok(own.into());
        }
        let cid: RawCid = verdict
            .output_cid
            .parse()
            .map_err(|e: String| EngineError::Output {
                cid: verdict.output_cid.clone(),
                reason: e,
            })?;
        let bytes = self
            .content
            .get(cid, Duration::from_secs(60))
            .await
            .map_err(|reason| EngineError::Output {
                cid: verdict.output_cid.clone(),
                reason,
            })?;
        if hex::encode(keccak256(&[&bytes])) != verdict.result {
            return Err(EngineError::Output {
                cid: verdict.output_cid,
                reason: "fetched bytes do not hash to the verdict's result".into(),
            });
        }
        Ok(bytes)
    }
}

/// An inbound message for the engine (already size-checked and validated by p2p).
#[derive(Debug)]
pub enum Inbound {
    /// A task announcement.
    Task(TaskMessage),
    /// A verified vote batch.
    Votes(VerifiedBatch),
    /// A verdict certificate whose signatures were checked (the task state
    /// checks its committee).
    Certificate(Box<hal9_consensus::VerifiedCertificate>),
    /// An EIP-712 attestation of a member (chain mode), with the operator
    /// its signature recovers to.
    Attestation(crate::chain::Attestation, alloy::primitives::Address),
    /// A chain event (chain mode).
    Chain(crate::chain::ChainInput),
}

/// The gossip validators of the engine's topics. Each message is decoded
/// and verified once, here, before gossipsub delivers or forwards it; an
/// accepted message goes straight to the engine as its verified value, so
/// nothing is decoded or signature-checked a second time. A bad signature,
/// or a signer outside the genesis validator set, is a `Reject`: gossipsub
/// does not forward the message and lowers the sender's score.
#[derive(Clone)]
pub struct GossipValidators {
    members: Membership,
    inbound: mpsc::Sender<Inbound>,
    metrics: GossipMetrics,
}

/// Who may sign what the engine's topics carry (the task state then checks
/// the committee of each task).
#[derive(Clone)]
pub enum Membership {
    /// Standalone: the genesis validator set. An outsider is rejected.
    Genesis(Arc<ValidatorSet>),
    /// Chain mode: the neurons the registry lists. An outsider is ignored
    /// (not forwarded, not delivered, no penalty: it may have registered
    /// moments ago, before this node read the event). Until the registry
    /// has been read once, signers are let through.
    Registry {
        /// The registry's neurons.
        set: Arc<crate::chain::members::RegistrySet>,
        /// EIP-712 domain of attestations: chain id.
        chain_id: u64,
        /// EIP-712 domain of attestations: the market contract.
        market: alloy::primitives::Address,
    },
}

/// Counters of the engine's gossip validators, by topic and outcome.
#[derive(Clone, Default)]
struct GossipMetrics {
    checked: prometheus_client::metrics::family::Family<
        Vec<(&'static str, &'static str)>,
        prometheus_client::metrics::counter::Counter,
    >,
}

impl GossipMetrics {
    fn count(&self, topic: &'static str, v: &Validation) -> Validation {
        let outcome = match v {
            Validation::Accept => "accepted",
            Validation::Reject(_) => "rejected",
            Validation::Ignore(_) => "ignored",
        };
        self.checked
            .get_or_create(&vec![("topic", topic), ("outcome", outcome)])
            .inc();
        v.clone()
    }
}

impl GossipValidators {
    /// Validators that hand accepted messages to `inbound`.
    pub fn new(members: Membership, inbound: mpsc::Sender<Inbound>) -> Self {
        Self {
            members,
            inbound,
            metrics: GossipMetrics::default(),
        }
    }

    /// Registers the `hal9_engine_gossip_checked` counter.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "hal9_engine_gossip_checked",
            "Gossip messages checked by the engine's validators, by topic and outcome",
            self.metrics.checked.clone(),
        );
    }

    /// Hands a verified message to the engine. A full queue means the
    /// engine is overloaded: the message is ignored (not forwarded, no
    /// penalty for the sender).
    fn deliver(&self, msg: Inbound) -> Validation {
        match self.inbound.try_send(msg) {
            Ok(()) => Validation::Accept,
            Err(mpsc::error::TrySendError::Full(_)) => {
                Validation::Ignore("the engine's inbound queue is full".into())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Validation::Ignore("the engine has stopped".into())
            }
        }
    }

    /// `Err` with the verdict on a message signed by `peer` when it may not sign.
    fn admit(&self, peer: &PeerId, what: &str) -> Result<(), Validation> {
        use crate::chain::members::Standing;
        match &self.members {
            Membership::Genesis(set) if set.contains(peer) => Ok(()),
            Membership::Genesis(_) => Err(Validation::Reject(format!(
                "{what} signed by {peer}, which is not in the validator set"
            ))),
            Membership::Registry { set, .. } => match set.peer(peer) {
                Standing::Registered | Standing::NotLoaded => Ok(()),
                Standing::Unknown => Err(Validation::Ignore(format!(
                    "{what} signed by {peer}, which the registry does not list"
                ))),
            },
        }
    }

    fn check_task(&self, data: &[u8]) -> Validation {
        match TaskMessage::decode(data) {
            Ok(t) => self.deliver(Inbound::Task(t)),
            Err(SpecError::Unsupported(v)) => {
                Validation::Ignore(format!("task message version {v}"))
            }
            Err(e) => Validation::Reject(e.to_string()),
        }
    }

    fn check_votes(&self, data: &[u8]) -> Validation {
        match decode_votes(data) {
            Ok(b) => match self.admit(&b.signer(), "vote batch") {
                Ok(()) => self.deliver(Inbound::Votes(b)),
                Err(v) => v,
            },
            Err((true, e)) => Validation::Ignore(e),
            Err((false, e)) => Validation::Reject(e),
        }
    }

    fn check_certificate(&self, data: &[u8]) -> Validation {
        let cert = match decode_certificate(data) {
            Ok(c) => c,
            Err((true, e)) => return Validation::Ignore(e),
            Err((false, e)) => return Validation::Reject(e),
        };
        let verified = match cert.verify_signatures() {
            Ok(v) => v,
            Err(e) => return Validation::Reject(format!("certificate does not verify: {e}")),
        };
        for p in verified.signers() {
            if let Err(v) = self.admit(p, "certificate") {
                return v;
            }
        }
        self.deliver(Inbound::Certificate(Box::new(verified)))
    }

    fn check_attestation(&self, data: &[u8]) -> Validation {
        use crate::chain::members::Standing;
        let Membership::Registry {
            set,
            chain_id,
            market,
        } = &self.members
        else {
            return Validation::Ignore("attestations are a chain-mode message".into());
        };
        match crate::chain::Attestation::decode(data) {
            Ok(a) => {
                let signer = match a.signer(*chain_id, *market) {
                    Ok(s) => s,
                    Err(e) => {
                        return Validation::Reject(format!("attestation does not verify: {e}"));
                    }
                };
                if set.operator(&signer) == Standing::Unknown {
                    return Validation::Ignore(format!(
                        "attestation signed by {signer}, which the registry does not list"
                    ));
                }
                self.deliver(Inbound::Attestation(a, signer))
            }
            Err(crate::chain::attest::AttestError::Unsupported(v)) => {
                Validation::Ignore(format!("attestation version {v}"))
            }
            Err(e) => Validation::Reject(e.to_string()),
        }
    }
}

struct TopicValidator {
    v: GossipValidators,
    check: fn(&GossipValidators, &[u8]) -> Validation,
    topic: &'static str,
}

impl hal9_p2p::Validator for TopicValidator {
    fn validate(&self, _: &PeerId, data: &[u8]) -> Validation {
        let v = (self.check)(&self.v, data);
        self.v.metrics.count(self.topic, &v)
    }
}

/// Subscribes the node to the tasks, votes and certificates topics with
/// their validators.
pub async fn subscribe_topics(
    net: &NetworkHandle,
    v: &GossipValidators,
) -> Result<(), hal9_p2p::Error> {
    let topic = |check, topic| TopicValidator {
        v: v.clone(),
        check,
        topic,
    };
    net.subscribe(
        TASKS_TOPIC,
        spec::MAX_TASK_MESSAGE,
        topic(GossipValidators::check_task, "tasks"),
    )
    .await?;
    net.subscribe(
        VOTES_TOPIC,
        hal9_consensus::wire::MAX_VOTE_BATCH_BYTES + 64,
        topic(GossipValidators::check_votes, "votes"),
    )
    .await?;
    net.subscribe(
        CERTS_TOPIC,
        MAX_CERT_MESSAGE,
        topic(GossipValidators::check_certificate, "certificates"),
    )
    .await
}

/// Subscribes the attestations topic (chain mode).
pub async fn subscribe_chain_topics(
    net: &NetworkHandle,
    v: &GossipValidators,
) -> Result<(), hal9_p2p::Error> {
    net.subscribe(
        crate::chain::ATTEST_TOPIC,
        crate::chain::attest::MAX_ATTEST_BYTES,
        TopicValidator {
            v: v.clone(),
            check: GossipValidators::check_attestation,
            topic: "attestations",
        },
    )
    .await
}

/// Decodes a certificate envelope (signatures are checked by the caller).
pub fn decode_certificate(data: &[u8]) -> Result<Certificate, (bool, String)> {
    let env =
        Envelope::decode(data, MAX_CERT_MESSAGE).map_err(|e| (e.is_ignorable(), e.to_string()))?;
    if env.kind != Kind::Certificate {
        return Err((false, "expected a certificate envelope".into()));
    }
    Certificate::decode(&env.payload).map_err(|e| (!e.is_penalised(), e.to_string()))
}

/// Hands a network event to the engine if it belongs to it; gives it back
/// otherwise. `Err` means the engine has stopped.
pub async fn route(
    ev: hal9_p2p::NetworkEvent,
    _inbound: &mpsc::Sender<Inbound>,
) -> Result<Option<hal9_p2p::NetworkEvent>, EngineError> {
    match &ev {
        // The topic validators have already handed these to the engine.
        hal9_p2p::NetworkEvent::Message { topic, .. }
            if topic == TASKS_TOPIC
                || topic == VOTES_TOPIC
                || topic == CERTS_TOPIC
                || topic == crate::chain::ATTEST_TOPIC =>
        {
            Ok(None)
        }
        _ => Ok(Some(ev)),
    }
}

/// Decodes and verifies a votes envelope; the error says whether to ignore it.
pub fn decode_votes(data: &[u8]) -> Result<VerifiedBatch, (bool, String)> {
    let env = Envelope::decode(data, hal9_consensus::wire::MAX_VOTE_BATCH_BYTES)
        .map_err(|e| (e.is_ignorable(), e.to_string()))?;
    if env.kind != Kind::Votes {
        return Err((false, "expected a votes envelope".into()));
    }
    hal9_consensus::validate_vote_message(&env.payload).map_err(|e| {
        let ignore = matches!(e.action(), hal9_consensus::ValidationAction::Ignore);
        (ignore, e.to_string())
    })
}

/// Runs one task's program: fetch by CID, load (cached by digest), execute.
struct ExecJob {
    task: TaskId,
    round: Round,
    program: RawCid,
    /// The inline input, or `None` when the spec names it by CID.
    input: Option<Arc<[u8]>>,
    input_cid: Option<RawCid>,
    input_hash: [u8; 32],
    fuel: u64,
    /// Keep the output unannounced (chain mode) until the commit phase ended.
    sealed: bool,
}

/// How one execution ended.
enum ExecResult {
    /// The program's output and its CID.
    Output(Vec<u8>, RawCid),
    /// A deterministic failure: committed to like an output. The string is
    /// the local, detailed reason (never part of the result).
    Failure(Failure, String),
    /// A host-dependent failure: this member abstains.
    Abstain(String),
}

struct ExecDone {
    task: TaskId,
    round: Round,
    result: ExecResult,
}

/// Most program CIDs whose module digest the engine remembers.
const MAX_PROGRAM_DIGESTS: usize = 1024;

/// Module digests (SHA-256 of the module bytes) of programs fetched by CID:
/// a raw-leaf CID names that digest itself, a dag-pb (multi-block) CID does
/// not, so its digest is learnt when the bytes are first fetched.
#[derive(Clone, Default)]
struct ProgramDigests(Arc<std::sync::Mutex<HashMap<RawCid, ModuleDigest>>>);

impl ProgramDigests {
    fn get(&self, cid: &RawCid) -> Option<ModuleDigest> {
        if cid.codec() == cid::RAW {
            return Some(ModuleDigest(cid.digest()));
        }
        self.0.lock().ok()?.get(cid).copied()
    }

    fn insert(&self, cid: RawCid, digest: ModuleDigest) {
        if cid.codec() == cid::RAW {
            return;
        }
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= MAX_PROGRAM_DIGESTS {
                m.clear();
            }
            m.insert(cid, digest);
        }
    }
}

/// What one execution needs, cloned into its task.
struct ExecCtx {
    content: Arc<dyn ContentSource>,
    plugins: PluginEngine,
    digests: ProgramDigests,
    fetch_timeout: Duration,
}

impl ExecCtx {
    /// The loaded module of `program`: from the cache when its digest is
    /// known, else fetched (the content layer checks every block against
    /// the CID), hashed and compiled. Errors are host-dependent: abstain.
    async fn module(&self, program: RawCid) -> Result<ModuleDigest, String> {
        if let Some(d) = self.digests.get(&program)
            && self.plugins.cached(&d).is_some()
        {
            return Ok(d);
        }
        let wasm = self
            .content
            .get(program, self.fetch_timeout)
            .await
            .map_err(|e| format!("program {e}"))?;
        let p2 = self.plugins.clone();
        let digest = tokio::task::spawn_blocking(move || {
            // The digest of the module bytes, whatever the CID's layout.
            let digest = ModuleDigest::of(&wasm);
            p2.load_verified(digest, &wasm).map(|_| digest)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("program {program} cannot be loaded: {e}"))?;
        self.digests.insert(program, digest);
        Ok(digest)
    }

    /// The input: inline, or fetched by CID (at most [`spec::MAX_INPUT_BYTES`])
    /// and checked against the spec's `inputHash`.
    async fn input(&self, job: &ExecJob) -> Result<Arc<[u8]>, ExecResult> {
        if let Some(i) = &job.input {
            return Ok(i.clone());
        }
        let fail = |kind, detail: String| {
            ExecResult::Failure(
                Failure {
                    kind,
                    fuel_limit: job.fuel,
                },
                detail,
            )
        };
        let Some(cid) = job.input_cid else {
            return Err(ExecResult::Abstain("the task's input is not known".into()));
        };
        let bytes = self
            .content
            .get(cid, self.fetch_timeout)
            .await
            .map_err(|e| ExecResult::Abstain(format!("input {e}")))?;
        if bytes.len() > spec::MAX_INPUT_BYTES {
            return Err(fail(
                FailureKind::InputTooLarge,
                format!(
                    "input {cid} has {} bytes, expected at most {}",
                    bytes.len(),
                    spec::MAX_INPUT_BYTES
                ),
            ));
        }
        if keccak256(&[&bytes]) != job.input_hash {
            return Err(fail(
                FailureKind::InputMismatch,
                format!("input {cid} does not hash to the spec's inputHash"),
            ));
        }
        Ok(Arc::from(&bytes[..]))
    }

    async fn run(&self, job: ExecJob, wrong: bool) -> ExecResult {
        let digest = match self.module(job.program).await {
            Ok(d) => d,
            Err(reason) => return ExecResult::Abstain(reason),
        };
        let input = match self.input(&job).await {
            Ok(i) => i,
            Err(r) => return r,
        };
        let fuel = job.fuel;
        let req = ExecRequest {
            module: digest,
            input,
            task_id: hal9_plugins::TaskId(job.task.0),
            limits: None,
        };
        let p2 = self.plugins.clone();
        let out = tokio::task::spawn_blocking(move || {
            let mut req = req;
            let Some(plugin) = p2.cached(&req.module) else {
                return Err(None);
            };
            let mut limits = p2.default_limits(&plugin);
            // The spec's fuel, exactly (validated against spec::MAX_FUEL),
            // and the network's output limit: deterministic on every member.
            limits.fuel = fuel;
            limits.output_bytes = spec::MAX_OUTPUT_BYTES;
            limits.wall_clock = spec::EXEC_WALL_CLOCK;
            req.limits = Some(limits);
            p2.execute(&req).map_err(Some)
        })
        .await;
        let out = match out {
            Ok(Ok(out)) => out,
            Ok(Err(None)) => return ExecResult::Abstain("module evicted before it ran".into()),
            Ok(Err(Some(e))) => {
                return match FailureKind::of_plugin_error(&e) {
                    Some(kind) => ExecResult::Failure(
                        Failure {
                            kind,
                            fuel_limit: fuel,
                        },
                        e.to_string(),
                    ),
                    None => ExecResult::Abstain(e.to_string()),
                };
            }
            Err(e) => return ExecResult::Abstain(e.to_string()),
        };
        let mut output = out.output;
        if wrong {
            output.push(0xff);
        }
        let stored = if job.sealed {
            self.content.add_sealed_result(Bytes::from(output.clone()))
        } else {
            self.content.add_result(Bytes::from(output.clone()))
        };
        match stored.await {
            Ok(cid) => ExecResult::Output(output, cid),
            Err(e) => ExecResult::Abstain(format!("cannot store the output: {e}")),
        }
    }
}

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

/// Deliberate misbehaviour for tests (compiled only with `fault-injection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Every result this node reports is wrong.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    WrongResult,
    /// Wrong (all the same way) when this node sits at one of these
    /// positions (bitmask) of a task's primary committee: with every node
    /// configured alike, the chosen members collude on one wrong result.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    WrongRanks(u32),
    /// As `WrongRanks`, and these members never send their verdict on
    /// chain (a majority that hopes its task just expires unchallenged).
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    WrongRanksSilent(u32),
    /// Tasks submitted through this node are never gossiped.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    NoTaskGossip,
    /// At these primary-committee positions the member also gossips a
    /// second signed result that differs from its first (equivocation).
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    EquivocateRanks(u32),
    /// At these positions the member never executes: it copies the first
    /// result another member reveals and tries to commit to it on chain
    /// (copy-and-join: paid without computing, if the protocol let it).
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    CopyRanks(u32),
}

impl Fault {
    fn from_env() -> Self {
        #[cfg(feature = "fault-injection")]
        {
            let v = std::env::var("HAL9_FAULT").unwrap_or_default();
            if v == "wrong-result" {
                warn!(target: "hal9::engine", "FAULT INJECTION: this node reports wrong results");
                return Fault::WrongResult;
            }
            if v == "no-task-gossip" {
                warn!(target: "hal9::engine", "FAULT INJECTION: this node never gossips the tasks submitted to it");
                return Fault::NoTaskGossip;
            }
            let mask_of = |ranks: &str| {
                ranks
                    .split(',')
                    .filter_map(|r| r.trim().parse::<u32>().ok())
                    .filter(|r| *r < 32)
                    .fold(0u32, |m, r| m | (1 << r))
            };
            if let Some(ranks) = v.strip_prefix("equivocate-ranks:") {
                warn!(target: "hal9::engine", ranks, "FAULT INJECTION: committee members at these positions sign two different results");
                return Fault::EquivocateRanks(mask_of(ranks));
            }
            if let Some(ranks) = v.strip_prefix("copy-ranks:") {
                warn!(target: "hal9::engine", ranks, "FAULT INJECTION: committee members at these positions copy another member's result instead of computing");
                return Fault::CopyRanks(mask_of(ranks));
            }
            let silent = v.starts_with("wrong-ranks-silent:");
            if let Some(ranks) = v
                .strip_prefix("wrong-ranks:")
                .or_else(|| v.strip_prefix("wrong-ranks-silent:"))
            {
                let mask = ranks
                    .split(',')
                    .filter_map(|r| r.trim().parse::<u32>().ok())
                    .filter(|r| *r < 32)
                    .fold(0u32, |m, r| m | (1 << r));
                warn!(target: "hal9::engine", ranks, silent, "FAULT INJECTION: committee members at these positions report wrong results");
                return if silent {
                    Fault::WrongRanksSilent(mask)
                } else {
                    Fault::WrongRanks(mask)
                };
            }
        }
        Fault::None
    }
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

    /// Reloads tasks and own votes from the store and resumes them.
    async fn restore(&mut self) {
        let store = self.store.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::store::StoreError>((
                store.tasks::<TaskRecord>()?,
                store.votes::<VoteRecord>()?,
            ))
        })
        .await;
        let (tasks, votes) = match loaded {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                warn!(target: "hal9::engine", error = %e, "cannot reload tasks");
                return;
            }
            Err(e) => {
                warn!(target: "hal9::engine", error = %e, "cannot reload tasks");
                return;
            }
        };
        let now = self.now();
        let stored = tasks.len();
        // Records first: the restored votes' effects look them up. Finished
        // tasks stay in the store (the API loads them from there), except in
        // chain mode those the settlement outbox still owes something for.
        let mut to_resume = Vec::new();
        let mut finished = Vec::new();
        for rec in tasks {
            let Some(id) = hex::decode(&rec.id)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            else {
                continue;
            };
            let id = TaskId(id);
            if rec.is_final() && !self.owed(&id, &rec) {
                continue;
            }
            if rec.is_final() {
                finished.push(id);
            }
            if let Ok(input) = hex::decode(&rec.input) {
                self.inputs.insert(id, input.into());
            }
            if let (Some(ctx), Some(parent)) = (
                self.chain.as_mut(),
                rec.chain.as_ref().and_then(|c| c.parent.as_deref()),
            ) && let Some(p) = hex::decode(parent)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            {
                ctx.instances.insert(id, TaskId(p));
            }
            if !rec.is_final() && rec.status != TaskStatus::AwaitingChain {
                let params = if rec.chain.is_some() {
                    let committee: Option<Vec<PeerId>> =
                        rec.committee.iter().map(|p| p.parse().ok()).collect();
                    committee.map(TaskParams::fixed)
                } else {
                    standalone_params(&rec).ok()
                };
                if let Some(params) = params {
                    to_resume.push((id, params));
                }
            }
            self.restore_waiting(id, &rec);
            self.tasks.insert(id, rec);
        }
        for id in finished {
            self.note_final(id, now);
        }
        let mut voted = std::collections::HashSet::new();
        for v in votes.iter().filter_map(VoteRecord::to_vote) {
            let unfinished = self.tasks.get(&v.task).is_some_and(|r| !r.is_final());
            voted.insert(v.task);
            if unfinished {
                let fx = self.driver.apply(Input::Restore { vote: v, now });
                self.carry_out(fx).await;
            }
        }
        let mut resumed = 0;
        for (id, params) in to_resume {
            if voted.contains(&id) {
                continue;
            }
            let fx = self.driver.apply(Input::TaskSeen {
                task: id,
                params,
                now,
            });
            self.carry_out(fx).await;
            resumed += 1;
        }
        info!(target: "hal9::engine", stored, in_memory = self.tasks.len(), resumed, restored_votes = voted.len(), "engine state reloaded");
        if self.tasks.len() > self.cfg.max_tasks_in_memory {
            warn!(target: "hal9::engine", in_memory = self.tasks.len(), max = self.cfg.max_tasks_in_memory, "more unfinished tasks restored than consensus.max_tasks_in_memory; new tasks are refused until they end");
        }
        self.note_sizes();
    }

    /// Runs the engine until every handle and the inbound sender are dropped.
    pub async fn run(mut self) {
        self.restore().await;
        let mut tick =
            tokio::time::interval(Duration::from_millis(self.cfg.batch_interval_ms.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_sweep = 0;
        loop {
            // (The tick below wakes the loop too, so a clock moved by a
            // test fires due timers without waiting for this sleep.)
            let next = self.timers.keys().next().map(|(at, _)| *at);
            let delay = next.map(|at| at.saturating_sub(self.now()));
            let sleep = async {
                match delay {
                    Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(c) => self.on_command(c).await,
                    None => break,
                },
                msg = self.inbound.recv() => match msg {
                    Some(m) => self.on_inbound(m).await,
                    None => break,
                },
                Some(done) = self.exec_rx.recv() => self.on_exec_done(done).await,
                _ = tick.tick() => {
                    self.flush_votes().await;
                    self.flush_certificates().await;
                    let now = self.now();
                    if now >= next_sweep {
                        next_sweep = now + onchain::EXPIRY_SWEEP_MS;
                        self.expire_waiting(now).await;
                        self.evict_finished(now);
                        self.note_input_bytes();
                    }
                }
                _ = sleep => self.fire_timers().await,
            }
            self.note_sizes();
        }
        info!(target: "hal9::engine", "engine stopped");
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Submit { msg, reply } => {
                let id = msg.id;
                if !self.known(&id).await {
                    // In chain mode the fee is already escrowed: never refused.
                    let must = self.chain_mode();
                    if !self.admit(&id, must).await {
                        let _ = reply.send(Err(EngineError::Full {
                            held: self.tasks.len(),
                            max: self.cfg.max_tasks_in_memory,
                        }));
                        return;
                    }
                    // In chain mode the fee is escrowed and the input named
                    // by CID by now: members start from `TaskPosted`, and a
                    // failed gossip is no reason to report a failure.
                    let needed = !(self.chain_mode() && input_by_cid_spec(&msg));
                    let sent = if matches!(self.fault, Fault::NoTaskGossip) {
                        Err("fault injection: task gossip off".to_string())
                    } else {
                        self.net
                            .publish(TASKS_TOPIC, msg.encode())
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    };
                    match sent {
                        Ok(()) => {}
                        Err(e) if needed => {
                            let _ = reply.send(Err(EngineError::Network(e)));
                            return;
                        }
                        Err(e) => {
                            warn!(target: "hal9::engine", task = %hex::encode(id.0), error = %e, "cannot gossip the task; members start from its TaskPosted event");
                        }
                    }
                    if self.chain_mode() {
                        self.chain_on_task(msg, true).await;
                    } else {
                        self.on_task(msg).await;
                    }
                }
                let _ = reply.send(Ok(id));
            }
            Command::Get { id, reply } => {
                let _ = reply.send(self.tasks.get(&id).cloned());
            }
            Command::List { reply } => {
                let mut all: Vec<_> = self.tasks.values().cloned().collect();
                all.sort_by_key(|r| r.seen_at_ms);
                let _ = reply.send(all);
            }
            Command::Bounds { reply } => {
                let _ = reply.send(self.bounds_report());
            }
            Command::Verify { id, reply } => {
                let res = match self.tasks.get(&id) {
                    Some(rec) => self.verify(id, rec),
                    None => match bounds::load(&self.store, &id, &self.metrics).await {
                        Some(rec) => self.verify(id, &rec),
                        None => Err(EngineError::UnknownTask(hex::encode(id.0))),
                    },
                };
                let _ = reply.send(res);
            }
            Command::Reputation { reply } => {
                let mut v: Vec<_> = self
                    .driver
                    .reputation()
                    .entries()
                    .map(|(p, b)| (p.to_string(), b))
                    .collect();
                v.sort();
                let _ = reply.send(v);
            }
            Command::Settlement { task, round, reply } => {
                let _ = reply.send(self.settlement_payload(task, round).await);
            }
            Command::OwnCommitment { task, round, reply } => {
                let _ = reply.send(self.own_commitment(task, round).await);
            }
            Command::Equivocation { task, reply } => {
                let _ = reply.send(self.equivocation_payload(task));
            }
            Command::NoteTx { task, action, tx } => self.note_tx(task, action, tx).await,
        }
    }

    fn verify(&self, id: TaskId, rec: &TaskRecord) -> Result<VerifyReport, EngineError> {
        let v = rec
            .verdict
            .as_ref()
            .ok_or_else(|| EngineError::NoVerdict(rec.id.clone()))?;
        let bytes = hex::decode(&v.certificate)
            .map_err(|e| EngineError::Certificate(format!("stored certificate is not hex: {e}")))?;
        let cert =
            Certificate::decode(&bytes).map_err(|e| EngineError::Certificate(e.to_string()))?;
        if cert.task != id {
            return Err(EngineError::Certificate(
                "certificate is for another task".into(),
            ));
        }
        let params = if rec.chain.is_some() {
            let committee: Option<Vec<PeerId>> =
                rec.committee.iter().map(|p| p.parse().ok()).collect();
            TaskParams::fixed(committee.ok_or_else(|| {
                EngineError::Certificate("stored committee holds an invalid peer id".into())
            })?)
        } else {
            standalone_params(rec).map_err(EngineError::Certificate)?
        };
        cert.verify(&self.validators, &params)
            .map_err(|e| EngineError::Certificate(e.to_string()))?;
        let committee = match cert.round {
            Round::Primary => params.r,
            Round::Escalation => 2 * rec.replicas as usize + 1,
        };
        let output_matches = rec
            .own_output
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .map(|o| keccak256(&[&o]) == cert.result.0);
        Ok(VerifyReport {
            task: rec.id.clone(),
            round: round_name(cert.round).into(),
            result: hex::encode(cert.result.0),
            output_cid: v.output_cid.clone(),
            signers: cert
                .votes
                .iter()
                .map(|v| v.reveal.signer.to_string())
                .collect(),
            quorum: hal9_consensus::quorum(committee),
            output_matches,
        })
    }

    async fn on_inbound(&mut self, msg: Inbound) {
        match msg {
            Inbound::Task(t) => {
                if self.chain_mode() {
                    self.chain_on_task(t, false).await;
                } else if !self.known(&t.id).await && self.admit(&t.id, false).await {
                    self.on_task(t).await;
                }
            }
            Inbound::Attestation(a, signer) => self.record_attestation(a, signer).await,
            Inbound::Chain(c) => self.on_chain(c).await,
            Inbound::Votes(batch) => {
                let fx = self.driver.apply(Input::Votes {
                    batch,
                    now: self.now(),
                });
                self.carry_out(fx).await;
            }
            Inbound::Certificate(cert) => {
                // Only for tasks this node follows and has not decided yet.
                if self
                    .tasks
                    .get(&cert.certificate().task)
                    .is_some_and(|r| !r.is_final())
                {
                    let fx = self.driver.apply(Input::VerifiedCertificateSeen {
                        certificate: *cert,
                        now: self.now(),
                    });
                    self.carry_out(fx).await;
                }
            }
        }
    }

    async fn on_task(&mut self, t: TaskMessage) {
        let id = t.id;
        // Standalone sortition draws from the genesis validators offering
        // the spec's capability (ADR 0021), with their genesis weights.
        let capability = t.spec.standalone_capability();
        let params = TaskParams {
            r: t.spec.replicas as usize,
            capability: capability.clone().ok().flatten(),
            committee: None,
        };
        let committee = self
            .validators
            .committee(&id, params.r, params.capability.as_deref())
            .map(|c| c.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default();
        let program = t.spec.program().map(|c| c.to_string()).unwrap_or_default();
        let rec = TaskRecord {
            id: hex::encode(id.0),
            spec: hex::encode(t.spec.encode()),
            input: hex::encode(&t.input),
            program,
            replicas: t.spec.replicas,
            status: TaskStatus::Pending,
            committee,
            escalation_committee: Vec::new(),
            own_output: None,
            verdict: None,
            nondeterministic: false,
            error: None,
            seen_at_ms: self.now(),
            outcomes: Vec::new(),
            chain: None,
        };
        info!(target: "hal9::engine", task = %rec.id, program = %rec.program, r = rec.replicas, capability = ?params.capability, "task seen");
        self.inputs.insert(id, t.input.into());
        self.tasks.insert(id, rec);
        if let Err(e) = capability {
            if let Some(rec) = self.tasks.get_mut(&id) {
                warn!(target: "hal9::engine", task = %rec.id, error = %e, "task rejected");
                rec.status = TaskStatus::Rejected;
                rec.error = Some(e.to_string());
            }
            self.persist_task(id).await;
            let _ = self.finished.send(id);
            return;
        }
        self.persist_task(id).await;
        let fx = self.driver.apply(Input::TaskSeen {
            task: id,
            params,
            now: self.now(),
        });
        self.carry_out(fx).await;
    }

    async fn persist_task(&mut self, id: TaskId) {
        let Some(rec) = self.tasks.get(&id).cloned() else {
            return;
        };
        if rec.is_final() {
            self.note_final(id, self.now());
        }
        let store = self.store.clone();
        let res = tokio::task::spawn_blocking(move || store.put_task(&rec.id, &rec)).await;
        if let Ok(Err(e)) = res {
            warn!(target: "hal9::engine", error = %e, "cannot persist task");
        }
    }

    async fn fire_timers(&mut self) {
        let now = self.now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (task, timer) = entry.remove();
            let fx = self.driver.apply(Input::Timeout { task, timer, now });
            self.carry_out(fx).await;
        }
    }

    async fn flush_certificates(&mut self) {
        let now = self.now();
        let due: Vec<Vec<u8>> = {
            let (due, keep): (Vec<_>, Vec<_>) =
                self.certs_out.drain(..).partition(|(at, _)| *at <= now);
            self.certs_out = keep;
            due.into_iter().map(|(_, b)| b).collect()
        };
        for bytes in due {
            if let Err(e) = self.net.publish(CERTS_TOPIC, bytes).await {
                debug!(target: "hal9::engine", error = %e, "cannot gossip certificate");
            }
        }
    }

    async fn flush_votes(&mut self) {
        while !self.outbox.is_empty() {
            let n = self.outbox.len().min(MAX_BATCH);
            let items: Vec<VoteItem> = self.outbox.drain(..n).collect();
            self.seq += 1;
            let batch = match VoteBatch::sign(&self.keypair, self.seq, items) {
                Ok(b) => b,
                Err(e) => {
                    warn!(target: "hal9::engine", error = %e, "cannot sign vote batch");
                    continue;
                }
            };
            let bytes = Envelope::new(Kind::Votes, batch.encode()).encode();
            if let Err(e) = self.net.publish(VOTES_TOPIC, bytes).await {
                warn!(target: "hal9::engine", error = %e, "cannot gossip vote batch");
            }
            match batch.verify() {
                Ok(own) => {
                    let fx = self.driver.apply(Input::Votes {
                        batch: own,
                        now: self.now(),
                    });
                    Box::pin(self.carry_out(fx)).await;
                }
                Err(e) => warn!(target: "hal9::engine", error = %e, "own batch does not verify"),
            }
        }
    }

    fn salt(&self, task: &TaskId, round: Round) -> Salt {
        Salt(keccak256(&[&self.salt_secret, &task.0, &[round.as_u8()]]))
    }

    async fn on_exec_done(&mut self, done: ExecDone) {
        self.exec_inflight = self.exec_inflight.saturating_sub(1);
        let now = self.now();
        let fx = match done.result {
            ExecResult::Failure(failure, detail) => {
                info!(target: "hal9::engine", task = %hex::encode(done.task.0), kind = failure.kind.label(), %detail, "deterministic failure; committing to it");
                if let Some(rec) = self.tasks.get_mut(&done.task) {
                    rec.error = Some(detail);
                }
                self.persist_task(done.task).await;
                let Some(cid) = Cid::new(failure.cid().to_bytes()) else {
                    return;
                };
                self.driver.apply(Input::ExecutionFinished {
                    task: done.task,
                    round: done.round,
                    result: failure.result(),
                    cid,
                    salt: self.salt(&done.task, done.round),
                    now,
                })
            }
            ExecResult::Output(output, cid) => {
                let result = ResultHash::of_output(&output);
                if let Some(rec) = self.tasks.get_mut(&done.task) {
                    rec.own_output = Some(hex::encode(&output));
                }
                self.persist_task(done.task).await;
                let Some(cid) = Cid::new(cid.to_bytes()) else {
                    return;
                };
                self.driver.apply(Input::ExecutionFinished {
                    task: done.task,
                    round: done.round,
                    result,
                    cid,
                    salt: self.salt(&done.task, done.round),
                    now,
                })
            }
            ExecResult::Abstain(reason) => {
                warn!(target: "hal9::engine", task = %hex::encode(done.task.0), %reason, "execution failed on this host; abstaining");
                if let Some(rec) = self.tasks.get_mut(&done.task) {
                    // The task may already have failed for want of a quorum
                    // while this member was still fetching: say why now.
                    let failed = rec.status == TaskStatus::Failed;
                    rec.error = Some(reason);
                    if failed {
                        rec.error = Some(failure_cause(rec, rec.nondeterministic));
                    }
                }
                self.persist_task(done.task).await;
                self.driver.apply(Input::ExecutionFailed {
                    task: done.task,
                    round: done.round,
                    now,
                })
            }
        };
        self.carry_out(fx).await;
    }

    /// Whether fault injection makes this node's result for `task` wrong.
    fn wrong_for(&self, task: &TaskId) -> bool {
        match self.fault {
            Fault::WrongResult => true,
            Fault::WrongRanks(mask) | Fault::WrongRanksSilent(mask) => self.at_rank(task, mask),
            _ => false,
        }
    }

    /// Whether this node sits at one of the positions of `mask` in `task`'s
    /// primary committee (fault injection).
    fn at_rank(&self, task: &TaskId, mask: u32) -> bool {
        let local = self.keypair.public().to_peer_id().to_string();
        self.tasks
            .get(task)
            .filter(|r| r.chain.as_ref().is_none_or(|c| c.parent.is_none()))
            .and_then(|r| r.committee.iter().position(|p| *p == local))
            .is_some_and(|i| i < 32 && mask & (1 << i) != 0)
    }

    /// Whether fault injection makes this node equivocate on `task`.
    pub(crate) fn equivocates(&self, task: &TaskId) -> bool {
        matches!(self.fault, Fault::EquivocateRanks(m) if self.at_rank(task, m))
    }

    /// Whether fault injection makes this node copy instead of computing `task`.
    pub(crate) fn copies(&self, task: &TaskId) -> bool {
        matches!(self.fault, Fault::CopyRanks(m) if self.at_rank(task, m))
    }

    /// Whether fault injection makes this node withhold `task`'s primary verdict.
    fn withholds(&self, task: &TaskId) -> bool {
        matches!(self.fault, Fault::WrongRanksSilent(_)) && self.wrong_for(task)
    }

    /// Most executions spawned at once: the running ones and the queue.
    fn exec_capacity(&self) -> usize {
        self.cfg.max_concurrent_executions.max(1) + self.cfg.max_queued_executions
    }

    /// Starts an execution when the bounded queue has room; false when it
    /// is full (the caller makes this member stay silent for the task).
    fn spawn_execution(&mut self, job: ExecJob) -> bool {
        if self.exec_inflight >= self.exec_capacity() {
            return false;
        }
        self.exec_inflight += 1;
        let wrong = self.wrong_for(&job.task);
        let ctx = ExecCtx {
            content: self.content.clone(),
            plugins: self.plugins.clone(),
            digests: self.program_digests.clone(),
            fetch_timeout: Duration::from_millis(self.cfg.fetch_timeout_ms),
        };
        let (tx, slots) = (self.exec_tx.clone(), self.exec_slots.clone());
        tokio::spawn(async move {
            let (task, round) = (job.task, job.round);
            let result = match slots.acquire_owned().await {
                Ok(_permit) => ctx.run(job, wrong).await,
                Err(e) => ExecResult::Abstain(format!("execution slots closed: {e}")),
            };
            let _ = tx
                .send(ExecDone {
                    task,
                    round,
                    result,
                })
                .await;
        });
        true
    }

    async fn carry_out(&mut self, effects: Vec<Effect>) {
        let mut changed = Vec::new();
        let mut refused = Vec::new();
        for fx in effects {
            let held = self.chain_hooks(&fx).await;
            match fx {
                Effect::Execute { task, round } if self.copies(&task) => {
                    warn!(target: "hal9::engine", task = %hex::encode(task.0), ?round, "FAULT INJECTION: not executing; waiting to copy another member's result");
                }
                Effect::Execute { task, round } => {
                    let Some(rec) = self.tasks.get(&task) else {
                        continue;
                    };
                    let Ok(spec) = hex::decode(&rec.spec)
                        .map_err(|e| e.to_string())
                        .and_then(|b| spec::TaskSpec::decode(&b).map_err(|e| e.to_string()))
                    else {
                        continue;
                    };
                    let (Ok(program), Ok(input_cid)) = (spec.program(), spec.input_cid()) else {
                        continue;
                    };
                    // Inline bytes when they came with the gossip (checked
                    // against the spec then), else fetched by CID.
                    // (An input named by CID gossiped with no inline bytes
                    // leaves an empty entry: that is no input.)
                    let inline = self
                        .inputs
                        .get(&task)
                        .filter(|i| !i.is_empty() || input_cid.is_none());
                    let input = match (inline, input_cid) {
                        (Some(i), _) => Some(i.clone()),
                        (None, Some(_)) => None,
                        (None, None) => continue,
                    };
                    debug!(target: "hal9::engine", task = %rec.id, ?round, by_cid = input_cid.is_some(), "executing");
                    let started = self.spawn_execution(ExecJob {
                        task,
                        round,
                        program,
                        input,
                        input_cid,
                        input_hash: spec.inputHash.0,
                        fuel: spec.fuelLimit,
                        sealed: self.chain.is_some(),
                    });
                    if !started {
                        refused.push((task, round));
                    }
                }
                Effect::Persist(vote) => {
                    let rec = VoteRecord::from_vote(&vote);
                    let key = hex::encode(vote.task.0);
                    let store = self.store.clone();
                    match tokio::task::spawn_blocking(move || store.put_vote(&key, &rec)).await {
                        Ok(Ok(())) => {}
                        other => {
                            // Never broadcast a vote that is not durable.
                            warn!(target: "hal9::engine", ?other, "cannot persist vote; withholding it");
                            return;
                        }
                    }
                }
                Effect::Broadcast(item) => {
                    if !held {
                        self.outbox.push(item)
                    }
                }
                Effect::SetTimer { task, timer, at } => {
                    self.timer_seq += 1;
                    self.timers.insert((at, self.timer_seq), (task, timer));
                }
                Effect::Verdict(v) => {
                    let now = self.now();
                    if let Some(rec) = self.tasks.get_mut(&v.task) {
                        rec.status = TaskStatus::Verified;
                        let output_cid = RawCid::from_bytes(v.cid.as_bytes())
                            .map(|c| c.to_string())
                            .unwrap_or_else(|_| hex::encode(v.cid.as_bytes()));
                        info!(target: "hal9::engine", task = %rec.id, result = %hex::encode(v.result.0), output = %output_cid, "verdict");
                        if let Some(f) = verdict_failure(rec, &v.result.0) {
                            info!(target: "hal9::engine", task = %rec.id, kind = f.kind.label(), "the verdict is a deterministic failure");
                            rec.error = Some(f.describe());
                        }
                        rec.verdict = Some(VerdictRecord {
                            round: round_name(v.round).into(),
                            result: hex::encode(v.result.0),
                            output_cid,
                            attesters: v
                                .certificate
                                .votes
                                .iter()
                                .map(|c| c.reveal.signer.to_string())
                                .collect(),
                            certificate: hex::encode(v.certificate.encode()),
                            decided_at_ms: now,
                        });
                        // Every deciding member gossips the certificate (a
                        // little later), for nodes that missed votes.
                        let local = self.keypair.public().to_peer_id().to_string();
                        if rec.committee.contains(&local)
                            || rec.escalation_committee.contains(&local)
                        {
                            let bytes =
                                Envelope::new(Kind::Certificate, v.certificate.encode()).encode();
                            if bytes.len() <= MAX_CERT_MESSAGE {
                                self.certs_out.push((self.now() + CERT_DELAY_MS, bytes));
                            }
                        }
                        changed.push(v.task);
                    }
                }
                Effect::Escalate { task, committee } => {
                    if let Some(rec) = self.tasks.get_mut(&task) {
                        info!(target: "hal9::engine", task = %rec.id, size = committee.len(), "escalating");
                        if rec.status == TaskStatus::Pending {
                            rec.status = TaskStatus::Escalated;
                        }
                        rec.escalation_committee =
                            committee.iter().map(|p| p.to_string()).collect();
                        changed.push(task);
                    }
                }
                Effect::Failed {
                    task,
                    nondeterministic,
                } => {
                    if let Some(rec) = self.tasks.get_mut(&task) {
                        rec.status = TaskStatus::Failed;
                        rec.nondeterministic = nondeterministic;
                        let cause = failure_cause(rec, nondeterministic);
                        warn!(target: "hal9::engine", task = %rec.id, nondeterministic, %cause, "task failed: no quorum");
                        rec.error = Some(cause);
                        changed.push(task);
                    }
                }
                Effect::Misbehaviour(ev) => {
                    warn!(target: "hal9::engine", evidence = ?ev, "misbehaviour observed");
                }
                Effect::Settled { task, outcomes, .. } => {
                    let outcomes: Vec<(String, String)> = outcomes
                        .iter()
                        .map(|(p, o)| (p.to_string(), outcome_name(*o).to_string()))
                        .collect();
                    if let Some(rec) = self.tasks.get_mut(&task) {
                        rec.outcomes = outcomes;
                        changed.push(task);
                    } else {
                        // Decided and already out of memory: the record in
                        // the store gets the members' outcomes.
                        self.update_stored(task, move |r| r.outcomes = outcomes)
                            .await;
                    }
                }
                Effect::Reputation(change) => {
                    debug!(target: "hal9::engine", ?change, "reputation changed");
                    let entries: Vec<(String, u32)> = self
                        .driver
                        .reputation()
                        .entries()
                        .map(|(p, b)| (p.to_string(), b))
                        .collect();
                    let store = self.store.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || store.put_reputation(&entries)).await;
                }
                Effect::Rejected { task, error } => {
                    if let Some(rec) = self.tasks.get_mut(&task) {
                        warn!(target: "hal9::engine", task = %rec.id, %error, "task rejected");
                        rec.status = TaskStatus::Rejected;
                        rec.error = Some(error.to_string());
                        changed.push(task);
                    }
                }
            }
        }
        for task in changed {
            self.persist_task(task).await;
            if self.tasks.get(&task).is_some_and(|r| r.is_final()) {
                let _ = self.finished.send(task);
            }
        }
        for (task, round) in refused {
            self.refuse_execution(task, round).await;
        }
    }

    /// The execution queue is full: this member does not execute `task`, so
    /// it never commits and the committee counts it as absent.
    async fn refuse_execution(&mut self, task: TaskId, round: Round) {
        let capacity = self.exec_capacity();
        warn!(target: "hal9::engine", task = %hex::encode(task.0), ?round, in_flight = self.exec_inflight, capacity, "execution queue full; not executing this task (this member stays silent)");
        self.metrics.executions_refused.inc();
        if let Some(rec) = self.tasks.get_mut(&task) {
            rec.error = Some(format!(
                "this node's execution queue was full ({capacity} executions running or queued)"
            ));
        }
        self.persist_task(task).await;
        let fx = self.driver.apply(Input::ExecutionFailed {
            task,
            round,
            now: self.now(),
        });
        Box::pin(self.carry_out(fx)).await;
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

#[cfg(test)]
mod membership_tests {
    use super::*;
    use crate::chain::{Attestation, members::RegistrySet};
    use alloy::{
        primitives::{Address, B256},
        signers::local::PrivateKeySigner,
    };

    fn peer() -> PeerId {
        Keypair::generate_ed25519().public().to_peer_id()
    }

    fn validators(registry: Membership) -> (GossipValidators, mpsc::Receiver<Inbound>) {
        let (tx, rx) = mpsc::channel(8);
        (GossipValidators::new(registry, tx), rx)
    }

    const CHAIN: u64 = 31337;

    fn registry(set: &Arc<RegistrySet>) -> Membership {
        Membership::Registry {
            set: set.clone(),
            chain_id: CHAIN,
            market: Address::repeat_byte(9),
        }
    }

    fn attestation(key: &PrivateKeySigner) -> Attestation {
        let (task, result, cid) = (B256::repeat_byte(1), B256::repeat_byte(2), vec![1u8, 85, 0]);
        let sig = hal9_market::eip712::sign_result(
            key,
            CHAIN,
            Address::repeat_byte(9),
            task,
            result,
            &cid,
        )
        .unwrap();
        Attestation {
            round: 0,
            task,
            result,
            salt: B256::repeat_byte(3),
            cid,
            signature: <[u8; 65]>::try_from(sig.as_ref()).unwrap(),
        }
    }

    #[test]
    fn standalone_rejects_signers_outside_the_genesis_set() {
        let member = peer();
        let set = ValidatorSet::new(vec![hal9_consensus::Validator {
            peer: member,
            weight: 1,
            capabilities: Default::default(),
        }])
        .unwrap();
        let (v, _rx) = validators(Membership::Genesis(Arc::new(set)));
        assert!(v.admit(&member, "vote batch").is_ok());
        assert!(matches!(
            v.admit(&peer(), "vote batch"),
            Err(Validation::Reject(_))
        ));
        // No attestations outside chain mode.
        let key = PrivateKeySigner::random();
        assert!(matches!(
            v.check_attestation(&attestation(&key).encode()),
            Validation::Ignore(_)
        ));
    }

    #[test]
    fn chain_mode_ignores_signers_the_registry_does_not_list() {
        let set = Arc::new(RegistrySet::new());
        let (v, _rx) = validators(registry(&set));
        let (listed, outsider) = (peer(), peer());
        // Before the registry is read: let through (an outage at start never isolates a node).
        assert!(v.admit(&outsider, "vote batch").is_ok());
        set.replace([(Address::repeat_byte(1), Some(listed))]);
        assert!(v.admit(&listed, "certificate").is_ok());
        assert!(matches!(
            v.admit(&outsider, "certificate"),
            Err(Validation::Ignore(_))
        ));
    }

    #[test]
    fn attestations_are_verified_before_they_are_forwarded() {
        let set = Arc::new(RegistrySet::new());
        let (v, mut rx) = validators(registry(&set));
        let (operator, stranger) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        set.replace([(operator.address(), None)]);
        // A listed operator's attestation goes to the engine with its signer.
        assert_eq!(
            v.check_attestation(&attestation(&operator).encode()),
            Validation::Accept
        );
        match rx.try_recv() {
            Ok(Inbound::Attestation(_, signer)) => assert_eq!(signer, operator.address()),
            other => panic!("expected the attestation, got {other:?}"),
        }
        // An unlisted signer: ignored, not delivered.
        assert!(matches!(
            v.check_attestation(&attestation(&stranger).encode()),
            Validation::Ignore(_)
        ));
        // A changed result recovers to some other address: not delivered.
        let mut forged = attestation(&operator);
        forged.result = B256::repeat_byte(7);
        assert!(matches!(
            v.check_attestation(&forged.encode()),
            Validation::Ignore(_) | Validation::Reject(_)
        ));
        // A signature that is not one at all is rejected (the sender is penalised).
        let mut garbage = attestation(&operator);
        garbage.signature = [0u8; 65];
        assert!(matches!(
            v.check_attestation(&garbage.encode()),
            Validation::Reject(_)
        ));
        assert!(rx.try_recv().is_err(), "nothing else reached the engine");
    }
}
