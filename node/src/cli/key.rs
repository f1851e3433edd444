//! `hal9 key ...`: the operator's secp256k1 key (its EVM address).

use alloy::primitives::B256;
use alloy::signers::local::PrivateKeySigner;
use clap::{Args, Subcommand};
use eyre::{Context, bail};
use hal9_market::keys::{self, KeyFormat};

use super::chain::{ChainArgs, ChainOverrides, Ctx};
use crate::chain::client::{operator_address, operator_key_path, passphrase};

/// `hal9 key ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a new operator key (an encrypted keystore; passphrase from the
    /// environment variable named by `chain.passphrase_env`).
    New(NewArgs),
    /// Store an existing private key, read from an environment variable.
    Import(ImportArgs),
    /// Print the operator address.
    Address(AddressArgs),
}

#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Write the key in clear (devnet accounts only: anyone who reads the file owns the funds).
    #[arg(long)]
    plaintext_devnet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Environment variable holding the private key (32 bytes hex); never pass a key as an argument.
    #[arg(long, value_name = "VAR")]
    private_key_env: String,
    /// Write the key in clear (devnet accounts only).
    #[arg(long)]
    plaintext_devnet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AddressArgs {
    #[command(flatten)]
    chain: ChainArgs,
}

impl KeyCommand {
    pub(crate) async fn run(self, o: &ChainOverrides) -> eyre::Result<()> {
        match self {
            KeyCommand::New(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                store(
                    &ctx,
                    &PrivateKeySigner::random(),
                    a.plaintext_devnet,
                    "created",
                )
            }
            KeyCommand::Import(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let raw = std::env::var(&a.private_key_env).wrap_err_with(|| {
                    format!("the environment variable {} is not set", a.private_key_env)
                })?;
                let key: B256 = raw.trim().parse().map_err(|_| {
                    eyre::eyre!(
                        "{} must hold a private key of 32 bytes in hex (0x...)",
                        a.private_key_env
                    )
                })?;
                let signer = PrivateKeySigner::from_bytes(&key)
                    .map_err(|e| eyre::eyre!("not a valid secp256k1 private key: {e}"))?;
                store(&ctx, &signer, a.plaintext_devnet, "imported")
            }
            KeyCommand::Address(a) => {
                let ctx = Ctx::load(&a.chain, o)?;
                let path = operator_key_path(&ctx.home, &ctx.cfg);
                let address = operator_address(&ctx.home, &ctx.cfg)?;
                let format = match keys::inspect(&path)?.0 {
                    KeyFormat::Keystore => "keystore",
                    KeyFormat::PlaintextDevnet => "plaintext-devnet",
                };
                ctx.emit(
                    serde_json::json!({"address": address.to_string(), "path": path.display().to_string(), "format": format}),
                    || println!("{address}"),
                )
            }
        }
    }
}

fn store(ctx: &Ctx, signer: &PrivateKeySigner, plaintext: bool, verb: &str) -> eyre::Result<()> {
    if !ctx.home.root().is_dir() {
        bail!(
            "{} does not exist; run `hal9 init --home {}` first",
            ctx.home.root().display(),
            ctx.home.root().display()
        );
    }
    let path = operator_key_path(&ctx.home, &ctx.cfg);
    if plaintext {
        keys::write_plaintext_devnet(&path, signer)?;
        tracing::warn!(target: "hal9::chain", path = %path.display(), "operator key written IN CLEAR (devnet only)");
    } else {
        let Some(pass) = passphrase(&ctx.cfg) else {
            bail!(
                "set the environment variable {} to the passphrase of the new keystore \
                 (or pass --plaintext-devnet for a throwaway devnet key)",
                ctx.cfg.passphrase_env
            );
        };
        keys::write_encrypted(&path, signer, &pass)?;
    }
    let address = signer.address();
    ctx.emit(
        serde_json::json!({"address": address.to_string(), "path": path.display().to_string(), "encrypted": !plaintext}),
        || {
            println!(
                "{verb} operator key {address} in {} ({})",
                path.display(),
                if plaintext {
                    "PLAINTEXT, devnet only"
                } else {
                    "encrypted keystore"
                }
            )
        },
    )
}
