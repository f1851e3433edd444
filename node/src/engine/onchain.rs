//! Chain mode inside the engine: a task starts when both its gossiped input
//! and its `TaskPosted` event (with the committee drawn on chain) are here;
//! members attest their reveals with the operator key; verdicts, challenges
//! and finalization go to the settlement outbox.

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256};
use hal9_consensus::{Effect, Input, TaskId, TaskParams, wire::RevealVote};
use hal9_market::Dissent;
use hal9_p2p::PeerId;
use tracing::{debug, info, warn};

use super::{
    Engine,
    records::{AttestRecord, ChainRecord, SettlementRecord, TaskRecord, TaskStatus},
    spec::{TaskMessage, TaskSpec},
};
use crate::chain::{
    ATTEST_TOPIC, Action, Attestation, ChainInput, ChainLink, Outbox, OutboxEntry,
    SettlementPayload, challenge_instance,
};

/// Most gossiped tasks held while waiting for their `TaskPosted` event; the
/// oldest is evicted for a new one (a real event is never refused).
pub const MAX_AWAITING: usize = 4096;
/// Longest a gossiped task waits for its `TaskPosted` event, whatever its
/// own deadline says, in ms.
pub const MAX_AWAIT_MS: u64 = 10 * 60 * 1000;
/// How often waiting tasks are checked for expiry, in ms.
pub(super) const EXPIRY_SWEEP_MS: u64 = 1_000;
/// A submitter waits this long after its verdict for the other attestations.
const ATTEST_GRACE_MS: u64 = 1_000;

/// Chain state the engine owns.
pub struct ChainCtx {
    /// Client and operator key.
    pub link: Arc<ChainLink>,
    /// The settlement outbox.
    pub outbox: Outbox,
    /// Challenge instance id -> challenged task id.
    pub instances: std::collections::HashMap<TaskId, TaskId>,
    /// Tasks waiting for the other half (the event or the input), with
    /// when they expire.
    pub waiting: std::collections::HashMap<TaskId, Waiting>,
    /// After a reorganisation: tasks posted above the fork block, by the
    /// block they were posted in, until the new branch confirms them.
    pub unconfirmed: std::collections::HashMap<TaskId, u64>,
    /// Gossiped tasks evicted or expired before their event (a metric).
    pub dropped_waiting: u64,
}

/// A task held in `AwaitingChain`.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    /// When it was first seen, ms.
    pub seen_ms: u64,
    /// When it is dropped, ms.
    pub expires_ms: u64,
    /// Posted on chain (its input is missing): never evicted, expires at its
    /// deadline only (the chain refunds it then).
    pub posted: bool,
    /// Submitted through this node's API: never evicted.
    pub local: bool,
}

impl ChainCtx {
    /// A chain context with empty state.
    pub fn new(link: Arc<ChainLink>, outbox: Outbox) -> Self {
        Self {
            link,
            outbox,
            instances: Default::default(),
            waiting: Default::default(),
            unconfirmed: Default::default(),
            dropped_waiting: 0,
        }
    }
}

/// When a waiting task expires: its deadline (unix seconds), and for a task
/// only gossiped, at most [`MAX_AWAIT_MS`] after it was seen.
fn expiry(spec: &TaskSpec, seen_ms: u64, posted: bool) -> u64 {
    let deadline = spec.deadline.saturating_mul(1000);
    if posted {
        // Kept a little past the deadline, so late input can still run.
        deadline.saturating_add(MAX_AWAIT_MS)
    } else {
        deadline.min(seen_ms.saturating_add(MAX_AWAIT_MS))
    }
}

/// Committee members whose PeerId does not parse get a stand-in no key
/// signs for: they count in the committee's size and never vote.
fn resolve_committee(members: Vec<(Address, Option<PeerId>)>) -> Vec<(Address, PeerId)> {
    members
        .into_iter()
        .map(|(a, p)| (a, p.unwrap_or_else(|| crate::chain::watch::absent_peer(&a))))
        .collect()
}

fn hexs(b: impl AsRef<[u8]>) -> String {
    hex::encode(b)
}

fn addr_str(a: &Address) -> String {
    a.to_checksum(None)
}

impl Engine {
    pub(super) fn chain_mode(&self) -> bool {
        self.chain.is_some()
    }

