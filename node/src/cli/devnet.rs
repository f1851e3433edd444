use std::{path::PathBuf, time::Duration};

use clap::Args;
use eyre::{Context, bail};

use crate::{api_tasks::SubmitTask, devnet::Cluster, engine::records::TaskStatus};

/// `hal9 devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Directory for the node homes (default: a fresh temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the network running until Ctrl-C instead of stopping after the demo.
    #[arg(long)]
    keep_running: bool,
}

impl DevnetArgs {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        if !(1..=64).contains(&self.nodes) {
            bail!("--nodes must be between 1 and 64, found {}", self.nodes);
        }
        let tmp;
        let dir = match self.dir {
            Some(d) => d,
            None => {
                tmp = tempfile::Builder::new().prefix("hal9-devnet-").tempdir()?;
                tmp.path().to_path_buf()
            }
        };
        let bin = std::env::current_exe().wrap_err("cannot locate the hal9 binary")?;
        println!("starting {} nodes under {}", self.nodes, dir.display());
        let mut cluster = Cluster::start(&bin, &dir, self.nodes).await?;
        let result = demo(&cluster).await;
        if result.is_ok() && self.keep_running {
            println!("network running; press Ctrl-C to stop");
            let _ = tokio::signal::ctrl_c().await;
        }
        cluster.stop().await?;
        println!("all nodes stopped");
        result
    }
}

async fn demo(cluster: &Cluster) -> eyre::Result<()> {
    println!("bootstrap node: {}", cluster.bootstrap);
    let t = cluster.wait_full_mesh(Duration::from_secs(60)).await?;
    println!(
        "every node is connected to the other {} (took {:.1} s)",
        cluster.nodes.len() - 1,
        t.as_secs_f64()
    );
    for (i, node) in cluster.nodes.iter().enumerate() {
        let s = node.client()?.status().await?;
        println!("  node{i}  {}  peers={}", s.peer_id, s.connected_peers);
    }
    let mut texts = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let text = format!("hello from node{i}");
        node.client()?.publish_note(&text).await?;
        texts.push(text);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut missing = 0;
        for (i, node) in cluster.nodes.iter().enumerate() {
            let got = node.client()?.notes().await?;
            for (j, t) in texts.iter().enumerate() {
                if i != j && !got.iter().any(|n| &n.text == t) {
                    missing += 1;
                }
            }
        }
        if missing == 0 {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("{missing} note deliveries still missing after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n = cluster.nodes.len();
    println!(
        "gossip: {n} notes published, each delivered to the other {} nodes ({} deliveries)",
        n - 1,
        n * (n - 1)
    );
    if n >= 3 {
        demo_task(cluster).await?;
    }
    Ok(())
}

/// Publishes the digit-classifier plugin, submits a task with r = 3 and
/// prints the verdict.
async fn demo_task(cluster: &Cluster) -> eyre::Result<()> {
    let wasm_path = hal9_plugins::builder::example_wasm("mlp")
        .map_err(|e| eyre::eyre!("cannot build the mlp example plugin: {e}"))?;
    let wasm = std::fs::read(&wasm_path)?;
    let client = cluster.nodes[0].client()?;
    let added = client.publish_program(wasm).await?;
    println!(
        "\nprogram: mlp digit classifier, {} bytes, CID {}",
        added.bytes, added.cid
    );
    let mut rng = hal9_plugins::kernels::glyphs::Rng(7);
    let digit = 7;
    let image = hal9_plugins::kernels::glyphs::render(digit, &mut rng);
    let started = std::time::Instant::now();
    let sub = client
        .submit_task(&SubmitTask {
            program: added.cid.clone(),
            input_hex: hex::encode(image),
            replicas: 3,
            fuel: None,
            nonce: None,
        })
        .await?;
    println!(
        "task {} submitted (a handwritten-style {digit}, r = 3)",
        sub.id
    );
    let rec = client.task(&sub.id, Some(120_000)).await?;
    crate::cli::task::print_task(&rec);
    if rec.status != TaskStatus::Verified {
        bail!("the demo task ended as {:?}", rec.status);
    }
    let out = client.task_result(&sub.id).await?;
    if let Some((&predicted, logits)) = out.split_first() {
        let logits: Vec<String> = logits
            .chunks_exact(4)
            .map(|c| format!("{:.2}", f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        println!(
            "output:     predicted digit {predicted}; logits [{}]",
            logits.join(", ")
        );
    }
    let report = cluster.nodes[n_last(cluster)]
        .client()?
        .verify_task(&sub.id)
        .await?;
    println!(
        "certificate checked independently by node{}: {} signers, quorum {}",
        n_last(cluster),
        report.signers.len(),
        report.quorum
    );
    println!(
        "submit -> verified verdict: {} ms",
        started.elapsed().as_millis()
    );
    Ok(())
}

fn n_last(cluster: &Cluster) -> usize {
    cluster.nodes.len() - 1
}
