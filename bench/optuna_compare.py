#!/usr/bin/env python3
"""postdoc's built-in search against Optuna, side by side, on the same recipes and budgets.

For each recipe and seed, three arms run the same number of candidate trials through the same
run/evaluate contract (the recipe's postdoc.toml: its commands, budgets, artifact cap and gates):

- optuna-tpe: Optuna's default TPESampler (seeded), one study over every specialist's knobs;
- optuna-random: Optuna's RandomSampler (seeded);
- postdoc: the real binary with the recipe's default specialists (`postdoc run`), which also
  spends runs on the baseline's seeds and on confirmation seeds: that compute is counted;
- postdoc-candidate (with --candidate BINARY): a second build, run seed by seed beside the first,
  to measure a change against main on the same machine at the same time.

A trial is wasted when it ends with a failure label (crash, train_overrun, size_blocked,
gate_miss, eval_overrun, contaminated, preflight_crash, invalid_proposal). Best-so-far counts
the objective of every completed trial (for postdoc, its trials labelled keep or discard, whose
score is the mean over their runs). The script prints a Markdown table and writes it, the raw
results (JSON) and SVG plots of the median best-so-far against trials and against compute
seconds into --out. For the compute each arm needs to reach TPE's median best it also gives how
far that figure moves when the seeds are resampled: with ten seeds an arm, a long way.

    python3 bench/optuna_compare.py --seeds 20            # the synthetic recipes
    python3 bench/optuna_compare.py --recipes examples/tiny-golf --trials 20 --seeds 5

Optuna is installed from PyPI into bench/.venv-optuna on first use. The synthetic recipes take a
few minutes for 20 seeds; the example recipes take 10 to 60 s a trial, so hours.
"""
import argparse
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
VENV = os.path.join(BENCH, ".venv-optuna")
SYNTHETIC = ["bench/recipes/branin", "bench/recipes/branin-constrained", "bench/recipes/hartmann6"]
FAILURES = {"crash", "train_overrun", "size_blocked", "gate_miss", "eval_overrun", "contaminated",
            "preflight_crash", "invalid_proposal"}


def ensure_optuna(script=__file__):
    """Re-executes `script` (this one unless told) under a virtual environment that has Optuna."""
    if sys.prefix == os.path.abspath(VENV):
        return
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "optuna"], check=True)
    os.execv(python, [python, os.path.abspath(script)] + sys.argv[1:])


def parse_size(v):
    if v is None or isinstance(v, int):
        return v
    units = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}
    num = "".join(c for c in v if c.isdigit() or c == ".")
    return int(float(num) * units[v[len(num):].strip().upper() or "B"])


def parse_seconds(v):
    if isinstance(v, (int, float)):
        return float(v)
    total, num = 0.0, ""
    for c in v:
        if c.isdigit() or c == ".":
            num += c
        else:
            total += float(num) * {"s": 1, "m": 60, "h": 3600}[c]
            num = ""
    return total + (float(num) if num else 0.0)


class Recipe:
    def __init__(self, path):
        self.path = os.path.abspath(os.path.join(ROOT, path))
        self.name = os.path.basename(self.path.rstrip("/"))
        with open(os.path.join(self.path, "postdoc.toml"), "rb") as f:
            self.manifest = tomllib.load(f)
        m = self.manifest
        self.metric = m["study"]["objective"]["metric"]
        self.minimize = m["study"]["objective"]["direction"] == "minimize"
        self.knobs = {}
        for sp in m["specialist"]:
            for name, spec in sp.get("knobs", {}).items():
                self.knobs[name] = (sp["knobs_file"], spec)

    def better(self, a, b):
        return a < b if self.minimize else a > b


def copy_recipe(recipe, dst):
    shutil.copytree(recipe.path, dst, ignore=shutil.ignore_patterns("__pycache__", ".postdoc", ".git"))


