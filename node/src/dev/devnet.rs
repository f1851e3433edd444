//! Local networks of real `hal9` processes on 127.0.0.1, for the devnet
//! command and the end-to-end tests.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use eyre::{Context, bail, eyre};
use tokio::process::{Child, Command};

use hal9_api::ApiClient;

use crate::{config::NodeConfig, home::Home};

/// One node process and its home.
#[derive(Debug)]
pub struct NodeProc {
    bin: PathBuf,
    home: Home,
    child: Option<Child>,
    extra_args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl NodeProc {
    /// Initializes a home under `dir` for a node listening on OS-chosen loopback ports.
    pub async fn init(bin: &Path, dir: &Path, bootstrap: Vec<String>) -> eyre::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let out = Command::new(bin)
            .args(["init", "--home"])
            .arg(dir)
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .args([
                "--api-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .args(
                bootstrap
                    .iter()
                    .flat_map(|b| ["--bootstrap".to_string(), b.clone()]),
            )
            .output()
            .await
            .wrap_err("cannot run hal9 init")?;
        if !out.status.success() {
            bail!("hal9 init failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Self {
            bin: bin.to_path_buf(),
            home: Home::new(dir),
            child: None,
            extra_args: Vec::new(),
            envs: Vec::new(),
        })
    }

    /// Extra arguments appended to `hal9 node run`.
    pub fn with_args(mut self, args: &[&str]) -> Self {
        self.extra_args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets an environment variable for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.envs.push((key.to_string(), value.to_string()));
    }

    /// The node's peer id (from its key).
    pub fn peer_id(&self) -> eyre::Result<String> {
        Ok(self.home.load_key()?.public().to_peer_id().to_string())
    }

    /// Process id, when running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// The node's home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Config file of this node.
    pub fn config(&self) -> eyre::Result<NodeConfig> {
        NodeConfig::load(&self.home.path(crate::home::CONFIG_FILE))
    }

    /// Starts the process (logs to `node.log` in the home) and waits until its API answers.
    pub async fn start(&mut self) -> eyre::Result<ApiClient> {
        if self.child.is_some() {
            bail!("node {} already running", self.home.root().display());
        }
        let _ = std::fs::remove_file(self.home.path(crate::home::API_FILE));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.path("node.log"))?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--log-format", "json", "node", "run", "--home"])
            .arg(self.home.root())
            .args(&self.extra_args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        // Linux: the node gets SIGTERM when its parent dies, even by SIGKILL,
        // so not even a killed devnet or test leaves orphaned nodes.
        #[cfg(target_os = "linux")]
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().wrap_err("cannot start hal9 node run")?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30)).await
    }

    /// Waits until the API answers and the node listens.
    pub async fn wait_ready(&mut self, timeout: Duration) -> eyre::Result<ApiClient> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!(
                    "node {} exited with {status}; log tail:\n{}",
                    self.home.root().display(),
                    self.log_tail(20)
                );
            }
            if let Ok(client) = self.home.api_client()
                && let Ok(status) = client.status().await
                && !status.listen_addrs.is_empty()
            {
                return Ok(client);
            }
            if Instant::now() > deadline {
                bail!(
                    "node {} not ready after {timeout:?}; log tail:\n{}",
                    self.home.root().display(),
                    self.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `n` lines of the node's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.home.path("node.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// API client (the node must be running).
    pub fn client(&self) -> eyre::Result<ApiClient> {
        self.home.api_client()
    }

    /// Is the process alive?
    pub fn is_running(&mut self) -> bool {
        let running = match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        };
        if !running {
            // Exited on its own (crash): forget it so it can be started again.
            self.child = None;
        }
        running
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn stop(&mut self) -> eyre::Result<std::process::ExitStatus> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| eyre!("node is not running"))?;
        if let Some(pid) = child.id() {
            signal(pid, "-TERM");
        }
        match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
            Ok(s) => Ok(s?),
            Err(_) => {
                child.kill().await?;
                bail!("node did not stop within 15 s of SIGTERM; killed")
            }
        }
    }

    /// Kills the process with SIGKILL.
    pub async fn kill(&mut self) -> eyre::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
            let _ = child.wait().await;
        }
        Ok(())
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status();
}

/// A network of node processes with node 0 as the bootstrap node.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes, node 0 first.
    pub nodes: Vec<NodeProc>,
    /// Bootstrap multiaddr of node 0.
    pub bootstrap: String,
}

impl Cluster {
    /// Initializes `n` node homes under `dir`, writes one genesis naming
    /// all of them as equal-weight validators into each, and starts them.
    pub async fn start(bin: &Path, dir: &Path, n: usize) -> eyre::Result<Self> {
        Self::start_with(bin, dir, n, |_| Vec::new()).await
    }

