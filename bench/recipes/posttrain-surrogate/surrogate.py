"""The stand-in's model: how knob values become a point of the unit cube, and the Gaussian
process's mean there. bench/fit_surrogate.py fits with this encoding and train.py predicts with
it, so the two cannot drift apart."""
import math


def encode(space, values):
    """Each number scaled to [0, 1] (log-scaled where marked), each choice one-hot."""
    x = []
    for name, (kind, *arg) in space.items():
        v = values[name]
        if kind == "log":
            x.append((math.log(v) - math.log(arg[0])) / (math.log(arg[1]) - math.log(arg[0])))
        elif kind == "lin":
            x.append((v - arg[0]) / (arg[1] - arg[0]))
        else:
            x.extend(1.0 if v == o else 0.0 for o in arg)
    return x


def predict(model, values):
    x = encode(model["space"], values)
    return model["prior_mean"] + model["amplitude"] * sum(
        w * math.exp(-0.5 * sum(((a - b) / l) ** 2 for a, b, l in zip(x, p, model["lengths"])))
        for w, p in zip(model["weights"], model["points"]))
