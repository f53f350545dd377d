#!/bin/sh
# exports.sh LIBSO HEADER SONAME: the shared library exports exactly the public API. Every dynamic
# symbol it defines is an ag_ name (no ag__ internals, no linker-made _edata/_end/__bss_start)
# or the version node of the version script; every AG_EXPORT function of the header is among
# them; the SONAME is the one the build promises. TAP output.
set -u
so=$1 header=$2 soname=$3
for tool in nm readelf; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "1..0 # SKIP $tool is not installed (Debian package binutils)"
        exit 0
    fi
done
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
echo "1..4"

# "VALUE TYPE NAME[@@VERSION]": keep "NAME TYPE VERSION".
nm -D --defined-only "$so" | awk '{split($NF, p, "@@"); print p[1], $(NF-1), p[2]}' | sort >"$tmp/defined"
# Anything that is neither a public ag_ symbol nor the absolute version node is a leak.
grep -v -E '^ag_[a-z0-9][a-z0-9_]* [TDBRVW]' "$tmp/defined" | grep -v -E '^ASYNCGET_[0-9.]+ A' >"$tmp/leaks"
if [ -s "$tmp/defined" ] && [ ! -s "$tmp/leaks" ]; then
    echo "ok 1 - exports_only_public_symbols ($(wc -l <"$tmp/defined") defined)"
else
    echo "not ok 1 - exports_only_public_symbols"
    sed 's/^/# leaked: /' "$tmp/leaks"
fi

# One version node, and every exported function bound to it.
node=$(awk '$2 == "A" {print $1}' "$tmp/defined")
unversioned=$(awk -v node="$node" '$2 != "A" && $3 != node' "$tmp/defined")
if [ -n "$node" ] && [ "$(echo "$node" | wc -l)" -eq 1 ] && [ -z "$unversioned" ]; then
    echo "ok 2 - exports_carry_version_node_$node"
else
    echo "not ok 2 - exports_carry_version_node"
    echo "# nodes: $node" "# not on it: $unversioned"
fi

# Declared in the header for callers, so each must be defined by the library.
sed -n 's/^AG_EXPORT[^(]*[ *]\(ag_[a-z0-9_]*\)(.*/\1/p' "$header" | sort -u >"$tmp/declared"
awk '{print $1}' "$tmp/defined" | sort -u >"$tmp/names"
comm -23 "$tmp/declared" "$tmp/names" >"$tmp/missing"
if [ -s "$tmp/declared" ] && [ ! -s "$tmp/missing" ]; then
    echo "ok 3 - exports_every_declared_function ($(wc -l <"$tmp/declared") declared)"
else
    echo "not ok 3 - exports_every_declared_function"
    sed 's/^/# missing: /' "$tmp/missing"
fi

got=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$got" = "$soname" ]; then
    echo "ok 4 - soname_is_$soname"
else
    echo "not ok 4 - soname_is_$soname # got '$got'"
fi
