//! Follows the market's events and feeds them to the engine.
//!
//! Logs are read up to `head - confirmations` in bounded ranges. The cursor
//! (last processed block and its hash) is persisted by the engine after the
//! events before it are applied, so a restart resumes where it stopped and
//! re-applies at most one range (every handler is idempotent). If the block
//! under the cursor changed (a reorganisation deeper than the confirmations),
//! the watcher steps back to the last block it remembers unchanged and reads
//! again.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::{SolEvent, SolValue},
};
use eyre::{WrapErr, eyre};
use hal9_consensus::TaskId;
use hal9_market::bindings::ComputationMarket;
use hal9_p2p::PeerId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{ChainInput, ChainLink};
use crate::engine::Inbound;

const TARGET: &str = "hal9::chain";
/// Most blocks read in one `eth_getLogs`.
const MAX_RANGE: u64 = 2_000;
/// Recent (number, hash) pairs kept to find the fork point of a reorganisation.
const RING: usize = 128;

/// Last block fully processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Block number.
    pub block: u64,
    /// Its hash.
    pub hash: B256,
}

/// Watches the chain until the engine stops.
pub async fn run(link: Arc<ChainLink>, start: Option<Cursor>, inbound: mpsc::Sender<Inbound>) {
    let first = link.deployment.deploy_block;
    let poll = Duration::from_millis(link.cfg.poll_interval_ms.max(50));
    let mut w = Watcher {
        link,
        cursor: start,
        first,
        ring: VecDeque::new(),
    };
    let mut failing = false;
    loop {
        match w.poll(&inbound).await {
            Ok(more) => {
                if failing {
                    info!(target: TARGET, "chain reachable again");
                    failing = false;
                }
                if more {
                    continue;
                }
            }
            Err(e) => {
                if inbound.is_closed() {
                    break;
                }
                if !failing {
                    warn!(target: TARGET, error = %format!("{e:#}"), "cannot read the chain; retrying");
                    failing = true;
                }
            }
        }
        if inbound.is_closed() {
            break;
        }
        tokio::time::sleep(poll).await;
    }
}

struct Watcher {
    link: Arc<ChainLink>,
    cursor: Option<Cursor>,
    /// First block to read without a cursor (the deployment block).
    first: u64,
    ring: VecDeque<Cursor>,
}

impl Watcher {
    async fn block_hash(&self, n: u64) -> eyre::Result<Option<B256>> {
        Ok(self
            .link
            .provider()
            .get_block_by_number(BlockNumberOrTag::Number(n))
            .await?
            .map(|b| b.header.hash))
    }

