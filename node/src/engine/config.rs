//! The engine's settings and the errors it reports to its clients.

use super::*;

/// Engine settings (the `[consensus]` section of the config).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Genesis file of the standalone validator set (relative to the home).
    pub genesis: String,
    /// Members reveal after q commits or after this long, ms.
    pub commit_timeout_ms: u64,
    /// Reveal window after the commit timeout, ms.
    pub reveal_timeout_ms: u64,
    /// Votes are signed and gossiped in one batch per tick of this length, ms.
    pub batch_interval_ms: u64,
    /// How long a member waits for a program to arrive from the network, ms.
    pub fetch_timeout_ms: u64,
    /// Executions run at once.
    pub max_concurrent_executions: usize,
    /// Executions waiting for a slot beyond the running ones; when full, a
    /// member refuses the execution and stays silent for the task.
    pub max_queued_executions: usize,
    /// Most task records held in memory (the consensus driver's task state
    /// follows the same cap). When full, the oldest finished task leaves
    /// memory at once; when every held task is unfinished, new gossiped or
    /// submitted tasks are refused.
    pub max_tasks_in_memory: usize,
    /// A finished task (and its input) leaves memory this long after it
    /// ended, ms; in chain mode not before nothing is owed for it in the
    /// settlement outbox. The API then serves it from the store.
    pub evict_after_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            genesis: "genesis.json".into(),
            commit_timeout_ms: 10_000,
            reveal_timeout_ms: 10_000,
            batch_interval_ms: 20,
            fetch_timeout_ms: 30_000,
            max_concurrent_executions: 2,
            max_queued_executions: 64,
            max_tasks_in_memory: 10_000,
            evict_after_ms: 30_000,
        }
    }
}

impl EngineConfig {
    /// Fits the local round to the chain's phases (chain mode): the commit
    /// and reveal timeouts become at least `commit_ms` and `reveal_ms`,
    /// since members hold their reveals until the commit phase closed on
    /// chain and a local timeout before then would lose the round.
    pub fn fit_chain_phases(&mut self, commit_ms: u64, reveal_ms: u64) {
        self.commit_timeout_ms = self.commit_timeout_ms.max(commit_ms);
        self.reveal_timeout_ms = self.reveal_timeout_ms.max(reveal_ms);
        info!(target: "hal9::engine", commit_timeout_ms = self.commit_timeout_ms, reveal_timeout_ms = self.reveal_timeout_ms, "consensus timeouts fitted to the chain's phases");
    }
}

/// Errors the engine reports to clients.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The task spec or input was refused.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Unknown task.
    #[error("unknown task {0}")]
    UnknownTask(String),
    /// The network refused to carry the task.
    #[error("cannot gossip the task: {0}")]
    Network(String),
    /// The certificate does not check out.
    #[error("certificate rejected: {0}")]
    Certificate(String),
    /// The task has no verdict yet.
    #[error("task {0} has no verdict yet")]
    NoVerdict(String),
    /// The output could not be fetched.
    #[error("cannot fetch the output {cid}: {reason}")]
    Output {
        /// CID.
        cid: String,
        /// Why.
        reason: String,
    },
    /// The engine holds as many unfinished tasks as it may.
    #[error(
        "the node is full: {held} unfinished tasks held, the configured maximum is {max}; retry later"
    )]
    Full {
        /// Tasks held.
        held: usize,
        /// `consensus.max_tasks_in_memory`.
        max: usize,
    },
    /// The engine has stopped.
    #[error("the consensus engine has stopped")]
    Stopped,
}
