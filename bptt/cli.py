"""The ``bptt`` command: ``train``, ``sample``, ``inspect`` and ``bench``.

This is the only module that prints errors and exits. An error a user can cause (a bad flag, a
missing or unusable corpus, a bad checkpoint, a run folder in the way) is one line on stderr and
exit status 2; a run that diverges exits 1; a run stopped by SIGINT/SIGTERM saves its checkpoint and
exits 130/143 (the shell's codes for those signals) after saying how to resume.
"""

import argparse
import os
import shlex
import sys

from .text.checkpoint import CheckpointError
from .text.config import PRESETS, Config, ConfigError, DivergedError, RunError, flag
from .text.data import BUILTINS, CorpusError
from .tools.inspect import InspectError

USER_ERRORS = (ConfigError, CorpusError, CheckpointError, RunError, InspectError)
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


class UsageError(Exception):
    """A bad command line (raised instead of argparse's usage-and-exit)."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ train

TRAIN_HELP = {
    "cell": "recurrent cell", "hidden": "hidden units per layer", "layers": "stacked layers",
    "seq_len": "characters per chunk (truncated BPTT length)",
    "batch": "parallel streams of text (with --lines: lines) per step",
    "steps": "total optimizer steps",
    "lr": "Adam learning rate (the schedule's base rate)",
    "clip": "max global gradient norm; 0: no clipping",
    "seed": "seed of the initialisation", "dtype": "float dtype of the model",
    "checkpoint_every": "write checkpoint.npz every N steps (and at the end)",
    "val_fraction": "fraction held out for validation: the end of the text; with --lines, "
                    "lines picked by a shuffle seeded by --seed",
    "eval_every": "validation loss every N steps (and at the last step)",
    "eval_chars": "validate on the first N held-out characters, the same ones every time; 0: "
                  "all of them",
    "log_every": "a metrics.csv row every N steps",
    "embed": "input embedding size; 0: one-hot input",
    "dropout": "dropout between the layers and before the head (training only)",
    "recurrent_dropout": "variational dropout of the state entering the recurrent product",
    "weight_decay": "decoupled weight decay (AdamW) when > 0",
    "lr_decay": "multiply the learning rate by F every --lr-decay-every steps",
    "lr_decay_every": "steps between two decays", "lr_decay_start": "step of the first decay",
    "lr_warmup": "linear learning-rate warmup over N steps; 0: none",
    "min_count": "read characters seen fewer than N times in the corpus as one unknown symbol "
                 "(U+FFFD, never sampled); 0: keep every character; -1: N is one per million "
                 "characters of the corpus",
    "threads": "BLAS threads; lower it when other programs share the cores (the progress "
               "bar's chars_s drops); 0: one per core",
}


def _add_train(sub) -> None:
    builtins = "\n".join(f"  {name:16} {what}" for name, what in BUILTINS.items())
    presets = "\n".join(f"  {name}: " + " ".join(f"{flag(k)} {v}" for k, v in preset.items()
                                                  if k != "lines")
                        for name, preset in PRESETS.items())
    p = sub.add_parser("train", help="train a character-level language model",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a character model; writes checkpoint.npz, best.npz, "
                                   "metrics.csv and loss.png into --out.",
                       epilog=f"built-in corpora (--builtin NAME):\n{builtins}\n"
                              f"their own defaults, for the options not given:\n{presets}")
    p.add_argument("corpus", nargs="*", metavar="CORPUS",
                   help="text files or folders (read recursively); none: a built-in corpus "
                        "(--builtin; default Tiny Shakespeare)")
    p.add_argument("--builtin", metavar="NAME", choices=list(BUILTINS), default=argparse.SUPPRESS,
                   help=f"train on a built-in corpus: {', '.join(BUILTINS)} (listed below)")
    p.add_argument("--include", action="append", metavar="GLOB", default=argparse.SUPPRESS,
                   help="in corpus folders, read only the files whose path inside the folder "
                        "matches GLOB (repeatable; '*.py' matches every Python file below "
                        "it); without it, every text file (files that are not UTF-8 text are "
                        "skipped, and counted on stderr)")
    p.add_argument("--lines", action="store_true", default=argparse.SUPPRESS,
                   help="one sample per line (names, words...): each line is read from the "
                        "zero state and ends with an end symbol; padded batches of lines")
    p.add_argument("--out", metavar="DIR", default=argparse.SUPPRESS,
                   help="run folder (default: runs/<corpus name>)")
    p.add_argument("--resume", action="store_true", default=argparse.SUPPRESS,
                   help="continue the run in --out from its checkpoint up to --steps in total")
    types = {int: int, float: float, str: str}
    for field in Config.__dataclass_fields__.values():
        if field.name not in TRAIN_HELP:
            continue
        default = getattr(Config, field.name)
        choices = {"cell": ["lstm", "gru", "rnn"], "dtype": ["float32", "float64"]}
        kwargs = ({"choices": choices[field.name]} if field.name in choices
                  else {"metavar": "N" if isinstance(default, int) else "F"})
        p.add_argument(flag(field.name), dest=field.name, type=types[type(default)],
                       default=argparse.SUPPRESS,
                       help=f"{TRAIN_HELP[field.name]} (default: {default})", **kwargs)
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from .text.train import train

    given = {k: v for k, v in vars(args).items() if k not in ("handler", "command")}
    if not given["corpus"]:
        del given["corpus"]
    config = Config(**given)
    result = train(config, overrides=set(given), log=_say)
    out = shlex.quote(result.out)
    if result.interrupted:
        _say(f"{result.interrupted} at step {result.step} of {result.steps}: checkpoint saved "
             f"in {out}; continue with: bptt train --out {out} --resume")
        return EXIT_SIGNAL.get(result.interrupted, 1)
    val = f"; val loss {result.val[1]:.4f} at step {result.val[0]}" if result.val else ""
    if result.best:
        val += f" (best {result.best[1]:.4f} at step {result.best[0]}, in best.npz)"
    _say(f"done: {result.step} steps in {out}{val}")
    _say("samples:" if "\n" in result.sample else "sample:")
    _print_text(result.sample)
    _say(f"more with: bptt sample {out}")
    return 0


# ------------------------------------------------------------------------------ sample

def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a trained run",
                       description="Print generated text (only the text) to stdout.")
    p.add_argument("path", metavar="RUN_DIR|CHECKPOINT",
                   help="a run folder (its best.npz, else checkpoint.npz) or a checkpoint file")
    p.add_argument("--latest", action="store_true",
                   help="sample from the run folder's latest checkpoint.npz, not best.npz")
    p.add_argument("--count", type=int, default=None, metavar="N",
                   help="runs trained with --lines: N samples, one per line (default: 10); on "
                        "stderr, how many are not training lines")
    p.add_argument("--length", type=int, default=500, metavar="N",
                   help="characters to generate (with --lines: at most, per sample) "
                        "(default: 500)")
    p.add_argument("--temperature", type=float, default=1.0, metavar="F",
                   help="softmax temperature; 0: greedy (default: 1.0)")
    p.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="sample among the K most likely characters (default: all)")
    p.add_argument("--prime", default="", metavar="TEXT",
                   help="text the model reads first; printed before the generated text (with "
                        "--lines: the start of every sample)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the sampling; the same seed gives the same text (default: 0)")
    _add_threads(p)
    p.set_defaults(handler=_sample)


def _add_threads(p) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="BLAS threads (default: the run's --threads); 0: one per core")


def _threads(args: argparse.Namespace, config=None) -> int:
    """The BLAS threads of a command: --threads, else the run's, else 1."""
    if args.threads is not None:
        if args.threads < 0:
            raise UsageError(f"bptt {args.command}: error: --threads: expected an integer >= 0, "
                             f"got {args.threads}")
        return args.threads
    return config.threads if config is not None else 1


