//! Throughput of the pure core, for `hal9 bench`.
//!
//! Three members sign their commits and reveals for `n` tasks in batches of
//! up to [`MAX_BATCH_ITEMS`]; an observer node decodes, verifies and applies
//! every batch until each task has a verdict. Signing is timed separately
//! (it happens on the members, not the observer).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use libp2p_identity::Keypair;

use crate::certificate::TaskParams;
use crate::committee::{Validator, ValidatorSet};
use crate::driver::{Driver, Input};
use crate::task::{Config, Effect};
use crate::types::{Cid, Commitment, ResultHash, Round, Salt, TaskId, keccak256};
use crate::wire::{
    CommitVote, MAX_BATCH_ITEMS, RevealVote, VoteBatch, VoteItem, validate_vote_message,
};

/// Figures of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreBenchReport {
    /// Tasks processed.
    pub tasks: usize,
    /// Verdicts reached (must equal `tasks`).
    pub verdicts: usize,
    /// Vote batches processed by the observer.
    pub batches: usize,
    /// Encoded bytes processed by the observer.
    pub bytes: usize,
    /// Observer time: decode + verify + apply, all batches.
    pub observe: Duration,
    /// Part of `observe` spent decoding and verifying signatures.
    pub verify: Duration,
    /// Member time: building and signing all batches.
    pub sign: Duration,
}

impl CoreBenchReport {
    /// Tasks per second through the observer pipeline.
    pub fn tasks_per_second(&self) -> f64 {
        self.tasks as f64 / self.observe.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for CoreBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "consensus core r=3: {} tasks, {} verdicts, {} batches ({} bytes); observe {:.3} s = {:.0} tasks/s \
             ({:.1} us/task, of which decode+verify {:.3} s); sign {:.3} s",
            self.tasks,
            self.verdicts,
            self.batches,
            self.bytes,
            self.observe.as_secs_f64(),
            self.tasks_per_second(),
            self.observe.as_secs_f64() * 1e6 / self.tasks.max(1) as f64,
            self.verify.as_secs_f64(),
            self.sign.as_secs_f64(),
        )
    }
}

fn member_key(i: u64) -> Keypair {
    let secret = keccak256(&[b"hal9/bench/key", &i.to_be_bytes()]);
    match Keypair::ed25519_from_bytes(secret) {
        Ok(k) => k,
        Err(e) => unreachable!("ed25519 secret from 32 bytes: {e}"),
    }
}

/// Run the benchmark over `n_tasks` tasks with r = 3.
pub fn core_throughput(n_tasks: usize) -> CoreBenchReport {
    let keys: Vec<Keypair> = (0..3).map(member_key).collect();
    let validators = ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                peer: k.public().to_peer_id(),
                weight: 1,
                capabilities: BTreeSet::new(),
            })
            .collect(),
    )
    .unwrap_or_default();
    let observer = member_key(99).public().to_peer_id();
    let config = Config {
        max_tasks: n_tasks.max(1),
        ..Config::default()
    };
    let mut driver = Driver::new(observer, config, validators);
    let tasks: Vec<TaskId> = (0..n_tasks as u64)
        .map(|i| TaskId(keccak256(&[b"bench", &i.to_be_bytes()])))
        .collect();
    let params = TaskParams {
        r: 3,
        capability: None,
        committee: None,
    };
    let cid = Cid::new(vec![0x01, 0x55, 0x12, 0x20]).unwrap_or_default();

    // Members: build and sign batches (commits first, then reveals).
    let t0 = Instant::now();
    let mut wire: Vec<Vec<u8>> = Vec::new();
    let mut seq = 0u64;
    for phase in 0..2 {
        for k in &keys {
            let me = k.public().to_peer_id();
            for chunk in tasks.chunks(MAX_BATCH_ITEMS) {
                let items = chunk
                    .iter()
                    .map(|t| {
                        let result = ResultHash(keccak256(&[&t.0, b"out"]));
                        let salt = Salt(keccak256(&[&t.0, &me.to_bytes()]));
                        if phase == 0 {
                            VoteItem::Commit(CommitVote {
                                task: *t,
                                round: Round::Primary,
                                commitment: Commitment::compute(&result, &salt, &me),
                            })
                        } else {
                            VoteItem::Reveal(RevealVote {
                                task: *t,
                                round: Round::Primary,
                                result,
                                salt,
                                cid: cid.clone(),
                            })
                        }
                    })
                    .collect();
                seq += 1;
                if let Ok(b) = VoteBatch::sign(k, seq, items) {
                    wire.push(b.encode());
                }
            }
        }
    }
    let sign = t0.elapsed();

    // Observer: see the tasks, then decode, verify and apply every batch.
    let t1 = Instant::now();
    let mut verdicts = 0;
    for t in &tasks {
        driver.apply(Input::TaskSeen {
            task: *t,
            params: params.clone(),
            now: 0,
        });
    }
    let mut verify = Duration::ZERO;
    for bytes in &wire {
        let tv = Instant::now();
        let checked = validate_vote_message(bytes);
        verify += tv.elapsed();
        let Ok(batch) = checked else {
            continue;
        };
        for e in driver.apply(Input::Votes { batch, now: 1 }) {
            if matches!(e, Effect::Verdict(_)) {
                verdicts += 1;
            }
        }
    }
    let observe = t1.elapsed();
    CoreBenchReport {
        tasks: n_tasks,
        verdicts,
        batches: wire.len(),
        bytes: wire.iter().map(Vec::len).sum(),
        observe,
        verify,
        sign,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bench_reaches_every_verdict() {
        let r = super::core_throughput(50);
        assert_eq!(r.verdicts, 50);
        assert_eq!(r.batches, 6);
        println!("{r}");
    }
}
