//! `cargo bench -p hal9-plugins --bench plugins [-- --iterations N --size-mib M --json]`
//!
//! The same figures as `hal9 bench plugins`, without the node binary.

use clap::Parser;
use hal9_plugins::cli::BenchPluginsArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchPluginsArgs,
}

fn main() {
    // cargo passes `--bench` to harness-less benches.
    let cli = Cli::parse_from(std::env::args().filter(|a| a != "--bench"));
    if let Err(e) = cli.args.run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