def _sample(args: argparse.Namespace) -> int:
    import numpy as np

    from .text.lines import END, count_new, draw_lines
    from .text.lm import check_sampling, sample
    from .text.train import blas_threads, load_run, never_unknown

    try:
        check_sampling(args.temperature, args.top_k, args.length)
    except ValueError as err:
        raise UsageError(f"bptt sample: error: {err}") from None
    if args.seed < 0:
        raise UsageError(f"bptt sample: error: --seed: expected an integer >= 0, got {args.seed}")
    if args.count is not None and args.count < 1:
        raise UsageError(f"bptt sample: error: --count: expected an integer >= 1, got "
                         f"{args.count}")
    if args.latest and not os.path.isdir(args.path):
        raise UsageError(f"bptt sample: error: --latest: expected a run folder, got {args.path}")
    _threads(args)
    run = load_run(args.path, latest=args.latest)
    if args.count is not None and not run.config.lines:
        raise UsageError(f"bptt sample: error: --count: for runs trained with --lines; {run.path} "
                         "reads its corpus as one stream (use --length)")
    missing = run.vocab.missing(args.prime) or (END if run.config.lines and END in args.prime
                                                else "")
    if missing:
        chars = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:5])
        raise UsageError(f"bptt sample: error: --prime: not in the run's vocabulary: {chars}")
    rng = np.random.default_rng(args.seed)
    with blas_threads(_threads(args, run.config)), never_unknown(run.model, run.vocab):
        if not run.config.lines:
            _print_text(sample(run.model, run.vocab, args.length, args.temperature, args.top_k,
                               args.prime, rng))
            return 0
        count = 10 if args.count is None else args.count
        samples, ended = draw_lines(run.model, run.vocab, count, args.length, args.temperature,
                                    args.top_k, args.prime, rng)
    _print_text("\n".join(samples))
    _say(novelty(samples, ended, args.prime, args.length,
                 lambda done: count_new(done, run.seen, run.line_hash)))
    return 0


