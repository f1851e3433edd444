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
    /// Chain mode: seen on one side only (the gossiped input or the
    /// `TaskPosted` event); starts when both are here.
    AwaitingChain,
}

/// One member's EIP-712 attestation, as collected for settlement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttestRecord {
    /// 0 primary committee, 1 escalation committee.
    pub round: u8,
    /// Operator address.
    pub signer: String,
    /// Result hash, hex.
    pub result: String,
    /// Binary output CID, hex.
    pub cid: String,
    /// 65-byte signature, hex.
    pub signature: String,
}

/// What the chain says about a task (chain mode).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ChainRecord {
    /// Committee operator addresses, in draw order.
    pub committee: Vec<String>,
    /// Escalation committee of a challenge, in draw order.
    #[serde(default)]
    pub escalation: Vec<String>,
    /// Escrowed fee, in token base units.
    pub fee: String,
    /// posted, verdict, challenged, finalized, refunded.
    pub status: String,
    /// Result hash settled on chain, hex.
    #[serde(default)]
    pub result: Option<String>,
    /// Attestations collected from members.
    #[serde(default)]
    pub attestations: Vec<AttestRecord>,
    /// For a challenge's re-execution: the challenged task id, hex.
    #[serde(default)]
    pub parent: Option<String>,
    /// Settlement figures once finalized.
    #[serde(default)]
    pub settlement: Option<SettlementRecord>,
    /// Transactions this node sent for the task (action, hash).
    #[serde(default)]
    pub txs: Vec<(String, String)>,
    /// Whether the escalation committee of a challenge upheld the verdict.
    #[serde(default)]
    pub escalation_upheld: Option<bool>,
    /// Block the task was posted in (to undo it after a reorganisation).
    #[serde(default)]
    pub block: Option<u64>,
}

/// The `Finalized` event's figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettlementRecord {
    /// Tokens burned.
    pub burned: String,
    /// Tokens to the treasury.
    pub to_treasury: String,
    /// Paid to each majority member.
    pub per_member: String,
    /// Stake slashed from dissenting or silent members.
    pub slashed: String,
    /// Whether a challenge overturned the first verdict.
    pub overturned: bool,
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
    /// Chain mode: what the chain says.
    #[serde(default)]
    pub chain: Option<ChainRecord>,
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
    /// The committee fixed on chain (chain mode), peer ids.
    #[serde(default)]
    committee: Option<Vec<String>>,
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
            committee: v
                .params
                .committee
                .as_ref()
                .map(|c| c.iter().map(|p| p.to_string()).collect()),
        }
    }

    /// Back to the consensus type; `None` if the record is corrupt.
    pub fn to_vote(&self) -> Option<PersistedVote> {
        Some(PersistedVote {
            task: TaskId(unhex32(&self.task)?),
            params: TaskParams {
                r: self.r,
                capability: self.capability.clone(),
                committee: match &self.committee {
                    Some(c) => Some(
                        c.iter()
                            .map(|p| p.parse().ok())
                            .collect::<Option<Vec<_>>>()?,
                    ),
                    None => None,
                },
            },
            round: Round::from_u8(self.round)?,
            result: ResultHash(unhex32(&self.result)?),
            salt: Salt(unhex32(&self.salt)?),
            cid: Cid::new(hex::decode(&self.cid).ok()?)?,
            round_started_at: self.round_started_at,
        })
    }
}
