//! The chain client: typed calls to the hal9 contracts for a node, a client
//! or a test, with revert reasons decoded and every transaction's receipt
//! checked.

use std::time::Duration;

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;

use crate::bindings::{
    ComputationMarket::{self, ComputationMarketInstance},
    HAL9Governor::HAL9GovernorInstance,
    HAL9Token::HAL9TokenInstance,
    NeuronRegistry::{self, NeuronRegistryInstance},
    RewardsDistributor::RewardsDistributorInstance,
    TimelockController::TimelockControllerInstance,
    types::{Dissent, Reveal, TaskSpec},
};
use crate::deploy::Deployment;
use crate::eip712;
use crate::error::{MarketError, Result};
use crate::metrics::Metrics;

/// Upper bound on log entries returned by one `posted_tasks` query.
pub const MAX_EVENTS_PER_QUERY: usize = 10_000;

/// Most entries one `submit_verdicts`, `finalize_many` or `commit_many` call
/// takes (`ComputationMarket.MAX_BATCH`).
pub const MAX_BATCH: usize = 64;

/// One verdict of a [`MarketClient::submit_verdicts`] batch: the arguments of
/// [`MarketClient::submit_verdict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictEntry {
    /// The task.
    pub task: B256,
    /// The result hash of the verdict.
    pub result: B256,
    /// CID (binary form) of the output.
    pub output_cid: Bytes,
    /// Openings of members' commitments: those of (result, keccak(output_cid))
    /// form the majority (at least the quorum), any other the minority.
    pub reveals: Vec<Reveal>,
}

/// A batch entry the contract did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// The task of the entry.
    pub task: B256,
    /// The custom error the single call would have reverted with, decoded
    /// (e.g. `WrongStatus(..)`), or its hex when the ABI does not know it.
    pub reason: String,
    /// The ABI-encoded error as emitted.
    pub raw: Bytes,
}

/// What a batched settlement transaction did.
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    /// The receipt of the transaction.
    pub receipt: TransactionReceipt,
    /// Tasks whose entry was applied, in entry order.
    pub applied: Vec<B256>,
    /// Entries that were skipped, with their reasons, in entry order.
    pub skipped: Vec<SkippedEntry>,
}

/// Decodes the reason of a `VerdictSkipped`/`FinalizeSkipped` event.
pub fn describe_revert_data(raw: &[u8]) -> String {
    use alloy::sol_types::SolInterface;
    match ComputationMarket::ComputationMarketErrors::abi_decode(raw) {
        Ok(e) => format!("{e:?}"),
        Err(_) => format!("undecoded revert data {}", Bytes::copy_from_slice(raw)),
    }
}

fn check_batch_len(len: usize) -> Result<()> {
    if len > MAX_BATCH {
        return Err(MarketError::InvalidParam {
            name: "batch length",
            expected: format!("at most {MAX_BATCH} entries"),
            found: len.to_string(),
        });
    }
    Ok(())
}

/// Renders a contract error: a decoded revert of any hal9 contract, in
/// words for the common ones (see [`crate::revert`]), else the RPC error.
pub fn describe_error(e: &alloy::contract::Error) -> String {
    crate::revert::decode(e).unwrap_or_else(|| e.to_string())
}

/// How long to wait for a receipt before giving up.
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Sends a transaction and waits for its receipt; a revert or a failed
/// receipt is an error naming the call.
///
/// The gas is estimated before sending, so a call that would revert fails
/// here with its decoded reason and never reaches the provider's nonce
/// filler (alloy's default cached nonce manager would otherwise hand out a
/// nonce that no transaction uses, and every later transaction would stall).
/// `margin` covers what may differ between the estimate and the including
/// block (see [`Margin`]).
pub(crate) async fn send<P: Provider, D: CallDecoder>(
    call: CallBuilder<P, D>,
    name: &'static str,
    margin: Margin,
) -> Result<TransactionReceipt> {
    let est = call.estimate_gas().await.map_err(|e| MarketError::Chain {
        call: name,
        reason: describe_error(&e),
    })?;
    let gas = match margin {
        Margin::Normal => est.saturating_mul(11) / 10 + 10_000,
        Margin::Draw => est.saturating_mul(13) / 10 + 50_000,
        Margin::Tree => est.saturating_mul(12) / 10 + TREE_WRITE_GAS,
    };
    let pending = call.gas(gas).send().await.map_err(|e| MarketError::Chain {
        call: name,
        reason: describe_error(&e),
    })?;
    let receipt = pending
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await
        .map_err(|e| MarketError::chain(name, e))?;
    if !receipt.status() {
        return Err(MarketError::Chain {
            call: name,
            reason: format!("transaction {} reverted on chain", receipt.transaction_hash),
        });
    }
    tracing::debug!(target: "hal9::market", call = name, tx = %receipt.transaction_hash, gas = receipt.gas_used, "transaction mined");
    Ok(receipt)
}

