"""Recurrent layers with torch's names, shapes, gate order and initialisation: RNN, LSTM, GRU.

Legend: T steps, B batch, I input size, H hidden size, L layers, D directions (1 or 2), G gates,
P the size of h: H, or an LSTM's ``proj_size``.

One class, ``Recurrent``, holds parameters, stacking and directions for all three kinds; the kind
chooses the gate count and the time loops of ``bptt.nn.loops``. Parameters of layer k, direction
suffix ``""`` or ``"_reverse"``:

    weight_ih_l{k}{sfx}  (G*H, I if k == 0 else D*P)     gate blocks in torch order
    weight_hh_l{k}{sfx}  (G*H, P)                        (LSTM i, f, g, o; GRU r, z, n)
    bias_ih_l{k}{sfx}    (G*H,)
    bias_hh_l{k}{sfx}    (G*H,)
    weight_hr_l{k}{sfx}  (P, H)                          LSTM with proj_size = P > 0 only

An LSTM's ``proj_size=P`` (torch's, 0 < P < H; 0: none) projects the state: h' = W_hr (o * tanh(c'))
(``bptt.cells.lstm``), so h, the outputs and what enters W_hh have P features, c keeps H:
h0 (L*D, B, P), c0 (L*D, B, H), out (T, B, D*P), layer k > 0 reads D*P features.

Dropout (``bptt.nn.dropout``), only in training mode (``train()``, the default, and ``eval()``
as torch): ``dropout=p`` multiplies the outputs of every layer but the last, the next layer's
input, by a mask drawn per step, sequence and unit (torch's meaning); ``recurrent_dropout=q``
multiplies the state that enters the recurrent product by one mask per layer, direction,
sequence and unit, the same at every step, so that W_hh h becomes W_hh (m ⊙ h) in the cells'
equations (their docstrings; ``bptt.nn.loops`` for how). Masks come from the layer's own
generator, seeded by ``seed``; ``get_rng_state()`` / ``set_rng_state()`` save and restore it.

Gradients follow torch's rule (``bptt.nn.grad_mode``): ``backward`` adds into ``grads``, whose
arrays keep their identity, and ``zero_grad()`` sets them to zero in place; a forward inside
``bptt.no_grad()`` keeps no cache and leaves a pending backward untouched. Pickle and deepcopy
carry parameters, gradients, configuration and the dropout generator, never scratch memory.

Inputs: x of shape (T, B, I) (or (B, T, I) with batch_first) or, as torch's unbatched input,
(T, I); an x (or state) of another real dtype (integers, booleans, float16, float64 into a
float32 layer) is cast to the layer's dtype by NumPy's 'same_kind' rule (torch would raise
instead); complex, strings and objects are a TypeError.
"""

import functools
import warnings

import numpy as np

from .._checks import as_array, as_dtype, check_shape, positive_int
from ..cells import rnn as rnn_cell
from . import _params, blocks, inference, loops, packing, products
from . import dropout as drop
from . import grad_mode as gm
from .embedding import check_ids
from .module import plain
from .packed_path import PackedPath

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