def novelty(samples: list[str], ended, prime: str, length: int, count_new) -> str:
    """What ``bptt sample --count`` says about its samples: how many of the complete ones (ended
    by the model, something drawn) are not training lines; the empty and the cut ones apart."""
    empty = [s for s, e in zip(samples, ended, strict=True) if e and s == prime]
    done = [s for s, e in zip(samples, ended, strict=True) if e and s != prime]
    cut = len(samples) - len(done) - len(empty)
    out = f"{count_new(done)} of {len(done)} complete samples are not in the training lines"
    if empty:
        out += f"; {len(empty)} empty"
    if cut:
        out += f"; {cut} cut at --length {length} (raise it to let them end)"
    return out


def _print_text(text: str) -> None:
    """The text and a newline on stdout, as UTF-8 whatever the locale (any character works)."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------------ inspect

def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="an HTML report of what a trained run does (or of "
                                       "fresh cells with --cells)",
                       description="Write one self-contained HTML page: gradient flow through "
                                   "time (trained and at initialisation), gate saturation, units "
                                   "over the text, what the model expects. Prints its path.")
    p.add_argument("path", nargs="?", metavar="RUN_DIR|CHECKPOINT",
                   help="a run folder or a checkpoint.npz (not with --cells)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text", metavar="TEXT", help="the passage to read (default: the start "
                                                    "of the run's validation text)")
    src.add_argument("--file", metavar="F", help="read the passage from a UTF-8 file")
    p.add_argument("--length", type=int, default=None, metavar="N",
                   help="characters of the validation text to read (default: 400), or with "
                        "--cells the steps of the random sequence (default: 100); at most 2000")
    p.add_argument("--units", metavar="LIST",
                   help="units to show over the text, LAYER:UNIT or UNIT (top layer), "
                        "comma-separated, from 0 (default: chosen by correlation and variance)")
    p.add_argument("--out", metavar="FILE", help="the page to write (default: report.html in "
                                                 "the run folder; cells.html with --cells)")
    p.add_argument("--cells", action="store_true",
                   help="no run: fresh RNN, GRU and LSTM layers of the same size, side by side")
    p.add_argument("--hidden", type=int, default=None, metavar="N",
                   help="with --cells: units of each layer (default: 128)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="with --cells: seed of the weights and the sequence (default: 0)")
    p.add_argument("--scale", type=float, default=None, metavar="S",
                   help="with --cells: the recurrent weights of the second set of cells, times "
                        "torch's initialisation (default: 4; the RNN explodes above about 3)")
    _add_threads(p)
    p.set_defaults(handler=_inspect)


def _inspect(args: argparse.Namespace) -> int:
    from .text.train import blas_threads

    threads = _threads(args)
    if args.threads is None and args.path is not None and not args.cells:
        threads = _run_threads(args.path)
    with blas_threads(threads):
        return _inspect_report(args)


def _run_threads(path: str) -> int:
    """The --threads of the run in ``path`` (1 if it cannot be read: inspect says why)."""
    from .text.train import load_run

    try:
        return load_run(path).config.threads
    except USER_ERRORS:
        return 1


def _inspect_report(args: argparse.Namespace) -> int:
    from .tools import inspect_report

    run_only = [f for f in ("text", "file", "units") if getattr(args, f) is not None]
    try:
        if args.cells:
            if args.path is not None or run_only:
                what = "RUN_DIR" if args.path is not None else "--" + run_only[0]
                raise UsageError(f"bptt inspect: error: --cells reads no run: drop {what}")
            seed = 0 if args.seed is None else args.seed
            if seed < 0:
                raise UsageError(f"bptt inspect: error: --seed: expected an integer >= 0, got "
                                 f"{seed}")
            out = inspect_report.cells_report(args.hidden, args.length, seed, args.out, args.scale)
        else:
            if args.path is None:
                raise UsageError("bptt inspect: error: expected RUN_DIR or CHECKPOINT (or "
                                 "--cells)")
            cells_only = [f for f in ("hidden", "seed", "scale") if getattr(args, f) is not None]
            if cells_only:
                raise UsageError(f"bptt inspect: error: --{cells_only[0]} is an option of "
                                 "--cells (a run has its own)")
            out = inspect_report.run_report(args.path, args.text, args.file, args.length,
                                            args.units, args.out, _say)
    except FileExistsError as err:
        raise UsageError(f"bptt inspect: error: {err}") from None
    _print_text(out)
    return 0


# ------------------------------------------------------------------------------ bench

def _bench(argv: list[str]) -> int:
    """``bptt bench ...``: bptt.tools.bench is imported only here (it may import torch)."""
    try:
        from .tools import bench
    except ModuleNotFoundError as err:
        if err.name != "bptt.tools.bench":
            raise
        raise UsageError("bptt bench: error: not available (bptt/tools/bench.py is missing)") \
            from None
    p = Parser(prog="bptt bench", description="Speed of the engine against a naive loop and, "
                                              "where installed, torch.")
    bench.add_arguments(p)
    return int(bench.run(p.parse_args(argv)) or 0)


# ------------------------------------------------------------------------------ main

def build_parser() -> Parser:
    parser = Parser(prog="bptt", description="Recurrent nets in NumPy with hand-written BPTT.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    _add_train(sub)
    _add_sample(sub)
    _add_inspect(sub)
    sub.add_parser("bench", help="speed of the engine (see bptt bench --help)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["bench"]:
            return _bench(argv[1:])
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except UsageError as err:
        _say(str(err))
        return 2
    except USER_ERRORS as err:
        _say(f"bptt {argv[0]}: error: {err}")
        return 2
    except DivergedError as err:
        _say(f"bptt {argv[0]}: stopped: {err}")
        return 1
    except FloatingPointError as err:           # `bptt sample` on a diverged model
        _say(f"bptt {argv[0]}: error: {err}")
        return 1
    except MemoryError as err:                  # e.g. a --hidden far too large for this machine
        _say(f"bptt {argv[0]}: error: not enough memory" + (f" ({err})" if str(err) else ""))
        return 1
    except BrokenPipeError:                     # e.g. `bptt sample RUN | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:
        _say(f"bptt {argv[0] if argv else ''}: error: {err}")
        return 1
    except KeyboardInterrupt as err:
        _say(f"bptt {argv[0] if argv else ''}: interrupted" + (f"; {err}" if str(err) else ""))
        return 130


if __name__ == "__main__":
    sys.exit(main())
