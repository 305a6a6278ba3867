"""Run ``benchmarks/bench_*.py`` in fresh interpreters and print one table of their verdicts.

``run.py`` runs them all; ``run.py drift fleet`` (``make bench NAME=drift``) runs the named ones. Each script's
output is shown as it goes, so a long step's progress lines appear while it runs. Exit status 1 when a
benchmark misses its target or fails to run.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT = re.compile(r"^RESULT (?P<name>\S+) ratio=(?P<ratio>\S+) target(?P<target>\S+) (?P<verdict>PASS|FAIL)$")


def chosen_scripts(names: list[str]) -> list[Path]:
    """The benchmark scripts named (``drift`` or ``bench_drift.py``), or all of them."""
    every = sorted(HERE.glob("bench_*.py"))
    if not names:
        return every
    by_name = {script.stem.removeprefix("bench_"): script for script in every}
    wanted = [name.removeprefix("bench_").removesuffix(".py") for name in names]
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise SystemExit(f"No benchmark named {', '.join(unknown)}; the benchmarks are: {', '.join(by_name)}.")
    return [by_name[name] for name in wanted]


def run_streaming(script: Path) -> tuple[int, str, str]:
    """Run ``script``, echoing its output line by line; its exit status, output and the tail of its errors."""
    # Errors go to a file, not a second pipe: a script that warns a lot would block on a full pipe nobody reads.
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            [sys.executable, "-u", str(script)], stdout=subprocess.PIPE, stderr=errors, text=True
        )
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
        returncode = process.wait()
        errors.seek(0)
        return returncode, "".join(lines), errors.read()[-4000:]


def main(names: list[str]) -> int:
    scripts = chosen_scripts(names)
    rows = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        started = time.perf_counter()
        returncode, output, errors = run_streaming(script)
        elapsed = time.perf_counter() - started
        found = [m for m in map(RESULT.match, output.splitlines()) if m]
        # A script exits 1 when one of its targets is missed (its RESULT lines say which); anything else is an error.
        if returncode not in (0, 1) or not found:
            sys.stderr.write(errors)
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
    sys.exit(main(sys.argv[1:]))
