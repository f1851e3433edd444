//! The protocol's integer arithmetic, mirrored bit for bit from the
//! contracts (`NeuronRegistry`, `ComputationMarket`, `RewardsDistributor`):
//! lock multipliers, effective stake, quorum, the fee split, slashing and the
//! halving emission schedule. Everything is in basis points or exact
//! integers; nothing here uses floats.

use alloy::primitives::U256;

use crate::error::{MarketError, Result};

/// Basis-point denominator (10000 = 100%).
pub const BPS: u64 = 10_000;
/// Number of halvings after which emission is zero.
pub const MAX_HALVINGS: u64 = 64;

/// Lock multiplier in basis points: `10000 + 20000 * min(lock, max_lock) / max_lock`
/// (1x unlocked, 3x at the maximum lock), as `NeuronRegistry.multiplierBps`
/// while the lock runs.
pub fn multiplier_bps(lock_secs: u64, max_lock_secs: u64) -> Result<u64> {
    if max_lock_secs == 0 {
        return Err(MarketError::InvalidParam {
            name: "max_lock",
            expected: "> 0 seconds".into(),
            found: "0".into(),
        });
    }
    let lock = lock_secs.min(max_lock_secs) as u128;
    Ok((BPS as u128 + 20_000 * lock / max_lock_secs as u128) as u64)
}

/// Effective stake = stake * multBps / 10000 (rounded down).
pub fn effective_stake(stake: U256, mult_bps: u64) -> U256 {
    stake * U256::from(mult_bps) / U256::from(BPS)
}

/// Quorum of a committee of `r`: ceil(2r/3) = (2r + 2) / 3.
pub const fn quorum(r: u32) -> u32 {
    (2 * r).div_ceil(3)
}

/// Fee rates in basis points (DAO parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRates {
    /// Share burned (protocol default 100 = 1%).
    pub burn_bps: u16,
    /// Share to the DAO treasury (protocol default 200 = 2%).
    pub treasury_bps: u16,
}

impl Default for FeeRates {
    fn default() -> Self {
        Self {
            burn_bps: 100,
            treasury_bps: 200,
        }
    }
}

/// How a fee is paid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSplit {
    /// Burned.
    pub burned: U256,
    /// To the treasury, including the rounding dust of the majority split.
    pub treasury: U256,
    /// Paid to each member of the majority.
    pub per_member: U256,
}

/// Splits `fee` as `ComputationMarket.feeSplit`: burn and treasury shares
/// rounded down, the rest split equally among `majority` members, rounding
/// dust to the treasury. Always `burned + treasury + per_member * majority == fee`.
pub fn fee_split(fee: U256, majority: u32, rates: FeeRates) -> Result<FeeSplit> {
    if majority == 0 {
        return Err(MarketError::InvalidParam {
            name: "majority",
            expected: ">= 1 member".into(),
            found: "0".into(),
        });
    }
    if u64::from(rates.burn_bps) + u64::from(rates.treasury_bps) > BPS {
        return Err(MarketError::InvalidParam {
            name: "fee rates",
            expected: "burn_bps + treasury_bps <= 10000".into(),
            found: format!("{} + {}", rates.burn_bps, rates.treasury_bps),
        });
    }
    let bps = U256::from(BPS);
    let burned = fee * U256::from(rates.burn_bps) / bps;
    let mut treasury = fee * U256::from(rates.treasury_bps) / bps;
    let rest = fee - burned - treasury;
    let m = U256::from(majority);
    let per_member = rest / m;
    treasury += rest - per_member * m;
    Ok(FeeSplit {
        burned,
        treasury,
        per_member,
    })
}

/// Amount a slash of `bps` takes from a neuron holding `stake` + `unbonding`
/// (as `NeuronRegistry.slash`; stake is taken first, then unbonding).
pub fn slash_amount(stake: U256, unbonding: U256, bps: u16) -> U256 {
    (stake + unbonding) * U256::from(bps) / U256::from(BPS)
}

/// The halving emission schedule of `RewardsDistributor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmissionSchedule {
    /// Reward pool at deployment.
    pub pool: U256,
    /// H: epochs between halvings.
    pub halving_epochs: u64,
}

impl EmissionSchedule {
    /// A schedule; `halving_epochs` must be non-zero.
    pub fn new(pool: U256, halving_epochs: u64) -> Result<Self> {
        if halving_epochs == 0 {
            return Err(MarketError::InvalidParam {
                name: "halving_epochs",
                expected: ">= 1".into(),
                found: "0".into(),
            });
        }
        Ok(Self {
            pool,
            halving_epochs,
        })
    }

    /// R0 = pool / (2H): the schedule can never ask for more than the pool.
    pub fn initial_epoch_reward(&self) -> U256 {
        self.pool / (U256::from(2u64) * U256::from(self.halving_epochs))
    }

    /// Emission of epoch `epoch`: R0 >> (epoch / H), zero after 64 halvings.
    pub fn epoch_reward(&self, epoch: u64) -> U256 {
        let k = epoch / self.halving_epochs;
        if k >= MAX_HALVINGS {
            return U256::ZERO;
        }
        self.initial_epoch_reward() >> (k as usize)
    }

