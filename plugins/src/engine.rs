//! The plugin engine: deterministic wasmtime configuration, module cache,
//! and execution with limits.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use wasmtime::{
    Engine, ExternType, InstanceAllocationStrategy, InstancePre, Linker, Module, ModuleExport,
    OptLevel, PoolingAllocationConfig, Store, Trap, ValType,
};

use crate::{
    Error, Result,
    abi::{self, Guard, HOST_MODULE, HostState, HostTrap, LogLine, MEMORY_EXPORT, RUN_EXPORT},
    config::{EngineConfig, Limits},
    digest::{ModuleDigest, TaskId},
    manifest::{Capability, Manifest},
    metrics::Metrics,
};

const TARGET: &str = "hal9::plugins";

/// One execution to run.
#[derive(Clone, Debug)]
pub struct ExecRequest {
    /// Module to run (must have been loaded).
    pub module: ModuleDigest,
    /// Input bytes.
    pub input: Arc<[u8]>,
    /// Task id; seeds `hal9::random_fill`.
    pub task_id: TaskId,
    /// Limits; `None` means the host defaults with the manifest's declared
    /// needs put in. Always clamped to the host ceilings.
    pub limits: Option<Limits>,
}

/// Result of a successful execution.
#[derive(Clone, Debug)]
pub struct ExecOutcome {
    /// Output bytes the plugin wrote.
    pub output: Vec<u8>,
    /// Fuel consumed (deterministic for a given module, input and task).
    pub fuel_used: u64,
    /// Wall-clock time of instantiation plus call.
    pub elapsed: Duration,
    /// Log lines the plugin emitted.
    pub logs: Vec<LogLine>,
    /// Log lines dropped by the rate limit.
    pub logs_dropped: u32,
}

/// A module that passed every load check, compiled and pre-instantiated.
pub struct LoadedPlugin {
    digest: ModuleDigest,
    manifest: Manifest,
    size: usize,
    compile_time: Duration,
    module: Module,
    pre: InstancePre<HostState>,
    run: ModuleExport,
    memory: ModuleExport,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("digest", &self.digest)
            .field("manifest", &self.manifest)
            .field("size", &self.size)
            .field("compile_time", &self.compile_time)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// Digest of the module bytes.
    pub fn digest(&self) -> ModuleDigest {
        self.digest
    }
    /// The manifest in force (embedded, given, or the default).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// Size of the module bytes.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Time it took to compile the module.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }
    /// `module::name` of each import.
    pub fn imports(&self) -> Vec<String> {
        self.module
            .imports()
            .map(|i| format!("{}::{}", i.module(), i.name()))
            .collect()
    }
    /// Names of the exports.
    pub fn exports(&self) -> Vec<String> {
        self.module.exports().map(|e| e.name().to_owned()).collect()
    }
}

