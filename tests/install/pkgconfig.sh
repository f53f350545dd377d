#!/bin/sh
# pkgconfig.sh BUILDDIR SRCDIR VERSION CC...: what an outsider does with an installed asyncget.
# Installs the build into a temporary root (meson install --destdir), then builds consumer.c with
# nothing but what `pkg-config asyncget` says, once against the shared library and once against
# the static archive (pkg-config --static), and runs both. TAP output.
set -u
build=$1 src=$2 version=$3
shift 3
for tool in pkg-config meson; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "1..0 # SKIP $tool is not installed"
        exit 0
    fi
done
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -f "${2:-}" ] && sed 's/^/# /' "$2"; }

if meson install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$tmp/install.log" 2>&1; then
    ok "install_into_destdir"
else
    notok "install_into_destdir" "$tmp/install.log"
    echo "1..$n"
    exit 1
fi
pcfile=$(find "$dest" -name asyncget.pc | head -1)
if [ -n "$pcfile" ]; then ok "install_has_asyncget_pc"; else notok "install_has_asyncget_pc"; echo "1..$n"; exit 1; fi
# The .pc names the real prefix; PKG_CONFIG_SYSROOT_DIR puts its paths under the destdir, as for
# any staged install.
export PKG_CONFIG_PATH="$(dirname "$pcfile")" PKG_CONFIG_SYSROOT_DIR="$dest"
unset PKG_CONFIG_ALLOW_SYSTEM_CFLAGS PKG_CONFIG_ALLOW_SYSTEM_LIBS

if [ "$(pkg-config --modversion asyncget)" = "$version" ]; then
    ok "pc_version_is_project_version"
else
    notok "pc_version_is_project_version # got $(pkg-config --modversion asyncget)"
fi
cflags=$(pkg-config --cflags asyncget) libs=$(pkg-config --libs asyncget)
echo "# cflags: $cflags"
echo "# libs: $libs"
echo "# static libs: $(pkg-config --static --libs asyncget)"
libdir=$dest$(pkg-config --variable=libdir asyncget | sed "s|^$dest||")

# shellcheck disable=SC2086
if "$@" -std=c99 -Wall -Werror $cflags "$src/tests/install/consumer.c" -o "$tmp/shared" $libs \
    >"$tmp/cc.log" 2>&1; then
    ok "consumer_builds_with_pkg_config"
else
    notok "consumer_builds_with_pkg_config" "$tmp/cc.log"
fi
if [ -x "$tmp/shared" ] && LD_LIBRARY_PATH="$libdir" "$tmp/shared" "$version" >"$tmp/run.log" 2>&1 &&
    LD_LIBRARY_PATH="$libdir" ldd "$tmp/shared" | grep -q "$libdir/libasyncget.so"; then
    ok "consumer_runs_on_installed_shared_library"
else
    notok "consumer_runs_on_installed_shared_library" "$tmp/run.log"
fi

# Static: the archive in place of -lasyncget, the rest of the flags from pkg-config --static.
slibs=$(pkg-config --static --libs asyncget | sed 's/-lasyncget\b/-l:libasyncget.a/')
# shellcheck disable=SC2086
if "$@" -std=c99 -Wall -Werror $cflags "$src/tests/install/consumer.c" -o "$tmp/static" $slibs \
    >"$tmp/cc.log" 2>&1; then
    ok "consumer_links_static_archive_with_pkg_config_static"
else
    notok "consumer_links_static_archive_with_pkg_config_static" "$tmp/cc.log"
fi
if [ -x "$tmp/static" ] && "$tmp/static" "$version" >"$tmp/run.log" 2>&1 &&
    ! ldd "$tmp/static" | grep -q libasyncget; then
    ok "consumer_runs_statically_linked"
else
    notok "consumer_runs_statically_linked" "$tmp/run.log"
fi
if [ "$(head -c 8 "$libdir/libasyncget.a" 2>/dev/null)" = "!<arch>" ] ||
    head -c 8 "$libdir/libasyncget.a" 2>/dev/null | grep -q '^!<arch>'; then
    ok "installed_archive_is_not_thin"
else
    notok "installed_archive_is_not_thin"
fi
echo "1..$n"
