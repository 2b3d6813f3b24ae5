#!/usr/bin/env python3
"""postdoc's dataset engine against a Python reference, side by side, on one generated file.

The script writes a JSON Lines file of instruction data (Alpaca rows: instruction, input,
output) of at least --gigabytes, with planted cases whose lines it remembers: exact duplicates
(an earlier row again, byte for byte), near duplicates (an earlier row with about one word in
sixty replaced, which keeps the Jaccard similarity of its 5-word shingles above 0.8), and rows
that hold an item of a generated evaluation set (verbatim, or with its case and spacing
changed). Then it runs, each as its own process, timing it and reading its peak resident memory
from the kernel:

- postdoc: `postdoc data inspect --no-near` (schema, per-column statistics, lengths, exact
  duplicates), `postdoc data inspect` (the same plus near duplicates by MinHash/LSH), and
  `postdoc data decontaminate` (exact, normalised and 13-gram overlap with the evaluation set);
- the Python reference, in its own virtual environment with pandas and datasketch: the
  per-column statistics with pandas read in chunks and exact duplicates by hashing each row's
  canonical JSON; and, as a second reference for the inspection, everything it reports (also
  each row's text in characters and approximate tokens, characters by script, language hints,
  shapes and a content hash of the canonical rows); near duplicates with datasketch's MinHash (128 permutations) and MinHashLSH at the same
  threshold over the same shingles; 13-gram decontamination with a set of the evaluation
  items' 13-grams plus exact and normalised matches.

It reports throughput (MB/s of the file), peak memory, and the recall of the planted cases for
each, with the ratios, as a Markdown table, and writes the raw figures to
bench/results/data_compare.json.

    python3 bench/data_compare.py                    # 1 GB
    python3 bench/data_compare.py --gigabytes 0.05   # a quick look

With --work DIR the generated files are kept there and used again by the next run with the same
size and seed (--generate-only makes them and stops).
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
VENV = os.path.join(BENCH, ".venv-data")
RESULTS = os.path.join(BENCH, "results")


def ensure_venv():
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "pandas", "datasketch", "numpy"], check=True)
    return python


# ---------------------------------------------------------------------------------------------
# The data.

def vocabulary(rng, n=6000):
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4, 2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.2, 0.2, 0.1, 0.1]
    words = set()
    while len(words) < n:
        words.add("".join(rng.choices(letters, weights, k=rng.randint(2, 10))))
    words = sorted(words)
    rng.shuffle(words)
    # Zipf-like frequencies: the k-th word about 1/k as often as the first.
    cum = []
    total = 0.0
    for k in range(1, len(words) + 1):
        total += 1.0 / k
        cum.append(total)
    return words, cum


def sentence(rng, vocab, lo, hi):
    words, cum = vocab
    return " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(lo, hi)))


def generate(path, eval_path, target_bytes, seed):
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    evals = [sentence(rng, vocab, 25, 40) for _ in range(2000)]
    with open(eval_path, "w") as f:
        for q in evals:
            f.write(json.dumps({"question": q}) + "\n")
    planted = {"exact": [], "near": [], "contaminated": []}
    recent = []  # (line, row) of recent rows, the sources of planted copies
    written = 0
    line = 0
    with open(path, "w") as f:
        while written < target_bytes:
            line += 1
            r = rng.random()
            if r < 0.01 and recent:
                src_line, row = rng.choice(recent)
                planted["exact"].append([line, src_line])
            elif r < 0.02 and recent:
                src_line, src = rng.choice(recent)
                words = src["output"].split(" ")
                for _ in range(max(1, len(words) // 60)):
                    words[rng.randrange(len(words))] = rng.choice(vocab[0])
                row = dict(src, output=" ".join(words))
                if row != src:
                    planted["near"].append([line, src_line])
            elif r < 0.025:
                item = rng.randrange(len(evals))
                text = evals[item]
                if rng.random() < 0.5:
                    text = "  ".join(text.upper().split(" "))  # case and spacing changed
                row = {"instruction": sentence(rng, vocab, 8, 20), "input": text, "output": sentence(rng, vocab, 40, 200)}
                planted["contaminated"].append([line, item])
            else:
                row = {"instruction": sentence(rng, vocab, 8, 20), "input": sentence(rng, vocab, 0, 40) if rng.random() < 0.6 else "",
                       "output": sentence(rng, vocab, 40, 200)}
            text = json.dumps(row) + "\n"
            f.write(text)
            written += len(text)
            if rng.random() < 0.05:
                recent.append((line, row))
                if len(recent) > 2000:
                    recent.pop(rng.randrange(len(recent)))
    return planted, written, line


# ---------------------------------------------------------------------------------------------
# The Python reference: one process per task, reading the file in chunks.

PY_INSPECT = r'''
import hashlib, json, sys
import pandas as pd
path, out = sys.argv[1], sys.argv[2]
rows = 0
stats = {}
seen = {}
dups = []
line = 0
for chunk in pd.read_json(path, lines=True, chunksize=50000, dtype=False):
    rows += len(chunk)
    for col in chunk.columns:
        s = chunk[col]
        st = stats.setdefault(col, {"present": 0, "nulls": 0, "empty": 0, "chars_min": None, "chars_max": 0, "chars_sum": 0})
        st["present"] += int(s.notna().sum())
        st["nulls"] += int(s.isna().sum())
        lengths = s.dropna().astype(str).str.len()
        st["empty"] += int((s.astype(str).str.strip() == "").sum())
        if len(lengths):
            st["chars_min"] = int(lengths.min()) if st["chars_min"] is None else min(st["chars_min"], int(lengths.min()))
            st["chars_max"] = max(st["chars_max"], int(lengths.max()))
            st["chars_sum"] += int(lengths.sum())
    for rec in chunk.to_dict(orient="records"):
        line += 1
        h = hashlib.blake2b(json.dumps(rec, sort_keys=True, separators=(",", ":")).encode(), digest_size=16).digest()
        first = seen.setdefault(h, line)
        if first != line:
            dups.append([line, first])
json.dump({"rows": rows, "columns": stats, "exact": dups}, open(out, "w"))
'''

# The same statistics as `postdoc data inspect --no-near` reports, not only the ones above: each
# row's text (every string, joined) in characters and approximate tokens, characters by script,
# language hints from the first 10,000 rows, each row's post-training shape, and a content hash
# of the canonical rows in order. Vectorised with pandas' string methods wherever they apply.
PY_INSPECT_ALL = r'''
import hashlib, json, sys, unicodedata
import numpy as np
import pandas as pd
path, out = sys.argv[1], sys.argv[2]
COMMON = {
    "en": "the and of to is in that it with for this are was be you",
    "fr": "le la les et des est une du que pour dans pas qui sur au",
    "de": "der die und das ist nicht ein zu den mit von sich auch auf ich",
    "es": "el los las y del es por una con para como pero su se lo",
    "it": "il di che è non per gli della sono con anche nel questo ma si",
    "pt": "o os não uma com para mais como dos ao foi ele das tem à",
    "nl": "het een van en niet dat zijn op voor met ook maar wat bij er",
}
owner = {}
for lang, words in COMMON.items():
    for w in words.split():
        owner[w] = None if w in owner else lang
owner = {w: l for w, l in owner.items() if l}
WORD, MARK = r"[^\W_]{1,4}", r"[^\w\s]|_"   # a token per four letters or digits, one per mark
def script(c):
    o = ord(c)
    return "ascii" if o < 0x80 else unicodedata.name(c, "other").split(" ")[0].lower()
rows, line = 0, 0
columns, seen, dups, samples = {}, {}, [], []
text_chars, text_tokens, scripts, languages, shapes = [], [], {}, {}, {}
version = hashlib.blake2b(digest_size=32)
for chunk in pd.read_json(path, lines=True, chunksize=50000, dtype=False):
    n = len(chunk)
    rows += n
    row_chars, row_tokens, strings = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    for col in sorted(chunk.columns):
        s = chunk[col]
        c = columns.setdefault(col, {"present": 0, "nulls": 0, "empty": 0, "chars": []})
        c["present"] += int(s.notna().sum())
        c["nulls"] += int(s.isna().sum())
        is_str = s.map(type).eq(str).to_numpy()
        text = s[is_str].astype(str)
        lengths = text.str.len().to_numpy()
        c["chars"].append(lengths)
        c["empty"] += int((text.str.strip() == "").sum())
        ascii = text.str.isascii().to_numpy()
        scripts["ascii"] = scripts.get("ascii", 0) + int(lengths[ascii].sum())
        for t in text[~ascii]:
            for ch in t:
                k = script(ch)
                scripts[k] = scripts.get(k, 0) + 1
        row_chars[is_str] += lengths
        row_tokens[is_str] += (text.str.count(WORD) + text.str.count(MARK)).to_numpy()
        strings[is_str] += 1
    # The newlines that join a row's strings count as characters, as postdoc counts them.
    row_chars += np.maximum(strings - 1, 0)
    scripts["ascii"] = scripts.get("ascii", 0) + int(np.maximum(strings - 1, 0).sum())
    text_chars.append(row_chars)
    text_tokens.append(row_tokens)
    has = lambda k: chunk[k].notna().to_numpy() if k in chunk else np.zeros(n, bool)
    alpaca = has("instruction") & (has("output") | has("response"))
    shapes["alpaca"] = shapes.get("alpaca", 0) + int(alpaca.sum())
    for rec in chunk.to_dict(orient="records"):
        line += 1
        if len(samples) < 3:
            samples.append(rec)
        canonical = json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        version.update(canonical)
        h = hashlib.blake2b(canonical, digest_size=16).digest()
        first = seen.setdefault(h, line)
        if first != line:
            dups.append([line, first])
        if line <= 10000:
            for w in "\n".join(v for v in rec.values() if isinstance(v, str)).lower().split():
                lang = owner.get(w.strip(".,;:!?\"'()"))
                if lang:
                    languages[lang] = languages.get(lang, 0) + 1
def summary(v):
    v = np.concatenate(v) if v else np.zeros(0, np.int64)
    if not len(v):
        return None
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {"count": len(v), "min": int(v.min()), "max": int(v.max()), "mean": float(v.mean()),
            "p50": p50, "p90": p90, "p99": p99, "histogram": np.histogram(v, bins=24)[0].tolist()}
report = {"rows": rows, "columns": {k: dict(c, chars=summary(c["chars"])) for k, c in columns.items()},
          "text_chars": summary(text_chars), "text_tokens": summary(text_tokens), "scripts": scripts,
          "languages": languages, "shapes": shapes, "version": version.hexdigest(), "exact": dups,
          "samples": samples}
json.dump(report, open(out, "w"), default=str)
'''

PY_NEAR = r'''
import json, sys
from datasketch import MinHash, MinHashLSH
path, out, threshold = sys.argv[1], sys.argv[2], float(sys.argv[3])
lsh = MinHashLSH(threshold=threshold, num_perm=128)
found = []
with open(path) as f:
    for line, text in enumerate(f, 1):
        rec = json.loads(text)
        words = " ".join(str(v) for v in rec.values() if isinstance(v, str)).split()
        shingles = {" ".join(words[i:i + 5]) for i in range(max(1, len(words) - 4))}
        m = MinHash(num_perm=128)
        m.update_batch([s.encode() for s in shingles])
        hits = lsh.query(m)
        if hits:
            found.append([line, min(hits)])
        lsh.insert(line, m)
json.dump({"near": found}, open(out, "w"))
'''

PY_DECONTAMINATE = r'''
import json, os, re, sys
path, eval_path, out, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def norm(t):
    return " ".join(re.findall(r"\w+", t.lower()))
items = [json.loads(l)["question"] for l in open(eval_path)]
exact = {t: i for i, t in enumerate(items)}
normal = {norm(t): i for i, t in enumerate(items)}
grams = {}
for i, t in enumerate(items):
    w = norm(t).split()
    for k in range(len(w) - n + 1):
        grams.setdefault(hash(tuple(w[k:k + n])), i)
removed = []
with open(path) as f, open(out + ".clean.jsonl", "w") as clean:
    for line, text in enumerate(f, 1):
        rec = json.loads(text)
        hit = None
        for v in rec.values():
            if not isinstance(v, str):
                continue
            if v in exact:
                hit = exact[v]; break
            nv = norm(v)
            if nv in normal:
                hit = normal[nv]; break
            w = nv.split()
            for k in range(len(w) - n + 1):
                g = grams.get(hash(tuple(w[k:k + n])))
                if g is not None:
                    hit = g; break
            if hit is not None:
                break
        if hit is None:
            clean.write(text)
        else:
            removed.append([line, hit])
    # Durable before it counts as written, as postdoc's clean copy is.
    clean.flush()
    os.fsync(clean.fileno())
json.dump({"removed": removed}, open(out, "w"))
'''


def measure(cmd):
    """Runs `cmd`; returns (wall seconds, peak resident MiB)."""
    started = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.time() - started
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0


def recall(planted, found_lines):
    found = set(found_lines)
    return sum(1 for line, _ in planted if line in found) / max(1, len(planted))


def removed_lines(original, clean):
    """The lines of `original` missing from `clean` (a subsequence of it, in order)."""
    removed = []
    with open(original) as a, open(clean) as b:
        kept = b.readline()
        for line, text in enumerate(a, 1):
            if text == kept:
                kept = b.readline()
            else:
                removed.append(line)
    return removed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gigabytes", type=float, default=1.0)
    ap.add_argument("--postdoc", help="the postdoc binary (default: built from this repository)")
    ap.add_argument("--work", help="where the generated files go (default: a temporary folder)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each postdoc task (the median is reported)")
    ap.add_argument("--generate-only", action="store_true", help="write the files into --work and stop")
    a = ap.parse_args()
    python = ensure_venv()
    binary = a.postdoc
    if not binary and not a.generate_only:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "postdoc"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "postdoc")
    work = a.work or tempfile.mkdtemp(prefix="postdoc-data-bench-")
    os.makedirs(work, exist_ok=True)
    data, evals = os.path.join(work, "train.jsonl"), os.path.join(work, "eval.jsonl")
    started = time.time()
    # A file generated earlier with the same size and seed is used again (generating is not timed).
    made = os.path.join(work, "planted.json")
    key = {"gigabytes": a.gigabytes, "seed": a.seed}
    if os.path.exists(made) and json.load(open(made)).get("key") == key and os.path.exists(data):
        m = json.load(open(made))
        planted, size, rows = m["planted"], m["size"], m["rows"]
    else:
        planted, size, rows = generate(data, evals, int(a.gigabytes * 1e9), a.seed)
        json.dump({"key": key, "planted": planted, "size": size, "rows": rows}, open(made, "w"))
    if a.generate_only:
        return
    mb = size / 1e6
    print(f"generated {mb:.0f} MB, {rows} rows ({len(planted['exact'])} exact, {len(planted['near'])} near, "
          f"{len(planted['contaminated'])} contaminated planted) in {time.time() - started:.0f} s", file=sys.stderr)

    results = {"megabytes": mb, "rows": rows, "planted": {k: len(v) for k, v in planted.items()}, "tasks": {}}

    def run_postdoc(name, args):
        # The median of a few runs (each a few seconds); the Python reference runs once.
        runs = sorted(measure([binary, "-C", work] + args) for _ in range(a.repeats))
        wall, rss = runs[len(runs) // 2][0], max(r for _, r in runs)
        print(f"postdoc {name}: {wall:.1f} s (of {', '.join(f'{w:.1f}' for w, _ in runs)}), {rss:.0f} MiB", file=sys.stderr)
        return wall, rss

    def run_python(name, script, args):
        # Not `inspect.py`: a script of that name would shadow the standard library module.
        path = os.path.join(work, f"reference_{name}.py")
        open(path, "w").write(script)
        wall, rss = measure([python, path] + args)
        print(f"python {name}: {wall:.1f} s, {rss:.0f} MiB", file=sys.stderr)
        return wall, rss

    def pairs(path, kind):
        out = []
        for l in open(path):
            d = json.loads(l)
            if d["kind"] == kind:
                out.append(d["line"])
        return out

    # Inspection with exact duplicates.
    p_exact = os.path.join(work, "dups-exact.jsonl")
    pw, pr = run_postdoc("inspect", ["data", "inspect", data, "--no-near", "--json", "--duplicates", p_exact])
    py_out = os.path.join(work, "py-inspect.json")
    qw, qr = run_python("inspect", PY_INSPECT, [data, py_out])
    results["tasks"]["inspect + exact duplicates"] = {
        "postdoc": {"seconds": pw, "peak_mib": pr, "recall": recall(planted["exact"], pairs(p_exact, "exact"))},
        "python": {"seconds": qw, "peak_mib": qr, "recall": recall(planted["exact"], [l for l, _ in json.load(open(py_out))["exact"]])},
    }

    # The same inspection against a reference that computes all of what it reports.
    py_all = os.path.join(work, "py-inspect-all.json")
    qw, qr = run_python("inspect_all", PY_INSPECT_ALL, [data, py_all])
    results["tasks"]["inspect, reference computing all of it"] = {
        "postdoc": results["tasks"]["inspect + exact duplicates"]["postdoc"],
        "python": {"seconds": qw, "peak_mib": qr, "recall": recall(planted["exact"], [l for l, _ in json.load(open(py_all))["exact"]])},
    }

    # Near duplicates (postdoc's figure includes the whole inspection).
    p_all = os.path.join(work, "dups-all.jsonl")
    pw, pr = run_postdoc("near", ["data", "inspect", data, "--json", "--duplicates", p_all])
    py_near = os.path.join(work, "py-near.json")
    qw, qr = run_python("near", PY_NEAR, [data, py_near, "0.8"])
    p_flagged = pairs(p_all, "near") + pairs(p_all, "exact")
    results["tasks"]["near duplicates"] = {
        "postdoc": {"seconds": pw, "peak_mib": pr, "recall": recall(planted["near"], p_flagged)},
        "python": {"seconds": qw, "peak_mib": qr, "recall": recall(planted["near"], [l for l, _ in json.load(open(py_near))["near"]])},
    }

    # 13-gram decontamination.
    clean = os.path.join(work, "clean.jsonl")
    pw, pr = run_postdoc("decontaminate", ["data", "decontaminate", data, "--eval", evals, "--out", clean, "--json"])
    py_dec = os.path.join(work, "py-dec.json")
    qw, qr = run_python("decontaminate", PY_DECONTAMINATE, [data, evals, py_dec, "13"])
    results["tasks"]["13-gram decontamination"] = {
        "postdoc": {"seconds": pw, "peak_mib": pr, "recall": recall(planted["contaminated"], removed_lines(data, clean))},
        "python": {"seconds": qw, "peak_mib": qr, "recall": recall(planted["contaminated"], [l for l, _ in json.load(open(py_dec))["removed"]])},
    }

    lines = ["| task | postdoc MB/s | Python MB/s | ratio | postdoc peak MiB | Python peak MiB | postdoc recall | Python recall |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for task, r in results["tasks"].items():
        p, q = r["postdoc"], r["python"]
        lines.append(f"| {task} | {mb / p['seconds']:.1f} | {mb / q['seconds']:.1f} | {q['seconds'] / p['seconds']:.1f}x | "
                     f"{p['peak_mib']:.0f} | {q['peak_mib']:.0f} | {p['recall']:.3f} | {q['recall']:.3f} |")
    table = "\n".join(lines)
    print(table)
    os.makedirs(RESULTS, exist_ok=True)
    json.dump(results, open(os.path.join(RESULTS, "data_compare.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
