//! The gossip envelope: every hal9 gossip payload is wrapped in it.
//!
//! ```text
//! magic "H9" (2 bytes) | version u8 | kind u8 | payload length u32 BE | payload
//! ```
//!
//! A node *ignores* (forwards nothing, penalises nobody) an envelope with a
//! newer version than it speaks, so the network can be upgraded one node at
//! a time; it *rejects* (and penalises the sender) anything that cannot be
//! decoded.

use bytes::Bytes;

/// The envelope version this build speaks.
pub const VERSION: u8 = 1;
const MAGIC: &[u8; 2] = b"H9";
const HEADER: usize = 8;

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A task announcement (hal9/tasks/1).
    Task = 1,
    /// A batch of signed votes (hal9/votes/1).
    Votes = 2,
    /// A verdict certificate (hal9/certs/1).
    Certificate = 3,
    /// A free-form operator note (hal9/notes/1), used by the devnet and benchmarks.
    Note = 16,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Task),
            2 => Some(Self::Votes),
            3 => Some(Self::Certificate),
            16 => Some(Self::Note),
            _ => None,
        }
    }
}

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Kind of payload.
    pub kind: Kind,
    /// The payload bytes.
    pub payload: Bytes,
}

/// Why an envelope could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A newer version than this node speaks: ignore, do not penalise.
    #[error("envelope version {found} is newer than the supported version {VERSION}")]
    UnsupportedVersion {
        /// Version found on the wire.
        found: u8,
    },
    /// Bytes that no version of the protocol could have produced.
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    /// The payload is larger than the caller's limit.
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Declared payload size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl DecodeError {
    /// True if the message should be ignored rather than rejected.
    pub fn is_ignorable(&self) -> bool {
        matches!(self, Self::UnsupportedVersion { .. })
    }
}

impl Envelope {
    /// Builds an envelope.
    pub fn new(kind: Kind, payload: impl Into<Bytes>) -> Self {
        Self {
            kind,
            payload: payload.into(),
        }
    }

    /// Encodes the envelope.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.payload.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.kind as u8);
        // Payloads are bounded by the gossip limit, far below u32::MAX.
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Decodes an envelope whose payload may be at most `limit` bytes.
    pub fn decode(bytes: &[u8], limit: usize) -> Result<Self, DecodeError> {
        if bytes.len() < HEADER {
            return Err(DecodeError::Malformed("shorter than the 8-byte header"));
        }
        if &bytes[..2] != MAGIC {
            return Err(DecodeError::Malformed("bad magic, expected \"H9\""));
        }
        let version = bytes[2];
        if version == 0 {
            return Err(DecodeError::Malformed("version 0 does not exist"));
        }
        if version > VERSION {
            return Err(DecodeError::UnsupportedVersion { found: version });
        }
        let kind = Kind::from_u8(bytes[3]).ok_or(DecodeError::Malformed("unknown kind"))?;
        let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        if len > limit {
            return Err(DecodeError::TooLarge { size: len, limit });
        }
        if bytes.len() - HEADER != len {
            return Err(DecodeError::Malformed(
                "declared payload length does not match",
            ));
        }
        Ok(Self {
            kind,
            payload: Bytes::copy_from_slice(&bytes[HEADER..]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = Envelope::new(Kind::Note, b"hello".to_vec());
        assert_eq!(Envelope::decode(&e.encode(), 1024).unwrap(), e);
    }

    #[test]
    fn newer_version_is_ignorable_and_garbage_is_not() {
        let mut bytes = Envelope::new(Kind::Note, b"x".to_vec()).encode();
        bytes[2] = VERSION + 1;
        let err = Envelope::decode(&bytes, 1024).unwrap_err();
        assert!(err.is_ignorable(), "{err}");

        for bad in [
            &b""[..],
            b"H9",
            b"XX\x01\x10\0\0\0\0",
            b"H9\x01\x10\0\0\0\x05ab",
        ] {
            let err = Envelope::decode(bad, 1024).unwrap_err();
            assert!(!err.is_ignorable(), "{bad:?} -> {err}");
        }
    }

    #[test]
    fn limit_is_enforced() {
        let bytes = Envelope::new(Kind::Note, vec![0u8; 100]).encode();
        assert_eq!(
            Envelope::decode(&bytes, 99).unwrap_err(),
            DecodeError::TooLarge {
                size: 100,
                limit: 99
            }
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for n in 0..2000 {
            let mut buf = Vec::with_capacity(n % 64);
            for _ in 0..(n % 64) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            if n % 3 == 0 && buf.len() >= 4 {
                buf[..2].copy_from_slice(MAGIC);
                buf[2] = 1;
            }
            let _ = Envelope::decode(&buf, 32);
        }
    }
}
