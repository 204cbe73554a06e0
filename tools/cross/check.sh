#!/usr/bin/env bash
# Acceptance check for the ARM cross-builds: bit-exact with the host.
#
#   tools/cross/check.sh
#
# 1. builds the host tool (swift build -c release --product pdmm) and the board
#    program for x86_64 (native), aarch64 (cortex-a53 and cortex-a72) and armv7
#    (cortex-a7), each vectorised (NEON) and portable (scalar kernels), dynamic
#    and static (tools/cross/build.sh);
# 2. runs every binary (ARM ones under qemu-user, emulating the board's CPU;
#    the -static ones without -L, i.e. with nothing beside them) for each seed
#    and case below -- the default dense network in every mode and optimizer, and
#    a CNN (--net "1x8x8: conv 4 3x3 same, relu, maxpool 2x2, conv 8 3x3 same, relu,
#    flatten, dense 10": conv, max-pool, per-channel input scaling) with bp/sgd and
#    local(2)/momentum -- and checks against `pdmm train --threads 1` (the board program
#    runs on one thread; the plan's scratch grows with the thread count) with the same arguments:
#      - the weights hash,
#      - peak writable planned / measured and read-only bytes, accuracies,
#      - every category's planned and measured bytes (against `pdmm report`,
#        whose plan is the same analytic plan and whose measurement runs real
#        steps -- for the CNN only if `pdmm report` takes --net; the board itself
#        fails unless measured == planned -- and against the host-built board
#        program line by line),
#      - zero heap allocations during training steps (and evaluation passes);
#    one PDMM pipeline run (--mode pdmm, $PDMM_CASE below) per seed, checked against
#    `pdmm train --mode pdmm`: the error-aware model's weights hash, every phase's
#    planned / measured writable bytes, the pipeline peak (planned == measured on the
#    board), |D_Ideal| / |E|, the top error pairs and the three test accuracies;
#    plus a CSV run (Data/digits.csv), a budget that does not fit and an
#    --input-shape that does not match the data (same errors as the host);
# 0. first, tools/cross/kernel_check.sh: every NEON-affected kernel against the
#    reference kernels, bit for bit, under qemu-aarch64 / qemu-arm (and host, portable);
#    the run layer: --save / --stop-after (exit 3) / --resume (own and host
#    checkpoints) / eval against the host, --trace byte for byte, gzip refused by
#    name, the streaming CSV loader's heap peak on a 10.6 MB CSV against its
#    formula, and the arena message of a plan larger than the static arena;
# 3. builds libpdmm.a for x86_64, aarch64 and armv7 and runs its acceptance test and the
#    streaming example (tools/board/examples/run.sh; hash and checkpoint == the host's);
# 4. measures peak RSS under qemu (/usr/bin/time) and writes a summary
#    (sizes, build times, hashes, RSS) to $OUT/check-summary.md.
#
# Environment: OUT (default out/cross), EPOCHS (2), SEEDS ("1 7"), BUILD (1; 0 reuses
# the binaries in $OUT), PDMM (a prebuilt host pdmm; default: swift build into
# HOST_SCRATCH, default .build), SWIFT (swift).
# Needs: apt-get install -y gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user time
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export OUT="${OUT:-$ROOT/out/cross}"
EPOCHS="${EPOCHS:-2}"
SEEDS="${SEEDS:-1 7}"
BUILD="${BUILD:-1}"
SWIFT="${SWIFT:-swift}"
command -v "$SWIFT" >/dev/null 2>&1 || SWIFT=/opt/swift/usr/bin/swift
mkdir -p "$OUT"
LOG="$OUT/check-logs"
rm -rf "$LOG"
mkdir -p "$LOG"

for t in qemu-aarch64 qemu-arm aarch64-linux-gnu-gcc arm-linux-gnueabihf-gcc; do
  command -v "$t" >/dev/null 2>&1 || {
    echo "check.sh: $t not found: apt-get install -y gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf qemu-user" >&2
    exit 1
  }
done

# ---------------------------------------------------------------- kernels
# The NEON kernels (q16_gemm_neon.h) against the reference kernels, bit for bit, under qemu.
echo "== kernels: tools/cross/kernel_check.sh"
"$ROOT/tools/cross/kernel_check.sh"

# ---------------------------------------------------------------- build
if [ -z "${PDMM:-}" ]; then
  scratch="${HOST_SCRATCH:-$ROOT/.build}"
  echo "== host tool: $SWIFT build -c release --product pdmm --scratch-path $scratch"
  "$SWIFT" build -c release --product pdmm --scratch-path "$scratch" 2>&1 | tail -n 1
  PDMM="$scratch/release/pdmm"
