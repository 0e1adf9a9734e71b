"""LSTM cell, torch's equations and gate order i, f, g, o.

    a = W_ih x + b_ih + W_hh h + b_hh              pre-activations, (4, H, B): blocks i, f, g, o
    i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
    c' = f * c + i * g
    h' = o * tanh(c')

Backward, with dh = dL/dh' and dc = dL/dc' arriving from later steps (τ = tanh(c')):

    da_o = dh * τ * o(1 - o)
    dc  += dh * o * (1 - τ²)                       total gradient at c'
    da_i = dc * g * i(1 - i)
    da_f = dc * c * f(1 - f)
    da_g = dc * i * (1 - g²)
    dc_prev = dc * f

Every factor that multiplies dh or dc depends only on the forward values, so ``backward_factors``
computes them (for one step or for a whole sequence at once) and ``backward`` is five products.

With recurrent dropout (layers' ``recurrent_dropout=q``; m (H, B) one mask per sequence and unit,
the same at every step, 0 or 1/(1-q)) only the recurrent product changes; c and h carry on as
above:

    a = W_ih x + b_ih + W_hh (m ⊙ h) + b_hh        dh_prev = m ⊙ (W_hh^T da)

With a projection (``proj_size=P``, 0 < P < H, torch's ``weight_hr``: W_hr (P, H)) the state
h is the projection of what the cell gives, and c stays (H, B):

    q  = o * tanh(c')                              (H, B), the cell's h' above
    h' = W_hr q                                    (P, B); W_hh is (4H, P), h0 (P, B)

(recurrent dropout's m is then (P, B): it multiplies the projected h that enters W_hh.)

Backward, with dh = dL/dh' (P, B) the total at step t (from the output and the next step):

    dq    = W_hr^T dh                              (H, B), enters the cell's backward as its dh
    dW_hr = Σ_t dh_t q_t^T                         (P, H), one GEMM over all steps

The products are the caller's (``bptt.nn.loops``); the cell's element-wise work is unchanged.

Forward only (``forward_only``; ``bptt.nn.inference``, where no backward will come): the same
equations written with one exponential per gate, using σ(x) = 1 / (1 + e^-x) and
tanh(x) = 2 σ(2x) - 1, and dividing by d = 1 + e^-a instead of multiplying by σ(a):

    d_i, d_f, d_o = 1 + exp(-a_i), 1 + exp(-a_f), 1 + exp(-a_o)    (i = 1/d_i, ...)
    d_g = 1 + exp(-a_g)²                                           (= 1 + exp(-2 a_g))
    c' = c / d_f + (2 / d_g - 1) / d_i                             (f * c + i * g)
    h' = tanh(c') / d_o                                            (o * tanh(c'))

It keeps nothing for a backward and makes one transcendental pass over the gates (exp, about
half the cost of NumPy's tanh per element here) instead of two. Its values equal ``forward``'s
to within float rounding, not bit for bit (``bptt.nn.inference`` gives the bound).
"""

import numpy as np

from .activations import scaled_tanh, sigmoid_grad, tanh_grad

GATES = 4
# Per-gate scale and shift for scaled_tanh over (4, H, B): σ for i, f, o and tanh for g.
COLUMNS = {
    np.dtype(dt): (
        np.array([0.5, 0.5, 1.0, 0.5], dt).reshape(4, 1, 1),
        np.array([0.5, 0.5, 0.0, 0.5], dt).reshape(4, 1, 1),
    )
    for dt in (np.float32, np.float64)
}


