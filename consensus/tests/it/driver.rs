//! Certificates checked by a node that trusts nobody, certificate adoption,
//! restart from a persisted vote, memory bounds of the driver.

use hal9_consensus::certificate::CertifiedVote;
use hal9_consensus::*;

use crate::harness::{In::*, V::*, *};

/// Run a happy r=3 task on an observer and return its certificate.
fn decided(h: &mut Harness) -> Certificate {
    h.input(Task { r: 3 }, 0);
    for w in ["m0", "m1", "m2"] {
        h.input(Votes(w, vec![C(Round::Primary, 7)]), 10);
    }
    h.input(Votes("m0", vec![R(Round::Primary, 7)]), 20);
    let fx = h.input(Votes("m1", vec![R(Round::Primary, 7)]), 20);
    fx.into_iter()
        .find_map(|e| match e {
            Effect::Verdict(v) => Some(v.certificate),
            _ => None,
        })
        .expect("verdict")
}

fn params() -> TaskParams {
    TaskParams {
        r: 3,
        capability: None,
        committee: None,
    }
}

#[test]
fn certificate_verifies_and_each_forgery_is_caught() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let cert = decided(&mut h);
    let vals = h.validators.clone();
    cert.verify(&vals, &params()).unwrap();
    // Survives the wire.
    Certificate::decode(&cert.encode())
        .unwrap()
        .verify(&vals, &params())
        .unwrap();

    // Below quorum.
    let mut c = cert.clone();
    c.votes.pop();
    assert!(matches!(
        c.verify(&vals, &params()),
        Err(CertificateError::NoQuorum {
            quorum: 2,
            found: 1
        })
    ));

    // Same signer twice.
    let mut c = cert.clone();
    c.votes[1] = c.votes[0].clone();
    assert!(matches!(
        c.verify(&vals, &params()),
        Err(CertificateError::DuplicateSigner { .. })
    ));

    // Claims another result.
    let mut c = cert.clone();
    c.result = res(8);
    assert!(matches!(
        c.verify(&vals, &params()),
        Err(CertificateError::WrongVote { .. })
    ));

    // A non-member signs a perfectly valid commit and reveal.
    let outsider = h
        .validators
        .validators()
        .iter()
        .map(|v| v.peer)
        .find(|p| !h.labels.get(p).is_some_and(|l| l.starts_with('m')))
        .unwrap();
    let salt = h.salt(&outsider, 0);
    let items = vec![
        VoteItem::Commit(CommitVote {
            task: h.task,
            round: Round::Primary,
            commitment: Commitment::compute(&res(7), &salt, &outsider),
        }),
        VoteItem::Reveal(RevealVote {
            task: h.task,
            round: Round::Primary,
            result: res(7),
            salt,
            cid: cid(7),
        }),
    ];
    let b = h.sign(outsider, items);
    let mut c = cert.clone();
    c.votes[1] = CertifiedVote {
        commit: b.signed_vote(0).unwrap(),
        reveal: b.signed_vote(1).unwrap(),
    };
    assert!(matches!(
        c.verify(&vals, &params()),
        Err(CertificateError::NotMember { .. })
    ));

    // A member's reveal paired with a commit that it does not open.
    let m2 = h.peer("m2");
    let items = vec![
        VoteItem::Commit(CommitVote {
            task: h.task,
            round: Round::Primary,
            commitment: Commitment([0; 32]),
        }),
        VoteItem::Reveal(RevealVote {
            task: h.task,
            round: Round::Primary,
            result: res(7),
            salt: h.salt(&m2, 0),
            cid: cid(7),
        }),
    ];
    let b = h.sign(m2, items);
    let mut c = cert.clone();
    c.votes.push(CertifiedVote {
        commit: b.signed_vote(0).unwrap(),
        reveal: b.signed_vote(1).unwrap(),
    });
    assert!(matches!(
        c.verify(&vals, &params()),
        Err(CertificateError::CommitMismatch { .. })
    ));

    // Tampered signature.
    let mut c = cert.clone();
    c.votes[0].reveal.signature[5] ^= 1;
    assert!(matches!(
        c.verify(&vals, &params()),
        Err(CertificateError::Unsigned { .. })
    ));

    // Tampered Merkle path.
    let mut c = cert.clone();
    if let Some(p) = c.votes[0].commit.path.first_mut() {
        p[0] ^= 1;
    } else {
        c.votes[0].commit.path.push([0; 32]);
    }
    assert!(matches!(
        c.verify(&vals, &params()),
        Err(CertificateError::Unsigned { .. })
    ));

    // Checked against another genesis: the signers are not the committee.
    let other = ValidatorSet::new(
        (100..106)
            .map(|i| Validator {
                peer: hal9_consensus::testkit::peer(i),
                weight: 1,
                capabilities: Default::default(),
            })
            .collect(),
    )
    .unwrap();
    assert!(matches!(
        cert.verify(&other, &params()),
        Err(CertificateError::NotMember { .. })
    ));
}