fi

# name | build.sh target | CPU | SUFFIX | runner (static) | runner (dynamic; empty = static only)
VARIANTS=(
  "x86_64|host||||"
  "aarch64|aarch64|cortex-a53||qemu-aarch64 -cpu cortex-a53|qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu"
  "aarch64-a72|aarch64|cortex-a72|-a72|qemu-aarch64 -cpu cortex-a72|"
  "aarch64-portable|aarch64|portable|-portable|qemu-aarch64 -cpu cortex-a53|"
  "armv7|armv7|cortex-a7||qemu-arm -cpu cortex-a7|qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf"
  "armv7-portable|armv7|portable|-portable|qemu-arm -cpu cortex-a7|"
)
if [ "$BUILD" = 1 ]; then
  rm -f "$OUT/build-times.txt"
  for v in "${VARIANTS[@]}"; do
    IFS='|' read -r name target cpu suffix _ _ <<<"$v"
    CPU="$cpu" SUFFIX="$suffix" "$ROOT/tools/cross/build.sh" "$target"
  done
fi

# Every binary to run: label and command line prefix.
BINS=()
for v in "${VARIANTS[@]}"; do
  IFS='|' read -r name target cpu suffix rs rd <<<"$v"
  bin="$OUT/pdmm-board-$name"
  [ -x "$bin" ] || { echo "check.sh: $bin missing (run with BUILD=1)" >&2; exit 1; }
  if [ "$name" = x86_64 ]; then
    BINS+=("x86_64|$bin" "x86_64-static|$bin-static")
  else
    [ -n "$rd" ] && BINS+=("$name|$rd $bin")
    BINS+=("$name-static|$rs $bin-static")
  fi
done

# ---------------------------------------------------------------- helpers
fails=0
fail() { echo "  FAIL: $*"; fails=$((fails + 1)); }

field() { sed -n "s/^$2//p" "$1" | head -n 1; }        # the rest of the line after a prefix
totals() { grep -o '^peak writable: planned [0-9]* B, measured [0-9]* B; read-only [0-9]* B' "$1" || true; }
accuracy() { grep -o '^train accuracy [0-9.]*%  test accuracy [0-9.]*%' "$1" || true; }
# "name planned measured" per category from the board's memory report
categories() { awk '/^memory \(bytes\)/{on=1; next} on && /^  /{print $1, $2, $3; next} {on=0}' "$1"; }
# "name planned measured" per category from `pdmm report --format csv` for one mode
report_categories() {
  awk -F, -v mode="$2" '
    NR == 1 { for (i = 3; i <= NF; i++) if ($i != "peak_writable" && $i != "layer_inputs" &&
                                            $i != "claimed_ratio" && $i != "fits") names[i] = $i; next }
    $1 == mode && $2 == "planned"  { for (i in names) p[i] = $i }
    $1 == mode && $2 == "measured" { for (i in names) m[i] = $i }
    END { for (i = 3; i in names; i++) print names[i], p[i], m[i] }' "$1"
}

mode_name() {  # the engine's TrainingMode.name for a case's arguments
  local mode=bp k=1
  set -- $1
  while [ $# -gt 0 ]; do
    case "$1" in --mode) mode="$2"; shift ;; --k) k="$2"; shift ;; esac
    shift
  done
  case "$mode" in
    local|blockwise) echo "$mode($k)" ;;
    checkpoint) echo bp-checkpoint ;;
    *) echo "$mode" ;;
  esac
}

# A case is a word list; the word CNN stands for --net "$CNN_NET" (one argument).
CNN_NET="1x8x8: conv 4 3x3 same, relu, maxpool 2x2, conv 8 3x3 same, relu, flatten, dense 10"
CASES=(
  "--mode bp"
  "--mode local --k 2"
  "--mode bp-checkpoint"
  "--mode blockwise --k 2"
  "--mode bp --optimizer momentum"
  "--mode local --k 2 --optimizer riemannian"
  "--mode local --k 2 --budget 160KiB"
  "CNN --mode bp"
  "CNN --mode local --k 2 --optimizer momentum"
)
# The PDMM pipeline (confident D_Ideal selection: 3-fold bp runs of 10 epochs each,
# blockwise(2) ideal learning, Error Group, local(2) defect learning with IVC on
# G_Ideal every 2 steps, dual-system decision), on a narrow dense stack so the
# selection's 30 epochs stay cheap under qemu.
PDMM_CASE="--mode pdmm --k 2 --layers 64,32,32,10 --ivc-period 2"

