//! Executions: jobs run on blocking threads (fetch by CID, load cached by
//! module digest, execute with the spec's fuel), bounded by a slot
//! semaphore and a queue, reporting back to the loop through a channel.

use super::*;

/// Runs one task's program: fetch by CID, load (cached by digest), execute.
pub(super) struct ExecJob {
    pub(super) task: TaskId,
    pub(super) round: Round,
    pub(super) program: RawCid,
    /// The inline input, or `None` when the spec names it by CID.
    pub(super) input: Option<Arc<[u8]>>,
    pub(super) input_cid: Option<RawCid>,
    pub(super) input_hash: [u8; 32],
    pub(super) fuel: u64,
    /// Keep the output unannounced (chain mode) until the commit phase ended.
    pub(super) sealed: bool,
}

/// How one execution ended.
pub(super) enum ExecResult {
    /// The program's output and its CID.
    Output(Vec<u8>, RawCid),
    /// A deterministic failure: committed to like an output. The string is
    /// the local, detailed reason (never part of the result).
    Failure(Failure, String),
    /// A host-dependent failure: this member abstains.
    Abstain(String),
}

pub(super) struct ExecDone {
    pub(super) task: TaskId,
    pub(super) round: Round,
    pub(super) result: ExecResult,
}

/// Most program CIDs whose module digest the engine remembers.
pub(super) const MAX_PROGRAM_DIGESTS: usize = 1024;

/// Module digests (SHA-256 of the module bytes) of programs fetched by CID:
/// a raw-leaf CID names that digest itself, a dag-pb (multi-block) CID does
/// not, so its digest is learnt when the bytes are first fetched.
#[derive(Clone, Default)]
pub(super) struct ProgramDigests(pub(super) Arc<std::sync::Mutex<HashMap<RawCid, ModuleDigest>>>);

impl ProgramDigests {
    pub(super) fn get(&self, cid: &RawCid) -> Option<ModuleDigest> {
        if cid.codec() == cid::RAW {
            return Some(ModuleDigest(cid.digest()));
        }
        self.0.lock().ok()?.get(cid).copied()
    }

    pub(super) fn insert(&self, cid: RawCid, digest: ModuleDigest) {
        if cid.codec() == cid::RAW {
            return;
        }
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= MAX_PROGRAM_DIGESTS {
                m.clear();
            }
            m.insert(cid, digest);
        }
    }
}

/// What one execution needs, cloned into its task.
pub(super) struct ExecCtx {
    pub(super) content: Arc<dyn ContentSource>,
    pub(super) plugins: PluginEngine,
    pub(super) digests: ProgramDigests,
    pub(super) fetch_timeout: Duration,
}

