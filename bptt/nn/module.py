"""``Module`` and ``Parameter``: how the pieces of a model compose, as in torch.nn, with the
backward written by hand.

A ``Parameter`` is a NumPy array (``isinstance(p, np.ndarray)``; every NumPy function takes it)
that carries its gradient in ``p.grad``, an array of its shape, zero until a backward adds into
it. Arithmetic on a parameter gives plain arrays (``p * 2``, ``p[0]``, ``p.copy()``); an in-place
operation (``p -= lr * p.grad``) keeps it a parameter.

A ``Module`` registers what is assigned to its attributes: a Parameter becomes one of its
parameters, a Module one of its children (torch's ``__setattr__``). So

    model.decoder.weight = model.encoder.weight          # tying: one array, one .grad

makes both layers read and add into the same array: ``named_parameters()`` yields it once (under
its first name), ``state_dict()`` holds both keys (as torch's). A model's ``forward`` is the
user's; its ``backward`` too, chained by hand through the children's backwards in reverse order.

Calls and backwards: the recurrent layers differentiate their last recorded forward
(``bptt.nn.grad_mode``). Every other module (Linear, Embedding, Dropout, the cells, LogSoftmax)
may be called several times in one forward: each recorded call pushes what its backward needs
on the module's stack of calls (``bptt.nn.calls``), and each ``backward`` pops the last one
(last in, first out), so backwards run in the reverse order of the calls, as the chain rule
reads them.
"""

import copy as _copy
from typing import NamedTuple

import numpy as np

from .._checks import as_array, check_shape


class Parameter(np.ndarray):
    """An array that is a parameter of a module, with its gradient in ``.grad``.

    ``Parameter(data)`` shares ``data``'s memory when it is a float NumPy array (as
    torch.nn.Parameter shares its tensor's), else makes a float array of it; ``dtype`` converts.
    ``.grad`` starts as zeros of the same shape and dtype.
    """

    _leaf = False   # instances made by __new__ are parameters; views and results are not
    grad = None

    def __new__(cls, data, dtype=None):
        a = np.asarray(data, dtype=dtype)
        if a.dtype.kind != "f":
            raise TypeError(f"Parameter: expected float data, got dtype {a.dtype}")
        p = a.view(cls)
        p._leaf = True
        p.grad = np.zeros(a.shape, a.dtype)
        return p

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        if type(arr) is Parameter and arr._leaf:   # an in-place operation into a parameter
            return arr
        arr = arr.view(np.ndarray)
        return arr[()] if return_scalar else arr

    def __getitem__(self, key):
        return np.ndarray.__getitem__(self.view(np.ndarray), key)

    def copy(self, order="C"):
        return np.array(self, copy=True, order=order, subok=False)

    def __reduce__(self):
        return _rebuild, (np.array(self, subok=False), self.grad)

    def __reduce_ex__(self, protocol):
        return self.__reduce__()

    def __deepcopy__(self, memo):
        return _rebuild(np.array(self, subok=False), _copy.deepcopy(self.grad, memo))

    def __repr__(self):
        return "Parameter(" + repr(self.view(np.ndarray)).removeprefix("array(")


def _rebuild(data: np.ndarray, grad) -> Parameter:
    p = Parameter(data)
    p.grad = grad
    return p


def plain(p: np.ndarray) -> np.ndarray:
    """A plain ndarray view of a parameter (the hot loops use these, so that NumPy's ufuncs
    never call the subclass's hooks)."""
    return p.view(np.ndarray) if type(p) is not np.ndarray else p


