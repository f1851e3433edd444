//! `hal9 stake ...`: deposit, lock, unbond and withdraw the operator's stake.

use alloy::primitives::{Address, U256};
use clap::{Args, Subcommand};
use eyre::bail;

use super::chain::{
    ChainArgs, ChainOverrides, Ctx, days_to_secs, hal9, multiplier, positive_amount, tx_json,
    tx_line, when, who,
};
use crate::chain::client::{ChainProvider, connect, connect_read_only};
use hal9_market::MarketClient;

/// `hal9 stake ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum StakeCommand {
    /// Approve and add AMOUNT to the stake (a deposit adds to the position);
    /// `--lock DAYS` then locks it for a higher multiplier (a lock can only be extended).
    Deposit(DepositArgs),
    /// Stake, effective stake and multiplier, lock end, unbonding (default: the operator's).
    Status(StatusArgs),
    /// Start unbonding AMOUNT of an unlocked stake (it stays slashable until withdrawn).
    Unbond(UnbondArgs),
    /// Withdraw the unbonded stake once the unbonding delay passed.
    Withdraw(WithdrawArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DepositArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// HAL9 amount, decimal ("1000", "12.5").
    #[arg(value_parser = positive_amount)]
    amount: U256,
    /// Lock the whole stake for this many days from now (up to the registry's maximum lock).
    #[arg(long, value_name = "DAYS")]
    lock: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Operator address (default: this home's operator key).
    address: Option<Address>,
}

#[derive(Debug, Args)]
pub(crate) struct UnbondArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// HAL9 amount, decimal.
    #[arg(value_parser = positive_amount)]
    amount: U256,
}

#[derive(Debug, Args)]
pub(crate) struct WithdrawArgs {
    #[command(flatten)]
    chain: ChainArgs,
}

/// Everything `stake status` shows.
async fn position(
    m: &MarketClient<ChainProvider>,
    addr: Address,
) -> eyre::Result<(serde_json::Value, Vec<String>)> {
    let n = m.neuron(addr).await?;
    let bps = m.multiplier_bps(addr).await?;
    let eff = m.effective_stake(addr).await?;
    let pending = m.pending_rewards(addr).await?;
    let balance = m.balance(addr).await?;
    let (max_lock, unbonding_delay, _) = m.staking_params().await?;
    let now = m.chain_time().await?;
    let json = serde_json::json!({
        "operator": addr.to_string(),
        "registered": n.registered,
        "stake": n.stake.to_string(),
        "multiplier_bps": bps.to_string(),
        "effective_stake": eff.to_string(),
        "lock_end": n.lockEnd,
        "lock_duration": n.lockDuration,
        "unbonding": n.unbonding.to_string(),
        "unbonding_end": n.unbondingEnd,
        "open_tasks": n.activeTasks,
        "pending_rewards": pending.to_string(),
        "balance": balance.to_string(),
        "chain_time": now,
        "max_lock": max_lock,
        "unbonding_delay": unbonding_delay,
    });
    let mut lines = vec![
        format!(
            "operator:        {addr}{}",
            if n.registered {
                ""
            } else {
                " (not registered)"
            }
        ),
        format!("stake:           {}", hal9(n.stake)),
        format!("multiplier:      {} ({} bps)", multiplier(bps), bps),
        format!("effective stake: {}", hal9(eff)),
    ];
    lines.push(if n.lockEnd > now {
        format!(
            "lock:            {} days, ends {}",
            n.lockDuration / 86_400,
            when(n.lockEnd, now)
        )
    } else if n.lockEnd > 0 {
        format!("lock:            ended {}", when(n.lockEnd, now))
    } else {
        "lock:            none".into()
    });
    lines.push(if n.unbonding.is_zero() {
        "unbonding:       none".into()
    } else if n.unbondingEnd > now {
        format!(
            "unbonding:       {}, withdrawable {}",
            hal9(n.unbonding),
            when(n.unbondingEnd, now)
        )
    } else {
        format!("unbonding:       {}, withdrawable now", hal9(n.unbonding))
    });
    lines.push(format!("open tasks:      {}", n.activeTasks));
    lines.push(format!("pending rewards: {}", hal9(pending)));
    lines.push(format!("wallet balance:  {}", hal9(balance)));
    Ok((json, lines))
}

