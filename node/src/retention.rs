//! Store retention: finished task records with their votes, done or
//! abandoned settlement entries and stale peer records are pruned once they
//! are older than `store.retention_hours`, at start and periodically.
//! Nothing the settlement outbox still owes is ever pruned.

use std::{collections::HashSet, sync::Arc, time::Duration};

use tracing::{info, warn};

use crate::{
    chain::outbox::{EntryState, OutboxEntry},
    config::StoreConfig,
    engine::records::{TaskRecord, TaskStatus},
    runtime::now_ms,
    store::{Pruned, Store, StoreError},
};

/// When a task record stopped changing, as far as its record says.
fn ended_ms(rec: &TaskRecord) -> u64 {
    rec.verdict
        .as_ref()
        .map_or(rec.seen_at_ms, |v| v.decided_at_ms.max(rec.seen_at_ms))
}

/// Whether a stored task record may go: it has ended (or is gossip that
/// was never posted), it is older than the retention, and no pending
/// outbox entry names it or the task it re-executes.
fn task_expired(rec: &TaskRecord, owed: &HashSet<String>, cutoff_ms: u64) -> bool {
    let ended = rec.is_final() || (rec.status == TaskStatus::AwaitingChain && rec.chain.is_none());
    if !ended || ended_ms(rec) >= cutoff_ms {
        return false;
    }
    let parent = rec.chain.as_ref().and_then(|c| c.parent.as_ref());
    !owed.contains(&rec.id) && parent.is_none_or(|p| !owed.contains(p))
}

/// One retention pass at time `now_ms`: prunes what is older than
/// `retention`. Returns what was removed.
pub fn prune_once(store: &Store, retention: Duration, now_ms: u64) -> Result<Pruned, StoreError> {
    let cutoff = now_ms.saturating_sub(retention.as_millis() as u64);
    let owed: HashSet<String> = store
        .outbox_pending::<OutboxEntry>()?
        .into_iter()
        .filter(|e| e.state == EntryState::Pending)
        .map(|e| e.task)
        .collect();
    let mut pruned = store.prune_tasks(|_, bytes| {
        // A record that does not decode is quarantined by the readers, not here.
        serde_json::from_slice::<TaskRecord>(bytes).is_ok_and(|r| task_expired(&r, &owed, cutoff))
    })?;
    pruned.outbox = store.prune_outbox(|_, bytes| {
        serde_json::from_slice::<OutboxEntry>(bytes).is_ok_and(|e| {
            e.state != EntryState::Pending && e.created_ms.max(e.not_before_ms) < cutoff
        })
    })?;
    pruned.peers = store.prune_peers(cutoff / 1000)?;
    Ok(pruned)
}

/// Runs retention passes forever (one at once, then every
/// `prune_interval_secs`). With `retention_hours = 0` nothing is pruned
/// by age; the peer cap still applies.
pub async fn run(store: Arc<Store>, cfg: StoreConfig) {
    let retention = match cfg.retention_hours {
        0 => Duration::from_secs(u64::MAX / 4),
        h => Duration::from_secs(h.saturating_mul(3600)),
    };
    let every = Duration::from_secs(cfg.prune_interval_secs.max(1));
    loop {
        let s = store.clone();
        let res = tokio::task::spawn_blocking(move || {
            let p = prune_once(&s, retention, now_ms())?;
            Ok::<_, StoreError>((p, s.counts()?))
        })
        .await;
        match res {
            Ok(Ok((p, c))) => {
                info!(target: "hal9::store", pruned_tasks = p.tasks, pruned_votes = p.votes, pruned_outbox = p.outbox, pruned_peers = p.peers, tasks = c.tasks, votes = c.votes, outbox = c.outbox, outbox_pending = c.outbox_pending, peers = c.peers, retention_hours = cfg.retention_hours, "retention pass")
            }
            Ok(Err(e)) => warn!(target: "hal9::store", error = %e, "retention pass failed"),
            Err(e) => warn!(target: "hal9::store", error = %e, "retention pass failed"),
        }
        tokio::time::sleep(every).await;
    }
}
