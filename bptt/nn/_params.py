"""Parameter dicts shared by the layers: torch-style uniform init, copies, checked loading, and
``HasParameters``, the state_dict / load_state_dict / zero_grad methods every layer shares."""

from typing import NamedTuple

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


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns, as torch's: the parameter names ``state`` lacked and
    the names in ``state`` the layer has no parameter for (both empty when strict)."""

    missing_keys: list
    unexpected_keys: list


def load(params: dict, shapes: dict, state, dtype, strict: bool = True) -> IncompatibleKeys:
    """Copy ``state`` (NumPy arrays or anything np.asarray takes) into ``params`` in place.

    Every name and shape is checked first, in ``shapes``' order; with ``strict`` the first
    missing or unexpected key raises ValueError naming it, without it they are left out and
    returned (torch's meaning); a mis-shaped key always raises. On error nothing is changed.
    """
    if not isinstance(strict, (bool, np.bool_)):
        raise TypeError(f"strict: expected True or False, got {type(strict).__name__}")
    unexpected = [name for name in state if name not in shapes]
    missing = [name for name in shapes if name not in state]
    if strict and unexpected:
        raise ValueError(f"state_dict: unexpected key {unexpected[0]!r}")
    loaded = {}
    for name, shape in shapes.items():
        if name not in state:
            if strict:
                raise ValueError(f"state_dict: missing key {name!r}")
            continue
        loaded[name] = as_array(name, state[name], dtype)
        check_shape(name, loaded[name], shape)
    for name, value in loaded.items():
        params[name][...] = value
    return IncompatibleKeys(missing, unexpected)


class HasParameters:
    """torch's parameter methods for a layer holding ``params`` and ``grads`` (dicts of arrays
    by name), a ``dtype``, ``_shapes()`` (each parameter's name and shape, in torch's order) and
    ``reset_parameters(seed)``: Linear, Embedding and the recurrent layers."""

    def _init_parameters(self, seed: int | None) -> None:
        """``params`` in ``_shapes()``'s order, filled by ``reset_parameters(seed)``, and
        ``grads`` zero."""
        self.params = {name: np.zeros(shape, self.dtype) for name, shape in self._shapes().items()}
        self.reset_parameters(seed)
        self.grads = {}
        self.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, keyed as torch's state_dict."""
        return copies(self.params)

    def load_state_dict(self, state: dict, strict: bool = True) -> IncompatibleKeys:
        """Load parameters (NumPy arrays or anything np.asarray takes), as torch's: every name
        and shape is checked first, and on error nothing is changed. With ``strict`` a missing
        or unexpected key is a ValueError naming it; with ``strict=False`` they are skipped.
        Returns ``(missing_keys, unexpected_keys)``; a mis-shaped key is always a ValueError."""
        return load(self.params, self._shapes(), state, self.dtype, strict)

    def zero_grad(self) -> None:
        """Set every gradient to zero in place (the arrays keep their identity)."""
        zero(self.grads, self.params)