    fn local_peer(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// Gossiped tasks waiting for their event (the ones a peer can add for free).
    pub(super) fn awaiting(&self) -> usize {
        self.chain
            .as_ref()
            .map_or(0, |c| c.waiting.values().filter(|w| !w.posted).count())
    }

    /// Makes room for one more gossiped task: evicts the oldest gossiped,
    /// not locally submitted, waiting task.
    pub(super) async fn evict_oldest_waiting(&mut self) {
        let Some(ctx) = self.chain.as_ref() else {
            return;
        };
        let oldest = ctx
            .waiting
            .iter()
            .filter(|(_, w)| !w.posted && !w.local)
            .min_by_key(|(id, w)| (w.seen_ms, id.0))
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            debug!(target: "hal9::engine", task = %hex::encode(id.0), "too many tasks waiting for the chain; oldest evicted");
            self.drop_waiting(id, None).await;
        }
    }

    /// Forgets a waiting task (memory and store), or with `reason` keeps its
    /// record as failed.
    async fn drop_waiting(&mut self, id: TaskId, reason: Option<String>) {
        if let Some(ctx) = self.chain.as_mut() {
            ctx.waiting.remove(&id);
            ctx.dropped_waiting += 1;
        }
        self.inputs.remove(&id);
        match reason {
            None => {
                self.tasks.remove(&id);
                let store = self.store.clone();
                let key = hex::encode(id.0);
                let res = tokio::task::spawn_blocking(move || store.delete_task(&key)).await;
                if let Ok(Err(e)) = res {
                    warn!(target: "hal9::engine", error = %e, "cannot delete a dropped task");
                }
            }
            Some(why) => {
                if let Some(rec) = self.tasks.get_mut(&id) {
                    rec.status = TaskStatus::Failed;
                    rec.input = String::new();
                    rec.error = Some(why);
                }
                self.persist_task(id).await;
                let _ = self.finished.send(id);
            }
        }
    }

    /// Drops the waiting tasks whose time is up.
    pub(super) async fn expire_waiting(&mut self, now: u64) {
        let Some(ctx) = self.chain.as_ref() else {
            return;
        };
        let due: Vec<(TaskId, bool)> = ctx
            .waiting
            .iter()
            .filter(|(_, w)| w.expires_ms <= now)
            .map(|(id, w)| (*id, w.posted))
            .collect();
        for (id, posted) in due {
            if posted {
                warn!(target: "hal9::engine", task = %hex::encode(id.0), "posted task's input never arrived before its deadline");
                self.drop_waiting(
                    id,
                    Some("the task's input never reached this node before its deadline".into()),
                )
                .await;
            } else {
                debug!(target: "hal9::engine", task = %hex::encode(id.0), "gossiped task never posted on chain; expired");
                self.drop_waiting(id, None).await;
            }
        }
    }

    /// Rebuilds the waiting set from a reloaded record.
    pub(super) fn restore_waiting(&mut self, id: TaskId, rec: &TaskRecord) {
        if rec.status != TaskStatus::AwaitingChain {
            return;
        }
        let Some(ctx) = self.chain.as_mut() else {
            return;
        };
        let Some(spec) = hex::decode(&rec.spec)
            .ok()
            .and_then(|b| TaskSpec::decode(&b).ok())
        else {
            return;
        };
        let posted = rec.chain.is_some();
        ctx.waiting.insert(
            id,
            Waiting {
                seen_ms: rec.seen_at_ms,
                expires_ms: expiry(&spec, rec.seen_at_ms, posted),
                posted,
                local: false,
            },
        );
    }

    /// Marks a waiting task.
    fn note_waiting(&mut self, id: TaskId, spec: &TaskSpec, posted: bool, local: bool) {
        let now = self.now();
        let Some(ctx) = self.chain.as_mut() else {
            return;
        };
        let w = ctx.waiting.entry(id).or_insert(Waiting {
            seen_ms: now,
            expires_ms: expiry(spec, now, posted),
            posted,
            local,
        });
        w.local |= local;
        if posted && !w.posted {
            w.posted = true;
            w.expires_ms = expiry(spec, w.seen_ms, true);
        }
    }

    fn blank_record(id: TaskId, spec: &TaskSpec, now: u64) -> TaskRecord {
        TaskRecord {
            id: hex::encode(id.0),
            spec: hex::encode(spec.encode()),
            input: String::new(),
            program: spec.program().map(|c| c.to_string()).unwrap_or_default(),
            replicas: spec.replicas,
            status: TaskStatus::AwaitingChain,
            committee: Vec::new(),
            escalation_committee: Vec::new(),
            own_output: None,
            verdict: None,
            nondeterministic: false,
            error: None,
            seen_at_ms: now,
            outcomes: Vec::new(),
            chain: None,
        }
    }

