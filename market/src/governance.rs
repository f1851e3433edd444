//! The DAO from a client's side: building proposals (parameter changes on
//! the market and the registry, treasury spends from the timelock),
//! delegating, voting, queueing, executing, and listing proposals from
//! their `ProposalCreated` events.

use std::str::FromStr;

use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::SolCall;

use crate::bindings::{ComputationMarket, HAL9Governor, HAL9Token, NeuronRegistry};
use crate::client::{MAX_EVENTS_PER_QUERY, MarketClient, describe_error};
use crate::error::{MarketError, Result};
use crate::revert::PROPOSAL_STATES;
use crate::units::{format_tokens, parse_tokens};

/// Blocks per `eth_getLogs` request when scanning for proposals.
const LOG_CHUNK: u64 = 50_000;

/// A vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Against (0).
    Against,
    /// For (1).
    For,
    /// Abstain (2).
    Abstain,
}

impl Support {
    /// The governor's number for this vote.
    pub fn as_u8(self) -> u8 {
        match self {
            Support::Against => 0,
            Support::For => 1,
            Support::Abstain => 2,
        }
    }
}

impl FromStr for Support {
    type Err = MarketError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "for" | "yes" => Ok(Self::For),
            "against" | "no" => Ok(Self::Against),
            "abstain" => Ok(Self::Abstain),
            _ => Err(MarketError::InvalidParam {
                name: "vote",
                expected: "for, against or abstain".into(),
                found: s.into(),
            }),
        }
    }
}

/// One call the timelock makes when a proposal executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Contract called.
    pub target: Address,
    /// Native value sent (always 0 for hal9's own actions).
    pub value: U256,
    /// ABI-encoded call.
    pub calldata: Bytes,
}

/// A proposal as created on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal id (a hash of the actions and the description).
    pub id: U256,
    /// Who proposed it.
    pub proposer: Address,
    /// What it does.
    pub actions: Vec<Action>,
    /// Unix time (seconds, the governor's ERC-6372 timestamp clock) the vote
    /// starts after (the snapshot).
    pub vote_start: u64,
    /// Unix time of the end of the vote (seconds).
    pub vote_end: u64,
    /// The description (its hash is part of the id).
    pub description: String,
}

/// Where a proposal stands and its tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalStatus {
    /// The governor's state number (index into [`PROPOSAL_STATES`]).
    pub state: u8,
    /// Votes for.
    pub for_votes: U256,
    /// Votes against.
    pub against_votes: U256,
    /// Abstentions (count towards the quorum).
    pub abstain_votes: U256,
    /// Votes needed for the quorum at the snapshot.
    pub quorum: U256,
    /// Unix time from which a queued proposal can execute (0 unless queued).
    pub eta: u64,
}

impl ProposalStatus {
    /// The state's name ("Active", "Queued", ...).
    pub fn state_name(&self) -> &'static str {
        PROPOSAL_STATES
            .get(self.state as usize)
            .copied()
            .unwrap_or("Unknown")
    }
}

/// Parses a proposal id given as `0x` hex or decimal.
pub fn parse_proposal_id(s: &str) -> Result<U256> {
    let t = s.trim();
    let r = match t.strip_prefix("0x") {
        Some(h) => U256::from_str_radix(h, 16),
        None => U256::from_str_radix(t, 10),
    };
    r.map_err(|_| MarketError::InvalidParam {
        name: "proposal id",
        expected: "a 0x-hex or decimal number".into(),
        found: s.into(),
    })
}

/// Names of the market parameters a proposal can set (`setParams` on the market).
pub const MARKET_PARAMS: [&str; 19] = [
    "minReplicas",
    "maxReplicas",
    "burnBps",
    "treasuryBps",
    "slashBps",
    "livenessSlashBps",
    "challengerRewardBps",
    "challengeBondBps",
    "abandonBps",
    "servedBps",
    "maxLivenessPerDay",
    "drawDelay",
    "commitPeriod",
    "revealPeriod",
    "challengeWindow",
    "escalationPeriod",
    "maxTaskDuration",
    "minFee",
    "minChallengeBond",
];

/// Names of the registry parameters a proposal can set (`setParams` on the registry).
pub const REGISTRY_PARAMS: [&str; 3] = ["maxLock", "unbondingDelay", "minStake"];