# Host memory reports (planned + measured per category), one per optimizer.
"$PDMM" report --k 1,2 --format csv >"$LOG/report-sgd.csv"
"$PDMM" report --k 1,2 --format csv --optimizer momentum >"$LOG/report-momentum.csv"
"$PDMM" report --k 1,2 --format csv --optimizer riemannian >"$LOG/report-riemannian.csv"

SUMMARY="$OUT/check-summary.md"
{
  echo "# Cross-build check: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Epochs $EPOCHS, seeds $SEEDS; host = \`pdmm train\` (x86-64, Swift runtime); every other column is the"
  echo "board program (Embedded Swift), ARM under qemu-user. A cell is the weights hash when hash, accuracies,"
  echo "peak writable planned/measured, read-only and every category's planned/measured bytes all match"
  echo "the host, and training steps made 0 heap allocations. CNN = \`--net \"$CNN_NET\"\`."
  echo "A \`--mode pdmm\` cell: the error-aware model's weights hash, every phase's planned/measured writable"
  echo "bytes, the pipeline peak (planned == measured), |D_Ideal|, |E|, the top error pairs and the three"
  echo "test accuracies match the host's \`pdmm train --mode pdmm\`."
  echo
  printf '| seed | case | host |'
  for b in "${BINS[@]}"; do printf ' %s |' "${b%%|*}"; done
  echo
  printf '|---|---|---|'
  for b in "${BINS[@]}"; do printf -- '---|'; done
  echo
} >"$SUMMARY"

