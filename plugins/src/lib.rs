//! hal9 neurons as WASM plugins.
//!
//! * [`PluginEngine`]: a deterministic wasmtime engine (NaN
//!   canonicalization, deterministic relaxed SIMD, no threads) with fuel,
//!   memory, table, stack and wall-clock limits, a bounded cache of
//!   compiled, pre-instantiated modules and the pooling allocator.
//! * [`abi`]: host ABI v1 (module `hal9`), described in `docs/plugin-abi.md`.
//! * [`manifest`]: capabilities and limits a plugin declares.
//! * [`cli`]: `hal9 plugin build|inspect|run` and `hal9 bench plugins`.

pub mod abi;
pub mod bench;
pub mod builder;
pub mod cli;
pub mod config;
pub mod digest;
mod engine;
mod error;
pub mod inspect;
pub mod kernels;
pub mod manifest;
pub mod metrics;

pub use config::{EngineConfig, Limits};
pub use digest::{ModuleDigest, TaskId};
pub use engine::{ExecOutcome, ExecRequest, LoadedPlugin, PluginEngine, wasmtime_config};
pub use error::{Error, Result};
pub use manifest::{Capability, Manifest};
pub use metrics::Metrics;
