//! Static description of a module (`hal9 plugin inspect`).

use serde::Serialize;
use wasmtime::{ExternType, Module};

use crate::{
    Error, PluginEngine, Result,
    abi::{self, HOST_MODULE},
    digest::ModuleDigest,
    manifest::{Manifest, custom_sections},
};

/// One import of a module.
#[derive(Clone, Debug, Serialize)]
pub struct ImportInfo {
    /// Import module.
    pub module: String,
    /// Import name.
    pub name: String,
    /// Capability that gates it (`core` for always-available functions,
    /// `unknown` for names outside the ABI).
    pub capability: String,
}

/// What `hal9 plugin inspect` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    /// SHA2-256 of the module bytes, hex.
    pub digest: String,
    /// Size in bytes.
    pub size: usize,
    /// ABI version of the manifest in force (the host's for the default).
    pub abi_version: u32,
    /// Whether the module carries a `hal9.manifest` section.
    pub embedded_manifest: bool,
    /// The manifest in force.
    pub manifest: Manifest,
    /// Imports.
    pub imports: Vec<ImportInfo>,
    /// Exports as `name: kind`.
    pub exports: Vec<String>,
    /// Initial and maximum linear memory, in 64 KiB pages.
    pub memory_pages: Option<(u64, Option<u64>)>,
    /// Custom sections as (name, bytes).
    pub custom_sections: Vec<(String, usize)>,
    /// Time to compile, milliseconds.
    pub compile_ms: f64,
    /// `accepted`, or the reason the host refuses to load it.
    pub verdict: String,
}

/// Inspects `wasm` with the checks of `engine`.
pub fn inspect(
    engine: &PluginEngine,
    wasm: &[u8],
    manifest: Option<Manifest>,
) -> Result<Inspection> {
    let sections: Vec<(String, usize)> = custom_sections(wasm)?
        .into_iter()
        .map(|(n, d)| (n.to_owned(), d.len()))
        .collect();
    let embedded = Manifest::from_module(wasm);
    let embedded_manifest = matches!(embedded, Ok(Some(_)));
    let start = std::time::Instant::now();
    let module = Module::from_binary(engine.wasmtime_engine(), wasm)
        .map_err(|e| Error::InvalidModule(format!("{e:#}")))?;
    let compile_ms = start.elapsed().as_secs_f64() * 1e3;
    let imports = module
        .imports()
        .map(|i| ImportInfo {
            module: i.module().to_owned(),
            name: i.name().to_owned(),
            capability: if i.module() == HOST_MODULE {
                match abi::capability_of(i.name()) {
                    Some(Some(c)) => c.to_string(),
                    Some(None) => "core".into(),
                    None => "unknown".into(),
                }
            } else {
                "unknown".into()
            },
        })
        .collect();
    let exports = module
        .exports()
        .map(|e| {
            let kind = match e.ty() {
                ExternType::Func(f) => format!("{f}"),
                ExternType::Memory(_) => "memory".into(),
                ExternType::Table(_) => "table".into(),
                ExternType::Global(_) => "global".into(),
                ExternType::Tag(_) => "tag".into(),
            };
            format!("{}: {kind}", e.name())
        })
        .collect();
    let memory_pages = module.exports().find_map(|e| match e.ty() {
        ExternType::Memory(m) => Some((m.minimum(), m.maximum())),
        _ => None,
    });
    let verdict = match engine.load_with(wasm, None, manifest.clone()) {
        Ok(_) => "accepted".to_owned(),
        Err(e) => e.to_string(),
    };
    let manifest = match manifest {
        Some(m) => m,
        None => embedded.ok().flatten().unwrap_or_default(),
    };
    Ok(Inspection {
        digest: ModuleDigest::of(wasm).to_hex(),
        size: wasm.len(),
        abi_version: manifest.abi,
        embedded_manifest,
        manifest,
        imports,
        exports,
        memory_pages,
        custom_sections: sections,
        compile_ms,
        verdict,
    })
}
