//! Shared committee-draw vectors (`vectors/committee.json`), used by the
//! contracts' tests too. Regenerate with `HAL9_WRITE_VECTORS=1 cargo test
//! -p hal9-consensus --test it vectors`.

use hal9_consensus::committee::draw;
use hal9_consensus::keccak256;
use serde_json::{Value, json};

/// The vectors file of this checkout (see `tree_vectors::path`).
fn path() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("vectors/committee.json")
}

fn seed(i: u64) -> [u8; 32] {
    keccak256(&[b"hal9/committee-vectors", &i.to_be_bytes()])
}

/// (seed, weights, r) of every vector.
fn cases() -> Vec<([u8; 32], Vec<u128>, usize)> {
    let p96 = 1u128 << 96;
    vec![
        (seed(1), vec![10, 10, 10, 10, 10], 3),
        // r == number of candidates
        (seed(2), vec![5, 1, 9], 3),
        // a zero-weight candidate is never drawn, even when r forces all others
        (seed(3), vec![4, 0, 7, 2], 3),
        (seed(4), vec![0, 3, 3, 0, 8, 1], 2),
        // large weights near 2^96
        (
            seed(5),
            vec![
                p96 - 1,
                p96,
                (1u128 << 95) + 12_345,
                1,
                7_000_000_000_000_000_000_000_000_000,
            ],
            3,
        ),
        (seed(6), vec![42], 1),
        (seed(7), vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5),
        // total weight above 2^64
        (seed(8), vec![1u128 << 70, 3, 1u128 << 65, 5], 2),
        (seed(9), vec![1; 20], 7),
        // total weight close to 2^128
        (
            seed(10),
            vec![1u128 << 126, (1u128 << 126) - 1, 5, (1u128 << 125) + 99],
            3,
        ),
        ([0u8; 32], vec![100, 200, 300, 400], 3),
        ([0xffu8; 32], vec![0, 1, 0, 1000, 0, 77, 5, 0, 3], 4),
        // an escalation-sized draw: 2r+1 = 7 of 12
        (
            seed(13),
            vec![
                p96,
                18_000_000_000_000_000_000,
                1,
                2,
                3,
                500,
                999_999,
                7,
                7,
                7,
                123_456_789,
                10u128.pow(24),
            ],
            7,
        ),
    ]
}

fn compute() -> Value {
    let vectors: Vec<Value> = cases()
        .into_iter()
        .map(|(s, w, r)| {
            let c = draw(&s, &w, r).expect("vector inputs are valid");
            json!({
                "seed": format!("0x{}", hex::encode(s)),
                "weights": w.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                "r": r,
                "committee": c,
            })
        })
        .collect();
    json!({ "vectors": vectors })
}

/// The file text: keys in the documented order, one vector per line.
fn render() -> String {
    let lines: Vec<String> = cases()
        .into_iter()
        .map(|(s, w, r)| {
            let c = draw(&s, &w, r).expect("vector inputs are valid");
            let ws: Vec<String> = w.iter().map(|x| format!("\"{x}\"")).collect();
            let cs: Vec<String> = c.iter().map(|x| x.to_string()).collect();
            format!(
                "  {{\"seed\":\"0x{}\",\"weights\":[{}],\"r\":{r},\"committee\":[{}]}}",
                hex::encode(s),
                ws.join(","),
                cs.join(",")
            )
        })
        .collect();
    format!("{{\"vectors\":[\n{}\n]}}\n", lines.join(",\n"))
}

#[test]
fn committed_vectors_match_the_implementation() {
    let computed = compute();
    if std::env::var_os("HAL9_WRITE_VECTORS").is_some() {
        std::fs::write(path(), render()).unwrap();
    }
    let text = std::fs::read_to_string(path()).expect("vectors/committee.json is committed");
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        file, computed,
        "vectors file differs from the implementation; regenerate and review"
    );
}

#[test]
fn vectors_file_is_self_consistent() {
    // Recompute from the file's own fields, as the Solidity side does.
    let text = std::fs::read_to_string(path()).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    let vs = file["vectors"].as_array().unwrap();
    assert!(vs.len() >= 12);
    for v in vs {
        let s = hex::decode(v["seed"].as_str().unwrap().trim_start_matches("0x")).unwrap();
        let s: [u8; 32] = s.try_into().unwrap();
        let w: Vec<u128> = v["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().parse().unwrap())
            .collect();
        let r = v["r"].as_u64().unwrap() as usize;
        let c: Vec<usize> = v["committee"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(draw(&s, &w, r).unwrap(), c);
        assert_eq!(c.len(), r);
        for i in &c {
            assert!(w[*i] > 0, "zero-weight candidate {i} drawn");
        }
    }
}

#[test]
fn too_few_nonzero_candidates_is_refused() {
    assert!(draw(&seed(1), &[0, 5, 0], 2).is_err());
}
