#!/bin/bash
# Self-check of the test servers: starts nginx, httpbin and hostile.py via
# with-servers and checks a few answers with curl. Prints TAP-style lines
# and a closing "N passed, N failed"; exits 0 when all pass, 77 when a
# server program or curl is missing (1 with AG_REQUIRE_SERVERS=1).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ "${1:-}" != "--inner" ]; then
    if ! command -v curl >/dev/null 2>&1; then
        echo "selftest: SKIP: curl not found (Debian package curl)" >&2
        [ "${AG_REQUIRE_SERVERS:-}" = 1 ] && exit 1
        exit 77
    fi
    exec "$here/with-servers" --nginx --httpbin --hostile -- "$here/selftest.sh" --inner
fi

n=0
pass=0
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ag-selftest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# check NAME EXPECTED ACTUAL
check() {
    n=$((n + 1))
    if [ "$2" = "$3" ]; then
        pass=$((pass + 1))
        echo "ok $n - $1"
    else
        fail=$((fail + 1))
        echo "not ok $n - $1"
        echo "#   expected: $(printf %q "$2")"
        echo "#   actual:   $(printf %q "$3")"
    fi
}

c() { curl -s --max-time 10 "$@"; }

N=http://127.0.0.1:$AG_NGINX_PORT
H=http://127.0.0.1:$AG_HTTPBIN_PORT
X=http://127.0.0.1:$AG_HOSTILE_PORT

# ---- nginx
check "nginx /hello" "hello, world" "$(c $N/hello)"
check "nginx /0 is empty" "200 0" "$(c -o /dev/null -w '%{http_code} %{size_download}' $N/0)"
check "nginx /1k matches root file" "$(sha256sum < "$AG_NGINX_ROOT/1k")" "$(c $N/1k | sha256sum)"
check "nginx /1m size" "1048576" "$(c -o /dev/null -w '%{size_download}' $N/1m)"
check "nginx /100m length" "104857600" \
    "$(c -I $N/100m | tr -d '\r' | sed -n 's/^Content-Length: //p')"
c -v --raw -o "$tmp/chunked" $N/chunked 2>"$tmp/chunked.h"
check "nginx /chunked is chunked" "1" "$(grep -ci '^< Transfer-Encoding: chunked' "$tmp/chunked.h")"
check "nginx /chunked framing" "d|chunked body||0|" "$(tr -d '\r' < "$tmp/chunked" | paste -sd '|')"
check "nginx /204" "204" "$(c -o /dev/null -w '%{http_code}' $N/204)"
check "nginx If-Modified-Since gives 304" "304" \
    "$(c -o /dev/null -w '%{http_code}' -H 'If-Modified-Since: Thu, 01 Jan 2015 00:00:00 GMT' $N/hello)"
check "nginx keep-alive reuse" "1 0" \
    "$(c -o /dev/null -o /dev/null -w '%{num_connects} ' $N/hello $N/1k | sed 's/ $//')"
check "nginx /discard takes a POST body" "ok" "$(c --data-binary @"$AG_NGINX_ROOT/1m" $N/discard)"

# ---- httpbin
check "httpbin /status/418" "418" "$(c -o /dev/null -w '%{http_code}' $H/status/418)"
check "httpbin /redirect/3 followed" "200 3 $H/get" \
    "$(c -L -o /dev/null -w '%{http_code} %{num_redirects} %{url_effective}' $H/redirect/3)"
check "httpbin /absolute-redirect/2 points back" "302 $H/absolute-redirect/1" \
    "$(c -o /dev/null -w '%{http_code} %{redirect_url}' $H/absolute-redirect/2)"
check "httpbin /stream/5 lines" "5" "$(c $H/stream/5 | wc -l | tr -d ' ')"
check "httpbin /bytes/100" "100" "$(c -o /dev/null -w '%{size_download}' $H/bytes/100)"
check "httpbin /post echoes form" "1" \
    "$(c -d 'a=1' $H/post | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["form"]["a"])')"
check "httpbin /headers sees custom header" "yes" \
    "$(c -H 'X-Ag: yes' $H/headers | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["headers"]["X-Ag"])')"

# ---- hostile
check "hostile /ok" "ok" "$(c $X/ok)"
check "hostile /chunked-trailers" "hello world" "$(c $X/chunked-trailers)"
check "hostile /many-1xx" "ok 200" "$(c -w ' %{http_code}' $X/many-1xx)"
check "hostile /head-ok HEAD" "5" "$(c -I $X/head-ok | tr -d '\r' | sed -n 's/^Content-Length: //p')"
c -o /dev/null $X/truncated; check "hostile /truncated: curl sees partial file" "18" "$?"
c -o /dev/null $X/close-immediately; check "hostile /close-immediately: empty reply" "52" "$?"
c -o /dev/null $X/reset; check "hostile /reset: connection reset" "56" "$?"
c -o /dev/null --max-time 1 $X/stall; check "hostile /stall: times out" "28" "$?"
check "hostile /slow-body takes >= 0.9 s" "10 1" \
    "$(c -o /dev/null -w '%{size_download} %{time_total}' $X/slow-body | awk '{print $1, ($2 >= 0.9)}')"
check "hostile /close-no-length" "body delimited by close" "$(c $X/close-no-length)"
check "hostile /echo" "POST 3 abc" \
    "$(c -d abc $X/echo | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["method"], d["body_len"], d["body"])')"
check "hostile /stats counts connections" "True" \
    "$(c $X/stats | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"] >= 10)')"

echo "1..$n"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
