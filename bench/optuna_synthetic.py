#!/usr/bin/env python3
"""postdoc's search and Optuna's TPE on Branin and Hartmann-6, in process, over many seeds.

The side-by-side benchmark (optuna_compare.py) runs every trial as real processes through the
run/evaluate contract, a few seconds a study; this one calls both searches directly, so that
hundreds of seeds take seconds and a change to the search can be judged on medians that do not
move with the seeds drawn. postdoc's side is `cargo run --release -p postdoc-search --example
synthetic`, which starts each study from the recipe's values as the bench recipes do; Optuna's
is its default `TPESampler(seed)` over the same boxes.

    python3 bench/optuna_synthetic.py --seeds 300 --trials 40

Optuna is installed into bench/.venv-optuna on first use, as optuna_compare.py does.
"""
import argparse
import math
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from optuna_compare import ROOT, ensure_optuna  # noqa: E402


def branin(x1, x2):
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(x):
    return -sum(a * math.exp(-sum(A[i][j] * (x[j] - P[i][j] / 1e4) ** 2 for j in range(6))) for i, a in enumerate(ALPHA))


def quartiles(xs):
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[1], q[0], q[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=300)
    ap.add_argument("--trials", type=int, default=40)
    a = ap.parse_args()
    ensure_optuna(__file__)
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objectives = {
        "branin": lambda t: branin(t.suggest_float("x1", -5, 10), t.suggest_float("x2", 0, 15)),
        "hartmann6": lambda t: hartmann6([t.suggest_float(f"x{i}", 0, 1) for i in range(1, 7)]),
    }
    for name, objective in objectives.items():
        bests = []
        for seed in range(a.seeds):
            study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
            study.optimize(objective, n_trials=a.trials)
            bests.append(study.best_value)
        median, lo, hi = quartiles(bests)
        print(f"optuna-tpe {name:<10} {a.seeds} seeds, {a.trials} trials: median best {median:.4f} "
              f"(quartiles {lo:.4f}, {hi:.4f}), mean {statistics.mean(bests):.4f}", flush=True)
    postdoc = subprocess.run(["cargo", "run", "-q", "--release", "-p", "postdoc-search", "--example", "synthetic", "--",
                              str(a.seeds), str(a.trials)], cwd=ROOT, check=True, capture_output=True, text=True)
    for line in postdoc.stdout.splitlines():
        print(f"postdoc    {line}")


if __name__ == "__main__":
    main()
