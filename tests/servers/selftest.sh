#!/bin/bash
# Self-check of the test servers, in four parts: nginx, httpbin and
# hostile.py via with-servers, answers checked with curl; the TLS servers of
# with-servers --tls, checked with curl and openssl s_client; dnsmasq and the
# blackhole via with-servers --dnsmasq, answers checked with dnsq.py; and
# with-system-dns (root only): getent in the private mount namespace gets
# its answers from the test dnsmasq and the test hosts file, and the
# machine's /etc/resolv.conf and /etc/hosts are the same bytes afterwards.
# Each part prints TAP-style lines and a closing "N passed, N failed".
# Exits 1 when a part fails, 77 when every part skipped (a server program,
# curl or root missing; 1 with AG_REQUIRE_SERVERS=1), else 0.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ $# -eq 0 ]; then
    results=()
    if command -v curl >/dev/null 2>&1; then
        "$here/with-servers" --nginx --codings --unix --httpbin --hostile -- "$here/selftest.sh" --http
        results+=("$?")
    else
        echo "selftest: SKIP: curl not found (Debian package curl)" >&2
        [ "${AG_REQUIRE_SERVERS:-}" = 1 ] && exit 1
        results+=(77)
    fi
    if command -v curl >/dev/null 2>&1; then
        "$here/with-servers" --tls --unix -- "$here/selftest.sh" --tls
        results+=("$?")
    else
        results+=(77)
    fi
    "$here/with-servers" --dnsmasq -- "$here/selftest.sh" --dns
    results+=("$?")
    before=$(cat /etc/resolv.conf /etc/hosts | sha256sum)
    AG_SELFTEST_HOST_ETC=$before AG_SELFTEST_HOST_NS=$(readlink /proc/self/ns/mnt) \
        "$here/with-system-dns" -- "$here/selftest.sh" --system-dns
    rc=$?
    after=$(cat /etc/resolv.conf /etc/hosts | sha256sum)
    if [ "$before" != "$after" ]; then
        echo "not ok - the machine's /etc/resolv.conf or /etc/hosts changed during with-system-dns"
        rc=1
    elif [ $rc != 77 ]; then
        echo "ok - the machine's /etc/resolv.conf and /etc/hosts are unchanged after with-system-dns"
    fi
    results+=("$rc")
    echo "selftest: part results (http tls dns system-dns): ${results[*]}"
    status=77
    for r in "${results[@]}"; do
        case $r in
        0) [ $status = 77 ] && status=0 ;;
        77) ;;
        *) status=1 ;;
        esac
    done
    exit $status
fi
part=$1

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

