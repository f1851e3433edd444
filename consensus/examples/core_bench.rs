//! Prints the throughput of the pure consensus core.
//!
//! `cargo run --release -p hal9-consensus --example core_bench -- 20000`

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000usize);
    // One warm-up run, then the measured one.
    let _ = hal9_consensus::bench::core_throughput(n.min(1_000));
    println!("{}", hal9_consensus::bench::core_throughput(n));
}
