use clap::Args;

use super::HomeArgs;

/// `hal9 peers`.
#[derive(Debug, Args)]
pub(crate) struct PeersArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl PeersArgs {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        let peers = self.home.home().api_client()?.peers().await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&peers)?);
            return Ok(());
        }
        println!("{} connected peer(s)", peers.len());
        for p in peers {
            println!(
                "{}  score={}  rtt={}  agent={}  {}",
                p.peer_id,
                p.score
                    .map(|s| format!("{s:.2}"))
                    .unwrap_or_else(|| "-".into()),
                p.rtt_ms
                    .map(|r| format!("{r}ms"))
                    .unwrap_or_else(|| "-".into()),
                p.agent.as_deref().unwrap_or("-"),
                p.addresses.join(",")
            );
        }
        Ok(())
    }
}