def columns(H: int, B: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``COLUMNS[dtype]`` repeated to the full shape (4, H, B) of a step's gates (new arrays).

    ``forward`` takes them as ``gates``, so that every ufunc of a step runs on operands of one
    shape: NumPy's broadcasting costs about 0.6 us more per call (measured on a 2-core Xeon, a
    (4, 16, 1) block times a (4, 1, 1) column: 1.2 us against 0.4 us), which dominates a step
    of a small layer at batch 1."""
    return tuple(np.ascontiguousarray(np.broadcast_to(col, (GATES, H, B))) for col in
                 COLUMNS[np.dtype(dtype)])


def forward(
    a: np.ndarray,
    c_prev: np.ndarray,
    c: np.ndarray,
    tanh_c: np.ndarray,
    h: np.ndarray,
    prescaled: bool = False,
    gates: tuple | None = None,
) -> np.ndarray:
    """One step, features first: gates on axis 0, then hidden units, then the batch.

    a: (4, H, B) pre-activations, overwritten with the activations i, f, g, o; with
    ``prescaled``, each gate block arrives multiplied by its scale, ``COLUMNS[dtype][0]``.
    c_prev: (H, B). Writes c' into ``c``, tanh(c') into ``tanh_c`` and h' into ``h`` (all (H, B)).
    gates: None, or ``columns(H, B, dtype)`` (the same numbers, faster).
    """
    scale, shift = COLUMNS[a.dtype] if gates is None else gates
    scaled_tanh(a, scale, shift, a, prescaled)
    np.multiply(a[1], c_prev, c)  # f * c
    np.multiply(a[0], a[2], tanh_c)  # i * g   (tanh_c is scratch here)
    np.add(c, tanh_c, c)
    np.tanh(c, tanh_c)
    return np.multiply(a[3], tanh_c, h)  # o * tanh(c')


def backward_factors(
    acts: np.ndarray, c_prev: np.ndarray, tanh_c: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Factors of the backward step, for one step or a whole sequence (any leading axes).

    acts: (..., 4, H, B) activations i, f, g, o; c_prev, tanh_c: (..., H, B).
    Returns F (..., 5, H, B): [g i(1-i), c f(1-f), i (1-g²), τ o(1-o), o (1-τ²)], written into
    ``out`` if given; ``tanh_c`` may be ``out[..., 4, :, :]`` (it is read before it is replaced).
    """
    i, f, g, o = (acts[..., k, :, :] for k in range(4))
    F = np.empty(acts.shape[:-3] + (5,) + acts.shape[-2:], acts.dtype) if out is None else out
    F_i, F_f, F_g, F_o, F_c = (F[..., k, :, :] for k in range(5))
    np.multiply(sigmoid_grad(i, F_i), g, F_i)          # each computed in its own slot:
    np.multiply(sigmoid_grad(f, F_f), c_prev, F_f)     # no temporaries over the sequence
    np.multiply(tanh_grad(g, F_g), i, F_g)
    np.multiply(sigmoid_grad(o, F_o), tanh_c, F_o)     # before F_c replaces tanh_c
    np.multiply(tanh_grad(tanh_c, F_c), o, F_c)
    return F


def backward(
    dh: np.ndarray,
    dc: np.ndarray,
    F: np.ndarray,
    f: np.ndarray,
    da: np.ndarray,
    dc_total: np.ndarray | None = None,
) -> np.ndarray:
    """One step.

    dh: (H, B) total dL/dh' (used as scratch: overwritten). dc: (H, B) dL/dc' from step t+1,
    updated in place to dL/dc (the previous cell state). F: (5, H, B) from backward_factors;
    f: (H, B) forget gate. Writes dL/da (4, H, B) into ``da`` (which may be ``F[:4]``) and, if
    given, the total dL/dc' (H, B) into ``dc_total``.
    """
    np.multiply(dh, F[3], da[3])
    np.multiply(dh, F[4], dh)
    np.add(dc, dh, dc)
    if dc_total is not None:
        np.copyto(dc_total, dc)
    np.multiply(dc, F[:3], da[:3])
    np.multiply(dc, f, dc)
    return da


def forward_only(e: np.ndarray, c: np.ndarray, h: np.ndarray, one=1.0, two=2.0) -> np.ndarray:
    """One step without a cache (the module docstring's forward-only equations).

    e: (4, H, B) the negated pre-activations -a (gate order i, f, g, o), overwritten with d.
    c: (H, B) the cell state, updated in place to c'. Writes h' = o * tanh(c') into ``h``
    (H, B; with a projection, the q that W_hr multiplies) and returns it. one, two: 1 and 2 as
    scalars or as arrays of e's and c's shapes (a ufunc whose operands share one shape skips
    NumPy's broadcasting, cheaper for a small step). Overflow of exp (a gate far below 0) gives
    d = inf and the gate's exact limit 0 (g: -1); the caller silences the warning.
    """
    np.exp(e, e)
    d_i, d_f, d_g, d_o = e
    np.multiply(d_g, d_g, d_g)  # exp(-2 a_g)
    np.add(e, one, e)  # d = 1 + exp(-s a)
    np.divide(two, d_g, d_g)
    np.subtract(d_g, one if np.ndim(one) == 0 else one[0], d_g)  # g = tanh(a_g)
    np.divide(c, d_f, c)  # f * c
    np.divide(d_g, d_i, d_g)  # i * g
    np.add(c, d_g, c)
    np.tanh(c, h)
    return np.divide(h, d_o, h)  # o * tanh(c')
