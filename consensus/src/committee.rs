//! Committee selection by weighted sortition without replacement.
//!
//! The algorithm is shared bit for bit with the Solidity contracts (see
//! `vectors/committee.json` and ADR 0021):
//!
//! ```text
//! for i in 0..r:
//!     W = sum of the remaining weights
//!     x = uint256(keccak256(seed ++ uint256_be(i))) mod W
//!     walk the remaining candidates in order, accumulating weight;
//!     take the first whose cumulative sum is > x; remove it
//! ```
//!
//! A zero-weight candidate can never be taken (its cumulative sum equals
//! the previous one). Weights are `u128`; their total must fit in 128 bits.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use crate::error::CommitteeError;
use crate::reputation::ReputationBook;
use crate::types::{TaskId, keccak256};

/// Upper bound on validators held in one [`ValidatorSet`].
pub const MAX_VALIDATORS: usize = 100_000;

/// Seed of the i-th draw: keccak256(seed ++ i as a 32-byte big-endian integer).
fn draw_hash(seed: &[u8; 32], i: usize) -> [u8; 32] {
    let mut idx = [0u8; 32];
    idx[24..].copy_from_slice(&(i as u64).to_be_bytes());
    keccak256(&[seed, &idx])
}

/// `x mod m` where `x` is a 256-bit big-endian integer and `m > 0`.
pub fn u256_mod(x: &[u8; 32], m: u128) -> u128 {
    debug_assert!(m > 0);
    if m <= u64::MAX as u128 {
        // Limb by limb: the remainder stays below 2^64, so rem * 2^64 + limb
        // fits in 128 bits.
        let mut rem: u128 = 0;
        for chunk in x.chunks_exact(8) {
            let mut limb = [0u8; 8];
            limb.copy_from_slice(chunk);
            rem = ((rem << 64) | u64::from_be_bytes(limb) as u128) % m;
        }
        rem
    } else {
        // Bit by bit: rem < m, 2 * rem + bit < 2m < 2^129; track the carry.
        let mut rem: u128 = 0;
        for byte in x {
            for bit in (0..8).rev() {
                let b = ((byte >> bit) & 1) as u128;
                let carry = rem >> 127;
                let shifted = (rem << 1) | b;
                rem = if carry == 1 || shifted >= m {
                    shifted.wrapping_sub(m)
                } else {
                    shifted
                };
            }
        }
        rem
    }
}

/// Draw `r` distinct indices into `weights` by the shared algorithm.
///
/// Returns the indices in draw order. Fails when fewer than `r` weights are
/// non-zero or when the total weight overflows 128 bits.
pub fn draw(seed: &[u8; 32], weights: &[u128], r: usize) -> Result<Vec<usize>, CommitteeError> {
    let available = weights.iter().filter(|w| **w > 0).count();
    if available < r {
        return Err(CommitteeError::NotEnoughCandidates {
            needed: r,
            available,
        });
    }
    let mut total: u128 = 0;
    for w in weights {
        total = total
            .checked_add(*w)
            .ok_or(CommitteeError::WeightOverflow)?;
    }
    let mut remaining: Vec<usize> = (0..weights.len()).collect();
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        let x = u256_mod(&draw_hash(seed, i), total);
        let mut acc: u128 = 0;
        let mut pick = None;
        for (pos, idx) in remaining.iter().enumerate() {
            acc += weights[*idx];
            if acc > x {
                pick = Some(pos);
                break;
            }
        }
        // acc reaches `total` > x at the end of the walk, so a pick exists.
        let Some(pos) = pick else {
            return Err(CommitteeError::NotEnoughCandidates {
                needed: r,
                available: i,
            });
        };
        let idx = remaining.remove(pos);
        total -= weights[idx];
        out.push(idx);
    }
    Ok(out)
}

/// Seed of the escalation committee: keccak256(task id ++ "escalate").
pub fn escalation_seed(task: &TaskId) -> [u8; 32] {
    keccak256(&[&task.0, b"escalate"])
}

/// Size of the escalation committee for primary size `r`: 2r+1.
pub const fn escalation_size(r: usize) -> usize {
    2 * r + 1
}

/// Smallest committee consensus runs with (the replication floor).
pub const MIN_COMMITTEE: usize = 3;

/// One validator: a node that may sit on committees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Its libp2p identity.
    pub peer: PeerId,
    /// Sampling weight (stake times lock multiplier, possibly scaled by
    /// reputation).
    pub weight: u128,
    /// Capabilities it offers ("wasm", "browser", ...).
    pub capabilities: BTreeSet<String>,
}

/// The ordered list of validators every node agrees on (registry order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    /// Peer -> position, for membership checks on every vote.
    index: BTreeMap<PeerId, usize>,
}

