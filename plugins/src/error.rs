//! Errors of the plugin runtime.
//!
//! Every failure a module or an execution can produce has its own variant so
//! the caller (the consensus engine, the CLI) can tell which limit was hit or
//! which trap occurred without parsing strings.

use std::{path::PathBuf, time::Duration};

use crate::digest::ModuleDigest;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading, inspecting, building or
/// running a plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- loading -----
    /// The bytes are not a WebAssembly binary module.
    #[error("not a WebAssembly module: expected the magic bytes 00 61 73 6d, found {found}")]
    NotWasm {
        /// Hex of the first bytes found (at most 8).
        found: String,
    },
    /// The module is larger than the host accepts.
    #[error("module too large: expected at most {limit} bytes, found {size}")]
    ModuleTooLarge {
        /// Size of the module in bytes.
        size: usize,
        /// Host limit in bytes.
        limit: usize,
    },
    /// The module bytes do not hash to the digest they were announced with.
    #[error("module digest mismatch: expected {expected}, found {found}")]
    DigestMismatch {
        /// Digest the caller expected.
        expected: ModuleDigest,
        /// Digest of the bytes that were given.
        found: ModuleDigest,
    },
    /// wasmtime refused the module (validation or compilation failed).
    #[error("invalid module: {0}")]
    InvalidModule(String),
    /// The `hal9.manifest` section or manifest file is malformed.
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    /// The manifest declares an ABI version this host does not speak.
    #[error("unsupported ABI version: expected {expected}, found {found}")]
    AbiVersion {
        /// ABI version of this host.
        expected: u32,
        /// ABI version the plugin declares.
        found: u32,
    },
    /// The module imports a host function from a module other than `hal9`,
    /// or a name the ABI does not define.
    #[error("unknown import {module}::{name}: expected one of the hal9 ABI v1 functions")]
    UnknownImport {
        /// Import module name.
        module: String,
        /// Import field name.
        name: String,
    },
    /// The module imports a function whose capability was not granted.
    #[error(
        "import hal9::{name} needs capability `{capability}`, which was not granted (granted: {granted})"
    )]
    ImportNotGranted {
        /// Imported function.
        name: String,
        /// Capability that gates it.
        capability: String,
        /// Capabilities that were granted, comma separated.
        granted: String,
    },
    /// The manifest asks for a capability the host does not offer.
    #[error("manifest requests capability `{0}`, which this host does not grant")]
    CapabilityRefused(String),
    /// The manifest asks for more of a resource than the host allows.
    #[error("manifest requests {what} = {requested}, expected at most {limit}")]
    ManifestLimit {
        /// Which resource.
        what: &'static str,
        /// Requested amount.
        requested: u64,
        /// Host ceiling.
        limit: u64,
    },
    /// A required export is absent or has the wrong type.
    #[error("missing export `{name}`: expected {expected}")]
    MissingExport {
        /// Name of the export.
        name: &'static str,
        /// What was expected, e.g. `func () -> i32`.
        expected: &'static str,
    },
    /// An import has the right name but the wrong signature.
    #[error("import hal9::{name} has the wrong type: {detail}")]
    ImportType {
        /// Imported function.
        name: String,
        /// wasmtime's explanation.
        detail: String,
    },
    /// `execute` was called for a digest that is not in the cache.
    #[error("module {0} is not loaded")]
    NotLoaded(ModuleDigest),

    // ----- execution -----
    /// The input is larger than the host accepts.
    #[error("input too large: expected at most {limit} bytes, found {size}")]
    InputTooLarge {
        /// Input size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// The instruction budget ran out.
    #[error("out of fuel: the execution used its whole budget of {limit} units")]
    OutOfFuel {
        /// Fuel budget of the execution.
        limit: u64,
    },
    /// The wall-clock guard fired (epoch interruption).
    #[error("wall-clock limit hit: expected to finish within {limit:?}")]
    Timeout {
        /// Wall-clock limit of the execution.
        limit: Duration,
    },
    /// Linear memory growth beyond the limit was attempted.
    #[error("memory limit hit: expected at most {limit} bytes, module asked for {requested}")]
    MemoryLimit {
        /// Limit in bytes.
        limit: u64,
        /// Size that was requested in bytes.
        requested: u64,
    },
    /// Table growth beyond the limit was attempted.
    #[error("table limit hit: expected at most {limit} elements, module asked for {requested}")]
    TableLimit {
        /// Limit in elements.
        limit: u64,
        /// Requested elements.
        requested: u64,
    },
    /// The wasm call stack exceeded its bound.
    #[error("stack overflow: call depth exceeded the {limit}-byte stack")]
    StackOverflow {
        /// Stack size in bytes.
        limit: usize,
    },
    /// The plugin wrote more output than allowed.
    #[error("output too large: expected at most {limit} bytes, plugin tried to write {attempted}")]
    OutputTooLarge {
        /// Limit in bytes.
        limit: usize,
        /// Total size the plugin attempted to reach.
        attempted: u64,
    },
    /// A host call passed a pointer/length outside linear memory.
    #[error("bad guest pointer in hal9::{call}: range {ptr}+{len} is outside linear memory")]
    BadPointer {
        /// Host function.
        call: &'static str,
        /// Pointer.
        ptr: u32,
        /// Length.
        len: u32,
    },
    /// A WebAssembly trap (unreachable, division by zero, out of bounds...).
    #[error("trap: {0}")]
    Trap(String),
    /// The plugin ran and reported an error of its own.
    #[error("plugin returned error code {code}: {message}")]
    Guest {
        /// Non-zero status returned by `hal9_run`.
        code: i32,
        /// Message the plugin wrote (lossy UTF-8, truncated).
        message: String,
    },
    /// All execution slots of the pooling allocator are busy.
    #[error("no free instance slot: {0}")]
    Busy(String),
    /// The engine itself failed (configuration, host bug).
    #[error("engine error: {0}")]
    Engine(String),

    // ----- tooling -----
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// Path involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Building a plugin with cargo failed.
    #[error("build failed: {0}")]
    Build(String),
    /// A command-line argument is invalid.
    #[error("invalid argument: {0}")]
    Usage(String),
}

