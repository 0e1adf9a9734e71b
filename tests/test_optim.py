"""Adam step by step against torch.optim.Adam; clip_grad_norm against torch.nn.utils."""

import numpy as np
import pytest
from fd import rel_error

from bptt.nn.optim import Adam, AdamW, clip_grad_norm


def params_and_grads(rng, dtype, steps):
    params = {"W": rng.standard_normal((4, 3)).astype(dtype),
              "b": rng.standard_normal(3).astype(dtype)}
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()}
             for _ in range(steps)]
    return params, grads


def run_beside_torch(torch, make_torch_opt, opt, params, grads, dtype, tol):
    """Each of ``grads`` applied by ``opt`` to ``params`` and by the torch optimizer that
    ``make_torch_opt(tensors)`` makes to copies of them; after every step each parameter keeps
    its dtype and equals torch's to ``tol``."""
    tparams = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in params.items()}
    topt = make_torch_opt(list(tparams.values()))
    for g in grads:
        for k, tp in tparams.items():
            tp.grad = torch.tensor(g[k])
        topt.step()
        opt.step(params, g)
        for k, tp in tparams.items():
            assert params[k].dtype == dtype
            assert rel_error(params[k], tp.detach().numpy()) < tol, k


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-6)])
@pytest.mark.parametrize("lr,betas,eps", [(1e-3, (0.9, 0.999), 1e-8), (0.05, (0.5, 0.9), 1e-4)])
def test_adam_equals_torch_step_by_step(dtype, tol, lr, betas, eps):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params, grads = params_and_grads(rng, dtype, steps=25)
    opt = Adam(params, lr=lr, betas=betas, eps=eps)
    run_beside_torch(torch, lambda ts: torch.optim.Adam(ts, lr=lr, betas=betas, eps=eps), opt,
                     params, grads, dtype, tol)
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


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-6)])
@pytest.mark.parametrize("lr,betas,eps,wd", [(1e-3, (0.9, 0.999), 1e-8, 1e-2),
                                             (0.05, (0.5, 0.9), 1e-4, 0.3)])
def test_adamw_equals_torch_over_50_steps(dtype, tol, lr, betas, eps, wd):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    params, grads = params_and_grads(rng, dtype, steps=50)
    opt = AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    run_beside_torch(
        torch, lambda ts: torch.optim.AdamW(ts, lr=lr, betas=betas, eps=eps, weight_decay=wd),
        opt, params, grads, dtype, tol)
    assert opt.t == 50


def test_adamw_decays_without_gradient_and_zero_decay_is_adam():
    p = {"w": np.array([1.0, -2.0])}
    AdamW(p, lr=0.1, weight_decay=0.5).step(p, {"w": np.zeros(2)})
    assert np.array_equal(p["w"], np.array([1.0, -2.0]) * (1 - 0.1 * 0.5))
    rng = np.random.default_rng(4)
    a, grads = params_and_grads(rng, np.float64, steps=5)
    b = {k: v.copy() for k, v in a.items()}
    adam, adamw = Adam(a, lr=0.01), AdamW(b, lr=0.01, weight_decay=0)
    for g in grads:
        adam.step(a, g)
        adamw.step(b, g)
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_state_dict_resumes_bitwise(cls):
    rng = np.random.default_rng(5)
    params, grads = params_and_grads(rng, np.float32, steps=10)
    whole = {k: v.copy() for k, v in params.items()}
    opt = cls(whole, lr=0.01)
    for g in grads:
        opt.step(whole, g)
    first = cls(params, lr=0.01)
    for g in grads[:4]:
        first.step(params, g)
    saved = {k: v.copy() for k, v in params.items()}, first.state_dict()
    first.m["W"][...] = 7  # the saved state is a copy
    params = {k: v.copy() for k, v in saved[0].items()}
    second = cls(params, lr=0.01)
    second.load_state_dict(saved[1])
    assert second.t == 4
    for g in grads[4:]:
        second.step(params, g)
    assert all(np.array_equal(whole[k], params[k]) for k in whole)


def test_load_state_dict_errors_change_nothing():
    params = {"w": np.ones(3)}
    opt = AdamW(params)
    opt.step(params, {"w": np.ones(3)})
    good = opt.state_dict()
    for bad, match in [({**good, "x": np.zeros(1)}, "unexpected key 'x'"),
                       ({k: v for k, v in good.items() if k != "v/w"}, "missing key 'v/w'"),
                       ({**good, "m/w": np.zeros(4)}, r"m/w: expected shape \(3,\), got \(4,\)"),
                       ({**good, "t": np.array(1.5)}, "'t' a step count"),
                       ({**good, "t": np.array(-1)}, "'t' a step count")]:
        with pytest.raises(ValueError, match=match):
            opt.load_state_dict(bad)
        assert opt.t == 1 and np.array_equal(opt.m["w"], good["m/w"])


@pytest.mark.parametrize("kwargs,match", [
    ({"lr": -1}, "lr: expected a number >= 0, got -1.0"),
    ({"lr": float("nan")}, "lr: expected"),
    ({"betas": (0.9, 1.0)}, r"betas\[1\]: expected a number in \[0, 1\), got 1.0"),
    ({"betas": 0.9}, "betas: expected a pair"),
    ({"eps": -1e-8}, "eps: expected"),
    ({"weight_decay": -0.1}, "weight_decay: expected a number >= 0, got -0.1"),
])
def test_bad_hyper_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdamW({"w": np.zeros(2)}, **kwargs)
