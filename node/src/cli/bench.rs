use clap::{Args, Subcommand};

use crate::bench::{self, GossipBench};

/// `hal9 bench ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Gossip delivery latency and throughput between in-process nodes on loopback.
    Gossip(GossipArgs),
}

#[derive(Debug, Args)]
pub(crate) struct GossipArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// Messages to publish (spread over all nodes as publishers).
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
}

impl BenchCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            BenchCommand::Gossip(a) => {
                let report = bench::gossip(GossipBench {
                    nodes: a.nodes,
                    messages: a.messages,
                    size: a.size,
                })
                .await?;
                println!("{report}");
                Ok(())
            }
        }
    }
}
