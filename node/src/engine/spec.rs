//! The task spec: the Solidity struct `TaskSpec` of `contracts/src/Hal9Types.sol`,
//! ABI-encoded, so that the task id keccak256(abi.encode(spec)) is the same
//! bytes on and off chain.

use alloy_sol_types::{SolValue, sol};
use hal9_consensus::{TaskAnnouncement, TaskId, keccak256, wire::MAX_TASK_ANNOUNCEMENT_BYTES};
use hal9_p2p::wire::{DecodeError, Envelope, Kind};

use super::cid::RawCid;

sol! {
    /// Mirror of `TaskSpec` in contracts/src/Hal9Types.sol (field order matters).
    #[derive(Debug, PartialEq, Eq)]
    struct TaskSpec {
        bytes programCid;
        bytes32 inputHash;
        bytes inputCid;
        uint16 replicas;
        uint64 fuelLimit;
        uint64 capabilities;
        address submitter;
        uint256 nonce;
        uint64 deadline;
    }
}

/// Smallest replication factor.
pub const MIN_REPLICAS: u16 = 3;
/// Largest replication factor.
pub const MAX_REPLICAS: u16 = 64;
/// Largest input carried inline in the task message. A larger input goes
/// to IPFS and the spec names it by CID (`inputCid`), so task gossip stays
/// small and a member that missed the message can still fetch the input.
pub const MAX_INLINE_INPUT: usize = 16 * 1024;
/// Network maximum of an input named by CID: members fetch at most this
/// many bytes, and a larger input is a deterministic failure.
pub const MAX_INPUT_BYTES: usize = 16 << 20;
/// Network maximum of a task's fuel limit. Members run a task with exactly
/// the fuel its spec names; a spec asking for more is refused when it is
/// submitted (and by every member's task validator), never capped. 10 G
/// units finish within the 60 s wall-clock guard ([`EXEC_WALL_CLOCK`]) on a
/// host that runs at least about 170 M units per second.
pub const MAX_FUEL: u64 = 10_000_000_000;
/// Network maximum of a task's output: writing more is a deterministic
/// failure, the same on every member whatever its local plugin settings.
pub const MAX_OUTPUT_BYTES: u64 = 4 << 20;
/// Wall-clock guard of one task execution. Hitting it is not a result (it
/// depends on the host): the member abstains.
pub const EXEC_WALL_CLOCK: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a spec or task message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// ABI decoding failed.
    #[error("task spec is not a valid ABI-encoded TaskSpec: {0}")]
    Abi(String),
    /// A field is out of range.
    #[error("invalid task spec: {0}")]
    Invalid(String),
    /// The message framing is wrong.
    #[error("malformed task message: {0}")]
    Malformed(String),
    /// A newer message version.
    #[error("unsupported task message version {0}")]
    Unsupported(u16),
}

impl TaskSpec {
    /// ABI encoding (`abi.encode(spec)`).
    pub fn encode(&self) -> Vec<u8> {
        self.abi_encode()
    }

