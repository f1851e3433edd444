//! The settlement outbox: every transaction the node owes the chain (draw a
//! committee, store its commitment, relay the reveals as a verdict, add late
//! reveals, prove an equivocation, challenge, relay an escalation verdict,
//! finalize) is written to the store first and carried out by one worker.
//!
//! An entry is done only when the chain shows its effect, whoever caused it,
//! so a crash, an RPC outage or a lost race delays a settlement but never
//! loses it, and the contract's state machine (a verdict can only be
//! submitted while the task is `Drawn`, and so on) makes a second attempt
//! harmless: each step first reads the task's on-chain state.

use std::{sync::Arc, time::Duration};

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::Provider;
use hal9_market::{DrawOutcome, Reveal, commitment};
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::link::ChainLink;
use crate::{clock::Clock, store::Store};

/// A member and two different results it signed for one task.
pub type EquivocationProof = (Address, hal9_market::Dissent, hal9_market::Dissent);

/// What the settlement worker reads from the layer above it (the consensus
/// engine implements it): the outbox never calls up into the engine's
/// internals, only through these questions.
pub trait SettlementSource: Send + Sync + 'static {
    /// Whether the source has stopped (the worker then stops too).
    fn is_stopped(&self) -> bool;
    /// The commitment this node stores on chain for `task` in `round`
    /// (`None` until its vote is persisted).
    fn own_commitment(
        &self,
        task: B256,
        round: u8,
    ) -> impl std::future::Future<Output = Option<B256>> + Send;
    /// An equivocation proof held for `task`.
    fn equivocation(
        &self,
        task: B256,
    ) -> impl std::future::Future<Output = Option<EquivocationProof>> + Send;
    /// The reveals to settle a verdict of `round` on chain.
    fn settlement(
        &self,
        task: B256,
        round: u8,
    ) -> impl std::future::Future<Output = Option<SettlementPayload>> + Send;
    /// Records a settlement transaction this node landed.
    fn note_tx(
        &self,
        task: B256,
        action: &str,
        tx: String,
    ) -> impl std::future::Future<Output = ()> + Send;
}

const TARGET: &str = "hal9::outbox";
/// Longest pause between retries of a failing entry.
const MAX_BACKOFF_MS: u64 = 15_000;
/// How often the worker checks for its own queued tree update.
const APPLY_CHECK_EVERY: Duration = Duration::from_secs(2);

/// What a transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, EncodeLabelValue)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `draw` the committee of a requested task once its draw block is mined.
    Draw,
    /// `draw` the escalation committee of a challenged task.
    DrawEscalation,
    /// `commitMany` this node's commitment as a committee member.
    Commit,
    /// `commitMany` this node's commitment as an escalation member.
    CommitEscalation,
    /// `submitVerdict` with a quorum of the committee's reveals.
    SubmitVerdict,
    /// `addReveals`: openings the verdict left out (this node's among them).
    AddReveals,
    /// `proveEquivocation` with two signed results of one member.
    ProveEquivocation,
    /// `challenge` a verdict this node's execution contradicts.
    Challenge,
    /// `submitEscalationVerdict` with a quorum of the escalation's reveals.
    SubmitEscalation,
    /// `finalize` (pay, resolve the challenge, or refund).
    Finalize,
}

impl Action {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Draw => "draw",
            Action::DrawEscalation => "draw_escalation",
            Action::Commit => "commit",
            Action::CommitEscalation => "commit_escalation",
            Action::SubmitVerdict => "submit_verdict",
            Action::AddReveals => "add_reveals",
            Action::ProveEquivocation => "prove_equivocation",
            Action::Challenge => "challenge",
            Action::SubmitEscalation => "submit_escalation",
            Action::Finalize => "finalize",
        }
    }
}

/// Where an entry stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Still owed.
    Pending,
    /// The chain shows the effect.
    Done,
    /// No longer possible (deadline or window passed); the reason says why.
    Abandoned,
}

