"""A fully connected layer with torch's names, shapes and initialisation: ``y = x W^T + b``.

Legend: N any number of leading dimensions (flattened), I in_features, O out_features.

    weight  (O, I)      as torch.nn.Linear.weight
    bias    (O,)        as torch.nn.Linear.bias

A recorded forward (outside ``bptt.no_grad()``) keeps a copy of its input; backward uses it for
the weight gradient and adds the gradients into ``grads`` (the rule of ``bptt.nn.grad_mode``):

    dx = dy W          dW += dy^T x          db += sum of dy over the leading dimensions
"""

import numpy as np

from .._checks import as_array, as_dtype, check_shape, positive_int
from . import _params
from . import grad_mode as gm
from .calls import Stacked
from .module import plain


class Linear(_params.HasParameters, Stacked):
    """``y = x @ weight.T + bias`` over the last axis, as torch.nn.Linear.

    Parameters
    ----------
    in_features, out_features : int
        I and O.
    bias : bool
        Whether there is a bias.
    dtype : float32 (default) or float64
        The dtype of the parameters and of every computation.
    seed : int or None
        Seed of the initialisation, torch's default: weight and bias ~ U(-1/sqrt(I), 1/sqrt(I)).

    Called several times in one forward, it is differentiated by one ``backward`` per call, in
    reverse order (``bptt.nn.module``).
    """

    _what = "Linear"

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32,
                 seed: int | None = None):
        Stacked.__init__(self)
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self.dtype = as_dtype(dtype)
        self._has_bias = bool(bias)
        self._init_parameters(seed)
        if not self._has_bias:
            self.register_parameter("bias", None)   # as torch: linear.bias is None
        self._snap = None       # the weight the latest calls ran with (``_snapshot``)

    def _shapes(self) -> dict[str, tuple]:
        shapes = {"weight": (self.out_features, self.in_features)}
        if self._has_bias:
            shapes["bias"] = (self.out_features,)
        return shapes

    def reset_parameters(self, seed: int | None = None) -> None:
        """torch's default (kaiming_uniform with a=sqrt(5)): U(-1/sqrt(I), 1/sqrt(I)) for both."""
        _params.fill_uniform(self.params, 1.0 / np.sqrt(self.in_features), seed)

    def __getstate__(self):
        """Pickle and deepcopy carry parameters, gradients and configuration, not the calls."""
        state = Stacked.__getstate__(self)
        state["_snap"] = None
        return state

    def forward(self, x) -> np.ndarray:
        """x: (..., I). Returns y: (..., O). Recorded (a copy of x kept for backward) unless
        inside ``bptt.no_grad()``."""
        given, x = x, as_array("x", x, self.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected shape (..., {self.in_features}), got {x.shape}")
        W = plain(self.params["weight"])
        y = x.reshape(-1, self.in_features) @ W.T                             # (N, O)
        if self.params.get("bias") is not None:
            y += plain(self.params["bias"])
        y = y.reshape(x.shape[:-1] + (self.out_features,))
        if gm.is_grad_enabled():
            # the caller may change its array before backward: keep a copy (as_array's own)
            shared = isinstance(given, np.ndarray) and np.may_share_memory(x, given)
            self._calls.push((x.copy() if shared else x, self._snapshot(W)), y)
        return y

    def _snapshot(self, W: np.ndarray) -> np.ndarray:
        """A copy of the weight this call ran with, shared by the calls while it is unchanged
        (``backward`` checks it: ``grad_mode.check_unchanged``)."""
        if self._snap is None or self._snap.shape != W.shape or not np.array_equal(self._snap, W):
            self._snap = W.copy()
        return self._snap

    def _backward(self, entry, dy) -> np.ndarray:
        """dy: (..., O), the loss gradient w.r.t. the output of the last recorded call not yet
        differentiated. Returns dx (..., I) and adds the parameter gradients into the
        parameters' ``.grad``. RuntimeError if there is no such call, or if the weight changed
        in place since the calls."""
        x, snap = entry
        gm.check_unchanged(self.params, {"weight": snap}, ["weight"])
        dy = as_array("dy", dy, self.dtype, finite=False)
        check_shape("dy", dy, x.shape[:-1] + (self.out_features,))
        dy2 = dy.reshape(-1, self.out_features)                                # (N, O)
        x2 = x.reshape(-1, self.in_features)                                   # (N, I)
        grads = {"weight": dy2.T @ x2}                                         # (O, I)
        if self.params.get("bias") is not None:
            grads["bias"] = dy2.sum(axis=0)                                    # (O,)
        _params.accumulate(self.params, grads)
        return (dy2 @ plain(self.params["weight"])).reshape(x.shape)           # (..., I)

    def backward(self, dy) -> np.ndarray:
        """dy: (..., O), the loss gradient w.r.t. the output of the last recorded call not yet
        differentiated. Returns dx (..., I) and adds the parameter gradients into each
        parameter's ``.grad`` (``grads``; zero them with ``zero_grad()``). RuntimeError if no
        recorded call is waiting, or if the weight was changed in place since it."""
        return Stacked.backward(self, dy)

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, bias={self._has_bias}, "
                f"dtype={self.dtype.name}")
