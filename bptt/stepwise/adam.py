"""The course's Adam: initialize_adam and update_parameters_with_adam."""


import numpy as np

from .._checks import FLOAT_DTYPES, check_shape, positive_int
from ..nn.optim import adam_update
from ._args import _mapping


def initialize_adam(parameters: dict) -> tuple[dict, dict]:
    """Adam's moments v (first) and s (second): zeros shaped like each parameter, keyed "d" + name.

    Returns (v, s).
    """
    v, s = {}, {}
    for name, p in _mapping("parameters", parameters).items():
        p = np.asarray(p)
        dt = p.dtype if p.dtype in FLOAT_DTYPES else np.dtype(np.float64)
        v["d" + name], s["d" + name] = np.zeros(p.shape, dt), np.zeros(p.shape, dt)
    return v, s


def update_parameters_with_adam(parameters: dict, grads: dict, v: dict, s: dict, t: int,
                                learning_rate: float = 0.01, beta1: float = 0.9,
                                beta2: float = 0.999, epsilon: float = 1e-8):
    """One Adam step (torch.optim.Adam's) for every parameter, with ``bptt.nn.optim.adam_update``.

    parameters: any dict of arrays (``W1, b1, ...`` or ``Waa, Wax, ...``); grads, v, s: keyed
    "d" + name; t: the step number, counting from 1. As the course writes it, each updated
    parameter and moment is a new array bound into the same dict (``parameters[name] = ...``):
    the caller's old arrays are never changed, so a snapshot ``old = dict(parameters)`` keeps the
    values before the step. Returns (parameters, v, s), the same dicts. A parameter that is not a
    float array becomes float64. Everything is checked before anything changes.
    """
    t = positive_int("t", t)
    checked = []
    for name, p in _mapping("parameters", parameters).items():
        key = "d" + name
        shape = np.shape(p)
        for what, d in (("grads", grads), ("v", v), ("s", s)):
            if key not in _mapping(what, d):
                raise ValueError(f"{what}: missing key {key!r} (for parameter {name!r})")
        g = np.asarray(grads[key])
        check_shape(f"grads[{key!r}]", g, shape)
        for what, d in (("v", v), ("s", s)):
            moment = d[key]
            if not isinstance(moment, np.ndarray) or moment.dtype not in FLOAT_DTYPES:
                raise TypeError(f"{what}[{key!r}]: expected a float array (from initialize_adam), "
                                f"got {type(moment).__name__}")
            check_shape(f"{what}[{key!r}]", moment, shape)
        checked.append((name, g, key))
    for name, g, key in checked:
        p = np.asarray(parameters[name])
        p = np.array(p, dtype=p.dtype if p.dtype in FLOAT_DTYPES else np.float64)   # new arrays:
        m1, m2 = v[key].copy(), s[key].copy()         # the caller's old ones stay as they were
        adam_update(p, g, m1, m2, t, learning_rate, beta1, beta2, epsilon)
        parameters[name], v[key], s[key] = p, m1, m2
    return parameters, v, s
