//! Control API routes of the content layer (IPFS objects, programs, pins).
//!
//! - `POST /v1/content?pin=true|false` (raw body) adds an object.
//! - `GET /v1/content/{cid}?timeout_ms=N` fetches and verifies an object.
//! - `GET /v1/content` lists pins and store figures.
//! - `POST|DELETE /v1/content/{cid}/pin` pins or unpins.
//! - `POST /v1/content/gc` runs one garbage-collection pass.
//! - `POST /v1/programs` (raw WASM body) adds and pins a program module.

use std::time::Duration;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hal9_api::{AddQuery, Added, ContentListing, FetchQuery, GcReport, PinEntry, routes};
use hal9_p2p::{ContentError, Retention, content::parse_cid};
use sha2::{Digest, Sha256};

use crate::api::{ApiError, ApiState, content_stats, gc_report};

/// Default wait of a fetch through the API.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait a caller may ask for.
const MAX_FETCH_TIMEOUT: Duration = Duration::from_secs(600);
/// Largest program module accepted by `POST /v1/programs`.
pub const MAX_PROGRAM_BYTES: usize = 64 << 20;
/// The WASM binary magic and version 1.
const WASM_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

impl From<ContentError> for ApiError {
    fn from(e: ContentError) -> Self {
        let code = match &e {
            ContentError::NotFound { .. } => StatusCode::NOT_FOUND,
            ContentError::Invalid { .. } => StatusCode::BAD_GATEWAY,
            ContentError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ContentError::BadCid { .. } => StatusCode::BAD_REQUEST,
            ContentError::NotPinned(_) => StatusCode::NOT_FOUND,
            ContentError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            ContentError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The content routes; merge them into the authenticated control API.
pub fn routes(max_object_bytes: u64) -> Router<ApiState> {
    let limit = usize::try_from(max_object_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route(routes::CONTENT, get(list).post(add))
        .route(routes::CONTENT_GC, post(gc))
        .route(routes::CONTENT_OBJECT, get(fetch))
        .route(routes::CONTENT_PIN, post(pin).delete(unpin))
        .route(routes::PROGRAMS, post(publish_program))
        .layer(DefaultBodyLimit::max(limit.max(MAX_PROGRAM_BYTES)))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

async fn add(
    State(s): State<ApiState>,
    Query(q): Query<AddQuery>,
    body: Bytes,
) -> Result<Json<Added>, ApiError> {
    let pinned = q.pin.unwrap_or(true);
    let retention = if pinned {
        Retention::Pinned
    } else {
        Retention::Unpinned
    };
    let sha256 = sha256_hex(&body);
    let bytes = body.len() as u64;
    let cid = s.net.content().add(body, retention).await?;
    Ok(Json(Added {
        cid: cid.to_string(),
        bytes,
        pinned,
        sha256,
    }))
}

async fn publish_program(State(s): State<ApiState>, body: Bytes) -> Result<Json<Added>, ApiError> {
    if body.len() > MAX_PROGRAM_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "expected a module of at most {MAX_PROGRAM_BYTES} bytes, found {}",
                body.len()
            ),
        ));
    }
    if !body.starts_with(&WASM_HEADER) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "expected a WASM binary module (\\0asm, version 1), found other bytes".into(),
        ));
    }
    let sha256 = sha256_hex(&body);
    let bytes = body.len() as u64;
    let cid = s.net.content().add(body, Retention::Pinned).await?;
    tracing::info!(target: "hal9::content", %cid, bytes, %sha256, "program published");
    Ok(Json(Added {
        cid: cid.to_string(),
        bytes,
        pinned: true,
        sha256,
    }))
}

async fn fetch(
    State(s): State<ApiState>,
    Path(cid): Path<String>,
    Query(q): Query<FetchQuery>,
) -> Result<Response, ApiError> {
    let cid = parse_cid(&cid)?;
    let timeout = q
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_FETCH_TIMEOUT)
        .min(MAX_FETCH_TIMEOUT);
    let data = s.net.content().get(&cid, timeout).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response())
}

async fn list(State(s): State<ApiState>) -> Result<Json<ContentListing>, ApiError> {
    let content = s.net.content();
    let stats = content_stats(content.stats().await?);
    let pins = content
        .pins()
        .await?
        .into_iter()
        .map(|(cid, expires_at)| PinEntry {
            cid: cid.to_string(),
            expires_at,
        })
        .collect();
    Ok(Json(ContentListing { stats, pins }))
}

async fn pin(
    State(s): State<ApiState>,
    Path(cid): Path<String>,
    Query(q): Query<FetchQuery>,
) -> Result<Json<PinEntry>, ApiError> {
    let cid = parse_cid(&cid)?;
    let timeout = q
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_FETCH_TIMEOUT)
        .min(MAX_FETCH_TIMEOUT);
    s.net.content().pin(&cid, timeout).await?;
    Ok(Json(PinEntry {
        cid: cid.to_string(),
        expires_at: None,
    }))
}

async fn unpin(
    State(s): State<ApiState>,
    Path(cid): Path<String>,
) -> Result<Json<PinEntry>, ApiError> {
    let cid = parse_cid(&cid)?;
    s.net.content().unpin(&cid).await?;
    Ok(Json(PinEntry {
        cid: cid.to_string(),
        expires_at: None,
    }))
}

async fn gc(State(s): State<ApiState>) -> Result<Json<GcReport>, ApiError> {
    Ok(Json(gc_report(s.net.content().gc().await?)))
}
