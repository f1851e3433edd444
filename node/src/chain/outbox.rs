//! The settlement outbox: every transaction the node owes the chain
//! (submit a verdict, challenge, submit an escalation verdict, finalize) is
//! written to the store first and carried out by one worker.
//!
//! An entry is done only when the chain shows its effect, whoever caused it,
//! so a crash, an RPC outage or a lost race delays a settlement but never
//! loses it, and the contract's state machine (a verdict can only be
//! submitted while the task is `Posted`, and so on) makes a second attempt
//! harmless: each step first reads the task's on-chain state.

use std::{sync::Arc, time::Duration};

use alloy::primitives::{B256, Bytes, U256};
use hal9_market::{Dissent, bindings::ComputationMarket};
use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::link::ChainLink;
use crate::{clock::now_ms, engine::EngineHandle, store::Store};

const TARGET: &str = "hal9::outbox";
/// Longest pause between retries of a failing entry.
const MAX_BACKOFF_MS: u64 = 15_000;

/// What a transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, EncodeLabelValue)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `submitVerdict` with the primary committee's attestations.
    SubmitVerdict,
    /// `joinVerdict` with this node's agreeing attestation, left out by the submitter.
    JoinVerdict,
    /// `challenge` a verdict this node's execution contradicts.
    Challenge,
    /// `submitEscalationVerdict` with the escalation committee's attestations.
    SubmitEscalation,
    /// `finalize` (pay, resolve the challenge, or refund).
    Finalize,
}

