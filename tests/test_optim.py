"""Adam step by step against torch.optim.Adam; clip_grad_norm against torch.nn.utils."""

import numpy as np
import pytest
from fd import rel_error

from bptt import Adam, clip_grad_norm


def params_and_grads(rng, dtype, steps):
    params = {"W": rng.standard_normal((4, 3)).astype(dtype),
              "b": rng.standard_normal(3).astype(dtype)}
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()}
             for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-6)])
@pytest.mark.parametrize("lr,betas,eps", [(1e-3, (0.9, 0.999), 1e-8), (0.05, (0.5, 0.9), 1e-4)])
def test_adam_equals_torch_step_by_step(dtype, tol, lr, betas, eps):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params, grads = params_and_grads(rng, dtype, steps=25)
    tparams = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in params.items()}
    topt = torch.optim.Adam(list(tparams.values()), lr=lr, betas=betas, eps=eps)
    opt = Adam(params, lr=lr, betas=betas, eps=eps)
    for g in grads:
        for k, tp in tparams.items():
            tp.grad = torch.tensor(g[k])
        topt.step()
        opt.step(params, g)
        for k, tp in tparams.items():
            assert params[k].dtype == dtype
            assert rel_error(params[k], tp.detach().numpy()) < tol, k
    assert opt.t == 25


def test_adam_first_step_moves_each_entry_by_lr():
    p = {"w": np.array([1.0, -2.0, 3.0])}
    Adam(p, lr=0.1).step(p, {"w": np.array([0.5, -7.0, 1e-3])})
    assert np.allclose(p["w"], [0.9, -1.9, 2.9], atol=1e-4)


@pytest.mark.parametrize("max_norm", [0.1, 1.0, 1e6])
def test_clip_equals_torch(max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    grads = {"a": rng.standard_normal((5, 4)), "b": rng.standard_normal(7)}
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
               for g in grads.values()]
    for t, g in zip(tensors, grads.values(), strict=True):
        t.grad = torch.tensor(g.copy())
    tnorm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    norm = clip_grad_norm(grads, max_norm)
    assert abs(norm - tnorm.item()) < 1e-12 * norm
    for t, g in zip(tensors, grads.values(), strict=True):
        assert rel_error(g, t.grad.numpy()) < 1e-13


def test_clip_result_has_the_max_norm():
    grads = {"a": np.full(4, 3.0), "b": np.full(5, 4.0)}
    before = clip_grad_norm(grads, 2.0)
    after = np.sqrt(sum(float((g * g).sum()) for g in grads.values()))
    assert abs(before - np.sqrt(4 * 9 + 5 * 16)) < 1e-12
    assert abs(after - 2.0) < 1e-5
