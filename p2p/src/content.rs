//! The content layer: an IPFS block store, bitswap and DHT provider records
//! inside the node's one swarm (see `docs/adr/0040-content-layer.md`).
//!
//! Objects are added as UnixFS files with the settings of a standard IPFS
//! `add --cid-version=1`: CIDv1, raw leaves, SHA2-256, fixed 256 KiB chunks,
//! balanced DAG of dag-pb nodes. Every block is checked against its CID
//! before it is used; objects are assembled only from verified blocks.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use futures::StreamExt;
use ipld_core::cid::Version;
use multihash_codetable::Code;
use rust_ipfs::{
    Block, PinMode,
    repo::DataStore,
    unixfs::{
        UnixfsCat,
        ll::file::adder::{Chunker, FileAdderBuilder},
    },
};
use serde::{Deserialize, Serialize};
use tokio::sync::{RwLock, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::{
    ContentConfig, ContentError,
    behaviour::Repo,
    handle::Command,
    metrics::{ContentMetrics, FetchOutcome},
};

pub use ipld_core::cid::Cid;

/// Size of the fixed chunks files are split into (the IPFS default).
pub const CHUNK_SIZE: usize = 256 * 1024;
/// Multicodec of raw blocks.
const RAW: u64 = 0x55;
/// Multicodec of dag-pb blocks.
const DAG_PB: u64 = 0x70;
/// Largest number of blocks requested from the network in one round.
const WANT_BATCH: usize = 512;
/// Datastore key under which pin expiry times are kept.
const EXPIRY_KEY: &[u8] = b"/hal9/pin-expiry";

/// How long an added object is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Not pinned: garbage collection may remove it.
    Unpinned,
    /// Pinned until unpinned explicitly.
    Pinned,
    /// Pinned, and unpinned by garbage collection once this much time has passed.
    PinnedFor(Duration),
}

/// Figures of the local content store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentStats {
    /// Pinned roots (recursive and direct pins).
    pub pins: u64,
    /// Bytes of all blocks in the store.
    pub repo_bytes: u64,
    /// Blocks in the store.
    pub blocks: u64,
    /// The configured quota in bytes.
    pub quota_bytes: u64,
}

/// What one garbage-collection pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Pins whose retention period had passed and that were removed.
    pub expired_pins: u64,
    /// Unpinned blocks removed.
    pub removed_blocks: u64,
    /// Store size after the pass, in bytes.
    pub repo_bytes: u64,
}

/// Parses a CID from its standard string form (`bafy...`, `Qm...`).
pub fn parse_cid(text: &str) -> Result<Cid, ContentError> {
    Cid::try_from(text.trim()).map_err(|e| ContentError::BadCid {
        text: text.chars().take(100).collect(),
        reason: e.to_string(),
    })
}

/// The CID a single raw block of `data` has (CIDv1, raw, SHA2-256): the CID
/// of any object of at most one chunk.
pub fn raw_cid(data: &[u8]) -> Cid {
    use multihash_codetable::MultihashDigest;
    Cid::new_v1(RAW, Code::Sha2_256.digest(data))
}

/// A cloneable handle to the node's content store and block exchange.
#[derive(Clone)]
pub struct Content {
    pub(crate) repo: Repo,
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) cfg: Arc<ContentConfig>,
    pub(crate) metrics: ContentMetrics,
    /// Readers: adds and fetches in progress; writer: garbage collection.
    pub(crate) gc_lock: Arc<RwLock<()>>,
    /// Serialises updates of the pin-expiry table.
    pub(crate) expiry_lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content")
            .field("dir", &self.cfg.dir)
            .finish()
    }
}

