"""Bad input to the engine layers: one clear error naming argument, got and expected; no change."""

import numpy as np
import pytest

import bptt


def lstm():
    return bptt.LSTM(3, 4, num_layers=2, seed=0)


@pytest.mark.parametrize(
    "x, fragment",
    [
        (np.zeros((5,)), "x: expected 3 dimensions"),
        (np.zeros((5, 2, 3, 1)), "or, unbatched, 2 (T, input_size), got shape (5, 2, 3, 1)"),
        (np.zeros((5, 2, 7)), "x: expected shape (T, B, 3), got (5, 2, 7)"),
        (np.zeros((0, 2, 3)), "x: expected at least one step"),
    ],
)
def test_bad_x_shape(x, fragment):
    with pytest.raises(ValueError) as err:
        lstm().forward(x)
    assert fragment in str(err.value)


def test_batch_first_message_names_batch_first_layout():
    layer = bptt.GRU(3, 4, batch_first=True)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, T, 3\), got \(2, 5, 4\)"):
        layer(np.zeros((2, 5, 4)))


def test_nan_and_uncastable_dtypes():
    layer = lstm()
    x = np.zeros((2, 1, 3))
    x[1, 0, 2] = np.nan
    with pytest.raises(ValueError, match="x: expected finite values"):
        layer(x)
    with pytest.raises(
        TypeError, match="x: expected a real array castable to float32, got dtype complex128"
    ):
        layer(np.zeros((2, 1, 3), dtype=complex))
    with pytest.raises(TypeError, match="dtype"):
        bptt.RNN(3, 4, dtype=np.float16)
    layer(np.zeros((2, 1, 3), dtype=np.int64))  # ints cast safely


def test_state_batch_mismatch_and_structure():
    layer = lstm()
    x = np.zeros((5, 4, 3))
    with pytest.raises(
        ValueError, match=r"state\[0\] \(h\): expected shape \(2, 4, 4\), got \(2, 3, 4\)"
    ):
        layer(x, (np.zeros((2, 3, 4)), np.zeros((2, 4, 4))))
    with pytest.raises(TypeError, match="expected a tuple \\(h, c\\) for LSTM"):
        layer(x, np.zeros((2, 4, 4)))
    with pytest.raises(TypeError, match="expected one array h for GRU"):
        bptt.GRU(3, 4)(x, (np.zeros((1, 4, 4)), np.zeros((1, 4, 4))))
    with pytest.raises(ValueError, match=r"state: expected shape \(1, 4, 4\), got \(2, 4, 4\)"):
        bptt.RNN(3, 4)(x, np.zeros((2, 4, 4)))


def test_backward_before_forward_and_bad_dout():
    layer = lstm()
    with pytest.raises(RuntimeError, match="forward first"):
        layer.backward(np.zeros((5, 2, 4)))
    out, _ = layer(np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match=r"dout: expected shape \(5, 2, 4\), got \(5, 2, 8\)"):
        layer.backward(np.zeros((5, 2, 8)))
    with pytest.raises(ValueError, match=r"dstate\[1\] \(c\): expected shape \(2, 2, 4\)"):
        layer.backward(np.zeros_like(out), (np.zeros((2, 2, 4)), np.zeros((1, 2, 4))))
    layer.backward(np.zeros_like(out))                 # bad input above changed nothing
    with pytest.raises(RuntimeError, match="differentiated once"):
        layer.backward(np.zeros_like(out))


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda sd: sd.pop("bias_hh_l1"), "missing key 'bias_hh_l1'"),
        (
            lambda sd: sd.__setitem__("weight_ih_l2", np.zeros((16, 4))),
            "unexpected key 'weight_ih_l2'",
        ),
        (
            lambda sd: sd.__setitem__("weight_hh_l0", np.zeros((16, 5))),
            "weight_hh_l0: expected shape (16, 4), got (16, 5)",
        ),
    ],
)
def test_load_state_dict_names_first_mismatch_and_keeps_weights(change, fragment):
    layer = lstm()
    before = layer.state_dict()
    sd = {k: np.ones_like(v) for k, v in before.items()}
    change(sd)
    with pytest.raises(ValueError) as err:
        layer.load_state_dict(sd)
    assert fragment in str(err.value)
    for k, v in before.items():
        assert np.array_equal(layer.params[k], v)


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"hidden_size": 0}, ValueError),
        ({"num_layers": 1.5}, TypeError),
        ({"nonlinearity": "sigmoid"}, ValueError),
    ],
)
def test_bad_constructor_arguments(kwargs, exc):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(exc):
        bptt.RNN(**args)