impl Error {
    /// Whether every honest node running the same module on the same input
    /// with the same limits reaches this same error. Consensus may commit to
    /// deterministic failures; non-deterministic ones (wall clock, busy
    /// host, I/O) must not be committed to.
    pub fn is_deterministic(&self) -> bool {
        matches!(
            self,
            Error::OutOfFuel { .. }
                | Error::MemoryLimit { .. }
                | Error::TableLimit { .. }
                | Error::OutputTooLarge { .. }
                | Error::BadPointer { .. }
                | Error::Trap(_)
                | Error::Guest { .. }
                | Error::InputTooLarge { .. }
        )
    }

    /// A short stable label for metrics and JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotWasm { .. } => "not_wasm",
            Error::ModuleTooLarge { .. } => "module_too_large",
            Error::DigestMismatch { .. } => "digest_mismatch",
            Error::InvalidModule(_) => "invalid_module",
            Error::InvalidManifest(_) => "invalid_manifest",
            Error::AbiVersion { .. } => "abi_version",
            Error::UnknownImport { .. } => "unknown_import",
            Error::ImportNotGranted { .. } => "import_not_granted",
            Error::CapabilityRefused(_) => "capability_refused",
            Error::ManifestLimit { .. } => "manifest_limit",
            Error::MissingExport { .. } => "missing_export",
            Error::ImportType { .. } => "import_type",
            Error::NotLoaded(_) => "not_loaded",
            Error::InputTooLarge { .. } => "input_too_large",
            Error::OutOfFuel { .. } => "out_of_fuel",
            Error::Timeout { .. } => "timeout",
            Error::MemoryLimit { .. } => "memory_limit",
            Error::TableLimit { .. } => "table_limit",
            Error::StackOverflow { .. } => "stack_overflow",
            Error::OutputTooLarge { .. } => "output_too_large",
            Error::BadPointer { .. } => "bad_pointer",
            Error::Trap(_) => "trap",
            Error::Guest { .. } => "guest_error",
            Error::Busy(_) => "busy",
            Error::Engine(_) => "engine",
            Error::Io { .. } => "io",
            Error::Build(_) => "build",
            Error::Usage(_) => "usage",
        }
    }
}