    /// Decodes and validates untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, SpecError> {
        let spec = Self::abi_decode_validate(bytes).map_err(|e| SpecError::Abi(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// keccak256(abi.encode(spec)).
    pub fn id(&self) -> TaskId {
        TaskId::of_spec(&self.encode())
    }

    /// The program's CID.
    pub fn program(&self) -> Result<RawCid, SpecError> {
        RawCid::from_bytes(&self.programCid)
            .map_err(|e| SpecError::Invalid(format!("programCid: {e}")))
    }

    /// Range checks.
    pub fn validate(&self) -> Result<(), SpecError> {
        if !(MIN_REPLICAS..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(SpecError::Invalid(format!(
                "replicas must be between {MIN_REPLICAS} and {MAX_REPLICAS}, found {}",
                self.replicas
            )));
        }
        if self.fuelLimit == 0 {
            return Err(SpecError::Invalid(
                "fuel limit must be at least 1, found 0".into(),
            ));
        }
        if self.fuelLimit > MAX_FUEL {
            return Err(SpecError::Invalid(format!(
                "fuel limit {} exceeds the network maximum of {MAX_FUEL}",
                self.fuelLimit
            )));
        }
        self.program()?;
        self.input_cid()?;
        Ok(())
    }

    /// The capability a standalone committee is drawn on: capability bit 0
    /// is WASM execution (`"wasm"` in the genesis file), bit n > 0 is
    /// `"cap<n>"`. Standalone sortition draws on one capability, so a spec
    /// naming several bits is refused there (chain mode draws on all bits).
    pub fn standalone_capability(&self) -> Result<Option<String>, SpecError> {
        match self.capabilities {
            0 => Ok(None),
            c if c.is_power_of_two() => Ok(Some(match c.trailing_zeros() {
                0 => "wasm".to_string(),
                n => format!("cap{n}"),
            })),
            c => Err(SpecError::Invalid(format!(
                "standalone committees are drawn on one capability, found capability bits {c:#x}"
            ))),
        }
    }

    /// The input's CID, when the input is not carried inline.
    pub fn input_cid(&self) -> Result<Option<RawCid>, SpecError> {
        if self.inputCid.is_empty() {
            return Ok(None);
        }
        RawCid::from_bytes(&self.inputCid)
            .map(Some)
            .map_err(|e| SpecError::Invalid(format!("inputCid: {e}")))
    }
}

/// A task as gossiped on `hal9/tasks/1`: the announcement (task id + ABI
/// spec) and the inline input (possibly empty when the spec names the
/// input by CID). Framing inside the envelope:
/// `u32 BE announcement length | announcement | u32 BE input length | input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMessage {
    /// Decoded, validated spec.
    pub spec: TaskSpec,
    /// Task id.
    pub id: TaskId,
    /// Inline input; keccak256(input) == spec.inputHash. May be empty when
    /// the spec names the input by CID (members then fetch and check it).
    pub input: Vec<u8>,
}

/// Largest task message payload.
pub const MAX_TASK_MESSAGE: usize = 8 + MAX_TASK_ANNOUNCEMENT_BYTES + MAX_INLINE_INPUT;

impl TaskMessage {
    /// Builds a message, checking the input against the spec.
    pub fn new(spec: TaskSpec, input: Vec<u8>) -> Result<Self, SpecError> {
        spec.validate()?;
        // An input named by CID may also travel inline (chain mode: the
        // gossip is a head start, the CID the fallback); inline bytes are
        // checked against the spec either way.
        if spec.input_cid()?.is_some() && input.is_empty() {
            return Ok(Self {
                id: spec.id(),
                spec,
                input,
            });
        }
        if input.len() > MAX_INLINE_INPUT {
            return Err(SpecError::Invalid(format!(
                "input of {} bytes exceeds the inline limit of {MAX_INLINE_INPUT}; name it by CID",
                input.len()
            )));
        }
        if keccak256(&[&input]) != spec.inputHash.0 {
            return Err(SpecError::Invalid(
                "inputHash does not match keccak256(input)".into(),
            ));
        }
        Ok(Self {
            id: spec.id(),
            spec,
            input,
        })
    }

    /// Envelope bytes for the tasks topic.
    pub fn encode(&self) -> Vec<u8> {
        let ann = TaskAnnouncement::new(self.spec.encode())
            .map(|a| a.encode())
            .unwrap_or_default();
        let mut p = Vec::with_capacity(8 + ann.len() + self.input.len());
        p.extend_from_slice(&(ann.len() as u32).to_be_bytes());
        p.extend_from_slice(&ann);
        p.extend_from_slice(&(self.input.len() as u32).to_be_bytes());
        p.extend_from_slice(&self.input);
        Envelope::new(Kind::Task, p).encode()
    }

    /// Decodes and validates untrusted envelope bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, SpecError> {
        let env = Envelope::decode(bytes, MAX_TASK_MESSAGE).map_err(|e| match e {
            DecodeError::UnsupportedVersion { found } => SpecError::Unsupported(found.into()),
            other => SpecError::Malformed(other.to_string()),
        })?;
        if env.kind != Kind::Task {
            return Err(SpecError::Malformed("expected a task envelope".into()));
        }
        let p = &env.payload[..];
        let (ann, rest) = take_framed(p, MAX_TASK_ANNOUNCEMENT_BYTES)?;
        let (input, rest) = take_framed(rest, MAX_INLINE_INPUT)?;
        if !rest.is_empty() {
            return Err(SpecError::Malformed("trailing bytes".into()));
        }
        let ann = TaskAnnouncement::decode(ann).map_err(|e| match e {
            hal9_consensus::DecodeError::UnsupportedVersion { found, .. } => {
                SpecError::Unsupported(found)
            }
            other => SpecError::Malformed(other.to_string()),
        })?;
        let spec = TaskSpec::decode(&ann.spec)?;
        let msg = Self::new(spec, input.to_vec())?;
        if msg.id != ann.task {
            return Err(SpecError::Malformed(
                "task id does not match the spec".into(),
            ));
        }
        Ok(msg)
    }
}