@pytest.mark.parametrize(
    "lengths, exc, fragment",
    [
        (np.array([3, 2]), ValueError, "lengths: expected shape (3,) (one length per sequence), "
         "got (2,)"),
        (np.array([[3, 2, 1]]), ValueError, "lengths: expected shape (3,)"),
        (np.array([3.0, 2.0, 1.0]), TypeError, "lengths: expected integers, got dtype float64"),
        (np.array([True, True, True]), TypeError, "lengths: expected integers, got dtype bool"),
        ([3, 0, 1], ValueError, "lengths: expected values in 1..5 (the steps of x), got min 0"),
        ([3, 6, 1], ValueError, "lengths: expected values in 1..5 (the steps of x), got min 1, "
         "max 6"),
        ([[1, 2], [3]], TypeError, "lengths: expected a 1-D integer array, got list"),
    ],
)
def test_bad_lengths_name_the_problem_and_change_nothing(lengths, exc, fragment):
    layer = lstm()
    x = np.random.default_rng(0).normal(size=(5, 3, 3))
    out, _ = layer(x, lengths=[5, 2, 4])
    with pytest.raises(exc) as err:
        layer(np.ones_like(x), lengths=lengths)
    assert fragment in str(err.value)
    dx, _ = layer.backward(np.ones_like(out))  # the pending forward is the first one
    again = lstm()
    out2, _ = again(x, lengths=[5, 2, 4])
    dx2, _ = again.backward(np.ones_like(out2))
    assert np.array_equal(out, out2) and np.array_equal(dx, dx2)


def test_bad_dout_or_dstate_after_lengths_changes_nothing():
    layer = lstm()
    x = np.random.default_rng(0).normal(size=(5, 3, 3))
    out, (h, c) = layer(x, lengths=[5, 2, 4])
    with pytest.raises(ValueError, match=r"dout: expected shape \(5, 3, 4\), got \(4, 3, 4\)"):
        layer.backward(np.ones((4, 3, 4)))
    with pytest.raises(ValueError, match=r"dstate\[0\] \(h\): expected shape \(2, 3, 4\)"):
        layer.backward(np.ones_like(out), (np.ones((2, 2, 4)), np.ones_like(c)))
    dx, _ = layer.backward(np.ones_like(out), (np.ones_like(h), np.ones_like(c)))
    again = lstm()
    again(x, lengths=[5, 2, 4])
    dx2, _ = again.backward(np.ones_like(out), (np.ones_like(h), np.ones_like(c)))
    assert np.array_equal(dx, dx2)


@pytest.mark.parametrize("make", [bptt.RNN, bptt.LSTM, bptt.GRU, bptt.Linear])
@pytest.mark.parametrize("dtype", ["banana", "float16", np.int32, object, 3])
def test_dtype_not_a_float_type_is_a_type_error(make, dtype):
    with pytest.raises(TypeError, match=r"^dtype: expected float32 or float64, got"):
        make(3, 4, dtype=dtype)


def test_dtype_torch_and_none():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="dtype: expected float32 or float64"):
        bptt.LSTM(5, 8, dtype=torch.float32)
    for make in (bptt.LSTM, bptt.Linear):
        assert make(5, 8, dtype=None).dtype == np.float32  # None: the default, as torch
        assert make(5, 8, dtype="float64").dtype == np.float64
