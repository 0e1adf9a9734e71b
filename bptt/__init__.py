"""bptt: recurrent neural networks in NumPy with hand-written backpropagation through time.

Engine layers with torch's names and shapes (``RNN``, ``LSTM``, ``GRU``), the pieces of a model
(``Linear``, ``cross_entropy``, ``Adam``, ``clip_grad_norm``), the course-notation API
(``bptt.stepwise``, with converters in ``bptt.convert``) and ``gradcheck``.
"""

from . import convert, stepwise
from .gradcheck import check_layer, gradcheck
from .layers import GRU, LSTM, RNN
from .linear import Linear
from .losses import cross_entropy, cross_entropy_backward
from .optim import Adam, clip_grad_norm

__all__ = ["RNN", "LSTM", "GRU", "Linear", "cross_entropy", "cross_entropy_backward", "Adam",
           "clip_grad_norm", "stepwise", "convert", "gradcheck", "check_layer"]
__version__ = "0.1.0"
