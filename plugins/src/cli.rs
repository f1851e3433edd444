//! Command-line pieces for the `hal9` binary: `hal9 plugin ...` and
//! `hal9 bench plugins`. The binary adds one line for each:
//!
//! ```ignore
//! #[command(subcommand)] Plugin(hal9_plugins::cli::PluginCommand),   // in its command enum
//! Plugins(hal9_plugins::cli::BenchPluginsArgs),                       // in its bench enum
//! ```

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use clap::{Args, Subcommand};

use crate::{
    EngineConfig, Error, Limits, Manifest, PluginEngine, Result, TaskId, bench, builder,
    inspect::inspect,
};

/// `hal9 plugin ...`: build, inspect and run WASM plugins.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Build a plugin crate for wasm32-unknown-unknown (release) and print
    /// the artifact path and digest.
    Build {
        /// Directory of the plugin's cargo package (or of a workspace).
        dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Describe a module: ABI version, capabilities, imports, exports,
    /// size, digest, and whether this host would load it.
    Inspect {
        /// Module file (`.wasm`; `.wat` text is accepted too).
        file: PathBuf,
        /// Manifest file to use instead of the embedded one (default:
        /// `<file stem>.manifest.json` beside the module, if present).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a module once and print its output, the fuel used and the time.
    Run {
        /// Module file (`.wasm`; `.wat` text is accepted too).
        file: PathBuf,
        /// Input: `@path` reads a file, `-` reads stdin, anything else is
        /// used as the literal input text.
        #[arg(long, short, default_value = "")]
        input: String,
        /// Fuel budget (instructions).
        #[arg(long)]
        fuel: Option<u64>,
        /// Linear memory limit in bytes.
        #[arg(long)]
        memory: Option<u64>,
        /// Output limit in bytes.
        #[arg(long)]
        max_output: Option<u64>,
        /// Wall-clock limit in milliseconds.
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// Task id (64 hex digits) seeding the plugin's randomness.
        #[arg(long)]
        task_id: Option<TaskId>,
        /// Manifest file to use instead of the embedded one.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Write the raw output to this file instead of printing it.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `hal9 bench plugins`: compile time, instantiate + call latency, and
/// WASM vs native throughput of the example plugins.
#[derive(Debug, Clone, Args)]
pub struct BenchPluginsArgs {
    /// Executions of the trivial plugin for the latency percentiles.
    #[arg(long, default_value_t = 20_000)]
    pub iterations: u32,
    /// Input size for the throughput runs, in MiB.
    #[arg(long, default_value_t = 1)]
    pub size_mib: u32,
    /// Repetitions of each throughput run (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub repeat: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl BenchPluginsArgs {
    /// Runs the benchmark and prints its figures.
    pub fn run(self) -> Result<()> {
        let report = bench::run(&bench::BenchOptions {
            iterations: self.iterations.max(10),
            size_bytes: (self.size_mib.max(1) as usize) << 20,
            repeat: self.repeat.max(1),
        })?;
        if self.json {
            print_json(&report)
        } else {
            print!("{}", report.render());
            Ok(())
        }
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::Engine(e.to_string()))?;
    println!("{s}");
    Ok(())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).map_err(io_err(path))?.len();
    if len > limit as u64 {
        return Err(Error::Usage(format!(
            "{}: expected at most {limit} bytes, found {len}",
            path.display()
        )));
    }
    std::fs::read(path).map_err(io_err(path))
}

/// Reads a module file; `.wat` files are compiled from text.
pub fn read_module(path: &Path, limit: usize) -> Result<Vec<u8>> {
    let bytes = read_limited(path, limit)?;
    if path.extension().is_some_and(|e| e == "wat") {
        return wat::parse_bytes(&bytes)
            .map(|b| b.into_owned())
            .map_err(|e| Error::InvalidModule(format!("{}: {e}", path.display())));
    }
    Ok(bytes)
}

fn read_manifest(file: &Path, explicit: Option<&Path>) -> Result<Option<Manifest>> {
    let sidecar = file.with_extension("manifest.json");
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None if sidecar.is_file() => sidecar,
        None => return Ok(None),
    };
    let bytes = read_limited(&path, crate::manifest::MAX_MANIFEST_BYTES)?;
    Manifest::from_json(&bytes).map(Some)
}

/// Resolves `--input`: `@path`, `-` (stdin) or literal text.
pub fn read_input(spec: &str, limit: usize) -> Result<Vec<u8>> {
    if let Some(path) = spec.strip_prefix('@') {
        return read_limited(Path::new(path), limit);
    }
    if spec == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(limit as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(io_err(Path::new("<stdin>")))?;
        if buf.len() > limit {
            return Err(Error::InputTooLarge {
                size: buf.len(),
                limit,
            });
        }
        return Ok(buf);
    }
    Ok(spec.as_bytes().to_vec())
}

fn cli_engine() -> Result<PluginEngine> {
    PluginEngine::new(EngineConfig {
        pooling: false,
        ..EngineConfig::default()
    })
}

/// Renders output bytes for a terminal: UTF-8 text as is, anything else
/// as a hex dump.
fn render_output(out: &[u8]) -> String {
    match std::str::from_utf8(out) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            let mut s = String::new();
            for (i, chunk) in out.chunks(16).enumerate() {
                s.push_str(&format!("{:08x}  {}\n", i * 16, hex::encode(chunk)));
            }
            s
        }
    }
}

#[derive(serde::Serialize)]
struct RunReport<'a> {
    digest: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_utf8: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_hex: Option<String>,
    output_bytes: usize,
    fuel_used: u64,
    elapsed_us: f64,
    logs: &'a [crate::abi::LogLine],
    logs_dropped: u32,
}

