//! Control API routes of the consensus engine: submit, inspect, verify tasks.

use std::time::Duration;

use alloy_sol_types::private::{Address, B256, Bytes as AbiBytes, U256};
use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hal9_api::{SubmitTask, Submitted, TaskQuery, TaskRecord, VerifyReport, routes};
use hal9_consensus::{TaskId, keccak256};

use crate::{
    api::{ApiError, ApiState},
    engine::{
        EngineError, EngineHandle,
        cid::RawCid,
        spec::{self, TaskMessage, TaskSpec},
    },
};

/// Default fuel of a task when the submitter names none: 1 G units, about a
/// second of work; a spec may ask for up to [`spec::MAX_FUEL`].
pub const DEFAULT_FUEL: u64 = 1_000_000_000;
/// Largest `POST /v1/tasks` body: the hex of the largest input by CID, plus room.
const MAX_SUBMIT_BODY: usize = 2 * spec::MAX_INPUT_BYTES + 64 * 1024;
/// Longest `wait_ms` a request may ask for.
const MAX_WAIT: Duration = Duration::from_secs(300);

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = match e {
            EngineError::Spec(_) => StatusCode::BAD_REQUEST,
            EngineError::UnknownTask(_) => StatusCode::NOT_FOUND,
            EngineError::NoVerdict(_) => StatusCode::CONFLICT,
            EngineError::Certificate(_) => StatusCode::UNPROCESSABLE_ENTITY,
            EngineError::Network(_) | EngineError::Output { .. } => StatusCode::BAD_GATEWAY,
            EngineError::Stopped | EngineError::Full { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(code, e.to_string())
    }
}

/// Task routes (merged into the authenticated control API).
pub fn router() -> Router<ApiState> {
    Router::new()
        .route(
            routes::TASKS,
            post(submit)
                .get(list)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_SUBMIT_BODY)),
        )
        .route(routes::TASK, get(status))
        .route(routes::TASK_RESULT, get(result))
        .route(routes::TASK_VERIFY, get(verify))
        .route(routes::REPUTATION, get(reputation))
}

fn engine(s: &ApiState) -> Result<&EngineHandle, ApiError> {
    s.engine.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node runs without the consensus engine".into(),
        )
    })
}

fn parse_id(id: &str) -> Result<TaskId, ApiError> {
    let bytes = hex::decode(id.trim_start_matches("0x"))
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("expected a task id of 64 hex digits, found {id:?}"),
            )
        })?;
    Ok(TaskId(bytes))
}

fn bad(msg: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg)
}

/// Builds the task message for a submission with an inline input (at most
/// [`spec::MAX_INLINE_INPUT`] bytes).
pub fn build_task(req: &SubmitTask) -> Result<TaskMessage, ApiError> {
    let input = hex::decode(&req.input_hex).map_err(|e| bad(format!("input_hex: {e}")))?;
    build_task_with(req, &input, None, Address::ZERO, 0)
}

/// Builds the task message of a submission; an input above
/// [`spec::MAX_INLINE_INPUT`], or any input when `by_cid` (chain mode), is
/// first added to this node's content store (pinned for the result
/// retention period and provided to the network) and named by CID.
/// `submitter` and `deadline` are set in chain mode.
pub async fn prepare_task(
    content: &hal9_p2p::Content,
    req: &SubmitTask,
    submitter: Address,
    deadline: u64,
    by_cid: bool,
) -> Result<TaskMessage, ApiError> {
    let input = hex::decode(&req.input_hex).map_err(|e| bad(format!("input_hex: {e}")))?;
    if input.len() <= spec::MAX_INLINE_INPUT && !by_cid {
        return build_task_with(req, &input, None, submitter, deadline);
    }
    if input.len() > spec::MAX_INPUT_BYTES {
        return Err(bad(format!(
            "input of {} bytes exceeds the network maximum of {} bytes",
            input.len(),
            spec::MAX_INPUT_BYTES
        )));
    }
    let cid = content.add_result(input.clone()).await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("cannot store the input: {e}"),
        )
    })?;
    let cid = RawCid::from_bytes(&cid.to_bytes()).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the content layer returned an unexpected CID: {e}"),
        )
    })?;
    tracing::info!(target: "hal9::engine", input = %cid, bytes = input.len(), "input stored; the task names it by CID");
    build_task_with(req, &input, Some(cid), submitter, deadline)
}

