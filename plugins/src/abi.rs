//! Host ABI v1: the functions a plugin may import from the `hal9` module.
//!
//! See `docs/plugin-abi.md` for the contract as seen by plugin authors.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use wasmtime::{Caller, Linker, Memory, ResourceLimiter};

use crate::{Error, digest::TaskId, manifest::Capability};

/// Version of the host ABI implemented here.
pub const ABI_VERSION: u32 = 1;
/// Name of the import module of the host ABI.
pub const HOST_MODULE: &str = "hal9";
/// Export the host calls to run a plugin: `func () -> i32`.
pub const RUN_EXPORT: &str = "hal9_run";
/// Linear memory export the host reads and writes.
pub const MEMORY_EXPORT: &str = "memory";

/// Fuel charged for every host call.
pub const HOST_CALL_FUEL: u64 = 10;
/// Bytes moved across the boundary per extra unit of fuel.
pub const BYTES_PER_FUEL: u64 = 16;
/// Largest single `random_fill` request, in bytes.
pub const MAX_RANDOM_FILL: u32 = 64 * 1024;

/// The host functions of ABI v1 and the capability each needs (`None`:
/// always available).
pub const HOST_FUNCTIONS: [(&str, Option<Capability>); 5] = [
    ("input_len", None),
    ("input_read", None),
    ("output_write", None),
    ("log", Some(Capability::Log)),
    ("random_fill", Some(Capability::Random)),
];

/// Capability that gates a `hal9` import: `None` if the name is not part
/// of the ABI, `Some(None)` if it needs no capability.
pub fn capability_of(name: &str) -> Option<Option<Capability>> {
    HOST_FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

/// Log level of a guest log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// 0
    Error,
    /// 1
    Warn,
    /// 2
    Info,
    /// 3 and above
    Debug,
}

/// A log line a plugin emitted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// Level.
    pub level: LogLevel,
    /// Message (lossy UTF-8, truncated to the host's line limit).
    pub message: String,
}

/// Deterministic random bytes: SHA-256 in counter mode over the task id.
/// `block_i = sha256("hal9/random/v1" || task_id || i as u64 little endian)`.
#[derive(Debug)]
pub(crate) struct DetRng {
    seed: [u8; 32],
    counter: u64,
    buf: [u8; 32],
    pos: usize,
}

impl DetRng {
    pub(crate) fn new(task: &TaskId) -> Self {
        Self {
            seed: task.0,
            counter: 0,
            buf: [0; 32],
            pos: 32,
        }
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.pos == 32 {
                let mut h = Sha256::new();
                h.update(b"hal9/random/v1");
                h.update(self.seed);
                h.update(self.counter.to_le_bytes());
                self.buf = h.finalize().into();
                self.counter += 1;
                self.pos = 0;
            }
            *b = self.buf[self.pos];
            self.pos += 1;
        }
    }
}

/// Traps raised by host functions and the resource limiter. They are
/// turned into [`Error`] variants after the call returns.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostTrap {
    #[error("output limit")]
    Output { limit: usize, attempted: u64 },
    #[error("bad pointer")]
    BadPointer {
        call: &'static str,
        ptr: u32,
        len: u32,
    },
    #[error("out of fuel")]
    OutOfFuel,
    #[error("memory limit")]
    Memory { limit: u64, requested: u64 },
    #[error("table limit")]
    Table { limit: u64, requested: u64 },
    #[error("random_fill of {0} bytes exceeds {MAX_RANDOM_FILL}")]
    RandomTooLarge(u32),
    #[error("no memory export")]
    NoMemory,
}

