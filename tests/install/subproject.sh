#!/bin/sh
# subproject.sh SRCDIR VERSION: another meson project takes this tree as its subproject
# (subprojects/asyncget, a symlink to the tree) and gets the library with dependency('asyncget'),
# through meson.override_dependency. Checks that it builds and runs, that asyncget's tests, bench
# and examples are not built in that case, and that the static archive is a real one. TAP output.
set -u
src=$1 version=$2
if ! command -v meson >/dev/null 2>&1 || ! command -v ninja >/dev/null 2>&1; then
    echo "1..0 # SKIP meson or ninja is not installed"
    exit 0
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -f "${2:-}" ] && tail -40 "$2" | sed 's/^/# /'; }

mkdir -p "$tmp/outer/subprojects"
ln -s "$src" "$tmp/outer/subprojects/asyncget"
cp "$src/tests/install/consumer.c" "$tmp/outer/"
cat >"$tmp/outer/meson.build" <<'MESON'
project('outer', 'c', default_options: ['default_library=both'])
asyncget = dependency('asyncget', fallback: 'asyncget')
exe = executable('consumer', 'consumer.c', dependencies: asyncget)
test('consumer', exe, args: [get_option('want_version')], protocol: 'tap')
# The static one, as a program that bundles asyncget would take it.
asyncget_static = dependency('asyncget', fallback: 'asyncget', static: true)
executable('consumer-static', 'consumer.c', dependencies: asyncget_static)
MESON
printf "option('want_version', type: 'string')\n" >"$tmp/outer/meson_options.txt"

# --force-fallback-for: an installed asyncget.pc must not stand in for the subproject.
if meson setup "$tmp/build" "$tmp/outer" --force-fallback-for=asyncget -Dwant_version="$version" \
    >"$tmp/setup.log" 2>&1; then
    ok "subproject_configures"
else
    notok "subproject_configures" "$tmp/setup.log"
    echo "1..$n"
    exit 1
fi
if ninja -C "$tmp/build" >"$tmp/build.log" 2>&1; then
    ok "subproject_builds_consumer"
else
    notok "subproject_builds_consumer" "$tmp/build.log"
fi
if "$tmp/build/consumer" "$version" >"$tmp/run.log" 2>&1 && "$tmp/build/consumer-static" "$version" >>"$tmp/run.log" 2>&1; then
    ok "subproject_consumer_runs"
else
    notok "subproject_consumer_runs" "$tmp/run.log"
fi
sub=$tmp/build/subprojects/asyncget

if [ ! -d "$sub/tests" ] && [ ! -d "$sub/bench" ] && [ ! -d "$sub/examples" ]; then
    ok "subproject_skips_tests_bench_examples"
else
    notok "subproject_skips_tests_bench_examples"
    echo "# the subproject build has: $(ls "$sub" | tr "\n" " ")"
fi
archive=$(find "$sub" -name libasyncget.a | head -1)
if [ -n "$archive" ] && [ "$(head -c 7 "$archive")" = "!<arch>" ]; then
    ok "subproject_archive_is_not_thin"
else
    notok "subproject_archive_is_not_thin"
    echo "# $archive starts with $(head -c 8 "$archive" 2>/dev/null)"
fi
echo "1..$n"
