//! Scenarios and properties over the deterministic simulator.

use std::collections::BTreeSet;

use proptest::prelude::*;

use crate::sim::{Behaviour, Crash, Sim, SimConfig, SimOutcome};

fn all(n: usize) -> BTreeSet<usize> {
    (0..n).collect()
}

fn honest(cfg: &SimConfig) -> BTreeSet<usize> {
    (0..cfg.nodes)
        .filter(|n| !cfg.behaviours.contains_key(n))
        .collect()
}

#[test]
fn same_seed_same_trace() {
    let mut cfg = SimConfig::new(7);
    cfg.dup_per_mille = 100;
    cfg.behaviours.insert(3, Behaviour::WrongResult);
    let a = Sim::new(cfg.clone()).run();
    let b = Sim::new(cfg.clone()).run();
    println!("batches {} trace {}", a.batches, a.trace_len);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.trace_len, b.trace_len);
    assert!(
        a.trace_len > 50,
        "trace too short to mean anything: {}",
        a.trace_len
    );
    let c = Sim::new(SimConfig { seed: 8, ..cfg }).run();
    assert_ne!(
        a.trace_hash, c.trace_hash,
        "a different seed should give a different run"
    );
}

#[test]
fn honest_network_with_reordering_and_duplicates_decides_everything() {
    let mut cfg = SimConfig::new(1);
    cfg.dup_per_mille = 200;
    cfg.latency_ms = (1, 60);
    let out = Sim::new(cfg.clone()).run();
    assert_eq!(out.assert_safety(), cfg.tasks);
    let checked = out.assert_liveness(cfg.r, &all(cfg.nodes), &all(cfg.nodes));
    assert_eq!(checked, cfg.tasks);
    assert_eq!(
        out.escalations, 0,
        "no escalation needed among honest nodes"
    );
}

#[test]
fn byzantine_members_cannot_break_agreement_or_block_honest_quorums() {
    let mut cfg = SimConfig::new(2);
    cfg.nodes = 12;
    cfg.tasks = 12;
    cfg.dup_per_mille = 50;
    cfg.behaviours.insert(0, Behaviour::WrongResult);
    cfg.behaviours.insert(1, Behaviour::Silent);
    cfg.behaviours.insert(2, Behaviour::LateCommit);
    cfg.behaviours.insert(3, Behaviour::CopyReveal);
    cfg.behaviours.insert(4, Behaviour::Equivocate);
    let out = Sim::new(cfg.clone()).run();
    assert!(
        out.assert_safety() > 0,
        "no task within the fault threshold"
    );
    let h = honest(&cfg);
    let checked = out.assert_liveness(cfg.r, &h, &h);
    assert!(
        checked > 0,
        "no task had an honest quorum: scenario too weak"
    );
    let equivocator_sat = out.committees.values().any(|c| c.contains(&4));
    if equivocator_sat {
        assert!(
            out.equivocations + out.mismatches > 0,
            "equivocation went unnoticed"
        );
    }
}

#[test]
fn r5_committees_with_byzantine_minority() {
    let mut cfg = SimConfig::new(3);
    cfg.nodes = 12;
    cfg.r = 5;
    cfg.tasks = 6;
    cfg.behaviours.insert(5, Behaviour::WrongResult);
    cfg.behaviours.insert(6, Behaviour::Equivocate);
    let out = Sim::new(cfg.clone()).run();
    out.assert_safety();
    let h = honest(&cfg);
    assert!(out.assert_liveness(cfg.r, &h, &h) > 0);
}

#[test]
fn loss_duplication_and_partitions_never_break_agreement() {
    for seed in 10..12 {
        let mut cfg = SimConfig::new(seed);
        cfg.tasks = 5;
        cfg.loss_per_mille = 100;
        cfg.dup_per_mille = 100;
        let groups = (0..cfg.nodes).map(|n| (n % 2) as u8).collect();
        cfg.partition = Some((groups, 0, 400));
        cfg.behaviours.insert(9, Behaviour::WrongResult);
        let out = Sim::new(cfg).run();
        out.assert_safety();
    }
}

