"""bptt.Embedding: forward and backward against torch.nn.Embedding and finite differences,
initialisation, state_dict, errors."""

import numpy as np
import pytest
from fd import numerical_grad, rel_error

import bptt
from bptt.nn.embedding import scatter_rows


def test_name_shape_and_torch_default_init():
    emb = bptt.Embedding(500, 40, seed=0)
    w = emb.params["weight"]
    assert list(emb.params) == ["weight"] and w.shape == (500, 40) and w.dtype == np.float32
    # N(0, 1): 20000 draws, mean within 5 standard errors (0.035) and std within 0.035 of 1
    assert abs(w.mean()) < 0.035 and abs(w.std() - 1) < 0.035
    assert np.array_equal(w, bptt.Embedding(500, 40, seed=0).params["weight"])
    assert not np.array_equal(w, bptt.Embedding(500, 40, seed=1).params["weight"])


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-6)])
def test_forward_backward_equal_torch_with_repeated_ids(dtype, tol):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    emb = bptt.Embedding(7, 5, dtype=dtype, seed=2)
    ids = rng.integers(0, 7, (6, 4))  # 24 ids over 7 rows: rows repeat
    ids[0, :3] = 3
    dy = rng.standard_normal((6, 4, 5)).astype(dtype)
    temb = torch.nn.Embedding(7, 5, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    temb.weight.data = torch.tensor(emb.params["weight"].copy())
    ty = temb(torch.tensor(ids))
    ty.backward(torch.tensor(dy))
    y = emb(ids)
    assert emb.backward(dy) is None
    assert y.dtype == dtype and emb.grads["weight"].dtype == dtype
    assert np.array_equal(y, ty.detach().numpy())
    assert rel_error(emb.grads["weight"], temb.weight.grad.numpy()) < tol
    unused = np.setdiff1d(np.arange(7), ids)
    assert not emb.grads["weight"][unused].any()


def test_backward_matches_finite_differences():
    rng = np.random.default_rng(3)
    emb = bptt.Embedding(4, 3, dtype=np.float64, seed=0)
    ids = np.array([[0, 2, 2], [3, 0, 2]])
    w = rng.standard_normal((2, 3, 3))

    def loss():
        return float(np.sum(w * emb.forward(ids)))

    emb.forward(ids)
    emb.backward(w)
    assert rel_error(emb.grads["weight"], numerical_grad(loss, emb.params["weight"])) < 1e-8


def test_scatter_rows_equals_add_at():
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 9, 50)
    dy = rng.standard_normal((50, 6))
    want = np.zeros((9, 6))
    np.add.at(want, ids, dy)
    assert rel_error(scatter_rows(ids, dy, 9), want) < 1e-14


def test_forward_keeps_its_own_ids_and_returns_a_new_array():
    emb = bptt.Embedding(5, 2, dtype=np.float64, seed=0)
    ids = np.array([1, 1, 4], dtype=np.uint8)
    y = emb(ids)
    y[...] = 99  # the output is the caller's, not a view of the weight
    assert not (emb.params["weight"] == 99).any()
    ids[...] = 0  # reusing the ids array does not change what backward scatters to
    emb.backward(np.ones((3, 2)))
    assert np.array_equal(emb.grads["weight"][:, 0], [0, 2, 0, 0, 1])


def test_errors():
    emb = bptt.Embedding(5, 2, seed=0)
    with pytest.raises(RuntimeError, match="forward"):
        emb.backward(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"ids: expected integers in \[0, 5\), got 5"):
        emb.forward([0, 5, 1])
    with pytest.raises(ValueError, match=r"ids: expected integers in \[0, 5\), got -1"):
        emb.forward(np.array([[-1, 0]]))
    with pytest.raises(TypeError, match="ids: expected an integer array, got dtype float64"):
        emb.forward(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="ids: expected an integer array, got dtype bool"):
        emb.forward(np.array([True]))
    emb.forward(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"dy: expected shape \(2, 3, 2\), got \(2, 3\)"):
        emb.backward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="num_embeddings"):
        bptt.Embedding(0, 2)
    with pytest.raises(TypeError, match="dtype"):
        bptt.Embedding(3, 2, dtype=np.int32)


def test_state_dict_round_trip_and_mismatch_changes_nothing():
    a, b = bptt.Embedding(6, 3, seed=1), bptt.Embedding(6, 3, seed=2)
    b.load_state_dict(a.state_dict())
    assert np.array_equal(a.params["weight"], b.params["weight"])
    with pytest.raises(ValueError, match=r"weight: expected shape \(6, 3\), got \(5, 3\)"):
        b.load_state_dict({"weight": np.zeros((5, 3))})
    with pytest.raises(ValueError, match="unexpected key"):
        b.load_state_dict({"weight": np.zeros((6, 3)), "bias": np.zeros(3)})
    assert np.array_equal(a.params["weight"], b.params["weight"])
    assert repr(a) == "Embedding(6, 3, dtype=float32)"