/// One owed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// What to do.
    pub action: Action,
    /// On-chain task id, hex.
    pub task: String,
    /// Not before this local time, ms since the epoch.
    pub not_before_ms: u64,
    /// State.
    pub state: EntryState,
    /// Attempts that failed.
    pub attempts: u32,
    /// Last error or the reason it was abandoned.
    pub note: Option<String>,
    /// Hash of the transaction this node sent, if it sent one that landed.
    pub tx: Option<String>,
    /// Enqueued at, ms since the epoch (stamped by [`Outbox::enqueue`] on
    /// the outbox's clock).
    pub created_ms: u64,
}

impl OutboxEntry {
    /// A new pending entry.
    pub fn new(action: Action, task: B256, not_before_ms: u64) -> Self {
        Self {
            action,
            task: hex::encode(task),
            not_before_ms,
            state: EntryState::Pending,
            attempts: 0,
            note: None,
            tx: None,
            created_ms: 0,
        }
    }

    /// Store key: one entry per action and task.
    pub fn key(&self) -> String {
        format!("{}:{}", self.action.name(), self.task)
    }

    fn task_id(&self) -> Option<B256> {
        hex::decode(&self.task)
            .ok()
            .filter(|b| b.len() == 32)
            .map(|b| B256::from_slice(&b))
    }
}

/// A member's reveal as gossiped: the salts offered are checked against the
/// commitment the chain stored before one is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealCandidate {
    /// The member's operator address.
    pub member: Address,
    /// Its result hash.
    pub result: B256,
    /// Its output CID (binary).
    pub cid: Vec<u8>,
    /// Salts offered for its commitment (the first that opens it is used).
    pub salts: Vec<B256>,
}

/// What the engine hands the worker to settle a verdict of one round.
#[derive(Debug, Clone)]
pub struct SettlementPayload {
    /// The result a quorum revealed (or this node's own).
    pub result: B256,
    /// Its output CID (binary).
    pub cid: Vec<u8>,
    /// Every reveal of the round this node holds, agreeing or not.
    pub reveals: Vec<RevealCandidate>,
}

/// The reveals of `p` that open the commitments the chain stored, as the
/// contract takes them (index in `members`), and how many agree with `p`.
/// Reveals of non-members, of members without a stored commitment, with
/// no opening salt, or at positions in `skip` are left out: one bad
/// opening would revert the whole call.
pub async fn openings(
    link: &ChainLink,
    task: B256,
    members: &[Address],
    p: &SettlementPayload,
    skip: U256,
) -> Result<(Vec<Reveal>, usize), String> {
    let mut out = Vec::new();
    let mut agree = 0;
    for c in &p.reveals {
        let Some(index) = members.iter().position(|m| *m == c.member) else {
            continue;
        };
        if index >= 256 || skip.bit(index) || out.iter().any(|r: &Reveal| r.index as usize == index)
        {
            continue;
        }
        let stored = link
            .client
            .committed(task, c.member)
            .await
            .map_err(|e| e.to_string())?;
        if stored == B256::ZERO {
            continue;
        }
        let cid_hash = keccak256(&c.cid);
        let Some(salt) = c
            .salts
            .iter()
            .find(|s| commitment(task, c.result, cid_hash, **s, c.member) == stored)
        else {
            debug!(target: TARGET, task = %task, member = %c.member, "no offered salt opens the member's commitment; its reveal is left out");
            continue;
        };
        if c.result == p.result && c.cid == p.cid {
            agree += 1;
        }
        out.push(hal9_market::reveal(index as u16, c.result, &c.cid, *salt));
    }
    Ok((out, agree))
}

/// Metric labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionLabel {
    action: Action,
}

/// Outbox metrics.
#[derive(Debug, Clone, Default)]
pub struct OutboxMetrics {
    pending: Gauge,
    sent: Family<ActionLabel, Counter>,
    done: Family<ActionLabel, Counter>,
    errors: Family<ActionLabel, Counter>,
}

impl OutboxMetrics {
    /// Registers under `hal9_outbox_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("hal9_outbox");
        r.register(
            "pending",
            "Settlement transactions still owed",
            m.pending.clone(),
        );
        r.register(
            "sent",
            "Transactions this node sent, by action",
            m.sent.clone(),
        );
        r.register(
            "done",
            "Entries whose effect the chain shows, by action",
            m.done.clone(),
        );
        r.register("errors", "Failed attempts, by action", m.errors.clone());
        m
    }
}