impl Action {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Action::SubmitVerdict => "submit_verdict",
            Action::JoinVerdict => "join_verdict",
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
    /// Enqueued at, ms since the epoch.
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
            created_ms: now_ms(),
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

/// What the engine hands the worker to settle a verdict.
#[derive(Debug, Clone)]
pub struct SettlementPayload {
    /// Agreed result.
    pub result: B256,
    /// Output CID (binary).
    pub cid: Vec<u8>,
    /// Signatures of members that agree.
    pub signatures: Vec<Bytes>,
    /// Who made each of `signatures`.
    pub signers: Vec<alloy::primitives::Address>,
    /// Signed attestations of members that disagree (primary round only).
    pub dissents: Vec<Dissent>,
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
#[derive(Clone, Debug)]
pub struct Outbox {
    store: Arc<Store>,
    notify: Arc<Notify>,
    /// Pending entries per on-chain task id (hex): the engine keeps a task
    /// in memory while anything is owed for it.
    owed: Arc<parking_lot::Mutex<std::collections::HashMap<String, u32>>>,
}

impl Outbox {
    /// An outbox over `store`; its index of owed tasks is loaded from the
    /// store's pending index (O(pending)).
    pub fn new(store: Arc<Store>) -> Self {
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
    pub async fn enqueue(&self, entry: OutboxEntry) {
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
    pub async fn run(self, link: Arc<ChainLink>, engine: EngineHandle, metrics: OutboxMetrics) {
        let poll = Duration::from_millis(link.cfg.poll_interval_ms.max(50));
        loop {
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
            if engine.is_stopped() {
                break;
            }
            let pending: Vec<_> = self
                .pending()
                .await
                .into_iter()
                .filter(|e| e.state == EntryState::Pending)
                .collect();
            metrics.pending.set(pending.len() as i64);
            let now = now_ms();
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
                    Ok(Step::Wait(ms)) => e.not_before_ms = now_ms() + ms,
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
                        e.not_before_ms = now_ms() + backoff;
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

/// `Status` enum of the market, as numbers.
mod status {
    pub(super) const POSTED: u8 = 1;
    pub(super) const VERDICT: u8 = 2;
    pub(super) const CHALLENGED: u8 = 3;
    pub(super) const FINALIZED: u8 = 4;
    pub(super) const REFUNDED: u8 = 5;
}

fn wait_for(chain_now: u64, target: u64) -> u64 {
    // Chain time may jump (a dev chain's clock can be moved), so re-check often.
    (target.saturating_sub(chain_now).saturating_add(1) * 1000).min(2_000)
}

async fn step(
    link: &ChainLink,
    engine: &EngineHandle,
    e: &OutboxEntry,
    metrics: &OutboxMetrics,
) -> Result<Step, String> {
    let task = e.task_id().ok_or("corrupt task id in the outbox")?;
    let t: ComputationMarket::Task = link.client.task(task).await.map_err(|e| e.to_string())?;
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
    match e.action {
        Action::SubmitVerdict => {
            if st != status::POSTED {
                return Ok(Step::Done(None));
            }
            if now > t.deadline {
                return Ok(Step::Abandon(
                    "the task deadline passed without a verdict".into(),
                ));
            }
            let Some(p) = engine.settlement(task, 0).await else {
                return Ok(Step::Wait(500));
            };
            let need = hal9_consensus::quorum(t.committee.len());
            if p.signatures.len() < need {
                debug!(target: TARGET, task = %task, have = p.signatures.len(), need, "waiting for attestations");
                return Ok(Step::Wait(500));
            }
            crash_once_before_submit(link.address());
            sent("submitVerdict");
            match link
                .client
                .submit_verdict(task, p.result, &p.cid, p.signatures, p.dissents)
                .await
            {
                Ok(rc) => Ok(Step::Done(Some(rc.transaction_hash.to_string()))),
                Err(err) => lost_race(link, task, status::POSTED, err.to_string()).await,
            }
        }
        Action::JoinVerdict => {
            if st != status::VERDICT || now > t.challengeEnd {
                return Ok(Step::Done(None));
            }
            let me = link.address();
            let Some(pos) = t.committee.iter().position(|a| *a == me) else {
                return Ok(Step::Abandon("not a committee member".into()));
            };
            if t.majorityMask.bit(pos) || t.minorityMask.bit(pos) {
                return Ok(Step::Done(None));
            }
            let Some(p) = engine.settlement(task, 0).await else {
                return Ok(Step::Wait(500));
            };
            let Some(i) = p.signers.iter().position(|s| *s == me) else {
                return Ok(Step::Abandon("no agreeing attestation of this node".into()));
            };
            sent("joinVerdict");
            match link
                .client
                .join_verdict(task, &p.cid, vec![p.signatures[i].clone()])
                .await
            {
                Ok(rc) => Ok(Step::Done(Some(rc.transaction_hash.to_string()))),
                Err(err) => Err(err.to_string()),
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
                Ok(rc) => Ok(Step::Done(Some(rc.transaction_hash.to_string()))),
                Err(err) => lost_race(link, task, status::VERDICT, err.to_string()).await,
            }
        }
        Action::SubmitEscalation => {
            if st != status::CHALLENGED || t.escalationMask != U256::ZERO {
                return Ok(Step::Done(None));
            }
            if now > t.escalationEnd {
                return Ok(Step::Abandon("the escalation period ended".into()));
            }
            let Some(p) = engine.settlement(task, 1).await else {
                return Ok(Step::Wait(500));
            };
            let need = hal9_consensus::quorum(t.escalation.len());
            if p.signatures.len() < need {
                return Ok(Step::Wait(500));
            }
            sent("submitEscalationVerdict");
            match link
                .client
                .submit_escalation_verdict(task, p.result, &p.cid, p.signatures)
                .await
            {
                Ok(rc) => Ok(Step::Done(Some(rc.transaction_hash.to_string()))),
                Err(err) => {
                    let t2 = link.client.task(task).await.map_err(|e| e.to_string())?;
                    if t2.escalationMask != U256::ZERO || t2.status as u8 != status::CHALLENGED {
                        Ok(Step::Done(None))
                    } else {
                        Err(err.to_string())
                    }
                }
            }
        }
        Action::Finalize => {
            if st == status::FINALIZED || st == status::REFUNDED {
                return Ok(Step::Done(None));
            }
            let ready_at = match st {
                status::POSTED => t.deadline,
                status::VERDICT => t.challengeEnd,
                status::CHALLENGED if t.escalationMask != U256::ZERO => 0,
                status::CHALLENGED => t.escalationEnd,
                _ => return Ok(Step::Abandon(format!("task in unknown status {st}"))),
            };
            if now <= ready_at {
                return Ok(Step::Wait(wait_for(now, ready_at)));
            }
            sent("finalize");
            match link.client.finalize(task).await {
                Ok(rc) => Ok(Step::Done(Some(rc.transaction_hash.to_string()))),
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

/// After a failed send: if the task left `expect`, someone else landed it.
async fn lost_race(link: &ChainLink, task: B256, expect: u8, err: String) -> Result<Step, String> {
    let t = link.client.task(task).await.map_err(|e| e.to_string())?;
    if t.status as u8 != expect {
        Ok(Step::Done(None))
    } else {
        Err(err)
    }
}
