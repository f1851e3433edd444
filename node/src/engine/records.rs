//! What the engine keeps in the store and shows through the API.
//!
//! The task record is plain data and is the control API's type: it is
//! defined in `hal9-api` (so the record stored is the record shown) and
//! re-exported here for the engine.

pub use hal9_api::{
    AttestRecord, ChainRecord, EquivocationRecord, SettlementRecord, TaskRecord, TaskStatus,
    VerdictRecord,
};
use hal9_consensus::{Cid, PersistedVote, ResultHash, Round, Salt, TaskId, TaskParams};
use serde::{Deserialize, Serialize};

/// A [`PersistedVote`] in JSON-friendly form.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoteRecord {
    task: String,
    r: usize,
    capability: Option<String>,
    round: u8,
    result: String,
    salt: String,
    cid: String,
    round_started_at: u64,
    /// The committee fixed on chain (chain mode), peer ids.
    #[serde(default)]
    committee: Option<Vec<String>>,
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

impl VoteRecord {
    /// From the consensus type.
    pub fn from_vote(v: &PersistedVote) -> Self {
        Self {
            task: hex::encode(v.task.0),
            r: v.params.r,
            capability: v.params.capability.clone(),
            round: v.round.as_u8(),
            result: hex::encode(v.result.0),
            salt: hex::encode(v.salt.0),
            cid: hex::encode(v.cid.as_bytes()),
            round_started_at: v.round_started_at,
            committee: v
                .params
                .committee
                .as_ref()
                .map(|c| c.iter().map(|p| p.to_string()).collect()),
        }
    }

    /// Back to the consensus type; `None` if the record is corrupt.
    pub fn to_vote(&self) -> Option<PersistedVote> {
        Some(PersistedVote {
            task: TaskId(unhex32(&self.task)?),
            params: TaskParams {
                r: self.r,
                capability: self.capability.clone(),
                committee: match &self.committee {
                    Some(c) => Some(
                        c.iter()
                            .map(|p| p.parse().ok())
                            .collect::<Option<Vec<_>>>()?,
                    ),
                    None => None,
                },
            },
            round: Round::from_u8(self.round)?,
            result: ResultHash(unhex32(&self.result)?),
            salt: Salt(unhex32(&self.salt)?),
            cid: Cid::new(hex::decode(&self.cid).ok()?)?,
            round_started_at: self.round_started_at,
        })
    }
}
