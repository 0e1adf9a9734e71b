"""``manual_seed``: one global seed for the layers built without one, as torch.manual_seed.

Every layer takes ``seed=``; with ``seed=None`` it initialises from fresh entropy unless
``manual_seed(n)`` was called, after which each such layer (and Dropout's generator) takes the
next seed of one generator seeded with n: the same program after the same ``manual_seed`` builds
the same weights and draws the same masks.
"""

import numpy as np

_global: dict = {"rng": None}


def manual_seed(seed: int) -> None:
    """Seed the generator that layers built with ``seed=None`` draw their seeds from."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    _global["rng"] = np.random.default_rng(int(seed))


def next_seed() -> int | None:
    """The next seed for a layer built with ``seed=None``: None (fresh entropy) unless
    ``manual_seed`` was called."""
    rng = _global["rng"]
    return None if rng is None else int(rng.integers(0, 2**63))
