#!/usr/bin/env bash
# Kernel-level check of the NEON kernels (Sources/CFixed/q16_gemm_neon.h) under qemu-user:
# builds tools/cross/kernel_check.c with Sources/CFixed/*.c for each variant below and runs
# it; every variant compares the fast kernels with the q16_ref_* reference kernels bit for
# bit (outputs, saturation counts, status) and must report 0 mismatches. The NEON variants
# must also report "NEON on" (the intrinsics path was compiled in), the portable ones "off".
#
#   tools/cross/kernel_check.sh            (called by tools/cross/check.sh, which .ci/run runs)
#
# Variants: host (x86-64, target_clones), aarch64 cortex-a53 and cortex-a72 (NEON),
# armv7 cortex-a7 (neon-vfpv4), and the portable builds of both ARM targets
# (-DQ16_NO_NEON, auto-vectorisation off, armv7 without NEON: the scalar code).
# Environment: OUT (default out/cross; binaries in $OUT/kernel-check), SEEDS ("1 2").
# Needs: apt-get install -y gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/out/cross}"
SEEDS="${SEEDS:-1 2}"
DIR="$OUT/kernel-check"
mkdir -p "$DIR"
NOVEC=(-fno-tree-vectorize -fno-tree-slp-vectorize -DQ16_NO_NEON)

# name | compiler | flags | runner | expected NEON state
VARIANTS=(
  "host|${HOST_CC:-gcc}|||off"
  "aarch64|aarch64-linux-gnu-gcc|-mcpu=cortex-a53|qemu-aarch64 -cpu cortex-a53|on"
  "aarch64-a72|aarch64-linux-gnu-gcc|-mcpu=cortex-a72|qemu-aarch64 -cpu cortex-a72|on"
  "aarch64-portable|aarch64-linux-gnu-gcc|-march=armv8-a ${NOVEC[*]}|qemu-aarch64 -cpu cortex-a53|off"
  "armv7|arm-linux-gnueabihf-gcc|-mcpu=cortex-a7 -mfpu=neon-vfpv4 -mfloat-abi=hard|qemu-arm -cpu cortex-a7|on"
  "armv7-portable|arm-linux-gnueabihf-gcc|-march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard ${NOVEC[*]}|qemu-arm -cpu cortex-a7|off"
  # The NEON builds again with gcc's UBSan checks compiled in as traps (no runtime needed):
  # any undefined behaviour on the extreme inputs kills the run before its summary line.
  "aarch64-ubsan|aarch64-linux-gnu-gcc|-mcpu=cortex-a53 -fsanitize=undefined -fsanitize-undefined-trap-on-error|qemu-aarch64 -cpu cortex-a53|on"
  "armv7-ubsan|arm-linux-gnueabihf-gcc|-mcpu=cortex-a7 -mfpu=neon-vfpv4 -mfloat-abi=hard -fsanitize=undefined -fsanitize-undefined-trap-on-error|qemu-arm -cpu cortex-a7|on"
)

fails=0
pids=()
for v in "${VARIANTS[@]}"; do  # builds, in parallel (one per core)
  IFS="|" read -r name cc flags _ _ <<<"$v"
  command -v "$cc" >/dev/null 2>&1 || { echo "kernel_check.sh: $cc not found" >&2; exit 1; }
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc 2>/dev/null || echo 2)" ]; do wait -n || true; done
  # shellcheck disable=SC2086
  "$cc" -std=c99 -O3 -fno-math-errno -static -Wall -Wextra -Werror $flags -I "$ROOT/Sources/CFixed/include" \
    "$ROOT/tools/cross/kernel_check.c" "$ROOT"/Sources/CFixed/*.c -o "$DIR/kernel_check-$name" -lm &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
[ "$fails" -eq 0 ] || { echo "kernel_check.sh: $fails builds failed" >&2; exit 1; }

for v in "${VARIANTS[@]}"; do
  IFS="|" read -r name _ _ runner want <<<"$v"
  for seed in $SEEDS; do
    rc=0
    # shellcheck disable=SC2086
    line="$($runner "$DIR/kernel_check-$name" "$seed" | tail -n 12)" || rc=$?
    echo "$line" | sed "s/^/  $name seed $seed: /"
    if [ "$rc" -ne 0 ]; then
      fails=$((fails + 1))
    elif ! echo "$line" | grep -q "NEON $want, .* 0 mismatches: ok"; then
      echo "  $name: expected NEON $want and 0 mismatches"; fails=$((fails + 1))
    fi
  done
done
if [ "$fails" -ne 0 ]; then
  echo "kernel_check.sh: $fails FAILURES"
  exit 1
fi
echo "kernel_check.sh: every variant bit-exact with the reference kernels"