# ---------------------------------------------------------------- runs
# All runs first, JOBS at a time (default: one per core), then the comparisons.
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
launch() {  # out-file command...
  local o="$1"; shift
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  ( rc=0; "$@" >"$o" 2>"$o.err" || rc=$?; echo "$rc" >"$o.rc" ) &
}
case_argv() {  # seed case: sets ARGV, the case's argument vector
  ARGV=()
  local w
  for w in $2; do
    if [ "$w" = CNN ]; then ARGV+=(--net "$CNN_NET"); else ARGV+=("$w"); fi
  done
  ARGV+=(--epochs "$EPOCHS" --seed "$1")
}
case_args() { case_argv "$@"; printf '%q ' "${ARGV[@]}"; }  # for messages
echo "== runs: ${#BINS[@]} binaries x ${#CASES[@]} cases x seeds ($SEEDS), $EPOCHS epochs, $JOBS at a time"
t0=$SECONDS
n=0
for seed in $SEEDS; do
  for c in "${CASES[@]}"; do
    n=$((n + 1))
    case_argv "$seed" "$c"
    launch "$LOG/$n-host.txt" "$PDMM" train --threads 1 "${ARGV[@]}"
    for b in "${BINS[@]}"; do launch "$LOG/$n-${b%%|*}.txt" ${b#*|} "${ARGV[@]}"; done
  done
done
for seed in $SEEDS; do
  case_argv "$seed" "$PDMM_CASE"
  launch "$LOG/pdmm-$seed-host.txt" "$PDMM" train --threads 1 "${ARGV[@]}"
  for b in "${BINS[@]}"; do launch "$LOG/pdmm-$seed-${b%%|*}.txt" ${b#*|} "${ARGV[@]}"; done
done
csvargs="--data Data/digits.csv --epochs 1 --seed 3"
launch "$LOG/csv-host.txt" "$PDMM" train --threads 1 $csvargs
for b in "${BINS[@]}"; do launch "$LOG/csv-${b%%|*}.txt" ${b#*|} $csvargs; done
wait
echo "   $((SECONDS - t0)) s"

n=0
for seed in $SEEDS; do
  for c in "${CASES[@]}"; do
    n=$((n + 1))
    mname="$(mode_name "$c")"
    opt=sgd
    [[ "$c" == *momentum* ]] && opt=momentum
    [[ "$c" == *riemannian* ]] && opt=riemannian
    hostout="$LOG/$n-host.txt"
    [ "$(cat "$hostout.rc")" = 0 ] || fail "host pdmm train $(case_args "$seed" "$c"): $(tail -n 1 "$hostout.err")"
    hhash="$(field "$hostout" 'weights hash ')"
    echo "-- seed $seed: $c  (host $hhash)"
    row="| $seed | \`$c\` | \`$hhash\` |"
    report="$LOG/report-$opt.csv"
    if [[ "$c" == CNN* ]]; then
      report="$LOG/report-cnn-$opt.csv"
      [ -e "$report.rc" ] || { rc=0; "$PDMM" report --net "$CNN_NET" --k 1,2 --format csv --optimizer "$opt" \
                                 >"$report" 2>"$report.err" || rc=$?; echo "$rc" >"$report.rc"; }
      if [ "$(cat "$report.rc")" != 0 ]; then
        echo "   (pdmm report --net: $(tail -n 1 "$report.err"); categories checked between the binaries" \
             "and by the board's own measured == planned check only)"
        report=""
      fi
    fi
    if [ -n "$report" ]; then
      report_categories "$report" "$mname" >"$LOG/$n-report-categories.txt"
    fi
    refcats=""
    for b in "${BINS[@]}"; do
      label="${b%%|*}"
      o="$LOG/$n-$label.txt"
      ok=1
      rc="$(cat "$o.rc")"
      if [ "$rc" -ne 0 ]; then
        fail "$label: exit status $rc ($(tail -n 1 "$o.err"))"
        row="$row **FAIL** |"
        continue
      fi
      h="$(field "$o" 'weights hash ')"
      [ "$h" = "$hhash" ] || { fail "$label: weights hash $h, host $hhash"; ok=0; }
      [ "$(totals "$o")" = "$(totals "$hostout")" ] ||
        { fail "$label: '$(totals "$o")' vs host '$(totals "$hostout")'"; ok=0; }
      [ "$(accuracy "$o")" = "$(accuracy "$hostout")" ] ||
        { fail "$label: '$(accuracy "$o")' vs host '$(accuracy "$hostout")'"; ok=0; }
      categories "$o" | grep -v '^peak ' >"$o.cats"
      if [ -n "$report" ] && ! diff -q "$o.cats" "$LOG/$n-report-categories.txt" >/dev/null; then
        fail "$label: per-category bytes differ from pdmm report ($mname):"
        diff "$o.cats" "$LOG/$n-report-categories.txt" | sed 's/^/      /'
        ok=0
      fi
      cats="$(categories "$o")"
      if [ -z "$refcats" ]; then refcats="$cats"; elif [ "$cats" != "$refcats" ]; then
        fail "$label: memory report differs from the x86_64 board program's"; ok=0
      fi
      grep -q 'training steps 0 (0 B), evaluation 0 (0 B)' "$o" ||
        { fail "$label: heap allocations during training: $(grep '^heap allocations' "$o")"; ok=0; }
      if [ $ok = 1 ]; then row="$row ok |"; else row="$row **FAIL** \`$h\` |"; fi
    done
    echo "$row" >>"$SUMMARY"
    echo "   $row"
  done
done

# The PDMM pipeline: host `pdmm train --mode pdmm` (phase table) against the board's
# "phase NAME: planned P B, measured M B, ..." lines.
host_phases() {  # "name|planned|measured|also resident" per row of the host's phase table, then "peak|planned|measured|"
  awk -F'|' '
    /^\| phase \|/ { for (i = 2; i < NF; i++) { h = $i; gsub(/^ +| +$/, "", h)
                        if (h ~ /^planned/) cp = i; else if (h ~ /^measured/) cm = i; else if (h ~ /^also resident/) ca = i }
                      next }
    cp && /^\| / && $cp ~ /^ *[0-9]+ *$/ {
      n = $2; gsub(/^ +| +$/, "", n); gsub(/\*/, "", n)
      p = $cp; m = $cm; a = ca ? $ca : ""; gsub(/ /, "", p); gsub(/ /, "", m); gsub(/ /, "", a)
      if (n ~ /^pipeline peak/) { n = "peak"; a = "" }
      print n "|" p "|" m "|" a }' "$1"
}
board_phases() {
  sed -n -e 's/^phase \(.*\): planned \([0-9]*\) B, measured \([0-9]*\) B, also resident \([0-9]*\) B;.*/\1|\2|\3|\4/p' \
         -e 's/^pipeline peak writable: planned \([0-9]*\) B, measured \([0-9]*\) B$/peak|\1|\2|/p' "$1"
}
pdmm_lines() {  # the summary facts both print (integers and Q16.16 values)
  grep -o -e '^|D| [0-9]*  |D_Ideal| [0-9]* = [0-9]* G_Ideal trains on + [0-9]* held out  |D_new| [0-9]*' \
          -e '^I_threshold [0-9.]* nats' -e '^|E| [0-9]*' -e 'G_Ideal misclassifies [0-9]* of them' \
          -e '^top error pairs.*' -e '^IVC: [0-9]* steps' -e 'first (step [0-9]*) U_E [0-9.]*' \
          -e 'last (step [0-9]*) U_E [0-9.]*' \
          -e '^test accuracy: stable head [0-9.]*%  error-aware [0-9.]*%  A_final [0-9.]*%' \
          -e '^lambda on the [0-9]* test samples: min [0-9.]*  lower quartile [0-9.]*  median [0-9.]*  upper quartile [0-9.]*  max [0-9.]*' \
          -e '^A_final differs from the stable head on [0-9]* of [0-9]* test samples' "$1" || true
}
for seed in $SEEDS; do
  hostout="$LOG/pdmm-$seed-host.txt"
  [ "$(cat "$hostout.rc")" = 0 ] || fail "host pdmm train $(case_args "$seed" "$PDMM_CASE"): $(tail -n 1 "$hostout.err")"
  hhash="$(field "$hostout" 'weights hash ')"
  host_phases "$hostout" >"$hostout.phases"
  pdmm_lines "$hostout" >"$hostout.lines"
  grep -q '^peak|' "$hostout.phases" || fail "host PDMM run (seed $seed): no pipeline peak row in its phase table"
  [ -s "$hostout.lines" ] || fail "host PDMM run (seed $seed): no |D_Ideal|/accuracy lines"
  echo "-- seed $seed: $PDMM_CASE  (host $hhash, peak $(sed -n 's/^peak|//p' "$hostout.phases"))"
  row="| $seed | \`$PDMM_CASE\` | \`$hhash\` |"
  for b in "${BINS[@]}"; do
    label="${b%%|*}"
    o="$LOG/pdmm-$seed-$label.txt"
    ok=1
    rc="$(cat "$o.rc")"
    if [ "$rc" -ne 0 ]; then
      fail "$label: PDMM exit status $rc ($(tail -n 1 "$o.err"))"
      row="$row **FAIL** |"
      continue
    fi
    h="$(field "$o" 'weights hash ')"
    [ "$h" = "$hhash" ] || { fail "$label: PDMM weights hash $h, host $hhash"; ok=0; }
    sh="$(field "$o" 'stable model hash ')"
    [ "$sh" = "$(field "$hostout" 'stable model hash ')" ] ||
      { fail "$label: PDMM stable model (G_Ideal, calibrated by IVC) hash $sh, host $(field "$hostout" 'stable model hash ')"; ok=0; }
    board_phases "$o" >"$o.phases"
    IFS='|' read -r _ pp pm < <(grep '^peak|' "$o.phases" || echo "peak||")
    [ -n "$pp" ] && [ "$pp" = "$pm" ] ||
      { fail "$label: PDMM pipeline peak planned '$pp' B, measured '$pm' B (must be equal)"; ok=0; }
    if ! diff -q "$o.phases" "$hostout.phases" >/dev/null; then
      fail "$label: PDMM phase bytes differ from the host's (name|planned|measured, board < > host):"
      diff "$o.phases" "$hostout.phases" | sed 's/^/      /'
      ok=0
    fi
    pdmm_lines "$o" >"$o.lines"
    if ! diff -q "$o.lines" "$hostout.lines" >/dev/null; then
      fail "$label: PDMM summary differs from the host's (board < > host):"
      diff "$o.lines" "$hostout.lines" | sed 's/^/      /'
      ok=0
    fi
    if [ $ok = 1 ]; then row="$row ok |"; else row="$row **FAIL** \`$h\` |"; fi
  done
  echo "$row" >>"$SUMMARY"
  echo "   $row"
  echo "   stable model (G_Ideal) hash $(field "$LOG/pdmm-$seed-x86_64.txt" 'stable model hash '); board heap: $(
    sed -n 's/^heap allocations: setup [^;]*; phases \([^:]*\):.*/\1/p' "$LOG/pdmm-$seed-x86_64.txt") in the phases"
done

# CSV input: the same file through the host tool and the board program (both parse with the engine's CSVParser).
chash="$(field "$LOG/csv-host.txt" 'weights hash ')"
echo "-- CSV: $csvargs  (host $chash)"
row="| 3 | \`--data Data/digits.csv --epochs 1\` | \`$chash\` |"
for b in "${BINS[@]}"; do
  label="${b%%|*}"
  o="$LOG/csv-$label.txt"
  if [ "$(cat "$o.rc")" = 0 ] && [ "$(field "$o" 'weights hash ')" = "$chash" ]; then
    row="$row ok |"
  else
    fail "$label: CSV run: '$(field "$o" 'weights hash ')' vs host $chash ($(tail -n 1 "$o.err"))"
    row="$row **FAIL** |"
  fi
done
echo "$row" >>"$SUMMARY"
echo "   $row"

# The -static binaries need nothing beside them: run each from an empty
# directory with an empty environment (no -L, no sysroot).
echo "-- static binaries alone: env -i, empty directory"
alone="$(mktemp -d)"
hh="$("$PDMM" train --mode local --k 2 --epochs 1 --seed 5 2>/dev/null | sed -n 's/^weights hash //p')"
for v in "${VARIANTS[@]}"; do
  IFS='|' read -r name _ _ _ rs _ <<<"$v"
  cp "$OUT/pdmm-board-$name-static" "$alone/"
  h="$(cd "$alone" && env -i $rs ./"pdmm-board-$name-static" --mode local --k 2 --epochs 1 --seed 5 2>/dev/null |
       sed -n 's/^weights hash //p')"
  [ "$h" = "$hh" ] || fail "pdmm-board-$name-static alone: '$h' vs host $hh"
  rm -f "$alone/pdmm-board-$name-static"
done
rmdir "$alone"
echo "   ok"

# A budget that does not fit: both refuse with the same message (exit 2).
echo "-- budget too small: --mode bp --budget 150KiB"
hmsg="$("$PDMM" train --threads 1 --mode bp --budget 150KiB --epochs 1 2>&1 >/dev/null | sed 's/^pdmm: //')" || true
for b in "${BINS[@]}"; do
  label="${b%%|*}"; cmd="${b#*|}"
  set +e
  bmsg="$($cmd --mode bp --budget 150KiB --epochs 1 2>&1 >/dev/null | sed 's/^pdmm-board: //')"
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 2 ] || fail "$label: budget error: exit status $rc, expected 2"
  [ "$bmsg" = "$hmsg" ] || fail "$label: budget error '$bmsg' vs host '$hmsg'"
