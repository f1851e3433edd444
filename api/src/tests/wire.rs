//! Every wire type against fixed JSON: the JSON the node produced before
//! these types moved to this crate (captured from the old node types), so an
//! accidental change of a name, an order or a default fails here.

use std::fmt::Debug;

use serde::{Serialize, de::DeserializeOwned};

use crate::*;

/// `value` serializes to exactly `json`, and `json` decodes to `value`.
#[track_caller]
fn fixed<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, json: &str) {
    assert_eq!(serde_json::to_string(value).unwrap(), json);
    assert_eq!(&serde_json::from_str::<T>(json).unwrap(), value);
}

fn stats() -> ContentStats {
    ContentStats {
        pins: 1,
        repo_bytes: 2048,
        blocks: 3,
        quota_bytes: 1 << 30,
    }
}

fn chain() -> ChainRecord {
    ChainRecord {
        committee: vec!["0x1".into()],
        escalation: vec!["0x2".into()],
        fee: "10".into(),
        status: "finalized".into(),
        draw_block: Some(5),
        commit_end: Some(6),
        reveal_end: Some(7),
        committed: vec!["0x1".into()],
        equivocations: Vec::new(),
        result: Some("ee".into()),
        attestations: vec![AttestRecord {
            round: 0,
            signer: "0x1".into(),
            result: "ee".into(),
            cid: "01".into(),
            signature: "ss".into(),
            salts: vec!["aa".into()],
        }],
        parent: Some("pp".into()),
        settlement: Some(SettlementRecord {
            burned: "1".into(),
            to_treasury: "2".into(),
            per_member: "3".into(),
            slashed: "4".into(),
            overturned: true,
        }),
        txs: vec![("submitVerdict".into(), "0xh".into())],
        escalation_upheld: Some(false),
        block: Some(9),
    }
}

fn task() -> TaskRecord {
    TaskRecord {
        id: "11".into(),
        spec: "22".into(),
        input: "33".into(),
        program: "bafk".into(),
        replicas: 3,
        status: TaskStatus::AwaitingChain,
        committee: vec!["p1".into()],
        escalation_committee: vec!["p2".into()],
        own_output: Some("44".into()),
        verdict: Some(VerdictRecord {
            round: "primary".into(),
            result: "55".into(),
            output_cid: "bafo".into(),
            attesters: vec!["p1".into()],
            certificate: "66".into(),
            decided_at_ms: 9,
        }),
        nondeterministic: true,
        error: Some("out of fuel".into()),
        seen_at_ms: 8,
        outcomes: vec![("p1".into(), "agreed".into())],
        chain: Some(chain()),
    }
}

#[test]
fn status() {
    fixed(
        &Status {
            peer_id: "12D3KooWA".into(),
            version: "0.1.0".into(),
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWA".into()],
            connected_peers: 2,
            known_peers: 3,
            uptime_secs: 7,
            store_schema: 4,
            content: Some(stats()),
        },
        STATUS,
    );
    fixed(
        &Status {
            peer_id: "p".into(),
            version: "v".into(),
            listen_addrs: vec![],
            connected_peers: 0,
            known_peers: 0,
            uptime_secs: 0,
            store_schema: 1,
            content: None,
        },
        STATUS_NONE,
    );
}

#[test]
fn peers_and_notes() {
    fixed(
        &PeerInfo {
            peer_id: "12D3KooWB".into(),
            addresses: vec!["/ip4/127.0.0.1/tcp/1".into()],
            score: Some(1.5),
            agent: Some("hal9/0.1.0".into()),
            rtt_ms: Some(3),
            topics: vec!["hal9/notes/1".into()],
        },
        PEER,
    );
    fixed(
        &PeerInfo {
            peer_id: "x".into(),
            addresses: vec![],
            score: None,
            agent: None,
            rtt_ms: None,
            topics: vec![],
        },
        PEER_NONE,
    );
    fixed(
        &ReceivedNote {
            id: "ab".into(),
            author: Some("a".into()),
            source: "s".into(),
            text: "hi".into(),
            received_at_ms: 5,
        },
        NOTE,
    );
    fixed(&PublishNote { text: "hi".into() }, PUBLISH);
    fixed(&Published::Sent("cafe".into()), PUBLISHED_SENT);
    fixed(&Published::Queued, PUBLISHED_QUEUED);
}

