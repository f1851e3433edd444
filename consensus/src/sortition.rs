//! The on-chain committee draw of protocol v1.1: a 4-ary sum tree of fixed
//! depth 8 (65,536 leaves), drawn without replacement, bit for bit as
//! `contracts/src/SortitionTree.sol` and `NeuronRegistry.drawMembers`
//! (shared vectors in `vectors/tree.json`, docs/protocol-v1.1.md):
//!
//! ```text
//! remaining = total
//! for attempt i:
//!     x = uint256(keccak256(seed ++ uint256_be(i))) mod remaining
//!     node = root
//!     for depth d in 1..=8:
//!         for lane in 0..4: w = sum(child lane) - weights already drawn below it
//!             if x < w or lane == 3: descend; else x -= w
//!     remaining -= weight of the leaf reached
//! ```
//!
//! Leaves are indexed by slot (the registry's leaf index, reused after a
//! removal), not by registration order.

use crate::committee::u256_mod;
use crate::error::CommitteeError;
use crate::types::keccak256;

/// Levels below the root.
pub const DEPTH: u32 = 8;
/// Most leaves a tree holds.
pub const CAPACITY: usize = 1 << (2 * DEPTH);
/// Heaviest leaf (so no 64-bit lane of the contract overflows).
pub const MAX_LEAF_WEIGHT: u64 = (1 << 48) - 1;

/// A sum tree over leaf slots `0..leaves.len()`.
#[derive(Debug, Clone)]
pub struct SumTree {
    /// levels[d-1][j]: sum of node j at depth d (depth 8 = the leaves).
    levels: Vec<Vec<u128>>,
}

impl SumTree {
    /// Builds the tree from the weight of every slot (0 = empty slot).
    pub fn new(leaves: &[u64]) -> Result<Self, CommitteeError> {
        if leaves.len() > CAPACITY {
            return Err(CommitteeError::NotEnoughCandidates {
                needed: leaves.len(),
                available: CAPACITY,
            });
        }
        if leaves.iter().any(|w| *w > MAX_LEAF_WEIGHT) {
            return Err(CommitteeError::WeightOverflow);
        }
        let mut levels = vec![Vec::new(); DEPTH as usize];
        levels[DEPTH as usize - 1] = leaves.iter().map(|w| u128::from(*w)).collect();
        for d in (1..DEPTH as usize).rev() {
            let below = &levels[d];
            let sums = below.chunks(4).map(|c| c.iter().sum()).collect();
            levels[d - 1] = sums;
        }
        Ok(Self { levels })
    }

    /// Sum of all leaves.
    pub fn total(&self) -> u128 {
        self.levels[0].iter().sum()
    }

    fn sum_at(&self, depth: u32, j: usize) -> u128 {
        self.levels[depth as usize - 1].get(j).copied().unwrap_or(0)
    }

    /// The leaf under point `x`, skipping the leaves already drawn
    /// (`drawn`: slot and weight). Returns the slot and its weight.
    pub fn pick(&self, mut x: u128, drawn: &[(usize, u128)]) -> (usize, u128) {
        let mut node = 0usize; // index within its depth
        let mut w = 0;
        for d in 1..=DEPTH {
            let shift = 2 * (DEPTH - d);
            let mut child = 4 * node;
            for lane in 0..4 {
                w = self.sum_at(d, child);
                for (slot, dw) in drawn {
                    if slot >> shift == child {
                        w -= dw;
                    }
                }
                if x < w || lane == 3 {
                    break;
                }
                x -= w;
                child += 1;
            }
            node = child;
        }
        (node, w)
    }

    /// Draws `r` distinct slots for which `accept` holds, with at most
    /// `max_attempts` attempts (the registry uses 4r + excluded); rejected
    /// slots are set aside like drawn ones. Fails when that yields fewer
    /// than `r`.
    pub fn draw(
        &self,
        seed: &[u8; 32],
        r: usize,
        max_attempts: usize,
        mut accept: impl FnMut(usize) -> bool,
    ) -> Result<Vec<usize>, CommitteeError> {
        let mut remaining = self.total();
        let mut drawn: Vec<(usize, u128)> = Vec::with_capacity(max_attempts.min(1024));
        let mut got = Vec::with_capacity(r);
        let mut i = 0;
        while i < max_attempts && got.len() < r && remaining != 0 {
            let mut idx = [0u8; 32];
            idx[24..].copy_from_slice(&(i as u64).to_be_bytes());
            let x = u256_mod(&keccak256(&[seed, &idx]), remaining);
            let (slot, w) = self.pick(x, &drawn);
            drawn.push((slot, w));
            remaining -= w;
            if accept(slot) {
                got.push(slot);
            }
            i += 1;
        }
        if got.len() < r {
            return Err(CommitteeError::NotEnoughCandidates {
                needed: r,
                available: got.len(),
            });
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_distinct_weighted_slots() {
        let leaves: Vec<u64> = (0..50)
            .map(|i| if i % 7 == 0 { 0 } else { i + 1 })
            .collect();
        let t = SumTree::new(&leaves).unwrap();
        let got = t.draw(&[7u8; 32], 10, 40, |_| true).unwrap();
        let mut s = got.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 10);
        assert!(got.iter().all(|g| leaves[*g] > 0));
    }

    #[test]
    fn rejected_slots_are_not_returned_and_budget_is_bounded() {
        let t = SumTree::new(&[5, 5, 5, 5]).unwrap();
        let got = t.draw(&[1u8; 32], 2, 8, |s| s != 0).unwrap();
        assert!(!got.contains(&0));
        assert!(t.draw(&[1u8; 32], 3, 8, |s| s == 0).is_err());
    }

    #[test]
    fn too_heavy_leaf_is_refused() {
        assert!(SumTree::new(&[MAX_LEAF_WEIGHT + 1]).is_err());
    }
}