class Recurrent(PackedPath, _params.HasParameters):
    """Shared implementation of RNN, LSTM and GRU (use those classes)."""

    kind = ""
    nonlinearity = "tanh"  # RNN's constructor sets its own; LSTM and GRU have none

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        recurrent_dropout: float = 0.0,
        dtype=np.float32,
        seed: int | None = None,
    ):
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.proj_size = _check_proj_size(proj_size, self.hidden_size, self.kind)
        self.state_size = self.proj_size or self.hidden_size  # P: the size of h
        self.num_layers = positive_int("num_layers", num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.bidirectional = bool(bidirectional)
        self.dtype = as_dtype(dtype)
        self.gates = GATES[self.kind]
        self.num_directions = 2 if self.bidirectional else 1
        seed = self._init_parameters(seed)
        self._clear_scratch()
        self.state_grads = None  # per-step dL/dstate of the last backward(keep_state_grads=True)
        self._init_dropout(dropout, recurrent_dropout, seed)

    def _clear_scratch(self) -> None:
        """No pending forward and no scratch memory (rebuilt on demand)."""
        self._cache = None      # the recorded forward's, until its backward
        self._unbatched = False  # that forward's x was 2-D (T, I)
        self._held = None       # weak references to its outputs (``grad_mode.refs``)
        self._replaced = False  # it replaced a forward whose outputs the caller still held
        self._snap: dict = {}   # the weights it ran with (``grad_mode.snapshot``)
        self._work: dict = {}
        self._arenas: dict = {}
        self._ids = None        # that forward's one-hot ids (T, B), when its input was ids
        self._rejected = False  # a backward of it was tried and rejected for its arguments

    def __getstate__(self):
        """Pickle and deepcopy carry parameters, gradients, configuration and the dropout
        generator; caches and scratch buffers are left out and rebuilt on demand."""
        state = self.__dict__.copy()
        for name in ("_cache", "_unbatched", "_held", "_replaced", "_snap", "_work", "_arenas",
                     "_ids", "state_grads", "_rejected"):
            del state[name]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._clear_scratch()
        self.state_grads = None

    # ------------------------------------------------------------------ dropout

    def _init_dropout(self, p, q, seed) -> None:
        self.dropout = drop.check_rate("dropout", p)
        self.recurrent_dropout = drop.check_rate("recurrent_dropout", q)
        if self.dropout > 0 and self.num_layers == 1:  # as torch
            warnings.warn(
                f"dropout: drops the outputs of every layer but the last, so it expects "
                f"num_layers > 1, got dropout={self.dropout} and num_layers=1",
                stacklevel=3,
            )
        self._rng = drop.generator(seed)

    def get_rng_state(self) -> dict:
        """The state of the generator the dropout masks come from (ints and strings: JSON)."""
        return drop.get_state(self._rng)

    def set_rng_state(self, state: dict) -> None:
        """Continue the masks from a state ``get_rng_state`` gave (ValueError if it is not one)."""
        drop.set_state(self._rng, state)

    def _masks(self, T, B):
        """The dropout masks of one forward, ``drop.layer_masks``' (between, recurrent)."""
        shape = (self.num_layers, self.num_directions, T, self.state_size, B)
        return drop.layer_masks(self._rng, self.dropout, self.recurrent_dropout, shape,
                                self.dtype, self.training)

    # ------------------------------------------------------------------ parameters

    def _suffixes(self):
        return ["", "_reverse"][: self.num_directions]

    def _shapes(self) -> dict[str, tuple]:
        """Parameter names in torch's order, with their shapes."""
        GH, H, P = self.gates * self.hidden_size, self.hidden_size, self.state_size
        shapes = {}
        for k in range(self.num_layers):
            in_size = self.input_size if k == 0 else self.num_directions * P
            for sfx in self._suffixes():
                shapes[f"weight_ih_l{k}{sfx}"] = (GH, in_size)
                shapes[f"weight_hh_l{k}{sfx}"] = (GH, P)
                if self.bias:
                    shapes[f"bias_ih_l{k}{sfx}"] = (GH,)
                    shapes[f"bias_hh_l{k}{sfx}"] = (GH,)
                if self.proj_size:
                    shapes[f"weight_hr_l{k}{sfx}"] = (P, H)
        return shapes

    def reset_parameters(self, seed: int | None = None) -> None:
        """torch's default: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), reproducible from seed."""
        _params.fill_uniform(self.params, 1.0 / np.sqrt(self.hidden_size), seed)

    def _w(self, name: str) -> np.ndarray:
        """The parameter ``name`` as a plain array (the loops never see the Parameter type)."""
        return plain(self._parameters[name])

    def _buffer(self, key):
        """A function (name, shape) -> array reused across calls of the same shape (internal
        scratch only: nothing handed to a caller lives in it)."""

        def get(name, shape):
            full = (key, name)
            buf = self._work.get(full)
            if buf is None or buf.shape != shape:
                buf = self._work[full] = np.empty(shape, dtype=self.dtype)
            return buf

        return get

    def _arena(self, key):
        """The ``packing.Arena`` of one direction (scratch of a batch run in segments)."""
        arena = self._arenas.get(key)
        if arena is None:
            arena = self._arenas[key] = packing.Arena(self.dtype)
        return arena

    # ------------------------------------------------------------------ checks

    def _state_shapes(self, B) -> tuple:
        """The shape of each part of the state: (h,), or for the LSTM (h, c); h (L*D, B, P),
        c (L*D, B, H)."""
        LD = self.num_layers * self.num_directions
        h = (LD, B, self.state_size)
        return (h, (LD, B, self.hidden_size)) if self.kind == "LSTM" else (h,)

    def _state_sizes(self) -> tuple:
        """The features of each part of the state: (P,), or for the LSTM (P, H)."""
        return tuple(shape[2] for shape in self._state_shapes(1))

    def _check_x(self, x) -> np.ndarray:
        layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
        layout += " or, unbatched, 2 (T, input_size)"
        x = as_array("x", x, self.dtype, ndim=3, what=layout)
        if x.shape[2] != self.input_size:
            want = ("B", "T") if self.batch_first else ("T", "B")
            raise ValueError(
                f"x: expected shape ({want[0]}, {want[1]}, {self.input_size}), got {x.shape}"
            )
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"x: expected at least one step and one sequence, got shape {x.shape}")
        return np.ascontiguousarray(x.transpose(1, 0, 2)) if self.batch_first else x

    def _check_state(self, state, B, name="state", finite=True, unbatched=False):
        """``state`` as a tuple of arrays of ``_state_shapes(B)``: (h,) for RNN and GRU, (h, c)
        for LSTM (h (L*D, B, P), c (L*D, B, H)); None, or for ``dstate`` None in place of h or c,
        means zeros. With ``unbatched`` each part is (L*D, P or H) (torch's unbatched state) and
        comes back as (L*D, 1, P or H)."""
        shapes = self._state_shapes(B)
        n = len(shapes)
        if state is None:
            return tuple(np.zeros(shape, self.dtype) for shape in shapes)
        if n == 2:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(
                    f"{name}: expected a tuple (h, c) for LSTM, got {type(state).__name__}"
                )
            parts, names = state, (f"{name}[0] (h)", f"{name}[1] (c)")
        else:
            if isinstance(state, (tuple, list)):
                raise TypeError(
                    f"{name}: expected one array h for {self.kind}, got a {type(state).__name__}"
                )
            parts, names = (state,), (name,)
        out = []
        for part, pname, shape in zip(parts, names, shapes, strict=True):
            if part is None and name == "dstate":  # no gradient into this part (torch's None)
                out.append(np.zeros(shape, self.dtype))
                continue
            size = "proj_size" if shape[2] != self.hidden_size else "H"
            what = f"(num_layers*num_directions, {size}) for an unbatched x" if unbatched else \
                f"(num_layers*num_directions, B, {size})"
            a = as_array(pname, part, self.dtype, ndim=2 if unbatched else 3, what=what,
                         finite=finite)
            a = a[:, None, :] if unbatched else a
            if a.shape != shape:
                want = shape[::2] if unbatched else shape
                raise ValueError(f"{pname}: expected shape {want}, got {np.shape(part)}")
            out.append(a)
        return tuple(out)

    def _pack(self, state):
        return state if self.kind == "LSTM" else state[0]

    # ------------------------------------------------------------------ forward

    def _weights(self, k, sfx):
        """W_ih, W_hh, the biases the loops fold into the input projection, and the kind's
        own: the GRU's b_hn, an LSTM's projection W_hr (None without one)."""
        W_ih, W_hh = self._w(f"weight_ih_l{k}{sfx}"), self._w(f"weight_hh_l{k}{sfx}")
        W_hr = self._w(f"weight_hr_l{k}{sfx}") if self.proj_size else None  # an LSTM's
        if not self.bias:
            return W_ih, W_hh, None, W_hr
        b_ih, b_hh = self._w(f"bias_ih_l{k}{sfx}"), self._w(f"bias_hh_l{k}{sfx}")
        if self.kind != "GRU":
            return W_ih, W_hh, b_ih + b_hh, W_hr
        H = self.hidden_size  # b_hn stays inside r * (W_hn h + b_hn)
        bias = b_ih.copy()
        bias[: 2 * H] += b_hh[: 2 * H]
        return W_ih, W_hh, bias, b_hh[2 * H :]

    def _run(self, weights, reverse, mask, X, init, work, shared=None, onehot=None):
        """One direction of one layer, the time loop of this kind: X (T, I, B), init a tuple
        of initial states (h (P, B), or h and c (H, B)), mask: recurrent dropout's (P, B') for
        B' >= B sequences (its first B columns are X's) or None; onehot: None, or (W_ih, ids
        (T, B)) for a one-hot input, whose columns are looked up (``products.preactivations``; X
        empty). Returns S (T+1, P, B), the states of every step (a tuple (S,), or (S, C) for the
        LSTM) and the cache."""
        W_ih, W_hh, bias, extra = weights  # extra: the GRU's b_hn, an LSTM's W_hr (or None)
        m = None if mask is None else np.ascontiguousarray(mask[:, : X.shape[2]])
        if self.kind == "LSTM":
            S, _, cache = loops.lstm_forward(
                X, W_ih, W_hh, bias, *init, reverse, work, shared, m, onehot, W_hr=extra
            )
            return S, (S, cache["C"]), cache
        if self.kind == "GRU":
            S, cache = loops.gru_forward(
                X, W_ih, W_hh, bias, extra, *init, reverse, work, shared, m, onehot
            )
        else:
            S, cache = loops.rnn_forward(
                X, W_ih, W_hh, bias, *init, reverse, work, self.nonlinearity, shared, m, onehot
            )
        return S, (S,), cache

    def forward(self, x, state=None, lengths=None):
        """x: (T, B, I) or (B, T, I) if batch_first, or unbatched (T, I); state: h (L*D, B, P)
        (unbatched: (L*D, P)), for LSTM (h, c) with c (L*D, B, H); None means zeros; lengths:
        None, or (B,) integers in 1..T, the steps of each sequence (torch's packed sequences, see
        ``bptt.nn.packing``). Returns out (T, B, D*P) (or batch-first; unbatched (T, D*P)),
        zero at padded steps, and the final state, same structure as ``state``. (P = H unless
        an LSTM has ``proj_size``.)

        Recorded for one ``backward`` unless inside ``bptt.no_grad()``, where it keeps no cache
        and leaves a pending recorded forward (and its scratch memory) untouched. There, when no
        dropout mask is drawn (eval mode, or no dropout) and without ``lengths``, it runs the
        forward-only path (``bptt.nn.inference``): equal to the recorded forward within float
        rounding (32 eps, tested), not bit for bit.

        One-hot input: x may instead be an integer array of ids (T, B) (batch_first: (B, T)) in
        [0, I), meaning x[t, b] = onehot(ids[t, b]) (so a 2-d integer x is ids, never an
        unbatched input, which must be a float array). Then the first layer's input product is a
        lookup of W_ih's columns, its gradient a scatter of the gate gradients into them, and
        ``backward`` computes no dx (it returns None for it). With ``lengths`` the ids are
        expanded to one-hot and run as a float input (the same values to within rounding, and
        ``backward`` returns its dx)."""
        unbatched = np.ndim(x) == 2 and not _is_ids(x)
        if unbatched:  # torch's unbatched input: one sequence, no batch axis anywhere
            if lengths is not None:
                raise ValueError("lengths: expected None for an unbatched (T, input_size) x, "
                                 f"got {lengths!r}")
            x = np.asarray(x)
            x = x[None] if self.batch_first else x[:, None]
            state = None if state is None else self._check_state(state, 1, unbatched=True)
            state = None if state is None else self._pack(state)
        if gm.is_grad_enabled():
            replaced = self._cache is not None and gm.held(self._held) and not self._rejected
            out, final = self._forward(x, state, lengths)
            self._unbatched, self._replaced, self._rejected = unbatched, replaced, False
            self._held = gm.refs(out)  # not the final state, which callers carry on
            gm.snapshot({n: self._w(n) for n in self.params if n.startswith("weight")},
                        self._snap)
        else:  # the pending forward keeps its cache and its buffers
            pending = self._cache, self._work, self._arenas, self._ids
            if pending[0] is not None:
                self._work, self._arenas = {}, {}
            try:
                out, final = self._forward(x, state, lengths)
            finally:
                self._cache, self._work, self._arenas, self._ids = pending
        if unbatched:
            out = out[0] if self.batch_first else out[:, 0]
            final = self._pack(tuple(f[:, 0] for f in (final if self.kind == "LSTM" else
                                                       (final,))))
        return out, final

    def _forward(self, x, state, lengths):
        """``forward`` of a batch (3-D x, or 2-D ids): sets ``self._cache``."""
        self._ids = None
        if _is_ids(x):
            ids = check_ids(x, self.input_size)
            if 0 in ids.shape:
                raise ValueError(f"x: expected at least one step and one sequence, got ids of "
                                 f"shape {ids.shape}")
            if lengths is not None:  # the packed path takes float input only
                x = np.eye(self.input_size, dtype=self.dtype)[ids]
            else:
                ids = ids.T if self.batch_first else ids
                return self._forward_steps(np.empty((*ids.shape, 0), self.dtype), state, ids)
        x = self._check_x(x)
        T, B, _ = x.shape
        plan = packing.plan(lengths, T, B)  # None: every sequence has all T steps
        if plan is None:
            return self._forward_steps(x, state)
        state0 = self._check_state(state, B)
        between, recurrent = self._masks(T, B)  # None where nothing is dropped
        return self._forward_packed(x, state0, plan, between, recurrent)

    def _forward_steps(self, x, state, ids=None):
        """``forward`` without lengths: x (T, B, I) time-major; with ``ids`` (T, B), x is
        (T, B, 0) and layer 0 looks up its input projections."""
        if not gm.is_grad_enabled() and inference.applies(self):  # bptt.nn.inference
            return inference.forward(self, x, state, ids)
        T, B, _ = x.shape
        state0 = self._check_state(state, B)
        between, recurrent = self._masks(T, B)  # None where nothing is dropped
        self._ids = ids
        P, D = self.state_size, self.num_directions
        finals = [np.empty(shape, self.dtype) for shape in self._state_shapes(B)]
        out = np.empty((B, T, D * P) if self.batch_first else (T, B, D * P), self.dtype)
        X, layers = x.transpose(0, 2, 1), []  # (T, I, B): per step, features first
        for k in range(self.num_layers):
            last = k == self.num_layers - 1
            # the next layer's input (T, D*P, B): this layer's outputs (with one direction, the
            # states themselves, which the next layer copies into its own blocks)
            Y = None if last or D == 1 else self._buffer((k, "out"))("Y", (T, D * P, B))
            dirs = []
            for d in range(D):
                reverse, j = d == 1, k * D + d
                run = self._runner(k, d, recurrent[j], ids if k == 0 else None)
                S, states, cache = run(X, tuple(s[j].T for s in state0), self._buffer((k, d)))
                for f_all, s in zip(finals, states, strict=True):
                    f_all[j] = blocks.final(s, reverse).T
                Y = blocks.place(blocks.outputs(S, reverse), d, out, Y, last, self.batch_first)
                dirs.append(cache)
            layers.append(dirs)
            if not last and between[k] is not None:  # the next layer's input: mask * outputs
                X = np.multiply(Y, between[k], out=self._buffer((k, "out"))("Yd", Y.shape))
            else:
                X = Y
        self._cache = (layers, B, T, None, between)
        return out, self._pack(tuple(finals))

    def _runner(self, k, d, mask=None, ids=None):
        """``_run`` for direction d of layer k with recurrent dropout's mask (P, B) or None:
        run(X, init, work, shared=None). With ``ids`` (T, B) (layer 0, one-hot input), W_ih
        enters as its looked-up columns (``products.preactivations``) and X is empty."""
        weights = self._weights(k, self._suffixes()[d])
        if ids is None:
            return functools.partial(self._run, weights, d == 1, mask)
        W_ih = weights[0]
        return functools.partial(
            self._run, (W_ih[:, :0], *weights[1:]), d == 1, mask, onehot=(W_ih, ids)
        )

    # ------------------------------------------------------------------ backward

    def _steps_backward(self, W_hhT, dY, dfinal, cache, work, dc_ends=None, kept=None):
        """The backward time loop of this kind: per-step gate gradients (T, R, B) and dL/d the
        initial states (a tuple: h's (P, B), and the LSTM's c's (H, B)); dc_ends as
        ``loops.lstm_backward_steps``, kept as ``loops.lstm_backward``."""
        if self.kind == "LSTM":
            dA, dh0, dc0 = loops.lstm_backward_steps(
                dY, *dfinal, cache, W_hhT, work, dc_ends, kept
            )
            return dA, (dh0, dc0)
        steps = loops.gru_backward_steps if self.kind == "GRU" else loops.rnn_backward_steps
        dG, dh0 = steps(dY, *dfinal, cache, W_hhT, work, kept)
        return dG, (dh0,)

    def backward(self, dout, dstate=None, keep_state_grads: bool = False):
        """Gradients for the last recorded forward, once (as torch, a graph is differentiated
        once). dout: like its ``out`` (ignored at padded steps); dstate: like its final state
        (None means zeros; for an LSTM (dh, None) or (None, dc): no gradient into that part).
        Returns (dx, dstate0) with the shapes of x and the initial state (dx zero at padded
        steps), and adds the parameter gradients into ``self.grads`` (torch's rule: they add up
        until ``zero_grad()``). RuntimeError if no recorded forward is pending, if it replaced
        one whose outputs the caller still holds (``bptt.nn.grad_mode``), or if a weight in
        ``params`` was changed in place since that forward.

        With ``keep_state_grads=True`` it also sets ``self.state_grads``: the gradient of the
        loss with respect to the hidden state of every step and layer, dh of shape
        (L, T, B, D*P) (batch_first: (L, B, T, D*P)); for an LSTM a tuple (dh, dc), dc the cell
        state's, (L, T, B, D*H). ``dh[k, t]`` is the total dL/dh_t of layer k (direction d in
        the columns d*P:(d+1)*P, as in ``out``): what reaches h_t from the layer above (for the
        top layer, ``dout[t]``; through dropout's mask in training mode) and from the next step
        (t+1, or t-1 in reverse; with recurrent dropout through its mask, as h_t enters
        W_hh (m ⊙ h_t)), plus ``dstate`` at a sequence's last step; zero at padded steps. It is
        what ``h_t.retain_grad()`` gives in torch on a loop over steps (an unbatched forward's
        have no batch axis). Otherwise ``self.state_grads`` is None, and no extra work is
        done.

        ``dout=None`` means a zero ``dout`` (a loss on the final state only). A backward
        rejected for its arguments (ValueError, TypeError) changes nothing: the forward still
        waits for a corrected backward, and a new forward replaces it without complaint."""
        try:
            return self._backward_checked(dout, dstate, keep_state_grads)
        except (ValueError, TypeError):
            self._rejected = self._cache is not None
            raise

    def _backward_checked(self, dout, dstate, keep_state_grads):
        if self._cache is None:
            raise RuntimeError(
                "backward: call forward first (each recorded forward can be differentiated once, "
                "and there is none pending; forwards inside bptt.no_grad() are not recorded)"
            )
        if self._replaced:
            raise gm.replaced_error(f"this {self.kind}")
        gm.check_unchanged(self.params, self._snap, self._snap)
        if not self._unbatched:
            return self._backward(dout, dstate, keep_state_grads)
        P, D, T = self.state_size, self.num_directions, self._cache[2]
        dout = np.zeros((T, D * P), self.dtype) if dout is None else dout
        dout = as_array("dout", dout, self.dtype, ndim=2, what="(T, D*P) for an unbatched x")
        check_shape("dout", dout, (T, D * P))
        dstate = None if dstate is None else self._pack(
            self._check_state(dstate, 1, name="dstate", unbatched=True))
        dx, d0 = self._backward(dout[None] if self.batch_first else dout[:, None], dstate,
                                keep_state_grads)
        one = (lambda a: a[:, 0]) if not self.batch_first else (lambda a: a[0])
        d0 = tuple(d[:, 0] for d in (d0 if self.kind == "LSTM" else (d0,)))
        if self.state_grads is not None:  # (L, T, 1, D*P) or (L, 1, T, D*P) -> (L, T, D*P)
            kept = self.state_grads if self.kind == "LSTM" else (self.state_grads,)
            cut = (lambda a: a[:, :, 0]) if not self.batch_first else (lambda a: a[:, 0])
            self.state_grads = self._pack(tuple(cut(a) for a in kept))
        return one(dx), self._pack(d0)

    def _backward(self, dout, dstate, keep_state_grads):
        """``backward`` of a batch (3-D dout)."""
        layers, B, T, plan, between = self._cache
        P, D, sizes = self.state_size, self.num_directions, self._state_sizes()
        out_shape = (B, T, D * P) if self.batch_first else (T, B, D * P)
        dout = np.zeros(out_shape, self.dtype) if dout is None else dout
        dout = as_array("dout", dout, self.dtype, ndim=3, what="(the shape of the last output)")
        check_shape("dout", dout, out_shape)
        dfinal = self._check_state(dstate, B, name="dstate")
        if not isinstance(keep_state_grads, (bool, np.bool_)):
            raise TypeError(
                f"keep_state_grads: expected True or False, got {type(keep_state_grads).__name__}"
            )
        self.state_grads = None
        if plan is not None:
            return self._backward_packed(dout, dfinal, plan, keep_state_grads)
        # per-step state gradients, if asked: (L, T, B, D*P) (c's D*H) or batch-first, the
        # layout of out
        kept_all = [np.empty((self.num_layers, *out_shape[:2], D * n), self.dtype) for n in sizes]
        kept_all = kept_all if keep_state_grads else []
        dstate0 = [np.empty(shape, self.dtype) for shape in self._state_shapes(B)]
        # (T, D*P, B): per step a contiguous (features, batch) block
        dY = np.ascontiguousarray(
            dout.transpose(1, 2, 0) if self.batch_first else dout.transpose(0, 2, 1)
        )
        grads = {}
        for k in reversed(range(self.num_layers)):
            dirs = layers[k]
            dX = None
            for d, sfx in enumerate(self._suffixes()):
                work, cache, j = self._buffer((k, d)), dirs[d], k * D + d
                W_ih, W_hh = self._w(f"weight_ih_l{k}{sfx}"), self._w(f"weight_hh_l{k}{sfx}")
                W_hhT = W_hh.T       # a transposed view: BLAS reads it as is, no copy
                dY_d, dh_n = dY[:, d * P : (d + 1) * P], dfinal[0][j].T
                kept = tuple(  # (T, P or H, B) views of the columns of direction d
                    (a[k].transpose(1, 0, 2) if self.batch_first else a[k])[
                        :, :, d * n : (d + 1) * n
                    ].transpose(0, 2, 1)
                    for a, n in zip(kept_all, sizes, strict=False)
                ) or None
                if self.kind == "LSTM":
                    pieces, g, dh0, dc0 = loops.lstm_backward(
                        dY_d, dh_n, dfinal[1][j].T, cache, W_hhT, work, kept
                    )
                    dstate0[1][j] = dc0.T
                elif self.kind == "GRU":
                    pieces, g, dh0 = loops.gru_backward(dY_d, dh_n, cache, W_hhT, work, kept)
                else:
                    pieces, g, dh0 = loops.rnn_backward(dY_d, dh_n, cache, W_hhT, work, kept)
                dstate0[0][j] = dh0.T
                self._store_grads(grads, k, sfx, g)
                if k == 0 and self._ids is not None:  # one-hot ids: dW_ih a scatter, no dx
                    dW = np.zeros_like(W_ih)
                    for rows, G in pieces:
                        dW[rows] = products.scatter_columns(G, self._ids.reshape(-1), W_ih.shape[1])
                    grads[f"weight_ih_l0{sfx}"] = dW
                    continue
                for rows, G in pieces:
                    if k == 0:  # (T*B, I): the layout of x
                        part = G.T @ W_ih[rows]
                    else:  # (D*P, T*B): the layout of the layer below's outputs
                        part = W_ih[rows].T @ G
                    dX = part if dX is None else np.add(dX, part, out=dX)
            if k > 0:  # the gradient of layer k-1's outputs, through dropout's mask
                dY = np.ascontiguousarray(dX.reshape(-1, T, B).transpose(1, 0, 2))
                dY = drop.apply(dY, between[k - 1], dY)
        _params.accumulate(self.params, grads)
        if keep_state_grads:
            self.state_grads = self._pack(tuple(kept_all))
        self._cache = None  # backward reused the forward's buffers for the gradients
        if self._ids is not None:
            return None, self._pack(tuple(dstate0))
        dx = dX.reshape(T, B, -1)
        dx = dx.transpose(1, 0, 2) if self.batch_first else dx
        return dx, self._pack(tuple(dstate0))

    def _store_grads(self, grads, k, sfx, g):
        """g: the gradients of (W_ih, W_hh, b_ih, b_hh), and of an LSTM's W_hr after them."""
        names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        values = g[:2] + (g[2:4] if self.bias else ())
        if self.proj_size:
            names, values = names + ("weight_hr",), values + (g[4],)
        for name, value in zip(names, values, strict=True):
            grads[f"{name}_l{k}{sfx}"] = value

    def __repr__(self):
        extra = f", nonlinearity={self.nonlinearity!r}" if self.kind == "RNN" else ""
        # shown when set, as torch shows proj_size and dropout
        for name in ("proj_size", "dropout", "recurrent_dropout"):
            extra += f", {name}={getattr(self, name)}" if getattr(self, name) else ""
        return (
            f"{self.kind}({self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bias={self.bias}, batch_first={self.batch_first}, "
            f"bidirectional={self.bidirectional}, dtype={self.dtype.name}{extra})"
        )


