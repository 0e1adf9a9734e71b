"""The course's dinosaur-names exercise: a character RNN trained one name at a time
(initialize_parameters, clip, optimize, sample)."""

from collections.abc import Mapping

import numpy as np

from .._checks import positive_int
from ._args import _expected_n_x, _mapping, rnn_bias_key
from .rnn import rnn_backward, rnn_cell_forward, rnn_forward

# ------------------------------------------------------- the dinosaur-names exercise (char RNN)
# The course's next notebook trains the RNN above on names, one name per sequence, one sequence
# per step (m = 1). Its parameters call the hidden bias ``b`` (not ``ba``); these functions take
# either and key its gradient to match (``db`` or ``dba``).

def initialize_parameters(n_a: int, n_x: int, n_y: int) -> dict:
    """The course's initialisation: Wax (n_a, n_x), Waa (n_a, n_a), Wya (n_y, n_a) drawn from
    N(0, 0.01²), in that order, from the legacy generator seeded with 1 (the values of the
    course's ``np.random.seed(1)``, without touching NumPy's global generator); b (n_a, 1) and
    by (n_y, 1) zeros. Returns {"Wax", "Waa", "Wya", "b", "by"}."""
    n_a, n_x, n_y = (positive_int(k, v) for k, v in (("n_a", n_a), ("n_x", n_x), ("n_y", n_y)))
    draw = np.random.RandomState(1)
    Wax = draw.randn(n_a, n_x) * 0.01                  # input to hidden
    Waa = draw.randn(n_a, n_a) * 0.01                  # hidden to hidden
    Wya = draw.randn(n_y, n_a) * 0.01                  # hidden to output
    return {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": np.zeros((n_a, 1)), "by": np.zeros((n_y, 1))}


def clip(gradients: dict, maxValue: float) -> dict:  # noqa: N803 (the course's name)
    """Every entry of every gradient clipped to [-maxValue, maxValue] (element-wise, as the
    course does; ``bptt.clip_grad_norm`` is the norm-wise clipping of torch and the CLI).

    gradients: a dict of arrays (dWaa, dWax, dWya, db, dby, or any other keys). Returns a new dict
    with the same keys and clipped copies; the caller's arrays are not changed.
    """
    _mapping("gradients", gradients)
    if isinstance(maxValue, bool) or not isinstance(maxValue, (int, float, np.integer,
                                                                np.floating)):
        raise TypeError(f"maxValue: expected a number, got {type(maxValue).__name__}")
    if not maxValue > 0:
        raise ValueError(f"maxValue: expected a number > 0, got {maxValue}")
    out = {}
    for key, g in gradients.items():
        g = np.asarray(g)
        if g.dtype.kind not in "biuf":
            raise TypeError(f"gradients[{key!r}]: expected a real array, got dtype {g.dtype}")
        out[key] = np.clip(g, -maxValue, maxValue)
    return out


def _char_rnn(parameters) -> tuple[dict, str]:
    """The parameters with the hidden bias under "ba" (a new dict of the same arrays), and the
    key the caller used for it ("b" or "ba")."""
    _mapping("parameters", parameters)
    key = rnn_bias_key(parameters)
    if key not in parameters:
        raise ValueError("parameters: expected the hidden bias as 'b' (the course's name here) "
                         "or 'ba', got neither")
    view = {k: parameters[k] for k in ("Wax", "Waa", "Wya", "by") if k in parameters}
    return {**view, "ba": parameters[key]}, key


def _ids(name: str, seq, n: int, none_ok: bool) -> list:
    """A list of character indices in [0, n) (None allowed where ``none_ok``: a zero input)."""
    if isinstance(seq, (str, bytes)) or not isinstance(seq, (list, tuple, np.ndarray)):
        raise TypeError(f"{name}: expected a list of character indices, got {type(seq).__name__}")
    out = []
    for t, i in enumerate(seq):
        if i is None and none_ok:
            out.append(None)
            continue
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n:
            raise ValueError(f"{name}[{t}]: expected an index in [0, {n})"
                             f"{' or None' if none_ok else ''}, got {i!r}")
        out.append(int(i))
    if not out:
        raise ValueError(f"{name}: expected at least one character, got an empty list")
    return out


def optimize(X, Y, a_prev, parameters: dict, learning_rate: float = 0.01):
    """One step of the course's training loop on one name: forward (``rnn_forward``), the
    cross-entropy summed over the steps, backward (``rnn_backward`` and the softmax head),
    ``clip(gradients, 5)``, then gradient descent.

    X: list of T_x input indices (None: the zero vector, which starts a name); Y: the T_x target
    indices; a_prev: (n_a, 1) the state to start from; parameters: Wax, Waa, Wya, b (or ba), by.
    The update binds new arrays into ``parameters`` (``parameters[k] = parameters[k] - lr * dk``),
    as the course's dict is updated, while a snapshot of the old arrays stays unchanged.
    Returns loss (float), gradients (dWaa, dWax, dWya, db or dba, dby; clipped) and the last
    hidden state a (n_a, 1).
    """
    view, bias = _char_rnn(parameters)
    n_x = _expected_n_x(view, "Wax", False)
    if n_x is None:
        raise ValueError("parameters: expected Wax of shape (n_a, n_x)")
    X, Y = _ids("X", X, n_x, True), _ids("Y", Y, n_x, False)
    if len(X) != len(Y):
        raise ValueError(f"Y: expected one target per input, {len(X)}, got {len(Y)}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.integer,
                                                                          np.floating)):
        raise TypeError(f"learning_rate: expected a number, got {type(learning_rate).__name__}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate: expected a number > 0, got {learning_rate!r}")
    T_x = len(X)
    x = np.zeros((n_x, 1, T_x))                                   # one-hot columns
    for t, i in enumerate(X):
        if i is not None:
            x[i, 0, t] = 1
    a, y_hat, caches = rnn_forward(x, a_prev, view)              # (n_a, 1, T_x), (n_y, 1, T_x)
    steps = np.arange(T_x)
    loss = float(-np.log(y_hat[Y, 0, steps]).sum())
    dy = y_hat.copy()                                             # dL/d(Wya a + by): y_hat - y
    dy[Y, 0, steps] -= 1
    grads = rnn_backward(np.einsum("ya,ymt->amt", view["Wya"], dy), caches)
    gradients = {"dWaa": grads["dWaa"], "dWax": grads["dWax"],
                 "dWya": np.einsum("ymt,amt->ya", dy, a), "d" + bias: grads["dba"],
                 "dby": dy.sum(axis=(1, 2))[:, None]}
    gradients = clip(gradients, 5)
    for key in ("Wax", "Waa", "Wya", bias, "by"):
        parameters[key] = parameters[key] - learning_rate * gradients["d" + key]
    return loss, gradients, a[:, :, -1].copy()