impl StakeCommand {
    pub(crate) async fn run(self, o: &ChainOverrides) -> eyre::Result<()> {
        match self {
            StakeCommand::Deposit(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let lock = a.lock.map(days_to_secs).transpose()?;
                let c = connect(&ctx.home, &ctx.cfg).await?;
                if !c.market.neuron(c.address()).await?.registered {
                    bail!(
                        "{} is not registered as a neuron: run `hal9 neuron register` first",
                        c.address()
                    );
                }
                if let Some(secs) = lock {
                    // Refuse a lock the registry would reject before any tokens move.
                    let (max_lock, _, _) = c.market.staking_params().await?;
                    if secs > max_lock {
                        bail!(
                            "a lock can last at most {} days, asked for {} days",
                            max_lock / 86_400,
                            secs / 86_400
                        );
                    }
                    let current = c.market.neuron(c.address()).await?.lockEnd;
                    let now = c.market.chain_time().await?;
                    if now.saturating_add(secs) < current {
                        bail!(
                            "a lock can only be extended: the current lock ends {}, a {}-day lock would end earlier",
                            when(current, now),
                            secs / 86_400
                        );
                    }
                }
                let rc = c.market.stake(a.amount).await?;
                let mut receipts = vec![tx_json(&rc)];
                let mut text = vec![format!("staked {} ({})", hal9(a.amount), tx_line(&rc))];
                if let Some(secs) = lock {
                    let rc = c.market.lock(secs).await?;
                    receipts.push(tx_json(&rc));
                    text.push(format!(
                        "locked for {} days ({})",
                        secs / 86_400,
                        tx_line(&rc)
                    ));
                }
                let (pos, lines) = position(&c.market, c.address()).await?;
                ctx.emit(
                    serde_json::json!({"receipts": receipts, "position": pos}),
                    || {
                        text.iter().chain(&lines).for_each(|l| println!("{l}"));
                    },
                )
            }
            StakeCommand::Status(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let addr = who(&ctx, a.address)?;
                let m = connect_read_only(&ctx.home, &ctx.cfg).await?;
                let (pos, lines) = position(&m, addr).await?;
                ctx.emit(pos, || lines.iter().for_each(|l| println!("{l}")))
            }
            StakeCommand::Unbond(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let c = connect(&ctx.home, &ctx.cfg).await?;
                let rc = c.market.unbond(a.amount).await?;
                let n = c.market.neuron(c.address()).await?;
                let now = c.market.chain_time().await?;
                ctx.emit(
                    serde_json::json!({"receipt": tx_json(&rc), "unbonding": n.unbonding.to_string(), "unbonding_end": n.unbondingEnd}),
                    || {
                        println!(
                            "unbonding {} (in total {}), withdrawable {} ({})",
                            hal9(a.amount),
                            hal9(n.unbonding),
                            when(n.unbondingEnd, now),
                            tx_line(&rc)
                        )
                    },
                )
            }
            StakeCommand::Withdraw(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let c = connect(&ctx.home, &ctx.cfg).await?;
                let n = c.market.neuron(c.address()).await?;
                if n.unbonding.is_zero() {
                    eyre::bail!("nothing is unbonding (run `hal9 stake unbond AMOUNT` first)");
                }
                let rc = c.market.withdraw(n.unbonding).await?;
                let amount = rc
                    .decoded_log::<hal9_market::bindings::NeuronRegistry::Withdrawn>()
                    .map(|l| l.data.amount)
                    .unwrap_or_default();
                ctx.emit(
                    serde_json::json!({"receipt": tx_json(&rc), "withdrawn": amount.to_string()}),
                    || println!("withdrew {} ({})", hal9(amount), tx_line(&rc)),
                )
            }
        }
    }
}
