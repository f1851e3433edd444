use clap::{Args, Subcommand};

use crate::dev::bench::{self, GossipBench};

/// `hal9 bench ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Gossip delivery latency and throughput between in-process nodes on loopback.
    Gossip(GossipArgs),
    /// Verified tasks per second and submit-to-verdict latency, in-process on loopback.
    Tasks(TasksArgs),
    /// IPFS add throughput and fetch latency/throughput between two nodes on loopback.
    Ipfs(IpfsArgs),
    /// Plugin compile time, instantiate + call latency, WASM vs native throughput.
    Plugins(hal9_plugins::cli::BenchPluginsArgs),
    /// Process RSS and engine state under a flood of distinct gossiped tasks (in-process).
    Bounds(BoundsArgs),
    /// Throughput of the pure consensus core (decode, verify and apply vote batches).
    Consensus {
        /// Tasks to push through the core.
        #[arg(long, default_value_t = 20_000)]
        tasks: usize,
    },
}

#[derive(Debug, Args)]
pub(crate) struct BoundsArgs {
    /// Distinct tasks gossiped at node 0.
    #[arg(long, default_value_t = 5_000)]
    tasks: u64,
    /// Inline input of each task, bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    input: usize,
    /// consensus.max_tasks_in_memory of every node.
    #[arg(long, default_value_t = 256)]
    cap: usize,
    /// consensus.evict_after_ms of every node.
    #[arg(long, default_value_t = 1_000)]
    evict_after_ms: u64,
}

#[derive(Debug, Args)]
pub(crate) struct IpfsArgs {
    /// Rounds for the 1 KiB objects (1 MiB uses a quarter, 64 MiB two).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

#[derive(Debug, Args)]
pub(crate) struct TasksArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Replication factor.
    #[arg(long, default_value_t = 3)]
    replicas: u16,
    /// Tasks to run.
    #[arg(long, default_value_t = 200)]
    tasks: usize,
    /// Tasks in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
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
            BenchCommand::Ipfs(a) => {
                let r = a.rounds.max(1);
                let plan = [(1 << 10, r), (1 << 20, r.div_ceil(4)), (64 << 20, 2)];
                let report = hal9_p2p::bench::ipfs(&plan).await?;
                println!("{report}");
                Ok(())
            }
            BenchCommand::Plugins(a) => a.run().map_err(|e| eyre::eyre!("{e}")),
            BenchCommand::Consensus { tasks } => {
                let report = tokio::task::spawn_blocking(move || {
                    hal9_consensus::bench::core_throughput(tasks)
                })
                .await?;
                println!("{report}");
                Ok(())
            }
            BenchCommand::Bounds(a) => {
                let report = bench::bounds(bench::BoundsBench {
                    tasks: a.tasks,
                    input: a.input,
                    cap: a.cap,
                    evict_after_ms: a.evict_after_ms,
                })
                .await?;
                println!("{report}");
                Ok(())
            }
            BenchCommand::Tasks(a) => {
                let report = bench::tasks(bench::TaskBench {
                    nodes: a.nodes,
                    replicas: a.replicas,
                    tasks: a.tasks,
                    concurrency: a.concurrency,
                })
                .await?;
                println!("{report}");
                Ok(())
            }
        }
    }
}
