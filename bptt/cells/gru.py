"""GRU cell, torch's equations and gate order r, z, n.

    gi = W_ih x + b_ih,   gh = W_hh h + b_hh         (B, 3, H) each: blocks r, z, n
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
or a whole sequence, and ``backward`` is three products.
"""

import numpy as np

from .activations import sigmoid, sigmoid_grad, tanh_grad

GATES = 3


def forward(gi: np.ndarray, gh: np.ndarray, h_prev: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One step.

    gi: (B, 3, H) input projections, overwritten with the activations r, z, n.
    gh: (B, 3, H) hidden projections W_hh h + b_hh (kept: backward needs gh_n).
    Writes h' into ``h`` (B, H) and returns it.
    """
    rz = gi[:, :2]
    np.add(rz, gh[:, :2], out=rz)
    sigmoid(rz, out=rz)
    n = gi[:, 2]
    np.multiply(gi[:, 0], gh[:, 2], out=h)     # r * gh_n   (h is scratch here)
    np.add(n, h, out=n)
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=h)
    np.multiply(h, gi[:, 1], out=h)
    return np.add(h, n, out=h)


def backward_factors(acts: np.ndarray, gh_n: np.ndarray, h_prev: np.ndarray) -> np.ndarray:
    """Factors of the backward step, for any leading shape.

    acts: (..., 3, H) activations r, z, n; gh_n: (..., H); h_prev: (..., H).
    Returns F (..., 4, H): [dgh_r, dgh_z, dgh_n, dgi_n] per unit of dh (dgi_r = dgh_r, dgi_z = dgh_z).
    """
    r, z, n = (acts[..., k, :] for k in range(3))
    F = np.empty(acts.shape[:-2] + (4, acts.shape[-1]), dtype=acts.dtype)
    Fn = F[..., 3, :]
    np.multiply(1 - z, tanh_grad(n), out=Fn)
    np.multiply(Fn * gh_n, sigmoid_grad(r), out=F[..., 0, :])
    np.multiply(h_prev - n, sigmoid_grad(z), out=F[..., 1, :])
    np.multiply(Fn, r, out=F[..., 2, :])
    return F


def backward(dh: np.ndarray, F: np.ndarray, z: np.ndarray, dgh: np.ndarray, dgi_n: np.ndarray,
             dh_direct: np.ndarray) -> None:
    """One step.

    dh: (B, H) total dL/dh'. F: (B, 4, H) from backward_factors; z: (B, H) update gate.
    Writes dL/dgh (B, 3, H) into ``dgh``, dL/dgi_n (B, H) into ``dgi_n`` (dgi_r, dgi_z equal
    dgh_r, dgh_z), and the part of dL/dh that bypasses the matmul, dh * z, into ``dh_direct``.
    """
    np.multiply(dh[:, None, :], F[:, :3], out=dgh)
    np.multiply(dh, F[:, 3], out=dgi_n)
    np.multiply(dh, z, out=dh_direct)
