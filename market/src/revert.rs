//! Contract reverts in words: the custom errors of every hal9 contract (and
//! the OpenZeppelin ones they inherit) decoded and, for the common ones,
//! explained as a sentence a user can act on.

use alloy::primitives::{Address, B256, U256};

use crate::bindings::{
    ComputationMarket::ComputationMarketErrors as Cm, HAL9Governor::HAL9GovernorErrors as Gov,
    HAL9Token::HAL9TokenErrors as Tok, NeuronRegistry::NeuronRegistryErrors as Reg,
    RewardsDistributor::RewardsDistributorErrors as Rew,
    TimelockController::TimelockControllerErrors as Tl,
};
use crate::units::format_tokens;

/// Names of the governor's proposal states, by their on-chain number.
pub const PROPOSAL_STATES: [&str; 8] = [
    "Pending",
    "Active",
    "Canceled",
    "Defeated",
    "Succeeded",
    "Queued",
    "Expired",
    "Executed",
];

/// Names of the timelock's operation states, by their on-chain number.
const OPERATION_STATES: [&str; 4] = ["Unset", "Waiting", "Ready", "Done"];

fn states_of(bitmap: B256, names: &[&str]) -> String {
    let bits = U256::from_be_bytes(bitmap.0);
    let v: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| bits.bit(*i))
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "in another state".into()
    } else {
        v.join(" or ")
    }
}

/// "in 2d 3h 4m" / "5m ago" between two unix times.
pub fn relative(at: u64, now: u64) -> String {
    let fmt = |s: u64| {
        let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
        match (d, h, m) {
            (0, 0, 0) => format!("{sec}s"),
            (0, 0, _) => format!("{m}m {sec}s"),
            (0, _, _) => format!("{h}h {m}m"),
            _ => format!("{d}d {h}h"),
        }
    };
    if at >= now {
        format!("in {}", fmt(at - now))
    } else {
        format!("{} ago", fmt(now - at))
    }
}

fn tok(v: U256) -> String {
    format!("{} HAL9", format_tokens(v))
}

fn days(s: u64) -> String {
    if s.is_multiple_of(86_400) {
        format!("{} days", s / 86_400)
    } else {
        format!("{s} s")
    }
}

fn short(a: Address) -> String {
    a.to_checksum(None)
}

/// A sentence for a revert of the registry.
fn registry(e: &Reg) -> Option<String> {
    Some(match e {
        Reg::NotRegistered(x) => format!(
            "{} is not registered as a neuron (run `hal9 neuron register` first)",
            short(x.operator)
        ),
        Reg::AlreadyRegistered(x) => format!("{} is already registered", short(x.operator)),
        Reg::InvalidPeerId(x) => format!(
            "the peer id must be 1 to {} bytes long, found {}",
            x.maxLen, x.foundLen
        ),
        Reg::BadPeerSig(x) => format!(
            "the peer binding signature must be {} bytes (ed25519), found {}",
            x.expectedLen, x.foundLen
        ),
        Reg::BelowMinStake(x) => format!(
            "the stake must reach the minimum of {}, found {}",
            tok(x.min),
            tok(x.found)
        ),
        Reg::NotApplyPhase(x) => format!(
            "block {} is not in a tree apply phase; queued tree updates apply in the first blocks of an epoch",
            x.blockNumber
        ),
        Reg::ZeroAmount(_) => "the amount must be greater than zero".into(),
        Reg::LockTooLong(x) => format!(
            "a lock can last at most {}, asked for {}",
            days(x.max),
            days(x.found)
        ),
        Reg::LockShortened(x) => format!(
            "a lock can only be extended, never shortened: the current lock ends {} later than the new one would",
            relative(x.currentEnd, x.newEnd).trim_start_matches("in ")
        ),
        Reg::LockActive(x) => format!(
            "the lock has not ended: the stake is locked until unix time {} ({})",
            x.lockEnd,
            relative(x.lockEnd, x.now_)
        ),
        Reg::InsufficientStake(x) => format!(
            "insufficient stake: {} staked, {} requested",
            tok(x.available),
            tok(x.requested)
        ),
        Reg::NothingUnbonding(_) => {
            "nothing is unbonding: request it first with `hal9 stake unbond AMOUNT`".into()
        }
        Reg::StillUnbonding(x) => format!(
            "the unbonding delay has not passed: withdrawable at unix time {} ({})",
            x.unbondingEnd,
            relative(x.unbondingEnd, x.now_)
        ),
        Reg::StakeLocked(x) => format!(
            "open tasks lock {} of the holdings; the withdrawal would leave {}",
            tok(x.locked),
            tok(x.remaining)
        ),
        Reg::ParamOutOfBounds(x) => format!(
            "parameter {} must be between {} and {}, found {}",
            x.name, x.min, x.max, x.found
        ),
        Reg::OwnableUnauthorizedAccount(x) => format!(
            "{} may not do this: only the DAO timelock may (propose it with `hal9 dao propose`)",
            short(x.account)
        ),
        _ => return None,
    })
}