def sample(parameters: dict, char_to_ix: dict, seed: int) -> list:
    """A name drawn from the model, as the course samples: start from a0 = 0 and the zero input,
    draw each character from yt_pred, feed it back one-hot, stop after the newline or 50
    characters (then a newline is appended).

    parameters: Wax, Waa, Wya, b (or ba), by; char_to_ix: {character: index}, with "\\n".
    The draw at step k uses ``np.random.RandomState(seed + 2k)``: the course's
    ``np.random.seed(counter + seed)`` with both counting up, so its expected output is
    reproduced, without touching NumPy's global generator. Returns the list of indices.
    """
    view, _ = _char_rnn(parameters)
    if not isinstance(char_to_ix, Mapping) or "\n" not in char_to_ix:
        raise ValueError("char_to_ix: expected a dict {character: index} with an entry for "
                         "'\\n', the end of a name")
    seed = positive_int("seed", seed, minimum=0)
    newline = char_to_ix["\n"]
    n_x = _expected_n_x(view, "Wax", False)
    if n_x is None:
        raise ValueError("parameters: expected Wax of shape (n_a, n_x)")
    if np.shape(view.get("Wya"))[:1] != (n_x,):
        raise ValueError(f"Wya: expected shape (n_x, n_a) with n_x = {n_x} (sampled characters "
                         f"are fed back as inputs), got {np.shape(view.get('Wya'))}")
    x = np.zeros((n_x, 1))
    a_prev = np.zeros((np.shape(view["Waa"])[0], 1))
    indices, idx = [], -1
    while idx != newline and len(indices) != 50:
        a_prev, y, _ = rnn_cell_forward(x, a_prev, view)
        draw = np.random.RandomState(seed + 2 * len(indices))
        idx = int(draw.choice(n_x, p=y.ravel()))
        indices.append(idx)
        x = np.zeros((n_x, 1))
        x[idx] = 1
    if idx != newline:
        indices.append(newline)
    return indices
