#!/usr/bin/env python3
"""Fit a cheap stand-in for examples/tiny-posttrain: a Gaussian process of its accuracy over its
fifteen knobs, from the trials the Optuna arms ran on the real recipe (bench/results/
optuna_compare.json) and the scores the example's README records. It writes
bench/recipes/posttrain-surrogate/model.json, which that recipe's train.py evaluates in a few
milliseconds, so a change to the search can be tried on fifty seeds in minutes before it is
measured on the real recipe. The surrogate is smoother than the real landscape; its figures
guide, the real recipe's decide.

    bench/.venv-optuna/bin/python bench/fit_surrogate.py     # numpy comes with Optuna's venv
"""
import json
import math
import os
import sys

import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.join(BENCH, "recipes", "posttrain-surrogate")
sys.path.insert(0, RECIPE)
from surrogate import encode, predict  # noqa: E402  (the recipe's own encoding)
SPACE = {
    "lr": ["log", 1e-4, 1e-2], "schedule": ["choice", "constant", "cosine", "linear"], "warmup": ["lin", 0, 200],
    "steps": ["lin", 200, 2500], "batch_size": ["lin", 8, 64], "weight_decay": ["lin", 0.0, 0.1],
    "mix_rev": ["lin", 0.2, 0.8], "min_len": ["lin", 3, 5], "max_len": ["lin", 6, 10],
    "curriculum": ["choice", "none", "short_first"], "loss_on": ["choice", "all", "answer"],
    "rl_fraction": ["lin", 0.0, 0.5], "group_size": ["choice", 2, 4, 8], "kl_coef": ["log", 0.001, 0.5],
    "temperature": ["lin", 0.3, 1.5],
}
# The starting recipe and the two recipes the example's README scores (mean of its seeds).
START = {"lr": 0.0015, "schedule": "constant", "warmup": 0, "steps": 800, "batch_size": 24, "weight_decay": 0.0,
         "mix_rev": 0.5, "min_len": 5, "max_len": 8, "curriculum": "none", "loss_on": "all", "rl_fraction": 0.0,
         "group_size": 4, "kl_coef": 0.05, "temperature": 1.0}
KNOWN = [
    (START, 0.109),
    (dict(START, lr=0.003, steps=1200, batch_size=48, schedule="cosine", warmup=50, loss_on="answer"), 0.898),
    (dict(START, lr=0.002, steps=2000, batch_size=64, schedule="cosine", loss_on="answer"), 0.995),
]
PRIOR_MEAN = 0.05  # most of the box scores near zero


def kernel(a, b, lengths):
    return np.exp(-0.5 * (((a[:, None, :] - b[None, :, :]) / lengths) ** 2).sum(-1))


def main():
    results = json.load(open(os.path.join(BENCH, "results", "optuna_compare.json")))["tiny-posttrain"]["arms"]
    # One row per distinct recipe: Optuna's arms share their first draws under one seed.
    rows = {json.dumps(t["values"], sort_keys=True): (t["values"], t["value"])
            for runs in results.values() for run in runs for t in run if "values" in t and t["value"] is not None}
    data = list(rows.values()) + KNOWN
    x = np.array([encode(SPACE, v) for v, _ in data])
    y = np.array([s for _, s in data]) - PRIOR_MEAN

    def evidence(log_lengths, amp, noise):
        k = amp * kernel(x, x, np.exp(log_lengths)) + noise * np.eye(len(x))
        try:
            chol = np.linalg.cholesky(k)
        except np.linalg.LinAlgError:
            return -math.inf
        alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
        return -0.5 * y @ alpha - np.log(np.diag(chol)).sum()

    # Coordinate search on the log evidence: deterministic, and enough for a stand-in. The noise
    # is kept at or above the run-to-run spread of the real recipe's seeds.
    log_lengths, amp, noise = np.full(x.shape[1], math.log(0.5)), 0.1, 0.003
    best = evidence(log_lengths, amp, noise)
    for _ in range(6):
        for j in range(len(log_lengths)):
            for step in (1.0, -1.0, 0.5, -0.5):
                trial = log_lengths.copy()
                trial[j] += step
                value = evidence(trial, amp, noise)
                if value > best:
                    best, log_lengths = value, trial
        for a in (amp * 2, amp / 2):
            value = evidence(log_lengths, a, noise)
            if value > best:
                best, amp = value, a
        for n in (noise * 2, max(noise / 2, 0.0003)):
            value = evidence(log_lengths, amp, n)
            if value > best:
                best, noise = value, n
    lengths = np.exp(log_lengths)
    alpha = np.linalg.solve(amp * kernel(x, x, lengths) + noise * np.eye(len(x)), y)
    model = {"space": SPACE, "points": x.tolist(), "weights": alpha.tolist(), "lengths": lengths.tolist(),
             "amplitude": amp, "prior_mean": PRIOR_MEAN}
    out = os.path.join(RECIPE, "model.json")
    with open(out, "w") as f:
        json.dump(model, f)
    # Checked through the recipe's own prediction, the one its runs use.
    rmse = math.sqrt(sum((predict(model, v) - s) ** 2 for v, s in data) / len(data))
    print(f"{len(x)} recipes, fit RMSE {rmse:.3f}, written to {os.path.relpath(out)}", file=sys.stderr)


if __name__ == "__main__":
    main()
