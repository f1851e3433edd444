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
    types::{Dissent, TaskSpec},
};
use crate::deploy::Deployment;
use crate::eip712;
use crate::error::{MarketError, Result};
use crate::metrics::Metrics;

/// Upper bound on log entries returned by one `posted_tasks` query.
pub const MAX_EVENTS_PER_QUERY: usize = 10_000;

/// Most entries one `submit_verdicts` or `finalize_many` call takes
/// (`ComputationMarket.MAX_BATCH`).
pub const MAX_BATCH: usize = 64;

/// One verdict of a [`MarketClient::submit_verdicts`] batch: the arguments of
/// [`MarketClient::submit_verdict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictEntry {
    /// The task.
    pub task: B256,
    /// The result hash the certificate proves.
    pub result: B256,
    /// CID (binary form) of the output.
    pub output_cid: Bytes,
    /// q committee signatures over (task, result, output CID).
    pub signatures: Vec<Bytes>,
    /// Signed attestations of members whose result differs.
    pub dissents: Vec<Dissent>,
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
/// `draw` adds the larger margin a committee draw needs: its gas depends on
/// `prevrandao`, which differs between the estimate and the including block.
pub(crate) async fn send<P: Provider, D: CallDecoder>(
    call: CallBuilder<P, D>,
    name: &'static str,
    draw: bool,
) -> Result<TransactionReceipt> {
    let est = call.estimate_gas().await.map_err(|e| MarketError::Chain {
        call: name,
        reason: describe_error(&e),
    })?;
    let gas = if draw {
        est.saturating_mul(13) / 10 + 50_000
    } else {
        est.saturating_mul(11) / 10 + 10_000
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

/// A task as posted on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedTask {
    /// keccak256(abi.encode(spec)).
    pub task_id: B256,
    /// Who pays.
    pub submitter: Address,
    /// Escrowed fee.
    pub fee: U256,
    /// The committee drawn, in draw order.
    pub committee: Vec<Address>,
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
        self.tx_draw(call, name, false).await
    }

    async fn tx_draw<'a, D: CallDecoder>(
        &'a self,
        call: CallBuilder<&'a P, D>,
        name: &'static str,
        draw: bool,
    ) -> Result<TransactionReceipt> {
        let r = send(call, name, draw).await;
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

    /// Registers the signer's neuron with its libp2p PeerId bytes and capability bits.
    pub async fn register(&self, peer_id: &[u8], capabilities: u64) -> Result<TransactionReceipt> {
        self.tx(
            self.registry
                .register(Bytes::copy_from_slice(peer_id), capabilities),
            "NeuronRegistry.register",
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
        self.tx(self.registry.stake(amount), "NeuronRegistry.stake")
            .await
    }

    /// Locks the signer's stake for `seconds`.
    pub async fn lock(&self, seconds: u64) -> Result<TransactionReceipt> {
        self.tx(self.registry.lock(seconds), "NeuronRegistry.lock")
            .await
    }

    /// Moves `amount` of the signer's (unlocked) stake into unbonding.
    pub async fn unbond(&self, amount: U256) -> Result<TransactionReceipt> {
        self.tx(
            self.registry.requestUnbond(amount),
            "NeuronRegistry.requestUnbond",
        )
        .await
    }

    /// Pays out the signer's unbonded stake once the unbonding delay passed.
    pub async fn withdraw(&self) -> Result<TransactionReceipt> {
        self.tx(self.registry.withdraw(), "NeuronRegistry.withdraw")
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

    /// Committee candidates with the capability bits, in registry order, with their weights.
    pub async fn candidates(&self, capabilities: u64) -> Result<(Vec<Address>, Vec<U256>)> {
        let r = self
            .registry
            .candidates(capabilities)
            .call()
            .await
            .map_err(|e| MarketError::chain("NeuronRegistry.candidates", describe_error(&e)))?;
        Ok((r.ops, r.weights))
    }

    /// Approves the market and posts `spec` with `fee`; returns the task and its committee.
    pub async fn post_task(&self, spec: &TaskSpec, fee: U256) -> Result<PostedTask> {
        self.tx(
            self.token.approve(self.deployment.market, fee),
            "HAL9Token.approve",
        )
        .await?;
        let call = self.market.postTask(spec.clone().into(), fee);
        let rc = self
            .tx_draw(call, "ComputationMarket.postTask", true)
            .await?;
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
        tracing::info!(target: "hal9::market", task = %ev.taskId, fee = %ev.fee, committee = ?ev.committee, "task posted");
        Ok(PostedTask {
            task_id: ev.taskId,
            submitter: ev.submitter,
            fee: ev.fee,
            committee: ev.committee,
            spec: spec_from_event(ev.spec),
            block: rc.block_number,
        })
    }

    /// Submits a verdict certificate: q committee signatures over
    /// (task, result, output CID) plus optional dissents.
    pub async fn submit_verdict(
        &self,
        task: B256,
        result: B256,
        output_cid: &[u8],
        signatures: Vec<Bytes>,
        dissents: Vec<Dissent>,
    ) -> Result<TransactionReceipt> {
        let call = self.market.submitVerdict(
            task,
            result,
            Bytes::copy_from_slice(output_cid),
            signatures,
            dissents.into_iter().map(Into::into).collect(),
        );
        let rc = self.tx(call, "ComputationMarket.submitVerdict").await?;
        if let Some(m) = &self.metrics {
            m.verdicts_submitted.inc();
        }
        tracing::info!(target: "hal9::market", task = %task, result = %result, "verdict submitted");
        Ok(rc)
    }

    /// Submits several verdict certificates in one transaction
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
                signatures: e.signatures,
                dissents: e.dissents.into_iter().map(Into::into).collect(),
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

    /// Adds late agreeing committee attestations to a verdict during its
    /// challenge window (they are then paid, not liveness-slashed).
    pub async fn join_verdict(
        &self,
        task: B256,
        output_cid: &[u8],
        signatures: Vec<Bytes>,
    ) -> Result<TransactionReceipt> {
        let call = self
            .market
            .joinVerdict(task, Bytes::copy_from_slice(output_cid), signatures);
        self.tx(call, "ComputationMarket.joinVerdict").await
    }

    /// Challenges a verdict (approves and posts the bond).
    pub async fn challenge(&self, task: B256, bond: U256) -> Result<TransactionReceipt> {
        self.tx(
            self.token.approve(self.deployment.market, bond),
            "HAL9Token.approve",
        )
        .await?;
        self.tx_draw(
            self.market.challenge(task),
            "ComputationMarket.challenge",
            true,
        )
        .await
    }

    /// Submits the escalation committee's certificate for a challenged task.
    pub async fn submit_escalation_verdict(
        &self,
        task: B256,
        result: B256,
        output_cid: &[u8],
        signatures: Vec<Bytes>,
    ) -> Result<TransactionReceipt> {
        let call = self.market.submitEscalationVerdict(
            task,
            result,
            Bytes::copy_from_slice(output_cid),
            signatures,
        );
        self.tx(call, "ComputationMarket.submitEscalationVerdict")
            .await
    }

    /// Finalizes (pays, resolves a challenge, or refunds) a task.
    pub async fn finalize(&self, task: B256) -> Result<TransactionReceipt> {
        let rc = self
            .tx(self.market.finalize(task), "ComputationMarket.finalize")
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
            .tx(
                self.market.finalizeMany(tasks.to_vec()),
                "ComputationMarket.finalizeMany",
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

    /// The full on-chain record of a task.
    pub async fn task(&self, task: B256) -> Result<ComputationMarket::Task> {
        self.market
            .getTask(task)
            .call()
            .await
            .map_err(|e| MarketError::chain("ComputationMarket.getTask", describe_error(&e)))
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
                committee: ev.committee,
                spec: spec_from_event(ev.spec),
                block: log.block_number,
            })
            .collect())
    }

    /// Signs an attestation for this deployment's market and chain.
    pub fn sign_attestation(
        &self,
        signer: &PrivateKeySigner,
        task: B256,
        result: B256,
        output_cid: &[u8],
    ) -> Result<Bytes> {
        eip712::sign_attestation(
            signer,
            self.deployment.chain_id,
            self.deployment.market,
            task,
            result,
            output_cid,
        )
    }
}
