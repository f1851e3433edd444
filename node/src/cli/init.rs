use std::{fs, net::SocketAddr};

use clap::Args;
use eyre::{Context, bail};

use super::{HomeArgs, node::NetworkOverrides};
use crate::{
    config::NodeConfig,
    home::{CONFIG_FILE, KEY_FILE},
};

/// `hal9 init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// Values to write into the new config instead of the defaults.
    #[command(flatten)]
    overrides: NetworkOverrides,
    /// Control API address to write into the config.
    #[arg(long)]
    api_listen: Option<SocketAddr>,
    /// Metrics address to write into the config.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
}

impl InitArgs {
    pub(crate) fn run(self) -> eyre::Result<()> {
        let home = self.home.home();
        if home.path(KEY_FILE).exists() {
            bail!(
                "{} is already initialized ({KEY_FILE} exists); refusing to overwrite the node key",
                home.root().display()
            );
        }
        fs::create_dir_all(home.root())
            .wrap_err_with(|| format!("cannot create {}", home.root().display()))?;
        let mut cfg = NodeConfig::default();
        self.overrides.apply(&mut cfg.network);
        if let Some(a) = self.api_listen {
            cfg.api.listen = a;
        }
        if let Some(a) = self.metrics_listen {
            cfg.metrics.listen = a;
        }
        cfg.validate()?;
        let key = home.create_key()?;
        home.ensure_token()?;
        let cfg_path = home.path(CONFIG_FILE);
        if !cfg_path.exists() {
            fs::write(&cfg_path, cfg.template())
                .wrap_err_with(|| format!("cannot write {}", cfg_path.display()))?;
        }
        println!("initialized {}", home.root().display());
        println!("peer id: {}", key.public().to_peer_id());
        println!("config:  {}", cfg_path.display());
        Ok(())
    }
}