done
echo "   host: $hmsg"

# A network input that does not match the data: both refuse with the same message (exit 2).
echo "-- input shape mismatch: --net CNN --input-shape 2x8x8"
hmsg="$("$PDMM" train --net "$CNN_NET" --input-shape 2x8x8 --epochs 1 2>&1 >/dev/null | sed 's/^pdmm: //')" || true
for b in "${BINS[@]}"; do
  label="${b%%|*}"; cmd="${b#*|}"
  set +e
  bmsg="$($cmd --net "$CNN_NET" --input-shape 2x8x8 --epochs 1 2>&1 >/dev/null | sed 's/^pdmm-board: //')"
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 2 ] || fail "$label: input shape error: exit status $rc, expected 2"
  [ "$bmsg" = "$hmsg" ] || fail "$label: input shape error '$bmsg' vs host '$hmsg'"
done
echo "   host: $hmsg"

# ---------------------------------------------------------------- the run layer on the board
# --save / --stop-after / --resume / eval: a board run stopped after 2 of 3 epochs and
# resumed (from its own checkpoint, and from one the host wrote) ends at the hash of the
# host's uninterrupted run; `eval` of the board's checkpoint prints the host's line.
RL_ARGS="--mode local --k 2 --epochs 3 --seed 4"
echo "-- save / stop-after / resume / eval: $RL_ARGS"
hh="$("$PDMM" train $RL_ARGS 2>/dev/null | sed -n 's/^weights hash //p')"
hck="$LOG/host.ckpt"
"$PDMM" train $RL_ARGS --save "$hck" --stop-after 2 >/dev/null 2>&1 || true
for b in "${BINS[@]}"; do
  label="${b%%|*}"; cmd="${b#*|}"
  ck="$LOG/board-$label.ckpt"
  rm -f "$ck"
  set +e
  $cmd $RL_ARGS --save "$ck" --checkpoint-every 1 --stop-after 2 >/dev/null 2>"$ck.err"
  rc=$?
  set -e
  [ "$rc" = 3 ] || fail "$label: --stop-after 2: exit status $rc, expected 3 ($(tail -n 1 "$ck.err"))"
  h="$($cmd $RL_ARGS --save "$ck" --resume "$ck" 2>/dev/null | sed -n 's/^weights hash //p')"
  [ "$h" = "$hh" ] || fail "$label: --resume of its own checkpoint: '$h' vs host $hh"
  h="$($cmd $RL_ARGS --resume "$hck" 2>/dev/null | sed -n 's/^weights hash //p')"
  [ "$h" = "$hh" ] || fail "$label: --resume of the host's checkpoint: '$h' vs host $hh"
  be="$($cmd eval --model "$ck" 2>&1)"
  he="$("$PDMM" eval --model "$ck" 2>&1)"
  [ "$be" = "$he" ] || fail "$label: eval '$be' vs host '$he'"
