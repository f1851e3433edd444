//! A small harness for table tests of the driver: members are named by
//! their committee position ("m0".., "e0".. for the escalation committee),
//! effects are summarised into [`Fx`] for comparison.

use std::collections::{BTreeMap, BTreeSet};

use hal9_consensus::testkit::keypair;
use hal9_consensus::*;
use libp2p_identity::{Keypair, PeerId};

pub const CT: u64 = 1_000;
pub const RT: u64 = 1_000;

pub fn config() -> Config {
    Config {
        commit_timeout_ms: CT,
        reveal_timeout_ms: RT,
        reveal_delay_ms: 0,
        ..Config::default()
    }
}

pub fn res(n: u8) -> ResultHash {
    ResultHash([n; 32])
}

pub fn cid(n: u8) -> Cid {
    Cid::new(vec![0x01, 0x55, n]).unwrap()
}

/// Effects in a comparable shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fx {
    Execute(Round),
    Persist(Round),
    Commit(Round),
    Reveal(Round, u8),
    Timer(Round, TimerKind, u64),
    Verdict(Round, u8, Vec<String>),
    Escalate(usize),
    Failed(bool),
    Equivocation(String),
    Mismatch(String),
    Settled(Option<u8>, Vec<(String, Outcome)>),
    Rep(String, Outcome),
    Rejected,
}

/// What a step feeds in.
#[derive(Clone, Debug)]
pub enum In {
    Task {
        r: usize,
    },
    Exec {
        round: Round,
        result: u8,
    },
    /// Votes signed by a named member, in one batch.
    Votes(&'static str, Vec<V>),
    Timeout(Round, TimerKind),
    /// Sign the local node's pending broadcasts and feed them back.
    Loopback,
    /// Apply the exact batch of the previous `Votes` step again.
    Replay,
}

/// One vote in a step.
#[derive(Clone, Debug)]
pub enum V {
    /// Commit to result with the member's own salt number 0.
    C(Round, u8),
    /// Commit with salt number `s`.
    Cs(Round, u8, u8),
    /// Reveal result with the member's salt number 0.
    R(Round, u8),
    /// Reveal result with salt number `s`.
    Rs(Round, u8, u8),
    /// Reveal result with the salt of another member (a copy).
    Copy(Round, u8, &'static str),
}

pub struct Step {
    pub desc: &'static str,
    pub now: u64,
    pub input: In,
    pub expect: Vec<Fx>,
}

pub fn step(desc: &'static str, now: u64, input: In, expect: Vec<Fx>) -> Step {
    Step {
        desc,
        now,
        input,
        expect,
    }
}

pub struct Harness {
    pub keys: BTreeMap<PeerId, Keypair>,
    pub labels: BTreeMap<PeerId, String>,
    pub by_label: BTreeMap<String, PeerId>,
    pub validators: ValidatorSet,
    pub driver: Driver,
    pub task: TaskId,
    pub local: PeerId,
    pub outbox: Vec<VoteItem>,
    pub seq: u64,
    pub last_batch: Option<VerifiedBatch>,
    pub r: usize,
}

/// Where the local node sits.
#[derive(Clone, Copy, Debug)]
pub enum Seat {
    /// Not a validator.
    Observer,
    /// Primary committee member at this position.
    Member(usize),
    /// Escalation committee member at this position.
    Escalation(usize),
}

impl Harness {
    pub fn new(n_validators: u64, r: usize, seat: Seat) -> Self {
        Self::with_config(n_validators, r, seat, config())
    }

