"""tiny-posttrain's accuracy from its knobs, as the Gaussian process bench/fit_surrogate.py
fitted to measured trials, plus the real recipe's seed-to-seed noise."""
import json
import os
import random
import tomllib

from surrogate import predict

with open("recipe.toml", "rb") as f:
    knobs = tomllib.load(f)
mean = predict(json.load(open("model.json")), knobs)
rng = random.Random(int(os.environ.get("POSTDOC_SEED", "0")) * 7919 + 17)
accuracy = min(1.0, max(0.0, mean + rng.gauss(0, 0.015)))
with open(os.path.join(os.environ["POSTDOC_OUT"], "accuracy"), "w") as f:
    f.write(repr(accuracy))
