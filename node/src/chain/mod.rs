//! Chain mode (protocol v1.1, `docs/protocol-v1.1.md`): tasks requested by
//! `postTask`, committees drawn later from a future block hash, commitments
//! stored on chain before any result is shared, reveals gossiped after the
//! commit phase and relayed to the chain, settlement through a persistent
//! outbox.
//!
//! - [`client`]: connecting the operator's market client (CLI and node).
//! - [`link`]: the market client with the operator key, and the registry's
//!   operator -> PeerId map.
//! - [`attest`]: the reveals (with EIP-712 `Result` signatures) members
//!   gossip once the commit phase closed.
//! - [`binding`]: PeerId bindings signed by the libp2p key, checked here.
//! - [`members`]: the registry's neurons, which the gossip validators
//!   check signers against in chain mode.
//! - [`outbox`]: owed transactions, stored first, carried out by one worker.
//! - [`watch`]: runs `hal9_market::Watcher` (confirmations, reorgs) and
//!   emits [`ChainInput`]s on its own channel; it never imports the engine.

pub mod attest;
pub mod binding;
pub mod client;
mod config;
pub mod link;
pub mod members;
pub mod outbox;
pub mod watch;

pub use attest::{ATTEST_TOPIC, Attestation};
pub use config::ChainConfig;
pub use link::ChainLink;
pub use outbox::{
    Action, EquivocationProof, Outbox, OutboxEntry, OutboxMetrics, RevealCandidate,
    SettlementPayload, SettlementSource,
};

use alloy::primitives::{Address, B256, U256};
use hal9_consensus::TaskId;
use hal9_p2p::PeerId;

/// What the watcher tells the engine (committees already resolved to PeerIds).
#[derive(Debug, Clone)]
pub enum ChainInput {
    /// `TaskPosted`: the task is requested; its committee is drawn later
    /// from the hash of `draw_block`.
    Posted {
        /// Task id.
        task: TaskId,
        /// ABI-encoded spec.
        spec: Vec<u8>,
        /// Escrowed fee.
        fee: U256,
        /// Block whose hash draws the committee.
        draw_block: u64,
        /// Block it was posted in.
        block: u64,
    },
    /// `DrawRetargeted`: the draw block was moved (hash gone, epoch ended).
    Retargeted {
        /// Task id.
        task: TaskId,
        /// The new draw block.
        draw_block: u64,
    },
    /// `CommitteeDrawn` (primary) or `EscalationDrawn` (escalation).
    Drawn {
        /// Task id.
        task: TaskId,
        /// Members in draw order (`None`: the member's PeerId binding does
        /// not verify; it is absent).
        members: Vec<(Address, Option<PeerId>)>,
        /// Commit phase end, chain time.
        commit_end: u64,
        /// Reveal phase end, chain time.
        reveal_end: u64,
        /// Whether this is the escalation committee of a challenge.
        escalation: bool,
    },
    /// `Committed`: the chain stored a member's commitment.
    Committed {
        /// Task id.
        task: TaskId,
        /// The member.
        member: Address,
    },
    /// `VerdictSubmitted`.
    Verdict {
        /// Task id.
        task: TaskId,
        /// Settled result.
        result: B256,
        /// Output CID (binary).
        cid: Vec<u8>,
        /// Committee positions whose reveals match the verdict.
        majority: U256,
        /// Committee positions whose reveals differ.
        minority: U256,
    },
    /// `RevealsAdded` (the masks after the addition).
    RevealsAdded {
        /// Task id.
        task: TaskId,
        /// Majority positions.
        majority: U256,
        /// Minority positions.
        minority: U256,
    },
    /// `Challenged`: an escalation committee is drawn later from `draw_block`.
    Challenged {
        /// Task id.
        task: TaskId,
        /// Who challenged.
        challenger: Address,
        /// Block whose hash draws the escalation committee.
        draw_block: u64,
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
    /// `Equivocation`: a member was proven to have signed two results.
    Equivocation {
        /// Task id.
        task: TaskId,
        /// The member slashed.
        member: Address,
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
    /// The timestamp of the newest block (the contract's clock): commit
    /// phases end by it, not by the node's clock.
    ChainTime(u64),
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
