"""Single-step cells with torch's signatures, names, initialisation and gate order: RNNCell,
LSTMCell, GRUCell, for decoders and loops of one's own.

Legend: B batch, I input size, H hidden size, G gates (RNN 1, LSTM 4: i, f, g, o; GRU 3: r, z, n).

    weight_ih  (G*H, I)     weight_hh  (G*H, H)     bias_ih, bias_hh  (G*H,)

    h' = cell(x, h)              RNNCell, GRUCell: x (B, I) or (I,), h (B, H) or (H,) or None
    (h', c') = cell(x, (h, c))   LSTMCell

The products are here; each cell's element-wise equations and derivatives are ``bptt.cells``'
(the engine's own): one equation, one place. A cell is usually called at every step of a loop:
each recorded call pushes its values and each ``backward`` pops the last one (last in, first
out, ``bptt.nn.module``), so a loop's backward runs over the steps in reverse:

    dx_t, dh = cell.backward(dh_t + dh)            RNNCell, GRUCell: returns dx, dL/dh
    dx_t, (dh, dc) = cell.backward((dh_t + dh, dc))   LSTMCell: dL/dh, dL/dc of the input state
"""

import numpy as np

from .._checks import as_array, as_dtype, check_shape, positive_int
from ..cells import gru as gru_cell
from ..cells import lstm as lstm_cell
from ..cells import rnn as rnn_cell
from . import _params
from .calls import Stacked
from .module import plain


def _parts(value, name: str, pair: str, parts: int) -> tuple:
    """A state or its gradient as a tuple of its ``parts`` (1, or 2 for an LSTMCell's pair);
    None: each part None (zeros). TypeError naming ``name`` for an LSTMCell's non-pair."""
    if value is None:
        return (None,) * parts
    if parts == 1:
        return (value,)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name}: expected a tuple {pair} for LSTMCell, got "
                        f"{type(value).__name__}")
    return tuple(value)


class _Cell(_params.HasParameters, Stacked):
    """What the three cells share: parameters, argument checks, the products."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype=np.float32,
                 seed: int | None = None):
        Stacked.__init__(self)
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.bias = bool(bias)
        self.dtype = as_dtype(dtype)
        self._init_parameters(seed)

    def _shapes(self) -> dict[str, tuple]:
        GH = self.gates * self.hidden_size
        shapes = {"weight_ih": (GH, self.input_size), "weight_hh": (GH, self.hidden_size)}
        if self.bias:
            shapes.update(bias_ih=(GH,), bias_hh=(GH,))
        return shapes

    def reset_parameters(self, seed: int | None = None) -> None:
        """torch's default: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))."""
        _params.fill_uniform(self.params, 1.0 / np.sqrt(self.hidden_size), seed)

    def _inputs(self, x, state, parts: int):
        """x as (B, I) and the state's parts as (B, H) arrays (zeros for None), and whether the
        call is unbatched (x of shape (I,))."""
        x = as_array("x", x, self.dtype)
        unbatched = x.ndim == 1
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"x: expected shape (B, {self.input_size}) or ({self.input_size},), "
                             f"got {x.shape}")
        x = x[None] if unbatched else x
        B, H = x.shape[0], self.hidden_size
        state = _parts(state, "hx", "(h, c)", parts)
        out = []
        for name, s in zip(("hx[0] (h)", "hx[1] (c)") if parts == 2 else ("hx",), state,
                           strict=True):
            if s is None:
                out.append(np.zeros((B, H), self.dtype))
                continue
            s = as_array(name, s, self.dtype)
            want = (H,) if unbatched else (B, H)
            check_shape(name, s, want)
            out.append(s[None] if unbatched else s)
        return x, out, unbatched

    def _gradients(self, name: str, d, B: int, unbatched: bool, parts: int):
        """The incoming gradients (dL/dh', and the LSTM's dL/dc') as (H, B) arrays (zeros for
        None), checked against the call's batch."""
        H = self.hidden_size
        out = []
        for part in _parts(d, name, "(dh, dc)", parts):
            if part is None:
                out.append(np.zeros((H, B), self.dtype))
                continue
            a = as_array(name, part, self.dtype, finite=False)
            check_shape(name, a, (H,) if unbatched else (B, H))
            out.append(np.ascontiguousarray((a[None] if unbatched else a).T))
        return out

    def _project(self, W: str, v: np.ndarray, b: str) -> np.ndarray:
        """W v^T + b as (G*H, B): v (B, in)."""
        a = plain(self.params[W]) @ v.T
        if self.bias:
            a += plain(self.params[b])[:, None]
        return a

    def _param_grads(self, dgi, dgh, x, h) -> dict:
        """The parameters' gradients from the gate gradients dgi (input side) and dgh (hidden
        side), (G*H, B) each (the same array for RNN and LSTM)."""
        grads = {"weight_ih": dgi @ x, "weight_hh": dgh @ h}
        if self.bias:
            grads.update(bias_ih=dgi.sum(axis=1), bias_hh=dgh.sum(axis=1))
        return grads

    def _finish(self, grads, dgi, dgh, unbatched):
        """Add the gradients; return dx (B, I) and dh (B, H) of the call's inputs."""
        _params.accumulate(self.params, grads)
        dx = (plain(self.params["weight_ih"]).T @ dgi).T
        dh = (plain(self.params["weight_hh"]).T @ dgh).T
        return (dx[0], dh[0]) if unbatched else (dx, dh)

    def _out(self, a: np.ndarray, unbatched: bool) -> np.ndarray:
        """(H, B) -> a new (B, H) array (or (H,) unbatched)."""
        return a[:, 0].copy() if unbatched else np.ascontiguousarray(a.T)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, bias={self.bias}, "
                f"dtype={self.dtype.name}")