/// `burn_bps`, `burnbps` and `burnBps` all name `burnBps`.
fn canonical(name: &str) -> Option<&'static str> {
    let key: String = name
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    MARKET_PARAMS
        .iter()
        .chain(REGISTRY_PARAMS.iter())
        .find(|n| n.to_ascii_lowercase() == key)
        .copied()
}

fn unknown_param(name: &str) -> MarketError {
    MarketError::InvalidParam {
        name: "parameter",
        expected: format!(
            "one of {} (market) or {} (registry)",
            MARKET_PARAMS.join(", "),
            REGISTRY_PARAMS.join(", ")
        ),
        found: name.into(),
    }
}

fn int<T: FromStr>(name: &'static str, v: &str, what: &str) -> Result<T> {
    v.trim()
        .replace('_', "")
        .parse()
        .map_err(|_| MarketError::InvalidParam {
            name,
            expected: what.into(),
            found: v.into(),
        })
}

/// Applies `name = value` to the market parameters. Basis points and
/// counts are integers, durations are seconds, `minFee` and
/// `minChallengeBond` are HAL9 amounts ("0.001").
pub fn set_market_param(p: &mut ComputationMarket::Params, name: &str, value: &str) -> Result<()> {
    let n = canonical(name).ok_or_else(|| unknown_param(name))?;
    const U16: &str = "an integer from 0 to 65535";
    const U64: &str = "a whole number of seconds";
    match n {
        "minReplicas" => p.minReplicas = int("minReplicas", value, U16)?,
        "maxReplicas" => p.maxReplicas = int("maxReplicas", value, U16)?,
        "burnBps" => p.burnBps = int("burnBps", value, U16)?,
        "treasuryBps" => p.treasuryBps = int("treasuryBps", value, U16)?,
        "slashBps" => p.slashBps = int("slashBps", value, U16)?,
        "livenessSlashBps" => p.livenessSlashBps = int("livenessSlashBps", value, U16)?,
        "challengerRewardBps" => p.challengerRewardBps = int("challengerRewardBps", value, U16)?,
        "challengeBondBps" => p.challengeBondBps = int("challengeBondBps", value, U16)?,
        "abandonBps" => p.abandonBps = int("abandonBps", value, U16)?,
        "servedBps" => p.servedBps = int("servedBps", value, U16)?,
        "maxLivenessPerDay" => p.maxLivenessPerDay = int("maxLivenessPerDay", value, U16)?,
        "drawDelay" => p.drawDelay = int("drawDelay", value, "a number of blocks from 0 to 65535")?,
        "commitPeriod" => p.commitPeriod = int("commitPeriod", value, U64)?,
        "revealPeriod" => p.revealPeriod = int("revealPeriod", value, U64)?,
        "challengeWindow" => p.challengeWindow = int("challengeWindow", value, U64)?,
        "escalationPeriod" => p.escalationPeriod = int("escalationPeriod", value, U64)?,
        "maxTaskDuration" => p.maxTaskDuration = int("maxTaskDuration", value, U64)?,
        "minFee" => p.minFee = parse_tokens(value)?,
        "minChallengeBond" => p.minChallengeBond = parse_tokens(value)?,
        _ => return Err(unknown_param(name)),
    }
    Ok(())
}

/// The registry's staking parameters, as `setParams` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StakingParams {
    /// Longest lock (3x multiplier), seconds.
    pub max_lock: u64,
    /// Delay between an unbond request and the withdrawal, seconds.
    pub unbonding_delay: u64,
    /// Smallest stake eligible for committees.
    pub min_stake: U256,
}

/// Applies `name = value` to the staking parameters (seconds; `minStake` in HAL9).
pub fn set_registry_param(p: &mut StakingParams, name: &str, value: &str) -> Result<()> {
    match canonical(name).ok_or_else(|| unknown_param(name))? {
        "maxLock" => p.max_lock = int("maxLock", value, "a whole number of seconds")?,
        "unbondingDelay" => {
            p.unbonding_delay = int("unbondingDelay", value, "a whole number of seconds")?
        }
        "minStake" => p.min_stake = parse_tokens(value)?,
        _ => return Err(unknown_param(name)),
    }
    Ok(())
}

