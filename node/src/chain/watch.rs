//! The node's adapter over [`hal9_market::Watcher`]: market events become
//! [`ChainInput`]s on the watcher's own channel, with committees resolved to
//! PeerIds through the registry.
//!
//! The market watcher does the reading (confirmations, per-log block-hash
//! checks, a cap on logs per query, rewinding after a reorganisation). This
//! adapter adds what the node needs:
//!
//! - **Nothing is skipped on a failed lookup.** A committee lookup that fails
//!   (the endpoint is down) is retried with backoff until it succeeds; the
//!   cursor is only handed on ([`ChainInput::Cursor`]) after every event
//!   before it was emitted, so a restart re-reads what was not applied.
//! - **An unbound PeerId is an absent member**, not an undecodable event:
//!   the registry accepts any 1-64 bytes and any 64-byte signature; a member
//!   whose PeerId binding does not verify ([`super::binding`]) is `None` in
//!   the committee and the others still run the task.
//! - **The chain's clock**: after every caught-up poll the newest block's
//!   timestamp goes to the engine ([`ChainInput::ChainTime`]); commit
//!   phases end by it.
//! - **Registry events** (`Registered`, `Deregistered`, stake and capability
//!   changes, slashing) over the same block range drop the operator's cached
//!   PeerId; a reorganisation drops the whole cache.
//! - **Reorganisations** are reported as [`ChainInput::Reorged`] before the
//!   events re-read from the fork point, so the engine can drop what only the
//!   abandoned branch had.

use std::{sync::Arc, time::Duration};

use alloy::{
    primitives::{Address, B256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::{SolEventInterface, SolValue},
};
use hal9_consensus::TaskId;
use hal9_market::{
    ChainEvent, Watcher,
    bindings::NeuronRegistry::{self, NeuronRegistryEvents},
};
use hal9_p2p::PeerId;
use prometheus_client::{metrics::counter::Counter, registry::Registry};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub use hal9_market::Cursor;

use super::{ChainInput, ChainLink, link::LookupError};

const TARGET: &str = "hal9::chain";
/// Most blocks read in one `eth_getLogs`.
pub const MAX_RANGE: u64 = 2_000;
/// First wait after a failed lookup; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between two lookups of the same committee.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The watcher's moving parts, under `hal9_chain_watch_*`.
#[derive(Debug, Clone, Default)]
pub struct WatchMetrics {
    events: Counter,
    lookup_retries: Counter,
    absent_members: Counter,
    reorgs: Counter,
    registry_events: Counter,
}

impl WatchMetrics {
    /// Registers under `hal9_chain_watch_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("hal9_chain_watch");
        r.register(
            "events",
            "Market events handed to the engine",
            m.events.clone(),
        );
        r.register(
            "lookup_retries",
            "Committee lookups in the registry that failed and were retried",
            m.lookup_retries.clone(),
        );
        r.register(
            "absent_members",
            "Committee members whose registered PeerId does not parse",
            m.absent_members.clone(),
        );
        r.register(
            "reorgs",
            "Reorganisations below the watcher's cursor",
            m.reorgs.clone(),
        );
        r.register(
            "registry_events",
            "Registry events that dropped a cached PeerId",
            m.registry_events.clone(),
        );
        m
    }
}

/// Watches the chain until `out` is closed.
pub async fn run(
    link: Arc<ChainLink>,
    start: Option<Cursor>,
    out: mpsc::Sender<ChainInput>,
    metrics: WatchMetrics,
) {
    let poll = Duration::from_millis(link.cfg.poll_interval_ms.max(50));
    let mut w = match Watcher::new(
        link.provider().clone(),
        &link.deployment,
        start,
        link.deployment.deploy_block,
        link.cfg.confirmations,
        MAX_RANGE,
    ) {
        Ok(w) => w,
        Err(e) => {
            warn!(target: TARGET, error = %e, "cannot start the chain watcher");
            return;
        }
    };
    let mut failing = false;
    loop {
        let before = w.cursor();
        match w.poll().await {
            Ok(batch) => {
                if failing {
                    info!(target: TARGET, "chain reachable again");
                    failing = false;
                }
                let caught_up = batch.caught_up;
                if !apply(&link, before, batch, &out, &metrics).await {
                    break;
                }
                if !caught_up {
                    continue;
                }
                // The contract's clock, for the phases (commit ends, reveals
                // may go out); read after the events it may close.
                if let Ok(t) = link.chain_time().await
                    && out.send(ChainInput::ChainTime(t)).await.is_err()
                {
                    break;
                }
            }
            Err(e) => {
                if !failing {
                    warn!(target: TARGET, error = %e, "cannot read the chain; retrying");
                    failing = true;
                }
            }
        }
        if out.is_closed() {
            break;
        }
        tokio::time::sleep(poll).await;
    }
}

