//! Chain mode inside the engine (protocol v1.1): a task is requested by
//! `TaskPosted`, and any node draws its committee once the draw block is
//! mined (`CommitteeDrawn`); it starts when both the committee and the input
//! are here. A member stores its commitment on chain (outbox `Commit`) as
//! soon as it has executed, and holds everything that shows its result (the
//! off-chain reveal, the signed `Result` with the salt) until the chain's
//! clock passes the commit phase's end. Whoever then holds a quorum of
//! matching reveals relays them; equivocations, challenges, escalation draws
//! and finalization go to the settlement outbox too.

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256};
use hal9_consensus::{Effect, Input, TaskId, TaskParams, VoteItem, wire::RevealVote};
use hal9_market::Dissent;
use hal9_p2p::PeerId;
use tracing::{debug, info, warn};

use super::{
    Engine,
    records::{
        AttestRecord, ChainRecord, EquivocationRecord, SettlementRecord, TaskRecord, TaskStatus,
        VoteRecord,
    },
    spec::{SpecExt, TaskMessage, TaskSpec},
};
use crate::chain::{
    ATTEST_TOPIC, Action, Attestation, ChainInput, ChainLink, Outbox, OutboxEntry, RevealCandidate,
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
/// A relayer waits this long after its quorum for the other reveals.
const ATTEST_GRACE_MS: u64 = 1_000;
/// Most salts kept per member and round (see `AttestRecord::salts`).
const MAX_SALTS: usize = 4;
/// Most equivocations kept per task.
const MAX_EQUIVOCATIONS: usize = 8;

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
    /// The newest block's timestamp seen (the contract's clock), s.
    pub chain_time: u64,
    /// Own reveals held until the commit phase of their task closed on
    /// chain (at most one per task and round).
    pub held: Vec<(TaskId, VoteItem)>,
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
            chain_time: 0,
            held: Vec::new(),
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
        let drawn = rec.chain.as_ref().is_some_and(|c| !c.committee.is_empty());
        if rec.status != TaskStatus::AwaitingChain || !input_known || !drawn {
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
        info!(target: "hal9::engine", task = %rec.id, program = %rec.program, r = committee.len(), "committee drawn on chain; starting");
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
                draw_block,
                block,
            } => self.on_posted(task, spec, fee, draw_block, block).await,
            ChainInput::Retargeted { task, draw_block } => {
                if let Some(c) = self.tasks.get_mut(&task).and_then(|r| r.chain.as_mut()) {
                    debug!(target: "hal9::engine", task = %hex::encode(task.0), draw_block, "draw re-targeted");
                    c.draw_block = Some(draw_block);
                    self.persist_task(task).await;
                }
            }
            ChainInput::Drawn {
                task,
                members,
                commit_end,
                reveal_end,
                escalation: false,
            } => self.on_drawn(task, members, commit_end, reveal_end).await,
            ChainInput::Drawn {
                task,
                members,
                commit_end,
                reveal_end,
                escalation: true,
            } => {
                self.on_escalation_drawn(task, members, commit_end, reveal_end)
                    .await
            }
            ChainInput::Committed { task, member } => {
                if let Some(c) = self.tasks.get_mut(&task).and_then(|r| r.chain.as_mut()) {
                    let who = addr_str(&member);
                    if !c.committed.contains(&who) && c.committed.len() < 2 * 64 {
                        c.committed.push(who);
                        self.persist_task(task).await;
                    }
                }
            }
            ChainInput::RevealsAdded {
                task,
                majority,
                minority,
            } => {
                debug!(target: "hal9::engine", task = %hex::encode(task.0), %majority, %minority, "reveals added on chain");
            }
            ChainInput::Equivocation { task, member } => {
                warn!(target: "hal9::engine", task = %hex::encode(task.0), %member, "a member was proven to have signed two results; slashed");
            }
            ChainInput::ChainTime(t) => self.on_chain_time(t).await,
            ChainInput::Reorged { fork } => self.on_reorged(fork),
            ChainInput::Noted => {}
            ChainInput::Verdict {
                task,
                result,
                cid,
                majority,
                minority,
            } => {
                self.on_chain_verdict(task, result, cid, majority, minority)
                    .await
            }
            ChainInput::Challenged {
                task,
                challenger,
                draw_block,
            } => self.on_challenged(task, challenger, draw_block).await,
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
        draw_block: u64,
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
        if let Some(ctx) = self.chain.as_mut()
            && ctx.unconfirmed.remove(&task).is_some()
        {
            // Posted again on the new branch; the draw that follows decides
            // the committee (the old branch's draw is gone with it).
            if let Some(c) = self.tasks.get_mut(&task).and_then(|r| r.chain.as_mut()) {
                c.block = Some(block);
                c.draw_block = Some(draw_block);
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
        let local = self
            .chain
            .as_ref()
            .and_then(|c| c.waiting.get(&task))
            .is_some_and(|w| w.local);
        let Some(rec) = self.tasks.get_mut(&task) else {
            return;
        };
        if rec.chain.is_some() {
            return; // replayed event
        }
        rec.chain = Some(ChainRecord {
            fee: fee.to_string(),
            status: "requested".into(),
            block: Some(block),
            draw_block: Some(draw_block),
            ..Default::default()
        });
        debug!(target: "hal9::engine", task = %rec.id, block, draw_block, "requested on chain; the committee is drawn after the draw block");
        self.persist_task(task).await;
        // Anyone may draw; the submitter's node goes first, the others
        // stand by (a second draw reverts before it is sent).
        let delay = match (local, self.chain.as_ref()) {
            (true, _) => 0,
            (false, Some(c)) => 2 * c.link.cfg.takeover_delay_ms,
            (false, None) => return,
        };
        let at = self.now() + delay;
        self.enqueue(OutboxEntry::new(Action::Draw, B256::from(task.0), at))
            .await;
    }

    /// `CommitteeDrawn`: the committee is known; members start (executing,
    /// then committing on chain), everyone stands by to finalize.
    async fn on_drawn(
        &mut self,
        task: TaskId,
        members: Vec<(Address, Option<PeerId>)>,
        commit_end: u64,
        reveal_end: u64,
    ) {
        let committee = resolve_committee(members);
        let Some(rec) = self.tasks.get_mut(&task) else {
            return;
        };
        let Some(c) = rec.chain.as_mut() else {
            return;
        };
        if !c.committee.is_empty() {
            return; // replayed event
        }
        c.committee = committee.iter().map(|(a, _)| addr_str(a)).collect();
        c.status = "drawn".into();
        c.commit_end = Some(commit_end);
        c.reveal_end = Some(reveal_end);
        rec.committee = committee.iter().map(|(_, p)| p.to_string()).collect();
        let addrs = c.committee.clone();
        info!(target: "hal9::engine", task = %rec.id, r = committee.len(), commit_end, reveal_end, "committee drawn on chain");
        self.enqueue_ranked(Action::Finalize, task, &addrs, 0).await;
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

    async fn on_chain_verdict(
        &mut self,
        task: TaskId,
        result: B256,
        cid: Vec<u8>,
        majority: U256,
        minority: U256,
    ) {
        let local = self.link_address();
        let now = self.now();
        let Some(rec) = self.tasks.get_mut(&task) else {
            return;
        };
        let Some(c) = rec.chain.as_mut() else {
            return;
        };
        if c.status != "drawn" {
            return;
        }
        c.status = "verdict".into();
        c.result = Some(hexs(result));
        let committee = c.committee.clone();
        // Reveals this node holds that the verdict left out: anyone may add
        // them in the challenge window (an agreeing member is then paid, a
        // dissenting one counted as the minority).
        let left_out = c.attestations.iter().any(|a| {
            a.round == 0
                && committee
                    .iter()
                    .position(|m| *m == a.signer)
                    .is_some_and(|i| i < 256 && !majority.bit(i) && !minority.bit(i))
        });
        let own = rec
            .own_output
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .map(|o| B256::from(hal9_consensus::keccak256(&[&o])));
        info!(target: "hal9::engine", task = %rec.id, %result, "verdict settled on chain; challenge window open");
        if rec.verdict.is_none() {
            // This node's round did not decide (it missed reveals): the chain's verdict stands.
            let output_cid = super::cid::RawCid::from_bytes(&cid)
                .map(|c| c.to_string())
                .unwrap_or_else(|_| hexs(&cid));
            rec.verdict = Some(super::records::VerdictRecord {
                round: "primary (settled on chain)".into(),
                result: hexs(result),
                output_cid,
                attesters: committee
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i < 256 && majority.bit(*i))
                    .map(|(_, m)| m.clone())
                    .collect(),
                certificate: String::new(),
                decided_at_ms: now,
            });
            if !rec.is_final() || rec.status == TaskStatus::Failed {
                rec.status = TaskStatus::Verified;
                rec.error = None;
            }
        }
        let member = local.is_some_and(|a| committee.contains(&addr_str(&a)));
        if left_out {
            info!(target: "hal9::engine", task = %hex::encode(task.0), "reveals left out of the settled verdict; adding them");
            self.enqueue(OutboxEntry::new(
                Action::AddReveals,
                B256::from(task.0),
                self.now() + ATTEST_GRACE_MS,
            ))
            .await;
        }
        // (A member that fault injection makes lie knows it and does not
        // pay a bond to dispute the truth.)
        let challenge =
            self.chain.as_ref().is_some_and(|c| c.link.cfg.challenge) && !self.wrong_for(&task);
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
        if self.tasks.get(&task).is_some_and(|r| r.is_final()) {
            let _ = self.finished.send(task);
        }
    }

    /// `Challenged`: the escalation committee is drawn from a later block;
    /// the challenger goes first, the committee stands by.
    async fn on_challenged(&mut self, task: TaskId, challenger: Address, draw_block: u64) {
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
        c.draw_block = Some(draw_block);
        let first = addr_str(&challenger);
        let mut order = vec![first.clone()];
        order.extend(c.committee.iter().filter(|m| **m != first).cloned());
        info!(target: "hal9::engine", task = %rec.id, %challenger, draw_block, "verdict challenged; the escalation committee is drawn after the draw block");
        self.persist_task(task).await;
        self.enqueue_ranked(Action::DrawEscalation, task, &order, 0)
            .await;
        self.enqueue_ranked(Action::Finalize, task, &order, 0).await;
    }

    /// `EscalationDrawn`: members of the escalation committee re-execute
    /// the task in an instance of its own and commit on chain.
    async fn on_escalation_drawn(
        &mut self,
        task: TaskId,
        escalation: Vec<(Address, Option<PeerId>)>,
        commit_end: u64,
        reveal_end: u64,
    ) {
        let escalation = resolve_committee(escalation);
        let local = self.local_peer();
        let Some(rec) = self.tasks.get_mut(&task) else {
            return;
        };
        let Some(c) = rec.chain.as_mut() else {
            return;
        };
        if c.status != "challenged" {
            return;
        }
        c.status = "escalating".into();
        c.commit_end = Some(commit_end);
        c.reveal_end = Some(reveal_end);
        c.escalation = escalation.iter().map(|(a, _)| addr_str(a)).collect();
        rec.escalation_committee = escalation.iter().map(|(_, p)| p.to_string()).collect();
        let addrs = c.escalation.clone();
        info!(target: "hal9::engine", task = %rec.id, size = escalation.len(), commit_end, reveal_end, "escalation committee drawn on chain");
        let peers: Vec<PeerId> = escalation.iter().map(|(_, p)| *p).collect();
        let mut instance = rec.clone();
        self.enqueue_ranked(Action::Finalize, task, &addrs, 0).await;
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

    /// The salt of this node's on-chain commitment for `task` (the chain
    /// task id) in `round`: derived from the node key, so a restart
    /// reproduces it and nobody else can guess it.
    pub(super) fn chain_salt(&self, task: &TaskId, round: u8) -> B256 {
        B256::from(hal9_consensus::keccak256(&[
            b"hal9/chain-salt/1",
            &self.salt_secret,
            &task.0,
            &[round],
        ]))
    }

    /// Whether the commit phase of the instance `id` (a chain task, or a
    /// challenge's re-execution) has closed by the chain's clock: only then
    /// may anything that shows this node's result leave it.
    pub(super) fn commit_phase_closed(&self, id: &TaskId) -> bool {
        let Some(ctx) = self.chain.as_ref() else {
            return true;
        };
        let (target, _) = self.chain_target(id);
        self.tasks
            .get(&target)
            .and_then(|r| r.chain.as_ref())
            .and_then(|c| c.commit_end)
            .is_some_and(|end| ctx.chain_time > end)
    }

    /// The chain's clock moved: release the reveals whose commit phase closed.
    async fn on_chain_time(&mut self, t: u64) {
        let Some(ctx) = self.chain.as_mut() else {
            return;
        };
        if t <= ctx.chain_time {
            return;
        }
        ctx.chain_time = t;
        let held = std::mem::take(&mut ctx.held);
        let (due, keep): (Vec<_>, Vec<_>) = held
            .into_iter()
            .partition(|(id, _)| self.commit_phase_closed(id));
        if let Some(ctx) = self.chain.as_mut() {
            ctx.held = keep;
        }
        for (id, item) in due {
            debug!(target: "hal9::engine", task = %hex::encode(id.0), chain_time = t, "commit phase closed on chain; reveal released");
            if let VoteItem::Reveal(r) = &item {
                let r = r.clone();
                self.chain_on_own_reveal(&r).await;
            }
            self.outbox.push(item);
        }
    }

    /// This node revealed (after the commit phase closed): sign the result
    /// with the operator key and gossip it with the commitment's salt.
    pub(super) async fn chain_on_own_reveal(&mut self, r: &RevealVote) {
        let Some(link) = self.chain.as_ref().map(|c| c.link.clone()) else {
            return;
        };
        let (target, round) = self.chain_target(&r.task);
        let result = B256::from(r.result.0);
        let sig = match link.sign(B256::from(target.0), result, r.cid.as_bytes()) {
            Ok(s) => s,
            Err(e) => {
                warn!(target: "hal9::engine", error = %e, "cannot sign the result");
                return;
            }
        };
        let salt = self.chain_salt(&target, round);
        let salt_signature = match link.sign_salt(round, B256::from(target.0), salt) {
            Ok(s) => s,
            Err(e) => {
                warn!(target: "hal9::engine", error = %e, "cannot sign the reveal's salt");
                return;
            }
        };
        let a = Attestation {
            round,
            task: B256::from(target.0),
            result,
            salt,
            cid: r.cid.as_bytes().to_vec(),
            signature: sig,
            salt_signature,
        };
        if let Err(e) = self.net.publish(ATTEST_TOPIC, a.encode()).await {
            debug!(target: "hal9::engine", error = %e, "cannot gossip the reveal");
        }
        // The output was stored sealed: announce it now that it may be known.
        if let Ok(cid) = super::cid::RawCid::from_bytes(r.cid.as_bytes())
            && let Err(e) = self.content.publish(cid).await
        {
            debug!(target: "hal9::engine", error = %e, "cannot announce the output");
        }
        if round == 0 && self.equivocates(&target) {
            // Fault injection: a second signed result, another (result, CID).
            let other = B256::from(hal9_consensus::keccak256(&[b"equivocation", &result.0]));
            if let Ok(sig) = link.sign(B256::from(target.0), other, r.cid.as_bytes()) {
                warn!(target: "hal9::engine", task = %hex::encode(target.0), "FAULT INJECTION: gossiping a second, different signed result");
                let second = Attestation {
                    result: other,
                    signature: sig,
                    ..a.clone()
                };
                let _ = self.net.publish(ATTEST_TOPIC, second.encode()).await;
            }
        }
        self.record_attestation(a, link.address()).await;
    }

    /// Fault injection (`copy-ranks`): a member that did not compute takes
    /// the first result another member revealed as its own vote and tries
    /// to commit to it on chain. The commit phase is over by then (nothing
    /// is revealed before it ends), so the chain refuses the commitment.
    async fn copy_result(&mut self, task: TaskId, result: B256, cid: &[u8]) {
        let store = self.store.clone();
        let key = hex::encode(task.0);
        let Some(c) = hal9_consensus::Cid::new(cid.to_vec()) else {
            return;
        };
        let vote = hal9_consensus::PersistedVote {
            task,
            params: TaskParams::fixed(Vec::new()),
            round: hal9_consensus::Round::Primary,
            result: hal9_consensus::ResultHash(result.0),
            salt: hal9_consensus::Salt([0; 32]),
            cid: c,
            round_started_at: self.now(),
        };
        let rec = VoteRecord::from_vote(&vote);
        if tokio::task::spawn_blocking(move || store.put_vote(&key, &rec))
            .await
            .is_ok()
        {
            warn!(target: "hal9::engine", task = %hex::encode(task.0), "FAULT INJECTION: copied another member's revealed result; committing to it");
            self.enqueue(OutboxEntry::new(
                Action::Commit,
                B256::from(task.0),
                self.now(),
            ))
            .await;
        }
    }

    /// A reveal (this node's, or one from the network whose signer the
    /// gossip validator recovered). Two signed results of one member that
    /// differ are kept as an equivocation proof and sent to the chain.
    pub(super) async fn record_attestation(&mut self, a: Attestation, signer: Address) {
        let task = TaskId(a.task.0);
        let Some(c) = self.tasks.get_mut(&task).and_then(|r| r.chain.as_mut()) else {
            return;
        };
        let who = addr_str(&signer);
        if !round_members(c, a.round).contains(&who) {
            debug!(target: "hal9::engine", signer = %who, "reveal from a non-member ignored");
            return;
        }
        let copy = a.round == 0
            && c.attestations.is_empty()
            && self.link_address() != Some(signer)
            && self.copies(&task);
        if copy {
            self.copy_result(task, a.result, &a.cid).await;
        }
        let Some(c) = self.tasks.get_mut(&task).and_then(|r| r.chain.as_mut()) else {
            return;
        };
        let rec = AttestRecord {
            round: a.round,
            signer: who.clone(),
            result: hexs(a.result),
            cid: hexs(&a.cid),
            signature: hexs(a.signature),
            salts: vec![hexs(a.salt)],
        };
        let mut equivocated = false;
        match c
            .attestations
            .iter_mut()
            .find(|x| x.round == a.round && x.signer == who)
        {
            Some(x) if x.result == rec.result && x.cid == rec.cid => {
                // The same result again; a different salt may be the one
                // that opens the commitment (the salt is not signed).
                let salt = hexs(a.salt);
                if !x.salts.contains(&salt) && x.salts.len() < MAX_SALTS {
                    x.salts.push(salt);
                } else {
                    return;
                }
            }
            Some(x) => {
                if c.equivocations
                    .iter()
                    .any(|e| e.round == a.round && e.signer == who)
                    || c.equivocations.len() >= MAX_EQUIVOCATIONS
                {
                    return;
                }
                warn!(target: "hal9::engine", task = %hex::encode(task.0), member = %who, "member signed two different results; proving the equivocation on chain");
                c.equivocations.push(EquivocationRecord {
                    round: a.round,
                    signer: who,
                    first: x.clone(),
                    second: rec,
                });
                equivocated = true;
            }
            None => c.attestations.push(rec),
        }
        self.persist_task(task).await;
        if equivocated {
            self.enqueue(OutboxEntry::new(
                Action::ProveEquivocation,
                B256::from(task.0),
                self.now(),
            ))
            .await;
        }
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
        if c.status != if round == 0 { "drawn" } else { "escalating" }
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

    /// The reveals to settle `task`'s verdict of `round`: the result a
    /// quorum revealed (or, without one, this node's own), and every reveal
    /// of the round held, this node's own included (rebuilt from its
    /// persisted vote when the record lost it).
    pub(super) async fn settlement_payload(
        &self,
        task: B256,
        round: u8,
    ) -> Option<SettlementPayload> {
        let id = TaskId(task.0);
        let c = self.tasks.get(&id)?.chain.as_ref()?;
        let mut reveals: Vec<RevealCandidate> = Vec::new();
        for a in c.attestations.iter().filter(|a| a.round == round) {
            let (Ok(member), Ok(res), Ok(cid)) = (
                a.signer.parse::<Address>(),
                hex::decode(&a.result),
                hex::decode(&a.cid),
            ) else {
                continue;
            };
            if res.len() != 32 {
                continue;
            }
            let salts = a
                .salts
                .iter()
                .filter_map(|s| hex::decode(s).ok().filter(|b| b.len() == 32))
                .map(|b| B256::from_slice(&b))
                .collect();
            reveals.push(RevealCandidate {
                member,
                result: B256::from_slice(&res),
                cid,
                salts,
            });
        }
        let own = self.own_vote(id, round).await;
        if let (Some((result, cid)), Some(me)) = (&own, self.link_address())
            && round_members(c, round).contains(&addr_str(&me))
            && !reveals.iter().any(|r| r.member == me)
        {
            debug!(target: "hal9::engine", task = %task, round, "own reveal missing from the record; rebuilt from the persisted vote");
            reveals.push(RevealCandidate {
                member: me,
                result: *result,
                cid: cid.clone(),
                salts: vec![self.chain_salt(&id, round)],
            });
        }
        let (result, cid) = match attested_quorum(c, round) {
            Some(q) => (
                B256::from_slice(&hex::decode(&q.result).ok().filter(|b| b.len() == 32)?),
                hex::decode(&q.cid).ok()?,
            ),
            None => own?,
        };
        Some(SettlementPayload {
            result,
            cid,
            reveals,
        })
    }

    /// This node's persisted vote (result, binary output CID) for the chain
    /// task `task` in `round`.
    async fn own_vote(&self, task: TaskId, round: u8) -> Option<(B256, Vec<u8>)> {
        let instance = if round == 0 {
            task
        } else {
            challenge_instance(&task)
        };
        let store = self.store.clone();
        let key = hex::encode(instance.0);
        let rec = tokio::task::spawn_blocking(move || store.vote::<VoteRecord>(&key))
            .await
            .ok()?
            .ok()??;
        let v = rec.to_vote()?;
        Some((B256::from(v.result.0), v.cid.as_bytes().to_vec()))
    }

    /// The commitment this node stores on chain for `task` in `round`.
    pub(super) async fn own_commitment(&self, task: B256, round: u8) -> Option<B256> {
        let id = TaskId(task.0);
        let me = self.link_address()?;
        let (result, cid) = self.own_vote(id, round).await?;
        Some(hal9_market::commitment(
            task,
            result,
            alloy::primitives::keccak256(&cid),
            self.chain_salt(&id, round),
            me,
        ))
    }

    /// The first equivocation proof held for `task`: the member and its two signed results.
    pub(super) fn equivocation_payload(&self, task: B256) -> Option<(Address, Dissent, Dissent)> {
        let c = self.tasks.get(&TaskId(task.0))?.chain.as_ref()?;
        let e = c.equivocations.first()?;
        let dissent = |a: &AttestRecord| -> Option<Dissent> {
            let r = hex::decode(&a.result).ok().filter(|b| b.len() == 32)?;
            Some(Dissent {
                resultHash: B256::from_slice(&r),
                outputCid: Bytes::from(hex::decode(&a.cid).ok()?),
                signature: Bytes::from(hex::decode(&a.signature).ok()?),
            })
        };
        Some((
            e.signer.parse().ok()?,
            dissent(&e.first)?,
            dissent(&e.second)?,
        ))
    }

    /// Remembers a transaction this node landed.
    pub(super) async fn note_tx(&mut self, task: B256, action: String, tx: String) {
        let id = TaskId(task.0);
        if let Some(c) = self.tasks.get_mut(&id).and_then(|r| r.chain.as_mut()) {
            c.txs.push((action, tx));
            self.persist_task(id).await;
        }
    }

    /// Looks at effects before the generic handling (chain hooks). Returns
    /// true when the effect is held back (a reveal before the commit phase
    /// closed on chain).
    pub(super) async fn chain_hooks(&mut self, fx: &Effect) -> bool {
        if !self.chain_mode() {
            return false;
        }
        match fx {
            Effect::Persist(vote) => {
                // The own vote is durable: store its commitment on chain.
                let (target, round) = self.chain_target(&vote.task);
                let action = if round == 0 {
                    Action::Commit
                } else {
                    Action::CommitEscalation
                };
                self.enqueue(OutboxEntry::new(action, B256::from(target.0), self.now()))
                    .await;
            }
            Effect::Broadcast(item @ VoteItem::Reveal(r)) => {
                if !self.commit_phase_closed(&r.task) {
                    debug!(target: "hal9::engine", task = %hex::encode(r.task.0), "reveal held until the commit phase closes on chain");
                    if let Some(ctx) = self.chain.as_mut() {
                        ctx.held.retain(|(id, _)| *id != r.task);
                        ctx.held.push((r.task, item.clone()));
                    }
                    return true;
                }
                let r = r.clone();
                self.chain_on_own_reveal(&r).await;
            }
            Effect::Failed { task, .. } => self.chain_on_failed(*task).await,
            _ => {}
        }
        false
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
            salts: Vec::new(),
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
