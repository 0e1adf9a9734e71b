"""GRU cell, torch's equations and gate order r, z, n.

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

With recurrent dropout (layers' ``recurrent_dropout=q``; m (H, B) one mask per sequence and unit,
the same at every step, 0 or 1/(1-q)) the hidden side reads the masked state; the carry z * h,
not a recurrent product, keeps h itself:

    gh = W_hh (m ⊙ h) + b_hh        h' = (1 - z) * n + z * h
    dh_prev = dh * z + m ⊙ (W_hh^T dgh)
"""

import numpy as np

from .activations import scaled_tanh, sigmoid_grad, tanh_grad

GATES = 3
# σ's ½ for the r and z blocks, folded by the engine into their weights (prescaled)
RZ_SCALE = {np.dtype(dt): np.full((2, 1, 1), 0.5, dt) for dt in (np.float32, np.float64)}


def forward(
    a: np.ndarray, gh_n: np.ndarray, h_prev: np.ndarray, h: np.ndarray, prescaled: bool = False
) -> np.ndarray:
    """One step, features first.

    a: (3, H, B): the r and z pre-activations gi_r + gh_r, gi_z + gh_z (with ``prescaled``,
    already multiplied by ½), then gi_n; overwritten with the activations r, z, n.
    gh_n: (H, B) W_hn h + b_hn. h_prev: (H, B). Writes h' into ``h`` (H, B) and returns it.
    """
    rz = a[:2]
    scaled_tanh(rz, 0.5, 0.5, rz, prescaled)  # σ
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
