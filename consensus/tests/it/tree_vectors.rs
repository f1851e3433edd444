//! Shared sortition-tree vectors (`vectors/tree.json`), read by
//! `contracts/test/SortitionTree.t.sol` too. Regenerate with
//! `HAL9_WRITE_VECTORS=1 cargo test -p hal9-consensus --test it tree_vectors`.

use hal9_consensus::keccak256;
use hal9_consensus::sortition::SumTree;

/// The vectors file of this checkout: cargo sets `CARGO_MANIFEST_DIR` when
/// it runs the test, and a test binary reused from a target directory shared
/// with another checkout would otherwise read that checkout's file.
fn path() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("vectors/tree.json")
}

fn seed(i: u64) -> [u8; 32] {
    keccak256(&[b"hal9/tree-vectors", &i.to_be_bytes()])
}

/// (seed, slot weights, r) of every vector.
fn cases() -> Vec<([u8; 32], Vec<u64>, usize)> {
    let big = (1u64 << 48) - 1;
    let many: Vec<u64> = (0..300u64).map(|i| 1 + (i * 7919) % 1000).collect();
    vec![
        (seed(1), vec![10, 10, 10, 10, 10], 3),
        (seed(2), vec![5, 1, 9], 3),
        (seed(3), vec![4, 0, 7, 2], 3),
        (seed(4), vec![big, 1, big - 5, 3, 1_000_000_000], 3),
        (seed(5), vec![1; 24], 7),
        (seed(6), many.clone(), 7),
        (seed(7), many, 15),
        ([0u8; 32], vec![100, 200, 300, 400], 4),
        ([0xffu8; 32], vec![0, 1, 0, 1000, 0, 77, 5, 0, 3], 4),
    ]
}

fn render() -> String {
    let mut out = Vec::new();
    for (s, w, r) in cases() {
        let t = SumTree::new(&w).unwrap();
        let picked = t.draw(&s, r, 4 * r, |_| true).unwrap();
        let ws: Vec<String> = w.iter().map(|x| x.to_string()).collect();
        let ps: Vec<String> = picked.iter().map(|x| x.to_string()).collect();
        out.push(format!(
            "{{\"seed\":\"0x{}\",\"r\":{},\"weights\":[{}],\"picked\":[{}]}}",
            hex::encode(s),
            r,
            ws.join(","),
            ps.join(",")
        ));
    }
    format!(
        "{{\"count\":{},\"cases\":[\n{}\n]}}\n",
        out.len(),
        out.join(",\n")
    )
}

#[test]
fn committed_tree_vectors_match_the_implementation() {
    let want = render();
    if std::env::var_os("HAL9_WRITE_VECTORS").is_some() {
        std::fs::write(path(), &want).unwrap();
    }
    let text = std::fs::read_to_string(path()).expect("vectors/tree.json is committed");
    assert_eq!(
        text, want,
        "vectors/tree.json differs from the implementation; regenerate and review"
    );
}
