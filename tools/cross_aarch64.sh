#!/usr/bin/env bash
# aarch64 under emulation: the NEON kernels' property tests against the scalar reference, and
# two PyTorch fixtures' parity (stem and stages within 1e-4, logits 1e-5) on NEON and scalar.
# qemu-user runs the test binaries as a plain Cortex-A72 (baseline NEON only).
#
#   bash tools/cross_aarch64.sh
#
# Installs what it needs when missing: the rust target, Debian's cross gcc (the linker) and
# qemu-user (apt-get: run as root, or with sudo). Needs ../shared/fixtures for the parity test.
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu"
start=$SECONDS
# The aarch64-only code (the NEON kernels) is linted here; .ci/run lints the x86 build.
cargo clippy --target "$target" -p regnet-runtime --all-targets -- -D warnings
cargo test --target "$target" -p regnet-runtime --test kernels
# Both torchvision fixtures: RegNetY-400MF's groups of 8 run the direct 3×3, RegNetX-400MF's
# groups of 16 Winograd's.
cargo test --target "$target" --test parity torchvision_regnet_ -- --nocapture
echo "aarch64 under qemu: $((SECONDS - start)) s"
