//! `hal9 bench plugins`: figures, not pass/fail.
//!
//! * cold compile (validate + compile + pre-instantiate) of each example;
//! * instantiate + call of a trivial plugin, p50/p99;
//! * throughput of word count and MLP inference on the same input, as WASM
//!   and as the same Rust code compiled natively, and the ratio.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    EngineConfig, ExecRequest, Limits, PluginEngine, Result, TaskId, builder,
    kernels::{glyphs, mlp, wordcount},
};

/// Benchmark parameters.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Executions of the trivial plugin.
    pub iterations: u32,
    /// Throughput input size in bytes.
    pub size_bytes: usize,
    /// Repetitions of each throughput run.
    pub repeat: u32,
}

/// Compile time of one module.
#[derive(Clone, Debug, Serialize)]
pub struct CompileFigure {
    /// Example name.
    pub name: String,
    /// Module size in bytes.
    pub bytes: usize,
    /// Median cold load (validate + compile + pre-instantiate), ms.
    pub compile_ms: f64,
}

/// Latency percentiles of instantiate + call.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyFigure {
    /// What was run.
    pub name: String,
    /// Executions measured.
    pub iterations: u32,
    /// Median, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Executions per second on one thread.
    pub per_second: f64,
}

/// WASM vs native throughput on the same input.
#[derive(Clone, Debug, Serialize)]
pub struct ThroughputFigure {
    /// Example name.
    pub name: String,
    /// Input bytes.
    pub input_bytes: usize,
    /// Median WASM time (instantiate + call), ms.
    pub wasm_ms: f64,
    /// Median native time, ms.
    pub native_ms: f64,
    /// WASM throughput, MiB/s.
    pub wasm_mib_s: f64,
    /// Native throughput, MiB/s.
    pub native_mib_s: f64,
    /// wasm_ms / native_ms.
    pub ratio: f64,
    /// Fuel used by one WASM run.
    pub fuel: u64,
    /// Whether WASM and native produced the same bytes.
    pub identical: bool,
}

/// Everything the benchmark measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Whether this binary was built with optimisations.
    pub optimized: bool,
    /// Cold compile per module.
    pub compile: Vec<CompileFigure>,
    /// Instantiate + call latency.
    pub latency: Vec<LatencyFigure>,
    /// WASM vs native.
    pub throughput: Vec<ThroughputFigure>,
}

const TRIVIAL_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "hal9_run") (result i32) (i32.const 0)))"#;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Deterministic pseudo-English text of `size` bytes.
pub fn sample_text(size: usize) -> Vec<u8> {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "shi", "vo", "pe", "da", "gri", "on", "el", "us",
        "ber", "tz",
    ];
    let mut rng = glyphs::Rng(42);
    let vocab: Vec<String> = (0..2000)
        .map(|_| {
            let n = 1 + rng.below(3) as usize;
            (0..n).map(|_| SYLLABLES[rng.below(16) as usize]).collect()
        })
        .collect();
    let mut out = Vec::with_capacity(size + 16);
    let mut col = 0;
    while out.len() < size {
        // Zipf-like: small indices are much more frequent.
        let r = rng.unit();
        let idx = ((r * r * r) * vocab.len() as f32) as usize;
        let w = &vocab[idx.min(vocab.len() - 1)];
        if col == 0 && rng.below(8) == 0 {
            out.extend_from_slice(b"The ");
        }
        out.extend_from_slice(w.as_bytes());
        col += 1;
        if col >= 12 {
            out.extend_from_slice(b".\n");
            col = 0;
        } else {
            out.push(b' ');
        }
    }
    out.truncate(size);
    out
}

/// `size / 256` rendered digits.
pub fn sample_digits(size: usize) -> Vec<u8> {
    glyphs::dataset(size / glyphs::PIXELS, glyphs::TEST_SEED)
        .into_iter()
        .flat_map(|(img, _)| img)
        .collect()
}

