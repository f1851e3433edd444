//! Prometheus metrics of the consensus core (`hal9_consensus_*`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters and gauges updated by the [`crate::Driver`].
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Tasks accepted for tracking.
    pub tasks_started: Counter,
    /// Tasks refused (capacity, bad parameters, committee draw failure).
    pub tasks_rejected: Counter,
    /// Verdicts recorded.
    pub verdicts: Counter,
    /// Escalations to a 2r+1 committee.
    pub escalations: Counter,
    /// Tasks failed without quorum after escalation.
    pub failures: Counter,
    /// Members caught sending two different commits or reveals.
    pub equivocations: Counter,
    /// Reveals that did not open their commit.
    pub reveal_mismatches: Counter,
    /// Commits first seen after a reveal of their task.
    pub late_commits: Counter,
    /// Votes ignored (not a member, unknown round, finished task).
    pub votes_ignored: Counter,
    /// Votes buffered because their task was not seen yet.
    pub votes_buffered: Counter,
    /// Tasks tracked in memory.
    pub tasks_tracked: Gauge,
    /// Votes waiting for their task.
    pub pending_votes: Gauge,
}

impl Metrics {
    /// Create and register under the `hal9_consensus` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("hal9_consensus");
        r.register(
            "tasks_started",
            "Tasks accepted for tracking",
            m.tasks_started.clone(),
        );
        r.register(
            "tasks_rejected",
            "Tasks refused by the core",
            m.tasks_rejected.clone(),
        );
        r.register("verdicts", "Verdicts recorded", m.verdicts.clone());
        r.register(
            "escalations",
            "Escalations to a 2r+1 committee",
            m.escalations.clone(),
        );
        r.register(
            "failures",
            "Tasks failed without quorum",
            m.failures.clone(),
        );
        r.register(
            "equivocations",
            "Equivocating members detected",
            m.equivocations.clone(),
        );
        r.register(
            "reveal_mismatches",
            "Reveals that did not open their commit",
            m.reveal_mismatches.clone(),
        );
        r.register(
            "late_commits",
            "Commits first seen after a reveal",
            m.late_commits.clone(),
        );
        r.register(
            "votes_ignored",
            "Votes ignored by the core",
            m.votes_ignored.clone(),
        );
        r.register(
            "votes_buffered",
            "Votes buffered until their task is seen",
            m.votes_buffered.clone(),
        );
        r.register(
            "tasks_tracked",
            "Tasks held in memory",
            m.tasks_tracked.clone(),
        );
        r.register(
            "pending_votes",
            "Votes waiting for their task",
            m.pending_votes.clone(),
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_encodes() {
        let mut reg = Registry::default();
        let m = Metrics::register(&mut reg);
        m.verdicts.inc();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        assert!(out.contains("hal9_consensus_verdicts_total 1"), "{out}");
    }
}
