//! Guest SDK for hal9 neurons.
//!
//! A plugin is one plain function plus one macro call:
//!
//! ```ignore
//! use hal9_plugin_sdk::{Error, plugin};
//!
//! fn run(input: &[u8]) -> Result<Vec<u8>, Error> {
//!     Ok(input.iter().rev().copied().collect())
//! }
//!
//! plugin!(run, manifest = r#"{"abi":1,"name":"reverse"}"#);
//! ```
//!
//! Build it as a `cdylib` for `wasm32-unknown-unknown`
//! (`hal9 plugin build <dir>`). The macro exports `hal9_run`, reads the
//! input through the host ABI, writes the output (or the error message and
//! a non-zero status) and embeds the manifest in the `hal9.manifest`
//! custom section. See `docs/plugin-abi.md`.

use std::fmt;

/// Host ABI version this SDK targets.
pub const ABI_VERSION: u32 = 1;

/// Error a plugin returns. Any `std::error::Error` converts into it with
/// `?`; a message or a status code can be given explicitly.
pub struct Error {
    code: i32,
    message: String,
}

impl Error {
    /// An error with status 1 and a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// An error with an explicit status (0 is turned into 1: 0 means
    /// success on the wire).
    pub fn with_code(code: i32, message: impl Into<String>) -> Self {
        Self {
            code: if code == 0 { 1 } else { code },
            message: message.into(),
        }
    }

    /// Status the host will see.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// Message the host will see.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Error::new(e.to_string())
    }
}

/// Copies a manifest string into a fixed-size array for the custom section.
/// Used by [`plugin!`]; not meant to be called directly.
#[doc(hidden)]
pub const fn __manifest_bytes<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// Raw imports of host ABI v1. Prefer the safe wrappers of this crate.
#[cfg(target_arch = "wasm32")]
pub mod sys {
    #[link(wasm_import_module = "hal9")]
    unsafe extern "C" {
        /// Length of the input in bytes.
        pub fn input_len() -> i32;
        /// Copies up to `len` input bytes from `offset` to `dst`; returns the
        /// number copied.
        pub fn input_read(dst: *mut u8, len: i32, offset: i32) -> i32;
        /// Appends `len` bytes at `src` to the output.
        pub fn output_write(src: *const u8, len: i32) -> i32;
        /// Emits a log line (capability `log`).
        pub fn log(level: i32, ptr: *const u8, len: i32);
        /// Fills `len` bytes at `dst` with deterministic randomness
        /// (capability `random`).
        pub fn random_fill(dst: *mut u8, len: i32);
    }
}

/// The whole input of this execution.
#[cfg(target_arch = "wasm32")]
pub fn input() -> Vec<u8> {
    // SAFETY: the host copies at most `n` bytes into the buffer we own.
    unsafe {
        let n = sys::input_len().max(0) as usize;
        let mut buf = Vec::<u8>::with_capacity(n);
        let got = sys::input_read(buf.as_mut_ptr(), n as i32, 0).max(0) as usize;
        buf.set_len(got.min(n));
        buf
    }
}

/// Appends bytes to the output.
#[cfg(target_arch = "wasm32")]
pub fn write_output(bytes: &[u8]) {
    // SAFETY: pointer and length describe a live slice.
    unsafe {
        sys::output_write(bytes.as_ptr(), bytes.len() as i32);
    }
}

/// Log levels understood by the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// 0
    Error = 0,
    /// 1
    Warn = 1,
    /// 2
    Info = 2,
    /// 3
    Debug = 3,
}

/// Emits a log line. Needs capability `log` in the manifest; the host
/// keeps a bounded number of lines per execution.
#[cfg(target_arch = "wasm32")]
pub fn log(level: Level, message: &str) {
    // SAFETY: pointer and length describe a live str.
    unsafe { sys::log(level as i32, message.as_ptr(), message.len() as i32) }
}

/// Fills `buf` with randomness derived from the task id: the same on every
/// node for the same task. Needs capability `random`.
#[cfg(target_arch = "wasm32")]
pub fn random_fill(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(64 * 1024) {
        // SAFETY: pointer and length describe a live, writable slice.
        unsafe { sys::random_fill(chunk.as_mut_ptr(), chunk.len() as i32) }
    }
}

/// Runs a plugin function against the host ABI. Used by [`plugin!`].
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub fn __run(f: fn(&[u8]) -> Result<Vec<u8>, Error>) -> i32 {
    let input = input();
    match f(&input) {
        Ok(out) => {
            write_output(&out);
            0
        }
        Err(e) => {
            write_output(e.message.as_bytes());
            e.code
        }
    }
}

/// Turns `fn run(&[u8]) -> Result<Vec<u8>, Error>` into a hal9 plugin.
///
/// `plugin!(run)` embeds the default manifest (ABI 1, no capabilities);
/// `plugin!(run, manifest = "<json>")` embeds the given one.
#[macro_export]
macro_rules! plugin {
    ($run:path) => {
        $crate::plugin!($run, manifest = "{\"abi\":1}");
    };
    ($run:path, manifest = $manifest:expr) => {
        #[cfg(target_arch = "wasm32")]
        #[unsafe(link_section = "hal9.manifest")]
        #[used]
        static __HAL9_MANIFEST: [u8; $manifest.len()] =
            $crate::__manifest_bytes::<{ $manifest.len() }>($manifest);

        /// Entry point called by the hal9 host.
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn hal9_run() -> i32 {
            $crate::__run($run)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_convert_and_keep_codes() {
        let e: Error = "x".parse::<u32>().unwrap_err().into();
        assert_eq!(e.code(), 1);
        assert!(e.message().contains("invalid digit"));
        assert_eq!(Error::with_code(0, "m").code(), 1);
        assert_eq!(Error::with_code(7, "m").code(), 7);
    }

    #[test]
    fn manifest_bytes_are_copied_verbatim() {
        const M: &str = "{\"abi\":1}";
        let b = __manifest_bytes::<{ M.len() }>(M);
        assert_eq!(&b, M.as_bytes());
    }
}
