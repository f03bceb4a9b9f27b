#!/usr/bin/env bash
# Build the demo renderer (render.c) to WebAssembly (WASI preview 1) with Debian's clang,
# lld and wasi-libc, byte for byte reproducibly, and record its SHA-256; optionally also
# build the same C natively for comparison.
#
#   compute/demo/build.sh                  rebuild render.wasm and render.wasm.sha256 here
#   compute/demo/build.sh --wasm OUT.wasm  build the module to OUT.wasm only (checks)
#   compute/demo/build.sh --native OUT     build the native binary to OUT only
#   compute/demo/build.sh --check          exit 0 if the wasm32-wasi toolchain is here, else 3
#
# Fixed flags, the same for both builds, because the two must compute identical pixels:
#   -O2                      the optimisation level the benchmark compares
#   -ffp-contract=off        no fused multiply-add: each operation rounded as written
#   -fno-fast-math           (the default, stated) IEEE semantics, no reassociation
#   -fno-math-errno          sqrt is the instruction, not a libm call that sets errno
#   -ffile-prefix-map, -fno-ident, no -g: nothing of this machine enters the module
# The module is linked with --strip-debug (the name section stays, for readable traps)
# and a fixed stack of 64 KiB. Same clang + wasi-libc versions give the same bytes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

CC="${CC:-clang}"
SYSROOT="${WASI_SYSROOT:-/usr}"
COMMON_FLAGS=(-std=c11 -O2 -ffp-contract=off -fno-fast-math -fno-math-errno -fno-ident
              "-ffile-prefix-map=$here=." -Wall -Wextra -Werror)

missing_toolchain() {
    cat >&2 <<EOF
build.sh: $1
Install Debian's toolchain for wasm32-wasi (Debian 12 "bookworm" package names):
    apt-get install clang lld wasi-libc libclang-rt-dev-wasm32
EOF
    exit 3
}

check_wasm_toolchain() {
    command -v "$CC" >/dev/null || missing_toolchain "no $CC on PATH (package clang)"
    command -v wasm-ld >/dev/null || missing_toolchain "no wasm-ld on PATH (package lld)"
    [ -f "$SYSROOT/include/wasm32-wasi/stdio.h" ] && [ -f "$SYSROOT/lib/wasm32-wasi/libc.a" ] \
        || missing_toolchain "no wasi-libc under $SYSROOT (package wasi-libc)"
    local builtins
    builtins="$("$CC" -print-resource-dir)/lib/wasi/libclang_rt.builtins-wasm32.a"
    [ -f "$builtins" ] || missing_toolchain "no $builtins (package libclang-rt-dev-wasm32)"
}

build_wasm() {
    local out="$1"
    check_wasm_toolchain
    "$CC" --target=wasm32-wasi --sysroot="$SYSROOT" "${COMMON_FLAGS[@]}" \
        -Wl,--strip-debug -Wl,-z,stack-size=65536 \
        -o "$out" render.c
}

build_native() {
    local out="$1"
    command -v "$CC" >/dev/null || missing_toolchain "no $CC on PATH"
    "$CC" "${COMMON_FLAGS[@]}" -o "$out" render.c
}

case "${1:-}" in
    --check) check_wasm_toolchain ;;
    --wasm) build_wasm "$2" ;;
    --native) build_native "$2" ;;
    "")
        build_wasm render.wasm
        sha256sum render.wasm | cut -d' ' -f1 > render.wasm.sha256
        echo "render.wasm $(wc -c < render.wasm) bytes, SHA-256 $(cat render.wasm.sha256)"
        echo "built with: $("$CC" --version | head -n1); wasi-libc $(dpkg-query -W -f='${Version}' wasi-libc 2>/dev/null || echo '(version unknown)')"
        ;;
    *) echo "usage: $0 [--wasm OUT.wasm | --native OUT | --check]" >&2; exit 2 ;;
esac
