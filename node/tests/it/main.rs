//! In-process multi-node tests of the consensus engine: real libp2p swarms on
//! loopback, real bitswap, real wasmtime plugins, real stores.

mod engine;
