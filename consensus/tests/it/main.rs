//! Integration tests of hal9-consensus.
#![allow(unreachable_pub)]

mod harness;
mod steps;
mod vectors;
