//! Step tables for the pure core: input -> expected effects.

use hal9_consensus::{Outcome::*, Round::*, TimerKind::*};

use crate::harness::{Fx::*, In::*, V::*, *};

fn commits_all(
    h: &Harness,
    round: hal9_consensus::Round,
    result: u8,
    who: &[&'static str],
    now: u64,
) -> Vec<Step> {
    let _ = h;
    who.iter()
        .map(|w| step("commit", now, Votes(w, vec![C(round, result)]), vec![]))
        .collect()
}

#[test]
fn happy_path_r3_observer() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let mut steps = vec![step(
        "task seen",
        0,
        Task { r: 3 },
        start_timers(Primary, 0),
    )];
    steps.extend(commits_all(&h, Primary, 7, &["m0", "m1", "m2"], 100));
    steps.extend(vec![
        step(
            "first reveal",
            200,
            Votes("m0", vec![R(Primary, 7)]),
            vec![],
        ),
        step(
            "second reveal: quorum 2 of 3",
            210,
            Votes("m1", vec![R(Primary, 7)]),
            vec![Verdict(Primary, 7, labels(&["m0", "m1"]))],
        ),
        step(
            "third reveal after verdict: no second verdict",
            220,
            Votes("m2", vec![R(Primary, 7)]),
            vec![],
        ),
        step(
            "commit timeout: nothing for an observer",
            CT,
            Timeout(Primary, CommitTimeout),
            vec![],
        ),
        step(
            "deadline settles outcomes, slow honest reveal counted",
            CT + RT,
            Timeout(Primary, Deadline),
            settled(Some(7), &[("m0", Agreed), ("m1", Agreed), ("m2", Agreed)]),
        ),
        step(
            "stale deadline",
            CT + RT,
            Timeout(Primary, Deadline),
            vec![],
        ),
        step(
            "straggler vote after settlement",
            CT + RT + 1,
            Votes("m2", vec![R(Primary, 7)]),
            vec![],
        ),
    ]);
    h.run(steps);
    assert_eq!(
        h.driver.task(&h.task).and_then(|t| t.verdict()),
        Some(res(7))
    );
}

#[test]
fn happy_path_r5_as_member() {
    let mut h = Harness::new(9, 5, Seat::Member(0));
    let mut start = vec![Execute(Primary)];
    start.extend(start_timers(Primary, 0));
    let steps = vec![
        step("task seen: execute", 0, Task { r: 5 }, start),
        step(
            "executed: persist then commit",
            50,
            Exec {
                round: Primary,
                result: 7,
            },
            vec![Persist(Primary), Commit(Primary)],
        ),
        step("own commit fed back", 60, Loopback, vec![]),
        step("m1 commits", 70, Votes("m1", vec![C(Primary, 7)]), vec![]),
        step("m2 commits", 80, Votes("m2", vec![C(Primary, 7)]), vec![]),
        step(
            "m3 commits: q = 4 commits seen -> reveal",
            90,
            Votes("m3", vec![C(Primary, 7)]),
            vec![Reveal(Primary, 7)],
        ),
        step("own reveal fed back", 100, Loopback, vec![]),
        step("m1 reveals", 110, Votes("m1", vec![R(Primary, 7)]), vec![]),
        step("m2 reveals", 120, Votes("m2", vec![R(Primary, 7)]), vec![]),
        step(
            "m3 reveals: 4 of 5",
            130,
            Votes("m3", vec![R(Primary, 7)]),
            vec![Verdict(Primary, 7, labels(&["m0", "m1", "m2", "m3"]))],
        ),
        step(
            "commit timeout after reveal: nothing",
            CT,
            Timeout(Primary, CommitTimeout),
            vec![],
        ),
        step(
            "deadline: silent m4 loses reputation",
            CT + RT,
            Timeout(Primary, Deadline),
            settled(
                Some(7),
                &[
                    ("m0", Agreed),
                    ("m1", Agreed),
                    ("m2", Agreed),
                    ("m3", Agreed),
                    ("m4", Absent),
                ],
            ),
        ),
    ];
    h.run(steps);
    let m4 = h.peer("m4");
    assert_eq!(h.driver.reputation().get(&m4), 9_000);
}

