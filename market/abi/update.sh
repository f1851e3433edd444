#!/usr/bin/env bash
# Regenerates the committed ABI + creation bytecode JSON that hal9-market's
# `sol!` bindings read, from the forge build in contracts/out. Run after any
# contract change:  (cd contracts && forge build) && market/abi/update.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
node - "$root" <<'JS'
const fs = require('fs');
const path = require('path');
const root = process.argv[2];
const names = {
  HAL9Token: 'HAL9Token.sol',
  NeuronRegistry: 'NeuronRegistry.sol',
  RewardsDistributor: 'RewardsDistributor.sol',
  ComputationMarket: 'ComputationMarket.sol',
  HAL9Governor: 'HAL9Governor.sol',
  TimelockController: 'TimelockController.sol',
};
for (const [name, file] of Object.entries(names)) {
  const src = path.join(root, 'contracts', 'out', file, name + '.json');
  const art = JSON.parse(fs.readFileSync(src, 'utf8'));
  const out = { abi: art.abi, bytecode: { object: art.bytecode.object } };
  fs.writeFileSync(path.join(root, 'market', 'abi', name + '.json'), JSON.stringify(out) + '\n');
  console.log('abi/' + name + '.json', (art.bytecode.object.length - 2) / 2, 'bytes of creation code');
}
JS
