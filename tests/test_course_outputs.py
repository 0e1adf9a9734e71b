"""The first course notebook's published outputs ("Building a Recurrent Neural Network - Step by
Step", the current version with its seeded ``*_tmp`` test cells): each test draws the arrays in the
notebook's order from ``np.random.seed(1)`` and compares what ``bptt.stepwise`` returns with the
values the notebook prints under "Expected Output". All ten of its test cells are pinned; for
``lstm_backward`` the notebook passes a ``da`` of 4 steps for a forward of 7 (its function reads
T_x from ``da``), which here is the forward's first 4 steps' caches (the error message says so)."""

import numpy as np
import pytest

from bptt import stepwise as sw


def close(got, published):
    np.testing.assert_allclose(got, published, rtol=0, atol=1e-8)


def rnn_parameters(r, head_first=False) -> dict:
    """Waa, Wax, Wya, ba, by as the forward cells draw them (Wax first in the backward cells)."""
    order = ["Wax", "Waa"] if head_first else ["Waa", "Wax"]
    shapes = {"Waa": (5, 5), "Wax": (5, 3), "Wya": (2, 5), "ba": (5, 1), "by": (2, 1)}
    return {k: r.randn(*shapes[k]) for k in [*order, "Wya", "ba", "by"]}


def lstm_parameters(r, head=True) -> dict:
    p = {}
    for g in "fioc":                                   # the notebook draws f, i, o, c
        p["W" + g], p["b" + g] = r.randn(5, 8), r.randn(5, 1)
    p["Wy"], p["by"] = (r.randn(2, 5), r.randn(2, 1)) if head else (np.zeros((2, 5)),
                                                                     np.zeros((2, 1)))
    return p


def test_rnn_cell_forward():
    r = np.random.RandomState(1)
    xt, a_prev = r.randn(3, 10), r.randn(5, 10)
    a_next, yt_pred, _ = sw.rnn_cell_forward(xt, a_prev, rnn_parameters(r))
    close(a_next[4], [0.59584544, 0.18141802, 0.61311866, 0.99808218, 0.85016201, 0.99980978,
                      -0.18887155, 0.99815551, 0.6531151, 0.82872037])
    close(yt_pred[1], [0.9888161, 0.01682021, 0.21140899, 0.36817467, 0.98988387, 0.88945212,
                       0.36920224, 0.9966312, 0.9982559, 0.17746526])
    assert a_next.shape == (5, 10) and yt_pred.shape == (2, 10)


def test_rnn_forward():
    r = np.random.RandomState(1)
    x, a0 = r.randn(3, 10, 4), r.randn(5, 10)
    a, y_pred, caches = sw.rnn_forward(x, a0, rnn_parameters(r))
    close(a[4][1], [-0.99999375, 0.77911235, -0.99861469, -0.99833267])
    close(y_pred[1][3], [0.79560373, 0.86224861, 0.11118257, 0.81515947])
    close(caches[1][1][3], [-1.1425182, -0.34934272, -0.20889423, 0.58662319])
    assert a.shape == (5, 10, 4) and y_pred.shape == (2, 10, 4) and len(caches) == 2


def test_lstm_cell_forward():
    r = np.random.RandomState(1)
    xt, a_prev, c_prev = r.randn(3, 10), r.randn(5, 10), r.randn(5, 10)
    a_next, c_next, yt, cache = sw.lstm_cell_forward(xt, a_prev, c_prev, lstm_parameters(r))
    close(a_next[4], [-0.66408471, 0.0036921, 0.02088357, 0.22834167, -0.85575339, 0.00138482,
                      0.76566531, 0.34631421, -0.00215674, 0.43827275])
    close(c_next[2], [0.63267805, 1.00570849, 0.35504474, 0.20690913, -1.64566718, 0.11832942,
                      0.76449811, -0.0981561, -0.74348425, -0.26810932])
    close(yt[1], [0.79913913, 0.15986619, 0.22412122, 0.15606108, 0.97057211, 0.31146381,
                  0.00943007, 0.12666353, 0.39380172, 0.07828381])
    close(cache[1][3], [-0.16263996, 1.03729328, 0.72938082, -0.54101719, 0.02752074,
                        -0.30821874, 0.07651101, -1.03752894, 1.41219977, -0.37647422])
    assert len(cache) == 10


