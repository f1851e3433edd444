#!/usr/bin/env bash
# Base tools: a Rust toolchain (cargo) and Node.js/npm for the contracts.
# Installs Debian packages only when a tool is missing. Idempotent.
set -euo pipefail

need_apt=()
command -v cargo >/dev/null 2>&1 || { echo "10-base: cargo is missing; install Rust with rustup first" >&2; exit 1; }
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v git >/dev/null 2>&1 || need_apt+=(git)
if ((${#need_apt[@]})); then
    echo "10-base: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi
echo "10-base: $(cargo --version); node $(node --version 2>/dev/null || echo missing)"
