"""Argument checks of the step-by-step API: shapes named in the course's legend, layouts from
torch or Keras named as such, caches checked before use."""

from collections.abc import Mapping

import numpy as np

from .._checks import as_array

# The course's names of the LSTM gate blocks, in the cell's order i, f, g, o (torch's too);
# the course calls the candidate g "c" (cct).
LSTM_GATES = ("i", "f", "c", "o")


def _dtype(*values) -> np.dtype:
    """float32 when every given array is float32, else float64 (the course's default)."""
    if all(getattr(v, "dtype", None) == np.float32 for v in values):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _array(name: str, value, dtype: np.dtype, legend: str, shape: tuple) -> np.ndarray:
    """``value`` as an array of ``dtype`` with ``shape`` (None: any size), else ValueError/TypeError
    ``name: expected shape (n_a, m) = (5, 10), got (5, 7)``."""
    a = as_array(name, value, dtype, ndim=len(shape) if None in shape else None, what=legend)
    want = tuple(a.shape[k] if n is None else n for k, n in enumerate(shape))
    if a.shape != want:
        raise ValueError(f"{name}: expected shape {legend} = {want}, got {a.shape}")
    return a


def _mapping(name: str, value) -> Mapping:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}: expected a dict of arrays, got {type(value).__name__}")
    return value


def _param(parameters: Mapping, name: str, dtype: np.dtype, legend: str,
           shape: tuple) -> np.ndarray:
    if name not in parameters:
        also = " or 'b', the dinosaur exercise's name" if name == "ba" else ""
        raise ValueError(f"parameters: missing key {name!r}{also} (expected an array of shape "
                         f"{legend})")
    return _array(name, parameters[name], dtype, legend, shape)


def rnn_bias_key(parameters: Mapping) -> str:
    """The key of a course RNN's hidden bias: ``ba`` (the first notebook's name) or ``b`` (the
    dinosaur exercise's). One rule everywhere a course RNN dict goes: either name is accepted,
    never both, and gradients come back keyed "d" + that name (``dba`` or ``db``)."""
    given = [k for k in ("ba", "b") if k in parameters]
    if len(given) == 2:
        raise ValueError("parameters: expected the hidden bias as 'ba' or 'b' (the dinosaur "
                         "exercise's name), got both")
    return given[0] if given else "ba"


# Layouts a learner may bring from torch or Keras, and the transpose that turns each into the
# course's (n_x, m, T_x): x.transpose(perm).
_OTHER_LAYOUTS = (("(T_x, m, n_x)", "torch's", (2, 1, 0)), ("(m, T_x, n_x)", "Keras's", (2, 0, 1)),
                  ("(m, n_x, T_x)", "", (1, 0, 2)), ("(T_x, n_x, m)", "", (1, 2, 0)))


def _expected_n_x(parameters, weight: str, stacked: bool) -> int | None:
    """n_x as the parameters fix it: the columns of ``weight`` (Wax), or its columns minus its rows
    when it acts on [a_prev; xt] (Wf, Wu). None when the parameters cannot say."""
    shape = np.shape(parameters.get(weight)) if isinstance(parameters, Mapping) else ()
    if len(shape) != 2:
        return None
    n_x = shape[1] - shape[0] if stacked else shape[1]
    return n_x if n_x > 0 else None


def _layout_error(name: str, shape: tuple, n_x: int, m: int | None,
                  source: str) -> ValueError | None:
    """For an ``x`` whose first axis is not n_x but that fits n_x (and m) when transposed: the
    error naming the layout it seems to have and the transpose. None when no transpose fits (then
    the weights are what the later checks blame)."""
    legend = "(n_x, m, T_x)" if len(shape) == 3 else "(n_x, m)"
    msg = (f"{name}: expected the layout {legend} (features first) with n_x = {n_x} ({source}), "
           f"got shape {shape}")
    if len(shape) == 2:
        if shape[1] == n_x and (m is None or shape[0] == m):
            return ValueError(f"{msg}; it looks like (m, n_x): pass {name}.T")
        return None
    for layout, whose, perm in _OTHER_LAYOUTS:
        got = tuple(shape[k] for k in perm)
        if got[0] == n_x and (m is None or got[1] == m):
            whose = f", {whose} layout" if whose else ""
            return ValueError(f"{msg}; it looks like {layout}{whose}: pass "
                              f"{name}.transpose{perm}, of shape {got}")
    return None


