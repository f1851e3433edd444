//! Reputation: an integer EWMA of outcomes per member, in basis points.
//!
//! `rep' = (rep * (10000 - alpha) + target * alpha) / 10000`, where the
//! target is 10000 for an outcome that agreed with the verdict and 0
//! otherwise, then clamped to at least `floor_bps` so that no validator's
//! weight reaches zero for ever (it can always earn its way back). A new
//! member starts at 10000 (full weight).

use std::collections::BTreeMap;

use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

/// 100% in basis points.
pub const BPS: u32 = 10_000;

/// What a member did in a decided (or failed) task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Revealed the verdict's result on time.
    Agreed,
    /// Revealed a different result on time (minority; slashable on chain).
    Disagreed,
    /// No counting reveal: silent, late commit, or a reveal that did not
    /// open its commit.
    Absent,
    /// Sent two different commits (or reveals) for one task.
    Equivocated,
}

/// Tuning of the EWMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReputationParams {
    /// Weight of one ordinary outcome, in bps (default 1000 = 10%).
    pub alpha_bps: u32,
    /// Weight of an equivocation, in bps (default 5000 = 50%).
    pub equivocation_alpha_bps: u32,
    /// Lowest reputation, in bps (default 500 = 5%).
    pub floor_bps: u32,
}

impl Default for ReputationParams {
    fn default() -> Self {
        Self {
            alpha_bps: 1_000,
            equivocation_alpha_bps: 5_000,
            floor_bps: 500,
        }
    }
}

/// One change of a member's reputation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReputationChange {
    /// Member.
    pub member: PeerId,
    /// What it did.
    pub outcome: Outcome,
    /// Reputation before, bps.
    pub before_bps: u32,
    /// Reputation after, bps.
    pub after_bps: u32,
}

/// Reputation of every member seen in a committee.
///
/// Only committee members are ever recorded, so the book is bounded by the
/// validator set.
#[derive(Clone, Debug, Default)]
pub struct ReputationBook {
    params: ReputationParams,
    reps: BTreeMap<PeerId, u32>,
}

impl ReputationBook {
    /// An empty book (everyone at 10000 bps).
    pub fn new(params: ReputationParams) -> Self {
        let params = ReputationParams {
            alpha_bps: params.alpha_bps.min(BPS),
            equivocation_alpha_bps: params.equivocation_alpha_bps.min(BPS),
            floor_bps: params.floor_bps.clamp(1, BPS),
        };
        Self {
            params,
            reps: BTreeMap::new(),
        }
    }

    /// Reputation of `peer` in bps.
    pub fn get(&self, peer: &PeerId) -> u32 {
        self.reps.get(peer).copied().unwrap_or(BPS)
    }

    /// All recorded entries.
    pub fn entries(&self) -> impl Iterator<Item = (&PeerId, u32)> {
        self.reps.iter().map(|(p, r)| (p, *r))
    }

    /// Set a reputation directly (restore from the store).
    pub fn set(&mut self, peer: PeerId, bps: u32) {
        self.reps
            .insert(peer, bps.clamp(self.params.floor_bps, BPS));
    }

    /// Fold one outcome into the EWMA.
    pub fn record(&mut self, member: PeerId, outcome: Outcome) -> ReputationChange {
        let before = self.get(&member);
        let (alpha, target) = match outcome {
            Outcome::Agreed => (self.params.alpha_bps, BPS),
            Outcome::Disagreed | Outcome::Absent => (self.params.alpha_bps, 0),
            Outcome::Equivocated => (self.params.equivocation_alpha_bps, 0),
        };
        let mixed =
            (before as u64 * (BPS - alpha) as u64 + target as u64 * alpha as u64) / BPS as u64;
        let after = (mixed as u32).clamp(self.params.floor_bps, BPS);
        self.reps.insert(member, after);
        ReputationChange {
            member,
            outcome,
            before_bps: before,
            after_bps: after,
        }
    }

    /// `weight * rep_bps / 10000`, never below 1 when `weight > 0`.
    pub fn effective_weight(&self, peer: &PeerId, weight: u128) -> u128 {
        let rep = self.get(peer) as u128;
        // weight / BPS * rep + (weight % BPS) * rep / BPS avoids overflow.
        let scaled = weight / BPS as u128 * rep + (weight % BPS as u128) * rep / BPS as u128;
        if weight > 0 { scaled.max(1) } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::peer;

    #[test]
    fn ewma_moves_towards_outcome_and_respects_floor() {
        let mut b = ReputationBook::new(ReputationParams::default());
        let p = peer(1);
        assert_eq!(b.get(&p), 10_000);
        let c = b.record(p, Outcome::Absent);
        assert_eq!((c.before_bps, c.after_bps), (10_000, 9_000));
        assert_eq!(b.record(p, Outcome::Disagreed).after_bps, 8_100);
        assert_eq!(b.record(p, Outcome::Agreed).after_bps, 8_290);
        for _ in 0..200 {
            b.record(p, Outcome::Equivocated);
        }
        assert_eq!(b.get(&p), 500, "floor holds");
        assert_eq!(b.record(p, Outcome::Agreed).after_bps, 1_450, "can recover");
        for _ in 0..500 {
            b.record(p, Outcome::Agreed);
        }
        assert!(b.get(&p) <= 10_000 && b.get(&p) > 9_900);
    }

    #[test]
    fn effective_weight_scales_without_overflow() {
        let mut b = ReputationBook::new(ReputationParams::default());
        let p = peer(2);
        b.set(p, 5_000);
        assert_eq!(b.effective_weight(&p, 1_000), 500);
        assert_eq!(
            b.effective_weight(&p, u128::MAX),
            u128::MAX / 10_000 * 5_000 + (u128::MAX % 10_000) * 5_000 / 10_000
        );
        assert_eq!(b.effective_weight(&p, 1), 1, "never reaches zero");
        assert_eq!(b.effective_weight(&p, 0), 0);
        assert_eq!(
            b.effective_weight(&peer(3), 77),
            77,
            "unknown peer at full weight"
        );
    }
}