fn take_framed(p: &[u8], limit: usize) -> Result<(&[u8], &[u8]), SpecError> {
    if p.len() < 4 {
        return Err(SpecError::Malformed("truncated length".into()));
    }
    let len = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
    if len > limit {
        return Err(SpecError::Malformed(format!(
            "field of {len} bytes exceeds its limit of {limit}"
        )));
    }
    let rest = &p[4..];
    if rest.len() < len {
        return Err(SpecError::Malformed("truncated field".into()));
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_sol_types::private::{Address, B256, Bytes, U256};

    pub(crate) fn spec(input: &[u8], replicas: u16) -> TaskSpec {
        TaskSpec {
            programCid: Bytes::from(RawCid::of(b"program").to_bytes()),
            inputHash: B256::from(keccak256(&[input])),
            inputCid: Bytes::new(),
            replicas,
            fuelLimit: 1_000_000,
            capabilities: 0,
            submitter: Address::ZERO,
            nonce: U256::from(7),
            deadline: 0,
        }
    }

    #[test]
    fn round_trip_and_id_is_keccak_of_abi() {
        let m = TaskMessage::new(spec(b"hi", 3), b"hi".to_vec()).unwrap();
        let back = TaskMessage::decode(&m.encode()).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.id.0, keccak256(&[&m.spec.encode()]));
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        let err = TaskMessage::new(spec(b"hi", 2), b"hi".to_vec()).unwrap_err();
        assert!(err.to_string().contains("replicas"), "{err}");
        let err = TaskMessage::new(spec(b"hi", 3), b"other".to_vec()).unwrap_err();
        assert!(err.to_string().contains("inputHash"), "{err}");
        let mut s = spec(b"", 3);
        s.programCid = Bytes::from_static(b"\x01\x55");
        assert!(TaskMessage::new(s, vec![]).is_err());
        assert!(TaskMessage::decode(b"H9\x01\x01\0\0\0\x01x").is_err());
    }

    #[test]
    fn fuel_above_the_network_maximum_is_refused_not_capped() {
        let mut s = spec(b"", 3);
        s.fuelLimit = MAX_FUEL;
        assert!(TaskMessage::new(s.clone(), vec![]).is_ok());
        s.fuelLimit = MAX_FUEL + 1;
        let err = TaskMessage::new(s.clone(), vec![]).unwrap_err();
        assert!(err.to_string().contains("network maximum"), "{err}");
        s.fuelLimit = 0;
        assert!(TaskMessage::new(s, vec![]).is_err());
    }

    #[test]
    fn capability_bits_name_genesis_capabilities() {
        let mut s = spec(b"", 3);
        assert_eq!(s.standalone_capability().unwrap(), None);
        s.capabilities = 1;
        assert_eq!(s.standalone_capability().unwrap().as_deref(), Some("wasm"));
        s.capabilities = 1 << 5;
        assert_eq!(s.standalone_capability().unwrap().as_deref(), Some("cap5"));
        s.capabilities = 3;
        let err = s.standalone_capability().unwrap_err();
        assert!(err.to_string().contains("0x3"), "{err}");
    }

    #[test]
    fn inputs_by_cid_travel_inline_only_when_small_and_matching() {
        let big = vec![7u8; MAX_INLINE_INPUT + 1];
        // Too big to go inline.
        let err = TaskMessage::new(spec(&big, 3), big.clone()).unwrap_err();
        assert!(err.to_string().contains("inline limit"), "{err}");
        let mut s = spec(&big, 3);
        s.inputCid = Bytes::from(RawCid::of(&big).to_bytes());
        let m = TaskMessage::new(s.clone(), vec![]).unwrap();
        assert_eq!(TaskMessage::decode(&m.encode()).unwrap(), m);
        // By CID and inline at once: the inline bytes must be the input.
        assert!(TaskMessage::new(s.clone(), vec![1]).is_err());
        let small = b"small".to_vec();
        let mut both = spec(&small, 3);
        both.inputCid = Bytes::from(RawCid::of(&small).to_bytes());
        let m = TaskMessage::new(both.clone(), small.clone()).unwrap();
        assert_eq!(TaskMessage::decode(&m.encode()).unwrap(), m);
        assert!(TaskMessage::new(both, b"other".to_vec()).is_err());
        // A CID that does not parse is refused.
        s.inputCid = Bytes::from_static(b"\x01\x55\x12");
        assert!(TaskMessage::new(s, vec![]).is_err());
    }

    #[test]
    fn truncated_messages_never_panic() {
        let bytes = TaskMessage::new(spec(b"abc", 3), b"abc".to_vec())
            .unwrap()
            .encode();
        for n in 0..bytes.len() {
            let mut cut = bytes[..n].to_vec();
            if cut.len() >= 8 {
                let len = (cut.len() - 8) as u32;
                cut[4..8].copy_from_slice(&len.to_be_bytes());
            }
            assert!(TaskMessage::decode(&cut).is_err());
        }
    }
}
