"""Argument checks with one error format: ``name: expected <what>, got <what>``."""

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_dtype(dtype) -> np.dtype:
    """The float dtype a layer computes in: float32 or float64 (or their NumPy spellings), None
    for the default float32 (as torch); anything else is a TypeError."""
    if dtype is None:
        return FLOAT_DTYPES[0]
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):  # e.g. "banana", or a torch dtype NumPy does not read
        dt = None
    if dt is None or dt not in FLOAT_DTYPES:  # (np.dtype('float64') == None is True)
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}")
    return dt


def as_array(
    name: str, value, dtype: np.dtype, ndim: int | None = None, what: str = "", finite: bool = True
) -> np.ndarray:
    """``value`` as a C-contiguous array of ``dtype``.

    Casts only when NumPy's 'same_kind' rule allows it (so float64 -> float32 and ints -> float
    are accepted; complex, strings and objects are not). Checks the rank and, if ``finite``, that
    there is no NaN or infinity.
    """
    try:
        a = np.asarray(value)
    except Exception as err:  # e.g. a ragged list
        raise TypeError(
            f"{name}: expected an array of {dtype}, got {type(value).__name__} ({err})"
        ) from None
    if a.dtype.kind not in "biuf" or not np.can_cast(a.dtype, dtype, "same_kind"):
        raise TypeError(f"{name}: expected a real array castable to {dtype}, got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(
            f"{name}: expected {ndim} dimensions {what}".rstrip() + f", got shape {a.shape}"
        )
    a = np.ascontiguousarray(a, dtype=dtype)
    if finite and not np.isfinite(a).all():
        raise ValueError(f"{name}: expected finite values, got NaN or infinity")
    return a


def check_shape(name: str, a: np.ndarray, expected: tuple) -> None:
    """ValueError ``name: expected (..), got (..)`` unless ``a.shape == expected``."""
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {tuple(expected)}, got {tuple(a.shape)}")


def positive_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= minimum, else ValueError/TypeError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)
