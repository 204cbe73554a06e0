#!/usr/bin/env bash
# Fuzzing with libFuzzer: the engine's two parsers of untrusted input (csv, checkpoint)
# and the C kernels against their references and exact models (kernels).
#
#   fuzz/run.sh [csv|checkpoint|kernels|all] [seconds] [extra libFuzzer flags...]   (defaults: all 60)
#   fuzz/run.sh seeds        regenerate the checked-in seed corpus (fuzz/corpus/*)
#
# Builds without SwiftPM into .build-fuzz/: the C kernels with clang
# (-fsanitize=fuzzer-no-link,address,undefined), the engine sources plus one target
# file in a single module with swiftc -sanitize=fuzzer,address. The kernels target
# (fuzz/fuzz_kernels.c) is C only: the kernels and the target with clang
# -fsanitize=fuzzer,address,undefined, UBSan in trap mode, and without trace-cmp
# instrumentation (the kernels' 128-bit carry comparisons would cost 3/4 of the
# run time; edge coverage still guides the search). Each target runs
# for the given time on a temporary copy of its checked-in corpus (the repository
# is never written), prints libFuzzer's final stats (stat::number_of_executed_units)
# and exits non-zero on a crash, timeout, OOM or leak; the reproducer is kept in
# .build-fuzz/artifacts/<target>/ (replay one: .build-fuzz/fuzz-<target> FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="/opt/swift/usr/bin:$PATH"

what=${1:-all}
secs=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
extra=("$@")

build=$root/.build-fuzz
mkdir -p "$build"

