//! The pure per-task state machine: commit, reveal, quorum, verdict,
//! escalation, failure.
//!
//! [`TaskState::apply`] takes one [`TaskInput`] and returns the
//! [`Effect`]s the engine must carry out, in order. Nothing here reads a
//! clock, draws randomness or does I/O: time arrives as `now` (ms) on each
//! input, salts arrive with the execution result.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::certificate::{Certificate, CertifiedVote, TaskParams, VerifiedCertificate};
use crate::committee::{MIN_COMMITTEE, ValidatorSet};
use crate::error::{CommitteeError, TaskError};
use crate::metrics::Metrics;
use crate::reputation::{Outcome, ReputationChange};
use crate::types::{Cid, Commitment, ResultHash, Round, Salt, TaskId, quorum};
use crate::wire::{CommitVote, RevealVote, SignedVote, VoteItem};

const TARGET: &str = "hal9::consensus";

/// Timing and memory bounds of the core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// After this long (from the start of a round) a member reveals even
    /// without q commits, ms.
    pub commit_timeout_ms: u64,
    /// Reveal window after the commit timeout; the round's deadline is
    /// `start + commit_timeout_ms + reveal_timeout_ms`, ms.
    pub reveal_timeout_ms: u64,
    /// Pause between seeing q commits and revealing, so that the commits
    /// reach everyone before the first reveal (fewer late commits), ms.
    /// Set it above the gossip latency spread (default 250).
    pub reveal_delay_ms: u64,
    /// Largest replication factor accepted.
    pub max_r: usize,
    /// Most tasks held in memory (unfinished and finished).
    pub max_tasks: usize,
    /// Most finished task ids remembered after eviction (to ignore their
    /// stragglers).
    pub max_tombstones: usize,
    /// Most votes buffered for tasks not seen yet.
    pub max_pending_votes: usize,
    /// Most votes buffered for one unseen task.
    pub max_pending_per_task: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            commit_timeout_ms: 10_000,
            reveal_timeout_ms: 10_000,
            reveal_delay_ms: 250,
            max_r: 64,
            max_tasks: 10_000,
            max_tombstones: 50_000,
            max_pending_votes: 16_384,
            max_pending_per_task: 64,
        }
    }
}

/// Which timer of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// Reveal even without q commits.
    CommitTimeout,
    /// End of the pause between q commits and the reveal.
    RevealDelay,
    /// End of the round: escalate, fail, or settle outcomes.
    Deadline,
}

/// A timer the engine must fire back as [`TaskInput::Timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timer {
    /// Round it belongs to.
    pub round: Round,
    /// Which one.
    pub kind: TimerKind,
}

/// What the local node persists before its commit leaves, so that after a
/// crash it reveals the same value instead of equivocating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistedVote {
    /// Task.
    pub task: TaskId,
    /// Task parameters (to re-derive the committee).
    pub params: TaskParams,
    /// Round.
    pub round: Round,
    /// Result hash committed to.
    pub result: ResultHash,
    /// Salt.
    pub salt: Salt,
    /// Output CID.
    pub cid: Cid,
    /// When this node started the round, ms.
    pub round_started_at: u64,
}

/// Version of the [`PersistedVote`] encoding.
pub const PERSISTED_VOTE_VERSION: u16 = 1;
/// Longest capability name stored in a [`PersistedVote`].
pub const MAX_CAPABILITY_BYTES: usize = 64;