/// Gas added to the estimate of a call that may write the sortition trees:
/// whether it writes them (apply phase) or only queues the write (draw
/// phase) depends on the including block, not the estimated one. A write
/// touches at most 5 trees x 8 words (docs/protocol-v1.1.md, "Draw").
pub const TREE_WRITE_GAS: u64 = 1_000_000;

/// How much gas to add to an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Margin {
    /// 10 %: the estimate is what the call costs.
    Normal,
    /// 30 % + 50k: a committee draw, whose cost depends on the draw
    /// (re-targeted or not) in the including block.
    Draw,
    /// 20 % + [`TREE_WRITE_GAS`]: the call may write the trees (a stake
    /// change, a slash), depending on the tree phase of the including block.
    Tree,
}

/// A task as posted on chain (protocol v1.1: no committee yet; it is drawn
/// by [`MarketClient::draw`] after `draw_block`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedTask {
    /// keccak256(abi.encode(spec)).
    pub task_id: B256,
    /// Who pays.
    pub submitter: Address,
    /// Escrowed fee.
    pub fee: U256,
    /// The block whose hash seeds the committee draw; `draw` is possible
    /// from the block after it.
    pub draw_block: u64,
    /// The spec.
    pub spec: TaskSpec,
    /// Block the task was posted in.
    pub block: Option<u64>,
}

pub(crate) fn spec_from_event(s: ComputationMarket::TaskSpec) -> TaskSpec {
    TaskSpec {
        programCid: s.programCid,
        inputHash: s.inputHash,
        inputCid: s.inputCid,
        replicas: s.replicas,
        fuelLimit: s.fuelLimit,
        capabilities: s.capabilities,
        submitter: s.submitter,
        nonce: s.nonce,
        deadline: s.deadline,
    }
}

/// What one [`MarketClient::draw`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrawOutcome {
    /// A committee (or, for a challenged task, the escalation committee) was
    /// drawn; commitments are due by `commit_end`, reveals by `reveal_end`
    /// (unix seconds).
    Drawn {
        /// The members, in draw order (reveal indices refer to it).
        members: Vec<Address>,
        /// End of the commit phase.
        commit_end: u64,
        /// End of the reveal phase.
        reveal_end: u64,
        /// Whether these are escalation members (`EscalationDrawn`).
        escalation: bool,
    },
    /// The hash of the draw block was gone or its tree epoch ended: the draw
    /// moved to `draw_block` (call `draw` again after it).
    Retargeted {
        /// The new draw block.
        draw_block: u64,
    },
    /// Not enough eligible neurons, or the phases would end after the
    /// deadline: nothing drawn (the task is refunded at its deadline, an
    /// escalation fails without quorum).
    Empty,
}

/// Typed access to a hal9 deployment through one provider (and its signer).
#[derive(Debug, Clone)]
pub struct MarketClient<P> {
    deployment: Deployment,
    token: HAL9TokenInstance<P>,
    registry: NeuronRegistryInstance<P>,
    market: ComputationMarketInstance<P>,
    rewards: RewardsDistributorInstance<P>,
    pub(crate) governor: HAL9GovernorInstance<P>,
    pub(crate) timelock: TimelockControllerInstance<P>,
    metrics: Option<Metrics>,
}

impl<P: Provider + Clone> MarketClient<P> {
    /// Binds to `deployment`; fails when the provider's chain id differs from the deployment's.
    pub async fn connect(provider: P, deployment: Deployment) -> Result<Self> {
        let chain = provider
            .get_chain_id()
            .await
            .map_err(|e| MarketError::chain("eth_chainId", e))?;
        if chain != deployment.chain_id {
            return Err(MarketError::InvalidParam {
                name: "chain id",
                expected: deployment.chain_id.to_string(),
                found: chain.to_string(),
            });
        }
        Ok(Self {
            token: HAL9TokenInstance::new(deployment.token, provider.clone()),
            registry: NeuronRegistryInstance::new(deployment.registry, provider.clone()),
            market: ComputationMarketInstance::new(deployment.market, provider.clone()),
            rewards: RewardsDistributorInstance::new(deployment.rewards, provider.clone()),
            governor: HAL9GovernorInstance::new(deployment.governor, provider.clone()),
            timelock: TimelockControllerInstance::new(deployment.timelock, provider),
            deployment,
            metrics: None,
        })
    }

