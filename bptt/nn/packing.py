"""Variable-length batches: torch's packed-sequence meaning, at the cost of the valid steps.

Legend: T steps, B batch, H hidden, I input features, N packed columns (the steps run).

A batch of sequences of lengths ``lengths`` (B,), each in 1..T, padded to T, means what
``pack_padded_sequence(x, lengths, enforce_sorted=False)`` -> layer -> ``pad_packed_sequence(...,
total_length=T)`` means in torch: sequence b runs steps 0..lengths[b]-1 (the reverse direction of
a bidirectional layer runs them from lengths[b]-1 down to 0), its final state is the state after
its own last step, its outputs at the padded steps are zero, and nothing at a padded step (input,
output gradient) reaches any result.

How. The batch is put in order of decreasing length once (``order``; ties keep their order).
Then at step t the sequences still running are the first n_t = #{lengths > t} columns, and the
steps fall into segments (``Plan``: t0..t1-1 on the first w columns). Each segment is run by the
time loops of ``bptt.nn.loops`` as a batch of its own (T = t1 - t0, B = w), so each step's GEMM
and element-wise work covers the running sequences and a few more, in contiguous buffers (a
column prefix of a (features, B) block is strided, and NumPy's element-wise calls on such views
measured 3-8x slower per element here).

One rule hands the state from segment to segment: a running state (H, B) starts as the initial
state; a segment starts from its first w columns and writes back the columns that run through
it. Forward in time the segments shrink, and the final state of each sequence is read from the
segment where it ends, at its own last step. In reverse the segments grow, and the columns a
segment adds still hold the initial state, where those sequences start; every sequence's final
state is its state after step 0. Backward runs the segments in the opposite order with the
same rule on dL/dstate (forward in time, each final state's gradient enters at its sequence's
last step), then one GEMM over the packed gate gradients (w columns per step, segment after
segment in time order) gives the weight gradients, and one the input gradients, which
``unpack`` puts back at their steps. Outside the loops the batch lives in rows (T, B, F), where
reordering the batch is a gather of contiguous rows and a padded step is a row to zero.
"""

import math

import numpy as np

from .blocks import copy_feature_major, final, outputs, previous
from .products import gradients, projection_grad


def plan(lengths, T: int, B: int):
    """A ``Plan`` for ``lengths`` (B,) in 1..T, or None when ``lengths`` is None or every
    sequence has all T steps (then the batch runs unpacked, bitwise as without lengths)."""
    if lengths is None:
        return None
    try:
        a = np.asarray(lengths)
    except Exception as err:  # e.g. a ragged list
        raise TypeError(f"lengths: expected a 1-D integer array, got {type(lengths).__name__}"
                        f" ({err})") from None
    if a.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected integers, got dtype {a.dtype}")
    if a.shape != (B,):
        raise ValueError(f"lengths: expected shape ({B},) (one length per sequence), got {a.shape}")
    if a.min() < 1 or a.max() > T:
        raise ValueError(
            f"lengths: expected values in 1..{T} (the steps of x), got min {a.min()}, max {a.max()}"
        )
    if a.min() == T:
        return None
    return Plan(a.astype(np.int64), T)


WIDTH = 8  # segments run on a multiple of this many columns (see ``Plan``)