fn store_err(e: impl std::fmt::Display) -> ContentError {
    ContentError::Store(e.to_string())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Content {
    pub(crate) async fn open(
        cfg: &ContentConfig,
        tx: mpsc::Sender<Command>,
        metrics: ContentMetrics,
    ) -> Result<Self, crate::Error> {
        let (repo, path) = match &cfg.dir {
            Some(dir) => (Repo::new_fs(dir), dir.display().to_string()),
            None => (Repo::new_memory(), "memory".to_string()),
        };
        if let Some(dir) = &cfg.dir {
            std::fs::create_dir_all(dir).map_err(|e| crate::Error::Repo {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        }
        repo.init().await.map_err(|e| crate::Error::Repo {
            path: path.clone(),
            reason: format!("{e:#}"),
        })?;
        let content = Self {
            repo,
            tx,
            cfg: Arc::new(cfg.clone()),
            metrics,
            gc_lock: Arc::new(RwLock::new(())),
            expiry_lock: Arc::new(tokio::sync::Mutex::new(())),
        };
        // Fail now, not on first use, if the pin store is unreadable.
        content
            .refresh_metrics()
            .await
            .map_err(|e| crate::Error::Repo {
                path,
                reason: e.to_string(),
            })?;
        Ok(content)
    }

    /// The content configuration in force.
    pub fn config(&self) -> &ContentConfig {
        &self.cfg
    }

    /// Adds `data` as a UnixFS file (CIDv1, raw leaves, SHA2-256, 256 KiB
    /// chunks), announces it on the DHT and returns its CID.
    pub async fn add(
        &self,
        data: impl Into<Bytes>,
        retention: Retention,
    ) -> Result<Cid, ContentError> {
        self.add_with(data.into(), retention, true).await
    }

    async fn add_with(
        &self,
        data: Bytes,
        retention: Retention,
        announce: bool,
    ) -> Result<Cid, ContentError> {
        let len = data.len();
        let cid = {
            let _g = self.gc_lock.read().await;
            let cid = self.put_file(&data).await?;
            match retention {
                Retention::Unpinned => {}
                Retention::Pinned => self.pin_locked(&cid).await?,
                Retention::PinnedFor(d) => {
                    self.pin_locked(&cid).await?;
                    self.set_expiry(&cid, Some(now_secs().saturating_add(d.as_secs())))
                        .await?;
                }
            }
            if announce {
                let blocks = self.local_dag(&cid).await?;
                self.announce(cid, blocks).await?;
            }
            cid
        };
        self.metrics.added_bytes.inc_by(len as u64);
        debug!(target: "hal9::content", %cid, bytes = len, ?retention, "added");
        let _ = self.refresh_metrics().await;
        Ok(cid)
    }

    /// Splits `data` into a UnixFS DAG and stores its blocks; returns the root.
    async fn put_file(&self, data: &[u8]) -> Result<Cid, ContentError> {
        let mut adder = FileAdderBuilder::default()
            .with_chunker(Chunker::Size(CHUNK_SIZE))
            .with_cid_version(Version::V1)
            .with_raw_leaves(true)
            .with_hasher(Code::Sha2_256)
            .build();
        let mut done = 0;
        let mut batch = Vec::new();
        while done < data.len() {
            let (blocks, consumed) = adder.push(&data[done..]);
            for (cid, bytes) in blocks {
                batch.push(Block::new(cid, bytes).map_err(store_err)?);
            }
            if consumed == 0 && batch.is_empty() {
                return Err(store_err("the UnixFS adder made no progress"));
            }
            done += consumed;
            if batch.len() >= 64 {
                self.repo
                    .put_blocks(std::mem::take(&mut batch))
                    .await
                    .map_err(store_err)?;
            }
        }
        let mut root = None;
        for (cid, bytes) in adder.finish() {
            batch.push(Block::new(cid, bytes).map_err(store_err)?);
            root = Some(cid);
        }
        self.repo.put_blocks(batch).await.map_err(store_err)?;
        root.ok_or_else(|| store_err("the UnixFS adder produced no root block"))
    }

    /// Adds `data` and pins it for the configured result retention period.
    pub async fn add_result(&self, data: impl Into<Bytes>) -> Result<Cid, ContentError> {
        let keep = Duration::from_secs(self.cfg.result_retention_secs);
        self.add(data, Retention::PinnedFor(keep)).await
    }

    /// Like [`Content::add_result`], but announced to nobody: the blocks are
    /// stored and pinned, and no provider record goes to the DHT (whose
    /// closest peers would learn the CID) until [`Content::publish`]. A
    /// committee member keeps its output this way until the commit phase
    /// ended: a CID is as good as the result to whoever fetches it.
    pub async fn add_sealed_result(&self, data: impl Into<Bytes>) -> Result<Cid, ContentError> {
        let keep = Duration::from_secs(self.cfg.result_retention_secs);
        self.add_with(data.into(), Retention::PinnedFor(keep), false)
            .await
    }

    /// Announces a locally stored object (bitswap and the DHT): the other
    /// half of [`Content::add_sealed_result`].
    pub async fn publish(&self, cid: &Cid) -> Result<(), ContentError> {
        let blocks = self.local_dag(cid).await?;
        self.announce(*cid, blocks).await
    }

    /// Whether `cid` is provided on the DHT by this node.
    pub async fn is_provided(&self, cid: &Cid) -> Result<bool, ContentError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::IsProvided {
                root: *cid,
                reply: tx,
            })
            .await
            .map_err(|_| ContentError::Stopped)?;
        rx.await.map_err(|_| ContentError::Stopped)
    }

    /// Tells bitswap about new local blocks and provides the root on the DHT.
    async fn announce(&self, root: Cid, blocks: Vec<Cid>) -> Result<(), ContentError> {
        self.tx
            .send(Command::Provide { root, blocks })
            .await
            .map_err(|_| ContentError::Stopped)
    }

    /// Fetches the object `cid` from the local store or the network, waits at
    /// most `timeout`, verifies every block against its CID and returns the
    /// file's bytes. Blocks fetched stay in the store unpinned.
    pub async fn get(&self, cid: &Cid, timeout: Duration) -> Result<Bytes, ContentError> {
        let started = Instant::now();
        let res = self.get_inner(cid, started + timeout).await;
        let outcome = match &res {
            Ok(b) => {
                self.metrics.fetched_bytes.inc_by(b.len() as u64);
                FetchOutcome::ok()
            }
            Err(ContentError::NotFound { .. }) => FetchOutcome::new("not_found"),
            Err(ContentError::Invalid { .. }) => FetchOutcome::new("invalid"),
            Err(ContentError::TooLarge { .. }) => FetchOutcome::new("too_large"),
            Err(_) => FetchOutcome::new("error"),
        };
        self.metrics.fetches.get_or_create(&outcome).inc();
        self.metrics
            .fetch_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &res {
            info!(target: "hal9::content", %cid, error = %e, "fetch failed");
        }
        res
    }

    async fn get_inner(&self, root: &Cid, deadline: Instant) -> Result<Bytes, ContentError> {
        let _g = self.gc_lock.read().await;
        let codec = root.codec();
        if codec != RAW && codec != DAG_PB {
            return Err(ContentError::Invalid {
                cid: root.to_string(),
                reason: format!(
                    "expected a raw (0x55) or dag-pb (0x70) block, found codec {codec:#x}"
                ),
            });
        }
        let limit = self.cfg.max_object_bytes;
        // dag-pb nodes add a little to the payload; allow for it.
        let block_budget = limit.saturating_add(limit / 32).saturating_add(64 * 1024);
        let mut seen: HashSet<Cid> = HashSet::new();
        let mut frontier = vec![*root];
        let mut total: u64 = 0;
        seen.insert(*root);
        while !frontier.is_empty() {
            for batch in frontier.chunks(WANT_BATCH) {
                self.ensure_local(batch, root, deadline).await?;
            }
            let mut next = Vec::new();
            for cid in &frontier {
                let block = self.verified_block(cid).await?;
                total = total.saturating_add(block.data().len() as u64);
                // The root announces the size of the whole DAG (link Tsizes):
                // refuse before fetching anything under it.
                let claimed = if cid == root {
                    total.saturating_add(claimed_link_sizes(&block))
                } else {
                    total
                };
                if total > block_budget || claimed > block_budget {
                    return Err(ContentError::TooLarge {
                        cid: root.to_string(),
                        limit,
                        found: total.max(claimed),
                    });
                }
                for link in links(&block)? {
                    if seen.insert(link) {
                        next.push(link);
                    }
                }
            }
            frontier = next;
        }
        let data = UnixfsCat::with_repo(&self.repo, *root)
            .local()
            .max_length(usize::try_from(limit).unwrap_or(usize::MAX))
            .await
            .map_err(|e| ContentError::Invalid {
                cid: root.to_string(),
                reason: format!("expected a UnixFS file: {e}"),
            })?;
        Ok(data)
    }

    /// Reads a local block and checks its bytes against its CID; a block that
    /// does not match is deleted so that a later fetch asks the network again.
    async fn verified_block(&self, cid: &Cid) -> Result<Block, ContentError> {
        let block = match self.repo.get_block_now(cid).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Err(ContentError::NotFound {
                    cid: cid.to_string(),
                    waited_ms: 0,
                });
            }
            Err(e) => {
                // The file store verifies on read: a mismatch surfaces here.
                let _ = self.repo.remove_block(cid, false).await;
                return Err(ContentError::Invalid {
                    cid: cid.to_string(),
                    reason: format!("stored block unreadable or not matching its CID: {e:#}"),
                });
            }
        };
        if let Err(e) = block.verify() {
            let _ = self.repo.remove_block(cid, false).await;
            return Err(ContentError::Invalid {
                cid: cid.to_string(),
                reason: format!("block bytes do not hash to the CID's digest: {e}"),
            });
        }
        Ok(block)
    }

    /// Makes sure every CID of `cids` is in the local store, asking peers
    /// (bitswap, DHT providers) for the missing ones until `deadline`.
    async fn ensure_local(
        &self,
        cids: &[Cid],
        root: &Cid,
        deadline: Instant,
    ) -> Result<(), ContentError> {
        let mut missing = Vec::new();
        for cid in cids {
            if !self.repo.contains(cid).await.map_err(store_err)? {
                missing.push(*cid);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let waited = |d: Instant| ContentError::NotFound {
            cid: root.to_string(),
            waited_ms: d.elapsed().as_millis() as u64,
        };
        let start = Instant::now();
        let Some(remaining) = deadline.checked_duration_since(start) else {
            return Err(waited(start));
        };
        let mut waiters = Vec::with_capacity(missing.len());
        let mut replies = Vec::with_capacity(missing.len());
        for cid in &missing {
            let (tx, rx) = oneshot::channel();
            waiters.push((*cid, tx));
            replies.push(rx);
        }
        self.tx
            .send(Command::Want {
                root: *root,
                timeout: remaining,
                waiters,
            })
            .await
            .map_err(|_| ContentError::Stopped)?;
        let all = futures::future::join_all(replies);
        let result = tokio::time::timeout(remaining, all).await;
        let ok = match result {
            Ok(replies) => replies.into_iter().all(|r| matches!(r, Ok(true))),
            Err(_) => false,
        };
        if ok {
            return Ok(());
        }
        // A block may have arrived through another fetch in the meantime.
        let mut still = Vec::new();
        for cid in &missing {
            if !self.repo.contains(cid).await.map_err(store_err)? {
                still.push(*cid);
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        let _ = self.tx.try_send(Command::Unwant { cids: still });
        Err(waited(start))
    }

    /// Every CID of the DAG under `root` that is in the local store.
    async fn local_dag(&self, root: &Cid) -> Result<Vec<Cid>, ContentError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![*root];
        seen.insert(*root);
        while let Some(cid) = stack.pop() {
            let Some(block) = self.repo.get_block_now(&cid).await.map_err(store_err)? else {
                continue;
            };
            out.push(cid);
            for link in links(&block)? {
                if seen.insert(link) {
                    stack.push(link);
                }
            }
        }
        Ok(out)
    }

    async fn pin_locked(&self, cid: &Cid) -> Result<(), ContentError> {
        if self.repo.is_pinned(cid).await.map_err(store_err)? {
            return Ok(());
        }
        self.repo
            .pin(cid)
            .recursive()
            .local()
            .await
            .map_err(|e| store_err(format!("pinning {cid}: {e:#}")))
    }

    /// Pins `cid` and everything under it, fetching missing blocks first
    /// (waiting at most `timeout`). Clears any retention period.
    pub async fn pin(&self, cid: &Cid, timeout: Duration) -> Result<(), ContentError> {
        self.get(cid, timeout).await?;
        {
            let _g = self.gc_lock.read().await;
            self.pin_locked(cid).await?;
            self.set_expiry(cid, None).await?;
            let blocks = self.local_dag(cid).await?;
            self.announce(*cid, blocks).await?;
        }
        let _ = self.refresh_metrics().await;
        Ok(())
    }

    /// Removes the pin of `cid`; its blocks become collectable.
    pub async fn unpin(&self, cid: &Cid) -> Result<(), ContentError> {
        if !self.is_pinned(cid).await? {
            return Err(ContentError::NotPinned(cid.to_string()));
        }
        self.repo
            .remove_pin(cid)
            .recursive()
            .await
            .map_err(|e| store_err(format!("unpinning {cid}: {e:#}")))?;
        self.set_expiry(cid, None).await?;
        let _ = self.tx.try_send(Command::Unprovide { root: *cid });
        let _ = self.refresh_metrics().await;
        Ok(())
    }

    /// Whether `cid` is pinned (directly, recursively or under another pin).
    pub async fn is_pinned(&self, cid: &Cid) -> Result<bool, ContentError> {
        self.repo.is_pinned(cid).await.map_err(store_err)
    }

    /// Whether the block `cid` is in the local store.
    pub async fn has_block(&self, cid: &Cid) -> Result<bool, ContentError> {
        self.repo.contains(cid).await.map_err(store_err)
    }

    /// Pinned roots with their expiry (unix seconds) if they have one.
    pub async fn pins(&self) -> Result<Vec<(Cid, Option<u64>)>, ContentError> {
        let expiry = self.expiry_table().await?;
        let mut out = Vec::new();
        for mode in [PinMode::Recursive, PinMode::Direct] {
            let mut list = self.repo.list_pins(mode).await;
            while let Some(item) = list.next().await {
                let (cid, _) = item.map_err(store_err)?;
                out.push((cid, expiry.get(&cid.to_string()).copied()));
            }
        }
        out.sort_by_key(|(c, _)| c.to_string());
        out.dedup_by_key(|(c, _)| *c);
        Ok(out)
    }

    /// Pin count and store size.
    pub async fn stats(&self) -> Result<ContentStats, ContentError> {
        let pins = self.pins().await?.len() as u64;
        let repo_bytes = self.repo.get_total_size().await.map_err(store_err)? as u64;
        let blocks = self.repo.list_blocks().await.count().await as u64;
        Ok(ContentStats {
            pins,
            repo_bytes,
            blocks,
            quota_bytes: self.cfg.quota_bytes,
        })
    }

    async fn refresh_metrics(&self) -> Result<ContentStats, ContentError> {
        let s = self.stats().await?;
        self.metrics.pins.set(s.pins as i64);
        self.metrics.repo_bytes.set(s.repo_bytes as i64);
        Ok(s)
    }

    async fn expiry_table(&self) -> Result<BTreeMap<String, u64>, ContentError> {
        let raw = match self.repo.data_store().get(EXPIRY_KEY).await {
            Ok(v) => v.unwrap_or_default(),
            // The file store reports a key never written as "not found".
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
            {
                Vec::new()
            }
            Err(e) => return Err(store_err(e)),
        };
        let text = String::from_utf8_lossy(&raw);
        let mut map = BTreeMap::new();
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            if let (Some(cid), Some(Ok(at))) = (parts.next(), parts.next().map(str::parse::<u64>)) {
                map.insert(cid.to_string(), at);
            }
        }
        Ok(map)
    }

    async fn set_expiry(&self, cid: &Cid, at: Option<u64>) -> Result<(), ContentError> {
        let _g = self.expiry_lock.lock().await;
        let mut map = self.expiry_table().await?;
        let key = cid.to_string();
        let changed = match at {
            Some(at) => map.insert(key, at) != Some(at),
            None => map.remove(&key).is_some(),
        };
        if changed {
            self.write_expiry(&map).await?;
        }
        Ok(())
    }

    async fn write_expiry(&self, map: &BTreeMap<String, u64>) -> Result<(), ContentError> {
        let text: String = map.iter().map(|(c, at)| format!("{c} {at}\n")).collect();
        self.repo
            .data_store()
            .put(EXPIRY_KEY, text.as_bytes())
            .await
            .map_err(store_err)
    }

    /// One garbage-collection pass: drops pins whose retention period has
    /// passed, then, if the store is above its quota, removes every block
    /// that no pin covers. Pinned blocks are never removed.
    pub async fn gc(&self) -> Result<GcReport, ContentError> {
        let _g = self.gc_lock.write().await;
        let mut report = GcReport::default();
        let now = now_secs();
        {
            let _e = self.expiry_lock.lock().await;
            let mut map = self.expiry_table().await?;
            let expired: Vec<String> = map
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(c, _)| c.clone())
                .collect();
            for text in &expired {
                map.remove(text);
                let Ok(cid) = Cid::try_from(text.as_str()) else {
                    continue;
                };
                if self.repo.is_pinned(&cid).await.map_err(store_err)? {
                    if let Err(e) = self.repo.remove_pin(cid).recursive().await {
                        warn!(target: "hal9::content", %cid, error = %e, "cannot drop expired pin");
                        continue;
                    }
                    let _ = self.tx.try_send(Command::Unprovide { root: cid });
                }
                report.expired_pins += 1;
            }
            if !expired.is_empty() {
                self.write_expiry(&map).await?;
            }
        }
        let size = self.repo.get_total_size().await.map_err(store_err)? as u64;
        if size > self.cfg.quota_bytes {
            let blocks: Vec<Cid> = self.repo.list_blocks().await.collect().await;
            for cid in blocks {
                if self.repo.is_pinned(&cid).await.map_err(store_err)? {
                    continue;
                }
                match self.repo.remove_block(&cid, false).await {
                    Ok(removed) => report.removed_blocks += removed.len() as u64,
                    Err(e) => debug!(target: "hal9::content", %cid, error = %e, "not removed"),
                }
            }
        }
        let stats = self.refresh_metrics().await?;
        report.repo_bytes = stats.repo_bytes;
        self.metrics.gc_removed_blocks.inc_by(report.removed_blocks);
        if report.removed_blocks > 0 || report.expired_pins > 0 {
            info!(target: "hal9::content", removed = report.removed_blocks, expired = report.expired_pins, repo_bytes = report.repo_bytes, "garbage collected");
        }
        Ok(report)
    }

    /// Runs [`Content::gc`] every configured interval until the network stops.
    pub(crate) async fn gc_loop(self) {
        let every = Duration::from_secs(self.cfg.gc_interval_secs.max(1));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if self.tx.is_closed() {
                break;
            }
            if let Err(e) = self.gc().await {
                warn!(target: "hal9::content", error = %e, "garbage collection failed");
            }
        }
    }
}

