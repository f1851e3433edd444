//! `hal9 balance` and `hal9 transfer`: HAL9 in the operator's wallet.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use clap::Args;
use hal9_market::units::format_tokens;

use super::chain::{ChainArgs, ChainOverrides, Ctx, hal9, positive_amount, tx_json, tx_line, who};
use crate::chain::client::{connect, connect_read_only};

/// `hal9 balance [ADDRESS]`.
#[derive(Debug, Args)]
pub(crate) struct BalanceArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Account (default: this home's operator key).
    address: Option<Address>,
}

/// `hal9 transfer TO AMOUNT`.
#[derive(Debug, Args)]
pub(crate) struct TransferArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Recipient address.
    to: Address,
    /// HAL9 amount, decimal ("12.5").
    #[arg(value_parser = positive_amount)]
    amount: U256,
}

impl BalanceArgs {
    pub(crate) async fn run(self, o: &ChainOverrides) -> eyre::Result<()> {
        let ctx = Ctx::load(&self.chain, o)?;
        let addr = who(&ctx, self.address)?;
        let m = connect_read_only(&ctx.home, &ctx.cfg).await?;
        let bal = m.balance(addr).await?;
        let votes = m.voting_power(addr).await?;
        let delegate = m.delegate_of(addr).await?;
        let gas = m
            .token()
            .provider()
            .get_balance(addr)
            .await
            .map_err(|e| eyre::eyre!("eth_getBalance failed: {e}"))?;
        ctx.emit(
            serde_json::json!({
                "address": addr.to_string(),
                "hal9": bal.to_string(),
                "voting_power": votes.to_string(),
                "delegate": (!delegate.is_zero()).then(|| delegate.to_string()),
                "native_wei": gas.to_string(),
            }),
            || {
                println!("address:      {addr}");
                println!("balance:      {}", hal9(bal));
                println!(
                    "voting power: {}{}",
                    hal9(votes),
                    if delegate.is_zero() {
                        " (never delegated: `hal9 dao delegate` to vote)".to_string()
                    } else if delegate == addr {
                        " (delegated to itself)".to_string()
                    } else {
                        format!(" (delegates to {delegate})")
                    }
                );
                println!("gas balance:  {} ETH", format_tokens(gas));
            },
        )
    }
}

impl TransferArgs {
    pub(crate) async fn run(self, o: &ChainOverrides) -> eyre::Result<()> {
        let ctx = Ctx::load(&self.chain, o)?;
        let c = connect(&ctx.home, &ctx.cfg).await?;
        let rc = c.market.transfer(self.to, self.amount).await?;
        ctx.emit(
            serde_json::json!({"from": c.address().to_string(), "to": self.to.to_string(), "amount": self.amount.to_string(), "receipt": tx_json(&rc)}),
            || {
                println!(
                    "sent {} from {} to {} ({})",
                    hal9(self.amount),
                    c.address(),
                    self.to,
                    tx_line(&rc)
                )
            },
        )
    }
}