#[test]
fn one_wrong_member_is_outvoted_and_marked() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let mut steps = vec![step("task", 0, Task { r: 3 }, start_timers(Primary, 0))];
    steps.extend(vec![
        step("m0 commit", 10, Votes("m0", vec![C(Primary, 7)]), vec![]),
        step("m1 commit", 10, Votes("m1", vec![C(Primary, 7)]), vec![]),
        step(
            "m2 commits a wrong result",
            10,
            Votes("m2", vec![C(Primary, 9)]),
            vec![],
        ),
        step(
            "m2 reveals wrong",
            20,
            Votes("m2", vec![R(Primary, 9)]),
            vec![],
        ),
        step("m0 reveals", 21, Votes("m0", vec![R(Primary, 7)]), vec![]),
        step(
            "m1 reveals: quorum on 7",
            22,
            Votes("m1", vec![R(Primary, 7)]),
            vec![Verdict(Primary, 7, labels(&["m0", "m1"]))],
        ),
        step(
            "deadline: m2 disagreed",
            CT + RT,
            Timeout(Primary, Deadline),
            settled(
                Some(7),
                &[("m0", Agreed), ("m1", Agreed), ("m2", Disagreed)],
            ),
        ),
    ]);
    h.run(steps);
}

#[test]
fn silent_member_commit_timeout_reveals_anyway() {
    let mut h = Harness::new(6, 3, Seat::Member(0));
    let mut start = vec![Execute(Primary)];
    start.extend(start_timers(Primary, 0));
    let steps = vec![
        step("task", 0, Task { r: 3 }, start),
        step(
            "executed",
            10,
            Exec {
                round: Primary,
                result: 7,
            },
            vec![Persist(Primary), Commit(Primary)],
        ),
        step("own commit back: 1 of q=2", 11, Loopback, vec![]),
        step(
            "commit timeout: reveal without quorum of commits",
            CT,
            Timeout(Primary, CommitTimeout),
            vec![Reveal(Primary, 7)],
        ),
        step(
            "m2 commit arrives before our reveal came back",
            CT + 5,
            Votes("m2", vec![C(Primary, 7)]),
            vec![],
        ),
        step("own reveal back", CT + 6, Loopback, vec![]),
        step(
            "m2 reveals: verdict without m1",
            CT + 10,
            Votes("m2", vec![R(Primary, 7)]),
            vec![Verdict(Primary, 7, labels(&["m0", "m2"]))],
        ),
        step(
            "deadline",
            CT + RT,
            Timeout(Primary, Deadline),
            settled(Some(7), &[("m0", Agreed), ("m1", Absent), ("m2", Agreed)]),
        ),
    ];
    h.run(steps);
}

#[test]
fn late_commit_earns_nothing() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let steps = vec![
        step("task", 0, Task { r: 3 }, start_timers(Primary, 0)),
        step("m0 commit", 10, Votes("m0", vec![C(Primary, 7)]), vec![]),
        step("m1 commit", 10, Votes("m1", vec![C(Primary, 7)]), vec![]),
        step("m0 reveals", 20, Votes("m0", vec![R(Primary, 7)]), vec![]),
        step(
            "m2 commits after a reveal: late",
            30,
            Votes("m2", vec![C(Primary, 7)]),
            vec![],
        ),
        step(
            "m2's reveal does not count",
            40,
            Votes("m2", vec![R(Primary, 7)]),
            vec![],
        ),
        step(
            "m1 reveals: quorum without m2",
            50,
            Votes("m1", vec![R(Primary, 7)]),
            vec![Verdict(Primary, 7, labels(&["m0", "m1"]))],
        ),
        step(
            "deadline: late m2 absent",
            CT + RT,
            Timeout(Primary, Deadline),
            settled(Some(7), &[("m0", Agreed), ("m1", Agreed), ("m2", Absent)]),
        ),
    ];
    h.run(steps);
}

