//! Operator key files: the secp256k1 key a node signs transactions and
//! EIP-712 `Result`s with.
//!
//! Two formats, told apart by their content:
//! - an encrypted Web3 Secret Storage (v3) keystore, the format geth and
//!   foundry use: a JSON object with `crypto`; it needs its passphrase. The
//!   files hal9 writes also carry the `address`, so the address can be shown
//!   without the passphrase.
//! - a plaintext devnet file `{"plaintext_devnet_key": "0x..", "address": "0x.."}`
//!   for throwaway devnet accounts only; loading one logs a warning.
//!
//! Files are created with mode 0600 and never overwritten.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use alloy::primitives::{Address, B256};
use alloy::signers::local::{LocalSignerError, PrivateKeySigner};
use serde_json::Value;

use crate::error::{MarketError, Result};

/// Largest key file read, in bytes (a keystore is about 500).
const MAX_KEY_FILE: u64 = 64 * 1024;
/// Highest scrypt cost accepted when decrypting (geth's "standard" is 2^18).
const MAX_SCRYPT_LOG_N: u32 = 20;
/// Highest PBKDF2 iteration count accepted when decrypting.
const MAX_PBKDF2_ROUNDS: u64 = 10_000_000;

fn key_err(path: &Path, reason: impl Into<String>) -> MarketError {
    MarketError::KeyFile {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The two formats of an operator key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// An encrypted Web3 Secret Storage keystore.
    Keystore,
    /// A plaintext devnet key.
    PlaintextDevnet,
}

fn read_json(path: &Path) -> Result<Value> {
    let meta = fs::metadata(path).map_err(|e| key_err(path, format!("cannot read: {e}")))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(key_err(
            path,
            format!(
                "expected at most {MAX_KEY_FILE} bytes, found {}",
                meta.len()
            ),
        ));
    }
    let text = fs::read_to_string(path).map_err(|e| key_err(path, format!("cannot read: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        key_err(
            path,
            format!("corrupt: expected a JSON keystore or plaintext devnet key file: {e}"),
        )
    })?;
    Ok(v)
}

fn format_of(path: &Path, v: &Value) -> Result<KeyFormat> {
    if v.get("crypto").or_else(|| v.get("Crypto")).is_some() {
        Ok(KeyFormat::Keystore)
    } else if v.get("plaintext_devnet_key").is_some() {
        Ok(KeyFormat::PlaintextDevnet)
    } else {
        Err(key_err(
            path,
            "corrupt: expected an encrypted keystore (with \"crypto\") or a plaintext devnet \
             key file (with \"plaintext_devnet_key\"), found neither",
        ))
    }
}

fn parse_address(path: &Path, v: &Value) -> Result<Option<Address>> {
    match v.get("address") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.strip_prefix("0x").unwrap_or(s);
            s.parse::<Address>()
                .map(Some)
                .map_err(|e| key_err(path, format!("invalid \"address\" {s:?}: {e}")))
        }
        Some(other) => Err(key_err(
            path,
            format!("invalid \"address\": expected a hex string, found {other}"),
        )),
    }
}

/// Which format `path` holds and the address it declares (if any), without
/// decrypting anything.
pub fn inspect(path: &Path) -> Result<(KeyFormat, Option<Address>)> {
    let v = read_json(path)?;
    Ok((format_of(path, &v)?, parse_address(path, &v)?))
}