    /// One step; true when more blocks are ready right away.
    async fn poll(&mut self, inbound: &mpsc::Sender<Inbound>) -> eyre::Result<bool> {
        let provider = self.link.provider().clone();
        let head = provider
            .get_block_number()
            .await
            .wrap_err("eth_blockNumber")?;
        let safe = head.saturating_sub(self.link.cfg.confirmations);
        // Reorganisation check: the block under the cursor must be unchanged.
        if let Some(c) = self.cursor
            && self.block_hash(c.block).await? != Some(c.hash)
        {
            let mut back = None;
            while let Some(prev) = self.ring.pop_back() {
                if prev.block < c.block && self.block_hash(prev.block).await? == Some(prev.hash) {
                    back = Some(prev);
                    break;
                }
            }
            warn!(target: TARGET, from = c.block, to = ?back.map(|b| b.block), "chain reorganised under the cursor; reading again");
            self.cursor = back;
        }
        let from = self.cursor.map_or(self.first, |c| c.block + 1);
        if from > safe {
            return Ok(false);
        }
        let to = safe.min(from + MAX_RANGE - 1);
        let market = self.link.deployment.market;
        let filter = Filter::new().address(market).from_block(from).to_block(to);
        let logs = provider.get_logs(&filter).await.wrap_err("eth_getLogs")?;
        for log in logs {
            if log.removed {
                continue;
            }
            match self.decode(&log.inner).await {
                Ok(Some(input)) => {
                    if inbound.send(Inbound::Chain(input)).await.is_err() {
                        return Ok(false);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(target: TARGET, error = %format!("{e:#}"), tx = ?log.transaction_hash, "undecodable market event skipped")
                }
            }
        }
        let hash = self
            .block_hash(to)
            .await?
            .ok_or_else(|| eyre!("block {to} vanished"))?;
        let cursor = Cursor { block: to, hash };
        self.cursor = Some(cursor);
        self.ring.push_back(cursor);
        while self.ring.len() > RING {
            self.ring.pop_front();
        }
        let bytes = serde_json::to_vec(&cursor).unwrap_or_default();
        if inbound
            .send(Inbound::Chain(ChainInput::Cursor(bytes)))
            .await
            .is_err()
        {
            return Ok(false);
        }
        debug!(target: TARGET, from, to, "chain read");
        Ok(to < safe)
    }

    async fn members(&self, addrs: &[Address]) -> eyre::Result<Vec<(Address, PeerId)>> {
        let peers = self.link.peers_of(addrs).await?;
        Ok(addrs.iter().copied().zip(peers).collect())
    }

    async fn decode(&self, log: &alloy::primitives::Log) -> eyre::Result<Option<ChainInput>> {
        use ComputationMarket as M;
        let Some(topic) = log.topics().first() else {
            return Ok(None);
        };
        let input = match *topic {
            t if t == M::TaskPosted::SIGNATURE_HASH => {
                let e = M::TaskPosted::decode_log_data(&log.data)?;
                let spec: hal9_market::TaskSpec = hal9_market::TaskSpec {
                    programCid: e.spec.programCid,
                    inputHash: e.spec.inputHash,
                    inputCid: e.spec.inputCid,
                    replicas: e.spec.replicas,
                    fuelLimit: e.spec.fuelLimit,
                    capabilities: e.spec.capabilities,
                    submitter: e.spec.submitter,
                    nonce: e.spec.nonce,
                    deadline: e.spec.deadline,
                };
                ChainInput::Posted {
                    task: TaskId(e.taskId.0),
                    spec: spec.abi_encode(),
                    fee: e.fee,
                    committee: self.members(&e.committee).await?,
                }
            }
            t if t == M::VerdictSubmitted::SIGNATURE_HASH => {
                let e = M::VerdictSubmitted::decode_log_data(&log.data)?;
                ChainInput::Verdict {
                    task: TaskId(e.taskId.0),
                    result: e.resultHash,
                    cid: e.outputCid.to_vec(),
                    majority: e.majorityMask,
                }
            }
            t if t == M::Challenged::SIGNATURE_HASH => {
                let e = M::Challenged::decode_log_data(&log.data)?;
                ChainInput::Challenged {
                    task: TaskId(e.taskId.0),
                    escalation: self.members(&e.escalation).await?,
                }
            }
            t if t == M::EscalationVerdict::SIGNATURE_HASH => {
                let e = M::EscalationVerdict::decode_log_data(&log.data)?;
                ChainInput::EscalationVerdict {
                    task: TaskId(e.taskId.0),
                    result: e.resultHash,
                    upheld: e.upheld,
                    cid: e.outputCid.to_vec(),
                }
            }
            t if t == M::Finalized::SIGNATURE_HASH => {
                let e = M::Finalized::decode_log_data(&log.data)?;
                ChainInput::Finalized {
                    task: TaskId(e.taskId.0),
                    burned: e.burned,
                    to_treasury: e.toTreasury,
                    per_member: e.perMember,
                    slashed: e.slashed,
                }
            }
            t if t == M::Refunded::SIGNATURE_HASH => {
                let e = M::Refunded::decode_log_data(&log.data)?;
                ChainInput::Refunded {
                    task: TaskId(e.taskId.0),
                }
            }
            t if t == M::ParamsUpdated::SIGNATURE_HASH => {
                let e = M::ParamsUpdated::decode_log_data(&log.data)?;
                ChainInput::ParamsUpdated {
                    burn_bps: e.params.burnBps,
                    treasury_bps: e.params.treasuryBps,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(input))
    }
}
