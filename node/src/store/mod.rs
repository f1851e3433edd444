//! The node store: one redb database, opened once per process.
//!
//! Tables carry a schema version in `meta`; [`Store::open`] runs the
//! migrations from the stored version up to [`SCHEMA_VERSION`].

use std::path::Path;

use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};
use serde::{Deserialize, Serialize};

/// Current schema version.
pub const SCHEMA_VERSION: u32 = 4;
/// Default cap on stored peer records (see [`Store::set_max_peers`]).
pub const DEFAULT_MAX_PEERS: usize = 10_000;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const PEERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("peers");
/// Task records by hex task id (JSON).
const TASKS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("tasks");
/// The node's own persisted votes by hex task id (JSON), written before a commit leaves.
const VOTES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("votes");
/// The settlement outbox: chain transactions still owed, by entry key (JSON).
const OUTBOX: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("outbox");
/// Index of the outbox entries still pending (keys of `outbox`, empty
/// values): the worker's poll reads this, O(pending), never the history.
const OUTBOX_PENDING: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("outbox_pending");
/// Records that did not decode, by "table/key" (JSON [`QuarantinedRecord`]).
const QUARANTINE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("quarantine");
/// Reputation in basis points by peer id.
const REPUTATION: TableDefinition<'_, &str, u32> = TableDefinition::new("reputation");

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database.
    #[error(
        "the store {0} is in use by another process (is a node already running with this home?)"
    )]
    Locked(String),
    /// The file exists but is not a redb database of ours.
    #[error("cannot open the store {path}: {reason}")]
    Open {
        /// Path.
        path: String,
        /// Reason.
        reason: String,
    },
    /// Written by a newer hal9.
    #[error(
        "the store has schema version {found}, newer than this build's {SCHEMA_VERSION}; upgrade hal9"
    )]
    TooNew {
        /// Version found.
        found: u32,
    },
    /// Any redb failure.
    #[error("store: {0}")]
    Db(String),
    /// A stored record does not decode.
    #[error("store record {key} is corrupt: {reason}")]
    Corrupt {
        /// Key.
        key: String,
        /// Reason.
        reason: String,
    },
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
db_err!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// What the store keeps about a peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerRecord {
    /// Last address we were connected through, if known.
    pub last_addr: Option<String>,
    /// Unix time (s) of the last connection.
    pub last_seen: u64,
    /// Times we connected.
    pub connections: u64,
}

/// A record moved out of its table because it did not decode.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuarantinedRecord {
    /// Table it was in.
    pub table: String,
    /// Its key.
    pub key: String,
    /// Why it did not decode.
    pub reason: String,
    /// Its bytes, hex.
    pub bytes: String,
}

/// Rows of each table (the `hal9_store_rows` gauge).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCounts {
    /// Task records.
    pub tasks: u64,
    /// Own votes.
    pub votes: u64,
    /// Outbox entries (pending and history).
    pub outbox: u64,
    /// Pending outbox entries.
    pub outbox_pending: u64,
    /// Peer records.
    pub peers: u64,
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Task records.
    pub tasks: u64,
    /// Own votes (of pruned tasks, or whose task record is gone).
    pub votes: u64,
    /// Done or abandoned outbox entries.
    pub outbox: u64,
    /// Peer records.
    pub peers: u64,
}

type Labels = Vec<(&'static str, &'static str)>;

/// Metrics of the store.
#[derive(Debug, Clone, Default)]
struct StoreMetrics {
    quarantined: prometheus_client::metrics::counter::Counter,
    pruned: prometheus_client::metrics::family::Family<
        Labels,
        prometheus_client::metrics::counter::Counter,
    >,
    rows: prometheus_client::metrics::family::Family<
        Labels,
        prometheus_client::metrics::gauge::Gauge,
    >,
}

/// The node store.
#[derive(Debug)]
pub struct Store {
    db: Database,
    quarantined: prometheus_client::metrics::counter::Counter,
    metrics: StoreMetrics,
    max_peers: std::sync::atomic::AtomicUsize,
}

type Migration = fn(&redb::WriteTransaction) -> Result<(), StoreError>;

/// Migrations, index i upgrades schema i to i+1.
const MIGRATIONS: &[Migration] = &[
    migrate_0_to_1,
    migrate_1_to_2,
    migrate_2_to_3,
    migrate_3_to_4,
];

