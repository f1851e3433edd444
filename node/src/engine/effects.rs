//! Carrying out the effects the consensus driver returns: persist, gossip,
//! execute, arm timers, publish verdicts, and (chain mode) queue settlement.

use super::*;

impl Engine {
    pub(super) async fn carry_out(&mut self, effects: Vec<Effect>) {
        let mut changed = Vec::new();
        let mut refused = Vec::new();
        for fx in effects {
            let held = self.chain_hooks(&fx).await;
            match fx {
                Effect::Execute { task, round } if self.copies(&task) => {
                    warn!(target: "hal9::engine", task = %hex::encode(task.0), ?round, "FAULT INJECTION: not executing; waiting to copy another member's result");
                }
                Effect::Execute { task, round } => {
                    let Some(rec) = self.tasks.get(&task) else {
                        continue;
                    };
                    let Ok(spec) = hex::decode(&rec.spec)
                        .map_err(|e| e.to_string())
                        .and_then(|b| spec::TaskSpec::decode(&b).map_err(|e| e.to_string()))
                    else {
                        continue;
                    };
                    let (Ok(program), Ok(input_cid)) = (spec.program(), spec.input_cid()) else {
                        continue;
                    };
                    // Inline bytes when they came with the gossip (checked
                    // against the spec then), else fetched by CID.
                    // (An input named by CID gossiped with no inline bytes
                    // leaves an empty entry: that is no input.)
                    let inline = self
                        .inputs
                        .get(&task)
                        .filter(|i| !i.is_empty() || input_cid.is_none());
                    let input = match (inline, input_cid) {
                        (Some(i), _) => Some(i.clone()),
                        (None, Some(_)) => None,
                        (None, None) => continue,
                    };
                    debug!(target: "hal9::engine", task = %rec.id, ?round, by_cid = input_cid.is_some(), "executing");
                    let started = self.spawn_execution(ExecJob {
                        task,
                        round,
                        program,
                        input,
                        input_cid,
                        input_hash: spec.inputHash.0,
                        fuel: spec.fuelLimit,
                        sealed: self.chain.is_some(),
                    });
                    if !started {
                        refused.push((task, round));
                    }
                }
                Effect::Persist(vote) => {
                    let rec = VoteRecord::from_vote(&vote);
                    let key = hex::encode(vote.task.0);
                    let store = self.store.clone();
                    match tokio::task::spawn_blocking(move || store.put_vote(&key, &rec)).await {
                        Ok(Ok(())) => {}
                        other => {
                            // Never broadcast a vote that is not durable.
                            warn!(target: "hal9::engine", ?other, "cannot persist vote; withholding it");
                            return;
                        }
                    }
                }
                Effect::Broadcast(item) => {
                    if !held {
                        self.outbox.push(item)
                    }
                }
                Effect::SetTimer { task, timer, at } => {
                    self.timer_seq += 1;
                    self.timers.insert((at, self.timer_seq), (task, timer));
                }
                Effect::Verdict(v) => {
                    let now = self.now();
                    if let Some(rec) = self.tasks.get_mut(&v.task) {
                        rec.status = TaskStatus::Verified;
                        let output_cid = RawCid::from_bytes(v.cid.as_bytes())
                            .map(|c| c.to_string())
                            .unwrap_or_else(|_| hex::encode(v.cid.as_bytes()));
                        info!(target: "hal9::engine", task = %rec.id, result = %hex::encode(v.result.0), output = %output_cid, "verdict");
                        if let Some(f) = verdict_failure(rec, &v.result.0) {
                            info!(target: "hal9::engine", task = %rec.id, kind = f.kind.label(), "the verdict is a deterministic failure");
                            rec.error = Some(f.describe());
                        }
                        rec.verdict = Some(VerdictRecord {
                            round: round_name(v.round).into(),
                            result: hex::encode(v.result.0),
                            output_cid,
                            attesters: v
                                .certificate
                                .votes
                                .iter()
                                .map(|c| c.reveal.signer.to_string())
                                .collect(),
                            certificate: hex::encode(v.certificate.encode()),
                            decided_at_ms: now,
                        });
                        // Every deciding member gossips the certificate (a
                        // little later), for nodes that missed votes.
                        let local = self.keypair.public().to_peer_id().to_string();
                        if rec.committee.contains(&local)
                            || rec.escalation_committee.contains(&local)
                        {
                            let bytes =
                                Envelope::new(Kind::Certificate, v.certificate.encode()).encode();
                            if bytes.len() <= MAX_CERT_MESSAGE {
                                self.certs_out.push((self.now() + CERT_DELAY_MS, bytes));
                            }
                        }
                        changed.push(v.task);
                    }
                }
                Effect::Escalate { task, committee } => {
                    if let Some(rec) = self.tasks.get_mut(&task) {
                        info!(target: "hal9::engine", task = %rec.id, size = committee.len(), "escalating");
                        if rec.status == TaskStatus::Pending {
                            rec.status = TaskStatus::Escalated;
                        }
                        rec.escalation_committee =
                            committee.iter().map(|p| p.to_string()).collect();
                        changed.push(task);
                    }
                }
                Effect::Failed {
                    task,
                    nondeterministic,
                } => {
                    if let Some(rec) = self.tasks.get_mut(&task) {
                        rec.status = TaskStatus::Failed;
                        rec.nondeterministic = nondeterministic;
                        let cause = failure_cause(rec, nondeterministic);
                        warn!(target: "hal9::engine", task = %rec.id, nondeterministic, %cause, "task failed: no quorum");
                        rec.error = Some(cause);
                        changed.push(task);
                    }
                }
                Effect::Misbehaviour(ev) => {
                    warn!(target: "hal9::engine", evidence = ?ev, "misbehaviour observed");
                }
                Effect::Settled { task, outcomes, .. } => {
                    let outcomes: Vec<(String, String)> = outcomes
                        .iter()
                        .map(|(p, o)| (p.to_string(), outcome_name(*o).to_string()))
                        .collect();
                    if let Some(rec) = self.tasks.get_mut(&task) {
                        rec.outcomes = outcomes;
                        changed.push(task);
                    } else {
                        // Decided and already out of memory: the record in
                        // the store gets the members' outcomes.
                        self.update_stored(task, move |r| r.outcomes = outcomes)
                            .await;
                    }
                }
                Effect::Reputation(change) => {
                    debug!(target: "hal9::engine", ?change, "reputation changed");
                    let entries: Vec<(String, u32)> = self
                        .driver
                        .reputation()
                        .entries()
                        .map(|(p, b)| (p.to_string(), b))
                        .collect();
                    let store = self.store.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || store.put_reputation(&entries)).await;
                }
                Effect::Rejected { task, error } => {
                    if let Some(rec) = self.tasks.get_mut(&task) {
                        warn!(target: "hal9::engine", task = %rec.id, %error, "task rejected");
                        rec.status = TaskStatus::Rejected;
                        rec.error = Some(error.to_string());
                        changed.push(task);
                    }
                }
            }
        }
        for task in changed {
            self.persist_task(task).await;
            if self.tasks.get(&task).is_some_and(|r| r.is_final()) {
                let _ = self.finished.send(task);
            }
        }
        for (task, round) in refused {
            self.refuse_execution(task, round).await;
        }
    }
}
