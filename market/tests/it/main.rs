//! Integration tests of hal9-market against a real anvil on 127.0.0.1 (random
//! port; stock settings, so EIP-170 is enforced):
//! deploy from the committed bytecode, register neurons with ed25519 peer
//! bindings, apply their tree writes, post a task, draw its committee,
//! commit and reveal with the members' keys, submit the verdict, pass the
//! challenge window and finalize; challenges, equivocations and batches too.
//!
//! anvil is looked up in `$HAL9_ANVIL`, then `PATH`, then
//! `contracts/node_modules/.bin/anvil` (installed by devnet/setup.d/30-foundry.sh).
//! Without anvil every test prints a loud SKIPPED message and returns, unless
//! `HAL9_REQUIRE_ANVIL=1` is set (CI): then it fails with the same message.

mod chain;
mod dao;
mod settle;
mod watch;

use std::path::PathBuf;

/// Where anvil is, if installed.
pub(crate) fn anvil_path() -> Option<PathBuf> {
    hal9_market::deploy::find_anvil()
}

/// Returns anvil's path, or prints why the test is skipped; with
/// `HAL9_REQUIRE_ANVIL=1` a missing anvil fails the test instead.
pub(crate) fn anvil_or_skip(test: &str) -> Option<PathBuf> {
    let p = anvil_path();
    if p.is_none() {
        let msg = format!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             SKIPPED {test}: anvil is not installed (set HAL9_ANVIL, put it on PATH, or run\n\
             devnet/setup.d/30-foundry.sh). This test did NOT run.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        if require_anvil() {
            panic!("{msg}");
        }
        eprintln!("{msg}");
    }
    p
}

/// Whether `HAL9_REQUIRE_ANVIL=1` forbids skipping.
fn require_anvil() -> bool {
    std::env::var_os("HAL9_REQUIRE_ANVIL").is_some_and(|v| v == "1")
}
