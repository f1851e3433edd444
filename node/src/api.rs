//! The local control API (HTTP+JSON, bearer token) and the metrics/health endpoint.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use hal9_p2p::{NetworkHandle, PeerInfo, Published};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::{notes, store::Store};

/// A note received over gossip.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceivedNote {
    /// Gossip message id (hex).
    pub id: String,
    /// Signing peer.
    pub author: Option<String>,
    /// Forwarding peer.
    pub source: String,
    /// Text.
    pub text: String,
    /// Milliseconds since the Unix epoch at reception.
    pub received_at_ms: u64,
}

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    /// Network handle.
    pub net: NetworkHandle,
    /// Node store.
    pub store: Arc<Store>,
    /// Recently received notes, newest last.
    pub notes: Arc<Mutex<VecDeque<ReceivedNote>>>,
    /// Start time.
    pub started: Instant,
    /// Bearer token.
    pub token: Arc<str>,
    /// Metrics registry.
    pub registry: Arc<Registry>,
    /// The consensus engine, when the node runs one.
    pub engine: Option<crate::engine::EngineHandle>,
    /// The settlement chain, in chain mode.
    pub chain: Option<Arc<crate::chain::ChainLink>>,
}

/// Body of `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// This node's peer id.
    pub peer_id: String,
    /// hal9 version.
    pub version: String,
    /// Listen addresses (with /p2p suffix).
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub connected_peers: usize,
    /// Peers remembered in the store.
    pub known_peers: usize,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Store schema version.
    pub store_schema: u32,
    /// Content store: pins and size.
    #[serde(default)]
    pub content: Option<hal9_p2p::ContentStats>,
}

/// Body of `POST /v1/notes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishNote {
    /// Text to gossip.
    pub text: String,
}

/// An API error: a status and a message that never leaks internals beyond it.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    /// An error with a status and a message for the client.
    pub fn new(code: StatusCode, msg: String) -> Self {
        Self(code, msg)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<hal9_p2p::Error> for ApiError {
    fn from(e: hal9_p2p::Error) -> Self {
        let code = match e {
            hal9_p2p::Error::Publish(_) => StatusCode::BAD_REQUEST,
            hal9_p2p::Error::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(target: "hal9::api", error = %e, "store error");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "store error".into())
    }
}

/// Largest request body accepted by the control API.
const MAX_BODY: usize = 2 << 20;

/// Routes of the control API.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/peers", get(peers))
        .route("/v1/notes", get(list_notes).post(publish_note))
        .merge(crate::api_tasks::router())
        .merge(crate::content_api::routes(
            state.net.content().config().max_object_bytes,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Routes of the metrics endpoint.
pub fn metrics_router(state: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn auth(State(s): State<ApiState>, headers: HeaderMap, req: Request, next: Next) -> Response {
    let ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.as_bytes(), s.token.as_bytes()));
    if !ok {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (see api.token in the node home)".into(),
        )
        .into_response();
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn status(State(s): State<ApiState>) -> Result<Json<Status>, ApiError> {
    let peer_id = s.net.local_peer_id();
    let listen_addrs = s
        .net
        .listen_addrs()
        .await?
        .into_iter()
        .map(|a| format!("{a}/p2p/{peer_id}"))
        .collect();
    let connected_peers = s.net.peers().await?.len();
    let store = s.store.clone();
    let (known_peers, store_schema) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::StoreError>((store.peers()?.len(), store.schema_version()?))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(Status {
        peer_id: peer_id.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        listen_addrs,
        connected_peers,
        known_peers,
        uptime_secs: s.started.elapsed().as_secs(),
        store_schema,
        content: s.net.content().stats().await.ok(),
    }))
}

async fn peers(State(s): State<ApiState>) -> Result<Json<Vec<PeerInfo>>, ApiError> {
    Ok(Json(s.net.peers().await?))
}

async fn list_notes(State(s): State<ApiState>) -> Json<Vec<ReceivedNote>> {
    Json(s.notes.lock().iter().cloned().collect())
}

async fn publish_note(
    State(s): State<ApiState>,
    Json(body): Json<PublishNote>,
) -> Result<Json<Published>, ApiError> {
    let data = notes::encode(&body.text);
    Ok(Json(s.net.publish(notes::TOPIC, data).await?))
}

async fn metrics(State(s): State<ApiState>) -> Response {
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &s.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            out,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn healthz(State(s): State<ApiState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), s.net.listen_addrs()).await {
        Ok(Ok(addrs)) if !addrs.is_empty() => (StatusCode::OK, "ok").into_response(),
        Ok(Ok(_)) => (StatusCode::SERVICE_UNAVAILABLE, "not listening").into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "network task not responding",
        )
            .into_response(),
    }
}
