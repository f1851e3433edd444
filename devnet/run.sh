#!/usr/bin/env bash
# The main job: installs what is missing, builds hal9, and starts a local
# network of 5 nodes on 127.0.0.1 that connect and gossip.
#   devnet/run.sh [extra `hal9 devnet` flags, e.g. --nodes 7 --keep-running]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source devnet/env.sh
bash devnet/setup.sh
cargo build -p hal9-node
exec "$HAL9_BIN" devnet --nodes 5 "$@"
