//! A seeded, deterministic simulator: many nodes, each running the real
//! [`Driver`], a simulated network (latency, loss, duplication, reordering,
//! partitions), crashes with restart from the persisted votes, a fake clock,
//! and byzantine members. Same seed, same trace.
//!
//! The simulated engine does what the real one must: it batches each node's
//! votes per tick, signs and encodes them, feeds its own batch back, and
//! gossips; members of the deciding committee gossip the certificate so that
//! a node that saw the votes in a different order still converges.

use std::collections::{BTreeMap, BTreeSet};

use hal9_consensus::testkit::keypair;
use hal9_consensus::wire::MAX_BATCH_ITEMS;
use hal9_consensus::*;
use libp2p_identity::{Keypair, PeerId};

/// Deterministic PRNG (splitmix64): stable across platforms and versions.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.next() % 1000 < per_mille as u64
    }
}

/// How a node behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    /// Computes a result of its own (never the same as anyone else's).
    WrongResult,
    /// Never executes nor votes (still observes).
    Silent,
    /// Holds its votes back until after others revealed.
    LateCommit,
    /// Does not execute; copies the first reveal it sees.
    CopyReveal,
    /// Sends two different commits to different peers.
    Equivocate,
}

#[derive(Clone, Debug)]
pub struct Crash {
    pub node: usize,
    pub at: u64,
    pub restart: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: usize,
    pub r: usize,
    pub tasks: usize,
    /// Tasks are announced at i * task_spacing_ms.
    pub task_spacing_ms: u64,
    pub latency_ms: (u64, u64),
    pub loss_per_mille: u32,
    pub dup_per_mille: u32,
    pub tick_ms: u64,
    pub exec_ms: (u64, u64),
    pub behaviours: BTreeMap<usize, Behaviour>,
    /// (group of each node, from, until): messages between groups are lost.
    pub partition: Option<(Vec<u8>, u64, u64)>,
    pub crashes: Vec<Crash>,
    pub core: Config,
    pub end_ms: u64,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            nodes: 10,
            r: 3,
            tasks: 8,
            task_spacing_ms: 10,
            latency_ms: (5, 40),
            loss_per_mille: 0,
            dup_per_mille: 0,
            tick_ms: 40,
            exec_ms: (10, 80),
            behaviours: BTreeMap::new(),
            partition: None,
            crashes: Vec::new(),
            core: Config {
                commit_timeout_ms: 600,
                reveal_timeout_ms: 600,
                reveal_delay_ms: 80,
                ..Config::default()
            },
            end_ms: 6_000,
        }
    }
    fn behaviour(&self, n: usize) -> Behaviour {
        self.behaviours
            .get(&n)
            .copied()
            .unwrap_or(Behaviour::Honest)
    }
}

#[derive(Clone, Debug)]
enum Msg {
    Votes(VerifiedBatch),
    Cert(Box<Certificate>),
}

