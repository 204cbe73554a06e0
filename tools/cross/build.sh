#!/usr/bin/env bash
# Cross-builds the board program (tools/board) for ARM Linux boards, or for the host.
#
#   tools/cross/build.sh aarch64|armv7|host [more targets...]
#   tools/cross/build.sh lib-host|lib-aarch64|lib-armv7   (the C library, see build_lib:
#       $OUT/lib/<arch>/libpdmm.a + pdmm.h; link: cc app.c -I $OUT/lib/<arch> \
#       $OUT/lib/<arch>/libpdmm.a -lm -no-pie; docs/c-api.md)
#
# What it does, per target:
#   1. compiles Sources/CFixed/*.c (the kernels), Sources/CDigits (the built-in
#      data set) and tools/board/board.c with the target's gcc;
#   2. compiles Sources/PDMMEngine/*.swift -- the one engine source, unchanged --
#      as an Embedded Swift module, then tools/board/main.swift against it
#      (Embedded Swift needs no Swift runtime SDK for the board: its stdlib
#      ships with the toolchain for aarch64-none-none-elf / armv7-none-none-eabi);
#   3. links both against glibc with the target's gcc, wrapping malloc & co.
#      (-Wl,--wrap=...) with the counters of board.c, twice:
#        $OUT/pdmm-board-<arch>          dynamically linked (needs the board's glibc)
#        $OUT/pdmm-board-<arch>-static   statically linked (runs with nothing beside it)
#
# Variables (environment):
#   CPU          aarch64: cortex-a53 (default), cortex-a72, or any gcc -mcpu value;
#                armv7:   cortex-a7 (default; NEON vfpv4), or any ARMv7-A -mcpu value;
#                host:    x86-64 (default; the kernels pick AVX-512/AVX2 at load time);
#                any:     portable = baseline ISA, auto-vectorisation and the NEON
#                         intrinsics (-DQ16_NO_NEON) off (the scalar reference build;
#                         bit-identical to the vectorised ones).
#   OUT          output directory (default: out/cross in the repository)
#   SUFFIX       appended to the binary names (default: empty; check.sh uses -portable)
#   ARENA_BYTES  size of the static arena buffer (default 1048576)
#   SWIFT_OPT    Swift optimisation flag (default -O; -Osize for smaller binaries)
#   LD           linker: gold (aarch64 default: GNU ld.bfd 2.40 rejects Swift's weak
#                protected data with "copy relocation against non-copyable protected
#                symbol"), bfd (armv7/host default), or lld (the Swift toolchain's)
#   SWIFTC       swiftc to use (default: swiftc on PATH, else /opt/swift/usr/bin/swiftc)
#   STRIP        1 (default) strips the outputs; 0 keeps the symbols
#   HOST_CC      C compiler of the host build (default gcc, else the toolchain's clang)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/out/cross}"
ARENA_BYTES="${ARENA_BYTES:-1048576}"
SWIFT_OPT="${SWIFT_OPT:--O}"
SUFFIX="${SUFFIX:-}"
STRIP="${STRIP:-1}"
if [ -z "${SWIFTC:-}" ]; then
  if command -v swiftc >/dev/null 2>&1; then SWIFTC=swiftc; else SWIFTC=/opt/swift/usr/bin/swiftc; fi
fi
SWIFT_LIB="$(cd "$(dirname "$(command -v "$SWIFTC")")/../lib/swift" && pwd)"