done
echo "   host $hh; eval: $("$PDMM" eval --model "$LOG/board-x86_64.ckpt" 2>&1)"

# --trace (the PDMM pipeline's IVC steps, written atomically): the host's file byte for byte.
TRACE_ARGS="--mode pdmm --k 2 --layers 64,16,10 --epochs 1 --selection-epochs 1 --ivc-period 2"
echo "-- --trace: $TRACE_ARGS (x86_64 board program)"
"$PDMM" train $TRACE_ARGS --trace "$LOG/trace-host.csv" >/dev/null 2>&1 || fail "host --trace run"
"$OUT/pdmm-board-x86_64-static" $TRACE_ARGS --trace "$LOG/trace-board.csv" >/dev/null 2>&1 || fail "board --trace run"
cmp -s "$LOG/trace-host.csv" "$LOG/trace-board.csv" || fail "--trace files differ (board vs host)"
echo "   $(($(wc -l <"$LOG/trace-board.csv") - 1)) IVC rows, identical"

# gzip: refused by name (the suffix, or the magic bytes of a renamed file), exit 2.
echo "-- gzip-compressed CSV refused by name"
cp Data/mnist_5k.csv.gz "$LOG/gzipped-without-suffix.csv"
for data in Data/mnist_5k.csv.gz "$LOG/gzipped-without-suffix.csv"; do
  for b in "${BINS[@]}"; do
    label="${b%%|*}"; cmd="${b#*|}"
    set +e
    msg="$($cmd --data "$data" --epochs 1 2>&1 >/dev/null)"
    rc=$?
    set -e
    [ "$rc" = 2 ] && [ "$msg" = "pdmm-board: $data: gzip-compressed CSV is not supported on the board: gunzip it first" ] ||
      fail "$label: $data: exit $rc, '$msg'"
  done
