#!/usr/bin/env python3
"""Harness overhead per trial: a study whose run and evaluate commands do nothing.

Builds postdoc in release mode, runs studies of N trials (default 100 and 500) on a recipe whose
commands return at once, and reports for each the median and p90 overhead per trial (the time
from one proposal to the next, minus the commands' own measured time) and the peak memory of
the `postdoc run` process, side by side so that growth with N shows.

    python3 bench/overhead.py [--trials 100 500] [--store URL]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = """[study]
name = "overhead"
objective = {{ metric = "score", direction = "maximize" }}
budget = {{ max_trials = {n} }}
parallel = 1

[run]
command = "true"
budget = {{ seconds = 10 }}

[evaluate]
command = "echo '{{\\"score\\": 1}}'"
budget = {{ seconds = 10 }}
protected = ["eval.txt"]

[noise]
baseline_repeats = 2
confirm_seeds = 0

[[specialist]]
name = "knob"
knobs_file = "recipe.toml"
knobs = {{ x = {{ float = [0.0, 1.0] }} }}
"""


def sh(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, shell=True, check=True, stdout=subprocess.DEVNULL)


def study(binary, n, store):
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "postdoc.toml"), "w") as f:
            f.write(MANIFEST.format(n=n))
        with open(os.path.join(d, "eval.txt"), "w") as f:
            f.write("the evaluator's data\n")
        with open(os.path.join(d, "recipe.toml"), "w") as f:
            f.write("x = 0.5\n")
        sh("git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm recipe", d)
        args = [binary, "-C", d]
        if store:
            args += ["--store", store]
        start = time.monotonic()
        child = subprocess.Popen(args + ["run"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the build's
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        if child.returncode != 0:
            sys.exit(f"postdoc run failed with {child.returncode}")
        peak_kib = usage.ru_maxrss
        out = subprocess.run(args + ["export", "--format", "jsonl"], check=True, capture_output=True, text=True).stdout
        trials = [json.loads(line) for line in out.splitlines()]
        candidates = sorted((t for t in trials if t["specialist"] != "baseline"), key=lambda t: t["id"])
        overheads = []
        for a, b in zip(candidates, candidates[1:]):
            cycle_ms = b["created_ms"] - a["created_ms"]
            overheads.append(cycle_ms - 1000.0 * a["compute_seconds"])
        return {
            "trials": len(candidates),
            "wall_s": wall,
            "median_ms": statistics.median(overheads),
            "p90_ms": statistics.quantiles(overheads, n=10)[-1],
            "first_100_median_ms": statistics.median(overheads[:100]),
            "last_100_median_ms": statistics.median(overheads[-100:]),
            "peak_rss_mib": peak_kib / 1024.0,
        }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, nargs="+", default=[100, 500])
    p.add_argument("--store", help="a postgres:// URL (default: the recipe's SQLite file)")
    a = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "postdoc"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "postdoc")
    print(f"{'trials':>6} {'wall s':>8} {'median ms':>10} {'p90 ms':>8} {'first100':>9} {'last100':>8} {'peak MiB':>9}")
    for n in a.trials:
        r = study(binary, n, a.store)
        print(f"{r['trials']:>6} {r['wall_s']:>8.1f} {r['median_ms']:>10.1f} {r['p90_ms']:>8.1f} "
              f"{r['first_100_median_ms']:>9.1f} {r['last_100_median_ms']:>8.1f} {r['peak_rss_mib']:>9.1f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
