"""Parameter dicts shared by the layers: torch-style uniform init, copies, checked loading."""

import numpy as np

from .._checks import as_array, check_shape


def fill_uniform(params: dict, bound: float, seed: int | None) -> None:
    """Every parameter ~ U(-bound, bound), in the dict's order, from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    for p in params.values():
        p[...] = rng.uniform(-bound, bound, size=p.shape)


def copies(params: dict) -> dict:
    """A state_dict: copies of the parameters under the same names."""
    return {name: p.copy() for name, p in params.items()}


def zero(grads: dict, params: dict) -> None:
    """Set ``grads`` to zero in place, one array per parameter, each keeping its identity (an
    array missing or of another shape or dtype is made anew)."""
    for name, p in params.items():
        g = grads.get(name)
        if isinstance(g, np.ndarray) and g.shape == p.shape and g.dtype == p.dtype:
            g.fill(0)
        else:
            grads[name] = np.zeros_like(p)


def accumulate(grads: dict, params: dict, new: dict) -> None:
    """``grads[name] += new[name]`` in place for every parameter (torch's rule: gradients add
    up until ``zero_grad``)."""
    for name, p in params.items():
        g = grads.get(name)
        if not (isinstance(g, np.ndarray) and g.shape == p.shape and g.dtype == p.dtype):
            g = grads[name] = np.zeros_like(p)
        np.add(g, new[name], out=g)


def load(params: dict, shapes: dict, state, dtype) -> None:
    """Copy ``state`` (NumPy arrays or anything np.asarray takes) into ``params`` in place.

    Every name and shape is checked first, in ``shapes``' order; the first missing, unexpected or
    mis-shaped key raises ValueError naming it, and then nothing has been changed.
    """
    for name in state:
        if name not in shapes:
            raise ValueError(f"state_dict: unexpected key {name!r}")
    loaded = {}
    for name, shape in shapes.items():
        if name not in state:
            raise ValueError(f"state_dict: missing key {name!r}")
        loaded[name] = as_array(name, state[name], dtype)
        check_shape(name, loaded[name], shape)
    for name, value in loaded.items():
        params[name][...] = value
