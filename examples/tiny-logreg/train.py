"""Trains a logistic regression by minibatch SGD with the knobs in recipe.toml."""
import json
import math
import os
import random
import tomllib

from data import DIM, make, sigmoid

with open("recipe.toml", "rb") as f:
    knobs = tomllib.load(f)

seed = int(os.environ.get("POSTDOC_SEED", "0"))
out = os.environ.get("POSTDOC_OUT", "out")
metrics_path = os.environ.get("POSTDOC_METRICS")
os.makedirs(out, exist_ok=True)

rng = random.Random(seed)
train = make(600, seed=1000)  # the recipe's own training data; the evaluator holds its own
mu = [sum(x[d] for x, _ in train) / len(train) for d in range(DIM)]
sd = [max(1e-9, math.sqrt(sum((x[d] - mu[d]) ** 2 for x, _ in train) / len(train))) for d in range(DIM)]
standardize = knobs.get("standardize", False)
if not standardize:
    mu, sd = [0.0] * DIM, [1.0] * DIM

def features(x):
    return [(x[d] - mu[d]) / sd[d] for d in range(DIM)]

data = [(features(x), y) for x, y in train]
w = [rng.gauss(0.0, 0.01) for _ in range(DIM)]
b = 0.0
lr, l2 = knobs["lr"], knobs["l2"]
batch = int(knobs["batch_size"])
for epoch in range(int(knobs["epochs"])):
    rng.shuffle(data)
    loss = 0.0
    for start in range(0, len(data), batch):
        chunk = data[start:start + batch]
        gw, gb = [0.0] * DIM, 0.0
        for x, y in chunk:
            z = max(-60.0, min(60.0, sum(wi * xi for wi, xi in zip(w, x)) + b))
            p = sigmoid(z)
            loss -= y * math.log(max(p, 1e-12)) + (1 - y) * math.log(max(1 - p, 1e-12))
            for d in range(DIM):
                gw[d] += (p - y) * x[d]
            gb += p - y
        for d in range(DIM):
            w[d] -= lr * (gw[d] / len(chunk) + l2 * w[d])
        b -= lr * gb / len(chunk)
    if metrics_path:
        with open(metrics_path, "a") as m:
            m.write(json.dumps({"step": epoch, "train_loss": loss / len(data)}) + "\n")

with open(os.path.join(out, "model.json"), "w") as f:
    json.dump({"w": w, "b": b, "mu": mu, "sd": sd}, f)
print(f"trained {knobs['epochs']} epochs, final train loss {loss / len(data):.4f}")