def unique(params) -> list:
    """``params`` (a Parameter, or an iterable of parameters or arrays) as a list, each array
    once (a tied weight listed twice counts once)."""
    if isinstance(params, np.ndarray):
        params = [params]
    elif isinstance(params, dict):
        params = params.values()
    seen, out = set(), []
    for p in params:
        if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str):
            p = p[1]                             # a (name, parameter) pair
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns, as torch's: the parameter names the state lacked and
    the names in it the module has no parameter for (both empty when strict)."""

    missing_keys: list
    unexpected_keys: list


class Module:
    """The base of every layer and of a user's own models (torch.nn.Module's API).

    A subclass calls ``super().__init__()`` first, then assigns its parameters and children as
    attributes, and writes ``forward`` (called by ``model(...)``) and ``backward``.
    """

    def __init__(self):
        d = self.__dict__
        d.setdefault("_parameters", {})
        d.setdefault("_modules", {})
        d.setdefault("training", True)

    # ------------------------------------------------------------------ registration

    def __setattr__(self, name, value):
        d = self.__dict__
        params, modules = d.get("_parameters"), d.get("_modules")
        is_param = isinstance(value, Parameter) and value._leaf
        if is_param or isinstance(value, Module):
            if params is None:
                raise AttributeError(f"cannot assign {type(value).__name__} {name!r} before "
                                     f"Module.__init__(): call super().__init__() first")
            if is_param:
                self._check_parameter(name, value)
            d.pop(name, None)
            (modules if is_param else params).pop(name, None)
            (params if is_param else modules)[name] = value   # (a replaced one keeps its place)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"{name}: cannot assign a {type(value).__name__} as a parameter "
                                f"(expected a bptt.Parameter or None; wrap an array as "
                                f"bptt.Parameter(array))")
            params[name] = None
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"{name}: cannot assign a {type(value).__name__} as a child "
                                f"module (expected a bptt.Module or None)")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for store in (self.__dict__.get("_parameters", {}), self.__dict__.get("_modules", {})):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def _check_parameter(self, name: str, value: Parameter) -> None:
        """Hook: a built-in layer checks the shape and dtype of a parameter assigned to it."""

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add ``param`` (a Parameter, or None) under ``name`` (torch's)."""
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module) -> None:
        """Add ``module`` (a Module, or None) as a child under ``name`` (torch's)."""
        if module is None:
            self._modules[name] = None
        else:
            setattr(self, name, module)

    # ------------------------------------------------------------------ traversal

    def named_modules(self, memo=None, prefix: str = ""):
        """(name, module) for this module and every descendant, each once; this one is ``""``."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """(dotted name, parameter) pairs; an array reachable under several names (a tied
        weight) comes once, under its first name, as torch's."""
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mprefix}.{name}" if mprefix else name), p

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    # ------------------------------------------------------------------ modes and gradients

    def train(self, mode: bool = True):
        """Training mode (dropout on) for this module and every descendant, or with ``mode``
        False evaluation mode; returns the module."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self):
        """Evaluation mode (``train(False)``); returns the module."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to zero in place (the arrays keep their identity)."""
        for p in self.parameters():
            zero_grad(p)

    # ------------------------------------------------------------------ state_dict

    def _state_items(self):
        """(dotted name, parameter) for every parameter slot, tied ones under each name."""
        for mprefix, m in self.named_modules():
            for name, p in m._parameters.items():
                if p is not None:
                    yield (f"{mprefix}.{name}" if mprefix else name), p

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters under torch's dotted keys (a tied weight under each of its
        names, as torch's)."""
        return {name: p.copy() for name, p in self._state_items()}

    def load_state_dict(self, state, strict: bool = True) -> IncompatibleKeys:
        """Load arrays (NumPy, or anything np.asarray takes) keyed as ``state_dict()``, as
        torch's. Every name and shape is checked first, and on error nothing changes: with
        ``strict`` a missing or unexpected key is a ValueError naming it, without it they are
        skipped and returned as ``(missing_keys, unexpected_keys)``; a mis-shaped key always
        raises."""
        if not isinstance(strict, (bool, np.bool_)):
            raise TypeError(f"strict: expected True or False, got {type(strict).__name__}")
        slots = dict(self._state_items())
        unexpected = [name for name in state if name not in slots]
        missing = [name for name in slots if name not in state]
        if strict and unexpected:
            raise ValueError(f"state_dict: unexpected key {unexpected[0]!r}")
        loaded = {}
        for name, p in slots.items():   # in order: the first missing or mis-shaped key raises
            if name not in state:
                if strict:
                    raise ValueError(f"state_dict: missing key {name!r}")
                continue
            loaded[name] = as_array(name, state[name], p.dtype)
            check_shape(name, loaded[name], p.shape)
        for name, value in loaded.items():
            slots[name][...] = value
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ calling and showing

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}: a Module subclass writes forward()")

    def extra_repr(self) -> str:
        """The part of the repr between the parentheses (a leaf layer's configuration)."""
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        extra = self.extra_repr()
        head = f"{type(self).__name__}(" + (f"\n  {extra}" if extra else "")
        return head + "\n" + "\n".join(lines) + "\n)"


def zero_grad(p: np.ndarray) -> None:
    """``p.grad`` set to zero in place (made anew if missing or of another shape or dtype)."""
    g = p.grad
    if isinstance(g, np.ndarray) and g.shape == p.shape and g.dtype == p.dtype:
        g.fill(0)
    else:
        p.grad = np.zeros(p.shape, p.dtype)


def add_grad(p: np.ndarray, g: np.ndarray) -> None:
    """``p.grad += g`` in place (torch's rule: gradients add up until they are zeroed)."""
    if not (isinstance(p.grad, np.ndarray) and p.grad.shape == p.shape
            and p.grad.dtype == p.dtype):
        p.grad = np.zeros(p.shape, p.dtype)
    np.add(p.grad, g, out=p.grad)
