"""A character-level language model: one-hot or embedded input -> stacked RNN/LSTM/GRU ->
linear head.

Legend: T steps, B batch, V vocabulary size, E embedding size, H hidden size, L layers.

    X = onehot(x)  or  embed(x)  (T, B, V) or (T, B, E)   bptt.Embedding(V, E) with ``embed=E``
    S, state' = rnn(X, state)    (T, B, H)      bptt.RNN / LSTM / GRU with L layers
    Z = head(m ⊙ S)              (T*B, V)       bptt.Linear(H, V), logits
    loss = cross_entropy(Z, y)   mean nats per predicted character

The one-hot input is never built: the recurrent layer takes the ids (``forward`` of an integer
array), so its first input product is a lookup of W_ih's columns and the gradient a scatter.
With ``dropout=p`` (training mode only, torch's meaning) the layer drops the outputs of every
layer but the last, and the model the last layer's outputs before the head (mask m, drawn from
the model's own generator, ``bptt.nn.dropout``); ``recurrent_dropout=q`` is the layer's.
``train()`` / ``eval()`` switch both; ``evaluating(model)`` is eval mode for a block.

With ``lengths`` (B,) (lines mode: a batch of padded samples) row b has only its first
lengths[b] steps: the recurrent layer runs with torch's packed-sequence meaning (no work on the
padding, whose outputs are zero), and targets equal to IGNORE (the padding's) are left out of the
loss, whose mean is then over the valid targets.

Training is truncated BPTT: the state carried from the previous chunk enters as the initial state
and no gradient flows back into it (``backward`` is called with no final-state gradient, and the
initial-state gradient it returns is dropped).
"""

from contextlib import contextmanager

import numpy as np

from ..nn.dropout import Dropout, check_rate
from ..nn.embedding import Embedding
from ..nn.grad_mode import no_grad
from ..nn.layers import GRU, LSTM, RNN
from ..nn.linear import Linear
from ..nn.losses import cross_entropy, cross_entropy_backward
from ..nn.module import Module

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
IGNORE = -100        # a target left out of the loss (torch's default ignore_index)


class CharLM(Module):
    """Character model over a vocabulary of ``vocab_size`` symbols, a ``bptt.Module`` of parts:
    ``embed`` (a bptt.Embedding, or None for a one-hot input), ``rnn`` (RNN/LSTM/GRU), ``drop``
    (the Dropout before the head) and ``head`` (a bptt.Linear).

    Its parameters are the parts', keyed ``embed.weight`` (with ``embed`` > 0),
    ``rnn.<torch name>``, ``head.weight``, ``head.bias``: ``params`` and ``grads`` are dicts
    with those keys (for bptt.Adam's dict form). ``embed``: 0 for a one-hot input, else E.
    ``dropout``, ``recurrent_dropout``: probabilities in [0, 1] (module docstring). The model
    starts in training mode, as torch's.
    """

    def __init__(self, vocab_size: int, cell: str = "lstm", hidden: int = 256, layers: int = 2,
                 dtype=np.float32, seed: int | None = None, embed: int = 0,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {cell!r}")
        if isinstance(embed, bool) or not isinstance(embed, (int, np.integer)) or embed < 0:
            raise ValueError(f"embed: expected an integer >= 0 (0: one-hot input), got {embed!r}")
        gen = np.random.default_rng(seed)
        seeds = gen.integers(0, 2**63, size=2)   # (the one-hot model's draws, first, as before)
        self.cell, self.vocab_size, self.embed_dim = cell, int(vocab_size), int(embed)
        self.dropout = check_rate("dropout", dropout)
        self.embed = None
        if self.embed_dim:
            self.embed = Embedding(self.vocab_size, self.embed_dim, dtype=dtype,
                                   seed=int(gen.integers(0, 2**63)))
        self.rnn = CELLS[cell](self.embed_dim or self.vocab_size, hidden, layers,
                               dropout=self.dropout if layers > 1 else 0.0,  # (one layer: the
                               recurrent_dropout=recurrent_dropout,          # head's mask only)
                               dtype=dtype, seed=int(seeds[0]))
        self.drop = Dropout(self.dropout, seed=int(seeds[1]))   # the mask before the head
        self.head = Linear(hidden, self.vocab_size, dtype=dtype, seed=int(seeds[1]))
        self.dtype = self.rnn.dtype

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The parameters by dotted name (``named_parameters()`` as a dict)."""
        return dict(self.named_parameters())

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The gradients by the same names (each parameter's ``.grad``)."""
        return {name: p.grad for name, p in self.named_parameters()}

    def get_rng_state(self) -> dict:
        """The states of the dropout masks' generators (the layer's and the head's; JSON)."""
        return {"rnn": self.rnn.get_rng_state(), "head": self.drop.get_rng_state()}

    def set_rng_state(self, state: dict) -> None:
        """Continue the masks from ``get_rng_state``'s state (ValueError if it is not one)."""
        if not isinstance(state, dict) or set(state) != {"rnn", "head"}:
            raise ValueError(f"rng_state: expected a dict with keys 'rnn' and 'head' from "
                             f"get_rng_state, got {str(state)[:80]}")
        before = self.rnn.get_rng_state()
        self.rnn.set_rng_state(state["rnn"])
        try:
            self.drop.set_rng_state(state["head"])
        except ValueError:
            self.rnn.set_rng_state(before)
            raise

    def inputs(self, ids: np.ndarray) -> np.ndarray:
        """(T, B) ids -> (T, B, I), the recurrent layers' float input: one-hot (I = V) or, with
        an embedding, the embedded characters (I = E). For reading states layer by layer
        (``bptt.load(...).hidden_states``, ``bptt inspect``); ``forward`` itself never builds
        the one-hot array."""
        if self.embed is None:
            return np.eye(self.vocab_size, dtype=self.dtype)[ids]
        return self.embed.forward(ids)

    def forward(self, x: np.ndarray, state=None, lengths=None):
        """x: (T, B) ids; state: the recurrent layer's state or None (zeros); lengths: (B,) valid
        steps per row, or None (all T). Returns logits (T*B, V) and the final state (detached
        copies; with lengths, each row's state at its own last step). Raises FloatingPointError
        if the recurrent output is NaN or infinite."""
        x = np.asarray(x)
        inputs = x if self.embed is None else self.embed(x)              # ids, or (T, B, E)
        out, state = self.rnn(inputs, state, lengths=lengths)            # (T, B, H)
        if not np.isfinite(out).all():      # parameters gone to huge values: not a bad argument
            raise FloatingPointError("the model's recurrent output is NaN or infinite (its "
                                     "parameters have diverged)")
        logits = self.head(self.drop(out.reshape(-1, out.shape[-1])))   # (T*B, V)
        return logits, state

    def backward(self, dlogits: np.ndarray, shape: tuple) -> None:
        """The backward of the last forward, chained by hand in reverse order: head, dropout,
        the recurrent layer (no gradient into the carried state: truncated BPTT), the
        embedding. dlogits (T*B, V); shape: the (T, B) of its ids. Adds into each ``.grad``."""
        dout = self.drop.backward(self.head.backward(dlogits))          # (T*B, H)
        dx, _ = self.rnn.backward(dout.reshape(tuple(shape) + (-1,)), None)
        if self.embed is not None:
            self.embed.backward(dx)

    def loss(self, x: np.ndarray, y: np.ndarray, state=None,
             lengths=None) -> tuple[float, object]:
        """Mean cross-entropy of targets y (T, B) given inputs x (T, B), over the targets that
        are not IGNORE; no gradients. Returns (loss, final state)."""
        logits, state = self.forward(x, state, lengths)
        loss, _ = cross_entropy(logits, y.reshape(-1), ignore_index=IGNORE)
        return loss, state

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, state=None,
                       lengths=None) -> tuple[float, object]:
        """Forward and truncated backward over one batch; the gradients start from zero and
        are then each parameter's ``.grad`` (``grads``). Returns (loss, final state) where the
        state is what the next chunk starts from."""
        logits, state = self.forward(x, state, lengths)
        loss, cache = cross_entropy(logits, y.reshape(-1), ignore_index=IGNORE)
        self.zero_grad()     # backward adds into .grad (torch's rule): a clean slate
        self.backward(cross_entropy_backward(1.0, cache), np.shape(x))
        return loss, state