#[test]
fn late_commit_and_reveal_cannot_complete_a_quorum() {
    // Only one on-time committer revealed; a late commit + reveal of the same
    // result must not make the second vote of a quorum.
    let mut h = Harness::new(6, 3, Seat::Observer);
    let steps = vec![
        step("task", 0, Task { r: 3 }, start_timers(Primary, 0)),
        step("m0 commit", 10, Votes("m0", vec![C(Primary, 7)]), vec![]),
        step("m0 reveals", 20, Votes("m0", vec![R(Primary, 7)]), vec![]),
        step(
            "m2 commit + reveal after seeing it",
            30,
            Votes("m2", vec![C(Primary, 7), R(Primary, 7)]),
            vec![],
        ),
        step(
            "m1 late too",
            40,
            Votes("m1", vec![C(Primary, 7), R(Primary, 7)]),
            vec![],
        ),
        step(
            "deadline: no quorum -> escalate (3 candidates left)",
            CT + RT,
            Timeout(Primary, Deadline),
            {
                let mut v = vec![Escalate(3)];
                v.extend(start_timers(Escalation, CT + RT));
                v
            },
        ),
    ];
    h.run(steps);
}

#[test]
fn mismatching_reveal_is_evidence_and_does_not_count() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let steps = vec![
        step("task", 0, Task { r: 3 }, start_timers(Primary, 0)),
        step("m0 commit", 10, Votes("m0", vec![C(Primary, 7)]), vec![]),
        step("m1 commit", 10, Votes("m1", vec![C(Primary, 7)]), vec![]),
        step(
            "m2 commit to 7",
            10,
            Votes("m2", vec![C(Primary, 7)]),
            vec![],
        ),
        step(
            "m2 reveals 9: does not open its commit",
            20,
            Votes("m2", vec![R(Primary, 9)]),
            vec![Mismatch("m2".into())],
        ),
        step("m0 reveals", 21, Votes("m0", vec![R(Primary, 7)]), vec![]),
        step(
            "m1 reveals",
            22,
            Votes("m1", vec![R(Primary, 7)]),
            vec![Verdict(Primary, 7, labels(&["m0", "m1"]))],
        ),
        step(
            "deadline: m2 absent",
            CT + RT,
            Timeout(Primary, Deadline),
            settled(Some(7), &[("m0", Agreed), ("m1", Agreed), ("m2", Absent)]),
        ),
    ];
    h.run(steps);
}

#[test]
fn duplicate_messages_are_idempotent() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let steps = vec![
        step("task", 0, Task { r: 3 }, start_timers(Primary, 0)),
        step("task again", 1, Task { r: 3 }, vec![]),
        step("m0 commit", 10, Votes("m0", vec![C(Primary, 7)]), vec![]),
        step("same batch again", 11, Replay, vec![]),
        step(
            "same commit in a new batch",
            12,
            Votes("m0", vec![C(Primary, 7), C(Primary, 7)]),
            vec![],
        ),
        step("m1 commit", 13, Votes("m1", vec![C(Primary, 7)]), vec![]),
        step("m0 reveal", 20, Votes("m0", vec![R(Primary, 7)]), vec![]),
        step("m0 reveal again", 21, Replay, vec![]),
        step(
            "m1 reveal",
            22,
            Votes("m1", vec![R(Primary, 7)]),
            vec![Verdict(Primary, 7, labels(&["m0", "m1"]))],
        ),
        step("m1 reveal again: no second verdict", 23, Replay, vec![]),
        step(
            "commit timeout twice",
            CT,
            Timeout(Primary, CommitTimeout),
            vec![],
        ),
        step(
            "commit timeout twice",
            CT,
            Timeout(Primary, CommitTimeout),
            vec![],
        ),
        step(
            "deadline",
            CT + RT,
            Timeout(Primary, Deadline),
            settled(Some(7), &[("m0", Agreed), ("m1", Agreed), ("m2", Absent)]),
        ),
        step(
            "deadline again",
            CT + RT,
            Timeout(Primary, Deadline),
            vec![],
        ),
    ];
    h.run(steps);
}

