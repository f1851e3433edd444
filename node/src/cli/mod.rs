//! The `hal9` command line: one file per subcommand.

mod balance;
mod bench;
mod chain;
mod dao;
mod devnet;
mod get;
mod init;
mod key;
mod neuron;
mod node;
mod notes;
mod peers;
mod plugin;
mod rewards;
mod stake;
mod status;
pub(crate) mod task;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::home::Home;

/// hal9: a peer-to-peer network that sells verified computation.
#[derive(Debug, Parser)]
#[command(name = "hal9", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
struct GlobalArgs {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "HAL9_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax, e.g. `info,hal9::p2p=debug`).
    #[arg(long, global = true, default_value = "info", env = "HAL9_LOG")]
    log: String,
    #[command(flatten)]
    chain: chain::ChainOverrides,
}

/// Where the node's files live: `--home`, else `$HAL9_HOME`, else `~/.hal9`.
#[derive(Debug, Clone, Args)]
pub struct HomeArgs {
    /// Node home directory.
    #[arg(long, env = "HAL9_HOME")]
    pub home: Option<PathBuf>,
}

impl HomeArgs {
    fn home(&self) -> Home {
        Home::resolve(self.home.clone())
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node home: key (ed25519, mode 0600), documented config, API token.
    Init(init::InitArgs),
    /// Run and manage a node.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// List the peers a running node is connected to.
    Peers(peers::PeersArgs),
    /// Show a running node's status.
    Status(status::StatusArgs),
    /// Gossip and read operator notes (hal9/notes/1).
    #[command(subcommand)]
    Notes(notes::NotesCommand),
    /// Submit tasks and read verdicts.
    #[command(subcommand)]
    Task(task::TaskCommand),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Start a local network of node processes on 127.0.0.1.
    Devnet(devnet::DevnetArgs),
    /// Fetch an object by CID through the running node (verified against its CID).
    Get(get::GetArgs),
    /// Build, inspect, run and publish WASM programs.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// The operator key (secp256k1, the node's EVM address).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Register this node as a neuron on chain and show registrations.
    #[command(subcommand)]
    Neuron(neuron::NeuronCommand),
    /// Deposit, lock, unbond and withdraw stake.
    #[command(subcommand)]
    Stake(stake::StakeCommand),
    /// Claim staking rewards.
    #[command(subcommand)]
    Rewards(rewards::RewardsCommand),
    /// HAL9 balance, voting power and gas of an account.
    Balance(balance::BalanceArgs),
    /// Send HAL9 from the operator account.
    Transfer(balance::TransferArgs),
    /// Governance: propose, vote, queue, execute, list, delegate.
    #[command(subcommand)]
    Dao(dao::DaoCommand),
}

impl Cli {
    /// Installs the tracing subscriber (logs go to stderr).
    pub fn init_tracing(&self) -> eyre::Result<()> {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.global.log)
            .map_err(|e| eyre::eyre!("invalid --log filter {:?}: {e}", self.global.log))?;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let res = match self.global.log_format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
        res.map_err(|e| eyre::eyre!("{e}"))
    }

    /// Runs the chosen subcommand.
    pub fn run(self) -> eyre::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let chain = self.global.chain;
        rt.block_on(async move {
            match self.command {
                Command::Init(a) => a.run(),
                Command::Node(c) => c.run(&chain).await,
                Command::Peers(a) => a.run().await,
                Command::Status(a) => a.run().await,
                Command::Notes(c) => c.run().await,
                Command::Bench(c) => c.run().await,
                Command::Task(c) => c.run().await,
                Command::Devnet(a) => a.run().await,
                Command::Get(a) => a.run().await,
                Command::Plugin(c) => c.run().await,
                Command::Key(c) => c.run(&chain).await,
                Command::Neuron(c) => c.run(&chain).await,
                Command::Stake(c) => c.run(&chain).await,
                Command::Rewards(c) => c.run(&chain).await,
                Command::Balance(a) => a.run(&chain).await,
                Command::Transfer(a) => a.run(&chain).await,
                Command::Dao(c) => c.run(&chain).await,
            }
        })
    }
}