#[test]
fn submission() {
    fixed(
        &SubmitTask {
            program: "bafk".into(),
            input_hex: "00ff".into(),
            replicas: 3,
            fuel: Some(10),
            nonce: None,
            fee: Some("5".into()),
        },
        SUBMIT,
    );
    fixed(
        &Submitted {
            id: "aa".into(),
            tx: Some("block 7".into()),
            fee: Some("100".into()),
            committee: vec!["0xAb".into()],
            draw_block: Some(9),
        },
        SUBMITTED,
    );
    // What the CLI of today sends decodes with the defaults.
    let minimal: SubmitTask =
        serde_json::from_str(r#"{"program":"b","input_hex":"","replicas":3}"#).unwrap();
    assert_eq!(
        (minimal.fuel, minimal.nonce, minimal.fee),
        (None, None, None)
    );
    let standalone: Submitted = serde_json::from_str(r#"{"id":"aa"}"#).unwrap();
    assert!(standalone.committee.is_empty() && standalone.tx.is_none());
}

#[test]
fn task_records() {
    fixed(&chain(), CHAIN);
    fixed(&task(), TASK);
    let names: Vec<String> = [
        TaskStatus::Pending,
        TaskStatus::Escalated,
        TaskStatus::Verified,
        TaskStatus::Failed,
        TaskStatus::Rejected,
        TaskStatus::AwaitingChain,
    ]
    .iter()
    .map(|s| serde_json::to_string(s).unwrap())
    .collect();
    assert_eq!(names.join(","), TASK_STATUSES);
    for n in &names {
        let back: TaskStatus = serde_json::from_str(n).unwrap();
        assert_eq!(&serde_json::to_string(&back).unwrap(), n);
    }
    assert!(serde_json::from_str::<TaskStatus>("\"done\"").is_err());
}

#[test]
fn a_stored_record_from_before_the_optional_fields_still_decodes() {
    // The node stores TaskRecord as JSON: records written by older versions
    // lack the fields added since, and must keep loading.
    let old = r#"{"id":"11","spec":"","input":"","program":"bafk","replicas":3,
        "status":"verified","committee":["p1","p2","p3"],"seen_at_ms":8}"#;
    let rec: TaskRecord = serde_json::from_str(old).unwrap();
    assert!(rec.is_final());
    assert!(rec.escalation_committee.is_empty() && rec.outcomes.is_empty());
    assert_eq!((rec.verdict, rec.chain, rec.error), (None, None, None));
    let chain: ChainRecord =
        serde_json::from_str(r#"{"committee":[],"fee":"1","status":"posted"}"#).unwrap();
    assert_eq!(chain.block, None);
    assert!(chain.txs.is_empty() && chain.attestations.is_empty());
    // A required field missing is an error, not a default.
    assert!(serde_json::from_str::<TaskRecord>(r#"{"id":"11"}"#).is_err());
}

#[test]
fn verify_and_reputation() {
    fixed(
        &VerifyReport {
            task: "11".into(),
            round: "primary".into(),
            result: "55".into(),
            output_cid: "bafo".into(),
            signers: vec!["p1".into()],
            quorum: 2,
            output_matches: Some(true),
        },
        VERIFY,
    );
    let rep: Vec<ReputationEntry> = vec![("p1".into(), 5)];
    fixed(&rep, REPUTATION);
}

#[test]
fn content() {
    fixed(
        &Added {
            cid: "bafk".into(),
            bytes: 5,
            pinned: true,
            sha256: "aa".into(),
        },
        ADDED,
    );
    fixed(
        &PinEntry {
            cid: "bafk".into(),
            expires_at: Some(100),
        },
        PIN,
    );
    fixed(
        &ContentListing {
            stats: ContentStats {
                pins: 1,
                repo_bytes: 2,
                blocks: 3,
                quota_bytes: 4,
            },
            pins: vec![PinEntry {
                cid: "b".into(),
                expires_at: None,
            }],
        },
        LISTING,
    );
    fixed(
        &GcReport {
            expired_pins: 1,
            removed_blocks: 2,
            repo_bytes: 3,
        },
        GC,
    );
}

#[test]
fn api_info_and_error_body() {
    fixed(
        &ApiInfo {
            url: "http://127.0.0.1:1".into(),
            metrics_url: "http://127.0.0.1:2".into(),
            peer_id: "p".into(),
            pid: 42,
        },
        INFO,
    );
    fixed(&ErrorBody::new("unknown task 11"), ERROR);
}

#[test]
fn queries_encode_as_the_routes_read_them() {
    fn url<Q: Serialize>(q: &Q) -> String {
        reqwest::Client::new()
            .get("http://127.0.0.1/x")
            .query(q)
            .build()
            .unwrap()
            .url()
            .to_string()
    }
    // None is left out, so a query without a value is no query at all.
    assert_eq!(url(&TaskQuery { wait_ms: None }), "http://127.0.0.1/x");
    assert_eq!(
        url(&TaskQuery { wait_ms: Some(5) }),
        "http://127.0.0.1/x?wait_ms=5"
    );
    assert_eq!(
        url(&AddQuery { pin: Some(false) }),
        "http://127.0.0.1/x?pin=false"
    );
    assert_eq!(
        url(&FetchQuery {
            timeout_ms: Some(7)
        }),
        "http://127.0.0.1/x?timeout_ms=7"
    );
}

#[test]
fn error_bodies_decode_from_the_node_and_from_anything_else() {
    // The node's body, also with fields a later node may add.
    assert_eq!(
        ErrorBody::from_bytes(br#"{"error":"unknown task 11"}"#).error,
        "unknown task 11"
    );
    assert_eq!(
        ErrorBody::from_bytes(br#"{"error":"x","code":"not_found"}"#).error,
        "x"
    );
    // Not the node's JSON: the text itself.
    assert_eq!(
        ErrorBody::from_bytes(b"  bad gateway\n").error,
        "bad gateway"
    );
    assert_eq!(
        ErrorBody::from_bytes(br#"{"message":"m"}"#).error,
        r#"{"message":"m"}"#
    );
    assert_eq!(ErrorBody::from_bytes(b"").error, "");
    // Not UTF-8: replaced, never a panic.
    assert_eq!(
        ErrorBody::from_bytes(&[0xff, 0xfe, b'a']).error,
        "\u{fffd}\u{fffd}a"
    );
    // A huge body is cut to its start.
    let long = vec![b'x'; 10_000];
    let e = ErrorBody::from_bytes(&long).error;
    assert_eq!(e.len(), 512 + " [...]".len());
    assert!(e.ends_with(" [...]"));
    // A multi-byte character cut at the limit is replaced, not split.
    let mut cut = vec![b'y'; 511];
    cut.extend_from_slice("é".as_bytes());
    cut.extend_from_slice(b"more");
    assert!(
        ErrorBody::from_bytes(&cut)
            .error
            .starts_with(&"y".repeat(511))
    );
}

#[test]
fn errors_map_statuses_to_kinds() {
    use reqwest::StatusCode;
    let body = || ErrorBody::new("m");
    assert!(matches!(
        Error::from_status(StatusCode::UNAUTHORIZED, body()),
        Error::Unauthorized { .. }
    ));
    assert!(Error::from_status(StatusCode::NOT_FOUND, body()).is_not_found());
    for s in [
        StatusCode::BAD_REQUEST,
        StatusCode::FORBIDDEN,
        StatusCode::CONFLICT,
        StatusCode::BAD_GATEWAY,
        StatusCode::SERVICE_UNAVAILABLE,
    ] {
        let e = Error::from_status(s, body());
        assert_eq!(e.status(), Some(s));
        assert!(!e.is_not_found());
        assert_eq!(e.to_string(), format!("the node answered {s}: m"));
    }
}

#[test]
fn routes_fill_their_patterns_and_refuse_escapes() {
    let id = "ab".repeat(32);
    assert_eq!(routes::task(&id).unwrap(), format!("/v1/tasks/{id}"));
    assert_eq!(
        routes::task(&format!("0x{id}")).unwrap(),
        format!("/v1/tasks/0x{id}")
    );
    assert_eq!(routes::task_result("aa").unwrap(), "/v1/tasks/aa/result");
    assert_eq!(routes::task_verify("aa").unwrap(), "/v1/tasks/aa/verify");
    let cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    assert_eq!(
        routes::content_object(cid).unwrap(),
        format!("/v1/content/{cid}")
    );
    assert_eq!(
        routes::content_pin(cid).unwrap(),
        format!("/v1/content/{cid}/pin")
    );
    // base64url multibase uses - and _.
    assert!(routes::segment("CID", "uAXASIA-_x").is_ok());
    for bad in [
        "", ".", "..", "%2e%2e", "a/b", "a?b", "a#b", "a b", "a\nb", "a%20", "é", "a.b",
    ] {
        let e = routes::segment("CID", bad).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument { what: "CID", .. }),
            "{bad:?}: {e:?}"
        );
    }
    assert!(routes::segment("CID", &"a".repeat(routes::MAX_SEGMENT)).is_ok());
    let e = routes::segment("CID", &"a".repeat(routes::MAX_SEGMENT + 1)).unwrap_err();
    // The error quotes at most 80 characters of the value.
    match e {
        Error::InvalidArgument { found, .. } => assert_eq!(found.len(), 80),
        other => panic!("{other:?}"),
    }
}

// The JSON of the node before the move (see the module comment).
const STATUS: &str = r#"{"peer_id":"12D3KooWA","version":"0.1.0","listen_addrs":["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWA"],"connected_peers":2,"known_peers":3,"uptime_secs":7,"store_schema":4,"content":{"pins":1,"repo_bytes":2048,"blocks":3,"quota_bytes":1073741824}}"#;
const STATUS_NONE: &str = r#"{"peer_id":"p","version":"v","listen_addrs":[],"connected_peers":0,"known_peers":0,"uptime_secs":0,"store_schema":1,"content":null}"#;
const PEER: &str = r#"{"peer_id":"12D3KooWB","addresses":["/ip4/127.0.0.1/tcp/1"],"score":1.5,"agent":"hal9/0.1.0","rtt_ms":3,"topics":["hal9/notes/1"]}"#;
const PEER_NONE: &str =
    r#"{"peer_id":"x","addresses":[],"score":null,"agent":null,"rtt_ms":null,"topics":[]}"#;
const NOTE: &str = r#"{"id":"ab","author":"a","source":"s","text":"hi","received_at_ms":5}"#;
const PUBLISH: &str = r#"{"text":"hi"}"#;
const PUBLISHED_SENT: &str = r#"{"sent":"cafe"}"#;
const PUBLISHED_QUEUED: &str = r#""queued""#;
const SUBMIT: &str =
    r#"{"program":"bafk","input_hex":"00ff","replicas":3,"fuel":10,"nonce":null,"fee":"5"}"#;
const SUBMITTED: &str =
    r#"{"id":"aa","tx":"block 7","fee":"100","committee":["0xAb"],"draw_block":9}"#;
const CHAIN: &str = r#"{"committee":["0x1"],"escalation":["0x2"],"fee":"10","status":"finalized","draw_block":5,"commit_end":6,"reveal_end":7,"committed":["0x1"],"equivocations":[],"result":"ee","attestations":[{"round":0,"signer":"0x1","result":"ee","cid":"01","signature":"ss","salts":["aa"]}],"parent":"pp","settlement":{"burned":"1","to_treasury":"2","per_member":"3","slashed":"4","overturned":true},"txs":[["submitVerdict","0xh"]],"escalation_upheld":false,"block":9}"#;
const TASK: &str = r#"{"id":"11","spec":"22","input":"33","program":"bafk","replicas":3,"status":"awaiting_chain","committee":["p1"],"escalation_committee":["p2"],"own_output":"44","verdict":{"round":"primary","result":"55","output_cid":"bafo","attesters":["p1"],"certificate":"66","decided_at_ms":9},"nondeterministic":true,"error":"out of fuel","seen_at_ms":8,"outcomes":[["p1","agreed"]],"chain":{"committee":["0x1"],"escalation":["0x2"],"fee":"10","status":"finalized","draw_block":5,"commit_end":6,"reveal_end":7,"committed":["0x1"],"equivocations":[],"result":"ee","attestations":[{"round":0,"signer":"0x1","result":"ee","cid":"01","signature":"ss","salts":["aa"]}],"parent":"pp","settlement":{"burned":"1","to_treasury":"2","per_member":"3","slashed":"4","overturned":true},"txs":[["submitVerdict","0xh"]],"escalation_upheld":false,"block":9}}"#;
const TASK_STATUSES: &str =
    r#""pending","escalated","verified","failed","rejected","awaiting_chain""#;
const VERIFY: &str = r#"{"task":"11","round":"primary","result":"55","output_cid":"bafo","signers":["p1"],"quorum":2,"output_matches":true}"#;
const REPUTATION: &str = r#"[["p1",5]]"#;
const ADDED: &str = r#"{"cid":"bafk","bytes":5,"pinned":true,"sha256":"aa"}"#;
const PIN: &str = r#"{"cid":"bafk","expires_at":100}"#;
const LISTING: &str = r#"{"stats":{"pins":1,"repo_bytes":2,"blocks":3,"quota_bytes":4},"pins":[{"cid":"b","expires_at":null}]}"#;
const GC: &str = r#"{"expired_pins":1,"removed_blocks":2,"repo_bytes":3}"#;
const INFO: &str =
    r#"{"url":"http://127.0.0.1:1","metrics_url":"http://127.0.0.1:2","peer_id":"p","pid":42}"#;
const ERROR: &str = r#"{"error":"unknown task 11"}"#;