/// Builds the pending index of the outbox from its entries' `state`.
fn migrate_3_to_4(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let pending: Vec<String> = {
        let t = tx.open_table(OUTBOX)?;
        let mut keys = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let state = serde_json::from_slice::<serde_json::Value>(v.value())
                .ok()
                .and_then(|j| j.get("state").and_then(|s| s.as_str()).map(str::to_string));
            // An entry that does not decode stays indexed: the worker's
            // read quarantines it.
            if state.as_deref().is_none_or(|s| s == "pending") {
                keys.push(k.value().to_string());
            }
        }
        keys
    };
    let mut idx = tx.open_table(OUTBOX_PENDING)?;
    for k in &pending {
        idx.insert(k.as_str(), [].as_slice())?;
    }
    Ok(())
}

fn migrate_2_to_3(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(OUTBOX)?;
    Ok(())
}

fn migrate_1_to_2(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(TASKS)?;
    tx.open_table(VOTES)?;
    tx.open_table(REPUTATION)?;
    Ok(())
}

fn migrate_0_to_1(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(META)?;
    tx.open_table(PEERS)?;
    Ok(())
}

impl Store {
    /// Opens (or creates) the store and migrates it to the current schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => Self::locked(path),
            DatabaseError::Storage(redb::StorageError::Io(ref io))
                if io.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Self::locked(path)
            }
            other => StoreError::Open {
                path: path.display().to_string(),
                reason: other.to_string(),
            },
        })?;
        let metrics = StoreMetrics::default();
        let store = Self {
            db,
            quarantined: metrics.quarantined.clone(),
            metrics,
            max_peers: DEFAULT_MAX_PEERS.into(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn locked(path: &Path) -> StoreError {
        StoreError::Locked(path.display().to_string())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { found });
        }
        for v in found..SCHEMA_VERSION {
            let tx = self.db.begin_write()?;
            MIGRATIONS[v as usize](&tx)?;
            {
                let mut meta = tx.open_table(META)?;
                meta.insert("schema_version", (v + 1).to_be_bytes().as_slice())?;
            }
            tx.commit()?;
            tracing::info!(target: "hal9::store", from = v, to = v + 1, "store migrated");
        }
        Ok(())
    }

    /// Schema version stored in the file (0 for a new file).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = match tx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        match meta.get("schema_version")? {
            None => Ok(0),
            Some(v) => {
                let b: [u8; 4] = v.value().try_into().map_err(|_| StoreError::Corrupt {
                    key: "schema_version".into(),
                    reason: "expected 4 bytes".into(),
                })?;
                Ok(u32::from_be_bytes(b))
            }
        }
    }

    /// Sets a metadata value.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(META)?.insert(key, value)?;
        tx.commit()?;
        Ok(())
    }

    /// Reads a metadata value.
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(META)?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    /// Caps the peer records (at least 1): recording a new peer when the
    /// table is full first removes the least recently seen ones.
    pub fn set_max_peers(&self, max: usize) {
        self.max_peers
            .store(max.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// The cap on peer records.
    pub fn max_peers(&self) -> usize {
        self.max_peers.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records a connection to `peer`. Peer records are keyed by remote
    /// PeerIds, which cost nothing to make: the table is capped by
    /// [`Store::set_max_peers`], evicting the least recently seen.
    pub fn record_peer(
        &self,
        peer: &str,
        addr: Option<String>,
        now: u64,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        let mut evicted = 0;
        {
            let mut t = tx.open_table(PEERS)?;
            let existing = match t.get(peer)? {
                Some(v) => Some(decode_peer(peer, v.value())?),
                None => None,
            };
            let max = self.max_peers() as u64;
            let len = t.len()?;
            if existing.is_none() && len >= max {
                // Make room for this one and 1% more, so the scan is
                // amortised over the next inserts.
                let excess = (len + 1).saturating_sub(max) + max / 100;
                evicted = evict_oldest_peers(&mut t, excess as usize)?;
            }
            let mut rec = existing.unwrap_or(PeerRecord {
                last_addr: None,
                last_seen: 0,
                connections: 0,
            });
            if addr.is_some() {
                rec.last_addr = addr;
            }
            rec.last_seen = now;
            rec.connections += 1;
            let bytes = serde_json::to_vec(&rec).map_err(|e| StoreError::Db(e.to_string()))?;
            t.insert(peer, bytes.as_slice())?;
        }
        tx.commit()?;
        if evicted > 0 {
            tracing::debug!(target: "hal9::store", evicted, max = self.max_peers(), "peer records full; least recently seen removed");
            self.count_pruned("peers", evicted as u64);
        }
        Ok(())
    }

    /// All known peers.
    pub fn peers(&self) -> Result<Vec<(String, PeerRecord)>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(PEERS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            match decode_peer(k.value(), v.value()) {
                Ok(p) => out.push((k.value().to_string(), p)),
                Err(e) => {
                    tracing::warn!(target: "hal9::store", error = %e, "corrupt peer record skipped")
                }
            }
        }
        Ok(out)
    }
}

impl Store {
    fn put_json<T: Serialize>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Db(e.to_string()))?;
        let tx = self.db.begin_write()?;
        tx.open_table(table)?.insert(key, bytes.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Every record of `table` that decodes. A record that does not is
    /// logged, moved to the `quarantine` table with the reason, and
    /// skipped: one bad record never stops recovery.
    fn all_json<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut bad: Vec<(String, Vec<u8>, String)> = Vec::new();
        {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(table)?;
            for row in t.iter()? {
                let (k, v) = row?;
                match serde_json::from_slice(v.value()) {
                    Ok(rec) => out.push(rec),
                    Err(e) => bad.push((k.value().to_string(), v.value().to_vec(), e.to_string())),
                }
            }
        }
        if !bad.is_empty() {
            self.quarantine(table, bad)?;
        }
        Ok(out)
    }

    /// Moves corrupt records of `table` to the quarantine table.
    fn quarantine(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
        bad: Vec<(String, Vec<u8>, String)>,
    ) -> Result<(), StoreError> {
        let name = redb::TableHandle::name(&table).to_string();
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(table)?;
            let mut q = tx.open_table(QUARANTINE)?;
            for (key, bytes, reason) in &bad {
                tracing::error!(target: "hal9::store", table = %name, key = %key, reason = %reason, len = bytes.len(), "corrupt record quarantined");
                let rec = QuarantinedRecord {
                    table: name.clone(),
                    key: key.clone(),
                    reason: reason.clone(),
                    bytes: hex::encode(bytes),
                };
                let v = serde_json::to_vec(&rec).map_err(|e| StoreError::Db(e.to_string()))?;
                q.insert(format!("{name}/{key}").as_str(), v.as_slice())?;
                t.remove(key.as_str())?;
            }
        }
        tx.commit()?;
        self.quarantined.inc_by(bad.len() as u64);
        Ok(())
    }

    /// Records moved to quarantine since the store was opened.
    pub fn quarantined_count(&self) -> u64 {
        self.quarantined.get()
    }

    /// Registers `hal9_store_quarantined_total`, `hal9_store_pruned_total`
    /// (by table) and `hal9_store_rows` (by table).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "hal9_store_quarantined",
            "Corrupt store records moved to the quarantine table",
            self.quarantined.clone(),
        );
        registry.register(
            "hal9_store_pruned",
            "Records removed by retention or a cap, by table",
            self.metrics.pruned.clone(),
        );
        registry.register(
            "hal9_store_rows",
            "Rows of each store table, as of the last count",
            self.metrics.rows.clone(),
        );
    }

    /// Every quarantined record.
    pub fn quarantined(&self) -> Result<Vec<QuarantinedRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = match tx.open_table(QUARANTINE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            match serde_json::from_slice(v.value()) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(target: "hal9::store", key = k.value(), error = %e, "unreadable quarantine entry")
                }
            }
        }
        Ok(out)
    }

    /// Writes raw bytes under `key` of a table (fault injection: a record
    /// corrupted on disk).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn put_raw(&self, table: &str, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let def: TableDefinition<'_, &str, &[u8]> = TableDefinition::new(table);
        let tx = self.db.begin_write()?;
        tx.open_table(def)?.insert(key, bytes)?;
        tx.commit()?;
        Ok(())
    }

    /// Writes a task record.
    pub fn put_task<T: Serialize>(&self, id: &str, record: &T) -> Result<(), StoreError> {
        self.put_json(TASKS, id, record)
    }

    /// Deletes a task record (no error when absent).
    pub fn delete_task(&self, id: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(TASKS)?.remove(id)?;
        tx.commit()?;
        Ok(())
    }

    /// All task records.
    pub fn tasks<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.all_json(TASKS)
    }

    /// Durably records the node's own vote for a task (before it is broadcast).
    pub fn put_vote<T: Serialize>(&self, id: &str, vote: &T) -> Result<(), StoreError> {
        self.put_json(VOTES, id, vote)
    }

    /// All persisted own votes.
    pub fn votes<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.all_json(VOTES)
    }

    /// Writes (or replaces) a settlement outbox entry, and keeps the pending
    /// index in step in the same transaction.
    pub fn put_outbox<T: Serialize>(
        &self,
        key: &str,
        entry: &T,
        pending: bool,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(entry).map_err(|e| StoreError::Db(e.to_string()))?;
        let tx = self.db.begin_write()?;
        {
            tx.open_table(OUTBOX)?.insert(key, bytes.as_slice())?;
            let mut idx = tx.open_table(OUTBOX_PENDING)?;
            if pending {
                idx.insert(key, [].as_slice())?;
            } else {
                idx.remove(key)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Writes a pending outbox entry unless one exists under `key` (pending
    /// or not); true if written.
    pub fn insert_outbox_new<T: Serialize>(
        &self,
        key: &str,
        entry: &T,
    ) -> Result<bool, StoreError> {
        let bytes = serde_json::to_vec(entry).map_err(|e| StoreError::Db(e.to_string()))?;
        let tx = self.db.begin_write()?;
        let written = {
            let mut t = tx.open_table(OUTBOX)?;
            if t.get(key)?.is_some() {
                false
            } else {
                t.insert(key, bytes.as_slice())?;
                tx.open_table(OUTBOX_PENDING)?.insert(key, [].as_slice())?;
                true
            }
        };
        tx.commit()?;
        Ok(written)
    }

    /// All outbox entries, pending and history.
    pub fn outbox<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.all_json(OUTBOX)
    }

    /// The pending outbox entries, read through the index: O(pending),
    /// whatever the history holds. A corrupt entry is quarantined.
    pub fn outbox_pending<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        let mut stale = Vec::new();
        {
            let tx = self.db.begin_read()?;
            let idx = tx.open_table(OUTBOX_PENDING)?;
            let t = tx.open_table(OUTBOX)?;
            for row in idx.iter()? {
                let (k, _) = row?;
                let key = k.value().to_string();
                match t.get(key.as_str())? {
                    None => stale.push(key),
                    Some(v) => match serde_json::from_slice(v.value()) {
                        Ok(rec) => out.push(rec),
                        Err(e) => bad.push((key, v.value().to_vec(), e.to_string())),
                    },
                }
            }
        }
        if !bad.is_empty() || !stale.is_empty() {
            let tx = self.db.begin_write()?;
            {
                let mut idx = tx.open_table(OUTBOX_PENDING)?;
                for k in stale.iter().chain(bad.iter().map(|b| &b.0)) {
                    idx.remove(k.as_str())?;
                }
            }
            tx.commit()?;
        }
        if !bad.is_empty() {
            self.quarantine(OUTBOX, bad)?;
        }
        Ok(out)
    }

    /// The node's own persisted vote for a task; `None` when absent (a
    /// record that does not decode is quarantined and reported absent).
    pub fn vote<T: serde::de::DeserializeOwned>(&self, id: &str) -> Result<Option<T>, StoreError> {
        self.one_json(VOTES, id)
    }

    /// A task record by id; `None` when absent. A record that does not
    /// decode is quarantined (and reported absent).
    pub fn task<T: serde::de::DeserializeOwned>(&self, id: &str) -> Result<Option<T>, StoreError> {
        self.one_json(TASKS, id)
    }

    fn one_json<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let bytes = {
            let tx = self.db.begin_read()?;
            let t = tx.open_table(table)?;
            match t.get(id)? {
                Some(v) => v.value().to_vec(),
                None => return Ok(None),
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(rec) => Ok(Some(rec)),
            Err(e) => {
                self.quarantine(table, vec![(id.to_string(), bytes, e.to_string())])?;
                Ok(None)
            }
        }
    }

    /// Whether a task record exists under `id`.
    pub fn has_task(&self, id: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(TASKS)?.get(id)?.is_some())
    }

    /// Deletes the task records for which `expired(key, bytes)` is true,
    /// with their own votes, and votes whose task record is gone.
    pub fn prune_tasks(
        &self,
        mut expired: impl FnMut(&str, &[u8]) -> bool,
    ) -> Result<Pruned, StoreError> {
        let tx = self.db.begin_write()?;
        let mut pruned = Pruned::default();
        {
            let mut tasks = tx.open_table(TASKS)?;
            let mut votes = tx.open_table(VOTES)?;
            let mut gone = Vec::new();
            for row in tasks.iter()? {
                let (k, v) = row?;
                if expired(k.value(), v.value()) {
                    gone.push(k.value().to_string());
                }
            }
            for k in &gone {
                tasks.remove(k.as_str())?;
                pruned.tasks += 1;
            }
            let mut orphans = Vec::new();
            for row in votes.iter()? {
                let (k, _) = row?;
                if tasks.get(k.value())?.is_none() {
                    orphans.push(k.value().to_string());
                }
            }
            for k in &orphans {
                votes.remove(k.as_str())?;
                pruned.votes += 1;
            }
        }
        tx.commit()?;
        self.count_pruned("tasks", pruned.tasks);
        self.count_pruned("votes", pruned.votes);
        Ok(pruned)
    }

    /// Deletes the done or abandoned outbox entries for which
    /// `expired(key, bytes)` is true; pending entries are never touched.
    pub fn prune_outbox(
        &self,
        mut expired: impl FnMut(&str, &[u8]) -> bool,
    ) -> Result<u64, StoreError> {
        let tx = self.db.begin_write()?;
        let mut n = 0;
        {
            let mut t = tx.open_table(OUTBOX)?;
            let idx = tx.open_table(OUTBOX_PENDING)?;
            let mut gone = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                if idx.get(k.value())?.is_none() && expired(k.value(), v.value()) {
                    gone.push(k.value().to_string());
                }
            }
            for k in &gone {
                t.remove(k.as_str())?;
                n += 1;
            }
        }
        tx.commit()?;
        self.count_pruned("outbox", n);
        Ok(n)
    }

    /// Deletes peer records last seen before `cutoff_s` (unix seconds),
    /// then the least recently seen above the cap.
    pub fn prune_peers(&self, cutoff_s: u64) -> Result<u64, StoreError> {
        let tx = self.db.begin_write()?;
        let mut n = 0;
        {
            let mut t = tx.open_table(PEERS)?;
            let mut gone = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                // A record that does not decode is stale by definition.
                if decode_peer(k.value(), v.value()).map_or(true, |p| p.last_seen < cutoff_s) {
                    gone.push(k.value().to_string());
                }
            }
            for k in &gone {
                t.remove(k.as_str())?;
                n += 1;
            }
            let max = self.max_peers() as u64;
            let len = t.len()?;
            if len > max {
                n += evict_oldest_peers(&mut t, (len - max) as usize)? as u64;
            }
        }
        tx.commit()?;
        self.count_pruned("peers", n);
        Ok(n)
    }

    /// Rows of each table; also updates the `hal9_store_rows` gauges.
    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
        let tx = self.db.begin_read()?;
        let c = StoreCounts {
            tasks: tx.open_table(TASKS)?.len()?,
            votes: tx.open_table(VOTES)?.len()?,
            outbox: tx.open_table(OUTBOX)?.len()?,
            outbox_pending: tx.open_table(OUTBOX_PENDING)?.len()?,
            peers: tx.open_table(PEERS)?.len()?,
        };
        for (table, n) in [
            ("tasks", c.tasks),
            ("votes", c.votes),
            ("outbox", c.outbox),
            ("outbox_pending", c.outbox_pending),
            ("peers", c.peers),
        ] {
            self.metrics
                .rows
                .get_or_create(&vec![("table", table)])
                .set(n as i64);
        }
        Ok(c)
    }

    fn count_pruned(&self, table: &'static str, n: u64) {
        if n > 0 {
            self.metrics
                .pruned
                .get_or_create(&vec![("table", table)])
                .inc_by(n);
        }
    }

    /// Stores reputations.
    pub fn put_reputation(&self, entries: &[(String, u32)]) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(REPUTATION)?;
            for (peer, bps) in entries {
                t.insert(peer.as_str(), *bps)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// All stored reputations.
    pub fn reputation(&self) -> Result<Vec<(String, u32)>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(REPUTATION)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_string(), v.value()));
        }
        Ok(out)
    }
}