    /// Records every transaction in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The deployment this client talks to.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The token contract.
    pub fn token(&self) -> &HAL9TokenInstance<P> {
        &self.token
    }

    /// The registry contract.
    pub fn registry(&self) -> &NeuronRegistryInstance<P> {
        &self.registry
    }

    /// The market contract.
    pub fn market(&self) -> &ComputationMarketInstance<P> {
        &self.market
    }

    /// The rewards contract.
    pub fn rewards(&self) -> &RewardsDistributorInstance<P> {
        &self.rewards
    }

    /// The governor contract.
    pub fn governor(&self) -> &HAL9GovernorInstance<P> {
        &self.governor
    }

    /// The timelock (owner of the parameters, holder of the treasury).
    pub fn timelock(&self) -> &TimelockControllerInstance<P> {
        &self.timelock
    }

    pub(crate) async fn tx<'a, D: CallDecoder>(
        &'a self,
        call: CallBuilder<&'a P, D>,
        name: &'static str,
    ) -> Result<TransactionReceipt> {
        self.tx_with(call, name, Margin::Normal).await
    }

    async fn tx_with<'a, D: CallDecoder>(
        &'a self,
        call: CallBuilder<&'a P, D>,
        name: &'static str,
        margin: Margin,
    ) -> Result<TransactionReceipt> {
        let r = send(call, name, margin).await;
        if let Some(m) = &self.metrics {
            match &r {
                Ok(rc) => m.record(name, true, rc.gas_used, rc.block_number),
                Err(_) => m.record(name, false, 0, None),
            }
        }
        r
    }

    /// HAL9 balance of `who`.
    pub async fn balance(&self, who: Address) -> Result<U256> {
        self.token
            .balanceOf(who)
            .call()
            .await
            .map_err(|e| MarketError::chain("HAL9Token.balanceOf", describe_error(&e)))
    }

    /// HAL9 total supply.
    pub async fn total_supply(&self) -> Result<U256> {
        self.token
            .totalSupply()
            .call()
            .await
            .map_err(|e| MarketError::chain("HAL9Token.totalSupply", describe_error(&e)))
    }

    /// Registers the signer's neuron with its libp2p PeerId bytes,
    /// capability bits and a first deposit of `amount` (approved to the
    /// registry first; with earlier stake at least minStake). `peer_sig` is
    /// the 64-byte ed25519 signature of the PeerId's key over
    /// [`crate::commit::peer_binding_message`].
    pub async fn register(
        &self,
        peer_id: &[u8],
        capabilities: u64,
        amount: U256,
        peer_sig: &[u8],
    ) -> Result<TransactionReceipt> {
        if peer_id.is_empty() || peer_id.len() > crate::commit::MAX_PEER_ID_LEN {
            return Err(MarketError::InvalidParam {
                name: "peer id",
                expected: format!("1..={} bytes", crate::commit::MAX_PEER_ID_LEN),
                found: format!("{} bytes", peer_id.len()),
            });
        }
        if peer_sig.len() != crate::commit::PEER_SIG_LEN {
            return Err(MarketError::InvalidParam {
                name: "peer signature",
                expected: format!("{} bytes (ed25519)", crate::commit::PEER_SIG_LEN),
                found: format!("{} bytes", peer_sig.len()),
            });
        }
        if !amount.is_zero() {
            self.tx(
                self.token.approve(self.deployment.registry, amount),
                "HAL9Token.approve",
            )
            .await?;
        }
        self.tx_with(
            self.registry.register(
                Bytes::copy_from_slice(peer_id),
                capabilities,
                amount,
                Bytes::copy_from_slice(peer_sig),
            ),
            "NeuronRegistry.register",
            Margin::Tree,
        )
        .await
    }

    /// Approves the registry and adds `amount` to the signer's stake.
    pub async fn stake(&self, amount: U256) -> Result<TransactionReceipt> {
        self.tx(
            self.token.approve(self.deployment.registry, amount),
            "HAL9Token.approve",
        )
        .await?;
        self.tx_with(
            self.registry.stake(amount),
            "NeuronRegistry.stake",
            Margin::Tree,
        )
        .await
    }

    /// Locks the signer's stake for `seconds`.
    pub async fn lock(&self, seconds: u64) -> Result<TransactionReceipt> {
        self.tx_with(
            self.registry.lock(seconds),
            "NeuronRegistry.lock",
            Margin::Tree,
        )
        .await
    }

    /// Moves `amount` of the signer's (unlocked) stake into unbonding.
    pub async fn unbond(&self, amount: U256) -> Result<TransactionReceipt> {
        self.tx_with(
            self.registry.requestUnbond(amount),
            "NeuronRegistry.requestUnbond",
            Margin::Tree,
        )
        .await
    }

    /// Pays out `amount` of the signer's unbonded stake once the unbonding
    /// delay passed (partial withdrawals: open tasks lock only
    /// `neuron.locked`).
    pub async fn withdraw(&self, amount: U256) -> Result<TransactionReceipt> {
        self.tx(self.registry.withdraw(amount), "NeuronRegistry.withdraw")
            .await
    }

    /// Applies the queued sortition-tree writes of `operators` (apply phase
    /// only; operators without a queued write are skipped on chain).
    pub async fn apply_queued(&self, operators: &[Address]) -> Result<TransactionReceipt> {
        self.tx_with(
            self.registry.applyQueued(operators.to_vec()),
            "NeuronRegistry.applyQueued",
            Margin::Tree,
        )
        .await
    }

    /// Whether the latest block is in a tree apply phase.
    pub async fn in_apply_phase(&self) -> Result<bool> {
        self.registry
            .inApplyPhase()
            .call()
            .await
            .map_err(|e| MarketError::chain("NeuronRegistry.inApplyPhase", describe_error(&e)))
    }

    /// The first block >= `b` in a draw phase (trees frozen).
    pub async fn target_block(&self, b: u64) -> Result<u64> {
        let t = self
            .registry
            .targetBlock(U256::from(b))
            .call()
            .await
            .map_err(|e| MarketError::chain("NeuronRegistry.targetBlock", describe_error(&e)))?;
        u64::try_from(t).map_err(|_| MarketError::InvalidParam {
            name: "target block",
            expected: "a block number below 2^64".into(),
            found: t.to_string(),
        })
    }

    /// Re-reads `operator`'s effective stake into the rewards weight and (in
    /// an apply phase) the trees, e.g. after its lock ended.
    pub async fn poke(&self, operator: Address) -> Result<TransactionReceipt> {
        self.tx_with(
            self.registry.poke(operator),
            "NeuronRegistry.poke",
            Margin::Tree,
        )
        .await
    }

    /// Claims the signer's accrued rewards; returns the amount paid.
    pub async fn claim_rewards(&self) -> Result<U256> {
        let rc = self
            .tx(self.rewards.claim(), "RewardsDistributor.claim")
            .await?;
        let ev = rc
            .decoded_log::<crate::bindings::RewardsDistributor::Claimed>()
            .ok_or(MarketError::MissingEvent {
                expected: "Claimed",
                call: "RewardsDistributor.claim",
            })?;
        Ok(ev.data.amount)
    }

    /// Rewards `operator` could claim now.
    pub async fn pending_rewards(&self, operator: Address) -> Result<U256> {
        self.rewards
            .pending(operator)
            .call()
            .await
            .map_err(|e| MarketError::chain("RewardsDistributor.pending", describe_error(&e)))
    }

    /// Transfers `amount` HAL9 from the signer to `to`.
    pub async fn transfer(&self, to: Address, amount: U256) -> Result<TransactionReceipt> {
        self.tx(self.token.transfer(to, amount), "HAL9Token.transfer")
            .await
    }

    /// The registry's record of `operator` (zeroes when unknown).
    pub async fn neuron(&self, operator: Address) -> Result<NeuronRegistry::Neuron> {
        self.registry
            .neuron(operator)
            .call()
            .await
            .map_err(|e| MarketError::chain("NeuronRegistry.neuron", describe_error(&e)))
    }

    /// Lock multiplier of `operator` in basis points (10000 = 1x, 30000 = 3x).
    pub async fn multiplier_bps(&self, operator: Address) -> Result<U256> {
        self.registry
            .multiplierBps(operator)
            .call()
            .await
            .map_err(|e| MarketError::chain("NeuronRegistry.multiplierBps", describe_error(&e)))
    }

    /// The registry's staking parameters: (maxLock s, unbondingDelay s, minStake).
    pub async fn staking_params(&self) -> Result<(u64, u64, U256)> {
        let r = |e: alloy::contract::Error| {
            MarketError::chain("NeuronRegistry params", describe_error(&e))
        };
        Ok((
            self.registry.maxLock().call().await.map_err(r)?,
            self.registry.unbondingDelay().call().await.map_err(r)?,
            self.registry.minStake().call().await.map_err(r)?,
        ))
    }

    /// Timestamp of the latest block (the chain's "now").
    pub async fn chain_time(&self) -> Result<u64> {
        let b = self
            .token
            .provider()
            .get_block_by_number(Default::default())
            .await
            .map_err(|e| MarketError::chain("eth_getBlockByNumber", e))?
            .ok_or_else(|| MarketError::chain("eth_getBlockByNumber", "no latest block"))?;
        Ok(b.header.timestamp)
    }

    /// Effective stake of `operator` as the registry computes it.
    pub async fn effective_stake(&self, operator: Address) -> Result<U256> {
        self.registry
            .effectiveStake(operator)
            .call()
            .await
            .map_err(|e| MarketError::chain("NeuronRegistry.effectiveStake", describe_error(&e)))
    }

    /// Leaves in the sortition tree a draw for `capabilities` reads, and their
    /// total weight: `(count, total)` of `treeStats(treeFor(capabilities))`.
    pub async fn tree_stats(&self, capabilities: u64) -> Result<(U256, U256)> {
        let err = |e: alloy::contract::Error| {
            MarketError::chain("NeuronRegistry.treeStats", describe_error(&e))
        };
        let id = self
            .registry
            .treeFor(capabilities)
            .call()
            .await
            .map_err(err)?;
        let r = self.registry.treeStats(id).call().await.map_err(err)?;
        Ok((r.count, r.total))
    }

    /// Approves the market and posts `spec` with `fee`; returns the task and
    /// its draw block (the committee is drawn later by [`Self::draw`]).
    pub async fn post_task(&self, spec: &TaskSpec, fee: U256) -> Result<PostedTask> {
        self.tx(
            self.token.approve(self.deployment.market, fee),
            "HAL9Token.approve",
        )
        .await?;
        let call = self.market.postTask(spec.clone().into(), fee);
        let rc = self.tx(call, "ComputationMarket.postTask").await?;
        let log =
            rc.decoded_log::<ComputationMarket::TaskPosted>()
                .ok_or(MarketError::MissingEvent {
                    expected: "TaskPosted",
                    call: "ComputationMarket.postTask",
                })?;
        if let Some(m) = &self.metrics {
            m.tasks_posted.inc();
        }
        let ev = log.data;
        tracing::info!(target: "hal9::market", task = %ev.taskId, fee = %ev.fee, draw_block = ev.drawBlock, "task posted");
        Ok(PostedTask {
            task_id: ev.taskId,
            submitter: ev.submitter,
            fee: ev.fee,
            draw_block: ev.drawBlock,
            spec: spec_from_event(ev.spec),
            block: rc.block_number,
        })
    }

    /// Draws the committee of a posted task, or the escalation committee
    /// of a challenged one, from the hash of its draw block (anyone, after
    /// the draw block; the same result for every caller). The call is
    /// estimated against the latest block, so send it once the head is past
    /// the draw block (at head == draw block it fails with `TooEarly`).
    pub async fn draw(&self, task: B256) -> Result<DrawOutcome> {
        let rc = self
            .tx_with(
                self.market.draw(task),
                "ComputationMarket.draw",
                Margin::Draw,
            )
            .await?;
        let mut out = DrawOutcome::Empty;
        for log in rc.inner.logs() {
            if log.address() != self.deployment.market {
                continue;
            }
            if let Ok(ev) = log.log_decode::<ComputationMarket::CommitteeDrawn>() {
                let d = ev.inner.data;
                out = DrawOutcome::Drawn {
                    members: d.committee,
                    commit_end: d.commitEnd,
                    reveal_end: d.revealEnd,
                    escalation: false,
                };
            } else if let Ok(ev) = log.log_decode::<ComputationMarket::EscalationDrawn>() {
                let d = ev.inner.data;
                out = DrawOutcome::Drawn {
                    members: d.escalation,
                    commit_end: d.commitEnd,
                    reveal_end: d.revealEnd,
                    escalation: true,
                };
            } else if let Ok(ev) = log.log_decode::<ComputationMarket::DrawRetargeted>() {
                out = DrawOutcome::Retargeted {
                    draw_block: ev.inner.data.drawBlock,
                };
            }
        }
        match &out {
            DrawOutcome::Drawn {
                members,
                commit_end,
                escalation,
                ..
            } => {
                if let Some(m) = &self.metrics {
                    m.committees_drawn.inc();
                }
                tracing::info!(target: "hal9::market", task = %task, members = members.len(), commit_end, escalation, "committee drawn");
            }
            DrawOutcome::Retargeted { draw_block } => {
                if let Some(m) = &self.metrics {
                    m.draws_retargeted.inc();
                }
                tracing::info!(target: "hal9::market", task = %task, draw_block, "draw re-targeted");
            }
            DrawOutcome::Empty => {
                tracing::warn!(target: "hal9::market", task = %task, "draw found no committee");
            }
        }
        Ok(out)
    }

    /// Stores the signer's commitments, one `(task, commitment)` per entry
    /// (at most [`MAX_BATCH`]), before each task's commitEnd.
    pub async fn commit_many(&self, entries: &[(B256, B256)]) -> Result<TransactionReceipt> {
        check_batch_len(entries.len())?;
        if entries.is_empty() {
            return Err(MarketError::InvalidParam {
                name: "commitments",
                expected: "at least one entry".into(),
                found: "none".into(),
            });
        }
        let (ids, commitments): (Vec<B256>, Vec<B256>) = entries.iter().copied().unzip();
        let rc = self
            .tx(
                self.market.commitMany(ids, commitments),
                "ComputationMarket.commitMany",
            )
            .await?;
        if let Some(m) = &self.metrics {
            m.commitments_sent.inc_by(entries.len() as u64);
        }
        tracing::info!(target: "hal9::market", n = entries.len(), tx = %rc.transaction_hash, "commitments stored");
        Ok(rc)
    }

    /// The commitment `member` stored for `task` (zero = none).
    pub async fn committed(&self, task: B256, member: Address) -> Result<B256> {
        self.market
            .committed(task, member)
            .call()
            .await
            .map_err(|e| MarketError::chain("ComputationMarket.committed", describe_error(&e)))
    }

    /// The committee of `task`, in draw order (empty before the draw).
    pub async fn committee_of(&self, task: B256) -> Result<Vec<Address>> {
        self.market
            .committeeOf(task)
            .call()
            .await
            .map_err(|e| MarketError::chain("ComputationMarket.committeeOf", describe_error(&e)))
    }

    /// The escalation committee of `task`, in draw order (empty before its draw).
    pub async fn escalation_of(&self, task: B256) -> Result<Vec<Address>> {
        self.market
            .escalationOf(task)
            .call()
            .await
            .map_err(|e| MarketError::chain("ComputationMarket.escalationOf", describe_error(&e)))
    }

    /// Submits the verdict of `task` (after commitEnd, until revealEnd):
    /// `reveals` opening a quorum of stored commitments to
    /// (result, keccak(output_cid)); other openings are the minority.
    pub async fn submit_verdict(
        &self,
        task: B256,
        result: B256,
        output_cid: &[u8],
        reveals: Vec<Reveal>,
    ) -> Result<TransactionReceipt> {
        let call = self.market.submitVerdict(
            task,
            result,
            Bytes::copy_from_slice(output_cid),
            reveals.into_iter().map(Into::into).collect(),
        );
        let rc = self.tx(call, "ComputationMarket.submitVerdict").await?;
        if let Some(m) = &self.metrics {
            m.verdicts_submitted.inc();
        }
        tracing::info!(target: "hal9::market", task = %task, result = %result, "verdict submitted");
        Ok(rc)
    }

    /// Submits several verdicts in one transaction
    /// (`ComputationMarket.submitVerdicts`, at most [`MAX_BATCH`]). Each
    /// entry gets the checks of [`Self::submit_verdict`]; an entry that fails
    /// them (e.g. a task another relayer settled first) is skipped on chain
    /// and returned in [`BatchOutcome::skipped`], the rest are applied.
    pub async fn submit_verdicts(&self, entries: Vec<VerdictEntry>) -> Result<BatchOutcome> {
        check_batch_len(entries.len())?;
        let input: Vec<ComputationMarket::VerdictInput> = entries
            .into_iter()
            .map(|e| ComputationMarket::VerdictInput {
                taskId: e.task,
                resultHash: e.result,
                outputCid: e.output_cid,
                reveals: e.reveals.into_iter().map(Into::into).collect(),
            })
            .collect();
        let n = input.len();
        let rc = self
            .tx(
                self.market.submitVerdicts(input),
                "ComputationMarket.submitVerdicts",
            )
            .await?;
        let mut applied = Vec::with_capacity(n);
        let mut skipped = Vec::new();
        for log in rc.inner.logs() {
            if log.address() != self.deployment.market {
                continue;
            }
            if let Ok(ev) = log.log_decode::<ComputationMarket::VerdictSubmitted>() {
                applied.push(ev.inner.data.taskId);
            } else if let Ok(ev) = log.log_decode::<ComputationMarket::VerdictSkipped>() {
                let d = ev.inner.data;
                skipped.push(SkippedEntry {
                    task: d.taskId,
                    reason: describe_revert_data(&d.reason),
                    raw: d.reason,
                });
            }
        }
        if let Some(m) = &self.metrics {
            m.verdicts_submitted.inc_by(applied.len() as u64);
        }
        for s in &skipped {
            tracing::warn!(target: "hal9::market", task = %s.task, reason = %s.reason, "batched verdict skipped");
        }
        tracing::info!(target: "hal9::market", applied = applied.len(), skipped = skipped.len(), tx = %rc.transaction_hash, "verdicts submitted");
        Ok(BatchOutcome {
            receipt: rc,
            applied,
            skipped,
        })
    }

    /// Adds reveals to a verdict during its challenge window: openings of
    /// the verdict join the majority (paid), others the minority (slashed).
    pub async fn add_reveals(
        &self,
        task: B256,
        reveals: Vec<Reveal>,
    ) -> Result<TransactionReceipt> {
        let call = self
            .market
            .addReveals(task, reveals.into_iter().map(Into::into).collect());
        self.tx(call, "ComputationMarket.addReveals").await
    }

    /// Proves that one member of `task` signed two different results (two
    /// signed `Result`s as [`Dissent`]s): it is slashed, half to the signer
    /// of this transaction.
    pub async fn prove_equivocation(
        &self,
        task: B256,
        a: Dissent,
        b: Dissent,
    ) -> Result<TransactionReceipt> {
        let call = self.market.proveEquivocation(task, a.into(), b.into());
        let rc = self
            .tx_with(call, "ComputationMarket.proveEquivocation", Margin::Tree)
            .await?;
        tracing::info!(target: "hal9::market", task = %task, tx = %rc.transaction_hash, "equivocation proven");
        Ok(rc)
    }

    /// Challenges a verdict (approves and posts the bond); the escalation
    /// committee is drawn by [`Self::draw`] after the new draw block.
    pub async fn challenge(&self, task: B256, bond: U256) -> Result<TransactionReceipt> {
        self.tx(
            self.token.approve(self.deployment.market, bond),
            "HAL9Token.approve",
        )
        .await?;
        self.tx(self.market.challenge(task), "ComputationMarket.challenge")
            .await
    }

    /// Submits the escalation verdict of a challenged task: reveals opening
    /// a quorum of the escalation committee's commitments, after its commitEnd.
    pub async fn submit_escalation_verdict(
        &self,
        task: B256,
        result: B256,
        output_cid: &[u8],
        reveals: Vec<Reveal>,
    ) -> Result<TransactionReceipt> {
        let call = self.market.submitEscalationVerdict(
            task,
            result,
            Bytes::copy_from_slice(output_cid),
            reveals.into_iter().map(Into::into).collect(),
        );
        self.tx(call, "ComputationMarket.submitEscalationVerdict")
            .await
    }

    /// Finalizes (pays, resolves a challenge, or refunds) a task.
    pub async fn finalize(&self, task: B256) -> Result<TransactionReceipt> {
        let rc = self
            .tx_with(
                self.market.finalize(task),
                "ComputationMarket.finalize",
                Margin::Tree,
            )
            .await?;
        if let Some(m) = &self.metrics {
            m.tasks_finalized.inc();
        }
        tracing::info!(target: "hal9::market", task = %task, "task finalized");
        Ok(rc)
    }

    /// Finalizes several tasks in one transaction
    /// (`ComputationMarket.finalizeMany`, at most [`MAX_BATCH`]). A task that
    /// is not finalizable (window still open, already finalized, unknown) is
    /// skipped on chain and returned in [`BatchOutcome::skipped`].
    pub async fn finalize_many(&self, tasks: &[B256]) -> Result<BatchOutcome> {
        check_batch_len(tasks.len())?;
        let rc = self
            .tx_with(
                self.market.finalizeMany(tasks.to_vec()),
                "ComputationMarket.finalizeMany",
                Margin::Tree,
            )
            .await?;
        let mut applied = Vec::with_capacity(tasks.len());
        let mut skipped = Vec::new();
        for log in rc.inner.logs() {
            if log.address() != self.deployment.market {
                continue;
            }
            if let Ok(ev) = log.log_decode::<ComputationMarket::Finalized>() {
                applied.push(ev.inner.data.taskId);
            } else if let Ok(ev) = log.log_decode::<ComputationMarket::Refunded>() {
                applied.push(ev.inner.data.taskId);
            } else if let Ok(ev) = log.log_decode::<ComputationMarket::FinalizeSkipped>() {
                let d = ev.inner.data;
                skipped.push(SkippedEntry {
                    task: d.taskId,
                    reason: describe_revert_data(&d.reason),
                    raw: d.reason,
                });
            }
        }
        if let Some(m) = &self.metrics {
            m.tasks_finalized.inc_by(applied.len() as u64);
        }
        tracing::info!(target: "hal9::market", applied = applied.len(), skipped = skipped.len(), tx = %rc.transaction_hash, "tasks finalized");
        Ok(BatchOutcome {
            receipt: rc,
            applied,
            skipped,
        })
    }

    /// The full on-chain record of a task (`getTask`, decoded by
    /// [`crate::bindings::decode_task`]).
    pub async fn task(&self, task: B256) -> Result<crate::bindings::Task> {
        let tx = alloy::rpc::types::TransactionRequest::default()
            .to(self.deployment.market)
            .input(crate::bindings::get_task_calldata(task).into());
        let out = self
            .market
            .provider()
            .call(tx)
            .await
            .map_err(|e| MarketError::chain("ComputationMarket.getTask", e))?;
        crate::bindings::decode_task(&out)
            .map_err(|reason| MarketError::chain("ComputationMarket.getTask", reason))
    }

    /// Current market parameters.
    pub async fn params(&self) -> Result<ComputationMarket::Params> {
        self.market
            .getParams()
            .call()
            .await
            .map_err(|e| MarketError::chain("ComputationMarket.getParams", describe_error(&e)))
    }

    /// Tasks posted in blocks `[from, to]` (both inclusive), at most
    /// `MAX_EVENTS_PER_QUERY`; query narrower ranges for more.
    pub async fn posted_tasks(&self, from: u64, to: u64) -> Result<Vec<PostedTask>> {
        let head = self
            .market
            .provider()
            .get_block_number()
            .await
            .map_err(|e| MarketError::chain("eth_blockNumber", e))?;
        let to = to.min(head);
        if from > to {
            return Ok(Vec::new());
        }
        let events = self
            .market
            .TaskPosted_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(|e| MarketError::chain("eth_getLogs TaskPosted", describe_error(&e)))?;
        if events.len() > MAX_EVENTS_PER_QUERY {
            return Err(MarketError::InvalidParam {
                name: "block range",
                expected: format!("at most {MAX_EVENTS_PER_QUERY} TaskPosted events"),
                found: events.len().to_string(),
            });
        }
        Ok(events
            .into_iter()
            .map(|(ev, log)| PostedTask {
                task_id: ev.taskId,
                submitter: ev.submitter,
                fee: ev.fee,
                draw_block: ev.drawBlock,
                spec: spec_from_event(ev.spec),
                block: log.block_number,
            })
            .collect())
    }

    /// Signs a `Result` (EIP-712) for this deployment's market and chain.
    pub fn sign_result(
        &self,
        signer: &PrivateKeySigner,
        task: B256,
        result: B256,
        output_cid: &[u8],
    ) -> Result<Bytes> {
        eip712::sign_result(
            signer,
            self.deployment.chain_id,
            self.deployment.market,
            task,
            result,
            output_cid,
        )
    }
}
