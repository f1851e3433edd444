//! `hal9 bench ...`: benchmarks that print figures. They never fail on speed.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use eyre::{bail, eyre};
use hal9_p2p::{Network, NetworkConfig, NetworkEvent, NetworkHandle, Validation};
use prometheus_client::registry::Registry;

const TOPIC: &str = "hal9/bench/1";
const HEADER: usize = 16;

/// Parameters of the gossip benchmark.
#[derive(Debug, Clone)]
pub struct GossipBench {
    /// Number of nodes.
    pub nodes: usize,
    /// Messages published in total.
    pub messages: usize,
    /// Payload size in bytes.
    pub size: usize,
}

/// Figures of one gossip benchmark run.
#[derive(Debug, Clone)]
pub struct GossipReport {
    /// Parameters.
    pub params: GossipBench,
    /// Time to connect the network and form meshes.
    pub setup: Duration,
    /// Deliveries expected (messages x (nodes - 1)).
    pub expected: u64,
    /// Deliveries seen.
    pub delivered: u64,
    /// Wall time from first publish to last delivery.
    pub elapsed: Duration,
    /// Latency percentiles (p50, p99, max) in microseconds.
    pub latency_us: (u64, u64, u64),
}

impl fmt::Display for GossipReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.params;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "gossip bench: nodes={} messages={} size={} B (loopback TCP, in-process)",
            p.nodes, p.messages, p.size
        )?;
        writeln!(
            f,
            "  setup (connect + mesh):  {:.2} s",
            self.setup.as_secs_f64()
        )?;
        writeln!(
            f,
            "  deliveries:              {} of {} ({} lost)",
            self.delivered,
            self.expected,
            self.expected - self.delivered
        )?;
        writeln!(
            f,
            "  latency publish->deliver p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            self.latency_us.0 as f64 / 1000.0,
            self.latency_us.1 as f64 / 1000.0,
            self.latency_us.2 as f64 / 1000.0
        )?;
        writeln!(
            f,
            "  throughput:              {:.0} deliveries/s, {:.0} published msgs/s, {:.1} MB/s delivered",
            self.delivered as f64 / secs,
            p.messages as f64 / secs,
            self.delivered as f64 * p.size as f64 / secs / 1e6
        )?;
        write!(f, "  elapsed:                 {:.2} s", secs)
    }
}

async fn start_node(
    bootstrap: Option<hal9_p2p::Multiaddr>,
    max: usize,
) -> eyre::Result<(NetworkHandle, tokio::sync::mpsc::Receiver<NetworkEvent>)> {
    let mut cfg = NetworkConfig::local_tcp();
    cfg.bootstrap = bootstrap.into_iter().collect();
    cfg.heartbeat_ms = 100;
    cfg.event_buffer = 1 << 16;
    cfg.publish_queue = 1 << 16;
    cfg.max_message_size = max.max(1024);
    let mut registry = Registry::default();
    let (net, handle, events) =
        Network::new(hal9_p2p::Keypair::generate_ed25519(), cfg, &mut registry).await?;
    tokio::spawn(net.run());
    handle
        .subscribe(TOPIC, usize::MAX, |_: &hal9_p2p::PeerId, d: &[u8]| {
            if d.len() >= HEADER {
                Validation::Accept
            } else {
                Validation::Reject("short bench message".into())
            }
        })
        .await?;
    Ok((handle, events))
}