# ---- dnsmasq (with-servers --dnsmasq)
if [ "$part" = --dns ]; then
    q() { "$here/dnsq.py" "$@" | paste -sd ' '; }
    S=$AG_DNS_SERVER
    # One Python start for all the questions; a() picks the answer to "NAME TYPE".
    answers=$(printf '%s\n' v4.test v6.test both.test alias.test nx.test short.test multi.test \
        h0.bulk.test h999.bulk.test refused.test x.refused.test example.org |
        awk '{ print $1, "A"; print $1, "AAAA" }' | "$here/dnsq.py" --batch "$S")
    a() { printf '%s\n' "$answers" | awk -v k="$1 $2 " 'index($0, k) == 1 { print substr($0, length(k) + 1) }'; }
    check "v4.test A" "NOERROR A 60 127.0.0.1" "$(a v4.test A)"
    check "v4.test AAAA is NODATA" "NODATA" "$(a v4.test AAAA)"
    check "v6.test A is NODATA" "NODATA" "$(a v6.test A)"
    check "v6.test AAAA" "NOERROR AAAA 60 ::1" "$(a v6.test AAAA)"
    check "both.test A" "NOERROR A 60 127.0.0.1" "$(a both.test A)"
    check "both.test AAAA" "NOERROR AAAA 60 ::1" "$(a both.test AAAA)"
    check "both.test AAAA over TCP" "NOERROR AAAA 60 ::1" "$(q --tcp "$S" both.test AAAA)"
    check "alias.test A: a chain of two CNAMEs" \
        "NOERROR CNAME 60 alias2.test CNAME 60 both.test A 60 127.0.0.1" "$(a alias.test A)"
    check "alias.test AAAA" "NOERROR CNAME 60 alias2.test CNAME 60 both.test AAAA 60 ::1" \
        "$(a alias.test AAAA)"
    check "nx.test A is NXDOMAIN" "NXDOMAIN" "$(a nx.test A)"
    check "nx.test AAAA is NXDOMAIN" "NXDOMAIN" "$(a nx.test AAAA)"
    check "short.test A has TTL 1" "NOERROR A 1 127.0.0.1" "$(a short.test A)"
    check "short.test AAAA is NODATA" "NODATA" "$(a short.test AAAA)"
    check "multi.test has two A records" "127.0.0.1 127.0.0.2" \
        "$(a multi.test A | tr ' ' '\n' | grep '^127\.' | sort | paste -sd ' ')"
    check "multi.test AAAA is NODATA" "NODATA" "$(a multi.test AAAA)"
    check "h0.bulk.test A" "NOERROR A 60 127.0.0.1" "$(a h0.bulk.test A)"
    check "h999.bulk.test A" "NOERROR A 60 127.0.0.1" "$(a h999.bulk.test A)"
    check "h999.bulk.test AAAA is NODATA, not NXDOMAIN" "NODATA" "$(a h999.bulk.test AAAA)"
    check "refused.test A is REFUSED" "REFUSED" "$(a refused.test A)"
    check "x.refused.test AAAA is REFUSED" "REFUSED" "$(a x.refused.test AAAA)"
    check "a name outside test. is REFUSED" "REFUSED" "$(a example.org A)"
    n0=$(grep -c 'query\[A\] both\.test from' "$AG_DNS_LOG")
    q "$S" both.test A >/dev/null
    check "the log has the query's line as soon as the answer arrived" "$((n0 + 1))" \
        "$(grep -c 'query\[A\] both\.test from' "$AG_DNS_LOG")"
    check "the log counts AAAA apart" "2" "$(grep -c 'query\[AAAA\] both\.test from' "$AG_DNS_LOG")"
    check "the blackhole never answers (UDP)" "TIMEOUT" "$(q --timeout 0.3 "$AG_DNS_BLACKHOLE" both.test A)"
    check "the blackhole never answers (TCP)" "TIMEOUT" \
        "$(q --tcp --timeout 0.3 "$AG_DNS_BLACKHOLE" both.test A)"
    check "the blackhole is another port" "yes" \
        "$([ "${AG_DNS_BLACKHOLE##*:}" != "$AG_DNS_PORT" ] && echo yes)"
fi

# ---- the system resolver in the private mount namespace (with-system-dns)
if [ "$part" = --system-dns ]; then
    addrs() { getent ahosts "$1" | awk '{ print $1 }' | sort -u | paste -sd ' '; }
    queries() { grep -c "query\[$1\] $2 from" "$AG_DNS_LOG"; }
    check "in a mount namespace of its own" "yes" \
        "$([ "$(readlink /proc/self/ns/mnt)" != "${AG_SELFTEST_HOST_NS:-}" ] && echo yes)"
    check "resolv.conf names the test dnsmasq" "nameserver ${AG_DNS_SERVER%:53}" \
        "$(grep '^nameserver' /etc/resolv.conf)"
    check "resolv.conf and hosts differ from the machine's" "yes" \
        "$([ "$(cat /etc/resolv.conf /etc/hosts | sha256sum)" != "${AG_SELFTEST_HOST_ETC:-}" ] && echo yes)"
    check "dnsmasq answers on port 53" "NOERROR A 60 127.0.0.1" \
        "$("$here/dnsq.py" "$AG_DNS_SERVER" both.test A | paste -sd ' ')"
    a0=$(queries A both.test)
    check "getent ahosts both.test" "127.0.0.1 ::1" "$(addrs both.test)"
    check "getaddrinfo asked dnsmasq for both.test A and AAAA" "$((a0 + 1)) 1" \
        "$(queries A both.test) $(queries AAAA both.test)"
    check "getent ahosts v6.test" "::1" "$(addrs v6.test)"
    check "getent ahosts alias.test follows the CNAMEs" "127.0.0.1 ::1" "$(addrs alias.test)"
    check "getent ahosts h7.bulk.test" "127.0.0.1" "$(addrs h7.bulk.test)"
    getent ahosts nx.test >/dev/null
    check "getent ahosts nx.test: not found" "2" "$?"
    check "getent ahosts hosts-only.test, from the hosts file" "127.0.0.9" "$(addrs hosts-only.test)"
    check "hosts-only.test never reached dnsmasq" "0" "$(grep -c 'hosts-only' "$AG_DNS_LOG")"
fi

# ---- the TLS servers of nginx (with-servers --tls)
if [ "$part" = --tls ]; then
    u() { echo "https://localhost:$1/hello"; }
    code() { c -o /dev/null -w '%{http_code}' "$@"; }
    # What curl's verbose output says of the handshake, and of a failed certificate check.
    tlsv() { c -v -o /dev/null "$@" 2>&1 | sed -n 's/^\* SSL connection using //p'; }
    tlsfail() { c -v -o /dev/null "$@" 2>&1 | sed -n 's/^\* \(SSL certificate problem: \|SSL: \)//p'; }
    # "Reused" or "New" for a second connection given the first one's session.
    resumed() {
        local p=$1
        shift
        rm -f "$tmp/sess"
        printf 'GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
            openssl s_client -connect "127.0.0.1:$p" -CAfile "$AG_TLS_CA" -sess_out "$tmp/sess" \
                -ign_eof "$@" >/dev/null 2>&1
        printf 'GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
            openssl s_client -connect "127.0.0.1:$p" -CAfile "$AG_TLS_CA" -sess_in "$tmp/sess" \
                -ign_eof "$@" 2>&1 | sed -n 's/^\(Reused\|New\), .*/\1/p'
    }
    check "valid with the test CA" "200" "$(code --cacert "$AG_TLS_CA" "$(u "$AG_TLS_PORT")")"
    check "valid with the hashed CA directory" "200" \
        "$(code --capath "$AG_TLS_CA_DIR" "$(u "$AG_TLS_PORT")")"
    check "valid by IP 127.0.0.1" "200" \
        "$(code --cacert "$AG_TLS_CA" "https://127.0.0.1:$AG_TLS_PORT/hello")"
    if [ "$AG_TLS_IPV6" = 1 ]; then
        check "valid by IP ::1" "200" "$(code --cacert "$AG_TLS_CA" "https://[::1]:$AG_TLS_PORT/hello")"
    fi
    code "$(u "$AG_TLS_PORT")" >/dev/null
    check "valid without the test CA: curl fails the verification (60)" "60" "$?"
    check "valid: TLS 1.3 by default" "TLSv1.3 / TLS_AES_256_GCM_SHA384" \
        "$(tlsv --cacert "$AG_TLS_CA" "$(u "$AG_TLS_PORT")")"
    check "valid: ALPN http/1.1" "1" \
        "$(c -v -o /dev/null --cacert "$AG_TLS_CA" "$(u "$AG_TLS_PORT")" 2>&1 | grep -c 'ALPN: server accepted http/1.1')"
    check "valid: TLS 1.2 when the client says so" "TLSv1.2" \
        "$(tlsv --cacert "$AG_TLS_CA" --tls-max 1.2 "$(u "$AG_TLS_PORT")" | cut -d' ' -f1)"
    check "TLS 1.2 server" "TLSv1.2" "$(tlsv --cacert "$AG_TLS_CA" "$(u "$AG_TLS12_PORT")" | cut -d' ' -f1)"
    check "TLS 1.2 server refuses TLS 1.3 (35)" "35" \
        "$(code --cacert "$AG_TLS_CA" --tlsv1.3 "$(u "$AG_TLS12_PORT")" >/dev/null; echo $?)"
    check "expired" "certificate has expired" \
        "$(tlsfail --cacert "$AG_TLS_CA" "$(u "$AG_TLS_EXPIRED_PORT")")"
    check "expired leaf's dates" "notBefore=Jan  1 00:00:00 2020 GMT notAfter=Feb  1 00:00:00 2020 GMT" \
        "$(openssl x509 -in "$AG_TLS_DIR/expired.pem" -noout -dates | paste -sd ' ')"
    check "wrong name" "no alternative certificate subject name matches target host name 'localhost'" \
        "$(tlsfail --cacert "$AG_TLS_CA" "$(u "$AG_TLS_WRONGNAME_PORT")")"
    check "self-signed" "self-signed certificate" \
        "$(tlsfail --cacert "$AG_TLS_CA" "$(u "$AG_TLS_SELFSIGNED_PORT")")"
    check "unknown CA" "unable to get local issuer certificate" \
        "$(tlsfail --cacert "$AG_TLS_CA" "$(u "$AG_TLS_UNKNOWNCA_PORT")")"
    check "insecure (-k) passes expired, wrong name, self-signed, unknown CA" "200 200 200 200" \
        "$(for p in "$AG_TLS_EXPIRED_PORT" "$AG_TLS_WRONGNAME_PORT" "$AG_TLS_SELFSIGNED_PORT" \
            "$AG_TLS_UNKNOWNCA_PORT"; do code -k "$(u "$p")"; echo; done | paste -sd ' ')"
    check "old-only server: curl -k cannot connect (35)" "35" \
        "$(code -k "$(u "$AG_TLS_OLD_PORT")" >/dev/null; echo $?)"
    check "old-only server offers TLS 1.0 at security level 0" "TLSv1" \
        "$(echo | openssl s_client -connect "127.0.0.1:$AG_TLS_OLD_PORT" -tls1 \
            -cipher DEFAULT@SECLEVEL=0 2>&1 | sed -n 's/^ *Protocol *: //p')"
    check "old-only server offers TLS 1.1" "TLSv1.1" \
        "$(echo | openssl s_client -connect "127.0.0.1:$AG_TLS_OLD_PORT" -tls1_1 \
            -cipher DEFAULT@SECLEVEL=0 2>&1 | sed -n 's/^ *Protocol *: //p')"
    check "client-cert server without a certificate: 400" "400" \
        "$(code --cacert "$AG_TLS_CA" "$(u "$AG_TLS_CLIENTCERT_PORT")")"
    check "client-cert server with the test client's certificate: 200" "200" \
        "$(code --cacert "$AG_TLS_CA" --cert "$AG_TLS_CLIENT_CERT" --key "$AG_TLS_CLIENT_KEY" \
            "$(u "$AG_TLS_CLIENTCERT_PORT")")"
    check "resumption, TLS 1.3 ticket" "Reused" "$(resumed "$AG_TLS_PORT" -tls1_3)"
    check "resumption, TLS 1.2 ticket" "Reused" "$(resumed "$AG_TLS12_PORT")"
    check "resumption, TLS 1.2 session id (no ticket)" "Reused" "$(resumed "$AG_TLS12_PORT" -no_ticket)"
    check "same files as the plain server" "$(sha256sum <"$AG_NGINX_ROOT/1m")" \
        "$(c --cacert "$AG_TLS_CA" "https://localhost:$AG_TLS_PORT/1m" | sha256sum)"
    check "the CA directory holds the hash link" "1" \
        "$(ls "$AG_TLS_CA_DIR" | grep -c '^[0-9a-f]\{8\}\.0$')"
    check "the valid server on AG_TLS_UNIX, verified for localhost" "hello, world" \
        "$(c --cacert "$AG_TLS_CA" --unix-socket "$AG_TLS_UNIX" https://localhost/hello)"
    check "the valid server through socat's AG_TLS_ABSTRACT" "hello, world" \
        "$(c --cacert "$AG_TLS_CA" --abstract-unix-socket "$AG_TLS_ABSTRACT" https://localhost/hello)"
fi

if [ "$part" = --http ]; then
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
check "nginx /slow/1k is the root's 1k" "$(sha256sum < "$AG_NGINX_ROOT/1k")" "$(c $N/slow/1k | sha256sum)"
check "nginx /slow/1m?rate=512k takes a second or more" "1048576 1" \
    "$(c -o /dev/null -w '%{size_download} %{time_total}' "$N/slow/1m?rate=512k" | awk '{ print $1, ($2 >= 0.9) }')"
check "nginx /503 with Retry-After" "503 1" \
    "$(c -D - -o /dev/null -w 'code %{http_code}\n' $N/503 | tr -d '\r' |
       awk '/^Retry-After:/ { r = $2 } /^code / { s = $2 } END { print s, r }')"