    /// A gossiped (or locally submitted) task in chain mode: keep its input;
    /// start once the chain has posted it.
    pub(super) async fn chain_on_task(&mut self, t: TaskMessage, local: bool) {
        let id = t.id;
        if !self.tasks.contains_key(&id) {
            // Finished and out of memory (see `bounds`), or no room: ignore.
            if self.known(&id).await {
                return;
            }
            while self.awaiting() >= MAX_AWAITING {
                let before = self.awaiting();
                self.evict_oldest_waiting().await;
                if self.awaiting() == before {
                    break; // only local tasks left
                }
            }
            if !self.admit(&id, local).await {
                return;
            }
            let now = self.now();
            self.tasks.insert(id, Self::blank_record(id, &t.spec, now));
            self.note_waiting(id, &t.spec, false, local);
        }
        let Some(rec) = self.tasks.get_mut(&id) else {
            return;
        };
        if !rec.input.is_empty() {
            return;
        }
        rec.input = hex::encode(&t.input);
        self.inputs.insert(id, t.input.into());
        debug!(target: "hal9::engine", task = %hex::encode(id.0), "input seen");
        self.try_start(id).await;
    }

    /// Starts the consensus instance when both halves are here.
    async fn try_start(&mut self, id: TaskId) {
        let Some(rec) = self.tasks.get_mut(&id) else {
            return;
        };
        // An input named by CID needs no gossip: members fetch it by CID.
        let input_known = !rec.input.is_empty() || super::input_by_cid(rec);
        if rec.status != TaskStatus::AwaitingChain || !input_known || rec.chain.is_none() {
            self.persist_task(id).await;
            return;
        }
        let committee: Option<Vec<PeerId>> = rec.committee.iter().map(|p| p.parse().ok()).collect();
        let Some(committee) = committee else {
            rec.status = TaskStatus::Rejected;
            rec.error = Some("committee holds an invalid peer id".into());
            self.persist_task(id).await;
            return;
        };
        rec.status = TaskStatus::Pending;
        info!(target: "hal9::engine", task = %rec.id, program = %rec.program, r = committee.len(), "task posted on chain; starting");
        if let Some(ctx) = self.chain.as_mut() {
            ctx.waiting.remove(&id);
        }
        self.persist_task(id).await;
        let fx = self.driver.apply(Input::TaskSeen {
            task: id,
            params: TaskParams::fixed(committee),
            now: self.now(),
        });
        self.carry_out(fx).await;
    }

    /// Applies one chain event.
    pub(super) async fn on_chain(&mut self, input: ChainInput) {
        self.rehydrate_for(&input).await;
        match input {
            ChainInput::Posted {
                task,
                spec,
                fee,
                committee,
                block,
            } => self.on_posted(task, spec, fee, committee, block).await,
            ChainInput::Reorged { fork } => self.on_reorged(fork),
            ChainInput::Noted => {}
            ChainInput::Verdict {
                task,
                result,
                majority,
                ..
            } => self.on_chain_verdict(task, result, majority).await,
            ChainInput::Challenged { task, escalation } => {
                self.on_challenged(task, escalation).await
            }
            ChainInput::EscalationVerdict {
                task,
                result,
                upheld,
                cid,
            } => {
                let now = self.now();
                if let Some(rec) = self.tasks.get_mut(&task)
                    && let Some(c) = rec.chain.as_mut()
                {
                    info!(target: "hal9::engine", task = %hex::encode(task.0), result = %result, upheld, "escalation verdict on chain");
                    c.escalation_upheld = Some(upheld);
                    if !upheld {
                        // The chain overturned the verdict: serve the escalation's output.
                        c.result = Some(hexs(result));
                        let output_cid = super::cid::RawCid::from_bytes(&cid)
                            .map(|c| c.to_string())
                            .unwrap_or_else(|_| hexs(&cid));
                        rec.verdict = Some(super::records::VerdictRecord {
                            round: "escalation (settled on chain)".into(),
                            result: hexs(result),
                            output_cid,
                            attesters: c.escalation.clone(),
                            certificate: String::new(),
                            decided_at_ms: now,
                        });
                    }
                }
                let escalation = self
                    .tasks
                    .get(&task)
                    .and_then(|r| r.chain.as_ref())
                    .map(|c| c.escalation.clone())
                    .unwrap_or_default();
                self.enqueue_ranked(Action::Finalize, task, &escalation, 0)
                    .await;
                self.persist_task(task).await;
            }
            ChainInput::Finalized {
                task,
                burned,
                to_treasury,
                per_member,
                slashed,
            } => {
                if let Some(c) = self.tasks.get_mut(&task).and_then(|r| r.chain.as_mut()) {
                    let overturned = c.escalation_upheld == Some(false);
                    c.status = "finalized".into();
                    c.settlement = Some(SettlementRecord {
                        burned: burned.to_string(),
                        to_treasury: to_treasury.to_string(),
                        per_member: per_member.to_string(),
                        slashed: slashed.to_string(),
                        overturned,
                    });
                    info!(target: "hal9::engine", task = %hex::encode(task.0), %burned, %to_treasury, %per_member, %slashed, "task finalized on chain");
                    self.persist_task(task).await;
                    let _ = self.finished.send(task);
                }
            }
            ChainInput::Refunded { task } => {
                if let Some(c) = self.tasks.get_mut(&task).and_then(|r| r.chain.as_mut()) {
                    c.status = "refunded".into();
                    info!(target: "hal9::engine", task = %hex::encode(task.0), "task refunded on chain");
                    self.persist_task(task).await;
                    let _ = self.finished.send(task);
                }
            }
            ChainInput::ParamsUpdated {
                burn_bps,
                treasury_bps,
            } => {
                info!(target: "hal9::engine", burn_bps, treasury_bps, "market parameters changed by governance");
                self.chain_params = Some((burn_bps, treasury_bps));
            }
            ChainInput::Cursor(bytes) => {
                if let Ok(c) = serde_json::from_slice::<crate::chain::watch::Cursor>(&bytes) {
                    self.settle_reorg(c.block).await;
                }
                let store = self.store.clone();
                let _ = tokio::task::spawn_blocking(move || store.put_meta("chain_cursor", &bytes))
                    .await;
            }
        }
    }

