//! The engine's handle: the commands clients send the engine loop, and
//! the reads it answers from the store once a task has left memory.

use super::*;

pub(super) enum Command {
    Submit {
        msg: TaskMessage,
        reply: oneshot::Sender<Result<TaskId, EngineError>>,
    },
    Get {
        id: TaskId,
        reply: oneshot::Sender<Option<TaskRecord>>,
    },
    List {
        reply: oneshot::Sender<Vec<TaskRecord>>,
    },
    Bounds {
        reply: oneshot::Sender<bounds::BoundsReport>,
    },
    Verify {
        id: TaskId,
        reply: oneshot::Sender<Result<VerifyReport, EngineError>>,
    },
    Reputation {
        reply: oneshot::Sender<Vec<(String, u32)>>,
    },
    Settlement {
        task: alloy::primitives::B256,
        round: u8,
        reply: oneshot::Sender<Option<crate::chain::SettlementPayload>>,
    },
    NoteTx {
        task: alloy::primitives::B256,
        action: String,
        tx: String,
    },
    OwnCommitment {
        task: alloy::primitives::B256,
        round: u8,
        reply: oneshot::Sender<Option<alloy::primitives::B256>>,
    },
    Equivocation {
        task: alloy::primitives::B256,
        reply: oneshot::Sender<Option<EquivocationProof>>,
    },
}

pub use crate::chain::EquivocationProof;

/// What `task verify` reports (a control API type).
pub use hal9_api::VerifyReport;

/// A cloneable handle to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) finished: broadcast::Sender<TaskId>,
    pub(super) content: Arc<dyn ContentSource>,
    pub(super) store: Arc<Store>,
    pub(super) metrics: bounds::EngineMetrics,
}

impl EngineHandle {
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Whether the engine has stopped.
    pub fn is_stopped(&self) -> bool {
        self.tx.is_closed()
    }

    /// The commitment this node stores on chain for `task` in `round`
    /// (chain mode; `None` until its vote is persisted).
    pub async fn own_commitment(
        &self,
        task: alloy::primitives::B256,
        round: u8,
    ) -> Option<alloy::primitives::B256> {
        self.call(|reply| Command::OwnCommitment { task, round, reply })
            .await
            .ok()
            .flatten()
    }

    /// An equivocation proof held for `task` (chain mode).
    pub async fn equivocation(&self, task: alloy::primitives::B256) -> Option<EquivocationProof> {
        self.call(|reply| Command::Equivocation { task, reply })
            .await
            .ok()
            .flatten()
    }

    /// The reveals to settle a verdict on chain (chain mode).
    pub async fn settlement(
        &self,
        task: alloy::primitives::B256,
        round: u8,
    ) -> Option<crate::chain::SettlementPayload> {
        self.call(|reply| Command::Settlement { task, round, reply })
            .await
            .ok()
            .flatten()
    }

    /// Records a settlement transaction this node landed.
    pub async fn note_tx(&self, task: alloy::primitives::B256, action: &str, tx: String) {
        let _ = self
            .tx
            .send(Command::NoteTx {
                task,
                action: action.to_string(),
                tx,
            })
            .await;
    }

    /// Gossips a task and starts tracking it.
    pub async fn submit(&self, msg: TaskMessage) -> Result<TaskId, EngineError> {
        self.call(|reply| Command::Submit { msg, reply }).await?
    }

    /// A task record: from memory, or for a task that left memory, from the store.
    pub async fn get(&self, id: TaskId) -> Result<Option<TaskRecord>, EngineError> {
        match self.call(|reply| Command::Get { id, reply }).await? {
            Some(rec) => Ok(Some(rec)),
            None => Ok(bounds::load(&self.store, &id, &self.metrics).await),
        }
    }

    /// Sizes of the engine's bounded state.
    pub async fn bounds(&self) -> Result<bounds::BoundsReport, EngineError> {
        self.call(|reply| Command::Bounds { reply }).await
    }

