//! Integration tests of hal9-consensus.

mod vectors;