    async fn on_posted(
        &mut self,
        task: TaskId,
        spec_bytes: Vec<u8>,
        fee: U256,
        committee: Vec<(Address, Option<PeerId>)>,
        block: u64,
    ) {
        let spec = match TaskSpec::decode(&spec_bytes) {
            Ok(s) if s.id() == task => s,
            Ok(_) => {
                warn!(target: "hal9::engine", task = %hex::encode(task.0), "posted spec does not hash to its task id; ignored");
                return;
            }
            Err(e) => {
                warn!(target: "hal9::engine", task = %hex::encode(task.0), error = %e, "posted task refused");
                return;
            }
        };
        let committee = resolve_committee(committee);
        if let Some(ctx) = self.chain.as_mut()
            && ctx.unconfirmed.remove(&task).is_some()
        {
            // Re-posted on the new branch: the chain decides the committee.
            if let Some(c) = self.tasks.get_mut(&task).and_then(|r| r.chain.as_mut()) {
                let addrs: Vec<String> = committee.iter().map(|(a, _)| addr_str(a)).collect();
                c.block = Some(block);
                if c.committee != addrs {
                    warn!(target: "hal9::engine", task = %hex::encode(task.0), "task re-posted after a reorganisation with another committee");
                }
            }
            self.persist_task(task).await;
            return;
        }
        // A real event is never refused: the waiting set is bounded by
        // evicting gossip, and posted tasks cost their submitter a fee.
        self.admit(&task, true).await;
        let now = self.now();
        self.tasks
            .entry(task)
            .or_insert_with(|| Self::blank_record(task, &spec, now));
        self.note_waiting(task, &spec, true, false);
        let Some(rec) = self.tasks.get_mut(&task) else {
            return;
        };
        if rec.chain.is_some() {
            return; // replayed event
        }
        rec.committee = committee.iter().map(|(_, p)| p.to_string()).collect();
        rec.chain = Some(ChainRecord {
            committee: committee.iter().map(|(a, _)| addr_str(a)).collect(),
            fee: fee.to_string(),
            status: "posted".into(),
            block: Some(block),
            ..Default::default()
        });
        debug!(target: "hal9::engine", task = %rec.id, block, "posted on chain");
        self.try_start(task).await;
    }

    /// A reorganisation: tasks posted above the fork block wait for the new
    /// branch to post them again.
    fn on_reorged(&mut self, fork: u64) {
        let above: Vec<(TaskId, u64)> = self
            .tasks
            .iter()
            .filter_map(|(id, r)| {
                let c = r.chain.as_ref()?;
                let b = c.block?;
                (b > fork && c.parent.is_none()).then_some((*id, b))
            })
            .collect();
        warn!(target: "hal9::engine", fork, tasks = above.len(), "chain reorganised; tasks posted above the fork wait for the new branch");
        if let Some(ctx) = self.chain.as_mut() {
            ctx.unconfirmed.extend(above);
        }
    }