    /// Like [`Cluster::start`], with extra `hal9 node run` arguments per node
    /// index (an argument `env:KEY=VALUE` sets an environment variable instead).
    pub async fn start_with(
        bin: &Path,
        dir: &Path,
        n: usize,
        args: impl Fn(usize) -> Vec<String>,
    ) -> eyre::Result<Self> {
        let nodes = Self::init(bin, dir, n, args).await?;
        Self::launch(nodes).await
    }

    /// Initializes `n` node homes (keys, config, one shared genesis) without
    /// starting them; `args` as for [`Cluster::start_with`].
    pub async fn init(
        bin: &Path,
        dir: &Path,
        n: usize,
        args: impl Fn(usize) -> Vec<String>,
    ) -> eyre::Result<Vec<NodeProc>> {
        if n == 0 {
            bail!("a cluster needs at least one node");
        }
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mut node = NodeProc::init(bin, &dir.join(format!("node{i}")), vec![]).await?;
            for a in args(i) {
                match a.strip_prefix("env:").and_then(|kv| kv.split_once('=')) {
                    Some((k, v)) => node.set_env(k, v),
                    None => node.extra_args.push(a),
                }
            }
            nodes.push(node);
        }
        let mut validators = Vec::new();
        for node in &nodes {
            let key = node.home.load_key()?;
            validators.push(hal9_consensus::GenesisValidator {
                peer_id: key.public().to_peer_id().to_string(),
                weight: "1".into(),
                capabilities: vec!["wasm".into()],
            });
        }
        let genesis = serde_json::to_vec_pretty(&hal9_consensus::Genesis { validators })?;
        for node in &nodes {
            std::fs::write(node.home.path("genesis.json"), &genesis)?;
        }
        Ok(nodes)
    }

    /// Starts initialized nodes: node 0 first, the others bootstrapping from it.
    pub async fn launch(nodes: Vec<NodeProc>) -> eyre::Result<Self> {
        let mut cluster = Self::new(nodes);
        cluster.start_nodes().await?;
        Ok(cluster)
    }

    /// A cluster of initialized nodes that are not started yet.
    pub fn new(nodes: Vec<NodeProc>) -> Self {
        Self {
            nodes,
            bootstrap: String::new(),
        }
    }

    /// Starts the nodes: node 0 first, the others bootstrapping from it.
    /// Cancel-safe for shutdown: a node whose start was cancelled is still
    /// owned by the cluster, so [`Cluster::stop`] stops it.
    pub async fn start_nodes(&mut self) -> eyre::Result<()> {
        let Some(first) = self.nodes.first_mut() else {
            bail!("a cluster needs at least one node");
        };
        let status = first.start().await?.status().await?;
        let bootstrap = status
            .listen_addrs
            .iter()
            .find(|a| a.contains("/tcp/"))
            .cloned()
            .ok_or_else(|| eyre!("bootstrap node has no TCP address"))?;
        self.bootstrap = bootstrap.clone();
        for node in self.nodes.iter_mut().skip(1) {
            node.extra_args
                .extend(["--bootstrap".to_string(), bootstrap.clone()]);
            node.start().await?;
        }
        Ok(())
    }

    /// How many node processes are alive.
    pub fn running(&mut self) -> usize {
        self.nodes
            .iter_mut()
            .map(|n| n.is_running())
            .filter(|&r| r)
            .count()
    }

    /// Waits until every node is connected to every other node and knows it
    /// subscribes to the notes topic.
    pub async fn wait_full_mesh(&self, timeout: Duration) -> eyre::Result<Duration> {
        let start = Instant::now();
        let want = self.nodes.len() - 1;
        loop {
            let mut ok = true;
            for node in &self.nodes {
                let peers = node.client()?.peers().await?;
                let subscribed = peers
                    .iter()
                    .filter(|p| p.topics.iter().any(|t| t == crate::notes::TOPIC))
                    .count();
                if subscribed < want {
                    ok = false;
                    break;
                }
            }
            if ok {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                let mut report = String::new();
                for (i, node) in self.nodes.iter().enumerate() {
                    let n = node.client()?.peers().await.map(|p| p.len()).unwrap_or(0);
                    report.push_str(&format!("node{i}: {n} peers; "));
                }
                bail!("network not fully connected after {timeout:?}: {report}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every node with SIGTERM, all at once, and waits for them.
    /// Dropping the future before it ends kills the nodes still stopping.
    pub async fn stop(&mut self) -> eyre::Result<()> {
        let stops = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.is_running().then(|| n.stop()));
        let failed: Vec<String> = futures::future::join_all(stops)
            .await
            .into_iter()
            .filter_map(|r| r.err().map(|e| e.to_string()))
            .collect();
        if !failed.is_empty() {
            bail!(
                "{} nodes did not stop cleanly: {}",
                failed.len(),
                failed.join("; ")
            );
        }
        Ok(())
    }

    /// Kills every node still running with SIGKILL.
    pub async fn kill(&mut self) {
        futures::future::join_all(self.nodes.iter_mut().map(|n| n.kill())).await;
    }
}
