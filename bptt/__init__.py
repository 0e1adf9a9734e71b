"""bptt: recurrent neural networks in NumPy with hand-written backpropagation through time.

Engine layers with torch's names and shapes (``RNN``, ``LSTM``, ``GRU`` and the single-step
``RNNCell``, ``LSTMCell``, ``GRUCell``), the pieces of a model as torch.nn's (``Module``,
``Parameter``, ``Linear``, ``Embedding``, ``Dropout``, the losses, ``SGD``, ``Adam``,
``AdamW``, ``StepSchedule``, ``ReduceLROnPlateau``, ``clip_grad_norm_``, ``manual_seed``),
``no_grad`` (forwards that keep nothing for a backward),
the character model from Python (``train``, ``load``: bptt.text.api, imported on first use), the
course-notation API (``bptt.stepwise``, with
converters in ``bptt.convert``) and ``gradcheck``.

Layout rule: the top level of the package holds what users import or run (this file, ``cli``,
``__main__``, and the course API: the ``stepwise`` package, ``convert``, ``gradcheck``); each other
subfolder holds one part of the implementation and imports only from the folders below it:
``tools`` (bench, naive, floor) and ``text`` (the character model) on ``nn`` (the engine), on
``cells`` (each cell's equations and derivatives, once).
"""

from . import convert, stepwise
from .gradcheck import check_layer, gradcheck
from .nn.cell_modules import GRUCell, LSTMCell, RNNCell
from .nn.dropout import Dropout
from .nn.embedding import Embedding
from .nn.grad_mode import is_grad_enabled, no_grad
from .nn.layers import GRU, LSTM, RNN
from .nn.linear import Linear
from .nn.losses import (
    CrossEntropyLoss,
    LogSoftmax,
    MSELoss,
    NLLLoss,
    cross_entropy,
    cross_entropy_backward,
    log_softmax,
)
from .nn.module import Module, Parameter
from .nn.optim import SGD, Adam, AdamW, clip_grad_norm, clip_grad_norm_
from .nn.schedule import ReduceLROnPlateau, StepSchedule
from .nn.seed import manual_seed
from .stepwise.check import check_cell, check_sequence

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "Linear", "Embedding",
           "Dropout", "Module", "Parameter", "cross_entropy", "cross_entropy_backward",
           "log_softmax", "CrossEntropyLoss", "NLLLoss", "MSELoss", "LogSoftmax", "SGD", "Adam",
           "AdamW", "StepSchedule", "ReduceLROnPlateau", "clip_grad_norm", "clip_grad_norm_",
           "manual_seed", "no_grad", "is_grad_enabled", "stepwise", "convert", "gradcheck",
           "check_layer", "check_sequence", "check_cell", "train", "load"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``bptt.train`` and ``bptt.load`` (bptt.text.api), imported on first use so that
    ``import bptt`` stays light (the training loop imports tqdm and matplotlib)."""
    if name in ("train", "load"):
        from .text import api
        return getattr(api, name)
    raise AttributeError(f"module 'bptt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"train", "load"})