class RNNCell(_Cell):
    """``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu), as torch.nn.RNNCell."""

    _what = "RNNCell"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", *, dtype=np.float32, seed: int | None = None):
        if nonlinearity not in rnn_cell.NONLINEARITIES:
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.__dict__["nonlinearity"] = nonlinearity
        super().__init__(input_size, hidden_size, bias, dtype=dtype, seed=seed)

    def forward(self, x, hx=None) -> np.ndarray:
        """x (B, I) or (I,); hx (B, H) or (H,) or None (zeros). Returns h' of hx's shape."""
        x, (h,), unbatched = self._inputs(x, hx, 1)
        a = self._project("weight_ih", x, "bias_ih") + self._project("weight_hh", h, "bias_hh")
        h_new = rnn_cell.forward(a, a, self.nonlinearity)                   # (H, B)
        out = self._out(h_new, unbatched)
        self._calls.push((x, h, h_new, unbatched), out)
        return out

    def _backward(self, entry, dh):
        x, h, h_new, unbatched = entry
        (dh,) = self._gradients("dh", dh, x.shape[0], unbatched, 1)
        da = rnn_cell.backward(dh, rnn_cell.backward_factor(h_new, self.nonlinearity), dh)
        return self._finish(self._param_grads(da, da, x, h), da, da, unbatched)

    def backward(self, dh):
        """dh: dL/dh' of the last recorded call not yet differentiated (None: zeros). Returns
        (dx, dh_prev) and adds into the parameters' ``.grad``."""
        return Stacked.backward(self, dh)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class LSTMCell(_Cell):
    """torch.nn.LSTMCell: gates i, f, g, o; ``(h', c') = cell(x, (h, c))``."""

    gates = 4
    _what = "LSTMCell"

    def forward(self, x, hx=None) -> tuple[np.ndarray, np.ndarray]:
        """x (B, I) or (I,); hx a tuple (h, c), each (B, H) or (H,), or None (zeros). Returns
        (h', c')."""
        x, (h, c), unbatched = self._inputs(x, hx, 2)
        H, B = self.hidden_size, x.shape[0]
        a = self._project("weight_ih", x, "bias_ih") + self._project("weight_hh", h, "bias_hh")
        acts = a.reshape(4, H, B)                     # overwritten with i, f, g, o
        c_prev = np.ascontiguousarray(c.T)
        c_new, tanh_c, h_new = (np.empty((H, B), self.dtype) for _ in range(3))
        lstm_cell.forward(acts, c_prev, c_new, tanh_c, h_new)
        out = (self._out(h_new, unbatched), self._out(c_new, unbatched))
        self._calls.push((x, h, acts, c_prev, tanh_c, unbatched), out[0])
        return out

    def _backward(self, entry, dstate):
        x, h, acts, c_prev, tanh_c, unbatched = entry
        H, B = self.hidden_size, x.shape[0]
        dh, dc = self._gradients("dstate", dstate, B, unbatched, 2)
        F = lstm_cell.backward_factors(acts, c_prev, tanh_c)                # (5, H, B)
        da = np.empty((4, H, B), self.dtype)
        lstm_cell.backward(dh, dc, F, acts[1], da)    # dc becomes dL/dc_prev
        da = da.reshape(4 * H, B)
        dx, dh_prev = self._finish(self._param_grads(da, da, x, h), da, da, unbatched)
        return dx, (dh_prev, self._out(dc, unbatched))

    def backward(self, dstate):
        """dstate: (dh, dc), dL/dh' and dL/dc' of the last recorded call not yet
        differentiated (None, or None in a part: zeros). Returns (dx, (dh_prev, dc_prev)) and
        adds into the parameters' ``.grad``."""
        return Stacked.backward(self, dstate)