impl ValidatorSet {
    /// Build a set; order is significant. Duplicate peers are refused.
    pub fn new(validators: Vec<Validator>) -> Result<Self, CommitteeError> {
        if validators.len() > MAX_VALIDATORS {
            return Err(CommitteeError::TooManyValidators {
                max: MAX_VALIDATORS,
                found: validators.len(),
            });
        }
        let mut index = BTreeMap::new();
        for (i, v) in validators.iter().enumerate() {
            if index.insert(v.peer, i).is_some() {
                return Err(CommitteeError::DuplicateValidator { peer: v.peer });
            }
        }
        Ok(Self { validators, index })
    }

    /// The validators in order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Whether `peer` is a validator.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.index.contains_key(peer)
    }

    /// Candidates eligible for a task needing `capability`, in order.
    fn eligible(&self, capability: Option<&str>) -> Vec<&Validator> {
        self.validators
            .iter()
            .filter(|v| capability.is_none_or(|c| v.capabilities.contains(c)))
            .collect()
    }

    /// The primary committee of `task`: `r` members drawn with seed = task id.
    pub fn committee(
        &self,
        task: &TaskId,
        r: usize,
        capability: Option<&str>,
    ) -> Result<Vec<PeerId>, CommitteeError> {
        let cands = self.eligible(capability);
        let weights: Vec<u128> = cands.iter().map(|v| v.weight).collect();
        Ok(draw(&task.0, &weights, r)?
            .into_iter()
            .map(|i| cands[i].peer)
            .collect())
    }

    /// The escalation committee of `task`: 2r+1 members (or every remaining
    /// candidate with non-zero weight when fewer, but at least
    /// [`MIN_COMMITTEE`]) drawn from the eligible candidates minus
    /// `original`, with seed = keccak256(task id ++ "escalate").
    pub fn escalation_committee(
        &self,
        task: &TaskId,
        original: &[PeerId],
        r: usize,
        capability: Option<&str>,
    ) -> Result<Vec<PeerId>, CommitteeError> {
        let cands: Vec<&Validator> = self
            .eligible(capability)
            .into_iter()
            .filter(|v| !original.contains(&v.peer))
            .collect();
        let weights: Vec<u128> = cands.iter().map(|v| v.weight).collect();
        let nonzero = weights.iter().filter(|w| **w > 0).count();
        let size = escalation_size(r).min(nonzero);
        if size < MIN_COMMITTEE {
            return Err(CommitteeError::NotEnoughCandidates {
                needed: MIN_COMMITTEE,
                available: nonzero,
            });
        }
        Ok(draw(&escalation_seed(task), &weights, size)?
            .into_iter()
            .map(|i| cands[i].peer)
            .collect())
    }

    /// A copy whose weights are scaled by reputation:
    /// `weight * rep_bps / 10000` (see [`ReputationBook::effective_weight`]).
    ///
    /// Nodes must draw with the same set, so the engine applies a
    /// reputation snapshot at agreed points (see ADR 0022), not live.
    pub fn with_reputation(&self, book: &ReputationBook) -> ValidatorSet {
        ValidatorSet {
            index: self.index.clone(),
            validators: self
                .validators
                .iter()
                .map(|v| Validator {
                    peer: v.peer,
                    weight: book.effective_weight(&v.peer, v.weight),
                    capabilities: v.capabilities.clone(),
                })
                .collect(),
        }
    }
}

/// One genesis entry as written in a config file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisValidator {
    /// Base58 PeerId.
    pub peer_id: String,
    /// Weight as a decimal string (u128 does not fit TOML/JSON integers).
    pub weight: String,
    /// Capabilities offered.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// Genesis of a standalone network: the validators, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Validators in registry order.
    pub validators: Vec<GenesisValidator>,
}

