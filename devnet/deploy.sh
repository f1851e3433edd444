#!/usr/bin/env bash
# Deploys the hal9 contracts to a running chain (anvil in the devnet) and
# writes their addresses as JSON for the node to read.
#   devnet/deploy.sh [RPC_URL] [OUT_JSON]
# RPC_URL defaults to http://127.0.0.1:8545; OUT_JSON defaults to
# contracts/deployments/<chainid>.json. PRIVATE_KEY (default: anvil account 0)
# and HAL9_GENESIS (comma-separated addresses) are passed to the script.
# Needs contracts/node_modules/.bin on PATH (devnet/setup.d/30-foundry.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rpc="${1:-http://127.0.0.1:8545}"
out="${2:-}"
cd "$root/contracts"
mkdir -p deployments
chain_id="$(cast chain-id --rpc-url "$rpc")"
tmp="deployments/$chain_id.json"
HAL9_DEPLOY_OUT="$tmp" forge script script/Deploy.s.sol:Deploy --rpc-url "$rpc" --broadcast --slow >&2
if [[ -n "$out" ]]; then
    mkdir -p "$(dirname "$out")"
    cp "$tmp" "$out"
    echo "$out"
else
    echo "$root/contracts/$tmp"
fi
