//! `hal9 neuron ...`: bind this node's PeerId to the operator address on
//! chain, with the stake that makes it eligible (protocol v1.1: the node's
//! libp2p key signs the binding; nodes ignore a registration whose binding
//! does not verify).

use alloy::primitives::{Address, U256};
use clap::{Args, Subcommand};
use libp2p::PeerId;

use super::chain::{ChainArgs, ChainOverrides, Ctx, hal9, positive_amount, tx_json, tx_line, who};
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
    /// HAL9 staked with the registration, decimal (default: the registry's
    /// minimum stake, which registration requires).
    #[arg(long, value_parser = positive_amount)]
    stake: Option<U256>,
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
                let key = ctx.home.load_key()?;
                let peer = PeerId::from(key.public());
                let c = connect(&ctx.home, &ctx.cfg).await?;
                let d = *c.market.deployment();
                let (_, _, min_stake) = c.market.staking_params().await?;
                let amount = a.stake.unwrap_or(min_stake);
                if amount < min_stake {
                    eyre::bail!(
                        "a registration needs a stake of at least {} (got {})",
                        hal9(min_stake),
                        hal9(amount)
                    );
                }
                let sig = crate::chain::binding::sign(&key, d.chain_id, d.registry, c.address())
                    .map_err(|e| eyre::eyre!(e))?;
                let rc = c
                    .market
                    .register(&peer.to_bytes(), a.capabilities, amount, &sig)
                    .await?;
                ctx.emit(
                    serde_json::json!({
                        "operator": c.address().to_string(),
                        "peer_id": peer.to_string(),
                        "capabilities": a.capabilities,
                        "stake": amount.to_string(),
                        "receipt": tx_json(&rc),
                    }),
                    || {
                        println!(
                            "registered operator {} as the neuron of peer {peer}, capabilities {:#x}, stake {} ({})",
                            c.address(),
                            a.capabilities,
                            hal9(amount),
                            tx_line(&rc)
                        );
                        println!("the node applies its sortition-tree entry in the next apply phase; more stake: `hal9 stake deposit AMOUNT [--lock DAYS]`");
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
                let d = *m.deployment();
                let bound = crate::chain::binding::verify(
                    d.chain_id, d.registry, addr, &n.peerId, &n.peerSig,
                );
                let local = if ctx.home.path(KEY_FILE).exists() {
                    ctx.home.load_key().ok().map(|k| PeerId::from(k.public()))
                } else {
                    None
                };
                let matches_local = match (peer, local) {
                    (Some(p), Some(l)) => Some(p == l),
                    _ => None,
                };
                let eligible = n.registered && n.stake >= min_stake && bound.is_ok();
                ctx.emit(
                    serde_json::json!({
                        "operator": addr.to_string(),
                        "registered": n.registered,
                        "peer_id": peer.map(|p| p.to_string()),
                        "peer_id_is_this_node": matches_local,
                        "peer_binding_valid": bound.is_ok(),
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
                        match &bound {
                            Ok(_) => println!("peer binding:    signed by the PeerId's key"),
                            Err(e) => {
                                println!("peer binding:    INVALID ({e}): nodes ignore this neuron")
                            }
                        }
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