done
echo "   ok"

# The streaming CSV loader: a 10.6 MB CSV (mnist_5k unzipped + its first 800 rows again:
# 5800 rows x 785 columns). Heap peak <= 1.2 x rows x (features + 1) x 4 B (the data once
# in Q16.16 plus its test part, the split being in place) + rows x 9 B (split order) + 1 MiB
# (64 KiB chunk, a line, model image, plan); the weights hash equals the host's.
big="$LOG/mnist-10mb.csv"
{ gzip -dc Data/mnist_5k.csv.gz; gzip -dc Data/mnist_5k.csv.gz | awk 'NR <= 800'; } >"$big"  # awk: no SIGPIPE
BIG_ARGS="--data $big --layers 784,16,10 --epochs 1 --batch 64"
rows=$(($(grep -c . "$big"))); cols=$(head -n 1 "$big" | awk -F, '{print NF}')
limit=$(( rows * cols * 4 * 12 / 10 + rows * 9 + 1048576 ))
hh="$("$PDMM" train $BIG_ARGS 2>/dev/null | sed -n 's/^weights hash //p')"
echo "-- streaming CSV: $(stat -c %s "$big") B, $rows rows x $cols columns: heap peak limit $limit B"
for b in "x86_64-static|$OUT/pdmm-board-x86_64-static" "aarch64-static|qemu-aarch64 -cpu cortex-a53 $OUT/pdmm-board-aarch64-static" \
         "armv7-static|qemu-arm -cpu cortex-a7 $OUT/pdmm-board-armv7-static"; do
  label="${b%%|*}"; cmd="${b#*|}"
  o="$LOG/bigcsv-$label.txt"
  $cmd $BIG_ARGS >"$o" 2>"$o.err" || fail "$label: big CSV run: $(tail -n 1 "$o.err")"
  peak="$(sed -n 's/^heap peak live \([0-9]*\) B.*/\1/p' "$o")"
  [ -n "$peak" ] && [ "$peak" -le "$limit" ] || fail "$label: heap peak live '$peak' B > $limit B"
  [ "$(field "$o" 'weights hash ')" = "$hh" ] || fail "$label: big CSV hash $(field "$o" 'weights hash ') vs host $hh"
  echo "   $label: heap peak live $peak B (data in Q16.16: $((rows * cols * 4)) B)"
done

# A plan larger than the static arena, no --budget: says what is needed and how to rebuild.
echo "-- plan larger than the static arena: --layers 64,512,512,10"
msg="$("$OUT/pdmm-board-x86_64-static" --layers 64,512,512,10 --epochs 1 2>&1 >/dev/null || true)"
case "$msg" in
  "pdmm-board: the plan needs "*" B (per category: "*"), the board's static arena is "*" B: rebuild with ARENA_BYTES="*" tools/cross/build.sh host") echo "   $msg" ;;
  *) fail "arena message: '$msg'" ;;
esac

# Threads on the board (pthreads under qemu-user): --threads 3 ends at the host's one-thread hash.
TH_ARGS="--mode local --k 2 --epochs 1 --seed 5"
echo "-- threads: board --threads 3 vs host --threads 1: $TH_ARGS"
hh="$("$PDMM" train --threads 1 $TH_ARGS 2>/dev/null | sed -n 's/^weights hash //p')"
[ -n "$hh" ] || fail "host: no weights hash for $TH_ARGS"
for b in "${BINS[@]}"; do
  label="${b%%|*}"; cmd="${b#*|}"
  h="$($cmd --threads 3 $TH_ARGS 2>/dev/null | sed -n 's/^weights hash //p')"
  [ "$h" = "$hh" ] || fail "$label: --threads 3: '$h' vs host $hh"
