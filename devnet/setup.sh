#!/usr/bin/env bash
# Installs everything hal9 needs on a fresh machine (Debian packages, the WASM
# target, the Solidity toolchain from npm) when it is missing. Safe to re-run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
for step in devnet/setup.d/*.sh; do
    bash "$step"
done
