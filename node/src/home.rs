//! The node's home directory: key, config, API token, store.

use std::{
    fs,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use eyre::{Context, bail, eyre};
use libp2p::identity::Keypair;

/// File names inside the home directory.
pub const KEY_FILE: &str = "node.key";
/// The TOML configuration.
pub const CONFIG_FILE: &str = "config.toml";
/// Bearer token of the control API.
pub const TOKEN_FILE: &str = "api.token";
/// Written by a running node: where its control API listens.
pub const API_FILE: &str = "api.json";
/// The redb store.
pub const STORE_FILE: &str = "store.redb";

/// Paths of one node home.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home at `root` (not created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `--home`, else `$HAL9_HOME` (handled by clap), else `~/.hal9`.
    pub fn resolve(flag: Option<PathBuf>) -> Self {
        let root = flag.unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".hal9")
        });
        Self::new(root)
    }

    /// The home directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Path of a file in the home.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Fails with a hint unless `hal9 init` has been run here.
    pub fn ensure_initialized(&self) -> eyre::Result<()> {
        if !self.path(KEY_FILE).exists() {
            bail!(
                "{} is not an initialized hal9 home (no {KEY_FILE}); run `hal9 init --home {}` first",
                self.root.display(),
                self.root.display()
            );
        }
        Ok(())
    }

    /// Loads the node key, with a clear error for missing, unreadable or corrupt files.
    pub fn load_key(&self) -> eyre::Result<Keypair> {
        let path = self.path(KEY_FILE);
        let bytes = fs::read(&path)
            .wrap_err_with(|| format!("cannot read the node key {}", path.display()))?;
        Keypair::from_protobuf_encoding(&bytes).map_err(|e| {
            eyre!(
                "the node key {} is corrupt (expected a protobuf-encoded ed25519 key): {e}",
                path.display()
            )
        })
    }

    /// Creates a new ed25519 key, file mode 0600. Refuses to overwrite.
    pub fn create_key(&self) -> eyre::Result<Keypair> {
        let key = Keypair::generate_ed25519();
        let bytes = key
            .to_protobuf_encoding()
            .map_err(|e| eyre!("cannot encode the node key: {e}"))?;
        write_private(&self.path(KEY_FILE), &bytes)?;
        Ok(key)
    }

    /// Reads the API token.
    pub fn load_token(&self) -> eyre::Result<String> {
        let path = self.path(TOKEN_FILE);
        let t = fs::read_to_string(&path)
            .wrap_err_with(|| format!("cannot read the API token {}", path.display()))?;
        let t = t.trim().to_string();
        if t.len() < 32 {
            bail!("the API token in {} is too short", path.display());
        }
        Ok(t)
    }

    /// A control API client for the node running in this home (reads
    /// [`API_FILE`], which the node writes while it runs, and the token).
    pub fn api_client(&self) -> eyre::Result<hal9_api::ApiClient> {
        self.ensure_initialized()?;
        let path = self.path(API_FILE);
        let bytes = fs::read(&path).map_err(|_| {
            eyre!(
                "no node is running with home {} (no {API_FILE}); start one with `hal9 node run`",
                self.root.display()
            )
        })?;
        let info: hal9_api::ApiInfo = serde_json::from_slice(&bytes)
            .wrap_err_with(|| format!("{} is corrupt", path.display()))?;
        Ok(hal9_api::ApiClient::from_info(&info, self.load_token()?))
    }

    /// Creates a random API token file (0600) if there is none.
    pub fn ensure_token(&self) -> eyre::Result<String> {
        if self.path(TOKEN_FILE).exists() {
            return self.load_token();
        }
        let mut raw = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let token = hex::encode(raw);
        write_private(&self.path(TOKEN_FILE), token.as_bytes())?;
        Ok(token)
    }
}

/// Writes `bytes` to a new file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> eyre::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .wrap_err_with(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .wrap_err_with(|| format!("cannot write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_client_says_what_is_missing_or_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let err = |h: &Home| format!("{:#}", h.api_client().unwrap_err());
        assert!(err(&home).contains("not an initialized hal9 home"));
        home.create_key().unwrap();
        assert!(err(&home).contains("no node is running"));
        fs::write(home.path(API_FILE), b"{\"url\": 5}").unwrap();
        assert!(err(&home).contains("is corrupt"));
        let info = hal9_api::ApiInfo {
            url: "http://127.0.0.1:4691".into(),
            metrics_url: "http://127.0.0.1:4692".into(),
            peer_id: "p".into(),
            pid: 1,
        };
        fs::write(home.path(API_FILE), serde_json::to_vec(&info).unwrap()).unwrap();
        // No token yet, then a token too short to be one.
        assert!(err(&home).contains("cannot read the API token"));
        write_private(&home.path(TOKEN_FILE), b"short").unwrap();
        assert!(err(&home).contains("too short"));
        fs::remove_file(home.path(TOKEN_FILE)).unwrap();
        home.ensure_token().unwrap();
        let client = home.api_client().unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:4691");
    }
}
