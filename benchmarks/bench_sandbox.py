"""Measure what the sandbox adds to each command, side by side with a plain subprocess in one run.

    python benchmarks/bench_sandbox.py [--runs 200] [--json PATH] [--hostile]

Each round runs `true` once per way, in turn, so the machine's load affects all ways alike. The
report gives the median seconds per command and its ratio to the plain subprocess. --hostile also
runs tests/test_sandbox_hostile.py and prints its table of contained and escaped cases.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.sandbox import BwrapSandbox, Sandbox  # noqa: E402
from agent.sandbox.bwrap import probe  # noqa: E402

DEFAULT_RUNS = 200
WARMUP_RUNS = 5
HOSTILE_TESTS = ROOT / "tests" / "test_sandbox_hostile.py"


def measure(runs: int) -> dict[str, float]:
    """Return the median seconds of one `true` command for each way of running it."""
    with tempfile.TemporaryDirectory() as folder:
        sandboxes = _sandboxes(Path(folder))
        ways = {"subprocess": lambda: subprocess.run(["/bin/sh", "-c", "true"], cwd=folder, stdin=subprocess.DEVNULL)}
        ways.update({name: (lambda box=box: box.run("true")) for name, box in sandboxes.items()})
        try:
            return {name: statistics.median(values) for name, values in _sample(ways, runs).items()}
        finally:
            for box in sandboxes.values():
                box.close()


def _sandboxes(folder: Path) -> dict[str, Sandbox]:
    sandboxes = {"sandbox none": Sandbox(folder)}
    works, reason = probe()
    if works:
        sandboxes["sandbox bwrap"] = BwrapSandbox(folder)
    else:
        print(f"bwrap skipped: {reason}", file=sys.stderr)
    return sandboxes


def _sample(ways: dict, runs: int) -> dict[str, list[float]]:
    for run in ways.values():
        for _ in range(WARMUP_RUNS):
            run()
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(runs):
        for name, run in ways.items():
            started = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - started)
    return samples


def hostile_table() -> list[dict[str, str]]:
    """Run the hostile-case tests and return one row per case: contained, escaped or skipped."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.xml"
        subprocess.run(
            [sys.executable, "-m", "pytest", str(HOSTILE_TESTS), "-q", "-p", "no:cacheprovider", "--junitxml", str(report)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        cases = ElementTree.parse(report).getroot().iter("testcase")
        return [{"case": case.get("name"), "result": _outcome(case)} for case in cases]


def _outcome(case: ElementTree.Element) -> str:
    if case.find("skipped") is not None:
        return "skipped"
    if case.find("failure") is not None or case.find("error") is not None:
        return "escaped"
    return "contained"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="commands per way (default 200)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--hostile", action="store_true", help="also run the hostile-case tests and print their table")
    arguments = parser.parse_args()

    medians = measure(arguments.runs)
    base = medians["subprocess"]
    print(f"median seconds per `true` command, {arguments.runs} runs each, interleaved:")
    for name, seconds in medians.items():
        print(f"  {name:<14} {seconds * 1000:8.2f} ms   {seconds / base:6.1f}x subprocess")
    ratios = {name: seconds / base for name, seconds in medians.items()}
    results = {"runs": arguments.runs, "median_seconds": medians, "ratio_to_subprocess": ratios}

    if arguments.hostile:
        rows = hostile_table()
        print("\nhostile case                                         result")
        for row in rows:
            print(f"  {row['case']:<50} {row['result']}")
        outcomes = [row["result"] for row in rows]
        print("  " + ", ".join(f"{outcomes.count(name)} {name}" for name in ("contained", "escaped", "skipped")))
        results["hostile"] = rows

    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