struct CacheEntry {
    plugin: Arc<LoadedPlugin>,
    last_used: u64,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<ModuleDigest, CacheEntry>,
    bytes: usize,
    clock: u64,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    config: EngineConfig,
    cache: Mutex<Cache>,
    metrics: Metrics,
    stop: Arc<AtomicBool>,
    executions: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The plugin runtime. Cheap to clone; share one per node. Executions are
/// CPU-bound and synchronous: from async code call
/// [`PluginEngine::execute`] inside `spawn_blocking`.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The deterministic wasmtime configuration used for plugins.
pub fn wasmtime_config(config: &EngineConfig) -> Result<wasmtime::Config> {
    let mut c = wasmtime::Config::new();
    c.cranelift_opt_level(OptLevel::Speed)
        .cranelift_nan_canonicalization(config.nan_canonicalization)
        .wasm_relaxed_simd(true)
        .relaxed_simd_deterministic(true)
        .wasm_simd(true)
        // Threads and shared memory are compiled out (wasmtime's `threads`
        // feature is off), so a module using them fails validation.
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(config.max_stack_bytes);
    if config.pooling {
        let mut pool = PoolingAllocationConfig::new();
        let slots = config.max_concurrent.max(1);
        let max_mem = usize::try_from(config.max_limits.memory_bytes)
            .map_err(|_| Error::Engine("memory ceiling does not fit in usize".into()))?;
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .max_memory_size(max_mem)
            .table_elements(config.max_limits.table_elements as usize)
            .max_unused_warm_slots(slots)
            .linear_memory_keep_resident(config.keep_resident_bytes)
            // Reset only the pages a plugin dirtied (Linux >= 6.7).
            .pagemap_scan(wasmtime::Enabled::Auto)
            .table_keep_resident(config.keep_resident_bytes.min(64 << 10));
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(c)
}

impl PluginEngine {
    /// Builds an engine with unregistered metrics.
    pub fn new(config: EngineConfig) -> Result<Self> {
        Self::with_metrics(config, Metrics::default())
    }

    /// Builds an engine that reports to `metrics` (see
    /// [`Metrics::register`]).
    pub fn with_metrics(config: EngineConfig, metrics: Metrics) -> Result<Self> {
        let wc = wasmtime_config(&config)?;
        let engine = Engine::new(&wc).map_err(|e| Error::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        abi::define(&mut linker)?;
        let stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(&engine, config.epoch_tick, stop.clone())?;
        tracing::info!(target: TARGET, pooling = config.pooling, slots = config.max_concurrent, "plugin engine ready");
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                config,
                cache: Mutex::new(Cache::default()),
                metrics,
                stop,
                executions: AtomicU64::new(0),
            }),
        })
    }

    /// The underlying wasmtime engine (deterministic configuration).
    pub fn wasmtime_engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The metrics handles.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Verifies, compiles and caches a module, reading its manifest from the
    /// `hal9.manifest` custom section (or assuming the default manifest).
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<LoadedPlugin>> {
        self.load_with(wasm, None, None)
    }

    /// Like [`PluginEngine::load`], but checks the bytes hash to `expected`
    /// first (for modules fetched by CID).
    pub fn load_verified(&self, expected: ModuleDigest, wasm: &[u8]) -> Result<Arc<LoadedPlugin>> {
        self.load_with(wasm, Some(expected), None)
    }

    /// Full form of load: optional expected digest and an optional manifest
    /// given beside the module (it replaces an embedded one).
    pub fn load_with(
        &self,
        wasm: &[u8],
        expected: Option<ModuleDigest>,
        manifest: Option<Manifest>,
    ) -> Result<Arc<LoadedPlugin>> {
        let r = self.load_inner(wasm, expected, manifest);
        if let Err(e) = &r {
            self.inner.metrics.refused(e.kind());
            tracing::warn!(target: TARGET, error = %e, "module refused");
        }
        r
    }

    fn load_inner(
        &self,
        wasm: &[u8],
        expected: Option<ModuleDigest>,
        manifest: Option<Manifest>,
    ) -> Result<Arc<LoadedPlugin>> {
        let cfg = &self.inner.config;
        if wasm.len() > cfg.max_module_bytes {
            return Err(Error::ModuleTooLarge {
                size: wasm.len(),
                limit: cfg.max_module_bytes,
            });
        }
        check_magic(wasm)?;
        let digest = ModuleDigest::of(wasm);
        if let Some(exp) = expected
            && exp != digest
        {
            return Err(Error::DigestMismatch {
                expected: exp,
                found: digest,
            });
        }
        // A given manifest changes what the module may do, so it takes part
        // in the cache decision: only reuse an entry loaded the same way.
        if let Some(hit) = self.cached(&digest)
            && manifest.as_ref().is_none_or(|m| m == hit.manifest())
        {
            self.inner.metrics.cache_hits.inc();
            return Ok(hit);
        }
        self.inner.metrics.cache_misses.inc();

        let manifest = match manifest {
            Some(m) => m,
            None => Manifest::from_module(wasm)?.unwrap_or_default(),
        };
        self.check_manifest(&manifest)?;

        let start = Instant::now();
        let module = Module::from_binary(&self.inner.engine, wasm)
            .map_err(|e| Error::InvalidModule(format!("{e:#}")))?;
        let compile_time = start.elapsed();
        self.inner
            .metrics
            .compile_seconds
            .observe(compile_time.as_secs_f64());

        check_imports(&module, &manifest)?;
        let run = check_exports(&module)?;
        let memory = module
            .get_export_index(MEMORY_EXPORT)
            .ok_or(Error::MissingExport {
                name: MEMORY_EXPORT,
                expected: "an exported linear memory",
            })?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&module)
            .map_err(|e| Error::ImportType {
                name: "?".into(),
                detail: format!("{e:#}"),
            })?;
        let plugin = Arc::new(LoadedPlugin {
            digest,
            manifest,
            size: wasm.len(),
            compile_time,
            module,
            pre,
            run,
            memory,
        });
        self.insert(plugin.clone());
        tracing::info!(target: TARGET, %digest, size = wasm.len(), compile_ms = compile_time.as_secs_f64() * 1e3, "module loaded");
        Ok(plugin)
    }

    fn check_manifest(&self, m: &Manifest) -> Result<()> {
        let cfg = &self.inner.config;
        for cap in &m.capabilities {
            if !cfg.granted.contains(cap) {
                return Err(Error::CapabilityRefused(cap.to_string()));
            }
        }
        let max = &cfg.max_limits;
        let checks = [
            ("fuel", m.limits.fuel, max.fuel),
            ("memory_bytes", m.limits.memory_bytes, max.memory_bytes),
            ("output_bytes", m.limits.output_bytes, max.output_bytes),
            (
                "wall_clock_ms",
                m.limits.wall_clock_ms,
                max.wall_clock.as_millis() as u64,
            ),
        ];
        for (what, req, limit) in checks {
            if let Some(requested) = req
                && requested > limit
            {
                return Err(Error::ManifestLimit {
                    what,
                    requested,
                    limit,
                });
            }
        }
        Ok(())
    }

    /// The cached plugin for `digest`, if any.
    pub fn cached(&self, digest: &ModuleDigest) -> Option<Arc<LoadedPlugin>> {
        let mut c = self.inner.cache.lock();
        c.clock += 1;
        let now = c.clock;
        c.entries.get_mut(digest).map(|e| {
            e.last_used = now;
            e.plugin.clone()
        })
    }

    /// Digests currently cached.
    pub fn cached_digests(&self) -> Vec<ModuleDigest> {
        self.inner.cache.lock().entries.keys().copied().collect()
    }

    /// Drops a module from the cache.
    pub fn evict(&self, digest: &ModuleDigest) -> bool {
        let mut c = self.inner.cache.lock();
        let removed = c.entries.remove(digest);
        if let Some(e) = &removed {
            c.bytes -= e.plugin.size;
        }
        self.inner.metrics.cache_modules.set(c.entries.len() as i64);
        self.inner.metrics.cache_bytes.set(c.bytes as i64);
        removed.is_some()
    }

    fn insert(&self, plugin: Arc<LoadedPlugin>) {
        let cfg = &self.inner.config;
        let mut c = self.inner.cache.lock();
        c.clock += 1;
        let now = c.clock;
        if let Some(old) = c.entries.insert(
            plugin.digest,
            CacheEntry {
                plugin: plugin.clone(),
                last_used: now,
            },
        ) {
            c.bytes -= old.plugin.size;
        }
        c.bytes += plugin.size;
        while c.entries.len() > cfg.cache_modules.max(1)
            || (c.bytes > cfg.cache_bytes && c.entries.len() > 1)
        {
            let victim = c
                .entries
                .iter()
                .filter(|(d, _)| **d != plugin.digest)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(d, _)| *d);
            let Some(victim) = victim else { break };
            if let Some(e) = c.entries.remove(&victim) {
                c.bytes -= e.plugin.size;
                self.inner.metrics.cache_evictions.inc();
                tracing::debug!(target: TARGET, digest = %victim, "module evicted");
            }
        }
        self.inner.metrics.cache_modules.set(c.entries.len() as i64);
        self.inner.metrics.cache_bytes.set(c.bytes as i64);
    }

    /// Limits an execution of `plugin` gets when the request gives none.
    pub fn default_limits(&self, plugin: &LoadedPlugin) -> Limits {
        let cfg = &self.inner.config;
        cfg.default_limits
            .with_manifest(&plugin.manifest.limits)
            .clamp_to(&cfg.max_limits)
    }

    /// Runs a loaded module. Synchronous and CPU-bound.
    pub fn execute(&self, req: &ExecRequest) -> Result<ExecOutcome> {
        let plugin = self
            .cached(&req.module)
            .ok_or(Error::NotLoaded(req.module))?;
        self.execute_plugin(&plugin, req.input.clone(), req.task_id, req.limits)
    }

    /// Runs `plugin` directly (no cache lookup).
    pub fn execute_plugin(
        &self,
        plugin: &LoadedPlugin,
        input: Arc<[u8]>,
        task_id: TaskId,
        limits: Option<Limits>,
    ) -> Result<ExecOutcome> {
        let n = self.inner.executions.fetch_add(1, Ordering::Relaxed);
        let r = self.run(plugin, input, task_id, limits);
        let m = &self.inner.metrics;
        match &r {
            Ok(out) => {
                m.ok();
                m.fuel_consumed.inc_by(out.fuel_used);
                m.execution_seconds.observe(out.elapsed.as_secs_f64());
                tracing::trace!(target: TARGET, exec = n, task = %task_id, digest = %plugin.digest, fuel = out.fuel_used, "execution ok");
            }
            Err(e) => {
                m.outcome(e.kind());
                tracing::debug!(target: TARGET, exec = n, task = %task_id, digest = %plugin.digest, error = %e, "execution failed");
            }
        }
        r
    }

    fn run(
        &self,
        plugin: &LoadedPlugin,
        input: Arc<[u8]>,
        task_id: TaskId,
        limits: Option<Limits>,
    ) -> Result<ExecOutcome> {
        let cfg = &self.inner.config;
        if input.len() > cfg.max_input_bytes {
            return Err(Error::InputTooLarge {
                size: input.len(),
                limit: cfg.max_input_bytes,
            });
        }
        let limits = match limits {
            Some(l) => l.clamp_to(&cfg.max_limits),
            None => self.default_limits(plugin),
        };
        let start = Instant::now();
        let state = HostState {
            input,
            output: Vec::new(),
            output_limit: usize::try_from(limits.output_bytes).unwrap_or(usize::MAX),
            memory: None,
            rng: abi::DetRng::new(&task_id),
            logs: Vec::new(),
            logs_dropped: 0,
            max_log_lines: cfg.max_log_lines,
            max_log_line_bytes: cfg.max_log_line_bytes,
            guard: Guard {
                memory_limit: limits.memory_bytes,
                table_limit: limits.table_elements,
            },
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.guard);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        let tick = cfg.epoch_tick.as_nanos().max(1);
        let ticks = u64::try_from(limits.wall_clock.as_nanos().div_ceil(tick))
            .unwrap_or(u64::MAX)
            .min(u64::MAX / 4)
            + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();

        let classify = |e: wasmtime::Error| classify(e, &limits, cfg.max_stack_bytes);
        let instance = plugin.pre.instantiate(&mut store).map_err(classify)?;
        let memory = instance
            .get_module_export(&mut store, &plugin.memory)
            .and_then(|e| e.into_memory())
            .ok_or(Error::MissingExport {
                name: MEMORY_EXPORT,
                expected: "an exported linear memory",
            })?;
        store.data_mut().memory = Some(memory);
        let run = instance
            .get_module_export(&mut store, &plugin.run)
            .and_then(|e| e.into_func())
            .ok_or(Error::MissingExport {
                name: RUN_EXPORT,
                expected: "func () -> i32",
            })?
            .typed::<(), i32>(&store)
            .map_err(|_| Error::MissingExport {
                name: RUN_EXPORT,
                expected: "func () -> i32",
            })?;
        let status = run.call(&mut store, ()).map_err(classify)?;
        let left = store.get_fuel().unwrap_or(0);
        let elapsed = start.elapsed();
        let state = store.into_data();
        if status != 0 {
            let msg = &state.output[..state.output.len().min(1024)];
            return Err(Error::Guest {
                code: status,
                message: String::from_utf8_lossy(msg).into_owned(),
            });
        }
        Ok(ExecOutcome {
            output: state.output,
            fuel_used: limits.fuel.saturating_sub(left),
            elapsed,
            logs: state.logs,
            logs_dropped: state.logs_dropped,
        })
    }
}