class GRUCell(_Cell):
    """torch.nn.GRUCell: gates r, z, n, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``."""

    gates = 3
    _what = "GRUCell"

    def forward(self, x, hx=None) -> np.ndarray:
        """x (B, I) or (I,); hx (B, H) or (H,) or None (zeros). Returns h'."""
        x, (h,), unbatched = self._inputs(x, hx, 1)
        H, B = self.hidden_size, x.shape[0]
        gi = self._project("weight_ih", x, "bias_ih")                        # (3H, B)
        gh = self._project("weight_hh", h, "bias_hh")                        # (3H, B)
        gi[: 2 * H] += gh[: 2 * H]
        acts, gh_n = gi.reshape(3, H, B), gh[2 * H :]                        # r, z, n after
        h_prev, h_new = np.ascontiguousarray(h.T), np.empty((H, B), self.dtype)
        gru_cell.forward(acts, gh_n, h_prev, h_new)
        out = self._out(h_new, unbatched)
        self._calls.push((x, h, acts, gh_n, h_prev, unbatched), out)
        return out

    def _backward(self, entry, dh):
        x, h, acts, gh_n, h_prev, unbatched = entry
        H, B = self.hidden_size, x.shape[0]
        (dh,) = self._gradients("dh", dh, B, unbatched, 1)
        F = gru_cell.backward_factors(acts, gh_n, h_prev)                   # (4, H, B)
        d, direct = np.empty((4, H, B), self.dtype), np.empty((H, B), self.dtype)
        gru_cell.backward(dh, F, acts[1], d, direct)  # d: dgh_r, dgh_z, dgh_n, dgi_n
        dgh = d[:3].reshape(3 * H, B)
        dgi = np.concatenate([d[:2], d[3:]]).reshape(3 * H, B)
        dx, dh_prev = self._finish(self._param_grads(dgi, dgh, x, h), dgi, dgh, unbatched)
        return dx, dh_prev + (direct[:, 0] if unbatched else direct.T)

    def backward(self, dh):
        """dh: dL/dh' of the last recorded call not yet differentiated (None: zeros). Returns
        (dx, dh_prev) and adds into the parameters' ``.grad``."""
        return Stacked.backward(self, dh)
