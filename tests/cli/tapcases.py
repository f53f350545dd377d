"""tapcases: the TAP runner of the command's Python test scripts (cli_test.py, test_attack.py).

Each case is a function that returns when it passes and raises the script's Skip or Fail
exception. A case named in `known` fails for a known fault: it reports TAP TODO with the fault
named while the fault shows, and a note once it passes (then it leaves the table)."""
import sys
import time
import traceback


def run(cases, known, skip_exc, fail_exc, script, argv):
    """Run the cases argv names (all when none) and print TAP; returns the exit status."""
    only = set(argv)
    todo = [c for c in cases if not only or c.__name__ in only]
    print("1..%d" % len(todo), flush=True)
    failed = 0
    for i, fn in enumerate(todo, 1):
        name = fn.__name__
        t0 = time.monotonic()
        try:
            fn()
        except skip_exc as e:
            print("ok %d - %s # SKIP %s" % (i, name, e), flush=True)
            continue
        except fail_exc as e:
            lines = str(e).splitlines() or [""]
            if name in known:
                print("not ok %d - %s # TODO known fault: %s" % (i, name, known[name]))
                print("# " + lines[0][:2000], flush=True)
                continue
            failed += 1
            print("not ok %d - %s" % (i, name))
            for line in lines:
                print("# " + line[:2000])
            sys.stdout.flush()
            continue
        except Exception:  # a bug of the case itself, or output it did not expect
            failed += 1
            print("not ok %d - %s" % (i, name))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
            sys.stdout.flush()
            continue
        print("ok %d - %s" % (i, name))
        if name in known:
            print("# %s passes: its fault is gone (then remove it from KNOWN in %s), or did "
                  "not show this time" % (name, script))
        print("# %s: %.2f s" % (name, time.monotonic() - t0), flush=True)
    return 0 if failed == 0 else 1
