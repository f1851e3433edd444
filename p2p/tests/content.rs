//! The content layer between in-process nodes on loopback: add and fetch,
//! DHT provider discovery, block verification against a lying peer,
//! not-found, persistence and garbage collection.

use std::time::{Duration, Instant};

use futures::StreamExt;
use hal9_p2p::{
    Cid, Content, ContentConfig, ContentError, Multiaddr, Network, NetworkConfig, NetworkEvent,
    NetworkHandle, Retention,
    content::{CHUNK_SIZE, raw_cid},
};
use prometheus_client::registry::Registry;
use rand::RngCore;
use tokio::sync::mpsc;

struct Node {
    net: NetworkHandle,
    content: Content,
    addr: Multiaddr,
    _events: mpsc::Receiver<NetworkEvent>,
}

async fn node_with(content: ContentConfig) -> Node {
    let cfg = NetworkConfig {
        content,
        ..NetworkConfig::local_tcp()
    };
    let mut registry = Registry::default();
    let (network, net, events) =
        Network::new(hal9_p2p::Keypair::generate_ed25519(), cfg, &mut registry)
            .await
            .expect("network");
    tokio::spawn(network.run());
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = loop {
        let addrs = net.listen_addrs().await.expect("listen addrs");
        if let Some(a) = addrs.into_iter().next() {
            break a.with(hal9_p2p::multiaddr_p2p(net.local_peer_id()));
        }
        assert!(Instant::now() < deadline, "node never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Node {
        content: net.content(),
        net,
        addr,
        _events: events,
    }
}

async fn node() -> Node {
    node_with(ContentConfig::default()).await
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

async fn connect(a: &Node, b: &Node) {
    a.net.dial(b.addr.clone()).await.expect("dial");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let peers = a.net.peers().await.expect("peers");
        if peers
            .iter()
            .any(|p| p.peer_id == b.net.local_peer_id().to_string())
        {
            return;
        }
        assert!(Instant::now() < deadline, "peers never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_objects_get_the_standard_raw_cid() {
    let a = node().await;
    let data = b"hello hal9".to_vec();
    let cid = a
        .content
        .add(data.clone(), Retention::Unpinned)
        .await
        .unwrap();
    // One chunk with raw leaves is a single raw block: CIDv1, codec raw, sha2-256.
    assert_eq!(cid, raw_cid(&data));
    assert!(cid.to_string().starts_with("bafkrei"), "{cid}");
    let again = a.content.add(data, Retention::Pinned).await.unwrap();
    assert_eq!(cid, again, "same bytes, same CID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_object_is_chunked_and_fetched_byte_identical_from_a_peer() {
    let a = node().await;
    let b = node().await;
    connect(&b, &a).await;
    let data = random(3 * CHUNK_SIZE + 1000);
    let cid = a
        .content
        .add(data.clone(), Retention::Pinned)
        .await
        .unwrap();
    assert_eq!(cid.codec(), 0x70, "a multi-chunk file has a dag-pb root");
    assert!(cid.to_string().starts_with("bafybei"), "{cid}");

    let got = b.content.get(&cid, Duration::from_secs(20)).await.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got[..] == data[..], "fetched bytes differ");
    // The same bytes added on B give the same CID.
    let cid_b = b.content.add(data, Retention::Unpinned).await.unwrap();
    assert_eq!(cid, cid_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_never_connected_to_the_provider_finds_it_through_the_dht() {
    let a = node().await;
    let b = node().await;
    let c = node().await;
    connect(&a, &b).await;
    connect(&c, &b).await;
    // Let identify fill the routing tables.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let data = random(CHUNK_SIZE * 2);
    let cid = a
        .content
        .add(data.clone(), Retention::Pinned)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let got = c.content.get(&cid, Duration::from_secs(30)).await.unwrap();
    assert!(got[..] == data[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cid_nobody_provides_fails_with_not_found_in_bounded_time() {
    let a = node().await;
    let b = node().await;
    connect(&a, &b).await;
    let cid = raw_cid(b"nobody has these bytes");
    let t0 = Instant::now();
    let err = a
        .content
        .get(&cid, Duration::from_secs(2))
        .await
        .unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(err, ContentError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("not found"), "{err}");
    assert!(took < Duration::from_secs(6), "waited {took:?}");
}

/// A bitswap peer that answers with bytes that do not match the CID.
async fn lying_peer(cid: Cid, bad: Vec<u8>) -> (Multiaddr, tokio::task::JoinHandle<()>) {
    use libp2p::{SwarmBuilder, noise, swarm::SwarmEvent, tcp, yamux};
    use rust_ipfs::{Block, p2p::bitswap, repo::Repo};

    let repo = Repo::new_memory();
    repo.init().await.unwrap();
    repo.put_block(&Block::new_unchecked(cid, bad))
        .await
        .unwrap();
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| bitswap::Behaviour::new(&repo, bitswap::Config::default()))
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let peer = *swarm.local_peer_id();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address.with(hal9_p2p::multiaddr_p2p(peer));
        }
    };
    let task = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_that_does_not_match_its_cid_is_rejected_and_another_provider_serves_it() {
    let honest = node().await;
    let c = node().await;
    let data = random(4000);
    let cid = raw_cid(&data);
    let mut bad = data.clone();
    bad[0] ^= 0xff;
    let (liar_addr, liar) = lying_peer(cid, bad).await;

    c.net.dial(liar_addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = c
        .content
        .get(&cid, Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(matches!(err, ContentError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("matching its CID"),
        "the error says why: {err}"
    );
    assert!(
        !c.content.has_block(&cid).await.unwrap(),
        "the forged block must not be stored"
    );

    // With an honest provider connected as well, the fetch succeeds.
    honest
        .content
        .add(data.clone(), Retention::Pinned)
        .await
        .unwrap();
    connect(&c, &honest).await;
    let got = c.content.get(&cid, Duration::from_secs(15)).await.unwrap();
    assert!(got[..] == data[..]);
    liar.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_and_blocks_survive_a_restart_and_gc_never_removes_pinned_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ContentConfig {
        dir: Some(dir.path().join("ipfs")),
        quota_bytes: 0,
        ..ContentConfig::default()
    };
    let pinned = random(2 * CHUNK_SIZE + 17);
    let loose = random(CHUNK_SIZE + 5);
    let (pinned_cid, loose_cid, expiring_cid) = {
        let a = node_with(cfg.clone()).await;
        let p = a
            .content
            .add(pinned.clone(), Retention::Pinned)
            .await
            .unwrap();
        let l = a
            .content
            .add(loose.clone(), Retention::Unpinned)
            .await
            .unwrap();
        let e = a
            .content
            .add(random(1000), Retention::PinnedFor(Duration::ZERO))
            .await
            .unwrap();
        let stats = a.content.stats().await.unwrap();
        assert_eq!(stats.pins, 2);
        assert!(stats.repo_bytes >= (pinned.len() + loose.len()) as u64);
        a.net.shutdown().await.unwrap();
        (p, l, e)
    };
    // Let the first instance release the repo lock.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let a = node_with(cfg).await;
    let pins: Vec<Cid> = a
        .content
        .pins()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert!(
        pins.contains(&pinned_cid) && pins.contains(&expiring_cid),
        "{pins:?}"
    );
    assert!(
        a.content.has_block(&loose_cid).await.unwrap(),
        "blocks persist"
    );

    let report = a.content.gc().await.unwrap();
    assert_eq!(report.expired_pins, 1, "{report:?}");
    assert!(report.removed_blocks >= 2, "{report:?}");
    assert!(!a.content.has_block(&loose_cid).await.unwrap());
    assert!(!a.content.has_block(&expiring_cid).await.unwrap());
    // Every block of the pinned DAG is still there: the object reads back offline.
    let got = a
        .content
        .get(&pinned_cid, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(got[..] == pinned[..]);
    let stats = a.content.stats().await.unwrap();
    assert_eq!(stats.pins, 1);

    a.content.unpin(&pinned_cid).await.unwrap();
    a.content.gc().await.unwrap();
    assert!(!a.content.has_block(&pinned_cid).await.unwrap());
    assert!(matches!(
        a.content.unpin(&pinned_cid).await,
        Err(ContentError::NotPinned(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_cannot_open_a_locked_repo() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ContentConfig {
        dir: Some(dir.path().join("ipfs")),
        ..ContentConfig::default()
    };
    let _a = node_with(cfg.clone()).await;
    let net = NetworkConfig {
        content: cfg,
        ..NetworkConfig::local_tcp()
    };
    let err = Network::new(
        hal9_p2p::Keypair::generate_ed25519(),
        net,
        &mut Registry::default(),
    )
    .await
    .err()
    .expect("the second open must fail");
    assert!(matches!(err, hal9_p2p::Error::Repo { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_over_the_size_limit_are_refused() {
    let a = node().await;
    let b = node_with(ContentConfig {
        max_object_bytes: 300 * 1024,
        ..ContentConfig::default()
    })
    .await;
    connect(&b, &a).await;
    let cid = a
        .content
        .add(random(4 * CHUNK_SIZE), Retention::Pinned)
        .await
        .unwrap();
    let err = b
        .content
        .get(&cid, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(matches!(err, ContentError::TooLarge { .. }), "{err}");
    // Refused from the root's announced size, before any leaf was fetched.
    let stats = b.content.stats().await.unwrap();
    assert_eq!(stats.blocks, 1, "{stats:?}");
}

/// A sealed result (a committee member's output before the commit phase
/// ended) is stored but not announced: no provider record goes to the DHT
/// (whose closest peers would learn the CID) until it is published. (A
/// peer that already knows the CID can still ask for it over bitswap; the
/// point is that nobody learns the CID from this node early.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_result_is_found_only_once_published() {
    let a = node().await;
    let b = node().await;
    let c = node().await;
    connect(&a, &b).await;
    connect(&c, &b).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let data = random(1000);
    let cid = a.content.add_sealed_result(data.clone()).await.unwrap();
    assert!(!a.content.is_provided(&cid).await.unwrap());
    // Stored locally and pinned.
    assert_eq!(
        a.content.get(&cid, Duration::from_secs(1)).await.unwrap(),
        data
    );
    a.content.publish(&cid).await.unwrap();
    assert!(a.content.is_provided(&cid).await.unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = c.content.get(&cid, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got, data);
}
