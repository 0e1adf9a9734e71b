"""Variable-length batches: torch's packed-sequence meaning, at the cost of the valid steps.

Legend: T steps, B batch, H hidden, I input features, N = sum of the lengths (the valid steps).

A batch of sequences of lengths ``lengths`` (B,), each in 1..T, padded to T, means what
``pack_padded_sequence(x, lengths, enforce_sorted=False)`` -> layer -> ``pad_packed_sequence(...,
total_length=T)`` means in torch: sequence b runs steps 0..lengths[b]-1 (the reverse direction of
a bidirectional layer runs them from lengths[b]-1 down to 0), its final state is the state after
its own last step, its outputs at the padded steps are zero, and nothing at a padded step (input,
output gradient) reaches any result.

How. The batch is put in order of decreasing length once (``order``; ties keep their order).
Then at step t the sequences still running are a prefix of the batch, the first n_t = #{lengths
> t} columns, and the steps fall into segments of equal n: steps t0..t1-1 run on the first n
columns. Each segment is run by the time loops of ``bptt.nn.loops`` as a batch of its own
(T = t1 - t0, B = n), so every step's GEMM and element-wise work covers exactly the running
sequences, in contiguous buffers (a column prefix of a (features, B) block is strided, and
NumPy's element-wise calls on such views measured 3-8x slower per element here). One rule hands
the state from segment to segment in both directions: a running state ``state`` (H, B) starts as
the initial state; a segment starts from state[:, :n] and writes its final state back there.
Forward in time the segments shrink, so the columns a segment leaves behind keep the final
state of the sequences that ended there; in reverse the segments grow, and the new columns
still hold the initial state, where those sequences start. Backward runs the segments in the
opposite order with the same rule on dL/dstate, then one GEMM over the packed gate gradients
(N columns, segment after segment in time order) gives the weight gradients, and one the input
gradients, which ``unpack_rows``/``unpack_cols`` put back at their steps.
"""

import numpy as np

from .loops import copy_feature_major, gradients, outputs, previous


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


