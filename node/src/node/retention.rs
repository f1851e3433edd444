//! Store retention: finished task records with their votes, done or
//! abandoned settlement entries and stale peer records are pruned once they
//! are older than `store.retention_hours`, at start and periodically.
//! Nothing the settlement outbox still owes is ever pruned.

use std::{collections::HashSet, sync::Arc, time::Duration};

use tracing::{info, warn};

use crate::{
    chain::outbox::{EntryState, OutboxEntry},
    clock::Clock,
    config::StoreConfig,
    engine::records::{TaskRecord, TaskStatus},
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
pub async fn run(store: Arc<Store>, cfg: StoreConfig, clock: Arc<dyn Clock>) {
    let retention = match cfg.retention_hours {
        0 => Duration::from_secs(u64::MAX / 4),
        h => Duration::from_secs(h.saturating_mul(3600)),
    };
    let every = Duration::from_secs(cfg.prune_interval_secs.max(1));
    loop {
        let (s, now) = (store.clone(), clock.now_ms());
        let res = tokio::task::spawn_blocking(move || {
            let p = prune_once(&s, retention, now)?;
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

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;

    use super::*;
    use crate::{
        chain::outbox::Action,
        engine::records::{ChainRecord, VerdictRecord},
    };

    const HOUR: u64 = 3_600_000;

    fn rec(id: u8, status: TaskStatus, seen: u64) -> TaskRecord {
        TaskRecord {
            id: hex::encode([id; 32]),
            spec: String::new(),
            input: String::new(),
            program: String::new(),
            replicas: 3,
            status,
            committee: vec![],
            escalation_committee: vec![],
            own_output: None,
            verdict: None,
            nondeterministic: false,
            error: None,
            seen_at_ms: seen,
            outcomes: vec![],
            chain: None,
        }
    }

    fn ids(store: &Store) -> Vec<String> {
        let mut v: Vec<String> = store
            .tasks::<TaskRecord>()
            .unwrap()
            .into_iter()
            .map(|r| r.id[..2].to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn old_finished_records_go_and_owed_or_unfinished_or_recent_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let now = 1_000 * HOUR;
        let old = now - 50 * HOUR;
        let mut all = vec![
            rec(1, TaskStatus::Verified, old),        // pruned
            rec(2, TaskStatus::Failed, old),          // pruned
            rec(3, TaskStatus::Pending, old),         // unfinished: kept
            rec(4, TaskStatus::Verified, now - HOUR), // recent: kept
            rec(5, TaskStatus::Verified, old),        // owed in the outbox: kept
            rec(6, TaskStatus::Verified, old),        // re-execution of an owed task: kept
            rec(7, TaskStatus::AwaitingChain, old),   // gossip never posted: pruned
            rec(8, TaskStatus::Rejected, old),        // owed entry done: pruned
        ];
        // Seen long ago but decided recently: kept.
        let mut late = rec(9, TaskStatus::Verified, old);
        late.verdict = Some(VerdictRecord {
            round: "primary".into(),
            result: String::new(),
            output_cid: String::new(),
            attesters: vec![],
            certificate: String::new(),
            decided_at_ms: now - HOUR,
        });
        all.push(late);
        all[5].chain = Some(ChainRecord {
            parent: Some(hex::encode([5u8; 32])),
            ..Default::default()
        });
        for r in &all {
            store.put_task(&r.id, r).unwrap();
            store.put_vote(&r.id, &1u32).unwrap();
        }
        let owed = OutboxEntry::new(Action::Finalize, B256::from([5u8; 32]), 0);
        store.insert_outbox_new(&owed.key(), &owed).unwrap();
        let mut done = OutboxEntry::new(Action::Finalize, B256::from([8u8; 32]), 0);
        store.insert_outbox_new(&done.key(), &done).unwrap();
        done.state = EntryState::Done;
        done.created_ms = old;
        done.not_before_ms = old;
        store.put_outbox(&done.key(), &done, false).unwrap();
        let mut recent = OutboxEntry::new(Action::SubmitVerdict, B256::from([8u8; 32]), 0);
        recent.state = EntryState::Abandoned;
        recent.created_ms = now - HOUR;
        store.put_outbox(&recent.key(), &recent, false).unwrap();

        let p = prune_once(&store, Duration::from_secs(24 * 3600), now).unwrap();
        assert_eq!(ids(&store), vec!["03", "04", "05", "06", "09"]);
        assert_eq!((p.tasks, p.votes, p.outbox), (4, 4, 1));
        assert_eq!(store.counts().unwrap().votes, 5);
        let left: Vec<OutboxEntry> = store.outbox().unwrap();
        assert_eq!(
            left.len(),
            2,
            "the pending entry and the recent abandoned one"
        );
        assert!(left.iter().any(|e| e.state == EntryState::Pending));

        // Once the owed entry is done (and old), task 5 and its re-execution go too.
        let mut owed = owed;
        owed.state = EntryState::Done;
        owed.created_ms = old;
        owed.not_before_ms = old;
        store.put_outbox(&owed.key(), &owed, false).unwrap();
        prune_once(&store, Duration::from_secs(24 * 3600), now).unwrap();
        assert_eq!(ids(&store), vec!["03", "04", "09"]);
    }
}
