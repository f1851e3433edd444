//! Correct execution over real processes (5 nodes, r = 3): a program larger
//! than one IPFS chunk, an input named by CID, a deterministic failure the
//! committee agrees on, a fuel limit above the network maximum, and a
//! program nobody provides.

use std::time::Duration;

use hal9_api::{ApiClient, SubmitTask, TaskRecord, TaskStatus};
use hal9_consensus::keccak256;
use hal9_node::engine::{
    failure::{Failure, FailureKind},
    spec::{MAX_FUEL, MAX_INLINE_INPUT},
};

use crate::{
    consensus::{patient, sha256_hex},
    harness::{Cluster, hal9},
};

/// Deterministic filler bytes (xorshift), so the chunks of a padded module
/// are all different blocks.
fn filler(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn leb128(mut v: usize, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// The sha256 example with a custom section that makes it `size` bytes or more.
fn padded_sha256_module(size: usize) -> Vec<u8> {
    let mut wasm = std::fs::read(hal9_plugins::builder::example_wasm("sha256").unwrap()).unwrap();
    let name = b"hal9.test.padding";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend(filler(
        size.saturating_sub(wasm.len()),
        0x9e37_79b9_7f4a_7c15,
    ));
    wasm.push(0); // custom section
    leb128(payload.len(), &mut wasm);
    wasm.extend_from_slice(&payload);
    wasm
}

async fn submit(
    c: &ApiClient,
    program: &str,
    input: &[u8],
    fuel: Option<u64>,
) -> eyre::Result<String> {
    Ok(c.submit_task(&SubmitTask {
        program: program.to_string(),
        input_hex: hex::encode(input),
        replicas: 3,
        fuel,
        nonce: None,
        fee: None,
    })
    .await?
    .id)
}

async fn member_record(cluster: &Cluster, rec: &TaskRecord, id: &str) -> TaskRecord {
    for n in &cluster.nodes {
        if rec.committee.contains(&n.peer_id().unwrap()) {
            return n.client().unwrap().task(id, Some(120_000)).await.unwrap();
        }
    }
    panic!("no committee member among the nodes: {rec:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_programs_inputs_by_cid_and_deterministic_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = crate::harness::meshed(dir.path(), 5, patient).await;
    let c0 = cluster.nodes[0].client().unwrap();

    // A 1 MiB module is a multi-block dag-pb file: its CID's digest is the
    // hash of the root node, not of the module.
    let wasm = padded_sha256_module((1 << 20) + 4096);
    assert!(wasm.len() > 1 << 20);
    let published = c0.publish_program(wasm).await.unwrap();
    assert!(
        published.cid.starts_with("bafy"),
        "expected a dag-pb CID for a multi-chunk module, found {}",
        published.cid
    );
    let program = published.cid;
    let id = submit(&c0, &program, b"big program", None).await.unwrap();
    let rec = c0.task(&id, Some(120_000)).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Verified, "{rec:?}");
    assert_eq!(
        c0.task_result(&id).await.unwrap(),
        sha256_hex(b"big program").as_bytes()
    );

    // A 300 KiB input is named by CID and fetched by every member.
    let input = filler(300 * 1024, 42);
    assert!(input.len() > MAX_INLINE_INPUT);
    let id = submit(&c0, &program, &input, None).await.unwrap();
    let rec = c0.task(&id, None).await.unwrap();
    assert!(
        rec.input.is_empty(),
        "a 300 KiB input must not travel inline"
    );
    let rec = cluster.nodes[3]
        .client()
        .unwrap()
        .task(&id, Some(120_000))
        .await
        .unwrap();
    assert_eq!(rec.status, TaskStatus::Verified, "{rec:?}");
    assert_eq!(
        cluster.nodes[3]
            .client()
            .unwrap()
            .task_result(&id)
            .await
            .unwrap(),
        sha256_hex(&input).as_bytes()
    );

    // Out of fuel on every member: the committee reaches a verdict on the failure.
    let id = submit(&c0, &program, b"too little fuel", Some(1_000))
        .await
        .unwrap();
    let rec = c0.task(&id, Some(120_000)).await.unwrap();
    assert_eq!(rec.status, TaskStatus::Verified, "{rec:?}");
    let failure = Failure {
        kind: FailureKind::OutOfFuel,
        fuel_limit: 1_000,
    };
    let verdict = rec.verdict.as_ref().unwrap();
    assert_eq!(verdict.result, hex::encode(keccak256(&[&failure.encode()])));
    assert!(
        verdict.attesters.len() >= 2,
        "a quorum signed the failure: {verdict:?}"
    );
    let error = rec.error.clone().unwrap_or_default();
    assert!(error.contains("out of fuel"), "{rec:?}");
    let err = c0.task_result(&id).await.unwrap_err().to_string();
    assert!(err.contains("no output"), "{err}");
    // `hal9 task status` says so.
    let out = hal9(&["task", "status", &id], cluster.nodes[0].home().root());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("out of fuel"), "{text}");
    // And the certificate checks out on another node.
    let report = cluster.nodes[2]
        .client()
        .unwrap()
        .verify_task(&id)
        .await
        .unwrap();
    assert_eq!(report.result, verdict.result);

    // Fuel above the network maximum is refused at submission, not capped.
    let err = submit(&c0, &program, b"x", Some(MAX_FUEL + 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("400") && err.contains("network maximum"),
        "{err}"
    );
    let out = hal9(
        &[
            "task",
            "submit",
            "--program",
            &program,
            "--input",
            "x",
            "--fuel",
            &(MAX_FUEL + 1).to_string(),
        ],
        cluster.nodes[0].home().root(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("network maximum"), "{stderr}");

    // A program nobody provides: the task fails, and a member says why.
    let missing = hal9_node::engine::cid::RawCid::of(b"a program nobody has").to_string();
    let id = submit(&c0, &missing, b"x", None).await.unwrap();
    let rec = c0.task(&id, None).await.unwrap();
    let rec = member_record(&cluster, &rec, &id).await;
    assert_eq!(rec.status, TaskStatus::Failed, "{rec:?}");
    crate::harness::eventually(Duration::from_secs(60), "the failure cause", || {
        let cluster = &cluster;
        let rec = rec.clone();
        let id = id.clone();
        let missing = missing.clone();
        async move {
            let r = member_record(cluster, &rec, &id).await;
            let e = r.error.unwrap_or_default();
            (e.contains(&format!("program {missing} not found")) && e.contains("no provider"))
                .then_some(())
        }
    })
    .await;
    cluster.stop().await.unwrap();
}
