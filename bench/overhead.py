#!/usr/bin/env python3
"""Harness overhead per trial: a study whose run and evaluate commands do nothing.

Builds postdoc in release mode, runs studies of N trials (default 100 and 500) on a recipe whose
commands return at once, and reports for each the median and p90 overhead per trial (the time
from one proposal to the next, minus the commands' own measured time) and the memory of the
`postdoc run` process (peak, and sampled along the run), side by side so that growth with N
shows. Beside each figure, measured in the same run, the "floor": what starting and reaping the
processes a trial needs (eight git commands, two shells) costs on this machine at that moment,
and the ratio of the overhead to it, which stays comparable when the machine is noisy.

Studies run one after another are measured apart: before each, the script waits for the file
churn of the one before to age out of the filesystem's recent-deletion window (see
BENCHMARKS.md), so a study's figure is its own and not its predecessor's.

    python3 bench/overhead.py [--trials 100 500] [--store URL] [--settle SECONDS]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
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


class rss_sampler(threading.Thread):
    """Samples a process's resident memory every 0.2 s while it runs."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples = pid, []
        self.start()

    def run(self):
        while True:
            try:
                with open(f"/proc/{self.pid}/statm") as f:
                    self.samples.append(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20)
            except (OSError, ValueError, IndexError):
                return
            time.sleep(0.2)

    def quarters(self):
        s = [x for x in self.samples if x > 0]
        return [round(s[min(len(s) - 1, int(len(s) * q))], 1) for q in (0.25, 0.5, 0.75, 1.0)] if s else []


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
        rss = rss_sampler(child.pid)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the build's
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        if child.returncode != 0:
            sys.exit(f"postdoc run failed with {child.returncode}")
        peak_kib = usage.ru_maxrss
        rss.join()
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
            # Resident memory sampled along the study: flat means no per-trial growth.
            "rss_mib_at_quarters": rss.quarters(),
        }


def process_floor(repeats=60):
    """Milliseconds to start and reap the processes one trial needs (eight git commands, two
    shells), measured in the same run: the share of the overhead the harness cannot remove."""
    git = ["git", "-c", "maintenance.auto=false", "--version"]
    samples = []
    for _ in range(repeats):
        t = time.monotonic()
        for _ in range(8):
            subprocess.run(git, stdout=subprocess.DEVNULL, check=True)
        for _ in range(2):
            subprocess.run(["/bin/sh", "-c", "true"], check=True)
        samples.append(1000.0 * (time.monotonic() - t))
    return statistics.median(samples)


def settle_default():
    """ext4 without a journal will not reuse an inode freed less than dirty_expire ago and scans
    past every such inode on each file creation, so one study's lock files slow the next one's."""
    try:
        with open("/proc/sys/vm/dirty_expire_centisecs") as f:
            return int(f.read()) / 100.0 + 1.0
    except (OSError, ValueError):
        return 31.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, nargs="+", default=[100, 500])
    p.add_argument("--store", help="a postgres:// URL (default: the recipe's SQLite file)")
    p.add_argument("--settle", type=float, default=settle_default(),
                   help="seconds to wait before each study (default: the kernel's dirty_expire interval)")
    a = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "postdoc"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "postdoc")
    print(f"{'trials':>6} {'wall s':>8} {'median ms':>10} {'p90 ms':>8} {'first100':>9} {'last100':>8} "
          f"{'floor ms':>9} {'ratio':>6} {'peak MiB':>9}  RSS MiB at 1/4, 1/2, 3/4, end")
    for i, n in enumerate(a.trials):
        if i > 0:
            time.sleep(a.settle)
        floor = process_floor()
        r = study(binary, n, a.store)
        print(f"{r['trials']:>6} {r['wall_s']:>8.1f} {r['median_ms']:>10.1f} {r['p90_ms']:>8.1f} "
              f"{r['first_100_median_ms']:>9.1f} {r['last_100_median_ms']:>8.1f} {floor:>9.1f} {r['median_ms'] / floor:>6.2f} "
              f"{r['peak_rss_mib']:>9.1f}  {r['rss_mib_at_quarters']}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