#[test]
fn equivocating_commit_discards_the_member() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let steps = vec![
        step("task", 0, Task { r: 3 }, start_timers(Primary, 0)),
        step("m2 commits", 10, Votes("m2", vec![C(Primary, 7)]), vec![]),
        step(
            "m2 commits differently",
            11,
            Votes("m2", vec![Cs(Primary, 7, 1)]),
            vec![Equivocation("m2".into()), Rep("m2".into(), Equivocated)],
        ),
        step(
            "m2 again: ignored",
            12,
            Votes("m2", vec![C(Primary, 7)]),
            vec![],
        ),
        step("m0 commit", 13, Votes("m0", vec![C(Primary, 7)]), vec![]),
        step("m1 commit", 13, Votes("m1", vec![C(Primary, 7)]), vec![]),
        step(
            "m2 reveal: ignored",
            20,
            Votes("m2", vec![R(Primary, 7)]),
            vec![],
        ),
        step("m0 reveal", 21, Votes("m0", vec![R(Primary, 7)]), vec![]),
        step(
            "m1 reveal",
            22,
            Votes("m1", vec![R(Primary, 7)]),
            vec![Verdict(Primary, 7, labels(&["m0", "m1"]))],
        ),
        step(
            "deadline: m2 already penalised, not listed",
            CT + RT,
            Timeout(Primary, Deadline),
            settled(Some(7), &[("m0", Agreed), ("m1", Agreed)]),
        ),
    ];
    h.run(steps);
    let m2 = h.peer("m2");
    assert_eq!(h.driver.reputation().get(&m2), 5_000);
}

#[test]
fn reveal_equivocation_after_quorum_is_still_evidence() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let steps = vec![
        step("task", 0, Task { r: 3 }, start_timers(Primary, 0)),
        step("m0 commit", 10, Votes("m0", vec![C(Primary, 7)]), vec![]),
        step("m2 commit", 10, Votes("m2", vec![C(Primary, 7)]), vec![]),
        step("m0 reveal", 20, Votes("m0", vec![R(Primary, 7)]), vec![]),
        step(
            "m2 reveals two ways in one batch",
            21,
            Votes("m2", vec![R(Primary, 7), Rs(Primary, 7, 1)]),
            // The first reveal completes the quorum before the second is read.
            vec![
                Verdict(Primary, 7, labels(&["m0", "m2"])),
                Equivocation("m2".into()),
                Rep("m2".into(), Equivocated),
            ],
        ),
    ];
    h.run(steps);
}

#[test]
fn copied_reveal_without_own_commit_does_not_count() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let steps = vec![
        step("task", 0, Task { r: 3 }, start_timers(Primary, 0)),
        step("m0 commit", 10, Votes("m0", vec![C(Primary, 7)]), vec![]),
        step("m1 commit", 10, Votes("m1", vec![C(Primary, 7)]), vec![]),
        step("m0 reveal", 20, Votes("m0", vec![R(Primary, 7)]), vec![]),
        step(
            "m2 copies m0's reveal, never committed",
            25,
            Votes("m2", vec![Copy(Primary, 7, "m0")]),
            vec![],
        ),
        step(
            "m1 reveal",
            30,
            Votes("m1", vec![R(Primary, 7)]),
            vec![Verdict(Primary, 7, labels(&["m0", "m1"]))],
        ),
        step(
            "deadline: the copier earns nothing",
            CT + RT,
            Timeout(Primary, Deadline),
            settled(Some(7), &[("m0", Agreed), ("m1", Agreed), ("m2", Absent)]),
        ),
    ];
    h.run(steps);
}

#[test]
fn copied_reveal_over_a_different_commit_is_a_mismatch() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let steps = vec![
        step("task", 0, Task { r: 3 }, start_timers(Primary, 0)),
        step("m0 commit", 10, Votes("m0", vec![C(Primary, 7)]), vec![]),
        step(
            "m2 commits to junk",
            10,
            Votes("m2", vec![C(Primary, 1)]),
            vec![],
        ),
        step("m0 reveal", 20, Votes("m0", vec![R(Primary, 7)]), vec![]),
        step(
            "m2 copies m0's reveal",
            25,
            Votes("m2", vec![Copy(Primary, 7, "m0")]),
            vec![Mismatch("m2".into())],
        ),
        step(
            "m1 late commit + reveal",
            30,
            Votes("m1", vec![C(Primary, 7), R(Primary, 7)]),
            vec![],
        ),
        step(
            "deadline: only one countable vote -> escalate",
            CT + RT,
            Timeout(Primary, Deadline),
            {
                let mut v = vec![Escalate(3)];
                v.extend(start_timers(Escalation, CT + RT));
                v
            },
        ),
    ];
    h.run(steps);
}