impl PersistedVote {
    /// Canonical bytes for the node's store.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(200);
        w.extend_from_slice(&PERSISTED_VOTE_VERSION.to_be_bytes());
        w.extend_from_slice(&self.task.0);
        w.extend_from_slice(&(self.params.r as u32).to_be_bytes());
        let cap = self.params.capability.as_deref().unwrap_or("").as_bytes();
        let cap = &cap[..cap.len().min(MAX_CAPABILITY_BYTES)];
        w.push(u8::from(self.params.capability.is_some()));
        w.push(cap.len() as u8);
        w.extend_from_slice(cap);
        w.push(self.round.as_u8());
        w.extend_from_slice(&self.result.0);
        w.extend_from_slice(&self.salt.0);
        w.push(self.cid.as_bytes().len() as u8);
        w.extend_from_slice(self.cid.as_bytes());
        w.extend_from_slice(&self.round_started_at.to_be_bytes());
        w
    }

    /// Decode bytes read back from the store.
    pub fn decode(bytes: &[u8]) -> Result<Self, crate::error::DecodeError> {
        use crate::error::DecodeError;
        let mut r = crate::wire::Reader::new(bytes, "persisted vote");
        let version = r.u16("version")?;
        if version != PERSISTED_VOTE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                kind: "persisted vote",
                supported: PERSISTED_VOTE_VERSION,
                found: version,
            });
        }
        let task = TaskId(r.array("task id")?);
        let rep = r.u32("replication")? as usize;
        let has_cap = r.u8("capability flag")? == 1;
        let clen = r.u8("capability length")? as usize;
        if clen > MAX_CAPABILITY_BYTES {
            return Err(r.malformed(format!(
                "expected a capability of at most {MAX_CAPABILITY_BYTES} bytes, found {clen}"
            )));
        }
        let cap = String::from_utf8(r.bytes(clen, "capability")?.to_vec())
            .map_err(|_| r.malformed("expected a UTF-8 capability".into()))?;
        let rn = r.u8("round")?;
        let round = Round::from_u8(rn)
            .ok_or_else(|| r.malformed(format!("expected round 0 or 1, found {rn}")))?;
        let result = ResultHash(r.array("result")?);
        let salt = Salt(r.array("salt")?);
        let cid_len = r.u8("cid length")? as usize;
        let cid = Cid::new(r.bytes(cid_len, "cid")?.to_vec())
            .ok_or_else(|| r.malformed(format!("expected a short cid, found {cid_len} bytes")))?;
        let round_started_at = r.u64("round start")?;
        r.finish()?;
        Ok(Self {
            task,
            params: TaskParams {
                r: rep,
                capability: has_cap.then_some(cap),
                committee: None,
            },
            round,
            result,
            salt,
            cid,
            round_started_at,
        })
    }
}

/// Proof of misbehaviour by a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// Two different commits (or two different reveals) for one task and
    /// round. The member's votes for the round are discarded.
    Equivocation {
        /// Task.
        task: TaskId,
        /// Member.
        member: PeerId,
        /// The vote seen first.
        first: SignedVote,
        /// The conflicting vote.
        second: SignedVote,
    },
    /// A reveal that does not open the member's commit.
    RevealMismatch {
        /// Task.
        task: TaskId,
        /// Member.
        member: PeerId,
        /// The commit.
        commit: SignedVote,
        /// The reveal.
        reveal: SignedVote,
    },
}

/// A recorded verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Task.
    pub task: TaskId,
    /// Round that reached quorum.
    pub round: Round,
    /// Agreed result hash.
    pub result: ResultHash,
    /// Agreed output CID.
    pub cid: Cid,
    /// The q signed votes proving it.
    pub certificate: Certificate,
}

/// What the engine must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Run the task's program (this node is a member of `round`), then
    /// send [`TaskInput::ExecutionFinished`] or `ExecutionFailed`.
    Execute {
        /// Task.
        task: TaskId,
        /// Round.
        round: Round,
    },
    /// Persist the own vote durably before the following broadcast.
    Persist(PersistedVote),
    /// Sign (in the next batch) and gossip this vote, and feed the signed
    /// batch back to the driver.
    Broadcast(VoteItem),
    /// Fire [`TaskInput::Timeout`] at time `at` (ms).
    SetTimer {
        /// Task.
        task: TaskId,
        /// Timer.
        timer: Timer,
        /// Absolute time, ms.
        at: u64,
    },
    /// The verdict of the task (emitted once per task).
    Verdict(Box<Verdict>),
    /// No quorum in the primary round: a committee of 2r+1 takes over.
    Escalate {
        /// Task.
        task: TaskId,
        /// The escalation committee.
        committee: Vec<PeerId>,
    },
    /// No quorum after escalation: refund; flag the program when the
    /// members produced different results.
    Failed {
        /// Task.
        task: TaskId,
        /// Whether two or more different results were revealed.
        nondeterministic: bool,
    },
    /// Proof of misbehaviour.
    Misbehaviour(Box<Evidence>),
    /// Final per-member outcomes, emitted once the reveal window of the
    /// deciding round closed (so slow honest reveals still count).
    Settled {
        /// Task.
        task: TaskId,
        /// The verdict's result, `None` for a failed task.
        result: Option<ResultHash>,
        /// Member outcomes.
        outcomes: Vec<(PeerId, Outcome)>,
    },
    /// A member's reputation changed (emitted by the driver).
    Reputation(ReputationChange),
    /// A task was not started.
    Rejected {
        /// Task.
        task: TaskId,
        /// Why.
        error: TaskError,
    },
}

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// Collecting votes in this round.
    Active {
        /// Current round.
        round: Round,
    },
    /// Verdict recorded; outcomes settle at the round's deadline.
    Decided {
        /// Deciding round.
        round: Round,
        /// Result.
        result: ResultHash,
    },
    /// Verdict recorded and outcomes settled.
    Settled {
        /// Result.
        result: ResultHash,
    },
    /// No quorum after escalation.
    Failed,
}

