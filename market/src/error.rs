//! Errors of the hal9 market crate.

use alloy::primitives::Address;

/// Everything that can go wrong in the economics, signing or chain client.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    /// A parameter outside what the protocol allows.
    #[error("invalid parameter {name}: expected {expected}, found {found}")]
    InvalidParam {
        /// Parameter name.
        name: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// A transaction or call failed (RPC error or contract revert); `reason`
    /// holds the decoded revert when there is one.
    #[error("chain call {call} failed: {reason}")]
    Chain {
        /// Which contract function.
        call: &'static str,
        /// Revert or transport error.
        reason: String,
    },
    /// A mined transaction did not emit the event the call guarantees.
    #[error("expected event {expected} in the receipt of {call}, found none")]
    MissingEvent {
        /// The event.
        expected: &'static str,
        /// The call.
        call: &'static str,
    },
    /// A deployed address differs from the one the deployment predicted.
    #[error("deployment: expected {what} at {expected}, found {found}")]
    Deployment {
        /// Which contract.
        what: &'static str,
        /// Predicted address.
        expected: Address,
        /// Actual address.
        found: Address,
    },
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signature(String),
    /// Reading or writing the deployment file.
    #[error("deployment file {path}: {reason}")]
    DeploymentFile {
        /// The file.
        path: String,
        /// I/O or JSON error.
        reason: String,
    },
    /// Reading, parsing or writing an operator key file.
    #[error("operator key {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An encrypted operator key without a passphrase, or with a wrong one.
    #[error("operator key {path}: {reason}")]
    Passphrase {
        /// The keystore file.
        path: String,
        /// Missing or wrong.
        reason: String,
    },
    /// Something the caller asked for does not exist on chain (a proposal id, ...).
    #[error("not found: {0}")]
    NotFound(String),
}

impl MarketError {
    pub(crate) fn chain(call: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Chain {
            call,
            reason: err.to_string(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = MarketError> = std::result::Result<T, E>;
