//! Basic value types: task ids, hashes, salts, commitments, rounds, quorum.

use std::fmt;

use libp2p_identity::PeerId;
use sha3::{Digest, Keccak256};

/// keccak256 over the concatenation of `parts`.
pub fn keccak256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Keccak256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Quorum of a committee of `r` members: ceil(2r/3) in integers,
/// `(2r + 2) / 3`, so 2 of 3, 3 of 4 and 4 of 5 are quorums.
pub const fn quorum(r: usize) -> usize {
    (2 * r).div_ceil(3)
}

macro_rules! hash_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// Lower-case hex with a `0x` prefix.
            pub fn to_hex(&self) -> String {
                format!("0x{}", hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode(&self.0[..6]))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", hex::encode(&self.0[..8]))
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(b: [u8; 32]) -> Self {
                Self(b)
            }
        }
    };
}

hash_newtype!(
    /// Task id: keccak256 of the ABI encoding of the task spec.
    TaskId
);
hash_newtype!(
    /// Result hash R = keccak256(output bytes).
    ResultHash
);
hash_newtype!(
    /// Secret salt of a commitment, supplied by the engine (derived from a
    /// node secret, never random inside the core).
    Salt
);
hash_newtype!(
    /// Commitment H(R || salt || member).
    Commitment
);

impl TaskId {
    /// Task id of ABI-encoded spec bytes: keccak256(spec).
    pub fn of_spec(spec: &[u8]) -> Self {
        Self(keccak256(&[spec]))
    }
}

impl Salt {
    /// The salt of the local node's vote for `task` in `round`:
    /// keccak256("hal9/salt/1" || secret || task || round). `secret` stays on
    /// the node (for example `Keypair::derive_secret(b"hal9/salt")`), so the
    /// salt is unpredictable to others yet the same after a restart.
    pub fn derive(secret: &[u8; 32], task: &TaskId, round: Round) -> Self {
        Self(keccak256(&[
            b"hal9/salt/1",
            secret,
            &task.0,
            &[round.as_u8()],
        ]))
    }
}

impl ResultHash {
    /// R = keccak256(output).
    pub fn of_output(output: &[u8]) -> Self {
        Self(keccak256(&[output]))
    }
}

impl Commitment {
    /// keccak256(R || salt || member), where member is the PeerId's
    /// multihash bytes. Binding the member stops one member from
    /// re-using another's commitment.
    pub fn compute(result: &ResultHash, salt: &Salt, member: &PeerId) -> Self {
        Self(keccak256(&[&result.0, &salt.0, &member.to_bytes()]))
    }
}

/// Maximum length of a CID in bytes (binary form).
pub const MAX_CID_BYTES: usize = 128;

/// Content id of the output in binary form (opaque to consensus, at most
/// [`MAX_CID_BYTES`] long).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cid(Vec<u8>);

impl Cid {
    /// Wrap binary CID bytes; `None` when longer than [`MAX_CID_BYTES`].
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() <= MAX_CID_BYTES).then_some(Self(bytes))
    }
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({})", hex::encode(&self.0))
    }
}

/// Consensus round of a task: the first committee, or the escalation
/// committee of 2r+1 fresh members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Round {
    /// The committee of r drawn with seed = task id.
    Primary,
    /// The committee of 2r+1 drawn after a primary round without quorum.
    Escalation,
}

impl Round {
    /// Wire number of the round.
    pub fn as_u8(self) -> u8 {
        match self {
            Round::Primary => 0,
            Round::Escalation => 1,
        }
    }
    /// Round from its wire number.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Round::Primary),
            1 => Some(Round::Escalation),
            _ => None,
        }
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Round::Primary => f.write_str("primary"),
            Round::Escalation => f.write_str("escalation"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_ceil_two_thirds() {
        let expect = [
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (5, 4),
            (6, 4),
            (7, 5),
            (9, 6),
        ];
        for (r, q) in expect {
            assert_eq!(quorum(r), q, "r = {r}");
            // ceil(2r/3) by definition
            assert_eq!(quorum(r), (2 * r).div_ceil(3));
        }
    }

    #[test]
    fn keccak_matches_known_vector() {
        // keccak256("") is a well-known constant.
        assert_eq!(
            hex::encode(keccak256(&[])),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn salts_differ_per_task_round_and_secret() {
        let t = TaskId([1; 32]);
        let a = Salt::derive(&[7; 32], &t, Round::Primary);
        assert_eq!(a, Salt::derive(&[7; 32], &t, Round::Primary));
        assert_ne!(a, Salt::derive(&[7; 32], &t, Round::Escalation));
        assert_ne!(a, Salt::derive(&[8; 32], &t, Round::Primary));
        assert_ne!(a, Salt::derive(&[7; 32], &TaskId([2; 32]), Round::Primary));
    }

    #[test]
    fn commitment_binds_member() {
        let a = crate::testkit::peer(1);
        let b = crate::testkit::peer(2);
        let r = ResultHash([1; 32]);
        let s = Salt([2; 32]);
        assert_ne!(
            Commitment::compute(&r, &s, &a),
            Commitment::compute(&r, &s, &b)
        );
    }
}