# ---- nginx --codings: what each coded path sends, and that curl decodes it to the plain file
R=$AG_NGINX_ROOT
same() { if c "$@" | cmp -s - "$R/text.txt"; then echo same; else echo differs; fi; }
cenc() { c -o /dev/null -D - "$@" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Ee]ncoding: //p'; }
check "codings: /gz/ gzips text.txt for Accept-Encoding: gzip" "gzip" \
    "$(cenc -H 'Accept-Encoding: gzip' $N/gz/text.txt)"
check "codings: /gz/ sends it as it is without Accept-Encoding" "" "$(cenc $N/gz/text.txt)"
check "codings: /gz/ does not code application/octet-stream (1m)" "" \
    "$(cenc -H 'Accept-Encoding: gzip' $N/gz/1m)"
check "codings: /gz/text.txt decoded is text.txt" "same" "$(same --compressed $N/gz/text.txt)"
if [ "$AG_NGINX_BROTLI" = 1 ]; then
    check "codings: /br/ sends br for Accept-Encoding: br" "br" \
        "$(cenc -H 'Accept-Encoding: br' $N/br/text.txt)"
    check "codings: /br/text.txt decoded is text.txt" "same" "$(same --compressed $N/br/text.txt)"
else
    echo "# brotli: $AG_NGINX_BROTLI_WHY"
