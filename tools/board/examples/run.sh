#!/usr/bin/env bash
# Builds and runs the C library's acceptance test and streaming example per target.
#
#   tools/board/examples/run.sh host [aarch64] [armv7]
#
# host (run by .ci/run):
#   - builds out/cross/lib/x86_64/libpdmm.a (tools/cross/build.sh lib-host);
#   - pdmm_api_test.c with -fsanitize=address,undefined, run: plan, too-small arena,
#     round trips, every error status, heap bounds, PROT_READ frozen weights;
#   - its `plan-csv` rows diffed with `pdmm report --format csv` (planned rows) for a dense
#     network with momentum and the CNN of tools/cross/check.sh;
#   - stream_plan (host) writes $OUT/examples/stream_arena.h; stream.c built and run on
#     Data/digits.csv: 0 heap allocations during steps, its weights hash equal to the SwiftPM
#     engine's on the same stream (CLibraryStreamTests, run by swift test) and recorded in
#     $OUT/examples/stream-hash-x86_64.txt; resuming from its last checkpoint (a copy)
#     with no more data gives the same hash.
# aarch64, armv7 (run by tools/cross/check.sh, after host):
#   - libpdmm.a for the target, pdmm_api_test (static, no sanitizers) and stream (static)
#     built with the target's gcc and run under qemu-user; the stream's hash must equal
#     the host's.
# Environment: OUT (default out/cross), BUILD (1; 0 reuses the libraries), PDMM (a host
# pdmm; default .build/release/pdmm, built if missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
export OUT="${OUT:-$ROOT/out/cross}"
BUILD="${BUILD:-1}"
EX="$ROOT/tools/board/examples"
WORK="$OUT/examples"
mkdir -p "$WORK"
WRAP="-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=posix_memalign,--wrap=aligned_alloc"
fails=0
fail() { echo "  FAIL: $*"; fails=$((fails + 1)); }

run_host() {
  [ "$BUILD" = 1 ] && "$ROOT/tools/cross/build.sh" lib-host
  local lib="$OUT/lib/x86_64"
  echo "   size libpdmm.a (text data bss): $(size -t "$lib/libpdmm.a" | awk 'END {print $1, $2, $3}')"
  echo "== pdmm_api_test (host, ASan + UBSan)"
  gcc -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
    -fno-omit-frame-pointer -I "$lib" "$EX/pdmm_api_test.c" "$EX/alloc_count.c" "$lib/libpdmm.a" $WRAP -lm \
    -o "$WORK/pdmm_api_test-x86_64"
  "$WORK/pdmm_api_test-x86_64" || fail "pdmm_api_test (host)"

  echo "== pdmm_plan == pdmm report (planned bytes per category)"
  local pdmm="${PDMM:-$ROOT/.build/release/pdmm}"
  [ -x "$pdmm" ] || swift build -c release --product pdmm 2>&1 | tail -n 1
  local cnn="1x8x8: conv 4 3x3 same, relu, maxpool 2x2, conv 8 3x3 same, relu, flatten, dense 10"
  "$WORK/pdmm_api_test-x86_64" plan-csv 64,128,128,128,10 32 momentum 1 2 3 >"$WORK/plan-dense.csv"
  "$pdmm" report --format csv --layers 64,128,128,128,10 --batch 32 --optimizer momentum --k 1,2,3 |
    grep -v '^pdmm' | grep ',planned,' | cut -d, -f1-11 >"$WORK/report-dense.csv"
  "$WORK/pdmm_api_test-x86_64" plan-csv "$cnn" 16 sgd 1 2 >"$WORK/plan-cnn.csv"
  "$pdmm" report --format csv --net "$cnn" --batch 16 --k 1,2 |
    grep -v '^pdmm' | grep ',planned,' | cut -d, -f1-11 >"$WORK/report-cnn.csv"
  for n in dense cnn; do
    if [ -s "$WORK/plan-$n.csv" ] && diff "$WORK/plan-$n.csv" "$WORK/report-$n.csv"; then
      echo "   $n: $(wc -l <"$WORK/plan-$n.csv") modes, identical"
    else
      fail "pdmm_plan differs from pdmm report ($n; < library, > report)"
    fi
  done

  echo "== stream (host)"
  gcc -std=c11 -Wall -Wextra -Werror -O2 -I "$lib" -I "$EX" "$EX/stream_plan.c" "$lib/libpdmm.a" -lm \
    -o "$WORK/stream_plan"
  "$WORK/stream_plan" >"$WORK/stream_arena.h"
  grep '^#define' "$WORK/stream_arena.h" | sed 's/^/   /'
  build_stream gcc x86_64 "$lib" -fsanitize=address,undefined -fno-sanitize-recover=all
  run_stream x86_64 ""
  hash_of x86_64 >"$WORK/stream-hash-x86_64.txt"
  # The SwiftPM engine replays the same stream in Tests/PDMMEngineTests/CLibraryStreamTests.swift.
  local swift_hash
  swift_hash="$(sed -n 's/.*static let streamHash = "\([0-9a-f]*\)".*/\1/p' "$ROOT/Tests/PDMMEngineTests/CLibraryStreamTests.swift")"
  [ "$(hash_of x86_64)" = "$swift_hash" ] ||
    fail "stream (host): hash $(hash_of x86_64), the SwiftPM engine's (CLibraryStreamTests) $swift_hash"
  # Resume: the last checkpoint (written at the end) and no more data: the same weights.
  cp "$WORK/stream-x86_64.ckpt" "$WORK/stream-resume.ckpt"
  local h
  h="$("$WORK/stream-x86_64" --resume "$WORK/stream-resume.ckpt" --every 0 --holdout 1 </dev/null |
       sed -n 's/^weights hash //p')"
  [ "$h" = "$(cat "$WORK/stream-hash-x86_64.txt")" ] || fail "stream --resume: hash $h, expected $(cat "$WORK/stream-hash-x86_64.txt")"
}

