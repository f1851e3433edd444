//! Bounds of the engine's memory: finished tasks leave memory after a grace
//! period (in chain mode not while the settlement outbox owes anything for
//! them) and are served from the store afterwards; a hard cap on the task
//! records held, with the oldest finished one evicted at once or, when
//! every held task is unfinished, new tasks refused.

use std::sync::Arc;

use hal9_consensus::TaskId;
use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::{Engine, records::TaskRecord};
use crate::{chain::ChainInput, store::Store};

/// The smallest cap on task records the engine accepts (a smaller setting
/// is raised to it).
pub const MIN_TASKS: usize = 16;

type Labels = Vec<(&'static str, &'static str)>;

/// Metrics of the engine's bounded state.
#[derive(Debug, Clone, Default)]
pub struct EngineMetrics {
    tasks: Gauge,
    tasks_peak: Gauge,
    inputs: Gauge,
    input_bytes: Gauge,
    driver_tasks: Gauge,
    executions: Gauge,
    evicted: Family<Labels, Counter>,
    refused: Counter,
    pub(super) executions_refused: Counter,
    loaded: Counter,
}

impl EngineMetrics {
    fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("hal9_engine");
        r.register(
            "tasks_in_memory",
            "Task records held in memory",
            self.tasks.clone(),
        );
        r.register(
            "tasks_in_memory_peak",
            "Most task records held in memory at once since start",
            self.tasks_peak.clone(),
        );
        r.register(
            "inputs_in_memory",
            "Task inputs held in memory",
            self.inputs.clone(),
        );
        r.register(
            "input_bytes_in_memory",
            "Bytes of the task inputs held in memory",
            self.input_bytes.clone(),
        );
        r.register(
            "driver_tasks",
            "Tasks tracked by the consensus driver",
            self.driver_tasks.clone(),
        );
        r.register(
            "executions_in_flight",
            "Executions running or queued",
            self.executions.clone(),
        );
        r.register(
            "tasks_evicted",
            "Finished tasks that left memory, by reason (ended: grace period over; cap: memory full)",
            self.evicted.clone(),
        );
        r.register(
            "tasks_refused",
            "Tasks refused because memory held the maximum of unfinished tasks",
            self.refused.clone(),
        );
        r.register(
            "executions_refused",
            "Executions refused because the execution queue was full",
            self.executions_refused.clone(),
        );
        r.register(
            "tasks_loaded",
            "Task records read back from the store after they left memory",
            self.loaded.clone(),
        );
    }
}

/// Sizes of the engine's bounded state, against their caps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BoundsReport {
    /// Task records in memory.
    pub tasks_in_memory: usize,
    /// Most task records held at once since start.
    pub tasks_in_memory_peak: usize,
    /// `consensus.max_tasks_in_memory` (as applied).
    pub max_tasks_in_memory: usize,
    /// Finished tasks still in memory.
    pub finished_in_memory: usize,
    /// Inputs in memory.
    pub inputs_in_memory: usize,
    /// Tasks tracked by the consensus driver.
    pub driver_tasks: usize,
    /// Executions running or queued.
    pub executions_in_flight: usize,
    /// Running plus queued executions allowed.
    pub execution_capacity: usize,
    /// Tasks refused for want of memory.
    pub tasks_refused: u64,
    /// Executions refused for want of queue room.
    pub executions_refused: u64,
    /// Finished tasks evicted from memory.
    pub tasks_evicted: u64,
}

/// Reads a task that left memory back from the store.
pub(super) async fn load(
    store: &Arc<Store>,
    id: &TaskId,
    metrics: &EngineMetrics,
) -> Option<TaskRecord> {
    let store = store.clone();
    let key = hex::encode(id.0);
    match tokio::task::spawn_blocking(move || store.task::<TaskRecord>(&key)).await {
        Ok(Ok(Some(rec))) => {
            metrics.loaded.inc();
            Some(rec)
        }
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            warn!(target: "hal9::engine", error = %e, "cannot read a task from the store");
            None
        }
        Err(_) => None,
    }
}

/// The task a chain event is about.
fn chain_task(input: &ChainInput) -> Option<TaskId> {
    match input {
        ChainInput::Posted { task, .. }
        | ChainInput::Verdict { task, .. }
        | ChainInput::Challenged { task, .. }
        | ChainInput::EscalationVerdict { task, .. }
        | ChainInput::Finalized { task, .. }
        | ChainInput::Refunded { task } => Some(*task),
        _ => None,
    }
}