/// Handle to enqueue entries.
#[derive(Clone)]
pub struct Outbox {
    store: Arc<Store>,
    /// Where the outbox's time comes from (retry back-off, entry stamps).
    clock: Arc<dyn Clock>,
    notify: Arc<Notify>,
    /// Pending entries per on-chain task id (hex): the engine keeps a task
    /// in memory while anything is owed for it.
    owed: Arc<parking_lot::Mutex<std::collections::HashMap<String, u32>>>,
}

impl Outbox {
    /// An outbox over `store` keeping time by `clock`; its index of owed
    /// tasks is loaded from the store's pending index (O(pending)).
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        let mut owed = std::collections::HashMap::new();
        match store.outbox_pending::<OutboxEntry>() {
            Ok(entries) => {
                for e in entries
                    .into_iter()
                    .filter(|e| e.state == EntryState::Pending)
                {
                    *owed.entry(e.task).or_insert(0) += 1;
                }
            }
            Err(e) => warn!(target: TARGET, error = %e, "cannot read the pending outbox entries"),
        }
        Self {
            store,
            clock,
            notify: Arc::new(Notify::new()),
            owed: Arc::new(parking_lot::Mutex::new(owed)),
        }
    }

    /// Whether an entry is still pending for the on-chain task `task`.
    pub fn owes(&self, task: &[u8; 32]) -> bool {
        self.owed.lock().contains_key(&hex::encode(task))
    }

    /// Tasks with a pending entry.
    pub fn owed_count(&self) -> usize {
        self.owed.lock().len()
    }

    /// Durably enqueues `entry` unless one for the same action and task exists.
    pub async fn enqueue(&self, mut entry: OutboxEntry) {
        entry.created_ms = self.clock.now_ms();
        let store = self.store.clone();
        let key = entry.key();
        let task = entry.task.clone();
        let res =
            tokio::task::spawn_blocking(move || store.insert_outbox_new(&entry.key(), &entry))
                .await;
        match res {
            Ok(Ok(true)) => {
                debug!(target: TARGET, %key, "enqueued");
                *self.owed.lock().entry(task).or_insert(0) += 1;
                self.notify.notify_one();
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => warn!(target: TARGET, %key, error = %e, "cannot enqueue"),
            Err(e) => warn!(target: TARGET, %key, error = %e, "cannot enqueue"),
        }
    }

    /// The pending entries, read through the store's pending index: a poll
    /// costs O(pending), not O(history).
    pub async fn pending(&self) -> Vec<OutboxEntry> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.outbox_pending::<OutboxEntry>()).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                warn!(target: TARGET, error = %e, "cannot read the outbox");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }

    async fn save(&self, entry: &OutboxEntry) {
        let store = self.store.clone();
        let e = entry.clone();
        let pending = e.state == EntryState::Pending;
        match tokio::task::spawn_blocking(move || store.put_outbox(&e.key(), &e, pending)).await {
            Ok(Ok(())) if !pending => {
                let mut owed = self.owed.lock();
                if let Some(n) = owed.get_mut(&entry.task) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        owed.remove(&entry.task);
                    }
                }
            }
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!(target: TARGET, error = %err, "cannot update an outbox entry"),
            Err(err) => warn!(target: TARGET, error = %err, "cannot update an outbox entry"),
        }
    }

    /// Runs the worker until the engine stops.
    pub async fn run(
        self,
        link: Arc<ChainLink>,
        engine: impl SettlementSource,
        metrics: OutboxMetrics,
    ) {
        let poll = Duration::from_millis(link.cfg.poll_interval_ms.max(50));
        let mut last_apply_check = std::time::Instant::now() - APPLY_CHECK_EVERY;
        loop {
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
            if engine.is_stopped() {
                break;
            }
            if last_apply_check.elapsed() >= APPLY_CHECK_EVERY {
                last_apply_check = std::time::Instant::now();
                if let Err(e) = apply_own_queued(&link).await {
                    debug!(target: TARGET, error = %e, "cannot check or apply the queued tree update");
                }
            }
            let pending: Vec<_> = self
                .pending()
                .await
                .into_iter()
                .filter(|e| e.state == EntryState::Pending)
                .collect();
            metrics.pending.set(pending.len() as i64);
            let now = self.clock.now_ms();
            for mut e in pending.into_iter().filter(|e| e.not_before_ms <= now) {
                let outcome = step(&link, &engine, &e, &metrics).await;
                match outcome {
                    Ok(Step::Done(tx)) => {
                        info!(target: TARGET, action = e.action.name(), task = %e.task, tx = ?tx, "settled");
                        metrics
                            .done
                            .get_or_create(&ActionLabel { action: e.action })
                            .inc();
                        e.state = EntryState::Done;
                        if tx.is_some() {
                            e.tx = tx;
                        }
                    }
                    Ok(Step::Wait(ms)) => e.not_before_ms = self.clock.now_ms() + ms,
                    Ok(Step::Abandon(reason)) => {
                        warn!(target: TARGET, action = e.action.name(), task = %e.task, %reason, "abandoned");
                        e.state = EntryState::Abandoned;
                        e.note = Some(reason);
                    }
                    Err(err) => {
                        e.attempts += 1;
                        metrics
                            .errors
                            .get_or_create(&ActionLabel { action: e.action })
                            .inc();
                        let backoff = (500u64 << e.attempts.min(5)).min(MAX_BACKOFF_MS);
                        warn!(target: TARGET, action = e.action.name(), task = %e.task, attempts = e.attempts, error = %err, "attempt failed; retrying");
                        e.note = Some(err);
                        e.not_before_ms = self.clock.now_ms() + backoff;
                    }
                }
                if e.state == EntryState::Done
                    && let (Some(task), Some(tx)) = (e.task_id(), e.tx.clone())
                {
                    engine.note_tx(task, e.action.name(), tx).await;
                }
                self.save(&e).await;
            }
        }
    }
}