/// Emits one batch: the reorg notice, the registry's cache drops, every
/// event (with lookups retried until they succeed), then the cursor.
/// False when the engine is gone.
async fn apply(
    link: &ChainLink,
    before: Option<Cursor>,
    batch: hal9_market::Batch,
    out: &mpsc::Sender<ChainInput>,
    metrics: &WatchMetrics,
) -> bool {
    if batch.reorged {
        let fork = batch.fork_block.unwrap_or(0);
        metrics.reorgs.inc();
        warn!(target: TARGET, fork, "chain reorganised; events after the fork block are read again");
        link.forget_peers();
        if out.send(ChainInput::Reorged { fork }).await.is_err() {
            return false;
        }
    }
    // Registry changes in the same blocks come first: a committee drawn
    // after a re-registration must resolve to the new PeerId.
    let from = if batch.reorged {
        batch
            .fork_block
            .map_or(link.deployment.deploy_block, |f| f + 1)
    } else {
        before.map_or(link.deployment.deploy_block, |c| c.block + 1)
    };
    if from <= batch.cursor.block
        && !registry_changes(link, from, batch.cursor.block, metrics, out).await
    {
        return false;
    }
    for ev in batch.events {
        let block = ev.block;
        let Some(input) = resolve(link, ev.event, block, out, metrics).await else {
            return !out.is_closed();
        };
        metrics.events.inc();
        if out.send(input).await.is_err() {
            return false;
        }
    }
    let bytes = match serde_json::to_vec(&batch.cursor) {
        Ok(b) => b,
        Err(e) => {
            warn!(target: TARGET, error = %e, "cannot encode the chain cursor");
            return true;
        }
    };
    debug!(target: TARGET, block = batch.cursor.block, "chain read");
    out.send(ChainInput::Cursor(bytes)).await.is_ok()
}