impl Engine {
    /// Registers the `hal9_engine_*` metrics of the engine's bounds.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.metrics.register(registry);
    }

    fn max_tasks(&self) -> usize {
        self.cfg.max_tasks_in_memory.max(MIN_TASKS)
    }

    /// Remembers when a task was first seen finished (the grace period
    /// before it leaves memory runs from then).
    pub(super) fn note_final(&mut self, id: TaskId, now: u64) {
        if self.tasks.contains_key(&id) && !self.ended.contains_key(&id) {
            self.ended.insert(id, now);
            self.ended_order.insert((now, id));
        }
    }

    /// Whether something still needs the task in memory although it has
    /// ended: a settlement entry owed for it (or, for a challenge's
    /// re-execution, for the challenged task), a challenge in progress, a
    /// task waiting for the chain, or one posted above a reorganisation's fork.
    pub(super) fn owed(&self, id: &TaskId, rec: &TaskRecord) -> bool {
        let Some(ctx) = self.chain.as_ref() else {
            return false;
        };
        let parent = rec
            .chain
            .as_ref()
            .and_then(|c| c.parent.as_deref())
            .and_then(|p| hex::decode(p).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        // A challenged task collects the escalation committee's
        // attestations into its record until the escalation is settled.
        let challenged =
            |r: &TaskRecord| r.chain.as_ref().is_some_and(|c| c.status == "challenged");
        ctx.outbox.owes(&id.0)
            || challenged(rec)
            || parent.is_some_and(|p| {
                ctx.outbox.owes(&p) || self.tasks.get(&TaskId(p)).is_some_and(challenged)
            })
            || ctx.waiting.contains_key(id)
            || ctx.unconfirmed.contains_key(id)
    }

    fn evictable(&self, id: &TaskId) -> bool {
        self.tasks
            .get(id)
            .is_some_and(|r| r.is_final() && !self.owed(id, r))
    }

    /// Changes the stored record of a task that is not in memory (a
    /// verdict's outcomes per member arrive after the reveal window, often
    /// after the task left memory).
    pub(super) async fn update_stored(
        &self,
        id: TaskId,
        change: impl FnOnce(&mut TaskRecord) + Send + 'static,
    ) {
        let store = self.store.clone();
        let key = hex::encode(id.0);
        let res = tokio::task::spawn_blocking(move || {
            if let Some(mut rec) = store.task::<TaskRecord>(&key)? {
                change(&mut rec);
                store.put_task(&key, &rec)?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .await;
        if let Ok(Err(e)) = res {
            warn!(target: "hal9::engine", task = %hex::encode(id.0), error = %e, "cannot update a stored task");
        }
    }

    /// Takes a finished task out of memory (its record is in the store).
    fn evict(&mut self, id: TaskId, reason: &'static str) {
        self.tasks.remove(&id);
        self.inputs.remove(&id);
        if let Some(at) = self.ended.remove(&id) {
            self.ended_order.remove(&(at, id));
        }
        if let Some(ctx) = self.chain.as_mut() {
            ctx.instances.remove(&id);
        }
        self.metrics
            .evicted
            .get_or_create(&vec![("reason", reason)])
            .inc();
        debug!(target: "hal9::engine", task = %hex::encode(id.0), reason, "finished task left memory");
    }

    /// Evicts the tasks whose grace period is over and that nothing owes.
    pub(super) fn evict_finished(&mut self, now: u64) {
        let grace = self.cfg.evict_after_ms;
        let due: Vec<(u64, TaskId)> = self
            .ended_order
            .iter()
            .take_while(|(at, _)| at.saturating_add(grace) <= now)
            .copied()
            .collect();
        for (at, id) in due {
            match self.tasks.get(&id) {
                None => {
                    self.ended.remove(&id);
                    self.ended_order.remove(&(at, id));
                }
                Some(r) if !r.is_final() => {
                    self.ended.remove(&id);
                    self.ended_order.remove(&(at, id));
                }
                Some(_) if self.evictable(&id) => self.evict(id, "ended"),
                Some(_) => {} // still owed: checked again next sweep
            }
        }
    }

    /// Makes room for one more task record. `must` (chain events, which
    /// cost their poster a fee) is never refused; otherwise false when
    /// every held task is unfinished or owed.
    pub(super) async fn admit(&mut self, id: &TaskId, must: bool) -> bool {
        let max = self.max_tasks();
        if self.tasks.contains_key(id) || self.tasks.len() < max {
            return true;
        }
        let oldest = self
            .ended_order
            .iter()
            .map(|(_, t)| *t)
            .find(|t| self.evictable(t));
        if let Some(t) = oldest {
            self.evict(t, "cap");
            return true;
        }
        if self.chain_mode() {
            let before = self.awaiting();
            self.evict_oldest_waiting().await;
            if self.awaiting() < before {
                return true;
            }
        }
        if must {
            warn!(target: "hal9::engine", task = %hex::encode(id.0), held = self.tasks.len(), max, "memory full of unfinished tasks; a chain event is held above the cap");
            return true;
        }
        self.metrics.refused.inc();
        let refused = self.metrics.refused.get();
        if refused.is_power_of_two() || refused.is_multiple_of(1000) {
            warn!(target: "hal9::engine", task = %hex::encode(id.0), held = self.tasks.len(), max, refused, "memory full of unfinished tasks; task refused (this node stays out of it)");
        } else {
            debug!(target: "hal9::engine", task = %hex::encode(id.0), "memory full; task refused");
        }
        false
    }

    /// Whether the task is known: in memory, or in the store after it left memory.
    pub(super) async fn known(&self, id: &TaskId) -> bool {
        if self.tasks.contains_key(id) {
            return true;
        }
        let store = self.store.clone();
        let key = hex::encode(id.0);
        matches!(
            tokio::task::spawn_blocking(move || store.has_task(&key)).await,
            Ok(Ok(true))
        )
    }

    /// Before a chain event: a task that left memory comes back from the
    /// store, so the event applies to its real record (and a replayed
    /// `TaskPosted` never starts it afresh).
    pub(super) async fn rehydrate_for(&mut self, input: &ChainInput) {
        let Some(id) = chain_task(input) else {
            return;
        };
        if self.tasks.contains_key(&id) {
            return;
        }
        let Some(rec) = load(&self.store, &id, &self.metrics).await else {
            return;
        };
        self.admit(&id, true).await;
        if let Ok(input) = hex::decode(&rec.input)
            && !input.is_empty()
        {
            self.inputs.insert(id, input.into());
        }
        let final_ = rec.is_final();
        self.tasks.insert(id, rec);
        if final_ {
            self.note_final(id, self.now());
        }
        debug!(target: "hal9::engine", task = %hex::encode(id.0), "task read back from the store for a chain event");
    }

    /// Updates the size gauges (cheap: no iteration).
    pub(super) fn note_sizes(&self) {
        let n = self.tasks.len() as i64;
        self.metrics.tasks.set(n);
        if n > self.metrics.tasks_peak.get() {
            self.metrics.tasks_peak.set(n);
        }
        self.metrics.inputs.set(self.inputs.len() as i64);
        self.metrics.driver_tasks.set(self.driver.tracked() as i64);
        self.metrics.executions.set(self.exec_inflight as i64);
    }

    /// Updates the input bytes gauge (iterates the inputs).
    pub(super) fn note_input_bytes(&self) {
        let bytes: usize = self.inputs.values().map(|i| i.len()).sum();
        self.metrics.input_bytes.set(bytes as i64);
    }

    pub(super) fn bounds_report(&self) -> BoundsReport {
        BoundsReport {
            tasks_in_memory: self.tasks.len(),
            tasks_in_memory_peak: self.metrics.tasks_peak.get().max(0) as usize,
            max_tasks_in_memory: self.max_tasks(),
            finished_in_memory: self.ended.len(),
            inputs_in_memory: self.inputs.len(),
            driver_tasks: self.driver.tracked(),
            executions_in_flight: self.exec_inflight,
            execution_capacity: self.exec_capacity(),
            tasks_refused: self.metrics.refused.get(),
            executions_refused: self.metrics.executions_refused.get(),
            tasks_evicted: self.evicted_total(),
        }
    }

    fn evicted_total(&self) -> u64 {
        ["ended", "cap"]
            .iter()
            .map(|r| {
                self.metrics
                    .evicted
                    .get_or_create(&vec![("reason", *r)])
                    .get()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use hal9_api::SubmitTask;

    use crate::{
        api::tasks::build_task,
        dev::testnet::{TestNet, TestNetOptions},
        engine::{EngineConfig, EngineError, TASKS_TOPIC, cid::RawCid, records::TaskStatus},
    };

    fn echo() -> Vec<u8> {
        std::fs::read(hal9_plugins::builder::example_wasm("echo").expect("echo example")).unwrap()
    }

    /// A program CID nobody provides.
    fn missing_program(n: u64) -> String {
        RawCid::of(format!("nobody has this program {n}").as_bytes()).to_string()
    }

    fn task(program: &str, input: &[u8], nonce: u64) -> crate::engine::spec::TaskMessage {
        build_task(&SubmitTask {
            program: program.into(),
            input_hex: hex::encode(input),
            replicas: 3,
            fuel: None,
            nonce: Some(nonce),
            fee: None,
        })
        .unwrap()
    }

    async fn until<F, Fut>(what: &str, timeout: Duration, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while !f().await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn net(engine: EngineConfig) -> TestNet {
        let opts = TestNetOptions {
            engine,
            ..Default::default()
        };
        TestNet::new(3, opts).await.expect("test network starts")
    }

    fn cfg() -> EngineConfig {
        EngineConfig {
            commit_timeout_ms: 1_000,
            reveal_timeout_ms: 1_000,
            fetch_timeout_ms: 1_500,
            ..Default::default()
        }
    }

    /// Room for a cold fetch and compile of the program in a debug build
    /// on a loaded machine.
    fn slow() -> EngineConfig {
        EngineConfig {
            commit_timeout_ms: 30_000,
            reveal_timeout_ms: 5_000,
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_engine_keeps_time_by_the_injected_clock() {
        // An hour's grace on a clock that only the test moves: the task
        // stays in memory however long the test waits, and leaves as soon
        // as the clock is moved past the grace.
        let clock = crate::clock::ManualClock::new(crate::clock::now_ms());
        let opts = TestNetOptions {
            engine: EngineConfig {
                evict_after_ms: 3_600_000,
                commit_timeout_ms: 15_000,
                reveal_timeout_ms: 3_000,
                ..Default::default()
            },
            clock: Some(clock.clone()),
            ..Default::default()
        };
        let net = TestNet::new(3, opts).await.expect("test network starts");
        // The clock follows real time while the committee works (its
        // phases need time to pass), and stops once the task is decided.
        let ticking = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (c2, t2) = (clock.clone(), ticking.clone());
        tokio::spawn(async move {
            while t2.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
                c2.advance(20);
            }
        });
        let program = net.publish(0, &echo()).await.unwrap();
        let id = net.submit(0, &program, b"tick tock", 3, 1).await.unwrap();
        let e = &net.nodes[0].engine;
        let rec = e.wait(id, Duration::from_secs(60)).await.unwrap().unwrap();
        assert_eq!(rec.status, TaskStatus::Verified, "{rec:?}");
        ticking.store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            e.bounds().await.unwrap().tasks_in_memory,
            1,
            "the clock has not moved: nothing is evicted"
        );
        clock.advance(3_600_000 + 5_000);
        until(
            "node 0 to evict the task on the moved clock",
            Duration::from_secs(10),
            || async { e.bounds().await.unwrap().tasks_in_memory == 0 },
        )
        .await;
        assert_eq!(&e.output(id).await.unwrap()[..], b"tick tock");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finished_tasks_leave_memory_and_are_served_from_the_store() {
        let engine = EngineConfig {
            evict_after_ms: 200,
            commit_timeout_ms: 15_000,
            reveal_timeout_ms: 3_000,
            ..Default::default()
        };
        let net = net(engine).await;
        let program = net.publish(0, &echo()).await.unwrap();
        let id = net.submit(0, &program, b"evict me", 3, 1).await.unwrap();
        let e = &net.nodes[0].engine;
        let rec = e.wait(id, Duration::from_secs(60)).await.unwrap().unwrap();
        assert_eq!(rec.status, TaskStatus::Verified, "{rec:?}");
        for (i, n) in net.nodes.iter().enumerate() {
            until(
                &format!("node {i} to evict the task"),
                Duration::from_secs(10),
                || async { n.engine.bounds().await.unwrap().tasks_in_memory == 0 },
            )
            .await;
            let b = n.engine.bounds().await.unwrap();
            assert_eq!(
                (b.inputs_in_memory, b.finished_in_memory),
                (0, 0),
                "node {i}: {b:?}"
            );
            assert!(b.tasks_evicted >= 1);
        }
        // Users see no difference: status, output, verify and list come from the store.
        let back = e.get(id).await.unwrap().expect("served from the store");
        // (The record may have gained the members' outcomes since the verdict.)
        assert_eq!(
            (back.status, &back.verdict, &back.input),
            (rec.status, &rec.verdict, &rec.input)
        );
        // The members' outcomes arrive after the reveal window, in the store.
        until(
            "the outcomes in the store",
            Duration::from_secs(60),
            || async {
                e.get(id)
                    .await
                    .unwrap()
                    .is_some_and(|r| !r.outcomes.is_empty())
            },
        )
        .await;
        assert_eq!(e.bounds().await.unwrap().tasks_in_memory, 0);
        assert_eq!(&e.output(id).await.unwrap()[..], b"evict me");
        let report = e.verify(id).await.unwrap();
        assert!(report.signers.len() >= report.quorum, "{report:?}");
        assert!(e.list().await.unwrap().iter().any(|r| r.id == rec.id));
        assert!(e.wait(id, Duration::from_secs(1)).await.unwrap().is_some());
        // The same task again (submitted or gossiped) is known, not run again.
        assert_eq!(e.submit(task(&program, b"evict me", 1)).await.unwrap(), id);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(e.bounds().await.unwrap().tasks_in_memory, 0);
        assert_eq!(e.get(id).await.unwrap().unwrap().verdict, rec.verdict);
        // An unknown task is still unknown.
        assert!(e.get(TaskId([9; 32])).await.unwrap().is_none());
        assert!(matches!(
            e.verify(TaskId([9; 32])).await,
            Err(EngineError::UnknownTask(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_memory_evicts_the_oldest_finished_task_at_once() {
        let engine = EngineConfig {
            max_tasks_in_memory: MIN_TASKS,
            evict_after_ms: 3_600_000,
            ..slow()
        };
        let net = net(engine).await;
        let program = net.publish(0, &echo()).await.unwrap();
        let mut ids = Vec::new();
        for k in 0..(MIN_TASKS as u64 + 8) {
            let id = net
                .submit(0, &program, &k.to_be_bytes(), 3, k)
                .await
                .unwrap();
            let rec = net.nodes[0]
                .engine
                .wait(id, Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(rec.unwrap().status, TaskStatus::Verified);
            ids.push(id);
        }
        for n in &net.nodes {
            let b = n.engine.bounds().await.unwrap();
            assert!(b.tasks_in_memory_peak <= MIN_TASKS, "{b:?}");
            assert!(b.driver_tasks <= 2 * MIN_TASKS, "{b:?}");
            assert!(b.tasks_evicted >= 8, "{b:?}");
        }
        for (k, id) in ids.iter().enumerate() {
            let rec = net.nodes[0].engine.get(*id).await.unwrap().unwrap();
            assert!(rec.verdict.is_some(), "task {k} lost its verdict");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_memory_full_of_unfinished_tasks_refuses_new_ones() {
        let engine = EngineConfig {
            max_tasks_in_memory: MIN_TASKS,
            commit_timeout_ms: 60_000,
            reveal_timeout_ms: 60_000,
            fetch_timeout_ms: 60_000,
            ..Default::default()
        };
        let net = net(engine).await;
        let e = &net.nodes[0].engine;
        for k in 0..MIN_TASKS as u64 {
            e.submit(task(&missing_program(k), b"x", k)).await.unwrap();
        }
        let err = e
            .submit(task(&missing_program(99), b"x", 99))
            .await
            .unwrap_err();
        assert!(
            matches!(err, EngineError::Full { held: 16, max: 16 }),
            "{err}"
        );
        assert!(
            err.to_string().contains("the configured maximum is 16"),
            "{err}"
        );
        let b = e.bounds().await.unwrap();
        assert_eq!(b.tasks_in_memory, MIN_TASKS);
        assert_eq!(b.tasks_refused, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_execution_queue_refuses_and_the_member_stays_silent() {
        let engine = EngineConfig {
            max_concurrent_executions: 1,
            max_queued_executions: 0,
            fetch_timeout_ms: 4_000,
            ..cfg()
        };
        let net = net(engine).await;
        let e = &net.nodes[0].engine;
        let first = e.submit(task(&missing_program(1), b"a", 1)).await.unwrap();
        let second = e.submit(task(&missing_program(2), b"b", 2)).await.unwrap();
        until(
            "the second task to fail",
            Duration::from_secs(30),
            || async {
                e.get(second)
                    .await
                    .unwrap()
                    .is_some_and(|r| r.status == TaskStatus::Failed)
            },
        )
        .await;
        let rec = e.get(second).await.unwrap().unwrap();
        let err = rec.error.unwrap_or_default();
        assert!(err.contains("execution queue was full"), "{err}");
        for n in &net.nodes {
            let b = n.engine.bounds().await.unwrap();
            assert!(b.executions_refused >= 1, "{b:?}");
            assert!(b.executions_in_flight <= b.execution_capacity, "{b:?}");
            assert_eq!(b.execution_capacity, 1);
        }
        let first = e.get(first).await.unwrap().unwrap();
        assert!(
            !first.error.unwrap_or_default().contains("execution queue"),
            "the first task had the slot"
        );
    }

    /// The flood test, in process: a raw peer gossips thousands of
    /// distinct tasks at a node with small caps; its task records, inputs,
    /// driver state and executions stay within the caps throughout
    /// (sampled, and the peak gauge), and a real task is decided afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_distinct_tasks_stays_within_the_caps() {
        const CAP: usize = 32;
        const FLOOD: u64 = 3_000;
        let engine = EngineConfig {
            max_tasks_in_memory: CAP,
            evict_after_ms: 300,
            max_concurrent_executions: 1,
            max_queued_executions: 2,
            fetch_timeout_ms: 1_000,
            commit_timeout_ms: 20_000,
            reveal_timeout_ms: 5_000,
            ..Default::default()
        };
        let net = net(engine).await;
        let program = net.publish(0, &echo()).await.unwrap();
        // Warm the program everywhere (fetch and compile), so the task after
        // the flood measures the node, not a cold debug-build compile.
        let warm = net.submit(0, &program, b"warm", 3, 1 << 41).await.unwrap();
        let rec = net.nodes[0]
            .engine
            .wait(warm, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(rec.unwrap().status, TaskStatus::Verified);
        // The attacker: a bare libp2p peer connected to node 0.
        let attacker = net.raw_peer(TASKS_TOPIC).await.unwrap();
        let e = net.nodes[0].engine.clone();
        let sampler = tokio::spawn({
            let e = e.clone();
            async move {
                let mut worst = (0, 0, 0, 0);
                for _ in 0..400 {
                    let b = e.bounds().await.unwrap();
                    worst.0 = worst.0.max(b.tasks_in_memory);
                    worst.1 = worst.1.max(b.inputs_in_memory);
                    worst.2 = worst.2.max(b.driver_tasks);
                    worst.3 = worst.3.max(b.executions_in_flight);
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                worst
            }
        });
        for k in 0..FLOOD {
            let msg = task(&missing_program(k), &k.to_be_bytes(), k);
            attacker.publish(TASKS_TOPIC, msg.encode()).await.unwrap();
            if k % 200 == 199 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let worst = sampler.await.unwrap();
        let b = e.bounds().await.unwrap();
        eprintln!(
            "flood of {FLOOD}: worst sampled (tasks, inputs, driver, executions) {worst:?}; now {b:?}"
        );
        assert!(
            worst.0 <= CAP && worst.1 <= CAP && worst.2 <= 2 * CAP,
            "{worst:?}"
        );
        assert!(worst.3 <= 3, "{worst:?}");
        assert!(b.tasks_in_memory_peak <= CAP, "{b:?}");
        assert!(
            b.tasks_refused + b.tasks_evicted > 0,
            "the flood reached the caps: {b:?}"
        );
        assert!(b.tasks_refused > 0, "{b:?}");
        let stored = net.nodes[0].engine.list().await.unwrap().len() as u64;
        assert!(stored <= FLOOD, "{stored}");
        // Once the flood has drained, a real task is decided.
        until("the flood to drain", Duration::from_secs(120), || async {
            let b = e.bounds().await.unwrap();
            b.executions_in_flight == 0 && b.tasks_in_memory < CAP / 2
        })
        .await;
        let id = net
            .submit(0, &program, b"still alive", 3, 1 << 40)
            .await
            .unwrap();
        let rec = e.wait(id, Duration::from_secs(60)).await.unwrap().unwrap();
        assert_eq!(rec.status, TaskStatus::Verified, "{rec:?}");
        assert_eq!(&e.output(id).await.unwrap()[..], b"still alive");
    }
}