def test_lstm_forward():
    r = np.random.RandomState(1)
    x, a0 = r.randn(3, 10, 7), r.randn(5, 10)
    a, y, c, caches = sw.lstm_forward(x, a0, lstm_parameters(r))
    close([a[4][3][6], y[1][4][3], c[1][2][1]], [0.172117767533, 0.95087346185, -0.855544916718])
    close(caches[1][1][1], [0.82797464, 0.23009474, 0.76201118, -0.22232814, -0.20075807,
                            0.18656139, 0.41005165])
    assert a.shape == (5, 10, 7) and y.shape == (2, 10, 7) and len(caches) == 2


def test_rnn_cell_backward():
    r = np.random.RandomState(1)
    xt, a_prev = r.randn(3, 10), r.randn(5, 10)
    _, _, cache = sw.rnn_cell_forward(xt, a_prev, rnn_parameters(r, head_first=True))
    g = sw.rnn_cell_backward(r.randn(5, 10), cache)
    close([g["dxt"][1][2], g["da_prev"][2][3], g["dWax"][3][1], g["dWaa"][1][2], g["dba"][4][0]],
          [-1.3872130506, -0.152399493774, 0.410772824935, 1.15034506685, 0.20023491])


def test_rnn_backward():
    r = np.random.RandomState(1)
    x, a0 = r.randn(3, 10, 4), r.randn(5, 10)
    _, _, caches = sw.rnn_forward(x, a0, rnn_parameters(r, head_first=True))
    g = sw.rnn_backward(r.randn(5, 10, 4), caches)
    close(g["dx"][1][2], [-2.07101689, -0.59255627, 0.02466855, 0.01483317])
    close([g["da0"][2][3], g["dWax"][3][1], g["dWaa"][1][2], g["dba"][4][0]],
          [-0.314942375127, 11.2641044965, 2.30333312658, -0.74747722])


def test_lstm_cell_backward():
    r = np.random.RandomState(1)
    xt, a_prev, c_prev = r.randn(3, 10), r.randn(5, 10), r.randn(5, 10)
    *_, cache = sw.lstm_cell_forward(xt, a_prev, c_prev, lstm_parameters(r))
    g = sw.lstm_cell_backward(r.randn(5, 10), r.randn(5, 10), cache)
    close([g["dxt"][1][2], g["da_prev"][2][3], g["dc_prev"][2][3], g["dWf"][3][1],
           g["dWi"][1][2], g["dWc"][3][1], g["dWo"][1][2]],
          [3.23055911511, -0.0639621419711, 0.797522038797, -0.147954838164, 1.05749805523,
           2.30456216369, 0.331311595289])
    close([g[k][4][0] for k in ("dbf", "dbi", "dbc", "dbo")],
          [0.18864637, -0.40142491, 0.25587763, 0.13893342])


def test_lstm_backward_with_the_notebooks_shorter_da():
    r = np.random.RandomState(1)
    x, a0 = r.randn(3, 10, 7), r.randn(5, 10)
    *_, caches = sw.lstm_forward(x, a0, lstm_parameters(r, head=False))
    da = r.randn(5, 10, 4)
    with pytest.raises(ValueError, match=r"reads T_x from da.*caches\[0\]\[:4\]"):
        sw.lstm_backward(da, caches)
    g = sw.lstm_backward(da, (caches[0][:4], caches[1][:, :, :4]))
    close(g["dx"][1][2], [0.00218254, 0.28205375, -0.48292508, -0.43281115])
    close([g["da0"][2][3], g["dWf"][3][1], g["dWi"][1][2], g["dWc"][3][1], g["dWo"][1][2]],
          [0.312770310257, -0.0809802310938, 0.40512433093, -0.0793746735512, 0.038948775763])
    close([g[k][4][0] for k in ("dbf", "dbi", "dbc", "dbo")],
          [-0.15745657, -0.50848333, -0.42510818, -0.17958196])