/// Loads the operator key at `path`.
///
/// An encrypted keystore needs `passphrase` ([`MarketError::Passphrase`] when
/// it is missing or wrong); a plaintext devnet file ignores it and logs a
/// warning. Missing, unreadable or corrupt files are [`MarketError::KeyFile`]
/// errors naming the path. When the file declares an address, it must match
/// the key.
pub fn load_operator_key(path: &Path, passphrase: Option<&str>) -> Result<PrivateKeySigner> {
    let v = read_json(path)?;
    let declared = parse_address(path, &v)?;
    let signer = match format_of(path, &v)? {
        KeyFormat::PlaintextDevnet => {
            let hex = v
                .get("plaintext_devnet_key")
                .and_then(Value::as_str)
                .ok_or_else(|| key_err(path, "\"plaintext_devnet_key\" must be a hex string"))?;
            let key: B256 = hex.trim().parse().map_err(|e| {
                key_err(
                    path,
                    format!("\"plaintext_devnet_key\" is not 32 hex bytes: {e}"),
                )
            })?;
            let s = PrivateKeySigner::from_bytes(&key)
                .map_err(|e| key_err(path, format!("not a valid secp256k1 key: {e}")))?;
            tracing::warn!(
                target: "hal9::market",
                path = %path.display(),
                address = %s.address(),
                "using a PLAINTEXT operator key: fine for a devnet, never for real funds"
            );
            s
        }
        KeyFormat::Keystore => {
            let Some(pass) = passphrase else {
                return Err(MarketError::Passphrase {
                    path: path.display().to_string(),
                    reason: "is an encrypted keystore and no passphrase was given".into(),
                });
            };
            check_keystore_shape(path, &v)?;
            PrivateKeySigner::decrypt_keystore(path, pass).map_err(|e| match e {
                LocalSignerError::EthKeystoreError(eth_keystore::KeystoreError::MacMismatch) => {
                    MarketError::Passphrase {
                        path: path.display().to_string(),
                        reason: "wrong passphrase (the keystore MAC does not match)".into(),
                    }
                }
                other => key_err(path, format!("cannot decrypt the keystore: {other}")),
            })?
        }
    };
    if let Some(a) = declared
        && a != signer.address()
    {
        return Err(key_err(
            path,
            format!(
                "declares address {a} but holds the key of {}",
                signer.address()
            ),
        ));
    }
    Ok(signer)
}

/// Rejects keystores that decryption would choke on (wrong lengths) or that
/// would take unbounded time (absurd KDF costs), with a clear reason.
fn check_keystore_shape(path: &Path, v: &Value) -> Result<()> {
    let crypto = v.get("crypto").or_else(|| v.get("Crypto"));
    let field = |name: &str| crypto.and_then(|c| c.get(name));
    let hex_len = |val: Option<&Value>| {
        val.and_then(Value::as_str)
            .map(|s| s.strip_prefix("0x").unwrap_or(s).len() / 2)
    };
    let cipher = field("cipher").and_then(Value::as_str).unwrap_or_default();
    if cipher != "aes-128-ctr" {
        return Err(key_err(
            path,
            format!("corrupt keystore: expected cipher aes-128-ctr, found {cipher:?}"),
        ));
    }
    let iv = hex_len(field("cipherparams").and_then(|p| p.get("iv")));
    if iv != Some(16) {
        return Err(key_err(
            path,
            format!("corrupt keystore: expected a 16-byte iv, found {iv:?}"),
        ));
    }
    let kdf = field("kdf").and_then(Value::as_str).unwrap_or_default();
    let params = field("kdfparams");
    let num = |name: &str| params.and_then(|p| p.get(name)).and_then(Value::as_u64);
    if num("dklen") != Some(32) {
        return Err(key_err(
            path,
            format!(
                "corrupt keystore: expected dklen 32, found {:?}",
                num("dklen")
            ),
        ));
    }
    if hex_len(field("mac")) != Some(32) {
        return Err(key_err(path, "corrupt keystore: expected a 32-byte mac"));
    }
    if hex_len(field("ciphertext")) != Some(32) {
        return Err(key_err(
            path,
            "corrupt keystore: expected a 32-byte ciphertext",
        ));
    }
    match kdf {
        "scrypt" => {
            let n = num("n").unwrap_or(0);
            let (r, p) = (num("r").unwrap_or(0), num("p").unwrap_or(0));
            if !n.is_power_of_two()
                || !(2..=1 << MAX_SCRYPT_LOG_N).contains(&n)
                || r == 0
                || p == 0
                || r.saturating_mul(p) > 64
            {
                return Err(key_err(
                    path,
                    format!(
                        "corrupt keystore: unsupported scrypt parameters n={n} r={r} p={p} \
                         (n a power of two up to 2^{MAX_SCRYPT_LOG_N}, r*p at most 64)"
                    ),
                ));
            }
        }
        "pbkdf2" => {
            let c = num("c").unwrap_or(0);
            if c == 0 || c > MAX_PBKDF2_ROUNDS {
                return Err(key_err(
                    path,
                    format!("corrupt keystore: unsupported pbkdf2 iteration count {c}"),
                ));
            }
        }
        other => {
            return Err(key_err(
                path,
                format!("corrupt keystore: expected kdf scrypt or pbkdf2, found {other:?}"),
            ));
        }
    }
    Ok(())
}