fn classify(err: wasmtime::Error, limits: &Limits, stack: usize) -> Error {
    let err = match err.downcast::<HostTrap>() {
        Ok(HostTrap::OutOfFuel) => return Error::OutOfFuel { limit: limits.fuel },
        Ok(h) => return h.into_error(),
        Err(e) => e,
    };
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => Error::OutOfFuel { limit: limits.fuel },
            Trap::Interrupt => Error::Timeout {
                limit: limits.wall_clock,
            },
            Trap::StackOverflow => Error::StackOverflow { limit: stack },
            other => Error::Trap(other.to_string()),
        };
    }
    if err.is::<wasmtime::PoolConcurrencyLimitError>() {
        return Error::Busy(format!("{err:#}"));
    }
    Error::Trap(format!("{err:#}"))
}

fn check_magic(wasm: &[u8]) -> Result<()> {
    const MAGIC: [u8; 4] = *b"\0asm";
    if wasm.len() < 8 || wasm[..4] != MAGIC {
        return Err(Error::NotWasm {
            found: hex::encode(&wasm[..wasm.len().min(8)]),
        });
    }
    if wasm[4..8] != [1, 0, 0, 0] {
        return Err(Error::InvalidModule(format!(
            "expected a core module (version 01000000), found version {}",
            hex::encode(&wasm[4..8])
        )));
    }
    Ok(())
}

