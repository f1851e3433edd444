//! In-process multi-node tests of the consensus engine (real libp2p swarms
//! on loopback, real bitswap, real wasmtime plugins, real stores), and the
//! check that the node's layers run one way.

mod engine;
mod flood;
mod layers;
