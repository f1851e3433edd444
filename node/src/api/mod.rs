//! The local control API (HTTP+JSON, bearer token) and the metrics/health endpoint.
//!
//! The wire types, route paths and error body are `hal9-api`'s; this module
//! serves them and maps the node's own types onto them at the boundary.

pub mod content;
pub mod tasks;

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
use hal9_api::{ErrorBody, PeerInfo, PublishNote, Published, ReceivedNote, Status, routes};
use hal9_p2p::NetworkHandle;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;

use crate::{notes, store::Store};

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

/// An API error: a status and a message that never leaks internals beyond
/// it, sent as [`ErrorBody`].
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
        (self.0, Json(ErrorBody::new(self.1))).into_response()
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
        .route(routes::STATUS, get(status))
        .route(routes::PEERS, get(peers))
        .route(routes::NOTES, get(list_notes).post(publish_note))
        .merge(crate::api::tasks::router())
        .merge(crate::api::content::routes(
            state.net.content().config().max_object_bytes,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Routes of the metrics endpoint.
pub fn metrics_router(state: ApiState) -> Router {
    Router::new()
        .route(routes::METRICS, get(metrics))
        .route(routes::HEALTHZ, get(healthz))
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
        content: s.net.content().stats().await.ok().map(content_stats),
    }))
}

async fn peers(State(s): State<ApiState>) -> Result<Json<Vec<PeerInfo>>, ApiError> {
    Ok(Json(
        s.net.peers().await?.into_iter().map(peer_info).collect(),
    ))
}

async fn list_notes(State(s): State<ApiState>) -> Json<Vec<ReceivedNote>> {
    Json(s.notes.lock().iter().cloned().collect())
}

async fn publish_note(
    State(s): State<ApiState>,
    Json(body): Json<PublishNote>,
) -> Result<Json<Published>, ApiError> {
    let data = notes::encode(&body.text);
    Ok(Json(published(s.net.publish(notes::TOPIC, data).await?)))
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

/// A peer of the network layer as the API shows it.
pub fn peer_info(p: hal9_p2p::PeerInfo) -> PeerInfo {
    let hal9_p2p::PeerInfo {
        peer_id,
        addresses,
        score,
        agent,
        rtt_ms,
        topics,
    } = p;
    PeerInfo {
        peer_id,
        addresses,
        score,
        agent,
        rtt_ms,
        topics,
    }
}

/// The outcome of a gossip publish as the API shows it.
pub fn published(p: hal9_p2p::Published) -> Published {
    match p {
        hal9_p2p::Published::Sent(id) => Published::Sent(id),
        hal9_p2p::Published::Queued => Published::Queued,
    }
}

/// Content store figures as the API shows them.
pub fn content_stats(s: hal9_p2p::ContentStats) -> hal9_api::ContentStats {
    let hal9_p2p::ContentStats {
        pins,
        repo_bytes,
        blocks,
        quota_bytes,
    } = s;
    hal9_api::ContentStats {
        pins,
        repo_bytes,
        blocks,
        quota_bytes,
    }
}

/// A garbage-collection report as the API shows it.
pub fn gc_report(r: hal9_p2p::GcReport) -> hal9_api::GcReport {
    let hal9_p2p::GcReport {
        expired_pins,
        removed_blocks,
        repo_bytes,
    } = r;
    hal9_api::GcReport {
        expired_pins,
        removed_blocks,
        repo_bytes,
    }
}
