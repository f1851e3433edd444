//! The node store: one redb database, opened once per process.
//!
//! Tables carry a schema version in `meta`; [`Store::open`] runs the
//! migrations from the stored version up to [`SCHEMA_VERSION`].

use std::path::Path;

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

/// Current schema version.
pub const SCHEMA_VERSION: u32 = 3;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const PEERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("peers");
/// Task records by hex task id (JSON).
const TASKS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("tasks");
/// The node's own persisted votes by hex task id (JSON), written before a commit leaves.
const VOTES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("votes");
/// The settlement outbox: chain transactions still owed, by entry key (JSON).
const OUTBOX: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("outbox");
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

/// The node store.
#[derive(Debug)]
pub struct Store {
    db: Database,
    quarantined: prometheus_client::metrics::counter::Counter,
}

type Migration = fn(&redb::WriteTransaction) -> Result<(), StoreError>;

/// Migrations, index i upgrades schema i to i+1.
const MIGRATIONS: &[Migration] = &[migrate_0_to_1, migrate_1_to_2, migrate_2_to_3];

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
        let store = Self {
            db,
            quarantined: Default::default(),
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

    /// Records a connection to `peer`.
    pub fn record_peer(
        &self,
        peer: &str,
        addr: Option<String>,
        now: u64,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(PEERS)?;
            let mut rec = match t.get(peer)? {
                Some(v) => decode_peer(peer, v.value())?,
                None => PeerRecord {
                    last_addr: None,
                    last_seen: 0,
                    connections: 0,
                },
            };
            if addr.is_some() {
                rec.last_addr = addr;
            }
            rec.last_seen = now;
            rec.connections += 1;
            let bytes = serde_json::to_vec(&rec).map_err(|e| StoreError::Db(e.to_string()))?;
            t.insert(peer, bytes.as_slice())?;
        }
        tx.commit()?;
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

    /// Registers `hal9_store_quarantined_total`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "hal9_store_quarantined",
            "Corrupt store records moved to the quarantine table",
            self.quarantined.clone(),
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

    /// Writes (or replaces) a settlement outbox entry.
    pub fn put_outbox<T: Serialize>(&self, key: &str, entry: &T) -> Result<(), StoreError> {
        self.put_json(OUTBOX, key, entry)
    }

    /// Writes an outbox entry unless one exists under `key`; true if written.
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
                true
            }
        };
        tx.commit()?;
        Ok(written)
    }

    /// All outbox entries.
    pub fn outbox<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.all_json(OUTBOX)
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
            s.put_outbox("o1", &Rec { n: 9 }).unwrap();
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