done
echo "   every binary: $hh"

# The C library (libpdmm.a) on every target: its acceptance test and the streaming
# example under qemu, the example's weights hash and checkpoint file equal to the host's.
echo "-- C library: tools/board/examples/run.sh host aarch64 armv7"
if PDMM="$PDMM" "$ROOT/tools/board/examples/run.sh" host aarch64 armv7 >"$LOG/clib.txt" 2>&1; then
  grep -E '^run.sh|hash .* == host|^   weights hash' "$LOG/clib.txt" | sed 's/^ */   /'
else
  fail "C library: $(grep -E 'FAIL' "$LOG/clib.txt" | head -n 5 | tr '\n' ' ')"
fi

# ---------------------------------------------------------------- sizes, build times, RSS
{
  echo
  echo "## Binaries"
  echo
  echo "| binary | bytes (stripped) | build time (both) | SIMD instructions in q16_gemm.o |"
  echo "|---|---:|---:|---:|"
  for v in "${VARIANTS[@]}"; do
    IFS='|' read -r name target _ _ _ _ <<<"$v"
    bt="$(awk -v n="pdmm-board-$name" '$1 == n {print $2 " s"}' "$OUT/build-times.txt" 2>/dev/null | tail -n 1)"
    gemm="$OUT/obj/pdmm-board-$name/cfixed/q16_gemm.o"
    simd=-
    if [ -f "$gemm" ]; then
      case "$target" in
        aarch64) simd="$(aarch64-linux-gnu-objdump -d "$gemm" | grep -cE '\sv[0-9]+\.(2d|4s|2s|16b)' || true) (NEON)" ;;
        armv7) simd="$(arm-linux-gnueabihf-objdump -d "$gemm" | grep -cE '\sv[a-z0-9]+\.(s32|u32|i32|i64|s64|32|64)\s+[qd][0-9]' || true) (NEON)" ;;
        host) simd="$(objdump -d "$gemm" | grep -cE '%[yz]mm' || true) (AVX2/AVX-512 clones)" ;;
      esac
    fi
    echo "| pdmm-board-$name | $(stat -c %s "$OUT/pdmm-board-$name") | ${bt:--} | $simd |"
    echo "| pdmm-board-$name-static | $(stat -c %s "$OUT/pdmm-board-$name-static") | (same build) | |"
  done
} >>"$SUMMARY"

if [ -x /usr/bin/time ]; then
  {
    echo
    echo "## Peak RSS, bp, $EPOCHS epochs, seed 1 (\`/usr/bin/time -f %M\`)"
    echo
    echo "Under qemu-user the RSS is the emulator's process (translator, code cache, guest memory);"
    echo "\`--help\` (no data, no training) is the baseline of the same command."
    echo
    echo "| binary | arena budget (plan) | static arena buffer | heap peak live | peak RSS | RSS of \`--help\` | difference |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
  } >>"$SUMMARY"
  for b in "${BINS[@]}"; do
    label="${b%%|*}"; cmd="${b#*|}"
    o="$LOG/rss-$label.txt"
    /usr/bin/time -f '%M' -o "$o.rss" $cmd --mode bp --epochs "$EPOCHS" --seed 1 >"$o" 2>/dev/null
    /usr/bin/time -f '%M' -o "$o.rss0" $cmd --help >/dev/null 2>&1
    r=$(tail -n 1 "$o.rss"); r0=$(tail -n 1 "$o.rss0")
    budget="$(sed -n 's/^arena: static buffer \([0-9]*\) B, budget \([0-9]*\) B/\2/p' "$o")"
    buffer="$(sed -n 's/^arena: static buffer \([0-9]*\) B.*/\1/p' "$o")"
    heap="$(sed -n 's/^heap peak live \([0-9]*\) B.*/\1/p' "$o")"
    echo "| $label | $budget B | $buffer B (.bss) | $heap B | $r KiB | $r0 KiB | $((r - r0)) KiB |" >>"$SUMMARY"
  done
else
  echo "(no /usr/bin/time: apt-get install -y time for the RSS table)" >>"$SUMMARY"
fi

echo
cat "$SUMMARY"
echo
if [ "$fails" -ne 0 ]; then
  echo "check.sh: $fails FAILURES (logs in $LOG)"
  exit 1
fi
echo "check.sh: all binaries bit-exact with the host (logs in $LOG)"