# build_stream CC ARCH LIBDIR [extra flags...]
build_stream() {
  local cc="$1" arch="$2" lib="$3"
  shift 3
  "$cc" -std=c11 -Wall -Wextra -Werror -O2 "$@" -I "$lib" -I "$EX" -I "$WORK" "$EX/stream.c" "$EX/alloc_count.c" \
    "$lib/libpdmm.a" $WRAP -lm -o "$WORK/stream-$arch"
}

# run_stream ARCH RUNNER
run_stream() {
  local arch="$1" runner="$2"
  rm -f "$WORK/stream-$arch.ckpt"
  if $runner "$WORK/stream-$arch" --checkpoint "$WORK/stream-$arch.ckpt" --every 500 --holdout 297 \
       <"$ROOT/Data/digits.csv" >"$WORK/stream-$arch.txt" 2>&1; then
    sed 's/^/   /' "$WORK/stream-$arch.txt"
  else
    fail "stream ($arch): $(tail -n 2 "$WORK/stream-$arch.txt")"
  fi
  grep -q '^heap allocations during steps: 0$' "$WORK/stream-$arch.txt" || fail "stream ($arch): heap during steps"
  [ -s "$WORK/stream-$arch.ckpt" ] || fail "stream ($arch): no checkpoint file"
  [ ! -e "$WORK/stream-$arch.ckpt.tmp" ] || fail "stream ($arch): temporary checkpoint left behind"
}

hash_of() { sed -n 's/^weights hash //p' "$WORK/stream-$1.txt"; }

run_cross() {
  local arch="$1" cc runner
  case "$arch" in
    aarch64) cc=aarch64-linux-gnu-gcc; runner="qemu-aarch64 -cpu cortex-a53" ;;
    armv7) cc=arm-linux-gnueabihf-gcc; runner="qemu-arm -cpu cortex-a7" ;;
  esac
  [ "$BUILD" = 1 ] && "$ROOT/tools/cross/build.sh" "lib-$arch"
  local lib="$OUT/lib/$arch"
  [ -s "$WORK/stream_arena.h" ] && [ -s "$WORK/stream-hash-x86_64.txt" ] ||
    { echo "run.sh: run 'host' first (stream_arena.h, host hash)" >&2; exit 1; }
  local -a flags=(-static -no-pie)
  [ "$arch" = aarch64 ] && flags+=(-fuse-ld=gold)
  echo "   size libpdmm.a (text data bss): $("${cc%gcc}size" -t "$lib/libpdmm.a" | awk 'END {print $1, $2, $3}')"
  echo "== pdmm_api_test ($arch, qemu)"
  "$cc" -std=c11 -Wall -Wextra -Werror -O2 "${flags[@]}" -I "$lib" "$EX/pdmm_api_test.c" "$EX/alloc_count.c" \
    "$lib/libpdmm.a" $WRAP -lm -o "$WORK/pdmm_api_test-$arch"
  $runner "$WORK/pdmm_api_test-$arch" || fail "pdmm_api_test ($arch)"
  echo "== stream ($arch, qemu)"
  build_stream "$cc" "$arch" "$lib" "${flags[@]}"
  run_stream "$arch" "$runner"
  local h hh
  h="$(hash_of "$arch")"; hh="$(cat "$WORK/stream-hash-x86_64.txt")"
  [ -n "$h" ] && [ "$h" = "$hh" ] || fail "stream ($arch): weights hash '$h', host $hh"
  cmp -s "$WORK/stream-$arch.ckpt" "$WORK/stream-x86_64.ckpt" || fail "stream ($arch): checkpoint differs from the host's"
  echo "   hash $h == host; checkpoint file identical to the host's"
}

[ $# -ge 1 ] || { echo "usage: $0 host [aarch64] [armv7]" >&2; exit 2; }
for t in "$@"; do
  case "$t" in
    host) run_host ;;
    aarch64|armv7) run_cross "$t" ;;
    *) echo "usage: $0 host [aarch64] [armv7]" >&2; exit 2 ;;
  esac
done
if [ "$fails" -ne 0 ]; then echo "run.sh: $fails FAILURES"; exit 1; fi
echo "run.sh: $* passed"
