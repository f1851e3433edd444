//! The node-level driver: routes inputs to per-task state machines, keeps
//! reputation, and bounds memory.
//!
//! Memory policy (ADR 0024):
//! - at most `max_tasks` tasks are held. A new task first evicts the oldest
//!   *finished* task (its id moves to a bounded tombstone list so that
//!   stragglers are ignored). When every held task is unfinished the new
//!   task is refused with [`TaskError::Capacity`]: running work is never
//!   dropped to make room;
//! - votes for tasks not seen yet are buffered only when their signer is a
//!   validator, at most `max_pending_per_task` per task and
//!   `max_pending_votes` in all; the oldest task's buffer goes first.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use libp2p_identity::PeerId;
use tracing::{debug, warn};

use crate::certificate::{Certificate, TaskParams, VerifiedCertificate};
use crate::committee::ValidatorSet;
use crate::error::TaskError;
use crate::metrics::Metrics;
use crate::reputation::{Outcome, ReputationBook, ReputationParams};
use crate::task::{Config, Ctx, Effect, Evidence, PersistedVote, TaskInput, TaskState, Timer};
use crate::types::{Cid, ResultHash, Round, Salt, TaskId};
use crate::wire::{SignedVote, VerifiedBatch};

const TARGET: &str = "hal9::consensus";

/// Input of the driver. Every input carries the current time in ms.
#[derive(Clone, Debug)]
pub enum Input {
    /// A task announcement was seen (or posted by this node).
    TaskSeen {
        /// Task.
        task: TaskId,
        /// Replication factor and capability, from the spec.
        params: TaskParams,
        /// Time, ms.
        now: u64,
    },
    /// The local execution of `task` for `round` finished.
    ExecutionFinished {
        /// Task.
        task: TaskId,
        /// Round.
        round: Round,
        /// keccak256 of the output.
        result: ResultHash,
        /// CID of the output.
        cid: Cid,
        /// Salt, derived by the engine from a node secret and the task id.
        salt: Salt,
        /// Time, ms.
        now: u64,
    },
    /// The local execution failed.
    ExecutionFailed {
        /// Task.
        task: TaskId,
        /// Round.
        round: Round,
        /// Time, ms.
        now: u64,
    },
    /// A verified vote batch (from the network, or the node's own batch
    /// fed back after signing).
    Votes {
        /// The batch.
        batch: VerifiedBatch,
        /// Time, ms.
        now: u64,
    },
    /// A timer set by [`Effect::SetTimer`] fired.
    Timeout {
        /// Task.
        task: TaskId,
        /// Timer.
        timer: Timer,
        /// Time, ms.
        now: u64,
    },
    /// The validator set changed (tasks seen from now on use it).
    ValidatorsChanged {
        /// New set.
        validators: ValidatorSet,
        /// Time, ms.
        now: u64,
    },
    /// Rebuild a task from the own vote persisted before a restart.
    Restore {
        /// The persisted vote.
        vote: PersistedVote,
        /// Time, ms.
        now: u64,
    },
    /// A certificate from another node (for a node that missed votes).
    CertificateSeen {
        /// The certificate.
        certificate: Certificate,
        /// Time, ms.
        now: u64,
    },
    /// A certificate whose signatures a gossip validator already checked
    /// ([`Certificate::verify_signatures`]); only its committee is checked here.
    VerifiedCertificateSeen {
        /// The certificate.
        certificate: VerifiedCertificate,
        /// Time, ms.
        now: u64,
    },
}

/// Routes inputs to tasks; one per node.
#[derive(Debug)]
pub struct Driver {
    local: PeerId,
    config: Config,
    validators: Arc<ValidatorSet>,
    tasks: BTreeMap<TaskId, TaskState>,
    finished: VecDeque<TaskId>,
    finished_set: BTreeSet<TaskId>,
    tombstones: BTreeSet<TaskId>,
    tomb_order: VecDeque<TaskId>,
    pending: BTreeMap<TaskId, Vec<SignedVote>>,
    pending_order: VecDeque<TaskId>,
    pending_len: usize,
    reputation: ReputationBook,
    metrics: Option<Metrics>,
}

impl Driver {
    /// A driver for node `local` with the validator set `validators`.
    pub fn new(local: PeerId, config: Config, validators: ValidatorSet) -> Self {
        Self {
            local,
            config,
            validators: Arc::new(validators),
            tasks: BTreeMap::new(),
            finished: VecDeque::new(),
            finished_set: BTreeSet::new(),
            tombstones: BTreeSet::new(),
            tomb_order: VecDeque::new(),
            pending: BTreeMap::new(),
            pending_order: VecDeque::new(),
            pending_len: 0,
            reputation: ReputationBook::new(ReputationParams::default()),
            metrics: None,
        }
    }