/// Sum of the `Tsize` fields of a dag-pb node's links (0 for other codecs).
fn claimed_link_sizes(block: &Block) -> u64 {
    use ipld_core::ipld::Ipld;
    if block.cid().codec() != DAG_PB {
        return 0;
    }
    let Ok(Ipld::Map(node)) = block.to_ipld() else {
        return 0;
    };
    let Some(Ipld::List(links)) = node.get("Links") else {
        return 0;
    };
    links
        .iter()
        .filter_map(|l| match l {
            Ipld::Map(m) => match m.get("Tsize") {
                Some(Ipld::Integer(n)) => u64::try_from(*n).ok(),
                _ => None,
            },
            _ => None,
        })
        .fold(0u64, u64::saturating_add)
}

/// The links of a block, for the codecs a UnixFS file uses.
fn links(block: &Block) -> Result<Vec<Cid>, ContentError> {
    match block.cid().codec() {
        RAW => Ok(Vec::new()),
        DAG_PB => {
            let mut set = Vec::new();
            block
                .references(&mut set)
                .map_err(|e| ContentError::Invalid {
                    cid: block.cid().to_string(),
                    reason: format!("expected a dag-pb node: {e}"),
                })?;
            Ok(set)
        }
        other => Err(ContentError::Invalid {
            cid: block.cid().to_string(),
            reason: format!("expected a raw or dag-pb link, found codec {other:#x}"),
        }),
    }
}

#[cfg(test)]
#[allow(dead_code)]
fn assert_futures_are_send(c: &Content) {
    fn is_send<T: Send>(_: T) {}
    is_send(c.get(&raw_cid(b""), Duration::ZERO));
    is_send(c.add(Bytes::new(), Retention::Unpinned));
    is_send(c.gc());
}
