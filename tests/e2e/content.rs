//! The content layer over real processes: programs published on one node
//! and fetched by CID on another through the DHT and bitswap, results
//! fetched byte-identical, not-found, restart with pins.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use hal9_api::ApiClient;
use rand::RngCore;

use crate::harness::{NodeProc, bin, eventually, hal9};

/// A module of the host ABI that copies its input to its output.
const ECHO_WAT: &str = r#"
(module
  (import "hal9" "input_len" (func $len (result i32)))
  (import "hal9" "input_read" (func $read (param i32 i32 i32) (result i32)))
  (import "hal9" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "hal9_run") (result i32)
    (local $n i32)
    (local.set $n (call $read (i32.const 0) (call $len) (i32.const 0)))
    (drop (call $write (i32.const 0) (local.get $n)))
    (i32.const 0)))
"#;

/// Sets `network.target_peers` in a node's config so that it dials no one
/// beyond its bootstrap peer on its own.
fn limit_peers(node: &NodeProc, n: usize) {
    let path = node.home().path(hal9_node::home::CONFIG_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut value: toml::Table = text.parse().unwrap();
    value
        .get_mut("network")
        .and_then(|v| v.as_table_mut())
        .expect("config has a [network] table")
        .insert("target_peers".into(), toml::Value::Integer(n as i64));
    std::fs::write(&path, toml::to_string(&value).unwrap()).unwrap();
}

fn write_genesis(nodes: &[&NodeProc]) {
    let validators = nodes
        .iter()
        .map(|n| hal9_consensus::GenesisValidator {
            peer_id: n.peer_id().unwrap(),
            weight: "1".into(),
            capabilities: vec!["wasm".into()],
        })
        .collect();
    let genesis = serde_json::to_vec_pretty(&hal9_consensus::Genesis { validators }).unwrap();
    for n in nodes {
        std::fs::write(n.home().path("genesis.json"), &genesis).unwrap();
    }
}

async fn connected(client: &ApiClient, peer: &str) -> bool {
    client
        .peers()
        .await
        .map(|ps| ps.iter().any(|p| p.peer_id == peer))
        .unwrap_or(false)
}

/// B in the middle; A and C each know only B and dial no one else.
async fn line(dir: &Path) -> (NodeProc, NodeProc, NodeProc) {
    let mut b = NodeProc::init(&bin(), &dir.join("b"), vec![])
        .await
        .unwrap();
    let mut a_init = NodeProc::init(&bin(), &dir.join("a"), vec![])
        .await
        .unwrap();
    let mut c_init = NodeProc::init(&bin(), &dir.join("c"), vec![])
        .await
        .unwrap();
    write_genesis(&[&a_init, &b, &c_init]);
    let b_status = b.start().await.unwrap().status().await.unwrap();
    let boot = b_status
        .listen_addrs
        .iter()
        .find(|a| a.contains("/tcp/"))
        .cloned()
        .unwrap();
    for n in [&mut a_init, &mut c_init] {
        limit_peers(n, 1);
    }
    let mut a = a_init.with_args(&["--bootstrap", &boot]);
    let mut c = c_init.with_args(&["--bootstrap", &boot]);
    let ca = a.start().await.unwrap();
    let cc = c.start().await.unwrap();
    let b_id = b.peer_id().unwrap();
    eventually(Duration::from_secs(20), "A and C connected to B", || {
        let (ca, cc, b_id) = (ca.clone(), cc.clone(), b_id.clone());
        async move { (connected(&ca, &b_id).await && connected(&cc, &b_id).await).then_some(()) }
    })
    .await;
    // Let identify and the DHT settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    (a, b, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn program_published_on_a_is_fetched_by_c_through_the_dht_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = NodeProc::init(&bin(), &dir.path().join("b"), vec![])
        .await
        .unwrap();
    let a_init = NodeProc::init(&bin(), &dir.path().join("a"), vec![])
        .await
        .unwrap();
    let c_init = NodeProc::init(&bin(), &dir.path().join("c"), vec![])
        .await
        .unwrap();
    write_genesis(&[&a_init, &b, &c_init]);
    let boot = b
        .start()
        .await
        .unwrap()
        .status()
        .await
        .unwrap()
        .listen_addrs
        .into_iter()
        .find(|a| a.contains("/tcp/"))
        .unwrap();
    let mut a = a_init.with_args(&["--bootstrap", &boot]);
    let ca = a.start().await.unwrap();
    let b_id = b.peer_id().unwrap();
    eventually(Duration::from_secs(20), "A connected to B", || {
        let (ca, b_id) = (ca.clone(), b_id.clone());
        async move { connected(&ca, &b_id).await.then_some(()) }
    })
    .await;
    let a_id = a.peer_id().unwrap();
    let wat_file = dir.path().join("echo.wat");
    std::fs::write(&wat_file, ECHO_WAT).unwrap();
    let out = hal9(
        &["plugin", "publish", wat_file.to_str().unwrap()],
        a.home().root(),
    );
    assert!(
        out.status.success(),
        "publish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cid = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        cid.starts_with("bafk"),
        "a small module is one raw block: {cid}"
    );
    let module = hal9_plugins::cli::read_module(&wat_file, 1 << 20).unwrap();

    // C starts only now: it has never been connected to A and knows only B.
    let mut c = c_init.with_args(&["--bootstrap", &boot]);
    let cc = c.start().await.unwrap();
    let fetched = dir.path().join("fetched.wasm");
    let out = hal9(
        &[
            "get",
            &cid,
            "-o",
            fetched.to_str().unwrap(),
            "--timeout-secs",
            "30",
        ],
        c.home().root(),
    );
    assert!(
        out.status.success(),
        "get on C failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        module,
        "same bytes as published"
    );
    assert!(
        connected(&cc, &a_id).await,
        "C found A as the provider through the DHT and connected to it"
    );

    // The fetched program runs on C.
    let out = std::process::Command::new(bin())
        .args([
            "plugin",
            "run",
            fetched.to_str().unwrap(),
            "--input",
            "fetched by cid",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fetched by cid"));

    // A pins what it published and says so in `hal9 status`.
    let status = a.client().unwrap().status().await.unwrap();
    let content = status.content.expect("status shows the content store");
    assert!(content.pins >= 1 && content.repo_bytes > 0, "{content:?}");
    let out = hal9(&["status"], a.home().root());
    assert!(String::from_utf8_lossy(&out.stdout).contains("pins:"));

    for n in [&mut a, &mut b, &mut c] {
        n.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_added_on_one_node_is_fetched_byte_identical_from_another_and_unknown_cids_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut c) = line(dir.path()).await;
    let mut data = vec![0u8; 3 * 1024 * 1024 + 123];
    rand::thread_rng().fill_bytes(&mut data);
    let added = c
        .client()
        .unwrap()
        .add_content(data.clone(), true)
        .await
        .unwrap();
    assert!(added.cid.starts_with("bafybei"), "{added:?}");
    let got = a
        .client()
        .unwrap()
        .get_content(&added.cid, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(got == data, "fetched bytes differ");

    // A CID nobody provides: a bounded wait and a clear "not found".
    let nobody = hal9_p2p::content::raw_cid(b"no node holds these bytes").to_string();
    let t0 = Instant::now();
    let out = hal9(&["get", &nobody, "--timeout-secs", "3"], b.home().root());
    let took = t0.elapsed();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not found"), "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");

    // A malformed CID is refused before any network wait.
    let out = hal9(&["get", "not-a-cid"], b.home().root());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a CID"));

    for n in [&mut a, &mut b, &mut c] {
        n.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_pins_and_blocks_and_gc_spares_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = NodeProc::init(&bin(), &dir.path().join("a"), vec![])
        .await
        .unwrap();
    write_genesis(&[&a]);
    let client = a.start().await.unwrap();
    let mut data = vec![0u8; 700 * 1024];
    rand::thread_rng().fill_bytes(&mut data);
    let pinned = client.add_content(data.clone(), true).await.unwrap();
    let loose = client.add_content(vec![7u8; 5000], false).await.unwrap();
    assert!(a.stop().await.unwrap().success());

    let client = a.start().await.unwrap();
    let listing = client.content_listing().await.unwrap();
    assert!(
        listing.pins.iter().any(|p| p.cid == pinned.cid),
        "{listing:?}"
    );
    let report = client.content_gc().await.unwrap();
    // The default quota is far above this store: GC keeps unpinned blocks too.
    assert_eq!(report.removed_blocks, 0, "{report:?}");
    let got = client
        .get_content(&pinned.cid, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(got == data);
    let loose_back = client
        .get_content(&loose.cid, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(loose_back, vec![7u8; 5000]);
    assert!(a.stop().await.unwrap().success());
}