#[test]
fn a_static_partition_decides_on_the_side_that_holds_a_quorum() {
    let mut cfg = SimConfig::new(4);
    cfg.nodes = 10;
    cfg.tasks = 10;
    let groups: Vec<u8> = (0..cfg.nodes).map(|n| u8::from(n >= 6)).collect();
    cfg.partition = Some((groups.clone(), 0, u64::MAX));
    let out = Sim::new(cfg.clone()).run();
    out.assert_safety();
    let q = hal9_consensus::quorum(cfg.r);
    let mut checked = 0;
    for (task, committee) in &out.committees {
        for side in [0u8, 1] {
            let members = committee.iter().filter(|m| groups[**m] == side).count();
            if members >= q {
                checked += 1;
                for n in (0..cfg.nodes).filter(|n| groups[*n] == side) {
                    assert!(
                        out.verdicts.get(task).is_some_and(|v| v.contains_key(&n)),
                        "node {n} side {side} {task}"
                    );
                }
            }
        }
    }
    assert!(checked > 0);
}

#[test]
fn crashed_members_restart_from_their_persisted_votes() {
    let mut cfg = SimConfig::new(5);
    cfg.tasks = 10;
    cfg.crashes = vec![
        Crash {
            node: 1,
            at: 90,
            restart: Some(300),
        },
        Crash {
            node: 4,
            at: 120,
            restart: Some(700),
        },
    ];
    let out: SimOutcome = Sim::new(cfg.clone()).run();
    out.assert_safety();
    let up: BTreeSet<usize> = (0..cfg.nodes)
        .filter(|n| !out.crashed.contains(n))
        .collect();
    assert!(out.assert_liveness(cfg.r, &up, &up) > 0);
    assert_eq!(out.crashed.len(), 2);
}

fn arb_behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        Just(Behaviour::WrongResult),
        Just(Behaviour::Silent),
        Just(Behaviour::LateCommit),
        Just(Behaviour::CopyReveal),
        Just(Behaviour::Equivocate),
    ]
}

proptest! {
    // Each case runs a whole network with real signatures: keep it small.
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// Agreement always; a verdict at every honest node for every task
    /// whose committee holds q honest members, under eventual delivery.
    #[test]
    fn agreement_always_and_liveness_with_honest_quorum(
        seed in any::<u64>(),
        byz in proptest::collection::btree_map(0usize..10, arb_behaviour(), 0..4),
        lat_hi in 2u64..60,
        dup in 0u32..300,
        r in prop_oneof![Just(3usize), Just(5usize)],
    ) {
        let mut cfg = SimConfig::new(seed);
        cfg.tasks = 6;
        cfg.r = r;
        cfg.latency_ms = (1, lat_hi);
        cfg.dup_per_mille = dup;
        cfg.behaviours = byz;
        let out = Sim::new(cfg.clone()).run();
        out.assert_safety();
        let h = honest(&cfg);
        out.assert_liveness(cfg.r, &h, &h);
    }

    /// Agreement holds even with loss, partitions and crashes.
    #[test]
    fn agreement_under_faults(
        seed in any::<u64>(),
        byz in proptest::collection::btree_map(0usize..10, arb_behaviour(), 0..3),
        loss in 0u32..300,
        split in 0u64..800,
        crash in 0usize..10,
    ) {
        let mut cfg = SimConfig::new(seed);
        cfg.tasks = 4;
        cfg.loss_per_mille = loss;
        cfg.behaviours = byz;
        let groups = (0..cfg.nodes).map(|n| u8::from(n < 4)).collect();
        cfg.partition = Some((groups, 0, split));
        cfg.crashes = vec![Crash { node: crash, at: split / 2, restart: Some(split + 100) }];
        let out = Sim::new(cfg).run();
        out.assert_safety();
    }
}
