//! Content identifiers of modules and tasks.

use std::{fmt, str::FromStr};

use sha2::{Digest as _, Sha256};

/// SHA2-256 digest of a module's bytes.
///
/// This is the same digest a raw-leaf CIDv1 (multihash `sha2-256`) carries
/// for a module stored as a single block, so a CID resolver can map a CID
/// onto a `ModuleDigest` and back without rehashing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleDigest(pub [u8; 32]);

impl ModuleDigest {
    /// Hashes module bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ModuleDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ModuleDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModuleDigest({})", self.to_hex())
    }
}

impl FromStr for ModuleDigest {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s).map(Self)
    }
}

/// Identifier of a task: 32 bytes chosen by the network. It seeds the
/// deterministic randomness a plugin sees, so every committee member draws
/// the same numbers for the same task.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TaskId(pub [u8; 32]);

impl TaskId {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.to_hex())
    }
}

impl FromStr for TaskId {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32(s).map(Self)
    }
}

fn parse_hex32(s: &str) -> Result<[u8; 32], crate::Error> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| {
        crate::Error::Usage(format!(
            "expected 64 hex digits, found {} characters ({e})",
            s.len()
        ))
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_of_bytes() {
        // sha256("abc") from FIPS 180-2.
        let d = ModuleDigest::of(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.to_hex().parse::<ModuleDigest>().unwrap(), d);
    }

    #[test]
    fn bad_hex_is_refused() {
        assert!("abcd".parse::<TaskId>().is_err());
        assert!("zz".repeat(32).parse::<TaskId>().is_err());
        let id: TaskId = format!("0x{}", "11".repeat(32)).parse().unwrap();
        assert_eq!(id.0, [0x11; 32]);
    }
}
