"""The evaluator's own inference code for the example's model: the architecture is fixed, so the
evaluator reads any trained weights without running recipe code."""
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


def forward(p, x):
    """Logits for a batch of contexts, and what the backward pass needs."""
    e = p["emb"][x].reshape(len(x), -1)
    h1 = np.maximum(e @ p["w1"] + p["b1"], 0.0)
    h2 = np.maximum(h1 @ p["w2"] + p["b2"], 0.0)
    return h2 @ p["w3"] + p["b3"], (x, e, h1, h2)


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


def load(path):
    with np.load(path) as f:
        return {k: f[k].astype(np.float32) for k in f.files}
