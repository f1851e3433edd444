//! Engine configuration and per-execution limits.

use std::time::Duration;

use crate::manifest::{Capability, ManifestLimits};

/// Limits of one execution. All are enforced by the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Instruction budget in fuel units (about one unit per wasm operator).
    pub fuel: u64,
    /// Largest linear memory, in bytes.
    pub memory_bytes: u64,
    /// Largest table, in elements.
    pub table_elements: u64,
    /// Largest output, in bytes.
    pub output_bytes: u64,
    /// Wall-clock guard. Fuel is the deterministic limit; this one only
    /// protects the host from a plugin that is slow per unit of fuel.
    pub wall_clock: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 2_000_000_000,
            memory_bytes: 64 << 20,
            table_elements: 10_000,
            output_bytes: 4 << 20,
            wall_clock: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// Each limit lowered to at most the same limit of `ceiling`.
    pub fn clamp_to(&self, ceiling: &Limits) -> Limits {
        Limits {
            fuel: self.fuel.min(ceiling.fuel),
            memory_bytes: self.memory_bytes.min(ceiling.memory_bytes),
            table_elements: self.table_elements.min(ceiling.table_elements),
            output_bytes: self.output_bytes.min(ceiling.output_bytes),
            wall_clock: self.wall_clock.min(ceiling.wall_clock),
        }
    }

    /// These limits with the values a manifest declares put in their place.
    pub fn with_manifest(&self, m: &ManifestLimits) -> Limits {
        Limits {
            fuel: m.fuel.unwrap_or(self.fuel),
            memory_bytes: m.memory_bytes.unwrap_or(self.memory_bytes),
            table_elements: self.table_elements,
            output_bytes: m.output_bytes.unwrap_or(self.output_bytes),
            wall_clock: m
                .wall_clock_ms
                .map(Duration::from_millis)
                .unwrap_or(self.wall_clock),
        }
    }
}

/// Configuration of a [`crate::PluginEngine`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Limits used when a request does not say otherwise.
    pub default_limits: Limits,
    /// Hard ceilings: request limits are clamped to these, and a manifest
    /// asking for more is refused at load.
    pub max_limits: Limits,
    /// Largest module accepted, in bytes.
    pub max_module_bytes: usize,
    /// Largest input accepted, in bytes.
    pub max_input_bytes: usize,
    /// Native stack available to wasm code, in bytes (bounds recursion).
    pub max_stack_bytes: usize,
    /// Number of compiled modules kept in the cache.
    pub cache_modules: usize,
    /// Total size of the module bytes kept in the cache.
    pub cache_bytes: usize,
    /// Executions that may run at the same time (pooling allocator slots).
    pub max_concurrent: u32,
    /// Period of the epoch ticker that drives the wall-clock guard.
    pub epoch_tick: Duration,
    /// Capabilities this host grants to plugins that ask for them.
    pub granted: Vec<Capability>,
    /// Log lines a plugin may emit per execution; further lines are dropped.
    pub max_log_lines: u32,
    /// Bytes kept of each log line.
    pub max_log_line_bytes: usize,
    /// Use wasmtime's pooling allocator (fast instantiation). When false,
    /// the on-demand allocator is used (useful on hosts with little
    /// virtual address space).
    pub pooling: bool,
    /// Bytes of each pooled linear memory kept resident between executions
    /// (dirty pages found with Linux `PAGEMAP_SCAN` where available and
    /// reset with `memset` instead of being returned to the kernel): fewer
    /// page faults and TLB shootdowns for small plugins, more resident
    /// memory. 1 MiB halves instantiate + call of an SDK plugin (about 42 to
    /// 21 µs) and costs the smallest modules about 2 µs.
    pub keep_resident_bytes: usize,
    /// NaN canonicalization. Always on in production: turning it off is
    /// only for tests that prove it matters.
    pub nan_canonicalization: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            default_limits: Limits::default(),
            max_limits: Limits {
                fuel: 50_000_000_000,
                memory_bytes: 256 << 20,
                table_elements: 100_000,
                output_bytes: 16 << 20,
                wall_clock: Duration::from_secs(60),
            },
            max_module_bytes: 32 << 20,
            max_input_bytes: 16 << 20,
            max_stack_bytes: 512 << 10,
            cache_modules: 64,
            cache_bytes: 256 << 20,
            max_concurrent: 32,
            epoch_tick: Duration::from_millis(10),
            granted: Capability::ALL.to_vec(),
            max_log_lines: 64,
            max_log_line_bytes: 512,
            pooling: true,
            keep_resident_bytes: 1 << 20,
            nan_canonicalization: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_needs_replace_defaults_and_ceilings_win() {
        let cfg = EngineConfig::default();
        let m = ManifestLimits {
            fuel: Some(123),
            memory_bytes: Some(u64::MAX),
            output_bytes: None,
            wall_clock_ms: Some(250),
        };
        let l = cfg
            .default_limits
            .with_manifest(&m)
            .clamp_to(&cfg.max_limits);
        assert_eq!(l.fuel, 123);
        assert_eq!(l.memory_bytes, cfg.max_limits.memory_bytes);
        assert_eq!(l.output_bytes, cfg.default_limits.output_bytes);
        assert_eq!(l.wall_clock, Duration::from_millis(250));
    }
}
