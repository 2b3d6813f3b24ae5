"""The base model: a character-level language model that predicts the next character from the
last CONTEXT characters (embeddings of each position, concatenated, through two ReLU layers).
Small enough to train on one CPU core in seconds, big enough to learn string tasks."""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # two trials share two cores

import numpy as np

ALPHABET = "\n abcdefghijklmnopqrstuvwxyz0123456789=.,:;?!'-+"
INDEX = {c: i for i, c in enumerate(ALPHABET)}
VOCAB = len(ALPHABET)
CONTEXT = 24
EMBED = 16
HIDDEN = 384
PAD = INDEX[" "]


def encode(text):
    return [INDEX[c] for c in text]


def init(rng):
    def dense(n_in, n_out):
        return rng.normal(0.0, (2.0 / n_in) ** 0.5, (n_in, n_out)).astype(np.float32)

    return {
        "emb": rng.normal(0.0, 0.3, (VOCAB, EMBED)).astype(np.float32),
        "w1": dense(CONTEXT * EMBED, HIDDEN),
        "b1": np.zeros(HIDDEN, np.float32),
        "w2": dense(HIDDEN, HIDDEN),
        "b2": np.zeros(HIDDEN, np.float32),
        "w3": dense(HIDDEN, VOCAB) * 0.5,
        "b3": np.zeros(VOCAB, np.float32),
    }


def windows(seqs):
    """For every position of every sequence, the CONTEXT characters before it (left-padded) and
    the character at it: the training pairs of a sequence."""
    xs, ys = [], []
    for s in seqs:
        padded = [PAD] * CONTEXT + s
        for t in range(len(s)):
            xs.append(padded[t : t + CONTEXT])
            ys.append(s[t])
    return np.array(xs, np.int64), np.array(ys, np.int64)


def forward(p, x):
    """Logits for a batch of contexts, and what the backward pass needs."""
    e = p["emb"][x].reshape(len(x), -1)
    h1 = np.maximum(e @ p["w1"] + p["b1"], 0.0)
    h2 = np.maximum(h1 @ p["w2"] + p["b2"], 0.0)
    return h2 @ p["w3"] + p["b3"], (x, e, h1, h2)


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def backward(p, cache, dlogits):
    """Gradients of the parameters given the gradient of the loss in the logits."""
    x, e, h1, h2 = cache
    g = {"w3": h2.T @ dlogits, "b3": dlogits.sum(0)}
    dh2 = (dlogits @ p["w3"].T) * (h2 > 0)
    g["w2"], g["b2"] = h1.T @ dh2, dh2.sum(0)
    dh1 = (dh2 @ p["w2"].T) * (h1 > 0)
    g["w1"], g["b1"] = e.T @ dh1, dh1.sum(0)
    de = (dh1 @ p["w1"].T).reshape(len(x), CONTEXT, EMBED)
    g["emb"] = np.zeros_like(p["emb"])
    np.add.at(g["emb"], x, de)
    return g


def loss_and_grads(p, x, y, weights=None):
    """Mean cross-entropy of predicting y (optionally weighted per position) and its gradients."""
    logits, cache = forward(p, x)
    logp = log_softmax(logits)
    w = np.ones(len(y), np.float32) if weights is None else weights.astype(np.float32)
    total = max(float(w.sum()), 1.0)
    loss = -(logp[np.arange(len(y)), y] * w).sum() / total
    d = np.exp(logp)
    d[np.arange(len(y)), y] -= 1.0
    d *= (w / total)[:, None]
    return float(loss), backward(p, cache, d.astype(np.float32))


class AdamW:
    def __init__(self, params, weight_decay=0.0, betas=(0.9, 0.99), eps=1e-8):
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t, self.wd, self.b1, self.b2, self.eps = 0, weight_decay, betas[0], betas[1], eps

    def step(self, params, grads, lr, clip=1.0):
        norm = float(np.sqrt(sum(float((g * g).sum()) for g in grads.values())))
        scale = min(1.0, clip / (norm + 1e-12))
        self.t += 1
        for k, g in grads.items():
            g = g * scale
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            mh = self.m[k] / (1 - self.b1**self.t)
            vh = self.v[k] / (1 - self.b2**self.t)
            if self.wd and k.startswith("w"):
                params[k] -= lr * self.wd * params[k]
            params[k] -= (lr * mh / (np.sqrt(vh) + self.eps)).astype(np.float32)


def generate(p, prompts, max_new=12, temperature=0.0, rng=None):
    """Completes each prompt up to a newline or max_new characters; greedy at temperature 0."""
    seqs = [encode(s) for s in prompts]
    done = [False] * len(seqs)
    out = [[] for _ in seqs]
    for _ in range(max_new):
        active = [i for i, d in enumerate(done) if not d]
        if not active:
            break
        ctx = np.array([([PAD] * CONTEXT + seqs[i])[-CONTEXT:] for i in active], np.int64)
        logits, _ = forward(p, ctx)
        if temperature <= 0:
            nxt = logits.argmax(1)
        else:
            z = logits / temperature
            z -= z.max(1, keepdims=True)
            pr = np.exp(z)
            pr /= pr.sum(1, keepdims=True)
            nxt = np.array([rng.choice(VOCAB, p=row) for row in pr])
        for i, c in zip(active, nxt):
            c = int(c)
            if c == INDEX["\n"]:
                done[i] = True
            else:
                seqs[i].append(c)
                out[i].append(ALPHABET[c])
    return ["".join(o) for o in out]


def save(path, p):
    np.savez(path, **p)


def load(path):
    with np.load(path) as f:
        return {k: f[k].astype(np.float32) for k in f.files}
