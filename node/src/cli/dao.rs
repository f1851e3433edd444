//! `hal9 dao ...`: proposals that change protocol parameters or spend from
//! the treasury, votes, queueing in the timelock and execution.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use clap::{Args, Subcommand};
use eyre::bail;
use hal9_market::governance::{Support, describe_action, parse_proposal_id};
use hal9_market::units::parse_tokens;

use super::chain::{ChainArgs, ChainOverrides, Ctx, hal9, tx_json, tx_line, when};
use crate::chain::client::{connect, connect_read_only};

/// `hal9 dao ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DaoCommand {
    /// Propose parameter changes (`--set-param`) and/or treasury spends (`--spend`).
    Propose(ProposeArgs),
    /// Vote on an active proposal.
    Vote(VoteArgs),
    /// Queue a succeeded proposal in the timelock.
    Queue(IdArgs),
    /// Execute a queued proposal once the timelock delay passed (anyone may).
    Execute(IdArgs),
    /// List proposals with their state and votes.
    List(ListArgs),
    /// Delegate the operator's voting power (to itself by default); votes count only after delegation.
    Delegate(DelegateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ProposeArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Set a parameter, NAME=VALUE (repeatable). Market: minReplicas,
    /// maxReplicas, burnBps, treasuryBps, slashBps, livenessSlashBps,
    /// challengerRewardBps, challengeBondBps (integers), challengeWindow,
    /// escalationPeriod, maxTaskDuration (seconds), minFee, minChallengeBond
    /// (HAL9). Registry: maxLock, unbondingDelay (seconds), minStake (HAL9).
    /// Parameters not named keep their current values.
    #[arg(long = "set-param", value_name = "NAME=VALUE", value_parser = name_value)]
    set_param: Vec<(String, String)>,
    /// Pay AMOUNT HAL9 from the treasury to TO (repeatable).
    #[arg(long, num_args = 2, value_names = ["TO", "AMOUNT"])]
    spend: Vec<String>,
    /// What the proposal does and why (its hash is part of the proposal id).
    #[arg(long)]
    description: String,
}

#[derive(Debug, Args)]
pub(crate) struct VoteArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Proposal id (0x hex or decimal), as `hal9 dao list` shows it.
    id: String,
    /// for, against or abstain.
    support: String,
    /// A public reason recorded with the vote.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Proposal id (0x hex or decimal).
    id: String,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DelegateArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Delegate to this address (default: the operator itself).
    to: Option<Address>,
}

fn name_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.trim().is_empty() && !v.trim().is_empty() => {
            Ok((n.trim().to_string(), v.trim().to_string()))
        }
        _ => Err(format!("expected NAME=VALUE, found {s:?}")),
    }
}

fn id_hex(id: U256) -> String {
    format!("{id:#x}")
}

