//! `hal9 bench ipfs`: add throughput, and fetch latency and throughput
//! between two in-process nodes on loopback TCP. Prints figures; never
//! fails on speed.

use std::{
    fmt,
    time::{Duration, Instant},
};

use prometheus_client::registry::Registry;
use rand::RngCore;

use crate::{Error, Keypair, Network, NetworkConfig, NetworkHandle, Retention, multiaddr_p2p};

/// Figures for one object size.
#[derive(Debug, Clone)]
pub struct SizeFigures {
    /// Object size in bytes.
    pub size: usize,
    /// Objects added and fetched.
    pub rounds: usize,
    /// Median add throughput, MB/s (10^6 bytes per second).
    pub add_mb_s: f64,
    /// Median fetch latency (first byte to verified object), seconds.
    pub fetch_p50: Duration,
    /// Slowest fetch.
    pub fetch_max: Duration,
    /// Median fetch throughput, MB/s.
    pub fetch_mb_s: f64,
}

/// Report of the IPFS benchmark.
#[derive(Debug, Clone)]
pub struct IpfsReport {
    /// One entry per size.
    pub sizes: Vec<SizeFigures>,
}

impl fmt::Display for IpfsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ipfs bench: 2 in-process nodes, loopback TCP, in-memory stores, CIDv1 raw leaves 256 KiB chunks"
        )?;
        writeln!(
            f,
            "  {:>10}  {:>6}  {:>12}  {:>12}  {:>12}  {:>14}",
            "size", "rounds", "add MB/s", "fetch p50", "fetch max", "fetch MB/s"
        )?;
        for s in &self.sizes {
            writeln!(
                f,
                "  {:>10}  {:>6}  {:>12.1}  {:>10.2}ms  {:>10.2}ms  {:>14.1}",
                human(s.size),
                s.rounds,
                s.add_mb_s,
                s.fetch_p50.as_secs_f64() * 1e3,
                s.fetch_max.as_secs_f64() * 1e3,
                s.fetch_mb_s
            )?;
        }
        Ok(())
    }
}

fn human(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

async fn start() -> Result<NetworkHandle, Error> {
    let mut registry = Registry::default();
    let (network, handle, mut events) = Network::new(
        Keypair::generate_ed25519(),
        NetworkConfig::local_tcp(),
        &mut registry,
    )
    .await?;
    tokio::spawn(network.run());
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    Ok(handle)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0.0)
}

/// Runs the benchmark for each `(size, rounds)`.
pub async fn ipfs(plan: &[(usize, usize)]) -> Result<IpfsReport, Error> {
    let a = start().await?;
    let b = start().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = loop {
        if let Some(addr) = a.listen_addrs().await?.into_iter().next() {
            break addr.with(multiaddr_p2p(a.local_peer_id()));
        }
        if Instant::now() > deadline {
            return Err(Error::Build("node A never listened".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    b.dial(addr).await?;
    while b.peers().await?.is_empty() {
        if Instant::now() > deadline {
            return Err(Error::Build("nodes never connected".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ca, cb) = (a.content(), b.content());
    let mut out = Vec::new();
    for &(size, rounds) in plan {
        let rounds = rounds.max(1);
        let mut add = Vec::new();
        let mut lat = Vec::new();
        let mut thr = Vec::new();
        for _ in 0..rounds {
            let mut data = vec![0u8; size];
            rand::thread_rng().fill_bytes(&mut data);
            let t = Instant::now();
            let cid = ca
                .add(data, Retention::Unpinned)
                .await
                .map_err(|e| Error::Build(format!("add: {e}")))?;
            add.push(size as f64 / t.elapsed().as_secs_f64().max(1e-9) / 1e6);
            let t = Instant::now();
            let got = cb
                .get(&cid, Duration::from_secs(300))
                .await
                .map_err(|e| Error::Build(format!("fetch: {e}")))?;
            let took = t.elapsed().as_secs_f64().max(1e-9);
            if got.len() != size {
                return Err(Error::Build(format!(
                    "fetched {} bytes, expected {size}",
                    got.len()
                )));
            }
            lat.push(took);
            thr.push(size as f64 / took / 1e6);
        }
        let max = lat.iter().copied().fold(0.0, f64::max);
        out.push(SizeFigures {
            size,
            rounds,
            add_mb_s: median(&mut add),
            fetch_p50: Duration::from_secs_f64(median(&mut lat)),
            fetch_max: Duration::from_secs_f64(max),
            fetch_mb_s: median(&mut thr),
        });
    }
    let _ = a.shutdown().await;
    let _ = b.shutdown().await;
    Ok(IpfsReport { sizes: out })
}
