//! Follows the `ComputationMarket` event log with confirmations and reorg
//! handling.
//!
//! A [`Watcher`] turns the market's logs into typed [`ChainEvent`]s, in
//! chain order (block, then log index). Each [`Watcher::poll`] reads the
//! blocks after its [`Cursor`] up to `head - confirmations`, in ranges of at
//! most `max_range` blocks, and returns them as a [`Batch`] whose `cursor`
//! the caller persists once it has acted on the events.
//!
//! # Reorgs
//!
//! Before reading, the watcher checks that the block at the cursor still has
//! the cursor's hash, and after reading, that the first new block's parent is
//! the cursor. When either fails, the chain was reorganised deeper than
//! `confirmations`: the watcher walks back through a small ring of
//! (number, hash) pairs it has seen to the newest one still on the chain (the
//! fork point), sets [`Batch::reorged`], and reads again from there. With no
//! such pair (a fresh watcher restored from a persisted cursor, or a reorg
//! deeper than the ring), it rescans from `start_block`.
//!
//! So events can be delivered more than once, and events delivered before a
//! reorg may have vanished from the chain. **Consumers must be idempotent**
//! (key state by task id and event, not by arrival) and, on `reorged`, must
//! treat what they derived from blocks after [`Batch::fork_block`] as
//! unconfirmed (e.g. re-read the task's status with `MarketClient::task`).
//!
//! Logs that cannot be decoded (unknown event, malformed data, oversize) are
//! skipped with a warning; they never stop the watcher.

use std::collections::VecDeque;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEventInterface;
use serde::{Deserialize, Serialize};

use crate::bindings::ComputationMarket::{self, ComputationMarketEvents};
use crate::client::{PostedTask, spec_from_event};
use crate::deploy::Deployment;
use crate::error::{MarketError, Result};

/// Largest `max_range` (blocks per `eth_getLogs`) a watcher accepts.
pub const MAX_RANGE_CAP: u64 = 100_000;
/// Most logs one `eth_getLogs` answer may hold; a larger answer is split by
/// halving the block range.
pub const MAX_LOGS_PER_QUERY: usize = 5_000;
/// Most events one [`Watcher::poll`] returns; it stops after the range that
/// crosses this and reports [`Batch::caught_up`] = false.
pub const MAX_EVENTS_PER_POLL: usize = 10_000;
/// Largest log data decoded, in bytes (the largest market event, a
/// `EscalationDrawn` with 63 members, under 2.2 KiB, or a `TaskPosted`
/// with two 128-byte CIDs, under 1 KiB).
pub const MAX_LOG_DATA: usize = 16 * 1024;
/// Longest CID accepted in an event (`ComputationMarket.MAX_CID_LEN`).
pub const MAX_CID_LEN: usize = 128;
/// Most members in an event's committee (2 x 31 + 1, an escalation committee).
pub const MAX_MEMBERS: usize = 63;
/// How many recent (number, hash) pairs the watcher keeps to find a fork point.
pub const RING_LEN: usize = 256;
/// How many times one poll reads again after the chain moved under it (it
/// then returns what it has, with `caught_up` = false).
const MAX_ATTEMPTS: usize = 4;

/// The last block a watcher has fully processed. Persist it with the state
/// derived from the events up to it, and hand it back to [`Watcher::new`].
/// A zero `hash` means no block was processed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// Block number.
    pub block: u64,
    /// Its hash.
    pub hash: B256,
}

/// An event with where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// Block number.
    pub block: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Transaction hash.
    pub tx: B256,
    /// Index of the log in its block.
    pub log_index: u64,
    /// The event.
    pub event: T,
}

