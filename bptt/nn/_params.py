"""What the built-in layers share about their parameters: torch-style uniform init, adding a
backward's gradients into ``.grad``, and ``HasParameters``, the ``Module`` base of Linear,
Embedding, the cells and the recurrent layers (their parameters built from ``_shapes()``, the
``params`` and ``grads`` dicts)."""

from collections.abc import Mapping, MutableMapping

import numpy as np

from .module import Module, Parameter, add_grad
from .seed import next_seed


def fill_uniform(params: dict, bound: float, seed: int | None) -> None:
    """Every parameter ~ U(-bound, bound), in the dict's order, from ``default_rng(seed)``
    (with ``seed=None``: from ``bptt.manual_seed``'s generator when one was set)."""
    rng = generator(seed)
    for p in params.values():
        p[...] = rng.uniform(-bound, bound, size=p.shape)


def generator(seed: int | None) -> np.random.Generator:
    """``default_rng(resolve(seed))``."""
    return np.random.default_rng(resolve(seed))


def resolve(seed: int | None) -> int | None:
    """``seed``; for None after ``bptt.manual_seed(n)``, the next seed of the generator that
    call set (so layers built after it are reproducible, as after torch.manual_seed); else
    None (fresh entropy)."""
    return next_seed() if seed is None else seed


def accumulate(params: dict, new: dict) -> None:
    """``params[name].grad += new[name]`` in place for every name in ``new`` (torch's rule:
    gradients add up until ``zero_grad``)."""
    for name, g in new.items():
        add_grad(params[name], g)


class ParamView(Mapping):
    """``layer.params``: a live dict-like view of a module's own parameters by name (a slot
    set to None, as a Linear's ``bias=False``, is left out)."""

    def __init__(self, params: dict):
        self._params = params

    def __getitem__(self, name):
        p = self._params[name]
        if p is None:
            raise KeyError(name)
        return p

    def __setitem__(self, name, value):
        """``params[name] op= ...`` keeps the parameter; another array is copied into it (its
        shape checked), so the layer keeps reading its own parameter."""
        p = self[name]
        if value is not p:
            value = np.asarray(value)
            if value.shape != p.shape:
                raise ValueError(f"{name}: expected shape {p.shape}, got {value.shape}")
            p[...] = value

    def __iter__(self):
        return (name for name, p in self._params.items() if p is not None)

    def __len__(self):
        return sum(p is not None for p in self._params.values())

    def __repr__(self):
        return repr(dict(self))


class GradView(ParamView, MutableMapping):
    """``layer.grads``: a dict-like view of the parameters' ``.grad`` arrays by name."""

    def __getitem__(self, name):
        return ParamView.__getitem__(self, name).grad

    def __setitem__(self, name, value):
        self._params[name].grad = value

    def __delitem__(self, name):
        raise TypeError("grads: a view of the parameters' .grad; zero them with zero_grad()")

class HasParameters(Module):
    """A built-in layer: ``_shapes()`` (each parameter's name and shape, in torch's order),
    ``reset_parameters(seed)`` and a ``dtype``. Its parameters are attributes with torch's names
    (``layer.weight``, ``lstm.weight_hh_l0``); ``params`` is the dict of them by name and
    ``grads`` the dict of their ``.grad`` (the same arrays)."""

    def _init_parameters(self, seed: int | None) -> int | None:
        """Zero parameters in ``_shapes()``'s order, filled by ``reset_parameters(seed)``.
        Returns the seed used (``manual_seed``'s next one for None, if it was called), for the
        layer's other generators."""
        Module.__init__(self)
        for name, shape in self._shapes().items():
            setattr(self, name, Parameter(np.zeros(shape, self.dtype)))
        seed = resolve(seed)
        self.reset_parameters(seed)
        return seed

    @property
    def params(self) -> ParamView:
        """The parameters by name (a live view: assigning an attribute shows here)."""
        return self._view("_param_view", ParamView)

    @property
    def grads(self) -> GradView:
        """The parameters' gradients by name (each ``params[name].grad``)."""
        return self._view("_grad_view", GradView)

    def _view(self, key, kind):
        view = self.__dict__.get(key)
        if view is None or view._params is not self._parameters:
            view = self.__dict__[key] = kind(self._parameters)
        return view

    def _check_parameter(self, name: str, value: Parameter) -> None:
        shapes = self._shapes() if "_parameters" in self.__dict__ else {}
        if name in shapes and (value.shape != shapes[name] or value.dtype != self.dtype):
            raise ValueError(f"{name}: expected a parameter of shape {shapes[name]} and dtype "
                             f"{self.dtype.name}, got {value.shape} {value.dtype.name}")
