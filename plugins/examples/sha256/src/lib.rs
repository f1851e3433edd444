//! SHA-256 of the input, as 64 lower-case hex digits.

use hal9_plugin_sdk::{Error, plugin};
use sha2::{Digest, Sha256};

fn run(input: &[u8]) -> Result<Vec<u8>, Error> {
    let digest = Sha256::digest(input);
    let mut out = Vec::with_capacity(64);
    for b in digest {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
    Ok(out)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

plugin!(
    run,
    manifest = r#"{"abi":1,"name":"sha256","version":"0.1.0"}"#
);