#[test]
fn a_node_that_missed_the_votes_adopts_a_valid_certificate_only() {
    let mut a = Harness::new(6, 3, Seat::Observer);
    let cert = decided(&mut a);
    let mut b = Harness::new(6, 3, Seat::Member(2));
    b.input(Task { r: 3 }, 0);
    let mut forged = cert.clone();
    forged.votes.pop();
    let fx = b.driver.apply(Input::CertificateSeen {
        certificate: forged,
        now: 30,
    });
    assert!(fx.is_empty(), "forged certificate adopted: {fx:?}");
    let fx = b.driver.apply(Input::CertificateSeen {
        certificate: cert.clone(),
        now: 30,
    });
    assert!(
        matches!(&fx[..], [Effect::Verdict(v)] if v.result == res(7)),
        "{fx:?}"
    );
    let fx = b.driver.apply(Input::CertificateSeen {
        certificate: cert,
        now: 31,
    });
    assert!(fx.is_empty(), "second adoption: {fx:?}");
}

#[test]
fn restart_from_persisted_vote_reveals_the_same_value() {
    let mut h = Harness::new(6, 3, Seat::Member(0));
    h.input(Task { r: 3 }, 0);
    let fx = h.input(
        Exec {
            round: Round::Primary,
            result: 7,
        },
        10,
    );
    let persisted = fx
        .iter()
        .find_map(|e| match e {
            Effect::Persist(p) => Some(p.clone()),
            _ => None,
        })
        .expect("persist before broadcast");
    let commit_pos = fx
        .iter()
        .position(|e| matches!(e, Effect::Broadcast(VoteItem::Commit(_))))
        .unwrap();
    let persist_pos = fx
        .iter()
        .position(|e| matches!(e, Effect::Persist(_)))
        .unwrap();
    assert!(
        persist_pos < commit_pos,
        "persist must precede the broadcast"
    );
    let first_commit = match &fx[commit_pos] {
        Effect::Broadcast(VoteItem::Commit(c)) => c.clone(),
        _ => unreachable!(),
    };

    // The store keeps it as bytes.
    let bytes = persisted.encode();
    let persisted = PersistedVote::decode(&bytes).unwrap();
    assert!(PersistedVote::decode(&bytes[..bytes.len() - 1]).is_err());

    // Crash: a fresh driver with the same identity and genesis.
    let mut d = Driver::new(h.local, config(), h.validators.clone());
    let fx = d.apply(Input::Restore {
        vote: persisted,
        now: 500,
    });
    let recommit = fx.iter().find_map(|e| match e {
        Effect::Broadcast(VoteItem::Commit(c)) => Some(c.clone()),
        _ => None,
    });
    assert_eq!(
        recommit,
        Some(first_commit.clone()),
        "same commitment after restart"
    );
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Execute { .. })),
        "no second execution"
    );
    let fx = d.apply(Input::Timeout {
        task: h.task,
        timer: Timer {
            round: Round::Primary,
            kind: TimerKind::CommitTimeout,
        },
        now: CT,
    });
    let reveal = fx.iter().find_map(|e| match e {
        Effect::Broadcast(VoteItem::Reveal(r)) => Some(r.clone()),
        _ => None,
    });
    let reveal = reveal.expect("reveal at the commit timeout");
    assert_eq!(
        Commitment::compute(&reveal.result, &reveal.salt, &h.local),
        first_commit.commitment
    );
}

#[test]
fn capacity_refuses_new_work_but_evicts_finished_tasks() {
    let cfg = Config {
        max_tasks: 2,
        max_tombstones: 1,
        ..config()
    };
    let mut h = Harness::with_config(6, 3, Seat::Observer, cfg);
    let params = TaskParams {
        r: 3,
        capability: None,
        committee: None,
    };
    let t = |n: u8| TaskId([n; 32]);
    assert!(
        !h.driver
            .apply(Input::TaskSeen {
                task: t(1),
                params: params.clone(),
                now: 0
            })
            .is_empty()
    );
    assert!(
        !h.driver
            .apply(Input::TaskSeen {
                task: t(2),
                params: params.clone(),
                now: 0
            })
            .is_empty()
    );
    let fx = h.driver.apply(Input::TaskSeen {
        task: t(3),
        params: params.clone(),
        now: 0,
    });
    assert!(
        matches!(
            &fx[..],
            [Effect::Rejected {
                error: TaskError::Capacity { max: 2 },
                ..
            }]
        ),
        "{fx:?}"
    );
    assert_eq!(h.driver.tracked(), 2);
    // Task 1 runs out of time twice (no votes at all) and fails: finished.
    for (round, at) in [(Round::Primary, 2_000), (Round::Escalation, 4_000)] {
        h.driver.apply(Input::Timeout {
            task: t(1),
            timer: Timer {
                round,
                kind: TimerKind::Deadline,
            },
            now: at,
        });
    }
    assert!(h.driver.task(&t(1)).unwrap().is_failed());
    let fx = h.driver.apply(Input::TaskSeen {
        task: t(3),
        params: params.clone(),
        now: 5_000,
    });
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Rejected { .. })),
        "{fx:?}"
    );
    assert!(h.driver.task(&t(1)).is_none(), "finished task evicted");
    assert_eq!(h.driver.tracked(), 2);
    // The evicted task is remembered: seeing it again does nothing.
    assert!(
        h.driver
            .apply(Input::TaskSeen {
                task: t(1),
                params,
                now: 5_001
            })
            .is_empty()
    );
}