/// Creates `path` empty with mode 0600; fails if it exists.
fn create_private(path: &Path) -> Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                key_err(path, "already exists; refusing to overwrite a key file")
            } else {
                key_err(path, format!("cannot create: {e}"))
            }
        })
}

fn finish(path: &Path, mut f: fs::File, bytes: &[u8]) -> Result<()> {
    let r = f
        .write_all(bytes)
        .and_then(|()| f.set_len(bytes.len() as u64))
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(0o600)));
    r.map_err(|e| key_err(path, format!("cannot write: {e}")))
}

/// Writes `signer` to a new encrypted keystore at `path` (mode 0600, never
/// overwriting), with the address in clear so it can be shown without the
/// passphrase.
pub fn write_encrypted(path: &Path, signer: &PrivateKeySigner, passphrase: &str) -> Result<()> {
    if passphrase.is_empty() {
        return Err(MarketError::Passphrase {
            path: path.display().to_string(),
            reason: "refusing to encrypt with an empty passphrase".into(),
        });
    }
    let (dir, name) = match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(d), Some(n)) => (
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            },
            n,
        ),
        _ => return Err(key_err(path, "not a file path")),
    };
    // Reserve the name with the right mode first; eth-keystore then rewrites
    // the file in place (it truncates, so the mode stays 0600).
    let f = create_private(path)?;
    let result = (|| {
        let secret = signer.to_bytes();
        eth_keystore::encrypt_key(
            dir,
            &mut rand::thread_rng(),
            secret.as_slice(),
            passphrase,
            Some(name),
        )
        .map_err(|e| key_err(path, format!("cannot encrypt: {e}")))?;
        let mut v = read_json(path)?;
        if let Value::Object(m) = &mut v {
            m.insert("address".into(), Value::String(hex_lower(signer.address())));
        }
        let text = serde_json::to_vec_pretty(&v).map_err(|e| key_err(path, e.to_string()))?;
        let f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(|e| key_err(path, format!("cannot write: {e}")))?;
        finish(path, f, &text)
    })();
    drop(f);
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// Writes `signer` in clear to a new devnet key file at `path` (mode 0600,
/// never overwriting). Only for throwaway devnet accounts.
pub fn write_plaintext_devnet(path: &Path, signer: &PrivateKeySigner) -> Result<()> {
    let v = serde_json::json!({
        "plaintext_devnet_key": signer.to_bytes().to_string(),
        "address": signer.address().to_checksum(None),
    });
    let text = serde_json::to_vec_pretty(&v).map_err(|e| key_err(path, e.to_string()))?;
    let f = create_private(path)?;
    let r = finish(path, f, &text);
    if r.is_err() {
        let _ = fs::remove_file(path);
    }
    r
}

