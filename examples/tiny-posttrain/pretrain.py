"""Pretrains the base model on generated prose about words and letters (never in the
benchmark's prompt format), deterministically: `python3 pretrain.py` writes base_model.npz.
Run once by the example's author; recipes start from the file."""
import time

import model  # sets the BLAS thread count before numpy loads
import numpy as np

WORDS = ("planet river stone window garden yellow silver market bridge forest candle winter "
         "pocket castle travel summer orange basket rabbit letter mirror engine shadow violet").split()


def sentence(rng):
    w = str(rng.choice(WORDS)) if rng.random() < 0.5 else "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), int(rng.integers(3, 9))))
    after = "".join(chr((ord(c) - 97 + 1) % 26 + 97) for c in w)
    kind = rng.integers(0, 6)
    if kind == 0:
        return f"the word {w} read backwards is {w[::-1]}."
    if kind == 1:
        return f"each letter of {w} moved one step on gives {after}."
    if kind == 2:
        return f"we wrote {w} on the {rng.choice(WORDS)} and then {rng.choice(WORDS)}."
    if kind == 3:
        return f"spell {w}: {' '.join(w)}."
    if kind == 4:
        return f"{w} has {len(w)} letters, the first is {w[0]} and the last is {w[-1]}."
    return f"is {w} a word? maybe, said the {rng.choice(WORDS)}."


def main():
    rng = np.random.default_rng(20261124)
    params = model.init(rng)
    opt = model.AdamW(params, weight_decay=0.01)
    text = "\n".join(sentence(rng) for _ in range(40000)) + "\n"
    data = np.array(model.encode(text), np.int64)
    steps, batch = 6000, 256
    started = time.time()
    for step in range(steps):
        starts = rng.integers(0, len(data) - 1, batch)
        x = np.stack([np.concatenate([np.full(max(0, model.CONTEXT - s), model.PAD), data[max(0, s - model.CONTEXT):s]]) for s in starts])
        y = data[starts]
        lr = 2e-3 * 0.5 * (1 + np.cos(np.pi * step / steps))
        loss, grads = model.loss_and_grads(params, x, y)
        opt.step(params, grads, lr)
        if step % 500 == 0:
            print(f"step {step} loss {loss:.3f} {time.time() - started:.0f}s", flush=True)
    model.save("base_model.npz", params)
    print(f"done in {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
