//! hal9 Proof-of-Computation core.
//!
//! - [`Driver`] / [`TaskState`]: the pure commit/reveal state machine,
//!   `apply(input) -> Vec<Effect>`, no clock, I/O or randomness inside;
//! - [`committee`]: weighted sortition shared bit for bit with the contracts;
//! - [`wire`]: signed vote batches and task announcements, their codec and
//!   the network's validation step;
//! - [`Certificate`]: q signed reveals any node can check alone;
//! - [`reputation`]: integer EWMA of outcomes;
//! - [`bench`](mod@bench): throughput figures for `hal9 bench`.

pub mod bench;
pub mod certificate;
pub mod committee;
pub mod driver;
pub mod error;
pub mod metrics;
pub mod reputation;
pub mod sortition;
pub mod task;
#[cfg(any(test, feature = "test-utils"))]
pub mod testkit;
pub mod types;
pub mod wire;

pub use certificate::{Certificate, CertifiedVote, TaskParams, VerifiedCertificate};
pub use committee::{Genesis, GenesisValidator, Validator, ValidatorSet};
pub use driver::{Driver, Input};
pub use error::{CertificateError, CommitteeError, DecodeError, TaskError, VerifyError};
pub use metrics::Metrics;
pub use reputation::{Outcome, ReputationBook, ReputationChange, ReputationParams};
pub use task::{
    Config, Effect, Evidence, PersistedVote, TaskInput, TaskState, TaskStatus, Timer, TimerKind,
    Verdict,
};
pub use types::{Cid, Commitment, ResultHash, Round, Salt, TaskId, keccak256, quorum};
pub use wire::{
    CommitVote, RevealVote, SignedVote, TaskAnnouncement, ValidationAction, VerifiedBatch,
    VoteBatch, VoteItem, validate_vote_message,
};
