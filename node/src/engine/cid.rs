//! CIDv1 with a SHA-256 multihash, as IPFS writes them (`b` + base32).
//!
//! A program or output of at most one block (256 KiB) added with raw leaves
//! has the CID `CIDv1(raw, sha2-256(bytes))`, so its CID names its digest.

use std::{fmt, str::FromStr};

/// Multicodec of raw blocks.
pub const RAW: u64 = 0x55;
/// Multicodec of dag-pb (UnixFS) nodes.
pub const DAG_PB: u64 = 0x70;
const SHA2_256: u64 = 0x12;

/// A CIDv1 whose multihash is SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RawCid {
    codec: u64,
    digest: [u8; 32],
}

impl RawCid {
    /// The raw-leaf CID of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Self {
            codec: RAW,
            digest: sha2::Sha256::digest(bytes).into(),
        }
    }

    /// Multicodec of the block.
    pub fn codec(&self) -> u64 {
        self.codec
    }

    /// SHA-256 digest of the block.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![1];
        varint(self.codec, &mut out);
        varint(SHA2_256, &mut out);
        out.push(32);
        out.extend_from_slice(&self.digest);
        out
    }

    /// Parses the binary form.
    pub fn from_bytes(b: &[u8]) -> Result<Self, String> {
        let mut i = 0;
        let version = read_varint(b, &mut i)?;
        if version != 1 {
            return Err(format!("expected CID version 1, found {version}"));
        }
        let codec = read_varint(b, &mut i)?;
        if codec != RAW && codec != DAG_PB {
            return Err(format!("expected codec raw or dag-pb, found 0x{codec:x}"));
        }
        let mh = read_varint(b, &mut i)?;
        if mh != SHA2_256 {
            return Err(format!("expected a sha2-256 multihash, found 0x{mh:x}"));
        }
        let len = read_varint(b, &mut i)?;
        if len != 32 || b.len() != i + 32 {
            return Err("expected a 32-byte digest".into());
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&b[i..]);
        Ok(Self { codec, digest })
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(b: &[u8], i: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..63).step_by(7) {
        let byte = *b.get(*i).ok_or("truncated CID")?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl fmt::Display for RawCid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        let mut s = String::with_capacity(1 + bytes.len() * 8 / 5 + 1);
        s.push('b');
        let (mut acc, mut bits) = (0u32, 0u32);
        for &byte in &bytes {
            acc = (acc << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                s.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
            }
        }
        if bits > 0 {
            s.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
        }
        f.write_str(&s)
    }
}

impl fmt::Debug for RawCid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for RawCid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let body = s
            .strip_prefix('b')
            .ok_or_else(|| format!("expected a base32 CIDv1 starting with 'b', found {s:?}"))?;
        let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
        for c in body.bytes() {
            let v = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or_else(|| format!("invalid base32 character {:?} in CID", c as char))?;
            acc = (acc << 5) | v as u32;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        Self::from_bytes(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_cid_of_empty_raw_block() {
        // The well-known CIDv1 (raw, sha2-256) of zero bytes.
        let cid = RawCid::of(b"");
        assert_eq!(
            cid.to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        assert_eq!(cid.to_string().parse::<RawCid>().unwrap(), cid);
        assert_eq!(RawCid::from_bytes(&cid.to_bytes()).unwrap(), cid);
    }

    #[test]
    fn garbage_is_an_error() {
        for s in ["", "b", "Qm123", "bafy!!", "bafkreihdwdcefgh4dqkjv67uzcmw7"] {
            assert!(s.parse::<RawCid>().is_err(), "{s}");
        }
        assert!(RawCid::from_bytes(&[1, 0x55, 0x12, 31]).is_err());
    }
}