    /// Total emission of epochs `[0, n)`.
    pub fn cumulative(&self, n: u64) -> U256 {
        let h = self.halving_epochs;
        let full = n / h;
        let r0 = self.initial_epoch_reward();
        let mut sum = U256::ZERO;
        for k in 0..full.min(MAX_HALVINGS) {
            sum += (r0 >> (k as usize)) * U256::from(h);
        }
        if full < MAX_HALVINGS {
            sum += (r0 >> (full as usize)) * U256::from(n % h);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ether(x: u64) -> U256 {
        U256::from(x) * U256::from(10u64).pow(U256::from(18u64))
    }

    #[test]
    fn multiplier_endpoints() {
        assert_eq!(multiplier_bps(0, 365 * 86_400).unwrap(), 10_000);
        assert_eq!(
            multiplier_bps(365 * 86_400 / 2, 365 * 86_400).unwrap(),
            20_000
        );
        assert_eq!(multiplier_bps(365 * 86_400, 365 * 86_400).unwrap(), 30_000);
        // A lock longer than a later, smaller maxLock is capped at 3x.
        assert_eq!(
            multiplier_bps(10 * 365 * 86_400, 365 * 86_400).unwrap(),
            30_000
        );
        assert!(multiplier_bps(1, 0).is_err());
    }

    #[test]
    fn quorum_table() {
        assert_eq!([3, 4, 5, 6, 7, 15].map(quorum), [2, 3, 4, 4, 5, 10]);
    }

    #[test]
    fn fee_split_example() {
        // 100 HAL9 over 2 members: 1 burned, 2 treasury, 48.5 each.
        let s = fee_split(ether(100), 2, FeeRates::default()).unwrap();
        assert_eq!(s.burned, ether(1));
        assert_eq!(s.treasury, ether(2));
        assert_eq!(s.per_member, ether(97) / U256::from(2u64));
        // 100 wei over 3: 1 burned, 2 + 1 dust to treasury, 32 each.
        let s = fee_split(U256::from(100u64), 3, FeeRates::default()).unwrap();
        assert_eq!(
            (s.burned, s.treasury, s.per_member),
            (U256::from(1u64), U256::from(3u64), U256::from(32u64))
        );
    }

    #[test]
    fn fee_split_rejects_bad_input() {
        assert!(fee_split(ether(1), 0, FeeRates::default()).is_err());
        let rates = FeeRates {
            burn_bps: 6_000,
            treasury_bps: 5_000,
        };
        assert!(fee_split(ether(1), 1, rates).is_err());
    }

    #[test]
    fn emission_halves_and_stops() {
        let s = EmissionSchedule::new(ether(400_000_000), 365).unwrap();
        let r0 = s.initial_epoch_reward();
        assert_eq!(r0, ether(400_000_000) / U256::from(730u64));
        assert_eq!(s.epoch_reward(364), r0);
        assert_eq!(s.epoch_reward(365), r0 >> 1);
        assert_eq!(s.epoch_reward(365 * 64), U256::ZERO);
        assert_eq!(s.epoch_reward(u64::MAX), U256::ZERO);
        assert!(EmissionSchedule::new(ether(1), 0).is_err());
    }

    proptest! {
        #[test]
        fn fee_split_conserves(fee in any::<u128>(), m in 1u32..64, burn in 0u16..=1000, tre in 0u16..=1000) {
            let fee = U256::from(fee);
            let s = fee_split(fee, m, FeeRates { burn_bps: burn, treasury_bps: tre }).unwrap();
            prop_assert_eq!(s.burned + s.treasury + s.per_member * U256::from(m), fee);
            prop_assert_eq!(s.burned, fee * U256::from(burn) / U256::from(BPS));
            let base_treasury = fee * U256::from(tre) / U256::from(BPS);
            prop_assert!(s.treasury >= base_treasury);
            prop_assert!(s.treasury - base_treasury < U256::from(m), "dust below one unit per member");
        }

        #[test]
        fn multiplier_in_range_and_monotonic(a in 0u64..=4 * 365 * 86_400, b in 0u64..=4 * 365 * 86_400, max in 86_400u64..=4 * 365 * 86_400) {
            let ma = multiplier_bps(a, max).unwrap();
            let mb = multiplier_bps(b, max).unwrap();
            prop_assert!((10_000..=30_000).contains(&ma));
            if a <= b { prop_assert!(ma <= mb); }
            prop_assert_eq!(ma as u128, 10_000 + 20_000 * a.min(max) as u128 / max as u128);
        }

        #[test]
        fn effective_stake_bounded(stake in any::<u128>(), lock in 0u64..=365 * 86_400) {
            let m = multiplier_bps(lock, 365 * 86_400).unwrap();
            let e = effective_stake(U256::from(stake), m);
            prop_assert!(e >= U256::from(stake));
            prop_assert!(e <= U256::from(stake) * U256::from(3u64));
        }

        #[test]
        fn emission_never_exceeds_pool(pool in any::<u128>(), h in 1u64..10_000, n in 0u64..2_000_000) {
            let s = EmissionSchedule::new(U256::from(pool), h).unwrap();
            let c = s.cumulative(n);
            prop_assert!(c <= U256::from(pool));
            if n > 0 {
                prop_assert_eq!(c - s.cumulative(n - 1), s.epoch_reward(n - 1));
            }
        }

        #[test]
        fn quorum_is_ceil_two_thirds(r in 1u32..1000) {
            let q = quorum(r);
            prop_assert!(3 * q >= 2 * r);
            prop_assert!(3 * (q - 1) < 2 * r);
        }

        #[test]
        fn slash_never_exceeds_holdings(stake in any::<u128>(), unb in any::<u128>(), bps in 0u16..=10_000) {
            let a = slash_amount(U256::from(stake), U256::from(unb), bps);
            prop_assert!(a <= U256::from(stake) + U256::from(unb));
        }
    }
}