/// Describes an action for people ("ComputationMarket.setParams(burnBps=50, ...)").
pub fn describe_action(d: &crate::deploy::Deployment, a: &Action) -> String {
    if a.target == d.market
        && let Ok(call) = ComputationMarket::setParamsCall::abi_decode(&a.calldata)
    {
        let p = call.p;
        return format!(
            "ComputationMarket.setParams(minReplicas={}, maxReplicas={}, burnBps={}, treasuryBps={}, \
             slashBps={}, livenessSlashBps={}, challengerRewardBps={}, challengeBondBps={}, \
             abandonBps={}, servedBps={}, maxLivenessPerDay={}, drawDelay={}, commitPeriod={}, \
             revealPeriod={}, challengeWindow={}, escalationPeriod={}, maxTaskDuration={}, minFee={}, \
             minChallengeBond={})",
            p.minReplicas,
            p.maxReplicas,
            p.burnBps,
            p.treasuryBps,
            p.slashBps,
            p.livenessSlashBps,
            p.challengerRewardBps,
            p.challengeBondBps,
            p.abandonBps,
            p.servedBps,
            p.maxLivenessPerDay,
            p.drawDelay,
            p.commitPeriod,
            p.revealPeriod,
            p.challengeWindow,
            p.escalationPeriod,
            p.maxTaskDuration,
            format_tokens(p.minFee),
            format_tokens(p.minChallengeBond)
        );
    }
    if a.target == d.registry
        && let Ok(call) = NeuronRegistry::setParamsCall::abi_decode(&a.calldata)
    {
        return format!(
            "NeuronRegistry.setParams(maxLock={}, unbondingDelay={}, minStake={})",
            call.maxLock_,
            call.unbondingDelay_,
            format_tokens(call.minStake_)
        );
    }
    if a.target == d.token
        && let Ok(call) = HAL9Token::transferCall::abi_decode(&a.calldata)
    {
        return format!(
            "treasury spend: transfer {} HAL9 to {}",
            format_tokens(call.value),
            call.to
        );
    }
    format!(
        "call {} with {} bytes of calldata",
        a.target,
        a.calldata.len()
    )
}

impl<P: Provider + Clone> MarketClient<P> {
    /// The actions that set `changes` (`(name, value)` pairs) on top of the
    /// current parameters: one `setParams` per contract touched.
    pub async fn param_change_actions(&self, changes: &[(String, String)]) -> Result<Vec<Action>> {
        let mut market = None;
        let mut registry = None;
        for (name, value) in changes {
            let n = canonical(name).ok_or_else(|| unknown_param(name))?;
            if MARKET_PARAMS.contains(&n) {
                if market.is_none() {
                    market = Some(self.params().await?);
                }
                if let Some(p) = market.as_mut() {
                    set_market_param(p, n, value)?;
                }
            } else {
                if registry.is_none() {
                    let (max_lock, unbonding_delay, min_stake) = self.staking_params().await?;
                    registry = Some(StakingParams {
                        max_lock,
                        unbonding_delay,
                        min_stake,
                    });
                }
                if let Some(p) = registry.as_mut() {
                    set_registry_param(p, n, value)?;
                }
            }
        }
        let d = self.deployment();
        let mut actions = Vec::new();
        if let Some(p) = market {
            actions.push(Action {
                target: d.market,
                value: U256::ZERO,
                calldata: ComputationMarket::setParamsCall { p }.abi_encode().into(),
            });
        }
        if let Some(p) = registry {
            actions.push(Action {
                target: d.registry,
                value: U256::ZERO,
                calldata: NeuronRegistry::setParamsCall {
                    maxLock_: p.max_lock,
                    unbondingDelay_: p.unbonding_delay,
                    minStake_: p.min_stake,
                }
                .abi_encode()
                .into(),
            });
        }
        Ok(actions)
    }

    /// The action that pays `amount` HAL9 from the treasury (the timelock) to `to`.
    pub fn spend_action(&self, to: Address, amount: U256) -> Action {
        Action {
            target: self.deployment().token,
            value: U256::ZERO,
            calldata: HAL9Token::transferCall { to, value: amount }
                .abi_encode()
                .into(),
        }
    }

