"""bptt: recurrent neural networks in NumPy with hand-written backpropagation through time."""

from .layers import GRU, LSTM, RNN
from .linear import Linear
from .losses import cross_entropy, cross_entropy_backward
from .optim import Adam, clip_grad_norm

__all__ = ["RNN", "LSTM", "GRU", "Linear", "cross_entropy", "cross_entropy_backward", "Adam",
           "clip_grad_norm"]
__version__ = "0.1.0"

from . import stepwise  # noqa: E402  (the course-notation API: bptt.stepwise.rnn_forward, ...)
from .gradcheck import check_layer, gradcheck  # noqa: E402

__all__ += ["stepwise", "gradcheck", "check_layer"]
