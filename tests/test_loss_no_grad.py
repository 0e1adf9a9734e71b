"""``cross_entropy`` inside ``no_grad()``: the loss alone (log-sum-exp and the target's logit),
the same number as the recorded loss, and a cache that backward refuses."""

import numpy as np
import pytest

import bptt


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("ignored", [0, 3])
@pytest.mark.parametrize("scale", [1.0, 300.0])  # 300: exp(z) alone would overflow
def test_loss_under_no_grad_equals_the_recorded_loss(dtype, ignored, scale):
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(11, 7)) * scale).astype(dtype)
    targets = rng.integers(0, 7, 11)
    targets[:ignored] = -100
    before = logits.copy()
    full, cache = bptt.cross_entropy(logits, targets)
    with bptt.no_grad():
        alone, none = bptt.cross_entropy(logits, targets)
    assert cache is not None and none is None
    assert alone == full  # bit for bit: the same operations on the same values
    assert np.array_equal(logits, before)  # the caller's logits are not touched
    p = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    keep = targets != -100
    reference = -np.mean(np.log(p[np.arange(11), np.where(keep, targets, 0)])[keep])
    assert alone == pytest.approx(reference, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_backward_of_a_no_grad_loss_raises():
    with bptt.no_grad():
        _, cache = bptt.cross_entropy(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(RuntimeError, match="no_grad"):
        bptt.cross_entropy_backward(1.0, cache)


def test_no_grad_keeps_the_checks():
    with bptt.no_grad(), pytest.raises(ValueError, match="targets"):
        bptt.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
