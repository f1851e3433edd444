//! The engine loop: restore from the store, then commands, inbound gossip,
//! finished executions, timers and the batching tick, one at a time.

use super::*;

impl Engine {
    /// Reloads tasks and own votes from the store and resumes them.
    pub(super) async fn restore(&mut self) {
        let store = self.store.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::store::StoreError>((
                store.tasks::<TaskRecord>()?,
                store.votes::<VoteRecord>()?,
            ))
        })
        .await;
        let (tasks, votes) = match loaded {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                warn!(target: "hal9::engine", error = %e, "cannot reload tasks");
                return;
            }
            Err(e) => {
                warn!(target: "hal9::engine", error = %e, "cannot reload tasks");
                return;
            }
        };
        let now = self.now();
        let stored = tasks.len();
        // Records first: the restored votes' effects look them up. Finished
        // tasks stay in the store (the API loads them from there), except in
        // chain mode those the settlement outbox still owes something for.
        let mut to_resume = Vec::new();
        let mut finished = Vec::new();
        for rec in tasks {
            let Some(id) = hex::decode(&rec.id)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            else {
                continue;
            };
            let id = TaskId(id);
            if rec.is_final() && !self.owed(&id, &rec) {
                continue;
            }
            if rec.is_final() {
                finished.push(id);
            }
            if let Ok(input) = hex::decode(&rec.input) {
                self.inputs.insert(id, input.into());
            }
            if let (Some(ctx), Some(parent)) = (
                self.chain.as_mut(),
                rec.chain.as_ref().and_then(|c| c.parent.as_deref()),
            ) && let Some(p) = hex::decode(parent)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            {
                ctx.instances.insert(id, TaskId(p));
            }
            if !rec.is_final() && rec.status != TaskStatus::AwaitingChain {
                let params = if rec.chain.is_some() {
                    let committee: Option<Vec<PeerId>> =
                        rec.committee.iter().map(|p| p.parse().ok()).collect();
                    committee.map(TaskParams::fixed)
                } else {
                    standalone_params(&rec).ok()
                };
                if let Some(params) = params {
                    to_resume.push((id, params));
                }
            }
            self.restore_waiting(id, &rec);
            self.tasks.insert(id, rec);
        }
        for id in finished {
            self.note_final(id, now);
        }
        let mut voted = std::collections::HashSet::new();
        for v in votes.iter().filter_map(VoteRecord::to_vote) {
            let unfinished = self.tasks.get(&v.task).is_some_and(|r| !r.is_final());
            voted.insert(v.task);
            if unfinished {
                let fx = self.driver.apply(Input::Restore { vote: v, now });
                self.carry_out(fx).await;
            }
        }
        let mut resumed = 0;
        for (id, params) in to_resume {
            if voted.contains(&id) {
                continue;
            }
            let fx = self.driver.apply(Input::TaskSeen {
                task: id,
                params,
                now,
            });
            self.carry_out(fx).await;
            resumed += 1;
        }
        info!(target: "hal9::engine", stored, in_memory = self.tasks.len(), resumed, restored_votes = voted.len(), "engine state reloaded");
        if self.tasks.len() > self.cfg.max_tasks_in_memory {
            warn!(target: "hal9::engine", in_memory = self.tasks.len(), max = self.cfg.max_tasks_in_memory, "more unfinished tasks restored than consensus.max_tasks_in_memory; new tasks are refused until they end");
        }
        self.note_sizes();
    }

    /// Runs the engine until every handle and the inbound sender are dropped.
    pub async fn run(mut self) {
        self.restore().await;
        let mut tick =
            tokio::time::interval(Duration::from_millis(self.cfg.batch_interval_ms.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_sweep = 0;
        loop {
            // (The tick below wakes the loop too, so a clock moved by a
            // test fires due timers without waiting for this sleep.)
            let next = self.timers.keys().next().map(|(at, _)| *at);
            let delay = next.map(|at| at.saturating_sub(self.now()));
            let sleep = async {
                match delay {
                    Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(c) => self.on_command(c).await,
                    None => break,
                },
                msg = self.inbound.recv() => match msg {
                    Some(m) => self.on_inbound(m).await,
                    None => break,
                },
                Some(done) = self.exec_rx.recv() => self.on_exec_done(done).await,
                _ = tick.tick() => {
                    self.flush_votes().await;
                    self.flush_certificates().await;
                    let now = self.now();
                    if now >= next_sweep {
                        next_sweep = now + onchain::EXPIRY_SWEEP_MS;
                        self.expire_waiting(now).await;
                        self.evict_finished(now);
                        self.note_input_bytes();
                    }
                }
                _ = sleep => self.fire_timers().await,
            }
            self.note_sizes();
        }
        info!(target: "hal9::engine", "engine stopped");
    }

    pub(super) async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Submit { msg, reply } => {
                let id = msg.id;
                if !self.known(&id).await {
                    // In chain mode the fee is already escrowed: never refused.
                    let must = self.chain_mode();
                    if !self.admit(&id, must).await {
                        let _ = reply.send(Err(EngineError::Full {
                            held: self.tasks.len(),
                            max: self.cfg.max_tasks_in_memory,
                        }));
                        return;
                    }
                    // In chain mode the fee is escrowed and the input named
                    // by CID by now: members start from `TaskPosted`, and a
                    // failed gossip is no reason to report a failure.
                    let needed = !(self.chain_mode() && input_by_cid_spec(&msg));
                    let sent = if matches!(self.fault, Fault::NoTaskGossip) {
                        Err("fault injection: task gossip off".to_string())
                    } else {
                        self.net
                            .publish(TASKS_TOPIC, msg.encode())
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    };
                    match sent {
                        Ok(()) => {}
                        Err(e) if needed => {
                            let _ = reply.send(Err(EngineError::Network(e)));
                            return;
                        }
                        Err(e) => {
                            warn!(target: "hal9::engine", task = %hex::encode(id.0), error = %e, "cannot gossip the task; members start from its TaskPosted event");
                        }
                    }
                    if self.chain_mode() {
                        self.chain_on_task(msg, true).await;
                    } else {
                        self.on_task(msg).await;
                    }
                }
                let _ = reply.send(Ok(id));
            }
            Command::Get { id, reply } => {
                let _ = reply.send(self.tasks.get(&id).cloned());
            }
            Command::List { reply } => {
                let mut all: Vec<_> = self.tasks.values().cloned().collect();
                all.sort_by_key(|r| r.seen_at_ms);
                let _ = reply.send(all);
            }
            Command::Bounds { reply } => {
                let _ = reply.send(self.bounds_report());
            }
            Command::Verify { id, reply } => {
                let res = match self.tasks.get(&id) {
                    Some(rec) => self.verify(id, rec),
                    None => match bounds::load(&self.store, &id, &self.metrics).await {
                        Some(rec) => self.verify(id, &rec),
                        None => Err(EngineError::UnknownTask(hex::encode(id.0))),
                    },
                };
                let _ = reply.send(res);
            }
            Command::Reputation { reply } => {
                let mut v: Vec<_> = self
                    .driver
                    .reputation()
                    .entries()
                    .map(|(p, b)| (p.to_string(), b))
                    .collect();
                v.sort();
                let _ = reply.send(v);
            }
            Command::Settlement { task, round, reply } => {
                let _ = reply.send(self.settlement_payload(task, round).await);
            }
            Command::OwnCommitment { task, round, reply } => {
                let _ = reply.send(self.own_commitment(task, round).await);
            }
            Command::Equivocation { task, reply } => {
                let _ = reply.send(self.equivocation_payload(task));
            }
            Command::NoteTx { task, action, tx } => self.note_tx(task, action, tx).await,
        }
    }

    pub(super) fn verify(&self, id: TaskId, rec: &TaskRecord) -> Result<VerifyReport, EngineError> {
        let v = rec
            .verdict
            .as_ref()
            .ok_or_else(|| EngineError::NoVerdict(rec.id.clone()))?;
        let bytes = hex::decode(&v.certificate)
            .map_err(|e| EngineError::Certificate(format!("stored certificate is not hex: {e}")))?;
        let cert =
            Certificate::decode(&bytes).map_err(|e| EngineError::Certificate(e.to_string()))?;
        if cert.task != id {
            return Err(EngineError::Certificate(
                "certificate is for another task".into(),
            ));
        }
        let params = if rec.chain.is_some() {
            let committee: Option<Vec<PeerId>> =
                rec.committee.iter().map(|p| p.parse().ok()).collect();
            TaskParams::fixed(committee.ok_or_else(|| {
                EngineError::Certificate("stored committee holds an invalid peer id".into())
            })?)
        } else {
            standalone_params(rec).map_err(EngineError::Certificate)?
        };
        cert.verify(&self.validators, &params)
            .map_err(|e| EngineError::Certificate(e.to_string()))?;
        let committee = match cert.round {
            Round::Primary => params.r,
            Round::Escalation => 2 * rec.replicas as usize + 1,
        };
        let output_matches = rec
            .own_output
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .map(|o| keccak256(&[&o]) == cert.result.0);
        Ok(VerifyReport {
            task: rec.id.clone(),
            round: round_name(cert.round).into(),
            result: hex::encode(cert.result.0),
            output_cid: v.output_cid.clone(),
            signers: cert
                .votes
                .iter()
                .map(|v| v.reveal.signer.to_string())
                .collect(),
            quorum: hal9_consensus::quorum(committee),
            output_matches,
        })
    }

    pub(super) async fn on_inbound(&mut self, msg: Inbound) {
        match msg {
            Inbound::Task(t) => {
                if self.chain_mode() {
                    self.chain_on_task(t, false).await;
                } else if !self.known(&t.id).await && self.admit(&t.id, false).await {
                    self.on_task(t).await;
                }
            }
            Inbound::Attestation(a, signer) => self.record_attestation(a, signer).await,
            Inbound::Chain(c) => self.on_chain(c).await,
            Inbound::Votes(batch) => {
                let fx = self.driver.apply(Input::Votes {
                    batch,
                    now: self.now(),
                });
                self.carry_out(fx).await;
            }
            Inbound::Certificate(cert) => {
                // Only for tasks this node follows and has not decided yet.
                if self
                    .tasks
                    .get(&cert.certificate().task)
                    .is_some_and(|r| !r.is_final())
                {
                    let fx = self.driver.apply(Input::VerifiedCertificateSeen {
                        certificate: *cert,
                        now: self.now(),
                    });
                    self.carry_out(fx).await;
                }
            }
        }
    }

    pub(super) async fn on_task(&mut self, t: TaskMessage) {
        let id = t.id;
        // Standalone sortition draws from the genesis validators offering
        // the spec's capability (ADR 0021), with their genesis weights.
        let capability = t.spec.standalone_capability();
        let params = TaskParams {
            r: t.spec.replicas as usize,
            capability: capability.clone().ok().flatten(),
            committee: None,
        };
        let committee = self
            .validators
            .committee(&id, params.r, params.capability.as_deref())
            .map(|c| c.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default();
        let program = t.spec.program().map(|c| c.to_string()).unwrap_or_default();
        let rec = TaskRecord {
            id: hex::encode(id.0),
            spec: hex::encode(t.spec.encode()),
            input: hex::encode(&t.input),
            program,
            replicas: t.spec.replicas,
            status: TaskStatus::Pending,
            committee,
            escalation_committee: Vec::new(),
            own_output: None,
            verdict: None,
            nondeterministic: false,
            error: None,
            seen_at_ms: self.now(),
            outcomes: Vec::new(),
            chain: None,
        };
        info!(target: "hal9::engine", task = %rec.id, program = %rec.program, r = rec.replicas, capability = ?params.capability, "task seen");
        self.inputs.insert(id, t.input.into());
        self.tasks.insert(id, rec);
        if let Err(e) = capability {
            if let Some(rec) = self.tasks.get_mut(&id) {
                warn!(target: "hal9::engine", task = %rec.id, error = %e, "task rejected");
                rec.status = TaskStatus::Rejected;
                rec.error = Some(e.to_string());
            }
            self.persist_task(id).await;
            let _ = self.finished.send(id);
            return;
        }
        self.persist_task(id).await;
        let fx = self.driver.apply(Input::TaskSeen {
            task: id,
            params,
            now: self.now(),
        });
        self.carry_out(fx).await;
    }

    pub(super) async fn persist_task(&mut self, id: TaskId) {
        let Some(rec) = self.tasks.get(&id).cloned() else {
            return;
        };
        if rec.is_final() {
            self.note_final(id, self.now());
        }
        let store = self.store.clone();
        let res = tokio::task::spawn_blocking(move || store.put_task(&rec.id, &rec)).await;
        if let Ok(Err(e)) = res {
            warn!(target: "hal9::engine", error = %e, "cannot persist task");
        }
    }

    pub(super) async fn fire_timers(&mut self) {
        let now = self.now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (task, timer) = entry.remove();
            let fx = self.driver.apply(Input::Timeout { task, timer, now });
            self.carry_out(fx).await;
        }
    }

    pub(super) async fn flush_certificates(&mut self) {
        let now = self.now();
        let due: Vec<Vec<u8>> = {
            let (due, keep): (Vec<_>, Vec<_>) =
                self.certs_out.drain(..).partition(|(at, _)| *at <= now);
            self.certs_out = keep;
            due.into_iter().map(|(_, b)| b).collect()
        };
        for bytes in due {
            if let Err(e) = self.net.publish(CERTS_TOPIC, bytes).await {
                debug!(target: "hal9::engine", error = %e, "cannot gossip certificate");
            }
        }
    }

    pub(super) async fn flush_votes(&mut self) {
        while !self.outbox.is_empty() {
            let n = self.outbox.len().min(MAX_BATCH);
            let items: Vec<VoteItem> = self.outbox.drain(..n).collect();
            self.seq += 1;
            let batch = match VoteBatch::sign(&self.keypair, self.seq, items) {
                Ok(b) => b,
                Err(e) => {
                    warn!(target: "hal9::engine", error = %e, "cannot sign vote batch");
                    continue;
                }
            };
            let bytes = Envelope::new(Kind::Votes, batch.encode()).encode();
            if let Err(e) = self.net.publish(VOTES_TOPIC, bytes).await {
                warn!(target: "hal9::engine", error = %e, "cannot gossip vote batch");
            }
            match batch.verify() {
                Ok(own) => {
                    let fx = self.driver.apply(Input::Votes {
                        batch: own,
                        now: self.now(),
                    });
                    Box::pin(self.carry_out(fx)).await;
                }
                Err(e) => warn!(target: "hal9::engine", error = %e, "own batch does not verify"),
            }
        }
    }

    pub(super) fn salt(&self, task: &TaskId, round: Round) -> Salt {
        Salt(keccak256(&[&self.salt_secret, &task.0, &[round.as_u8()]]))
    }
}