/// A decoded `ComputationMarket` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEvent {
    /// A task was posted (no committee yet: it is drawn after `draw_block`).
    TaskPosted(PostedTask),
    /// A draw was moved to a later block (the hash of the old one was gone,
    /// or its tree epoch ended).
    DrawRetargeted {
        /// The task.
        task: B256,
        /// The new draw block.
        draw_block: u64,
    },
    /// The committee of a task was drawn.
    CommitteeDrawn {
        /// The task.
        task: B256,
        /// The members, in draw order (reveal indices refer to it).
        committee: Vec<Address>,
        /// End of the commit phase (unix seconds).
        commit_end: u64,
        /// End of the reveal phase (unix seconds).
        reveal_end: u64,
    },
    /// A member stored its commitment for a task.
    Committed {
        /// The task.
        task: B256,
        /// The member.
        member: Address,
    },
    /// A verdict was recorded.
    VerdictSubmitted {
        /// The task.
        task: B256,
        /// Result hash of the verdict.
        result: B256,
        /// CID (binary) of the output.
        output_cid: Bytes,
        /// Committee indices whose reveals opened the verdict.
        majority_mask: U256,
        /// Committee indices whose reveals opened another result.
        minority_mask: U256,
    },
    /// Reveals were added to a verdict in its challenge window.
    RevealsAdded {
        /// The task.
        task: B256,
        /// The majority mask after the addition.
        majority_mask: U256,
        /// The minority mask after the addition.
        minority_mask: U256,
    },
    /// A verdict was challenged; the escalation committee is drawn after `draw_block`.
    Challenged {
        /// The task.
        task: B256,
        /// Who challenged.
        challenger: Address,
        /// Bond escrowed.
        bond: U256,
        /// The escalation draw block.
        draw_block: u64,
    },
    /// The escalation committee (2r+1) of a challenged task was drawn.
    EscalationDrawn {
        /// The task.
        task: B256,
        /// The members, in draw order.
        escalation: Vec<Address>,
        /// End of its commit phase (unix seconds).
        commit_end: u64,
        /// End of its reveal phase (unix seconds).
        reveal_end: u64,
    },
    /// The escalation committee's verdict was recorded.
    EscalationVerdict {
        /// The task.
        task: B256,
        /// Its result hash.
        result: B256,
        /// CID (binary) of its output.
        output_cid: Bytes,
        /// Escalation indices that signed.
        mask: U256,
        /// Whether it agrees with the original verdict.
        upheld: bool,
    },
    /// A member was proven to have signed two different results and slashed.
    Equivocation {
        /// The task.
        task: B256,
        /// The equivocating member.
        member: Address,
        /// Who proved it (paid half the slash).
        prover: Address,
        /// Stake slashed.
        slashed: U256,
    },
    /// A task was paid out.
    Finalized {
        /// The task.
        task: B256,
        /// The final result hash.
        result: B256,
        /// Fee burned.
        burned: U256,
        /// Fee to the treasury (with dust).
        to_treasury: U256,
        /// Paid to each majority member.
        per_member: U256,
        /// Stake slashed in total.
        slashed: U256,
    },
    /// A challenge was resolved.
    ChallengeSettled {
        /// The task.
        task: B256,
        /// Who challenged.
        challenger: Address,
        /// Whether the challenger was right.
        challenger_won: bool,
        /// Paid to the challenger.
        payout: U256,
    },
    /// A task without verdict by its deadline was refunded.
    Refunded {
        /// The task.
        task: B256,
        /// Who was refunded.
        submitter: Address,
        /// The fee refunded.
        fee: U256,
    },
    /// The governance changed the market parameters.
    ParamsUpdated(ComputationMarket::Params),
    /// A `submitVerdicts` entry was skipped.
    VerdictSkipped {
        /// The task of the entry.
        task: B256,
        /// ABI-encoded custom error (decode with `client::describe_revert_data`).
        reason: Bytes,
    },
    /// A `finalizeMany` entry was skipped.
    FinalizeSkipped {
        /// The task of the entry.
        task: B256,
        /// ABI-encoded custom error.
        reason: Bytes,
    },
}

impl ChainEvent {
    /// The task the event is about (`None` for `ParamsUpdated`).
    pub fn task(&self) -> Option<B256> {
        Some(match self {
            Self::TaskPosted(p) => p.task_id,
            Self::DrawRetargeted { task, .. }
            | Self::CommitteeDrawn { task, .. }
            | Self::Committed { task, .. }
            | Self::VerdictSubmitted { task, .. }
            | Self::RevealsAdded { task, .. }
            | Self::Challenged { task, .. }
            | Self::EscalationDrawn { task, .. }
            | Self::Equivocation { task, .. }
            | Self::EscalationVerdict { task, .. }
            | Self::Finalized { task, .. }
            | Self::ChallengeSettled { task, .. }
            | Self::Refunded { task, .. }
            | Self::VerdictSkipped { task, .. }
            | Self::FinalizeSkipped { task, .. } => *task,
            Self::ParamsUpdated(_) => return None,
        })
    }
}

