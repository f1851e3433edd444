//! Integration tests of hal9-plugins: hostile modules, the example plugins,
//! the cache and determinism.

mod cli;
mod examples;
mod fuzz;
mod hostile;
mod runtime;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use hal9_plugins::{
    EngineConfig, ExecOutcome, ExecRequest, Limits, LoadedPlugin, PluginEngine, Result, TaskId,
};

/// One engine shared by the tests of this binary, like a node shares one.
pub fn engine() -> &'static PluginEngine {
    static E: OnceLock<PluginEngine> = OnceLock::new();
    E.get_or_init(|| PluginEngine::new(EngineConfig::default()).expect("engine"))
}

/// Compiles WAT text to a binary module.
pub fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("valid WAT")
}

/// Small limits so hostile modules hit them quickly.
pub fn tight() -> Limits {
    Limits {
        fuel: 5_000_000,
        memory_bytes: 4 << 20,
        table_elements: 1_000,
        output_bytes: 1 << 20,
        wall_clock: Duration::from_secs(5),
    }
}

/// Loads and runs `wasm` once.
pub fn run_with(
    engine: &PluginEngine,
    wasm: &[u8],
    input: &[u8],
    limits: Option<Limits>,
) -> Result<ExecOutcome> {
    let plugin: Arc<LoadedPlugin> = engine.load(wasm)?;
    engine.execute(&ExecRequest {
        module: plugin.digest(),
        input: Arc::from(input),
        task_id: TaskId([1; 32]),
        limits,
    })
}

/// A well-behaved module: copies its input to its output.
pub const ECHO_WAT: &str = r#"
(module
  (import "hal9" "input_len" (func $len (result i32)))
  (import "hal9" "input_read" (func $read (param i32 i32 i32) (result i32)))
  (import "hal9" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "hal9_run") (result i32)
    (local $n i32)
    (local.set $n (call $read (i32.const 0) (call $len) (i32.const 0)))
    (drop (call $write (i32.const 0) (local.get $n)))
    (i32.const 0)))
"#;

/// Asserts the engine still runs a good module correctly.
pub fn assert_healthy(engine: &PluginEngine) {
    let out = run_with(engine, &wat(ECHO_WAT), b"still alive", Some(tight())).expect("echo runs");
    assert_eq!(out.output, b"still alive");
}
