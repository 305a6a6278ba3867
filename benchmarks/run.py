"""Run every ``benchmarks/bench_*.py`` in a fresh interpreter and print one table of their verdicts.

Exit status 1 when a benchmark misses its target or fails to run.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT = re.compile(r"^RESULT (?P<name>\S+) ratio=(?P<ratio>\S+) target(?P<target>\S+) (?P<verdict>PASS|FAIL)$")


def main() -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    rows = []
    for script in scripts:
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        sys.stdout.write(completed.stdout)
        found = [m for m in map(RESULT.match, completed.stdout.splitlines()) if m]
        if completed.returncode != 0 or not found:
            sys.stderr.write(completed.stderr[-4000:])
            rows.append((script.name, "-", "-", "ERROR", elapsed))
        for match in found:
            rows.append((match["name"], match["ratio"], match["target"], match["verdict"], elapsed))
    header = ("benchmark", "ratio", "target", "verdict", "seconds")
    widths = [max(len(str(row[i])) if i != 4 else 7 for row in [header, *rows]) for i in range(5)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)))
    print("  ".join("-" * w for w in widths))
    for name, ratio, target, verdict, seconds in rows:
        print("  ".join([name.ljust(widths[0]), ratio.ljust(widths[1]), target.ljust(widths[2]),
                         verdict.ljust(widths[3]), f"{seconds:7.1f}"]))  # fmt: skip
    if not rows:
        print("(no benchmarks yet: add benchmarks/bench_<name>.py)")
    return 0 if all(row[3] == "PASS" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