fn check_imports(module: &Module, manifest: &Manifest) -> Result<()> {
    for import in module.imports() {
        let (m, name) = (import.module(), import.name());
        let unknown = || Error::UnknownImport {
            module: m.to_owned(),
            name: name.to_owned(),
        };
        if m != HOST_MODULE || !matches!(import.ty(), ExternType::Func(_)) {
            return Err(unknown());
        }
        let cap = abi::capability_of(name).ok_or_else(unknown)?;
        if let Some(cap) = cap
            && !manifest.has(cap)
        {
            let granted: Vec<&str> = manifest
                .capabilities
                .iter()
                .map(|c: &Capability| c.as_str())
                .collect();
            return Err(Error::ImportNotGranted {
                name: name.to_owned(),
                capability: cap.to_string(),
                granted: if granted.is_empty() {
                    "none".into()
                } else {
                    granted.join(", ")
                },
            });
        }
    }
    Ok(())
}

fn check_exports(module: &Module) -> Result<ModuleExport> {
    let missing = Error::MissingExport {
        name: RUN_EXPORT,
        expected: "func () -> i32",
    };
    let Some(ExternType::Func(f)) = module.get_export(RUN_EXPORT) else {
        return Err(missing);
    };
    let params: Vec<ValType> = f.params().collect();
    let results: Vec<ValType> = f.results().collect();
    if !params.is_empty() || results.len() != 1 || !matches!(results[0], ValType::I32) {
        return Err(missing);
    }
    if !matches!(
        module.get_export(MEMORY_EXPORT),
        Some(ExternType::Memory(_))
    ) {
        return Err(Error::MissingExport {
            name: MEMORY_EXPORT,
            expected: "an exported linear memory",
        });
    }
    module.get_export_index(RUN_EXPORT).ok_or(missing)
}

fn spawn_ticker(engine: &Engine, tick: Duration, stop: Arc<AtomicBool>) -> Result<()> {
    let weak = engine.weak();
    let tick = tick.max(Duration::from_millis(1));
    std::thread::Builder::new()
        .name("hal9-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(e) => e.increment_epoch(),
                    None => break,
                }
            }
        })
        .map_err(|e| Error::Engine(format!("spawning the epoch ticker: {e}")))?;
    Ok(())
}
