//! `hal9 get <CID> [-o FILE]`: fetch a verified object through the running node.

use std::{io::Write, path::PathBuf, time::Duration};

use clap::Args;
use eyre::Context;

use super::HomeArgs;

/// `hal9 get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// CID of the object (e.g. bafy...).
    cid: String,
    /// Write the bytes to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Give up after this many seconds if no peer delivers the object.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

impl GetArgs {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        // Reject a malformed CID before asking the node.
        let cid = hal9_p2p::content::parse_cid(&self.cid)?;
        let client = self.home.home().api_client()?;
        let data = client
            .get_content(
                &cid.to_string(),
                Duration::from_secs(self.timeout_secs.max(1)),
            )
            .await?;
        match self.output {
            Some(path) => {
                std::fs::write(&path, &data)
                    .wrap_err_with(|| format!("cannot write {}", path.display()))?;
                eprintln!("{cid}: {} bytes written to {}", data.len(), path.display());
            }
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(&data)
                    .wrap_err("writing to standard output")?;
                out.flush().wrap_err("writing to standard output")?;
            }
        }
        Ok(())
    }
}
