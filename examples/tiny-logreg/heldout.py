"""The evaluator's copy of the data generator (protected): held-out rows come from here.
linear model reaches about 0.9 accuracy and a poorly trained one far less."""
import math
import random

DIM = 8


def make(n, seed):
    rng = random.Random(seed)
    # The class means and feature scales are fixed: the same problem for training and evaluation.
    shape = random.Random(7)
    mean = [shape.uniform(-1.0, 1.0) for _ in range(DIM)]
    scale = [shape.choice([0.1, 1.0, 10.0]) for _ in range(DIM)]
    rows = []
    for _ in range(n):
        label = rng.random() < 0.5
        sign = 1.0 if label else -1.0
        x = [scale[d] * (sign * mean[d] * 0.6 + rng.gauss(0.0, 1.0)) for d in range(DIM)]
        rows.append((x, 1 if label else 0))
    return rows


def sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
