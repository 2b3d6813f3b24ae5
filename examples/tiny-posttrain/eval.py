"""The evaluator: exact-match accuracy of greedy completions on the held-out benchmark. Runs
from postdoc's pristine copy of the protected files (this file and benchmark/), never from the
trial's tree, and reads only the trained weights from $POSTDOC_OUT."""
import json
import os

from benchmark import infer


def main():
    params = infer.load(os.path.join(os.environ["POSTDOC_OUT"], "model.npz"))
    with open("benchmark/problems.jsonl") as f:
        problems = [json.loads(line) for line in f]
    completions = infer.generate(params, [p["prompt"] for p in problems], max_new=12)
    right = {"rev": [], "shift": []}
    for p, c in zip(problems, completions):
        right[p["prompt"].split()[0]].append(c == p["answer"])
    scores = {f"{task}_accuracy": sum(r) / len(r) for task, r in right.items()}
    scores["accuracy"] = sum(sum(r) for r in right.values()) / len(problems)
    print(json.dumps(scores))


if __name__ == "__main__":
    main()