class Plan:
    """A batch of sequences of different lengths, in decreasing order of length.

    order: (B,) the batch index of each sorted column (stable for ties); inverse: its inverse.
    segments: (t0, t1, n) in time order: steps t0..t1-1 run on the first n sorted columns.
    offsets: the first packed column of each segment (``N`` in all).
    """

    def __init__(self, lengths: np.ndarray, T: int):
        self.T, self.B = T, lengths.shape[0]
        self.order = np.argsort(-lengths, kind="stable")
        self.inverse = np.argsort(self.order)
        ends = np.unique(lengths)  # the steps where some sequence has ended
        starts = np.concatenate(([0], ends[:-1]))
        self.segments = [(int(t0), int(t1), int((lengths > t0).sum())) for t0, t1 in
                         zip(starts, ends, strict=True)]
        sizes = [(t1 - t0) * n for t0, t1, n in self.segments]
        self.offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(int).tolist()
        self.N = int(sum(sizes))

    # ------------------------------------------------------------------ batch order

    def sorted(self, a: np.ndarray) -> np.ndarray:
        """A copy of ``a`` with its last axis (the batch) in length order."""
        return a[..., self.order]

    def unsorted(self, a: np.ndarray) -> np.ndarray:
        """A copy of ``a`` with its last axis back in the caller's batch order."""
        return a[..., self.inverse]

    # ------------------------------------------------------------------ one direction

    def forward(self, run, X, init, reverse, work):
        """One direction of one layer over the sorted batch.

        run(X, init, work, shared) -> (S, finals, cache): a forward of ``bptt.nn.loops`` over
        X (T', I, n) from the states ``init``, its finals a tuple of (H, n) arrays (h, or h
        and c). X: (T, I, B) sorted; init: tuple of (H, B) sorted initial states.
        Returns the outputs Y (T, H, B), zero at the padded steps, the final states (tuple of
        (H, B)) and the caches of the segments.
        """
        work.reset()
        state = [s.copy() for s in init]
        H = state[0].shape[0]
        Y = work("Y", (self.T, H, self.B))
        Y[...] = 0
        shared, caches = {}, []
        for t0, t1, n in reversed(self.segments) if reverse else self.segments:
            S, finals, cache = run(X[t0:t1, :, :n], tuple(s[:, :n] for s in state), work, shared)
            for s, f in zip(state, finals, strict=True):
                s[:, :n] = f
            Y[t0:t1, :, :n] = outputs(S, reverse)
            caches.append(cache)
        return Y, tuple(state), caches

    def backward(self, kind, run, dY, dfinal, caches, work, kept=None):
        """Backward of ``forward``. run(dY, dfinal, cache, work, kept) -> (dG, dstate0): a
        backward time loop of ``bptt.nn.loops`` (dG (T', R, n) per step, dstate0 a tuple of
        (H, n)). dY: (T, H, B) sorted (padded steps ignored); dfinal: tuple of (H, B) sorted;
        kept: None, or a tuple of (T, H, B) arrays, sorted, that get the per-step state
        gradients of the valid steps (the padded ones are left as they are).
        Returns the pieces of dx (packed columns, see ``loops.gradients``), the gradients of
        (W_ih, W_hh, b_ih, b_hh) and dL/d the initial states (tuple of (H, B), sorted)."""
        state = [d.copy() for d in dfinal]
        H = state[0].shape[0]
        segments = list(reversed(self.segments)) if caches[0]["reverse"] else self.segments
        parts = {}
        for (t0, t1, n), cache in reversed(list(zip(segments, caches, strict=True))):
            dY_seg = np.ascontiguousarray(dY[t0:t1, :, :n])
            seg_kept = None if kept is None else tuple(a[t0:t1, :, :n] for a in kept)
            dG, dstate0 = run(dY_seg, tuple(s[:, :n] for s in state), cache, work, seg_kept)
            for s, d in zip(state, dstate0, strict=True):
                s[:, :n] = d
            parts[t0] = (dG, cache)
        M = Zf = None
        for (t0, t1, n), off in zip(self.segments, self.offsets, strict=True):
            dG, cache = parts[t0]
            Zr = previous(cache["Z"], cache["reverse"])  # (T', K, n): the blocks the steps read
            if M is None:
                M = work("M", (dG.shape[1] * dG.shape[2], self.N))
                Zf = work("Zf", (Zr.shape[1], self.N))
            cols = slice(off, off + (t1 - t0) * n)
            copy_feature_major(dG.reshape(t1 - t0, -1, n), M[:, cols])
            copy_feature_major(Zr, Zf[:, cols])
        return *gradients(kind, M, Zf, H), tuple(state)

    # ------------------------------------------------------------------ input gradients

    def unpack_rows(self, P: np.ndarray) -> np.ndarray:
        """(N, F) packed rows -> (T, B, F) sorted, zero at the padded steps."""
        out = np.zeros((self.T, self.B, P.shape[1]), P.dtype)
        for (t0, t1, n), off in zip(self.segments, self.offsets, strict=True):
            out[t0:t1, :n] = P[off : off + (t1 - t0) * n].reshape(t1 - t0, n, -1)
        return out

    def unpack_cols(self, P: np.ndarray) -> np.ndarray:
        """(F, N) packed columns -> (T, F, B) sorted, zero at the padded steps."""
        out = np.zeros((self.T, P.shape[0], self.B), P.dtype)
        for (t0, t1, n), off in zip(self.segments, self.offsets, strict=True):
            block = P[:, off : off + (t1 - t0) * n].reshape(-1, t1 - t0, n)
            out[t0:t1, :, :n] = block.transpose(1, 0, 2)
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
        size = int(np.prod(shape))
        start, flat = self.used.get(name, 0), self.flat.get(name)
        if flat is None or start + size > flat.size:
            grown = 0 if flat is None else 2 * flat.size
            flat = self.flat[name] = np.empty(max(start + size, grown), self.dtype)
            start = 0
        self.used[name] = start + size
        return flat[start : start + size].reshape(shape)
