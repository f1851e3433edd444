#!/usr/bin/env bash
# Foundry toolchain for contracts/: installs the npm packages pinned in
# contracts/package-lock.json (forge, anvil, cast 1.7.1 binaries, solcjs,
# OpenZeppelin, forge-std) when contracts/node_modules is missing or older
# than the lock file, then checks that the binaries run. Idempotent; run from
# the repository root. Afterwards put contracts/node_modules/.bin on PATH.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$root/contracts"
stamp="$dir/node_modules/.hal9-lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"

if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "30-foundry: npm ci in contracts/"
    (cd "$dir" && npm ci --no-audit --no-fund)
    echo "$want" > "$stamp"
fi

bin="$dir/node_modules/.bin"
for tool in forge anvil cast; do
    if ! "$bin/$tool" --version >/dev/null 2>&1; then
        echo "30-foundry: $bin/$tool does not run" >&2
        exit 1
    fi
done
"$dir/tools/solc" --version | grep -q 'Version: 0\.8\.' || {
    echo "30-foundry: the solc adapter (contracts/tools/solc) does not answer --version" >&2
    exit 1
}
echo "30-foundry: $("$bin/forge" --version | head -1); PATH dir: ${bin#"$root"/}"