impl PluginCommand {
    /// Runs the subcommand, printing human output (or JSON with `--json`).
    pub fn run(self) -> Result<()> {
        match self {
            PluginCommand::Build { dir, json } => {
                let built = builder::build_plugin(&dir)?;
                if json {
                    return print_json(&built);
                }
                for b in built {
                    println!("{}", b.path.display());
                    println!("  digest  {}", b.digest);
                    println!("  size    {} bytes", b.size);
                }
                Ok(())
            }
            PluginCommand::Inspect {
                file,
                manifest,
                json,
            } => {
                let engine = cli_engine()?;
                let wasm = read_module(&file, engine.config().max_module_bytes)?;
                let manifest = read_manifest(&file, manifest.as_deref())?;
                let info = inspect(&engine, &wasm, manifest)?;
                if json {
                    return print_json(&info);
                }
                let caps: Vec<String> = info
                    .manifest
                    .capabilities
                    .iter()
                    .map(|c| c.to_string())
                    .collect();
                println!("file          {}", file.display());
                println!("digest        {}", info.digest);
                println!("size          {} bytes", info.size);
                println!("abi           v{}", info.abi_version);
                println!(
                    "manifest      {}{}",
                    if info.embedded_manifest {
                        "embedded"
                    } else {
                        "none (defaults)"
                    },
                    if info.manifest.name.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " name={} version={}",
                            info.manifest.name, info.manifest.version
                        )
                    }
                );
                println!(
                    "capabilities  {}",
                    if caps.is_empty() {
                        "none".into()
                    } else {
                        caps.join(", ")
                    }
                );
                if let Some((min, max)) = info.memory_pages {
                    println!(
                        "memory        {min} pages initial, max {}",
                        max.map_or("unbounded".into(), |m| format!("{m} pages"))
                    );
                }
                println!("imports");
                for i in &info.imports {
                    println!("  {}::{} ({})", i.module, i.name, i.capability);
                }
                println!("exports");
                for e in &info.exports {
                    println!("  {e}");
                }
                println!("custom sections");
                for (n, len) in &info.custom_sections {
                    println!("  {n} ({len} bytes)");
                }
                println!("compile       {:.2} ms", info.compile_ms);
                println!("verdict       {}", info.verdict);
                Ok(())
            }
            PluginCommand::Run {
                file,
                input,
                fuel,
                memory,
                max_output,
                timeout_ms,
                task_id,
                manifest,
                output,
                json,
            } => {
                let engine = cli_engine()?;
                let wasm = read_module(&file, engine.config().max_module_bytes)?;
                let manifest = read_manifest(&file, manifest.as_deref())?;
                let input = read_input(&input, engine.config().max_input_bytes)?;
                let plugin = engine.load_with(&wasm, None, manifest)?;
                let base = engine.default_limits(&plugin);
                let limits = Limits {
                    fuel: fuel.unwrap_or(base.fuel),
                    memory_bytes: memory.unwrap_or(base.memory_bytes),
                    output_bytes: max_output.unwrap_or(base.output_bytes),
                    wall_clock: timeout_ms.map_or(base.wall_clock, Duration::from_millis),
                    ..base
                };
                let out = engine.execute_plugin(
                    &plugin,
                    Arc::from(input),
                    task_id.unwrap_or_default(),
                    Some(limits),
                )?;
                if let Some(path) = &output {
                    std::fs::write(path, &out.output).map_err(io_err(path))?;
                }
                if json {
                    let text = std::str::from_utf8(&out.output).ok();
                    return print_json(&RunReport {
                        digest: plugin.digest().to_hex(),
                        ok: true,
                        output_utf8: if output.is_some() { None } else { text },
                        output_hex: if text.is_none() && output.is_none() {
                            Some(hex::encode(&out.output))
                        } else {
                            None
                        },
                        output_bytes: out.output.len(),
                        fuel_used: out.fuel_used,
                        elapsed_us: out.elapsed.as_secs_f64() * 1e6,
                        logs: &out.logs,
                        logs_dropped: out.logs_dropped,
                    });
                }
                for l in &out.logs {
                    eprintln!("[plugin {:?}] {}", l.level, l.message);
                }
                if out.logs_dropped > 0 {
                    eprintln!("[plugin] {} log lines dropped", out.logs_dropped);
                }
                match &output {
                    Some(p) => println!(
                        "output        {} bytes written to {}",
                        out.output.len(),
                        p.display()
                    ),
                    None => {
                        let mut stdout = std::io::stdout().lock();
                        let r = render_output(&out.output);
                        let _ = stdout.write_all(r.as_bytes());
                        if !r.ends_with('\n') {
                            let _ = stdout.write_all(b"\n");
                        }
                    }
                }
                println!("--");
                println!("bytes         {}", out.output.len());
                println!("fuel used     {}", out.fuel_used);
                println!("time          {:.1} µs", out.elapsed.as_secs_f64() * 1e6);
                println!("digest        {}", plugin.digest());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_spec_forms() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("in.txt");
        std::fs::write(&f, b"from file").unwrap();
        assert_eq!(
            read_input(&format!("@{}", f.display()), 100).unwrap(),
            b"from file"
        );
        assert_eq!(read_input("literal", 100).unwrap(), b"literal");
        assert!(matches!(
            read_input(&format!("@{}", f.display()), 3),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            read_input("@/definitely/not/here", 3),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn hex_dump_for_binary_output() {
        assert_eq!(render_output(b"hi"), "hi");
        assert_eq!(render_output(&[0xff, 0]), "00000000  ff00\n");
    }
}