    pub fn with_config(n_validators: u64, r: usize, seat: Seat, config: Config) -> Self {
        let mut keys = BTreeMap::new();
        let mut vals = Vec::new();
        for i in 0..n_validators {
            let k = keypair(i);
            let p = k.public().to_peer_id();
            keys.insert(p, k);
            vals.push(Validator {
                peer: p,
                weight: 10 + i as u128,
                capabilities: BTreeSet::new(),
            });
        }
        let validators = ValidatorSet::new(vals).unwrap();
        let task = TaskId(keccak256(&[
            b"table task",
            &n_validators.to_be_bytes(),
            &(r as u64).to_be_bytes(),
        ]));
        let mut labels = BTreeMap::new();
        let primary = validators.committee(&task, r, None).unwrap();
        for (i, p) in primary.iter().enumerate() {
            labels.insert(*p, format!("m{i}"));
        }
        let escalation = validators
            .escalation_committee(&task, &primary, r, None)
            .unwrap_or_default();
        for (i, p) in escalation.iter().enumerate() {
            labels.insert(*p, format!("e{i}"));
        }
        let local = match seat {
            Seat::Observer => {
                let k = keypair(10_000);
                let p = k.public().to_peer_id();
                keys.insert(p, k);
                labels.insert(p, "local".into());
                p
            }
            Seat::Member(i) => primary[i],
            Seat::Escalation(i) => escalation[i],
        };
        let by_label = labels.iter().map(|(p, l)| (l.clone(), *p)).collect();
        let driver = Driver::new(local, config, validators.clone());
        Self {
            keys,
            labels,
            by_label,
            validators,
            driver,
            task,
            local,
            outbox: Vec::new(),
            seq: 0,
            last_batch: None,
            r,
        }
    }

    pub fn peer(&self, label: &str) -> PeerId {
        self.by_label[label]
    }

    pub fn salt(&self, peer: &PeerId, n: u8) -> Salt {
        Salt(keccak256(&[b"salt", &peer.to_bytes(), &[n]]))
    }

    pub fn label(&self, p: &PeerId) -> String {
        self.labels.get(p).cloned().unwrap_or_else(|| p.to_string())
    }

    pub fn sign(&mut self, peer: PeerId, items: Vec<VoteItem>) -> VerifiedBatch {
        self.seq += 1;
        let b = VoteBatch::sign(&self.keys[&peer], self.seq, items).unwrap();
        // Go through the wire like a real message.
        validate_vote_message(&b.encode()).unwrap()
    }

    pub fn vote_items(&self, who: &str, votes: &[V]) -> Vec<VoteItem> {
        let p = self.peer(who);
        let task = self.task;
        votes
            .iter()
            .map(|v| match v {
                V::C(round, r) | V::Cs(round, r, _) => {
                    let s = if let V::Cs(_, _, s) = v { *s } else { 0 };
                    VoteItem::Commit(CommitVote {
                        task,
                        round: *round,
                        commitment: Commitment::compute(&res(*r), &self.salt(&p, s), &p),
                    })
                }
                V::R(round, r) | V::Rs(round, r, _) => {
                    let s = if let V::Rs(_, _, s) = v { *s } else { 0 };
                    VoteItem::Reveal(RevealVote {
                        task,
                        round: *round,
                        result: res(*r),
                        salt: self.salt(&p, s),
                        cid: cid(*r),
                    })
                }
                V::Copy(round, r, from) => VoteItem::Reveal(RevealVote {
                    task,
                    round: *round,
                    result: res(*r),
                    salt: self.salt(&self.peer(from), 0),
                    cid: cid(*r),
                }),
            })
            .collect()
    }

    pub fn input(&mut self, input: In, now: u64) -> Vec<Effect> {
        match input {
            In::Task { r } => self.driver.apply(Input::TaskSeen {
                task: self.task,
                params: TaskParams {
                    r,
                    capability: None,
                    committee: None,
                },
                now,
            }),
            In::Exec { round, result } => {
                let salt = self.salt(&self.local, 0);
                self.driver.apply(Input::ExecutionFinished {
                    task: self.task,
                    round,
                    result: res(result),
                    cid: cid(result),
                    salt,
                    now,
                })
            }
            In::Votes(who, votes) => {
                let items = self.vote_items(who, &votes);
                let batch = self.sign(self.peer(who), items);
                self.last_batch = Some(batch.clone());
                self.driver.apply(Input::Votes { batch, now })
            }
            In::Timeout(round, kind) => self.driver.apply(Input::Timeout {
                task: self.task,
                timer: Timer { round, kind },
                now,
            }),
            In::Loopback => {
                let items = std::mem::take(&mut self.outbox);
                let batch = self.sign(self.local, items);
                self.driver.apply(Input::Votes { batch, now })
            }
            In::Replay => {
                let batch = self.last_batch.clone().expect("a previous batch");
                self.driver.apply(Input::Votes { batch, now })
            }
        }
    }