/// Drops the cached PeerIds of operators the registry's logs in
/// `from..=to` touch. Retried with backoff until the logs are read. False
/// when the engine is gone.
async fn registry_changes(
    link: &ChainLink,
    from: u64,
    to: u64,
    metrics: &WatchMetrics,
    out: &mpsc::Sender<ChainInput>,
) -> bool {
    let mut backoff = FIRST_BACKOFF;
    let mut start = from;
    while start <= to {
        let end = to.min(start.saturating_add(MAX_RANGE - 1));
        let filter = Filter::new()
            .address(link.deployment.registry)
            .from_block(start)
            .to_block(end);
        match link.provider().get_logs(&filter).await {
            Ok(logs) => {
                for log in logs {
                    if let Some(op) = touched_operator(&log.inner) {
                        metrics.registry_events.inc();
                        debug!(target: TARGET, operator = %op, "registry changed an operator; PeerId cache dropped");
                        link.forget_peer(&op);
                        // The gossip validators' view; a failure here is
                        // caught up by the periodic full reload.
                        if let Err(e) = super::members::refresh(link, op).await {
                            warn!(target: TARGET, operator = %op, error = %e, "cannot refresh a registry member; the next full reload will");
                        }
                    }
                }
                start = end + 1;
                backoff = FIRST_BACKOFF;
            }
            Err(e) => {
                if out.is_closed() {
                    return false;
                }
                warn!(target: TARGET, from = start, to = end, error = %e, "cannot read the registry's events; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    true
}

/// The operator a registry event is about, for the events that can change
/// its PeerId or its eligibility.
fn touched_operator(log: &alloy::primitives::Log) -> Option<Address> {
    use NeuronRegistryEvents as E;
    let ev =
        NeuronRegistry::NeuronRegistryEvents::decode_raw_log(log.topics(), &log.data.data).ok()?;
    Some(match ev {
        E::Registered(e) => e.operator,
        E::Deregistered(e) => e.operator,
        E::Staked(e) => e.operator,
        E::Slashed(e) => e.operator,
        E::UnbondRequested(e) => e.operator,
        E::Withdrawn(e) => e.operator,
        E::CapabilitiesUpdated(e) => e.operator,
        _ => return None,
    })
}

/// Looks a committee up, retrying a failed registry read with backoff until
/// it succeeds. `None` when the engine is gone.
async fn members(
    link: &ChainLink,
    task: B256,
    addrs: &[Address],
    out: &mpsc::Sender<ChainInput>,
    metrics: &WatchMetrics,
) -> Option<Vec<(Address, Option<PeerId>)>> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match link.peers_of(addrs).await {
            Ok(peers) => {
                let absent = peers.iter().filter(|p| p.is_none()).count();
                if absent > 0 {
                    metrics.absent_members.inc_by(absent as u64);
                    warn!(target: TARGET, task = %task, absent, size = addrs.len(), "committee members with an unparsable PeerId are absent");
                }
                return Some(addrs.iter().copied().zip(peers).collect());
            }
            Err(LookupError { operator, reason }) => {
                if out.is_closed() {
                    return None;
                }
                metrics.lookup_retries.inc();
                warn!(target: TARGET, task = %task, %operator, reason, retry_in_ms = backoff.as_millis() as u64, "committee lookup failed; retrying (the cursor waits)");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Turns a market event into the engine's input (`Some` also for the events
/// the engine does not use, mapped to nothing: those return `None` only
/// when the engine is gone).
async fn resolve(
    link: &ChainLink,
    event: ChainEvent,
    block: u64,
    out: &mpsc::Sender<ChainInput>,
    metrics: &WatchMetrics,
) -> Option<ChainInput> {
    Some(match event {
        ChainEvent::TaskPosted(p) => ChainInput::Posted {
            task: TaskId(p.task_id.0),
            spec: p.spec.abi_encode(),
            fee: p.fee,
            draw_block: p.draw_block,
            block,
        },
        ChainEvent::DrawRetargeted { task, draw_block } => ChainInput::Retargeted {
            task: TaskId(task.0),
            draw_block,
        },
        ChainEvent::CommitteeDrawn {
            task,
            committee,
            commit_end,
            reveal_end,
        } => ChainInput::Drawn {
            task: TaskId(task.0),
            members: members(link, task, &committee, out, metrics).await?,
            commit_end,
            reveal_end,
            escalation: false,
        },
        ChainEvent::EscalationDrawn {
            task,
            escalation,
            commit_end,
            reveal_end,
        } => ChainInput::Drawn {
            task: TaskId(task.0),
            members: members(link, task, &escalation, out, metrics).await?,
            commit_end,
            reveal_end,
            escalation: true,
        },
        ChainEvent::Committed { task, member } => ChainInput::Committed {
            task: TaskId(task.0),
            member,
        },
        ChainEvent::VerdictSubmitted {
            task,
            result,
            output_cid,
            majority_mask,
            minority_mask,
        } => ChainInput::Verdict {
            task: TaskId(task.0),
            result,
            cid: output_cid.to_vec(),
            majority: majority_mask,
            minority: minority_mask,
        },
        ChainEvent::RevealsAdded {
            task,
            majority_mask,
            minority_mask,
        } => ChainInput::RevealsAdded {
            task: TaskId(task.0),
            majority: majority_mask,
            minority: minority_mask,
        },
        ChainEvent::Challenged {
            task,
            challenger,
            draw_block,
            ..
        } => ChainInput::Challenged {
            task: TaskId(task.0),
            challenger,
            draw_block,
        },
        ChainEvent::EscalationVerdict {
            task,
            result,
            output_cid,
            upheld,
            ..
        } => ChainInput::EscalationVerdict {
            task: TaskId(task.0),
            result,
            upheld,
            cid: output_cid.to_vec(),
        },
        ChainEvent::Equivocation { task, member, .. } => ChainInput::Equivocation {
            task: TaskId(task.0),
            member,
        },
        ChainEvent::Finalized {
            task,
            burned,
            to_treasury,
            per_member,
            slashed,
            ..
        } => ChainInput::Finalized {
            task: TaskId(task.0),
            burned,
            to_treasury,
            per_member,
            slashed,
        },
        ChainEvent::Refunded { task, .. } => ChainInput::Refunded {
            task: TaskId(task.0),
        },
        ChainEvent::ParamsUpdated(p) => ChainInput::ParamsUpdated {
            burn_bps: p.burnBps,
            treasury_bps: p.treasuryBps,
        },
        _ => ChainInput::Noted,
    })
}

/// The stand-in PeerId of a committee member whose registered PeerId does
/// not parse: an identity multihash of a tag and the operator address, which
/// no key can sign for, so the member counts in the committee's size but
/// never votes.
pub fn absent_peer(operator: &Address) -> PeerId {
    let mut bytes = Vec::with_capacity(2 + 32);
    bytes.push(0x00); // identity multihash
    bytes.push(32);
    bytes.extend_from_slice(b"hal9/absent:");
    bytes.extend_from_slice(operator.as_slice());
    // 12 + 20 = 32 bytes: always a valid identity multihash.
    PeerId::from_bytes(&bytes).unwrap_or_else(|_| PeerId::random())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolEvent;

    #[test]
    fn absent_peers_are_distinct_and_stable() {
        let a = Address::repeat_byte(1);
        let b = Address::repeat_byte(2);
        assert_eq!(absent_peer(&a), absent_peer(&a));
        assert_ne!(absent_peer(&a), absent_peer(&b));
        // Round-trips through its string form (the task record keeps strings).
        let s = absent_peer(&a).to_string();
        assert_eq!(s.parse::<PeerId>().unwrap(), absent_peer(&a));
    }

    #[test]
    fn registry_events_name_the_operator() {
        let op = Address::repeat_byte(7);
        let reg = NeuronRegistry::Registered {
            operator: op,
            peerId: vec![1, 2, 3].into(),
            capabilities: 0,
            peerSig: vec![0; 64].into(),
        };
        let log = alloy::primitives::Log {
            address: Address::ZERO,
            data: reg.encode_log_data(),
        };
        assert_eq!(touched_operator(&log), Some(op));
        let garbage = alloy::primitives::Log {
            address: Address::ZERO,
            data: alloy::primitives::LogData::new_unchecked(vec![B256::ZERO], vec![1u8].into()),
        };
        assert_eq!(touched_operator(&garbage), None);
    }
}