class Plan:
    """A batch of sequences of different lengths, in decreasing order of length.

    order: (B,) the batch index of each sorted column (stable for ties); inverse: its inverse;
    lengths: (B,) the sorted lengths; padded: (T, B) True at the padded steps (sorted).
    layouts[reverse]: (segments, offsets, N): segments (t0, t1, n, w) in time order: steps
        t0..t1-1 run on the first w sorted columns, and the first n of them hand their state
        on to the next segment (forward in time all w, in reverse the n sequences running);
        offsets: each segment's first packed column (w per step), N in all.

    Widths. OpenBLAS runs a GEMM on a column count that is not a multiple of 8 markedly slower
    (measured here for (1024, 322) @ (322, n): n = 31 306 us, n = 32 194 us; n = 7 199 us,
    n = 8 113 us), and buffers of such widths are unaligned, so a segment runs on the number of
    its running sequences rounded up to a multiple of ``WIDTH`` (at most B; 1 or 2 stay, a
    matrix-vector product). The extra columns are sequences that have ended (or, in reverse,
    not yet begun): they run on padding from whatever state they hold, their results are
    dropped, and they get zero output and state gradients, so they add exactly zero to every
    gradient.

    Segments. Each segment costs a few dozen NumPy calls besides its steps, so forward in time
    a segment is every run of steps of one width, and sequences may end inside it: their final
    states are read at their own last step from the segment's states, and the gradients of
    those final states enter there (h's through dL/d output, the LSTM's c through ``dc_ends``).
    In reverse a sequence starts at its last step, and starting one inside a segment would need
    the time loops to swap in its initial state, so there a segment ends wherever a sequence
    starts (n, the sequences running, is the same at each of its steps).
    """

    def __init__(self, lengths: np.ndarray, T: int):
        self.T, self.B = T, lengths.shape[0]
        self.order = np.argsort(-lengths, kind="stable")
        self.inverse = np.argsort(self.order)
        self.lengths = lengths[self.order]
        self.padded = np.arange(T)[:, None] >= self.lengths[None, :]  # (T, B)
        self.running = (~self.padded).sum(axis=1).tolist() + [0]  # n_t, t = 0..T
        ends = np.unique(lengths)  # the steps where some sequence has ended
        by_length = []
        for t0, t1 in zip([0] + ends[:-1].tolist(), ends.tolist(), strict=True):
            n = int((lengths > t0).sum())
            by_length.append((t0, t1, n, n if n <= 2 else min(self.B, -(-n // WIDTH) * WIDTH)))
        by_width = []
        for t0, t1, _, w in by_length:
            if by_width and by_width[-1][3] == w:
                by_width[-1] = (by_width[-1][0], t1, w, w)
            else:
                by_width.append((t0, t1, w, w))
        self.layouts = {False: self._layout(by_width), True: self._layout(by_length)}

    @staticmethod
    def _layout(segments):
        sizes = [(t1 - t0) * w for t0, t1, _, w in segments]
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(int).tolist()
        return segments, offsets, int(sum(sizes))

    def _ending(self, t0, t1):
        """The sorted columns a..b whose sequences end in steps t0..t1-1 (a contiguous range)."""
        return self.running[t1], self.running[t0]

    # ------------------------------------------------------------------ batch order

    def sorted(self, a: np.ndarray, axis: int = -1) -> np.ndarray:
        """A copy of ``a`` with its batch axis in length order."""
        return np.take(a, self.order, axis=axis)

    def unsorted(self, a: np.ndarray, axis: int = -1) -> np.ndarray:
        """A copy of ``a`` with its batch axis back in the caller's order."""
        return np.take(a, self.inverse, axis=axis)

    # ------------------------------------------------------------------ one direction

    def forward(self, run, X, init, reverse, work, Y):
        """One direction of one layer over the sorted batch.

        run(X, init, work, shared) -> (S, states, cache): a forward of ``bptt.nn.loops`` over
        X (T', I, w) from the states ``init``, with ``states`` the tuple (S,) or (S, C) of its
        (T'+1, H, w) states. X: (T, I, B) sorted; init: tuple of (H, B) sorted initial states;
        Y: (T, B, H) rows where the outputs go (the padded rows are left for the caller to
        zero). Returns the final states (tuple of (H, B)) and the caches of the segments.
        """
        work.reset()
        segments = self.layouts[reverse][0]
        state = [s.copy() for s in init]  # the state each segment starts from
        finals = [np.empty_like(s) for s in init]
        shared, caches = {}, []
        for t0, t1, n, w in reversed(segments) if reverse else segments:
            S, states, cache = run(X[t0:t1, :, :w], tuple(s[:, :w] for s in state), work, shared)
            for s, seq in zip(state, states, strict=True):
                s[:, :n] = final(seq, reverse)[:, :n]
            if not reverse:  # the sequences ending in this segment: their state at their end
                a, b = self._ending(t0, t1)
                for f, seq in zip(finals, states, strict=True):
                    f[:, a:b] = seq[self.lengths[a:b] - t0, :, np.arange(a, b)].T
            Y[t0:t1, :w] = outputs(S, reverse).transpose(0, 2, 1)
            caches.append(cache)
        return tuple(state if reverse else finals), caches

    def backward(self, kind, run, dY, dfinal, caches, reverse, work, kept=None):
        """Backward of ``forward``. run(dY, dfinal, cache, work, dc_ends, kept) -> (dG, dstate0):
        a backward time loop of ``bptt.nn.loops`` (dG (T', R, w) per step, dstate0 a tuple of
        (H, w)). dY: (T, B, H) rows, sorted, zero at the padded steps, ours to change; dfinal:
        tuple of (H, B) sorted; kept: None, or a tuple of (T, B, H) rows, sorted, that get the
        per-step state gradients (``loops``' ``kept``), zero at the padded steps. Returns the
        pieces of dx (packed columns, see ``products.gradients`` and ``unpack``), the gradients of
        (W_ih, W_hh, b_ih, b_hh) (and of an LSTM's projection W_hr after them, over all
        segments: ``products.projection_grad``) and dL/d the initial states (tuple of (H, B) or,
        with a projection, ((P, B), (H, B)), sorted)."""
        segments, offsets, N = self.layouts[reverse]
        H, ar = dfinal[0].shape[0], np.arange(self.B)
        if reverse:  # every sequence's final state is its state after step 0
            state = [d.copy() for d in dfinal]
        else:  # they enter at each sequence's own last step
            dY[self.lengths - 1, ar] += dfinal[0].T
            state = [np.zeros_like(d) for d in dfinal]
        ran = list(zip(segments[::-1] if reverse else segments, caches, strict=True))
        parts = {}
        for (t0, t1, n, w), cache in reversed(ran):  # the forward's segments, last first
            dY_seg = np.ascontiguousarray(dY[t0:t1, :w].transpose(0, 2, 1))  # (T', H, w)
            dfinal_seg = tuple(s[:, :w] for s in state)
            if n < w:  # the extra columns get zero
                dfinal_seg = tuple(_widened(s[:, :n], w, work, f"d{i}") for i, s in
                                   enumerate(state))
            dc_ends = None
            if kind == "LSTM" and not reverse:
                dc_ends = {}
                for length in np.unique(self.lengths[slice(*self._ending(t0, t1))]).tolist():
                    cols = slice(*self._ending(length - 1, length))
                    dc_ends[length - 1 - t0] = (cols, dfinal[1][:, cols])
            seg_kept = None if kept is None else tuple(
                a[t0:t1, :w].transpose(0, 2, 1) for a in kept  # (T', H, w) views
            )
            dG, dstate0 = run(dY_seg, dfinal_seg, cache, work, dc_ends, seg_kept)
            for s, d in zip(state, dstate0, strict=True):
                s[:, :n] = d[:, :n]
            parts[t0] = (dG, cache)
        M = Zf = None
        for (t0, t1, _, w), off in zip(segments, offsets, strict=True):
            dG, cache = parts[t0]
            Zr = previous(cache["Z"], cache["reverse"])  # (T', K, w): the blocks the steps read
            if M is None:
                M = work("M", (dG.shape[1] * dG.shape[2], N))
                Zf = work("Zf", (Zr.shape[1], N))
            cols = slice(off, off + (t1 - t0) * w)
            copy_feature_major(dG.reshape(t1 - t0, -1, w), M[:, cols])
            copy_feature_major(Zr, Zf[:, cols])
        for a in kept or ():  # columns that ran past their sequence's end or before its start
            a[self.padded] = 0
        pieces, g = gradients(kind, M, Zf, H)
        if kind == "LSTM" and caches[0]["Q"] is not None:  # an LSTM's projection: dW_hr after
            g = (*g, projection_grad(caches, work))
        return pieces, g, tuple(state)

    def unpack(self, P: np.ndarray, reverse: bool) -> np.ndarray:
        """(N, F) packed steps of one direction -> (T, B, F) rows, sorted, zero at the padded
        steps."""
        segments, offsets, _ = self.layouts[reverse]
        out = np.zeros((self.T, self.B, P.shape[1]), P.dtype)
        for (t0, t1, _, w), off in zip(segments, offsets, strict=True):
            out[t0:t1, :w] = P[off : off + (t1 - t0) * w].reshape(t1 - t0, w, -1)
        out[self.padded] = 0
        return out


def _widened(a, w, work, name):
    """(H, n) -> (H, w): ``a`` and zero columns."""
    out = work(name, (a.shape[0], w))
    out[:, : a.shape[1]] = a
    out[:, a.shape[1] :] = 0
    return out


class Arena:
    """Scratch memory for the segments of one direction: per name one flat buffer, handed out
    piece after piece from ``reset()`` on, so that the segments' buffers never overlap and the
    next call reuses the same memory whatever its lengths (a buffer that runs out is replaced by
    one twice the size; the pieces already handed out keep the old one alive)."""

    def __init__(self, dtype):
        self.dtype, self.flat, self.used = dtype, {}, {}

    def reset(self) -> None:
        self.used = {}

    def __call__(self, name: str, shape: tuple) -> np.ndarray:
        size = math.prod(shape)
        start, flat = self.used.get(name, 0), self.flat.get(name)
        if flat is None or start + size > flat.size:
            grown = 0 if flat is None else 2 * flat.size
            flat = self.flat[name] = np.empty(max(start + size, grown), self.dtype)
            start = 0
        self.used[name] = start + size
        return flat[start : start + size].reshape(shape)
