"""The evaluator: scores the trained model on held-out data the recipe never sees.
It runs from postdoc's pristine copy of the protected files, never from the trial's tree."""
import json
import math
import os

from heldout import make, sigmoid

with open(os.path.join(os.environ["POSTDOC_OUT"], "model.json")) as f:
    model = json.load(f)
w, b, mu, sd = model["w"], model["b"], model["mu"], model["sd"]
rows = make(2000, seed=424242)
correct, loss = 0, 0.0
for x, y in rows:
    z = sum(wi * (xi - m) / s for wi, xi, m, s in zip(w, x, mu, sd)) + b
    p = sigmoid(max(-60.0, min(60.0, z)))
    correct += int((p >= 0.5) == (y == 1))
    loss -= y * math.log(max(p, 1e-12)) + (1 - y) * math.log(max(1 - p, 1e-12))
print(json.dumps({"accuracy": correct / len(rows), "log_loss": loss / len(rows)}))
