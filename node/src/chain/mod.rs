//! Chain mode: committees from `postTask` events, EIP-712 attestations,
//! and settlement through a persistent outbox.
//!
//! - [`client`]: connecting the operator's market client (CLI and node).
//! - [`link`]: the market client with the operator key, and the registry's
//!   operator -> PeerId map.
//! - [`attest`]: the attestations members gossip when they reveal.
//! - [`members`]: the registry's neurons, which the gossip validators
//!   check signers against in chain mode.
//! - [`outbox`]: owed transactions, stored first, carried out by one worker.
//! - [`watch`]: runs `hal9_market::Watcher` (confirmations, reorgs) and
//!   emits [`ChainInput`]s on its own channel; it never imports the engine.

pub mod attest;
pub mod client;
pub mod link;
pub mod members;
pub mod outbox;
pub mod watch;

pub use attest::{ATTEST_TOPIC, Attestation};
pub use link::ChainLink;
pub use outbox::{Action, Outbox, OutboxEntry, OutboxMetrics, SettlementPayload};

use alloy::primitives::{Address, B256, U256};
use hal9_consensus::TaskId;
use hal9_p2p::PeerId;

/// What the watcher tells the engine (committees already resolved to PeerIds).
#[derive(Debug, Clone)]
pub enum ChainInput {
    /// `TaskPosted`.
    Posted {
        /// Task id.
        task: TaskId,
        /// ABI-encoded spec.
        spec: Vec<u8>,
        /// Escrowed fee.
        fee: U256,
        /// Committee in draw order (`None`: the member's registered
        /// PeerId does not parse; it is absent).
        committee: Vec<(Address, Option<PeerId>)>,
        /// Block it was posted in.
        block: u64,
    },
    /// `VerdictSubmitted`.
    Verdict {
        /// Task id.
        task: TaskId,
        /// Settled result.
        result: B256,
        /// Output CID (binary).
        cid: Vec<u8>,
        /// Committee positions paid as the majority.
        majority: U256,
    },
    /// `Challenged`.
    Challenged {
        /// Task id.
        task: TaskId,
        /// Escalation committee in draw order (`None`: absent member).
        escalation: Vec<(Address, Option<PeerId>)>,
    },
    /// `EscalationVerdict`.
    EscalationVerdict {
        /// Task id.
        task: TaskId,
        /// The escalation committee's result.
        result: B256,
        /// Whether it upheld the first verdict.
        upheld: bool,
        /// Output CID (binary).
        cid: Vec<u8>,
    },
    /// `Finalized`.
    Finalized {
        /// Task id.
        task: TaskId,
        /// Burned.
        burned: U256,
        /// To the treasury.
        to_treasury: U256,
        /// Per majority member.
        per_member: U256,
        /// Slashed.
        slashed: U256,
    },
    /// `Refunded`.
    Refunded {
        /// Task id.
        task: TaskId,
    },
    /// `ParamsUpdated` (a governance change took effect).
    ParamsUpdated {
        /// burnBps.
        burn_bps: u16,
        /// treasuryBps.
        treasury_bps: u16,
    },
    /// The chain was reorganised: what was derived from blocks after `fork`
    /// is unconfirmed; the events of the new branch follow, then a cursor.
    Reorged {
        /// Newest block shared by the old and the new branch.
        fork: u64,
    },
    /// A market event the engine has nothing to do for.
    Noted,
    /// Everything up to here is processed: persist the watcher's cursor.
    Cursor(Vec<u8>),
}

/// Id of the consensus instance that re-executes a challenged task.
pub fn challenge_instance(task: &TaskId) -> TaskId {
    TaskId(hal9_consensus::keccak256(&[b"hal9/challenge/1", &task.0]))
}