usage() { echo "usage: $0 aarch64|armv7|host|lib-host|lib-aarch64|lib-armv7 [...]   (env: CPU, OUT, SUFFIX, ARENA_BYTES, SWIFT_OPT, LD, STRIP)" >&2; exit 2; }
[ $# -ge 1 ] || usage

need() { command -v "$1" >/dev/null 2>&1 || { echo "$0: '$1' not found: $2" >&2; exit 1; }; }

# Sets cc, swift_target, cpu, ld_default, cflags, swiftflags (globals: one target is
# built at a time) and the caller's arch (host -> x86_64) for a target.
setup_arch() {
  case "$1" in
    aarch64)
      cc=aarch64-linux-gnu-gcc; swift_target=aarch64-none-none-elf; ld_default=gold
      cpu="${CPU:-cortex-a53}"
      need "$cc" "apt-get install -y gcc-aarch64-linux-gnu"
      if [ "$cpu" = portable ]; then
        cflags=(-march=armv8-a); swiftflags=()
      else
        cflags=(-mcpu="$cpu"); swiftflags=(-Xcc -mcpu="$cpu")
      fi
      ;;
    armv7)
      cc=arm-linux-gnueabihf-gcc; swift_target=armv7-none-none-eabi; ld_default=bfd
      cpu="${CPU:-cortex-a7}"
      need "$cc" "apt-get install -y gcc-arm-linux-gnueabihf"
      # Debian armhf: hard-float ABI, Thumb-2 C code; Swift emits ARM code, which interworks.
      if [ "$cpu" = portable ]; then
        cflags=(-march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard)
        swiftflags=(-Xcc -mfloat-abi=hard -Xcc -mfpu=vfpv3-d16)
      else
        cflags=(-mcpu="$cpu" -mfpu=neon-vfpv4 -mfloat-abi=hard)
        swiftflags=(-Xcc -mcpu="$cpu" -Xcc -mfpu=neon-vfpv4 -Xcc -mfloat-abi=hard)
      fi
      # The none-eabi target's enum/wchar defaults must match the Linux gnueabihf ABI.
      swiftflags+=(-Xcc -fno-short-enums -Xcc -fno-short-wchar)
      ;;
    host|x86_64)
      arch=x86_64
      # The host C compiler: gcc, else the Swift toolchain's clang (HOST_CC overrides).
      cc="${HOST_CC:-}"
      if [ -z "$cc" ]; then
        if command -v gcc >/dev/null 2>&1; then cc=gcc; else cc="$(dirname "$(command -v "$SWIFTC")")/clang"; fi
      fi
      swift_target=x86_64-unknown-linux-gnu; ld_default=bfd
      cpu="${CPU:-x86-64}"
      need "$cc" "apt-get install -y gcc"
      if [ "$cpu" = portable ]; then
        cflags=(-DQ16_NO_MULTIVERSION -DQ16_GEMM_GENERIC); swiftflags=()
      else
        cflags=(); swiftflags=()
      fi
      ;;
    *) usage ;;
  esac
  if [ "$cpu" = portable ]; then
    cflags+=(-fno-tree-vectorize -fno-tree-slp-vectorize -DPDMM_BOARD_NO_VECTORIZE -DQ16_NO_NEON)
  fi
}