impl DaoCommand {
    pub(crate) async fn run(self, o: &ChainOverrides) -> eyre::Result<()> {
        match self {
            DaoCommand::Propose(a) => propose(a, o).await,
            DaoCommand::Vote(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let id = parse_proposal_id(&a.id)?;
                let support: Support = a.support.parse()?;
                let c = connect(&ctx.home, &ctx.cfg).await?;
                let rc = c.market.cast_vote(id, support, a.reason.as_deref()).await?;
                let st = c.market.proposal_status(id).await?;
                ctx.emit(
                    serde_json::json!({"id": id_hex(id), "support": a.support.to_ascii_lowercase(), "receipt": tx_json(&rc)}),
                    || {
                        println!(
                            "voted {} on {} ({})",
                            a.support.to_ascii_lowercase(),
                            id_hex(id),
                            tx_line(&rc)
                        );
                        println!(
                            "tally: for {}, against {}, abstain {} (quorum {})",
                            hal9(st.for_votes),
                            hal9(st.against_votes),
                            hal9(st.abstain_votes),
                            hal9(st.quorum)
                        );
                    },
                )
            }
            DaoCommand::Queue(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let id = parse_proposal_id(&a.id)?;
                let c = connect(&ctx.home, &ctx.cfg).await?;
                let rc = c.market.queue(id).await?;
                let st = c.market.proposal_status(id).await?;
                let now = c.market.chain_time().await?;
                ctx.emit(
                    serde_json::json!({"id": id_hex(id), "eta": st.eta, "receipt": tx_json(&rc)}),
                    || {
                        println!(
                            "queued {} in the timelock; executable from {} ({})",
                            id_hex(id),
                            when(st.eta, now),
                            tx_line(&rc)
                        )
                    },
                )
            }
            DaoCommand::Execute(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let id = parse_proposal_id(&a.id)?;
                let c = connect(&ctx.home, &ctx.cfg).await?;
                let rc = c.market.execute(id).await?;
                ctx.emit(
                    serde_json::json!({"id": id_hex(id), "receipt": tx_json(&rc)}),
                    || println!("executed {} ({})", id_hex(id), tx_line(&rc)),
                )
            }
            DaoCommand::List(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let m = connect_read_only(&ctx.home, &ctx.cfg).await?;
                let block = m
                    .governor()
                    .provider()
                    .get_block_number()
                    .await
                    .map_err(|e| eyre::eyre!("eth_blockNumber failed: {e}"))?;
                let d = *m.deployment();
                let mut rows = Vec::new();
                for p in m.proposals().await? {
                    let st = m.proposal_status(p.id).await?;
                    rows.push((p, st));
                }
                let now = m.chain_time().await?;
                let json: Vec<_> = rows
                    .iter()
                    .map(|(p, st)| {
                        serde_json::json!({
                            "id": id_hex(p.id),
                            "proposer": p.proposer.to_string(),
                            "state": st.state_name(),
                            "for": st.for_votes.to_string(),
                            "against": st.against_votes.to_string(),
                            "abstain": st.abstain_votes.to_string(),
                            "quorum": st.quorum.to_string(),
                            "vote_start": p.vote_start,
                            "vote_end": p.vote_end,
                            "eta": st.eta,
                            "description": p.description,
                            "actions": p.actions.iter().map(|x| describe_action(&d, x)).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                ctx.emit(serde_json::Value::Array(json), || {
                    if rows.is_empty() {
                        println!("no proposals yet");
                    }
                    for (p, st) in &rows {
                        println!("{}  {}", id_hex(p.id), st.state_name());
                        println!("  {}", p.description.lines().next().unwrap_or_default());
                        println!(
                            "  for {}, against {}, abstain {}; quorum {}",
                            hal9(st.for_votes),
                            hal9(st.against_votes),
                            hal9(st.abstain_votes),
                            hal9(st.quorum)
                        );
                        match st.state_name() {
                            "Pending" => println!(
                                "  voting opens after block {} (now {block})",
                                p.vote_start
                            ),
                            "Active" => {
                                println!("  voting closes at block {} (now {block})", p.vote_end)
                            }
                            "Queued" => println!("  executable from {}", when(st.eta, now)),
                            _ => {}
                        }
                        for x in &p.actions {
                            println!("  - {}", describe_action(&d, x));
                        }
                    }
                })
            }
            DaoCommand::Delegate(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let c = connect(&ctx.home, &ctx.cfg).await?;
                let to = a.to.unwrap_or(c.address());
                let rc = c.market.delegate(to).await?;
                let power = c.market.voting_power(to).await?;
                ctx.emit(
                    serde_json::json!({"from": c.address().to_string(), "to": to.to_string(), "voting_power": power.to_string(), "receipt": tx_json(&rc)}),
                    || {
                        println!(
                            "{} delegates its votes to {to}, which now has {} of voting power ({})",
                            c.address(),
                            hal9(power),
                            tx_line(&rc)
                        )
                    },
                )
            }
        }
    }
}

async fn propose(a: ProposeArgs, o: &ChainOverrides) -> eyre::Result<()> {
    let ctx = Ctx::load(&a.chain, o)?;
    if a.set_param.is_empty() && a.spend.is_empty() {
        bail!("a proposal needs at least one --set-param NAME=VALUE or --spend TO AMOUNT");
    }
    if a.description.trim().is_empty() {
        bail!("--description must say what the proposal does");
    }
    let mut spends = Vec::new();
    for pair in a.spend.chunks(2) {
        let [to, amount] = pair else {
            bail!("--spend takes TO AMOUNT");
        };
        let to: Address = to
            .parse()
            .map_err(|_| eyre::eyre!("--spend: {to:?} is not an address"))?;
        spends.push((to, parse_tokens(amount)?));
    }
    let c = connect(&ctx.home, &ctx.cfg).await?;
    let mut actions = c.market.param_change_actions(&a.set_param).await?;
    let treasury = c.market.balance(c.market.deployment().timelock).await?;
    let total: U256 = spends
        .iter()
        .map(|(_, v)| *v)
        .fold(U256::ZERO, |x, y| x + y);
    if total > treasury {
        bail!(
            "the proposal spends {} but the treasury holds {}",
            hal9(total),
            hal9(treasury)
        );
    }
    for (to, v) in spends {
        actions.push(c.market.spend_action(to, v));
    }
    let id = c.market.propose(&actions, &a.description).await?;
    let p = c.market.proposal(id).await?;
    let d = *c.market.deployment();
    ctx.emit(
        serde_json::json!({
            "id": id_hex(id),
            "vote_start": p.vote_start,
            "vote_end": p.vote_end,
            "actions": actions.iter().map(|x| describe_action(&d, x)).collect::<Vec<_>>(),
        }),
        || {
            println!("proposal {}", id_hex(id));
            for x in &actions {
                println!("  - {}", describe_action(&d, x));
            }
            println!(
                "voting opens after block {} and closes at block {}; then `hal9 dao queue` and `hal9 dao execute`",
                p.vote_start, p.vote_end
            );
        },
    )
}
