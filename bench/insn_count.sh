#!/usr/bin/env bash
# Guest instructions per forward pass under qemu-aarch64, NEON against scalar: the speed proxy
# for ARM where no ARM machine is at hand (instructions are not cycles: no latencies, no memory
# stalls). Also the 4-lane FMAs (FMLA .4s) executed, against the network's multiply-adds.
#
#   bash bench/insn_count.sh [SPEC]          (default specs/regnety_400mf.yaml)
#
# Builds the counting plugin (bench/qemu_insn_count.c) against Debian's qemu source (fetched
# with a private deb-src list, leaving the system's apt configuration alone), cross-builds the
# `passes` example, and counts 1 and 3 passes on one thread: their difference over 2 is one
# pass without the set-up. Needs what tools/cross_aarch64.sh installs, plus libglib2.0-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
spec=${1:-specs/regnety_400mf.yaml}
work=target/qemu-plugin
mkdir -p "$work"
plugin=$PWD/$work/libcount.so
if [ ! -f "$plugin" ]; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  dpkg -s libglib2.0-dev >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libglib2.0-dev >/dev/null
  mkdir -p "$work/parts" "$work/lists/partial"
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$work/parts/src.sources"
  apt=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$PWD/$work/parts" -o "Dir::State::Lists=$PWD/$work/lists")
  apt-get "${apt[@]}" update -qq
  (cd "$work" && apt-get "${apt[@]}" source --download-only qemu >/dev/null 2>&1)
  tar -C "$work" -xf "$work"/qemu_*.orig.tar.xz --wildcards '*/include/qemu/qemu-plugin.h'
  gcc -O2 -fPIC -shared $(pkg-config --cflags glib-2.0) -I"$(ls -d "$work"/qemu-*/include/qemu)" \
    bench/qemu_insn_count.c -o "$plugin" $(pkg-config --libs glib-2.0)
fi
target=aarch64-unknown-linux-gnu
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  cargo build -q --release --target "$target" -p regnet-runtime --example passes
binary=target/$target/release/examples/passes
count() { # ISA PASSES -> "instructions vector_fma"
  qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu -plugin "$plugin" -d plugin \
    "$binary" "$spec" "$1" "$2" 2>&1 | awk '/^instructions/ {print $2, $4}'
}
macs=$(cargo run -q --release -p regnet-cli -- inspect "$spec" --json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["flops"])')
printf '| kernels | instructions per pass | FMLA .4s per pass | multiply-adds / (4 × FMLA) |\n|---|---|---|---|\n'
for isa in neon scalar; do
  read -r one one_fma <<<"$(count "$isa" 1)"
  read -r three three_fma <<<"$(count "$isa" 3)"
  python3 -c "
i, f, m = ($three - $one) / 2, ($three_fma - $one_fma) / 2, $macs
share = f'{m / (4 * f):.1%}' if f else '–'
print(f'| $isa | {i:,.0f} | {f:,.0f} | {share} |')"
done
