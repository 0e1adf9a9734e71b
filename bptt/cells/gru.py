"""GRU cells: torch's (the engine's) and the lecture's original GRU (the course API's).

torch's GRU, gate order r, z, n (``forward``, ``backward_factors``, ``backward``):

    gi = W_ih x + b_ih,   gh = W_hh h + b_hh         (3, H, B) each: blocks r, z, n
    r = σ(gi_r + gh_r)    z = σ(gi_z + gh_z)
    n = tanh(gi_n + r * gh_n)
    h' = (1 - z) * n + z * h   =  n + z * (h - n)

Backward, with dh = dL/dh':

    dgi_n = dh * (1 - z)(1 - n²)                      =: dh * Fn
    dgh_n = dgi_n * r                                 =  dh * Fn r
    dgi_r = dgh_r = dgi_n * gh_n * r(1 - r)           =  dh * Fn gh_n r(1-r)
    dgi_z = dgh_z = dh * (h - n) * z(1 - z)
    dh_prev = dh * z + W_hh^T dgh

All the factors depend only on the forward values: ``backward_factors`` computes them for a step
or a whole sequence, and ``backward`` is two products.

Forward only (``forward_only``; ``bptt.nn.inference``): the same equations with σ(x) =
1 / (1 + e^-x), dividing by d = 1 + e^-a instead of multiplying by σ(a):

    d_r, d_z = 1 + exp(-(gi_r + gh_r)), 1 + exp(-(gi_z + gh_z))
    n  = tanh(gi_n + gh_n / d_r)
    h' = n + (h - n) / d_z

equal to ``forward``'s values within float rounding (``bptt.nn.inference`` gives the bound).

torch's GRU with recurrent dropout (the layers' ``recurrent_dropout=q``; m (H, B) one mask per
sequence and unit, the same at every step, 0 or 1/(1-q)): the hidden side reads the masked
state; the carry z * h, not a recurrent product, keeps h itself:

    gh = W_hh (m ⊙ h) + b_hh        h' = (1 - z) * n + z * h
    dh_prev = dh * z + m ⊙ (W_hh^T dgh)

The lecture's GRU (Cho et al. 2014; Keras ``GRU(reset_after=False)``), in the course's notation:
c is the state (a = c), [c; x] the stacked column, Γu the update gate, Γr the relevance gate
(``course_gates``, ``course_candidate``, ``course_backward``, ``course_backward_reset``):

    Γu = σ(W_u [c; x] + b_u)            Γr = σ(W_r [c; x] + b_r)
    c̃  = tanh(W_c [Γr * c; x] + b_c)    Γr multiplies c BEFORE the product with W_c
    c' = Γu * c̃ + (1 - Γu) * c  =  c + Γu * (c̃ - c)

It differs from torch's in two ways: torch applies r AFTER the product, to W_hn h + b_hn (its
bias included), so in general (unless W_hn is diagonal) the two are different functions; and the
lecture's Γu weighs the candidate where torch's z weighs the old state (Γu plays 1 - z).

Backward, with dc = dL/dc' and the z's the pre-activations:

    dz_u = dc * (c̃ - c) * Γu(1 - Γu)
    dz_c = dc * Γu * (1 - c̃²)
    [drc; dx_c] = W_c^T dz_c            the caller's product; drc = dL/d(Γr * c)
    dz_r = drc * c * Γr(1 - Γr)
    dc_prev = dc * (1 - Γu) + drc * Γr + [W_u; W_r]^T [dz_u; dz_r] (its c rows)
"""

import numpy as np

from .activations import scaled_tanh, sigmoid, sigmoid_grad, tanh_grad

GATES = 3
# σ's ½ for the r and z blocks, folded by the engine into their weights (prescaled)
RZ_SCALE = {np.dtype(dt): np.full((2, 1, 1), 0.5, dt) for dt in (np.float32, np.float64)}


def halves(H: int, B: int, dtype) -> np.ndarray:
    """σ's ½ as a full (2, H, B) array (new), for ``forward``'s ``half``: a ufunc whose operands
    all have one shape skips NumPy's broadcasting, which costs more than the work of a small
    step (as ``lstm.columns``)."""
    return np.full((2, H, B), 0.5, dtype)


def forward(
    a: np.ndarray, gh_n: np.ndarray, h_prev: np.ndarray, h: np.ndarray, prescaled: bool = False,
    half: np.ndarray | None = None,
) -> np.ndarray:
    """One step, features first.

    a: (3, H, B): the r and z pre-activations gi_r + gh_r, gi_z + gh_z (with ``prescaled``,
    already multiplied by ½), then gi_n; overwritten with the activations r, z, n.
    gh_n: (H, B) W_hn h + b_hn. h_prev: (H, B). Writes h' into ``h`` (H, B) and returns it.
    half: None, or ``halves(H, B, dtype)`` (the same numbers, faster).
    """
    rz = a[:2]
    half = 0.5 if half is None else half
    scaled_tanh(rz, half, half, rz, prescaled)  # σ
    n = a[2]
    np.multiply(a[0], gh_n, h)  # r * gh_n   (h is scratch here)
    np.add(n, h, n)
    np.tanh(n, n)
    np.subtract(h_prev, n, h)
    np.multiply(h, a[1], h)
    return np.add(h, n, h)