    /// Delegates the signer's voting power to `to` (itself to vote directly).
    pub async fn delegate(&self, to: Address) -> Result<TransactionReceipt> {
        self.tx(self.token().delegate(to), "HAL9Token.delegate")
            .await
    }

    /// Current voting power of `who` (delegated to it).
    pub async fn voting_power(&self, who: Address) -> Result<U256> {
        self.token()
            .getVotes(who)
            .call()
            .await
            .map_err(|e| MarketError::chain("HAL9Token.getVotes", describe_error(&e)))
    }

    /// Where `who` delegates its votes (zero when it never delegated).
    pub async fn delegate_of(&self, who: Address) -> Result<Address> {
        self.token()
            .delegates(who)
            .call()
            .await
            .map_err(|e| MarketError::chain("HAL9Token.delegates", describe_error(&e)))
    }

    /// Submits a proposal; returns its id.
    pub async fn propose(&self, actions: &[Action], description: &str) -> Result<U256> {
        let (targets, values, calldatas) = split(actions);
        let rc = self
            .tx(
                self.governor
                    .propose(targets, values, calldatas, description.to_owned()),
                "HAL9Governor.propose",
            )
            .await?;
        let ev =
            rc.decoded_log::<HAL9Governor::ProposalCreated>()
                .ok_or(MarketError::MissingEvent {
                    expected: "ProposalCreated",
                    call: "HAL9Governor.propose",
                })?;
        tracing::info!(target: "hal9::market", id = %ev.data.proposalId, "proposal created");
        Ok(ev.data.proposalId)
    }

    /// Votes on proposal `id`, with an optional public reason.
    pub async fn cast_vote(
        &self,
        id: U256,
        support: Support,
        reason: Option<&str>,
    ) -> Result<TransactionReceipt> {
        match reason {
            Some(r) => {
                self.tx(
                    self.governor
                        .castVoteWithReason(id, support.as_u8(), r.to_owned()),
                    "HAL9Governor.castVoteWithReason",
                )
                .await
            }
            None => {
                self.tx(
                    self.governor.castVote(id, support.as_u8()),
                    "HAL9Governor.castVote",
                )
                .await
            }
        }
    }

    /// Queues a succeeded proposal in the timelock.
    pub async fn queue(&self, id: U256) -> Result<TransactionReceipt> {
        let p = self.proposal(id).await?;
        let (t, v, c) = split(&p.actions);
        let h = keccak256(p.description.as_bytes());
        self.tx(self.governor.queue(t, v, c, h), "HAL9Governor.queue")
            .await
    }

    /// Executes a queued proposal whose timelock delay passed.
    pub async fn execute(&self, id: U256) -> Result<TransactionReceipt> {
        let p = self.proposal(id).await?;
        let (t, v, c) = split(&p.actions);
        let h = keccak256(p.description.as_bytes());
        self.tx(self.governor.execute(t, v, c, h), "HAL9Governor.execute")
            .await
    }

    /// Every proposal created since the deployment, oldest first.
    pub async fn proposals(&self) -> Result<Vec<Proposal>> {
        let head = self
            .governor
            .provider()
            .get_block_number()
            .await
            .map_err(|e| MarketError::chain("eth_blockNumber", e))?;
        let mut out = Vec::new();
        let mut from = self.deployment().deploy_block;
        while from <= head {
            let to = from.saturating_add(LOG_CHUNK - 1).min(head);
            let events = self
                .governor
                .ProposalCreated_filter()
                .from_block(from)
                .to_block(to)
                .query()
                .await
                .map_err(|e| {
                    MarketError::chain("eth_getLogs ProposalCreated", describe_error(&e))
                })?;
            for (ev, _) in events {
                out.push(Proposal {
                    id: ev.proposalId,
                    proposer: ev.proposer,
                    actions: ev
                        .targets
                        .iter()
                        .zip(&ev.values)
                        .zip(&ev.calldatas)
                        .map(|((t, v), c)| Action {
                            target: *t,
                            value: *v,
                            calldata: c.clone(),
                        })
                        .collect(),
                    vote_start: u64::try_from(ev.voteStart).unwrap_or(u64::MAX),
                    vote_end: u64::try_from(ev.voteEnd).unwrap_or(u64::MAX),
                    description: ev.description,
                });
                if out.len() > MAX_EVENTS_PER_QUERY {
                    return Err(MarketError::InvalidParam {
                        name: "proposals",
                        expected: format!("at most {MAX_EVENTS_PER_QUERY}"),
                        found: "more".into(),
                    });
                }
            }
            from = to + 1;
        }
        Ok(out)
    }

