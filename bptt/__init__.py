"""bptt: recurrent neural networks in NumPy with hand-written backpropagation through time."""

from .layers import GRU, LSTM, RNN

__all__ = ["RNN", "LSTM", "GRU"]
__version__ = "0.1.0"
