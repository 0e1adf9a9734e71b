"""bptt.Linear: forward, backward against finite differences and torch, state_dict, errors."""

import numpy as np
import pytest
from fd import numerical_grad, rel_error

import bptt


def make(in_f=4, out_f=3, bias=True, dtype=np.float64, seed=0):
    return bptt.Linear(in_f, out_f, bias=bias, dtype=dtype, seed=seed)


def test_names_shapes_and_torch_default_init():
    lin = make(7, 5)
    assert list(lin.params) == ["weight", "bias"]
    assert lin.params["weight"].shape == (5, 7) and lin.params["bias"].shape == (5,)
    bound = 1 / np.sqrt(7)
    for p in lin.params.values():
        assert np.abs(p).max() <= bound and np.abs(p).max() > bound / 2
    assert list(make(bias=False).params) == ["weight"]
    assert np.array_equal(make(seed=3).params["weight"], make(seed=3).params["weight"])
    assert not np.array_equal(make(seed=3).params["weight"], make(seed=4).params["weight"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_formula_any_leading_dims(dtype):
    lin = make(4, 3, dtype=dtype)
    x = np.random.default_rng(1).standard_normal((2, 5, 4))
    y = lin(x)
    assert y.shape == (2, 5, 3) and y.dtype == dtype
    want = x @ lin.params["weight"].T.astype(np.float64) + lin.params["bias"]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert rel_error(y, want) < tol


@pytest.mark.parametrize("bias", [True, False])
def test_backward_matches_finite_differences(bias):
    rng = np.random.default_rng(2)
    lin = make(4, 3, bias=bias)
    x = rng.standard_normal((2, 3, 4))
    w = rng.standard_normal((2, 3, 3))            # loss = sum(w * y)

    def loss():
        return float(np.sum(w * lin.forward(x)))

    lin.forward(x)
    dx = lin.backward(w)
    assert rel_error(dx, numerical_grad(loss, x)) < 1e-7
    grads = dict(lin.grads)
    for name, p in lin.params.items():
        assert rel_error(grads[name], numerical_grad(loss, p)) < 1e-7, name


def test_backward_before_forward_and_shape_errors():
    lin = make(4, 3)
    with pytest.raises(RuntimeError, match="forward"):
        lin.backward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., 4\), got \(2, 5\)"):
        lin.forward(np.zeros((2, 5)))
    lin.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"dy: expected shape \(2, 3\), got \(2, 4\)"):
        lin.backward(np.zeros((2, 4)))
    with pytest.raises(TypeError):
        lin.forward(np.array([["a", "b", "c", "d"]]))


def test_state_dict_round_trip_and_mismatch_changes_nothing():
    a, b = make(seed=1), make(seed=2)
    b.load_state_dict(a.state_dict())
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name])
    before = b.state_dict()
    bad = a.state_dict()
    bad["bias"] = np.zeros(4)
    with pytest.raises(ValueError, match="bias"):
        b.load_state_dict(bad)
    with pytest.raises(ValueError, match="missing key 'bias'"):
        b.load_state_dict({"weight": a.params["weight"]})
    with pytest.raises(ValueError, match="unexpected key"):
        b.load_state_dict({**a.state_dict(), "extra": np.zeros(1)})
    for name in before:
        assert np.array_equal(before[name], b.params[name])


def test_zero_grad():
    lin = make()
    lin.forward(np.ones((2, 4)))
    lin.backward(np.ones((2, 3)))
    assert np.abs(lin.grads["weight"]).sum() > 0
    lin.zero_grad()
    assert all(not g.any() for g in lin.grads.values())


def test_matches_torch():
    torch = pytest.importorskip("torch")
    ref = torch.nn.Linear(6, 4).double()
    lin = make(6, 4)
    lin.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((5, 6))
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    w = np.random.default_rng(4).standard_normal((5, 4))
    (yt * torch.tensor(w)).sum().backward()
    y = lin.forward(x)
    dx = lin.backward(w)
    assert rel_error(y, yt.detach().numpy()) < 1e-12
    assert rel_error(dx, xt.grad.numpy()) < 1e-12
    assert rel_error(lin.grads["weight"], ref.weight.grad.numpy()) < 1e-12
    assert rel_error(lin.grads["bias"], ref.bias.grad.numpy()) < 1e-12
