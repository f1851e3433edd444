//! hal9-market: the economics of hal9 and its chain client.
//!
//! - [`economics`]: lock multipliers, effective stake, quorum, fee split,
//!   slashing and the halving emission schedule, in integers, mirrored from
//!   the contracts.
//! - [`eip712`]: task ids and the EIP-712 `Result`s committee members sign.
//! - [`commit`]: commitments, reveals and the peer-binding message (protocol v1.1).
//! - [`bindings`]: alloy `sol!` bindings over the committed contract artifacts.
//! - [`deploy`]: deploying and wiring the contracts; the deployment JSON.
//! - [`client`]: typed, receipt-checked calls to a deployment.
//! - [`governance`]: DAO proposals, votes, queueing and execution.
//! - [`keys`]: operator key files (encrypted keystore, plaintext devnet).
//! - [`revert`]: contract reverts decoded into words.
//! - [`units`]: exact decimal HAL9 amounts.
//! - [`watch`]: follows the market's events with confirmations and reorg handling.
//! - [`metrics`]: Prometheus metrics of the client.

pub mod bindings;
pub mod client;
pub mod commit;
pub mod deploy;
pub mod economics;
pub mod eip712;
pub mod error;
pub mod governance;
pub mod keys;
pub mod metrics;
pub mod revert;
pub mod units;
pub mod watch;

pub use bindings::types::{Dissent, TaskSpec};
pub use client::{BatchOutcome, DrawOutcome, MarketClient, PostedTask, SkippedEntry, VerdictEntry};
pub use commit::{Reveal, commitment, peer_binding_message, reveal};
pub use deploy::{DeployConfig, Deployment, deploy_all};
pub use error::{MarketError, Result};
pub use metrics::Metrics;
pub use watch::{Batch, ChainEvent, Cursor, Located, Watcher};