def write_knobs(tree, recipe, values):
    """Rewrites `name = value` lines of the knob files (the example knob files are flat)."""
    by_file = {}
    for name, v in values.items():
        by_file.setdefault(recipe.knobs[name][0], {})[name] = v
    for file, vals in by_file.items():
        path = os.path.join(tree, file)
        lines = open(path).read().splitlines()
        for i, line in enumerate(lines):
            key = line.split("=")[0].strip()
            if key in vals and "=" in line:
                comment = line[line.index("#"):] if "#" in line else ""
                lines[i] = f"{key} = {json.dumps(vals[key])}" + (f"   {comment}" if comment else "")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")


def run(cmd, cwd, env, seconds, metrics=None, on_metrics=None):
    """Runs a shell command in its own process group under a time budget. Returns (exit code or
    None when stopped, wall seconds, timed out, stopped by on_metrics)."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    seen, stopped = 0, False
    while True:
        try:
            p.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        if on_metrics and metrics and os.path.exists(metrics):
            lines = open(metrics).read().splitlines()
            if len(lines) > seen and on_metrics(lines[seen:]):
                seen, stopped = len(lines), True
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                break
            seen = len(lines)
        if time.monotonic() - start > seconds:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            return None, time.monotonic() - start, True, False
    return (None if stopped else p.returncode), time.monotonic() - start, False, stopped


def artifact_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def gate_ok(gate, scores):
    for op in (">=", "<=", "==", "!=", ">", "<"):
        if op in gate:
            name, bound = (s.strip() for s in gate.split(op, 1))
            v = scores.get(name)
            if v is None:
                return False
            return {">=": v >= float(bound), "<=": v <= float(bound), "==": v == float(bound),
                    "!=": v != float(bound), ">": v > float(bound), "<": v < float(bound)}[op]
    return True


class Harness:
    """The run/evaluate contract as postdoc applies it, for the Optuna arms."""

    def __init__(self, recipe, workdir):
        self.recipe, self.workdir = recipe, workdir
        self.env_dir = os.path.join(workdir, "env")
        self.base_env = dict(os.environ, POSTDOC_ENV=self.env_dir)
        setup = recipe.manifest.get("setup")
        if setup:
            subprocess.run(setup["command"], shell=True, cwd=recipe.path, env=self.base_env, check=True,
                           stdout=subprocess.DEVNULL)
            self.base_env["PATH"] = os.path.join(self.env_dir, "bin") + ":" + self.base_env["PATH"]
        self.protected = os.path.join(workdir, "protected")
        copy_recipe(recipe, self.protected)  # the evaluator runs from here, not the trial's tree

    def trial(self, number, values, seed, prune=None):
        m = self.recipe.manifest
        tree = os.path.join(self.workdir, f"t{number}")
        copy_recipe(self.recipe, tree)
        write_knobs(tree, self.recipe, values)
        out = os.path.join(tree, ".out")
        os.makedirs(out)
        metrics = os.path.join(tree, ".metrics.jsonl")
        env = dict(self.base_env, POSTDOC_OUT=out, POSTDOC_METRICS=metrics, POSTDOC_SEED=str(seed),
                   POSTDOC_TRIAL=str(number), POSTDOC_BUDGET_S=str(m["run"]["budget"]["seconds"]))
        code, train_s, overrun, stopped = run(m["run"]["command"], tree, env, parse_seconds(m["run"]["budget"]["seconds"]),
                                              metrics, prune)
        result = {"values": values, "train_s": train_s, "eval_s": 0.0, "value": None}
        if stopped:
            return dict(result, label="pruned")
        if overrun:
            return dict(result, label="train_overrun")
        if code != 0:
            return dict(result, label="crash")
        cap = parse_size(m["evaluate"].get("artifact_max_bytes"))
        if cap is not None and artifact_bytes(out) > cap:
            return dict(result, label="size_blocked")
        eval_out = os.path.join(tree, ".eval.json")
        env = dict(self.base_env, POSTDOC_OUT=out, POSTDOC_EVAL_OUT=eval_out, POSTDOC_TRIAL_DIR=tree, POSTDOC_SEED=str(seed))
        started = time.monotonic()
        p = subprocess.run(m["evaluate"]["command"], shell=True, cwd=self.protected, env=env, capture_output=True,
                           text=True, timeout=parse_seconds(m["evaluate"]["budget"]["seconds"]) + 5)
        result["eval_s"] = time.monotonic() - started
        lines = [l for l in p.stdout.splitlines() if l.strip().startswith("{")]
        if p.returncode != 0 or not lines:
            return dict(result, label="crash")
        scores = json.loads(lines[-1])
        value = scores.get(self.recipe.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return dict(result, label="crash")
        result["value"] = value
        if not all(gate_ok(g, scores) for g in m["evaluate"].get("gates", [])):
            return dict(result, label="gate_miss")
        shutil.rmtree(tree, ignore_errors=True)
        return dict(result, label="completed")


def optuna_arm(recipe, arm, seed, trials):
    """Optuna's ask-and-tell loop with as many trials in flight as the recipe's [study].parallel,
    the parallelism postdoc gets, so that both arms share the machine the same way."""
    import optuna
    from concurrent.futures import ThreadPoolExecutor
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed) if arm.startswith("optuna-tpe") else optuna.samplers.RandomSampler(seed=seed)
    pruner = optuna.pruners.MedianPruner() if arm.endswith("median-pruner") else optuna.pruners.NopPruner()
    study = optuna.create_study(direction="minimize" if recipe.minimize else "maximize", sampler=sampler, pruner=pruner)
    out = [None] * trials
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as work:
        harness = Harness(recipe, work)
        early = recipe.manifest.get("early_stop")

        def one(i):
            with lock:
                t = study.ask()
                values = suggest(recipe, t)

            def prune(lines, t=t):
                for line in lines:
                    d = json.loads(line)
                    if early and early["metric"] in d and "step" in d:
                        # Optuna's pruners read intermediate values in the study's direction.
                        value = d[early["metric"]]
                        # postdoc's rungs take the objective's direction unless told otherwise.
                        if (early.get("direction", "minimize" if recipe.minimize else "maximize") == "minimize") != recipe.minimize:
                            value = -value
                        with lock:
                            t.report(value, d["step"])
                            if t.should_prune():
                                return True
                return False

            r = harness.trial(i, values, seed * 1000 + i, prune if early and arm.endswith("median-pruner") else None)
            with lock:
                if r["label"] == "completed":
                    study.tell(t, r["value"])
                elif r["label"] == "pruned":
                    study.tell(t, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(t, state=optuna.trial.TrialState.FAIL)
            out[i] = {"label": r["label"], "value": r["value"], "compute_s": r["train_s"] + r["eval_s"],
                      "values": values}

        with ThreadPoolExecutor(max_workers=recipe.manifest["study"].get("parallel", 1)) as pool:
            list(pool.map(one, range(trials)))
    return out


def suggest(recipe, t):
    values = {}
    for name, (_, spec) in recipe.knobs.items():
        kind, arg = next(iter(spec.items()))
        if kind == "float":
            values[name] = t.suggest_float(name, arg[0], arg[1])
        elif kind == "log_float":
            values[name] = t.suggest_float(name, arg[0], arg[1], log=True)
        elif kind == "int":
            values[name] = t.suggest_int(name, arg[0], arg[1])
        else:
            values[name] = t.suggest_categorical(name, arg)
    return values


def postdoc_arm(recipe, binary, seed, trials, lineages=None):
    with tempfile.TemporaryDirectory() as work:
        tree = os.path.join(work, recipe.name)
        copy_recipe(recipe, tree)
        manifest = os.path.join(tree, "postdoc.toml")
        text = open(manifest).read()
        if "\nseed = " in text:
            raise SystemExit(f"{recipe.name}: the benchmark sets [study].seed itself")
        text = text.replace("[study]\n", f"[study]\nseed = {seed}\n", 1)
        open(manifest, "w").write(text)
        subprocess.run("git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm recipe",
                       shell=True, cwd=tree, check=True)
        subprocess.run([binary, "-C", tree, "run", "--max-trials", str(trials)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        export = subprocess.run([binary, "-C", tree, "export", "--format", "jsonl"], check=True, capture_output=True,
                                text=True).stdout
    if lineages:  # the whole lineage (hypotheses, parents, labels), to read why a seed went where it did
        os.makedirs(lineages, exist_ok=True)
        with open(os.path.join(lineages, f"{recipe.name}-seed{seed}.jsonl"), "w") as f:
            f.write(export)
    rows = sorted((json.loads(l) for l in export.splitlines()), key=lambda r: r["id"])
    # Each trial's full knob values: its parent's with its own edit on top, from the recipe's.
    start = {}
    for file in {f for f, _ in recipe.knobs.values()}:
        with open(os.path.join(recipe.path, file), "rb") as f:
            start.update({k: v for k, v in tomllib.load(f).items() if k in recipe.knobs})
    values = {}
    out, overhead = [], 0.0
    for r in rows:
        edit = r["edit"].get("values", {}) if r["edit"].get("kind") == "knobs" else {}
        values[r["id"]] = dict(values.get(r["parent"], start), **edit)
        if r["specialist"] == "baseline":
            overhead += r["compute_seconds"]  # the baseline's seeds are postdoc's own cost
            continue
        if r["label"] == "harness_abort":
            continue
        completed = r["label"] in ("keep", "discard") and r["score"] is not None
        out.append({"label": r["label"] if r["label"] in FAILURES else ("completed" if completed else "pruned"),
                    "value": r["score"] if completed else None, "compute_s": r["compute_seconds"] + overhead,
                    "values": values[r["id"]]})
        overhead = 0.0
    return out


def curves(recipe, trials):
    """Best-so-far after each trial, and cumulative compute."""
    best, spent, by_trial, by_compute = None, 0.0, [], []
    for t in trials:
        spent += t["compute_s"]
        if t["value"] is not None and (best is None or recipe.better(t["value"], best)):
            best = t["value"]
        by_trial.append(best)
        by_compute.append((spent, best))
    return by_trial, by_compute


def svg(path, title, xlabel, series, minimize):
    """A line chart of several series of (x, y) points, hand-written so nothing else is needed."""
    pts = [(x, y) for _, s in series for x, y in s if y is not None]
    if not pts:
        return
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if y1 == y0:
        y1 = y0 + 1
    W, H, L, B = 640, 400, 70, 50
    sx = lambda x: L + (x - x0) / max(x1 - x0, 1e-9) * (W - L - 20)
    sy = lambda y: 20 + (y1 - y) / (y1 - y0) * (H - B - 20)
    colors = {"postdoc": "#c0392b", "postdoc-candidate": "#e67e22", "optuna-tpe": "#2471a3", "optuna-random": "#7f8c8d", "optuna-tpe+median-pruner": "#27ae60"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>', f'<text x="{W / 2}" y="14" text-anchor="middle">{title}</text>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - 20}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="20" x2="{L}" y2="{H - B}" stroke="black"/>',
           f'<text x="{(W + L) / 2}" y="{H - 12}" text-anchor="middle">{xlabel}</text>']
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        xv = x0 + (x1 - x0) * i / 4
        out.append(f'<text x="{L - 6}" y="{sy(yv) + 4}" text-anchor="end">{yv:.3g}</text>')
        out.append(f'<text x="{sx(xv)}" y="{H - B + 16}" text-anchor="middle">{xv:.3g}</text>')
    for j, (name, s) in enumerate(series):
        p = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s if y is not None)
        c = colors.get(name, "#8e44ad")
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{p}"/>')
        out.append(f'<text x="{W - 180}" y="{40 + 16 * j}" fill="{c}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


def median_curve(runs):
    n = min(len(r) for r in runs)
    return [statistics.median(v for v in (r[i] for r in runs) if v is not None) if any(r[i] is not None for r in runs)
            else None for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipes", default=",".join(SYNTHETIC))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="resume: keep the stored runs of seeds below this one and run the rest")
    ap.add_argument("--trials", type=int, help="candidate trials per study (default: the recipe's max_trials)")
    ap.add_argument("--arms", help="comma-separated arms to run (default: all that apply)")
    ap.add_argument("--postdoc", help="the postdoc binary (default: built from this repository)")
    ap.add_argument("--candidate", help="a second postdoc binary, run as the arm postdoc-candidate")
    ap.add_argument("--out", default=os.path.join(BENCH, "results"))
    ap.add_argument("--lineages", help="a folder to keep each postdoc study's exported lineage in")
    ap.add_argument("--report", action="store_true", help="only redraw the table and plots from --out's raw results")
    a = ap.parse_args()
    raw_path = os.path.join(a.out, "optuna_compare.json")
    # Results accumulate in one file: a run replaces the recipes and arms it measures.
    results = json.load(open(raw_path)) if os.path.exists(raw_path) else {}
    if a.report:
        report(results, a.out)
        return
    ensure_optuna()
    binary = a.postdoc
    if not binary:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "postdoc"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "postdoc")
    os.makedirs(a.out, exist_ok=True)
    for path in a.recipes.split(","):
        recipe = Recipe(path)
        trials = a.trials or recipe.manifest["study"].get("budget", {}).get("max_trials", 20)
        arms = ["postdoc"] + (["postdoc-candidate"] if a.candidate else []) + ["optuna-tpe", "optuna-random"]
        if recipe.manifest.get("early_stop"):
            arms.append("optuna-tpe+median-pruner")
        if a.arms:
            arms = [arm for arm in arms if arm in a.arms.split(",")]
        entry = results.get(recipe.name)
        if not entry or entry["trials"] != trials:
            entry = {"trials": trials, "minimize": recipe.minimize, "arms": {}}
        results[recipe.name] = entry
        for arm in arms:
            entry["arms"][arm] = entry["arms"].get(arm, [])[:a.first_seed]
        # Seed by seed, every arm in turn: whatever else loads the machine loads all arms alike.
        for seed in range(a.first_seed, a.seeds):
            for arm in arms:
                started = time.time()
                try:
                    if arm == "postdoc":
                        r = postdoc_arm(recipe, binary, seed, trials, a.lineages)
                    elif arm == "postdoc-candidate":
                        r = postdoc_arm(recipe, a.candidate, seed, trials, a.lineages and os.path.join(a.lineages, "candidate"))
                    else:
                        r = optuna_arm(recipe, arm, seed, trials)
                except Exception as e:  # one failing arm must not lose the others
                    print(f"{recipe.name} {arm} seed {seed}: {e}", file=sys.stderr)
                    continue
                entry["arms"][arm].append(r)
                print(f"{recipe.name:20} {arm:26} seed {seed}: {time.time() - started:6.1f}s", file=sys.stderr)
                with open(raw_path, "w") as f:
                    json.dump(results, f)
    report(results, a.out)


def reach_figure(runs, minimize, target):
    """(seeds reaching `target`, seeds, compute by which half the seeds reached it or None)."""
    got = [reach(run, minimize, target) for run in runs]
    hit = sorted(g for g in got if g is not None)
    half = (len(got) + 1) // 2
    return len(hit), len(got), hit[half - 1] if len(hit) >= half else None


def reach_spread(runs, tpe_runs, minimize, draws=1000):
    """How far the compute ratio to TPE moves with the seeds drawn: both arms' seeds resampled
    with replacement (TPE's median best recomputed each time), the 10th and 90th percentiles of
    the ratio. With ten seeds an arm this prints wide; that width is the honest answer."""
    rng = random.Random(0)
    ratios = []
    for _ in range(draws):
        arm = [rng.choice(runs) for _ in runs]
        tpe = [rng.choice(tpe_runs) for _ in tpe_runs]
        bests = [b for b in (curves_of(run, minimize)[0][-1] for run in tpe) if b is not None]
        if not bests:
            ratios.append(math.inf)
            continue
        target = statistics.median(bests)
        mine, theirs = reach_figure(arm, minimize, target)[2], reach_figure(tpe, minimize, target)[2]
        ratios.append(math.inf if mine is None or not theirs else mine / theirs)
    ratios.sort()
    shown = lambda v: "never" if math.isinf(v) else f"{v:.2f}"
    return f"{shown(ratios[draws // 10])} to {shown(ratios[draws * 9 // 10])}"


def reach(run, minimize, target):
    """Compute seconds spent when the run's best-so-far first reached `target` (None if never)."""
    for spent, best in curves_of(run, minimize)[1]:
        if best is not None and (best <= target if minimize else best >= target):
            return spent
    return None


def ratio(a, b):
    """`a / b` for a table cell, or a dash where either is missing."""
    return f"{a / b:.2f}" if (a is not None and b) else "-"


def report(results, out):
    lines = ["| recipe | arm | median best after N | trials wasted (median) | compute s (median) | best / TPE | waste / TPE | compute / TPE |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    reach_lines = ["| recipe | arm | seeds reaching TPE's median best | compute s by which half the seeds reached it | / TPE "
                   "| / TPE, middle 80% of resampled seeds |",
                   "|---|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        recipe_min = r["minimize"]
        summary = {}
        for arm, runs in r["arms"].items():
            if not runs:
                continue
            bests = [curves_of(run, recipe_min)[0][-1] for run in runs]
            bests = [b for b in bests if b is not None]
            waste = statistics.median(sum(t["label"] in FAILURES for t in run) for run in runs)
            compute = statistics.median(sum(t["compute_s"] for t in run) for run in runs)
            summary[arm] = (statistics.median(bests) if bests else None, waste, compute)
        tpe = summary.get("optuna-tpe")
        for arm, (best, waste, compute) in summary.items():
            lines.append(f"| {name} (N={r['trials']}) | {arm} | {best:.4g} | {waste:g} | {compute:.1f} | "
                         f"{ratio(best, tpe[0]) if tpe else '-'} | {ratio(waste, tpe[1]) if tpe else '-'} | "
                         f"{ratio(compute, tpe[2]) if tpe else '-'} |")
        if tpe and tpe[0] is not None:
            # The compute each arm needs to reach the score Optuna's TPE reaches (its median best
            # after N trials): the compute by which half of the arm's seeds have reached it. TPE's
            # own median best is reached by about half its seeds, so its figure is where the
            # slower of that half got there; an arm with fewer than half its seeds there has none.
            needed = {arm: reach_figure(runs, recipe_min, tpe[0]) for arm, runs in r["arms"].items() if runs}
            base = needed.get("optuna-tpe", (0, 0, None))[2]
            for arm, (hit, n, spent) in needed.items():
                shown = f"{spent:.1f}" if spent is not None else "not reached"
                spread = reach_spread(r["arms"][arm], r["arms"]["optuna-tpe"], recipe_min) if arm != "optuna-tpe" else "-"
                reach_lines.append(f"| {name} | {arm} | {hit} of {n} | {shown} | {ratio(spent, base)} | {spread} |")
        series_t = [(arm, list(enumerate(median_curve([curves_of(run, recipe_min)[0] for run in runs]), 1)))
                    for arm, runs in r["arms"].items() if runs]
        svg(os.path.join(out, f"{name}-trials.svg"), f"{name}: median best so far", "trials", series_t, recipe_min)
        series_c = []
        for arm, runs in r["arms"].items():
            if not runs:
                continue
            # Median over seeds of best-so-far at a common grid of compute.
            horizon = max(sum(t["compute_s"] for t in run) for run in runs)
            grid = [horizon * i / 50 for i in range(1, 51)]
            per_seed = []
            for run in runs:
                pts = curves_of(run, recipe_min)[1]
                per_seed.append([next((b for c, b in reversed(pts) if c <= g), None) for g in grid])
            med = [statistics.median([s[i] for s in per_seed if s[i] is not None]) if any(s[i] is not None for s in per_seed)
                   else None for i in range(len(grid))]
            series_c.append((arm, list(zip(grid, med))))
        svg(os.path.join(out, f"{name}-compute.svg"), f"{name}: median best so far", "compute seconds", series_c, recipe_min)
    text = "\n".join(lines) + "\n\n" + "\n".join(reach_lines) + "\n"
    with open(os.path.join(out, "optuna_compare.md"), "w") as f:
        f.write(text)
    print(text)


def curves_of(run, minimize):
    class R:
        def better(self, a, b):
            return a < b if minimize else a > b
    return curves(R(), run)


if __name__ == "__main__":
    main()
