use clap::Parser;
use hal9_node::cli::Cli;

fn main() {
    let cli = Cli::parse();
    if let Err(e) = cli.init_tracing() {
        eprintln!("error: cannot set up logging: {e}");
        std::process::exit(2);
    }
    if let Err(e) = cli.run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
