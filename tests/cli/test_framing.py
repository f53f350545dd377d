#!/usr/bin/python3
"""test_framing.py: the asyncget command on responses the library now reads by RFC 9110's and
RFC 9112's lenient rules (TAP): status codes outside 100-599 (delivered as sent: --fail fails on
them as on a 5xx, -w %{http_code} and the HAR show the number), a 3xx that is not followed (a
300, an unknown 3xx, a redirect whose Location is empty) under -L --max-redirs 0, and a Location
with spaces followed once escaped.

Usage (under tests/servers/with-servers --hostile):
  test_framing.py ASYNCGET [CASE...]

The responses are hostile.py's /frm/ cases. Limits: the only time limit catches a command that
hangs. Environment: with-servers' AG_HOSTILE_PORT; AG_TEST_WRAPPER (valgrind) is put in front of
every run of the command. Python: /usr/bin/python3 with its standard library only.
"""

import json
import os
import subprocess
import sys
import tempfile

import tapcases  # the TAP runner, beside this script

AG = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
WRAPPER = os.environ.get("AG_TEST_WRAPPER", "").split()
HANG = 90.0 * (10.0 if WRAPPER else 1.0)
HO = "http://127.0.0.1:%s" % os.environ.get("AG_HOSTILE_PORT", "0")


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def run(*args):
    """The command's exit status, stdout and stderr."""
    p = subprocess.run(WRAPPER + [AG] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=HANG)
    return p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1")


def framing_cli_fail_on_status_outside_range():
    """--fail fails (22) on a code outside 100-599 as on a 5xx; -w shows it as sent; a 599
    fails as any 5xx; "000" is a weird reply (8) with no code."""
    for code, want in (("600", 22), ("999", 22), ("099", 22), ("042", 22), ("599", 22),
                       ("000", 8)):
        rc, out, err = run("-s", "-o", os.devnull, "--fail", "-w", "%{http_code}",
                           HO + "/frm/status?code=" + code)
        check(rc == want and out == code, "code %s: exit %d (want %d), -w %r, %s"
              % (code, rc, want, out, err.strip()))
        # Without --fail the response is the answer.
        rc, out, err = run("-s", "-w", "%{http_code}", HO + "/frm/status?code=" + code)
        check(rc == (0 if want == 22 else want) and out == ("ok" + code if want == 22 else code),
              "code %s without --fail: exit %d, %r, %s" % (code, rc, out, err.strip()))


def framing_cli_har_status_outside_range():
    """The HAR gives the number as sent."""
    with tempfile.TemporaryDirectory() as d:
        har = os.path.join(d, "h.har")
        rc, out, err = run("-s", "-o", os.devnull, "--har", har, HO + "/frm/status?code=042",
                           HO + "/frm/status?code=999", HO + "/frm/lf")
        check(rc == 0, "exit %d: %s" % (rc, err.strip()))
        with open(har) as f:
            doc = json.load(f)
        got = sorted(e["response"]["status"] for e in doc["log"]["entries"])
        check(got == [42, 200, 999], "HAR statuses %r" % got)


def framing_cli_max_redirs_zero_only_followed_codes():
    """-L --max-redirs 0 errs (47) only where a redirect would have been followed: not on a
    300, an unknown 3xx, or a 302 whose Location is empty or white space."""
    for path, want_rc, want_code in (("/frm/300", 0, "300"), ("/frm/399", 0, "399"),
                                     ("/frm/loc-empty", 0, "302"), ("/frm/loc-blank", 0, "302"),
                                     ("/frm/loc-space", 47, "302")):
        rc, out, err = run("-s", "-L", "--max-redirs", "0", "-o", os.devnull, "-w",
                           "%{http_code}", HO + path)
        check(rc == want_rc and out == want_code, "%s: exit %d (want %d), -w %r, %s"
              % (path, rc, want_rc, out, err.strip()))


def framing_cli_location_escaped_followed():
    """A Location with spaces and raw UTF-8 is followed, escaped; one with a tab fails."""
    rc, out, err = run("-s", "-L", HO + "/frm/loc-8bit")
    check(rc == 0 and '"target": "/frm/echo?q=caf%C3%A9%FF"' in out,
          "exit %d, %r, %s" % (rc, out[:300], err.strip()))
    rc, out, err = run("-sS", "-L", HO + "/frm/loc-tab")
    check(rc != 0 and "redirect" in err, "a tab: exit %d, %s" % (rc, err.strip()))


CASES = [
    framing_cli_fail_on_status_outside_range,
    framing_cli_har_status_outside_range,
    framing_cli_max_redirs_zero_only_followed_codes,
    framing_cli_location_escaped_followed,
]

KNOWN = {}


def main():
    if AG is None:
        sys.stderr.write("usage: test_framing.py ASYNCGET [CASE...]\n")
        return 2
    return tapcases.run(CASES, KNOWN, Skip, Fail, "test_framing.py", sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
