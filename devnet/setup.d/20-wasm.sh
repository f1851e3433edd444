#!/usr/bin/env bash
# Example WASM plugins: adds the wasm32-unknown-unknown target if it is
# missing, then builds every example plugin in release mode into
# plugins/examples/target/wasm32-unknown-unknown/release/. Idempotent; run
# from the repository root.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
examples="$root/plugins/examples"
target=wasm32-unknown-unknown

cd "$examples"
if ! rustup target list --installed | grep -qx "$target"; then
    echo "20-wasm: adding rust target $target"
    rustup target add "$target"
fi

# Plugins build in their own workspace and target dir, whatever the caller
# exported for the host crates.
echo "20-wasm: building example plugins"
env -u CARGO_TARGET_DIR -u RUSTFLAGS \
    cargo build --release --target "$target" \
    -p echo -p wordcount -p sha256 -p json-transform -p mlp

for f in "$examples/target/$target/release/"*.wasm; do
    printf '20-wasm: %s  %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "${f#"$root"/}"
done