/// Runs the gossip benchmark.
pub async fn gossip(p: GossipBench) -> eyre::Result<GossipReport> {
    if p.nodes < 2 {
        bail!("--nodes must be at least 2");
    }
    if p.size < HEADER {
        bail!("--size must be at least {HEADER} bytes");
    }
    let setup_start = Instant::now();
    let (first, first_events) = start_node(None, p.size).await?;
    let mut addr = None;
    for _ in 0..200 {
        if let Some(a) = first.listen_addrs().await?.into_iter().next() {
            addr = Some(a.with(hal9_p2p::multiaddr_p2p(first.local_peer_id())));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let addr = addr.ok_or_else(|| eyre!("bootstrap node did not start listening"))?;
    let mut nodes = vec![(first, first_events)];
    for _ in 1..p.nodes {
        nodes.push(start_node(Some(addr.clone()), p.size).await?);
    }
    // Wait until every node sees every other as a subscriber of the topic.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut ready = true;
        for (h, _) in &nodes {
            if h.topic_peers(TOPIC).await?.len() < p.nodes - 1 {
                ready = false;
            }
        }
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!("nodes did not all subscribe to each other within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let gossipsub form its meshes (a few heartbeats).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let setup = setup_start.elapsed();

    let base = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let expected = (p.messages as u64) * (p.nodes as u64 - 1);
    let mut receivers = Vec::new();
    let handles: Vec<NetworkHandle> = nodes.iter().map(|(h, _)| h.clone()).collect();
    for (_, mut events) in nodes {
        let delivered = delivered.clone();
        receivers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut last = Instant::now();
            while let Ok(Some(ev)) =
                tokio::time::timeout(Duration::from_secs(3), events.recv()).await
            {
                if let NetworkEvent::Message { data, .. } = ev {
                    let sent = u64::from_be_bytes(data[8..16].try_into().unwrap_or([0; 8]));
                    let now = base.elapsed().as_micros() as u64;
                    lat.push(now.saturating_sub(sent));
                    last = Instant::now();
                    if delivered.fetch_add(1, Ordering::Relaxed) + 1 == expected {
                        break;
                    }
                }
                if delivered.load(Ordering::Relaxed) >= expected {
                    break;
                }
            }
            (lat, last)
        }));
    }
    // Deliveries allowed in flight: enough to keep every link busy, few
    // enough that gossipsub's per-peer send queues do not overflow.
    let window = 64u64 * (p.nodes as u64 - 1);
    let published = Arc::new(AtomicU64::new(0));
    // Deliveries written off as lost (no progress for STALL): flow control
    // counts them as done so one drop cannot slow every later publish.
    let written_off = Arc::new(AtomicU64::new(0));
    const STALL: Duration = Duration::from_millis(250);
    let mut publishers = Vec::new();
    for (i, h) in handles.iter().enumerate() {
        let count = p.messages / p.nodes + usize::from(i < p.messages % p.nodes);
        let (h, delivered, published, written_off, size, n) = (
            h.clone(),
            delivered.clone(),
            published.clone(),
            written_off.clone(),
            p.size,
            p.nodes as u64,
        );
        publishers.push(tokio::spawn(async move {
            for seq in 0..count {
                let mut seen = delivered.load(Ordering::Relaxed);
                let mut progress = Instant::now();
                loop {
                    let done = delivered.load(Ordering::Relaxed);
                    let owed = published.load(Ordering::Relaxed) * (n - 1);
                    let lost = written_off.load(Ordering::Relaxed);
                    if owed <= done + lost + window {
                        break;
                    }
                    if done != seen {
                        seen = done;
                        progress = Instant::now();
                    } else if progress.elapsed() > STALL {
                        written_off.fetch_add(owed - done - lost - window, Ordering::Relaxed);
                        break;
                    }
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                let mut data = vec![0u8; size];
                data[..4].copy_from_slice(&(i as u32).to_be_bytes());
                data[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
                let now = base.elapsed().as_micros() as u64;
                data[8..16].copy_from_slice(&now.to_be_bytes());
                loop {
                    match h.publish(TOPIC, data.clone()).await {
                        Ok(_) => break,
                        Err(hal9_p2p::Error::Publish(hal9_p2p::PublishError::Gossipsub(_))) => {
                            tokio::time::sleep(Duration::from_millis(1)).await
                        }
                        Err(e) => return Err(eyre!("publish failed: {e}")),
                    }
                }
                published.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    for p in publishers {
        p.await??;
    }
    let mut all = Vec::new();
    let mut last = base;
    for r in receivers {
        let (lat, l) = r.await?;
        all.extend(lat);
        last = last.max(l);
    }
    for h in &handles {
        let _ = h.shutdown().await;
    }
    all.sort_unstable();
    let pct = |q: f64| -> u64 {
        if all.is_empty() {
            0
        } else {
            all[((all.len() - 1) as f64 * q).round() as usize]
        }
    };
    Ok(GossipReport {
        params: p,
        setup,
        expected,
        delivered: delivered.load(Ordering::Relaxed),
        elapsed: last.duration_since(base),
        latency_us: (pct(0.5), pct(0.99), all.last().copied().unwrap_or(0)),
    })
}

/// Parameters of the task benchmark.
#[derive(Debug, Clone)]
pub struct TaskBench {
    /// Nodes in the network (all validators).
    pub nodes: usize,
    /// Replication factor.
    pub replicas: u16,
    /// Tasks to run.
    pub tasks: usize,
    /// Tasks in flight at once.
    pub concurrency: usize,
}

/// Runs `tasks` trivial (echo) tasks through an in-process network and
/// prints verified tasks per second and submit-to-verdict latency.
pub async fn tasks(p: TaskBench) -> eyre::Result<String> {
    use crate::dev::testnet::{TestNet, TestNetOptions};
    if p.nodes < usize::from(p.replicas) || p.replicas < 3 {
        bail!("need replicas >= 3 and nodes >= replicas");
    }
    let setup = Instant::now();
    let net = Arc::new(TestNet::new(p.nodes, TestNetOptions::default()).await?);
    let wasm_path = hal9_plugins::builder::example_wasm("echo")
        .map_err(|e| eyre!("cannot build the echo example: {e}"))?;
    let program = net.publish(0, &std::fs::read(wasm_path)?).await?;
    let setup = setup.elapsed();

    // One cold task: program fetch over bitswap and compile on every member.
    let cold = Instant::now();
    let id = net.submit(0, &program, b"warm-up", p.replicas, 0).await?;
    let rec = net.nodes[0]
        .engine
        .wait(id, Duration::from_secs(120))
        .await?;
    let cold = cold.elapsed();
    if rec.is_none_or(|r| r.verdict.is_none()) {
        bail!("the warm-up task reached no verdict");
    }

    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(1));
    let mut workers = Vec::new();
    for w in 0..p.concurrency.max(1) {
        let (net, next, program, total, replicas) = (
            net.clone(),
            next.clone(),
            program.clone(),
            p.tasks as u64,
            p.replicas,
        );
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0u64;
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k > total {
                    break;
                }
                let via = (w + k as usize) % net.nodes.len();
                let t = Instant::now();
                let id = net
                    .submit(via, &program, &k.to_be_bytes(), replicas, k)
                    .await?;
                let rec = net.nodes[via]
                    .engine
                    .wait(id, Duration::from_secs(120))
                    .await?;
                match rec.and_then(|r| r.verdict) {
                    Some(_) => lat.push(t.elapsed().as_micros() as u64),
                    None => failed += 1,
                }
            }
            Ok::<_, eyre::Report>((lat, failed))
        }));
    }
    let mut all = Vec::new();
    let mut failed = 0;
    for w in workers {
        let (l, f) = w.await??;
        all.extend(l);
        failed += f;
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let pct = |q: f64| -> f64 {
        if all.is_empty() {
            0.0
        } else {
            all[((all.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
        }
    };
    Ok(format!(
        "task bench: nodes={} replicas={} tasks={} concurrency={} (echo plugin, loopback, in-process)\n\
         \x20 setup (network + publish):  {:.2} s\n\
         \x20 cold task (fetch+compile):  {:.0} ms\n\
         \x20 verified:                   {} ({} without verdict)\n\
         \x20 throughput:                 {:.1} verified tasks/s\n\
         \x20 submit->verdict latency:    p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms\n\
         \x20 where the time goes: a verdict needs a commit batch and a reveal batch from q members;\n\
         \x20 each waits for the next vote tick ({} ms) and the reveal delay, then one gossip hop.",
        p.nodes,
        p.replicas,
        p.tasks,
        p.concurrency,
        setup.as_secs_f64(),
        cold.as_secs_f64() * 1000.0,
        all.len(),
        failed,
        all.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        pct(0.5),
        pct(0.99),
        all.last().copied().unwrap_or(0) as f64 / 1000.0,
        crate::engine::EngineConfig::default().batch_interval_ms,
    ))
}

/// Parameters of the memory-bounds benchmark.
#[derive(Debug, Clone)]
pub struct BoundsBench {
    /// Distinct tasks a raw peer gossips at node 0.
    pub tasks: u64,
    /// Inline input of each, bytes (at most the inline limit).
    pub input: usize,
    /// `consensus.max_tasks_in_memory` of every node.
    pub cap: usize,
    /// `consensus.evict_after_ms` of every node.
    pub evict_after_ms: u64,
}

/// Resident set size of this process, bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Floods node 0 of a 3-node in-process network with distinct gossiped
/// tasks (programs nobody has, inline inputs) and prints the process RSS
/// and the engine's bounded state before, at peak and after.
pub async fn bounds(p: BoundsBench) -> eyre::Result<String> {
    use hal9_api::SubmitTask;

    use crate::{
        api::tasks::build_task,
        dev::testnet::{TestNet, TestNetOptions},
        engine::{EngineConfig, TASKS_TOPIC, cid::RawCid, spec::MAX_INLINE_INPUT},
    };
    if p.input > MAX_INLINE_INPUT {
        bail!("--input must be at most {MAX_INLINE_INPUT} bytes");
    }
    let engine = EngineConfig {
        max_tasks_in_memory: p.cap,
        evict_after_ms: p.evict_after_ms,
        commit_timeout_ms: 5_000,
        reveal_timeout_ms: 2_000,
        fetch_timeout_ms: 2_000,
        ..Default::default()
    };
    let net = TestNet::new(
        3,
        TestNetOptions {
            engine,
            ..Default::default()
        },
    )
    .await?;
    let attacker = net.raw_peer(TASKS_TOPIC).await?;
    let e = net.nodes[0].engine.clone();
    let rss_before = rss_bytes();
    let peak = Arc::new(AtomicU64::new(rss_before));
    let peak_tasks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (e, peak, peak_tasks, stop) =
            (e.clone(), peak.clone(), peak_tasks.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                if let Ok(b) = e.bounds().await {
                    peak_tasks.fetch_max(b.tasks_in_memory as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let started = Instant::now();
    for k in 0..p.tasks {
        let mut input = vec![0u8; p.input.max(8)];
        input[..8].copy_from_slice(&k.to_be_bytes());
        let msg = build_task(&SubmitTask {
            program: RawCid::of(format!("bench: no such program {k}").as_bytes()).to_string(),
            input_hex: hex::encode(&input),
            replicas: 3,
            fuel: None,
            nonce: Some(k),
            fee: None,
        })
        .map_err(|e| eyre!("{e:?}"))?;
        attacker.publish(TASKS_TOPIC, msg.encode()).await?;
        if k % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let flood = started.elapsed();
    // Let every flood task time out and its grace period pass.
    tokio::time::sleep(Duration::from_millis(10_000 + p.evict_after_ms.min(20_000))).await;
    stop.store(true, Ordering::Relaxed);
    sampler.await?;
    let b = e.bounds().await?;
    let mib = |v: u64| v as f64 / (1 << 20) as f64;
    Ok(format!(
        "bounds bench: 3 in-process nodes, {} distinct gossiped tasks of {} B input at node 0, \
         max_tasks_in_memory={} evict_after_ms={}\n\
         \x20 flood sent in:            {:.2} s\n\
         \x20 process RSS:              before {:.1} MiB, peak {:.1} MiB, after {:.1} MiB\n\
         \x20 node 0 tasks in memory:   peak sampled {}, peak gauge {}, now {} (cap {})\n\
         \x20 node 0 refused / evicted: {} tasks refused, {} evicted, {} executions refused\n\
         \x20 node 0 driver tasks:      {}",
        p.tasks,
        p.input,
        p.cap,
        p.evict_after_ms,
        flood.as_secs_f64(),
        mib(rss_before),
        mib(peak.load(Ordering::Relaxed)),
        mib(rss_bytes()),
        peak_tasks.load(Ordering::Relaxed),
        b.tasks_in_memory_peak,
        b.tasks_in_memory,
        b.max_tasks_in_memory,
        b.tasks_refused,
        b.tasks_evicted,
        b.executions_refused,
        b.driver_tasks,
    ))
}
