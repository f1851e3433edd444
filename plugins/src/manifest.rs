//! Plugin manifests: which capabilities and limits a plugin needs.
//!
//! A manifest is a small JSON document. It travels inside the module as a
//! custom section named [`MANIFEST_SECTION`] (the SDK's `plugin!` macro
//! writes it), or beside the module as a file (`<name>.manifest.json`).

use serde::{Deserialize, Serialize};

use crate::{Error, abi::ABI_VERSION};

/// Name of the custom section that holds the manifest.
pub const MANIFEST_SECTION: &str = "hal9.manifest";

/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 16 * 1024;

/// An optional host capability. The core ABI (input, output) needs none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// `hal9::log`: rate-limited log lines.
    Log,
    /// `hal9::random_fill`: deterministic randomness seeded by the task id.
    Random,
}

impl Capability {
    /// All capabilities this host knows.
    pub const ALL: [Capability; 2] = [Capability::Log, Capability::Random];

    /// Name used in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Random => "random",
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resource needs a plugin declares. Each is optional; absent means the
/// host default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestLimits {
    /// Instruction budget (fuel units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Linear memory ceiling in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Output ceiling in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    /// Wall-clock guard in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_clock_ms: Option<u64>,
}

/// The manifest of a plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Host ABI version the plugin was written against.
    pub abi: u32,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Plugin version (free text, usually semver).
    #[serde(default)]
    pub version: String,
    /// Capabilities the plugin needs.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// Limits the plugin needs.
    #[serde(default)]
    pub limits: ManifestLimits,
}

impl Default for Manifest {
    /// The manifest assumed for a module without one: current ABI, no
    /// optional capability, host default limits.
    fn default() -> Self {
        Self {
            abi: ABI_VERSION,
            name: String::new(),
            version: String::new(),
            capabilities: Vec::new(),
            limits: ManifestLimits::default(),
        }
    }
}

impl Manifest {
    /// Parses a manifest from JSON bytes (size-limited).
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(Error::InvalidManifest(format!(
                "expected at most {MAX_MANIFEST_BYTES} bytes, found {}",
                bytes.len()
            )));
        }
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::InvalidManifest(format!("expected manifest JSON: {e}")))?;
        if m.abi != ABI_VERSION {
            return Err(Error::AbiVersion {
                expected: ABI_VERSION,
                found: m.abi,
            });
        }
        Ok(m)
    }

    /// Whether the manifest asks for `cap`.
    pub fn has(&self, cap: Capability) -> bool {
        self.capabilities.contains(&cap)
    }

    /// Reads the manifest from the module's custom section, if present.
    /// Errors when there is more than one such section or it is malformed.
    pub fn from_module(wasm: &[u8]) -> Result<Option<Self>, Error> {
        let mut found: Option<&[u8]> = None;
        for s in custom_sections(wasm)? {
            if s.0 == MANIFEST_SECTION {
                if found.is_some() {
                    return Err(Error::InvalidManifest(format!(
                        "expected one `{MANIFEST_SECTION}` section, found several"
                    )));
                }
                found = Some(s.1);
            }
        }
        found.map(Self::from_json).transpose()
    }
}

/// Lists the custom sections of a module as (name, data).
pub fn custom_sections(wasm: &[u8]) -> Result<Vec<(&str, &[u8])>, Error> {
    use wasmtime::wasmparser::{Parser, Payload};
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| Error::InvalidModule(e.to_string()))?;
        if let Payload::CustomSection(reader) = payload {
            out.push((reader.name(), reader.data()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_manifest() {
        let m = Manifest::from_json(
            br#"{"abi":1,"name":"wc","version":"1.0","capabilities":["log","random"],
                "limits":{"fuel":1000,"memory_bytes":65536}}"#,
        )
        .unwrap();
        assert!(m.has(Capability::Log) && m.has(Capability::Random));
        assert_eq!(m.limits.fuel, Some(1000));
        assert_eq!(m.limits.output_bytes, None);
    }

    #[test]
    fn refuses_bad_manifests() {
        assert!(matches!(
            Manifest::from_json(br#"{"abi":2}"#),
            Err(Error::AbiVersion {
                expected: 1,
                found: 2
            })
        ));
        assert!(matches!(
            Manifest::from_json(br#"{"abi":1,"capabilities":["network"]}"#),
            Err(Error::InvalidManifest(_))
        ));
        assert!(matches!(
            Manifest::from_json(br#"{"abi":1,"oops":true}"#),
            Err(Error::InvalidManifest(_))
        ));
        assert!(matches!(
            Manifest::from_json(&vec![b' '; MAX_MANIFEST_BYTES + 1]),
            Err(Error::InvalidManifest(_))
        ));
    }
}
