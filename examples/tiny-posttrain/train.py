"""Post-trains the base model on problems the recipe makes itself: supervised fine-tuning, then
optionally reinforcement learning with the verifiable reward (GRPO-style group-normalised
advantages, with a KL penalty to the base model). Knobs come from recipe.toml.

Writes the trained weights to $POSTDOC_OUT/model.npz and every example it trained on to
$POSTDOC_OUT/train_data.jsonl (the harness checks those against the benchmark), and appends
progress lines to $POSTDOC_METRICS."""
import json
import os
import time
import tomllib

import model  # sets the BLAS thread count before numpy loads
import numpy as np

import tasks


def main():
    with open("recipe.toml", "rb") as f:
        k = tomllib.load(f)
    out = os.environ.get("POSTDOC_OUT", "out")
    os.makedirs(out, exist_ok=True)
    metrics_path = os.environ.get("POSTDOC_METRICS")
    rng = np.random.default_rng(int(os.environ.get("POSTDOC_SEED", "0")))
    if not (k["min_len"] >= 1 and k["max_len"] >= k["min_len"] and k["max_len"] <= 10):
        raise ValueError(f"word lengths {k['min_len']}..{k['max_len']} must lie within 1..10")
    if k["schedule"] not in ("constant", "cosine", "linear"):
        raise ValueError(f"unknown schedule {k['schedule']!r}")

    params = model.load("base_model.npz")
    base = {name: v.copy() for name, v in params.items()}
    opt = model.AdamW(params, weight_decay=k["weight_decay"])
    steps = int(k["steps"])
    rl_steps = int(round(steps * k["rl_fraction"]))
    sft_steps = steps - rl_steps
    # A fixed dev set of the recipe's own, for progress lines: never the benchmark.
    dev_rng = np.random.default_rng(7)
    dev = [tasks.draw(dev_rng, ("rev", "shift")[i % 2], 5, 8) for i in range(64)]
    used = open(os.path.join(out, "train_data.jsonl"), "w")
    started = time.time()

    def lr_at(step):
        warm = min(1.0, (step + 1) / k["warmup"]) if k["warmup"] > 0 else 1.0
        frac = step / max(steps, 1)
        decay = {"constant": 1.0, "cosine": 0.5 * (1 + np.cos(np.pi * frac)), "linear": 1.0 - frac}[k["schedule"]]
        return k["lr"] * warm * decay

    def batch_problems(step, n):
        hi = k["max_len"]
        if k["curriculum"] == "short_first" and step < steps // 2:
            hi = k["min_len"] + int((k["max_len"] - k["min_len"]) * step / max(steps // 2, 1))
        picks = []
        for _ in range(n):
            task = "rev" if rng.random() < k["mix_rev"] else "shift"
            picks.append(tasks.draw(rng, task, k["min_len"], hi))
        return picks

    # The dev problems as teacher-forced answers: their loss moves long before exact matches do.
    dev_x, dev_y = model.windows([model.encode(p) + model.encode(a + "\n") for p, a in dev])
    dev_w = np.concatenate([[0.0] * len(p) + [1.0] * (len(a) + 1) for p, a in dev])

    def report(step, loss):
        # Every 100 steps, so early stopping compares runs at the same points.
        if metrics_path and (step % 100 == 0 or step == steps):
            got = model.generate(params, [p for p, _ in dev], max_new=12)
            acc = sum(g == a for g, (_, a) in zip(got, dev)) / len(dev)
            logp = model.log_softmax(model.forward(params, dev_x)[0])[np.arange(len(dev_y)), dev_y]
            dev_loss = float(-(logp * dev_w).sum() / dev_w.sum())
            line = {"step": step, "elapsed_s": round(time.time() - started, 2), "loss": loss, "dev_loss": dev_loss, "dev_accuracy": acc}
            with open(metrics_path, "a") as f:
                f.write(json.dumps(line) + "\n")

    loss = float("nan")
    for step in range(sft_steps):
        probs = batch_problems(step, int(k["batch_size"]))
        seqs, weights = [], []
        for prompt, completion in probs:
            used.write(json.dumps({"prompt": prompt, "completion": completion}) + "\n")
            p, c = model.encode(prompt), model.encode(completion + "\n")
            seqs.append(p + c)
            weights.append([1.0 if k["loss_on"] == "all" else 0.0] * len(p) + [1.0] * len(c))
        x, y = model.windows(seqs)
        loss, grads = model.loss_and_grads(params, x, y, np.concatenate([np.array(w) for w in weights]))
        opt.step(params, grads, lr_at(step))
        report(step + 1, loss)

    for step in range(sft_steps, steps):
        probs = batch_problems(step, max(1, int(k["batch_size"]) // int(k["group_size"])))
        seqs, weights = [], []
        for prompt, completion in probs:
            used.write(json.dumps({"prompt": prompt, "completion": completion}) + "\n")
            samples = model.generate(params, [prompt] * int(k["group_size"]), max_new=12, temperature=k["temperature"], rng=rng)
            rewards = np.array([float(s == completion) for s in samples])
            if rewards.std() < 1e-6:
                continue  # no signal in a group that is all right or all wrong
            advantages = (rewards - rewards.mean()) / rewards.std()
            for s, a in zip(samples, advantages):
                p, c = model.encode(prompt), model.encode(s + "\n")
                seqs.append(p + c)
                weights.append([0.0] * len(p) + [float(a)] * len(c))
        if not seqs:
            continue
        x, y = model.windows(seqs)
        w = np.concatenate([np.array(v) for v in weights])
        # Policy gradient on the sampled completions, plus a KL penalty pulling the completion
        # tokens' distributions back towards the base model's.
        logits, cache = model.forward(params, x)
        logp = model.log_softmax(logits)
        base_logp = model.log_softmax(model.forward(base, x)[0])
        mask = (w != 0).astype(np.float32)
        n = max(float(mask.sum()), 1.0)
        prob = np.exp(logp)
        d = prob.copy()
        d[np.arange(len(y)), y] -= 1.0
        d *= (w / n)[:, None]
        kl = (prob * (logp - base_logp)).sum(1)
        d += k["kl_coef"] * (mask / n)[:, None] * prob * ((logp - base_logp) - kl[:, None])
        loss = float(-(logp[np.arange(len(y)), y] * w).sum() / n + k["kl_coef"] * (kl * mask).sum() / n)
        opt.step(params, model.backward(params, cache, d.astype(np.float32)), lr_at(step))
        report(step + 1, loss)

    used.close()
    model.save(os.path.join(out, "model.npz"), params)
    print(f"trained {steps} steps ({rl_steps} of RL) in {time.time() - started:.1f}s, last loss {loss:.4f}")


if __name__ == "__main__":
    main()
