//! The `hal9 bench ipfs` figures without building the whole node:
//! `cargo run --release -p hal9-p2p --example ipfs_bench [rounds]`.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), hal9_p2p::Error> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let plan = [
        (1 << 10, rounds),
        (1 << 20, rounds.div_ceil(4)),
        (64 << 20, 2),
    ];
    let report = hal9_p2p::bench::ipfs(&plan).await?;
    println!("{report}");
    Ok(())
}