def _input(name: str, value, dtype: np.dtype, ndim: int, n_x: int | None = None,
           m: int | None = None, source: str = "") -> np.ndarray:
    """x (n_x, m, T_x) or xt (n_x, m), with at least one example (and one step). ``n_x`` (from
    ``source``, the parameters) and ``m`` (from a0), when known, tell a transposed x apart."""
    legend = "(n_x, m, T_x)" if ndim == 3 else "(n_x, m)"
    a = as_array(name, value, dtype, ndim=ndim, what=legend)
    if n_x is not None and a.shape[0] != n_x:
        err = _layout_error(name, a.shape, n_x, m, source)
        if err is not None:
            raise err
    if 0 in a.shape[1:]:
        raise ValueError(f"{name}: expected at least one example and one step {legend}, "
                         f"got shape {a.shape}")
    return a


def _batch(state) -> int | None:
    """m as a0 or a_prev says it (None when it is not a 2-D array)."""
    shape = np.shape(state)
    return shape[1] if len(shape) == 2 else None


def _rnn_weights(parameters, n_x: int, dtype: np.dtype, head: bool = True) -> dict:
    """Checked RNN parameters in ``dtype``: Wax, Waa, ba (given as ``ba`` or ``b``,
    ``rnn_bias_key``), and Wya, by when ``head``."""
    _mapping("parameters", parameters)
    Waa = _param(parameters, "Waa", dtype, "(n_a, n_a)", (None, None))
    n_a = Waa.shape[0]
    w = {"Waa": _array("Waa", Waa, dtype, "(n_a, n_a)", (n_a, n_a)),
         "Wax": _param(parameters, "Wax", dtype, "(n_a, n_x)", (n_a, n_x)),
         "ba": _param(parameters, rnn_bias_key(parameters), dtype, "(n_a, 1)", (n_a, 1))}
    if head:
        w["Wya"] = _param(parameters, "Wya", dtype, "(n_y, n_a)", (None, n_a))
        w["by"] = _param(parameters, "by", dtype, "(n_y, 1)", (w["Wya"].shape[0], 1))
    return w


def _lstm_weights(parameters, n_x: int, dtype: np.dtype, head: bool = True) -> dict:
    """Checked LSTM parameters in ``dtype``, the four gates stacked in the cell's order:
    W (4 n_a, n_a + n_x) acting on [a_prev; xt], b (4 n_a, 1); and Wy, by when ``head``."""
    _mapping("parameters", parameters)
    n_a = _param(parameters, "Wf", dtype, "(n_a, n_a + n_x)", (None, None)).shape[0]
    Ws, bs = [], []
    for g in LSTM_GATES:
        Ws.append(_param(parameters, "W" + g, dtype, "(n_a, n_a + n_x)", (n_a, n_a + n_x)))
        bs.append(_param(parameters, "b" + g, dtype, "(n_a, 1)", (n_a, 1)))
    w = {"W": np.concatenate(Ws), "b": np.concatenate(bs), "n_a": n_a}
    if head:
        w["Wy"] = _param(parameters, "Wy", dtype, "(n_y, n_a)", (None, n_a))
        w["by"] = _param(parameters, "by", dtype, "(n_y, 1)", (w["Wy"].shape[0], 1))
    return w


def _state(name: str, value, dtype: np.dtype, n_a: int, m: int) -> np.ndarray:
    """a0, a_prev, c_prev, da_next, ...: (n_a, m), naming a batch that differs from x's."""
    a = as_array(name, value, dtype, ndim=2, what="(n_a, m)")
    if a.shape[0] == n_a and a.shape[1] != m:
        raise ValueError(f"{name}: expected shape (n_a, m) = {(n_a, m)}, got {a.shape} "
                         f"(its batch {a.shape[1]} differs from the input's batch {m})")
    return _array(name, a, dtype, "(n_a, m)", (n_a, m))


def _cache(cache, length: int, origin: str) -> tuple:
    if not isinstance(cache, (tuple, list)) or len(cache) != length:
        raise TypeError(f"cache: expected the {length}-tuple returned by {origin}, "
                        f"got {type(cache).__name__}")
    return tuple(cache)


def _caches(caches, length: int, origin: str) -> tuple[list, np.ndarray]:
    """(list of cell caches, x) from a sequence forward."""
    if not isinstance(caches, (tuple, list)) or len(caches) != 2:
        raise TypeError(f"caches: expected the pair (list of cell caches, x) returned by {origin}, "
                        f"got {type(caches).__name__}")
    cells, x = caches[0], np.asarray(caches[1])
    if not isinstance(cells, (tuple, list)):
        raise TypeError(f"caches[0]: expected the list of cell caches from {origin}, "
                        f"got {type(cells).__name__}")
    if x.ndim != 3 or not 0 < len(cells) == x.shape[2]:
        raise ValueError(f"caches: expected one cell cache per step of x, got {len(cells)} "
                         f"for x of shape {x.shape}")
    return [_cache(c, length, origin) for c in cells], x
