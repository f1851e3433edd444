//! Client of a running node's control API, used by the CLI, the devnet and tests.

use std::time::Duration;

use eyre::{Context, bail, eyre};
use hal9_p2p::{PeerInfo, Published};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    api::{PublishNote, ReceivedNote, Status},
    api_tasks::{SubmitTask, Submitted},
    engine::{VerifyReport, records::TaskRecord},
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

    /// A request to `path` with the bearer token set.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Base URL of the node's API.
    pub(crate) fn base_url(&self) -> &str {
        &self.base
    }

    /// Decodes a JSON answer, turning error statuses into the node's message.
    pub(crate) async fn decode_json<T: DeserializeOwned>(
        &self,
        resp: reqwest::Response,
    ) -> eyre::Result<T> {
        self.decode(resp).await
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

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> eyre::Result<T> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .wrap_err_with(|| format!("cannot reach the node at {}", self.base))?;
        self.decode(resp).await
    }

    pub(crate) async fn post<B: Serialize, T: DeserializeOwned>(
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

    /// `POST /v1/tasks`.
    pub async fn submit_task(&self, req: &SubmitTask) -> eyre::Result<Submitted> {
        self.post("/v1/tasks", req).await
    }

    /// `GET /v1/tasks/{id}`, waiting up to `wait_ms` for the task to end.
    pub async fn task(&self, id: &str, wait_ms: Option<u64>) -> eyre::Result<TaskRecord> {
        let Some(ms) = wait_ms else {
            return self.get(&format!("/v1/tasks/{id}")).await;
        };
        let resp = self
            .request(
                reqwest::Method::GET,
                &format!("/v1/tasks/{id}?wait_ms={ms}"),
            )
            .timeout(Duration::from_millis(ms) + Duration::from_secs(30))
            .send()
            .await
            .wrap_err_with(|| format!("cannot reach the node at {}", self.base))?;
        self.decode(resp).await
    }

    /// `GET /v1/tasks`.
    pub async fn tasks(&self) -> eyre::Result<Vec<TaskRecord>> {
        self.get("/v1/tasks").await
    }

    /// `GET /v1/tasks/{id}/verify`.
    pub async fn verify_task(&self, id: &str) -> eyre::Result<VerifyReport> {
        self.get(&format!("/v1/tasks/{id}/verify")).await
    }

    /// `GET /v1/reputation`.
    pub async fn reputation(&self) -> eyre::Result<Vec<(String, u32)>> {
        self.get("/v1/reputation").await
    }

    /// `GET /v1/tasks/{id}/result`: the verified output bytes.
    pub async fn task_result(&self, id: &str) -> eyre::Result<Vec<u8>> {
        let resp = self
            .http
            .get(format!("{}/v1/tasks/{id}/result", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .wrap_err_with(|| format!("cannot reach the node at {}", self.base))?;
        if !resp.status().is_success() {
            return self.decode::<Vec<u8>>(resp).await;
        }
        Ok(resp.bytes().await?.to_vec())
    }
}
