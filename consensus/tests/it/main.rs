//! Integration tests of hal9-consensus.
#![allow(unreachable_pub)]

mod codec;
mod driver;
mod fuzz_driver;
mod harness;
mod sim;
mod simulation;
mod steps;
mod tree_vectors;
mod vectors;
