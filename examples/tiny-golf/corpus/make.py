"""Generates the example's text: English-like prose from a small probabilistic grammar (a cast
of recurring people and places, agreement, numbers, dialogue, paragraphs), so that models with
more context and capacity earn lower bits per byte. Deterministic:
`python3 corpus/make.py` writes corpus/train.txt and valid/valid.txt (another seed)."""
import random

PEOPLE = ["Ada", "Basil", "Cora", "Dmitri", "Elsa", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Lars"]
PLACES = ["the mill", "the harbour", "the old library", "the orchard", "the station", "the bakery", "the river bank", "the market square"]
THINGS = ["lantern", "letter", "basket", "compass", "violin", "map", "kettle", "ledger", "bicycle", "clock"]
ADJ = ["small", "heavy", "bright", "broken", "silver", "wooden", "quiet", "curious", "ancient", "careful"]
VERBS = [("carries", "carried"), ("finds", "found"), ("repairs", "repaired"), ("paints", "painted"), ("sells", "sold"), ("hides", "hid")]
TIMES = ["in the morning", "after supper", "at dawn", "before the rain", "on Sunday", "late at night"]
FEEL = ["glad", "tired", "worried", "amused", "surprised", "calm"]


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def thing(r):
    adj = r.choice(ADJ) if r.random() < 0.6 else ""
    noun = r.choice(THINGS)
    phrase = f"{adj} {noun}".strip()
    return f"{article(phrase)} {phrase}", noun


def sentence(r, state):
    who = state["who"] if r.random() < 0.4 else r.choice(PEOPLE)
    state["who"] = who
    kind = r.random()
    if kind < 0.25:
        obj, noun = thing(r)
        state["noun"] = noun
        present, past = r.choice(VERBS)
        verb = past if state["past"] else present
        return f"{who} {verb} {obj} {r.choice(TIMES)}."
    if kind < 0.4:
        n = r.randint(2, 40)
        noun = state.get("noun", r.choice(THINGS))
        return f"There {'were' if state['past'] else 'are'} {n} {noun}s at {r.choice(PLACES)}."
    if kind < 0.55:
        other = r.choice([p for p in PEOPLE if p != who])
        return f'"Have you seen the {state.get("noun", "map")}?" asked {who}. "Not since {r.choice(TIMES)}," said {other}.'
    if kind < 0.7:
        return f"{who} {'was' if state['past'] else 'is'} {r.choice(FEEL)}, because {r.choice(PLACES)} {'was' if state['past'] else 'is'} {r.choice(['closed', 'crowded', 'empty', 'far away'])}."
    if kind < 0.8:
        a, b = r.randint(1, 99), r.randint(1, 99)
        return f"The ledger said {a} and {b} make {a + b}, and {who} checked it twice."
    if kind < 0.9:
        return f"At {r.choice(PLACES)}, {who} met {r.choice(PEOPLE)} and they talked about the {r.choice(THINGS)}."
    return f"Then {who} went home."


def text(seed, chars):
    r = random.Random(seed)
    out, size = [], 0
    while size < chars:
        state = {"who": r.choice(PEOPLE), "past": r.random() < 0.5}
        para = " ".join(sentence(r, state) for _ in range(r.randint(3, 7)))
        out.append(para)
        size += len(para) + 2
    return "\n\n".join(out) + "\n"


def main():
    with open("corpus/train.txt", "w") as f:
        f.write(text("tiny-golf train", 1_200_000))
    with open("valid/valid.txt", "w") as f:
        f.write(text("tiny-golf valid", 120_000))


if __name__ == "__main__":
    main()
