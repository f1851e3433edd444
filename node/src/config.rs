//! Node configuration: defaults < `config.toml` < `HAL9_*` environment < flags.

use std::{net::SocketAddr, path::Path};

use eyre::{Context, bail};
use hal9_p2p::NetworkConfig;
use serde::{Deserialize, Serialize};

/// The whole node configuration, as stored in `config.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// libp2p networking.
    pub network: NetworkConfig,
    /// The local control API.
    pub api: ApiConfig,
    /// Prometheus metrics and health.
    pub metrics: MetricsConfig,
    /// Proof-of-Computation engine.
    pub consensus: crate::engine::EngineConfig,
    /// Settlement chain; off (standalone mode) while `rpc_url` is empty.
    pub chain: ChainConfig,
    /// Retention of the node store.
    pub store: StoreConfig,
}

/// Store retention (the `[store]` section).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Finished task records (with their votes), done or abandoned outbox
    /// entries and peer records not seen for longer than this are pruned,
    /// at start and every `prune_interval_secs`; 0 keeps them forever.
    /// Nothing the settlement outbox still owes is ever pruned.
    pub retention_hours: u64,
    /// Seconds between retention passes.
    pub prune_interval_secs: u64,
    /// Most peer records kept (keyed by remote PeerIds, free to make): the
    /// least recently seen are removed first.
    pub max_peer_records: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            retention_hours: 7 * 24,
            prune_interval_secs: 3600,
            max_peer_records: crate::store::DEFAULT_MAX_PEERS,
        }
    }
}

/// Bounds that flags and `HAL9_*` variables override (flag > env > file).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Bounds")]
pub struct BoundsOverrides {
    /// Prune finished records older than this many hours (0: keep forever); overrides `store.retention_hours`.
    #[arg(long, env = "HAL9_RETENTION_HOURS")]
    pub retention_hours: Option<u64>,
    /// Most peer records kept; overrides `store.max_peer_records`.
    #[arg(long, env = "HAL9_MAX_PEER_RECORDS")]
    pub max_peer_records: Option<usize>,
    /// Most task records in memory; overrides `consensus.max_tasks_in_memory`.
    #[arg(long, env = "HAL9_MAX_TASKS_IN_MEMORY")]
    pub max_tasks_in_memory: Option<usize>,
    /// Finished tasks leave memory after this many ms; overrides `consensus.evict_after_ms`.
    #[arg(long, env = "HAL9_EVICT_AFTER_MS")]
    pub evict_after_ms: Option<u64>,
    /// Executions queued beyond the running ones; overrides `consensus.max_queued_executions`.
    #[arg(long, env = "HAL9_MAX_QUEUED_EXECUTIONS")]
    pub max_queued_executions: Option<usize>,
}

impl BoundsOverrides {
    /// Applies the overrides that are set.
    pub fn apply(&self, cfg: &mut NodeConfig) {
        if let Some(h) = self.retention_hours {
            cfg.store.retention_hours = h;
        }
        if let Some(n) = self.max_peer_records {
            cfg.store.max_peer_records = n;
        }
        if let Some(n) = self.max_tasks_in_memory {
            cfg.consensus.max_tasks_in_memory = n;
        }
        if let Some(ms) = self.evict_after_ms {
            cfg.consensus.evict_after_ms = ms;
        }
        if let Some(n) = self.max_queued_executions {
            cfg.consensus.max_queued_executions = n;
        }
    }
}

pub use crate::chain::ChainConfig;

/// Control API settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address of the HTTP+JSON control API. Keep it on loopback.
    pub listen: SocketAddr,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4691)),
        }
    }
}

/// Metrics endpoint settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address serving `/metrics` and `/healthz`.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4692)),
        }
    }
}