fn market(e: &Cm) -> Option<String> {
    Some(match e {
        Cm::NotStaked(x) => format!(
            "{} is not a staked neuron (register and stake first)",
            short(x.caller)
        ),
        Cm::FeeTooLow(x) => format!(
            "fee too low: at least {}, offered {}",
            tok(x.min),
            tok(x.found)
        ),
        Cm::ReplicasOutOfRange(x) => format!(
            "replicas must be between {} and {}, found {}",
            x.min, x.max, x.found
        ),
        Cm::ParamOutOfBounds(x) => format!(
            "parameter {} must be between {} and {}, found {}",
            x.name, x.min, x.max, x.found
        ),
        Cm::OwnableUnauthorizedAccount(x) => format!(
            "{} may not do this: only the DAO timelock may (propose it with `hal9 dao propose`)",
            short(x.account)
        ),
        _ => return None,
    })
}

fn token(e: &Tok) -> Option<String> {
    Some(match e {
        Tok::ERC20InsufficientBalance(x) => format!(
            "insufficient HAL9 balance: {} holds {}, {} needed",
            short(x.sender),
            tok(x.balance),
            tok(x.needed)
        ),
        Tok::ERC20InsufficientAllowance(x) => format!(
            "allowance too low: {} may spend {}, {} needed",
            short(x.spender),
            tok(x.allowance),
            tok(x.needed)
        ),
        Tok::ERC20InvalidReceiver(x) => format!("cannot send HAL9 to {}", short(x.receiver)),
        _ => return None,
    })
}

fn rewards(e: &Rew) -> Option<String> {
    Some(match e {
        Rew::NothingToClaim(x) => format!(
            "nothing to claim for {} yet (rewards accrue per completed epoch to staked neurons)",
            short(x.operator)
        ),
        _ => return None,
    })
}

fn governor(e: &Gov) -> Option<String> {
    Some(match e {
        Gov::GovernorAlreadyCastVote(x) => {
            format!("{} has already voted on this proposal", short(x.voter))
        }
        Gov::GovernorInsufficientProposerVotes(x) => format!(
            "{} has {} of voting power, the proposal threshold is {} (voting power counts only \
             after delegation: `hal9 dao delegate`, then wait a second: the governor's clock is time)",
            short(x.proposer),
            tok(x.votes),
            tok(x.threshold)
        ),
        Gov::GovernorNonexistentProposal(x) => format!("there is no proposal {:#x}", x.proposalId),
        Gov::GovernorUnexpectedProposalState(x) => {
            let cur = PROPOSAL_STATES
                .get(x.current as usize)
                .copied()
                .unwrap_or("in an unknown state");
            let want = states_of(x.expectedStates, &PROPOSAL_STATES);
            let hint = match (cur, want.as_str()) {
                ("Pending", "Active") => " (voting has not started yet)",
                (_, "Active") => " (voting is over)",
                ("Active", _) => " (voting is still open)",
                ("Succeeded", _) => " (queue it first with `hal9 dao queue`)",
                ("Defeated", _) => " (it did not pass)",
                _ => "",
            };
            format!(
                "proposal {:#x} is {cur}, it must be {want}{hint}",
                x.proposalId
            )
        }
        Gov::GovernorOnlyExecutor(x) => format!(
            "{} may not do this: only the DAO timelock may",
            short(x.account)
        ),
        Gov::GovernorInvalidVoteType(_) => "the vote must be for, against or abstain".into(),
        Gov::GovernorRestrictedProposer(x) => {
            format!("{} may not submit this proposal", short(x.proposer))
        }
        Gov::GovernorInvalidProposalLength(x) => format!(
            "a proposal needs as many targets, values and calldatas, found {}, {} and {}",
            x.targets, x.values, x.calldatas
        ),
        Gov::QuorumOutOfBounds(x) => format!(
            "the quorum must be between {}% and {}%, found {}%",
            x.min, x.max, x.found
        ),
        _ => return None,
    })
}