    pub fn summarise(&mut self, fx: &[Effect]) -> Vec<Fx> {
        let mut out = Vec::new();
        for e in fx {
            out.push(match e {
                Effect::Execute { round, .. } => Fx::Execute(*round),
                Effect::Persist(p) => Fx::Persist(p.round),
                Effect::Broadcast(item) => {
                    self.outbox.push(item.clone());
                    match item {
                        VoteItem::Commit(c) => Fx::Commit(c.round),
                        VoteItem::Reveal(r) => Fx::Reveal(r.round, r.result.0[0]),
                    }
                }
                Effect::SetTimer { timer, at, .. } => Fx::Timer(timer.round, timer.kind, *at),
                Effect::Verdict(v) => {
                    let mut signers: Vec<String> = v
                        .certificate
                        .votes
                        .iter()
                        .map(|c| self.label(&c.reveal.signer))
                        .collect();
                    signers.sort();
                    // Every verdict's certificate must verify on its own.
                    v.certificate
                        .verify(
                            &self.validators,
                            &TaskParams {
                                r: self.r,
                                capability: None,
                                committee: None,
                            },
                        )
                        .expect("certificate verifies");
                    Fx::Verdict(v.round, v.result.0[0], signers)
                }
                Effect::Escalate { committee, .. } => Fx::Escalate(committee.len()),
                Effect::Failed {
                    nondeterministic, ..
                } => Fx::Failed(*nondeterministic),
                Effect::Misbehaviour(ev) => match ev.as_ref() {
                    Evidence::Equivocation { member, .. } => Fx::Equivocation(self.label(member)),
                    Evidence::RevealMismatch { member, .. } => Fx::Mismatch(self.label(member)),
                },
                Effect::Settled {
                    result, outcomes, ..
                } => Fx::Settled(
                    result.map(|r| r.0[0]),
                    outcomes.iter().map(|(p, o)| (self.label(p), *o)).collect(),
                ),
                Effect::Reputation(c) => Fx::Rep(self.label(&c.member), c.outcome),
                Effect::Rejected { .. } => Fx::Rejected,
            });
        }
        out
    }

    pub fn run(&mut self, steps: Vec<Step>) {
        for (i, s) in steps.into_iter().enumerate() {
            let fx = self.input(s.input.clone(), s.now);
            let got = self.summarise(&fx);
            assert_eq!(got, s.expect, "step {i} ({}) input {:?}", s.desc, s.input);
        }
    }
}

/// Settled outcomes followed by their reputation changes.
pub fn settled(result: Option<u8>, outcomes: &[(&str, Outcome)]) -> Vec<Fx> {
    let mut v = vec![Fx::Settled(
        result,
        outcomes.iter().map(|(l, o)| (l.to_string(), *o)).collect(),
    )];
    v.extend(outcomes.iter().map(|(l, o)| Fx::Rep(l.to_string(), *o)));
    v
}

pub fn start_timers(round: Round, at: u64) -> Vec<Fx> {
    vec![
        Fx::Timer(round, TimerKind::CommitTimeout, at + CT),
        Fx::Timer(round, TimerKind::Deadline, at + CT + RT),
    ]
}

pub fn labels(ls: &[&str]) -> Vec<String> {
    ls.iter().map(|s| s.to_string()).collect()
}
