"""The course's "Dinosaurus Island" character model, on the built-in names corpus.

    python examples/dinosaur_names.py [--iterations 22001] [--hidden 50] [--every 2000]

The same loop as the course's ``model()``, with ``bptt.stepwise``'s functions in its notation:
``initialize_parameters``, then per iteration one name (shuffled once, then cycled) as one
sequence, X = [None] + the name's characters (None: the zero input that starts a name), Y = the
name's characters + "\\n", and ``optimize`` (forward, backward, clip to [-5, 5], gradient descent
with learning rate 0.01), carrying the hidden state from one name to the next as the course does.
Every ``--every`` iterations it prints the smoothed loss (summed over a name's characters) and
``--names`` names drawn with ``sample`` (seeds 0, 1, ...; since the draw at step k uses seed + 2k,
as the course's does, seed s + 2 repeats the draws of seed s from its second step on, so
alternate names often end alike, as in the course's own output). The corpus is
bptt/corpus/names.txt: 5,163 first names, lower case, one per line (27 symbols with "\\n", like
the course's dinos.txt).
"""

import argparse
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from bptt import stepwise as sw

LEARNING_RATE = 0.01       # the course's


def read_names(path: str | None) -> str:
    """The text of ``path``, else the built-in names corpus; lower case, as the course reads it."""
    source = Path(path) if path else resources.files("bptt") / "corpus" / "names.txt"
    try:
        return source.read_text(encoding="utf-8").lower()
    except (OSError, UnicodeDecodeError) as err:
        sys.exit(f"corpus: cannot read {source}: {err}")


def smooth(loss: float, current: float) -> float:
    """The course's running average of the loss."""
    return loss * 0.999 + current * 0.001


def show(indices: list, ix_to_char: dict) -> str:
    """A sampled name, capitalised, without its newline."""
    name = "".join(ix_to_char[i] for i in indices).strip("\n")
    return name[:1].upper() + name[1:]


def main(argv=None) -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", help="one name per line (default: bptt/corpus/names.txt)")
    ap.add_argument("--iterations", type=int, default=22001, help="names trained on (22001)")
    ap.add_argument("--hidden", type=int, default=50, help="n_a (50)")
    ap.add_argument("--every", type=int, default=2000, help="report every N iterations (2000)")
    ap.add_argument("--names", type=int, default=7, help="names sampled per report (7)")
    args = ap.parse_args(argv)
    for flag in ("iterations", "hidden", "every", "names"):
        if getattr(args, flag) < 1:
            ap.error(f"--{flag}: expected an integer >= 1, got {getattr(args, flag)}")

    data = read_names(args.corpus)
    chars = sorted(set(data) | {"\n"})
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    ix_to_char = dict(enumerate(chars))
    examples = [line.strip() for line in data.split("\n") if line.strip()]
    if not examples:
        sys.exit("corpus: no names in it (expected one name per line)")
    np.random.RandomState(0).shuffle(examples)          # the course's np.random.seed(0) shuffle
    vocab_size = len(chars)
    print(f"{len(examples)} names, {vocab_size} symbols, n_a = {args.hidden}")

    parameters = sw.initialize_parameters(args.hidden, vocab_size, vocab_size)
    loss = -np.log(1.0 / vocab_size) * args.names       # the course's initial smoothed loss
    a_prev = np.zeros((args.hidden, 1))
    start, names = time.perf_counter(), []
    for j in range(args.iterations):
        ids = [char_to_ix[c] for c in examples[j % len(examples)]]
        X = [None] + ids
        Y = ids + [char_to_ix["\n"]]
        current, _, a_prev = sw.optimize(X, Y, a_prev, parameters, LEARNING_RATE)
        loss = smooth(loss, current)
        if j % args.every == 0 or j == args.iterations - 1:
            names = [show(sw.sample(parameters, char_to_ix, seed), ix_to_char)
                     for seed in range(args.names)]
            print(f"Iteration: {j}, Loss: {loss:f} ({time.perf_counter() - start:.1f} s)")
            print("\n".join(names) + "\n")
    return names


if __name__ == "__main__":
    main()