def backward_factors(
    acts: np.ndarray, gh_n: np.ndarray, h_prev: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Factors of the backward step, for one step or a whole sequence (any leading axes).

    acts: (..., 3, H, B) activations r, z, n; gh_n, h_prev: (..., H, B).
    Returns F (..., 4, H, B): [dgh_r, dgh_z, dgh_n, dgi_n] per unit of dh (dgi_r = dgh_r and
    dgi_z = dgh_z), written into ``out`` if given.
    """
    r, z, n = (acts[..., k, :, :] for k in range(3))
    F = np.empty(acts.shape[:-3] + (4,) + acts.shape[-2:], acts.dtype) if out is None else out
    F_r, F_z, F_hn, F_n = (F[..., k, :, :] for k in range(4))
    np.multiply(tanh_grad(n, F_n), 1 - z, F_n)                   # (1 - z)(1 - n²)
    np.multiply(sigmoid_grad(r, F_r), gh_n, F_r)
    np.multiply(F_r, F_n, F_r)                                   # Fn gh_n r(1 - r)
    np.multiply(sigmoid_grad(z, F_z), h_prev - n, F_z)           # (h - n) z(1 - z)
    np.multiply(F_n, r, F_hn)                                    # Fn r
    return F


def backward(dh: np.ndarray, F: np.ndarray, z: np.ndarray, d: np.ndarray, dh_direct: np.ndarray):
    """One step.

    dh: (H, B) total dL/dh'. F: (4, H, B) from backward_factors; z: (H, B) update gate.
    Writes [dgh_r, dgh_z, dgh_n, dgi_n] (4, H, B) into ``d`` (which may be ``F``; dgi_r, dgi_z
    equal dgh_r, dgh_z) and the part of dL/dh_prev that bypasses the matmul, dh * z, into
    ``dh_direct``.
    """
    np.multiply(dh, F, d)
    np.multiply(dh, z, dh_direct)


def forward_only(e: np.ndarray, gh_n: np.ndarray, gi_n: np.ndarray, h_prev: np.ndarray,
                 h: np.ndarray, one=1.0) -> np.ndarray:
    """One step of torch's GRU without a cache (the module docstring's forward-only equations).

    e: (2, H, B) the negated r and z pre-activations -(gi + gh), overwritten with d.
    gh_n: (H, B) W_hn h + b_hn, overwritten with n. gi_n: (H, B) W_in x + b_in. h_prev: (H, B).
    Writes h' into ``h`` (H, B) and returns it. one: 1 as a scalar or an array of e's shape.
    """
    np.exp(e, e)
    np.add(e, one, e)  # d_r, d_z
    np.divide(gh_n, e[0], gh_n)  # r * gh_n
    np.add(gh_n, gi_n, gh_n)
    np.tanh(gh_n, gh_n)  # n
    np.subtract(h_prev, gh_n, h)
    np.divide(h, e[1], h)  # z * (h - n)
    return np.add(h, gh_n, h)


# ------------------------------------------------------------------------ the lecture's GRU

def course_gates(a: np.ndarray, c_prev: np.ndarray, rc: np.ndarray) -> np.ndarray:
    """The gates of one step of the lecture's GRU, features first.

    a: (2, H, B) pre-activations of Γu, Γr, overwritten with Γu, Γr. c_prev: (H, B).
    Writes Γr * c_prev into ``rc`` (H, B), the state the candidate's product reads, and returns it.
    """
    sigmoid(a, out=a)
    return np.multiply(a[1], c_prev, rc)


def course_candidate(
    a_c: np.ndarray, u: np.ndarray, c_prev: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """a_c: (H, B) pre-activation W_c [Γr * c; x] + b_c, overwritten with c̃; u: (H, B) Γu.
    Writes c' = c_prev + Γu (c̃ - c_prev) into ``c`` (H, B) and returns it."""
    np.tanh(a_c, a_c)
    np.subtract(a_c, c_prev, c)
    np.multiply(c, u, c)
    return np.add(c, c_prev, c)


def course_backward(dc: np.ndarray, u: np.ndarray, cct: np.ndarray, c_prev: np.ndarray,
                    dz: np.ndarray, dc_prev: np.ndarray) -> None:
    """First half of one step back. dc: (H, B) total dL/dc'; u, cct: Γu, c̃; c_prev: (H, B).
    Writes dz_u into dz[0] and dz_c into dz[2] (dz: (3, H, B), order u, r, c; dz[1] is left for
    ``course_backward_reset``) and the direct part dc * (1 - Γu) into ``dc_prev``."""
    np.subtract(cct, c_prev, dz[0])
    np.multiply(dz[0], sigmoid_grad(u, dc_prev), dz[0])       # dc_prev is scratch here
    np.multiply(dz[0], dc, dz[0])                              # dc (c̃ - c) Γu(1 - Γu)
    np.multiply(tanh_grad(cct, dz[2]), u, dz[2])
    np.multiply(dz[2], dc, dz[2])                              # dc Γu (1 - c̃²)
    np.subtract(1, u, dc_prev)
    np.multiply(dc_prev, dc, dc_prev)                          # dc (1 - Γu)


def course_backward_reset(drc: np.ndarray, r: np.ndarray, c_prev: np.ndarray, dz_r: np.ndarray,
                          dc_prev: np.ndarray) -> None:
    """Second half, after the caller's product drc = (W_c^T dz_c)'s c rows = dL/d(Γr * c).
    Writes dz_r = drc * c_prev * Γr(1 - Γr) into ``dz_r`` and adds drc * Γr to ``dc_prev``."""
    np.multiply(sigmoid_grad(r, dz_r), c_prev, dz_r)
    np.multiply(dz_r, drc, dz_r)
    dc_prev += drc * r
