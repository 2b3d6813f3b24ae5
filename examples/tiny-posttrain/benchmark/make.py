"""Writes benchmark/problems.jsonl: the held-out problems the evaluator scores, drawn with a seed
no recipe uses. `python3 benchmark/make.py` from the recipe's top folder."""
import json
import random
import string

LETTERS = string.ascii_lowercase


def shift(word):
    return "".join(LETTERS[(LETTERS.index(c) + 1) % 26] for c in word)


def main():
    rng = random.Random("postdoc tiny-posttrain benchmark")
    rows, seen = [], set()
    while len(rows) < 600:
        task = ("rev", "shift")[len(rows) % 2]
        word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(5, 8)))
        if (task, word) in seen:
            continue
        seen.add((task, word))
        rows.append({"prompt": f"{task} {word}=", "answer": word[::-1] if task == "rev" else shift(word)})
    with open("benchmark/problems.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
