"""Branin (minimise; global minimum 0.397887) through the run/evaluate contract: the run reads
its point from recipe.toml and writes the value; the evaluator reports it."""
import math
import os
import tomllib

with open("recipe.toml", "rb") as f:
    k = tomllib.load(f)
x1, x2 = k["x1"], k["x2"]
value = (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10
with open(os.path.join(os.environ["POSTDOC_OUT"], "value"), "w") as f:
    f.write(repr(value))