/// Geth's keystore address form: lowercase hex without `0x`.
fn hex_lower(a: Address) -> String {
    let s = format!("{a:x}");
    s.strip_prefix("0x").map(str::to_owned).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn encrypted_round_trip_mode_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("operator.json");
        let s = PrivateKeySigner::random();
        write_encrypted(&p, &s, "correct horse").unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(
            inspect(&p).unwrap(),
            (KeyFormat::Keystore, Some(s.address()))
        );
        let back = load_operator_key(&p, Some("correct horse")).unwrap();
        assert_eq!(back.address(), s.address());
        assert_eq!(back.to_bytes(), s.to_bytes());
        let e = write_encrypted(&p, &PrivateKeySigner::random(), "x").unwrap_err();
        assert!(e.to_string().contains("refusing to overwrite"), "{e}");
        assert_eq!(
            load_operator_key(&p, Some("correct horse"))
                .unwrap()
                .address(),
            s.address()
        );
    }

    #[test]
    fn wrong_or_missing_passphrase_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        write_encrypted(&p, &PrivateKeySigner::random(), "right").unwrap();
        let e = load_operator_key(&p, Some("wrong")).unwrap_err();
        assert!(matches!(e, MarketError::Passphrase { .. }), "{e:?}");
        assert!(e.to_string().contains("wrong passphrase"), "{e}");
        let e = load_operator_key(&p, None).unwrap_err();
        assert!(e.to_string().contains("no passphrase"), "{e}");
        assert!(
            write_encrypted(&dir.path().join("e.json"), &PrivateKeySigner::random(), "").is_err()
        );
    }

    #[test]
    fn plaintext_devnet_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dev.json");
        let s = PrivateKeySigner::random();
        write_plaintext_devnet(&p, &s).unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(
            inspect(&p).unwrap(),
            (KeyFormat::PlaintextDevnet, Some(s.address()))
        );
        assert_eq!(load_operator_key(&p, None).unwrap().address(), s.address());
        assert_eq!(
            load_operator_key(&p, Some("ignored")).unwrap().address(),
            s.address()
        );
        assert!(write_plaintext_devnet(&p, &s).is_err(), "no overwrite");
    }

    #[test]
    fn corrupt_missing_and_mismatched_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.json");
        let cases: &[&str] = &[
            "not json",
            "{}",
            r#"{"plaintext_devnet_key": "0x1234"}"#,
            r#"{"plaintext_devnet_key": 5}"#,
            r#"{"crypto": {"cipher": "aes-128-ctr"}}"#,
            r#"{"plaintext_devnet_key": "0x0000000000000000000000000000000000000000000000000000000000000000"}"#,
        ];
        for c in cases {
            fs::write(&p, c).unwrap();
            let e = load_operator_key(&p, Some("x")).unwrap_err();
            assert!(e.to_string().contains("bad.json"), "{c}: {e}");
        }
        // A keystore whose iv is too short would make the decryptor panic: refused first.
        let good = dir.path().join("good.json");
        write_encrypted(&good, &PrivateKeySigner::random(), "pw").unwrap();
        let mut v: Value = serde_json::from_str(&fs::read_to_string(&good).unwrap()).unwrap();
        v["crypto"]["cipherparams"]["iv"] = Value::String("00".into());
        fs::write(&p, v.to_string()).unwrap();
        let e = load_operator_key(&p, Some("pw")).unwrap_err();
        assert!(e.to_string().contains("iv"), "{e}");
        // The declared address must be the key's.
        let other = PrivateKeySigner::random();
        let s = PrivateKeySigner::random();
        let text = serde_json::json!({
            "plaintext_devnet_key": s.to_bytes().to_string(),
            "address": other.address().to_string(),
        });
        fs::write(&p, text.to_string()).unwrap();
        let e = load_operator_key(&p, None).unwrap_err();
        assert!(e.to_string().contains("declares address"), "{e}");
        let e = load_operator_key(&dir.path().join("missing.json"), None).unwrap_err();
        assert!(e.to_string().contains("missing.json"), "{e}");
    }
}
