//! What the engine keeps in the store and shows through the API.

use hal9_consensus::{Cid, PersistedVote, ResultHash, Round, Salt, TaskId, TaskParams};
use serde::{Deserialize, Serialize};

/// Status of a task as seen by this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Seen, waiting for votes.
    Pending,
    /// An escalation committee of 2r+1 is working on it.
    Escalated,
    /// A certificate proves the verdict.
    Verified,
    /// No quorum even after escalation; the fee is refunded.
    Failed,
    /// Not started (bad parameters for this network).
    Rejected,
}

/// The verdict part of a task record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VerdictRecord {
    /// "primary" or "escalation".
    pub round: String,
    /// keccak256 of the output, hex.
    pub result: String,
    /// CID of the output.
    pub output_cid: String,
    /// Members whose signed reveals form the certificate.
    pub attesters: Vec<String>,
    /// The certificate, hex of its canonical encoding.
    pub certificate: String,
    /// When this node saw the verdict, ms since the epoch.
    pub decided_at_ms: u64,
}

/// One task as this node knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskRecord {
    /// Task id, hex.
    pub id: String,
    /// ABI-encoded spec, hex.
    pub spec: String,
    /// Inline input, hex.
    pub input: String,
    /// Program CID.
    pub program: String,
    /// Replication factor.
    pub replicas: u16,
    /// Status.
    pub status: TaskStatus,
    /// The primary committee (peer ids).
    pub committee: Vec<String>,
    /// The escalation committee, when there was one.
    #[serde(default)]
    pub escalation_committee: Vec<String>,
    /// This node's own output, hex, if it executed the task.
    #[serde(default)]
    pub own_output: Option<String>,
    /// Verdict, when reached.
    #[serde(default)]
    pub verdict: Option<VerdictRecord>,
    /// Whether members revealed different results (failed tasks).
    #[serde(default)]
    pub nondeterministic: bool,
    /// Why the task was rejected or failed locally.
    #[serde(default)]
    pub error: Option<String>,
    /// First seen, ms since the epoch.
    pub seen_at_ms: u64,
    /// Final outcome per member ("agreed", "dissented", "silent", ...).
    #[serde(default)]
    pub outcomes: Vec<(String, String)>,
}

impl TaskRecord {
    /// Whether the task has ended.
    pub fn is_final(&self) -> bool {
        matches!(
            self.status,
            TaskStatus::Verified | TaskStatus::Failed | TaskStatus::Rejected
        )
    }
}

/// A [`PersistedVote`] in JSON-friendly form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoteRecord {
    task: String,
    r: usize,
    capability: Option<String>,
    round: u8,
    result: String,
    salt: String,
    cid: String,
    round_started_at: u64,
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

impl VoteRecord {
    /// From the consensus type.
    pub fn from_vote(v: &PersistedVote) -> Self {
        Self {
            task: hex::encode(v.task.0),
            r: v.params.r,
            capability: v.params.capability.clone(),
            round: v.round.as_u8(),
            result: hex::encode(v.result.0),
            salt: hex::encode(v.salt.0),
            cid: hex::encode(v.cid.as_bytes()),
            round_started_at: v.round_started_at,
        }
    }

    /// Back to the consensus type; `None` if the record is corrupt.
    pub fn to_vote(&self) -> Option<PersistedVote> {
        Some(PersistedVote {
            task: TaskId(unhex32(&self.task)?),
            params: TaskParams {
                r: self.r,
                capability: self.capability.clone(),
            },
            round: Round::from_u8(self.round)?,
            result: ResultHash(unhex32(&self.result)?),
            salt: Salt(unhex32(&self.salt)?),
            cid: Cid::new(hex::decode(&self.cid).ok()?)?,
            round_started_at: self.round_started_at,
        })
    }
}
