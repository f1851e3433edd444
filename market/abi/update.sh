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
// alloy's sol! cannot bind a function returning a struct of more than 24
// fields (ComputationMarket.Task has 28): the bindings read a copy of the
// market ABI without getTask, which hal9-market decodes by hand.
{
  const full = JSON.parse(fs.readFileSync(path.join(root, 'market', 'abi', 'ComputationMarket.json'), 'utf8'));
  full.abi = full.abi.filter((e) => !(e.type === 'function' && e.name === 'getTask'));
  fs.writeFileSync(path.join(root, 'market', 'abi', 'ComputationMarket.bind.json'), JSON.stringify(full) + '\n');
  console.log('abi/ComputationMarket.bind.json (without getTask)');
}
JS