    /// After a cursor: unconfirmed tasks at or below it are not on the new
    /// branch; they are dropped.
    async fn settle_reorg(&mut self, cursor_block: u64) {
        let Some(ctx) = self.chain.as_mut() else {
            return;
        };
        let gone: Vec<TaskId> = ctx
            .unconfirmed
            .iter()
            .filter(|(_, b)| **b <= cursor_block)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(ctx) = self.chain.as_mut() {
                ctx.unconfirmed.remove(&id);
                ctx.waiting.remove(&id);
            }
            warn!(target: "hal9::engine", task = %hex::encode(id.0), "task was posted on an abandoned branch; dropped");
            if let Some(rec) = self.tasks.get_mut(&id) {
                if let Some(c) = rec.chain.as_mut() {
                    c.status = "dropped".into();
                }
                if !rec.is_final() {
                    rec.status = TaskStatus::Rejected;
                }
                rec.error = Some(
                    "the chain was reorganised and the new branch does not post this task".into(),
                );
            }
            self.persist_task(id).await;
            let _ = self.finished.send(id);
        }
    }

    async fn on_chain_verdict(&mut self, task: TaskId, result: B256, majority: U256) {
        let local = self.link_address();
        let Some(rec) = self.tasks.get_mut(&task) else {
            return;
        };
        let Some(c) = rec.chain.as_mut() else {
            return;
        };
        if c.status != "posted" {
            return;
        }
        c.status = "verdict".into();
        c.result = Some(hexs(result));
        let committee = c.committee.clone();
        let own = rec
            .own_output
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .map(|o| B256::from(hal9_consensus::keccak256(&[&o])));
        info!(target: "hal9::engine", task = %rec.id, %result, "verdict settled on chain; challenge window open");
        let position = local.and_then(|a| committee.iter().position(|m| *m == addr_str(&a)));
        let member = position.is_some();
        // An agreeing member the submitter left out joins, so it is paid.
        // (Its own output counts too: a crash can lose the signed copy,
        // and the join signs afresh.)
        let agreed = own == Some(result)
            || local.is_some_and(|a| {
                c.attestations
                    .iter()
                    .any(|x| x.round == 0 && x.signer == addr_str(&a) && x.result == hexs(result))
            });
        if let Some(i) = position
            && agreed
            && i < 256
            && !majority.bit(i)
        {
            info!(target: "hal9::engine", task = %hex::encode(task.0), "own attestation missing from the settled verdict; joining");
            self.enqueue(OutboxEntry::new(
                Action::JoinVerdict,
                B256::from(task.0),
                self.now(),
            ))
            .await;
        }
        let challenge = self.chain.as_ref().is_some_and(|c| c.link.cfg.challenge);
        if member && challenge && own.is_some_and(|o| o != result) {
            warn!(target: "hal9::engine", task = %hex::encode(task.0), "the settled verdict contradicts this node's own execution; challenging");
            self.enqueue(OutboxEntry::new(
                Action::Challenge,
                B256::from(task.0),
                self.now(),
            ))
            .await;
        }
        self.enqueue_ranked(Action::Finalize, task, &committee, 0)
            .await;
        self.persist_task(task).await;
    }

    async fn on_challenged(&mut self, task: TaskId, escalation: Vec<(Address, Option<PeerId>)>) {
        let escalation = resolve_committee(escalation);
        let local = self.local_peer();
        let Some(rec) = self.tasks.get_mut(&task) else {
            return;
        };
        let Some(c) = rec.chain.as_mut() else {
            return;
        };
        if c.status != "verdict" {
            return;
        }
        c.status = "challenged".into();
        c.escalation = escalation.iter().map(|(a, _)| addr_str(a)).collect();
        rec.escalation_committee = escalation.iter().map(|(_, p)| p.to_string()).collect();
        info!(target: "hal9::engine", task = %rec.id, size = escalation.len(), "verdict challenged; escalation committee drawn on chain");
        let peers: Vec<PeerId> = escalation.iter().map(|(_, p)| *p).collect();
        let mut instance = rec.clone();
        self.persist_task(task).await;
        if !peers.contains(&local) {
            return;
        }
        // This node re-executes the task as a member of the escalation committee.
        let iid = challenge_instance(&task);
        if self.tasks.contains_key(&iid) {
            return;
        }
        instance.id = hex::encode(iid.0);
        instance.status = TaskStatus::Pending;
        instance.committee = peers.iter().map(|p| p.to_string()).collect();
        instance.escalation_committee = Vec::new();
        instance.own_output = None;
        instance.verdict = None;
        instance.outcomes = Vec::new();
        instance.chain = Some(ChainRecord {
            committee: escalation.iter().map(|(a, _)| addr_str(a)).collect(),
            fee: String::new(),
            status: "escalation".into(),
            parent: Some(hex::encode(task.0)),
            ..Default::default()
        });
        if let Some(input) = self.inputs.get(&task).cloned() {
            self.inputs.insert(iid, input);
        }
        self.tasks.insert(iid, instance);
        if let Some(ctx) = self.chain.as_mut() {
            ctx.instances.insert(iid, task);
        }
        self.persist_task(iid).await;
        let fx = self.driver.apply(Input::TaskSeen {
            task: iid,
            params: TaskParams::fixed(peers),
            now: self.now(),
        });
        self.carry_out(fx).await;
    }

    fn link_address(&self) -> Option<Address> {
        self.chain.as_ref().map(|c| c.link.address())
    }

    /// The challenged task an instance re-executes, and the attestation round.
    fn chain_target(&self, id: &TaskId) -> (TaskId, u8) {
        match self.chain.as_ref().and_then(|c| c.instances.get(id)) {
            Some(parent) => (*parent, 1),
            None => (*id, 0),
        }
    }

    /// This node revealed: sign the attestation with the operator key and gossip it.
    pub(super) async fn chain_on_own_reveal(&mut self, r: &RevealVote) {
        let Some(link) = self.chain.as_ref().map(|c| c.link.clone()) else {
            return;
        };
        let (target, round) = self.chain_target(&r.task);
        let result = B256::from(r.result.0);
        let sig = match link.sign(B256::from(target.0), result, r.cid.as_bytes()) {
            Ok(s) => s,
            Err(e) => {
                warn!(target: "hal9::engine", error = %e, "cannot sign the attestation");
                return;
            }
        };
        let a = Attestation {
            round,
            task: B256::from(target.0),
            result,
            cid: r.cid.as_bytes().to_vec(),
            signature: sig,
        };
        if let Err(e) = self.net.publish(ATTEST_TOPIC, a.encode()).await {
            debug!(target: "hal9::engine", error = %e, "cannot gossip the attestation");
        }
        self.record_attestation(a, link.address()).await;
    }

    /// An attestation (this node's, or one from the network whose signer
    /// the gossip validator recovered).
    pub(super) async fn record_attestation(&mut self, a: Attestation, signer: Address) {
        let task = TaskId(a.task.0);
        let Some(c) = self.tasks.get_mut(&task).and_then(|r| r.chain.as_mut()) else {
            return;
        };
        let who = addr_str(&signer);
        if !round_members(c, a.round).contains(&who) {
            debug!(target: "hal9::engine", signer = %who, "attestation from a non-member ignored");
            return;
        }
        if c.attestations
            .iter()
            .any(|x| x.round == a.round && x.signer == who)
        {
            return;
        }
        c.attestations.push(AttestRecord {
            round: a.round,
            signer: who,
            result: hexs(a.result),
            cid: hexs(&a.cid),
            signature: hexs(a.signature),
        });
        self.persist_task(task).await;
        self.relay_if_attested(task, a.round).await;
    }

    /// The settlement is queued from the signed attestations alone, by any
    /// member holding a quorum of matching ones, not from the member's own
    /// consensus verdict: one lost gossip message (a reveal a majority
    /// member never saw, a late commit) must not leave a decided task unsent
    /// until its deadline, and a quorum of attestations is exactly what the
    /// contract checks. The agreeing members go first, in committee order,
    /// and the others stand by after them; the outbox's per-task key makes a
    /// second enqueue a no-op and its status check makes a late sender
    /// harmless.
    async fn relay_if_attested(&mut self, task: TaskId, round: u8) {
        let Some(ctx) = self.chain.as_ref() else {
            return;
        };
        let Some(c) = self.tasks.get(&task).and_then(|r| r.chain.as_ref()) else {
            return;
        };
        if c.status != if round == 0 { "posted" } else { "challenged" }
            || (round == 0 && self.withholds(&task))
        {
            return;
        }
        let Some(q) = attested_quorum(c, round) else {
            return;
        };
        let members = round_members(c, round);
        let me = addr_str(&ctx.link.address());
        let Some(rank) = relay_order(members, &q.signers)
            .iter()
            .position(|m| **m == me)
        else {
            return;
        };
        let action = if round == 0 {
            Action::SubmitVerdict
        } else {
            Action::SubmitEscalation
        };
        let at = self.now() + ATTEST_GRACE_MS + rank as u64 * ctx.link.cfg.takeover_delay_ms;
        debug!(target: "hal9::engine", task = %hex::encode(task.0), round, rank, "a quorum of attestations is here; settlement queued");
        ctx.outbox
            .enqueue(OutboxEntry::new(action, B256::from(task.0), at))
            .await;
    }

    /// No quorum: the members queue the refund (finalize after the deadline).
    pub(super) async fn chain_on_failed(&mut self, task: TaskId) {
        let (target, round) = self.chain_target(&task);
        if round != 0 {
            return;
        }
        let committee = self
            .tasks
            .get(&target)
            .and_then(|r| r.chain.as_ref())
            .map(|c| c.committee.clone())
            .unwrap_or_default();
        self.enqueue_ranked(Action::Finalize, target, &committee, 0)
            .await;
    }

    async fn enqueue(&self, e: OutboxEntry) {
        if let Some(c) = &self.chain {
            c.outbox.enqueue(e).await;
        }
    }

    /// Queues `action` if this node's operator is in `members`, delayed by its rank.
    async fn enqueue_ranked(&self, action: Action, task: TaskId, members: &[String], base: u64) {
        let Some(c) = &self.chain else {
            return;
        };
        let me = addr_str(&c.link.address());
        let Some(rank) = members.iter().position(|m| *m == me) else {
            return;
        };
        let at = self.now() + base + rank as u64 * c.link.cfg.takeover_delay_ms;
        c.outbox
            .enqueue(OutboxEntry::new(action, B256::from(task.0), at))
            .await;
    }

    /// The signatures (and dissents) to settle `task`'s verdict of `round`.
    pub(super) fn settlement_payload(&self, task: B256, round: u8) -> Option<SettlementPayload> {
        let id = TaskId(task.0);
        let decided = if round == 0 {
            self.tasks.get(&id)
        } else {
            self.tasks.get(&challenge_instance(&id))
        };
        let c = self.tasks.get(&id)?.chain.as_ref()?;
        // This node's own verdict names the result; without one (it missed
        // a reveal) a quorum of matching signed attestations does.
        let (result, cid) = match decided.and_then(|d| d.verdict.as_ref()) {
            Some(v) => (
                v.result.clone(),
                v.output_cid
                    .parse::<super::cid::RawCid>()
                    .map(|c| c.to_bytes())
                    .ok()?,
            ),
            None => {
                let q = attested_quorum(c, round)?;
                (q.result, hex::decode(&q.cid).ok()?)
            }
        };
        let mut signatures = Vec::new();
        let mut signers = Vec::new();
        let mut dissents = Vec::new();
        for a in c.attestations.iter().filter(|a| a.round == round) {
            let (Ok(sig), Ok(acid), Ok(ares)) = (
                hex::decode(&a.signature),
                hex::decode(&a.cid),
                hex::decode(&a.result),
            ) else {
                continue;
            };
            if a.result == result {
                if acid == cid
                    && let Ok(who) = a.signer.parse::<Address>()
                {
                    signatures.push(Bytes::from(sig));
                    signers.push(who);
                }
            } else if round == 0 && ares.len() == 32 {
                dissents.push(Dissent {
                    resultHash: B256::from_slice(&ares),
                    outputCid: Bytes::from(acid),
                    signature: Bytes::from(sig),
                });
            }
        }
        let result = B256::from_slice(&hex::decode(&result).ok().filter(|b| b.len() == 32)?);
        // This node's own agreeing attestation, signed afresh when the
        // stored copy is missing (lost in a crash between the reveal and
        // the store write, or never recorded).
        if let (Some(link), Some(d)) = (self.chain.as_ref().map(|c| &c.link), decided) {
            let me = link.address();
            let own = d.own_output.as_deref().and_then(|h| hex::decode(h).ok());
            if !signers.contains(&me)
                && round_members(c, round).contains(&addr_str(&me))
                && let Some(out) = own
                && hal9_consensus::keccak256(&[&out]) == result.0
                && super::cid::RawCid::of(&out).to_bytes() == cid
                && let Ok(sig) = link.sign(task, result, &cid)
            {
                debug!(target: "hal9::engine", task = %task, round, "own attestation missing from the record; signed afresh");
                signatures.push(Bytes::from(sig.to_vec()));
                signers.push(me);
            }
        }
        Some(SettlementPayload {
            result,
            cid,
            signatures,
            signers,
            dissents,
        })
    }

    /// Remembers a transaction this node landed.
    pub(super) async fn note_tx(&mut self, task: B256, action: String, tx: String) {
        let id = TaskId(task.0);
        if let Some(c) = self.tasks.get_mut(&id).and_then(|r| r.chain.as_mut()) {
            c.txs.push((action, tx));
            self.persist_task(id).await;
        }
    }

    /// Looks at effects before the generic handling (chain hooks).
    pub(super) async fn chain_hooks(&mut self, fx: &Effect) {
        if !self.chain_mode() {
            return;
        }
        match fx {
            Effect::Broadcast(hal9_consensus::VoteItem::Reveal(r)) => {
                let r = r.clone();
                self.chain_on_own_reveal(&r).await;
            }
            Effect::Failed { task, .. } => self.chain_on_failed(*task).await,
            _ => {}
        }
    }
}

