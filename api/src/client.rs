//! [`ApiClient`]: the typed HTTP client of the control API.

use std::{fmt, time::Duration};

use reqwest::{Method, RequestBuilder, Response, header};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    AddQuery, Added, ApiInfo, ContentListing, Error, ErrorBody, FetchQuery, GcReport, PeerInfo,
    PinEntry, PublishNote, Published, ReceivedNote, ReputationEntry, Status, SubmitTask, Submitted,
    TaskQuery, TaskRecord, VerifyReport, routes,
};

/// Timeout of one request unless the call says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read unless [`ApiClient::with_max_body`] says otherwise:
/// the node's default largest content object (256 MiB) plus room.
pub const DEFAULT_MAX_BODY: u64 = (256 << 20) + (1 << 20);
/// Extra time a waiting call (task wait, content fetch) gets beyond the wait
/// it asks the node for.
const GRACE: Duration = Duration::from_secs(30);

/// A client of one node's control API (bearer token).
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
    max_body: u64,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for `base` (e.g. `http://127.0.0.1:4691`) with `token`.
    pub fn new(base: String, token: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(DEFAULT_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// A client for the node that wrote `info` (its `api.json`).
    pub fn from_info(info: &ApiInfo, token: String) -> Self {
        Self::new(info.url.clone(), token)
    }

    /// The same client reading answers of at most `bytes` bytes.
    pub fn with_max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }

    /// Base URL of the node's API.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// A request that lets the node look for an object for up to `timeout`
    /// (and waits that long plus a grace period for the answer).
    fn fetching(&self, method: Method, path: &str, timeout: Duration) -> RequestBuilder {
        let timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self.request(method, path)
            .query(&FetchQuery { timeout_ms })
            .timeout(timeout.saturating_add(GRACE))
    }

    /// Sends `req` and reads the whole answer (bounded), turning an error
    /// status into the typed error.
    async fn send(&self, route: String, req: RequestBuilder) -> Result<Vec<u8>, Error> {
        let resp = req.send().await.map_err(|source| Error::Transport {
            url: self.base.clone(),
            source,
        })?;
        let status = resp.status();
        let body = self.read_body(&route, resp).await?;
        if !status.is_success() {
            return Err(Error::from_status(status, ErrorBody::from_bytes(&body)));
        }
        Ok(body)
    }

    async fn read_body(&self, route: &str, mut resp: Response) -> Result<Vec<u8>, Error> {
        let too_large = |found: u64| Error::TooLarge {
            route: route.to_string(),
            limit: self.max_body,
            found,
        };
        if let Some(n) = resp.content_length()
            && n > self.max_body
        {
            return Err(too_large(n));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|source| Error::Transport {
            url: self.base.clone(),
            source,
        })? {
            let found = (body.len() + chunk.len()) as u64;
            if found > self.max_body {
                return Err(too_large(found));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        route: String,
        req: RequestBuilder,
    ) -> Result<T, Error> {
        let body = self.send(route.clone(), req).await?;
        serde_json::from_slice(&body).map_err(|source| Error::Decode { route, source })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.json(format!("GET {path}"), self.request(Method::GET, path))
            .await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.json(
            format!("POST {path}"),
            self.request(Method::POST, path).json(body),
        )
        .await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<Status, Error> {
        self.get(routes::STATUS).await
    }

    /// `GET /v1/peers`.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.get(routes::PEERS).await
    }

    /// `GET /v1/notes`.
    pub async fn notes(&self) -> Result<Vec<ReceivedNote>, Error> {
        self.get(routes::NOTES).await
    }

    /// `POST /v1/notes`.
    pub async fn publish_note(&self, text: &str) -> Result<Published, Error> {
        let body = PublishNote {
            text: text.to_string(),
        };
        self.post(routes::NOTES, &body).await
    }

    /// `POST /v1/tasks`.
    pub async fn submit_task(&self, req: &SubmitTask) -> Result<Submitted, Error> {
        self.post(routes::TASKS, req).await
    }

    /// `GET /v1/tasks/{id}`, waiting up to `wait_ms` for the task to end.
    pub async fn task(&self, id: &str, wait_ms: Option<u64>) -> Result<TaskRecord, Error> {
        let path = routes::task(id)?;
        let mut req = self
            .request(Method::GET, &path)
            .query(&TaskQuery { wait_ms });
        if let Some(ms) = wait_ms {
            req = req.timeout(Duration::from_millis(ms).saturating_add(GRACE));
        }
        self.json(format!("GET {path}"), req).await
    }

    /// `GET /v1/tasks`: every task the node knows, without spec, input or
    /// output bodies.
    pub async fn tasks(&self) -> Result<Vec<TaskRecord>, Error> {
        self.get(routes::TASKS).await
    }

    /// `GET /v1/tasks/{id}/verify`.
    pub async fn verify_task(&self, id: &str) -> Result<VerifyReport, Error> {
        self.get(&routes::task_verify(id)?).await
    }

    /// `GET /v1/tasks/{id}/result`: the verified output bytes.
    pub async fn task_result(&self, id: &str) -> Result<Vec<u8>, Error> {
        let path = routes::task_result(id)?;
        self.send(format!("GET {path}"), self.request(Method::GET, &path))
            .await
    }

    /// `GET /v1/reputation`.
    pub async fn reputation(&self) -> Result<Vec<ReputationEntry>, Error> {
        self.get(routes::REPUTATION).await
    }

    /// `POST /v1/content`: adds `data`, pinned or not.
    pub async fn add_content(&self, data: Vec<u8>, pin: bool) -> Result<Added, Error> {
        let req = self
            .request(Method::POST, routes::CONTENT)
            .query(&AddQuery { pin: Some(pin) })
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(data);
        self.json(format!("POST {}", routes::CONTENT), req).await
    }

    /// `POST /v1/programs`: publishes a WASM module (pinned).
    pub async fn publish_program(&self, wasm: Vec<u8>) -> Result<Added, Error> {
        let req = self
            .request(Method::POST, routes::PROGRAMS)
            .header(header::CONTENT_TYPE, "application/wasm")
            .body(wasm);
        self.json(format!("POST {}", routes::PROGRAMS), req).await
    }

    /// `GET /v1/content/{cid}`: the verified bytes of an object, looked for
    /// on the network for up to `timeout`.
    pub async fn get_content(&self, cid: &str, timeout: Duration) -> Result<Vec<u8>, Error> {
        let path = routes::content_object(cid)?;
        let req = self.fetching(Method::GET, &path, timeout);
        self.send(format!("GET {path}"), req).await
    }

    /// `GET /v1/content`: pins and store figures.
    pub async fn content_listing(&self) -> Result<ContentListing, Error> {
        self.get(routes::CONTENT).await
    }

    /// `POST /v1/content/gc`: one garbage-collection pass.
    pub async fn content_gc(&self) -> Result<GcReport, Error> {
        let req = self.request(Method::POST, routes::CONTENT_GC);
        self.json(format!("POST {}", routes::CONTENT_GC), req).await
    }

    /// `POST /v1/content/{cid}/pin`: fetches (for up to `timeout`) and pins.
    pub async fn pin_content(&self, cid: &str, timeout: Duration) -> Result<PinEntry, Error> {
        let path = routes::content_pin(cid)?;
        let req = self.fetching(Method::POST, &path, timeout);
        self.json(format!("POST {path}"), req).await
    }

    /// `DELETE /v1/content/{cid}/pin`.
    pub async fn unpin_content(&self, cid: &str) -> Result<PinEntry, Error> {
        let path = routes::content_pin(cid)?;
        self.json(
            format!("DELETE {path}"),
            self.request(Method::DELETE, &path),
        )
        .await
    }
}
