//! Error types of the consensus crate.
//!
//! Every error names what was expected and what was found, so a log line is
//! enough to tell a malformed peer from a local misconfiguration.

use libp2p_identity::PeerId;
use thiserror::Error;

use crate::types::{Round, TaskId};

/// Failure to draw a committee.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommitteeError {
    /// Fewer candidates with a non-zero weight than seats to fill.
    #[error("expected at least {needed} candidates with non-zero weight, found {available}")]
    NotEnoughCandidates {
        /// Seats to fill.
        needed: usize,
        /// Candidates with a non-zero weight.
        available: usize,
    },
    /// The sum of the weights does not fit in 128 bits.
    #[error("expected the total candidate weight to fit in 128 bits, it overflows")]
    WeightOverflow,
    /// A task with a committee fixed elsewhere (on chain) has no local
    /// escalation round.
    #[error("a committee fixed on chain has no local escalation round")]
    NoEscalation,
    /// A committee given from outside does not fit the task.
    #[error("expected a fixed committee of {expected} distinct members, found {found}")]
    BadFixedCommittee {
        /// Replication factor.
        expected: usize,
        /// Distinct members found.
        found: usize,
    },
    /// The same peer appears twice in a validator set.
    #[error("expected distinct validators, found {peer} twice")]
    DuplicateValidator {
        /// The repeated peer.
        peer: PeerId,
    },
    /// A genesis entry could not be parsed.
    #[error("invalid genesis entry {index}: {reason}")]
    InvalidGenesis {
        /// Position of the entry in the genesis list.
        index: usize,
        /// What was wrong with it.
        reason: String,
    },
    /// Too many validators for the in-memory set.
    #[error("expected at most {max} validators, found {found}")]
    TooManyValidators {
        /// Upper bound.
        max: usize,
        /// Number given.
        found: usize,
    },
}

/// Why bytes from the network could not be decoded.
///
/// The network must treat the two kinds differently: an unsupported version
/// comes from a newer (or older) honest node and is ignored without penalty;
/// a malformed message is rejected and its sender penalised.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The version field names a format this node does not speak.
    #[error("unsupported {kind} version: expected {supported}, found {found}")]
    UnsupportedVersion {
        /// Message kind ("vote batch", "task announcement", ...).
        kind: &'static str,
        /// Version this node speaks.
        supported: u16,
        /// Version found in the message.
        found: u16,
    },
    /// The bytes do not form a valid message of the supported version.
    #[error("malformed {kind}: {detail}")]
    Malformed {
        /// Message kind.
        kind: &'static str,
        /// What was expected and what was found.
        detail: String,
    },
}

impl DecodeError {
    /// Whether the sender should be penalised (true for malformed input,
    /// false for an unsupported version).
    pub fn is_penalised(&self) -> bool {
        matches!(self, DecodeError::Malformed { .. })
    }
}

/// Failure to check the signature and inclusion proof of votes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// The signer's PeerId does not embed an ed25519 public key.
    #[error("expected a PeerId that embeds an ed25519 public key, found {peer}")]
    NoPublicKey {
        /// The signer.
        peer: PeerId,
    },
    /// The signature does not verify under the signer's key.
    #[error("signature of {peer} (seq {seq}) does not verify")]
    BadSignature {
        /// Claimed signer.
        peer: PeerId,
        /// Sequence number of the batch.
        seq: u64,
    },
    /// The inclusion proof of a vote does not lead to a signed root.
    #[error("inclusion proof invalid: {detail}")]
    BadProof {
        /// What was expected and found.
        detail: String,
    },
    /// Signing failed locally.
    #[error("signing failed: {0}")]
    Signing(String),
    /// A batch to sign holds too many items.
    #[error("expected at most {max} items in a vote batch, found {found}")]
    TooManyItems {
        /// Upper bound.
        max: usize,
        /// Items given.
        found: usize,
    },
    /// A field of a vote to sign is out of bounds.
    #[error("vote field out of bounds: {detail}")]
    FieldTooLarge {
        /// What was expected and found.
        detail: String,
    },
}

/// Why a verdict certificate is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    /// The committee could not be derived.
    #[error("cannot derive the committee of task {task} round {round}: {source}")]
    Committee {
        /// Task.
        task: TaskId,
        /// Round.
        round: Round,
        /// Cause.
        source: CommitteeError,
    },
    /// A vote in the certificate is not correctly signed.
    #[error("vote of {peer} is not authentic: {source}")]
    Unsigned {
        /// Signer claimed.
        peer: PeerId,
        /// Cause.
        source: Box<VerifyError>,
    },
    /// A signer is not in the committee.
    #[error("expected a member of the committee of task {task} round {round}, found {peer}")]
    NotMember {
        /// Task.
        task: TaskId,
        /// Round.
        round: Round,
        /// Signer.
        peer: PeerId,
    },
    /// A signer appears twice.
    #[error("expected distinct signers, found {peer} twice")]
    DuplicateSigner {
        /// Signer.
        peer: PeerId,
    },
    /// A vote is about a different task, round or kind than expected.
    #[error("vote of {peer} does not fit the certificate: {detail}")]
    WrongVote {
        /// Signer.
        peer: PeerId,
        /// What was expected and found.
        detail: String,
    },
    /// A reveal does not open its commit.
    #[error("reveal of {peer} does not match its commit")]
    CommitMismatch {
        /// Signer.
        peer: PeerId,
    },
    /// Not enough matching votes.
    #[error("expected at least {quorum} matching reveals, found {found}")]
    NoQuorum {
        /// Quorum of the round.
        quorum: usize,
        /// Matching reveals found.
        found: usize,
    },
}

/// Why a task could not be started.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TaskError {
    /// Replication factor outside the allowed range.
    #[error("expected a replication factor between {min} and {max}, found {found}")]
    BadReplication {
        /// Lower bound.
        min: usize,
        /// Upper bound.
        max: usize,
        /// Value given.
        found: usize,
    },
    /// Capability name too long.
    #[error("expected a capability name of at most {max} bytes, found {found}")]
    BadCapability {
        /// Upper bound.
        max: usize,
        /// Length given.
        found: usize,
    },
    /// The committee could not be drawn.
    #[error("committee draw failed: {0}")]
    Committee(#[from] CommitteeError),
    /// The driver tracks as many unfinished tasks as it may.
    #[error("expected fewer than {max} unfinished tasks, found {max}; new task refused")]
    Capacity {
        /// Bound on tracked tasks.
        max: usize,
    },
}