impl ExecCtx {
    /// The loaded module of `program`: from the cache when its digest is
    /// known, else fetched (the content layer checks every block against
    /// the CID), hashed and compiled. Errors are host-dependent: abstain.
    pub(super) async fn module(&self, program: RawCid) -> Result<ModuleDigest, String> {
        if let Some(d) = self.digests.get(&program)
            && self.plugins.cached(&d).is_some()
        {
            return Ok(d);
        }
        let wasm = self
            .content
            .get(program, self.fetch_timeout)
            .await
            .map_err(|e| format!("program {e}"))?;
        let p2 = self.plugins.clone();
        let digest = tokio::task::spawn_blocking(move || {
            // The digest of the module bytes, whatever the CID's layout.
            let digest = ModuleDigest::of(&wasm);
            p2.load_verified(digest, &wasm).map(|_| digest)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("program {program} cannot be loaded: {e}"))?;
        self.digests.insert(program, digest);
        Ok(digest)
    }

    /// The input: inline, or fetched by CID (at most [`spec::MAX_INPUT_BYTES`])
    /// and checked against the spec's `inputHash`.
    pub(super) async fn input(&self, job: &ExecJob) -> Result<Arc<[u8]>, ExecResult> {
        if let Some(i) = &job.input {
            return Ok(i.clone());
        }
        let fail = |kind, detail: String| {
            ExecResult::Failure(
                Failure {
                    kind,
                    fuel_limit: job.fuel,
                },
                detail,
            )
        };
        let Some(cid) = job.input_cid else {
            return Err(ExecResult::Abstain("the task's input is not known".into()));
        };
        let bytes = self
            .content
            .get(cid, self.fetch_timeout)
            .await
            .map_err(|e| ExecResult::Abstain(format!("input {e}")))?;
        if bytes.len() > spec::MAX_INPUT_BYTES {
            return Err(fail(
                FailureKind::InputTooLarge,
                format!(
                    "input {cid} has {} bytes, expected at most {}",
                    bytes.len(),
                    spec::MAX_INPUT_BYTES
                ),
            ));
        }
        if keccak256(&[&bytes]) != job.input_hash {
            return Err(fail(
                FailureKind::InputMismatch,
                format!("input {cid} does not hash to the spec's inputHash"),
            ));
        }
        Ok(Arc::from(&bytes[..]))
    }

    pub(super) async fn run(&self, job: ExecJob, wrong: bool) -> ExecResult {
        let digest = match self.module(job.program).await {
            Ok(d) => d,
            Err(reason) => return ExecResult::Abstain(reason),
        };
        let input = match self.input(&job).await {
            Ok(i) => i,
            Err(r) => return r,
        };
        let fuel = job.fuel;
        let req = ExecRequest {
            module: digest,
            input,
            task_id: hal9_plugins::TaskId(job.task.0),
            limits: None,
        };
        let p2 = self.plugins.clone();
        let out = tokio::task::spawn_blocking(move || {
            let mut req = req;
            let Some(plugin) = p2.cached(&req.module) else {
                return Err(None);
            };
            let mut limits = p2.default_limits(&plugin);
            // The spec's fuel, exactly (validated against spec::MAX_FUEL),
            // and the network's output limit: deterministic on every member.
            limits.fuel = fuel;
            limits.output_bytes = spec::MAX_OUTPUT_BYTES;
            limits.wall_clock = spec::EXEC_WALL_CLOCK;
            req.limits = Some(limits);
            p2.execute(&req).map_err(Some)
        })
        .await;
        let out = match out {
            Ok(Ok(out)) => out,
            Ok(Err(None)) => return ExecResult::Abstain("module evicted before it ran".into()),
            Ok(Err(Some(e))) => {
                return match FailureKind::of_plugin_error(&e) {
                    Some(kind) => ExecResult::Failure(
                        Failure {
                            kind,
                            fuel_limit: fuel,
                        },
                        e.to_string(),
                    ),
                    None => ExecResult::Abstain(e.to_string()),
                };
            }
            Err(e) => return ExecResult::Abstain(e.to_string()),
        };
        let mut output = out.output;
        if wrong {
            output.push(0xff);
        }
        let stored = if job.sealed {
            self.content.add_sealed_result(Bytes::from(output.clone()))
        } else {
            self.content.add_result(Bytes::from(output.clone()))
        };
        match stored.await {
            Ok(cid) => ExecResult::Output(output, cid),
            Err(e) => ExecResult::Abstain(format!("cannot store the output: {e}")),
        }
    }
}

impl Engine {
    pub(super) async fn on_exec_done(&mut self, done: ExecDone) {
        self.exec_inflight = self.exec_inflight.saturating_sub(1);
        let now = self.now();
        let fx = match done.result {
            ExecResult::Failure(failure, detail) => {
                info!(target: "hal9::engine", task = %hex::encode(done.task.0), kind = failure.kind.label(), %detail, "deterministic failure; committing to it");
                if let Some(rec) = self.tasks.get_mut(&done.task) {
                    rec.error = Some(detail);
                }
                self.persist_task(done.task).await;
                let Some(cid) = Cid::new(failure.cid().to_bytes()) else {
                    return;
                };
                self.driver.apply(Input::ExecutionFinished {
                    task: done.task,
                    round: done.round,
                    result: failure.result(),
                    cid,
                    salt: self.salt(&done.task, done.round),
                    now,
                })
            }
            ExecResult::Output(output, cid) => {
                let result = ResultHash::of_output(&output);
                if let Some(rec) = self.tasks.get_mut(&done.task) {
                    rec.own_output = Some(hex::encode(&output));
                }
                self.persist_task(done.task).await;
                let Some(cid) = Cid::new(cid.to_bytes()) else {
                    return;
                };
                self.driver.apply(Input::ExecutionFinished {
                    task: done.task,
                    round: done.round,
                    result,
                    cid,
                    salt: self.salt(&done.task, done.round),
                    now,
                })
            }
            ExecResult::Abstain(reason) => {
                warn!(target: "hal9::engine", task = %hex::encode(done.task.0), %reason, "execution failed on this host; abstaining");
                if let Some(rec) = self.tasks.get_mut(&done.task) {
                    // The task may already have failed for want of a quorum
                    // while this member was still fetching: say why now.
                    let failed = rec.status == TaskStatus::Failed;
                    rec.error = Some(reason);
                    if failed {
                        rec.error = Some(failure_cause(rec, rec.nondeterministic));
                    }
                }
                self.persist_task(done.task).await;
                self.driver.apply(Input::ExecutionFailed {
                    task: done.task,
                    round: done.round,
                    now,
                })
            }
        };
        self.carry_out(fx).await;
    }

    /// Most executions spawned at once: the running ones and the queue.
    pub(super) fn exec_capacity(&self) -> usize {
        self.cfg.max_concurrent_executions.max(1) + self.cfg.max_queued_executions
    }

    /// Starts an execution when the bounded queue has room; false when it
    /// is full (the caller makes this member stay silent for the task).
    pub(super) fn spawn_execution(&mut self, job: ExecJob) -> bool {
        if self.exec_inflight >= self.exec_capacity() {
            return false;
        }
        self.exec_inflight += 1;
        let wrong = self.wrong_for(&job.task);
        let ctx = ExecCtx {
            content: self.content.clone(),
            plugins: self.plugins.clone(),
            digests: self.program_digests.clone(),
            fetch_timeout: Duration::from_millis(self.cfg.fetch_timeout_ms),
        };
        let (tx, slots) = (self.exec_tx.clone(), self.exec_slots.clone());
        tokio::spawn(async move {
            let (task, round) = (job.task, job.round);
            let result = match slots.acquire_owned().await {
                Ok(_permit) => ctx.run(job, wrong).await,
                Err(e) => ExecResult::Abstain(format!("execution slots closed: {e}")),
            };
            let _ = tx
                .send(ExecDone {
                    task,
                    round,
                    result,
                })
                .await;
        });
        true
    }

    /// The execution queue is full: this member does not execute `task`, so
    /// it never commits and the committee counts it as absent.
    pub(super) async fn refuse_execution(&mut self, task: TaskId, round: Round) {
        let capacity = self.exec_capacity();
        warn!(target: "hal9::engine", task = %hex::encode(task.0), ?round, in_flight = self.exec_inflight, capacity, "execution queue full; not executing this task (this member stays silent)");
        self.metrics.executions_refused.inc();
        if let Some(rec) = self.tasks.get_mut(&task) {
            rec.error = Some(format!(
                "this node's execution queue was full ({capacity} executions running or queued)"
            ));
        }
        self.persist_task(task).await;
        let fx = self.driver.apply(Input::ExecutionFailed {
            task,
            round,
            now: self.now(),
        });
        Box::pin(self.carry_out(fx)).await;
    }
}
