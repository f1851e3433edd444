use clap::Args;

use super::HomeArgs;

/// `hal9 status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl StatusArgs {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        let s = self.home.home().api_client()?.status().await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&s)?);
            return Ok(());
        }
        println!("peer id:         {}", s.peer_id);
        println!("version:         {}", s.version);
        println!("uptime:          {} s", s.uptime_secs);
        println!("connected peers: {}", s.connected_peers);
        println!("known peers:     {}", s.known_peers);
        println!("store schema:    v{}", s.store_schema);
        if let Some(c) = &s.content {
            println!("pins:            {}", c.pins);
            println!(
                "content store:   {} bytes in {} blocks (quota {} bytes)",
                c.repo_bytes, c.blocks, c.quota_bytes
            );
        }
        println!("listening on:");
        for a in s.listen_addrs {
            println!("  {a}");
        }
        Ok(())
    }
}
