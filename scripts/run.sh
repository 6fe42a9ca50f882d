#!/usr/bin/env bash
# Builds and opens BeatSync (installs what is missing first).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/setup.sh" run
export PATH="$HOME/.cargo/bin:$PATH"
cd "$ROOT"
cargo build --release --bin beatsync-app
exec "${CARGO_TARGET_DIR:-$ROOT/target}/release/beatsync-app" "$@"