fn build_task_with(
    req: &SubmitTask,
    input: &[u8],
    input_cid: Option<RawCid>,
    submitter: Address,
    deadline: u64,
) -> Result<TaskMessage, ApiError> {
    let program: RawCid = req
        .program
        .parse()
        .map_err(|e| bad(format!("program: {e}")))?;
    let nonce = req.nonce.unwrap_or_else(rand::random);
    let spec = TaskSpec {
        programCid: AbiBytes::from(program.to_bytes()),
        inputHash: B256::from(keccak256(&[input])),
        inputCid: input_cid
            .map(|c| AbiBytes::from(c.to_bytes()))
            .unwrap_or_default(),
        replicas: req.replicas,
        fuelLimit: req.fuel.unwrap_or(DEFAULT_FUEL),
        capabilities: 0,
        // Standalone mode: the submitter is authenticated by the gossip
        // signature of the node it submitted through; chain mode sets the
        // paying address here.
        submitter,
        nonce: U256::from(nonce),
        deadline,
    };
    // A small input named by CID (chain mode) travels inline too: members
    // that get the gossip skip the fetch, the others fetch by CID.
    let inline = if input.len() > spec::MAX_INLINE_INPUT {
        Vec::new()
    } else {
        input.to_vec()
    };
    TaskMessage::new(spec, inline).map_err(|e| bad(e.to_string()))
}

async fn submit(
    State(s): State<ApiState>,
    Json(req): Json<SubmitTask>,
) -> Result<Json<Submitted>, ApiError> {
    let engine = engine(&s)?;
    let Some(link) = s.chain.clone() else {
        let msg = prepare_task(&s.net.content(), &req, Address::ZERO, 0, false).await?;
        let id = engine.submit(msg).await?;
        return Ok(Json(Submitted {
            id: hex::encode(id.0),
            tx: None,
            fee: None,
            committee: Vec::new(),
            draw_block: None,
        }));
    };
    // Chain mode: the input, whatever its size, is added and provided on
    // IPFS before the fee is escrowed, and the spec names it by CID, so
    // every member can start from the `TaskPosted` event alone: the task's
    // gossip only tells members early, and losing it (or failing to
    // publish it) loses nothing once the fee is escrowed.
    let chain_err = |e: String| ApiError::new(StatusCode::BAD_GATEWAY, e);
    let params = link
        .client
        .params()
        .await
        .map_err(|e| chain_err(e.to_string()))?;
    let fee = match &req.fee {
        Some(f) => f.parse::<U256>().map_err(|e| {
            bad(format!(
                "fee: expected base units as a decimal integer: {e}"
            ))
        })?,
        None => params.minFee,
    };
    if fee < params.minFee {
        return Err(bad(format!(
            "fee {fee} is below the market's minimum fee {}",
            params.minFee
        )));
    }
    let now = link
        .chain_time()
        .await
        .map_err(|e| chain_err(format!("{e:#}")))?;
    let deadline = now + params.maxTaskDuration.min(3_600);
    let msg = prepare_task(&s.net.content(), &req, link.address(), deadline, true).await?;
    let spec = msg.spec.clone();
    let posted = {
        let _guard = link.send_lock.lock().await;
        link.client
            .post_task(&spec, fee)
            .await
            .map_err(|e| chain_err(e.to_string()))?
    };
    let id = engine.submit(msg).await?;
    Ok(Json(Submitted {
        id: hex::encode(id.0),
        tx: posted.block.map(|b| format!("block {b}")),
        fee: Some(posted.fee.to_string()),
        committee: Vec::new(),
        draw_block: Some(posted.draw_block),
    }))
}

async fn list(State(s): State<ApiState>) -> Result<Json<Vec<TaskRecord>>, ApiError> {
    let mut all = engine(&s)?.list().await?;
    for r in &mut all {
        // Listings stay small: no spec, input or output bodies.
        r.spec.clear();
        r.input.clear();
        r.own_output = None;
    }
    Ok(Json(all))
}

async fn status(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<TaskQuery>,
) -> Result<Json<TaskRecord>, ApiError> {
    let id = parse_id(&id)?;
    let e = engine(&s)?;
    let rec = match q.wait_ms {
        Some(ms) => e.wait(id, Duration::from_millis(ms).min(MAX_WAIT)).await?,
        None => e.get(id).await?,
    };
    rec.map(Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown task {}", hex::encode(id.0)),
        )
    })
}

async fn result(State(s): State<ApiState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let bytes = engine(&s)?.output(id).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn verify(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<VerifyReport>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(engine(&s)?.verify(id).await?))
}

async fn reputation(
    State(s): State<ApiState>,
) -> Result<Json<Vec<hal9_api::ReputationEntry>>, ApiError> {
    Ok(Json(engine(&s)?.reputation().await?))
}
