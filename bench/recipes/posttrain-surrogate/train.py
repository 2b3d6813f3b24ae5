"""tiny-posttrain's accuracy from its knobs, as the Gaussian process bench/fit_surrogate.py
fitted to measured trials, plus the real recipe's seed-to-seed noise."""
import json
import math
import os
import random
import tomllib

m = json.load(open("model.json"))
with open("recipe.toml", "rb") as f:
    knobs = tomllib.load(f)
x = []
for name, (kind, *arg) in m["space"].items():
    v = knobs[name]
    if kind == "log":
        x.append((math.log(v) - math.log(arg[0])) / (math.log(arg[1]) - math.log(arg[0])))
    elif kind == "lin":
        x.append((v - arg[0]) / (arg[1] - arg[0]))
    else:
        x.extend(1.0 if v == o else 0.0 for o in arg)
mean = m["prior_mean"] + m["amplitude"] * sum(
    w * math.exp(-0.5 * sum(((a - b) / l) ** 2 for a, b, l in zip(x, p, m["lengths"])))
    for w, p in zip(m["weights"], m["points"]))
rng = random.Random(int(os.environ.get("POSTDOC_SEED", "0")) * 7919 + 17)
accuracy = min(1.0, max(0.0, mean + rng.gauss(0, 0.015)))
with open(os.path.join(os.environ["POSTDOC_OUT"], "accuracy"), "w") as f:
    f.write(repr(accuracy))