/// What one [`Watcher::poll`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Events in chain order.
    pub events: Vec<Located<ChainEvent>>,
    /// The last block processed; persist it after acting on `events`.
    pub cursor: Cursor,
    /// The chain was reorganised below the previous cursor: `events` restart
    /// at the block after `fork_block` and may repeat earlier ones.
    pub reorged: bool,
    /// On a reorg, the newest block still shared with the old chain.
    pub fork_block: Option<u64>,
    /// Whether the cursor reached `head - confirmations`; when false, poll
    /// again at once.
    pub caught_up: bool,
}

/// Follows a deployment's `ComputationMarket` log.
#[derive(Debug)]
pub struct Watcher<P> {
    provider: P,
    market: Address,
    start_block: u64,
    confirmations: u64,
    max_range: u64,
    /// Committed at the end of a successful poll only.
    state: State,
}

/// Where a watcher stands.
#[derive(Debug, Clone, Default)]
struct State {
    /// The last block processed.
    cursor: Option<Cursor>,
    /// Recent (number, hash) pairs seen on the chain, ascending by number.
    ring: VecDeque<Cursor>,
}

impl State {
    /// Adds `c` to the ring (when newer than its newest entry) and makes it
    /// the cursor when it is beyond it.
    fn remember(&mut self, c: Cursor) {
        if self.ring.back().is_none_or(|b| b.block < c.block) {
            if self.ring.len() == RING_LEN {
                self.ring.pop_front();
            }
            self.ring.push_back(c);
        }
        if self.cursor.is_none_or(|cur| cur.block < c.block) {
            self.cursor = Some(c);
        }
    }
}

impl<P: Provider> Watcher<P> {
    /// A watcher of `deployment`'s market. It resumes after `cursor` when
    /// given, else starts at `start_block` (e.g. `deployment.deploy_block`);
    /// it only reads blocks `confirmations` below the head and at most
    /// `max_range` blocks per `eth_getLogs`.
    pub fn new(
        provider: P,
        deployment: &Deployment,
        cursor: Option<Cursor>,
        start_block: u64,
        confirmations: u64,
        max_range: u64,
    ) -> Result<Self> {
        if max_range == 0 || max_range > MAX_RANGE_CAP {
            return Err(MarketError::InvalidParam {
                name: "max_range",
                expected: format!("1..={MAX_RANGE_CAP} blocks"),
                found: max_range.to_string(),
            });
        }
        let cursor = cursor.filter(|c| c.hash != B256::ZERO);
        let mut ring = VecDeque::with_capacity(RING_LEN);
        if let Some(c) = cursor {
            ring.push_back(c);
        }
        Ok(Self {
            provider,
            market: deployment.market,
            start_block,
            confirmations,
            max_range,
            state: State { cursor, ring },
        })
    }

    /// The last block processed, if any.
    pub fn cursor(&self) -> Option<Cursor> {
        self.state.cursor
    }

    /// Reads the blocks after the cursor up to `head - confirmations` (at
    /// most [`MAX_EVENTS_PER_POLL`] events) and returns their events.
    ///
    /// The watcher's state changes only when the poll returns `Ok`: after an
    /// error (e.g. the endpoint is down), or when the future is dropped
    /// (cancel-safe, e.g. in `tokio::select!`), a later poll resumes from
    /// the same cursor.
    pub async fn poll(&mut self) -> Result<Batch> {
        let mut st = self.state.clone();
        let batch = self.poll_inner(&mut st).await?;
        self.state = st;
        Ok(batch)
    }

    async fn poll_inner(&self, st: &mut State) -> Result<Batch> {
        let mut events = Vec::new();
        let mut fork_block: Option<u64> = None;
        let mut caught_up = false;
        for _ in 0..MAX_ATTEMPTS {
            let step = match self.check_cursor(st).await? {
                Some(fork) => Step::Reorged(fork),
                None => self.read(st, &mut events).await?,
            };
            match step {
                Step::Done { caught_up: c } => {
                    caught_up = c;
                    break;
                }
                Step::Moved => {
                    tracing::debug!(target: "hal9::market::watch", "chain moved during a read; reading again");
                }
                Step::Reorged(fork) => {
                    // Events above the fork point may be on the abandoned
                    // branch; those still on the chain are read again.
                    events.retain(|e: &Located<ChainEvent>| e.block <= fork);
                    fork_block = Some(fork_block.map_or(fork, |f| f.min(fork)));
                }
            }
        }
        let cursor = st.cursor.unwrap_or(Cursor {
            block: self.start_block.saturating_sub(1),
            hash: B256::ZERO,
        });
        Ok(Batch {
            events,
            cursor,
            reorged: fork_block.is_some(),
            fork_block,
            caught_up,
        })
    }

