#!/usr/bin/env bash
# Hardening runs, reproducible in one go (issue 7): the three libFuzzer targets, the whole test
# suite under AddressSanitizer, valgrind memcheck on the unsafe FFI outside the kernels (NVRTC),
# the peak-memory check of a 256-image batch, and the bad-input table of the README.
#
#   bash tools/harden.sh [STEP...]        STEP: fuzz asan valgrind memory bad-inputs (default: all)
#
# FUZZ_SECONDS (default 600) is each target's run; new corpus entries land in fuzz/corpus/.
# Before committing them: `cargo +nightly fuzz cmin -O TARGET`; for preprocess, whose inputs are
# whole images, the committed corpus keeps inputs of at most 16 KiB (in fuzz/: `mkdir small &&
# target/x86_64-unknown-linux-gnu/release/preprocess -merge=1 -max_len=16384 small
# corpus/preprocess`, then replace corpus/preprocess with small/). Needs the nightly toolchain for
# cargo-fuzz's sanitizer flags (installed with rustup if missing) and cargo-fuzz itself
# (installed with cargo if missing). The stable test suite under ASan uses RUSTC_BOOTSTRAP=1 on
# the pinned toolchain, whose sanitizer runtimes ship with it.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(fuzz asan valgrind memory bad-inputs)
FUZZ_SECONDS=${FUZZ_SECONDS:-600}
host=x86_64-unknown-linux-gnu
log_dir=target/harden
mkdir -p "$log_dir"

step_fuzz() {
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  (cd fuzz && cargo +nightly fuzz build -O)
  for target in spec weights preprocess; do
    echo "== fuzz $target for ${FUZZ_SECONDS}s (log: $log_dir/fuzz_$target.log)"
    # -rss_limit_mb: a target that needs more than 4 GiB for one input is a finding too.
    (cd fuzz && cargo +nightly fuzz run -O "$target" -- \
      -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096 -print_final_stats=1) \
      >"$log_dir/fuzz_$target.log" 2>&1 || {
      tail -40 "$log_dir/fuzz_$target.log"
      echo "fuzz $target found a failure; its input is in fuzz/artifacts/$target/"
      return 1
    }
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log_dir/fuzz_$target.log"
  done
}

step_asan() {
  echo "== the test suite under AddressSanitizer (log: $log_dir/asan.log)"
  # --target keeps the sanitizer flags off build scripts and proc macros (the macro itself runs
  # un-instrumented inside rustc); detect_leaks stays on. The `ui` test is skipped: it runs
  # rustc on compile-fail cases (none of our code runs), and trybuild's relative spec paths
  # assume the default target directory. So is the classify test that bounds the process's
  # address space with `ulimit -v`: ASan's shadow memory alone reserves terabytes of it.
  RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" \
    ASAN_OPTIONS="detect_odr_violation=0" CARGO_TARGET_DIR=target/asan \
    cargo test --target "$host" --workspace --tests --no-fail-fast -- --exact --skip ui \
    --skip the_workspace_holds_no_more_images_than_there_are \
    >"$log_dir/asan.log" 2>&1 || {
    grep -E 'ERROR: AddressSanitizer|SUMMARY|panicked|FAILED' "$log_dir/asan.log" | head -20
    return 1
  }
  grep -E '^test result' "$log_dir/asan.log" | awk '{p += $4; f += $6} END {print p " passed, " f " failed under ASan"}'
}

step_valgrind() {
  echo "== valgrind memcheck on the NVRTC FFI (log: $log_dir/valgrind.log)"
  local lib
  lib=$(python3 -c 'import nvidia.cuda_nvrtc, os; print(os.path.join(nvidia.cuda_nvrtc.__path__[0], "lib"))' 2>/dev/null) ||
    lib=$(ls -d target/nvrtc-venv/lib/python3*/site-packages/nvidia/cuda_nvrtc/lib 2>/dev/null | head -1)
  if [ -z "$lib" ]; then
    echo "SKIPPED: NVRTC not found (bash .ci/run installs it into target/nvrtc-venv)"
    return 0
  fi
  cargo test --features cuda -p regnet-runtime --test cuda_kernels --no-run 2>"$log_dir/valgrind_build.log"
  local binary
  binary=$(ls -t target/debug/deps/cuda_kernels-* | grep -v '\.d$' | head -1)
  LD_LIBRARY_PATH="$lib" REGNET_REQUIRE_NVRTC=1 REGNET_CUDA_CACHE="$(mktemp -d)" \
    valgrind --error-exitcode=99 --errors-for-leak-kinds=definite --leak-check=full \
    --suppressions=tools/nvrtc.supp "$binary" --exact --test-threads=1 \
    a_small_kernel_compiles_to_an_elf_cubin a_broken_kernel_is_a_compile_error_with_nvrtcs_log \
    >"$log_dir/valgrind.log" 2>&1 || {
    tail -40 "$log_dir/valgrind.log"
    return 1
  }
  grep -E 'ERROR SUMMARY|test result' "$log_dir/valgrind.log"
}

step_memory() {
  bash tools/memory_bound.sh
}

step_bad_inputs() {
  bash tools/bad_inputs.sh
}

for step in "${steps[@]}"; do
  "step_${step//-/_}"
done