fi
check "codings: /coded/gzip/ says gzip whatever was asked" "gzip" "$(cenc $N/coded/gzip/text.txt)"
check "codings: /coded/gzip/text.txt decoded" "same" "$(same --compressed $N/coded/gzip/text.txt)"
# curl 7.88 decodes only the first member of a gzip body (and takes a truncated one without a
# word): the raw bytes are checked with gzip(1) instead.
check "codings: /coded/gzip/multi.txt (two members) is text.txt by gzip -dc" "same" \
    "$(if c $N/coded/gzip/multi.txt | gzip -dc | cmp -s - "$R/text.txt"; then echo same; fi)"
check "codings: /coded/gzip-gzip/ says gzip, gzip" "gzip, gzip" "$(cenc $N/coded/gzip-gzip/text.txt)"
check "codings: /coded/gzip-gzip/text.txt decoded twice" "same" \
    "$(same --compressed $N/coded/gzip-gzip/text.txt)"
check "codings: /coded/deflate/text.txt (zlib) decoded" "same" \
    "$(same --compressed $N/coded/deflate/text.txt)"
check "codings: /coded/unknown/ says x-unknown" "x-unknown" "$(cenc $N/coded/unknown/text.txt)"
for f in truncated truncated-trailer corrupt badcrc; do
    check "codings: gzip -t fails /coded/gzip/$f.txt" "1" \
        "$(c $N/coded/gzip/$f.txt | gzip -t 2>/dev/null; echo $?)"