    /// Checks that the cursor's block is still on the chain; if not, rewinds
    /// to the fork point and returns it.
    async fn check_cursor(&self, st: &mut State) -> Result<Option<u64>> {
        let Some(c) = st.cursor else {
            return Ok(None);
        };
        if self.hash_at(c.block).await? == Some(c.hash) {
            return Ok(None);
        }
        Ok(Some(self.rewind(st, c).await?))
    }

    /// Walks back through the ring to the newest pair still on the chain and
    /// makes it the cursor; with none, restarts at `start_block`.
    async fn rewind(&self, st: &mut State, stale: Cursor) -> Result<u64> {
        while let Some(c) = st.ring.pop_back() {
            if c.block >= stale.block {
                continue;
            }
            if self.hash_at(c.block).await? == Some(c.hash) {
                st.ring.push_back(c);
                st.cursor = Some(c);
                tracing::warn!(target: "hal9::market::watch", stale = stale.block, fork = c.block, "reorg below the cursor; re-reading from the fork point");
                return Ok(c.block);
            }
        }
        let fork = self.start_block.saturating_sub(1);
        st.cursor = None;
        tracing::warn!(target: "hal9::market::watch", stale = stale.block, start = self.start_block, "reorg deeper than the known blocks; rescanning from the start block");
        Ok(fork)
    }

    /// Reads ranges after the cursor up to the confirmed head, appending
    /// their events and advancing the cursor range by range.
    async fn read(&self, st: &mut State, events: &mut Vec<Located<ChainEvent>>) -> Result<Step> {
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(|e| MarketError::chain("eth_blockNumber", e))?;
        let target = head.saturating_sub(self.confirmations);
        let mut range = self.max_range;
        loop {
            let from = st.cursor.map_or(self.start_block, |c| c.block + 1);
            if from > target {
                return Ok(Step::Done { caught_up: true });
            }
            if events.len() >= MAX_EVENTS_PER_POLL {
                return Ok(Step::Done { caught_up: false });
            }
            let to = target.min(from.saturating_add(range - 1));
            let logs = match self.logs(from, to).await {
                Ok(logs) if logs.len() <= MAX_LOGS_PER_QUERY || from == to => logs,
                Ok(logs) => {
                    range = (to - from).div_ceil(2).max(1);
                    tracing::debug!(target: "hal9::market::watch", from, to, logs = logs.len(), range, "too many logs; halving the range");
                    continue;
                }
                Err(e) if to > from => {
                    range = (to - from).div_ceil(2).max(1);
                    tracing::debug!(target: "hal9::market::watch", from, to, error = %e, range, "eth_getLogs failed; halving the range");
                    continue;
                }
                Err(e) => return Err(e),
            };
            // The range is consistent when its last block did not change
            // while the logs were read and its first block's parent is the
            // cursor.
            let Some(last) = self.header(to).await? else {
                return Ok(Step::Moved);
            };
            let first_parent = if from == to {
                last.parent
            } else {
                match self.header(from).await? {
                    Some(h) => h.parent,
                    None => return Ok(Step::Moved),
                }
            };
            if let Some(c) = st.cursor
                && first_parent != c.hash
            {
                tracing::warn!(target: "hal9::market::watch", block = from, "parent of the next block is not the cursor");
                return Ok(Step::Reorged(self.rewind(st, c).await?));
            }
            let mut batch = Vec::with_capacity(logs.len());
            for log in &logs {
                if log.removed {
                    return Ok(Step::Moved);
                }
                let (Some(block), Some(block_hash), Some(tx), Some(log_index)) = (
                    log.block_number,
                    log.block_hash,
                    log.transaction_hash,
                    log.log_index,
                ) else {
                    tracing::warn!(target: "hal9::market::watch", ?log, "log without position; skipped");
                    continue;
                };
                if block < from || block > to {
                    tracing::warn!(target: "hal9::market::watch", block, from, to, "log outside the requested range; skipped");
                    continue;
                }
                if block == to && block_hash != last.hash {
                    return Ok(Step::Moved);
                }
                let Some(event) = decode(log, self.market) else {
                    continue;
                };
                batch.push(Located {
                    block,
                    block_hash,
                    tx,
                    log_index,
                    event,
                });
            }
            batch.sort_by_key(|e| (e.block, e.log_index));
            if self.header(to).await?.map(|h| h.hash) != Some(last.hash) {
                return Ok(Step::Moved);
            }
            // Blocks with events are remembered too: finer fork points.
            for e in &batch {
                st.remember(Cursor {
                    block: e.block,
                    hash: e.block_hash,
                });
            }
            events.append(&mut batch);
            st.remember(Cursor {
                block: to,
                hash: last.hash,
            });
            range = self.max_range;
        }
    }

