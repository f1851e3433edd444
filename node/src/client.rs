//! Client of a running node's control API, used by the CLI, the devnet and tests.

use std::time::Duration;

use eyre::{Context, bail, eyre};
use hal9_p2p::{PeerInfo, Published};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    api::{PublishNote, ReceivedNote, Status},
    home::{API_FILE, Home},
    runtime::ApiInfo,
};

/// A control API client.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ApiClient {
    /// A client for the node running in `home` (reads `api.json` and `api.token`).
    pub fn from_home(home: &Home) -> eyre::Result<Self> {
        home.ensure_initialized()?;
        let path = home.path(API_FILE);
        let bytes = std::fs::read(&path).map_err(|_| {
            eyre!(
                "no node is running with home {} (no {API_FILE}); start one with `hal9 node run`",
                home.root().display()
            )
        })?;
        let info: ApiInfo = serde_json::from_slice(&bytes)
            .wrap_err_with(|| format!("{} is corrupt", path.display()))?;
        Ok(Self::new(info.url, home.load_token()?))
    }

    /// A client for `base` (e.g. `http://127.0.0.1:4691`).
    pub fn new(base: String, token: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self { http, base, token }
    }

    async fn decode<T: DeserializeOwned>(&self, resp: reqwest::Response) -> eyre::Result<T> {
        let status = resp.status();
        let body = resp.bytes().await.wrap_err("reading the API response")?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            bail!("the node answered {status}: {msg}");
        }
        serde_json::from_slice(&body).wrap_err("the node's answer is not the expected JSON")
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> eyre::Result<T> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .wrap_err_with(|| format!("cannot reach the node at {}", self.base))?;
        self.decode(resp).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> eyre::Result<T> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .wrap_err_with(|| format!("cannot reach the node at {}", self.base))?;
        self.decode(resp).await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> eyre::Result<Status> {
        self.get("/v1/status").await
    }
    /// `GET /v1/peers`.
    pub async fn peers(&self) -> eyre::Result<Vec<PeerInfo>> {
        self.get("/v1/peers").await
    }
    /// `GET /v1/notes`.
    pub async fn notes(&self) -> eyre::Result<Vec<ReceivedNote>> {
        self.get("/v1/notes").await
    }
    /// `POST /v1/notes`.
    pub async fn publish_note(&self, text: &str) -> eyre::Result<Published> {
        self.post(
            "/v1/notes",
            &PublishNote {
                text: text.to_string(),
            },
        )
        .await
    }
}