/// Removes the `n` least recently seen peer records; returns how many.
fn evict_oldest_peers(t: &mut redb::Table<'_, &str, &[u8]>, n: usize) -> Result<usize, StoreError> {
    if n == 0 {
        return Ok(0);
    }
    let mut all: Vec<(u64, String)> = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let seen = decode_peer(k.value(), v.value()).map_or(0, |p| p.last_seen);
        all.push((seen, k.value().to_string()));
    }
    all.sort_unstable();
    let gone: Vec<String> = all.into_iter().take(n).map(|(_, k)| k).collect();
    for k in &gone {
        t.remove(k.as_str())?;
    }
    Ok(gone.len())
}

fn decode_peer(key: &str, bytes: &[u8]) -> Result<PeerRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_migrated_and_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let s = Store::open(&path).unwrap();
            assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
            s.record_peer("p1", Some("/ip4/127.0.0.1/tcp/1".into()), 10)
                .unwrap();
            s.record_peer("p1", None, 20).unwrap();
        }
        let s = Store::open(&path).unwrap();
        let peers = s.peers().unwrap();
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].1.connections, 2);
        assert_eq!(peers[0].1.last_seen, 20);
        assert_eq!(
            peers[0].1.last_addr.as_deref(),
            Some("/ip4/127.0.0.1/tcp/1")
        );
    }

    #[test]
    fn second_open_is_refused_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let _first = Store::open(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Locked(_)), "{err}");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let s = Store::open(&path).unwrap();
            s.put_meta("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes())
                .unwrap();
        }
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    }

    #[test]
    fn a_corrupt_record_is_quarantined_and_the_rest_survive() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Rec {
            n: u32,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let s = Store::open(&path).unwrap();
            for i in 0..5 {
                s.put_task(&format!("t{i}"), &Rec { n: i }).unwrap();
            }
            s.put_raw("tasks", "t2", b"\xff\x00 not json").unwrap();
            s.put_outbox("o1", &Rec { n: 9 }, true).unwrap();
            s.put_raw("outbox", "o0", b"{\"n\":").unwrap();
        }
        let s = Store::open(&path).unwrap();
        let tasks: Vec<Rec> = s.tasks().unwrap();
        assert_eq!(tasks.len(), 4, "the four good tasks are read");
        assert!(!tasks.contains(&Rec { n: 2 }));
        let outbox: Vec<Rec> = s.outbox().unwrap();
        assert_eq!(outbox, vec![Rec { n: 9 }]);
        assert_eq!(s.quarantined_count(), 2);
        let q = s.quarantined().unwrap();
        assert_eq!(q.len(), 2);
        let t2 = q.iter().find(|r| r.table == "tasks").unwrap();
        assert_eq!(t2.key, "t2");
        assert!(!t2.reason.is_empty());
        assert_eq!(hex::decode(&t2.bytes).unwrap(), b"\xff\x00 not json");
        // Moved, not copied: a second read finds nothing more to quarantine.
        let again: Vec<Rec> = s.tasks().unwrap();
        assert_eq!(again.len(), 4);
        assert_eq!(s.quarantined_count(), 2);
    }

    #[test]
    fn deleted_tasks_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.redb")).unwrap();
        s.put_task("a", &1u32).unwrap();
        s.put_task("b", &2u32).unwrap();
        s.delete_task("a").unwrap();
        s.delete_task("missing").unwrap();
        assert_eq!(s.tasks::<u32>().unwrap(), vec![2]);
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
    struct Entry {
        n: u32,
        state: String,
    }

    fn entry(n: u32, state: &str) -> Entry {
        Entry {
            n,
            state: state.into(),
        }
    }

    #[test]
    fn the_outbox_index_holds_only_pending_entries_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let s = Store::open(&path).unwrap();
            for i in 0..50 {
                assert!(
                    s.insert_outbox_new(&format!("k{i}"), &entry(i, "pending"))
                        .unwrap()
                );
            }
            // A second insert under an existing key (pending or done) is refused.
            assert!(!s.insert_outbox_new("k3", &entry(99, "pending")).unwrap());
            for i in 0..48 {
                s.put_outbox(&format!("k{i}"), &entry(i, "done"), false)
                    .unwrap();
            }
            assert!(!s.insert_outbox_new("k0", &entry(99, "pending")).unwrap());
        }
        let s = Store::open(&path).unwrap();
        let mut pending: Vec<Entry> = s.outbox_pending().unwrap();
        pending.sort_by_key(|e| e.n);
        assert_eq!(pending, vec![entry(48, "pending"), entry(49, "pending")]);
        assert_eq!(s.outbox::<Entry>().unwrap().len(), 50, "the history stays");
        let c = s.counts().unwrap();
        assert_eq!((c.outbox, c.outbox_pending), (50, 2));
        // A pending entry that no longer decodes leaves the index and is quarantined.
        s.put_raw("outbox", "k49", b"{not json").unwrap();
        let pending: Vec<Entry> = s.outbox_pending().unwrap();
        assert_eq!(pending, vec![entry(48, "pending")]);
        assert_eq!(s.quarantined_count(), 1);
        assert_eq!(s.counts().unwrap().outbox_pending, 1);
    }

    #[test]
    fn migrating_a_schema_3_store_indexes_its_pending_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let s = Store::open(&path).unwrap();
            // Written as schema 3 did: the outbox table only, no index.
            for (k, st) in [
                ("a", "pending"),
                ("b", "done"),
                ("c", "abandoned"),
                ("d", "pending"),
            ] {
                let bytes = serde_json::to_vec(&entry(0, st)).unwrap();
                s.put_raw("outbox", k, &bytes).unwrap();
            }
            let tx = s.db.begin_write().unwrap();
            tx.delete_table(OUTBOX_PENDING).unwrap();
            tx.commit().unwrap();
            s.put_meta("schema_version", &3u32.to_be_bytes()).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        let c = s.counts().unwrap();
        assert_eq!((c.outbox, c.outbox_pending), (4, 2));
        assert_eq!(s.outbox_pending::<Entry>().unwrap().len(), 2);
    }

    #[test]
    fn pruning_removes_tasks_with_their_votes_and_never_pending_outbox_entries() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.redb")).unwrap();
        for i in 0..10u32 {
            s.put_task(&format!("t{i}"), &i).unwrap();
            s.put_vote(&format!("t{i}"), &i).unwrap();
        }
        s.put_vote("orphan", &1u32).unwrap();
        let p = s
            .prune_tasks(|_, b| serde_json::from_slice::<u32>(b).unwrap() < 4)
            .unwrap();
        assert_eq!(
            (p.tasks, p.votes),
            (4, 5),
            "4 tasks, their 4 votes and the orphan"
        );
        assert_eq!(s.tasks::<u32>().unwrap(), (4..10).collect::<Vec<_>>());
        assert_eq!(s.votes::<u32>().unwrap(), (4..10).collect::<Vec<_>>());
        s.insert_outbox_new("p", &entry(1, "pending")).unwrap();
        s.insert_outbox_new("d", &entry(2, "pending")).unwrap();
        s.put_outbox("d", &entry(2, "done"), false).unwrap();
        // The predicate says "everything", yet the pending entry stays.
        assert_eq!(s.prune_outbox(|_, _| true).unwrap(), 1);
        assert_eq!(s.outbox::<Entry>().unwrap(), vec![entry(1, "pending")]);
        assert_eq!(
            s.outbox_pending::<Entry>().unwrap(),
            vec![entry(1, "pending")]
        );
    }

    #[test]
    fn peer_records_are_capped_and_stale_ones_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.redb")).unwrap();
        s.set_max_peers(100);
        for i in 0..1000u64 {
            s.record_peer(&format!("peer{i:04}"), None, 1_000 + i)
                .unwrap();
            assert!(s.counts().unwrap().peers <= 100);
        }
        let peers = s.peers().unwrap();
        assert!(peers.len() <= 100 && peers.len() >= 99, "{}", peers.len());
        // The most recently seen survive.
        assert!(peers.iter().any(|(k, _)| k == "peer0999"));
        assert!(!peers.iter().any(|(k, _)| k == "peer0500"));
        // Reconnecting a known peer never evicts.
        let before = s.peers().unwrap().len();
        s.record_peer("peer0999", None, 5_000).unwrap();
        assert_eq!(s.peers().unwrap().len(), before);
        // Older than the cutoff: gone.
        let n = s.prune_peers(1_990).unwrap();
        assert!(n > 0);
        let left = s.peers().unwrap();
        assert!(left.iter().all(|(_, p)| p.last_seen >= 1_990), "{left:?}");
        // Lowering the cap prunes down to it.
        s.set_max_peers(3);
        s.prune_peers(0).unwrap();
        assert_eq!(s.peers().unwrap().len(), 3);
    }

    #[test]
    fn garbage_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        std::fs::write(
            &path,
            b"this is not a database at all, not even close........",
        )
        .unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
    }
}