    async fn logs(&self, from: u64, to: u64) -> Result<Vec<Log>> {
        let filter = Filter::new()
            .address(self.market)
            .from_block(from)
            .to_block(to);
        self.provider
            .get_logs(&filter)
            .await
            .map_err(|e| MarketError::chain("eth_getLogs", e))
    }

    async fn header(&self, n: u64) -> Result<Option<Header>> {
        let b = self
            .provider
            .get_block_by_number(n.into())
            .await
            .map_err(|e| MarketError::chain("eth_getBlockByNumber", e))?;
        Ok(b.map(|b| Header {
            hash: b.header.hash,
            parent: b.header.parent_hash,
        }))
    }

    async fn hash_at(&self, n: u64) -> Result<Option<B256>> {
        Ok(self.header(n).await?.map(|h| h.hash))
    }
}

#[derive(Debug, Clone, Copy)]
struct Header {
    hash: B256,
    parent: B256,
}

/// How one read ended.
enum Step {
    /// Reached the confirmed head, or the per-poll event bound.
    Done { caught_up: bool },
    /// The chain changed while a range was read; the cursor is unchanged.
    Moved,
    /// The cursor was off the chain; rewound to this fork point.
    Reorged(u64),
}

/// Decodes one market log; `None` (with a warning) when it cannot be.
fn decode(log: &Log, market: Address) -> Option<ChainEvent> {
    let inner = &log.inner;
    if inner.address != market {
        tracing::warn!(target: "hal9::market::watch", address = %inner.address, "log of another contract; skipped");
        return None;
    }
    if inner.data.data.len() > MAX_LOG_DATA {
        tracing::warn!(target: "hal9::market::watch", len = inner.data.data.len(), max = MAX_LOG_DATA, "oversize log; skipped");
        return None;
    }
    let ev = match ComputationMarketEvents::decode_raw_log(inner.topics(), &inner.data.data) {
        Ok(ev) => ev,
        Err(e) => {
            tracing::warn!(target: "hal9::market::watch", tx = ?log.transaction_hash, error = %e, "undecodable log; skipped");
            return None;
        }
    };
    let event = convert(ev, log.block_number);
    if let Some(e) = &event
        && let Err(why) = check_bounds(e)
    {
        tracing::warn!(target: "hal9::market::watch", tx = ?log.transaction_hash, why, "event out of bounds; skipped");
        return None;
    }
    event
}

