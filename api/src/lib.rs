//! The control API of a hal9 node: the JSON types its HTTP routes take and
//! return, the route paths, the error body, the `api.json` file a running
//! node writes, and [`ApiClient`], a typed client over HTTP.
//!
//! The node's axum handlers and every client (the `hal9` CLI, the devnet,
//! the end-to-end tests, later the gateway and the MCP server) share these
//! types, so a change of the wire is a change of this crate and its fixed
//! JSON tests fail. The crate depends on no other hal9 crate: ids, CIDs and
//! hashes are plain strings (hex or multibase) here, and the node converts
//! its rich types at the boundary (ADR 0070).
//!
//! ```no_run
//! # async fn demo() -> Result<(), hal9_api::Error> {
//! let client = hal9_api::ApiClient::new("http://127.0.0.1:4691".into(), "token".into());
//! let status = client.status().await?;
//! println!("{} has {} peers", status.peer_id, status.connected_peers);
//! # Ok(()) }
//! ```

mod client;
mod content;
mod error;
mod node;
pub mod routes;
mod tasks;

pub use client::{ApiClient, DEFAULT_MAX_BODY, DEFAULT_TIMEOUT};
pub use content::{AddQuery, Added, ContentListing, ContentStats, FetchQuery, GcReport, PinEntry};
pub use error::{Error, ErrorBody};
pub use node::{ApiInfo, PeerInfo, PublishNote, Published, ReceivedNote, Status};
pub use tasks::{
    AttestRecord, ChainRecord, EquivocationRecord, ReputationEntry, SettlementRecord, SubmitTask,
    Submitted, TaskQuery, TaskRecord, TaskStatus, VerdictRecord, VerifyReport,
};

#[cfg(test)]
mod tests;