    /// Use these reputation parameters and starting values.
    pub fn with_reputation(mut self, book: ReputationBook) -> Self {
        self.reputation = book;
        self
    }

    /// Update these metrics.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The local node.
    pub fn local(&self) -> PeerId {
        self.local
    }

    /// Reputation book.
    pub fn reputation(&self) -> &ReputationBook {
        &self.reputation
    }

    /// Validator set used for new tasks.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// A tracked task.
    pub fn task(&self, id: &TaskId) -> Option<&TaskState> {
        self.tasks.get(id)
    }

    /// Every task held in memory, by id.
    pub fn tasks(&self) -> impl Iterator<Item = (&TaskId, &TaskState)> {
        self.tasks.iter()
    }

    /// Number of tasks held in memory.
    pub fn tracked(&self) -> usize {
        self.tasks.len()
    }

    /// Number of votes buffered for unseen tasks.
    pub fn pending_votes(&self) -> usize {
        self.pending_len
    }

    /// Apply one input; returns the effects to carry out, in order.
    pub fn apply(&mut self, input: Input) -> Vec<Effect> {
        let mut fx = match input {
            Input::TaskSeen { task, params, now } => self.on_task_seen(task, params, now),
            Input::ExecutionFinished {
                task,
                round,
                result,
                cid,
                salt,
                now,
            } => self.route(
                task,
                now,
                TaskInput::ExecutionFinished {
                    round,
                    result,
                    cid,
                    salt,
                },
            ),
            Input::ExecutionFailed { task, round, now } => {
                self.route(task, now, TaskInput::ExecutionFailed { round })
            }
            Input::Timeout { task, timer, now } => self.route(task, now, TaskInput::Timeout(timer)),
            Input::Votes { batch, now } => self.on_votes(&batch, now),
            Input::ValidatorsChanged { validators, .. } => {
                self.validators = Arc::new(validators);
                Vec::new()
            }
            Input::Restore { vote, now } => self.on_restore(vote, now),
            Input::CertificateSeen { certificate, now } => {
                let task = certificate.task;
                self.route(task, now, TaskInput::Certificate(certificate))
            }
            Input::VerifiedCertificateSeen { certificate, now } => {
                let task = certificate.certificate().task;
                self.route(task, now, TaskInput::VerifiedCertificate(certificate))
            }
        };
        self.post_process(&mut fx);
        fx
    }

