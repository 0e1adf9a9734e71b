"""Softmax cross-entropy: value, stability, gradient against finite differences and torch."""

import numpy as np
import pytest
from fd import numerical_grad, rel_error

from bptt.nn.losses import cross_entropy, cross_entropy_backward


def naive(z, y):
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(y)), y]))


def test_value_matches_definition():
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((7, 5)), rng.integers(0, 5, 7)
    loss, _ = cross_entropy(z, y)
    assert abs(loss - naive(z, y)) < 1e-12
    assert abs(cross_entropy(np.zeros((3, 10)), np.array([1, 2, 3]))[0] - np.log(10)) < 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_huge_logits(dtype):
    z = np.array([[1e4, 0.0, -1e4], [5e3, 5e3, 0.0]], dtype=dtype)
    loss, cache = cross_entropy(z, np.array([0, 1]))
    assert np.isfinite(loss) and abs(loss - np.log(2) / 2) < 1e-6
    d = cross_entropy_backward(1.0, cache)
    assert np.isfinite(d).all() and d.dtype == dtype


def test_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    z, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    _, cache = cross_entropy(z, y)
    d = cross_entropy_backward(2.5, cache)
    num = numerical_grad(lambda: 2.5 * cross_entropy(z, y)[0], z)
    assert rel_error(d, num) < 1e-7


def test_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    z, y = rng.standard_normal((9, 6)), rng.integers(0, 6, 9)
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(y))
    lt.backward()
    loss, cache = cross_entropy(z, y)
    assert abs(loss - lt.item()) < 1e-12
    assert rel_error(cross_entropy_backward(1.0, cache), zt.grad.numpy()) < 1e-12


def test_bad_input():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"targets: expected shape \(3,\), got \(2,\)"):
        cross_entropy(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        cross_entropy(z, np.array([0, 1, 4]))
    with pytest.raises(TypeError, match="integer"):
        cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="N, V"):
        cross_entropy(np.zeros(4), np.array([0]))


@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_ignore_index_matches_torch(ignore_index):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    z = rng.standard_normal((10, 5))
    y = rng.integers(0, 5, 10)
    y[[1, 4, 5]] = ignore_index
    zt = torch.tensor(z, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(y), ignore_index=ignore_index)
    lt.backward(torch.tensor(1.7, dtype=torch.float64))
    loss, cache = cross_entropy(z, y, ignore_index=ignore_index)
    d = cross_entropy_backward(1.7, cache)
    assert abs(loss - lt.item()) < 1e-12
    assert rel_error(d, zt.grad.numpy()) < 1e-12
    assert not np.any(d[y == ignore_index])  # ignored rows: exactly zero


def test_ignore_index_backward_matches_finite_differences():
    rng = np.random.default_rng(4)
    z, y = rng.standard_normal((6, 4)), np.array([0, -100, 3, 1, -100, 2])
    _, cache = cross_entropy(z, y)
    num = numerical_grad(lambda: cross_entropy(z, y)[0], z)
    assert rel_error(cross_entropy_backward(1.0, cache), num) < 1e-7


def test_ignore_index_bad_input():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match="every target equals ignore_index=-100"):
        cross_entropy(z, np.full(3, -100))
    with pytest.raises(ValueError, match=r"\[0, 4\) or ignore_index=-1, got min -100"):
        cross_entropy(z, np.array([0, -100, -1]), ignore_index=-1)
    with pytest.raises(TypeError, match="ignore_index: expected an integer, got 1.5"):
        cross_entropy(z, np.array([0, 1, 2]), ignore_index=1.5)
