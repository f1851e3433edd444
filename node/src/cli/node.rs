use std::net::SocketAddr;

use clap::{Args, Subcommand};
use hal9_p2p::{Multiaddr, NetworkConfig};

use super::HomeArgs;
use crate::{config::NodeConfig, home::CONFIG_FILE, runtime};

/// `hal9 node ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Run the node until SIGINT or SIGTERM.
    Run(RunArgs),
}

/// Network settings that flags and `HAL9_*` variables override.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Network")]
pub(crate) struct NetworkOverrides {
    /// Listen multiaddrs (repeat or comma-separate).
    #[arg(long, env = "HAL9_LISTEN", value_delimiter = ',')]
    listen: Vec<Multiaddr>,
    /// Bootstrap peers, each ending in /p2p/<peer id> (repeat or comma-separate).
    #[arg(long, env = "HAL9_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<Multiaddr>,
    /// Enable mDNS discovery (LANs only).
    #[arg(long, env = "HAL9_MDNS")]
    mdns: Option<bool>,
    /// Largest gossip payload in bytes.
    #[arg(long, env = "HAL9_MAX_MESSAGE_SIZE")]
    max_message_size: Option<usize>,
}

impl NetworkOverrides {
    pub(crate) fn apply(&self, n: &mut NetworkConfig) {
        if !self.listen.is_empty() {
            n.listen = self.listen.clone();
        }
        if !self.bootstrap.is_empty() {
            n.bootstrap = self.bootstrap.clone();
        }
        if let Some(m) = self.mdns {
            n.mdns = m;
        }
        if let Some(m) = self.max_message_size {
            n.max_message_size = m;
        }
    }
}

/// `hal9 node run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    home: HomeArgs,
    #[command(flatten)]
    network: NetworkOverrides,
    #[command(flatten)]
    bounds: crate::config::BoundsOverrides,
    /// Control API address.
    #[arg(long, env = "HAL9_API_LISTEN", help_heading = "API")]
    api_listen: Option<SocketAddr>,
    /// Metrics and health address.
    #[arg(long, env = "HAL9_METRICS_LISTEN", help_heading = "API")]
    metrics_listen: Option<SocketAddr>,
    /// Members reveal after q commits or after this many ms.
    #[arg(long, env = "HAL9_COMMIT_TIMEOUT_MS", help_heading = "Consensus")]
    commit_timeout_ms: Option<u64>,
    /// Reveal window after the commit timeout, ms.
    #[arg(long, env = "HAL9_REVEAL_TIMEOUT_MS", help_heading = "Consensus")]
    reveal_timeout_ms: Option<u64>,
}

impl NodeCommand {
    pub(crate) async fn run(self, chain: &super::chain::ChainOverrides) -> eyre::Result<()> {
        match self {
            NodeCommand::Run(a) => a.run(chain).await,
        }
    }
}

impl RunArgs {
    async fn run(self, chain: &super::chain::ChainOverrides) -> eyre::Result<()> {
        let home = self.home.home();
        home.ensure_initialized()?;
        let mut cfg = NodeConfig::load(&home.path(CONFIG_FILE))?;
        self.network.apply(&mut cfg.network);
        chain.apply(&mut cfg.chain);
        self.bounds.apply(&mut cfg);
        if let Some(a) = self.api_listen {
            cfg.api.listen = a;
        }
        if let Some(a) = self.metrics_listen {
            cfg.metrics.listen = a;
        }
        if let Some(ms) = self.commit_timeout_ms {
            cfg.consensus.commit_timeout_ms = ms;
        }
        if let Some(ms) = self.reveal_timeout_ms {
            cfg.consensus.reveal_timeout_ms = ms;
        }
        runtime::run(home, cfg).await
    }
}
