"""Hartmann-6 (minimise over [0, 1]^6; global minimum -3.32237) through the run/evaluate
contract."""
import math
import os
import tomllib

A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
ALPHA = [1.0, 1.2, 3.0, 3.2]

with open("recipe.toml", "rb") as f:
    k = tomllib.load(f)
x = [k[f"x{i}"] for i in range(1, 7)]
value = -sum(a * math.exp(-sum(A[i][j] * (x[j] - P[i][j] / 1e4) ** 2 for j in range(6))) for i, a in enumerate(ALPHA))
with open(os.path.join(os.environ["POSTDOC_OUT"], "value"), "w") as f:
    f.write(repr(value))