enum Step {
    Done(Option<String>),
    Wait(u64),
    Abandon(String),
}

/// `Status` enum of the market (protocol v1.1), as numbers.
mod status {
    pub(super) const REQUESTED: u8 = 1;
    pub(super) const DRAWN: u8 = 2;
    pub(super) const VERDICT: u8 = 3;
    pub(super) const CHALLENGED: u8 = 4;
    pub(super) const ESCALATING: u8 = 5;
    pub(super) const FINALIZED: u8 = 6;
    pub(super) const REFUNDED: u8 = 7;
}

fn wait_for(chain_now: u64, target: u64) -> u64 {
    // Chain time may jump (a dev chain's clock can be moved), so re-check often.
    (target.saturating_sub(chain_now).saturating_add(1) * 1000).min(2_000)
}

async fn step(
    link: &ChainLink,
    engine: &impl SettlementSource,
    e: &OutboxEntry,
    metrics: &OutboxMetrics,
) -> Result<Step, String> {
    let task = e.task_id().ok_or("corrupt task id in the outbox")?;
    let t: hal9_market::bindings::Task = link.client.task(task).await.map_err(|e| e.to_string())?;
    let st = t.status as u8;
    let now = link.chain_time().await.map_err(|e| format!("{e:#}"))?;
    let _guard = link.send_lock.lock().await;
    let sent = |name: &'static str| {
        metrics
            .sent
            .get_or_create(&ActionLabel { action: e.action })
            .inc();
        debug!(target: TARGET, call = name, task = %task, "sending");
    };
    let me = link.address();
    let tx = |rc: alloy::rpc::types::TransactionReceipt| {
        Ok(Step::Done(Some(rc.transaction_hash.to_string())))
    };
    match e.action {
        Action::Draw | Action::DrawEscalation => {
            let want = if e.action == Action::Draw {
                status::REQUESTED
            } else {
                status::CHALLENGED
            };
            if st != want {
                return Ok(Step::Done(None));
            }
            if want == status::REQUESTED && now > t.deadline {
                return Ok(Step::Abandon("the deadline passed before a draw".into()));
            }
            let head = link
                .provider()
                .get_block_number()
                .await
                .map_err(|e| format!("eth_blockNumber: {e}"))?;
            if head <= t.drawBlock {
                return Ok(Step::Wait(1_000));
            }
            sent("draw");
            match link.client.draw(task).await {
                Ok(DrawOutcome::Drawn { .. }) => Ok(Step::Done(None)),
                Ok(DrawOutcome::Retargeted { draw_block }) => {
                    debug!(target: TARGET, task = %task, draw_block, "draw re-targeted");
                    Ok(Step::Wait(1_000))
                }
                Ok(DrawOutcome::Empty) => Ok(Step::Abandon(
                    "no committee could be drawn (too few eligible neurons, or the deadline is too near)"
                        .into(),
                )),
                Err(err) => lost_race(link, task, want, err.to_string()).await,
            }
        }
        Action::Commit | Action::CommitEscalation => {
            let (want, round) = if e.action == Action::Commit {
                (status::DRAWN, 0)
            } else {
                (status::ESCALATING, 1)
            };
            if st != want {
                return Ok(Step::Done(None));
            }
            if now > t.commitEnd {
                return Ok(Step::Abandon(
                    "the commit phase closed before this node's commitment landed".into(),
                ));
            }
            let stored = link
                .client
                .committed(task, me)
                .await
                .map_err(|e| e.to_string())?;
            if stored != B256::ZERO {
                return Ok(Step::Done(None));
            }
            let Some(c) = engine.own_commitment(task, round).await else {
                return Ok(Step::Wait(500));
            };
            sent("commitMany");
            match link.client.commit_many(&[(task, c)]).await {
                Ok(rc) => tx(rc),
                Err(err) => {
                    let stored = link
                        .client
                        .committed(task, me)
                        .await
                        .map_err(|e| e.to_string())?;
                    if stored != B256::ZERO {
                        Ok(Step::Done(None))
                    } else {
                        Err(err.to_string())
                    }
                }
            }
        }
        Action::SubmitVerdict | Action::SubmitEscalation => {
            let (want, round, members) = if e.action == Action::SubmitVerdict {
                (status::DRAWN, 0, &t.committee)
            } else {
                (status::ESCALATING, 1, &t.escalation)
            };
            if st != want || (round == 1 && t.escalationMask != U256::ZERO) {
                return Ok(Step::Done(None));
            }
            if now <= t.commitEnd {
                return Ok(Step::Wait(wait_for(now, t.commitEnd)));
            }
            if now > t.revealEnd {
                return Ok(Step::Abandon(
                    "the reveal phase ended without a verdict".into(),
                ));
            }
            let Some(p) = engine.settlement(task, round).await else {
                return Ok(Step::Wait(500));
            };
            let (reveals, agree) = openings(link, task, members, &p, U256::ZERO).await?;
            let need = hal9_consensus::quorum(members.len());
            if agree < need {
                debug!(target: TARGET, task = %task, round, agree, need, "waiting for reveals");
                return Ok(Step::Wait(500));
            }
            let sent_tx = if round == 0 {
                crash_once_before_submit(me);
                sent("submitVerdict");
                link.client
                    .submit_verdict(task, p.result, &p.cid, reveals)
                    .await
            } else {
                sent("submitEscalationVerdict");
                link.client
                    .submit_escalation_verdict(task, p.result, &p.cid, reveals)
                    .await
            };
            match sent_tx {
                Ok(rc) => tx(rc),
                Err(err) => lost_race(link, task, want, err.to_string()).await,
            }
        }
        Action::AddReveals => {
            if st != status::VERDICT || now > t.challengeEnd {
                return Ok(Step::Done(None));
            }
            let Some(p) = engine.settlement(task, 0).await else {
                return Ok(Step::Done(None));
            };
            let seen = t.majorityMask | t.minorityMask;
            let (reveals, _) = openings(link, task, &t.committee, &p, seen).await?;
            if reveals.is_empty() {
                return Ok(Step::Done(None));
            }
            sent("addReveals");
            match link.client.add_reveals(task, reveals).await {
                Ok(rc) => tx(rc),
                Err(err) => Err(err.to_string()),
            }
        }
        Action::ProveEquivocation => {
            if st <= status::REQUESTED || st >= status::FINALIZED {
                return Ok(Step::Done(None));
            }
            let Some((member, a, b)) = engine.equivocation(task).await else {
                return Ok(Step::Done(None));
            };
            sent("proveEquivocation");
            match link.client.prove_equivocation(task, a, b).await {
                Ok(rc) => {
                    info!(target: TARGET, task = %task, %member, "equivocation proven on chain");
                    tx(rc)
                }
                // Someone proved it first (or the member is no longer slashable for it).
                Err(err) => Ok(Step::Abandon(err.to_string())),
            }
        }
        Action::Challenge => {
            if st != status::VERDICT {
                return Ok(Step::Done(None));
            }
            if now > t.challengeEnd {
                return Ok(Step::Abandon("the challenge window closed".into()));
            }
            let p = link.client.params().await.map_err(|e| e.to_string())?;
            let mut bond = t.fee * U256::from(p.challengeBondBps) / U256::from(10_000u64);
            if bond < p.minChallengeBond {
                bond = p.minChallengeBond;
            }
            sent("challenge");
            match link.client.challenge(task, bond).await {
                Ok(rc) => tx(rc),
                Err(err) => lost_race(link, task, status::VERDICT, err.to_string()).await,
            }
        }
        Action::Finalize => {
            if st == status::FINALIZED || st == status::REFUNDED {
                return Ok(Step::Done(None));
            }
            let ready_at = match st {
                status::REQUESTED | status::DRAWN => t.deadline,
                status::VERDICT => t.challengeEnd,
                status::CHALLENGED => t.escalationEnd,
                status::ESCALATING if t.escalationMask != U256::ZERO => t.revealEnd,
                status::ESCALATING => t.escalationEnd,
                _ => return Ok(Step::Abandon(format!("task in unknown status {st}"))),
            };
            if now <= ready_at {
                return Ok(Step::Wait(wait_for(now, ready_at)));
            }
            sent("finalize");
            match link.client.finalize(task).await {
                Ok(rc) => tx(rc),
                Err(err) => {
                    let t2 = link.client.task(task).await.map_err(|e| e.to_string())?;
                    let s2 = t2.status as u8;
                    if s2 == status::FINALIZED || s2 == status::REFUNDED {
                        Ok(Step::Done(None))
                    } else {
                        Err(err.to_string())
                    }
                }
            }
        }
    }
}

