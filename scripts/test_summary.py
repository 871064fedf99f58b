#!/usr/bin/env python3
"""test_summary.py: one line "N passed, N failed, N skipped" for the meson test runs in the given
build folders. doctest binaries count their test cases (from doctest's own summary line); any
other test counts as one. A test that crashed or timed out counts as failed."""
import json, re, sys
from pathlib import Path

DOCTEST = re.compile(r"\[doctest\] test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped")

def main(dirs):
    passed = failed = skipped = 0
    for d in dirs:
        log = Path(d) / "meson-logs" / "testlog.json"
        if not log.exists():
            print(f"test_summary: no test log in {d}", file=sys.stderr)
            failed += 1
            continue
        for line in log.read_text().splitlines():
            t = json.loads(line)
            result, out = t.get("result"), t.get("stdout", "") or ""
            m = DOCTEST.search(out)
            if result == "SKIP":
                skipped += 1
            elif m and result in ("OK", "FAIL"):
                p, f = int(m.group(2)), int(m.group(3))
                passed += p
                failed += f if (f or result == "OK") else 1  # a FAIL with 0 failed cases still fails
            elif result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            else:
                failed += 1
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 else 1

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