fn timelock(e: &Tl) -> Option<String> {
    Some(match e {
        Tl::TimelockUnexpectedOperationState(x) => {
            let want = states_of(x.expectedStates, &OPERATION_STATES);
            if want == "Ready" {
                "the timelock delay has not passed yet (or the proposal is not queued): wait, then execute again".into()
            } else {
                format!("the timelock operation must be {want}")
            }
        }
        Tl::TimelockInsufficientDelay(x) => format!(
            "the timelock delay must be at least {} s, found {} s",
            x.minDelay, x.delay
        ),
        Tl::TimelockUnauthorizedCaller(x) => {
            format!("{} may not call the timelock", short(x.caller))
        }
        Tl::AccessControlUnauthorizedAccount(x) => format!(
            "{} lacks the timelock role {} this needs",
            short(x.account),
            x.neededRole
        ),
        _ => return None,
    })
}

/// Decodes a contract error against every hal9 ABI. Returns
/// `"<sentence> [Contract: Error(..)]"` when the error is known and has a
/// sentence, `"Contract reverted: Error(..)"` when it is only decoded, and
/// `None` when no ABI knows it.
pub fn decode(e: &alloy::contract::Error) -> Option<String> {
    fn fmt<T: std::fmt::Debug>(contract: &str, err: &T, human: Option<String>) -> String {
        match human {
            Some(h) => format!("{h} [{contract}: {err:?}]"),
            None => format!("{contract} reverted: {err:?}"),
        }
    }
    if let Some(err) = e.as_decoded_interface_error::<Reg>() {
        return Some(fmt("NeuronRegistry", &err, registry(&err)));
    }
    if let Some(err) = e.as_decoded_interface_error::<Cm>() {
        return Some(fmt("ComputationMarket", &err, market(&err)));
    }
    if let Some(err) = e.as_decoded_interface_error::<Gov>() {
        return Some(fmt("HAL9Governor", &err, governor(&err)));
    }
    if let Some(err) = e.as_decoded_interface_error::<Tl>() {
        return Some(fmt("TimelockController", &err, timelock(&err)));
    }
    if let Some(err) = e.as_decoded_interface_error::<Tok>() {
        return Some(fmt("HAL9Token", &err, token(&err)));
    }
    if let Some(err) = e.as_decoded_interface_error::<Rew>() {
        return Some(fmt("RewardsDistributor", &err, rewards(&err)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_well() {
        assert_eq!(relative(100, 40), "in 1m 0s");
        assert_eq!(relative(40, 100), "1m 0s ago");
        assert_eq!(relative(86_400 * 2 + 3_600, 0), "in 2d 1h");
    }

    #[test]
    fn state_bitmaps_name_states() {
        let mut b = [0u8; 32];
        b[31] = 0b10;
        assert_eq!(states_of(B256::from(b), &PROPOSAL_STATES), "Active");
        b[31] = 0b11_0000;
        assert_eq!(
            states_of(B256::from(b), &PROPOSAL_STATES),
            "Succeeded or Queued"
        );
    }
}
