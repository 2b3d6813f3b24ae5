"""The string tasks the benchmark asks for, and a generator of practice problems for them.
Problem formats, the mix of tasks and the lengths drawn are part of the recipe."""
import string

LETTERS = string.ascii_lowercase


def answer(task, word):
    if task == "rev":
        return word[::-1]
    if task == "shift":
        return "".join(LETTERS[(LETTERS.index(c) + 1) % 26] for c in word)
    raise ValueError(f"unknown task {task!r}")


def problem(task, word):
    """The prompt the benchmark uses, and the expected completion."""
    return f"{task} {word}=", answer(task, word)


def draw(rng, task, min_len, max_len):
    n = int(rng.integers(min_len, max_len + 1))
    return problem(task, "".join(rng.choice(list(LETTERS), n)))