    /// The proposal `id`, from its creation event.
    pub async fn proposal(&self, id: U256) -> Result<Proposal> {
        self.proposals()
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| {
                MarketError::NotFound(format!("no proposal {id:#x} since the deployment"))
            })
    }

    /// State, tally, quorum and eta of proposal `id`.
    pub async fn proposal_status(&self, id: U256) -> Result<ProposalStatus> {
        let g = &self.governor;
        let err = |what: &'static str| {
            move |e: alloy::contract::Error| MarketError::chain(what, describe_error(&e))
        };
        let state = g
            .state(id)
            .call()
            .await
            .map_err(err("HAL9Governor.state"))?;
        let votes = g
            .proposalVotes(id)
            .call()
            .await
            .map_err(err("HAL9Governor.proposalVotes"))?;
        let snapshot = g
            .proposalSnapshot(id)
            .call()
            .await
            .map_err(err("HAL9Governor.proposalSnapshot"))?;
        let clock = g.clock().call().await.map_err(err("HAL9Governor.clock"))?;
        // The quorum is defined at the snapshot (a timestamp: ERC-6372
        // timestamp clock); before it, use the latest past second.
        let at = if snapshot < U256::from(clock.to::<u64>()) {
            snapshot
        } else {
            U256::from(clock.to::<u64>().saturating_sub(1))
        };
        let quorum = g
            .quorum(at)
            .call()
            .await
            .map_err(err("HAL9Governor.quorum"))?;
        let eta = g
            .proposalEta(id)
            .call()
            .await
            .map_err(err("HAL9Governor.proposalEta"))?;
        Ok(ProposalStatus {
            state,
            against_votes: votes.againstVotes,
            for_votes: votes.forVotes,
            abstain_votes: votes.abstainVotes,
            quorum,
            eta: u64::try_from(eta).unwrap_or(u64::MAX),
        })
    }
}

fn split(actions: &[Action]) -> (Vec<Address>, Vec<U256>, Vec<Bytes>) {
    (
        actions.iter().map(|a| a.target).collect(),
        actions.iter().map(|a| a.value).collect(),
        actions.iter().map(|a| a.calldata.clone()).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_names_and_values() {
        let mut p = crate::deploy::DeployConfig::devnet(&[]).market;
        set_market_param(&mut p, "burn_bps", "50").unwrap();
        set_market_param(&mut p, "treasuryBps", "300").unwrap();
        set_market_param(&mut p, "min-fee", "0.5").unwrap();
        assert_eq!((p.burnBps, p.treasuryBps), (50, 300));
        assert_eq!(p.minFee, parse_tokens("0.5").unwrap());
        assert!(
            set_market_param(&mut p, "burnBps", "70000").is_err(),
            "u16 overflow"
        );
        assert!(set_market_param(&mut p, "burnBps", "-1").is_err());
        let e = set_market_param(&mut p, "nope", "1").unwrap_err();
        assert!(e.to_string().contains("burnBps"), "lists the names: {e}");
        let mut s = StakingParams {
            max_lock: 1,
            unbonding_delay: 2,
            min_stake: U256::ZERO,
        };
        set_registry_param(&mut s, "unbonding_delay", "86400").unwrap();
        set_registry_param(&mut s, "minStake", "100").unwrap();
        assert_eq!(s.unbonding_delay, 86_400);
        assert_eq!(s.min_stake, parse_tokens("100").unwrap());
    }

    #[test]
    fn votes_and_ids_parse() {
        assert_eq!("FOR".parse::<Support>().unwrap(), Support::For);
        assert_eq!("against".parse::<Support>().unwrap().as_u8(), 0);
        assert_eq!("abstain".parse::<Support>().unwrap().as_u8(), 2);
        assert!("maybe".parse::<Support>().is_err());
        assert_eq!(parse_proposal_id("0x10").unwrap(), U256::from(16));
        assert_eq!(parse_proposal_id("16").unwrap(), U256::from(16));
        assert!(parse_proposal_id("0xzz").is_err());
    }
}
