//! Integration tests of hal9-consensus.
#![allow(unreachable_pub)]

mod codec;
mod driver;
mod harness;
mod steps;
mod vectors;
