//! The client against real HTTP servers on 127.0.0.1: an axum server
//! answering like a node (and unlike one), and a raw TCP server for what
//! axum will not send.

use std::{net::SocketAddr, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, Query},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::{
    ApiClient, Error, ErrorBody, FetchQuery, Published, TaskQuery, TaskRecord, TaskStatus, routes,
};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn record(id: &str, status: TaskStatus) -> TaskRecord {
    TaskRecord {
        id: id.to_string(),
        spec: String::new(),
        input: String::new(),
        program: "bafkprogram".into(),
        replicas: 3,
        status,
        committee: vec!["p1".into(), "p2".into(), "p3".into()],
        escalation_committee: vec![],
        own_output: None,
        verdict: None,
        nondeterministic: false,
        error: None,
        seen_at_ms: 1,
        outcomes: vec![],
        chain: None,
    }
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(ErrorBody::new(msg))).into_response()
}

fn authorized(h: &HeaderMap) -> bool {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

/// A node-like server: checks the token like the node, knows task `aa`
/// (pending; `?wait_ms` turns it verified), and misbehaves on purpose on a
/// few routes.
async fn node_like() -> SocketAddr {
    let app = Router::new()
        .route(
            routes::STATUS,
            get(|h: HeaderMap| async move {
                if !authorized(&h) {
                    return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
                }
                // Not a Status: the decoder must say so.
                Json(serde_json::json!({ "peer_id": 5 })).into_response()
            }),
        )
        .route(
            routes::TASK,
            get(
                |h: HeaderMap, Path(id): Path<String>, Query(q): Query<TaskQuery>| async move {
                    if !authorized(&h) {
                        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
                    }
                    if id != "aa" {
                        return error(StatusCode::NOT_FOUND, &format!("unknown task {id}"));
                    }
                    let status = match q.wait_ms {
                        Some(_) => TaskStatus::Verified,
                        None => TaskStatus::Pending,
                    };
                    Json(record(&id, status)).into_response()
                },
            ),
        )
        .route(
            routes::TASK_RESULT,
            get(|Path(id): Path<String>| async move {
                match id.as_str() {
                    "aa" => (
                        [(header::CONTENT_TYPE, "application/octet-stream")],
                        vec![0u8, 1, 2, 255],
                    )
                        .into_response(),
                    "big" => vec![7u8; 4096].into_response(),
                    _ => error(StatusCode::CONFLICT, "task has no output yet"),
                }
            }),
        )
        .route(
            routes::TASKS,
            get(|| async { error(StatusCode::INTERNAL_SERVER_ERROR, "store error") }),
        )
        .route(
            routes::PEERS,
            get(|| async {
                (
                    StatusCode::BAD_GATEWAY,
                    "<html><body>bad gateway</body></html>",
                )
            }),
        )
        .route(
            routes::NOTES,
            get(|| async { "[{\"id\": \"ab\", truncated" }).post(
                |Json(n): Json<crate::PublishNote>| async move {
                    Json(Published::Sent(format!("id-of-{}", n.text)))
                },
            ),
        )
        .route(
            routes::CONTENT_OBJECT,
            get(
                |Path(cid): Path<String>, Query(q): Query<FetchQuery>| async move {
                    // Echo what the node would read from the query.
                    format!("{cid}:{:?}", q.timeout_ms).into_response()
                },
            ),
        )
        .route(
            routes::CONTENT_GC,
            post(|| async { Json(crate::GcReport::default()) }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn client(addr: SocketAddr) -> ApiClient {
    ApiClient::new(format!("http://{addr}/"), TOKEN.into())
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_with_the_nodes_message() {
    let addr = node_like().await;
    let c = ApiClient::new(format!("http://{addr}"), "wrong".into());
    let e = c.task("aa", None).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert_eq!(e.status(), Some(reqwest::StatusCode::UNAUTHORIZED));
    assert_eq!(e.body().unwrap().error, "missing or wrong bearer token");
    assert_eq!(
        e.to_string(),
        "the node answered 401 Unauthorized: missing or wrong bearer token"
    );
}

#[tokio::test]
async fn an_unknown_task_is_not_found_and_a_known_one_decodes() {
    let addr = node_like().await;
    let c = client(addr);
    let e = c.task("bb", None).await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(e.body().unwrap().error, "unknown task bb");
    assert!(e.to_string().contains("404 Not Found"), "{e}");

    let pending = c.task("aa", None).await.unwrap();
    assert_eq!(pending.status, TaskStatus::Pending);
    assert!(!pending.is_final());
    // The wait reaches the server as `?wait_ms=`.
    let verified = c.task("aa", Some(10)).await.unwrap();
    assert_eq!(verified.status, TaskStatus::Verified);
    assert!(verified.is_final());
}

#[tokio::test]
async fn other_error_statuses_keep_status_and_message() {
    let addr = node_like().await;
    let c = client(addr);
    let e = c.tasks().await.unwrap_err();
    match &e {
        Error::Status { status, body } => {
            assert_eq!(*status, reqwest::StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(body.error, "store error");
        }
        other => panic!("expected a status error, found {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "the node answered 500 Internal Server Error: store error"
    );
    let e = c.task_result("cc").await.unwrap_err();
    assert_eq!(e.status(), Some(reqwest::StatusCode::CONFLICT));
    // A proxy's page instead of the node's JSON: the text is the message.
    let e = c.peers().await.unwrap_err();
    assert_eq!(e.status(), Some(reqwest::StatusCode::BAD_GATEWAY));
    assert_eq!(
        e.body().unwrap().error,
        "<html><body>bad gateway</body></html>"
    );
}

#[tokio::test]
async fn garbage_on_success_is_a_decode_error_naming_the_route() {
    let addr = node_like().await;
    let c = client(addr);
    let e = c.notes().await.unwrap_err();
    match &e {
        Error::Decode { route, .. } => assert_eq!(route, "GET /v1/notes"),
        other => panic!("expected a decode error, found {other:?}"),
    }
    // Valid JSON of the wrong shape is refused too.
    let e = c.status().await.unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e:?}");
    assert!(e.to_string().contains("GET /v1/status"), "{e}");
}

#[tokio::test]
async fn bodies_and_queries_travel_as_the_server_reads_them() {
    let addr = node_like().await;
    let c = client(addr);
    assert_eq!(c.task_result("aa").await.unwrap(), vec![0u8, 1, 2, 255]);
    assert_eq!(
        c.publish_note("hello").await.unwrap(),
        Published::Sent("id-of-hello".into())
    );
    let echoed = c
        .get_content("bafkcid", Duration::from_millis(1500))
        .await
        .unwrap();
    assert_eq!(String::from_utf8(echoed).unwrap(), "bafkcid:Some(1500)");
    assert_eq!(c.content_gc().await.unwrap(), crate::GcReport::default());
}

#[tokio::test]
async fn an_answer_above_the_limit_is_refused() {
    let addr = node_like().await;
    let c = client(addr).with_max_body(1024);
    let e = c.task_result("big").await.unwrap_err();
    match e {
        Error::TooLarge { limit, found, .. } => {
            assert_eq!(limit, 1024);
            assert_eq!(found, 4096);
        }
        other => panic!("expected too large, found {other:?}"),
    }
    // At the limit it passes.
    let c = client(addr).with_max_body(4096);
    assert_eq!(c.task_result("big").await.unwrap().len(), 4096);
}

/// A raw HTTP/1.1 server on loopback that answers every connection with
/// `response` and closes.
async fn raw_server(response: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(&response).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_chunked_answer_without_length_is_cut_at_the_limit() {
    // No Content-Length: the limit must hold while reading.
    let mut chunked =
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for fill in [b'a', b'b'] {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend_from_slice(&[fill; 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let addr = raw_server(chunked).await;
    let e = client(addr)
        .with_max_body(1500)
        .task_result("aa")
        .await
        .unwrap_err();
    match e {
        Error::TooLarge { limit, found, .. } => {
            assert_eq!(limit, 1500);
            assert!(found > 1500 && found <= 2048, "{found}");
        }
        other => panic!("expected too large, found {other:?}"),
    }
    // The same answer within the limit is read whole.
    let body = client(addr).task_result("aa").await.unwrap();
    assert_eq!(body.len(), 2048);
}

#[tokio::test]
async fn a_content_length_above_the_limit_is_refused_before_reading() {
    const HUGE: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000000\r\ncontent-type: application/json\r\n\r\n[]";
    let addr = raw_server(HUGE.to_vec()).await;
    let e = client(addr).tasks().await.unwrap_err();
    match e {
        Error::TooLarge { found, .. } => assert_eq!(found, 1_000_000_000_000),
        other => panic!("expected too large, found {other:?}"),
    }
}

#[tokio::test]
async fn a_connection_cut_mid_answer_is_a_transport_error() {
    const CUT: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n[1,2";
    let addr = raw_server(CUT.to_vec()).await;
    let e = client(addr).tasks().await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
}

#[tokio::test]
async fn nobody_listening_is_a_transport_error_naming_the_node() {
    // Bind then drop: the port is closed.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let e = client(addr).tasks().await.unwrap_err();
    match &e {
        Error::Transport { url, .. } => assert_eq!(url, &format!("http://{addr}")),
        other => panic!("expected transport, found {other:?}"),
    }
    assert!(e.to_string().starts_with("cannot reach the node at"), "{e}");
    assert_eq!(e.status(), None);
}

#[tokio::test]
async fn a_path_parameter_cannot_leave_its_route() {
    // The server would answer; the client must not even ask.
    let addr = node_like().await;
    let c = client(addr);
    for bad in [
        "../status",
        "aa/result",
        "aa?wait_ms=1",
        "%2e%2e",
        "..",
        "",
        "a a",
    ] {
        let e = c.task(bad, None).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidArgument {
                    what: "task id",
                    ..
                }
            ),
            "{bad:?}: {e:?}"
        );
        let e = c.unpin_content(bad).await.unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument { what: "CID", .. }),
            "{bad:?}: {e:?}"
        );
    }
}

#[test]
fn debug_output_never_shows_the_token() {
    let c = ApiClient::new("http://127.0.0.1:1".into(), TOKEN.into());
    let shown = format!("{c:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
}