def _check_proj_size(proj_size, hidden_size: int, kind: str) -> int:
    """``proj_size`` as torch takes it: 0 (no projection), or for an LSTM 0 < P < hidden_size."""
    P = positive_int("proj_size", proj_size, minimum=0)
    if P and kind != "LSTM":
        raise ValueError(f"proj_size: expected 0 for {kind} (only LSTM projects its state), "
                         f"got {P}")
    if P >= hidden_size:
        raise ValueError(f"proj_size: expected 0 (no projection) or less than hidden_size="
                         f"{hidden_size}, got {P}")
    return P


def _is_ids(x) -> bool:
    """Whether a forward's input is one-hot ids: a 2-d integer array."""
    return isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype.kind in "iu"


class RNN(Recurrent):
    """Elman RNN, ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu), as torch.nn.RNN,
    with torch's positional order (``nonlinearity`` fourth)."""

    kind = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        recurrent_dropout: float = 0.0,
        dtype=np.float32,
        seed: int | None = None,
    ):
        if nonlinearity not in rnn_cell.NONLINEARITIES:
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.__dict__["nonlinearity"] = nonlinearity
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            proj_size, recurrent_dropout=recurrent_dropout, dtype=dtype, seed=seed,
        )


class LSTM(Recurrent):
    """LSTM as torch.nn.LSTM: gates i, f, g, o; state (h, c); ``proj_size=P`` (0 < P <
    hidden_size) projects h to P features with ``weight_hr_l{k}`` (P, H), as torch's."""

    kind = "LSTM"


class GRU(Recurrent):
    """GRU as torch.nn.GRU: gates r, z, n with n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""

    kind = "GRU"