impl NodeConfig {
    /// Reads `path`; a missing file means defaults.
    pub fn load(path: &Path) -> eyre::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(e).wrap_err_with(|| format!("cannot read config {}", path.display()));
            }
        };
        let cfg: Self = toml::from_str(&text)
            .wrap_err_with(|| format!("invalid config file {}", path.display()))?;
        cfg.validate()
            .wrap_err_with(|| format!("invalid config file {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> eyre::Result<()> {
        let n = &self.network;
        if n.max_message_size < 1024 || n.max_message_size > 64 << 20 {
            bail!(
                "network.max_message_size must be between 1 KiB and 64 MiB, found {}",
                n.max_message_size
            );
        }
        if n.max_connections == 0 || n.max_connections_per_peer == 0 {
            bail!("network.max_connections and max_connections_per_peer must be at least 1");
        }
        if n.listen.is_empty() {
            bail!("network.listen must name at least one address");
        }
        if n.heartbeat_ms < 50 {
            bail!(
                "network.heartbeat_ms must be at least 50, found {}",
                n.heartbeat_ms
            );
        }
        let c = &self.chain;
        if c.enabled() && !(c.rpc_url.starts_with("http://") || c.rpc_url.starts_with("https://")) {
            bail!(
                "chain.rpc_url must be an http:// or https:// URL, found {:?}",
                c.rpc_url
            );
        }
        let s = &self.store;
        if s.prune_interval_secs == 0 {
            bail!("store.prune_interval_secs must be at least 1");
        }
        if s.max_peer_records == 0 {
            bail!("store.max_peer_records must be at least 1");
        }
        let min = crate::engine::bounds::MIN_TASKS;
        if self.consensus.max_tasks_in_memory < min {
            bail!(
                "consensus.max_tasks_in_memory must be at least {min}, found {}",
                self.consensus.max_tasks_in_memory
            );
        }
        if c.poll_interval_ms < 50 {
            bail!(
                "chain.poll_interval_ms must be at least 50, found {}",
                c.poll_interval_ms
            );
        }
        Ok(())
    }

    /// The documented TOML file `hal9 init` writes.
    pub fn template(&self) -> String {
        let n = &self.network;
        let list = |v: &[hal9_p2p::Multiaddr]| {
            v.iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            r#"# hal9 node configuration.
# Precedence: command-line flags > HAL9_* environment variables > this file > built-in defaults.

[network]
# Multiaddrs to listen on: TCP and QUIC share the port number by convention.
# Flag --listen, env HAL9_LISTEN (comma-separated).
listen = [{listen}]
# Peers contacted at start-up; each must end in /p2p/<peer id>.
# Flag --bootstrap, env HAL9_BOOTSTRAP (comma-separated).
bootstrap = [{bootstrap}]
# Discover peers on the local network with mDNS (LANs only). Flag --mdns, env HAL9_MDNS.
mdns = {mdns}
# Largest gossip payload in bytes (1 KiB to 64 MiB). Flag --max-message-size, env HAL9_MAX_MESSAGE_SIZE.
max_message_size = {mms}
# Connection limits: in total, and per peer.
max_connections = {mc}
max_connections_per_peer = {mcp}
# Dial peers found in the DHT until this many are connected.
target_peers = {tp}
# Close connections idle for this long (seconds).
idle_timeout_secs = {idle}
# Gossipsub heartbeat (milliseconds, at least 50).
heartbeat_ms = {hb}
# Capacity of the queue of validated messages towards the node's services.
event_buffer = {eb}
# Messages held while no peer has subscribed to their topic yet.
publish_queue = {pq}

[network.content]
# The IPFS block and pin store. Without `dir` the node uses <home>/ipfs.
# dir = "/var/lib/hal9/ipfs"
# Disk quota in bytes: above it, garbage collection removes unpinned blocks.
quota_bytes = {cq}
# Seconds between garbage-collection passes.
gc_interval_secs = {cgc}
# Largest object a fetch will assemble, in bytes.
max_object_bytes = {cmax}
# How long outputs of this node's own tasks stay pinned, in seconds.
result_retention_secs = {cret}
# Concurrent DHT provider lookups.
max_provider_lookups = {cpl}

[api]
# HTTP+JSON control API used by the hal9 CLI; a bearer token from api.token
# in the home directory is required. Flag --api-listen, env HAL9_API_LISTEN.
listen = "{api}"

[metrics]
# Prometheus /metrics and /healthz. Flag --metrics-listen, env HAL9_METRICS_LISTEN.
listen = "{metrics}"

[consensus]
# Standalone validator set (JSON: {{"validators":[{{"peer_id":..,"weight":"1",..}}]}}), relative to the home.
genesis = "{genesis}"
# A member reveals once it has seen q commits, or after this many ms.
commit_timeout_ms = {ct}
# Reveal window after the commit timeout (ms); then the round escalates or fails.
reveal_timeout_ms = {rt}
# Votes are signed and gossiped in one batch per tick of this many ms.
batch_interval_ms = {bi}
# How long a member waits for a program to arrive from the network (ms).
fetch_timeout_ms = {ft}
# Plugin executions run at once.
max_concurrent_executions = {mce}
# Executions waiting for a slot beyond the running ones; when full, this node
# does not execute the task (it stays silent for it). Flag --max-queued-executions.
max_queued_executions = {mqe}
# Most task records in memory (at least 16). When full the oldest finished task
# leaves memory; when all are unfinished, new tasks are refused.
# Flag --max-tasks-in-memory, env HAL9_MAX_TASKS_IN_MEMORY.
max_tasks_in_memory = {mtm}
# A finished task leaves memory this many ms after it ended (in chain mode not
# while a settlement is owed); the API then reads it from the store.
# Flag --evict-after-ms, env HAL9_EVICT_AFTER_MS.
evict_after_ms = {eam}

[chain]
# Settlement chain JSON-RPC endpoint. Empty: standalone mode (committees from
# the genesis file, nothing settled). Flag --rpc-url, env HAL9_RPC_URL.
rpc_url = "{rpc}"
# Contract addresses written at deployment, relative to the home.
deployment = "{dep}"
# Operator secp256k1 key (encrypted keystore; plaintext only for devnet
# accounts), relative to the home. Create one with `hal9 key new`.
operator_key = "{okey}"
# Environment variable that holds the keystore passphrase.
passphrase_env = "{penv}"
# Blocks an event must be buried under before the node acts on it.
confirmations = {conf}
# How often the chain is polled for new blocks (ms, at least 50).
poll_interval_ms = {poll}
# Majority member k (in committee order) submits the verdict after k times
# this delay if it has not landed yet (ms).
takeover_delay_ms = {take}
# Challenge a settled verdict that this node's own execution contradicts.
challenge = {chal}

[store]
# Finished tasks (with their votes), done or abandoned settlement entries and
# peers not seen for longer than this are pruned (0: keep forever); anything
# still owed on chain is kept. Flag --retention-hours, env HAL9_RETENTION_HOURS.
retention_hours = {ret}
# Seconds between retention passes (one also runs at start).
prune_interval_secs = {pint}
# Most peer records kept; the least recently seen go first.
# Flag --max-peer-records, env HAL9_MAX_PEER_RECORDS.
max_peer_records = {mpr}
"#,
            listen = list(&n.listen),
            bootstrap = list(&n.bootstrap),
            mdns = n.mdns,
            mms = n.max_message_size,
            mc = n.max_connections,
            mcp = n.max_connections_per_peer,
            tp = n.target_peers,
            idle = n.idle_timeout_secs,
            hb = n.heartbeat_ms,
            eb = n.event_buffer,
            pq = n.publish_queue,
            cq = n.content.quota_bytes,
            cgc = n.content.gc_interval_secs,
            cmax = n.content.max_object_bytes,
            cret = n.content.result_retention_secs,
            cpl = n.content.max_provider_lookups,
            api = self.api.listen,
            metrics = self.metrics.listen,
            genesis = self.consensus.genesis,
            ct = self.consensus.commit_timeout_ms,
            rt = self.consensus.reveal_timeout_ms,
            bi = self.consensus.batch_interval_ms,
            ft = self.consensus.fetch_timeout_ms,
            mce = self.consensus.max_concurrent_executions,
            mqe = self.consensus.max_queued_executions,
            mtm = self.consensus.max_tasks_in_memory,
            eam = self.consensus.evict_after_ms,
            ret = self.store.retention_hours,
            pint = self.store.prune_interval_secs,
            mpr = self.store.max_peer_records,
            rpc = self.chain.rpc_url,
            dep = self.chain.deployment,
            okey = self.chain.operator_key,
            penv = self.chain.passphrase_env,
            conf = self.chain.confirmations,
            poll = self.chain.poll_interval_ms,
            take = self.chain.takeover_delay_ms,
            chal = self.chain.challenge,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_back_to_the_same_config() {
        let mut cfg = NodeConfig::default();
        cfg.network.bootstrap = vec![
            "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGzXTHBGmcrqZ4b9TX5XhWTXSWAdNtHJbjCcwxAJtNw7M"
                .parse()
                .unwrap(),
        ];
        let back: NodeConfig = toml::from_str(&cfg.template()).unwrap();
        assert_eq!(back, cfg);
        let back: NodeConfig = toml::from_str(&NodeConfig::default().template()).unwrap();
        assert_eq!(back, NodeConfig::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[network]\nmax_mesage_size = 5\n").unwrap();
        let err = format!("{:#}", NodeConfig::load(&p).unwrap_err());
        assert!(err.contains("max_mesage_size"), "{err}");
        std::fs::write(&p, "[network]\nmax_message_size = 5\n").unwrap();
        let err = format!("{:#}", NodeConfig::load(&p).unwrap_err());
        assert!(err.contains("between 1 KiB and 64 MiB"), "{err}");
        std::fs::write(&p, "[network\n").unwrap();
        assert!(NodeConfig::load(&p).is_err());
    }
}
