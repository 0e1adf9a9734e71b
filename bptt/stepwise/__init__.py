"""The step-by-step API in the notation of the course the project started from.

Layout: features first, then batch, then time. Legend: n_x input size, n_a hidden size, n_y output
size, m batch, T_x steps.

    x (n_x, m, T_x)   a0 (n_a, m)   xt (n_x, m)   a_prev, c_prev (n_a, m)

Modules: ``rnn``, ``lstm``, the lecture's ``gru`` (reset gate before the product, not the
engine's torch GRU), ``adam``, the course's dinosaur-names exercise ``names``
(initialize_parameters, clip, sample, optimize), ``activations`` (softmax, sigmoid) and the
argument checks ``_args``; every public function is imported here, so ``bptt.stepwise.<name>``
is the way to call it.

This package is a thin adapter. It checks the arguments, converts the names (the course's
``Wf, Wi, Wc, Wo`` become the cell's gate blocks i, f, g, o, stacked as (4, n_a, m)), and calls the
same cell code as the engine, which works features first like the course: no gate equation is
written here (the lecture's GRU has its own in bptt/cells/gru.py). Every function returns what the
course's returns, with the same cache layouts and dict keys (see docs/stepwise.md).

How the sizes are read: ``x`` (or ``xt``) fixes n_x and m, the recurrent weight (``Waa``; ``Wf``
for the LSTM, ``Wu`` for the GRU) fixes n_a by its rows, the output weight (``Wya``; ``Wy``) fixes
n_y; everything else is checked against those, and a mismatch raises ValueError naming the key,
the shape expected and the shape got. An x whose first axis does not fit the weights but that
fits them transposed (torch's (T_x, m, n_x), Keras's (m, T_x, n_x), (m, n_x, T_x)) is named as a
layout error with the transpose that fixes it. The arithmetic is float64 unless every input is
float32.
"""

from ._args import LSTM_GATES, rnn_bias_key
from .activations import sigmoid, softmax
from .adam import initialize_adam, update_parameters_with_adam
from .gru import GRU_GATES, gru_backward, gru_cell_backward, gru_cell_forward, gru_forward
from .lstm import lstm_backward, lstm_cell_backward, lstm_cell_forward, lstm_forward
from .names import clip, initialize_parameters, optimize, sample
from .rnn import rnn_backward, rnn_cell_backward, rnn_cell_forward, rnn_forward

__all__ = [
    "LSTM_GATES", "softmax", "sigmoid", "rnn_cell_forward", "rnn_forward", "rnn_cell_backward",
    "rnn_backward", "lstm_cell_forward", "lstm_forward", "lstm_cell_backward", "lstm_backward",
    "gru_cell_forward", "gru_forward", "gru_cell_backward", "gru_backward", "GRU_GATES",
    "initialize_adam", "update_parameters_with_adam", "initialize_parameters", "clip",
    "optimize", "sample", "rnn_bias_key",
]