#[derive(Clone, Debug)]
enum Ev {
    Announce {
        node: usize,
        task: TaskId,
    },
    Deliver {
        node: usize,
        msg: Msg,
    },
    Timer {
        node: usize,
        inc: u32,
        task: TaskId,
        timer: Timer,
    },
    ExecDone {
        node: usize,
        inc: u32,
        task: TaskId,
        round: Round,
    },
    Tick {
        node: usize,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
}

struct Node {
    key: Keypair,
    peer: PeerId,
    behaviour: Behaviour,
    driver: Option<Driver>,
    inc: u32,
    outbox: Vec<VoteItem>,
    seq: u64,
    disk: Vec<PersistedVote>,
    /// Tasks with a recorded verdict or failure (persisted, like the store).
    done_disk: BTreeSet<TaskId>,
    copied: BTreeSet<(TaskId, Round)>,
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct SimOutcome {
    pub trace_hash: [u8; 32],
    pub trace_len: usize,
    /// task -> node -> recorded verdict result
    pub verdicts: BTreeMap<TaskId, BTreeMap<usize, ResultHash>>,
    /// task -> nodes that recorded a failure
    pub failed: BTreeMap<TaskId, BTreeSet<usize>>,
    pub honest_result: BTreeMap<TaskId, ResultHash>,
    /// task -> primary committee (node indices)
    pub committees: BTreeMap<TaskId, Vec<usize>>,
    /// task -> escalation committee (node indices), when one can be drawn
    pub escalation_committees: BTreeMap<TaskId, Vec<usize>>,
    /// nodes that are not honest
    pub byzantine: BTreeSet<usize>,
    pub escalations: usize,
    pub equivocations: usize,
    pub mismatches: usize,
    pub batches: usize,
    pub crashed: BTreeSet<usize>,
    /// Tasks still unfinished in live drivers when the run ended.
    pub unfinished: usize,
}

pub struct Sim {
    cfg: SimConfig,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    nodes: Vec<Node>,
    index: BTreeMap<PeerId, usize>,
    validators: ValidatorSet,
    out: SimOutcome,
    trace: [u8; 32],
}

fn honest_output(task: &TaskId) -> ResultHash {
    ResultHash(keccak256(&[&task.0, b"honest output"]))
}

fn cid_of(r: &ResultHash) -> Cid {
    Cid::new(r.0[..8].to_vec()).unwrap_or_default()
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Self {
        let mut nodes = Vec::new();
        let mut index = BTreeMap::new();
        let mut vals = Vec::new();
        for i in 0..cfg.nodes {
            let key = keypair(i as u64);
            let peer = key.public().to_peer_id();
            index.insert(peer, i);
            vals.push(Validator {
                peer,
                weight: 100 + (i as u128 * 37) % 50,
                capabilities: BTreeSet::new(),
            });
            nodes.push(Node {
                key,
                peer,
                behaviour: cfg.behaviour(i),
                driver: None,
                inc: 0,
                outbox: Vec::new(),
                seq: 0,
                disk: Vec::new(),
                done_disk: BTreeSet::new(),
                copied: BTreeSet::new(),
            });
        }
        let validators = ValidatorSet::new(vals).unwrap();
        for n in &mut nodes {
            n.driver = Some(Driver::new(n.peer, cfg.core.clone(), validators.clone()));
        }
        let rng = Rng::new(cfg.seed);
        Self {
            cfg,
            rng,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            index,
            validators,
            out: SimOutcome::default(),
            trace: [0; 32],
        }
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((t, self.seq), ev);
    }

    fn record(&mut self, node: usize, line: String) {
        let full = format!("{} {} {}", self.now, node, line);
        self.trace = keccak256(&[&self.trace, full.as_bytes()]);
        self.out.trace_len += 1;
    }

    fn partitioned(&self, a: usize, b: usize, t: u64) -> bool {
        match &self.cfg.partition {
            Some((groups, from, until)) => t >= *from && t < *until && groups[a] != groups[b],
            None => false,
        }
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg, extra: u64) {
        if self.partitioned(from, to, self.now) || self.rng.chance(self.cfg.loss_per_mille) {
            return;
        }
        let (lo, hi) = self.cfg.latency_ms;
        let t = self.now + self.rng.range(lo, hi) + extra;
        if self.rng.chance(self.cfg.dup_per_mille) {
            let t2 = self.now + self.rng.range(lo, hi) + extra;
            self.at(
                t2,
                Ev::Deliver {
                    node: to,
                    msg: msg.clone(),
                },
            );
        }
        self.at(t, Ev::Deliver { node: to, msg });
    }

    pub fn run(mut self) -> SimOutcome {
        let params = TaskParams {
            r: self.cfg.r,
            capability: None,
            committee: None,
        };
        for i in 0..self.cfg.tasks {
            let task = TaskId(keccak256(&[
                b"sim task",
                &self.cfg.seed.to_be_bytes(),
                &(i as u64).to_be_bytes(),
            ]));
            self.out.honest_result.insert(task, honest_output(&task));
            let committee = self.validators.committee(&task, self.cfg.r, None).unwrap();
            self.out
                .committees
                .insert(task, committee.iter().map(|p| self.index[p]).collect());
            if let Ok(esc) = self
                .validators
                .escalation_committee(&task, &committee, self.cfg.r, None)
            {
                self.out
                    .escalation_committees
                    .insert(task, esc.iter().map(|p| self.index[p]).collect());
            }
            let t0 = i as u64 * self.cfg.task_spacing_ms;
            for node in 0..self.cfg.nodes {
                // Tasks come from the chain or the tasks topic; every node
                // learns of each task, at its own time.
                let t = t0 + self.rng.range(0, self.cfg.latency_ms.1);
                self.at(t, Ev::Announce { node, task });
            }
        }
        self.out.byzantine = self.cfg.behaviours.keys().copied().collect();
        for node in 0..self.cfg.nodes {
            let t = self.rng.range(0, self.cfg.tick_ms);
            self.at(t, Ev::Tick { node });
        }
        for c in self.cfg.crashes.clone() {
            self.at(c.at, Ev::Crash { node: c.node });
            if let Some(r) = c.restart {
                self.at(r, Ev::Restart { node: c.node });
            }
        }
        while let Some(((t, _), ev)) = self.queue.pop_first() {
            if t > self.cfg.end_ms {
                break;
            }
            self.now = t;
            self.step(ev, &params);
        }
        for n in &self.nodes {
            if let Some(d) = &n.driver {
                self.out.unfinished += d.tasks().filter(|(_, t)| !t.is_finished()).count();
            }
        }
        self.out.trace_hash = self.trace;
        self.out
    }

    fn apply(&mut self, node: usize, input: Input) {
        let Some(d) = self.nodes[node].driver.as_mut() else {
            return;
        };
        let fx = d.apply(input);
        self.effects(node, fx);
    }

    fn step(&mut self, ev: Ev, params: &TaskParams) {
        match ev {
            Ev::Announce { node, task } => {
                let now = self.now;
                self.apply(
                    node,
                    Input::TaskSeen {
                        task,
                        params: params.clone(),
                        now,
                    },
                );
            }
            Ev::Deliver { node, msg } => {
                if self.nodes[node].driver.is_none() {
                    return;
                }
                let now = self.now;
                match msg {
                    Msg::Votes(batch) => {
                        let copy = self.nodes[node].behaviour == Behaviour::CopyReveal;
                        let reveals: Vec<RevealVote> = if copy {
                            batch
                                .items()
                                .iter()
                                .filter_map(|i| match i {
                                    VoteItem::Reveal(r) => Some(r.clone()),
                                    _ => None,
                                })
                                .collect()
                        } else {
                            Vec::new()
                        };
                        self.apply(node, Input::Votes { batch, now });
                        for r in reveals {
                            self.copy_reveal(node, r);
                        }
                    }
                    Msg::Cert(c) => self.apply(
                        node,
                        Input::CertificateSeen {
                            certificate: *c,
                            now,
                        },
                    ),
                }
            }
            Ev::Timer {
                node,
                inc,
                task,
                timer,
            } => {
                if self.nodes[node].inc == inc {
                    let now = self.now;
                    self.apply(node, Input::Timeout { task, timer, now });
                }
            }
            Ev::ExecDone {
                node,
                inc,
                task,
                round,
            } => {
                if self.nodes[node].inc != inc {
                    return;
                }
                let result = match self.nodes[node].behaviour {
                    Behaviour::WrongResult => {
                        ResultHash(keccak256(&[&task.0, &(node as u64).to_be_bytes()]))
                    }
                    _ => honest_output(&task),
                };
                let salt = self.salt(node, &task, round);
                let now = self.now;
                self.apply(
                    node,
                    Input::ExecutionFinished {
                        task,
                        round,
                        result,
                        cid: cid_of(&result),
                        salt,
                        now,
                    },
                );
            }
            Ev::Tick { node } => {
                if self.nodes[node].driver.is_none() {
                    return;
                }
                self.flush(node);
                let t = self.now + self.cfg.tick_ms;
                self.at(t, Ev::Tick { node });
            }
            Ev::Crash { node } => {
                self.record(node, "crash".into());
                self.out.crashed.insert(node);
                let n = &mut self.nodes[node];
                n.driver = None;
                n.outbox.clear();
                n.inc += 1;
            }
            Ev::Restart { node } => {
                self.record(node, "restart".into());
                let n = &mut self.nodes[node];
                n.driver = Some(Driver::new(
                    n.peer,
                    self.cfg.core.clone(),
                    self.validators.clone(),
                ));
                // Only undecided tasks are restored: decided ones are in the store.
                let disk: Vec<PersistedVote> = n
                    .disk
                    .iter()
                    .filter(|v| !n.done_disk.contains(&v.task))
                    .cloned()
                    .collect();
                let now = self.now;
                for vote in disk {
                    self.apply(node, Input::Restore { vote, now });
                }
                self.at(now + self.cfg.tick_ms, Ev::Tick { node });
            }
        }
    }

    fn salt(&self, node: usize, task: &TaskId, round: Round) -> Salt {
        // The engine derives salts from a node secret; here the key bytes.
        let secret = keccak256(&[b"sim secret", &(node as u64).to_be_bytes()]);
        Salt(keccak256(&[&secret, &task.0, &[round.as_u8()]]))
    }

    fn copy_reveal(&mut self, node: usize, r: RevealVote) {
        let me = self.nodes[node].peer;
        let member = self.nodes[node]
            .driver
            .as_ref()
            .and_then(|d| d.task(&r.task))
            .and_then(|t| t.committee(r.round))
            .is_some_and(|c| c.contains(&me));
        if !member || !self.nodes[node].copied.insert((r.task, r.round)) {
            return;
        }
        let salt = self.salt(node, &r.task, r.round);
        let now = self.now;
        self.record(node, format!("copies reveal of {}", r.task));
        self.apply(
            node,
            Input::ExecutionFinished {
                task: r.task,
                round: r.round,
                result: r.result,
                cid: r.cid,
                salt,
                now,
            },
        );
    }

    /// Sign the node's pending votes, feed them back, gossip them.
    fn flush(&mut self, node: usize) {
        let items = std::mem::take(&mut self.nodes[node].outbox);
        for chunk in items.chunks(MAX_BATCH_ITEMS) {
            let n = &mut self.nodes[node];
            n.seq += 1;
            let batch = VoteBatch::sign(&n.key, n.seq, chunk.to_vec()).unwrap();
            // Decode and verify once; every receiver gets the same result.
            let verified = validate_vote_message(&batch.encode()).unwrap();
            self.out.batches += 1;
            let now = self.now;
            self.apply(
                node,
                Input::Votes {
                    batch: verified.clone(),
                    now,
                },
            );
            let behaviour = self.nodes[node].behaviour;
            let extra = if behaviour == Behaviour::LateCommit {
                self.cfg.core.commit_timeout_ms
            } else {
                0
            };
            let alt = if behaviour == Behaviour::Equivocate
                && chunk.iter().any(|i| matches!(i, VoteItem::Commit(_)))
            {
                let alt_items = chunk
                    .iter()
                    .map(|i| match i {
                        VoteItem::Commit(c) => VoteItem::Commit(CommitVote {
                            commitment: Commitment(keccak256(&[&c.commitment.0, b"other"])),
                            ..c.clone()
                        }),
                        other => other.clone(),
                    })
                    .collect();
                let n = &mut self.nodes[node];
                n.seq += 1;
                let b = VoteBatch::sign(&n.key, n.seq, alt_items).unwrap();
                Some(validate_vote_message(&b.encode()).unwrap())
            } else {
                None
            };
            for to in 0..self.cfg.nodes {
                if to == node {
                    continue;
                }
                match &alt {
                    None => self.send(node, to, Msg::Votes(verified.clone()), extra),
                    Some(b) => match to % 3 {
                        0 => {
                            self.send(node, to, Msg::Votes(verified.clone()), 0);
                            self.send(node, to, Msg::Votes(b.clone()), self.cfg.latency_ms.1);
                        }
                        1 => self.send(node, to, Msg::Votes(verified.clone()), 0),
                        _ => self.send(node, to, Msg::Votes(b.clone()), 0),
                    },
                }
            }
        }
    }

    fn effects(&mut self, node: usize, fx: Vec<Effect>) {
        for e in fx {
            match e {
                Effect::Execute { task, round } => {
                    let b = self.nodes[node].behaviour;
                    if b != Behaviour::Silent && b != Behaviour::CopyReveal {
                        let (lo, hi) = self.cfg.exec_ms;
                        let t = self.now + self.rng.range(lo, hi);
                        let inc = self.nodes[node].inc;
                        self.at(
                            t,
                            Ev::ExecDone {
                                node,
                                inc,
                                task,
                                round,
                            },
                        );
                    }
                }
                Effect::Persist(p) => self.nodes[node].disk.push(p),
                Effect::Broadcast(item) => {
                    if self.nodes[node].behaviour != Behaviour::Silent {
                        self.nodes[node].outbox.push(item);
                    }
                }
                Effect::SetTimer { task, timer, at } => {
                    let inc = self.nodes[node].inc;
                    let t = at.max(self.now);
                    self.at(
                        t,
                        Ev::Timer {
                            node,
                            inc,
                            task,
                            timer,
                        },
                    );
                }
                Effect::Verdict(v) => {
                    self.record(
                        node,
                        format!("verdict {} {:?} {}", v.task, v.round, v.result),
                    );
                    self.out
                        .verdicts
                        .entry(v.task)
                        .or_default()
                        .insert(node, v.result);
                    self.nodes[node].done_disk.insert(v.task);
                    let me = self.nodes[node].peer;
                    let deciding_member = self.nodes[node]
                        .driver
                        .as_ref()
                        .and_then(|d| d.task(&v.task))
                        .and_then(|t| t.committee(v.round))
                        .is_some_and(|c| c.contains(&me));
                    // Every honest member that decided gossips (one per
                    // certificate is not enough: its first signer may be the
                    // byzantine one).
                    if deciding_member && self.nodes[node].behaviour == Behaviour::Honest {
                        // Gossip the certificate a little later: by then most
                        // nodes decided on their own and skip verifying it.
                        let later = self.cfg.core.commit_timeout_ms / 2;
                        for to in 0..self.cfg.nodes {
                            if to != node {
                                self.send(
                                    node,
                                    to,
                                    Msg::Cert(Box::new(v.certificate.clone())),
                                    later,
                                );
                            }
                        }
                    }
                }
                Effect::Escalate { task, committee } => {
                    self.out.escalations += 1;
                    self.record(node, format!("escalate {task} {}", committee.len()));
                }
                Effect::Failed {
                    task,
                    nondeterministic,
                } => {
                    self.record(node, format!("failed {task} {nondeterministic}"));
                    self.out.failed.entry(task).or_default().insert(node);
                    self.nodes[node].done_disk.insert(task);
                }
                Effect::Misbehaviour(ev) => match *ev {
                    Evidence::Equivocation { task, member, .. } => {
                        self.out.equivocations += 1;
                        self.record(node, format!("equivocation {task} {member}"));
                    }
                    Evidence::RevealMismatch { task, member, .. } => {
                        self.out.mismatches += 1;
                        self.record(node, format!("mismatch {task} {member}"));
                    }
                },
                Effect::Settled {
                    task,
                    result,
                    outcomes,
                } => {
                    self.record(node, format!("settled {task} {result:?} {outcomes:?}"));
                }
                Effect::Reputation(_) => {}
                Effect::Rejected { task, error } => {
                    self.record(node, format!("rejected {task} {error}"))
                }
            }
        }
    }
}

impl SimOutcome {
    /// Agreement and validity within the fault threshold: for every task
    /// whose committees (primary, and escalation if drawn) each hold fewer
    /// than q byzantine members, every recorded verdict is the honest result
    /// (so no two nodes differ). A copier counts as byzantine: copying the
    /// first reveal it sees, it can join a malicious member's wrong result
    /// (ADR 0025). Returns the number of tasks checked.
    pub fn assert_safety(&self) -> usize {
        assert_eq!(
            self.unfinished, 0,
            "every task must end (settled or failed) once its deadlines passed"
        );
        let mut checked = 0;
        for (task, by_node) in &self.verdicts {
            if let Some(f) = self.failed.get(task) {
                // A node that failed a task others decided must be one that
                // lost its state (crash) or was cut off.
                for n in f {
                    assert!(
                        !by_node.contains_key(n),
                        "node {n} both decided and failed {task}"
                    );
                }
            }
            let within = |c: &Vec<usize>| {
                c.iter().filter(|m| self.byzantine.contains(m)).count() < quorum(c.len())
            };
            let primary_ok = self.committees.get(task).is_some_and(within);
            let escalation_ok = self.escalation_committees.get(task).is_none_or(within);
            if !(primary_ok && escalation_ok) {
                continue;
            }
            checked += 1;
            let honest = self.honest_result[task];
            for (node, r) in by_node {
                assert_eq!(
                    *r, honest,
                    "node {node} recorded a wrong verdict for {task}"
                );
            }
        }
        checked
    }

    /// Every node in `observers` recorded a verdict for every task whose
    /// primary committee has at least q members in `honest`.
    pub fn assert_liveness(
        &self,
        r: usize,
        honest: &BTreeSet<usize>,
        observers: &BTreeSet<usize>,
    ) -> usize {
        let q = quorum(r);
        let mut checked = 0;
        for (task, committee) in &self.committees {
            let good = committee.iter().filter(|m| honest.contains(m)).count();
            if good < q {
                continue;
            }
            checked += 1;
            let got = self.verdicts.get(task);
            for n in observers {
                assert!(
                    got.is_some_and(|v| v.contains_key(n)),
                    "node {n} has no verdict for {task} (committee {committee:?}, {good} honest)"
                );
            }
        }
        checked
    }
}
