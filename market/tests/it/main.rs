//! Integration tests of hal9-market against a real anvil on 127.0.0.1 (random
//! port): deploy from the committed bytecode, register and stake neurons,
//! post a task, sign EIP-712 attestations with the committee's keys, submit
//! the verdict, pass the challenge window and finalize.
//!
//! anvil is looked up in `$HAL9_ANVIL`, then `PATH`, then
//! `contracts/node_modules/.bin/anvil` (installed by devnet/setup.d/30-foundry.sh).
//! Without anvil every test prints a loud SKIPPED message and returns.

mod chain;
mod dao;

use std::path::PathBuf;

/// Where anvil is, if installed.
pub(crate) fn anvil_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HAL9_ANVIL") {
        return Some(PathBuf::from(p));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let c = dir.join("anvil");
            if c.is_file() {
                return Some(c);
            }
        }
    }
    let local =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../contracts/node_modules/.bin/anvil");
    local.is_file().then_some(local)
}

/// Returns anvil's path, or prints why the test is skipped.
pub(crate) fn anvil_or_skip(test: &str) -> Option<PathBuf> {
    let p = anvil_path();
    if p.is_none() {
        eprintln!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             SKIPPED {test}: anvil is not installed (set HAL9_ANVIL, put it on PATH, or run\n\
             devnet/setup.d/30-foundry.sh). This test did NOT run.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
    }
    p
}
