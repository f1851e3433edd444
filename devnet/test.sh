#!/usr/bin/env bash
# Runs every test: installs what is missing, then the Rust workspace tests
# (unit, property, simulator, and end-to-end tests over real processes) and
# the Solidity tests (forge: unit, fuzz, invariant).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source devnet/env.sh
bash devnet/setup.sh

echo "==> cargo test --workspace"
# fault-injection compiles the byzantine switches (HAL9_FAULT) into the test
# builds only; it does nothing unless a test turns it on.
# Chain tests need anvil (installed by setup): fail rather than skip without it.
export HAL9_REQUIRE_ANVIL=1
cargo test --workspace --no-fail-fast --features hal9-node/fault-injection

echo "==> forge test (contracts/)"
(cd contracts && forge test)