@contextmanager
def evaluating(model: CharLM):
    """Within the block the model is in evaluation mode (no dropout); then its mode before."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def next_distribution(logits: np.ndarray, temperature: float, top_k: int | None) -> np.ndarray:
    """Probabilities (V,) in float64 from one row of logits, after top-k and temperature.
    temperature 0 (or one so small that logits / temperature overflows) puts all mass on the
    largest logit (the first one on ties)."""
    z = np.asarray(logits, dtype=np.float64)
    with np.errstate(over="ignore"):
        scaled = z / temperature if temperature != 0 else z
    if temperature == 0 or not np.isfinite(scaled).all():    # 0, or so small that z / T overflows
        p = np.zeros_like(z)
        p[np.argmax(z)] = 1.0
        return p
    z = scaled
    if top_k is not None and top_k < z.size:
        cut = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cut, z, -np.inf)
    p = np.exp(z - z.max())
    return p / p.sum()


def draw(p: np.ndarray, u: float) -> int:
    """The symbol at ``u`` in [0, 1) of the cumulative distribution of ``p`` (V,) (inverse CDF);
    never one of probability 0."""
    cdf = np.cumsum(p)
    i = min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), p.size - 1)
    while p[i] == 0:
        i -= 1
    return i


def check_sampling(temperature: float, top_k: int | None, length: int) -> None:
    """ValueError naming the option for a negative or non-finite temperature, top-k < 1 or
    length < 1."""
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"--temperature: expected a finite number >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"--top-k: expected an integer >= 1, got {top_k}")
    if length < 1:
        raise ValueError(f"--length: expected an integer >= 1, got {length}")


def sample(model: CharLM, vocab, length: int, temperature: float = 1.0, top_k: int | None = None,
           prime: str = "", rng: np.random.Generator | None = None) -> str:
    """Generate ``length`` characters after ``prime``; returns prime + the new characters.

    The prime is read by the model first (an empty prime starts from a newline if the vocabulary
    has one, else from its first character; that start is not returned). Each next character is
    drawn from ``next_distribution``, by inverse CDF with one ``rng.random()`` per character, so
    the same generator state gives the same text.
    """
    check_sampling(temperature, top_k, length)
    rng = np.random.default_rng() if rng is None else rng
    missing = vocab.missing(prime)
    if missing:
        c = missing[0]
        raise ValueError(f"--prime: character {c!r} (U+{ord(c):04X}) is not in the vocabulary")
    start = prime or ("\n" if "\n" in vocab.chars else vocab.chars[0])
    ids = vocab.encode(start)[:, None]                              # (T, 1)
    out = []
    with evaluating(model), no_grad():        # no dropout; the forward-only path
        logits, state = model.forward(ids, None)
        for _ in range(length):
            p = next_distribution(logits[-1], temperature, top_k)
            nxt = draw(p, rng.random())
            out.append(nxt)
            logits, state = model.forward(np.array([[nxt]]), state)
    return prime + vocab.decode(out)
