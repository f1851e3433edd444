//! `hal9 plugin ...`: the plugins crate's commands plus `publish`, which
//! adds a module to the running node's content store.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use eyre::bail;
use hal9_plugins::{
    PluginEngine,
    cli::{PluginCommand as LocalCommand, read_module},
    config::EngineConfig,
    inspect::inspect,
    manifest::{MANIFEST_SECTION, MAX_MANIFEST_BYTES, Manifest},
};

use super::HomeArgs;
use crate::api::content::MAX_PROGRAM_BYTES;

/// `hal9 plugin ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    /// Add a module (with its manifest) to the running node, pin it, provide
    /// it on the DHT and print its CID: the name tasks use for the program.
    Publish(PublishArgs),
    #[command(flatten)]
    Local(LocalCommand),
}

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// Module file (`.wasm`; `.wat` text is compiled first).
    file: PathBuf,
    /// Manifest to embed when the module carries none (default:
    /// `<file stem>.manifest.json` beside the module, if present).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl PluginCommand {
    pub(crate) async fn run(self) -> eyre::Result<()> {
        match self {
            PluginCommand::Publish(a) => a.run().await,
            PluginCommand::Local(c) => tokio::task::spawn_blocking(move || c.run())
                .await
                .map_err(|e| eyre::eyre!("plugin command: {e}"))?
                .map_err(Into::into),
        }
    }
}

impl PublishArgs {
    async fn run(self) -> eyre::Result<()> {
        let mut wasm = read_module(&self.file, MAX_PROGRAM_BYTES)?;
        let sidecar = self.file.with_extension("manifest.json");
        let manifest_path = match self.manifest {
            Some(p) => Some(p),
            None if sidecar.is_file() => Some(sidecar),
            None => None,
        };
        let manifest = match &manifest_path {
            Some(p) => {
                let bytes = std::fs::read(p)
                    .map_err(|e| eyre::eyre!("cannot read {}: {e}", p.display()))?;
                if bytes.len() > MAX_MANIFEST_BYTES {
                    bail!(
                        "{}: expected at most {MAX_MANIFEST_BYTES} bytes, found {}",
                        p.display(),
                        bytes.len()
                    );
                }
                Manifest::from_json(&bytes)?;
                Some(bytes)
            }
            None => None,
        };
        // The module must load on this host before the network sees it.
        let engine = PluginEngine::new(EngineConfig {
            pooling: false,
            ..EngineConfig::default()
        })?;
        let info = inspect(&engine, &wasm, None)?;
        if let Some(json) = manifest {
            if info.embedded_manifest {
                bail!(
                    "{} already embeds a manifest; drop --manifest or the sidecar file",
                    self.file.display()
                );
            }
            append_custom_section(&mut wasm, MANIFEST_SECTION, &json);
            inspect(&engine, &wasm, None)?;
        }
        let client = self.home.home().api_client()?;
        let added = client.publish_program(wasm).await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&added)?);
        } else {
            println!("{}", added.cid);
            eprintln!("  size    {} bytes", added.bytes);
            eprintln!("  sha256  {}", added.sha256);
        }
        Ok(())
    }
}

fn leb128(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends a custom section (id 0) named `name` holding `payload`.
fn append_custom_section(wasm: &mut Vec<u8>, name: &str, payload: &[u8]) {
    let mut body = Vec::with_capacity(name.len() + payload.len() + 5);
    leb128(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    wasm.push(0);
    leb128(body.len(), wasm);
    wasm.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_encodes_multi_byte_lengths() {
        let mut v = Vec::new();
        leb128(624_485, &mut v);
        assert_eq!(v, [0xe5, 0x8e, 0x26]);
    }
}