impl HostTrap {
    pub(crate) fn into_error(self) -> Error {
        match self {
            HostTrap::Output { limit, attempted } => Error::OutputTooLarge { limit, attempted },
            HostTrap::BadPointer { call, ptr, len } => Error::BadPointer { call, ptr, len },
            HostTrap::OutOfFuel => Error::OutOfFuel { limit: 0 },
            HostTrap::Memory { limit, requested } => Error::MemoryLimit { limit, requested },
            HostTrap::Table { limit, requested } => Error::TableLimit { limit, requested },
            HostTrap::RandomTooLarge(n) => Error::Trap(format!(
                "random_fill of {n} bytes: expected at most {MAX_RANDOM_FILL}"
            )),
            HostTrap::NoMemory => Error::MissingExport {
                name: MEMORY_EXPORT,
                expected: "an exported linear memory",
            },
        }
    }
}

/// Memory and table guard of one store.
#[derive(Debug)]
pub(crate) struct Guard {
    pub(crate) memory_limit: u64,
    pub(crate) table_limit: u64,
}

impl ResourceLimiter for Guard {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_limit {
            return Err(wasmtime::Error::new(HostTrap::Memory {
                limit: self.memory_limit,
                requested: desired as u64,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.table_limit {
            return Err(wasmtime::Error::new(HostTrap::Table {
                limit: self.table_limit,
                requested: desired as u64,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }
    fn tables(&self) -> usize {
        1
    }
    fn memories(&self) -> usize {
        1
    }
}

/// Per-execution state of a store.
pub(crate) struct HostState {
    pub(crate) input: Arc<[u8]>,
    pub(crate) output: Vec<u8>,
    pub(crate) output_limit: usize,
    pub(crate) memory: Option<Memory>,
    pub(crate) rng: DetRng,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) logs_dropped: u32,
    pub(crate) max_log_lines: u32,
    pub(crate) max_log_line_bytes: usize,
    pub(crate) guard: Guard,
}

fn charge(caller: &mut Caller<'_, HostState>, bytes: u64) -> wasmtime::Result<()> {
    let cost = HOST_CALL_FUEL + bytes / BYTES_PER_FUEL;
    let left = caller.get_fuel()?;
    if left < cost {
        caller.set_fuel(0)?;
        return Err(wasmtime::Error::new(HostTrap::OutOfFuel));
    }
    caller.set_fuel(left - cost)?;
    Ok(())
}

fn memory(caller: &Caller<'_, HostState>) -> wasmtime::Result<Memory> {
    caller
        .data()
        .memory
        .ok_or_else(|| wasmtime::Error::new(HostTrap::NoMemory))
}

fn range(
    call: &'static str,
    ptr: i32,
    len: i32,
    mem_len: usize,
) -> wasmtime::Result<std::ops::Range<usize>> {
    let (p, l) = (ptr as u32, len as u32);
    let start = p as usize;
    let end = start.checked_add(l as usize);
    match end {
        Some(end) if end <= mem_len => Ok(start..end),
        _ => Err(wasmtime::Error::new(HostTrap::BadPointer {
            call,
            ptr: p,
            len: l,
        })),
    }
}

/// Defines every ABI v1 function in `linker`. Which of them a module may
/// import is decided at load time from its manifest.
pub(crate) fn define(linker: &mut Linker<HostState>) -> Result<(), Error> {
    let e = |err: wasmtime::Error| Error::Engine(format!("defining host functions: {err}"));
    linker
        .func_wrap(
            HOST_MODULE,
            "input_len",
            |mut caller: Caller<'_, HostState>| -> wasmtime::Result<i32> {
                charge(&mut caller, 0)?;
                Ok(caller.data().input.len() as i32)
            },
        )
        .map_err(e)?;
    linker
        .func_wrap(
            HOST_MODULE,
            "input_read",
            |mut caller: Caller<'_, HostState>,
             dst: i32,
             len: i32,
             offset: i32|
             -> wasmtime::Result<i32> {
                let mem = memory(&caller)?;
                let input = caller.data().input.clone();
                let offset = (offset as u32 as usize).min(input.len());
                let n = (len as u32 as usize).min(input.len() - offset);
                charge(&mut caller, n as u64)?;
                let r = range("input_read", dst, n as i32, mem.data_size(&caller))?;
                mem.data_mut(&mut caller)[r].copy_from_slice(&input[offset..offset + n]);
                Ok(n as i32)
            },
        )
        .map_err(e)?;
    linker
        .func_wrap(
            HOST_MODULE,
            "output_write",
            |mut caller: Caller<'_, HostState>, src: i32, len: i32| -> wasmtime::Result<i32> {
                let mem = memory(&caller)?;
                let len_u = len as u32 as u64;
                let st = caller.data();
                let attempted = st.output.len() as u64 + len_u;
                if attempted > st.output_limit as u64 {
                    return Err(wasmtime::Error::new(HostTrap::Output {
                        limit: st.output_limit,
                        attempted,
                    }));
                }
                charge(&mut caller, len_u)?;
                let r = range("output_write", src, len, mem.data_size(&caller))?;
                let (data, st) = mem.data_and_store_mut(&mut caller);
                st.output.extend_from_slice(&data[r]);
                Ok(0)
            },
        )
        .map_err(e)?;
    linker
        .func_wrap(
            HOST_MODULE,
            "log",
            |mut caller: Caller<'_, HostState>,
             level: i32,
             ptr: i32,
             len: i32|
             -> wasmtime::Result<()> {
                let mem = memory(&caller)?;
                charge(&mut caller, len as u32 as u64)?;
                let r = range("log", ptr, len, mem.data_size(&caller))?;
                let (data, st) = mem.data_and_store_mut(&mut caller);
                if st.logs.len() as u32 >= st.max_log_lines {
                    st.logs_dropped = st.logs_dropped.saturating_add(1);
                    return Ok(());
                }
                let bytes = &data[r];
                let bytes = &bytes[..bytes.len().min(st.max_log_line_bytes)];
                let level = match level {
                    0 => LogLevel::Error,
                    1 => LogLevel::Warn,
                    2 => LogLevel::Info,
                    _ => LogLevel::Debug,
                };
                let message = String::from_utf8_lossy(bytes).into_owned();
                tracing::debug!(target: "hal9::plugins::guest", ?level, %message, "plugin log");
                st.logs.push(LogLine { level, message });
                Ok(())
            },
        )
        .map_err(e)?;
    linker
        .func_wrap(
            HOST_MODULE,
            "random_fill",
            |mut caller: Caller<'_, HostState>, dst: i32, len: i32| -> wasmtime::Result<()> {
                let mem = memory(&caller)?;
                let n = len as u32;
                if n > MAX_RANDOM_FILL {
                    return Err(wasmtime::Error::new(HostTrap::RandomTooLarge(n)));
                }
                charge(&mut caller, u64::from(n) * 4)?;
                let r = range("random_fill", dst, len, mem.data_size(&caller))?;
                let (data, st) = mem.data_and_store_mut(&mut caller);
                st.rng.fill(&mut data[r]);
                Ok(())
            },
        )
        .map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_seeded_by_task_and_chunking_does_not_matter() {
        let t = TaskId([7; 32]);
        let mut a = DetRng::new(&t);
        let mut whole = [0u8; 100];
        a.fill(&mut whole);
        let mut b = DetRng::new(&t);
        let mut parts = [0u8; 100];
        b.fill(&mut parts[..33]);
        b.fill(&mut parts[33..]);
        assert_eq!(whole, parts);
        let mut c = DetRng::new(&TaskId([8; 32]));
        let mut other = [0u8; 100];
        c.fill(&mut other);
        assert_ne!(whole, other);
        // First block is the documented construction.
        let mut h = Sha256::new();
        h.update(b"hal9/random/v1");
        h.update([7u8; 32]);
        h.update(0u64.to_le_bytes());
        let first: [u8; 32] = h.finalize().into();
        assert_eq!(&whole[..32], &first);
    }

    #[test]
    fn only_abi_names_have_capabilities() {
        assert_eq!(capability_of("log"), Some(Some(Capability::Log)));
        assert_eq!(capability_of("input_read"), Some(None));
        assert_eq!(capability_of("fd_write"), None);
    }
}
