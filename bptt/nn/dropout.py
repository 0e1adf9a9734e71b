"""Dropout masks (inverted dropout, as torch) and the generator they come from.

A mask keeps each entry with probability 1 - p and scales what it keeps, so its mean is 1 and a
layer needs no change between training and evaluation:

    m = b / (1 - p),   b ~ Bernoulli(1 - p)      (m = 0 everywhere when p = 1)
    y = m * x          dL/dx = m * dL/dy          the backward uses the forward's mask

The recurrent layers use two kinds (``bptt.nn.layers``): ``dropout=p`` multiplies the outputs of
every layer but the last by a mask drawn for each step, sequence and unit (torch's meaning);
``recurrent_dropout=q`` multiplies the state that enters the recurrent product by one mask per
sequence and unit, the same at every step (Gal & Ghahramani 2016; the cells' docstrings give the
changed equations). Masks are drawn only in training mode and only for a rate above 0, so
evaluation, and a rate of 0, compute exactly what a layer without dropout computes and leave
the generator where it was.

Each layer draws from its own generator (``generator(seed)``), a stream apart from the one its
parameters were initialised from. Its state (``get_state``) is a dict of ints and strings, so a
checkpoint can store it as JSON and ``set_state`` continues the same masks.
"""

import math

import numpy as np

from . import _params
from .calls import Stacked

STREAM = 0x64726F70  # "drop": keeps the masks' stream apart from the initialisation's


def generator(seed: int | None) -> np.random.Generator:
    """The masks' generator for a layer built with ``seed`` (None: fresh entropy)."""
    return np.random.default_rng(None if seed is None else [STREAM, seed])


def check_rate(name: str, p) -> float:
    """A dropout probability as a float in [0, 1], else ValueError/TypeError naming it."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a probability in [0, 1], got {p!r}")
    if not 0 <= p <= 1:  # (a NaN fails the comparison too)
        raise ValueError(f"{name}: expected a probability in [0, 1], got {p!r}")
    return float(p)


def mask(rng: np.random.Generator, p: float, shape: tuple, dtype) -> np.ndarray:
    """A new mask of ``shape``: 0 with probability p, else 1 / (1 - p), in ``dtype``.

    Kept where a uniform 32-bit integer u >= round(p * 2^32), so p is met to within 2^-32; the
    integers are the halves of the generator's raw 64-bit draws: about half the time of a mask
    from ``rng.random`` floats (2-core Xeon, NumPy 2.4, a 64 x 256 x 32 mask, timed alternately:
    1.7-1.9 against 3.1-3.4 ms in float32, 2.3 against 3.7 ms in float64).
    """
    dtype = np.dtype(dtype)
    if p == 1:
        return np.zeros(shape, dtype)
    n = math.prod(shape)
    threshold = np.uint32(min(round(p * 2**32), 2**32 - 1))
    kept = uniform_u32(rng, n).reshape(shape) >= threshold  # (the integers are freed here)
    return np.multiply(kept, dtype.type(1.0 / (1.0 - p)), dtype=dtype)


def uniform_u32(rng: np.random.Generator, n: int) -> np.ndarray:
    """n uniform 32-bit integers, two from each raw 64-bit draw of ``rng``'s bit generator."""
    return rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]


def draw(rng: np.random.Generator, p: float, shape: tuple, dtype, training: bool):
    """``mask(...)`` in training mode with p > 0; otherwise None (no mask, nothing drawn)."""
    return mask(rng, p, shape, dtype) if training and p > 0 else None


def layer_masks(rng: np.random.Generator, p: float, q: float, shape: tuple, dtype,
                training: bool) -> tuple[list, list]:
    """The masks of one forward of a recurrent layer of ``shape`` (L, D, T, H, B), drawn in a
    fixed order: for each layer k, the recurrent masks (H, B) of its directions (rate q), then,
    unless k is the last layer, the mask (T, D*H, B) of its outputs (rate p), in the engine's
    features-first layout. Returns (between, recurrent): between[k] for k < L - 1 and
    recurrent[k * D + d], each None where nothing is dropped."""
    L, D, T, H, B = shape
    between, recurrent = [], []
    for k in range(L):
        recurrent += [draw(rng, q, (H, B), dtype, training) for _ in range(D)]
        if k < L - 1:
            between.append(draw(rng, p, (T, D * H, B), dtype, training))
    return between, recurrent


def apply(x: np.ndarray, m, out: np.ndarray | None = None) -> np.ndarray:
    """m * x (into ``out`` if given); x itself when there is no mask (m None)."""
    return x if m is None else np.multiply(x, m, out=out)


def get_state(rng: np.random.Generator) -> dict:
    """The generator's state: plain ints and strings (JSON-able)."""
    return rng.bit_generator.state


def set_state(rng: np.random.Generator, state) -> None:
    """Restore a state from ``get_state`` (ValueError naming what is wrong, and then the
    generator is unchanged)."""
    kind = type(rng.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != kind:
        raise ValueError(f"rng_state: expected a {kind} state dict from get_rng_state, "
                         f"got {str(state)[:80]}")
    before = rng.bit_generator.state
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as err:
        rng.bit_generator.state = before
        raise ValueError(f"rng_state: expected a {kind} state dict from get_rng_state "
                         f"({err})") from None


class Dropout(Stacked):
    """Inverted dropout for any array, as torch.nn.Dropout(p): in training mode each entry is
    zeroed with probability p and the rest scaled by 1/(1-p); in evaluation mode (``eval()``)
    the input passes unchanged and nothing is drawn. ``seed`` seeds the masks' generator
    (``generator``; None: ``bptt.manual_seed``'s next seed, else fresh entropy).

    Called several times in one forward (on the embedding and on the outputs), each recorded
    call keeps its own mask and each ``backward`` applies the mask of the last call not yet
    differentiated (last in, first out, ``bptt.nn.module``).
    """

    _what = "Dropout"

    def __init__(self, p: float = 0.5, *, seed: int | None = None):
        super().__init__()
        self.p = check_rate("p", p)
        self._rng = generator(_params.resolve(seed))

    def forward(self, x) -> np.ndarray:
        """x: any float array. Returns m * x in training mode (a new array), else x."""
        x = np.asarray(x)
        if x.dtype.kind != "f":
            raise TypeError(f"x: expected a float array, got dtype {x.dtype}")
        m = draw(self._rng, self.p, x.shape, x.dtype, self.training)
        y = apply(x, m)
        self._calls.push((x.shape, m), y)
        return y

    def _backward(self, entry, dy) -> np.ndarray:
        shape, m = entry
        dy = np.asarray(dy)
        if dy.shape != shape:
            raise ValueError(f"dy: expected shape {shape}, got {dy.shape}")
        return apply(dy, m)

    def backward(self, dy) -> np.ndarray:
        """dy: the loss gradient w.r.t. the output of the last recorded call not yet
        differentiated. Returns dx = m * dy with that call's mask (dy itself in evaluation
        mode)."""
        return Stacked.backward(self, dy)

    def get_rng_state(self) -> dict:
        """The state of the masks' generator (ints and strings: JSON)."""
        return get_state(self._rng)

    def set_rng_state(self, state: dict) -> None:
        """Continue the masks from a state ``get_rng_state`` gave (ValueError if not one)."""
        set_state(self._rng, state)

    def extra_repr(self) -> str:
        return f"p={self.p}"