# Others may be editing Sources/ while this runs: compile a snapshot of it
# (refreshed file by file, so unchanged files keep their timestamps).
snap=$build/src
mkdir -p "$snap/PDMMEngine" "$snap/CFixed/include"
sync_dir() {  # $1 = source dir, $2 = snapshot dir, $3 = glob
  local f
  for f in "$1"/$3; do
    [ -e "$f" ] || continue
    cmp -s "$f" "$2/$(basename "$f")" || cp "$f" "$2/"
  done
  for f in "$2"/$3; do  # files deleted upstream
    [ -e "$f" ] && [ ! -e "$1/$(basename "$f")" ] && rm -f "$f"
  done
  return 0
}
sync_dir Sources/PDMMEngine "$snap/PDMMEngine" '*.swift'
sync_dir Sources/CFixed "$snap/CFixed" '*.[ch]'
sync_dir Sources/CFixed/include "$snap/CFixed/include" '*'
engine=("$snap"/PDMMEngine/*.swift)
cfiles=("$snap"/CFixed/*.c)
cinc=$snap/CFixed/include

# C kernels: one object per file, rebuilt when a C source or header changed.
build_c() {  # $1 = flavour (fuzz | plain), rest = clang flags
  local flavour=$1; shift
  local dir=$build/cfixed-$flavour
  mkdir -p "$dir"
  local objs=() c o
  for c in "${cfiles[@]}"; do
    o=$dir/$(basename "${c%.c}").o
    if [ ! -f "$o" ] || [ -n "$(find "$c" "$cinc" "$snap"/CFixed/*.h -newer "$o" 2>/dev/null | head -n 1)" ]; then
      clang -std=c99 "$@" -I "$cinc" -c "$c" -o "$o"
    fi
    objs+=("$o")
  done
  printf '%s\n' "${objs[@]}"
}

# Rebuild $1 from the given inputs only when one of them is newer.
stale() {
  local out=$1; shift
  [ ! -f "$out" ] && return 0
  [ -n "$(find "$@" -newer "$out" 2>/dev/null | head -n 1)" ]
}

# The C-only kernels target: every C kernel plus fuzz/fuzz_kernels.c, UBSan traps.
kflags=(-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fsanitize-trap=undefined
        -fno-sanitize-coverage=trace-cmp)
build_kernels_target() {
  local out=$build/fuzz-kernels
  mapfile -t objs < <(build_c kfuzz "${kflags[@]}")
  if stale "$out" fuzz/fuzz_kernels.c "$cinc"/*.h "${objs[@]}" fuzz/run.sh; then
    echo "building $out" >&2
    clang -std=gnu11 "${kflags[@]}" -fsanitize=fuzzer -I "$cinc" fuzz/fuzz_kernels.c "${objs[@]}" \
      -lm -fuse-ld=lld -o "$out"
  fi
}

build_target() {  # $1 = csv | checkpoint | kernels
  local name=$1 src out
  case $name in
    csv) src=fuzz/FuzzCSV.swift ;;
    checkpoint) src=fuzz/FuzzCheckpoint.swift ;;
    kernels) build_kernels_target; return ;;
  esac
  out=$build/fuzz-$name
  mapfile -t objs < <(build_c fuzz -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined)
  if stale "$out" "${engine[@]}" "$src" "${objs[@]}" fuzz/run.sh; then
    echo "building $out" >&2
    swiftc -sanitize=fuzzer,address -parse-as-library -O -wmo -g -module-name PDMMEngine \
      -I "$cinc" "${engine[@]}" "$src" "${objs[@]}" \
      -Xclang-linker -fsanitize=undefined -use-ld=lld \
      -module-cache-path "$build/module-cache" -o "$out"
  fi
}

run_target() {  # $1 = csv | checkpoint | kernels
  local name=$1
  build_target "$name"
  local work log art
  work=$(mktemp -d "${TMPDIR:-/tmp}/pdmm-fuzz-$name.XXXXXX")
  cp -R "fuzz/corpus/$name/." "$work/"
  art=$build/artifacts/$name
  mkdir -p "$art"
  log=$build/fuzz-$name.log
  echo "=== fuzz-$name: ${secs}s on $(ls "$work" | wc -l) seeds (log: $log)"
  local rc=0
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  "$build/fuzz-$name" "$work" -max_total_time="$secs" -print_final_stats=1 \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -artifact_prefix="$art/" \
    ${extra[@]+"${extra[@]}"} >"$log" 2>&1 || rc=$?
  grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)' "$log" || true
  local n
  n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$rc" -ne 0 ]; then
    echo "fuzz-$name FAILED (exit $rc); reproducer in $art/ ; last lines of the log:"
    tail -n 40 "$log"
    rm -rf "$work"
    return "$rc"
  fi
  echo "fuzz-$name: ${n:-?} executions in ${secs}s, no crash (corpus grew to $(ls "$work" | wc -l) inputs)"
  rm -rf "$work"
}

case $what in
  seeds)
    mapfile -t objs < <(build_c plain -O1)
    swiftc -parse-as-library -O -wmo -module-name PDMMEngine -I "$cinc" \
      "${engine[@]}" fuzz/GenSeeds.swift "${objs[@]}" -use-ld=lld -module-cache-path "$build/module-cache" -o "$build/gen-seeds"
    rm -rf fuzz/corpus/csv fuzz/corpus/checkpoint fuzz/corpus/kernels
    mkdir -p fuzz/corpus/csv fuzz/corpus/checkpoint fuzz/corpus/kernels
    "$build/gen-seeds" fuzz/corpus
    # version-1 checkpoints written by the previous release (the format still read)
    cp Tests/PDMMToolTests/Fixtures/v1_*.ckpt fuzz/corpus/checkpoint/
    clang -std=gnu11 -O1 -DFUZZ_KERNELS_SEEDS -I "$cinc" fuzz/fuzz_kernels.c "${objs[@]}" -lm -fuse-ld=lld \
      -o "$build/gen-kernel-seeds"
    "$build/gen-kernel-seeds" fuzz/corpus/kernels
    du -sb fuzz/corpus
    ;;
  csv|checkpoint|kernels) run_target "$what" ;;
  all) run_target csv; run_target checkpoint; run_target kernels ;;
  *) echo "usage: fuzz/run.sh [csv|checkpoint|kernels|all|seeds] [seconds] [libFuzzer flags...]" >&2; exit 2 ;;
esac
