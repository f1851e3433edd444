//! Developer tooling, never used by a running node: a dev chain on anvil
//! with the contracts deployed ([`devchain`]), a devnet of node processes
//! ([`devnet`]), an in-process test network ([`testnet`]) and the
//! benchmarks of `hal9 bench` ([`bench`]).

pub mod bench;
pub mod devchain;
pub mod devnet;
pub mod testnet;
