#!/usr/bin/env bash
# The whole test suite: formatting, lints, engine + IPC tests (cargo), UI logic
# in headless Chromium, end-to-end tests of the real window under Xvfb, the
# Linux packages built, checked, installed and run, and a Windows compile check.
# Installs what is missing first. Screenshots and logs go to test-output/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
"$ROOT/scripts/setup.sh" test
export PATH="$HOME/.cargo/bin:$PATH"
cd "$ROOT"
export BEATSYNC_TEST_OUT="${BEATSYNC_TEST_OUT:-$ROOT/test-output}"
mkdir -p "$BEATSYNC_TEST_OUT"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build (app and CLI)"
cargo build --workspace --bins

step "cargo test (engine, CLI, IPC)"
cargo test --workspace

step "UI logic in headless Chromium (mocked IPC)"
(cd tests && node --test ui/)

step "end-to-end: the real app under Xvfb"
(cd tests && xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- node --test --test-concurrency=1 e2e/)

step "package, install into a throw-away overlay, run the installed app (scripts/install-test.sh)"
scripts/install-test.sh

step "Windows compile check (scripts/check-windows.sh)"
scripts/check-windows.sh

step "all test suites passed"
