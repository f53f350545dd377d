#!/bin/sh
# check-poison.sh SRCROOT POISON_H CC [CC ARGS...]: proves that the portability check build can
# fail. For every name that poison.h poisons, a probe naming it must compile without the header
# (so the probe itself is sound) and must fail with it (so a portable file naming it breaks the
# check build). TAP output.
set -u
root=$1 poison=$2
shift 2
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

names=$(sed -n 's/^#pragma GCC poison //p' "$poison")
# The names the portability work promised to keep out of portable files.
required="POLLRDHUP SOCK_NONBLOCK SOCK_CLOEXEC MSG_NOSIGNAL strerrorname_np accept4 eventfd
epoll_create1 epoll_ctl epoll_wait pipe2 MAP_STACK MAP_NORESERVE"

count=0
for n in $names $required; do count=$((count + 1)); done
echo "1..$((count + 1))"
i=0

# The poison header alone, with compat.h, must compile: a failure below then means the name.
printf 'int ag_probe(void);\nint ag_probe(void)\n{\n    return AG__MSG_NOSIGNAL + AG__POLLRDHUP;\n}\n' >"$tmp/clean.c"
i=$((i + 1))
if "$@" -std=gnu11 -D_GNU_SOURCE -Werror -I"$root" -include "$poison" -c "$tmp/clean.c" -o "$tmp/clean.o" 2>"$tmp/clean.err"; then
    echo "ok $i - poison_header_compiles_with_compat"
else
    echo "not ok $i - poison_header_compiles_with_compat"
    sed 's/^/# /' "$tmp/clean.err"
fi

for n in $required; do
    i=$((i + 1))
    case " $(echo $names) " in
    *" $n "*) echo "ok $i - poison_lists_$n" ;;
    *) echo "not ok $i - poison_lists_$n" ;;
    esac
done

# One probe per name, stringified so that it needs no declaration. All of them together must
# compile without poison.h; each alone must then fail in the preprocessor with it.
printf '#define AG_STR(x) #x\nconst char *ag_probe[] = {\n' >"$tmp/all.c"
for n in $names; do printf '    AG_STR(%s),\n' "$n" >>"$tmp/all.c"; done
printf '};\n' >>"$tmp/all.c"
control_ok=1
if ! "$@" -std=gnu11 -D_GNU_SOURCE -c "$tmp/all.c" -o "$tmp/all.o" 2>"$tmp/all.err"; then
    control_ok=0
fi
for n in $names; do
    i=$((i + 1))
    printf '#define AG_STR(x) #x\nconst char *ag_probe = AG_STR(%s);\n' "$n" >"$tmp/$n.c"
    if [ $control_ok = 0 ]; then
        echo "not ok $i - poison_rejects_$n # the probes fail even without poison.h"
        sed 's/^/# /' "$tmp/all.err"
    elif "$@" -std=gnu11 -D_GNU_SOURCE -I"$root" -include "$poison" -E "$tmp/$n.c" -o /dev/null 2>"$tmp/$n.err"; then
        echo "not ok $i - poison_rejects_$n # preprocessed with poison.h"
    elif grep -q 'poison' "$tmp/$n.err"; then
        echo "ok $i - poison_rejects_$n"
    else
        echo "not ok $i - poison_rejects_$n # failed, but not for the poison"
        sed 's/^/# /' "$tmp/$n.err"
    fi
done
