//! `hal9 neuron ...`: bind this node's PeerId to the operator address on chain.

use alloy::primitives::Address;
use clap::{Args, Subcommand};
use libp2p::PeerId;

use super::chain::{ChainArgs, ChainOverrides, Ctx, hal9, tx_json, tx_line, who};
use crate::chain::client::{connect, connect_read_only};
use crate::home::KEY_FILE;

/// `hal9 neuron ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum NeuronCommand {
    /// Register the operator as a neuron, bound to this node's PeerId (from `node.key`).
    Register(RegisterArgs),
    /// Show a neuron's registration (default: the operator's).
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Capability bits the neuron offers (bit 0: WASM execution).
    #[arg(long, default_value_t = 1)]
    capabilities: u64,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Operator address (default: this home's operator key).
    address: Option<Address>,
}

impl NeuronCommand {
    pub(crate) async fn run(self, o: &ChainOverrides) -> eyre::Result<()> {
        match self {
            NeuronCommand::Register(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                ctx.home.ensure_initialized()?;
                let peer = PeerId::from(ctx.home.load_key()?.public());
                let c = connect(&ctx.home, &ctx.cfg).await?;
                let rc = c.market.register(&peer.to_bytes(), a.capabilities).await?;
                ctx.emit(
                    serde_json::json!({
                        "operator": c.address().to_string(),
                        "peer_id": peer.to_string(),
                        "capabilities": a.capabilities,
                        "receipt": tx_json(&rc),
                    }),
                    || {
                        println!(
                            "registered operator {} as the neuron of peer {peer}, capabilities {:#x} ({})",
                            c.address(),
                            a.capabilities,
                            tx_line(&rc)
                        );
                        println!("next: stake with `hal9 stake deposit AMOUNT [--lock DAYS]`");
                    },
                )
            }
            NeuronCommand::Status(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let addr = who(&ctx, a.address)?;
                let m = connect_read_only(&ctx.home, &ctx.cfg).await?;
                let n = m.neuron(addr).await?;
                let eff = m.effective_stake(addr).await?;
                let (_, _, min_stake) = m.staking_params().await?;
                let peer = PeerId::from_bytes(&n.peerId).ok();
                let local = if ctx.home.path(KEY_FILE).exists() {
                    ctx.home.load_key().ok().map(|k| PeerId::from(k.public()))
                } else {
                    None
                };
                let matches_local = match (peer, local) {
                    (Some(p), Some(l)) => Some(p == l),
                    _ => None,
                };
                let eligible = n.registered && !n.stake.is_zero() && n.stake >= min_stake;
                ctx.emit(
                    serde_json::json!({
                        "operator": addr.to_string(),
                        "registered": n.registered,
                        "peer_id": peer.map(|p| p.to_string()),
                        "peer_id_is_this_node": matches_local,
                        "capabilities": n.capabilities,
                        "stake": n.stake.to_string(),
                        "effective_stake": eff.to_string(),
                        "open_tasks": n.activeTasks,
                        "committee_eligible": eligible,
                    }),
                    || {
                        println!("operator:        {addr}");
                        if !n.registered {
                            println!("registered:      no (run `hal9 neuron register`)");
                            return;
                        }
                        let peer_s =
                            peer.map_or_else(|| "(not a PeerId)".to_string(), |p| p.to_string());
                        let mine = match matches_local {
                            Some(true) => " (this node)",
                            Some(false) => " (NOT this home's node key)",
                            None => "",
                        };
                        println!("registered:      yes");
                        println!("peer id:         {peer_s}{mine}");
                        println!("capabilities:    {:#x}", n.capabilities);
                        println!("stake:           {}", hal9(n.stake));
                        println!("effective stake: {}", hal9(eff));
                        println!("open tasks:      {}", n.activeTasks);
                        println!(
                            "committees:      {}",
                            if eligible {
                                "eligible".to_string()
                            } else {
                                format!(
                                    "not eligible (needs a stake of at least {})",
                                    hal9(min_stake)
                                )
                            }
                        );
                    },
                )
            }
        }
    }
}
