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

/// The node store.
#[derive(Debug)]
pub struct Store {
    db: Database,
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
        let store = Self { db };
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
            out.push((k.value().to_string(), decode_peer(k.value(), v.value())?));
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

    fn all_json<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
    ) -> Result<Vec<T>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                    key: k.value().to_string(),
                    reason: e.to_string(),
                })?,
            );
        }
        Ok(out)
    }

    /// Writes a task record.
    pub fn put_task<T: Serialize>(&self, id: &str, record: &T) -> Result<(), StoreError> {
        self.put_json(TASKS, id, record)
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