# Compiles the kernels (Sources/CFixed/*.c) with $cc and the given flags into $1/cfixed/,
# in parallel; fails if any compile fails.
compile_kernels() {
  local obj="$1"
  shift
  local -a pids=()
  local f j fail=0
  for f in "$ROOT"/Sources/CFixed/*.c; do
    "$cc" -std=c99 "$@" -I "$ROOT/Sources/CFixed/include" -c "$f" -o "$obj/cfixed/$(basename "$f" .c).o" & pids+=($!)
  done
  for j in "${pids[@]}"; do wait "$j" || fail=1; done
  return $fail
}

# The C library: libpdmm.a = Sources/CFixed/*.c + Sources/PDMMEngine/*.swift and
# Sources/PDMMLib/*.swift as one Embedded Swift module (the @_cdecl entry points of
# Sources/PDMMLib/include/pdmm.h) + swift_strtod.c + the toolchain's Unicode tables (String
# comparison). Writes $OUT/lib/<arch>/libpdmm.a and pdmm.h beside it.
build_lib() {
  local arch="$1"
  setup_arch "$arch"
  local dir="$OUT/lib/$arch$SUFFIX"
  local obj="$OUT/obj/lib-$arch$SUFFIX"
  rm -rf "$obj" "$dir"
  mkdir -p "$obj/cfixed" "$dir"
  local t0=$SECONDS
  echo "== libpdmm.a ($arch$SUFFIX): $swift_target + $cc, CPU=$cpu, Swift $SWIFT_OPT"
  local -a ccommon=(-O3 -fno-math-errno -ffunction-sections -fdata-sections -fPIC "${cflags[@]}")
  compile_kernels "$obj" "${ccommon[@]}" &
  local cjob=$!
  "$cc" -std=c99 "${ccommon[@]}" -Wall -Wextra -c "$ROOT/tools/cross/swift_strtod.c" -o "$obj/swift_strtod.o"
  "$SWIFTC" -target "$swift_target" -enable-experimental-feature Embedded -wmo -parse-as-library "$SWIFT_OPT" \
    -module-cache-path "$obj/module-cache" -Xfrontend -function-sections "${swiftflags[@]}" \
    -module-name PDMMLib -I "$ROOT/Sources/CFixed/include" -I "$ROOT/Sources/PDMMLib/include" \
    -c "$ROOT"/Sources/PDMMEngine/*.swift "$ROOT"/Sources/PDMMLib/*.swift -o "$obj/pdmm_swift.o"
  wait "$cjob"
  local unicode="$SWIFT_LIB/embedded/$swift_target/libswiftUnicodeDataTables.a"
  mkdir -p "$obj/unicode"
  if [ -f "$unicode" ]; then
    (cd "$obj/unicode" && ar x "$unicode")
    # armv7: the tables are tagged soft-float (see the board link below); integer-only code.
    [ "$arch" = armv7 ] && for o in "$obj"/unicode/*.o; do
      arm-linux-gnueabihf-objcopy --remove-section=.ARM.attributes "$o"; done
  fi
  ar rcs "$dir/libpdmm.a" "$obj/pdmm_swift.o" "$obj/swift_strtod.o" "$obj"/cfixed/*.o $(ls "$obj"/unicode/*.o 2>/dev/null)
  cp "$ROOT/Sources/PDMMLib/include/pdmm.h" "$dir/"
  echo "   $dir/libpdmm.a ($(stat -c %s "$dir/libpdmm.a") B), $((SECONDS - t0)) s"
  echo "lib-$arch$SUFFIX $((SECONDS - t0))" >> "$OUT/build-times.txt"
}

build_one() {
  local arch="$1"
  setup_arch "$arch"
  local ld="${LD:-$ld_default}"
  local -a ldflags=(-no-pie)
  case "$ld" in
    bfd) ;;
    gold) ldflags+=(-fuse-ld=gold) ;;
    lld) ldflags+=(-fuse-ld=lld -B"$(dirname "$(command -v "$SWIFTC")")") ;;
    *) echo "$0: LD must be bfd, gold or lld" >&2; exit 2 ;;
  esac
  [ "$STRIP" = 1 ] && ldflags+=(-s)

  local name="pdmm-board-$arch$SUFFIX"
  local obj="$OUT/obj/$name"
  rm -rf "$obj"
  mkdir -p "$obj/cfixed" "$OUT"
  local t0=$SECONDS
  echo "== $name: $swift_target + $cc, CPU=$cpu, LD=$ld, Swift $SWIFT_OPT"

  # 1. C: kernels (the package's flags: -std=c99 -O3 -fno-math-errno), data, board shim.
  #    In the background, while Swift compiles.
  local -a ccommon=(-O3 -fno-math-errno -ffunction-sections -fdata-sections "${cflags[@]}")
  (
    pids=()
    compile_kernels "$obj" "${ccommon[@]}" & pids+=($!)
    "$cc" -std=c99 -O2 -ffunction-sections -fdata-sections -I "$ROOT/Sources/CDigits/include" \
      -c "$ROOT/Sources/CDigits/digits_data.c" -o "$obj/digits.o" & pids+=($!)
    "$cc" -std=gnu11 "${ccommon[@]}" -Wall -Wextra -I "$ROOT/tools/board/include" \
      -DPDMM_BOARD_ARENA_BYTES="$ARENA_BYTES" -DPDMM_BOARD_CPU="\"$cpu\"" \
      -c "$ROOT/tools/board/board.c" -o "$obj/board_c.o" & pids+=($!)
    "$cc" -std=c99 "${ccommon[@]}" -Wall -Wextra \
      -c "$ROOT/tools/cross/swift_strtod.c" -o "$obj/swift_strtod.o" & pids+=($!)
    fail=0
    for j in "${pids[@]}"; do wait "$j" || fail=1; done
    exit $fail
  ) &
  local cjob=$!

  # 2. Swift: the engine module (unchanged sources), then the board program.
  local -a sw=("$SWIFTC" -target "$swift_target" -enable-experimental-feature Embedded -wmo
               -parse-as-library "$SWIFT_OPT" -module-cache-path "$obj/module-cache"
               -Xfrontend -function-sections "${swiftflags[@]}")
  "${sw[@]}" -module-name PDMMEngine -I "$ROOT/Sources/CFixed/include" \
    -emit-module -emit-module-path "$obj/PDMMEngine.swiftmodule" \
    -c "$ROOT"/Sources/PDMMEngine/*.swift -o "$obj/PDMMEngine.o"
  "${sw[@]}" -module-name PDMMBoard -I "$obj" -I "$ROOT/Sources/CFixed/include" \
    -I "$ROOT/Sources/CDigits/include" -I "$ROOT/tools/board/include" \
    -c "$ROOT/tools/board/main.swift" -o "$obj/board_swift.o"
  wait "$cjob"

  # 3. Link: dynamic and static, heap calls wrapped by board.c's counters.
  local unicode="$SWIFT_LIB/embedded/$swift_target/libswiftUnicodeDataTables.a"
  local -a objs=("$obj/board_swift.o" "$obj/PDMMEngine.o" "$obj/board_c.o" "$obj/swift_strtod.o" "$obj/digits.o" "$obj"/cfixed/*.o)
  if [ "$arch" = armv7 ] && [ -f "$unicode" ]; then
    # The toolchain's armv7-none-none-eabi Unicode tables are tagged soft-float
    # (base AAPCS); GNU ld refuses to mix them with hard-float objects. They are
    # data plus lookup functions over integers only (no float in any signature),
    # so the two ABIs agree: drop the attribute section of a copy.
    arm-linux-gnueabihf-objcopy --remove-section=.ARM.attributes "$unicode" "$obj/libswiftUnicodeDataTables.a"
    unicode="$obj/libswiftUnicodeDataTables.a"
  fi
  [ -f "$unicode" ] && objs+=("$unicode")
  local wrap="-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=posix_memalign,--wrap=aligned_alloc,--wrap=memalign,--wrap=arc4random_buf"
  "$cc" "${ldflags[@]}" -static-libgcc -Wl,--gc-sections -o "$OUT/$name" "${objs[@]}" "$wrap" -lm
  "$cc" "${ldflags[@]}" -static -Wl,--gc-sections -o "$OUT/$name-static" "${objs[@]}" "$wrap" -lm
  local secs=$((SECONDS - t0))
  echo "   $OUT/$name ($(stat -c %s "$OUT/$name") B), $OUT/$name-static ($(stat -c %s "$OUT/$name-static") B), ${secs} s"
  echo "$name $secs" >> "$OUT/build-times.txt"
}

for t in "$@"; do
  case "$t" in
    lib-*) build_lib "${t#lib-}" ;;
    *) build_one "$t" ;;
  esac
done