#[test]
fn pending_buffer_is_bounded_and_only_takes_validators() {
    let cfg = Config {
        max_pending_votes: 5,
        max_pending_per_task: 2,
        ..config()
    };
    let mut h = Harness::with_config(6, 3, Seat::Observer, cfg);
    let m0 = h.peer("m0");
    for n in 0..10u8 {
        let items = vec![
            VoteItem::Commit(CommitVote {
                task: TaskId([n; 32]),
                round: Round::Primary,
                commitment: Commitment([n; 32])
            });
            3
        ];
        let batch = h.sign(m0, items);
        h.driver.apply(Input::Votes { batch, now: 0 });
        assert!(h.driver.pending_votes() <= 5);
    }
    assert!(
        h.driver.pending_votes() >= 4,
        "recent tasks keep their buffer"
    );
    // A signer that is not a validator is never buffered.
    let stranger = hal9_consensus::testkit::keypair(77);
    let b = VoteBatch::sign(
        &stranger,
        1,
        vec![VoteItem::Commit(CommitVote {
            task: TaskId([99; 32]),
            round: Round::Primary,
            commitment: Commitment([0; 32]),
        })],
    )
    .unwrap()
    .verify()
    .unwrap();
    let before = h.driver.pending_votes();
    h.driver.apply(Input::Votes { batch: b, now: 1 });
    assert_eq!(h.driver.pending_votes(), before);
}

#[test]
fn metrics_follow_the_driver() {
    let mut reg = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut reg);
    let mut h = Harness::new(6, 3, Seat::Observer);
    h.driver = Driver::new(h.local, config(), h.validators.clone()).with_metrics(metrics.clone());
    decided(&mut h);
    assert_eq!(metrics.verdicts.get(), 1);
    assert_eq!(metrics.tasks_started.get(), 1);
    assert_eq!(metrics.tasks_tracked.get(), 1);
}

#[test]
fn validator_set_change_applies_to_new_tasks_only() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    h.input(Task { r: 3 }, 0);
    let before: Vec<_> = h
        .driver
        .task(&h.task)
        .unwrap()
        .committee(Round::Primary)
        .unwrap()
        .to_vec();
    // A new set with entirely different validators.
    let fresh = ValidatorSet::new(
        (200..206)
            .map(|i| Validator {
                peer: hal9_consensus::testkit::peer(i),
                weight: 5,
                capabilities: Default::default(),
            })
            .collect(),
    )
    .unwrap();
    assert!(
        h.driver
            .apply(Input::ValidatorsChanged {
                validators: fresh.clone(),
                now: 1
            })
            .is_empty()
    );
    // The running task keeps its committee and still decides with it.
    assert_eq!(
        h.driver
            .task(&h.task)
            .unwrap()
            .committee(Round::Primary)
            .unwrap(),
        &before[..]
    );
    for w in ["m0", "m1"] {
        h.input(Votes(w, vec![C(Round::Primary, 7)]), 10);
    }
    h.input(Votes("m0", vec![R(Round::Primary, 7)]), 20);
    let fx = h.input(Votes("m1", vec![R(Round::Primary, 7)]), 20);
    assert!(fx.iter().any(|e| matches!(e, Effect::Verdict(_))));
    // A new task draws from the new set.
    let t2 = TaskId([42; 32]);
    h.driver.apply(Input::TaskSeen {
        task: t2,
        params: TaskParams {
            r: 3,
            capability: None,
            committee: None,
        },
        now: 30,
    });
    let c2 = h
        .driver
        .task(&t2)
        .unwrap()
        .committee(Round::Primary)
        .unwrap();
    assert!(c2.iter().all(|p| fresh.contains(p)));
}

#[test]
fn reputation_scales_committee_weights() {
    let mut h = Harness::new(6, 3, Seat::Observer);
    let m0 = h.peer("m0");
    let mut book = ReputationBook::new(ReputationParams::default());
    book.set(m0, 500);
    let scaled = h.validators.with_reputation(&book);
    let w = |s: &ValidatorSet| s.validators().iter().find(|v| v.peer == m0).unwrap().weight;
    // Small genesis weights: 5% rounds down to 0, and the floor keeps 1.
    assert_eq!(w(&scaled), (w(&h.validators) * 500 / 10_000).max(1));
    assert!(w(&scaled) < w(&h.validators));
    h.driver = Driver::new(h.local, config(), scaled);
    assert_eq!(h.driver.validators().validators().len(), 6);
}