done
check "codings: /coded/gzip/trailing.txt is text.txt and garbage (gzip -dc warns, exit 2)" "same 2" \
    "$(c $N/coded/gzip/trailing.txt | gzip -dc 2>/dev/null | cmp -s - "$R/text.txt" && echo same) $(c $N/coded/gzip/trailing.txt | gzip -dc >/dev/null 2>&1; echo $?)"
check "codings: /coded/deflate/raw.txt is text.txt as raw deflate" "same" \
    "$(c $N/coded/deflate/raw.txt | /usr/bin/python3 -c 'import sys, zlib; sys.stdout.buffer.write(zlib.decompress(sys.stdin.buffer.read(), -15))' | cmp -s - "$R/text.txt" && echo same)"
check "codings: the gzip bomb is about 1 MiB on the wire" "1" \
    "$(c -o /dev/null -w '%{size_download}' $N/coded/gzip/bomb | awk '{ print ($1 > 1000000 && $1 < 1100000) }')"
check "codings: the gzip bomb expands (its first 100 MiB are zeros)" "$(head -c 104857600 /dev/zero | sha256sum)" \
    "$(c $N/coded/gzip/bomb | gzip -dc 2>/dev/null | head -c 104857600 | sha256sum)"
check "codings: zeros64m is 64 MiB of zeros, CRC and length right" "67108864 ok" \
    "$(c $N/coded/gzip/zeros64m | gzip -dc | wc -c) $(c $N/coded/gzip/zeros64m | gzip -t && echo ok)"