fn escalation_prefix() -> Vec<Step> {
    let mut steps = vec![step("task", 0, Task { r: 3 }, start_timers(Primary, 0))];
    for (w, r) in [("m0", 7), ("m1", 8), ("m2", 9)] {
        steps.push(step("commit", 10, Votes(w, vec![C(Primary, r)]), vec![]));
    }
    for (w, r) in [("m0", 7), ("m1", 8), ("m2", 9)] {
        steps.push(step(
            "reveal: all different",
            20,
            Votes(w, vec![R(Primary, r)]),
            vec![],
        ));
    }
    let mut esc = vec![Escalate(7)];
    esc.extend(start_timers(Escalation, CT + RT));
    steps.push(step(
        "deadline without quorum: escalate to 2r+1",
        CT + RT,
        Timeout(Primary, Deadline),
        esc,
    ));
    steps
}

#[test]
fn no_quorum_escalates_then_verdict() {
    let mut h = Harness::new(12, 3, Seat::Observer);
    let mut steps = escalation_prefix();
    let t = CT + RT;
    for w in ["e0", "e1", "e2", "e3", "e4"] {
        steps.push(step(
            "escalation commit",
            t + 10,
            Votes(w, vec![C(Escalation, 7)]),
            vec![],
        ));
    }
    for w in ["e0", "e1", "e2", "e3"] {
        steps.push(step(
            "escalation reveal",
            t + 20,
            Votes(w, vec![R(Escalation, 7)]),
            vec![],
        ));
    }
    steps.push(step(
        "fifth reveal: q = 5 of 7",
        t + 30,
        Votes("e4", vec![R(Escalation, 7)]),
        vec![Verdict(
            Escalation,
            7,
            labels(&["e0", "e1", "e2", "e3", "e4"]),
        )],
    ));
    steps.push(step(
        "primary deadline again: nothing",
        t + 40,
        Timeout(Primary, Deadline),
        vec![],
    ));
    steps.push(step(
        "escalation deadline settles both rounds",
        t + CT + RT,
        Timeout(Escalation, Deadline),
        settled(
            Some(7),
            &[
                ("m0", Agreed),
                ("m1", Disagreed),
                ("m2", Disagreed),
                ("e0", Agreed),
                ("e1", Agreed),
                ("e2", Agreed),
                ("e3", Agreed),
                ("e4", Agreed),
                ("e5", Absent),
                ("e6", Absent),
            ],
        ),
    ));
    h.run(steps);
}

#[test]
fn escalation_member_executes_when_escalating() {
    let mut h = Harness::new(12, 3, Seat::Escalation(2));
    let t = CT + RT;
    let mut esc = vec![Escalate(7), Execute(Escalation)];
    esc.extend(start_timers(Escalation, t));
    let steps = vec![
        step(
            "task: not a primary member",
            0,
            Task { r: 3 },
            start_timers(Primary, 0),
        ),
        step(
            "early escalation vote from a faster node is kept",
            t - 5,
            Votes("e0", vec![C(Escalation, 7)]),
            vec![],
        ),
        step(
            "deadline: escalate and execute",
            t,
            Timeout(Primary, Deadline),
            esc,
        ),
        step(
            "executed",
            t + 5,
            Exec {
                round: Escalation,
                result: 7,
            },
            vec![Persist(Escalation), Commit(Escalation)],
        ),
        step("own commit back", t + 6, Loopback, vec![]),
    ];
    h.run(steps);
}

#[test]
fn no_quorum_twice_fails_and_flags_nondeterminism() {
    let mut h = Harness::new(12, 3, Seat::Observer);
    let mut steps = escalation_prefix();
    let t = CT + RT;
    for (w, r) in [("e0", 7), ("e1", 7), ("e2", 8), ("e3", 9)] {
        steps.push(step(
            "escalation commit",
            t + 10,
            Votes(w, vec![C(Escalation, r)]),
            vec![],
        ));
    }
    for (w, r) in [("e0", 7), ("e1", 7), ("e2", 8), ("e3", 9)] {
        steps.push(step(
            "escalation reveal",
            t + 20,
            Votes(w, vec![R(Escalation, r)]),
            vec![],
        ));
    }
    let mut fail = vec![Failed(true)];
    fail.extend(settled(
        None,
        &[("e4", Absent), ("e5", Absent), ("e6", Absent)],
    ));
    steps.push(step(
        "escalation deadline: fail, nobody slashed",
        t + CT + RT,
        Timeout(Escalation, Deadline),
        fail,
    ));
    steps.push(step(
        "late reveal after failure: ignored",
        t + CT + RT + 1,
        Votes("e4", vec![R(Escalation, 7)]),
        vec![],
    ));
    h.run(steps);
    assert!(h.driver.task(&h.task).unwrap().is_failed());
}