    fn ctx(&self, now: u64) -> Ctx<'_> {
        Ctx {
            local: self.local,
            config: &self.config,
            now,
            metrics: self.metrics.as_ref(),
        }
    }

    fn route(&mut self, task: TaskId, now: u64, input: TaskInput) -> Vec<Effect> {
        let ctx = Ctx {
            local: self.local,
            config: &self.config,
            now,
            metrics: self.metrics.as_ref(),
        };
        let Some(t) = self.tasks.get_mut(&task) else {
            debug!(target: TARGET, %task, "input for an unknown task ignored");
            return Vec::new();
        };
        let fx = t.apply(input, &ctx);
        self.note_finished(task);
        fx
    }

    fn note_finished(&mut self, task: TaskId) {
        if self.tasks.get(&task).is_some_and(|t| t.is_finished()) && self.finished_set.insert(task)
        {
            self.finished.push_back(task);
        }
    }

    /// Make room for one more task; false when every held task is unfinished.
    fn make_room(&mut self) -> bool {
        while self.tasks.len() >= self.config.max_tasks.max(1) {
            let Some(old) = self.finished.pop_front() else {
                return false;
            };
            self.finished_set.remove(&old);
            self.tasks.remove(&old);
            self.tombstone(old);
        }
        true
    }

    fn tombstone(&mut self, id: TaskId) {
        if self.tombstones.insert(id) {
            self.tomb_order.push_back(id);
        }
        while self.tomb_order.len() > self.config.max_tombstones {
            if let Some(t) = self.tomb_order.pop_front() {
                self.tombstones.remove(&t);
            }
        }
    }

    fn start_task(
        &mut self,
        task: TaskId,
        now: u64,
        started: Result<(TaskState, Vec<Effect>), TaskError>,
    ) -> Vec<Effect> {
        match started {
            Ok((state, mut fx)) => {
                if let Some(m) = &self.metrics {
                    m.tasks_started.inc();
                }
                self.tasks.insert(task, state);
                // Replay votes that arrived before the task, in arrival order.
                if let Some(votes) = self.pending.remove(&task) {
                    self.pending_len -= votes.len();
                    self.pending_order.retain(|t| *t != task);
                    for v in votes {
                        fx.extend(self.route(task, now, TaskInput::Vote(v)));
                    }
                }
                self.note_finished(task);
                fx
            }
            Err(error) => {
                warn!(target: TARGET, %task, %error, "task refused");
                if let Some(m) = &self.metrics {
                    m.tasks_rejected.inc();
                }
                vec![Effect::Rejected { task, error }]
            }
        }
    }

    fn on_task_seen(&mut self, task: TaskId, params: TaskParams, now: u64) -> Vec<Effect> {
        if self.tasks.contains_key(&task) || self.tombstones.contains(&task) {
            debug!(target: TARGET, %task, "task seen again; ignored");
            return Vec::new();
        }
        if !self.make_room() {
            let error = TaskError::Capacity {
                max: self.config.max_tasks,
            };
            warn!(target: TARGET, %task, %error, "task refused");
            if let Some(m) = &self.metrics {
                m.tasks_rejected.inc();
            }
            return vec![Effect::Rejected { task, error }];
        }
        let started = TaskState::start(task, params, self.validators.clone(), &self.ctx(now));
        self.start_task(task, now, started)
    }

    fn on_restore(&mut self, vote: PersistedVote, now: u64) -> Vec<Effect> {
        let task = vote.task;
        if self.tasks.contains_key(&task) || self.tombstones.contains(&task) {
            return Vec::new();
        }
        if !self.make_room() {
            return vec![Effect::Rejected {
                task,
                error: TaskError::Capacity {
                    max: self.config.max_tasks,
                },
            }];
        }
        let started = TaskState::restore(vote, self.validators.clone(), &self.ctx(now));
        self.start_task(task, now, started)
    }

    fn on_votes(&mut self, batch: &VerifiedBatch, now: u64) -> Vec<Effect> {
        let signer = batch.signer();
        let mut fx = Vec::new();
        for (i, item) in batch.items().iter().enumerate() {
            let task = item.task();
            if let Some(t) = self.tasks.get(&task) {
                if t.is_finished() || !t.accepts(&signer, item.round()) {
                    if let Some(m) = &self.metrics {
                        m.votes_ignored.inc();
                    }
                    continue;
                }
                if let Some(v) = batch.signed_vote(i) {
                    fx.extend(self.route(task, now, TaskInput::Vote(v)));
                }
            } else if self.tombstones.contains(&task) || !self.validators.contains(&signer) {
                if let Some(m) = &self.metrics {
                    m.votes_ignored.inc();
                }
            } else if let Some(v) = batch.signed_vote(i) {
                self.buffer(task, v);
            }
        }
        fx
    }

    fn buffer(&mut self, task: TaskId, v: SignedVote) {
        let per_task = self.config.max_pending_per_task;
        let entry = self.pending.entry(task).or_default();
        if entry.len() >= per_task {
            if let Some(m) = &self.metrics {
                m.votes_ignored.inc();
            }
            return;
        }
        if entry.is_empty() {
            self.pending_order.push_back(task);
        }
        entry.push(v);
        self.pending_len += 1;
        if let Some(m) = &self.metrics {
            m.votes_buffered.inc();
        }
        while self.pending_len > self.config.max_pending_votes {
            let Some(old) = self.pending_order.pop_front() else {
                break;
            };
            if let Some(dropped) = self.pending.remove(&old) {
                self.pending_len -= dropped.len();
            }
        }
    }

    /// Fold outcomes into reputation and keep metrics current.
    fn post_process(&mut self, fx: &mut Vec<Effect>) {
        let mut extra = Vec::new();
        for e in fx.iter() {
            match e {
                Effect::Settled { outcomes, .. } => {
                    for (member, outcome) in outcomes {
                        extra.push(Effect::Reputation(
                            self.reputation.record(*member, *outcome),
                        ));
                    }
                }
                Effect::Misbehaviour(ev) => {
                    let Evidence::Equivocation { member, .. } = ev.as_ref() else {
                        continue;
                    };
                    extra.push(Effect::Reputation(
                        self.reputation.record(*member, Outcome::Equivocated),
                    ));
                }
                _ => {}
            }
        }
        fx.extend(extra);
        if let Some(m) = &self.metrics {
            m.tasks_tracked.set(self.tasks.len() as i64);
            m.pending_votes.set(self.pending_len as i64);
        }
    }
}
