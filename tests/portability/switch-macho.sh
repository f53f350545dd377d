#!/bin/sh
# switch-macho.sh SRCROOT: the context switches assemble for macOS (Mach-O, x86-64 and arm64) and
# define their two symbols with the underscore prefix as private externs (hidden). No macOS SDK
# exists here, so this is all that is checked for macOS: that the files assemble, not that they
# run. TAP output.
set -u
root=$1
if ! command -v clang >/dev/null 2>&1; then
    echo "1..0 # SKIP clang is not installed (Debian package clang)"
    exit 0
fi
nm=
for t in llvm-nm llvm-nm-19 llvm-nm-16 llvm-nm-15 llvm-nm-14; do
    if command -v "$t" >/dev/null 2>&1; then nm=$t; break; fi
done
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

echo "1..4"
i=0
for pair in x86_64-apple-macos:x86_64 arm64-apple-macos:aarch64; do
    target=${pair%%:*} arch=${pair##*:}
    i=$((i + 1))
    if clang --target="$target" -I"$root" -c "$root/core/switch_$arch.S" -o "$tmp/$arch.o" 2>"$tmp/$arch.err"; then
        echo "ok $i - switch_${arch}_assembles_for_$target"
    else
        echo "not ok $i - switch_${arch}_assembles_for_$target"
        sed 's/^/# /' "$tmp/$arch.err"
    fi
    i=$((i + 1))
    if [ -z "$nm" ]; then
        echo "ok $i - switch_${arch}_macho_symbols # SKIP llvm-nm is not installed (Debian package llvm)"
    elif [ ! -f "$tmp/$arch.o" ]; then
        echo "not ok $i - switch_${arch}_macho_symbols # no object"
    else
        "$nm" -m "$tmp/$arch.o" >"$tmp/$arch.nm" 2>&1
        if grep -q 'private external _ag__ctx_switch$' "$tmp/$arch.nm" &&
            grep -q 'private external _ag__ctx_trampoline$' "$tmp/$arch.nm"; then
            echo "ok $i - switch_${arch}_macho_symbols"
        else
            echo "not ok $i - switch_${arch}_macho_symbols"
            sed 's/^/# /' "$tmp/$arch.nm"
        fi
    fi
done