/// Input of one task's state machine.
#[derive(Clone, Debug)]
pub enum TaskInput {
    /// A vote from a verified batch.
    Vote(SignedVote),
    /// The local execution finished.
    ExecutionFinished {
        /// Round executed for.
        round: Round,
        /// R = keccak256(output).
        result: ResultHash,
        /// CID of the output.
        cid: Cid,
        /// Salt for the commitment (from the engine's secret).
        salt: Salt,
    },
    /// The local execution failed: the node stays silent this round.
    ExecutionFailed {
        /// Round executed for.
        round: Round,
    },
    /// A timer fired.
    Timeout(Timer),
    /// A certificate received from another node.
    Certificate(Certificate),
    /// A certificate whose signatures were checked already.
    VerifiedCertificate(VerifiedCertificate),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct OwnVote {
    result: ResultHash,
    salt: Salt,
    cid: Cid,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Own {
    NotMember,
    Idle,
    Executing,
    ExecFailed,
    Committed { vote: OwnVote, delay_set: bool },
    Revealed,
}

#[derive(Clone, Debug)]
struct CommitEntry {
    vote: SignedVote,
    commitment: Commitment,
    late: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RevealStatus {
    Counted,
    NoCommit,
    LateCommit,
    Mismatch,
}

#[derive(Clone, Debug)]
struct RevealEntry {
    vote: SignedVote,
    reveal: RevealVote,
    status: RevealStatus,
}

#[derive(Clone, Debug)]
struct RoundState {
    committee: Vec<PeerId>,
    q: usize,
    started_at: Option<u64>,
    deadline_passed: bool,
    commit_timed_out: bool,
    reveal_seen: bool,
    commits: BTreeMap<PeerId, CommitEntry>,
    reveals: BTreeMap<PeerId, RevealEntry>,
    equivocators: BTreeSet<PeerId>,
    own: Own,
}

impl RoundState {
    fn new(committee: Vec<PeerId>, local: &PeerId) -> Self {
        let own = if committee.contains(local) {
            Own::Idle
        } else {
            Own::NotMember
        };
        Self {
            q: quorum(committee.len()),
            committee,
            started_at: None,
            deadline_passed: false,
            commit_timed_out: false,
            reveal_seen: false,
            commits: BTreeMap::new(),
            reveals: BTreeMap::new(),
            equivocators: BTreeSet::new(),
            own,
        }
    }

    fn on_time_commits(&self) -> usize {
        self.commits.values().filter(|c| !c.late).count()
    }

    fn counted(&self) -> impl Iterator<Item = (&PeerId, &RevealEntry)> {
        self.reveals
            .iter()
            .filter(|(_, r)| r.status == RevealStatus::Counted)
    }

    fn outcome_of(&self, member: &PeerId, result: Option<&ResultHash>) -> Option<Outcome> {
        if self.equivocators.contains(member) {
            return None; // already penalised when detected
        }
        match (self.reveals.get(member), result) {
            (Some(r), Some(v)) if r.status == RevealStatus::Counted => {
                Some(if r.reveal.result == *v {
                    Outcome::Agreed
                } else {
                    Outcome::Disagreed
                })
            }
            // A failed task slashes nobody: counted reveals are left alone.
            (Some(r), None) if r.status == RevealStatus::Counted => None,
            _ => Some(Outcome::Absent),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    Active,
    Decided { round: Round, result: ResultHash },
    Settled { result: ResultHash },
    Failed,
}

/// Context the driver lends a task for one step.
pub struct Ctx<'a> {
    /// The local node.
    pub local: PeerId,
    /// Bounds and timeouts.
    pub config: &'a Config,
    /// Current time, ms.
    pub now: u64,
    /// Metrics, if registered.
    pub metrics: Option<&'a Metrics>,
}

/// State of one task.
#[derive(Clone, Debug)]
pub struct TaskState {
    id: TaskId,
    params: TaskParams,
    validators: Arc<ValidatorSet>,
    rounds: [Option<RoundState>; 2],
    escalated: bool,
    status: Status,
}

fn idx(round: Round) -> usize {
    round.as_u8() as usize
}

impl TaskState {
    /// Start tracking a task: draw its committee from `validators` (the set
    /// in force when the task was seen), start the primary round.
    pub fn start(
        id: TaskId,
        params: TaskParams,
        validators: Arc<ValidatorSet>,
        ctx: &Ctx<'_>,
    ) -> Result<(Self, Vec<Effect>), TaskError> {
        if params.r < MIN_COMMITTEE || params.r > ctx.config.max_r {
            return Err(TaskError::BadReplication {
                min: MIN_COMMITTEE,
                max: ctx.config.max_r,
                found: params.r,
            });
        }
        if let Some(c) = &params.capability
            && c.len() > MAX_CAPABILITY_BYTES
        {
            return Err(TaskError::BadCapability {
                max: MAX_CAPABILITY_BYTES,
                found: c.len(),
            });
        }
        let committee = match &params.committee {
            Some(fixed) => {
                let distinct: std::collections::BTreeSet<_> = fixed.iter().collect();
                if fixed.len() != params.r || distinct.len() != params.r {
                    return Err(CommitteeError::BadFixedCommittee {
                        expected: params.r,
                        found: distinct.len(),
                    }
                    .into());
                }
                fixed.clone()
            }
            None => validators.committee(&id, params.r, params.capability.as_deref())?,
        };
        let mut t = Self {
            id,
            params,
            validators,
            rounds: [Some(RoundState::new(committee, &ctx.local)), None],
            escalated: false,
            status: Status::Active,
        };
        let mut fx = Vec::new();
        t.start_round(Round::Primary, ctx.now, ctx, &mut fx);
        info!(target: TARGET, task = %id, r = t.params.r, "task started");
        Ok((t, fx))
    }

    /// Rebuild a task from the own vote persisted before a crash: the vote
    /// is re-broadcast and revealed at the commit timeout.
    pub fn restore(
        vote: PersistedVote,
        validators: Arc<ValidatorSet>,
        ctx: &Ctx<'_>,
    ) -> Result<(Self, Vec<Effect>), TaskError> {
        let primary_start = match vote.round {
            Round::Primary => vote.round_started_at,
            Round::Escalation => vote.round_started_at.saturating_sub(
                ctx.config
                    .commit_timeout_ms
                    .saturating_add(ctx.config.reveal_timeout_ms),
            ),
        };
        let pctx = Ctx {
            local: ctx.local,
            config: ctx.config,
            now: primary_start,
            metrics: ctx.metrics,
        };
        let (mut t, mut fx) = Self::start(vote.task, vote.params.clone(), validators, &pctx)?;
        fx.retain(|e| !matches!(e, Effect::Execute { .. }));
        if vote.round == Round::Escalation {
            if let Some(rs) = t.rounds[0].as_mut() {
                rs.deadline_passed = true;
                rs.commit_timed_out = true;
            }
            let Some(()) = t.ensure_round(Round::Escalation, ctx) else {
                return Ok((t, fx));
            };
            t.escalated = true;
            let sctx = Ctx {
                local: ctx.local,
                config: ctx.config,
                now: vote.round_started_at,
                metrics: ctx.metrics,
            };
            t.start_round(Round::Escalation, vote.round_started_at, &sctx, &mut fx);
            fx.retain(|e| !matches!(e, Effect::Execute { .. }));
        }
        let Some(rs) = t.rounds[idx(vote.round)].as_mut() else {
            return Ok((t, fx));
        };
        if rs.own == Own::NotMember {
            warn!(target: TARGET, task = %vote.task, "restored vote for a round this node is not a member of");
            return Ok((t, fx));
        }
        let commitment = Commitment::compute(&vote.result, &vote.salt, &ctx.local);
        rs.own = Own::Committed {
            vote: OwnVote {
                result: vote.result,
                salt: vote.salt,
                cid: vote.cid,
            },
            delay_set: false,
        };
        fx.push(Effect::Broadcast(VoteItem::Commit(CommitVote {
            task: vote.task,
            round: vote.round,
            commitment,
        })));
        Ok((t, fx))
    }

    /// The task id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Parameters of the task.
    pub fn params(&self) -> &TaskParams {
        &self.params
    }

    /// Committee of `round`, if known.
    pub fn committee(&self, round: Round) -> Option<&[PeerId]> {
        self.rounds[idx(round)]
            .as_ref()
            .map(|r| r.committee.as_slice())
    }

    /// Whether the task is done (settled after a verdict, or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.status, Status::Settled { .. } | Status::Failed)
    }

    /// The verdict's result, once decided.
    pub fn verdict(&self) -> Option<ResultHash> {
        match self.status {
            Status::Decided { result, .. } | Status::Settled { result } => Some(result),
            _ => None,
        }
    }

    /// Whether the task failed.
    pub fn is_failed(&self) -> bool {
        self.status == Status::Failed
    }

    /// A summary for the API and logs.
    pub fn status(&self) -> TaskStatus {
        match &self.status {
            Status::Active => TaskStatus::Active {
                round: if self.escalated {
                    Round::Escalation
                } else {
                    Round::Primary
                },
            },
            Status::Decided { round, result } => TaskStatus::Decided {
                round: *round,
                result: *result,
            },
            Status::Settled { result } => TaskStatus::Settled { result: *result },
            Status::Failed => TaskStatus::Failed,
        }
    }

    /// Whether a vote from `signer` for `round` would be looked at.
    pub fn accepts(&self, signer: &PeerId, round: Round) -> bool {
        match round {
            Round::Primary => self.rounds[0]
                .as_ref()
                .is_some_and(|r| r.committee.contains(signer)),
            // The escalation committee may not be drawn yet; let apply decide.
            Round::Escalation => true,
        }
    }

    /// Apply one input.
    pub fn apply(&mut self, input: TaskInput, ctx: &Ctx<'_>) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.is_finished() {
            return fx;
        }
        match input {
            TaskInput::Vote(v) => self.on_vote(v, ctx, &mut fx),
            TaskInput::ExecutionFinished {
                round,
                result,
                cid,
                salt,
            } => self.on_executed(round, OwnVote { result, salt, cid }, ctx, &mut fx),
            TaskInput::ExecutionFailed { round } => {
                if let Some(rs) = self.rounds[idx(round)].as_mut()
                    && rs.own == Own::Executing
                {
                    warn!(target: TARGET, task = %self.id, %round, "execution failed; staying silent");
                    rs.own = Own::ExecFailed;
                }
            }
            TaskInput::Timeout(t) => self.on_timeout(t, ctx, &mut fx),
            TaskInput::Certificate(c) => {
                if self.status == Status::Active && c.task == self.id {
                    match c.verify_signatures() {
                        Ok(v) => self.on_certificate(v, ctx, &mut fx),
                        Err(e) => {
                            warn!(target: TARGET, task = %self.id, error = %e, "invalid certificate ignored")
                        }
                    }
                }
            }
            TaskInput::VerifiedCertificate(c) => self.on_certificate(c, ctx, &mut fx),
        }
        fx
    }

    fn start_round(&mut self, round: Round, now: u64, ctx: &Ctx<'_>, fx: &mut Vec<Effect>) {
        let Some(rs) = self.rounds[idx(round)].as_mut() else {
            return;
        };
        rs.started_at = Some(now);
        if rs.own == Own::Idle {
            rs.own = Own::Executing;
            fx.push(Effect::Execute {
                task: self.id,
                round,
            });
        }
        let c = ctx.config;
        fx.push(Effect::SetTimer {
            task: self.id,
            timer: Timer {
                round,
                kind: TimerKind::CommitTimeout,
            },
            at: now.saturating_add(c.commit_timeout_ms),
        });
        fx.push(Effect::SetTimer {
            task: self.id,
            timer: Timer {
                round,
                kind: TimerKind::Deadline,
            },
            at: now
                .saturating_add(c.commit_timeout_ms)
                .saturating_add(c.reveal_timeout_ms),
        });
    }

    /// Make sure the round's state exists (drawing the escalation committee
    /// on demand). `None` when it cannot be drawn.
    fn ensure_round(&mut self, round: Round, ctx: &Ctx<'_>) -> Option<()> {
        if self.rounds[idx(round)].is_some() {
            return Some(());
        }
        if self.params.committee.is_some() {
            // Fixed (on-chain) committees escalate through a challenge on chain.
            return None;
        }
        let primary = self.rounds[0].as_ref()?.committee.clone();
        let committee = self
            .validators
            .escalation_committee(
                &self.id,
                &primary,
                self.params.r,
                self.params.capability.as_deref(),
            )
            .ok()?;
        self.rounds[1] = Some(RoundState::new(committee, &ctx.local));
        Some(())
    }

    fn on_vote(&mut self, v: SignedVote, ctx: &Ctx<'_>, fx: &mut Vec<Effect>) {
        let round = v.item.round();
        let ignored = || {
            if let Some(m) = ctx.metrics {
                m.votes_ignored.inc();
            }
        };
        if self.ensure_round(round, ctx).is_none() {
            ignored();
            return;
        }
        let Some(rs) = self.rounds[idx(round)].as_mut() else {
            return;
        };
        let signer = v.signer;
        if !rs.committee.contains(&signer) || rs.equivocators.contains(&signer) {
            debug!(target: TARGET, task = %self.id, %signer, %round, "vote from a non-member or equivocator ignored");
            ignored();
            return;
        }
        match v.item.clone() {
            VoteItem::Commit(c) => {
                if let Some(prev) = rs.commits.get(&signer) {
                    if prev.commitment != c.commitment {
                        let first = prev.vote.clone();
                        Self::equivocation(self.id, rs, signer, first, v, ctx, fx);
                    }
                    return;
                }
                let late = rs.reveal_seen;
                if late {
                    debug!(target: TARGET, task = %self.id, %signer, "late commit: earns nothing");
                    if let Some(m) = ctx.metrics {
                        m.late_commits.inc();
                    }
                }
                rs.commits.insert(
                    signer,
                    CommitEntry {
                        vote: v,
                        commitment: c.commitment,
                        late,
                    },
                );
                self.maybe_reveal(round, false, ctx, fx);
            }
            VoteItem::Reveal(r) => {
                if let Some(prev) = rs.reveals.get(&signer) {
                    if prev.reveal != r {
                        let first = prev.vote.clone();
                        Self::equivocation(self.id, rs, signer, first, v, ctx, fx);
                    }
                    return;
                }
                rs.reveal_seen = true;
                let status = match rs.commits.get(&signer) {
                    None => RevealStatus::NoCommit,
                    Some(c) if c.late => RevealStatus::LateCommit,
                    Some(c) if Commitment::compute(&r.result, &r.salt, &signer) != c.commitment => {
                        if let Some(m) = ctx.metrics {
                            m.reveal_mismatches.inc();
                        }
                        fx.push(Effect::Misbehaviour(Box::new(Evidence::RevealMismatch {
                            task: self.id,
                            member: signer,
                            commit: c.vote.clone(),
                            reveal: v.clone(),
                        })));
                        RevealStatus::Mismatch
                    }
                    Some(_) => RevealStatus::Counted,
                };
                debug!(target: TARGET, task = %self.id, %signer, %round, ?status, "reveal");
                rs.reveals.insert(
                    signer,
                    RevealEntry {
                        vote: v,
                        reveal: r,
                        status,
                    },
                );
                self.check_quorum(round, ctx, fx);
            }
        }
    }

    fn equivocation(
        task: TaskId,
        rs: &mut RoundState,
        member: PeerId,
        first: SignedVote,
        second: SignedVote,
        ctx: &Ctx<'_>,
        fx: &mut Vec<Effect>,
    ) {
        warn!(target: TARGET, %task, %member, "equivocation: member's votes discarded");
        if let Some(m) = ctx.metrics {
            m.equivocations.inc();
        }
        rs.equivocators.insert(member);
        rs.commits.remove(&member);
        rs.reveals.remove(&member);
        fx.push(Effect::Misbehaviour(Box::new(Evidence::Equivocation {
            task,
            member,
            first,
            second,
        })));
    }

    fn on_executed(&mut self, round: Round, vote: OwnVote, ctx: &Ctx<'_>, fx: &mut Vec<Effect>) {
        let Some(rs) = self.rounds[idx(round)].as_mut() else {
            return;
        };
        if rs.own != Own::Executing {
            debug!(target: TARGET, task = %self.id, %round, "execution result not expected; ignored");
            return;
        }
        let commitment = Commitment::compute(&vote.result, &vote.salt, &ctx.local);
        fx.push(Effect::Persist(PersistedVote {
            task: self.id,
            params: self.params.clone(),
            round,
            result: vote.result,
            salt: vote.salt,
            cid: vote.cid.clone(),
            round_started_at: rs.started_at.unwrap_or(ctx.now),
        }));
        fx.push(Effect::Broadcast(VoteItem::Commit(CommitVote {
            task: self.id,
            round,
            commitment,
        })));
        rs.own = Own::Committed {
            vote,
            delay_set: false,
        };
        self.maybe_reveal(round, false, ctx, fx);
    }

    /// Reveal when q on-time commits are seen (after the optional delay),
    /// at the commit timeout, or when `force` (delay timer fired).
    fn maybe_reveal(&mut self, round: Round, force: bool, ctx: &Ctx<'_>, fx: &mut Vec<Effect>) {
        let task = self.id;
        let Some(rs) = self.rounds[idx(round)].as_mut() else {
            return;
        };
        let enough = rs.on_time_commits() >= rs.q;
        let Own::Committed { vote, delay_set } = &mut rs.own else {
            return;
        };
        let now_ok = force || rs.commit_timed_out || (enough && ctx.config.reveal_delay_ms == 0);
        if !now_ok {
            if enough && !*delay_set {
                *delay_set = true;
                fx.push(Effect::SetTimer {
                    task,
                    timer: Timer {
                        round,
                        kind: TimerKind::RevealDelay,
                    },
                    at: ctx.now.saturating_add(ctx.config.reveal_delay_ms),
                });
            }
            return;
        }
        let item = VoteItem::Reveal(RevealVote {
            task,
            round,
            result: vote.result,
            salt: vote.salt,
            cid: vote.cid.clone(),
        });
        rs.own = Own::Revealed;
        fx.push(Effect::Broadcast(item));
    }

    fn check_quorum(&mut self, round: Round, ctx: &Ctx<'_>, fx: &mut Vec<Effect>) {
        if self.status != Status::Active {
            return;
        }
        let Some(rs) = self.rounds[idx(round)].as_ref() else {
            return;
        };
        let mut groups: BTreeMap<(ResultHash, Cid), Vec<PeerId>> = BTreeMap::new();
        for (p, r) in rs.counted() {
            groups
                .entry((r.reveal.result, r.reveal.cid.clone()))
                .or_default()
                .push(*p);
        }
        let Some(((result, cid), members)) = groups.into_iter().find(|(_, m)| m.len() >= rs.q)
        else {
            return;
        };
        let votes = members
            .iter()
            .filter_map(|m| {
                Some(CertifiedVote {
                    commit: rs.commits.get(m)?.vote.clone(),
                    reveal: rs.reveals.get(m)?.vote.clone(),
                })
            })
            .collect();
        let certificate = Certificate {
            task: self.id,
            round,
            result,
            cid: cid.clone(),
            votes,
        };
        self.decide(round, result, cid, certificate, ctx, fx);
    }

    fn decide(
        &mut self,
        round: Round,
        result: ResultHash,
        cid: Cid,
        certificate: Certificate,
        ctx: &Ctx<'_>,
        fx: &mut Vec<Effect>,
    ) {
        info!(target: TARGET, task = %self.id, %round, %result, "verdict");
        if let Some(m) = ctx.metrics {
            m.verdicts.inc();
        }
        self.status = Status::Decided { round, result };
        fx.push(Effect::Verdict(Box::new(Verdict {
            task: self.id,
            round,
            result,
            cid,
            certificate,
        })));
        if self.rounds[idx(round)]
            .as_ref()
            .is_some_and(|r| r.deadline_passed)
        {
            self.settle(fx);
        }
    }

    fn on_certificate(&mut self, v: VerifiedCertificate, ctx: &Ctx<'_>, fx: &mut Vec<Effect>) {
        if self.status != Status::Active || v.certificate().task != self.id {
            return;
        }
        if let Err(e) = v.verify_committee(&self.validators, &self.params) {
            warn!(target: TARGET, task = %self.id, error = %e, "invalid certificate ignored");
            return;
        }
        let c = v.into_inner();
        if self.ensure_round(c.round, ctx).is_none() {
            return;
        }
        self.decide(c.round, c.result, c.cid.clone(), c, ctx, fx);
    }

    fn settle(&mut self, fx: &mut Vec<Effect>) {
        let Status::Decided { round, result } = self.status.clone() else {
            return;
        };
        let mut outcomes = Vec::new();
        let rounds: &[Round] = match round {
            Round::Primary => &[Round::Primary],
            Round::Escalation => &[Round::Primary, Round::Escalation],
        };
        for r in rounds {
            if let Some(rs) = self.rounds[idx(*r)].as_ref() {
                for m in &rs.committee {
                    if let Some(o) = rs.outcome_of(m, Some(&result)) {
                        outcomes.push((*m, o));
                    }
                }
            }
        }
        self.status = Status::Settled { result };
        fx.push(Effect::Settled {
            task: self.id,
            result: Some(result),
            outcomes,
        });
    }

    fn fail(&mut self, ctx: &Ctx<'_>, fx: &mut Vec<Effect>) {
        let mut results = BTreeSet::new();
        let mut outcomes = Vec::new();
        for rs in self.rounds.iter().flatten() {
            for (_, r) in rs.counted() {
                results.insert(r.reveal.result);
            }
            if rs.started_at.is_some() {
                for m in &rs.committee {
                    if let Some(o) = rs.outcome_of(m, None) {
                        outcomes.push((*m, o));
                    }
                }
            }
        }
        let nondeterministic = results.len() >= 2;
        warn!(target: TARGET, task = %self.id, nondeterministic, "task failed: no quorum after escalation");
        if let Some(m) = ctx.metrics {
            m.failures.inc();
        }
        self.status = Status::Failed;
        fx.push(Effect::Failed {
            task: self.id,
            nondeterministic,
        });
        fx.push(Effect::Settled {
            task: self.id,
            result: None,
            outcomes,
        });
    }

    fn on_timeout(&mut self, t: Timer, ctx: &Ctx<'_>, fx: &mut Vec<Effect>) {
        let Some(rs) = self.rounds[idx(t.round)].as_mut() else {
            return;
        };
        match t.kind {
            TimerKind::CommitTimeout => {
                rs.commit_timed_out = true;
                self.maybe_reveal(t.round, false, ctx, fx);
            }
            TimerKind::RevealDelay => self.maybe_reveal(t.round, true, ctx, fx),
            TimerKind::Deadline => {
                if rs.deadline_passed {
                    return;
                }
                rs.deadline_passed = true;
                match (&self.status, t.round) {
                    (Status::Decided { round, .. }, r) if *round == r => self.settle(fx),
                    // Decided by an escalation quorum (or certificate) this
                    // node never started: its deadline will not fire here.
                    (
                        Status::Decided {
                            round: Round::Escalation,
                            ..
                        },
                        Round::Primary,
                    ) if self.rounds[1]
                        .as_ref()
                        .is_none_or(|r| r.started_at.is_none()) =>
                    {
                        self.settle(fx)
                    }
                    (Status::Decided { .. }, _) => {}
                    (_, Round::Primary) if !self.escalated => self.escalate(ctx, fx),
                    (_, Round::Escalation) if self.escalated => self.fail(ctx, fx),
                    _ => {}
                }
            }
        }
    }

    fn escalate(&mut self, ctx: &Ctx<'_>, fx: &mut Vec<Effect>) {
        if self.ensure_round(Round::Escalation, ctx).is_none() {
            warn!(target: TARGET, task = %self.id, "no quorum and no escalation committee can be drawn");
            self.escalated = true;
            self.fail(ctx, fx);
            return;
        }
        self.escalated = true;
        if let Some(m) = ctx.metrics {
            m.escalations.inc();
        }
        let committee = self.rounds[1]
            .as_ref()
            .map(|r| r.committee.clone())
            .unwrap_or_default();
        info!(target: TARGET, task = %self.id, size = committee.len(), "escalating");
        fx.push(Effect::Escalate {
            task: self.id,
            committee,
        });
        self.start_round(Round::Escalation, ctx.now, ctx, fx);
        // Votes of the escalation round may have arrived before this node
        // escalated: they may already form a quorum, or let us reveal.
        self.check_quorum(Round::Escalation, ctx, fx);
    }
}
