//! The hal9 node: configuration, store, control API, and the wiring of all services.
//!
//! The `hal9` binary (`main.rs`) is a thin clap front-end over this library;
//! the devnet and the end-to-end tests drive real node processes through
//! [`devnet`] and the `hal9-api` client ([`home::Home::api_client`]).

pub mod api;
pub mod api_tasks;
pub mod bench;
pub mod chain;
pub mod chain_client;
pub mod cli;
pub mod config;
pub mod content_api;
pub mod devchain;
pub mod devnet;
pub mod engine;
pub mod home;
pub mod notes;
pub mod retention;
pub mod runtime;
pub mod store;
pub mod testnet;
