# Sourced by the devnet scripts: where builds go and which tools are on PATH.
hal9_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One cargo target directory outside the clone, shared by every run (a cache, never required).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hal9/target}"
# forge, anvil and cast from contracts/node_modules (installed by setup.d/30-foundry.sh).
export PATH="$hal9_root/contracts/node_modules/.bin:$PATH"
export HAL9_BIN="$CARGO_TARGET_DIR/debug/hal9"
# Example plugins of this checkout (the path compiled into a cached build may be another checkout's).
export HAL9_EXAMPLES_DIR="$hal9_root/plugins/examples"