/// Runs the benchmark.
pub fn run(opts: &BenchOptions) -> Result<BenchReport> {
    let engine = PluginEngine::new(EngineConfig::default())?;
    let mut compile = Vec::new();
    let mut modules = Vec::new();
    for name in builder::EXAMPLES {
        let path = builder::example_wasm(name)?;
        let wasm = std::fs::read(&path).map_err(|source| crate::Error::Io { path, source })?;
        let mut times = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let p = engine.load(&wasm)?;
            times.push(start.elapsed());
            engine.evict(&p.digest());
        }
        compile.push(CompileFigure {
            name: name.to_owned(),
            bytes: wasm.len(),
            compile_ms: ms(median(times)),
        });
        modules.push((name, wasm));
    }

    let mut latency = Vec::new();
    let trivial =
        wat::parse_str(TRIVIAL_WAT).map_err(|e| crate::Error::InvalidModule(e.to_string()))?;
    let echo = modules
        .iter()
        .find(|(n, _)| *n == "echo")
        .map(|(_, w)| w.clone())
        .unwrap_or_default();
    for (name, wasm, input) in [
        ("trivial (WAT, 1 page)", trivial, Vec::new()),
        ("echo (SDK, 64-byte input)", echo, vec![b'x'; 64]),
    ] {
        let p = engine.load(&wasm)?;
        let req = ExecRequest {
            module: p.digest(),
            input: Arc::from(input),
            task_id: TaskId::default(),
            limits: Some(Limits::default()),
        };
        for _ in 0..(opts.iterations / 10).max(10) {
            engine.execute(&req)?;
        }
        let mut times = Vec::with_capacity(opts.iterations as usize);
        let all = Instant::now();
        for _ in 0..opts.iterations {
            let start = Instant::now();
            engine.execute(&req)?;
            times.push(start.elapsed());
        }
        let total = all.elapsed();
        times.sort();
        latency.push(LatencyFigure {
            name: name.to_owned(),
            iterations: opts.iterations,
            p50_us: percentile(&times, 0.5).as_secs_f64() * 1e6,
            p99_us: percentile(&times, 0.99).as_secs_f64() * 1e6,
            per_second: f64::from(opts.iterations) / total.as_secs_f64(),
        });
    }

    let mut throughput = Vec::new();
    let text = sample_text(opts.size_bytes);
    let digits = sample_digits(opts.size_bytes);
    type Native = fn(&[u8]) -> Vec<u8>;
    let native_wc: Native = |t| wordcount::count(t, 10).to_json().into_bytes();
    let native_mlp: Native = |d| {
        let mut out = Vec::new();
        if let Some(m) = mlp::Mlp::from_bytes(mlp::WEIGHTS) {
            m.classify_into(d, &mut out);
        }
        out
    };
    for (name, input, native) in [
        ("wordcount", &text, native_wc),
        ("mlp", &digits, native_mlp),
    ] {
        let wasm = modules
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, w)| w.as_slice())
            .unwrap_or_default();
        let p = engine.load(wasm)?;
        let req = ExecRequest {
            module: p.digest(),
            input: Arc::from(input.as_slice()),
            task_id: TaskId::default(),
            limits: Some(Limits::default()),
        };
        let first = engine.execute(&req)?;
        let native_out = std::hint::black_box(native(input));
        let mut wasm_t = Vec::new();
        let mut native_t = Vec::new();
        for _ in 0..opts.repeat {
            let start = Instant::now();
            std::hint::black_box(engine.execute(&req)?);
            wasm_t.push(start.elapsed());
            let start = Instant::now();
            std::hint::black_box(native(std::hint::black_box(input)));
            native_t.push(start.elapsed());
        }
        let (w, n) = (median(wasm_t), median(native_t));
        let mib = input.len() as f64 / (1 << 20) as f64;
        throughput.push(ThroughputFigure {
            name: name.to_owned(),
            input_bytes: input.len(),
            wasm_ms: ms(w),
            native_ms: ms(n),
            wasm_mib_s: mib / w.as_secs_f64(),
            native_mib_s: mib / n.as_secs_f64(),
            ratio: w.as_secs_f64() / n.as_secs_f64(),
            fuel: first.fuel_used,
            identical: first.output == native_out,
        });
    }
    Ok(BenchReport {
        optimized: !cfg!(debug_assertions),
        compile,
        latency,
        throughput,
    })
}

impl BenchReport {
    /// Human-readable table.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.optimized {
            s.push_str("warning: debug build; run the release binary for meaningful figures\n\n");
        }
        s.push_str("cold compile (validate + compile + pre-instantiate), median of 3\n");
        for c in &self.compile {
            s.push_str(&format!(
                "  {:<16} {:>8} bytes  {:>9.2} ms\n",
                c.name, c.bytes, c.compile_ms
            ));
        }
        s.push_str("\ninstantiate + call (store, instance from pooling allocator, call, output)\n");
        for l in &self.latency {
            s.push_str(&format!(
                "  {:<28} p50 {:>7.2} µs  p99 {:>7.2} µs  {:>9.0} exec/s/thread  (n={})\n",
                l.name, l.p50_us, l.p99_us, l.per_second, l.iterations
            ));
        }
        s.push_str("\nthroughput, WASM vs the same Rust code native (median)\n");
        for t in &self.throughput {
            s.push_str(&format!(
                "  {:<10} {:>8} bytes  wasm {:>8.2} ms ({:>7.1} MiB/s)  native {:>8.2} ms ({:>7.1} MiB/s)  ratio {:.2}x  fuel {}  identical output: {}\n",
                t.name,
                t.input_bytes,
                t.wasm_ms,
                t.wasm_mib_s,
                t.native_ms,
                t.native_mib_s,
                t.ratio,
                t.fuel,
                t.identical
            ));
        }
        s
    }
}