/// Applies this operator's queued sortition-tree write (a stake or
/// capability change made in a draw phase) once an apply phase comes:
/// until then the neuron is drawn with its old weight, or not at all.
async fn apply_own_queued(link: &ChainLink) -> Result<bool, String> {
    let me = link.address();
    let n = link.client.neuron(me).await.map_err(|e| e.to_string())?;
    if !n.queued
        || !link
            .client
            .in_apply_phase()
            .await
            .map_err(|e| e.to_string())?
    {
        return Ok(false);
    }
    let _guard = link.send_lock.lock().await;
    link.client
        .apply_queued(&[me])
        .await
        .map_err(|e| e.to_string())?;
    info!(target: TARGET, operator = %me, "queued sortition-tree update applied");
    Ok(true)
}

/// Fault injection (feature `fault-injection`): with `HAL9_CRASH_MARKER`
/// naming a directory, the first time for each operator (a marker file named
/// by its address is created) abort the process, as if it was killed after
/// signing and before its verdict landed.
fn crash_once_before_submit(operator: alloy::primitives::Address) {
    #[cfg(not(feature = "fault-injection"))]
    let _ = operator;
    #[cfg(feature = "fault-injection")]
    if let Some(dir) = std::env::var_os("HAL9_CRASH_MARKER")
        && std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(std::path::Path::new(&dir).join(operator.to_string()))
            .is_ok()
    {
        warn!(target: TARGET, "FAULT INJECTION: crashing before submitting a verdict");
        std::process::abort();
    }
}

/// After a failed send: if the task left `expect` (or, escalating, has its
/// escalation verdict already), someone else landed it.
async fn lost_race(link: &ChainLink, task: B256, expect: u8, err: String) -> Result<Step, String> {
    let t = link.client.task(task).await.map_err(|e| e.to_string())?;
    if t.status != expect || (expect == status::ESCALATING && t.escalationMask != U256::ZERO) {
        Ok(Step::Done(None))
    } else {
        Err(err)
    }
}