/// A result a quorum of a round's members signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AttestedQuorum {
    /// Result hash, hex.
    pub result: String,
    /// Binary output CID, hex.
    pub cid: String,
    /// Operator addresses that signed it.
    pub signers: Vec<String>,
}

/// The (result, CID) that a quorum of `round`'s members attested, if any.
pub(super) fn attested_quorum(c: &ChainRecord, round: u8) -> Option<AttestedQuorum> {
    let members = round_members(c, round);
    if members.is_empty() {
        return None;
    }
    let need = hal9_consensus::quorum(members.len());
    let mut tally: Vec<AttestedQuorum> = Vec::new();
    for a in c.attestations.iter().filter(|a| a.round == round) {
        if !members.contains(&a.signer) {
            continue;
        }
        match tally
            .iter_mut()
            .find(|t| t.result == a.result && t.cid == a.cid)
        {
            Some(t) => t.signers.push(a.signer.clone()),
            None => tally.push(AttestedQuorum {
                result: a.result.clone(),
                cid: a.cid.clone(),
                signers: vec![a.signer.clone()],
            }),
        }
    }
    tally.into_iter().find(|t| t.signers.len() >= need)
}

/// The members of a round: 0 the primary committee, 1 the escalation.
fn round_members(c: &ChainRecord, round: u8) -> &[String] {
    if round == 0 {
        &c.committee
    } else {
        &c.escalation
    }
}