#[test]
fn all_silent_fails_without_nondeterminism_flag() {
    let mut h = Harness::new(12, 3, Seat::Observer);
    let t = CT + RT;
    let mut esc = vec![Escalate(7)];
    esc.extend(start_timers(Escalation, t));
    let mut fail = vec![Failed(false)];
    let absent: Vec<(&str, hal9_consensus::Outcome)> =
        ["m0", "m1", "m2", "e0", "e1", "e2", "e3", "e4", "e5", "e6"]
            .iter()
            .map(|l| (*l, Absent))
            .collect();
    fail.extend(settled(None, &absent));
    h.run(vec![
        step("task", 0, Task { r: 3 }, start_timers(Primary, 0)),
        step("deadline", t, Timeout(Primary, Deadline), esc),
        step(
            "escalation deadline",
            2 * t,
            Timeout(Escalation, Deadline),
            fail,
        ),
    ]);
}

#[test]
fn no_escalation_committee_fails_at_first_deadline() {
    // 4 validators, r = 3: one left after excluding the committee.
    let mut h = Harness::new(4, 3, Seat::Observer);
    let mut fail = vec![Failed(false)];
    fail.extend(settled(
        None,
        &[("m0", Absent), ("m1", Absent), ("m2", Absent)],
    ));
    h.run(vec![
        step("task", 0, Task { r: 3 }, start_timers(Primary, 0)),
        step(
            "deadline: cannot escalate",
            CT + RT,
            Timeout(Primary, Deadline),
            fail,
        ),
    ]);
}

#[test]
fn votes_before_the_task_are_buffered_and_replayed() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let mut at_task = start_timers(Primary, 5);
    at_task.push(Verdict(Primary, 7, labels(&["m0", "m1"])));
    h.run(vec![
        step(
            "m0 commit before task",
            0,
            Votes("m0", vec![C(Primary, 7)]),
            vec![],
        ),
        step(
            "m1 commit before task",
            0,
            Votes("m1", vec![C(Primary, 7)]),
            vec![],
        ),
        step(
            "m0 reveal before task",
            0,
            Votes("m0", vec![R(Primary, 7)]),
            vec![],
        ),
        step(
            "m1 reveal before task",
            0,
            Votes("m1", vec![R(Primary, 7)]),
            vec![],
        ),
        step(
            "task seen: replay in arrival order",
            5,
            Task { r: 3 },
            at_task,
        ),
    ]);
    assert_eq!(h.driver.pending_votes(), 0);
}

#[test]
fn non_members_and_bad_parameters_are_refused() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    h.run(vec![
        step("r = 2 is below the floor", 0, Task { r: 2 }, vec![Rejected]),
        step(
            "r = 7 with 6 validators cannot draw",
            0,
            Task { r: 7 },
            vec![Rejected],
        ),
        step("task", 0, Task { r: 3 }, start_timers(Primary, 0)),
    ]);
    // A validator outside the committee votes: ignored, no effect.
    let outsider = h
        .validators
        .validators()
        .iter()
        .map(|v| v.peer)
        .find(|p| !h.labels.get(p).is_some_and(|l| l.starts_with('m')))
        .unwrap();
    let items = vec![hal9_consensus::VoteItem::Commit(
        hal9_consensus::CommitVote {
            task: h.task,
            round: hal9_consensus::Round::Primary,
            commitment: hal9_consensus::Commitment([1; 32]),
        },
    )];
    let batch = h.sign(outsider, items);
    assert!(
        h.driver
            .apply(hal9_consensus::Input::Votes { batch, now: 1 })
            .is_empty()
    );
}

