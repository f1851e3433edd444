//! Task types: submission, the task record a node keeps and shows, the
//! certificate check, reputation.
//!
//! [`TaskRecord`] is also what the node stores (one JSON record per task),
//! so its JSON is both the wire and the on-disk format: fields added later
//! carry `#[serde(default)]` so older records still decode.

use serde::{Deserialize, Serialize};

/// Body of `POST /v1/tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitTask {
    /// Program CID.
    pub program: String,
    /// Input bytes, hex.
    pub input_hex: String,
    /// Replication factor (>= 3).
    pub replicas: u16,
    /// Fuel limit per execution.
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Nonce, so identical work can be submitted twice (default: random).
    #[serde(default)]
    pub nonce: Option<u64>,
    /// Chain mode: the fee to escrow, in token base units (decimal string);
    /// default the market's minimum fee.
    #[serde(default)]
    pub fee: Option<String>,
}

/// Answer of `POST /v1/tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    /// Task id, hex.
    pub id: String,
    /// Chain mode: the `postTask` transaction.
    #[serde(default)]
    pub tx: Option<String>,
    /// Chain mode: the escrowed fee, base units.
    #[serde(default)]
    pub fee: Option<String>,
    /// Chain mode: the committee (operator addresses); empty when posted,
    /// as protocol v1.1 draws it later from the hash of `draw_block`.
    #[serde(default)]
    pub committee: Vec<String>,
    /// Chain mode: the block whose hash draws the committee.
    #[serde(default)]
    pub draw_block: Option<u64>,
}

/// Query of `GET /v1/tasks/{id}`: `?wait_ms=N` waits up to N ms (the node
/// caps it) for the task to end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskQuery {
    /// Milliseconds to wait for the task to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// Status of a task as seen by one node.
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
    /// 65-byte EIP-712 `Result` signature, hex.
    pub signature: String,
    /// Salts offered for the member's on-chain commitment (protocol v1.1),
    /// hex: the salt is not under the signature, so a copy altered in
    /// transit may arrive first; the relayer keeps up to 4 and uses the one
    /// that opens the commitment the chain stored.
    #[serde(default)]
    pub salts: Vec<String>,
}

/// Two signed results of one member for one task: an equivocation proof.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EquivocationRecord {
    /// 0 primary committee, 1 escalation committee.
    pub round: u8,
    /// The member.
    pub signer: String,
    /// The first signed result seen.
    pub first: AttestRecord,
    /// A second one, over another (result, CID).
    pub second: AttestRecord,
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
    /// requested, drawn, verdict, challenged, escalating, finalized, refunded.
    pub status: String,
    /// Block whose hash draws the committee (or the escalation), protocol v1.1.
    #[serde(default)]
    pub draw_block: Option<u64>,
    /// End of the current commit phase, chain time (s).
    #[serde(default)]
    pub commit_end: Option<u64>,
    /// End of the current reveal phase, chain time (s).
    #[serde(default)]
    pub reveal_end: Option<u64>,
    /// Members whose commitment the chain recorded (addresses, both rounds).
    #[serde(default)]
    pub committed: Vec<String>,
    /// Equivocations seen (two signed results of one member).
    #[serde(default)]
    pub equivocations: Vec<EquivocationRecord>,
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

/// One task as a node knows it (`GET /v1/tasks/{id}`, `GET /v1/tasks`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskRecord {
    /// Task id, hex.
    pub id: String,
    /// ABI-encoded spec, hex (empty in listings).
    pub spec: String,
    /// Inline input, hex (empty in listings).
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

/// Answer of `GET /v1/tasks/{id}/verify`: a task's certificate checked by
/// the answering node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Task id.
    pub task: String,
    /// Round of the certificate.
    pub round: String,
    /// Verified result hash.
    pub result: String,
    /// Output CID.
    pub output_cid: String,
    /// Members whose signatures were checked.
    pub signers: Vec<String>,
    /// Quorum required.
    pub quorum: usize,
    /// Whether the output bytes, if this node has them, hash to the result.
    pub output_matches: Option<bool>,
}

/// One entry of `GET /v1/reputation`: a peer id and its score, on the wire
/// a two-element array `["12D3Koo...", 5]`.
pub type ReputationEntry = (String, u32);
