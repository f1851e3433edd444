use std::net::TcpListener;

use crate::harness::{Cluster, bin, hal9};

fn init(dir: &std::path::Path) {
    let out = hal9(
        &[
            "init",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `hal9 node run` and expects a quick, clean failure mentioning `needle`.
fn run_fails_with(home: &std::path::Path, extra: &[&str], needle: &str) {
    let mut args = vec!["node", "run"];
    args.extend_from_slice(extra);
    let out = hal9(&args, home);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1, stderr:\n{stderr}"
    );
    assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
}

#[test]
fn init_creates_a_private_key_and_refuses_to_overwrite_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let mode = std::fs::metadata(dir.path().join("node.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(dir.path().join("api.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = hal9(&["init"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already initialized"));
}

#[test]
fn bad_config_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    std::fs::write(dir.path().join("config.toml"), "[network\nlisten = 5").unwrap();
    run_fails_with(dir.path(), &[], "invalid config file");
    std::fs::write(
        dir.path().join("config.toml"),
        "[network]\nmax_message_size = 10\n",
    )
    .unwrap();
    run_fails_with(dir.path(), &[], "max_message_size must be between");
}

#[test]
fn corrupt_or_unreadable_key_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let key = dir.path().join("node.key");
    std::fs::write(&key, b"garbage").unwrap();
    run_fails_with(dir.path(), &[], "is corrupt");
    std::fs::remove_file(&key).unwrap();
    std::fs::create_dir(&key).unwrap();
    run_fails_with(dir.path(), &[], "cannot read the node key");
}

#[test]
fn uninitialized_home_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    run_fails_with(dir.path(), &[], "hal9 init");
}

#[test]
fn port_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    run_fails_with(dir.path(), &["--listen", &listen], "cannot listen on");
    let api = format!("127.0.0.1:{port}");
    run_fails_with(
        dir.path(),
        &["--api-listen", &api],
        "cannot bind the control API",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_locked_by_a_running_node_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(&bin(), dir.path(), 1).await.unwrap();
    let home = cluster.nodes[0].home().root().to_path_buf();
    let out = tokio::task::spawn_blocking(move || hal9(&["node", "run"], &home))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("in use by another process"), "{stderr}");
    // The first node is unharmed.
    cluster.nodes[0].client().unwrap().status().await.unwrap();
    cluster.stop().await.unwrap();
}