    /// Waits until the task has ended or `timeout` passed; returns the record.
    pub async fn wait(
        &self,
        id: TaskId,
        timeout: Duration,
    ) -> Result<Option<TaskRecord>, EngineError> {
        let mut rx = self.finished.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let rec = self.get(id).await?;
            if rec.as_ref().is_some_and(|r| r.is_final()) {
                return Ok(rec);
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => return self.get(id).await,
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(EngineError::Stopped),
            }
        }
    }

    /// All tasks: those in memory and those only in the store.
    pub async fn list(&self) -> Result<Vec<TaskRecord>, EngineError> {
        let mut all = self.call(|reply| Command::List { reply }).await?;
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.tasks::<TaskRecord>())
            .await
            .map_err(|_| EngineError::Stopped)?
            .unwrap_or_else(|e| {
                warn!(target: "hal9::engine", error = %e, "cannot list the stored tasks");
                Vec::new()
            });
        let held: std::collections::HashSet<String> = all.iter().map(|r| r.id.clone()).collect();
        all.extend(stored.into_iter().filter(|r| !held.contains(&r.id)));
        all.sort_by_key(|r| r.seen_at_ms);
        Ok(all)
    }

    /// Checks a task's certificate independently.
    pub async fn verify(&self, id: TaskId) -> Result<VerifyReport, EngineError> {
        self.call(|reply| Command::Verify { id, reply }).await?
    }

    /// Reputation of every member this node has seen, in basis points.
    pub async fn reputation(&self) -> Result<Vec<(String, u32)>, EngineError> {
        self.call(|reply| Command::Reputation { reply }).await
    }

    /// The verified output of a task (from this node's own execution or the content layer).
    pub async fn output(&self, id: TaskId) -> Result<Bytes, EngineError> {
        let rec = self
            .get(id)
            .await?
            .ok_or_else(|| EngineError::UnknownTask(hex::encode(id.0)))?;
        let verdict = rec
            .verdict
            .clone()
            .ok_or_else(|| EngineError::NoVerdict(rec.id.clone()))?;
        if let Some(f) = hex::decode(&verdict.result)
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .and_then(|r| verdict_failure(&rec, &r))
        {
            return Err(EngineError::Output {
                cid: verdict.output_cid,
                reason: format!("the task has no output: {}", f.describe()),
            });
        }
        if let Some(own) = rec.own_output.as_deref().and_then(|h| hex::decode(h).ok())
            && hex::encode(keccak256(&[&own])) == verdict.result
        {
            return Ok(own.into());
        }
        let cid: RawCid = verdict
            .output_cid
            .parse()
            .map_err(|e: String| EngineError::Output {
                cid: verdict.output_cid.clone(),
                reason: e,
            })?;
        let bytes = self
            .content
            .get(cid, Duration::from_secs(60))
            .await
            .map_err(|reason| EngineError::Output {
                cid: verdict.output_cid.clone(),
                reason,
            })?;
        if hex::encode(keccak256(&[&bytes])) != verdict.result {
            return Err(EngineError::Output {
                cid: verdict.output_cid,
                reason: "fetched bytes do not hash to the verdict's result".into(),
            });
        }
        Ok(bytes)
    }
}

/// The settlement outbox reads the engine's settlement state through this
/// trait (chain mode sits below the engine and never names its handle).
impl crate::chain::SettlementSource for EngineHandle {
    fn is_stopped(&self) -> bool {
        EngineHandle::is_stopped(self)
    }

    async fn own_commitment(
        &self,
        task: alloy::primitives::B256,
        round: u8,
    ) -> Option<alloy::primitives::B256> {
        EngineHandle::own_commitment(self, task, round).await
    }

    async fn equivocation(&self, task: alloy::primitives::B256) -> Option<EquivocationProof> {
        EngineHandle::equivocation(self, task).await
    }

    async fn settlement(
        &self,
        task: alloy::primitives::B256,
        round: u8,
    ) -> Option<crate::chain::SettlementPayload> {
        EngineHandle::settlement(self, task, round).await
    }

    async fn note_tx(&self, task: alloy::primitives::B256, action: &str, tx: String) {
        EngineHandle::note_tx(self, task, action, tx).await
    }
}
