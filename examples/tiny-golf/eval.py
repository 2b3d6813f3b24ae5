"""The evaluator: bits per byte of the trained model on the held-out text valid/valid.txt. Runs
from postdoc's pristine copy of the protected files, with its own forward pass for the model
family described by $POSTDOC_OUT/config.json, and dequantises the stored weights itself."""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import json
import math

import numpy as np

ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))
INDEX = {c: i for i, c in enumerate(ALPHABET)}
CHARS = 60_000  # the first characters of valid.txt that are scored


def main():
    out = os.environ["POSTDOC_OUT"]
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    with np.load(os.path.join(out, "model.npz")) as f:
        stored = {n: f[n] for n in f.files}
    p = {}
    for n, v in stored.items():
        if n.endswith(".scale"):
            continue
        scale = stored.get(n + ".scale")
        p[n] = v.astype(np.float32) * (float(scale) if scale is not None else 1.0)
    with open("valid/valid.txt") as f:
        data = np.array([INDEX.get(c, INDEX[" "]) for c in f.read()[:CHARS]], np.int64)
    context, layers = int(cfg["context"]), int(cfg["layers"])
    total = 0.0
    for start in range(0, len(data), 2048):
        pos = np.arange(start, min(start + 2048, len(data)))
        idx = pos[:, None] - context + np.arange(context)[None, :]
        x = np.where(idx >= 0, data[np.maximum(idx, 0)], INDEX["\n"])
        h = p["emb"][x].reshape(len(x), -1)
        for i in range(layers):
            h = np.maximum(h @ p[f"w{i}"] + p[f"b{i}"], 0.0)
        z = h @ p["wo"] + p["bo"]
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        total -= logp[np.arange(len(pos)), data[pos]].sum()
    print(json.dumps({"val_bpb": float(total) / len(data) / math.log(2)}))


if __name__ == "__main__":
    main()
