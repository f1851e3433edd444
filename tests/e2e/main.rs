//! End-to-end tests over real `hal9` processes on 127.0.0.1.

mod chain;
mod chain_cli;
mod consensus;
mod content;
mod devnet;
mod errors;
mod exec;
mod forged;
mod gossip;
mod harness;
mod malicious;
mod restart;