#[test]
fn reveal_waits_for_the_reveal_delay() {
    let cfg = hal9_consensus::Config {
        reveal_delay_ms: 50,
        ..config()
    };
    let mut h = Harness::with_config(6, 3, Seat::Member(1), cfg);
    let mut start = vec![Execute(Primary)];
    start.extend(start_timers(Primary, 0));
    h.run(vec![
        step("task", 0, Task { r: 3 }, start),
        step(
            "executed",
            10,
            Exec {
                round: Primary,
                result: 7,
            },
            vec![Persist(Primary), Commit(Primary)],
        ),
        step("own commit back", 11, Loopback, vec![]),
        step(
            "m0 commit: q commits -> wait, do not reveal yet",
            20,
            Votes("m0", vec![C(Primary, 7)]),
            vec![Timer(Primary, RevealDelay, 70)],
        ),
        step(
            "m2 commit: timer already set",
            30,
            Votes("m2", vec![C(Primary, 7)]),
            vec![],
        ),
        step(
            "delay over: reveal",
            70,
            Timeout(Primary, RevealDelay),
            vec![Reveal(Primary, 7)],
        ),
        step(
            "delay fires twice: nothing",
            71,
            Timeout(Primary, RevealDelay),
            vec![],
        ),
        step(
            "commit timeout after reveal: nothing",
            CT,
            Timeout(Primary, CommitTimeout),
            vec![],
        ),
    ]);
}

#[test]
fn status_follows_the_task() {
    use hal9_consensus::TaskStatus;
    let mut h = Harness::new(6, 3, Seat::Observer);
    h.input(Task { r: 3 }, 0);
    assert_eq!(
        h.driver.task(&h.task).unwrap().status(),
        TaskStatus::Active { round: Primary }
    );
    for w in ["m0", "m1"] {
        h.input(Votes(w, vec![C(Primary, 7)]), 10);
    }
    for w in ["m0", "m1"] {
        h.input(Votes(w, vec![R(Primary, 7)]), 20);
    }
    assert_eq!(
        h.driver.task(&h.task).unwrap().status(),
        TaskStatus::Decided {
            round: Primary,
            result: res(7)
        }
    );
    h.input(Timeout(Primary, Deadline), CT + RT);
    assert_eq!(
        h.driver.task(&h.task).unwrap().status(),
        TaskStatus::Settled { result: res(7) }
    );
    assert_eq!(h.driver.tasks().count(), 1);
}

#[test]
fn escalation_quorum_seen_before_own_deadline_still_settles() {
    // Faster nodes escalated; their escalation committee decides before this
    // node's primary deadline. The verdict counts, and the task settles at
    // the primary deadline (the escalation deadline is never set here).
    let mut h = Harness::new(12, 3, Seat::Observer);
    let mut steps = vec![step("task", 0, Task { r: 3 }, start_timers(Primary, 0))];
    for w in ["e0", "e1", "e2", "e3", "e4"] {
        steps.push(step(
            "early escalation commit",
            500,
            Votes(w, vec![C(Escalation, 7)]),
            vec![],
        ));
    }
    for w in ["e0", "e1", "e2", "e3"] {
        steps.push(step(
            "early escalation reveal",
            600,
            Votes(w, vec![R(Escalation, 7)]),
            vec![],
        ));
    }
    steps.push(step(
        "fifth reveal: escalation verdict before own deadline",
        610,
        Votes("e4", vec![R(Escalation, 7)]),
        vec![Verdict(
            Escalation,
            7,
            labels(&["e0", "e1", "e2", "e3", "e4"]),
        )],
    ));
    steps.push(step(
        "own primary deadline: settle (primary members silent)",
        CT + RT,
        Timeout(Primary, Deadline),
        settled(
            Some(7),
            &[
                ("m0", Absent),
                ("m1", Absent),
                ("m2", Absent),
                ("e0", Agreed),
                ("e1", Agreed),
                ("e2", Agreed),
                ("e3", Agreed),
                ("e4", Agreed),
                ("e5", Absent),
                ("e6", Absent),
            ],
        ),
    ));
    h.run(steps);
    assert!(h.driver.task(&h.task).unwrap().is_finished());
}
