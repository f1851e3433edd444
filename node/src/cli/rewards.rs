//! `hal9 rewards ...`: the emission paid to staked neurons.

use alloy::primitives::Address;
use clap::{Args, Subcommand};

use super::chain::{ChainArgs, ChainOverrides, Ctx, hal9, who};
use crate::chain::client::{connect, connect_read_only};

/// `hal9 rewards ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum RewardsCommand {
    /// Claim the operator's accrued rewards.
    Claim(ClaimArgs),
    /// Show what an operator could claim now (default: the operator's).
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ClaimArgs {
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Operator address (default: this home's operator key).
    address: Option<Address>,
}

impl RewardsCommand {
    pub(crate) async fn run(self, o: &ChainOverrides) -> eyre::Result<()> {
        match self {
            RewardsCommand::Claim(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let c = connect(&ctx.home, &ctx.cfg).await?;
                let paid = c.market.claim_rewards().await?;
                ctx.emit(
                    serde_json::json!({"operator": c.address().to_string(), "claimed": paid.to_string()}),
                    || println!("claimed {} to {}", hal9(paid), c.address()),
                )
            }
            RewardsCommand::Status(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let addr = who(&ctx, a.address)?;
                let m = connect_read_only(&ctx.home, &ctx.cfg).await?;
                let pending = m.pending_rewards(addr).await?;
                ctx.emit(
                    serde_json::json!({"operator": addr.to_string(), "pending": pending.to_string()}),
                    || println!("{addr} can claim {}", hal9(pending)),
                )
            }
        }
    }
}