/// Who sends a settlement first: the signers of the agreed result in
/// committee order, then the other members in committee order.
fn relay_order<'a>(members: &'a [String], signers: &[String]) -> Vec<&'a String> {
    let mut order: Vec<&String> = members.iter().filter(|m| signers.contains(m)).collect();
    order.extend(members.iter().filter(|m| !signers.contains(m)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(round: u8, signer: &str, result: &str, cid: &str) -> AttestRecord {
        AttestRecord {
            round,
            signer: signer.into(),
            result: result.into(),
            cid: cid.into(),
            signature: "00".into(),
        }
    }

    fn record(committee: &[&str], atts: Vec<AttestRecord>) -> ChainRecord {
        ChainRecord {
            committee: committee.iter().map(|s| s.to_string()).collect(),
            escalation: ["e1", "e2", "e3", "e4", "e5", "e6", "e7"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            attestations: atts,
            ..Default::default()
        }
    }

    #[test]
    fn a_quorum_needs_matching_result_and_cid_from_members() {
        let c = record(&["a", "b", "c"], vec![att(0, "a", "r1", "c1")]);
        assert_eq!(attested_quorum(&c, 0), None, "one of three is no quorum");
        // Same result, different CID: not the same claim.
        let c = record(
            &["a", "b", "c"],
            vec![att(0, "a", "r1", "c1"), att(0, "b", "r1", "c2")],
        );
        assert_eq!(attested_quorum(&c, 0), None);
        // A non-member's signature does not count.
        let c = record(
            &["a", "b", "c"],
            vec![att(0, "a", "r1", "c1"), att(0, "x", "r1", "c1")],
        );
        assert_eq!(attested_quorum(&c, 0), None);
        // An escalation-round attestation does not count for the primary round.
        let c = record(
            &["a", "b", "c"],
            vec![att(0, "a", "r1", "c1"), att(1, "b", "r1", "c1")],
        );
        assert_eq!(attested_quorum(&c, 0), None);
        let c = record(
            &["a", "b", "c"],
            vec![
                att(0, "c", "r2", "c9"),
                att(0, "a", "r1", "c1"),
                att(0, "b", "r1", "c1"),
            ],
        );
        let q = attested_quorum(&c, 0).unwrap();
        assert_eq!((q.result.as_str(), q.cid.as_str()), ("r1", "c1"));
        assert_eq!(q.signers, ["a", "b"]);
    }

    #[test]
    fn the_escalation_round_needs_five_of_seven() {
        let mut atts: Vec<_> = (1..=4)
            .map(|i| att(1, &format!("e{i}"), "r", "c"))
            .collect();
        let c = record(&["a", "b", "c"], atts.clone());
        assert_eq!(attested_quorum(&c, 1), None);
        atts.push(att(1, "e7", "r", "c"));
        let c = record(&["a", "b", "c"], atts);
        assert_eq!(attested_quorum(&c, 1).unwrap().signers.len(), 5);
        // No escalation committee yet: never a quorum.
        let mut c = record(&["a", "b", "c"], vec![]);
        c.escalation.clear();
        assert_eq!(attested_quorum(&c, 1), None);
    }

    #[test]
    fn signers_relay_first_then_the_others_stand_by() {
        let members: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let signers = vec!["d".to_string(), "b".to_string()];
        let order = relay_order(&members, &signers);
        assert_eq!(order, ["b", "d", "a", "c"]);
    }
}
