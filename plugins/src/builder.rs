//! Building plugins from source with cargo (`hal9 plugin build`).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::SystemTime,
};

use crate::{Error, Result, digest::ModuleDigest};

/// Rust target plugins are compiled for.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// A built plugin artifact.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BuiltPlugin {
    /// Path of the `.wasm` file.
    pub path: PathBuf,
    /// Digest of its bytes.
    #[serde(serialize_with = "ser_digest")]
    pub digest: ModuleDigest,
    /// Size in bytes.
    pub size: usize,
}

fn ser_digest<S: serde::Serializer>(
    d: &ModuleDigest,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&d.to_hex())
}

fn cargo() -> Command {
    let bin = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(bin);
    // The caller's target dir (e.g. the host crates' one) must not leak into
    // the plugin build: plugins land in their own workspace's target dir.
    for v in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        c.env_remove(v);
    }
    c
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Installs the `wasm32-unknown-unknown` standard library with rustup if
/// the toolchain used in `dir` lacks it.
pub fn ensure_wasm_target(dir: &Path) -> Result<()> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(dir)
        .output()
        .map_err(|e| Error::Build(format!("running rustc: {e}")))?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .is_dir()
    {
        return Ok(());
    }
    tracing::info!(target: "hal9::plugins", "installing the {WASM_TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .current_dir(dir)
        .status()
        .map_err(|e| Error::Build(format!("running rustup: {e}")))?;
    if !status.success() {
        return Err(Error::Build(format!(
            "`rustup target add {WASM_TARGET}` failed with {status}"
        )));
    }
    Ok(())
}

/// Builds the cargo package (or workspace) in `dir` for
/// `wasm32-unknown-unknown` in release mode and returns every `.wasm`
/// artifact produced, with its digest.
pub fn build_plugin(dir: &Path) -> Result<Vec<BuiltPlugin>> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(Error::Build(format!(
            "expected a cargo package at {}, found no Cargo.toml",
            dir.display()
        )));
    }
    ensure_wasm_target(dir)?;
    let mut child = cargo()
        .args(["build", "--release", "--target", WASM_TARGET])
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["--message-format", "json-render-diagnostics"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Build(format!("running cargo: {e}")))?;
    let mut wasm = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| Error::Build(format!("reading cargo output: {e}")))?;
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            if let Some(files) = msg["filenames"].as_array() {
                for f in files.iter().filter_map(|f| f.as_str()) {
                    if f.ends_with(".wasm") {
                        wasm.push(PathBuf::from(f));
                    }
                }
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::Build(format!("waiting for cargo: {e}")))?;
    if !status.success() {
        return Err(Error::Build(format!(
            "cargo build in {} failed with {status}",
            dir.display()
        )));
    }
    if wasm.is_empty() {
        return Err(Error::Build(format!(
            "expected a cdylib artifact (.wasm) from {}, found none; is `crate-type = [\"cdylib\"]` set?",
            dir.display()
        )));
    }
    wasm.into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).map_err(io_err(&path))?;
            Ok(BuiltPlugin {
                digest: ModuleDigest::of(&bytes),
                size: bytes.len(),
                path,
            })
        })
        .collect()
}

/// Directory of the example plugins in this source tree.
///
/// `HAL9_EXAMPLES_DIR` overrides the path compiled in: a cargo target
/// directory shared between checkouts can hold a build of this crate made
/// in another checkout, whose compiled-in path may no longer exist.
pub fn examples_dir() -> PathBuf {
    match std::env::var_os("HAL9_EXAMPLES_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
    }
}

/// Names of the example plugins (directories under [`examples_dir`]).
pub const EXAMPLES: [&str; 5] = ["echo", "wordcount", "sha256", "json-transform", "mlp"];

fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest: Option<SystemTime> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(t) = entry.metadata().and_then(|m| m.modified()) {
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
        }
    }
    newest
}

/// Path of a built example (`plugins/examples/target/wasm32-unknown-unknown/
/// release/<name>.wasm`). Builds it first when it is missing or older than
/// its sources or the SDK.
pub fn example_wasm(name: &str) -> Result<PathBuf> {
    let root = examples_dir();
    let src = root.join(name);
    if !src.join("Cargo.toml").is_file() {
        return Err(Error::Usage(format!(
            "expected an example named one of {EXAMPLES:?}, found `{name}`"
        )));
    }
    let artifact = root
        .join("target")
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let built = std::fs::metadata(&artifact).and_then(|m| m.modified()).ok();
    let sources = [newest_source(&src), newest_source(&root.join("../sdk/src"))]
        .into_iter()
        .flatten()
        .max();
    let fresh = matches!((built, sources), (Some(b), Some(s)) if b >= s);
    if !fresh {
        build_plugin(&src)?;
    }
    if !artifact.is_file() {
        return Err(Error::Build(format!(
            "expected {} after building, found nothing",
            artifact.display()
        )));
    }
    Ok(artifact)
}