impl Genesis {
    /// Parse into a [`ValidatorSet`].
    pub fn validator_set(&self) -> Result<ValidatorSet, CommitteeError> {
        let mut out = Vec::with_capacity(self.validators.len());
        for (index, g) in self.validators.iter().enumerate() {
            let peer =
                PeerId::from_str(&g.peer_id).map_err(|e| CommitteeError::InvalidGenesis {
                    index,
                    reason: format!("expected a base58 PeerId, found {:?}: {e}", g.peer_id),
                })?;
            let weight = g
                .weight
                .parse::<u128>()
                .map_err(|e| CommitteeError::InvalidGenesis {
                    index,
                    reason: format!("expected a decimal u128 weight, found {:?}: {e}", g.weight),
                })?;
            out.push(Validator {
                peer,
                weight,
                capabilities: g.capabilities.iter().cloned().collect(),
            });
        }
        ValidatorSet::new(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_mod(x: &[u8; 32], m: u128) -> u128 {
        // Reference: Horner's rule byte by byte with 129-bit safety by
        // splitting into (hi, lo) u128 pair arithmetic through u256 emulation.
        let mut rem: u128 = 0;
        for byte in x {
            for _ in 0..8 {
                // rem * 2 mod m, done by subtraction
                rem = if rem >= m - rem {
                    rem - (m - rem)
                } else {
                    rem + rem
                };
            }
            let b = *byte as u128 % m;
            rem = if rem >= m - b { rem - (m - b) } else { rem + b };
        }
        rem
    }

    #[test]
    fn u256_mod_small_and_large_moduli() {
        let mut x = [0xffu8; 32];
        assert_eq!(u256_mod(&x, 1), 0);
        assert_eq!(u256_mod(&x, 2), 1);
        // 2^256 - 1 mod 2^64 - 1 == 0 (2^64 == 1 mod 2^64-1, four limbs of all ones)
        assert_eq!(u256_mod(&x, u64::MAX as u128), 0);
        x = [0; 32];
        x[31] = 7;
        assert_eq!(u256_mod(&x, u128::MAX), 7);
    }

    proptest! {
        #[test]
        fn u256_mod_matches_reference(x in any::<[u8; 32]>(), m in 1u128..) {
            prop_assert_eq!(u256_mod(&x, m), naive_mod(&x, m));
        }

        #[test]
        fn draw_gives_distinct_nonzero_members(
            seed in any::<[u8; 32]>(),
            weights in proptest::collection::vec(0u128..1_000_000, 1..20),
            r in 1usize..8,
        ) {
            match draw(&seed, &weights, r) {
                Ok(c) => {
                    prop_assert_eq!(c.len(), r);
                    let set: BTreeSet<_> = c.iter().collect();
                    prop_assert_eq!(set.len(), r);
                    for i in c { prop_assert!(weights[i] > 0); }
                }
                Err(CommitteeError::NotEnoughCandidates { needed, available }) => {
                    prop_assert_eq!(needed, r);
                    prop_assert!(available < r);
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }

    #[test]
    fn overflow_is_an_error() {
        let w = [u128::MAX, 1, 1];
        assert_eq!(draw(&[0; 32], &w, 1), Err(CommitteeError::WeightOverflow));
    }

    #[test]
    fn weight_biases_the_draw() {
        // One candidate with 99% of the weight is drawn first almost always.
        let w = [1u128, 99, 0];
        let mut heavy_first = 0;
        for s in 0..200u64 {
            let seed = keccak256(&[&s.to_be_bytes()]);
            let c = draw(&seed, &w, 2).unwrap();
            assert!(!c.contains(&2), "zero weight drawn");
            if c[0] == 1 {
                heavy_first += 1;
            }
        }
        assert!(heavy_first > 180, "heavy drawn first {heavy_first}/200");
    }

    #[test]
    fn escalation_excludes_original_and_shrinks_to_available() {
        let vals: Vec<Validator> = (0..8)
            .map(|i| Validator {
                peer: crate::testkit::peer(i),
                weight: 10,
                capabilities: BTreeSet::new(),
            })
            .collect();
        let set = ValidatorSet::new(vals).unwrap();
        let task = TaskId([9; 32]);
        let c = set.committee(&task, 3, None).unwrap();
        let e = set.escalation_committee(&task, &c, 3, None).unwrap();
        assert_eq!(e.len(), 5, "2r+1 = 7 wanted, 5 remain");
        assert!(e.iter().all(|p| !c.contains(p)));
        let tiny = ValidatorSet::new(set.validators()[..4].to_vec()).unwrap();
        let c = tiny.committee(&task, 3, None).unwrap();
        assert!(matches!(
            tiny.escalation_committee(&task, &c, 3, None),
            Err(CommitteeError::NotEnoughCandidates {
                needed: 3,
                available: 1
            })
        ));
    }

    #[test]
    fn capability_filters_candidates() {
        let mut vals = Vec::new();
        for i in 0..6 {
            let mut caps = BTreeSet::new();
            if i % 2 == 0 {
                caps.insert("browser".to_string());
            }
            vals.push(Validator {
                peer: crate::testkit::peer(i),
                weight: 5,
                capabilities: caps,
            });
        }
        let set = ValidatorSet::new(vals).unwrap();
        let c = set.committee(&TaskId([1; 32]), 3, Some("browser")).unwrap();
        for p in c {
            let i = set.validators().iter().position(|v| v.peer == p).unwrap();
            assert_eq!(i % 2, 0);
        }
        assert!(set.committee(&TaskId([1; 32]), 4, Some("browser")).is_err());
    }

    #[test]
    fn genesis_parses_and_rejects_bad_entries() {
        let p = crate::testkit::peer(1).to_base58();
        let g = Genesis {
            validators: vec![GenesisValidator {
                peer_id: p.clone(),
                weight: "79228162514264337593543950336".into(),
                capabilities: vec!["wasm".into()],
            }],
        };
        let set = g.validator_set().unwrap();
        assert_eq!(set.validators()[0].weight, 1u128 << 96);
        let bad = Genesis {
            validators: vec![GenesisValidator {
                peer_id: p.clone(),
                weight: "-1".into(),
                capabilities: vec![],
            }],
        };
        assert!(matches!(
            bad.validator_set(),
            Err(CommitteeError::InvalidGenesis { index: 0, .. })
        ));
        let dup = Genesis {
            validators: vec![g.validators[0].clone(), g.validators[0].clone()],
        };
        assert!(matches!(
            dup.validator_set(),
            Err(CommitteeError::DuplicateValidator { .. })
        ));
    }
}
