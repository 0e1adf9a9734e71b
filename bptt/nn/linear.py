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


class Linear(_params.HasParameters):
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
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32,
                 seed: int | None = None):
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self.bias = bool(bias)
        self.dtype = as_dtype(dtype)
        self._init_parameters(seed)
        self._x = None          # the recorded forward's input (a copy), until its backward
        self._held = None       # weak references to its output
        self._replaced = False  # it replaced a forward whose output the caller still held
        self._snap: dict = {}   # the weight it ran with (``grad_mode.snapshot``)

    def _shapes(self) -> dict[str, tuple]:
        shapes = {"weight": (self.out_features, self.in_features)}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        return shapes

    def reset_parameters(self, seed: int | None = None) -> None:
        """torch's default (kaiming_uniform with a=sqrt(5)): U(-1/sqrt(I), 1/sqrt(I)) for both."""
        _params.fill_uniform(self.params, 1.0 / np.sqrt(self.in_features), seed)

    def __getstate__(self):
        """Pickle and deepcopy carry parameters, gradients and configuration, not the cache."""
        state = self.__dict__.copy()
        state.update(_x=None, _held=None, _replaced=False, _snap={})
        return state

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x) -> np.ndarray:
        """x: (..., I). Returns y: (..., O). Recorded (a copy of x kept for backward) unless
        inside ``bptt.no_grad()``."""
        given, x = x, as_array("x", x, self.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected shape (..., {self.in_features}), got {x.shape}")
        y = x.reshape(-1, self.in_features) @ self.params["weight"].T        # (N, O)
        if self.bias:
            y += self.params["bias"]
        y = y.reshape(x.shape[:-1] + (self.out_features,))
        if gm.is_grad_enabled():
            self._replaced = self._x is not None and gm.held(self._held)
            # the caller may change its array before backward: keep a copy (as_array's own)
            shared = isinstance(given, np.ndarray) and np.may_share_memory(x, given)
            self._x = x.copy() if shared else x
            self._held = gm.refs(y)
            gm.snapshot({"weight": self.params["weight"]}, self._snap)
        return y

    def backward(self, dy) -> np.ndarray:
        """dy: (..., O), the loss gradient w.r.t. the last recorded forward's output. Returns
        dx (..., I) and adds the parameter gradients into ``self.grads`` (zero them with
        ``zero_grad()``). Once per recorded forward; RuntimeError if there is none, if that
        forward replaced one whose output is still held, or if the weight changed since."""
        if self._x is None:
            raise RuntimeError("backward: call forward first (each recorded forward can be "
                               "differentiated once, and there is none pending)")
        if self._replaced:
            raise gm.replaced_error("this Linear")
        gm.check_unchanged(self.params, self._snap, ["weight"])
        x = self._x
        dy = as_array("dy", dy, self.dtype, finite=False)
        check_shape("dy", dy, x.shape[:-1] + (self.out_features,))
        dy2 = dy.reshape(-1, self.out_features)                                # (N, O)
        x2 = x.reshape(-1, self.in_features)                                   # (N, I)
        grads = {"weight": dy2.T @ x2}                                         # (O, I)
        if self.bias:
            grads["bias"] = dy2.sum(axis=0)                                    # (O,)
        _params.accumulate(self.grads, self.params, grads)
        dx = (dy2 @ self.params["weight"]).reshape(x.shape)                    # (..., I)
        self._x = self._held = None
        return dx

    def __repr__(self):
        return (f"Linear({self.in_features}, {self.out_features}, bias={self.bias}, "
                f"dtype={self.dtype.name})")
