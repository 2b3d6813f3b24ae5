"""Trains a character language model from scratch on corpus/train.txt: the embeddings of the
last `context` characters, concatenated, through `layers` ReLU layers of `hidden` units. Knobs
come from recipe.toml. Writes to $POSTDOC_OUT only the artifact that is judged and capped:
the weights (stored as `dtype`, compressed), config.json and a compressed copy of this code.
Every 250 steps it appends its bits per byte on a held-out tail of the training text to
$POSTDOC_METRICS."""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # two trials share two cores

import json
import math
import time
import tomllib
import zipfile

import numpy as np

ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))
INDEX = {c: i for i, c in enumerate(ALPHABET)}
VOCAB = len(ALPHABET)
HOLDOUT = 20_000  # characters at the end of the training text, never trained on


def encode(text):
    return np.array([INDEX.get(c, INDEX[" "]) for c in text], np.int64)


def init(rng, k):
    dims = [k["context"] * k["embed"]] + [k["hidden"]] * k["layers"]
    p = {"emb": rng.normal(0, 0.5, (VOCAB, k["embed"])).astype(np.float32)}
    for i in range(k["layers"]):
        p[f"w{i}"] = rng.normal(0, math.sqrt(2 / dims[i]), (dims[i], dims[i + 1])).astype(np.float32)
        p[f"b{i}"] = np.zeros(dims[i + 1], np.float32)
    p["wo"] = rng.normal(0, math.sqrt(1 / dims[-1]), (dims[-1], VOCAB)).astype(np.float32)
    p["bo"] = np.zeros(VOCAB, np.float32)
    return p


def contexts(data, positions, context):
    idx = positions[:, None] - context + np.arange(context)[None, :]
    return np.where(idx >= 0, data[np.maximum(idx, 0)], INDEX["\n"])


def forward(p, x, layers):
    h = p["emb"][x].reshape(len(x), -1)
    acts = [h]
    for i in range(layers):
        h = np.maximum(h @ p[f"w{i}"] + p[f"b{i}"], 0.0)
        acts.append(h)
    return h @ p["wo"] + p["bo"], acts


def log_softmax(z):
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def grads(p, x, y, layers):
    logits, acts = forward(p, x, layers)
    logp = log_softmax(logits)
    loss = -logp[np.arange(len(y)), y].mean()
    d = np.exp(logp)
    d[np.arange(len(y)), y] -= 1
    d /= len(y)
    g = {"wo": acts[-1].T @ d, "bo": d.sum(0)}
    dh = d @ p["wo"].T
    for i in reversed(range(layers)):
        dh = dh * (acts[i + 1] > 0)
        g[f"w{i}"], g[f"b{i}"] = acts[i].T @ dh, dh.sum(0)
        dh = dh @ p[f"w{i}"].T
    g["emb"] = np.zeros_like(p["emb"])
    np.add.at(g["emb"], x, dh.reshape(len(x), x.shape[1], -1))
    return float(loss), g


def bits_per_byte(p, data, positions, k):
    total = 0.0
    for start in range(0, len(positions), 2048):
        pos = positions[start : start + 2048]
        logits, _ = forward(p, contexts(data, pos, k["context"]), k["layers"])
        total -= log_softmax(logits)[np.arange(len(pos)), data[pos]].sum()
    return float(total) / len(positions) / math.log(2)


def quantise(p, dtype):
    """The weights as stored: float32, float16, or int8 with one scale per tensor."""
    if dtype == "float32":
        return {n: v for n, v in p.items()}
    if dtype == "float16":
        return {n: v.astype(np.float16) for n, v in p.items()}
    if dtype == "int8":
        out = {}
        for n, v in p.items():
            scale = max(float(np.abs(v).max()), 1e-12) / 127.0
            out[n] = np.round(v / scale).astype(np.int8)
            out[n + ".scale"] = np.array(scale, np.float32)
        return out
    raise ValueError(f"unknown dtype {dtype!r}")


def main():
    with open("recipe.toml", "rb") as f:
        k = tomllib.load(f)
    for name in ("context", "embed", "hidden", "layers", "steps", "batch_size"):
        if int(k[name]) < 1:
            raise ValueError(f"{name} must be at least 1, not {k[name]}")
    out = os.environ.get("POSTDOC_OUT", "out")
    os.makedirs(out, exist_ok=True)
    metrics = os.environ.get("POSTDOC_METRICS")
    rng = np.random.default_rng(int(os.environ.get("POSTDOC_SEED", "0")))
    with open("corpus/train.txt") as f:
        data = encode(f.read())
    train_end = len(data) - HOLDOUT
    held = np.arange(train_end, len(data))[:: max(1, HOLDOUT // 4000)]
    p = init(rng, k)
    m = {n: np.zeros_like(v) for n, v in p.items()}
    v2 = {n: np.zeros_like(v) for n, v in p.items()}
    steps, started = int(k["steps"]), time.time()
    for step in range(1, steps + 1):
        warm = min(1.0, step / k["warmup"]) if k["warmup"] > 0 else 1.0
        frac = step / steps
        decay = {"constant": 1.0, "cosine": 0.5 * (1 + math.cos(math.pi * frac)), "linear": 1 - frac}[k["schedule"]]
        lr = k["lr"] * warm * decay
        pos = rng.integers(1, train_end, int(k["batch_size"]))
        loss, g = grads(p, contexts(data, pos, k["context"]), data[pos], k["layers"])
        for n in p:  # AdamW
            m[n] = 0.9 * m[n] + 0.1 * g[n]
            v2[n] = 0.99 * v2[n] + 0.01 * g[n] * g[n]
            update = (m[n] / (1 - 0.9**step)) / (np.sqrt(v2[n] / (1 - 0.99**step)) + 1e-8)
            if n.startswith("w"):
                update = update + k["weight_decay"] * p[n]
            p[n] -= (lr * update).astype(np.float32)
        if metrics and (step % 250 == 0 or step == steps):
            bpb = bits_per_byte(p, data, held, k)
            with open(metrics, "a") as f:
                f.write(json.dumps({"step": step, "elapsed_s": round(time.time() - started, 2), "train_loss": loss, "val_bpb": bpb}) + "\n")
    np.savez_compressed(os.path.join(out, "model.npz"), **quantise(p, k["dtype"]))
    config = {n: k[n] for n in ("context", "embed", "hidden", "layers", "dtype")}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f)
    with zipfile.ZipFile(os.path.join(out, "code.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        z.write(__file__, "train.py")
    print(f"trained {steps} steps in {time.time() - started:.1f}s")


if __name__ == "__main__":
    main()