if [ "$AG_NGINX_ZSTD" = 1 ]; then
    check "codings: /coded/zstd/ says zstd" "zstd" "$(cenc $N/coded/zstd/text.txt)"
    check "codings: /coded/zstd/text.txt decoded" "same" "$(same --compressed $N/coded/zstd/text.txt)"
    check "codings: /coded/zstd/multi.txt (two frames) is text.txt by zstd -dc" "same" \
        "$(c $N/coded/zstd/multi.txt | zstd -dc | cmp -s - "$R/text.txt" && echo same)"
    check "codings: the zstd bomb is 1 GiB of zeros in 1024 frames" "1073741824" \
        "$(c $N/coded/zstd/bomb | zstd -dc | wc -c)"
    for f in truncated corrupt; do
        check "codings: zstd -t fails /coded/zstd/$f.txt" "yes" \
            "$(c $N/coded/zstd/$f.txt | zstd -qt 2>/dev/null || echo yes)"
    done
else
    echo "# zstd: $AG_NGINX_ZSTD_WHY"
fi

# ---- nginx on a Unix socket, and socat on an abstract one (--unix)
check "unix: nginx /hello over AG_NGINX_UNIX" "hello, world" \
    "$(c --unix-socket "$AG_NGINX_UNIX" http://localhost/hello)"
check "unix: two requests, one connection" "1 0" \
    "$(c --unix-socket "$AG_NGINX_UNIX" -o /dev/null -o /dev/null -w '%{num_connects} ' \
        http://localhost/hello http://localhost/1k | sed 's/ $//')"
check "unix: nginx /hello over socat's abstract socket" "hello, world" \
    "$(c --abstract-unix-socket "$AG_NGINX_ABSTRACT" http://localhost/hello)"
# curl 7.88 never reuses a connection to an abstract socket ("still name resolving"): two
# requests on one connection, by hand.
check "unix: the abstract socket keeps the connection alive" "2" \
    "$(/usr/bin/python3 -c '
import os, socket
s = socket.socket(socket.AF_UNIX)
s.connect("\0" + os.environ["AG_NGINX_ABSTRACT"])
n = 0
for _ in range(2):
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got = b""
    while not got.endswith(b"hello, world\n"):
        got += s.recv(4096)
    n += 1
print(n)')"

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
fi

echo "1..$n"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
