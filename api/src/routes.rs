//! The paths of the control API, in one place.
//!
//! The `const`s are the route patterns the node's router registers (axum
//! syntax, `{name}` for a path parameter); the functions build the concrete
//! path a client requests. Path parameters (task ids, CIDs) are checked by
//! [`segment`] so a caller-supplied value can never name another route.

use crate::Error;

/// `GET`: node status ([`crate::Status`]).
pub const STATUS: &str = "/v1/status";
/// `GET`: connected peers ([`crate::PeerInfo`]).
pub const PEERS: &str = "/v1/peers";
/// `GET`: received notes; `POST`: gossip a note.
pub const NOTES: &str = "/v1/notes";
/// `POST`: submit a task; `GET`: list the tasks the node knows.
pub const TASKS: &str = "/v1/tasks";
/// `GET`: one task ([`crate::TaskQuery`] to wait for its end).
pub const TASK: &str = "/v1/tasks/{id}";
/// `GET`: a task's verified output bytes.
pub const TASK_RESULT: &str = "/v1/tasks/{id}/result";
/// `GET`: a task's certificate, checked by the node.
pub const TASK_VERIFY: &str = "/v1/tasks/{id}/verify";
/// `GET`: the reputation table.
pub const REPUTATION: &str = "/v1/reputation";
/// `POST` (raw body, [`crate::AddQuery`]): add an object; `GET`: pins and figures.
pub const CONTENT: &str = "/v1/content";
/// `POST`: one garbage-collection pass.
pub const CONTENT_GC: &str = "/v1/content/gc";
/// `GET` ([`crate::FetchQuery`]): an object's verified bytes.
pub const CONTENT_OBJECT: &str = "/v1/content/{cid}";
/// `POST` ([`crate::FetchQuery`]): pin; `DELETE`: unpin.
pub const CONTENT_PIN: &str = "/v1/content/{cid}/pin";
/// `POST` (raw WASM body): add and pin a program module.
pub const PROGRAMS: &str = "/v1/programs";
/// Metrics endpoint (its own listener, no token): Prometheus text.
pub const METRICS: &str = "/metrics";
/// Metrics endpoint: `ok` while the node listens.
pub const HEALTHZ: &str = "/healthz";

/// Longest path parameter accepted (a CID in base32 is about 60 characters).
pub const MAX_SEGMENT: usize = 256;

/// Checks a path parameter: 1 to [`MAX_SEGMENT`] ASCII letters, digits,
/// `-` or `_` (hex ids, `0x` prefixes and multibase CIDs all are). Anything
/// else (`/`, `?`, `%`, `.`, spaces) could leave the route, so it is
/// refused before a request is made. `what` names the value in the error.
pub fn segment<'a>(what: &'static str, value: &'a str) -> Result<&'a str, Error> {
    let ok = !value.is_empty()
        && value.len() <= MAX_SEGMENT
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(value)
    } else {
        Err(Error::InvalidArgument {
            what,
            found: value.chars().take(80).collect(),
        })
    }
}

fn fill(pattern: &str, name: &str, value: &str) -> String {
    pattern.replace(&format!("{{{name}}}"), value)
}

/// `/v1/tasks/{id}`.
pub fn task(id: &str) -> Result<String, Error> {
    Ok(fill(TASK, "id", segment("task id", id)?))
}
/// `/v1/tasks/{id}/result`.
pub fn task_result(id: &str) -> Result<String, Error> {
    Ok(fill(TASK_RESULT, "id", segment("task id", id)?))
}
/// `/v1/tasks/{id}/verify`.
pub fn task_verify(id: &str) -> Result<String, Error> {
    Ok(fill(TASK_VERIFY, "id", segment("task id", id)?))
}
/// `/v1/content/{cid}`.
pub fn content_object(cid: &str) -> Result<String, Error> {
    Ok(fill(CONTENT_OBJECT, "cid", segment("CID", cid)?))
}
/// `/v1/content/{cid}/pin`.
pub fn content_pin(cid: &str) -> Result<String, Error> {
    Ok(fill(CONTENT_PIN, "cid", segment("CID", cid)?))
}
