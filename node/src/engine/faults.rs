//! Deliberate misbehaviour for byzantine tests (compiled in only with the
//! `fault-injection` feature; a production build always runs `Fault::None`).

use super::*;

/// Deliberate misbehaviour for tests (compiled only with `fault-injection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    None,
    /// Every result this node reports is wrong.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    WrongResult,
    /// Wrong (all the same way) when this node sits at one of these
    /// positions (bitmask) of a task's primary committee: with every node
    /// configured alike, the chosen members collude on one wrong result.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    WrongRanks(u32),
    /// As `WrongRanks`, and these members never send their verdict on
    /// chain (a majority that hopes its task just expires unchallenged).
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    WrongRanksSilent(u32),
    /// Tasks submitted through this node are never gossiped.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    NoTaskGossip,
    /// At these primary-committee positions the member also gossips a
    /// second signed result that differs from its first (equivocation).
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    EquivocateRanks(u32),
    /// At these positions the member never executes: it copies the first
    /// result another member reveals and tries to commit to it on chain
    /// (copy-and-join: paid without computing, if the protocol let it).
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    CopyRanks(u32),
}

impl Fault {
    pub(super) fn from_env() -> Self {
        #[cfg(feature = "fault-injection")]
        {
            let v = std::env::var("HAL9_FAULT").unwrap_or_default();
            if v == "wrong-result" {
                warn!(target: "hal9::engine", "FAULT INJECTION: this node reports wrong results");
                return Fault::WrongResult;
            }
            if v == "no-task-gossip" {
                warn!(target: "hal9::engine", "FAULT INJECTION: this node never gossips the tasks submitted to it");
                return Fault::NoTaskGossip;
            }
            let mask_of = |ranks: &str| {
                ranks
                    .split(',')
                    .filter_map(|r| r.trim().parse::<u32>().ok())
                    .filter(|r| *r < 32)
                    .fold(0u32, |m, r| m | (1 << r))
            };
            if let Some(ranks) = v.strip_prefix("equivocate-ranks:") {
                warn!(target: "hal9::engine", ranks, "FAULT INJECTION: committee members at these positions sign two different results");
                return Fault::EquivocateRanks(mask_of(ranks));
            }
            if let Some(ranks) = v.strip_prefix("copy-ranks:") {
                warn!(target: "hal9::engine", ranks, "FAULT INJECTION: committee members at these positions copy another member's result instead of computing");
                return Fault::CopyRanks(mask_of(ranks));
            }
            let silent = v.starts_with("wrong-ranks-silent:");
            if let Some(ranks) = v
                .strip_prefix("wrong-ranks:")
                .or_else(|| v.strip_prefix("wrong-ranks-silent:"))
            {
                let mask = ranks
                    .split(',')
                    .filter_map(|r| r.trim().parse::<u32>().ok())
                    .filter(|r| *r < 32)
                    .fold(0u32, |m, r| m | (1 << r));
                warn!(target: "hal9::engine", ranks, silent, "FAULT INJECTION: committee members at these positions report wrong results");
                return if silent {
                    Fault::WrongRanksSilent(mask)
                } else {
                    Fault::WrongRanks(mask)
                };
            }
        }
        Fault::None
    }
}

impl Engine {
    /// Whether fault injection makes this node's result for `task` wrong.
    pub(super) fn wrong_for(&self, task: &TaskId) -> bool {
        match self.fault {
            Fault::WrongResult => true,
            Fault::WrongRanks(mask) | Fault::WrongRanksSilent(mask) => self.at_rank(task, mask),
            _ => false,
        }
    }

    /// Whether this node sits at one of the positions of `mask` in `task`'s
    /// primary committee (fault injection).
    pub(super) fn at_rank(&self, task: &TaskId, mask: u32) -> bool {
        let local = self.keypair.public().to_peer_id().to_string();
        self.tasks
            .get(task)
            .filter(|r| r.chain.as_ref().is_none_or(|c| c.parent.is_none()))
            .and_then(|r| r.committee.iter().position(|p| *p == local))
            .is_some_and(|i| i < 32 && mask & (1 << i) != 0)
    }

    /// Whether fault injection makes this node equivocate on `task`.
    pub(crate) fn equivocates(&self, task: &TaskId) -> bool {
        matches!(self.fault, Fault::EquivocateRanks(m) if self.at_rank(task, m))
    }

    /// Whether fault injection makes this node copy instead of computing `task`.
    pub(crate) fn copies(&self, task: &TaskId) -> bool {
        matches!(self.fault, Fault::CopyRanks(m) if self.at_rank(task, m))
    }

    /// Whether fault injection makes this node withhold `task`'s primary verdict.
    pub(super) fn withholds(&self, task: &TaskId) -> bool {
        matches!(self.fault, Fault::WrongRanksSilent(_)) && self.wrong_for(task)
    }
}
