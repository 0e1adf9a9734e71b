"""What a layer records between a forward and its backward, and ``no_grad()``.

The engine's layers (``Recurrent``, ``Linear``, ``Embedding``) share one gradient rule, torch's:

- A forward is *recorded* (keeps what its backward needs) unless it runs inside ``no_grad()``;
  an inference forward there keeps nothing and leaves a recorded forward that waits for its
  backward untouched (its cache, its scratch memory).
- ``backward`` differentiates the last recorded forward, once, and *adds* its parameter
  gradients into ``layer.grads``, whose arrays keep their identity; ``zero_grad()`` sets them to
  zero in place. Call it before each step's backward, as with torch's ``optimizer.zero_grad()``.
- One layer differentiates one recorded forward at a time: its backward is for the last
  one. A recorded forward that replaced one whose output the caller still holds (``ya, _ =
  layer(xa); yb, _ = layer(xb); layer.backward(...)``, or an evaluation forward between a
  forward and its backward) makes that backward raise ``RuntimeError`` rather than differentiate
  what may be the wrong forward: run the other forward under ``no_grad()``, or call backward
  after each forward. "Holds" means the output array (``out``, not the final state, which
  callers carry on to the next chunk) or a view of it is still referenced; a forward whose
  output was dropped (only a value computed from it kept) is replaced silently, as torch frees
  a graph nobody references, so code that differentiates an earlier forward must keep its
  output or use ``no_grad()`` for the later ones.
- A weight its backward reads (the recurrent layers' ``weight_*``, ``Linear``'s ``weight``)
  changed in place between a forward and its backward (``layer.params[name] += ..``) makes that
  backward raise ``RuntimeError``, as torch's "modified by an inplace operation": the forward
  keeps a copy (``snapshot``) and backward compares bit for bit. Biases, and ``Embedding``'s
  weight, are not read by backward: changing them changes nothing there. ``Linear`` keeps a
  copy of its input, so changing the caller's ``x`` afterwards changes nothing either.
"""

import contextlib
import threading
import weakref

import numpy as np

_mode = threading.local()


def is_grad_enabled() -> bool:
    """Whether forwards are recorded now (True outside ``no_grad()``; per thread, as torch)."""
    return getattr(_mode, "enabled", True)


class no_grad(contextlib.ContextDecorator):  # noqa: N801 (torch's name)
    """Context manager (or decorator): forwards inside keep no cache for a backward and leave a
    pending recorded forward, and its backward, untouched. Dropout still follows ``train()`` /
    ``eval()``, as in torch."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        _mode.enabled = False
        return self

    def __exit__(self, *exc):
        _mode.enabled = self._prev
        return False


def refs(*arrays) -> tuple:
    """Weak references to the memory of the arrays a recorded forward handed to its caller (the
    array owning it: a view of one, ``y[0]``, keeps that alive)."""
    return tuple(weakref.ref(owner(a)) for a in arrays if a is not None)


def owner(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (``a`` itself unless it is a view)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def held(references) -> bool:
    """Whether the caller still holds any of the arrays (or a view of one)."""
    return references is not None and any(r() is not None for r in references)


def snapshot(params: dict, store: dict) -> dict:
    """Copies of ``params`` in ``store``'s arrays (made on first use, reused after)."""
    for name, p in params.items():
        copy = store.get(name)
        if copy is None or copy.shape != p.shape or copy.dtype != p.dtype:
            copy = store[name] = np.empty(p.shape, p.dtype)
        np.copyto(copy, p)
    return store


def check_unchanged(params: dict, store: dict, names) -> None:
    """RuntimeError naming the first of ``names`` whose array differs from its snapshot."""
    for name in names:
        p, q = params[name].view(np.ndarray), store[name]
        bits = np.dtype(f"u{p.dtype.itemsize}")  # bit for bit: NaN equals itself, -0 is not 0
        if p.shape != q.shape or not np.array_equal(p.view(bits), q.view(bits)):
            raise RuntimeError(
                f"backward: params[{name!r}] was modified in place between the forward and "
                f"this backward (torch: 'a variable needed for gradient computation has been "
                f"modified by an inplace operation'); run the forward again"
            )


def replaced_error(layer: str) -> RuntimeError:
    """The error of a backward whose recorded forward replaced one still held by the caller."""
    return RuntimeError(
        f"backward: {layer} ran a second recorded forward while the outputs of an earlier one "
        f"that was never differentiated are still held; one layer differentiates one forward "
        f"at a time: call backward after each forward, or run the other forward under "
        f"bptt.no_grad()"
    )
