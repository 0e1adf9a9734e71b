"""A fully connected layer with torch's names, shapes and initialisation: ``y = x W^T + b``.

Legend: N any number of leading dimensions (flattened), I in_features, O out_features.

    weight  (O, I)      as torch.nn.Linear.weight
    bias    (O,)        as torch.nn.Linear.bias

Forward caches its input; backward uses it for the weight gradient:

    dx = dy W          dW = dy^T x          db = sum of dy over the leading dimensions
"""

import numpy as np

from .._checks import as_array, as_dtype, check_shape, positive_int
from . import _params


class Linear:
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
        self.params = {name: np.zeros(shape, self.dtype) for name, shape in self._shapes().items()}
        self.reset_parameters(seed)
        self.grads: dict[str, np.ndarray] = {}
        self.zero_grad()
        self._x = None

    def _shapes(self) -> dict[str, tuple]:
        shapes = {"weight": (self.out_features, self.in_features)}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        return shapes

    def reset_parameters(self, seed: int | None = None) -> None:
        """torch's default (kaiming_uniform with a=sqrt(5)): U(-1/sqrt(I), 1/sqrt(I)) for both."""
        _params.fill_uniform(self.params, 1.0 / np.sqrt(self.in_features), seed)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, keyed as torch's state_dict."""
        return _params.copies(self.params)

    def load_state_dict(self, state: dict) -> None:
        """Load parameters; checks every name and shape first (ValueError naming the first
        mismatch), so on error nothing is changed."""
        _params.load(self.params, self._shapes(), state, self.dtype)

    def zero_grad(self) -> None:
        """Set every gradient to zeros."""
        self.grads = _params.zeros_like(self.params)

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x) -> np.ndarray:
        """x: (..., I). Returns y: (..., O)."""
        x = as_array("x", x, self.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected shape (..., {self.in_features}), got {x.shape}")
        self._x = x
        y = x.reshape(-1, self.in_features) @ self.params["weight"].T        # (N, O)
        if self.bias:
            y += self.params["bias"]
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, dy) -> np.ndarray:
        """dy: (..., O), the loss gradient w.r.t. the last forward's output. Returns dx (..., I)
        and sets ``self.grads``."""
        if self._x is None:
            raise RuntimeError("backward: call forward first (there is no forward to "
                               "differentiate)")
        x = self._x
        dy = as_array("dy", dy, self.dtype, finite=False)
        check_shape("dy", dy, x.shape[:-1] + (self.out_features,))
        dy2 = dy.reshape(-1, self.out_features)                                # (N, O)
        x2 = x.reshape(-1, self.in_features)                                   # (N, I)
        grads = {"weight": dy2.T @ x2}                                         # (O, I)
        if self.bias:
            grads["bias"] = dy2.sum(axis=0)                                    # (O,)
        self.grads = grads
        return (dy2 @ self.params["weight"]).reshape(x.shape)                  # (..., I)

    def __repr__(self):
        return (f"Linear({self.in_features}, {self.out_features}, bias={self.bias}, "
                f"dtype={self.dtype.name})")
