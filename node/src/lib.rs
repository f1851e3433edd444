//! The hal9 node: configuration, store, control API, and the wiring of all services.
//!
//! The `hal9` binary (`main.rs`) is a thin clap front-end over this library;
//! the devnet and the end-to-end tests drive real node processes through
//! [`dev::devnet`] and the `hal9-api` client ([`home::Home::api_client`]).
//!
//! Each concept sits in the folder its name says:
//! - [`api`]: the control API's HTTP server (tasks, content, status).
//! - [`chain`]: chain mode (client and operator key, watcher, outbox,
//!   attestations, the registry's members).
//! - [`engine`]: the consensus engine (gossip, execution, effects).
//! - [`store`]: the redb store.
//! - [`node`]: [`node::NodeBuilder`] and [`node::NodeHandle`] (one node's
//!   services started in dependency order), retention, the network-event loop.
//! - [`dev`]: developer tooling (dev chain on anvil, devnet of processes,
//!   in-process test network, benchmarks), never used by a running node.
//! - [`clock`]: the leaf clock the engine is given (tests drive it).
//! - [`cli`], [`config`], [`home`], [`runtime`] (the node process: home,
//!   signals), [`notes`].
//!
//! The layers run one way (ADR 0072): `clock`/`home`/`notes` < `store` <
//! `chain` < `engine` < `api`/`config` < `node` < `runtime` < `dev` < `cli`.

pub mod api;
pub mod chain;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dev;
pub mod engine;
pub mod home;
pub mod node;
pub mod notes;
pub mod runtime;
pub mod store;
