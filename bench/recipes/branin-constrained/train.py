"""Branin with a region where the run crashes (x1 + x2 > 12, about a third of the box): the
search must learn where not to go. One of the three global minima, (9.42478, 2.475), lies
inside the allowed region."""
import math
import os
import tomllib

with open("recipe.toml", "rb") as f:
    k = tomllib.load(f)
x1, x2 = k["x1"], k["x2"]
if x1 + x2 > 12:
    raise SystemExit(f"diverged: x1 + x2 = {x1 + x2:.2f} is over 12")
value = (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10
with open(os.path.join(os.environ["POSTDOC_OUT"], "value"), "w") as f:
    f.write(repr(value))