fn convert(ev: ComputationMarketEvents, block: Option<u64>) -> Option<ChainEvent> {
    use ComputationMarketEvents as E;
    Some(match ev {
        E::TaskPosted(e) => ChainEvent::TaskPosted(PostedTask {
            task_id: e.taskId,
            submitter: e.submitter,
            fee: e.fee,
            draw_block: e.drawBlock,
            spec: spec_from_event(e.spec),
            block,
        }),
        E::DrawRetargeted(e) => ChainEvent::DrawRetargeted {
            task: e.taskId,
            draw_block: e.drawBlock,
        },
        E::CommitteeDrawn(e) => ChainEvent::CommitteeDrawn {
            task: e.taskId,
            committee: e.committee,
            commit_end: e.commitEnd,
            reveal_end: e.revealEnd,
        },
        E::Committed(e) => ChainEvent::Committed {
            task: e.taskId,
            member: e.member,
        },
        E::VerdictSubmitted(e) => ChainEvent::VerdictSubmitted {
            task: e.taskId,
            result: e.resultHash,
            output_cid: e.outputCid,
            majority_mask: e.majorityMask,
            minority_mask: e.minorityMask,
        },
        E::RevealsAdded(e) => ChainEvent::RevealsAdded {
            task: e.taskId,
            majority_mask: e.majorityMask,
            minority_mask: e.minorityMask,
        },
        E::Challenged(e) => ChainEvent::Challenged {
            task: e.taskId,
            challenger: e.challenger,
            bond: e.bond,
            draw_block: e.drawBlock,
        },
        E::EscalationDrawn(e) => ChainEvent::EscalationDrawn {
            task: e.taskId,
            escalation: e.escalation,
            commit_end: e.commitEnd,
            reveal_end: e.revealEnd,
        },
        E::Equivocation(e) => ChainEvent::Equivocation {
            task: e.taskId,
            member: e.member,
            prover: e.prover,
            slashed: e.slashed,
        },
        E::EscalationVerdict(e) => ChainEvent::EscalationVerdict {
            task: e.taskId,
            result: e.resultHash,
            output_cid: e.outputCid,
            mask: e.mask,
            upheld: e.upheld,
        },
        E::Finalized(e) => ChainEvent::Finalized {
            task: e.taskId,
            result: e.resultHash,
            burned: e.burned,
            to_treasury: e.toTreasury,
            per_member: e.perMember,
            slashed: e.slashed,
        },
        E::ChallengeSettled(e) => ChainEvent::ChallengeSettled {
            task: e.taskId,
            challenger: e.challenger,
            challenger_won: e.challengerWon,
            payout: e.payout,
        },
        E::Refunded(e) => ChainEvent::Refunded {
            task: e.taskId,
            submitter: e.submitter,
            fee: e.fee,
        },
        E::ParamsUpdated(e) => ChainEvent::ParamsUpdated(e.params),
        E::VerdictSkipped(e) => ChainEvent::VerdictSkipped {
            task: e.taskId,
            reason: e.reason,
        },
        E::FinalizeSkipped(e) => ChainEvent::FinalizeSkipped {
            task: e.taskId,
            reason: e.reason,
        },
        // Ownership and EIP-712 domain changes are not market events.
        _ => return None,
    })
}

/// Most bytes of a skip reason (an ABI-encoded custom error).
const MAX_REASON_LEN: usize = 1024;

/// Rejects events whose variable-length fields exceed what the contract allows.
fn check_bounds(e: &ChainEvent) -> std::result::Result<(), &'static str> {
    let long_cid = |c: &Bytes| c.len() > MAX_CID_LEN;
    match e {
        ChainEvent::CommitteeDrawn { committee, .. } if committee.len() > MAX_MEMBERS => {
            Err("committee too large")
        }
        ChainEvent::TaskPosted(p) if long_cid(&p.spec.programCid) || long_cid(&p.spec.inputCid) => {
            Err("CID too long")
        }
        ChainEvent::VerdictSubmitted { output_cid, .. }
        | ChainEvent::EscalationVerdict { output_cid, .. }
            if long_cid(output_cid) =>
        {
            Err("CID too long")
        }
        ChainEvent::EscalationDrawn { escalation, .. } if escalation.len() > MAX_MEMBERS => {
            Err("escalation committee too large")
        }
        ChainEvent::VerdictSkipped { reason, .. } | ChainEvent::FinalizeSkipped { reason, .. }
            if reason.len() > MAX_REASON_LEN =>
        {
            Err("skip reason too long")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{LogData, keccak256};
    use alloy::sol_types::SolEvent;

    fn rpc_log(address: Address, data: LogData) -> Log {
        Log {
            inner: alloy::primitives::Log { address, data },
            block_hash: Some(B256::repeat_byte(1)),
            block_number: Some(5),
            block_timestamp: None,
            transaction_hash: Some(B256::repeat_byte(2)),
            transaction_index: Some(0),
            log_index: Some(0),
            removed: false,
        }
    }

    #[test]
    fn decodes_a_verdict_and_skips_garbage() {
        let market = Address::repeat_byte(9);
        let ev = ComputationMarket::VerdictSubmitted {
            taskId: B256::repeat_byte(3),
            resultHash: B256::repeat_byte(4),
            outputCid: Bytes::from_static(b"cid"),
            majorityMask: U256::from(3),
            minorityMask: U256::from(4),
        };
        let log = rpc_log(market, ev.encode_log_data());
        assert_eq!(
            decode(&log, market),
            Some(ChainEvent::VerdictSubmitted {
                task: B256::repeat_byte(3),
                result: B256::repeat_byte(4),
                output_cid: Bytes::from_static(b"cid"),
                majority_mask: U256::from(3),
                minority_mask: U256::from(4),
            })
        );
        // Another contract's log.
        assert_eq!(decode(&log, Address::ZERO), None);
        // An unknown topic.
        let unknown = LogData::new_unchecked(vec![keccak256("Nope()")], Bytes::new());
        assert_eq!(decode(&rpc_log(market, unknown), market), None);
        // A known topic with truncated data.
        let mut data = ev.encode_log_data();
        data = LogData::new_unchecked(data.topics().to_vec(), data.data.slice(..40));
        assert_eq!(decode(&rpc_log(market, data), market), None);
        // Oversize data is not even decoded.
        let big = LogData::new_unchecked(
            ev.encode_log_data().topics().to_vec(),
            Bytes::from(vec![0u8; MAX_LOG_DATA + 1]),
        );
        assert_eq!(decode(&rpc_log(market, big), market), None);
    }

    #[test]
    fn rejects_an_oversize_cid() {
        let market = Address::repeat_byte(9);
        let ev = ComputationMarket::VerdictSubmitted {
            taskId: B256::ZERO,
            resultHash: B256::ZERO,
            outputCid: Bytes::from(vec![1u8; MAX_CID_LEN + 1]),
            majorityMask: U256::ZERO,
            minorityMask: U256::ZERO,
        };
        assert_eq!(decode(&rpc_log(market, ev.encode_log_data()), market), None);
    }

    #[test]
    fn decodes_v11_events_and_rejects_oversize_committees() {
        let market = Address::repeat_byte(9);
        let t = B256::repeat_byte(3);
        let members: Vec<Address> = (1..=3u8).map(Address::with_last_byte).collect();
        let ev = ComputationMarket::CommitteeDrawn {
            taskId: t,
            committee: members.clone(),
            commitEnd: 100,
            revealEnd: 130,
        };
        assert_eq!(
            decode(&rpc_log(market, ev.encode_log_data()), market),
            Some(ChainEvent::CommitteeDrawn {
                task: t,
                committee: members.clone(),
                commit_end: 100,
                reveal_end: 130,
            })
        );
        let ev = ComputationMarket::Committed {
            taskId: t,
            member: members[0],
        };
        let got = decode(&rpc_log(market, ev.encode_log_data()), market).unwrap();
        assert_eq!(
            got,
            ChainEvent::Committed {
                task: t,
                member: members[0]
            }
        );
        assert_eq!(got.task(), Some(t));
        let ev = ComputationMarket::Equivocation {
            taskId: t,
            member: members[1],
            prover: members[2],
            slashed: U256::from(5),
        };
        assert_eq!(
            decode(&rpc_log(market, ev.encode_log_data()), market),
            Some(ChainEvent::Equivocation {
                task: t,
                member: members[1],
                prover: members[2],
                slashed: U256::from(5),
            })
        );
        // A committee or escalation larger than any the contract draws.
        let big: Vec<Address> = (0..=MAX_MEMBERS as u64)
            .map(|i| Address::left_padding_from(&i.to_be_bytes()))
            .collect();
        let ev = ComputationMarket::CommitteeDrawn {
            taskId: t,
            committee: big.clone(),
            commitEnd: 1,
            revealEnd: 2,
        };
        assert_eq!(decode(&rpc_log(market, ev.encode_log_data()), market), None);
        let ev = ComputationMarket::EscalationDrawn {
            taskId: t,
            escalation: big,
            commitEnd: 1,
            revealEnd: 2,
        };
        assert_eq!(decode(&rpc_log(market, ev.encode_log_data()), market), None);
        // An escalation of the largest size is accepted.
        let max: Vec<Address> = (0..MAX_MEMBERS as u64)
            .map(|i| Address::left_padding_from(&i.to_be_bytes()))
            .collect();
        let ev = ComputationMarket::EscalationDrawn {
            taskId: t,
            escalation: max,
            commitEnd: 1,
            revealEnd: 2,
        };
        let data = ev.encode_log_data();
        assert!(data.data.len() <= MAX_LOG_DATA);
        assert!(decode(&rpc_log(market, data), market).is_some());
    }

    #[test]
    fn cursor_round_trips_through_json() {
        let c = Cursor {
            block: 42,
            hash: B256::repeat_byte(7),
        };
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Cursor>(&s).unwrap(), c);
    }
}
